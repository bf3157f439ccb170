import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRotationHandler } from '../../shared/rotation/handler.js';
import { apiKeys } from '../../shared/strategies/api-keys.js';
import {
  ownPrefix,
  type ProviderFixture,
  sendGridFixture,
  stripeFixture,
  twilioFixture,
} from '../support/api-key-fixtures.js';
import {
  FaultInjector,
  FaultMode,
  faultySecretsManagerClient,
} from '../support/fault-injection.js';
import {
  describeOverlappingSteps,
  type FaultReport,
  type FaultTarget,
  runFaultMatrix,
} from '../support/fault-runner.js';
import { RotationHarness } from '../support/rotation-harness.js';

/**
 * Whatever call an API-key rotation dies at, and however often it is retried, the AWSCURRENT key
 * keeps working, the retry converges, and no key of ours is left that no version records.
 * Effects counted: every Secrets Manager call (real SDK over HTTP) and every provider HTTP call.
 */
describe.each([
  ['SendGrid', sendGridFixture],
  ['Stripe', () => stripeFixture('live')],
  ['Twilio', twilioFixture],
] as const)('%s API keys under injected faults', (name, makeFixture) => {
  const fixture: ProviderFixture = makeFixture();
  const harness = new RotationHarness();
  const injector = new FaultInjector();
  const reports: FaultReport[] = [];
  const realFetch = globalThis.fetch;

  beforeAll(async () => {
    await fixture.fake.start();
    await harness.start();
    const base = fixture.fake.baseUrl;
    globalThis.fetch = ((input: string | URL | Request, init?: RequestInit) => {
      const url = String(input instanceof Request ? input.url : input);
      if (!url.startsWith(base)) return realFetch(input, init);
      const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
      const path = new URL(url).pathname.replace(/\/[A-Za-z]{2,4}_?[A-Za-z0-9]{10,}/g, '/{id}');
      return injector.effect(`${name}.${method} ${path}`, () => realFetch(input, init));
    }) as typeof fetch;
  });

  afterAll(async () => {
    globalThis.fetch = realFetch;
    await harness.stop();
    await fixture.fake.stop();
    console.info(
      [
        `fault injection (${name}):`,
        ...reports.map(
          (r) =>
            `  ${r.target.padEnd(20)} ${r.mode.padEnd(13)} ${r.held}/${r.points} injection points held`,
        ),
      ].join('\n'),
    );
  });

  const keyOf = (secretId: string, stage: string) => {
    const text = harness.fake.valueOf(secretId, stage);
    return text === undefined ? undefined : (JSON.parse(text) as { key_id: string }).key_id;
  };

  const target = (): FaultTarget => ({
    name: `${name.toLowerCase()}-api-key`,
    handler: createRotationHandler({
      strategy: apiKeys(fixture.provider(), { env: { KEY_PROPAGATION_TIMEOUT_SECONDS: '2' } }),
      client: faultySecretsManagerClient(harness.endpoint, injector),
      env: {},
    }),
    provision: async () => fixture.provision(harness).secretId,
    async holdsDuring(secretId) {
      const current = keyOf(secretId, 'AWSCURRENT');
      return current && fixture.fake.accepts(current)
        ? undefined
        : 'the AWSCURRENT key does not work';
    },
    async holdsAfter(secretId) {
      const problems: string[] = [];
      const current = keyOf(secretId, 'AWSCURRENT');
      if (!current || !fixture.fake.accepts(current))
        problems.push('the AWSCURRENT key does not work');
      const recorded = new Set([current, keyOf(secretId, 'AWSPREVIOUS')]);
      const prefix = ownPrefix(harness.fake.arnOf(secretId));
      const orphans = fixture.fake
        .liveKeys()
        .filter((key) => key.name.startsWith(prefix) && !recorded.has(key.id));
      if (orphans.length > 0) problems.push(`${orphans.length} orphan keys of ours are live`);
      return problems;
    },
    // Nothing stays open: every provider call is one fetch, ended with its invocation.
    killAbandoned: async () => {},
  });

  it.each([FaultMode.throwBefore, FaultMode.throwAfter, FaultMode.hang])(
    'a fault at any call (%s) keeps the AWSCURRENT key working, and the retry converges with no orphan',
    async (mode) => {
      const [report] = await runFaultMatrix(harness.fake, target(), injector, [mode]);
      reports.push(report as FaultReport);
      expect(report?.points).toBeGreaterThan(8);
      expect(report?.failures, report?.failures.join('; ')).toEqual([]);
    },
  );

  describeOverlappingSteps(harness.fake, injector, () => [target()]);
});
