/**
 * Behaviour of the protocol and the database strategies that mutation testing found unpinned
 * (issue 14): metrics and time budget, the value cache, the master secret's own fields, the
 * confused-deputy proof, and which AWSPREVIOUS may receive a password.
 */
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  InvalidEventError,
  InvalidSecretError,
  StageError,
} from '../../shared/common/errors.js';
import { createRotationHandler } from '../../shared/rotation/handler.js';
import type { StepOutcome } from '../../shared/rotation/metrics.js';
import { VersionCache } from '../../shared/rotation/secrets-store.js';
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
import { probing } from '../support/probing-strategy.js';
import { failure, rotate, type Step, stepHelpers } from '../support/rotation-driver.js';

const HOST = UNIT_HOST;
const fake = new FakeSecretsManager();
const stub = mockSecretsManager(fake);
const context = { getRemainingTimeInMillis: () => 30_000 };
const realRandomPassword = fake.getRandomPassword.bind(fake);
let db: MemoryDatabase;
let logs: LogRecorder;

afterAll(() => stub.restore());
beforeEach(() => {
  fake.reset();
  fake.getRandomPassword = realRandomPassword;
  stub.resetHistory();
  db = new MemoryDatabase();
  logs = new LogRecorder();
});

const { event, putPending } = stepHelpers(fake);
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

describe('metrics, budget and log context', () => {
  it('records success for work done, skipped for a version already AWSCURRENT, and a real duration', async () => {
    const recorded: { step: string; outcome: StepOutcome; ms: number }[] = [];
    const metrics = {
      record: (step: Step, outcome: StepOutcome, ms: number) =>
        void recorded.push({ step, outcome, ms }),
    };
    const handler = createRotationHandler({ strategy: probing(), env: {}, metrics });
    const secretId = fake.createSecret({ name: 'app', secretString: '{"n":1}' });
    const result = await rotate({ fake, secretId, invoke: (e) => handler(e, context) });
    await handler(event(secretId, result.token, 'createSecret'), context);
    // A rerun createSecret before finish: the value exists, the step still succeeds.
    const second = fake.startRotation(secretId);
    await handler(event(secretId, second, 'createSecret'), context);
    await handler(event(secretId, second, 'createSecret'), context);

    expect(recorded.map(({ step, outcome }) => `${step} ${outcome}`)).toEqual([
      'createSecret success',
      'setSecret success',
      'testSecret success',
      'finishSecret success',
      'createSecret skipped',
      'createSecret success',
      'createSecret success',
    ]);
    for (const { ms } of recorded) {
      expect(ms).toBeGreaterThanOrEqual(0);
      expect(ms).toBeLessThan(10_000);
    }
  });

  it('records no metric, and fails with the event error, for an event that does not parse', async () => {
    const recorded: string[] = [];
    const handler = createRotationHandler({
      strategy: probing(),
      env: {},
      metrics: { record: (step) => void recorded.push(step) },
    });
    const thrown = await failure(handler({ Step: 'rotate' }, context));
    expect(thrown).toBeInstanceOf(InvalidEventError);
    expect(recorded).toEqual([]);
  });

  it('gives a step the Lambda time left minus a 2 s margin, or 60 s without a Lambda context', async () => {
    const budgets: number[] = [];
    const strategy = probing(async (step) => void budgets.push(step.remainingMs()));
    const secretId = fake.createSecret({ name: 'app', secretString: '{"n":1}' });
    const token = fake.startRotation(secretId);
    await createRotationHandler({ strategy, env: {} })(event(secretId, token, 'createSecret'), {
      getRemainingTimeInMillis: () => 30_000,
    });
    const other = fake.createSecret({ name: 'other', secretString: '{"n":1}' });
    const next = fake.startRotation(other);
    await createRotationHandler({ strategy, env: {}, safetyMarginMs: 500 })(
      event(other, next, 'createSecret'),
    );
    expect(budgets[0]).toBeGreaterThan(27_000);
    expect(budgets[0]).toBeLessThanOrEqual(28_000);
    expect(budgets[1]).toBeGreaterThan(58_000);
    expect(budgets[1]).toBeLessThanOrEqual(59_500);
  });

  it('names the step, the secret and the token on every log line', async () => {
    const strategy = probing(async (step) => step.logger.info('probe'));
    const secretId = fake.createSecret({ name: 'app', secretString: '{"n":1}' });
    const token = fake.startRotation(secretId);
    await createRotationHandler({ strategy, logger: logs, env: {} })(
      event(secretId, token, 'createSecret'),
      context,
    );
    const probe = logs.lines.find((line) => line.message === 'probe');
    expect(probe?.attributes).toMatchObject({
      step: 'createSecret',
      secretId: fake.arnOf(secretId),
      token,
    });
  });

  it("gives the strategy the secret's ARN and name even when the event names the secret by name", async () => {
    const seen: string[] = [];
    const strategy = probing(async (step) => void seen.push(step.secretId, step.secretName));
    const arn = fake.createSecret({ name: 'orders/app', secretString: '{"n":1}' });
    const token = fake.startRotation(arn);
    await createRotationHandler({ strategy, env: {} })(
      { Step: 'createSecret', SecretId: 'orders/app', ClientRequestToken: token },
      context,
    );
    expect(seen).toEqual([arn, 'orders/app']);
  });
});

