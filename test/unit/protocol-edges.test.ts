/**
 * Edges of the protocol that mutation testing found unpinned (issue 14, second pass): what a
 * strategy's debug line carries, which other secrets are redacted whole, the metric of a
 * non-Error failure, another secret's tags, the optional metrics seam, what finishSecret reads,
 * and how often a step asks Secrets Manager for a version.
 */
import type {
  DescribeSecretRequest,
  DescribeSecretResponse,
  GetSecretValueRequest,
  UpdateSecretVersionStageRequest,
} from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { StageError } from '../../shared/common/errors.js';
import { createRotationHandler } from '../../shared/rotation/handler.js';
import type { StepMetrics, StepOutcome } from '../../shared/rotation/metrics.js';
import type { Strategy } from '../../shared/rotation/types.js';
import {
  FakeSecretsManager,
  mockSecretsManager,
  serviceError,
} from '../support/fake-secrets-manager.js';
import { LogRecorder } from '../support/log-recorder.js';
import { probing, type Value } from '../support/probing-strategy.js';
import { failure, type Step } from '../support/rotation-driver.js';

const fake = new FakeSecretsManager();
const stub = mockSecretsManager(fake);
const context = { getRemainingTimeInMillis: () => 30_000 };
const real = {
  getSecretValue: fake.getSecretValue.bind(fake),
  describeSecret: fake.describeSecret.bind(fake),
  updateSecretVersionStage: fake.updateSecretVersionStage.bind(fake),
};
let logs: LogRecorder;

afterAll(() => stub.restore());
beforeEach(() => {
  fake.reset();
  Object.assign(fake, real);
  stub.resetHistory();
  logs = new LogRecorder();
});

const run = (
  strategy: Strategy<Value>,
  secretId: string,
  token: string,
  step: Step,
  metrics?: StepMetrics,
) =>
  createRotationHandler({ strategy, logger: logs, env: {}, ...(metrics ? { metrics } : {}) })(
    { Step: step, SecretId: fake.arnOf(secretId), ClientRequestToken: token },
    context,
  );
const newSecret = () => {
  const secretId = fake.createSecret({ name: 'app', secretString: '{"n":1}' });
  return { secretId, token: fake.startRotation(secretId) };
};
const reads = () => fake.callsOf<GetSecretValueRequest>('GetSecretValue');

describe("a strategy's log lines", () => {
  it('carry the step, the secret and the token at debug level too', async () => {
    const { secretId, token } = newSecret();

    await run(
      probing(async (step) => step.logger.debug('probing', { detail: 1 })),
      secretId,
      token,
      'createSecret',
    );

    expect(logs.lines.find((line) => line.message === 'probing')).toEqual({
      level: 'debug',
      message: 'probing',
      attributes: {
        step: 'createSecret',
        secretId: fake.arnOf(secretId),
        token,
        detail: 1,
      },
    });
  });
});

describe('another secret that is not a JSON object', () => {
  it.each([
    ['a JSON number', '4815162342'],
    ['a JSON string', '"quoted-token-value-9"'],
  ])('is never logged whole when it is %s', async (_, secretString) => {
    const other = fake.createSecret({ name: 'token', secretString });
    const { secretId, token } = newSecret();

    await run(
      probing(async (step) => {
        step.logger.info('read', { value: (await step.otherSecret(other)).secretString });
      }),
      secretId,
      token,
      'createSecret',
    );

    expect(logs.text()).not.toContain(secretString.replaceAll('"', ''));
  });
});

describe('metrics', () => {
  it('records the error name "unknown" for a failure that is not an Error', async () => {
    const { secretId, token } = newSecret();
    const recorded: [Step, StepOutcome, string | undefined][] = [];
    const metrics: StepMetrics = {
      record: (step, outcome, _ms, errorName) => recorded.push([step, outcome, errorName]),
    };

    const thrown = await run(
      probing(async () => {
        throw 'a plain string';
      }),
      secretId,
      token,
      'createSecret',
      metrics,
    ).then(
      () => 'resolved',
      (error: unknown) => error,
    );

    expect(thrown).toBe('a plain string');
    expect(recorded).toEqual([['createSecret', 'failure', 'unknown']]);
  });

  it('lets a step report a degraded feature when the metrics have no degraded()', async () => {
    const { secretId, token } = newSecret();
    const recorded: StepOutcome[] = [];

    await run(
      probing(async (step) => step.degraded('grace-period')),
      secretId,
      token,
      'createSecret',
      { record: (_step, outcome) => recorded.push(outcome) },
    );

    expect(recorded).toEqual(['success']);
  });

  it('lets a step report a degraded feature when the handler has no metrics at all', async () => {
    const { secretId, token } = newSecret();

    await run(
      probing(async (step) => step.degraded('grace-period')),
      secretId,
      token,
      'createSecret',
    );

    expect(fake.valueOf(secretId, 'AWSPENDING')).toBe('{"n":2}');
  });
});

