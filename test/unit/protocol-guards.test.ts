/**
 * The guards of the protocol and of the database strategies, each by the behaviour a user relies
 * on (issue 14: mutation testing found each of them removable without a failing test).
 */
import type { GetSecretValueRequest } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { AuthenticationError, InvalidSecretError, StageError } from '../../shared/common/errors.js';
import { createRotationHandler } from '../../shared/rotation/handler.js';
import type { Strategy } from '../../shared/rotation/types.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';
import { singleUser } from '../../shared/strategies/single-user.js';
import {
  FakeSecretsManager,
  mockSecretsManager,
  serviceError,
} from '../support/fake-secrets-manager.js';
import { LogRecorder } from '../support/log-recorder.js';
import {
  appSecretValue,
  MemoryDatabase,
  seedMaster,
  UNIT_HOST,
} from '../support/memory-database.js';
import { failure, rotate, type Step, stepHelpers } from '../support/rotation-driver.js';

const HOST = UNIT_HOST;
const fake = new FakeSecretsManager();
const stub = mockSecretsManager(fake);
const context = { getRemainingTimeInMillis: () => 30_000 };
let db: MemoryDatabase;
let logs: LogRecorder;
const realGetSecretValue = fake.getSecretValue.bind(fake);

afterAll(() => stub.restore());
beforeEach(() => {
  fake.reset();
  fake.getSecretValue = realGetSecretValue;
  stub.resetHistory();
  db = new MemoryDatabase();
  logs = new LogRecorder();
});

const { event, putPending } = stepHelpers(fake);

/** Each call makes a new handler: a cold function, which reads every value from the service. */
const cold =
  <S>(strategy: () => Strategy<S>) =>
  (secretId: string, token: string, step: Step) =>
    createRotationHandler({ strategy: strategy(), logger: logs, env: {} })(
      event(secretId, token, step),
      context,
    );

/** GetSecretValue of `stage` fails with `error`; every other read answers as usual. */
function failReadsOf(stage: string, error: Error) {
  fake.getSecretValue = (input: GetSecretValueRequest) => {
    if (input.VersionStage === stage) throw error;
    return realGetSecretValue(input);
  };
}

/** A pending value as an earlier createSecret stored it. */

/** A rotation finished by hand: `value` becomes AWSCURRENT, the old one AWSPREVIOUS. */
function finishedRotation(secretId: string, value: string) {
  const from = fake.versionOf(secretId, 'AWSCURRENT');
  const token = fake.startRotation(secretId);
  putPending(secretId, token, value);
  fake.updateSecretVersionStage({
    SecretId: secretId,
    VersionStage: 'AWSCURRENT',
    MoveToVersionId: token,
    ...(from === undefined ? {} : { RemoveFromVersionId: from }),
  });
}

const singleUserStep = cold(() => singleUser(db));

