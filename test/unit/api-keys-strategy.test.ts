/**
 * The API-key strategy itself, over the provider fakes (their real paths and error shapes, on
 * loopback) and the in-process Secrets Manager fake: its guards are no longer tested only end
 * to end. Each step runs in a new handler (a cold function) unless a test says otherwise.
 */
import type { GetSecretValueRequest } from '@aws-sdk/client-secrets-manager';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  ConfigurationError,
  InvalidSecretError,
  RotationError,
} from '../../shared/common/errors.js';
import type { KeyProvider } from '../../shared/providers/types.js';
import { createRotationHandler } from '../../shared/rotation/handler.js';
import {
  apiKeySettings,
  apiKeys,
  arnMatches,
  parseApiKeySecret,
} from '../../shared/strategies/api-keys.js';
import {
  allowing,
  ownPrefix,
  type ProviderFixture,
  randomSuffix,
  sendGridFixture,
  twilioFixture,
} from '../support/api-key-fixtures.js';
import {
  FakeSecretsManager,
  mockSecretsManager,
  serviceError,
} from '../support/fake-secrets-manager.js';
import { LogRecorder } from '../support/log-recorder.js';
import { failure, rotate, STEPS, type Step } from '../support/rotation-driver.js';
import type { RotationHarness } from '../support/rotation-harness.js';

const fake = new FakeSecretsManager();
const stub = mockSecretsManager(fake);
const realGetSecretValue = fake.getSecretValue.bind(fake);
let logs: LogRecorder;
/** The fixtures only use the harness's fake Secrets Manager. */
const harness = { fake } as unknown as RotationHarness;

const sendgrid = sendGridFixture();
const twilio = twilioFixture();
beforeAll(async () => {
  await sendgrid.fake.start();
  await twilio.fake.start();
});
afterAll(async () => {
  stub.restore();
  await sendgrid.fake.stop();
  await twilio.fake.stop();
});
beforeEach(() => {
  fake.reset();
  fake.getSecretValue = realGetSecretValue;
  stub.resetHistory();
  logs = new LogRecorder();
});
afterEach(() => {
  sendgrid.fake.resetSwitches();
  twilio.fake.resetSwitches();
});

type Env = Record<string, string>;
const context = { getRemainingTimeInMillis: () => 30_000 };

/** One invocation of a new handler (a cold function). */
const invoker =
  (fixture: ProviderFixture, env: Env = {}, provider = fixture.provider()) =>
  (event: object) =>
    createRotationHandler({
      strategy: apiKeys(provider, { env: { KEY_PROPAGATION_TIMEOUT_SECONDS: '2', ...env } }),
      logger: logs,
      env: {},
    })(event, context);

const rotation = (fixture: ProviderFixture, secretId: string, env: Env = {}, stopAfter?: Step) =>
  rotate({ fake, secretId, invoke: invoker(fixture, env), ...(stopAfter ? { stopAfter } : {}) });

const step = (fixture: ProviderFixture, secretId: string, token: string, name: Step, env?: Env) =>
  invoker(fixture, env)({ Step: name, SecretId: fake.arnOf(secretId), ClientRequestToken: token });

const value = (secretId: string, stage = 'AWSCURRENT') =>
  JSON.parse(fake.valueOf(secretId, stage) ?? 'null') as Record<string, unknown> & {
    key: string;
    key_id: string;
  };

/** Keys named by us for this secret that the provider would accept now. */
const ourLiveKeys = (fixture: ProviderFixture, secretId: string) =>
  fixture.fake
    .liveKeys()
    .filter((key) => key.name.startsWith(ownPrefix(fake.arnOf(secretId))))
    .map((key) => key.id)
    .sort();

/** A version written by hand (anyone with PutSecretValue): `value` becomes AWSCURRENT. */
function writeCurrent(secretId: string, secretString: string) {
  const from = fake.versionOf(secretId, 'AWSCURRENT') as string;
  const token = fake.startRotation(secretId);
  fake.putSecretValue({
    SecretId: secretId,
    ClientRequestToken: token,
    SecretString: secretString,
    VersionStages: ['AWSPENDING'],
  });
  fake.updateSecretVersionStage({
    SecretId: secretId,
    VersionStage: 'AWSCURRENT',
    MoveToVersionId: token,
    RemoveFromVersionId: from,
  });
}

