import { SecretsManagerServiceException } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  ConnectionError,
  DatabaseError,
  InvalidSecretError,
  TooManyConnectionsError,
} from '../../shared/common/errors.js';
import { redactingLogger, scrubError } from '../../shared/common/logger.js';
import { createRotationHandler } from '../../shared/rotation/handler.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';
import { singleUser } from '../../shared/strategies/single-user.js';
import { FakeSecretsManager, mockSecretsManager } from '../support/fake-secrets-manager.js';
import { errorText } from '../support/leak-guard.js';
import { LogRecorder } from '../support/log-recorder.js';
import {
  appSecretValue,
  MemoryDatabase,
  seedMaster,
  UNIT_HOST,
} from '../support/memory-database.js';
import { rotate } from '../support/rotation-driver.js';

const HOST = UNIT_HOST;
const fake = new FakeSecretsManager();
const stub = mockSecretsManager(fake);
const logs = new LogRecorder();
let db: MemoryDatabase;

afterAll(() => stub.restore());
beforeEach(() => {
  fake.reset();
  stub.resetHistory();
  logs.lines.length = 0;
  db = new MemoryDatabase();
});

const context = (ms = 30_000) => ({ getRemainingTimeInMillis: () => ms });
const single = (options: { safetyMarginMs?: number } = {}) =>
  createRotationHandler({ strategy: singleUser(db), logger: logs, env: {}, ...options });
const run = (secretId: string, handler = single(), ms = 30_000) =>
  rotate({ fake, secretId, invoke: (e) => handler(e, context(ms)) });

describe('redaction', () => {
  it('scrubs secrets from messages, nested attributes, errors and their causes', () => {
    // Prepare
    const secrets = new Set(['s3cr3t-value']);
    const inner = new LogRecorder();
    const logger = redactingLogger(inner, secrets);
    const error = new Error('failed with s3cr3t-value', { cause: new Error('near s3cr3t-value') });

    // Act
    logger.info('message s3cr3t-value', { nested: { list: ['x s3cr3t-value'] }, error });

    // Assess
    expect(inner.text()).not.toContain('s3cr3t-value');
    expect(inner.lines[0]?.message).toBe('message ***');
    expect(inner.lines[0]?.attributes).toEqual({
      nested: { list: ['x ***'] },
      error: {
        name: 'Error',
        message: 'failed with ***',
        cause: { name: 'Error', message: 'near ***' },
      },
    });
  });

  it('scrubs a thrown error, its stack and its cause chain', () => {
    const error = new DatabaseError('ALTER failed near "pw-123456"', {
      cause: new Error('pw-123456'),
    });
    scrubError(error, new Set(['pw-123456']));
    expect(errorText(error)).not.toContain('pw-123456');
  });

  it('keeps a password that a driver error quotes out of the thrown error and the logs', async () => {
    // Prepare: the database's error message quotes the new password.
    db.addUser(HOST, 'app', 'current-password-1');
    const secretId = fake.createSecret({ name: 'app', secretString: appSecretValue() });
    const token = fake.startRotation(secretId);
    const handler = single();
    await handler(
      { Step: 'createSecret', SecretId: secretId, ClientRequestToken: token },
      context(),
    );
    const pending = JSON.parse(fake.valueOf(secretId, 'AWSPENDING') as string).password as string;
    db.failSetPassword = `syntax error at or near "${pending}"`;

    // Act
    const failure = await handler(
      { Step: 'setSecret', SecretId: secretId, ClientRequestToken: token },
      context(),
    ).catch((e: unknown) => e);

    // Assess
    expect(failure).toBeInstanceOf(DatabaseError);
    expect(errorText(failure)).not.toContain(pending);
    expect(errorText(failure)).toContain('syntax error at or near "***"');
    expect(logs.text()).not.toContain(pending);
  });

  it('redacts the master secret even when a strategy forgets to', async () => {
    // Prepare: the master sign-in fails with a message that quotes its password.
    db.addUser(HOST, 'app', 'current-password-1');
    const master = fake.createSecret({
      name: 'master',
      secretString: JSON.stringify({ host: HOST, username: 'root', password: 'master-password-9' }),
    });
    const secretId = fake.createSecret({
      name: 'app',
      secretString: appSecretValue({ masterarn: master }),
    });
    const handler = createRotationHandler({
      strategy: alternatingUsers(db),
      logger: logs,
      env: {},
    });
    const original = db.connect.bind(db);
    db.connect = async (login) => {
      if (login.user === 'root')
        throw new ConnectionError(`odd reply to ${login.password}`, 'unavailable');
      return original(login);
    };

    // Act
    const result = await rotate({ fake, secretId, invoke: (e) => handler(e, context()) });

    // Assess
    expect(result.failedStep).toBe('setSecret');
    expect(errorText(result.error)).not.toContain('master-password-9');
    expect(logs.text()).not.toContain('master-password-9');
  });
});