describe('reading a stored value', () => {
  it.each([
    ['access denied', serviceError('AccessDeniedException', 'not authorized to GetSecretValue')],
    ['a KMS failure', serviceError('DecryptionFailure', 'KMS key is disabled')],
    ['throttling', serviceError('ThrottlingException', 'Rate exceeded')],
  ])(
    'a GetSecretValue failing with %s in testSecret fails the step and tests nothing',
    async (_, error) => {
      // Prepare: a pending value exists; reading it fails.
      db.addUser(HOST, 'app', 'current-password-1');
      const secretId = fake.createSecret({ name: 'orders/app', secretString: appSecretValue() });
      const token = fake.startRotation(secretId);
      putPending(secretId, token, appSecretValue({ password: 'pending-password-1' }));
      failReadsOf('AWSPENDING', error);

      // Act
      const thrown = await failure(singleUserStep(secretId, token, 'testSecret'));

      // Assess: the real error, and no sign-in with AWSCURRENT passed off as the test.
      expect(thrown?.name).toBe(error.name);
      expect(db.logins).toEqual([]);
    },
  );

  it('a SecretBinary AWSPENDING fails testSecret instead of testing AWSCURRENT', async () => {
    db.addUser(HOST, 'app', 'current-password-1');
    const secretId = fake.createSecret({ name: 'orders/app', secretString: appSecretValue() });
    const token = fake.startRotation(secretId);
    fake.putSecretValue({
      SecretId: secretId,
      ClientRequestToken: token,
      SecretBinary: new TextEncoder().encode('binary'),
      VersionStages: ['AWSPENDING'],
    });

    const thrown = await failure(singleUserStep(secretId, token, 'testSecret'));

    expect(thrown).toBeInstanceOf(InvalidSecretError);
    expect((thrown as InvalidSecretError).field).toBe('SecretString');
    expect(db.logins).toEqual([]);
  });

  it('a SecretBinary AWSCURRENT fails createSecret naming SecretString, and stores nothing', async () => {
    const secretId = fake.createSecret({
      name: 'orders/app',
      secretBinary: new TextEncoder().encode('binary'),
    });
    const token = fake.startRotation(secretId);

    const thrown = await failure(singleUserStep(secretId, token, 'createSecret'));

    expect(thrown).toBeInstanceOf(InvalidSecretError);
    expect((thrown as InvalidSecretError).field).toBe('SecretString');
    expect(fake.valueOfVersion(secretId, token)).toBeUndefined();
  });

  it('a secret without an AWSCURRENT value fails createSecret with a stage error, and stores nothing', async () => {
    const secretId = fake.createSecret({ name: 'orders/app' });
    const token = fake.startRotation(secretId);

    const thrown = await failure(singleUserStep(secretId, token, 'createSecret'));

    expect(thrown).toBeInstanceOf(StageError);
    expect(thrown?.message).toMatch(/no AWSCURRENT value/);
    expect(fake.valueOfVersion(secretId, token)).toBeUndefined();
  });

  it('a failed AWSPREVIOUS read in setSecret fails with that error, not as a refused sign-in', async () => {
    // Prepare: AWSCURRENT no longer signs in (the database was restored to AWSPREVIOUS's
    // password), so setSecret needs AWSPREVIOUS, whose read fails.
    db.addUser(HOST, 'app', 'previous-password-1');
    const secretId = fake.createSecret({
      name: 'orders/app',
      secretString: appSecretValue({ password: 'previous-password-1' }),
    });
    finishedRotation(secretId, appSecretValue({ password: 'current-password-2' }));
    const token = fake.startRotation(secretId);
    putPending(secretId, token, appSecretValue({ password: 'pending-password-1' }));
    failReadsOf('AWSPREVIOUS', serviceError('AccessDeniedException', 'not authorized'));

    // Act
    const thrown = await failure(singleUserStep(secretId, token, 'setSecret'));

    // Assess
    expect(thrown?.name).toBe('AccessDeniedException');
    expect(db.passwordOf(HOST, 'app')).toBe('previous-password-1');
  });
});

