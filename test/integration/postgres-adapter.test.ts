import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  AuthenticationError,
  ConnectTimeoutError,
  DatabaseError,
  InvalidSecretError,
  TlsError,
  UserExistsError,
} from '../../shared/common/errors.js';
import { createPostgres } from '../../shared/databases/postgres.js';
import type { Login } from '../../shared/databases/types.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';
import { PgAdmin, randomName, signsIn } from '../support/pg-admin.js';
import { RotationHarness } from '../support/rotation-harness.js';
import { provided } from '../support/servers.js';

describe('postgres adapter on a real server', () => {
  let admin: PgAdmin;
  let adminLogin: Login;
  const db = createPostgres();
  const users: string[] = [];

  beforeAll(async () => {
    admin = await PgAdmin.connect(provided('pgAdminUrl'));
    adminLogin = {
      host: admin.host,
      port: admin.port,
      user: admin.username,
      password: admin.password,
      database: 'postgres',
      tls: 'disable',
    };
  });
  afterAll(async () => {
    await admin.dropUsers(users);
    await admin.close();
  });

  it('creates a clone atomically: a failed grant leaves no half-made user', async () => {
    // Prepare: the role to copy does not exist, so the GRANT fails after CREATE ROLE.
    const clone = randomName('half');
    const connection = await db.connect(adminLogin);

    // Act
    const failure = await db
      .createUserLike(connection, clone, 'a-password-1', randomName('missing'))
      .catch((e: unknown) => e);
    await db.close(connection);

    // Assess: the failed step is named, and it is no "exists already"
    expect(failure).toBeInstanceOf(DatabaseError);
    expect(failure).not.toBeInstanceOf(UserExistsError);
    expect(String(failure)).toContain('granting role "missing_');
    expect(await admin.userExists(clone)).toBe(false);
  });

  it('sends the server a SCRAM verifier, never the password, when the server stores SCRAM', async () => {
    // Prepare
    const name = randomName('verifier');
    await admin.createUser(name, 'first-password-1');
    users.push(name);
    const spy = vi.spyOn(pg.Client.prototype, 'query');
    const connection = await db.connect(adminLogin);

    // Act
    await db.setPassword(connection, name, 'second-password-2');
    await db.close(connection);

    // Assess
    // The adapter passes query configs ({ text, values, query_timeout }).
    const statements = spy.mock.calls.map((call) =>
      typeof call[0] === 'string' ? call[0] : String((call[0] as { text?: unknown }).text),
    );
    spy.mockRestore();
    const alter = statements.find((text) => text.startsWith('ALTER ROLE'));
    expect(alter).toMatch(/PASSWORD 'SCRAM-SHA-256\$4096:/);
    expect(statements.join('\n')).not.toContain('second-password-2');
    expect(
      await signsIn({
        host: admin.host,
        port: admin.port,
        user: name,
        password: 'second-password-2',
      }),
    ).toBe(true);
  });

  it('pins the session: catalog-only search_path, no role, statement, lock and idle-in-transaction timeouts, its application name', async () => {
    const connection = await db.connect(adminLogin);
    const result = await connection.query(
      `SELECT pg_catalog.current_setting('search_path') AS search_path,
              pg_catalog.current_setting('lock_timeout') AS lock_timeout,
              pg_catalog.current_setting('idle_in_transaction_session_timeout') AS idle,
              pg_catalog.current_setting('application_name') AS application_name,
              pg_catalog.current_setting('role') AS role`,
    );
    await db.close(connection);
    expect(result.rows[0]).toEqual({
      search_path: 'pg_catalog, pg_temp',
      lock_timeout: '30s',
      idle: '10s',
      application_name: 'secrets-rotation',
      role: 'none',
    });
  });

  it('bounds the session timeouts by the invocation deadline', async () => {
    const connection = await db.connect(adminLogin, { deadline: Date.now() + 5_000 });
    const result = await connection.query(
      `SELECT pg_catalog.current_setting('statement_timeout') AS statement,
              pg_catalog.current_setting('lock_timeout') AS lock,
              pg_catalog.current_setting('idle_in_transaction_session_timeout') AS idle`,
    );
    await db.close(connection);
    // In ms, a little under the 5 s left when the session was opened.
    for (const value of Object.values(result.rows[0] as Record<string, string>)) {
      const ms = value.endsWith('ms')
        ? Number.parseInt(value, 10)
        : Number.parseFloat(value) * 1000;
      expect(ms).toBeGreaterThan(3_000);
      expect(ms).toBeLessThanOrEqual(5_000);
    }
  });

  it('sends nothing once the deadline has passed: a timeout error, not a statement', async () => {
    const connection = await db.connect(adminLogin, { deadline: Date.now() + 1_500 });
    const spy = vi.spyOn(connection, 'query');
    await new Promise((resolve) => setTimeout(resolve, 1_600));

    const failure = await db.ping(connection).catch((e: unknown) => e);
    const sent = spy.mock.calls.length;
    spy.mockRestore();
    await db.close(connection);

    expect(failure).toBeInstanceOf(ConnectTimeoutError);
    expect(sent).toBe(0);
  });

  it('reports a user made meanwhile as existing: a second createUserLike fails with UserExistsError', async () => {
    const original = randomName('orig');
    const clone = `${original}_clone`;
    await admin.createUser(original, 'orig-password-1');
    users.push(clone, original);
    const connection = await db.connect(adminLogin);

    expect(await db.userExists(connection, clone)).toBe(false);
    await db.createUserLike(connection, clone, 'clone-password-1', original);
    const second = await db
      .createUserLike(connection, clone, 'clone-password-2', original)
      .catch((e: unknown) => e);
    const exists = await db.userExists(connection, clone);
    await db.close(connection);

    expect(second).toBeInstanceOf(UserExistsError);
    expect((second as Error).cause).toBeInstanceOf(DatabaseError);
    expect(exists).toBe(true);
    // The first password stands: the failed second attempt changed nothing.
    expect(
      await signsIn({
        host: admin.host,
        port: admin.port,
        user: clone,
        password: 'clone-password-1',
      }),
    ).toBe(true);
  });

  it('sends an md5 verifier of the UTF-8 bytes for a non-ASCII password where password_encryption is md5 (UTF8 server)', async () => {
    // Prepare: the user's own sessions store md5 (as a database owner could set it).
    const name = randomName('md5');
    await admin.createUser(name, 'first-password-1');
    users.push(name);
    await admin.query(`ALTER ROLE ${admin.ident(name)} SET password_encryption = 'md5'`);
    const connection = await db.connect({
      ...adminLogin,
      user: name,
      password: 'first-password-1',
    });

    // Act
    await db.setPassword(connection, name, 'pässwörd-ü-2');
    await db.close(connection);

    // Assess: the verifier PostgreSQL itself computes (md5 of the password's and the name's
    // bytes in the server encoding), which a plaintext ALTER ROLE would have stored
    const expected = await admin.query(`SELECT 'md5' || pg_catalog.md5($1 || $2) AS v`, [
      'pässwörd-ü-2',
      name,
    ]);
    const stored = (await admin.passwordHashes([name]))[name];
    expect(stored).toBe(expected.rows[0].v);
  });

  it('refuses, rather than send it in plaintext, a non-ASCII password where the server stores SCRAM', async () => {
    const name = randomName('nonascii');
    await admin.createUser(name, 'first-password-1');
    users.push(name);
    const before = await admin.passwordHashes([name]);
    const connection = await db.connect(adminLogin);

    const failure = await db.setPassword(connection, name, 'pässwörd-2').catch((e: unknown) => e);
    await db.close(connection);

    expect(failure).toBeInstanceOf(InvalidSecretError);
    expect((failure as InvalidSecretError).field).toBe('password');
    expect(await admin.passwordHashes([name])).toEqual(before);
  });

  it('refuses a name over 63 bytes in every call before sending anything, and takes one of exactly 63', async () => {
    const long = `${randomName('n')}_${'é'.repeat(26)}`; // 13 + 52 = 65 bytes, 39 characters
    const exact = `${randomName('n')}_${'x'.repeat(50)}`; // 13 + 50 = 63 bytes
    await admin.createUser(exact, 'first-password-1');
    users.push(exact, `${exact.slice(0, 40)}_clone`);
    const connection = await db.connect(adminLogin);
    const spy = vi.spyOn(connection, 'query');

    const calls = [
      db.setPassword(connection, long, 'password-2'),
      db.userExists(connection, long),
      db.createUserLike(connection, long, 'password-2', exact),
      db.createUserLike(connection, `${exact.slice(0, 40)}_clone`, 'password-2', long),
      db.verifyClone?.(connection, long, exact),
      db.verifyClone?.(connection, exact, long),
    ];
    const failures = await Promise.all(
      calls.map((call) => Promise.resolve(call).catch((e: unknown) => e)),
    );
    const sent = spy.mock.calls.length;
    spy.mockRestore();
    await db.setPassword(connection, exact, 'second-password-2');
    await db.close(connection);

    for (const failure of failures) {
      expect(failure).toBeInstanceOf(InvalidSecretError);
      expect((failure as InvalidSecretError).field).toBe('username');
    }
    expect(sent).toBe(0);
    expect(
      await signsIn({
        host: admin.host,
        port: admin.port,
        user: exact,
        password: 'second-password-2',
      }),
    ).toBe(true);
  });

  it("waits for another invocation's lock on the user before changing its password", async () => {
    // Prepare: an overlapping invocation (this version or an earlier one) holds the user's lock.
    const name = randomName('locked');
    await admin.createUser(name, 'first-password-1');
    users.push(name);
    const holder = new pg.Client({ connectionString: provided('pgAdminUrl') });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT pg_advisory_xact_lock(hashtext($1)::int8)', [
      `secrets-rotation:${name}`,
    ]);
    const connection = await db.connect(adminLogin);

    // Act
    let done = false;
    const change = db.setPassword(connection, name, 'second-password-2').then(() => {
      done = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const doneWhileLocked = done;
    await holder.query('COMMIT');
    await holder.end();
    await change;
    await db.close(connection);

    // Assess
    expect(doneWhileLocked).toBe(false);
    expect(
      await signsIn({
        host: admin.host,
        port: admin.port,
        user: name,
        password: 'second-password-2',
      }),
    ).toBe(true);
  });

  it('closes the session on the server', async () => {
    const name = randomName('closes');
    await admin.createUser(name, 'first-password-1');
    users.push(name);
    const connection = await db.connect({
      ...adminLogin,
      user: name,
      password: 'first-password-1',
    });
    await db.ping(connection);
    expect(await admin.sessionsOf([name])).toBe(1);

    await db.close(connection);

    await vi.waitFor(async () => expect(await admin.sessionsOf([name])).toBe(0), {
      timeout: 3_000,
    });
  });

  it('bounds every statement with a statement_timeout', async () => {
    const connection = await db.connect(adminLogin);
    const result = await connection.query('SHOW statement_timeout');
    await db.close(connection);
    expect(result.rows[0].statement_timeout).toBe('30s');
  });

  it.each<
    [string, string, RegExp, ((clone: string, name: string, other: string) => string[])?, boolean?]
  >([
    ['an unrelated login role', 'LOGIN', /is not a member of .*refusing to take it over/],
    [
      'a superuser',
      'LOGIN SUPERUSER',
      /has SUPER, which .* lacks; refusing to hand out its password/,
    ],
    [
      'a superuser member of the original, made before it',
      'LOGIN SUPERUSER',
      /has SUPER, which .* lacks; refusing to hand out its password/,
      (clone, name) => [`GRANT "${name}" TO "${clone}"`],
      true,
    ],
    [
      'a member of the original and of another role',
      'LOGIN',
      /holds roles beyond .*"other_[0-9a-f]+" \(member, inherits\)/,
      (clone, name, other) => [`GRANT "${name}" TO "${clone}"`, `GRANT "${other}" TO "${clone}"`],
    ],
    [
      'a member of the original holding ADMIN OPTION on it',
      'LOGIN',
      /holds roles beyond .* \(ADMIN OPTION\)/,
      (clone, name) => [`GRANT "${name}" TO "${clone}" WITH ADMIN OPTION`],
    ],
    [
      'an inheriting member of a role the original belongs to without inheriting',
      'LOGIN INHERIT',
      /holds roles beyond .*"other_[0-9a-f]+" \(inherits\)/,
      (clone, name, other) => [
        `ALTER ROLE "${name}" NOINHERIT`,
        `GRANT "${other}" TO "${name}"`,
        `GRANT "${name}" TO "${clone}"`,
        `GRANT "${other}" TO "${clone}"`,
      ],
    ],
  ])(
    'refuses to take over an existing <user>_clone that is %s',
    async (_, attributes, message, grants, cloneFirst) => {
      // Prepare: someone else made <user>_clone before the first rotation (before the user,
      // in one case: the clone's row then comes first in pg_roles).
      const harness = await new RotationHarness().start();
      const name = randomName('victim');
      const other = randomName('other');
      const createClone = () =>
        admin.query(
          `CREATE ROLE ${admin.ident(`${name}_clone`)} ${attributes} PASSWORD 'x-password-1'`,
        );
      if (cloneFirst) await createClone();
      await admin.createUser(name, 'app-password-1');
      if (!cloneFirst) await createClone();
      await admin.query(`CREATE ROLE ${admin.ident(other)} NOLOGIN`);
      users.push(`${name}_clone`, name, other);
      for (const sql of grants?.(`${name}_clone`, name, other) ?? []) await admin.query(sql);
      const master = harness.fake.createSecret({
        name: 'master',
        secretString: JSON.stringify({
          host: admin.host,
          port: admin.port,
          username: admin.username,
          password: admin.password,
          ssl: false,
        }),
      });
      const secretId = harness.fake.createSecret({
        name: 'app',
        secretString: JSON.stringify({
          engine: 'postgres',
          host: admin.host,
          port: admin.port,
          username: name,
          password: 'app-password-1',
          ssl: false,
          masterarn: master,
        }),
      });
      const hashes = await admin.passwordHashes([`${name}_clone`]);

      // Act
      const result = await harness.rotate(harness.handler(alternatingUsers(db)), secretId);
      await harness.stop();

      // Assess
      expect(result.failedStep).toBe('setSecret');
      expect(result.error).toBeInstanceOf(InvalidSecretError);
      expect((result.error as InvalidSecretError).field).toBe('username');
      expect(String(result.error)).toMatch(message);
      expect(await admin.passwordHashes([`${name}_clone`])).toEqual(hashes);
    },
  );
});

const tlsUrl = process.env.PG_TLS_ADMIN_URL;
const tlsCaFile = process.env.PG_TLS_CA_FILE;
if (process.env.CI === 'true' && (!tlsUrl || !tlsCaFile)) {
  throw new Error(
    'CI=true but PG_TLS_ADMIN_URL / PG_TLS_CA_FILE are not set: start the TLS server (PG_TLS=1 scripts/start-postgres.sh)',
  );
}

/**
 * The TLS modes against a PostgreSQL that accepts only TLS (hostssl), with a certificate from a
 * test CA this process does not trust (no NODE_EXTRA_CA_CERTS here).
 */
describe.skipIf(!tlsUrl || !tlsCaFile)('postgres adapter TLS modes on a TLS-only server', () => {
  const db = createPostgres();
  let login: Login;
  let admin: pg.Client;

  beforeAll(async () => {
    const url = new URL(tlsUrl as string);
    admin = new pg.Client({
      connectionString: tlsUrl,
      ssl: { ca: readFileSync(tlsCaFile as string, 'utf8') },
    });
    await admin.connect();
    login = {
      host: url.hostname,
      port: Number(url.port),
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      database: 'postgres',
      tls: 'prefer',
    };
  });
  afterAll(async () => {
    await admin.end();
  });

  it('"prefer" encrypts without verifying the certificate', async () => {
    const connection = await db.connect(login);
    const ssl = await connection.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    await db.close(connection);
    expect(ssl.rows[0].ssl).toBe(true);
  });

  it('"verify" refuses a certificate from an untrusted CA', async () => {
    await expect(db.connect({ ...login, tls: 'verify' })).rejects.toBeInstanceOf(TlsError);
  });

  it('"disable" never starts TLS: the TLS-only server refuses the session', async () => {
    await expect(db.connect({ ...login, tls: 'disable' })).rejects.toBeInstanceOf(
      AuthenticationError,
    );
  });

  it('"prefer" reports a failure over TLS as it is, and never retries it in plaintext', async () => {
    const failure = await db
      .connect({ ...login, database: randomName('nodb') })
      .catch((e: unknown) => e);
    // Retried in plaintext, the TLS-only server would answer "no pg_hba.conf entry" instead.
    expect(failure).toBeInstanceOf(DatabaseError);
    expect(failure).not.toBeInstanceOf(AuthenticationError);
  });
});

describe('postgres adapter on a server without TLS', () => {
  it('"prefer" falls back to plaintext, also without a logger to warn', async () => {
    const admin = await PgAdmin.connect(provided('pgAdminUrl'));
    const db = createPostgres();
    const connection = await db.connect({
      host: admin.host,
      port: admin.port,
      user: admin.username,
      password: admin.password,
      database: 'postgres',
      tls: 'prefer',
    });
    await db.ping(connection);
    await db.close(connection);
    await admin.close();
  });
});
