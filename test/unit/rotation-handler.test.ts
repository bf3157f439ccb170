import { ResourceExistsException } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  AuthenticationError,
  ConfigurationError,
  HostUnreachableError,
  InvalidEventError,
  InvalidSecretError,
  StageError,
  TooManyConnectionsError,
} from '../../shared/common/errors.js';
import { createRotationHandler } from '../../shared/rotation/handler.js';
import type { StepMetrics } from '../../shared/rotation/metrics.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';
import { singleUser } from '../../shared/strategies/single-user.js';
import { FakeSecretsManager, mockSecretsManager } from '../support/fake-secrets-manager.js';
import { LogRecorder } from '../support/log-recorder.js';
import {
  appSecretValue,
  MemoryDatabase,
  seedMaster,
  UNIT_HOST,
} from '../support/memory-database.js';
import { rotate, STEPS, type Step } from '../support/rotation-driver.js';

const HOST = UNIT_HOST;
const fake = new FakeSecretsManager();
const stub = mockSecretsManager(fake);
let db: MemoryDatabase;
let logs: LogRecorder;

afterAll(() => stub.restore());

beforeEach(() => {
  fake.reset();
  stub.resetHistory();
  db = new MemoryDatabase();
  logs = new LogRecorder();
});

function singleUserSecret(overrides: Record<string, unknown> = {}) {
  db.addUser(HOST, 'app', 'current-password-1');
  return fake.createSecret({ name: 'orders/app', secretString: appSecretValue(overrides) });
}

function singleUserHandler(env: Record<string, string> = {}, metrics?: StepMetrics) {
  return createRotationHandler({
    strategy: singleUser(db),
    logger: logs,
    env,
    ...(metrics ? { metrics } : {}),
  });
}

const context = { getRemainingTimeInMillis: () => 30_000 };

function event(secretId: string, token: string, step: Step, rotationToken?: string) {
  return {
    Step: step,
    SecretId: fake.arnOf(secretId),
    ClientRequestToken: token,
    ...(rotationToken ? { RotationToken: rotationToken } : {}),
  };
}

const callsOf = (command: string) => fake.calls.filter((call) => call.command === command);

describe('rotation event validation', () => {
  const valid = {
    Step: 'createSecret',
    SecretId: 'arn:secret',
    ClientRequestToken: 'a'.repeat(36),
  };
  it.each([
    ['a non-object event', 'text', /must be an object, got a string/],
    ['a null event', null, /must be an object, got null/],
    ['a missing Step', { ...valid, Step: undefined }, /field Step is missing/],
    [
      'an unknown Step',
      { ...valid, Step: 'rotate' },
      /field Step must be one of createSecret, setSecret, testSecret, finishSecret, got "rotate"/,
    ],
    [
      'a numeric SecretId',
      { ...valid, SecretId: 42 },
      /field SecretId must be a string, got a number/,
    ],
    [
      'an empty SecretId',
      { ...valid, SecretId: '' },
      /field SecretId must be 1 to 2048 characters, got 0/,
    ],
    [
      'a short ClientRequestToken',
      { ...valid, ClientRequestToken: 'abc' },
      /field ClientRequestToken must be 32 to 64 characters, got 3/,
    ],
    [
      'a missing ClientRequestToken',
      { ...valid, ClientRequestToken: undefined },
      /field ClientRequestToken is missing/,
    ],
    [
      'a non-string RotationToken',
      { ...valid, RotationToken: ['x'] },
      /field RotationToken must be a string, got an array/,
    ],
  ])(
    'rejects %s with an error naming the field, before calling Secrets Manager',
    async (_, input, message) => {
      // Prepare
      const handler = singleUserHandler();

      // Act
      const failure = await handler(input, context).catch((error: unknown) => error);

      // Assess
      expect(failure).toBeInstanceOf(InvalidEventError);
      expect((failure as Error).message).toMatch(message);
      expect(fake.calls).toHaveLength(0);
    },
  );
});