describe('generated and strategy-made secrets', () => {
  it('never logs a generated password, even when the strategy logs it before storing', async () => {
    const strategy = probing(async () => {}, {
      async createPending(step) {
        const password = await step.generatePassword();
        step.logger.info('generated', { password });
        return { n: 2 };
      },
    });
    const secretId = fake.createSecret({ name: 'app', secretString: '{"n":1}' });
    const token = fake.startRotation(secretId);
    await createRotationHandler({ strategy, logger: logs, env: {} })(
      event(secretId, token, 'createSecret'),
      context,
    );
    const generated = logs.lines.find((line) => line.message === 'generated');
    expect(generated).toBeDefined();
    expect(JSON.stringify(generated?.attributes)).not.toMatch(/"password":"[^*"]{8,}/);
  });

  it('never logs a secret the strategy reports through secretsOf, before it is ever stored', async () => {
    // The value never reaches Secrets Manager: PutSecretValue fails and discardPending logs it.
    const strategy: Strategy<{ key: string }> = {
      parse: (text) => JSON.parse(text) as { key: string },
      serialize: (value) => JSON.stringify(value),
      secretsOf: (value) => [value.key],
      async createPending() {
        return { key: 'minted-key-value-7' };
      },
      async discardPending(step, value) {
        step.logger.info('revoking', { key: value.key });
      },
      async setPending() {},
      async testPending() {},
    };
    const secretId = fake.createSecret({ name: 'app', secretString: '{"key":"first-key-7"}' });
    const token = fake.startRotation(secretId);
    fake.failNext('PutSecretValue', serviceError('InternalServiceError', 'boom', 'server'));
    await failure(
      createRotationHandler({ strategy, logger: logs, env: {} })(
        event(secretId, token, 'createSecret'),
        context,
      ),
    );
    expect(logs.messages()).toContain('revoking');
    expect(logs.text()).not.toContain('minted-key-value-7');
  });

  it('fails createSecret, storing nothing, when GetRandomPassword answers no password', async () => {
    fake.getRandomPassword = () => ({});
    db.addUser(HOST, 'app', 'current-password-1');
    const secretId = fake.createSecret({ name: 'orders/app', secretString: appSecretValue() });
    const token = fake.startRotation(secretId);
    const thrown = await failure(
      createRotationHandler({ strategy: singleUser(db), env: {} })(
        event(secretId, token, 'createSecret'),
        context,
      ),
    );
    expect(thrown).toBeInstanceOf(StageError);
    expect(fake.valueOfVersion(secretId, token)).toBeUndefined();
  });

  it("fails createSecret with the service's own error when PutSecretValue fails for a strategy with nothing to discard", async () => {
    db.addUser(HOST, 'app', 'current-password-1');
    const secretId = fake.createSecret({ name: 'orders/app', secretString: appSecretValue() });
    fake.failNext('PutSecretValue', serviceError('InternalServiceError', 'boom', 'server'));
    const result = await rotate({
      fake,
      secretId,
      invoke: (e) => createRotationHandler({ strategy: singleUser(db), env: {} })(e, context),
    });
    expect(result.failedStep).toBe('createSecret');
    expect((result.error as Error).name).toBe('InternalServiceError');
  });

  it('keeps the new credential, and fails, when PutSecretValue fails and the read-back fails too', async () => {
    const discarded: number[] = [];
    const strategy = probing(async () => {}, {
      async discardPending(_, value) {
        discarded.push(value.n);
      },
    });
    const secretId = fake.createSecret({ name: 'app', secretString: '{"n":1}' });
    const token = fake.startRotation(secretId);
    fake.failNext('PutSecretValue', serviceError('InternalServiceError', 'boom', 'server'));
    const read = fake.getSecretValue.bind(fake);
    let reads = 0;
    fake.getSecretValue = (input) => {
      // The third read is the read-back after the failed write.
      if (++reads === 3) throw serviceError('InternalServiceError', 'also down', 'server');
      return read(input);
    };
    const thrown = await failure(
      createRotationHandler({ strategy, logger: logs, env: {} })(
        event(secretId, token, 'createSecret'),
        context,
      ),
    );
    fake.getSecretValue = read;
    expect(thrown?.name).toBe('InternalServiceError');
    expect(discarded).toEqual([]);
    expect(logs.lines.find((line) => line.level === 'warn')?.attributes.stored).toBe('unknown');
  });

  it('wraps the service error as the cause when it discarded the new credential', async () => {
    const strategy = probing(async () => {}, { async discardPending() {} });
    const secretId = fake.createSecret({ name: 'app', secretString: '{"n":1}' });
    const token = fake.startRotation(secretId);
    fake.failNext('PutSecretValue', serviceError('InternalServiceError', 'boom', 'server'));
    const thrown = await failure(
      createRotationHandler({ strategy, env: {} })(event(secretId, token, 'createSecret'), context),
    );
    expect((thrown as Error).cause).toMatchObject({ name: 'InternalServiceError' });
  });
});

