import { Metrics } from '@aws-lambda-powertools/metrics';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../shared/common/logger.js';
import type { Database } from '../../shared/databases/types.js';
import { powertoolsStepMetrics } from '../../shared/rotation/metrics.js';
import { connectWithRetry } from '../../shared/strategies/sign-in.js';

/**
 * The EMF documents Powertools prints while `act` runs. The test setup sets POWERTOOLS_DEV,
 * which switches metrics off and prints through the global console: switched back on here.
 */
async function emitted(act: () => void | Promise<void>) {
  const lines: string[] = [];
  vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
  const log = vi.spyOn(console, 'log').mockImplementation((line: unknown) => {
    lines.push(String(line));
  });
  try {
    await act();
  } finally {
    log.mockRestore();
    vi.unstubAllEnvs();
  }
  return lines
    .flatMap((chunk) => chunk.split('\n'))
    .filter((line) => line.includes('"_aws"'))
    .map((line) => JSON.parse(line) as Record<string, unknown> & { _aws: EmfMeta });
}
interface EmfMeta {
  CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[];
}

afterEach(() => vi.restoreAllMocks());

describe('metrics as template.yaml alarms on them', () => {
  // Created inside `emitted`: Powertools reads POWERTOOLS_METRICS_DISABLED at construction.
  const metrics = () =>
    powertoolsStepMetrics(
      new Metrics({ namespace: 'SecretsRotation', serviceName: 'mysql-single-user' }),
    );

  it('StepOutcome has the dimensions service, step and outcome (StepFailureAlarm)', async () => {
    const [document] = await emitted(() => metrics().record('setSecret', 'failure', 12, 'Boom'));
    const [meta] = document?._aws.CloudWatchMetrics ?? [];
    expect(meta?.Namespace).toBe('SecretsRotation');
    expect(meta?.Dimensions).toEqual([['service', 'step', 'outcome']]);
    expect(meta?.Metrics.map((m) => m.Name)).toEqual(['StepDuration', 'StepOutcome']);
    expect(document).toMatchObject({
      service: 'mysql-single-user',
      step: 'setSecret',
      outcome: 'failure',
      StepOutcome: 1,
    });
  });

  it('Degraded has the dimensions service and Feature (GracePeriodDegradedAlarm)', async () => {
    const [document] = await emitted(() => metrics().degraded?.('MysqlRetainCurrentPassword'));
    const [meta] = document?._aws.CloudWatchMetrics ?? [];
    expect(meta?.Dimensions).toEqual([['service', 'Feature']]);
    expect(meta?.Metrics.map((m) => m.Name)).toEqual(['Degraded']);
    expect(document).toMatchObject({
      service: 'mysql-single-user',
      Feature: 'MysqlRetainCurrentPassword',
      Degraded: 1,
    });
  });
});

describe('in Lambda, the metrics name the deployed function (one stack of many)', () => {
  // Review finding: every stack of one function emitted the same series (service is the
  // function's folder name), so stack A's StepFailureAlarm / GracePeriodDegradedAlarm fired for
  // stack B's failures. Lambda sets AWS_LAMBDA_FUNCTION_NAME; template.yaml's alarms name it.
  const inStack = (name: string) => {
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', name);
    return powertoolsStepMetrics(
      new Metrics({ namespace: 'SecretsRotation', serviceName: 'mysql-single-user' }),
    );
  };

  it('StepOutcome: service, FunctionName, step, outcome', async () => {
    const documents = await emitted(() => {
      inStack('orders-db-Function-AAA').record('setSecret', 'failure', 12, 'Boom');
      inStack('billing-db-Function-BBB').record('setSecret', 'failure', 12, 'Boom');
    });
    expect(documents.map((d) => d._aws.CloudWatchMetrics[0]?.Dimensions)).toEqual([
      [['service', 'FunctionName', 'step', 'outcome']],
      [['service', 'FunctionName', 'step', 'outcome']],
    ]);
    expect(documents.map((d) => d.FunctionName)).toEqual([
      'orders-db-Function-AAA',
      'billing-db-Function-BBB',
    ]);
    expect(documents[0]).toMatchObject({ service: 'mysql-single-user', StepOutcome: 1 });
  });

  it('Degraded: service, FunctionName, Feature', async () => {
    const [document] = await emitted(() =>
      inStack('orders-db-Function-AAA').degraded?.('MysqlRetainCurrentPassword'),
    );
    expect(document?._aws.CloudWatchMetrics[0]?.Dimensions).toEqual([
      ['service', 'FunctionName', 'Feature'],
    ]);
    expect(document).toMatchObject({
      service: 'mysql-single-user',
      FunctionName: 'orders-db-Function-AAA',
      Feature: 'MysqlRetainCurrentPassword',
      Degraded: 1,
    });
  });
});

describe('a degraded feature reaches the metric', () => {
  it('sign-in hands the hook to the database', async () => {
    const seen: unknown[] = [];
    const db = {
      connect: async (_login: unknown, options: unknown) => {
        seen.push(options);
        return {};
      },
    } as unknown as Database<object>;
    const hook = (_feature: string) => {};
    await connectWithRetry(
      db,
      { host: 'h', port: 1, user: 'u', password: 'p', database: '', tls: 'disable' },
      { logger: silentLogger, remainingMs: () => 5_000, degraded: hook },
    );
    expect(seen).toEqual([expect.objectContaining({ degraded: hook })]);
  });
});
