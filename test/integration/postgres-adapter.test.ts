import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DatabaseError, InvalidSecretError } from '../../shared/common/errors.js';
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