describe('the version cache of a warm function', () => {
  it('keeps at most its capacity, dropping the entry written longest ago', () => {
    const cache = new VersionCache(2);
    cache.set('s', 'a', 'A');
    cache.set('s', 'b', 'B');
    cache.set('s', 'a', 'A');
    cache.set('s', 'c', 'C');
    expect([cache.get('s', 'a'), cache.get('s', 'b'), cache.get('s', 'c')]).toEqual([
      'A',
      undefined,
      'C',
    ]);
  });

  it('keeps entries of different secrets apart', () => {
    const cache = new VersionCache();
    cache.set('s1', 'v', 'one');
    expect(cache.get('s2', 'v')).toBeUndefined();
    expect(cache.get('s1', 'v')).toBe('one');
  });
});

describe('single user: where AWSPREVIOUS may sign in', () => {
  it.each([
    ['user', { username: 'other' }],
    ['host', { host: 'other.example.com' }],
    ['port', { port: 5433 }],
    ['dbname', { dbname: 'other' }],
  ])(
    "never sends AWSPREVIOUS's password when it names another %s than AWSCURRENT",
    async (_, previous) => {
      // AWSPREVIOUS holds the password that works, but points elsewhere.
      db.addUser(HOST, 'app', 'previous-password-1');
      db.addUser('other.example.com', 'app', 'previous-password-1');
      db.addUser(HOST, 'other', 'previous-password-1');
      const secretId = fake.createSecret({
        name: 'orders/app',
        secretString: appSecretValue({ password: 'previous-password-1', ...previous }),
      });
      finishedRotation(secretId, appSecretValue({ password: 'stale-password' }));
      const token = fake.startRotation(secretId);
      putPending(secretId, token, appSecretValue({ password: 'pending-password-1' }));

      const thrown = await failure(
        createRotationHandler({ strategy: singleUser(db), logger: logs, env: {} })(
          event(secretId, token, 'setSecret'),
          context,
        ),
      );

      expect(thrown).toBeInstanceOf(AuthenticationError);
      expect(db.actions.filter((a) => a.startsWith('set password'))).toEqual([]);
    },
  );

  it('falls back to an AWSPREVIOUS of the same account', async () => {
    db.addUser(HOST, 'app', 'previous-password-1');
    const secretId = fake.createSecret({
      name: 'orders/app',
      secretString: appSecretValue({ password: 'previous-password-1' }),
    });
    finishedRotation(secretId, appSecretValue({ password: 'stale-password' }));
    const token = fake.startRotation(secretId);
    putPending(secretId, token, appSecretValue({ password: 'pending-password-1' }));
    await createRotationHandler({ strategy: singleUser(db), env: {} })(
      event(secretId, token, 'setSecret'),
      context,
    );
    expect(db.passwordOf(HOST, 'app')).toBe('pending-password-1');
  });

  it('fails the configuration check (testSecret before createSecret) when AWSCURRENT signs in but cannot run a query', async () => {
    db.addUser(HOST, 'app', 'current-password-1');
    db.failPing = true;
    const secretId = fake.createSecret({ name: 'orders/app', secretString: appSecretValue() });
    const token = fake.startRotation(secretId);
    const thrown = await failure(
      createRotationHandler({ strategy: singleUser(db), env: {} })(
        event(secretId, token, 'testSecret'),
        context,
      ),
    );
    expect(thrown?.message).toMatch(/permission denied for the test query/);
  });
});

