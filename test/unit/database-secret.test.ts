/**
 * The database secret value, as AWS's templates define it: what each field accepts, what it
 * defaults to, and the field each refusal names.
 */
import { describe, expect, it } from 'vitest';
import { InvalidSecretError } from '../../shared/common/errors.js';
import {
  accountOf,
  loginOf,
  parseDatabaseSecret,
  serializeDatabaseSecret,
  withCredentials,
} from '../../shared/strategies/database-secret.js';

const postgresLike = {
  name: 'PostgreSQL',
  engines: ['postgres', 'aurora-postgresql'],
  defaultPort: 5432,
  defaultDatabase: 'postgres',
  maxUsernameLength: 63,
  usernameLimitUnit: 'bytes' as const,
};
const mysqlLike = {
  name: 'MySQL',
  engines: ['mysql', 'mariadb'],
  defaultPort: 3306,
  defaultDatabase: '',
  maxUsernameLength: 32,
  maxUsernameLengthFor: (engine: string) => (engine === 'mariadb' ? 80 : 32),
  scopeField: 'accounthost',
};

const base = { engine: 'postgres', host: 'db.example.com', username: 'app', password: 'pw-1' };
const parse = (
  fields: Record<string, unknown>,
  db: Parameters<typeof parseDatabaseSecret>[2] = postgresLike,
) => parseDatabaseSecret(JSON.stringify({ ...base, ...fields }), 'AWSCURRENT', db);
const refusal = (
  fields: Record<string, unknown>,
  db?: Parameters<typeof parseDatabaseSecret>[2],
) => {
  try {
    parse(fields, db);
  } catch (error) {
    if (error instanceof InvalidSecretError) return error;
    throw error;
  }
  throw new Error('accepted');
};

describe('database secret values', () => {
  it('defaults port, dbname and TLS (preferred), and keeps every other key', () => {
    const secret = parse({ note: 'kept' });
    expect(secret).toMatchObject({ port: 5432, dbname: 'postgres', tls: 'prefer' });
    expect(secret.masterarn).toBeUndefined();
    expect(secret.scope).toBeUndefined();
    expect('scope' in secret).toBe(false);
    expect(
      JSON.parse(serializeDatabaseSecret(withCredentials(secret, 'app_clone', 'pw-2'))),
    ).toEqual({
      ...base,
      username: 'app_clone',
      password: 'pw-2',
      note: 'kept',
    });
  });

  it.each([
    [5433, 5433],
    ['5433', 5433],
    [' 5433 ', 5433],
    [1, 1],
    [65535, 65535],
    [null, 5432],
    ['', 5432],
  ])('reads port %j as %d', (port, expected) => {
    expect(parse({ port }).port).toBe(expected);
  });

  it.each([0, 65536, -1, 5432.5, '54x', 'abc', true, [5432], '1e3'])(
    'refuses port %j, naming "port"',
    (port) => {
      expect(refusal({ port }).field).toBe('port');
    },
  );

  it.each([
    [true, 'verify'],
    ['TRUE', 'verify'],
    [' true ', 'verify'],
    [false, 'disable'],
    ['False', 'disable'],
    [null, 'prefer'],
  ])('reads ssl %j as %s', (ssl, tls) => {
    expect(parse({ ssl }).tls).toBe(tls);
  });

  it.each(['yes', 1, 0, {}])('refuses ssl %j, naming "ssl"', (ssl) => {
    expect(refusal({ ssl }).field).toBe('ssl');
  });

  it.each([
    ['engine', { engine: 'mysql' }],
    ['engine', { engine: 'postgres\u0000' }],
    ['host', { host: 'db.example.com\n' }],
    ['host', { host: 'db example.com' }],
    ['host', { host: `db.example.com\u202e` }],
    ['username', { username: 'app\u0007' }],
    ['username', { username: 'é'.repeat(32) }],
    ['dbname', { dbname: 'orders\u001f' }],
    ['password', { password: 7 }],
    ['masterarn', { masterarn: 12 }],
  ])('refuses a bad %s', (field, fields) => {
    expect(refusal(fields).field).toBe(field);
  });

  it("counts a user name's limit in the server's unit: PostgreSQL bytes, MySQL characters", () => {
    expect(parse({ username: 'é'.repeat(31) }).username).toHaveLength(31);
    expect(refusal({ username: 'é'.repeat(32) }).message).toMatch(/63 bytes/);
    expect(parse({ username: 'u'.repeat(63) }).username).toHaveLength(63);
    expect(refusal({ username: 'u'.repeat(64) }).field).toBe('username');
    const mysql = { engine: 'mysql' };
    expect(parse({ ...mysql, username: 'é'.repeat(32) }, mysqlLike).username).toHaveLength(32);
    expect(refusal({ ...mysql, username: 'é'.repeat(33) }, mysqlLike).message).toMatch(
      /32 characters/,
    );
    expect(parse({ engine: 'mariadb', username: 'u'.repeat(80) }, mysqlLike).username).toHaveLength(
      80,
    );
  });

  it('reads the account scope only where the server has one, and refuses control characters in it', () => {
    expect(parse({ accounthost: '10.0.0.%' }).scope).toBeUndefined();
    const mysql = parse({ engine: 'mysql', accounthost: '10.0.0.%' }, mysqlLike);
    expect(mysql.scope).toBe('10.0.0.%');
    expect(mysql.dbname).toBe('');
    expect(mysql.port).toBe(3306);
    expect(refusal({ engine: 'mysql', accounthost: '10.0.0.%\n' }, mysqlLike).field).toBe(
      'accounthost',
    );
    expect(refusal({ engine: 'mysql', accounthost: 'h'.repeat(256) }, mysqlLike).field).toBe(
      'accounthost',
    );
  });

  it('accepts a password of 4096 characters and a host of 255, refuses longer ones', () => {
    expect(parse({ password: 'p'.repeat(4096) }).password).toHaveLength(4096);
    expect(refusal({ password: 'p'.repeat(4097) }).field).toBe('password');
    expect(parse({ host: 'h'.repeat(255) }).host).toHaveLength(255);
    expect(refusal({ host: 'h'.repeat(256) }).field).toBe('host');
    expect(refusal({ engine: 'e'.repeat(65) }).field).toBe('engine');
    expect(refusal({ dbname: 'd'.repeat(256) }).field).toBe('dbname');
  });

  it('keeps masterarn when given', () => {
    expect(parse({ masterarn: 'arn:master' }).masterarn).toBe('arn:master');
  });

  it('signs in where the secret points, and describes the account without its password', () => {
    const secret = parse({ port: 6432, dbname: 'orders', ssl: true });
    expect(loginOf(secret)).toEqual({
      host: 'db.example.com',
      port: 6432,
      user: 'app',
      password: 'pw-1',
      database: 'orders',
      tls: 'verify',
    });
    expect(accountOf(secret)).toBe('user "app" at db.example.com:6432 (database "orders")');
    expect(accountOf(parse({ engine: 'mysql' }, mysqlLike))).toBe(
      'user "app" at db.example.com:3306',
    );
  });
});