describe('API-key rotation, step by step on cold functions', () => {
  it('keeps exactly AWSCURRENT and AWSPREVIOUS live after each rotation, revokes older keys of ours, and leaves the first key (made by a person) live with a warning', async () => {
    const { secretId, firstKeyId } = sendgrid.provision(harness, { note: 'kept' });
    const bystander = sendgrid.fake.seedKey(`ci-deploy-${randomSuffix()}`);

    for (let round = 1; round <= 3; round++) {
      const before = value(secretId);
      const result = await rotation(sendgrid, secretId);
      expect(result.completed, `round ${round}: ${String(result.error)}`).toBe(true);
      const current = value(secretId);
      expect(value(secretId, 'AWSPREVIOUS').key_id).toBe(before.key_id);
      expect(current.note).toBe('kept');
      expect(ourLiveKeys(sendgrid, secretId)).toEqual(
        [current.key_id, before.key_id].filter((id) => id !== firstKeyId).sort(),
      );
    }
    expect(sendgrid.fake.accepts(firstKeyId)).toBe(true);
    expect(sendgrid.fake.accepts(bystander.id)).toBe(true);
    expect(
      logs.lines.filter(
        (line) =>
          line.level === 'warn' &&
          line.message.startsWith('the superseded key was not minted by this function') &&
          line.attributes.keyId === firstKeyId,
      ),
    ).toHaveLength(1);
  });

  it('with REVOKE_DEMOTED_KEY=immediately, only AWSCURRENT is live after the rotation', async () => {
    const { secretId } = sendgrid.provision(harness);
    await rotation(sendgrid, secretId);
    const demoted = value(secretId).key_id;

    const result = await rotation(sendgrid, secretId, { REVOKE_DEMOTED_KEY: 'immediately' });

    expect(result.completed, String(result.error)).toBe(true);
    expect(sendgrid.fake.accepts(demoted)).toBe(false);
    expect(ourLiveKeys(sendgrid, secretId)).toEqual([value(secretId).key_id]);
  });

  it('never revokes the key that just lost AWSCURRENT when AWSPREVIOUS records the same key (default mode)', async () => {
    // Prepare: a key of ours is AWSCURRENT; someone rewrote the secret, so AWSPREVIOUS and
    // AWSCURRENT record the same key.
    const { secretId } = sendgrid.provision(harness);
    await rotation(sendgrid, secretId);
    const ours = fake.valueOf(secretId) as string;
    writeCurrent(secretId, ours);
    const demoted = value(secretId).key_id;
    expect(value(secretId, 'AWSPREVIOUS').key_id).toBe(demoted);

    const result = await rotation(sendgrid, secretId);

    expect(result.completed, String(result.error)).toBe(true);
    expect(sendgrid.fake.accepts(demoted)).toBe(true);
    expect(ourLiveKeys(sendgrid, secretId)).toEqual([demoted, value(secretId).key_id].sort());
  });

  it('a failed AWSPREVIOUS read in createSecret fails the step and revokes nothing', async () => {
    const { secretId } = sendgrid.provision(harness);
    await rotation(sendgrid, secretId);
    await rotation(sendgrid, secretId);
    const live = ourLiveKeys(sendgrid, secretId);
    expect(live).toHaveLength(2);
    fake.getSecretValue = (input: GetSecretValueRequest) => {
      if (input.VersionStage === 'AWSPREVIOUS') {
        throw serviceError('AccessDeniedException', 'not authorized');
      }
      return realGetSecretValue(input);
    };

    const result = await rotation(sendgrid, secretId);

    expect(result.failedStep).toBe('createSecret');
    expect((result.error as Error).name).toBe('AccessDeniedException');
    expect(ourLiveKeys(sendgrid, secretId)).toEqual(live);
  });

  it('revokes a key of ours that no version records (a crashed run), and no one else’s', async () => {
    const { secretId } = sendgrid.provision(harness);
    const arn = fake.arnOf(secretId);
    const orphan = sendgrid.fake.seedKey(`${ownPrefix(arn)}crashed-run`);
    const otherSecrets = sendgrid.fake.seedKey(`${ownPrefix(`${arn}x`)}their-run`);
    const bystander = sendgrid.fake.seedKey(`person-${randomSuffix()}`);

    const result = await rotation(sendgrid, secretId, {}, 'createSecret');

    expect(result.stepsRun).toEqual(['createSecret']);
    expect(sendgrid.fake.accepts(orphan.id)).toBe(false);
    expect(sendgrid.fake.accepts(otherSecrets.id)).toBe(true);
    expect(sendgrid.fake.accepts(bystander.id)).toBe(true);
    expect(ourLiveKeys(sendgrid, secretId)).toEqual([value(secretId, 'AWSPENDING').key_id]);
  });

  it("spares, in createSecret, a key named for this very token (an overlapping run's), and revokes it in setSecret once another value is stored", async () => {
    const { secretId } = sendgrid.provision(harness);
    const token = fake.startRotation(secretId);
    const inFlight = sendgrid.fake.seedKey(`${ownPrefix(fake.arnOf(secretId))}${token}`);

    await step(sendgrid, secretId, token, 'createSecret');
    const sparedInCreate = sendgrid.fake.accepts(inFlight.id);
    await step(sendgrid, secretId, token, 'setSecret');

    expect(sparedInCreate).toBe(true);
    expect(sendgrid.fake.accepts(inFlight.id)).toBe(false);
    expect(sendgrid.fake.accepts(value(secretId, 'AWSPENDING').key_id)).toBe(true);
  });

  it('does nothing the second time a step runs', async () => {
    const { secretId } = sendgrid.provision(harness);
    const token = fake.startRotation(secretId);
    for (const name of STEPS) {
      await step(sendgrid, secretId, token, name);
      await step(sendgrid, secretId, token, name);
    }
    expect(fake.versionOf(secretId)).toBe(token);
    expect(ourLiveKeys(sendgrid, secretId)).toEqual([value(secretId).key_id]);
  });

  it('revokes the new key when PutSecretValue fails before storing it, and fails the step', async () => {
    const { secretId } = sendgrid.provision(harness);
    fake.failNext('PutSecretValue', serviceError('InternalServiceError', 'boom', 'server'));

    const result = await rotation(sendgrid, secretId);

    expect(result.failedStep).toBe('createSecret');
    expect(String(result.error)).toMatch(/the new credential was discarded/);
    expect(ourLiveKeys(sendgrid, secretId)).toEqual([]);
  });

  it('revokes the new key when PutSecretValue fails and another value holds the token', async () => {
    // Prepare: an overlapping invocation stores its value while ours is being minted; then our
    // PutSecretValue fails with a service error (not ResourceExistsException).
    const { secretId } = sendgrid.provision(harness);
    const token = fake.startRotation(secretId);
    const provider = sendgrid.provider();
    const racing: KeyProvider<unknown, unknown> = {
      ...provider,
      async mint(admin, request, call) {
        const minted = await provider.mint(admin, request, call);
        fake.putSecretValue({
          SecretId: secretId,
          ClientRequestToken: token,
          SecretString: JSON.stringify({ ...value(secretId), key: 'other', key_id: 'other' }),
          VersionStages: ['AWSPENDING'],
        });
        fake.failNext('PutSecretValue', serviceError('InternalServiceError', 'boom', 'server'));
        return minted;
      },
    };

    const thrown = await failure(
      invoker(
        sendgrid,
        {},
        racing,
      )({ Step: 'createSecret', SecretId: fake.arnOf(secretId), ClientRequestToken: token }),
    );

    expect(thrown).toBeInstanceOf(RotationError);
    expect(thrown?.message).toMatch(/the new credential was discarded/);
    expect(ourLiveKeys(sendgrid, secretId)).toEqual([]);
    expect(value(secretId, 'AWSPENDING').key_id).toBe('other');
  });

  it('keeps the new key when PutSecretValue stored it but its answer was lost', async () => {
    const { secretId } = sendgrid.provision(harness);
    fake.failNext('PutSecretValue', serviceError('InternalServiceError', 'lost', 'server'), {
      afterEffect: true,
    });
    const token = fake.startRotation(secretId);

    const first = await failure(step(sendgrid, secretId, token, 'createSecret'));
    const result = await rotate({ fake, secretId, token, invoke: invoker(sendgrid) });

    expect(first?.name).toBe('InternalServiceError');
    expect(result.completed, String(result.error)).toBe(true);
    expect(ourLiveKeys(sendgrid, secretId)).toEqual([value(secretId).key_id]);
  });

  it('refuses a key id from the provider that could not be stored, and stores nothing', async () => {
    const { secretId } = sendgrid.provision(harness);
    const provider = sendgrid.provider();
    const badId: KeyProvider<unknown, unknown> = {
      ...provider,
      async mint(admin, request, call) {
        return { ...(await provider.mint(admin, request, call)), id: 'bad id/../x' };
      },
    };
    const token = fake.startRotation(secretId);
    const thrown = await failure(
      invoker(
        sendgrid,
        {},
        badId,
      )({ Step: 'createSecret', SecretId: fake.arnOf(secretId), ClientRequestToken: token }),
    );
    expect(thrown).toBeInstanceOf(RotationError);
    expect(fake.valueOfVersion(secretId, token)).toBeUndefined();
  });
});