describe('bounded retries and fallbacks', () => {
  it('gives up "too many connections" before the Lambda deadline', async () => {
    // Prepare: the server never frees a slot; 4 s left, 2 s kept in reserve.
    db.addUser(HOST, 'app', 'current-password-1');
    const secretId = fake.createSecret({ name: 'app', secretString: appSecretValue() });
    db.failNextConnect(
      ...Array.from({ length: 100 }, () => new TooManyConnectionsError('no slot')),
    );
    const started = Date.now();

    // Act
    const result = await run(secretId, single({ safetyMarginMs: 2_000 }), 4_000);

    // Assess
    expect(result.failedStep).toBe('setSecret');
    expect(result.error).toBeInstanceOf(TooManyConnectionsError);
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(db.actions.length).toBeLessThan(100);
  });

  it('never signs in with an AWSPREVIOUS that names another user', async () => {
    // Prepare: AWSPREVIOUS holds another user whose password is what the database has.
    db.addUser(HOST, 'app', 'restored-password');
    const secretId = fake.createSecret({
      name: 'app',
      secretString: appSecretValue({ username: 'other', password: 'restored-password' }),
    });
    fake.putSecretValue({
      SecretId: secretId,
      ClientRequestToken: 'v2'.padEnd(36, '0'),
      SecretString: appSecretValue(),
    });

    // Act
    const result = await run(secretId);

    // Assess
    expect(result.error).toBeInstanceOf(AuthenticationError);
    expect(db.passwordOf(HOST, 'app')).toBe('restored-password');
    expect(db.actions.filter((a) => a.startsWith('set password'))).toEqual([]);
  });

  it('treats an AWSPREVIOUS that no longer parses as no fallback, with a warning', async () => {
    db.addUser(HOST, 'app', 'changed-by-someone');
    const secretId = fake.createSecret({
      name: 'app',
      secretString: '{"not": "a database secret"}',
    });
    fake.putSecretValue({
      SecretId: secretId,
      ClientRequestToken: 'v2'.padEnd(36, '0'),
      SecretString: appSecretValue(),
    });

    const result = await run(secretId);

    expect(result.error).toBeInstanceOf(AuthenticationError);
    expect(
      logs.lines.some(
        (l) => l.level === 'warn' && l.message === 'AWSPREVIOUS does not parse; ignoring it',
      ),
    ).toBe(true);
  });

  it('fails testSecret when AWSPENDING signs in but cannot run the test query', async () => {
    db.addUser(HOST, 'app', 'current-password-1');
    const secretId = fake.createSecret({ name: 'app', secretString: appSecretValue() });
    db.failPing = true;
    const result = await run(secretId);
    expect(result.failedStep).toBe('testSecret');
    expect(fake.versionOf(secretId)).not.toBe(result.token);
  });
});