describe('single user', () => {
  it('succeeds without a change when AWSPENDING starts to sign in while AWSCURRENT is refused (set by an overlapping invocation)', async () => {
    // Prepare: the overlapping invocation sets the password just after our first try.
    class LateDatabase extends MemoryDatabase {
      private first = true;
      override async connect(login: Parameters<MemoryDatabase['connect']>[0]) {
        if (this.first && login.password === 'pending-password-1') {
          this.first = false;
          this.addUser(HOST, 'app', 'pending-password-1');
          throw new AuthenticationError('refused (not set yet)');
        }
        return super.connect(login);
      }
    }
    const late = new LateDatabase().addUser(HOST, 'app', 'current-password-0');
    const secretId = fake.createSecret({ name: 'orders/app', secretString: appSecretValue() });
    const token = fake.startRotation(secretId);
    putPending(secretId, token, appSecretValue({ password: 'pending-password-1' }));

    // Act
    await cold(() => singleUser(late))(secretId, token, 'setSecret');

    // Assess
    expect(late.passwordOf(HOST, 'app')).toBe('pending-password-1');
    expect(late.actions.filter((a) => a.startsWith('set password'))).toEqual([]);
  });

  /** A server whose accounts have a scope named by the secret field `accounthost` (MySQL-like). */
  class ScopedDatabase extends MemoryDatabase {
    readonly scopeField = 'accounthost';
    readonly scopes: (string | undefined)[] = [];
    override async setPassword(
      connection: Parameters<MemoryDatabase['setPassword']>[0],
      user: string,
      password: string,
      scope?: string,
    ) {
      this.scopes.push(scope);
      return super.setPassword(connection, user, password);
    }
  }

  it.each([
    ['accounthost', { accounthost: '10.0.0.%' }, { accounthost: '%' }],
    ['dbname', { dbname: 'orders' }, { dbname: 'billing' }],
  ])(
    'refuses an AWSPENDING naming another %s than AWSCURRENT, and changes nothing',
    async (field, current, pending) => {
      const scoped = new ScopedDatabase();
      scoped.addUser(HOST, 'app', 'current-password-1');
      const secretId = fake.createSecret({
        name: 'orders/app',
        secretString: appSecretValue(current),
      });
      const token = fake.startRotation(secretId);
      putPending(secretId, token, appSecretValue({ ...pending, password: 'pending-password-1' }));

      const thrown = await failure(cold(() => singleUser(scoped))(secretId, token, 'setSecret'));

      expect(thrown).toBeInstanceOf(InvalidSecretError);
      expect((thrown as InvalidSecretError).field).toBe(field);
      expect(scoped.passwordOf(HOST, 'app')).toBe('current-password-1');
      expect(scoped.logins).toEqual([]);
    },
  );

  it('changes the password in the scope both secrets name', async () => {
    const scoped = new ScopedDatabase();
    scoped.addUser(HOST, 'app', 'current-password-1');
    const secretId = fake.createSecret({
      name: 'orders/app',
      secretString: appSecretValue({ accounthost: '10.0.0.%' }),
    });
    const result = await rotate({
      fake,
      secretId,
      invoke: (e) => createRotationHandler({ strategy: singleUser(scoped), env: {} })(e, context),
    });
    expect(result.completed).toBe(true);
    expect(scoped.scopes).toEqual(['10.0.0.%']);
  });

  it("never sends AWSPREVIOUS's password to an account of another scope than AWSCURRENT's", async () => {
    // Prepare: AWSCURRENT is refused; AWSPREVIOUS holds the valid password but names another
    // accounthost (written by whoever can PutSecretValue).
    const scoped = new ScopedDatabase();
    scoped.addUser(HOST, 'app', 'previous-password-1');
    const secretId = fake.createSecret({
      name: 'orders/app',
      secretString: appSecretValue({ password: 'previous-password-1', accounthost: '%' }),
    });
    finishedRotation(secretId, appSecretValue({ accounthost: '10.0.0.%' }));
    const token = fake.startRotation(secretId);
    putPending(
      secretId,
      token,
      appSecretValue({ password: 'pending-password-1', accounthost: '10.0.0.%' }),
    );

    const thrown = await failure(cold(() => singleUser(scoped))(secretId, token, 'setSecret'));

    expect(thrown).toBeInstanceOf(AuthenticationError);
    expect(scoped.logins.filter((login) => login.user === 'app')).toHaveLength(3);
    expect(scoped.passwordOf(HOST, 'app')).toBe('previous-password-1');
    expect(logs.messages()).toContain(
      'AWSPREVIOUS names another user, host, port or account than AWSCURRENT; not sending its password there',
    );
  });
});