describe('API-key setSecret guards', () => {
  function pendingBeside(
    fixture: ProviderFixture,
    secretId: string,
    change: (pending: Record<string, unknown>) => Record<string, unknown>,
  ) {
    const token = fake.startRotation(secretId);
    const minted = fixture.fake.seedKey(`${ownPrefix(fake.arnOf(secretId))}${token}`);
    fake.putSecretValue({
      SecretId: secretId,
      ClientRequestToken: token,
      SecretString: JSON.stringify(
        change({ ...value(secretId), key: minted.secret, key_id: minted.id }),
      ),
      VersionStages: ['AWSPENDING'],
    });
    return token;
  }

  it.each([
    ['adminarn', (p: Record<string, unknown>) => ({ ...p, adminarn: `${p.adminarn}-other` })],
    ['provider', (p: Record<string, unknown>) => ({ ...p, account_sid: `AC${'0'.repeat(32)}` })],
    ['key_id', (p: Record<string, unknown>) => p],
  ])(
    'refuses an AWSPENDING whose %s differs from what AWSCURRENT allows, and revokes nothing',
    async (field, change) => {
      const { secretId } = twilio.provision(harness);
      const current = value(secretId);
      const token = pendingBeside(twilio, secretId, (pending) =>
        field === 'key_id'
          ? { ...pending, key: current.key, key_id: current.key_id }
          : change(pending),
      );
      const liveBefore = twilio.fake.liveKeys().length;

      const thrown = await failure(step(twilio, secretId, token, 'setSecret'));

      expect(thrown).toBeInstanceOf(InvalidSecretError);
      expect((thrown as InvalidSecretError).field).toBe(field);
      expect(twilio.fake.liveKeys()).toHaveLength(liveBefore);
    },
  );
});

