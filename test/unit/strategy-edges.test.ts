/**
 * Edges of the database strategies that mutation testing found unpinned (issue 14, second
 * pass): the field each refusal names, the master secret named in its own errors, a failed
 * clone creation, the RDS API behind an RDS-managed master, secret keys a database does not
 * scope by, limits counted in bytes, and the last retry before the Lambda deadline.
 */
import { DescribeDBInstancesCommand, RDSClient } from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  DatabaseError,
  type InvalidSecretError,
  TooManyConnectionsError,
} from '../../shared/common/errors.js';
import type { Login } from '../../shared/databases/types.js';
import { createRotationHandler } from '../../shared/rotation/handler.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';
import { parseDatabaseSecret } from '../../shared/strategies/database-secret.js';
import { connectWithRetry } from '../../shared/strategies/sign-in.js';
import { singleUser } from '../../shared/strategies/single-user.js';
import { FakeSecretsManager, mockSecretsManager } from '../support/fake-secrets-manager.js';
import { LogRecorder } from '../support/log-recorder.js';
import {
  appSecretValue,
  MemoryDatabase,
  seedMaster,
  UNIT_HOST,
} from '../support/memory-database.js';
import { failure as failureOf, rotate, stepHelpers } from '../support/rotation-driver.js';

const HOST = UNIT_HOST;
const fake = new FakeSecretsManager();
const stub = mockSecretsManager(fake);
const context = { getRemainingTimeInMillis: () => 30_000 };
let db: MemoryDatabase;
let logs: LogRecorder;

afterAll(() => stub.restore());
beforeEach(() => {
  fake.reset();
  stub.resetHistory();
  db = new MemoryDatabase();
  logs = new LogRecorder();
});
afterEach(() => {
  vi.restoreAllMocks();
});

const { event, putPending } = stepHelpers(fake);
const failure = (promise: Promise<unknown>) => failureOf<InvalidSecretError>(promise);

