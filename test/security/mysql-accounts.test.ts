import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMysql } from '../../shared/databases/mysql.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';
import { MysqlAdmin, queryAs, randomName, signsIn } from '../support/mysql-admin.js';
import { RotationHarness } from '../support/rotation-harness.js';
import { provided } from '../support/servers.js';

/**
 * Actor: a holder of PutSecretValue (and GetSecretValue) on an application's secret, with no
 * database account of their own. The secret rotates a weak account, 'app'@'localhost'; the
 * server also has 'app'@'127.0.0.%', another account of the same name that reads a table the
 * weak one cannot. The actor writes `accounthost` naming the strong account, keeping the weak
 * account's working password, so the proof sign-in still succeeds (as 'app'@'localhost': the
 * tests connect from 127.0.0.1, which the server resolves to localhost and sorts first).
 *
 * Invariant: the strong account's password never changes and never lands in the secret, and
 * no clone ever receives the strong account's grants.
 */
/** mysql_native_password's stored hash of a password. */
const nativeHash = (password: string): string =>
  `*${createHash('sha1')
    .update(createHash('sha1').update(password, 'utf8').digest())
    .digest('hex')
    .toUpperCase()}`;

describe('mysql alternating users: accounthost naming another account of the same name', () => {
  let admin: MysqlAdmin;
  const harness = new RotationHarness();
  const users: string[] = [];
  let masterArn: string;
  let table: string;
  const handler = () => harness.handler(alternatingUsers(createMysql({ env: {} })));
  const WEAK = 'localhost';
  const STRONG = '127.0.0.%';

  beforeAll(async () => {
    admin = await MysqlAdmin.connect(provided('mysqlAdminUrl'));
    await harness.start();
    masterArn = harness.fake.createSecret({
      name: `rds/master-${randomName('m')}`,
      secretString: admin.masterSecretValue(),
    });
    table = `${admin.id(admin.database)}.${admin.id(randomName('payroll'))}`;
    await admin.query(`CREATE TABLE ${table} (salary int)`);
    await admin.query(`INSERT INTO ${table} VALUES (42)`);
  });

  afterAll(async () => {
    await admin.dropUsers(users.flatMap((name) => [`${name}_clone`, name]));
    await admin.query(`DROP TABLE IF EXISTS ${table}`);
    await admin.close();
    await harness.stop();
  });

  const login = (user: string, password: string) => ({
    host: admin.host,
    port: admin.port,
    user,
    password,
  });

  /** The weak and the strong account of one name; the secret rotates the weak one. */
  async function provision() {
    const name = randomName('acc');
    users.push(name);
    const weakPassword = `weak-${randomName('pw')}`;
    const strongPassword = `strong-${randomName('pw')}`;
    await admin.createUser(name, weakPassword, WEAK);
    await admin.createUser(name, strongPassword, STRONG);
    await admin.query(`GRANT SELECT ON ${table} TO ${admin.account(name, STRONG)}`);
    const value = {
      engine: admin.mariadb ? 'mariadb' : 'mysql',
      host: admin.host,
      port: admin.port,
      username: name,
      password: weakPassword,
      ssl: false,
      masterarn: masterArn,
      accounthost: WEAK,
    };
    const secretId = harness.fake.createSecret({
      name: `app/${randomName('secret')}`,
      secretString: JSON.stringify(value),
    });
    return { name, weakPassword, strongPassword, value, secretId };
  }

  /** What the actor does: a new AWSCURRENT naming the strong account, same password. */
  function writeAccounthost(secretId: string, host: string) {
    const current = harness.secret(secretId);
    // (UpdateSecretVersionStage: a finished rotation leaves AWSPENDING on the current version.)
    harness.fake.removeLabel(secretId, 'AWSPENDING');
    harness.fake.putSecretValue({
      SecretId: secretId,
      SecretString: JSON.stringify({ ...current, accounthost: host }),
    });
  }

  async function assertStrongUntouched(name: string, strongPassword: string, secretId: string) {
    // The strong account still has its own password (checked on its hash: no client here
    // reaches 127.0.0.% except through localhost, which the weak account shadows).
    const before = await admin.userRow(name, STRONG);
    expect(before?.hash).toBe(nativeHash(strongPassword));
    // No stored version holds a password of the strong account's hash.
    for (const stored of harness.fake.allStoredValues()) {
      const parsed = JSON.parse(stored) as { password?: string };
      if (typeof parsed.password !== 'string') continue;
      expect(nativeHash(parsed.password) === before?.hash, 'a stored version opens it').toBe(false);
    }
    // No clone reads what only the strong account reads, and no clone exists at its host.
    expect(await admin.hostsOf(`${name}_clone`)).not.toContain(STRONG);
    for (const host of await admin.hostsOf(`${name}_clone`)) {
      expect((await admin.grantsOf(`${name}_clone`, host)).join('\n')).not.toContain('payroll');
    }
    const current = harness.secret(secretId);
    if (current.username.endsWith('_clone')) {
      await expect(
        queryAs(login(current.username, current.password), `SELECT salary FROM ${table}`),
      ).rejects.toThrow(/denied/);
    }
  }

  it('rotation 1: the clone is never made from the strong account, nor handed out with its grants', async () => {
    // Prepare
    const { name, weakPassword, strongPassword, secretId } = await provision();
    expect(await queryAs(login(name, weakPassword))).toEqual([{ account: `${name}@${WEAK}` }]);
    writeAccounthost(secretId, STRONG);

    // Act: the service rotates the secret.
    const result = await harness.rotate(handler(), secretId);

    // Assess
    expect(result.completed).toBe(false);
    await assertStrongUntouched(name, strongPassword, secretId);
    expect(harness.leakedSecrets()).toEqual([]);
  });

  it("rotation 2: AWSCURRENT is the weak account's clone; the strong account's password is never changed or stored", async () => {
    // Prepare: a legitimate first rotation of the weak account (its clone at localhost), and
    // the strong account rotated by another secret (its own clone at 127.0.0.%).
    const { name, strongPassword, secretId } = await provision();
    const first = await harness.rotate(handler(), secretId);
    expect(first.completed, String(first.error)).toBe(true);
    expect(harness.secret(secretId).username).toBe(`${name}_clone`);
    await admin.createUser(`${name}_clone`, `other-${randomName('pw')}`, STRONG);
    await admin.query(`GRANT SELECT ON ${table} TO ${admin.account(`${name}_clone`, STRONG)}`);
    const strongCloneHash = (await admin.userRow(`${name}_clone`, STRONG))?.hash;
    writeAccounthost(secretId, STRONG);

    // Act
    const result = await harness.rotate(handler(), secretId);

    // Assess: the proof signed in as the weak clone, so nothing at 127.0.0.% changed.
    expect(result.completed).toBe(false);
    const before = await admin.userRow(name, STRONG);
    expect(before?.hash).toBe(nativeHash(strongPassword));
    expect((await admin.userRow(`${name}_clone`, STRONG))?.hash).toBe(strongCloneHash);
    for (const stored of harness.fake.allStoredValues()) {
      const parsed = JSON.parse(stored) as { password?: string };
      if (typeof parsed.password !== 'string') continue;
      expect(nativeHash(parsed.password) === before?.hash, 'a stored version opens it').toBe(false);
    }
    expect(harness.leakedSecrets()).toEqual([]);
  });

  it('still rotates the weak account when accounthost names it', async () => {
    const { name, strongPassword, secretId } = await provision();
    const rotate = handler();
    for (let i = 0; i < 2; i++) {
      const result = await harness.rotate(rotate, secretId);
      expect(result.completed, String(result.error)).toBe(true);
      const current = harness.secret(secretId);
      expect(await signsIn(login(current.username, current.password))).toBe(true);
    }
    expect(harness.secret(secretId).username).toBe(name);
    expect((await admin.userRow(name, STRONG))?.hash).toBe(nativeHash(strongPassword));
  });
});