/** A Twilio secret and its managing secret; `admin` may depend on the secret's name. */
function twilioSecret(
  admin: Record<string, unknown> | ((name: string) => Record<string, unknown>),
) {
  const name = `twilio/${randomSuffix()}`;
  const adminArn = fake.createSecret({
    name: `api-key-admin/${randomSuffix()}`,
    secretString: JSON.stringify({
      account_sid: twilio.fake.accountSid,
      auth_token: twilio.fake.authToken,
      ...(typeof admin === 'function' ? admin(name) : admin),
    }),
  });
  const first = twilio.fake.seedKey(`sms-${randomSuffix()}`);
  return {
    name,
    secretId: fake.createSecret({
      name,
      secretString: JSON.stringify({
        provider: 'twilio',
        key: first.secret,
        key_id: first.id,
        account_sid: twilio.fake.accountSid,
        adminarn: adminArn,
      }),
    }),
  };
}

describe('API-key managing secrets', () => {
  it.each([
    ['lists no secrets', {}],
    ['lists other secrets only', allowing('twilio/someone-else')],
  ])(
    'a managing secret that %s is refused before any provider call, naming adminarn',
    async (_, admin) => {
      const { secretId } = twilioSecret(admin);
      const requests = twilio.fake.requests.length;

      const result = await rotation(twilio, secretId);

      expect(result.failedStep).toBe('createSecret');
      expect((result.error as InvalidSecretError).field).toBe('adminarn');
      expect(twilio.fake.requests.length).toBe(requests);
    },
  );

  it('a managing secret that lists this secret (by pattern) rotates it, and its token is never logged', async () => {
    const { secretId } = twilioSecret({
      allowedsecrets: ['arn:aws:secretsmanager:*:*:secret:twilio/*'],
    });

    const result = await rotation(twilio, secretId);

    expect(result.completed, String(result.error)).toBe(true);
    expect(logs.text()).not.toContain(twilio.fake.authToken);
  });

  it('a Twilio secret without adminarn fails createSecret naming adminarn (its keys cannot manage keys)', async () => {
    const first = twilio.fake.seedKey(`sms-${randomSuffix()}`);
    const secretId = fake.createSecret({
      name: `twilio/${randomSuffix()}`,
      secretString: JSON.stringify({
        provider: 'twilio',
        key: first.secret,
        key_id: first.id,
        account_sid: twilio.fake.accountSid,
      }),
    });
    const result = await rotation(twilio, secretId);
    expect((result.error as InvalidSecretError).field).toBe('adminarn');
  });
});

