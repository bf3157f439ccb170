import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createMysql, type MysqlClient, type MysqlDriver } from '../../shared/databases/mysql.js';
import { createRotationHandler } from '../../shared/rotation/handler.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';
import { singleUser } from '../../shared/strategies/single-user.js';
import { FakeSecretsManager } from '../support/fake-secrets-manager.js';
import { startFakeSecretsManagerServer } from '../support/fake-secrets-manager-http.js';
import {
  FaultInjector,
  FaultMode,
  faultySecretsManagerClient,
} from '../support/fault-injection.js';
import { type FaultReport, type FaultTarget, runFaultMatrix } from '../support/fault-runner.js';
import { MysqlAdmin, randomName, signsIn } from '../support/mysql-admin.js';
import { STEPS } from '../support/rotation-driver.js';

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
  const reports: FaultReport[] = [];
  const users: string[] = [];
  let admin: MysqlAdmin;
  let engine: string;
  let table: string;
  let endpoint: { endpoint: string; close(): Promise<void> };
  const database = () =>
    createMysql({ env: {}, driver: async () => faultyMysqlDriver(injector, open) });

  beforeAll(async () => {
    admin = await MysqlAdmin.connect(inject('mysqlAdminUrl'));
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
    console.info(
      [
        `fault injection (MySQL/MariaDB, ${admin.version}):`,
        ...reports.map(
          (r) =>
            `  ${r.target.padEnd(28)} ${r.mode.padEnd(13)} ${r.held}/${r.points} injection points held`,
        ),
      ].join('\n'),
    );
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
  const stored = (secretId: string, stage: string) => {
    const text = fake.valueOf(secretId, stage);
    return text === undefined
      ? undefined
      : (JSON.parse(text) as { username: string; password: string });
  };
  const signsInAt = async (secretId: string, stage: string) => {
    const value = stored(secretId, stage);
    return value !== undefined && (await signsIn(login(value)));
  };

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

  const singleTarget = (): FaultTarget => ({
    name: `${engine}-single-user`,
    handler: createRotationHandler({
      strategy: singleUser(database()),
      client: faultySecretsManagerClient(endpoint.endpoint, injector),
      env: {},
    }),
    provision: () => provisionUser('fs', false),
    async holdsDuring(secretId) {
      if (await signsInAt(secretId, 'AWSCURRENT')) return undefined;
      if (await signsInAt(secretId, 'AWSPENDING')) return undefined;
      return 'neither AWSCURRENT nor AWSPENDING signs in';
    },
    async holdsAfter(secretId) {
      const problems: string[] = [];
      if (!(await signsInAt(secretId, 'AWSCURRENT'))) problems.push('AWSCURRENT does not sign in');
      const { name } = provisioned.get(secretId) as Provisioned;
      const accounts = [name, `${name}_clone`];
      const hosts = await Promise.all(accounts.map((user) => admin.hostsOf(user)));
      if (JSON.stringify(hosts) !== JSON.stringify([['%'], []]))
        problems.push(`accounts ${JSON.stringify(hosts)} for ${accounts.join(', ')}`);
      const left = await sessionsLeft(accounts);
      if (left > 0) problems.push(`${left} sessions left open`);
      return problems;
    },
    killAbandoned,
  });

  const alternatingTarget = (): FaultTarget => ({
    name: `${engine}-alternating-users`,
    handler: createRotationHandler({
      strategy: alternatingUsers(database()),
      client: faultySecretsManagerClient(endpoint.endpoint, injector),
      env: {},
    }),
    provision: () => provisionUser('fa', true),
    async holdsDuring(secretId) {
      return (await signsInAt(secretId, 'AWSCURRENT')) ? undefined : 'AWSCURRENT does not sign in';
    },
    async holdsAfter(secretId) {
      const problems: string[] = [];
      if (!(await signsInAt(secretId, 'AWSCURRENT'))) problems.push('AWSCURRENT does not sign in');
      if (!(await signsInAt(secretId, 'AWSPREVIOUS')))
        problems.push('AWSPREVIOUS does not sign in');
      const { name, master } = provisioned.get(secretId) as Provisioned;
      const accounts = [name, `${name}_clone`];
      const hosts = await Promise.all(accounts.map((user) => admin.hostsOf(user)));
      if (JSON.stringify(hosts) !== JSON.stringify([['%'], ['%']]))
        problems.push(`accounts ${JSON.stringify(hosts)} for ${accounts.join(', ')}`);
      else if (
        JSON.stringify(await admin.grantsOf(`${name}_clone`)) !==
        JSON.stringify(await admin.grantsOf(name))
      )
        problems.push('the clone lacks the privileges of the original');
      const left = await sessionsLeft([...accounts, master as string]);
      if (left > 0) problems.push(`${left} sessions left open`);
      return problems;
    },
    killAbandoned,
  });

  const MODES = [FaultMode.throwBefore, FaultMode.throwAfter, FaultMode.hang];

  it.each(MODES)(
    'single user: a fault at any effect (%s) keeps a credential signing in, and the retry converges',
    async (mode) => {
      const [report] = await runFaultMatrix(fake, singleTarget(), injector, [mode]);
      reports.push(report as FaultReport);
      expect(report?.points).toBeGreaterThan(10);
      expect(report?.failures).toEqual([]);
    },
  );

  it.each(MODES)(
    'alternating users: a fault at any effect (%s) keeps AWSCURRENT signing in, and the retry converges',
    async (mode) => {
      const [report] = await runFaultMatrix(fake, alternatingTarget(), injector, [mode]);
      reports.push(report as FaultReport);
      expect(report?.points).toBeGreaterThan(10);
      expect(report?.failures).toEqual([]);
    },
  );

  describe('overlapping invocations', () => {
    it.each(STEPS)('two overlapping %s invocations end in the same state as one', async (step) => {
      injector.reset();
      for (const target of [singleTarget(), alternatingTarget()]) {
        // Prepare
        const secretId = await target.provision();
        const oldVersion = fake.versionOf(secretId);
        const token = fake.startRotation(secretId);
        const invoke = (s: string) =>
          target.handler(
            { Step: s, SecretId: fake.arnOf(secretId), ClientRequestToken: token },
            { getRemainingTimeInMillis: () => 20_000 },
          );
        const index = STEPS.indexOf(step);
        for (const before of STEPS.slice(0, index)) await invoke(before);

        // Act
        const outcomes = await Promise.allSettled([invoke(step), invoke(step)]);
        for (const after of STEPS.slice(index + 1)) await invoke(after);

        // Assess
        expect(
          outcomes.map((o) => (o.status === 'fulfilled' ? 'ok' : String(o.reason))),
          target.name,
        ).toEqual(['ok', 'ok']);
        expect(fake.versionOf(secretId), target.name).toBe(token);
        expect(fake.versionOf(secretId, 'AWSPREVIOUS'), target.name).toBe(oldVersion);
        expect(await target.holdsAfter(secretId), target.name).toEqual([]);
      }
    });
  });
});
