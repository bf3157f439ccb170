import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe } from 'vitest';
import { createMysql, type MysqlClient, type MysqlDriver } from '../../shared/databases/mysql.js';
import { describeDatabaseFaults } from '../support/database-faults.js';
import { FakeSecretsManager } from '../support/fake-secrets-manager.js';
import { startFakeSecretsManagerServer } from '../support/fake-secrets-manager-http.js';
import { FaultInjector } from '../support/fault-injection.js';
import { MysqlAdmin, randomName, signsIn } from '../support/mysql-admin.js';
import { provided } from '../support/servers.js';

/**
 * mysql2/promise, with every connect and statement of the functions counted (and failed) by the
 * injector, and every client the functions hold tracked in `open` until they end or destroy it.
 */
function faultyMysqlDriver(injector: FaultInjector, open: Set<MysqlClient>): MysqlDriver {
  const track = (client: MysqlClient): MysqlClient => {
    const tracked: MysqlClient = {
      query: (options) =>
        injector.effect(`MySQL.${options.sql.trim().split(/\s/)[0]?.toUpperCase() ?? '?'}`, () =>
          client.query(options),
        ),
      end: () => {
        open.delete(tracked);
        return client.end();
      },
      destroy: () => {
        open.delete(tracked);
        client.destroy();
      },
      on: (event, listener) => client.on(event, listener),
    };
    open.add(tracked);
    return tracked;
  };
  return {
    async createConnection(config) {
      let client: MysqlClient | undefined;
      try {
        await injector.effect('MySQL.connect', async () => {
          client = (await mysql.createConnection(config)) as unknown as MysqlClient;
        });
      } catch (error) {
        // A connect that fails after the handshake (throw-after) hands the caller no connection;
        // the driver drops the socket, as mysql2 does when its own handshake fails.
        client?.destroy();
        throw error;
      }
      return track(client as MysqlClient);
    },
    escape: (value) => mysql.escape(value as Parameters<typeof mysql.escape>[0]),
    escapeId: (value, forbidQualified) => mysql.escapeId(value, forbidQualified),
  };
}

/**
 * Whatever instruction a rotation dies at, and however often it is retried, some stored
 * credential signs in, and the retry converges. Effects counted: every Secrets Manager call
 * (through the real SDK, over HTTP) and every MySQL/MariaDB connect and statement of the
 * functions.
 */
describe('mysql under injected faults', () => {
  const fake = new FakeSecretsManager();
  const injector = new FaultInjector();
  const open = new Set<MysqlClient>();
  const users: string[] = [];
  let admin: MysqlAdmin;
  let engine: string;
  let table: string;
  let endpoint: { endpoint: string; close(): Promise<void> };
  const database = () =>
    createMysql({ env: {}, driver: async () => faultyMysqlDriver(injector, open) });

  beforeAll(async () => {
    admin = await MysqlAdmin.connect(provided('mysqlAdminUrl'));
    engine = admin.mariadb ? 'mariadb' : 'mysql';
    // Every account rotated here reads this table: the clone must end up reading it too.
    table = `${admin.id(admin.database)}.${admin.id(randomName('faults'))}`;
    await admin.query(`CREATE TABLE ${table} (a int)`);
    endpoint = await startFakeSecretsManagerServer(fake);
  });

  afterAll(async () => {
    await admin.dropUsers(users);
    await admin.query(`DROP TABLE IF EXISTS ${table}`);
    await admin.close();
    await endpoint.close();
  });

  /** Kills the sockets of invocations that were abandoned mid-flight, as a dead process would. */
  async function killAbandoned() {
    for (const client of open) client.destroy();
  }

  /** Sessions of these users on the server; a closed socket takes a moment to disappear. */
  async function sessionsLeft(accounts: string[]): Promise<number> {
    for (let i = 0; i < 30; i++) {
      if ((await admin.sessionsOf(accounts)) === 0) return 0;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return admin.sessionsOf(accounts);
  }

  const login = (value: { username: string; password: string }) => ({
    host: admin.host,
    port: admin.port,
    user: value.username,
    password: value.password,
  });

  interface Provisioned {
    name: string;
    /** The account that the master secret names, for alternating users. */
    master?: string;
  }
  const provisioned = new Map<string, Provisioned>();

  /**
   * A master account of its own for each secret, with what the README says a master needs on
   * this server and nothing more, so that the sessions it leaves can be counted apart from the
   * admin's, and a session leaked at one injection point does not count against the next.
   */
  async function provisionMaster(): Promise<{ user: string; arn: string }> {
    const user = randomName('fm');
    const password = `master-${randomName('pw')}`;
    await admin.createUser(user, password);
    users.push(user);
    const account = admin.account(user);
    await admin.query(`GRANT CREATE USER ON *.* TO ${account}`);
    await admin.query(`GRANT SELECT, UPDATE ON ${admin.id('mysql')}.* TO ${account}`);
    await admin.query(
      `GRANT SELECT ON ${admin.id(admin.database)}.* TO ${account} WITH GRANT OPTION`,
    );
    const arn = fake.createSecret({
      name: `faults/master-${user}`,
      secretString: JSON.stringify({
        engine,
        host: admin.host,
        port: admin.port,
        username: user,
        password,
        ssl: false,
      }),
    });
    return { user, arn };
  }

  async function provisionUser(prefix: string, alternating: boolean): Promise<string> {
    const name = randomName(prefix);
    const password = `initial-${randomName('pw')}`;
    await admin.createUser(name, password);
    users.push(`${name}_clone`, name);
    await admin.query(`GRANT SELECT ON ${table} TO ${admin.account(name)}`);
    const master = alternating ? await provisionMaster() : undefined;
    const secretId = fake.createSecret({
      name: `faults/${name}`,
      secretString: JSON.stringify({
        engine,
        host: admin.host,
        port: admin.port,
        username: name,
        password,
        dbname: admin.database,
        ssl: false,
        ...(master ? { masterarn: master.arn } : {}),
      }),
    });
    provisioned.set(secretId, { name, ...(master ? { master: master.user } : {}) });
    return secretId;
  }

  describeDatabaseFaults({
    name: () => engine,
    label: () => `MySQL/MariaDB, ${admin.version}`,
    fake,
    injector,
    endpoint: () => endpoint.endpoint,
    database,
    async provision(strategy) {
      const secretId = await provisionUser(
        strategy === 'single-user' ? 'fs' : 'fa',
        strategy === 'alternating-users',
      );
      return { name: (provisioned.get(secretId) as Provisioned).name, secretId };
    },
    signsIn: (value) => signsIn(login(value)),
    usersLike: (name) => admin.accountsLike(name),
    async cloneDiffers(name) {
      const [original, clone] = [await admin.grantsOf(name), await admin.grantsOf(`${name}_clone`)];
      return JSON.stringify(clone) === JSON.stringify(original)
        ? undefined
        : 'the clone lacks the privileges of the original';
    },
    async leftOpen(secretId) {
      const { name, master } = provisioned.get(secretId) as Provisioned;
      const left = await sessionsLeft([name, `${name}_clone`, ...(master ? [master] : [])]);
      return left > 0 ? [`${left} sessions left open`] : [];
    },
    killAbandoned,
  });
});
