import pg from 'pg';
import { describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  ConnectionError,
  ConnectTimeoutError,
  DatabaseError,
  HostUnreachableError,
  InvalidSecretError,
  TlsError,
  TooManyConnectionsError,
} from '../../shared/common/errors.js';
import { classifyPostgresError, createPostgres } from '../../shared/databases/postgres.js';
import { parseDatabaseSecret, parseTls } from '../../shared/strategies/database-secret.js';

const login = {
  host: 'db.internal',
  port: 5432,
  user: 'app',
  password: 's3cret-Pa55',
  database: 'postgres',
  tls: 'prefer' as const,
};

/** A server error as pg builds it from the wire (ErrorResponse with a SQLSTATE). */
const serverError = (code: string, message: string) =>
  Object.assign(new pg.DatabaseError(message, 0, 'error'), { code });
/** A socket error as Node reports it. */
const socketError = (code: string, message = code) => Object.assign(new Error(message), { code });

describe('postgres failure classification', () => {
  it.each([
    [
      'wrong password (28P01)',
      serverError('28P01', 'password authentication failed for user "app"'),
      AuthenticationError,
    ],
    [
      'no pg_hba entry (28000)',
      serverError('28000', 'no pg_hba.conf entry for host "10.0.0.1"'),
      AuthenticationError,
    ],
    [
      'too many clients (53300)',
      serverError('53300', 'sorry, too many clients already'),
      TooManyConnectionsError,
    ],
    [
      'a missing database (3D000)',
      serverError('3D000', 'database "nope" does not exist'),
      DatabaseError,
    ],
    [
      'a server starting up (57P03)',
      serverError('57P03', 'the database system is starting up'),
      ConnectionError,
    ],
    [
      'connection refused',
      socketError('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.1:5432'),
      HostUnreachableError,
    ],
    [
      'an unknown host',
      socketError('ENOTFOUND', 'getaddrinfo ENOTFOUND db.internal'),
      HostUnreachableError,
    ],
    ['a reset connection', socketError('ECONNRESET', 'read ECONNRESET'), HostUnreachableError],
    [
      'both address families refused',
      Object.assign(new AggregateError([socketError('ECONNREFUSED')]), {}),
      HostUnreachableError,
    ],
    [
      'a connect timeout',
      new Error('Connection terminated due to connection timeout'),
      ConnectTimeoutError,
    ],
    ['a socket timeout', socketError('ETIMEDOUT', 'connect ETIMEDOUT'), ConnectTimeoutError],
    [
      'an untrusted certificate',
      socketError('SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain'),
      TlsError,
    ],
    [
      'a host name mismatch',
      socketError(
        'ERR_TLS_CERT_ALTNAME_INVALID',
        "Hostname/IP does not match certificate's altnames",
      ),
      TlsError,
    ],
    ['a server without TLS', new Error('The server does not support SSL connections'), TlsError],
    ['an unknown server error', serverError('XX000', 'internal error'), ConnectionError],
    ['a failure without a code', new Error('Connection terminated unexpectedly'), ConnectionError],
    [
      'a numeric code (not a SQLSTATE)',
      Object.assign(new Error('odd'), { code: 28 }),
      ConnectionError,
    ],
  ])('classifies %s', (_, error, type) => {
    const classified = classifyPostgresError(error, login);
    expect(classified).toBeInstanceOf(type);
    // Exactly that class: a subclass (TLS, timeout, unreachable) is handled differently.
    expect(classified.constructor).toBe(type);
    expect(classified.cause).toBe(error);
    expect(classified.message).toContain('as user "app"');
    expect(classified.message).toContain('db.internal:5432');
  });

  it('only wrong credentials are authentication errors', () => {
    const others = [
      socketError('ECONNREFUSED'),
      serverError('53300', 'too many'),
      new Error('timeout expired'),
    ];
    for (const error of others)
      expect(classifyPostgresError(error, login)).not.toBeInstanceOf(AuthenticationError);
  });

  it.each([
    ['ERR_TLS_INVALID_PROTOCOL_VERSION', 'TLSv1 is not a supported protocol'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'wrong version number'],
  ])('classifies any Node TLS error code (%s) as a TLS failure', (code, message) => {
    expect(classifyPostgresError(socketError(code, message), login)).toBeInstanceOf(TlsError);
  });

  it.each([
    ['a server starting up', serverError('57P03', 'the database system is starting up')],
    [
      'a terminated session',
      serverError('57P01', 'terminating connection due to administrator command'),
    ],
    ['an unknown failure', serverError('XX000', 'internal error')],
  ])('logs %s as the failure kind "unavailable"', (_, error) => {
    const classified = classifyPostgresError(error, login) as ConnectionError;
    expect(classified.failure).toBe('unavailable');
  });

  it('classifies a thrown value that is not an Error (undefined, null) as a connection failure', () => {
    for (const thrown of [undefined, null]) {
      const classified = classifyPostgresError(thrown, login);
      expect(classified.constructor).toBe(ConnectionError);
      expect(classified.cause).toBe(thrown);
    }
  });

  it('keeps the driver message whole when the password is empty (nothing to scrub)', () => {
    const classified = classifyPostgresError(new Error('odd failure'), { ...login, password: '' });
    expect(classified.message).toContain('odd failure');
    expect(classified.message).not.toContain('***');
  });

  it('scrubs the password should a driver message ever quote it', () => {
    const classified = classifyPostgresError(
      new Error(`odd failure near "${login.password}"`),
      login,
    );
    expect(classified.message).not.toContain(login.password);
    expect(classified.message).toContain('***');
  });
});

describe('ssl field', () => {
  it.each([
    [undefined, 'prefer'],
    [true, 'verify'],
    ['TRUE', 'verify'],
    [' true ', 'verify'],
    [false, 'disable'],
    ['False', 'disable'],
  ])('reads %o as TLS mode %s', (ssl, mode) => {
    expect(parseTls(ssl === undefined ? {} : { ssl }, 'AWSCURRENT')).toBe(mode);
  });
});

describe('postgres secret values', () => {
  const parse = (fields: Record<string, unknown>) =>
    parseDatabaseSecret(
      JSON.stringify({ engine: 'postgres', host: 'h', username: 'app', password: 'p', ...fields }),
      'AWSCURRENT',
      createPostgres(),
    );

  it('takes both engines, port 5432 and database "postgres" by default', () => {
    expect(parse({})).toMatchObject({ port: 5432, dbname: 'postgres' });
    expect(parse({ engine: 'aurora-postgresql' }).engine).toBe('aurora-postgresql');
    expect(() => parse({ engine: 'mysql' })).toThrow(/field "engine"/);
  });

  it('counts the user name in bytes, as the server does: 32 two-byte characters are too many', () => {
    expect(() => parse({ username: 'é'.repeat(32) })).toThrow(InvalidSecretError);
    expect(parse({ username: 'é'.repeat(31) }).username).toBe('é'.repeat(31));
  });
});
