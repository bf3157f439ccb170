import { connect, createServer, type Server, type Socket } from 'node:net';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMysql, type MysqlClient, type MysqlDriver } from '../../shared/databases/mysql.js';
import type { RotationHandler } from '../../shared/rotation/handler.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';
import { singleUser } from '../../shared/strategies/single-user.js';
import { MysqlAdmin, randomName, signsIn } from '../support/mysql-admin.js';
import { type RotationEvent, rotate } from '../support/rotation-driver.js';
import { RotationHarness } from '../support/rotation-harness.js';
import { provided } from '../support/servers.js';
import { TcpProxy } from '../support/tcp-proxy.js';

/** The Lambda's budget in these tests, and what a failure may take beyond it. */
const BUDGET_MS = 6_000;
const SLACK_MS = 1_500;

/**
 * mysql2 itself, with a hook that runs just before a statement is sent: the test stalls the
 * network path there. Nothing else differs from the default driver.
 */
function hookedDriver(before: (sql: string) => void): MysqlDriver {
  return {
    async createConnection(config) {
      const client = (await mysql.createConnection(config)) as unknown as MysqlClient;
      return {
        query: (options) => {
          before(options.sql);
          return client.query(options);
        },
        end: () => client.end(),
        destroy: () => client.destroy(),
        on: (event, listener) => client.on(event, listener),
      };
    },
    escape: (value) => mysql.escape(value as Parameters<typeof mysql.escape>[0]),
    escapeId: (value, forbidQualified) => mysql.escapeId(value, forbidQualified),
  };
}

/**
 * A path that dies silently: once stalled, bytes from the client are swallowed and its close
 * never reaches the server (a dead route or NAT entry carries no FIN either). Only the server's
 * own timeouts can end its side of the session.
 */
