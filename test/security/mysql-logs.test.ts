import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMysql } from '../../shared/databases/mysql.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';
import { singleUser } from '../../shared/strategies/single-user.js';
import { MysqlAdmin, randomName, signsIn } from '../support/mysql-admin.js';
import { RotationHarness } from '../support/rotation-harness.js';
import { provided } from '../support/servers.js';

/**
 * Actor: a reader of the server's general query log (a DBA, a log shipper, whoever reads the
 * log files or mysql.general_log), who holds no secret. MariaDB writes every statement to the
 * general log as the client sent it (it rewrites no password out of it, unlike MySQL).
 *
 * Invariant: no password the function sets, generated or throw-away, appears in the log, nor
 * any statement that carries a password in plain text; the rotated passwords still sign in.
 */
describe('mysql rotations under a general query log', () => {
  let admin: MysqlAdmin;
  const harness = new RotationHarness();
  const users: string[] = [];
  let masterArn: string;
  let saved: { general: number; output: string; rows: number } | undefined;
  let since: string;

  beforeAll(async () => {
    admin = await MysqlAdmin.connect(provided('mysqlAdminUrl'));
    await harness.start();
    masterArn = harness.fake.createSecret({
      name: `rds/master-${randomName('m')}`,
      secretString: admin.masterSecretValue(),
    });
    const [row] = await admin.query(
      'SELECT @@GLOBAL.general_log AS general, @@GLOBAL.log_output AS output',
    );
    const [count] = await admin.query('SELECT count(*) AS n FROM mysql.general_log');
    saved = { general: Number(row?.general), output: String(row?.output), rows: Number(count?.n) };
    await admin.query("SET GLOBAL log_output = 'TABLE'");
    await admin.query('SET GLOBAL general_log = ON');
  });

  afterAll(async () => {
    if (saved) {
      await admin.query('SET GLOBAL general_log = ?', [saved.general ? 'ON' : 'OFF']);
      await admin.query('SET GLOBAL log_output = ?', [saved.output]);
      // The rows of this file's run only: the table was empty before it.
      if (saved.rows === 0 && !saved.general) await admin.query('TRUNCATE TABLE mysql.general_log');
    }
    await admin.dropUsers(users.flatMap((name) => [`${name}_clone`, name]));
    await admin.close();
    await harness.stop();
  });

  async function provision(alternating: boolean) {
    const name = randomName(alternating ? 'logalt' : 'logsgl');
    users.push(name);
    const password = `initial-${randomName('pw')}`;
    await admin.createUser(name, password);
    const secretId = harness.fake.createSecret({
      name: `app/${randomName('secret')}`,
      secretString: JSON.stringify({
        engine: admin.mariadb ? 'mariadb' : 'mysql',
        host: admin.host,
        port: admin.port,
        username: name,
        password,
        ssl: false,
        ...(alternating ? { masterarn: masterArn } : {}),
      }),
    });
    // From here on the log is the function's (the provisioning above sent a password).
    // As text: a JS Date keeps milliseconds only, and a CREATE USER (with its password) logged in
    // the same millisecond would count as the function's.
    const [now] = await admin.query("SELECT DATE_FORMAT(NOW(6), '%Y-%m-%d %H:%i:%s.%f') AS now");
    since = String(now?.now);
    return { name, secretId };
  }

  /** What the general log holds about these user names since the file started. */
  async function logged(names: string[]): Promise<string[]> {
    const rows = await admin.query(
      'SELECT CONVERT(argument USING utf8mb4) AS text FROM mysql.general_log WHERE event_time >= ?',
      [since],
    );
    return rows
      .map((row) => String(row.text))
      .filter((text) => names.some((name) => text.includes(name)));
  }

  function assertNoPassword(lines: string[]) {
    const text = lines.join('\n');
    for (const stored of harness.fake.allStoredValues()) {
      const password = (JSON.parse(stored) as { password?: string }).password;
      if (typeof password === 'string' && password.length > 0) {
        expect(text.includes(password), 'a stored password is in the general log').toBe(false);
      }
    }
    // Plain-text forms, whatever the password (the clone's throw-away one included).
    expect(lines.filter((line) => /PASSWORD\s*\(|IDENTIFIED (WITH \w+ )?BY '/i.test(line))).toEqual(
      [],
    );
  }

  it('single user: the password change reaches the log as a hash only', async () => {
    const { name, secretId } = await provision(false);
    const rotate = harness.handler(singleUser(createMysql({ env: {} })));
    for (let i = 0; i < 2; i++) {
      const result = await harness.rotate(rotate, secretId);
      expect(result.completed, String(result.error)).toBe(true);
    }
    const lines = await logged([name]);
    expect(lines.some((line) => line.startsWith('SET PASSWORD'))).toBe(true);
    assertNoPassword(lines);
    const current = harness.secret(secretId);
    expect(
      await signsIn({
        host: admin.host,
        port: admin.port,
        user: current.username,
        password: current.password,
      }),
    ).toBe(true);
  });

  it('alternating users: the clone is created, and both passwords change, with hashes only', async () => {
    const { name, secretId } = await provision(true);
    const rotate = harness.handler(alternatingUsers(createMysql({ env: {} })));
    // 1 creates the clone; 2 changes the original's password; 3 changes the clone's.
    for (let i = 0; i < 3; i++) {
      const result = await harness.rotate(rotate, secretId);
      expect(result.completed, String(result.error)).toBe(true);
      const current = harness.secret(secretId);
      expect(
        await signsIn({
          host: admin.host,
          port: admin.port,
          user: current.username,
          password: current.password,
        }),
      ).toBe(true);
    }
    const lines = await logged([name]);
    expect(lines.some((line) => line.startsWith('CREATE USER'))).toBe(true);
    expect(lines.filter((line) => line.startsWith('SET PASSWORD')).length).toBeGreaterThanOrEqual(
      3,
    );
    assertNoPassword(lines);
    expect(harness.leakedSecrets()).toEqual([]);
  });
});