describe('alternating users: proof, master secret and retries', () => {
  function setup(app: Record<string, unknown> = {}, master: Record<string, unknown> = {}) {
    const masterArn = seedMaster(db, fake, HOST, master);
    return fake.createSecret({
      name: 'orders/app',
      secretString: appSecretValue({ masterarn: masterArn, ...app }),
    });
  }
  const handler = (options: Parameters<typeof alternatingUsers>[1] = {}) =>
    createRotationHandler({ strategy: alternatingUsers(db, options), logger: logs, env: {} });
  const run = (secretId: string, options: Parameters<typeof alternatingUsers>[1] = {}) =>
    rotate({ fake, secretId, invoke: (e) => handler(options)(e, context) });
  const masterLogins = () => db.logins.filter((login) => login.user === 'root');

  it('refuses to use the master when AWSCURRENT does not sign in (whoever wrote the secret must hold working credentials)', async () => {
    const secretId = setup({ password: 'guessed-password' });
    const result = await run(secretId);
    expect(result.failedStep).toBe('setSecret');
    expect(result.error).toBeInstanceOf(AuthenticationError);
    expect(masterLogins()).toEqual([]);
    expect(db.user(HOST, 'app_clone')).toBeUndefined();
  });

  it('a retried setSecret whose AWSPENDING already signs in changes no password and leaves no session open', async () => {
    const secretId = setup();
    const token = fake.startRotation(secretId);
    for (const step of ['createSecret', 'setSecret', 'setSecret'] as const) {
      await handler()(event(secretId, token, step), context);
    }
    expect(
      db.actions.filter((a) => a.startsWith('set password') || a.startsWith('create')),
    ).toEqual([`create app_clone@${HOST} like app`]);
    expect(db.open.size).toBe(0);
  });

  it('accepts a clone name exactly at the length limit', async () => {
    const name = 'u'.repeat(57);
    db.addUser(HOST, name, 'current-password-1');
    const secretId = setup({ username: name });
    const result = await run(secretId);
    expect(result.completed, String(result.error)).toBe(true);
    expect(db.user(HOST, `${name}_clone`)).toBeDefined();
  });

  it('refuses a master secret for another engine, naming engine', async () => {
    const secretId = setup({}, { engine: 'mysql' });
    const result = await run(secretId);
    expect((result.error as InvalidSecretError).field).toBe('engine');
    expect(masterLogins()).toEqual([]);
  });

  it('names masterarn, with a stage error as the cause, when the master secret has no value', async () => {
    db.addUser(HOST, 'app', 'current-password-1');
    const masterArn = fake.createSecret({ name: 'empty-master' });
    const secretId = fake.createSecret({
      name: 'orders/app',
      secretString: appSecretValue({ masterarn: masterArn }),
    });
    const result = await run(secretId);
    expect((result.error as InvalidSecretError).field).toBe('masterarn');
    expect((result.error as Error).cause).toBeInstanceOf(StageError);
  });

  describe('an RDS-managed master secret (credentials only, tagged with the database)', () => {
    const INSTANCE = 'arn:aws:rds:us-east-1:123456789012:db:orders';
    function rdsMaster(tags: { Key: string; Value: string }[]) {
      db.addUser(HOST, 'app', 'current-password-1');
      db.addUser(HOST, 'root', 'master-password-1', { superuser: true });
      const masterArn = fake.createSecret({
        name: 'rds!db-orders',
        secretString: JSON.stringify({ username: 'root', password: 'master-password-1' }),
        tags,
      });
      return fake.createSecret({
        name: 'orders/app',
        secretString: appSecretValue({ masterarn: masterArn }),
      });
    }

    it('finds the host through the RDS API from the instance tag, among several endpoints', async () => {
      const asked: string[] = [];
      const secretId = rdsMaster([{ Key: 'aws:rds:primaryDBInstanceArn', Value: INSTANCE }]);
      const result = await run(secretId, {
        resolveRdsEndpoint: async (arn) => {
          asked.push(arn);
          return { hosts: ['writer.example.com', HOST], port: 5432, engine: 'postgres' };
        },
      });
      expect(result.completed, String(result.error)).toBe(true);
      expect(asked).toEqual([INSTANCE]);
      expect(masterLogins().map((login) => login.tls)).toEqual(['verify']);
    });

    it('refuses when RDS reports another engine, naming engine', async () => {
      const secretId = rdsMaster([{ Key: 'aws:rds:primaryDBInstanceArn', Value: INSTANCE }]);
      const result = await run(secretId, {
        resolveRdsEndpoint: async () => ({ hosts: [HOST], port: 5432, engine: 'mysql' }),
      });
      expect((result.error as InvalidSecretError).field).toBe('engine');
      expect(masterLogins()).toEqual([]);
    });

    it('refuses when the RDS endpoint is not the host of AWSCURRENT', async () => {
      const secretId = rdsMaster([{ Key: 'aws:rds:primaryDBInstanceArn', Value: INSTANCE }]);
      const result = await run(secretId, {
        resolveRdsEndpoint: async () => ({
          hosts: ['elsewhere.example.com'],
          port: 5432,
          engine: 'postgres',
        }),
      });
      expect((result.error as InvalidSecretError).field).toBe('masterarn');
      expect(masterLogins()).toEqual([]);
    });

    it('names host when the secret has neither host nor RDS tag', async () => {
      const secretId = rdsMaster([{ Key: 'team', Value: 'orders' }]);
      const result = await run(secretId, {
        resolveRdsEndpoint: async () => ({ hosts: [HOST], port: 5432, engine: 'postgres' }),
      });
      expect((result.error as InvalidSecretError).field).toBe('host');
    });
  });
});