class BlackHole {
  stalled = false;
  private readonly sockets = new Set<Socket>();
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}
  static async start(target: { host: string; port: number }): Promise<BlackHole> {
    let hole: BlackHole | undefined;
    const server = createServer((client) => {
      const upstream = connect(target.port, target.host);
      hole?.sockets.add(client).add(upstream);
      client.on('data', (chunk) => {
        if (!hole?.stalled) upstream.write(chunk);
      });
      upstream.on('data', (chunk) => {
        if (!hole?.stalled) client.write(chunk);
      });
      client
        .on('error', () => {})
        .on('close', () => {
          if (!hole?.stalled) upstream.destroy();
        });
      upstream.on('error', () => {}).on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    hole = new BlackHole(server, address.port);
    return hole;
  }
  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * Actor: the network between the function and the server, which goes silent mid-rotation
 * (packets dropped, no reset). Invariant: the invocation fails within its budget, the server
 * does not keep the silent session past it, and the service's retry converges (AWSCURRENT
 * signs in afterwards).
 */
describe('mysql rotations when the network path goes silent', () => {
  let admin: MysqlAdmin;
  let proxy: TcpProxy;
  const harness = new RotationHarness();
  const users: string[] = [];
  let masterArn: string;
  /** Says, statement by statement, whether to stall the path just before it is sent. */
  let stallBefore: ((sql: string) => boolean) | undefined;
  let stallHook: () => void = () => {};

  const database = () =>
    createMysql({
      env: {},
      driver: async () =>
        hookedDriver((sql) => {
          if (stallBefore?.(sql)) {
            stallBefore = undefined;
            stallHook();
          }
        }),
    });
  const invoker = (handler: RotationHandler) => (event: RotationEvent) =>
    handler(event, { getRemainingTimeInMillis: () => BUDGET_MS });

  beforeAll(async () => {
    admin = await MysqlAdmin.connect(provided('mysqlAdminUrl'));
    await harness.start();
    proxy = await TcpProxy.start({ host: admin.host, port: admin.port });
    masterArn = harness.fake.createSecret({
      name: `rds/master-${randomName('m')}`,
      secretString: admin.masterSecretValue({ host: '127.0.0.1', port: proxy.port }),
    });
  });

  afterAll(async () => {
    await proxy.stop();
    await admin.dropUsers(users.flatMap((name) => [`${name}_clone`, name]));
    await admin.close();
    await harness.stop();
  });

  async function provision(port: number, alternating: boolean) {
    const name = randomName(alternating ? 'netalt' : 'netsgl');
    users.push(name);
    const password = `initial-${randomName('pw')}`;
    await admin.createUser(name, password);
    const secretId = harness.fake.createSecret({
      name: `app/${randomName('secret')}`,
      secretString: JSON.stringify({
        engine: admin.mariadb ? 'mariadb' : 'mysql',
        host: '127.0.0.1',
        port,
        username: name,
        password,
        ssl: false,
        ...(alternating ? { masterarn: masterArn } : {}),
      }),
    });
    return { name, secretId };
  }

  const signsInNow = async (secretId: string) => {
    const current = harness.secret(secretId);
    return signsIn({
      host: admin.host,
      port: admin.port,
      user: current.username,
      password: current.password,
    });
  };

  /** Stalls before the `nth` statement matching `pattern`. */
  const nth = (pattern: RegExp, n = 1) => {
    let seen = 0;
    return (sql: string) => pattern.test(sql) && ++seen === n;
  };

  it.each([
    ['single user, before SET PASSWORD', false, nth(/^(SET PASSWORD|ALTER USER .* IDENTIFIED)/)],
    [
      'alternating users, once the clone exists, before its password is set',
      true,
      nth(/^(SET PASSWORD|ALTER USER .* IDENTIFIED)/),
    ],
    // The proof's session is the first bound, the master's the second.
    [
      "alternating users, as the master's session starts",
      true,
      nth(/^SET SESSION wait_timeout/, 2),
    ],
  ])('%s: fails within the budget, and the retry converges', async (_, alternating, where) => {
    // Prepare
    const { secretId } = await provision(proxy.port, alternating);
    const handler = harness.handler(
      alternating ? alternatingUsers(database()) : singleUser(database()),
    );
    let stalled = false;
    stallHook = () => {
      stalled = true;
      proxy.stall();
    };
    stallBefore = where;

    // Act: the rotation, with the path going silent at `where`.
    const started = Date.now();
    const first = await rotate({ fake: harness.fake, secretId, invoke: invoker(handler) });
    const took = Date.now() - started;

    // Assess: one invocation failed, in time; AWSCURRENT still signs in.
    proxy.resume();
    expect(stalled).toBe(true);
    expect(first.completed).toBe(false);
    expect(first.failedStep).toBe('setSecret');
    expect(took).toBeLessThan(BUDGET_MS + SLACK_MS);
    expect(await signsInNow(secretId)).toBe(true);

    // Act 2: the service retries the same rotation.
    const retried = await rotate({
      fake: harness.fake,
      secretId,
      token: first.token,
      invoke: invoker(handler),
    });

    // Assess 2
    expect(retried.completed, String(retried.error)).toBe(true);
    expect(await signsInNow(secretId)).toBe(true);
    expect(harness.leakedSecrets()).toEqual([]);
  });

  it('the server ends its side of a session whose client went silent, once the budget is spent', async () => {
    // Prepare: a path whose death carries no FIN to the server.
    const hole = await BlackHole.start({ host: admin.host, port: admin.port });
    try {
      const { name, secretId } = await provision(hole.port, false);
      const handler = harness.handler(singleUser(database()));
      stallHook = () => {
        hole.stalled = true;
      };
      stallBefore = nth(/^(SET PASSWORD|ALTER USER .* IDENTIFIED)/);

      // Act
      const first = await rotate({ fake: harness.fake, secretId, invoke: invoker(handler) });
      expect(first.completed).toBe(false);

      // Assess: the server ends the app's session by itself (its client's close never came).
      const until = Date.now() + BUDGET_MS + 3_000;
      while (Date.now() < until && (await admin.sessionsOf([name])) > 0) {
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      expect(await admin.sessionsOf([name])).toBe(0);
    } finally {
      await hole.stop();
    }
  });
});