describe('API-key testSecret', () => {
  it('waits while a new key propagates, then passes', async () => {
    const { secretId } = sendgrid.provision(harness);
    sendgrid.fake.propagationDelayMs = 600;
    const result = await rotation(sendgrid, secretId);
    expect(result.completed, String(result.error)).toBe(true);
    expect(logs.messages()).toContain(
      'AWSPENDING key not accepted yet; waiting for it to propagate',
    );
  });

  it('fails naming KEY_PROPAGATION_TIMEOUT_SECONDS when the key is still refused after it, and AWSCURRENT stays', async () => {
    const { secretId } = sendgrid.provision(harness);
    const before = fake.versionOf(secretId);
    sendgrid.fake.propagationDelayMs = 60_000;

    const result = await rotation(sendgrid, secretId, { KEY_PROPAGATION_TIMEOUT_SECONDS: '1' });

    expect(result.failedStep).toBe('testSecret');
    expect(result.error).toBeInstanceOf(AuthenticationError);
    expect(String(result.error)).toMatch(
      /1 s propagation wait \(KEY_PROPAGATION_TIMEOUT_SECONDS\)/,
    );
    expect(fake.versionOf(secretId)).toBe(before);
  });

  it('stops waiting before the Lambda deadline', async () => {
    const { secretId } = sendgrid.provision(harness);
    sendgrid.fake.propagationDelayMs = 60_000;
    const token = fake.startRotation(secretId);
    await step(sendgrid, secretId, token, 'createSecret');
    const started = Date.now();
    const thrown = await failure(
      createRotationHandler({
        strategy: apiKeys(sendgrid.provider(), { env: { KEY_PROPAGATION_TIMEOUT_SECONDS: '60' } }),
        logger: logs,
        env: {},
        safetyMarginMs: 0,
      })(
        { Step: 'testSecret', SecretId: fake.arnOf(secretId), ClientRequestToken: token },
        { getRemainingTimeInMillis: () => 3_000 },
      ),
    );
    expect(thrown).toBeInstanceOf(AuthenticationError);
    expect(thrown?.message).toMatch(/the time left before the Lambda deadline/);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('tests AWSCURRENT when no pending value exists yet (RotateImmediately=false)', async () => {
    const { secretId, firstKeyId } = sendgrid.provision(harness);
    const token = fake.startRotation(secretId);
    await step(sendgrid, secretId, token, 'testSecret');
    expect(
      logs.lines.find((line) => line.message === 'AWSCURRENT key works')?.attributes.keyId,
    ).toBe(firstKeyId);
  });

  it('fails at once, without waiting, on an error that is not a refused key', async () => {
    const { secretId } = sendgrid.provision(harness);
    const token = fake.startRotation(secretId);
    await step(sendgrid, secretId, token, 'createSecret');
    const provider = sendgrid.provider();
    let calls = 0;
    const broken: KeyProvider<unknown, unknown> = {
      ...provider,
      async verify() {
        calls++;
        throw new ConfigurationError('the provider answered 500');
      },
    };
    const thrown = await failure(
      invoker(
        sendgrid,
        {},
        broken,
      )({ Step: 'testSecret', SecretId: fake.arnOf(secretId), ClientRequestToken: token }),
    );
    expect(thrown).toBeInstanceOf(ConfigurationError);
    expect(calls).toBe(1);
  });
});

describe('API-key finishSecret', () => {
  it('moves AWSCURRENT even when revoking the superseded key fails, and says which key to revoke', async () => {
    const { secretId } = sendgrid.provision(harness);
    await rotation(sendgrid, secretId);
    await rotation(sendgrid, secretId);
    const superseded = value(secretId, 'AWSPREVIOUS').key_id;
    const provider = sendgrid.provider();
    const failingRevoke: KeyProvider<unknown, unknown> = {
      ...provider,
      async revoke() {
        throw new ConfigurationError('revoke refused');
      },
    };
    const token = fake.startRotation(secretId);
    for (const name of ['createSecret', 'setSecret', 'testSecret'] as const) {
      await step(sendgrid, secretId, token, name);
    }

    const thrown = await failure(
      invoker(
        sendgrid,
        {},
        failingRevoke,
      )({ Step: 'finishSecret', SecretId: fake.arnOf(secretId), ClientRequestToken: token }),
    );

    expect(thrown).toBeInstanceOf(RotationError);
    expect(thrown?.message).toContain(superseded);
    expect((thrown as Error).cause).toMatchObject({ message: 'revoke refused' });
    expect(fake.versionOf(secretId)).toBe(token);
    expect(sendgrid.fake.accepts(superseded)).toBe(true);
  });

  it('counts a superseded key the account no longer lists as gone, and completes', async () => {
    const { secretId } = sendgrid.provision(harness);
    await rotation(sendgrid, secretId);
    await rotation(sendgrid, secretId);
    const superseded = value(secretId, 'AWSPREVIOUS').key_id;
    sendgrid.fake.revokeInConsole(superseded);

    const result = await rotation(sendgrid, secretId);

    expect(result.completed, String(result.error)).toBe(true);
    expect(
      logs.lines.find(
        (line) => line.attributes.keyId === superseded && line.attributes.outcome === 'not-found',
      ),
    ).toBeDefined();
  });

  it('fails after the move, naming the keys, when the account cannot be listed', async () => {
    const { secretId } = sendgrid.provision(harness);
    await rotation(sendgrid, secretId);
    await rotation(sendgrid, secretId);
    const superseded = value(secretId, 'AWSPREVIOUS').key_id;
    const token = fake.startRotation(secretId);
    for (const name of ['createSecret', 'setSecret', 'testSecret'] as const) {
      await step(sendgrid, secretId, token, name);
    }
    const provider = sendgrid.provider();
    const unlisted: KeyProvider<unknown, unknown> = {
      ...provider,
      async list() {
        throw new ConfigurationError('list refused');
      },
    };

    const thrown = await failure(
      invoker(
        sendgrid,
        {},
        unlisted,
      )({ Step: 'finishSecret', SecretId: fake.arnOf(secretId), ClientRequestToken: token }),
    );

    expect(thrown).toBeInstanceOf(RotationError);
    expect(thrown?.message).toContain(superseded);
    expect((thrown as Error).cause).toMatchObject({ message: 'list refused' });
    expect(fake.versionOf(secretId)).toBe(token);
  });
});

describe('ARN patterns of allowedsecrets', () => {
  const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/mailer-AbCdEf';
  it.each([
    [arn, true],
    [`${arn.slice(0, -1)}g`, false],
    [`${arn}x`, false],
    [arn.slice(0, -1), false],
    ['*', true],
    ['*AbCdEf', true],
    ['*AbCdEg', false],
    ['arn:*:secret:*-AbCdEf', true],
    [`${arn}*`, true],
    [`${arn}**`, true],
    [`${arn}?`, false],
    ['arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/*-??????', true],
    ['arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/*-?????', false],
    ['arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/*?????', true],
    ['arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/mailer-?????', false],
    ['arn:*mailer*x', false],
    [`xx${arn.slice(2)}`, false],
    [arn.slice(3), false],
    [arn.slice(1), false],
  ])('%s matches: %s', (pattern, expected) => {
    expect(arnMatches(pattern, arn)).toBe(expected);
  });

  it('matches the empty ARN only with an empty or all-star pattern', () => {
    expect([arnMatches('', ''), arnMatches('**', ''), arnMatches('?', '')]).toEqual([
      true,
      true,
      false,
    ]);
  });

  it('lets a managing secret list several patterns, any one of which admits the secret', async () => {
    const { secretId } = twilioSecret((name) => ({
      allowedsecrets: ['arn:aws:secretsmanager:*:*:secret:other/*', `arn:*:secret:${name}-*`],
    }));
    const result = await rotation(twilio, secretId);
    expect(result.completed, String(result.error)).toBe(true);
  });
});

describe('API-key settings', () => {
  it('reads settings with white space around them, and options over the environment', () => {
    expect(
      apiKeySettings({
        env: {
          REVOKE_DEMOTED_KEY: ' immediately ',
          KEY_NAME_PREFIX: ' team-a ',
          KEY_PROPAGATION_TIMEOUT_SECONDS: ' 0 ',
        },
      }),
    ).toMatchObject({
      revokeDemotedKey: 'immediately',
      keyNamePrefix: 'team-a',
      propagationTimeoutMs: 0,
    });
    expect(
      apiKeySettings({
        env: { KEY_PROPAGATION_TIMEOUT_SECONDS: 'not a number', REVOKE_DEMOTED_KEY: 'bad' },
        propagationTimeoutMs: 5,
        revokeDemotedKey: 'next-rotation',
      }),
    ).toMatchObject({ propagationTimeoutMs: 5, revokeDemotedKey: 'next-rotation' });
    expect(
      apiKeySettings({ env: { KEY_PROPAGATION_TIMEOUT_SECONDS: '60' } }).propagationTimeoutMs,
    ).toBe(60_000);
  });

  it.each(['-1', '61', '1.5', 'x'])('refuses KEY_PROPAGATION_TIMEOUT_SECONDS %j', (value) => {
    expect(() => apiKeySettings({ env: { KEY_PROPAGATION_TIMEOUT_SECONDS: value } })).toThrow(
      ConfigurationError,
    );
  });

  it.each([
    ['provider', { provider: 'p'.repeat(65) }],
    ['key', { key: 'k'.repeat(4097) }],
    ['adminarn', { adminarn: `arn:${'a'.repeat(2045)}` }],
  ])('refuses a secret whose %s is too long, naming it', (field, fields) => {
    const provider = sendgrid.provider();
    const text = JSON.stringify({ provider: 'sendgrid', key: 'SG.x', key_id: 'abc', ...fields });
    expect(() => parseApiKeySecret(text, 'AWSCURRENT', provider)).toThrow(
      expect.objectContaining({ field }),
    );
  });

  it('accepts a key of 4096 characters and an adminarn of 2048', () => {
    const text = JSON.stringify({
      provider: 'SendGrid',
      key: 'k'.repeat(4096),
      key_id: 'abc',
      adminarn: `arn:${'a'.repeat(2044)}`,
    });
    const secret = parseApiKeySecret(text, 'AWSCURRENT', sendgrid.provider());
    expect([secret.key.length, secret.adminarn?.length, secret.provider]).toEqual([
      4096,
      2048,
      'sendgrid',
    ]);
  });

  it('reads a blank KEY_PROPAGATION_TIMEOUT_SECONDS as the 60 s default', () => {
    expect(
      apiKeySettings({ env: { KEY_PROPAGATION_TIMEOUT_SECONDS: '   ' } }).propagationTimeoutMs,
    ).toBe(60_000);
  });

  it('keeps key names within the provider limit with the longest prefix', async () => {
    const { secretId } = twilio.provision(harness);
    const prefix = 'p'.repeat(24);
    const result = await rotation(twilio, secretId, { KEY_NAME_PREFIX: prefix });
    expect(result.completed, String(result.error)).toBe(true);
    const minted = twilio.fake.key(value(secretId).key_id);
    expect(minted?.name.startsWith(`${prefix}-`)).toBe(true);
    expect(minted?.name.length).toBeLessThanOrEqual(twilio.provider().maxNameLength);
  });
});

describe('API-key waiting and errors', () => {
  /** A provider whose verify refuses every key, as a key that has not propagated yet. */
  function refusing(fixture: ProviderFixture) {
    const provider = fixture.provider();
    return {
      ...provider,
      async verify() {
        throw new AuthenticationError(`${provider.name} refused the key`);
      },
    } satisfies KeyProvider<unknown, unknown>;
  }

  it('waits with a doubling delay (jittered to half of it at least), up to the propagation limit', async () => {
    const { secretId } = sendgrid.provision(harness);
    const token = fake.startRotation(secretId);
    await step(sendgrid, secretId, token, 'createSecret');
    const slept: number[] = [];
    const thrown = await failure(
      createRotationHandler({
        strategy: apiKeys(refusing(sendgrid), {
          propagationTimeoutMs: 3_000,
          sleep: async (ms) => void slept.push(ms),
        }),
        env: {},
      })(
        { Step: 'testSecret', SecretId: fake.arnOf(secretId), ClientRequestToken: token },
        context,
      ),
    );
    expect(thrown).toBeInstanceOf(AuthenticationError);
    expect((thrown as Error).cause).toBeInstanceOf(AuthenticationError);
    expect(slept.length).toBeGreaterThanOrEqual(3);
    slept.forEach((ms, i) => {
      const full = Math.min(5_000, 250 * 2 ** i);
      expect(ms).toBeGreaterThanOrEqual(full / 2);
      expect(ms).toBeLessThanOrEqual(full);
    });
    expect(thrown?.message).toContain(`after ${slept.length + 1} attempts`);
  });

  it('never puts a key in an error or a log line, even when the provider quotes it', async () => {
    const { secretId } = sendgrid.provision(harness);
    const token = fake.startRotation(secretId);
    await step(sendgrid, secretId, token, 'createSecret');
    const pendingKey = value(secretId, 'AWSPENDING').key;
    const provider = sendgrid.provider();
    const quoting: KeyProvider<unknown, unknown> = {
      ...provider,
      async verify(key) {
        throw new ConfigurationError(`the provider refused ${key.key} for a reason of its own`);
      },
    };
    const thrown = await failure(
      invoker(
        sendgrid,
        {},
        quoting,
      )({ Step: 'testSecret', SecretId: fake.arnOf(secretId), ClientRequestToken: token }),
    );
    expect(thrown).toBeInstanceOf(ConfigurationError);
    expect(thrown?.message).not.toContain(pendingKey);
    expect(logs.text()).not.toContain(pendingKey);
  });
});

describe('API-key finishSecret: which superseded keys are revoked', () => {
  it('makes no provider call when nothing is superseded (the first rotation)', async () => {
    const { secretId } = sendgrid.provision(harness);
    const token = fake.startRotation(secretId);
    for (const name of ['createSecret', 'setSecret', 'testSecret'] as const) {
      await step(sendgrid, secretId, token, name);
    }
    const before = sendgrid.fake.requests.length;
    await step(sendgrid, secretId, token, 'finishSecret');
    expect(sendgrid.fake.requests.length).toBe(before);
    expect(fake.versionOf(secretId)).toBe(token);
  });

  /** AWSPREVIOUS rewritten by hand to `previous`; then a rotation whose pending key is `pending`. */
  async function rotateWith(
    fixture: ProviderFixture,
    secretId: string,
    previous: (current: Record<string, unknown>) => Record<string, unknown>,
    env: Env = {},
  ) {
    const original = fake.valueOf(secretId) as string;
    writeCurrent(secretId, JSON.stringify(previous(value(secretId))));
    writeCurrent(secretId, original);
    return rotation(fixture, secretId, env);
  }

  it('never revokes a key of ours that AWSPREVIOUS records through another managing secret', async () => {
    const { secretId } = twilio.provision(harness);
    await rotation(twilio, secretId);
    const ours = value(secretId).key_id;
    const otherAdmin = fake.createSecret({
      name: `api-key-admin/other-${randomSuffix()}`,
      secretString: JSON.stringify({
        account_sid: twilio.fake.accountSid,
        auth_token: twilio.fake.authToken,
        allowedsecrets: ['arn:*'],
      }),
    });
    // AWSPREVIOUS: another key of ours, recorded with another adminarn.
    const older = twilio.fake.seedKey(`${ownPrefix(fake.arnOf(secretId))}older`);
    const result = await rotateWith(twilio, secretId, (current) => ({
      ...current,
      key: older.secret,
      key_id: older.id,
      adminarn: otherAdmin,
    }));
    expect(result.completed, String(result.error)).toBe(true);
    expect(twilio.fake.accepts(older.id)).toBe(true);
    expect(twilio.fake.accepts(ours)).toBe(true);
  });

  it('never revokes a key of ours that AWSPREVIOUS records for another account', async () => {
    const { secretId } = twilio.provision(harness);
    await rotation(twilio, secretId);
    const ours = value(secretId).key_id;
    const older = twilio.fake.seedKey(`${ownPrefix(fake.arnOf(secretId))}older`);
    const result = await rotateWith(twilio, secretId, (current) => ({
      ...current,
      key: older.secret,
      key_id: older.id,
      account_sid: `AC${'1'.repeat(32)}`,
    }));
    expect(result.completed, String(result.error)).toBe(true);
    expect(twilio.fake.accepts(older.id)).toBe(true);
    expect(twilio.fake.accepts(ours)).toBe(true);
  });

  it('never revokes the new AWSCURRENT key, even when AWSPREVIOUS records it too', async () => {
    // Prepare: a key of ours, K, will be AWSPENDING; AWSPREVIOUS is rewritten to record K.
    const { secretId } = sendgrid.provision(harness);
    const token = fake.startRotation(secretId);
    await step(sendgrid, secretId, token, 'createSecret');
    const pending = value(secretId, 'AWSPENDING');
    const current = fake.valueOf(secretId) as string;
    // AWSPREVIOUS := a version recording K (written by hand), AWSCURRENT back to the original.
    fake.removeLabel(secretId, 'AWSPENDING');
    writeCurrent(secretId, JSON.stringify(pending));
    writeCurrent(secretId, current);
    fake.removeLabel(secretId, 'AWSPENDING');
    fake.updateSecretVersionStage({
      SecretId: secretId,
      VersionStage: 'AWSPENDING',
      MoveToVersionId: token,
    });
    expect(value(secretId, 'AWSPREVIOUS').key_id).toBe(pending.key_id);

    for (const name of ['setSecret', 'testSecret', 'finishSecret'] as const) {
      await step(sendgrid, secretId, token, name, { REVOKE_DEMOTED_KEY: 'immediately' });
    }

    expect(fake.versionOf(secretId)).toBe(token);
    expect(sendgrid.fake.accepts(pending.key_id)).toBe(true);
  });
});