describe('alternating users: the master', () => {
  const alternatingStep = cold(() => alternatingUsers(db));
  function setup(app: Record<string, unknown> = {}, master: Record<string, unknown> = {}) {
    const masterArn = seedMaster(db, fake, HOST, master);
    const secretId = fake.createSecret({
      name: 'orders/app',
      secretString: appSecretValue({ masterarn: masterArn, ...app }),
    });
    return { secretId, masterArn };
  }
  const run = (secretId: string) =>
    rotate({
      fake,
      secretId,
      invoke: (e) => createRotationHandler({ strategy: alternatingUsers(db), env: {} })(e, context),
    });
  const masterLogins = () => db.logins.filter((login) => login.user === 'root');

  it.each([
    ['AWSCURRENT is the master user', { username: 'root', password: 'master-password-1' }],
    ['AWSPENDING would be the master user', { username: 'root_clone', password: 'x' }],
  ])('refuses to rotate when %s, and changes no password', async (_, app) => {
    db.addUser(HOST, 'root_clone', 'x');
    const { secretId } = setup(app);

    const result = await run(secretId);

    expect(result.failedStep).toBe('setSecret');
    expect(result.error).toBeInstanceOf(InvalidSecretError);
    expect((result.error as InvalidSecretError).field).toBe('username');
    expect(db.actions.filter((a) => /^(set password|create|sync)/.test(a))).toEqual([]);
    expect(db.passwordOf(HOST, 'root')).toBe('master-password-1');
  });

  it.each([
    ['absent', {}],
    ['false (plaintext)', { ssl: false }],
  ])(
    'a master secret without "ssl" signs in only over verified TLS when the application secret\'s ssl is %s',
    async (_, app) => {
      const { secretId } = setup(app);
      expect((await run(secretId)).completed).toBe(true);
      expect(masterLogins().map((login) => login.tls)).toEqual(['verify']);
    },
  );

  it('a master secret with "ssl": true is never signed in to without verification, whatever the application secret says', async () => {
    const { secretId } = setup({ ssl: false }, { ssl: true });
    expect((await run(secretId)).completed).toBe(true);
    expect(masterLogins().map((login) => login.tls)).toEqual(['verify']);
  });

  it.each([
    [false, 'disable'],
    ['FALSE', 'disable'],
    [true, 'verify'],
  ])('the master secret\'s own "ssl": %j decides its sign-in (%s)', async (ssl, tls) => {
    const { secretId } = setup({ ssl: true }, { ssl });
    expect((await run(secretId)).completed).toBe(true);
    expect(masterLogins().map((login) => login.tls)).toEqual([tls]);
  });

  it('refuses a master secret whose "ssl" is not true or false, naming the field', async () => {
    const { secretId } = setup({}, { ssl: 'maybe' });
    const result = await run(secretId);
    expect(result.error).toBeInstanceOf(InvalidSecretError);
    expect((result.error as InvalidSecretError).field).toBe('ssl');
    expect(masterLogins()).toEqual([]);
  });

  it('signs the master in to its own dbname when its secret names one', async () => {
    const { secretId } = setup({ dbname: 'orders' }, { dbname: 'admin' });
    expect((await run(secretId)).completed).toBe(true);
    expect(masterLogins().map((login) => login.database)).toEqual(['admin']);
  });

  it("refuses a master secret for another host, before the master's password is sent", async () => {
    const { secretId } = setup({}, { host: 'elsewhere.example.com' });
    db.addUser('elsewhere.example.com', 'root', 'master-password-1', { superuser: true });
    const result = await run(secretId);
    expect((result.error as InvalidSecretError).field).toBe('masterarn');
    expect(masterLogins()).toEqual([]);
  });

  it('a step of a rotation whose master is unreadable names masterarn', async () => {
    const { secretId, masterArn } = setup();
    const token = fake.startRotation(secretId);
    putPending(
      secretId,
      token,
      appSecretValue({ username: 'app_clone', password: 'p-1', masterarn: masterArn }),
    );
    fake.deleteSecret({ SecretId: masterArn, ForceDeleteWithoutRecovery: true });
    const thrown = await failure(alternatingStep(secretId, token, 'setSecret'));
    expect((thrown as InvalidSecretError).field).toBe('masterarn');
  });
});

describe('redaction by the protocol itself', () => {
  /** A strategy that reads another secret and logs what it read: the protocol must redact it. */
  interface Value {
    n: number;
    other?: string;
  }
  const chatty = (use: (step: Parameters<Strategy<Value>['createPending']>[0]) => Promise<void>) =>
    ({
      parse: (text) => JSON.parse(text) as Value,
      serialize: (value) => JSON.stringify(value),
      secretsOf: () => [],
      async createPending(step) {
        await use(step);
        return { n: (await step.current()).n + 1 };
      },
      async setPending() {},
      async testPending() {},
    }) satisfies Strategy<Value>;
  const runCreate = async (strategy: Strategy<Value>) => {
    const secretId = fake.createSecret({ name: 'app', secretString: '{"n":1}' });
    const token = fake.startRotation(secretId);
    return createRotationHandler({ strategy, logger: logs, env: {} })(
      event(secretId, token, 'createSecret'),
      context,
    ).then(
      () => undefined,
      (error: unknown) => error as Error,
    );
  };

  it('never logs a credential field of another secret (master, managing secret) that a strategy read, nor puts it in an error', async () => {
    const other = fake.createSecret({
      name: 'master',
      secretString: JSON.stringify({
        username: 'root',
        password: 'master-password-9',
        private_key: 'private-key-9',
        auth_token: 'auth-token-9',
        host: 'db.example.com',
      }),
    });
    const thrown = await runCreate(
      chatty(async (step) => {
        const raw = JSON.parse((await step.otherSecret(other)).secretString);
        step.logger.info('read the other secret', raw);
        throw new Error(`the driver quoted ${raw.password} and ${raw.private_key}`);
      }),
    );
    const text = `${logs.text()}\n${thrown?.message}`;
    for (const value of ['master-password-9', 'private-key-9', 'auth-token-9']) {
      expect(text).not.toContain(value);
    }
    // Fields that are not credentials stay readable.
    expect(text).toContain('db.example.com');
  });

  it('never logs another secret that is not a JSON object, whole', async () => {
    const other = fake.createSecret({ name: 'token', secretString: 'plain-token-value-9' });
    await runCreate(
      chatty(async (step) => {
        step.logger.info('read', { value: (await step.otherSecret(other)).secretString });
      }),
    );
    expect(logs.text()).not.toContain('plain-token-value-9');
  });

  it('never logs a value a strategy handed to redact()', async () => {
    const thrown = await runCreate(
      chatty(async (step) => {
        step.redact('minted-key-9');
        step.logger.info('minted', { key: 'minted-key-9' });
        throw new Error('provider said: minted-key-9 is invalid');
      }),
    );
    expect(logs.text()).not.toContain('minted-key-9');
    expect(thrown?.message).not.toContain('minted-key-9');
  });
});