describe('more of the protocol', () => {
  it('records a failure metric, with the error name and a real duration, for a step that fails', async () => {
    const recorded: { outcome: StepOutcome; ms: number; error?: string }[] = [];
    const metrics = {
      record: (_: Step, outcome: StepOutcome, ms: number, error?: string) =>
        void recorded.push({ outcome, ms, ...(error ? { error } : {}) }),
    };
    const secretId = fake.createSecret({ name: 'app', secretString: '{"n":1}' });
    const token = fake.startRotation(secretId);
    const failing = probing(async () => {
      throw new StageError('no');
    });
    await failure(
      createRotationHandler({ strategy: failing, env: {}, metrics })(
        event(secretId, token, 'createSecret'),
        context,
      ),
    );
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatchObject({ outcome: 'failure', error: 'StageError' });
    expect(recorded[0]?.ms).toBeGreaterThanOrEqual(0);
    expect(recorded[0]?.ms).toBeLessThan(10_000);
  });

  it('records success for the configuration check and for a createSecret that kept an overlapping value', async () => {
    const outcomes: string[] = [];
    const metrics = {
      record: (step: Step, outcome: StepOutcome) => void outcomes.push(`${step} ${outcome}`),
    };
    const secretId = fake.createSecret({ name: 'app', secretString: '{"n":1}' });
    const token = fake.startRotation(secretId);
    const strategy = probing(async () => {}, {
      async testCurrent() {},
      async createPending() {
        // The overlapping invocation stores first.
        putPending(secretId, token, '{"n":7}');
        return { n: 2 };
      },
    });
    const handler = createRotationHandler({ strategy, env: {}, metrics });
    await handler(event(secretId, token, 'testSecret'), context);
    await handler(event(secretId, token, 'createSecret'), context);
    expect(outcomes).toEqual(['testSecret success', 'createSecret success']);
    expect(fake.valueOf(secretId, 'AWSPENDING')).toBe('{"n":7}');
  });

  it('fails createSecret when an overlapping invocation stored first and discarding ours fails', async () => {
    const secretId = fake.createSecret({ name: 'app', secretString: '{"n":1}' });
    const token = fake.startRotation(secretId);
    const strategy = probing(async () => {}, {
      async createPending() {
        putPending(secretId, token, '{"n":7}');
        return { n: 2 };
      },
      async discardPending() {
        throw new Error('the provider is down');
      },
    });
    const thrown = await failure(
      createRotationHandler({ strategy, logger: logs, env: {} })(
        event(secretId, token, 'createSecret'),
        context,
      ),
    );
    expect(thrown?.message).toMatch(/discarding ours failed/);
    expect(logs.lines.some((line) => line.level === 'error')).toBe(true);
  });

  it('reads another secret once per invocation, however often the strategy asks', async () => {
    const other = fake.createSecret({ name: 'master', secretString: '{"password":"pw-other-1"}' });
    const secretId = fake.createSecret({ name: 'app', secretString: '{"n":1}' });
    const token = fake.startRotation(secretId);
    const seen: unknown[] = [];
    const strategy = probing(async (step) => {
      seen.push(await step.otherSecret(other), await step.otherSecret(other));
    });
    stub.resetHistory();
    fake.calls.length = 0;
    await createRotationHandler({ strategy, env: {} })(
      event(secretId, token, 'createSecret'),
      context,
    );
    const reads = fake.calls.filter(
      (call) =>
        call.command === 'GetSecretValue' &&
        (call.input as { SecretId?: string }).SecretId === other,
    );
    expect(reads).toHaveLength(1);
    expect(seen[0]).toBe(seen[1]);
  });

  it("gives the strategy the secret's name from DescribeSecret when the event names it by ARN", async () => {
    const seen: string[] = [];
    const strategy = probing(async (step) => void seen.push(step.secretName));
    const arn = fake.createSecret({ name: 'orders/app', secretString: '{"n":1}' });
    const token = fake.startRotation(arn);
    await createRotationHandler({ strategy, env: {} })(event(arn, token, 'createSecret'), context);
    expect(seen).toEqual(['orders/app']);
  });

  it.each([
    ['a JSON string', '"plain-token-json-9"', 'plain-token-json-9'],
    ['plain text', 'plain-token-text-9', 'plain-token-text-9'],
  ])(
    'never logs another secret that is %s, whole, and lets the strategy use it',
    async (_, stored, value) => {
      const other = fake.createSecret({ name: 'token', secretString: stored });
      const secretId = fake.createSecret({ name: 'app', secretString: '{"n":1}' });
      const token = fake.startRotation(secretId);
      const strategy = probing(async (step) => {
        step.logger.info('read', { value: (await step.otherSecret(other)).secretString });
      });
      await createRotationHandler({ strategy, logger: logs, env: {} })(
        event(secretId, token, 'createSecret'),
        context,
      );
      expect(logs.messages()).toContain('read');
      expect(logs.text()).not.toContain(value);
    },
  );
});

