import { type Db, type DbOptions, type Document, MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectTimeoutError } from '../../shared/common/errors.js';
import { createMongoDb } from '../../shared/databases/mongodb.js';
import { createRotationHandler } from '../../shared/rotation/handler.js';
import { singleUser } from '../../shared/strategies/single-user.js';
import { FakeSecretsManager } from '../support/fake-secrets-manager.js';
import { startFakeSecretsManagerServer } from '../support/fake-secrets-manager-http.js';
import { LogRecorder } from '../support/log-recorder.js';
import { MongoAdmin, signsIn } from '../support/mongo-admin.js';
import { FakeMongoServer } from '../support/mongo-fake-server.js';
import { randomName } from '../support/pg-admin.js';
import { type RotationEvent, retry, rotate } from '../support/rotation-driver.js';
import { provided } from '../support/servers.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const capabilities = provided('mongoCapabilities');

/** What the invocation is given (Lambda's getRemainingTimeInMillis), and what it may overrun by. */
const INVOCATION_MS = 6_000;
const SLACK_MS = 1_500;

/**
 * Finding 8 on MongoDB: the network between the function and the server goes silent (a dead
 * NAT entry: the socket stays open, nothing answers). Every command of the function must give
 * up by the invocation's deadline instead of waiting for the driver's own limits (a 30 s socket
 * timeout, a 10 s heartbeat), and the service's retry must then converge.
 */
describe('mongodb sessions under a silent network stall', () => {
  const fake = new FakeSecretsManager();
  const logs = new LogRecorder();
  const users: string[] = [];
  let admin: MongoAdmin;
  let proxy: TcpProxy;
  let endpoint: { endpoint: string; close(): Promise<void> };
  /** The command before which the network goes silent, or undefined for none. */
  let stallBefore: string | undefined;

  /** The real driver, whose path to the server goes silent just before one command is sent. */
  class StallingMongoClient extends MongoClient {
    override db(name?: string, options?: DbOptions): Db {
      const db = super.db(name, options);
      const command = db.command.bind(db);
      db.command = (document: Document, ...rest: unknown[]) => {
        if (stallBefore !== undefined && stallBefore in document) proxy.stall();
        return (command as (...args: unknown[]) => Promise<Document>)(document, ...rest);
      };
      return db;
    }
  }

  beforeAll(async () => {
    admin = await MongoAdmin.connect(provided('mongoAdminUrl'));
    proxy = await TcpProxy.start({ host: admin.host, port: admin.port });
    endpoint = await startFakeSecretsManagerServer(fake);
  });

  afterAll(async () => {
    await admin?.dropUsers(users);
    await admin?.close();
    await proxy?.stop();
    await endpoint?.close();
  });

  async function provision() {
    const name = randomName('stall');
    const password = `initial-${randomName('pw')}`;
    const roles = capabilities.authorization ? [await admin.changeOwnPasswordRole()] : [];
    await admin.createUser(name, password, { roles });
    users.push(name);
    const secretId = fake.createSecret({
      name: `docdb/${randomName('secret')}`,
      secretString: JSON.stringify({
        engine: 'mongo',
        host: '127.0.0.1',
        port: proxy.port,
        username: name,
        password,
        ssl: false,
      }),
    });
    return { name, secretId };
  }

  /** One invocation per step, each given INVOCATION_MS, each timed. */
  function invoker(durations: number[]) {
    const handler = createRotationHandler({
      strategy: singleUser(
        createMongoDb({ loadDriver: async () => ({ MongoClient: StallingMongoClient }) }),
      ),
      logger: logs,
      env: { SECRETS_MANAGER_ENDPOINT: endpoint.endpoint },
    });
    return async (event: RotationEvent) => {
      const started = Date.now();
      try {
        return await handler(event, { getRemainingTimeInMillis: () => INVOCATION_MS });
      } finally {
        durations.push(Date.now() - started);
      }
    };
  }

  it('a password change whose answer never comes fails within the invocation, and the retry converges', async () => {
    // Prepare: the path goes silent as the function sends updateUser (the request is lost).
    const { name, secretId } = await provision();
    const stalled: number[] = [];
    stallBefore = 'updateUser';

    // Act
    const first = await rotate({ fake, secretId, invoke: invoker(stalled) });
    stallBefore = undefined;
    proxy.resume();
    const retried: number[] = [];
    const second = await retry({ fake, secretId, invoke: invoker(retried), token: first.token });

    // Assess: the stalled step gave up in time, with a timeout (never an authentication
    // failure, which could send a strategy to older credentials), and the retry converged.
    expect(first.failedStep).toBe('setSecret');
    expect(first.error).toBeInstanceOf(ConnectTimeoutError);
    expect(Math.max(...stalled)).toBeLessThan(INVOCATION_MS + SLACK_MS);
    expect(second.completed, String(second.error)).toBe(true);
    const current = JSON.parse(fake.valueOf(secretId, 'AWSCURRENT') as string);
    expect(
      await signsIn({ host: admin.host, port: admin.port, user: name, password: current.password }),
    ).toBe(true);
  });

  it('signing in over a path that goes silent after TCP connects fails within the invocation', async () => {
    // Prepare: createSecret has run; then TCP still connects (the proxy accepts), but nothing
    // the function sends is answered.
    const { secretId } = await provision();
    const durations: number[] = [];
    const created = await rotate({
      fake,
      secretId,
      invoke: invoker([]),
      stopAfter: 'createSecret',
    });
    proxy.stall();

    // Act
    const outcome = await retry({
      fake,
      secretId,
      invoke: invoker(durations),
      token: created.token,
    });
    proxy.resume();

    // Assess
    expect(outcome.failedStep).toBe('setSecret');
    expect(outcome.error).toBeInstanceOf(ConnectTimeoutError);
    expect(Math.max(...durations)).toBeLessThan(INVOCATION_MS + SLACK_MS);
  });

  it('a server that answers hello and then never answers the SCRAM conversation holds sign-in no longer than its timeout', async () => {
    // Prepare: the driver gives the first hello connectTimeoutMS and SCRAM only socketTimeoutMS.
    const server = await FakeMongoServer.start({
      answer: (command) => (command.name.startsWith('sasl') ? null : undefined),
    });
    const db = createMongoDb();
    const started = Date.now();

    // Act
    const failure = await db
      .connect(
        {
          host: server.host,
          port: server.port,
          user: 'app',
          password: 'never-used-password-1',
          database: 'admin',
          tls: 'disable',
        },
        { timeoutMs: 2_000, deadline: started + 20_000 },
      )
      .catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    await server.stop();

    // Assess: the conversation did start (the stall is where it was meant to be).
    expect(server.commands.map((command) => command.name)).toContain('saslStart');
    expect(failure).toBeInstanceOf(ConnectTimeoutError);
    expect(elapsed).toBeLessThan(2_000 + SLACK_MS);
  });
});