describe('alternating users: the field each refusal names', () => {
  const alternating = (database: MemoryDatabase = db) =>
    createRotationHandler({ strategy: alternatingUsers(database), logger: logs, env: {} });
  const seeded = (app: Record<string, unknown> = {}, master: Record<string, unknown> = {}) => {
    const masterArn = seedMaster(db, fake, HOST, master);
    const secretId = fake.createSecret({
      name: 'orders/app',
      secretString: appSecretValue({ masterarn: masterArn, ...app }),
    });
    return { secretId, masterArn };
  };
  const setup = (app: Record<string, unknown> = {}, master: Record<string, unknown> = {}) => {
    const seed = seeded(app, master);
    return { ...seed, token: fake.startRotation(seed.secretId) };
  };
  const setSecretWith = async (pending: Record<string, unknown>) => {
    const { secretId, masterArn, token } = setup();
    putPending(
      secretId,
      token,
      appSecretValue({
        masterarn: masterArn,
        username: 'app_clone',
        password: 'pending-password-1',
        ...pending,
      }),
    );
    return failure(alternating()(event(secretId, token, 'setSecret'), context));
  };

  it('names masterarn when AWSCURRENT has none', async () => {
    db.addUser(HOST, 'app', 'current-password-1');
    const secretId = fake.createSecret({ name: 'orders/app', secretString: appSecretValue() });
    const token = fake.startRotation(secretId);
    putPending(secretId, token, appSecretValue({ username: 'app_clone' }));
    const thrown = await failure(alternating()(event(secretId, token, 'setSecret'), context));
    expect(thrown?.field).toBe('masterarn');
    expect(db.actions.filter((action) => !action.startsWith('connect'))).toEqual([]);
  });

  it('names username when the clone name would be too long', async () => {
    const { secretId, token } = setup({ username: 'u'.repeat(58) });
    const thrown = await failure(alternating()(event(secretId, token, 'createSecret'), context));
    expect(thrown?.field).toBe('username');
    expect(fake.valueOf(secretId, 'AWSPENDING')).toBeUndefined();
  });

  it('names username when AWSPENDING is not the alternate user', async () => {
    const thrown = await setSecretWith({ username: 'intruder' });
    expect(thrown?.field).toBe('username');
    expect(db.user(HOST, 'intruder')).toBeUndefined();
  });

  it('names masterarn when AWSPENDING names another master secret', async () => {
    const other = fake.createSecret({ name: 'other-master', secretString: '{"password":"x1234"}' });
    const thrown = await setSecretWith({ masterarn: other });
    expect(thrown?.field).toBe('masterarn');
    expect(db.user(HOST, 'app_clone')).toBeUndefined();
  });

  it('names the master secret and its field when the master secret lacks a password', async () => {
    const { secretId, masterArn, token } = setup({}, { password: undefined });
    putPending(
      secretId,
      token,
      appSecretValue({ masterarn: masterArn, username: 'app_clone', password: 'pending-pw-1' }),
    );
    const thrown = await failure(alternating()(event(secretId, token, 'setSecret'), context));
    expect(thrown?.field).toBe('password');
    expect(thrown?.message).toContain(`master secret ${masterArn}: field "password" is missing`);
  });

  it("fails with the server's own refusal when creating the clone fails, and changes no password", async () => {
    const refusal = new DatabaseError('permission denied to create role');
    class Refusing extends MemoryDatabase {
      override async createUserLike(): Promise<void> {
        throw refusal;
      }
    }
    db = new Refusing();
    const { secretId } = seeded();
    const result = await rotate({
      fake,
      secretId,
      invoke: (e) => alternating(db)(e, context),
    });
    expect(result.failedStep).toBe('setSecret');
    expect(result.error).toBe(refusal);
    expect(db.actions.filter((action) => !action.startsWith('connect'))).toEqual([]);
    expect(db.passwordOf(HOST, 'app')).toBe('current-password-1');
  });

  it('names "scope" when a database without a scope field signs in to another scope than the account', async () => {
    // A server whose accounts have a scope it reports, but no secret field to name it.
    class Scoped extends MemoryDatabase {
      async signedInScope(): Promise<string> {
        return 'proved-scope';
      }
      async accountScope(): Promise<string> {
        return 'other-scope';
      }
    }
    db = new Scoped();
    const { secretId } = seeded();
    const result = await rotate({ fake, secretId, invoke: (e) => alternating(db)(e, context) });
    expect(result.failedStep).toBe('setSecret');
    expect((result.error as InvalidSecretError).field).toBe('scope');
    expect(db.user(HOST, 'app_clone')).toBeUndefined();
  });
});

describe('alternating users: an RDS-managed master secret without an injected resolver', () => {
  const rds = mockClient(RDSClient);
  afterAll(() => rds.restore());
  beforeEach(() => rds.reset());

  it('finds the host through the RDS API (DescribeDBInstances of the tagged instance)', async () => {
    const INSTANCE = 'arn:aws:rds:us-east-1:123456789012:db:orders';
    rds.on(DescribeDBInstancesCommand).resolves({
      DBInstances: [{ Endpoint: { Address: HOST, Port: 5432 }, Engine: 'postgres' }],
    });
    db.addUser(HOST, 'app', 'current-password-1');
    db.addUser(HOST, 'root', 'master-password-1', { superuser: true });
    const masterArn = fake.createSecret({
      name: 'rds!db-orders',
      secretString: JSON.stringify({ username: 'root', password: 'master-password-1' }),
      tags: [{ Key: 'aws:rds:primaryDBInstanceArn', Value: INSTANCE }],
    });
    const secretId = fake.createSecret({
      name: 'orders/app',
      secretString: appSecretValue({ masterarn: masterArn }),
    });
    const handler = createRotationHandler({
      strategy: alternatingUsers(db),
      logger: logs,
      env: {},
    });

    const result = await rotate({ fake, secretId, invoke: (e) => handler(e, context) });

    expect(result.completed, String(result.error)).toBe(true);
    expect(rds.commandCalls(DescribeDBInstancesCommand).map((call) => call.args[0].input)).toEqual([
      { DBInstanceIdentifier: INSTANCE },
    ]);
    expect(db.user(HOST, 'app_clone')).toBeDefined();
  });
});