describe('password policy', () => {
  it.each([
    [
      { PASSWORD_LENGTH: 'long' },
      /PASSWORD_LENGTH must be a whole number from 1 to 4096, got "long"/,
    ],
    [{ PASSWORD_LENGTH: '0' }, /PASSWORD_LENGTH/],
    [{ EXCLUDE_NUMBERS: 'yes' }, /EXCLUDE_NUMBERS must be "true" or "false", got "yes"/],
    [
      {
        EXCLUDE_NUMBERS: 'true',
        EXCLUDE_PUNCTUATION: 'TRUE',
        EXCLUDE_UPPERCASE: 'true',
        EXCLUDE_LOWERCASE: 'true',
      },
      /nothing is left/,
    ],
  ])('fails at creation, naming the variable, for %o', (env, message) => {
    expect(() => singleUserHandler(env)).toThrow(ConfigurationError);
    expect(() => singleUserHandler(env)).toThrow(message);
  });

  it('passes the environment policy to GetRandomPassword', async () => {
    // Prepare
    const secretId = singleUserSecret();
    const handler = singleUserHandler({
      PASSWORD_LENGTH: '48',
      EXCLUDE_CHARACTERS: 'abc',
      EXCLUDE_PUNCTUATION: 'true',
      REQUIRE_EACH_INCLUDED_TYPE: 'false',
    });
    const token = fake.startRotation(secretId);

    // Act
    await handler(event(secretId, token, 'createSecret'), context);

    // Assess
    expect(callsOf('GetRandomPassword')[0]?.input).toEqual({
      PasswordLength: 48,
      ExcludeCharacters: 'abc',
      ExcludeNumbers: false,
      ExcludePunctuation: true,
      ExcludeUppercase: false,
      ExcludeLowercase: false,
      RequireEachIncludedType: false,
    });
    const pending = JSON.parse(fake.valueOf(secretId, 'AWSPENDING') as string);
    expect(pending.password).toHaveLength(48);
    expect(pending.password).not.toMatch(/[abc!-/:-@[-`{-~]/);
  });

  it("uses AWS's default exclusions when EXCLUDE_CHARACTERS is unset", async () => {
    const secretId = singleUserSecret();
    const token = fake.startRotation(secretId);
    await singleUserHandler()(event(secretId, token, 'createSecret'), context);
    expect(callsOf('GetRandomPassword')[0]?.input).toMatchObject({
      PasswordLength: 32,
      ExcludeCharacters: ':/@"\'\\',
    });
  });
});

describe('protocol guards', () => {
  it('refuses a secret whose rotation is disabled', async () => {
    const secretId = singleUserSecret();
    const token = fake.startRotation(secretId);
    fake.setRotationEnabled(secretId, false);

    const failure = await singleUserHandler()(
      event(secretId, token, 'createSecret'),
      context,
    ).catch((e: unknown) => e);

    expect(failure).toBeInstanceOf(StageError);
    expect((failure as Error).message).toBe(
      `createSecret of secret ${fake.arnOf(secretId)}: the secret is not enabled for rotation`,
    );
    expect(callsOf('PutSecretValue')).toHaveLength(0);
  });

  it('treats an absent RotationEnabled as enabled', async () => {
    const secretId = singleUserSecret();
    fake.setRotationEnabled(secretId, null);
    const result = await rotate({ fake, secretId, invoke: (e) => singleUserHandler()(e, context) });
    expect(result.completed, String(result.error)).toBe(true);
  });

  it('refuses a token that is not a version of the secret', async () => {
    const secretId = singleUserSecret();
    const failure = await singleUserHandler()(
      event(secretId, 'f'.repeat(36), 'setSecret'),
      context,
    ).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(StageError);
    expect((failure as Error).message).toMatch(/version f{36} is not a version of the secret/);
  });

  it('refuses a token whose version is not AWSPENDING', async () => {
    // Prepare: an old version that is only AWSPREVIOUS.
    const secretId = singleUserSecret();
    const old = fake.versionOf(secretId) as string;
    await rotate({ fake, secretId, invoke: (e) => singleUserHandler()(e, context) });

    const failure = await singleUserHandler()(event(secretId, old, 'setSecret'), context).catch(
      (e: unknown) => e,
    );

    expect(failure).toBeInstanceOf(StageError);
    expect((failure as Error).message).toMatch(/is not AWSPENDING/);
  });

  it('succeeds without doing anything when the token is already AWSCURRENT', async () => {
    const secretId = singleUserSecret();
    const current = fake.versionOf(secretId) as string;
    for (const step of STEPS) {
      await singleUserHandler()(event(secretId, current, step), context);
    }
    expect(fake.calls.map((call) => call.command)).toEqual(Array(4).fill('DescribeSecret'));
    expect(db.actions).toEqual([]);
    expect(logs.messages()).toContain('version is already AWSCURRENT; nothing to do');
  });

  it('refuses a secret scheduled for deletion', async () => {
    const secretId = singleUserSecret();
    const token = fake.startRotation(secretId);
    fake.deleteSecret({ SecretId: secretId, RecoveryWindowInDays: 7 });
    const failure = await singleUserHandler()(
      event(secretId, token, 'createSecret'),
      context,
    ).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(StageError);
    expect((failure as Error).message).toMatch(/scheduled for deletion/);
  });
});

describe('createSecret', () => {
  it('stores a new password under the token as AWSPENDING, passing RotationToken and keeping other keys', async () => {
    // Prepare
    const secretId = singleUserSecret({ dbname: 'orders', proxy: 'orders-proxy' });
    const token = fake.startRotation(secretId);

    // Act
    await singleUserHandler()(event(secretId, token, 'createSecret', 'rotation-token-1'), context);

    // Assess
    expect(fake.versionOf(secretId, 'AWSPENDING')).toBe(token);
    const pending = JSON.parse(fake.valueOf(secretId, 'AWSPENDING') as string);
    expect(pending).toEqual({
      ...JSON.parse(appSecretValue({ dbname: 'orders', proxy: 'orders-proxy' })),
      password: fake.generatedPasswords[0],
    });
    expect(fake.putRotationTokens).toEqual(['rotation-token-1']);
  });

  it('leaves RotationToken out of PutSecretValue when the event has none', async () => {
    const secretId = singleUserSecret();
    const token = fake.startRotation(secretId);
    await singleUserHandler()(event(secretId, token, 'createSecret'), context);
    expect(callsOf('PutSecretValue')[0]?.input).not.toHaveProperty('RotationToken');
  });

  it('does nothing the second time', async () => {
    const secretId = singleUserSecret();
    const token = fake.startRotation(secretId);
    const handler = singleUserHandler();
    await handler(event(secretId, token, 'createSecret'), context);
    const first = fake.valueOf(secretId, 'AWSPENDING');

    await handler(event(secretId, token, 'createSecret'), context);

    expect(fake.valueOf(secretId, 'AWSPENDING')).toBe(first);
    expect(callsOf('PutSecretValue')).toHaveLength(1);
    expect(callsOf('GetRandomPassword')).toHaveLength(1);
    expect(logs.messages()).toContain('pending value already created');
  });

  it('keeps the value of an overlapping invocation that stored first', async () => {
    // Prepare: the other invocation's PutSecretValue lands between our read and our write.
    const secretId = singleUserSecret();
    const token = fake.startRotation(secretId);
    const winner = appSecretValue({ password: 'written-by-the-other-invocation' });
    const original = fake.putSecretValue.bind(fake);
    let raced = false;
    vi.spyOn(fake, 'putSecretValue').mockImplementation((input) => {
      if (!raced) {
        raced = true;
        original({
          SecretId: secretId,
          ClientRequestToken: token,
          SecretString: winner,
          VersionStages: ['AWSPENDING'],
        });
      }
      return original(input);
    });

    // Act
    await singleUserHandler()(event(secretId, token, 'createSecret'), context);

    // Assess
    expect(fake.valueOf(secretId, 'AWSPENDING')).toBe(winner);
    expect(logs.messages()).toContain('pending value already created; keeping it');
    vi.restoreAllMocks();
  });

  it('makes nine Secrets Manager calls for a whole rotation in a warm function', async () => {
    // Prepare
    const secretId = singleUserSecret();
    const handler = singleUserHandler();

    // Act
    const result = await rotate({ fake, secretId, invoke: (e) => handler(e, context) });

    // Assess
    expect(result.completed, String(result.error)).toBe(true);
    expect(fake.calls.map((call) => call.command)).toEqual([
      'DescribeSecret',
      'GetSecretValue', // AWSCURRENT
      'GetSecretValue', // the token's version: no value yet (never trust PutSecretValue alone)
      'GetRandomPassword',
      'PutSecretValue',
      'DescribeSecret', // setSecret: both values come from the cache
      'DescribeSecret', // testSecret
      'DescribeSecret', // finishSecret
      'UpdateSecretVersionStage',
    ]);
  });

  it('still converges when every step lands on a cold function', async () => {
    const secretId = singleUserSecret();
    const result = await rotate({ fake, secretId, invoke: (e) => singleUserHandler()(e, context) });
    expect(result.completed, String(result.error)).toBe(true);
    expect(callsOf('GetSecretValue').length).toBeGreaterThan(2);
    expect(db.passwordOf(HOST, 'app')).toBe(JSON.parse(fake.valueOf(secretId) as string).password);
  });

  it('reads each version at most once per invocation', async () => {
    const secretId = singleUserSecret();
    const token = fake.startRotation(secretId);
    const handler = singleUserHandler();
    for (const step of STEPS) {
      stub.resetHistory();
      fake.calls.length = 0;
      await handler(event(secretId, token, step), context);
      const reads = callsOf('GetSecretValue').map((call) => JSON.stringify(call.input));
      expect(new Set(reads).size, `${step}: ${reads.join(' ')}`).toBe(reads.length);
    }
  });

  it('fails when PutSecretValue reports another value but none can be read back', async () => {
    const secretId = singleUserSecret();
    const token = fake.startRotation(secretId);
    fake.failNext(
      'PutSecretValue',
      new ResourceExistsException({ message: 'exists', $metadata: {} }),
    );
    const failure = await singleUserHandler()(
      event(secretId, token, 'createSecret'),
      context,
    ).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(StageError);
    expect(fake.valueOf(secretId, 'AWSPENDING')).toBeUndefined();
  });
});

describe('bad secret values', () => {
  const cases: [string, string, RegExp][] = [
    [
      'malformed JSON',
      '{"engine": "postgres", "password": "hunter2-leak',
      /AWSCURRENT is not valid JSON/,
    ],
    ['a JSON array', '["postgres"]', /AWSCURRENT must be a JSON object/],
    ['a missing host', appSecretValue({ host: undefined }), /AWSCURRENT: field "host" is missing/],
    ['a missing username', appSecretValue({ username: undefined }), /field "username" is missing/],
    ['an empty password', appSecretValue({ password: '' }), /field "password" is empty/],
    [
      'a numeric username',
      appSecretValue({ username: 7 }),
      /field "username" must be a string, got number/,
    ],
    [
      'a wrong engine',
      appSecretValue({ engine: 'mysql' }),
      /field "engine" is "mysql"; this function rotates MemoryDB \(postgres, aurora-postgresql\)/,
    ],
    [
      'a port out of range',
      appSecretValue({ port: 70000 }),
      /field "port" must be a whole number from 1 to 65535/,
    ],
    [
      'an ssl that is not a boolean',
      appSecretValue({ ssl: 'require' }),
      /field "ssl" must be true or false/,
    ],
  ];

  it.each(cases)('rejects %s naming the field, and changes nothing', async (_, value, message) => {
    // Prepare
    db.addUser(HOST, 'app', 'current-password-1');
    const secretId = fake.createSecret({ name: 'bad', secretString: value });
    const token = fake.startRotation(secretId);

    // Act
    const failure = await singleUserHandler()(
      event(secretId, token, 'createSecret'),
      context,
    ).catch((e: unknown) => e);

    // Assess
    expect(failure).toBeInstanceOf(InvalidSecretError);
    expect((failure as Error).message).toMatch(message);
    expect((failure as Error).message).not.toContain('hunter2');
    expect(logs.text()).not.toContain('hunter2');
    expect(callsOf('PutSecretValue')).toHaveLength(0);
    expect(db.actions).toEqual([]);
  });

  it.each([
    [
      'another user',
      { username: 'admin' },
      /AWSPENDING names user "admin" but AWSCURRENT names "app"/,
    ],
    [
      'another host',
      { host: 'evil.example.com' },
      /AWSPENDING names host evil.example.com:5432 but AWSCURRENT names/,
    ],
    ['another port', { port: 6432 }, /AWSPENDING names host .*:6432/],
  ])('refuses an AWSPENDING that names %s and changes nothing', async (_, overrides, message) => {
    // Prepare: someone wrote AWSPENDING by hand.
    const secretId = singleUserSecret();
    const token = fake.startRotation(secretId);
    fake.putSecretValue({
      SecretId: secretId,
      ClientRequestToken: token,
      SecretString: appSecretValue({ password: 'pending-password-1', ...overrides }),
      VersionStages: ['AWSPENDING'],
    });

    // Act
    const failure = await singleUserHandler()(event(secretId, token, 'setSecret'), context).catch(
      (e: unknown) => e,
    );

    // Assess
    expect(failure).toBeInstanceOf(InvalidSecretError);
    expect((failure as Error).message).toMatch(message);
    expect(db.actions).toEqual([]);
    expect(db.passwordOf(HOST, 'app')).toBe('current-password-1');
  });
});

describe('single user', () => {
  const run = (secretId: string, handler = singleUserHandler()) =>
    rotate({ fake, secretId, invoke: (e) => handler(e, context) });

  it('runs every step twice and ends as if each ran once', async () => {
    // Prepare
    const secretId = singleUserSecret();
    const token = fake.startRotation(secretId);
    const handler = singleUserHandler();

    // Act
    for (const step of STEPS) {
      await handler(event(secretId, token, step), context);
      await handler(event(secretId, token, step), context);
    }

    // Assess
    const pending = JSON.parse(fake.valueOf(secretId) as string);
    expect(fake.versionOf(secretId)).toBe(token);
    expect(db.passwordOf(HOST, 'app')).toBe(pending.password);
    expect(db.actions.filter((action) => action.startsWith('set password'))).toHaveLength(1);
    expect(callsOf('PutSecretValue')).toHaveLength(1);
    expect(callsOf('UpdateSecretVersionStage')).toHaveLength(1);
    expect(db.open.size).toBe(0);
  });

  it('moves AWSCURRENT with RemoveFromVersionId and leaves AWSPREVIOUS on the old version', async () => {
    const secretId = singleUserSecret();
    const old = fake.versionOf(secretId) as string;
    const result = await run(secretId);
    expect(callsOf('UpdateSecretVersionStage')[0]?.input).toEqual({
      SecretId: fake.arnOf(secretId),
      VersionStage: 'AWSCURRENT',
      MoveToVersionId: result.token,
      RemoveFromVersionId: old,
    });
    expect(fake.versionOf(secretId, 'AWSPREVIOUS')).toBe(old);
  });

  it('falls back to AWSPREVIOUS only when AWSCURRENT is refused', async () => {
    // Prepare: the database was restored to the password before the last rotation.
    const secretId = singleUserSecret();
    await run(secretId);
    db.addUser(HOST, 'app', 'current-password-1');

    // Act
    const result = await run(secretId);

    // Assess
    expect(result.completed, String(result.error)).toBe(true);
    expect(logs.messages()).toContain('signed in with AWSPREVIOUS');
    expect(db.passwordOf(HOST, 'app')).toBe(JSON.parse(fake.valueOf(secretId) as string).password);
  });

  it.each([
    ['the default database', {}, 'postgres'],
    ['the database the secret names', { dbname: 'orders' }, 'orders'],
  ])(
    'fails with an authentication error naming the user and %s when no stored password signs in',
    async (_, fields, database) => {
      const secretId = singleUserSecret(fields);
      db.addUser(HOST, 'app', 'changed-by-someone');
      const result = await run(secretId);
      expect(result.failedStep).toBe('setSecret');
      expect(result.error).toBeInstanceOf(AuthenticationError);
      expect((result.error as Error).message).toMatch(
        new RegExp(
          `^setSecret of secret .*orders/app.*: user "app" at ${HOST.replaceAll('.', '\\.')}:5432 \\(database "${database}"\\) refuses AWSPENDING, AWSCURRENT and AWSPREVIOUS$`,
        ),
      );
      expect(db.passwordOf(HOST, 'app')).toBe('changed-by-someone');
    },
  );

  it('never falls back when AWSPENDING fails for a network reason', async () => {
    // Prepare
    const secretId = singleUserSecret();
    db.failNextConnect(new HostUnreachableError('cannot reach MemoryDB: ECONNRESET'));

    // Act
    const result = await run(secretId);

    // Assess
    expect(result.failedStep).toBe('setSecret');
    expect(result.error).toBeInstanceOf(HostUnreachableError);
    expect(db.actions).toEqual([`connect app@${HOST}`]);
    expect(db.passwordOf(HOST, 'app')).toBe('current-password-1');
  });

  it('retries "too many connections" within the time left', async () => {
    const secretId = singleUserSecret();
    db.failNextConnect(
      new TooManyConnectionsError('no slot'),
      new TooManyConnectionsError('no slot'),
    );
    const result = await run(secretId);
    expect(result.completed, String(result.error)).toBe(true);
    expect(logs.messages().filter((m) => m.includes('no free connection slot'))).toHaveLength(2);
  });

  it('tests AWSCURRENT when testSecret runs before any pending value exists (RotateImmediately=false)', async () => {
    const secretId = singleUserSecret();
    const token = fake.startRotation(secretId);
    await singleUserHandler()(event(secretId, token, 'testSecret'), context);
    expect(db.actions).toEqual([`connect app@${HOST}`]);
    expect(logs.messages()).toContain('AWSCURRENT signs in and runs a query');
  });

  it('never moves AWSCURRENT to a version that has no value', async () => {
    // Prepare: finishSecret arrives for a rotation whose createSecret never ran.
    const secretId = singleUserSecret();
    const current = fake.versionOf(secretId);
    const token = fake.startRotation(secretId);

    // Act
    const failure = await singleUserHandler()(
      event(secretId, token, 'finishSecret'),
      context,
    ).catch((e: unknown) => e);

    // Assess
    expect(failure).toBeInstanceOf(StageError);
    expect(fake.versionOf(secretId)).toBe(current);
    expect(callsOf('UpdateSecretVersionStage')).toHaveLength(0);
  });

  it('fails setSecret clearly when createSecret has not run', async () => {
    const secretId = singleUserSecret();
    const token = fake.startRotation(secretId);
    const failure = await singleUserHandler()(event(secretId, token, 'setSecret'), context).catch(
      (e: unknown) => e,
    );
    expect(failure).toBeInstanceOf(StageError);
    expect((failure as Error).message).toMatch(
      /AWSPENDING version .* has no value yet \(createSecret has not run\)/,
    );
  });

  it('records one metric per step with its outcome', async () => {
    const records: [Step, string][] = [];
    const metrics: StepMetrics = { record: (step, outcome) => records.push([step, outcome]) };
    const secretId = singleUserSecret();
    const handler = singleUserHandler({}, metrics);
    await run(secretId, handler);
    await handler(event(secretId, fake.versionOf(secretId) as string, 'finishSecret'), context);
    await handler({ Step: 'setSecret' }, context).catch(() => {});
    expect(records).toEqual([
      ['createSecret', 'success'],
      ['setSecret', 'success'],
      ['testSecret', 'success'],
      ['finishSecret', 'success'],
      ['finishSecret', 'skipped'],
    ]);
  });

  it('passes a degraded feature from the step to StepMetrics.degraded (the Degraded metric)', async () => {
    const degraded: [string, string][] = [];
    const records: string[] = [];
    const metrics: StepMetrics = {
      record: (step, outcome) => records.push(`${step}:${outcome}`),
      degraded: (feature) => degraded.push([records.length === 1 ? 'setSecret' : '?', feature]),
    };
    const secretId = singleUserSecret();
    const strategy = singleUser(db);
    const handler = createRotationHandler({
      strategy: {
        ...strategy,
        async setPending(step) {
          step.degraded('SomeFeature');
          await strategy.setPending(step);
        },
      },
      logger: logs,
      env: {},
      metrics,
    });
    await run(secretId, handler);
    expect(degraded).toEqual([['setSecret', 'SomeFeature']]);
    expect(records).toContain('setSecret:success');
  });

  it('never writes a password to the log', async () => {
    const secretId = singleUserSecret();
    db.addUser(HOST, 'app', 'current-password-1');
    const result = await run(secretId);
    const leaked = fake
      .allStoredValues()
      .flatMap((value) => [JSON.parse(value).password as string]);
    expect(result.completed).toBe(true);
    expect(logs.lines.length).toBeGreaterThan(4);
    for (const password of leaked) expect(logs.text()).not.toContain(password);
  });
});

describe('alternating users', () => {
  const MASTER = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:master';
  function setup(overrides: Record<string, unknown> = {}, master: Record<string, unknown> = {}) {
    const masterArn = seedMaster(db, fake, HOST, master);
    return fake.createSecret({
      name: 'orders/app',
      secretString: appSecretValue({ masterarn: masterArn, ...overrides }),
    });
  }
  const handler = () =>
    createRotationHandler({ strategy: alternatingUsers(db), logger: logs, env: {} });
  const run = (secretId: string) =>
    rotate({ fake, secretId, invoke: (e) => handler()(e, context) });

  it('creates the clone once, like the original, then only changes passwords', async () => {
    const secretId = setup();
    for (let i = 0; i < 3; i++) expect((await run(secretId)).completed).toBe(true);
    expect(
      db.actions.filter((a) => a.startsWith('create') || a.startsWith('set password')),
    ).toEqual([
      `create app_clone@${HOST} like app`,
      `set password app@${HOST} as root`,
      `set password app_clone@${HOST} as root`,
    ]);
    expect(db.user(HOST, 'app_clone')?.memberOf).toEqual(['app']);
    expect(db.open.size).toBe(0);
  });

  it("mirrors the original's grants onto the clone before any password change, every rotation", async () => {
    // Prepare: the clone exists (first rotation); a DBA then changes the original's grants.
    const secretId = setup();
    await run(secretId);
    db.grants.set('app', ['SELECT ON orders']);
    db.grants.set('app_clone', ['DELETE ON orders']);
    db.actions.length = 0;

    // Act: the second rotation changes app's password; the third, app_clone's.
    const second = await run(secretId);
    const afterSecond = [...(db.grants.get('app_clone') ?? [])];
    db.grants.set('app', ['SELECT ON orders', 'INSERT ON orders']);
    const third = await run(secretId);

    // Assess
    expect([second.completed, third.completed]).toEqual([true, true]);
    expect(afterSecond).toEqual(['SELECT ON orders']);
    expect(db.grants.get('app')).toEqual(['SELECT ON orders', 'INSERT ON orders']);
    expect(db.grants.get('app_clone')).toEqual(['SELECT ON orders', 'INSERT ON orders']);
    expect(db.actions.filter((a) => a.startsWith('sync') || a.startsWith('set password'))).toEqual([
      `sync app_clone@${HOST} like app`,
      `set password app@${HOST} as root`,
      `sync app_clone@${HOST} like app`,
      `set password app_clone@${HOST} as root`,
    ]);
    const lines = logs.lines.filter(
      (l) => l.message === "reconciled the clone's privileges with the original's",
    );
    expect(lines.map((l) => l.attributes.changes)).toEqual([
      ['granted SELECT ON orders', 'revoked DELETE ON orders'],
      ['granted INSERT ON orders'],
    ]);
  });

  it('runs every step twice and ends as if each ran once', async () => {
    const secretId = setup();
    const token = fake.startRotation(secretId);
    for (const step of STEPS) {
      await handler()(event(secretId, token, step), context);
      await handler()(event(secretId, token, step), context);
    }
    expect(JSON.parse(fake.valueOf(secretId) as string).username).toBe('app_clone');
    expect(db.actions.filter((a) => a.startsWith('create'))).toHaveLength(1);
  });

  it('names the field when masterarn is missing', async () => {
    const secretId = setup({ masterarn: undefined });
    const result = await run(secretId);
    expect(result.failedStep).toBe('setSecret');
    expect(String(result.error)).toMatch(/AWSCURRENT: field "masterarn" is missing/);
  });

  it('refuses a user name whose clone would pass 63 characters', async () => {
    const long = 'u'.repeat(60);
    db.addUser(HOST, long, 'current-password-1');
    const secretId = setup({ username: long });
    const result = await run(secretId);
    expect(result.failedStep).toBe('createSecret');
    expect(result.error).toBeInstanceOf(InvalidSecretError);
    expect(String(result.error)).toMatch(/"u{60}_clone" is longer than MemoryDB's 63 characters/);
  });

  it('refuses to rotate the master user itself', async () => {
    db.addUser(HOST, 'root_clone', 'x');
    const secretId = setup({ username: 'root_clone', password: 'x' });
    const result = await run(secretId);
    expect(String(result.error)).toMatch(/must not rotate the master user "root"/);
    expect(db.passwordOf(HOST, 'root')).toBe('master-password-1');
  });

  it('refuses an AWSPENDING naming a user that is not the alternate', async () => {
    const secretId = setup();
    const token = fake.startRotation(secretId);
    fake.putSecretValue({
      SecretId: secretId,
      ClientRequestToken: token,
      SecretString: appSecretValue({
        username: 'root',
        password: 'pending-password-1',
        masterarn: MASTER,
      }),
      VersionStages: ['AWSPENDING'],
    });
    const failure = await handler()(event(secretId, token, 'setSecret'), context).catch(
      (e: unknown) => e,
    );
    expect(failure).toBeInstanceOf(InvalidSecretError);
    expect((failure as Error).message).toMatch(
      /AWSPENDING names user "root"; alternating from "app" it must be "app_clone"/,
    );
    expect(db.actions).toEqual([]);
  });

  it('keeps the master password out of the logs', async () => {
    const secretId = setup();
    await run(secretId);
    expect(logs.text()).not.toContain('master-password-1');
  });
});
