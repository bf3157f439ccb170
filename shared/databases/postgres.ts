import type { Client, ClientConfig } from 'pg';
import {
  AuthenticationError,
  ConnectionError,
  ConnectTimeoutError,
  DatabaseError,
  HostUnreachableError,
  InvalidSecretError,
  type RotationError,
  TlsError,
  TooManyConnectionsError,
  UserExistsError,
} from '../common/errors.js';
import { scramSha256Verifier } from './scram.js';
import { CERTIFICATE_CODES, UNREACHABLE_CODES } from './socket-errors.js';
import type { ConnectOptions, Database, Login } from './types.js';

/** Options of {@link createPostgres}. */
export interface PostgresOptions {
  /** Connect timeout in ms when the caller gives none (default 10000). */
  connectTimeoutMs?: number;
  /** statement_timeout of every session, in ms (default 30000). */
  statementTimeoutMs?: number;
  /**
   * Send a SCRAM-SHA-256 verifier instead of the password when the server stores SCRAM
   * (default true), so the plaintext never reaches the server's logs.
   */
  sendVerifier?: boolean;
}

const UNREACHABLE = new Set(UNREACHABLE_CODES);
const TLS_CODES = new Set([...CERTIFICATE_CODES, 'EPROTO']);
const NO_TLS_ON_SERVER = 'The server does not support SSL connections';

const errorCode = (error: unknown): string | undefined => {
  if (error instanceof AggregateError) return errorCode(error.errors[0]);
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
};

const errorMessage = (error: unknown, login: Login): string => {
  const message = error instanceof Error ? error.message : String(error);
  // Drivers do not quote passwords, but a message is cheap to scrub.
  return login.password.length > 0 ? message.split(login.password).join('***') : message;
};

const where = (login: Login): string =>
  `PostgreSQL at ${login.host}:${login.port} (database "${login.database}") as user "${login.user}"`;