describe('single user: the field each refusal names', () => {
  const single = () => createRotationHandler({ strategy: singleUser(db), logger: logs, env: {} });
  const setSecretWith = async (pending: Record<string, unknown>) => {
    db.addUser(HOST, 'app', 'current-password-1');
    const secretId = fake.createSecret({ name: 'orders/app', secretString: appSecretValue() });
    const token = fake.startRotation(secretId);
    putPending(secretId, token, appSecretValue({ password: 'pending-password-1', ...pending }));
    return failure(single()(event(secretId, token, 'setSecret'), context));
  };

  it('names host when AWSPENDING names another host', async () => {
    const thrown = await setSecretWith({ host: 'attacker.example.com' });
    expect(thrown?.field).toBe('host');
    expect(db.passwordOf(HOST, 'app')).toBe('current-password-1');
  });

  it('names username when AWSPENDING names another user', async () => {
    db.addUser(HOST, 'admin', 'admin-password-1');
    const thrown = await setSecretWith({ username: 'admin' });
    expect(thrown?.field).toBe('username');
    expect(db.passwordOf(HOST, 'admin')).toBe('admin-password-1');
  });
});

describe('parsing a database secret', () => {
  const postgresLike = {
    name: 'PostgreSQL',
    engines: ['postgres'],
    defaultPort: 5432,
    defaultDatabase: 'postgres',
    maxUsernameLength: 63,
    usernameLimitUnit: 'bytes' as const,
  };

  it('reads no account scope for a database without scopes, even from a key named "undefined"', () => {
    const secret = parseDatabaseSecret(
      appSecretValue({ undefined: 'db.attacker.example' }),
      'AWSCURRENT',
      postgresLike,
    );
    expect(secret).not.toHaveProperty('scope');
    expect(secret.raw.undefined).toBe('db.attacker.example');
  });

  it('counts a user name limit in bytes where the server does (PostgreSQL: 63 bytes)', () => {
    const fits = 'é'.repeat(31); // 62 bytes
    const tooLong = 'é'.repeat(32); // 32 characters, 64 bytes
    expect(
      parseDatabaseSecret(appSecretValue({ username: fits }), 'AWSCURRENT', postgresLike).username,
    ).toBe(fits);
    let thrown: InvalidSecretError | undefined;
    try {
      parseDatabaseSecret(appSecretValue({ username: tooLong }), 'AWSCURRENT', postgresLike);
    } catch (error) {
      thrown = error as InvalidSecretError;
    }
    expect(thrown?.field).toBe('username');
    expect(thrown?.message).toContain('63 bytes');
  });
});

describe('"too many connections" near the Lambda deadline', () => {
  const login: Login = {
    host: HOST,
    port: 5432,
    user: 'app',
    password: 'current-password-1',
    database: 'postgres',
    tls: 'verify',
  } as Login;

  it('retries while the time left holds the delay and one second, exactly', async () => {
    // Math.random() = 0.5: the first delay is 50 ms, so 1050 ms left is just enough.
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    db.addUser(HOST, 'app', 'current-password-1');
    db.failNextConnect(new TooManyConnectionsError('too many connections'));

    const connection = await connectWithRetry(db, login, {
      logger: logs,
      remainingMs: () => 1_050,
    });

    expect(connection.user).toBe('app');
    expect(db.actions).toEqual([`connect app@${HOST}`, `connect app@${HOST}`]);
  });

  it('gives up when the time left is a millisecond short', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    db.addUser(HOST, 'app', 'current-password-1');
    db.failNextConnect(new TooManyConnectionsError('too many connections'));

    await expect(
      connectWithRetry(db, login, { logger: logs, remainingMs: () => 1_049 }),
    ).rejects.toBeInstanceOf(TooManyConnectionsError);
    expect(db.actions).toEqual([`connect app@${HOST}`]);
  });
});