describe("another secret's tags", () => {
  const tagsOf = async (other: string) => {
    const { secretId, token } = newSecret();
    let tags: Record<string, string> | undefined;
    await run(
      probing(async (step) => {
        tags = await (await step.otherSecret(other)).tags();
      }),
      secretId,
      token,
      'createSecret',
    );
    return tags;
  };

  it('are empty for a secret without tags', async () => {
    const other = fake.createSecret({ name: 'master', secretString: '{"password":"pw-123456"}' });
    expect(await tagsOf(other)).toEqual({});
  });

  it('read a tag without a value as "", and one without a key under ""', async () => {
    const other = fake.createSecret({
      name: 'master',
      secretString: '{"password":"pw-123456"}',
      tags: [
        { Key: 'team' },
        { Value: 'orphan' },
        { Key: 'aws:rds:primaryDBInstanceArn', Value: 'arn:x' },
      ],
    });
    expect(await tagsOf(other)).toEqual({
      team: '',
      '': 'orphan',
      'aws:rds:primaryDBInstanceArn': 'arn:x',
    });
  });
});

describe('finishSecret', () => {
  const pendingStored = () => {
    const { secretId, token } = newSecret();
    fake.putSecretValue({
      SecretId: secretId,
      ClientRequestToken: token,
      SecretString: '{"n":2}',
      VersionStages: ['AWSPENDING'],
    });
    return { secretId, token, holder: fake.versionOf(secretId) as string };
  };

  it('of a strategy without afterFinish reads only AWSPENDING: an unreadable AWSPREVIOUS does not stop the move', async () => {
    const { secretId, token } = pendingStored();
    fake.getSecretValue = (input: GetSecretValueRequest) => {
      if (input.VersionStage !== 'AWSPENDING') {
        throw serviceError('AccessDeniedException', 'kms:Decrypt denied on the old version');
      }
      return real.getSecretValue(input);
    };

    await run(probing(), secretId, token, 'finishSecret');

    expect(fake.versionOf(secretId)).toBe(token);
    expect(reads().map((input) => input.VersionStage)).toEqual(['AWSPENDING']);
  });

  it('gives AWSCURRENT to the token of a secret that has no AWSCURRENT version, removing it from nothing', async () => {
    // A secret created without a value, whose first value an operator stored as AWSPENDING.
    const secretId = fake.createSecret({ name: 'empty' });
    const token = fake.startRotation(secretId);
    fake.putSecretValue({
      SecretId: secretId,
      ClientRequestToken: token,
      SecretString: '{"n":1}',
      VersionStages: ['AWSPENDING'],
    });

    await run(probing(), secretId, token, 'finishSecret');

    expect(fake.versionOf(secretId)).toBe(token);
    const moves = fake.callsOf<UpdateSecretVersionStageRequest>('UpdateSecretVersionStage');
    expect(moves).toHaveLength(1);
    expect(moves[0]?.RemoveFromVersionId).toBeUndefined();
  });

  it.each([
    ['the token lost its labels (an operator cancelled the rotation)', 'token'],
    ['the fresh DescribeSecret lists no versions at all', 'all'],
  ])('that lost a label race fails with the service error when %s', async (_, gone) => {
    const { secretId, token, holder } = pendingStored();
    let raced = false;
    fake.updateSecretVersionStage = () => {
      raced = true;
      fake.removeLabel(secretId, 'AWSPENDING');
      throw serviceError('InvalidParameterException', 'the label is on another version');
    };
    fake.describeSecret = (input: DescribeSecretRequest): DescribeSecretResponse => {
      const out = real.describeSecret(input);
      if (raced && gone === 'all') delete out.VersionIdsToStages;
      return out;
    };

    const thrown = await failure(run(probing(), secretId, token, 'finishSecret'));

    expect(thrown?.name).toBe('InvalidParameterException');
    expect(fake.versionOf(secretId)).toBe(holder);
  });
});

describe('reads of Secrets Manager', () => {
  it('asks for a version without a value at most once per step (testSecret before createSecret)', async () => {
    const { secretId, token } = newSecret();

    const thrown = await failure(run(probing(), secretId, token, 'testSecret'));

    expect(thrown).toBeInstanceOf(StageError);
    expect(reads().filter((input) => input.VersionStage === 'AWSPENDING')).toHaveLength(1);
  });

  it('never asks for AWSPREVIOUS when no version holds it', async () => {
    const { secretId, token } = newSecret();
    let previous: Value | undefined | null = null;

    await run(
      probing(async (step) => {
        previous = await step.previous();
      }),
      secretId,
      token,
      'createSecret',
    );

    expect(previous).toBeUndefined();
    expect(reads().map((input) => input.VersionStage)).not.toContain('AWSPREVIOUS');
  });
});