/** Turns a driver failure while connecting into the error family strategies act on. */
export function classifyPostgresError(error: unknown, login: Login): RotationError {
  const code = errorCode(error);
  const message = errorMessage(error, login);
  const at = where(login);
  if (code === '28P01' || code === '28000') {
    return new AuthenticationError(`${at} refused the credentials: ${message}`, { cause: error });
  }
  if (code === '53300') {
    return new TooManyConnectionsError(
      `${at}: the server has no free connection slot: ${message}`,
      {
        cause: error,
      },
    );
  }
  if (code === '3D000') {
    return new DatabaseError(`${at}: ${message}`, { cause: error });
  }
  if (code === '57P03' || code === '57P01') {
    return new ConnectionError(
      `${at}: the server is not accepting connections now: ${message}`,
      'unavailable',
      {
        cause: error,
      },
    );
  }
  if (code !== undefined && UNREACHABLE.has(code)) {
    return new HostUnreachableError(`cannot reach ${at}: ${code}`, { cause: error });
  }
  if (code === 'ETIMEDOUT' || /timeout|timed out/i.test(message)) {
    return new ConnectTimeoutError(`${at} did not answer in time: ${message}`, { cause: error });
  }
  if (
    (code !== undefined &&
      (TLS_CODES.has(code) || code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL'))) ||
    message.includes(NO_TLS_ON_SERVER)
  ) {
    return new TlsError(`TLS with ${at} failed: ${code ?? message}`, { cause: error });
  }
  return new ConnectionError(`${at}: ${message}`, 'unavailable', { cause: error });
}

/**
 * PostgreSQL and Aurora PostgreSQL through `pg` (pure JavaScript). The driver is imported on
 * first connect, so createSecret and finishSecret never load it.
 *
 * @example
 * export const handler = createRotationHandler({ strategy: singleUser(createPostgres()), logger });
 */
export function createPostgres(options: PostgresOptions = {}): Database<Client> {
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const statementTimeoutMs = options.statementTimeoutMs ?? 30_000;
  const sendVerifier = options.sendVerifier ?? true;

  async function open(login: Login, ssl: ClientConfig['ssl'], timeoutMs: number): Promise<Client> {
    const { default: pg } = await import('pg');
    const client = new pg.Client({
      host: login.host,
      port: login.port,
      user: login.user,
      password: login.password,
      database: login.database,
      ssl,
      connectionTimeoutMillis: Math.max(1, Math.floor(timeoutMs)),
      statement_timeout: statementTimeoutMs,
      application_name: 'secrets-rotation',
    });
    // A server-side disconnect after connect emits 'error'; without a listener it would crash the process.
    client.on('error', () => {});
    try {
      await client.connect();
      return client;
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
  }

  async function run(client: Client, what: string, user: string, sql: string, values?: unknown[]) {
    try {
      return await client.query(sql, values);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new DatabaseError(`PostgreSQL: ${what} for user "${user}" failed: ${message}`, {
        cause: error,
      });
    }
  }

  /**
   * Runs `body` in a transaction holding an advisory lock named after the user, so that two
   * overlapping invocations change one role one after the other ("tuple concurrently updated"
   * otherwise) and a crash leaves all of `body` or none of it.
   */
  async function inLockedTransaction(
    client: Client,
    user: string,
    what: string,
    body: () => Promise<unknown>,
  ): Promise<void> {
    await run(client, what, user, 'BEGIN');
    try {
      await run(client, what, user, 'SELECT pg_advisory_xact_lock(hashtext($1))', [
        `secrets-rotation:${user}`,
      ]);
      await body();
      await run(client, what, user, 'COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    }
  }

  /** The literal to put after PASSWORD: a SCRAM verifier where the server stores SCRAM. */
  async function passwordLiteral(client: Client, user: string, password: string): Promise<string> {
    if (sendVerifier) {
      const result = await run(
        client,
        'reading password_encryption',
        user,
        'SHOW password_encryption',
      );
      if (result.rows[0]?.password_encryption === 'scram-sha-256') {
        const verifier = scramSha256Verifier(password);
        if (verifier !== undefined) return client.escapeLiteral(verifier);
      }
    }
    return client.escapeLiteral(password);
  }

  return {
    name: 'PostgreSQL',
    engines: ['postgres', 'aurora-postgresql'],
    defaultPort: 5432,
    defaultDatabase: 'postgres',
    masterDatabase: 'postgres',
    maxUsernameLength: 63,

    async connect(login: Login, connectOptions: ConnectOptions = {}): Promise<Client> {
      const timeoutMs = connectOptions.timeoutMs ?? connectTimeoutMs;
      try {
        if (login.tls === 'disable') return await open(login, false, timeoutMs);
        if (login.tls === 'verify')
          return await open(login, { rejectUnauthorized: true }, timeoutMs);
        try {
          // "TLS preferred", as libpq's sslmode=prefer: encrypt, without verification.
          return await open(login, { rejectUnauthorized: false }, timeoutMs);
        } catch (error) {
          if (!errorMessage(error, login).includes(NO_TLS_ON_SERVER)) throw error;
          connectOptions.logger?.warn(
            'server offers no TLS; connecting in plaintext (set "ssl": true to forbid this)',
            {
              host: login.host,
              port: login.port,
              user: login.user,
            },
          );
          return await open(login, false, timeoutMs);
        }
      } catch (error) {
        throw classifyPostgresError(error, login);
      }
    },

    async setPassword(client, user, password) {
      const literal = await passwordLiteral(client, user, password);
      await inLockedTransaction(client, user, 'changing the password', () =>
        run(
          client,
          'changing the password',
          user,
          `ALTER ROLE ${client.escapeIdentifier(user)} WITH PASSWORD ${literal}`,
        ),
      );
    },

    async userExists(client, user) {
      const result = await run(
        client,
        'looking up',
        user,
        'SELECT 1 FROM pg_roles WHERE rolname = $1',
        [user],
      );
      return result.rowCount !== null && result.rowCount > 0;
    },

    async createUserLike(client, user, password, like) {
      const literal = await passwordLiteral(client, user, password);
      // One transaction: a crash leaves either no clone or a complete one.
      try {
        await inLockedTransaction(client, user, 'creating', async () => {
          await run(
            client,
            'creating',
            user,
            `CREATE ROLE ${client.escapeIdentifier(user)} WITH LOGIN INHERIT PASSWORD ${literal}`,
          );
          // Membership in the original gives the clone its privileges and, through it, its
          // roles, and keeps them in step when the original's grants change later.
          await run(
            client,
            `granting role "${like}"`,
            user,
            `GRANT ${client.escapeIdentifier(like)} TO ${client.escapeIdentifier(user)}`,
          );
        });
      } catch (error) {
        // 42710: an overlapping invocation created it while we waited for the lock.
        if ((error as { cause?: { code?: string } }).cause?.code === '42710') {
          throw new UserExistsError(`PostgreSQL user "${user}" exists already`, { cause: error });
        }
        throw error;
      }
    },

    async verifyClone(client, clone, original) {
      const result = await run(
        client,
        'checking the clone',
        clone,
        `SELECT r.rolname, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls,
                pg_has_role(r.rolname, $2, 'MEMBER') AS member_of_original
           FROM pg_roles r WHERE r.rolname = ANY($1)`,
        [[clone, original], original],
      );
      const cloneRow = result.rows.find((row) => row.rolname === clone);
      const originalRow = result.rows.find((row) => row.rolname === original);
      if (!cloneRow || !originalRow) return;
      if (!cloneRow.member_of_original) {
        throw new InvalidSecretError(
          `PostgreSQL user "${clone}" exists but is not a member of "${original}": not a clone made by this function; refusing to take it over`,
          'username',
        );
      }
      const extra = [
        'rolsuper',
        'rolcreaterole',
        'rolcreatedb',
        'rolreplication',
        'rolbypassrls',
      ].filter((attribute) => cloneRow[attribute] && !originalRow[attribute]);
      if (extra.length > 0) {
        throw new InvalidSecretError(
          `PostgreSQL user "${clone}" has ${extra.map((a) => a.slice(3).toUpperCase()).join(', ')}, which "${original}" lacks; refusing to hand out its password`,
          'username',
        );
      }
    },

    async ping(client) {
      await run(client, 'running a test query', client.user ?? '', 'SELECT 1');
    },

    async close(client) {
      await client.end().catch(() => {});
    },
  };
}
