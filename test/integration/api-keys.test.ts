import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AuthenticationError } from '../../shared/common/errors.js';
import type { KeyProvider } from '../../shared/providers/types.js';
import { apiKeys } from '../../shared/strategies/api-keys.js';
import {
  errorText,
  leakedSecrets,
  ownPrefix,
  type ProviderFixture,
  randomSuffix,
  sendGridFixture,
  stripeFixture,
  twilioFixture,
} from '../support/api-key-fixtures.js';
import { serviceError } from '../support/fake-secrets-manager.js';
import { checkTraffic, contractsOf } from '../support/openapi-contract.js';
import { RotationHarness } from '../support/rotation-harness.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A provider whose Lambda dies right after the key is minted, before anything is stored. */
function crashingAfterMint(provider: KeyProvider<unknown, unknown>): KeyProvider<unknown, unknown> {
  return {
    ...provider,
    async mint(admin, request, call) {
      await provider.mint(admin, request, call);
      throw new Error('simulated crash: the Lambda died after the provider minted the key');
    },
  };
}

describe.each([
  [
    'SendGrid',
    sendGridFixture,
    /SendGrid allows 100 API keys per account and this account has 100/,
  ],
  [
    'Stripe',
    () => stripeFixture('live'),
    /as many API keys as Stripe allows \(api_key_limit_reached\)/,
  ],
  ['Twilio', twilioFixture, /Twilio failed: .*Maximum number of API keys reached/],
] as const)('%s API key rotation', (_, makeFixture, keyLimitMessage) => {
  const fixture: ProviderFixture = makeFixture();
  const harness = new RotationHarness();
  const fake = fixture.fake;

  beforeAll(async () => {
    await fake.start();
    await harness.start();
  });
  afterEach(() => fake.resetSwitches());
  afterAll(async () => {
    await harness.stop();
    await fake.stop();
  });

  const handler = (env: Record<string, string> = {}, provider = fixture.provider()) =>
    harness.handler(apiKeys(provider, { env: { KEY_PROPAGATION_TIMEOUT_SECONDS: '5', ...env } }));

  /** A stored stage, parsed. */
  const value = (secretId: string, stage = 'AWSCURRENT') =>
    JSON.parse(harness.fake.valueOf(secretId, stage) ?? 'null') as Record<string, unknown> & {
      key: string;
      key_id: string;
    };

  /** Live keys named by us for this secret. */
  const ourLiveKeys = (secretId: string) =>
    fake.liveKeys().filter((key) => key.name.startsWith(ownPrefix(harness.fake.arnOf(secretId))));

  /** Every key secret and managing secret, which must never show in a log line or an error. */
  const expectNoLeaks = (...errors: unknown[]) => {
    const texts = [harness.logs.text(), ...errors.map(errorText)];
    expect(leakedSecrets(texts, [...fake.allSecrets(), ...fixture.otherSecrets()])).toEqual([]);
    // Providers quote the start and end of a refused key ("rk_live_********abcd").
    expect(texts.join('\n')).not.toMatch(/\*{8}[A-Za-z0-9]{4}/);
  };

  it('rotates three times in a row: after each, exactly AWSCURRENT and AWSPREVIOUS are live, older keys of ours are revoked, and the first key (made by a person) is left live with a warning', async () => {
    // Prepare: the first key, a bystander, and a key another secret's rotation minted.
    const { secretId, firstKeyId } = fixture.provision(harness, { note: 'kept as is' });
    const bystander = fake.seedKey(`ci-deploy-${randomSuffix()}`);
    const otherSecrets = fake.seedKey(
      `${ownPrefix(`arn:aws:secretsmanager:us-east-1:123456789012:secret:other-${randomSuffix()}`)}${randomUUID()}`,
    );
    const rotate = handler();
    const recorded = new Set([firstKeyId]);

    for (let round = 1; round <= 3; round++) {
      const before = value(secretId);

      // Act
      const result = await harness.rotate(rotate, secretId);

      // Assess
      expect(result.completed, `round ${round}: ${String(result.error)}`).toBe(true);
      const current = value(secretId);
      const previous = value(secretId, 'AWSPREVIOUS');
      recorded.add(current.key_id);
      expect(previous.key_id).toBe(before.key_id);
      const live = fake
        .liveKeys()
        .filter((key) => recorded.has(key.id) || ourLiveKeys(secretId).includes(key))
        .map((key) => key.id)
        .filter((id) => id !== firstKeyId);
      expect(live.sort()).toEqual(
        [current.key_id, previous.key_id].filter((id) => id !== firstKeyId).sort(),
      );
      expect(fake.accepts(current.key_id)).toBe(true);
      expect(fake.accepts(previous.key_id)).toBe(true);
      expect(current.note).toBe('kept as is');
    }
    expect(fake.accepts(firstKeyId)).toBe(true);
    expect(
      harness.logs.lines.find(
        (entry) =>
          entry.message.startsWith('the superseded key was not minted by this function') &&
          entry.attributes.keyId === firstKeyId,
      ),
    ).toBeDefined();
    expect(fake.accepts(bystander.id)).toBe(true);
    expect(fake.accepts(otherSecrets.id)).toBe(true);
    expectNoLeaks();
  });

  it('leaves no orphan when the answer to a mint is lost', async () => {
    // Prepare: the provider mints the key, then the connection drops before the answer.
    const { secretId, firstKeyId } = fixture.provision(harness);
    const rotate = handler();
    fake.failNext('create', 'drop-after-effect');

    // Act: Stripe's create carries an Idempotency-Key, so the HTTP retry gets the same key back;
    // elsewhere the step fails, and the service's retry sweeps the key nobody recorded.
    const first = await harness.rotate(rotate, secretId);
    const orphans = ourLiveKeys(secretId);
    const final = first.completed ? first : await harness.retry(rotate, secretId, first.token);

    // Assess
    if (fixture.name === 'Stripe') {
      expect(first.completed, String(first.error)).toBe(true);
    } else {
      expect(first.failedStep).toBe('createSecret');
      expect(orphans).toHaveLength(1);
      expect(fake.key(orphans[0]?.id ?? '')?.revokedAt).toBeDefined();
    }
    expect(final.completed, String(final.error)).toBe(true);
    expect(ourLiveKeys(secretId).map((key) => key.id)).toEqual([value(secretId).key_id]);
    expect(fake.accepts(firstKeyId)).toBe(true);
    expectNoLeaks(first.error);
  });

  it('revokes the key of a Lambda that died right after minting, once the service retries', async () => {
    // Prepare
    const { secretId } = fixture.provision(harness);

    // Act: the first attempt dies after minting; the service retries with the same token.
    const crashed = await harness.rotate(
      handler({}, crashingAfterMint(fixture.provider())),
      secretId,
    );
    const orphans = ourLiveKeys(secretId);
    const retried = await harness.retry(handler(), secretId, crashed.token);

    // Assess
    expect(crashed.failedStep).toBe('createSecret');
    expect(orphans).toHaveLength(1);
    expect(retried.completed, String(retried.error)).toBe(true);
    expect(ourLiveKeys(secretId).map((key) => key.id)).toEqual([value(secretId).key_id]);
    expect(harness.logs.messages()).toContain(
      'revoked a key of ours that no version of the secret records',
    );
  });

  it('fails testSecret when the provider refuses the new key (401), and AWSCURRENT keeps working', async () => {
    // Prepare: new keys never become valid within the propagation wait.
    const { secretId, firstKeyId } = fixture.provision(harness);
    const currentVersion = harness.fake.versionOf(secretId);
    fake.propagationDelayMs = 10 * 60_000;

    // Act
    const result = await harness.rotate(
      handler({ KEY_PROPAGATION_TIMEOUT_SECONDS: '1' }),
      secretId,
    );

    // Assess
    expect(result.failedStep).toBe('testSecret');
    expect(result.error).toBeInstanceOf(AuthenticationError);
    expect((result.error as Error).message).toMatch(
      /^testSecret of secret .*: \w+ refuses the AWSPENDING key \S+: still refused after \d+ attempts within the 1 s propagation wait/,
    );
    expect(harness.fake.versionOf(secretId)).toBe(currentVersion);
    expect(value(secretId).key_id).toBe(firstKeyId);
    expect(fake.accepts(firstKeyId)).toBe(true);
    expectNoLeaks(result.error);
  });

  it('waits for a new key to propagate before testSecret passes', async () => {
    // Prepare
    const { secretId } = fixture.provision(harness);
    fake.propagationDelayMs = 700;

    // Act
    const result = await harness.rotate(handler(), secretId);

    // Assess
    expect(result.completed, String(result.error)).toBe(true);
    expect(harness.logs.messages()).toContain(
      'AWSPENDING key not accepted yet; waiting for it to propagate',
    );
    expect(fake.accepts(value(secretId).key_id)).toBe(true);
  });

  it('waits out a 429 as long as its reset header asks, then completes', async () => {
    // Prepare
    const { secretId } = fixture.provision(harness);
    const from = fake.requests.length;
    fake.rateLimitNext(1, { resetSeconds: 1 });

    // Act
    const result = await harness.rotate(handler(), secretId);

    // Assess
    expect(result.completed, String(result.error)).toBe(true);
    const requests = fake.requests.slice(from);
    const limited = requests.findIndex((request) => request.status === 429);
    expect(limited).toBeGreaterThanOrEqual(0);
    const next = requests[limited + 1];
    expect(next?.route).toBe(requests[limited]?.route);
    expect((next?.at ?? 0) - (requests[limited]?.at ?? 0)).toBeGreaterThanOrEqual(900);
  });

  it('reports the account key limit clearly, and AWSCURRENT keeps working', async () => {
    // Prepare: the account is full.
    const { secretId, firstKeyId } = fixture.provision(harness);
    const fillers = [];
    while (fake.liveKeys().length < 100) fillers.push(fake.seedKey(`filler-${randomSuffix()}`));
    fake.maxKeys = 100;

    try {
      // Act
      const result = await harness.rotate(handler(), secretId);

      // Assess
      expect(result.failedStep).toBe('createSecret');
      expect((result.error as Error).message).toMatch(keyLimitMessage);
      expect(harness.fake.valueOf(secretId, 'AWSPENDING')).toBeUndefined();
      expect(value(secretId).key_id).toBe(firstKeyId);
      expect(fake.accepts(firstKeyId)).toBe(true);
    } finally {
      for (const filler of fillers) fake.revokeInConsole(filler.id);
    }
  });

  it('reclaims the slot of a key an abandoned rotation minted, so the key limit is not hit', async () => {
    // Prepare: a rotation died after minting a key; the operator cancelled it.
    const { secretId } = fixture.provision(harness);
    const abandoned = await harness.rotate(
      handler({}, crashingAfterMint(fixture.provider())),
      secretId,
    );
    harness.fake.removeLabel(secretId, 'AWSPENDING');
    const [orphan] = ourLiveKeys(secretId);
    const fillers = [];
    while (fake.liveKeys().length < 100) fillers.push(fake.seedKey(`filler-${randomSuffix()}`));
    fake.maxKeys = 100;

    try {
      // Act: a new rotation, with a new token.
      const result = await harness.rotate(handler(), secretId);

      // Assess
      expect(abandoned.failedStep).toBe('createSecret');
      expect(result.completed, String(result.error)).toBe(true);
      expect(fake.key(orphan?.id ?? '')?.revokedAt).toBeDefined();
    } finally {
      for (const filler of fillers) fake.revokeInConsole(filler.id);
    }
  });

  it('revokes the demoted key at the end of the rotation with REVOKE_DEMOTED_KEY=immediately', async () => {
    // Prepare: AWSCURRENT holds a key the function minted; revoked keys keep answering for a
    // while, as at real providers.
    const { secretId } = fixture.provision(harness);
    await harness.rotate(handler(), secretId);
    const demoted = value(secretId).key_id;
    fake.revocationLagMs = 1_500;

    // Act
    const result = await harness.rotate(handler({ REVOKE_DEMOTED_KEY: 'immediately' }), secretId);
    const answersDuringLag = fake.accepts(demoted);
    await sleep(1_600);

    // Assess
    expect(result.completed, String(result.error)).toBe(true);
    expect(fake.key(demoted)?.revokedAt).toBeDefined();
    expect(answersDuringLag).toBe(true);
    expect(fake.accepts(demoted)).toBe(false);
    expect(fake.accepts(value(secretId).key_id)).toBe(true);
  });

  it('revokes the new key when PutSecretValue fails, and says so in the error', async () => {
    // Prepare
    const { secretId } = fixture.provision(harness);
    harness.fake.failNext(
      'PutSecretValue',
      serviceError('ValidationException', 'The secret value is rejected.'),
    );

    // Act
    const result = await harness.rotate(handler(), secretId);

    // Assess
    expect(result.failedStep).toBe('createSecret');
    expect((result.error as Error).message).toMatch(
      /^createSecret of secret .*: storing the pending value failed, so the new credential was discarded: The secret value is rejected\.$/,
    );
    expect(harness.logs.messages()).toContain('revoked the new key, which was not stored');
    expect(ourLiveKeys(secretId)).toEqual([]);
    expectNoLeaks(result.error);
  });

  it('stores one key when two createSecret invocations overlap, and revokes the other', async () => {
    // Prepare
    const { secretId } = fixture.provision(harness);
    const token = harness.fake.startRotation(secretId);
    const invoke = harness.invoker(handler());
    const event = (step: 'createSecret' | 'setSecret') => ({
      Step: step,
      SecretId: harness.fake.arnOf(secretId),
      ClientRequestToken: token,
    });

    // Act: the service delivers createSecret twice at once, then goes on.
    const outcomes = await Promise.allSettled([
      invoke(event('createSecret')),
      invoke(event('createSecret')),
    ]);
    const result = await harness.retry(handler(), secretId, token);

    // Assess
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'fulfilled']);
    expect(result.completed, String(result.error)).toBe(true);
    expect(ourLiveKeys(secretId).map((key) => key.id)).toEqual([value(secretId).key_id]);
    expect(fake.accepts(value(secretId).key_id)).toBe(true);
  });

  it('counts a superseded key that someone already deleted as gone, and completes', async () => {
    // Prepare: after two rotations, a person deletes the demoted key (ours) in the console.
    const { secretId } = fixture.provision(harness);
    const rotate = handler();
    await harness.rotate(rotate, secretId);
    const deleted = value(secretId).key_id;
    await harness.rotate(rotate, secretId);
    fake.revokeInConsole(deleted);
    const from = fake.requests.length;

    // Act: the next rotation would revoke that same key.
    const result = await harness.rotate(rotate, secretId);

    // Assess: the account no longer lists it, so nothing is sent to revoke it.
    expect(result.completed, String(result.error)).toBe(true);
    const line = harness.logs.lines.find(
      (entry) =>
        entry.message ===
          'the superseded key is not a live key of the account; nothing to revoke' &&
        entry.attributes.keyId === deleted,
    );
    expect(line?.attributes.outcome).toBe('not-found');
    expect(fake.requests.slice(from).filter((request) => request.path.includes(deleted))).toEqual(
      [],
    );
  });

  it('keeps every key out of every log line and error, through failures and successes', async () => {
    // Prepare: a failed rotation (new key refused), then a successful retry, then another.
    const { secretId } = fixture.provision(harness);
    fake.propagationDelayMs = 10 * 60_000;
    const failed = await harness.rotate(
      handler({ KEY_PROPAGATION_TIMEOUT_SECONDS: '1' }),
      secretId,
    );
    fake.propagationDelayMs = 0;

    // Act
    const retried = await harness.retry(handler(), secretId, failed.token);
    const next = await harness.rotate(handler(), secretId);

    // Assess
    expect(failed.failedStep).toBe('testSecret');
    expect(retried.completed && next.completed).toBe(true);
    expect(harness.logs.lines.length).toBeGreaterThan(10);
    expectNoLeaks(failed.error);
  });

  // Last: it reads the traffic of every test above.
  it('sent, in every scenario above, only requests of the published API description, and the fake answered as it describes', async () => {
    // Act
    const traffic = checkTraffic(fake.requests, await contractsOf(fixture.name as 'SendGrid'));

    // Assess: Stripe's /v2/iam calls included (its private-preview excerpt is pinned too).
    expect(traffic.unpinned).toEqual([]);
    expect(traffic.failures).toEqual([]);
    expect(traffic.statuses).toContain(200);
  });
});