describe('alternating users: more of the master', () => {
  function setup(master: Record<string, unknown> = {}) {
    const masterArn = seedMaster(db, fake, HOST, master);
    return fake.createSecret({
      name: 'orders/app',
      secretString: appSecretValue({ masterarn: masterArn }),
    });
  }
  const run = (secretId: string, database: MemoryDatabase = db, options = {}) =>
    rotate({
      fake,
      secretId,
      invoke: (e) =>
        createRotationHandler({ strategy: alternatingUsers(database, options), env: {} })(
          e,
          context,
        ),
    });

  it('treats "ssl": null in the master secret as absent: verified TLS', async () => {
    const secretId = setup({ ssl: null });
    expect((await run(secretId)).completed).toBe(true);
    expect(db.logins.filter((l) => l.user === 'root').map((l) => l.tls)).toEqual(['verify']);
  });

  it('fails with a configuration error, keeping the cause, when the RDS API cannot be asked', async () => {
    db.addUser(HOST, 'app', 'current-password-1');
    const masterArn = fake.createSecret({
      name: 'rds!db',
      secretString: JSON.stringify({ username: 'root', password: 'master-password-1' }),
      tags: [{ Key: 'aws:rds:primaryDBClusterArn', Value: 'arn:aws:rds:us-east-1:1:cluster:c' }],
    });
    const secretId = fake.createSecret({
      name: 'orders/app',
      secretString: appSecretValue({ masterarn: masterArn }),
    });
    const denied = new Error('AccessDenied: rds:DescribeDBClusters');
    const result = await run(secretId, db, {
      resolveRdsEndpoint: async () => {
        throw denied;
      },
    });
    expect((result.error as Error).name).toBe('ConfigurationError');
    expect((result.error as Error).cause).toBe(denied);
  });

  /** A server whose accounts have a scope (MySQL-like): the proof names one. */
  class ScopedDatabase extends MemoryDatabase {
    readonly scopeField = 'accounthost';
    proved: string | undefined = '10.0.0.%';
    serverScope: string | undefined = '10.0.0.%';
    readonly scopes: string[] = [];
    existsRace = false;
    async signedInScope() {
      return this.proved;
    }
    async accountScope() {
      return this.serverScope;
    }
    override async userExists(
      connection: Parameters<MemoryDatabase['userExists']>[0],
      user: string,
      scope?: string,
    ) {
      this.scopes.push(`exists ${scope}`);
      return this.existsRace ? false : super.userExists(connection, user);
    }
    override async createUserLike(
      connection: Parameters<MemoryDatabase['createUserLike']>[0],
      user: string,
      password: string,
      like: string,
      scope?: string,
    ) {
      this.scopes.push(`create ${scope}`);
      if (this.existsRace && this.user(HOST, user)) {
        const { UserExistsError } = await import('../../shared/common/errors.js');
        throw new UserExistsError(`user "${user}" exists`);
      }
      return super.createUserLike(connection, user, password, like);
    }
    override async setPassword(
      connection: Parameters<MemoryDatabase['setPassword']>[0],
      user: string,
      password: string,
      scope?: string,
    ) {
      this.scopes.push(`set ${scope}`);
      return super.setPassword(connection, user, password);
    }
  }
  function scopedSetup(scoped: ScopedDatabase, app: Record<string, unknown> = {}) {
    const masterArn = seedMaster(scoped, fake, HOST);
    return fake.createSecret({
      name: 'orders/app',
      secretString: appSecretValue({ masterarn: masterArn, ...app }),
    });
  }

  it('acts in the scope the proof signed in to, read from the server when the secret names none', async () => {
    const scoped = new ScopedDatabase();
    const secretId = scopedSetup(scoped);
    const first = await run(secretId, scoped);
    const second = await run(secretId, scoped);
    expect([first.completed, second.completed]).toEqual([true, true]);
    expect(scoped.scopes).toEqual([
      'exists 10.0.0.%',
      'create 10.0.0.%',
      'exists 10.0.0.%',
      'set 10.0.0.%',
    ]);
  });

  it('compares scopes without case', async () => {
    const scoped = new ScopedDatabase();
    scoped.proved = 'app-host.internal';
    const secretId = scopedSetup(scoped, { accounthost: 'App-Host.INTERNAL' });
    expect((await run(secretId, scoped)).completed).toBe(true);
  });

  it('accepts a master secret that names a host but no engine', async () => {
    const secretId = setup({ engine: undefined });
    expect((await run(secretId)).completed).toBe(true);
  });

  it.each([
    ['the secret names another scope', { accounthost: '%' }, '10.0.0.%'],
    ['the server finds another', {}, '%'],
  ])(
    'refuses to act when %s than the proof, naming the scope field',
    async (_, app, serverScope) => {
      const scoped = new ScopedDatabase();
      scoped.serverScope = serverScope;
      if (serverScope === undefined) scoped.proved = '10.0.0.%';
      const secretId = scopedSetup(scoped, app);
      if (serverScope === undefined) scoped.serverScope = undefined;
      const result = await run(secretId, scoped);
      expect(result.error).toBeInstanceOf(InvalidSecretError);
      expect((result.error as InvalidSecretError).field).toBe('accounthost');
      expect(scoped.scopes).toEqual([]);
    },
  );

  it('carries on with the clone an overlapping invocation created first', async () => {
    const scoped = new ScopedDatabase();
    const secretId = scopedSetup(scoped);
    scoped.addUser(HOST, 'app_clone', 'made-by-the-other-invocation');
    scoped.existsRace = true;
    const result = await run(secretId, scoped);
    expect(result.completed, String(result.error)).toBe(true);
    expect(scoped.scopes).toEqual(['exists 10.0.0.%', 'create 10.0.0.%', 'set 10.0.0.%']);
  });

  it('works with a server that has no privileges to mirror (no syncPrivileges)', async () => {
    const plain = new MemoryDatabase();
    Object.defineProperty(plain, 'syncPrivileges', { value: undefined });
    const masterArn = seedMaster(plain, fake, HOST);
    const secretId = fake.createSecret({
      name: 'orders/app',
      secretString: appSecretValue({ masterarn: masterArn }),
    });
    const first = await run(secretId, plain);
    const second = await run(secretId, plain);
    expect([first.completed, second.completed]).toEqual([true, true]);
  });
});

describe('single user: AWSCURRENT first', () => {
  it('uses AWSCURRENT when it signs in, never tries AWSPREVIOUS, and leaves no session open', async () => {
    db.addUser(HOST, 'app', 'current-password-2');
    const secretId = fake.createSecret({
      name: 'orders/app',
      secretString: appSecretValue({ password: 'current-password-1' }),
    });
    finishedRotation(secretId, appSecretValue({ password: 'current-password-2' }));
    const token = fake.startRotation(secretId);
    putPending(secretId, token, appSecretValue({ password: 'pending-password-1' }));
    await createRotationHandler({ strategy: singleUser(db), env: {} })(
      event(secretId, token, 'setSecret'),
      context,
    );
    expect(db.passwordOf(HOST, 'app')).toBe('pending-password-1');
    expect(db.logins).toHaveLength(2);
    expect(db.open.size).toBe(0);
  });
});
