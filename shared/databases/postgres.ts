import type { Client, ClientConfig, QueryConfig } from 'pg';
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
import { md5Verifier, scramSha256Verifier } from './scram.js';
import { CERTIFICATE_CODES, UNREACHABLE_CODES } from './socket-errors.js';
import type { ConnectOptions, Database, Login } from './types.js';

/** Options of {@link createPostgres}. */
export interface PostgresOptions {
  /** Connect timeout in ms when the caller gives none (default 10000). */
  connectTimeoutMs?: number;
  /** statement_timeout of every session, in ms (default 30000; never past the deadline). */
  statementTimeoutMs?: number;
  /**
   * idle_in_transaction_session_timeout of every session, in ms (default 10000): the server
   * ends a session whose client went silent mid-transaction, releasing its advisory lock for
   * the service's retry. Our transactions have no pause but network round trips.
   */
  idleInTransactionTimeoutMs?: number;
}

/** PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes (not characters). */
const MAX_NAME_BYTES = 63;
/** How long close() waits for the server to acknowledge Terminate before dropping the socket. */
const CLOSE_WAIT_MS = 1_000;

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
  const idleInTransactionTimeoutMs = options.idleInTransactionTimeoutMs ?? 10_000;
  /** Epoch ms by which each session must be done (ConnectOptions.deadline). */
  const deadlines = new WeakMap<Client, number>();

  async function open(
    login: Login,
    ssl: ClientConfig['ssl'],
    timeoutMs: number,
    deadline: number | undefined,
  ): Promise<Client> {
    const { default: pg } = await import('pg');
    const left = deadline === undefined ? Number.POSITIVE_INFINITY : deadline - Date.now();
    const statementMs = Math.max(1, Math.floor(Math.min(statementTimeoutMs, left)));
    const client = new pg.Client({
      host: login.host,
      port: login.port,
      user: login.user,
      password: login.password,
      database: login.database,
      ssl,
      connectionTimeoutMillis: Math.max(1, Math.floor(Math.min(timeoutMs, left))),
      application_name: 'secrets-rotation',
    });
    // A server-side disconnect after connect emits 'error'; without a listener it would crash the process.
    client.on('error', () => {});
    if (deadline !== undefined) deadlines.set(client, deadline);
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
    // Pinned before any statement of ours runs, in one round trip. A SET issued in the session
    // overrides every default the application user may have planted (ALTER ROLE / ALTER DATABASE
    // … SET search_path, or SET role, which would run the master's session as the owner), and
    // SET looks up no function or operator. Not startup options: RDS Proxy and PgBouncer accept
    // only a few startup parameters and refuse the connection for any other.
    // SET ROLE NONE, not RESET ROLE: RESET returns to the connection-time role, a planted default.
    // pg_temp is listed last on purpose: unlisted, it would be searched first for tables and types.
    const idleMs = Math.max(1, Math.floor(Math.min(idleInTransactionTimeoutMs, left)));
    try {
      await run(
        client,
        'pinning the session settings',
        login.user,
        [
          'SET search_path = pg_catalog, pg_temp',
          'SET ROLE NONE',
          `SET statement_timeout = ${statementMs}`,
          `SET lock_timeout = ${statementMs}`,
          `SET idle_in_transaction_session_timeout = ${idleMs}`,
        ].join('; '),
      );
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
    return client;
  }

  /**
   * Runs one statement, bounded on the client side by the session's deadline: a silent network
   * stall fails the statement in time (and drops the connection, whose state is then unknown)
   * instead of outliving the invocation.
   */
  async function run(client: Client, what: string, user: string, sql: string, values?: unknown[]) {
    const deadline = deadlines.get(client);
    const timeoutMs = Math.ceil(
      deadline === undefined ? statementTimeoutMs + 5_000 : deadline - Date.now(),
    );
    if (timeoutMs <= 0) {
      throw new ConnectTimeoutError(
        `PostgreSQL: ${what} for user "${user}": the invocation's deadline has passed`,
      );
    }
    try {
      return await client.query({ text: sql, values, query_timeout: timeoutMs } as QueryConfig);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (message === 'Query read timeout') {
        drop(client);
        throw new ConnectTimeoutError(
          `PostgreSQL: ${what} for user "${user}": no answer in ${timeoutMs} ms (the invocation's deadline); connection dropped`,
          { cause: error },
        );
      }
      throw new DatabaseError(`PostgreSQL: ${what} for user "${user}" failed: ${message}`, {
        cause: error,
      });
    }
  }

  /**
   * Runs `body` in a transaction holding an advisory lock named after the user, so that two
   * overlapping invocations change one role one after the other ("tuple concurrently updated"
   * otherwise) and a crash leaves all of `body` or none of it. The lock's key keeps the value
   * earlier versions used (the int4 hash widened to int8), so old and new functions exclude
   * each other during a deployment.
   */
  async function inLockedTransaction(
    client: Client,
    user: string,
    what: string,
    body: () => Promise<unknown>,
  ): Promise<void> {
    await run(client, what, user, 'BEGIN');
    try {
      // $1 holds a user name from the secret (its writer: PutSecretValue), as a parameter.
      await run(
        client,
        what,
        user,
        'SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext($1::pg_catalog.text)::pg_catalog.int8)',
        [`secrets-rotation:${user}`],
      );
      await body();
      await run(client, what, user, 'COMMIT');
    } catch (error) {
      await run(client, what, user, 'ROLLBACK').catch(() => {});
      throw error;
    }
  }

  /**
   * The literal to put after PASSWORD: always a verifier in the format the server stores, never
   * the password, so that no statement log (log_statement, log_min_error_statement),
   * pg_stat_statements or audit trail ever holds it. password_encryption may have been set by
   * the database's owner (ALTER DATABASE ... SET); at worst it chooses md5 over SCRAM.
   */
  async function passwordLiteral(client: Client, user: string, password: string): Promise<string> {
    const result = await run(
      client,
      'reading password_encryption',
      user,
      `SELECT pg_catalog.current_setting('password_encryption') AS method,
              pg_catalog.current_setting('server_encoding') AS encoding`,
    );
    const method = String(result.rows[0]?.method ?? '');
    const encoding = String(result.rows[0]?.encoding ?? '');
    let verifier: string | undefined;
    let why = `the server's password_encryption is "${method}", a format this function cannot compute`;
    if (method === 'scram-sha-256') {
      verifier = scramSha256Verifier(password);
      why =
        'the password is not printable ASCII: its SCRAM verifier needs SASLprep, which this function does not reproduce';
    } else if (MD5_SETTINGS.has(method)) {
      // The server hashes the bytes it stores; UTF-8 (or SQL_ASCII, bytes as sent) match ours.
      if (isAscii(password + user) || encoding === 'UTF8' || encoding === 'SQL_ASCII') {
        verifier = md5Verifier(password, user);
      }
      why = `the password or user name is not ASCII and the server encoding is ${encoding}`;
    }
    if (verifier === undefined) {
      throw new InvalidSecretError(
        `PostgreSQL: refusing to set the password of user "${user}": ${why}, and sent as plaintext it would reach the server's logs`,
        'password',
      );
    }
    return client.escapeLiteral(verifier);
  }

  return {
    name: 'PostgreSQL',
    engines: ['postgres', 'aurora-postgresql'],
    defaultPort: 5432,
    defaultDatabase: 'postgres',
    masterDatabase: 'postgres',
    maxUsernameLength: MAX_NAME_BYTES,
    usernameLimitUnit: 'bytes',

    async connect(login: Login, connectOptions: ConnectOptions = {}): Promise<Client> {
      const timeoutMs = connectOptions.timeoutMs ?? connectTimeoutMs;
      const { deadline } = connectOptions;
      try {
        if (login.tls === 'disable') return await open(login, false, timeoutMs, deadline);
        if (login.tls === 'verify')
          return await open(login, { rejectUnauthorized: true }, timeoutMs, deadline);
        try {
          // "TLS preferred", as libpq's sslmode=prefer: encrypt, without verification.
          return await open(login, { rejectUnauthorized: false }, timeoutMs, deadline);
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
          return await open(login, false, timeoutMs, deadline);
        }
      } catch (error) {
        throw classifyPostgresError(error, login);
      }
    },

    async setPassword(client, user, password) {
      requireName(user);
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
      requireName(user);
      const result = await run(
        client,
        'looking up',
        user,
        'SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $1',
        [user],
      );
      return result.rowCount !== null && result.rowCount > 0;
    },

    async createUserLike(client, user, password, like) {
      requireName(user);
      requireName(like);
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
      requireName(clone);
      requireName(original);
      // Both names come from the secret (its writer: PutSecretValue); the roles' attributes and
      // memberships from whoever could create or grant roles (CREATEROLE, ADMIN OPTION).
      const roles = await run(
        client,
        'checking the clone',
        clone,
        `SELECT r.rolname, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls
           FROM pg_catalog.pg_roles r
          WHERE r.rolname OPERATOR(pg_catalog.=) $1 OR r.rolname OPERATOR(pg_catalog.=) $2`,
        [clone, original],
      );
      const cloneRow = roles.rows.find((row) => row.rolname === clone);
      const originalRow = roles.rows.find((row) => row.rolname === original);
      if (!cloneRow || !originalRow) {
        // userExists found one of them a moment ago: never "check nothing".
        throw new InvalidSecretError(
          `PostgreSQL users "${clone}" and "${original}" cannot both be read from pg_roles under exactly these names; refusing to take over "${clone}"`,
          'username',
        );
      }
      const extra = CLONE_ATTRIBUTES.filter(
        (attribute) => cloneRow[attribute] && !originalRow[attribute],
      );
      if (extra.length > 0) {
        throw new InvalidSecretError(
          `PostgreSQL user "${clone}" has ${extra.map((a) => a.slice(3).toUpperCase()).join(', ')}, which "${original}" lacks; refusing to hand out its password`,
          'username',
        );
      }
      // Every role the clone reaches, directly or through others, and how: it must reach each
      // one at most as the original does (the original itself included: a member, never with
      // ADMIN OPTION). pg_has_role follows chains of memberships with their options; SET is a
      // separate option from PostgreSQL 16 on.
      const reached = await run(
        client,
        'checking the roles of the clone',
        clone,
        `SELECT r.rolname,
                r.oid OPERATOR(pg_catalog.=) o.oid AS is_original,
                pg_catalog.pg_has_role(o.oid, r.oid, 'MEMBER') AS original_member,
                pg_catalog.pg_has_role(c.oid, r.oid, 'USAGE') AS clone_usage,
                pg_catalog.pg_has_role(o.oid, r.oid, 'USAGE') AS original_usage,
                pg_catalog.pg_has_role(c.oid, r.oid, 'MEMBER WITH ADMIN OPTION') AS clone_admin,
                pg_catalog.pg_has_role(o.oid, r.oid, 'MEMBER WITH ADMIN OPTION') AS original_admin,
                CASE WHEN v.sixteen THEN pg_catalog.pg_has_role(c.oid, r.oid, 'SET') ELSE false END AS clone_set,
                CASE WHEN v.sixteen THEN pg_catalog.pg_has_role(o.oid, r.oid, 'SET') ELSE false END AS original_set
           FROM pg_catalog.pg_roles r, pg_catalog.pg_roles c, pg_catalog.pg_roles o,
                (SELECT pg_catalog.current_setting('server_version_num')::pg_catalog.int4
                          OPERATOR(pg_catalog.>=) 160000 AS sixteen) v
          WHERE c.rolname OPERATOR(pg_catalog.=) $1 AND o.rolname OPERATOR(pg_catalog.=) $2
            AND r.oid OPERATOR(pg_catalog.<>) c.oid
            AND pg_catalog.pg_has_role(c.oid, r.oid, 'MEMBER')`,
        [clone, original],
      );
      if (!reached.rows.some((row) => row.is_original)) {
        throw new InvalidSecretError(
          `PostgreSQL user "${clone}" exists but is not a member of "${original}": not a clone made by this function; refusing to take it over`,
          'username',
        );
      }
      const beyond = reached.rows.flatMap((row) => {
        const how = [
          row.original_member ? undefined : 'member',
          row.clone_usage && !row.original_usage ? 'inherits' : undefined,
          row.clone_admin && !row.original_admin ? 'ADMIN OPTION' : undefined,
          row.clone_set && !row.original_set ? 'SET' : undefined,
        ].filter((word) => word !== undefined);
        return how.length > 0 ? [`"${row.rolname}" (${how.join(', ')})`] : [];
      });
      if (beyond.length > 0) {
        throw new InvalidSecretError(
          `PostgreSQL user "${clone}" holds roles beyond "${original}"'s: ${beyond.join('; ')}; refusing to hand out its password`,
          'username',
        );
      }
    },

    async ping(client) {
      await run(client, 'running a test query', client.user ?? '', 'SELECT 1');
    },

    async close(client) {
      // On a silent network the server's goodbye never comes: wait briefly, then drop the socket.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        client.end().catch(() => {}),
        new Promise((resolve) => {
          timer = setTimeout(resolve, CLOSE_WAIT_MS);
        }),
      ]);
      clearTimeout(timer);
      drop(client);
    },
  };
}

/** The attributes a clone must not hold unless its original does. */
const CLONE_ATTRIBUTES = [
  'rolsuper',
  'rolcreaterole',
  'rolcreatedb',
  'rolreplication',
  'rolbypassrls',
] as const;

/** Values of password_encryption that mean md5 (PostgreSQL 10 to 13 also took booleans). */
const MD5_SETTINGS = new Set(['md5', 'on', 'true', 'yes', '1']);

const isAscii = (text: string): boolean => /^[\x20-\x7e]*$/.test(text);

/**
 * Names longer than NAMEDATALEN - 1 bytes are truncated by the server and would alias another
 * role (`<long name>_clone` cut back to an existing role's name).
 */
function requireName(user: string): void {
  const bytes = Buffer.byteLength(user, 'utf8');
  if (bytes > MAX_NAME_BYTES) {
    throw new InvalidSecretError(
      `PostgreSQL user name "${user}" is ${bytes} bytes long; the server keeps ${MAX_NAME_BYTES} and would act on another role`,
      'username',
    );
  }
}

/** Drops the socket at once: for a connection whose state is unknown after a timeout. */
function drop(client: Client): void {
  (client as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}