describe('finishSecret', () => {
  /** A key-like strategy that records afterFinish. */
  let finished: string[];
  const keys: Strategy<{ id: string }> = {
    parse: (text) => JSON.parse(text) as { id: string },
    serialize: (value) => JSON.stringify(value),
    secretsOf: () => [],
    async createPending(step) {
      return { id: `${(await step.current()).id}+1` };
    },
    async setPending() {},
    async testPending() {},
    async afterFinish(step) {
      finished.push((await step.pending()).id);
    },
  };
  const keyStep = cold(() => keys);
  beforeEach(() => {
    finished = [];
  });
  async function readyToFinish() {
    const secretId = fake.createSecret({ name: 'key', secretString: '{"id":"k0"}' });
    const token = fake.startRotation(secretId);
    for (const name of ['createSecret', 'setSecret', 'testSecret'] as const) {
      await keyStep(secretId, token, name);
    }
    return { secretId, token, holder: fake.versionOf(secretId) as string };
  }

  it('that lost a label race and finds AWSCURRENT elsewhere fails, and runs no afterFinish', async () => {
    const { secretId, token, holder } = await readyToFinish();
    fake.failNext(
      'UpdateSecretVersionStage',
      serviceError('InvalidParameterException', 'the label is on another version'),
    );

    const thrown = await failure(keyStep(secretId, token, 'finishSecret'));

    expect(thrown?.name).toBe('InvalidParameterException');
    expect(fake.versionOf(secretId)).toBe(holder);
    expect(finished).toEqual([]);
  });

  it('that lost a label race to an overlapping invocation that moved AWSCURRENT to the token succeeds, and runs afterFinish', async () => {
    const { secretId, token } = await readyToFinish();
    fake.failNext(
      'UpdateSecretVersionStage',
      serviceError('InvalidParameterException', 'the label is on another version'),
      { afterEffect: true },
    );

    await keyStep(secretId, token, 'finishSecret');

    expect(fake.versionOf(secretId)).toBe(token);
    expect(finished).toEqual(['k0+1']);
  });

  it('whose UpdateSecretVersionStage failed for another reason fails even if the label moved, so the service retries', async () => {
    const { secretId, token } = await readyToFinish();
    fake.failNext(
      'UpdateSecretVersionStage',
      serviceError('InternalServiceError', 'lost answer', 'server'),
      { afterEffect: true },
    );

    const thrown = await failure(keyStep(secretId, token, 'finishSecret'));

    expect(thrown?.name).toBe('InternalServiceError');
    expect(finished).toEqual([]);
  });

  it('on a cold function lets afterFinish read AWSCURRENT as it was before the move', async () => {
    // Prepare: a strategy that asks for AWSCURRENT only in afterFinish.
    const seen: string[] = [];
    const late = cold(() => ({
      ...keys,
      async afterFinish(step) {
        seen.push((await step.current()).id);
      },
    }));
    const { secretId, token } = await readyToFinish();

    await late(secretId, token, 'finishSecret');

    expect(fake.versionOf(secretId)).toBe(token);
    expect(seen).toEqual(['k0']);
  });
});