/**
 * Actor: whoever made an account named `<name>_clone` that another way of signing in reaches
 * (unix_socket: any OS user of that name on the server host). Invariant: the rotation never
 * adopts it, so it never receives the original's grants nor a password from the secret.
 */
describe('mysql alternating users: a pre-existing _clone account on another plugin', () => {
  let admin: MysqlAdmin;
  const harness = new RotationHarness();
  const users: string[] = [];
  let masterArn: string;
  let table: string;

  beforeAll(async () => {
    admin = await MysqlAdmin.connect(provided('mysqlAdminUrl'));
    await harness.start();
    masterArn = harness.fake.createSecret({
      name: `rds/master-${randomName('m')}`,
      secretString: admin.masterSecretValue(),
    });
    table = `${admin.id(admin.database)}.${admin.id(randomName('orders'))}`;
    await admin.query(`CREATE TABLE ${table} (a int)`);
  });

  afterAll(async () => {
    await admin.dropUsers(users.flatMap((name) => [`${name}_clone`, name]));
    await admin.query(`DROP TABLE IF EXISTS ${table}`);
    await admin.close();
    await harness.stop();
  });

  it('refuses to take over a _clone that also signs in through unix_socket', async () => {
    // Prepare
    const name = randomName('plg');
    users.push(name);
    const password = `pw-${randomName('pw')}`;
    await admin.createUser(name, password);
    await admin.query(`GRANT SELECT ON ${table} TO ${admin.account(name)}`);
    await admin.query(
      admin.mariadb
        ? `CREATE USER ${admin.account(`${name}_clone`)} IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('planted-pw')`
        : `CREATE USER ${admin.account(`${name}_clone`)} IDENTIFIED WITH auth_socket`,
    );
    const before = await admin.userRow(`${name}_clone`);
    const secretId = harness.fake.createSecret({
      name: `app/${randomName('secret')}`,
      secretString: JSON.stringify({
        engine: admin.mariadb ? 'mariadb' : 'mysql',
        host: admin.host,
        port: admin.port,
        username: name,
        password,
        ssl: false,
        masterarn: masterArn,
      }),
    });

    // Act
    const result = await harness.rotate(
      harness.handler(alternatingUsers(createMysql({ env: {} }))),
      secretId,
    );

    // Assess
    expect(result.completed).toBe(false);
    expect((await admin.grantsOf(`${name}_clone`)).join('\n')).not.toContain('orders');
    expect((await admin.userRow(`${name}_clone`))?.hash).toBe(before?.hash);
  });
});
