/**
 * Actor: a reader of the database server's own logs (an operator, a log pipeline, whoever can
 * read CloudWatch's postgresql log group). With log_statement = 'all' (or 'ddl', or a failing
 * statement under log_min_error_statement) the server writes every statement it receives. What
 * that reader must never see: a password, old or new, whatever password_encryption says.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidSecretError } from '../../shared/common/errors.js';
import { createPostgres } from '../../shared/databases/postgres.js';
import { md5Verifier } from '../../shared/databases/scram.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';
import { singleUser } from '../../shared/strategies/single-user.js';
import { PgAdmin, randomName } from '../support/pg-admin.js';
import { RotationHarness } from '../support/rotation-harness.js';
import { provided } from '../support/servers.js';

type Method = 'md5' | 'scram-sha-256';

describe("a reader of the PostgreSQL server's logs", () => {
  let admin: PgAdmin;
  const harness = new RotationHarness();
  const users: string[] = [];

  beforeAll(async () => {
    admin = await PgAdmin.connect(provided('pgAdminUrl'));
    await harness.start();
  });

  afterAll(async () => {
    await admin.dropUsers(users);
    await admin.close();
    await harness.stop();
  });

  /**
   * Where the server writes its log: the logging collector's current file, or the file
   * scripts/start-postgres.sh sends the server's stderr to (server.log in the data folder).
   */
  async function logMark(): Promise<{ file: string; size: number }> {
    const current = await admin.query("SELECT coalesce(pg_current_logfile(), 'server.log') AS f");
    const file = current.rows[0].f as string;
    const stat = await admin.query('SELECT size FROM pg_stat_file($1, true) AS s', [file]);
    if (stat.rows[0]?.size == null) throw new Error(`no server log at ${file} in the data folder`);
    return { file, size: Number(stat.rows[0].size) };
  }

  async function logSince(mark: { file: string; size: number }): Promise<string> {
    await new Promise((resolve) => setTimeout(resolve, 200));
    const result = await admin.query('SELECT pg_read_file($1, $2, 1000000000) AS text', [
      mark.file,
      mark.size,
    ]);
    return result.rows[0].text as string;
  }

  /** Sessions of `role` log every statement and store passwords as `method`. */
  async function logged(role: string, method: Method): Promise<void> {
    await admin.query(`ALTER ROLE ${admin.ident(role)} SET log_statement = 'all'`);
    await admin.query(`ALTER ROLE ${admin.ident(role)} SET password_encryption = '${method}'`);
  }

  /** Descriptions of the stored passwords that appear in `log` (never the values). */
  const leaked = (log: string): string[] =>
    harness.fake
      .allStoredValues()
      .map((value) => JSON.parse(value) as { username: string; password: string })
      .filter((secret) => log.includes(secret.password))
      .map((secret) => `a password of ${secret.username}`);

  async function storedVerifier(name: string): Promise<string> {
    return (await admin.passwordHashes([name]))[name] ?? '';
  }

  const appSecret = (name: string, password: string, extra: Record<string, unknown> = {}) =>
    harness.appSecret(admin.secretValue(name, password, { ...extra }));

  it.each<Method>(['md5', 'scram-sha-256'])(
    'single user: the log never holds a password (password_encryption %s)',
    async (method) => {
      // Prepare
      const name = randomName('sec_log1');
      const password = `initial-${randomName('pw')}`;
      await admin.createUser(name, password);
      users.push(name);
      await logged(name, method);
      const secretId = appSecret(name, password);
      const mark = await logMark();

      // Act (under this server's scram-only pg_hba an md5 verifier cannot sign in: stop there)
      const result = await harness.rotate(harness.handler(singleUser(createPostgres())), secretId, {
        stopAfter: 'setSecret',
      });

      // Assess
      expect(result.error).toBeUndefined();
      const log = await logSince(mark);
      expect(log).toMatch(new RegExp(`ALTER ROLE "${name}" WITH PASSWORD`));
      expect(leaked(log)).toEqual([]);
      const pending = harness.secret(secretId, 'AWSPENDING');
      const stored = await storedVerifier(name);
      if (method === 'md5') expect(stored).toBe(md5Verifier(pending.password, name));
      else expect(stored).toMatch(/^SCRAM-SHA-256\$4096:/);
    },
  );

  it.each<Method>(['md5', 'scram-sha-256'])(
    'alternating users: the log never holds a password, creating the clone or changing its password (password_encryption %s)',
    async (method) => {
      // Prepare: an RDS-like master (CREATEROLE, not superuser) whose sessions are logged.
      const master = randomName('sec_logm');
      const masterPassword = `master-${randomName('pw')}`;
      await admin.createUser(master, masterPassword, { createRole: true });
      const name = randomName('sec_log2');
      const password = `initial-${randomName('pw')}`;
      await admin.createUser(name, password);
      // PostgreSQL 16+: CREATEROLE grants only roles held WITH ADMIN OPTION (RDS's master has it).
      await admin.query(`GRANT ${admin.ident(name)} TO ${admin.ident(master)} WITH ADMIN OPTION`);
      users.push(`${name}_clone`, name, master);
      await logged(master, method);
      const masterarn = harness.masterSecret(admin.secretValue(master, masterPassword));
      const secretId = appSecret(name, password, { masterarn });
      const handler = harness.handler(alternatingUsers(createPostgres()));
      const mark = await logMark();

      // Act: the first rotation creates the clone, the second changes the original's password.
      // Under this server's scram-only pg_hba an md5 clone cannot sign in: there, setSecret
      // runs twice instead, and the second run verifies the clone and sets its password again.
      const first = await harness.rotate(handler, secretId, {
        ...(method === 'md5' ? { stopAfter: 'setSecret' as const } : {}),
      });
      const again = await harness.rotate(
        handler,
        secretId,
        method === 'md5' ? { token: first.token, stopAfter: 'setSecret' } : {},
      );

      // Assess
      expect(first.error).toBeUndefined();
      expect(again.error).toBeUndefined();
      const log = await logSince(mark);
      expect(log).toMatch(new RegExp(`CREATE ROLE "${name}_clone" WITH LOGIN INHERIT PASSWORD`));
      const changed = method === 'md5' ? `${name}_clone` : name;
      expect(log).toMatch(new RegExp(`ALTER ROLE "${changed}" WITH PASSWORD`));
      expect(leaked(log)).toEqual([]);
      const pending = harness.secret(secretId, 'AWSPENDING');
      const stored = await storedVerifier(changed);
      if (method === 'md5') expect(stored).toBe(md5Verifier(pending.password, changed));
      else expect(stored).toMatch(/^SCRAM-SHA-256\$4096:/);
    },
  );

  it('refuses a password it cannot turn into a SCRAM verifier rather than send it in plaintext', async () => {
    // Prepare: a non-ASCII password needs SASLprep, which the function does not reproduce.
    const name = randomName('sec_log4');
    await admin.createUser(name, `initial-${randomName('pw')}`);
    users.push(name);
    await logged(name, 'scram-sha-256');
    const before = await admin.passwordHashes([name]);
    const db = createPostgres();
    const connection = await db.connect({
      host: admin.host,
      port: admin.port,
      user: admin.username,
      password: admin.password,
      database: 'postgres',
      tls: 'disable',
    });
    const mark = await logMark();

    // Act
    const outcome = await db.setPassword(connection, name, 'Pässwört-ünicode-1').then(
      () => 'set',
      (error: unknown) => error,
    );
    await db.close(connection);

    // Assess
    expect(outcome).toBeInstanceOf(InvalidSecretError);
    expect(await logSince(mark)).not.toContain('Pässwört-ünicode-1');
    expect(await admin.passwordHashes([name])).toEqual(before);
  });
});