describe('lost answers and overlapping invocations', () => {
  it('keeps a pending value whose PutSecretValue landed although its answer was lost', async () => {
    // Prepare
    db.addUser(HOST, 'app', 'current-password-1');
    const secretId = fake.createSecret({ name: 'app', secretString: appSecretValue() });
    fake.failNext(
      'PutSecretValue',
      new SecretsManagerServiceException({
        name: 'InternalServiceError',
        $fault: 'server',
        $metadata: {},
        message: 'lost',
      }),
      { afterEffect: true },
    );

    // Act
    const first = await run(secretId);
    const stored = fake.valueOf(secretId, 'AWSPENDING');
    const retried = await rotate({
      fake,
      secretId,
      token: first.token,
      invoke: (e) => single()(e, context()),
    });

    // Assess
    expect(first.failedStep).toBe('createSecret');
    expect(logs.messages()).toContain(
      'PutSecretValue failed but the pending value may be stored; keeping it',
    );
    expect(retried.completed, String(retried.error)).toBe(true);
    expect(fake.valueOf(secretId)).toBe(stored);
  });

  it('ends two overlapping finishSecret invocations like one', async () => {
    // Prepare
    db.addUser(HOST, 'app', 'current-password-1');
    const secretId = fake.createSecret({ name: 'app', secretString: appSecretValue() });
    const old = fake.versionOf(secretId);
    const result = await run(secretId, single());
    // Undo the finish so that two finishSecret invocations can race for it.
    fake.updateSecretVersionStage({
      SecretId: secretId,
      VersionStage: 'AWSCURRENT',
      MoveToVersionId: old,
      RemoveFromVersionId: result.token,
    });
    const handler = single();
    const finish = { Step: 'finishSecret', SecretId: secretId, ClientRequestToken: result.token };

    // Act
    const outcomes = await Promise.allSettled([
      handler(finish, context()),
      handler(finish, context()),
    ]);

    // Assess
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled']);
    expect(fake.versionOf(secretId)).toBe(result.token);
    expect(fake.versionOf(secretId, 'AWSPREVIOUS')).toBe(old);
  });
});

describe('alternating users guards', () => {
  function setup(app: Record<string, unknown> = {}, master: Record<string, unknown> = {}) {
    const masterArn = seedMaster(db, fake, HOST, master);
    return fake.createSecret({
      name: 'app',
      secretString: appSecretValue({ masterarn: masterArn, ...app }),
    });
  }
  const handler = () =>
    createRotationHandler({ strategy: alternatingUsers(db), logger: logs, env: {} });
  const runAlt = (secretId: string) =>
    rotate({ fake, secretId, invoke: (e) => handler()(e, context()) });

  it.each([
    ['a master on another port', {}, { port: 6432 }, /refusing to act on another host/],
    [
      'a master secret for another engine',
      {},
      { engine: 'mysql' },
      /field "engine" is "mysql", not MemoryDB/,
    ],
  ])('refuses %s and creates nothing', async (_, app, master, message) => {
    const secretId = setup(app, master);
    const result = await runAlt(secretId);
    expect(result.error).toBeInstanceOf(InvalidSecretError);
    expect(String(result.error)).toMatch(message);
    expect(db.user(HOST, 'app_clone')).toBeUndefined();
  });

  it('compares host names without case', async () => {
    const secretId = setup({}, { host: HOST.toUpperCase() });
    expect((await runAlt(secretId)).completed).toBe(true);
  });

  it.each([
    ['another host', { host: 'evil.example.com' }, /AWSPENDING names host evil.example.com/],
    [
      'another masterarn',
      { masterarn: 'arn:aws:secretsmanager:us-east-1:1:secret:x' },
      /another masterarn/,
    ],
  ])('refuses an AWSPENDING with %s and changes nothing', async (_, overrides, message) => {
    const secretId = setup();
    const current = JSON.parse(fake.valueOf(secretId) as string);
    const token = fake.startRotation(secretId);
    fake.putSecretValue({
      SecretId: secretId,
      ClientRequestToken: token,
      SecretString: JSON.stringify({
        ...current,
        username: 'app_clone',
        password: 'pending-pw-1',
        ...overrides,
      }),
      VersionStages: ['AWSPENDING'],
    });
    const failure = await handler()(
      { Step: 'setSecret', SecretId: secretId, ClientRequestToken: token },
      context(),
    ).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(InvalidSecretError);
    expect((failure as Error).message).toMatch(message);
    expect(db.actions.filter((a) => !a.startsWith('connect'))).toEqual([]);
  });

  it('signs the master in with verified TLS when the master secret says nothing of TLS', async () => {
    // Prepare: the app secret asks for plaintext; the master secret says nothing of TLS.
    const secretId = setup({ ssl: false });

    // Act
    await runAlt(secretId);

    // Assess
    expect(db.logins.filter((l) => l.user === 'root').map((l) => l.tls)).toEqual(['verify']);
    const others = db.logins.filter((l) => l.user !== 'root');
    expect(others.length).toBeGreaterThan(1);
    expect(new Set(others.map((l) => l.tls))).toEqual(new Set(['disable']));
  });
});