describe('decision log lines (one structured line per decision)', () => {
  const alternating = (database: MemoryDatabase) =>
    createRotationHandler({ strategy: alternatingUsers(database), logger: logs, env: {} });
  const rotateAlternating = (database: MemoryDatabase, secretId: string) =>
    rotate({ fake, secretId, invoke: (e) => alternating(database)(e, context) });
  const seeded = (database: MemoryDatabase) => {
    const masterArn = seedMaster(database, fake, HOST);
    return fake.createSecret({
      name: 'orders/app',
      secretString: appSecretValue({ masterarn: masterArn }),
    });
  };
  const line = (message: string) => logs.lines.filter((entry) => entry.message === message);
  const CREATED = "created the alternate user with the privileges of AWSCURRENT's";
  const RECONCILED = "reconciled the clone's privileges with the original's";

  it('names the account scope on the "created the alternate user" line where accounts have one', async () => {
    class Scoped extends MemoryDatabase {
      async signedInScope(): Promise<string> {
        return '10.0.0.%';
      }
      async accountScope(): Promise<string> {
        return '10.0.0.%';
      }
    }
    const scoped = new Scoped();
    const result = await rotateAlternating(scoped, seeded(scoped));
    expect(result.completed, String(result.error)).toBe(true);
    expect(line(CREATED).map((entry) => entry.attributes.scope)).toEqual(['10.0.0.%']);
  });

  it('writes no scope attribute where accounts have none', async () => {
    const result = await rotateAlternating(db, seeded(db));
    expect(result.completed, String(result.error)).toBe(true);
    expect(line(CREATED)).toHaveLength(1);
    expect(line(CREATED)[0]?.attributes).not.toHaveProperty('scope');
  });

  it("logs the clone's privileges as reconciled only when something changed", async () => {
    const secretId = seeded(db);
    await rotateAlternating(db, secretId); // creates app_clone
    await rotateAlternating(db, secretId); // app_clone → app: nothing to reconcile
    expect(line(RECONCILED)).toEqual([]);

    db.grants.set('app', ['SELECT ON orders']);
    await rotateAlternating(db, secretId);
    expect(line(RECONCILED).map((entry) => entry.attributes.changes)).toEqual([
      ['granted SELECT ON orders'],
    ]);
  });

  it('logs no reconciliation on a server that has no privileges to mirror', async () => {
    const plain = new MemoryDatabase();
    Object.defineProperty(plain, 'syncPrivileges', { value: undefined });
    const secretId = seeded(plain);
    await rotateAlternating(plain, secretId);
    const second = await rotateAlternating(plain, secretId);
    expect(second.completed, String(second.error)).toBe(true);
    expect(line(RECONCILED)).toEqual([]);
  });

  it('single user says which stored value it signed in with', async () => {
    db.addUser(HOST, 'app', 'current-password-1');
    const secretId = fake.createSecret({ name: 'orders/app', secretString: appSecretValue() });
    const handler = createRotationHandler({ strategy: singleUser(db), logger: logs, env: {} });
    const result = await rotate({ fake, secretId, invoke: (e) => handler(e, context) });
    expect(result.completed, String(result.error)).toBe(true);
    expect(logs.messages()).toContain('signed in with AWSCURRENT');
  });

  it('single user never claims AWSPREVIOUS names another account when there is no AWSPREVIOUS', async () => {
    db.addUser(HOST, 'app', 'reset-by-a-person');
    const secretId = fake.createSecret({ name: 'orders/app', secretString: appSecretValue() });
    const handler = createRotationHandler({ strategy: singleUser(db), logger: logs, env: {} });
    const result = await rotate({ fake, secretId, invoke: (e) => handler(e, context) });
    expect(result.failedStep).toBe('setSecret');
    expect(logs.lines.filter((entry) => entry.level === 'warn')).toEqual([]);
  });
});
