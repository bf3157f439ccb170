import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  ConnectTimeoutError,
  DatabaseError,
  InvalidSecretError,
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

    // Assess
    expect(failure).toBeInstanceOf(DatabaseError);
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

  it('bounds every statement with a statement_timeout', async () => {
    const connection = await db.connect(adminLogin);
    const result = await connection.query('SHOW statement_timeout');
    await db.close(connection);
    expect(result.rows[0].statement_timeout).toBe('30s');
  });

  it.each([
    ['an unrelated login role', 'LOGIN', /is not a member of .*refusing to take it over/],
    [
      'a superuser',
      'LOGIN SUPERUSER',
      /has SUPER, which .* lacks; refusing to hand out its password/,
    ],
  ])('refuses to take over an existing <user>_clone that is %s', async (_, attributes, message) => {
    // Prepare: someone else made <user>_clone before the first rotation.
    const harness = await new RotationHarness().start();
    const name = randomName('victim');
    await admin.createUser(name, 'app-password-1');
    await admin.query(
      `CREATE ROLE ${admin.ident(`${name}_clone`)} ${attributes} PASSWORD 'x-password-1'`,
    );
    users.push(`${name}_clone`, name);
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
    expect(String(result.error)).toMatch(message);
    expect(await admin.passwordHashes([`${name}_clone`])).toEqual(hashes);
  });
});
