import { randomBytes } from 'node:crypto';
import {
  AuthenticationError,
  ConfigurationError,
  ConnectionError,
  ConnectTimeoutError,
  DatabaseError,
  HostUnreachableError,
  InvalidSecretError,
  RotationError,
  TlsError,
  TooManyConnectionsError,
  UserExistsError,
} from '../common/errors.js';
import type { RotationLogger } from '../common/logger.js';
import {
  type Account,
  type AccountOptions,
  authenticationPlugins,
  capabilitiesOf,
  extraGlobalPrivileges,
  type MysqlServer,
  nativePasswordHash,
  parseServerVersion,
  parseShowGrants,
  planAccountOptions,
  planGrantChanges,
  type Quoting,
  type Role,
  renderAccount,
  renderCreateUser,
  renderRole,
} from './mysql-grants.js';
import { CERTIFICATE_CODES, UNREACHABLE_CODES } from './socket-errors.js';
import type { ConnectOptions, Database, Login } from './types.js';

/** The part of a mysql2/promise connection the adapter uses. */
export interface MysqlClient {
  query(options: {
    sql: string;
    values?: unknown[];
    timeout?: number;
  }): Promise<[unknown, unknown]>;
  end(): Promise<void>;
  destroy(): void;
  on(event: 'error', listener: (error: unknown) => void): unknown;
}

/** What the adapter needs from mysql2/promise (injected in unit tests). */
export interface MysqlDriver {
  createConnection(config: {
    host: string;
    port: number;
    user: string;
    password: string;
    database?: string;
    ssl?: { rejectUnauthorized: boolean; verifyIdentity?: boolean };
    connectTimeout: number;
    charset: string;
    multipleStatements: false;
    connectAttributes?: Record<string, string>;
  }): Promise<MysqlClient>;
  escape(value: unknown): string;
  escapeId(value: string, forbidQualified?: boolean): string;
}

/** A signed-in session, with what the server said about itself. */
export interface MysqlSession {
  client: MysqlClient;
  driver: MysqlDriver;
  server: MysqlServer;
  /** CURRENT_USER(): the account the session signed in as. */
  account: Account;
  logger?: RotationLogger;
  /** Told when a feature falls back (ConnectOptions.degraded). */
  degraded?: (feature: string) => void;
  /** Epoch ms by which every statement must be answered (ConnectOptions.deadline). */
  deadline?: number;
  /** Set once the client was destroyed (a statement timed out): nothing more is sent. */
  destroyed?: boolean;
}

/** The feature named by the Degraded metric when RETAIN CURRENT PASSWORD falls back. */
export const GRACE_PERIOD_FEATURE = 'MysqlRetainCurrentPassword';

/** Options of {@link createMysql}; unset ones come from `env`. */
export interface MysqlOptions {
  /** Connect timeout in ms when the caller gives none (default 10000). */
  connectTimeoutMs?: number;
  /** Client-side timeout of every statement, in ms (default 30000). */
  statementTimeoutMs?: number;
  /**
   * Single user on MySQL 8.0.14+: change the password with RETAIN CURRENT PASSWORD, so the old
   * one keeps working until the next rotation discards it. Default: MYSQL_RETAIN_CURRENT_PASSWORD,
   * else true.
   */
  retainCurrentPassword?: boolean;
  /** Lowers the user name limit (MySQL 32, MariaDB 80). Default: MYSQL_MAX_USERNAME_LENGTH. */
  maxUsernameLength?: number;
  /** Where the settings above are read from (default `process.env`). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Loads the driver; by default mysql2/promise, imported on first connect. */
  driver?: () => Promise<MysqlDriver>;
}

/** The secret field naming the host part of the account, `'user'@'<accounthost>'`. */
export const ACCOUNT_HOST_FIELD = 'accounthost';

const ER = {
  accessDenied: 1045,
  accessDeniedNoPassword: 1698,
  hostNotPrivileged: 1130,
  dbAccessDenied: 1044,
  badDb: 1049,
  conCount: 1040,
  tooManyUserConnections: 1203,
  userLimitReached: 1226,
  specificAccessDenied: 1227,
  serverShutdown: 1053,
  hostIsBlocked: 1129,
  mysqlAccountLocked: 3118,
  mariadbAccountLocked: 4151,
  cannotUser: 1396,
} as const;

const UNREACHABLE = new Set([...UNREACHABLE_CODES, 'PROTOCOL_CONNECTION_LOST']);
const TLS_CODES = new Set([
  ...CERTIFICATE_CODES,
  'HANDSHAKE_SSL_ERROR',
  'HANDSHAKE_NO_SSL_SUPPORT',
  'EPROTO',
]);

const errorCode = (error: unknown): string | undefined => {
  if (error instanceof AggregateError) return errorCode(error.errors[0]);
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
};
const errorNumber = (error: unknown): number | undefined => {
  const errno = (error as { errno?: unknown } | null)?.errno;
  return typeof errno === 'number' && errno > 0 ? errno : undefined;
};
const messageOf = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);

/** sql_mode flags the adapter's sessions drop (see where the session starts). */
const SESSION_MODES_DROPPED = new Set(['NO_BACKSLASH_ESCAPES', 'PAD_CHAR_TO_FULL_LENGTH']);

/** A character outside the BMP: the server's messages (utf8mb3) carry each one as `?`. */
const OUTSIDE_BMP = /[\u{10000}-\u{10FFFF}]/gu;

/**
 * Replaces every value in `secrets` with ***, and the start of one where a syntax error's quote
 * of the statement was cut inside it: the server quotes the statement from the failure on,
 * `near '<text>' at line 1`, cut after 80 characters (MySQL; MariaDB cuts at 77 and adds
 * `...`), and a cut inside a password's literal leaves its start, which no whole-value match
 * finds. Each value is looked for as sent and as the server's messages carry it (characters
 * outside the BMP as `?`). Linear in `text`, which a hostile server may make megabytes long.
 */
function scrub(text: string, secrets: readonly string[]): string {
  const forms = [
    ...new Set(secrets.flatMap((secret) => [secret, secret.replace(OUTSIDE_BMP, '?')])),
  ].filter((form) => form.length > 0);
  let result = text;
  for (const form of forms) result = result.split(form).join('***');
  // The quote ends at the message's last "' at line ": a password may hold that text too.
  const close = result.lastIndexOf("' at line ");
  const open = close < 0 ? -1 : result.lastIndexOf("near '", close);
  // 80 characters, in UTF-16 units up to twice that, and the "...".
  if (open < 0 || close - open > 200) return result;
  const from = open + "near '".length;
  // MySQL's quote ends at the cut; MariaDB's with "...", which a password may also hold.
  const ends =
    result.startsWith('...', close - 3) && close - 3 >= from ? [close, close - 3] : [close];
  let best = { to: close, cut: 0 };
  for (const to of ends) {
    const quoted = result.slice(from, to);
    // Scrubbed already (the driver error's fields are, before its message is quoted again).
    if (quoted.endsWith('***')) return result;
    // The longest start of any form the quote ends with (one form's start may end another's).
    for (const form of forms) {
      for (let length = Math.min(form.length - 1, quoted.length); length > best.cut; length--) {
        if (quoted.endsWith(form.slice(0, length))) best = { to, cut: length };
      }
    }
  }
  return best.cut === 0
    ? result
    : `${result.slice(0, best.to - best.cut)}***${result.slice(best.to)}`;
}

/**
 * Takes secrets out of a driver error in place: mysql2 keeps the whole statement in `sql`, and
 * a syntax error quotes the statement near the failure.
 */
function scrubDriverError(error: unknown, secrets: readonly string[]): void {
  if (typeof error !== 'object' || error === null) return;
  const fields = error as {
    sql?: unknown;
    sqlMessage?: unknown;
    message?: unknown;
    stack?: unknown;
  };
  delete fields.sql;
  for (const key of ['sqlMessage', 'message', 'stack'] as const) {
    if (typeof fields[key] === 'string') fields[key] = scrub(fields[key] as string, secrets);
  }
}

const where = (login: Login): string =>
  `MySQL/MariaDB at ${login.host}:${login.port}${login.database ? ` (database "${login.database}")` : ''} as user "${login.user}"`;

/** Turns a driver failure while connecting into the error family strategies act on. */
export function classifyMysqlError(error: unknown, login: Login): RotationError {
  if (error instanceof RotationError) return error;
  scrubDriverError(error, [login.password]);
  const code = errorCode(error);
  const errno = errorNumber(error);
  const message = scrub(messageOf(error), [login.password]);
  const at = where(login);
  if (
    errno === ER.accessDenied ||
    errno === ER.accessDeniedNoPassword ||
    errno === ER.hostNotPrivileged
  ) {
    return new AuthenticationError(`${at} refused the credentials: ${message}`, { cause: error });
  }
  if (
    errno === ER.conCount ||
    errno === ER.tooManyUserConnections ||
    errno === ER.userLimitReached
  ) {
    return new TooManyConnectionsError(`${at}: no free connection slot: ${message}`, {
      cause: error,
    });
  }
  if (errno === ER.dbAccessDenied || errno === ER.badDb) {
    return new DatabaseError(`${at}: ${message}`, { cause: error });
  }
  if (errno === ER.mysqlAccountLocked || errno === ER.mariadbAccountLocked) {
    return new DatabaseError(`${at}: the account is locked: ${message}`, { cause: error });
  }
  if (errno === ER.serverShutdown || errno === ER.hostIsBlocked) {
    return new ConnectionError(
      `${at}: the server is not accepting connections: ${message}`,
      'unavailable',
      {
        cause: error,
      },
    );
  }
  if (code !== undefined && UNREACHABLE.has(code)) {
    return new HostUnreachableError(`cannot reach ${at}: ${code}`, { cause: error });
  }
  if (
    code === 'ETIMEDOUT' ||
    code === 'PROTOCOL_SEQUENCE_TIMEOUT' ||
    /timeout|timed out/i.test(message)
  ) {
    return new ConnectTimeoutError(`${at} did not answer in time: ${message}`, { cause: error });
  }
  if (
    code !== undefined &&
    (TLS_CODES.has(code) || code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL'))
  ) {
    return new TlsError(`TLS with ${at} failed: ${code}: ${message}`, { cause: error });
  }
  return new ConnectionError(`${at}: ${message}`, 'unavailable', { cause: error });
}

function readBoolean(
  env: Readonly<Record<string, string | undefined>>,
  name: string,
  fallback: boolean,
): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new ConfigurationError(
    `environment variable ${name} must be "true" or "false", got ${JSON.stringify(env[name])}`,
  );
}

function readLimit(
  env: Readonly<Record<string, string | undefined>>,
  name: string,
): number | undefined {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > 80) {
    throw new ConfigurationError(
      `environment variable ${name} must be a whole number from 1 to 80, got ${JSON.stringify(raw)}`,
    );
  }
  return value;
}

const defaultDriver = async (): Promise<MysqlDriver> => {
  // mysql2 is CommonJS: Node's import() gives its exports as named ones and as `default`; a
  // bundle that puts the driver in a chunk of its own gives only `default`.
  const module = await import('mysql2/promise');
  const mysql = module.default ?? module;
  return {
    createConnection: (config) => mysql.createConnection(config) as unknown as Promise<MysqlClient>,
    escape: (value) => mysql.escape(value as Parameters<typeof mysql.escape>[0]),
    escapeId: (value, forbidQualified) => mysql.escapeId(value, forbidQualified),
  };
};

/** Plugins that check a password stored in the account (MySQL). */
const MYSQL_PASSWORD_PLUGINS = new Set([
  'mysql_native_password',
  'caching_sha2_password',
  'sha256_password',
]);

const atLeastMariadb = (session: MysqlSession, major: number, minor: number): boolean =>
  session.server.major > major || (session.server.major === major && session.server.minor >= minor);

const showAccount = (a: Account): string => `'${a.user}'@'${a.host}'`;
const sameAccount = (a: Account, b: Account): boolean =>
  a.user === b.user && a.host.toLowerCase() === b.host.toLowerCase();

/**
 * MySQL 5.7 / 8.x / 9.x, Aurora MySQL and MariaDB 10.x / 11.x through `mysql2` (pure
 * JavaScript), imported on first connect so createSecret and finishSecret never load it. The
 * flavour and version come from the server (`SELECT VERSION()`), not from the secret's engine.
 * Accounts are `'user'@'host'`: the host part is the one the session signed in as, the one the
 * secret names in `accounthost`, or the only one the server has for that name.
 *
 * @example
 * export const handler = createRotationHandler({ strategy: singleUser(createMysql()), logger });
 */
export function createMysql(options: MysqlOptions = {}): Database<MysqlSession> {
  const env = options.env ?? process.env;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const statementTimeoutMs = options.statementTimeoutMs ?? 30_000;
  const retainCurrentPassword =
    options.retainCurrentPassword ?? readBoolean(env, 'MYSQL_RETAIN_CURRENT_PASSWORD', true);
  const usernameLimit = options.maxUsernameLength ?? readLimit(env, 'MYSQL_MAX_USERNAME_LENGTH');
  const loadDriver = options.driver ?? defaultDriver;
  let driverPromise: Promise<MysqlDriver> | undefined;

  const quoting = (session: MysqlSession): Quoting => ({
    id: (name) => session.driver.escapeId(name, true),
    str: (value) => session.driver.escape(value),
  });

  async function run<T = unknown>(
    session: MysqlSession,
    what: string,
    sql: string,
    values: unknown[] = [],
    secrets: readonly string[] = [],
  ): Promise<T> {
    const left =
      session.deadline === undefined ? statementTimeoutMs : session.deadline - Date.now();
    if (left <= 0) {
      throw new DatabaseError(`MySQL/MariaDB: no time left before the deadline for ${what}`);
    }
    try {
      const [rows] = await session.client.query({
        sql,
        values,
        timeout: Math.max(1, Math.ceil(Math.min(statementTimeoutMs, left))),
      });
      return rows as T;
    } catch (error) {
      if (errorCode(error) === 'PROTOCOL_SEQUENCE_TIMEOUT') {
        // mysql2 keeps waiting for the answer on this connection: drop it, so that close()
        // and the Lambda never wait on a silent network path.
        session.destroyed = true;
        session.client.destroy();
      }
      // A syntax error quotes the statement as sent: with the escaped form of the values.
      const all = secrets.flatMap((secret) => [secret, session.driver.escape(secret).slice(1, -1)]);
      scrubDriverError(error, all);
      throw new DatabaseError(`MySQL/MariaDB: ${what} failed: ${scrub(messageOf(error), all)}`, {
        cause: error,
      });
    }
  }

  async function open(
    login: Login,
    ssl: { rejectUnauthorized: boolean; verifyIdentity?: boolean } | undefined,
    timeoutMs: number,
    logger: RotationLogger | undefined,
    deadline: number | undefined,
  ): Promise<MysqlSession> {
    driverPromise ??= loadDriver();
    const driver = await driverPromise;
    const client = await driver.createConnection({
      host: login.host,
      port: login.port,
      user: login.user,
      password: login.password,
      ...(login.database ? { database: login.database } : {}),
      ...(ssl ? { ssl } : {}),
      // Never past the invocation's deadline either.
      connectTimeout: Math.max(
        1,
        Math.floor(deadline === undefined ? timeoutMs : Math.min(timeoutMs, deadline - Date.now())),
      ),
      charset: 'utf8mb4',
      multipleStatements: false,
      connectAttributes: { program_name: 'secrets-rotation' },
    });
    // A server-side disconnect emits 'error'; without a listener it would crash the process.
    client.on('error', () => {});
    const session: MysqlSession = {
      client,
      driver,
      server: { flavor: 'mysql', major: 0, minor: 0, patch: 0, version: '' },
      account: { user: login.user, host: '' },
      ...(logger ? { logger } : {}),
      ...(deadline === undefined ? {} : { deadline }),
    };
    try {
      const rows = await run<{ version: string; account: string; sqlMode: string }[]>(
        session,
        'reading the server version',
        'SELECT VERSION() AS version, CURRENT_USER() AS account, @@SESSION.sql_mode AS sqlMode',
      );
      const row = rows[0];
      if (!row) throw new DatabaseError('MySQL/MariaDB: SELECT VERSION() returned no row');
      session.server = parseServerVersion(String(row.version));
      const at = String(row.account).lastIndexOf('@');
      session.account = {
        user: at < 0 ? String(row.account) : String(row.account).slice(0, at),
        host: at < 0 ? '%' : String(row.account).slice(at + 1),
      };
      // The server may authenticate another account than the one named: an anonymous account
      // (''@'localhost' sorts before 'app'@'%'), or a proxied one. Its password proves nothing
      // about the named user, and its session must never be taken for the user's.
      if (session.account.user !== login.user) {
        throw new AuthenticationError(
          `${where(login)}: the server signed the session in as ${session.account.user === '' ? 'an anonymous account' : `another user "${session.account.user}"`} (host part '${session.account.host}'), not as the user named`,
        );
      }
      // Modes this session must not run with. NO_BACKSLASH_ESCAPES: the driver escapes with
      // backslashes, and the server would read an escaped quote as the end of the string.
      // PAD_CHAR_TO_FULL_LENGTH: mysql.user's CHAR columns (Host, plugin) would come back
      // padded with spaces, `'%'` as `'%   …'`, an account no statement names.
      const modes = String(row.sqlMode ?? '').split(',');
      const kept = modes.filter((mode) => !SESSION_MODES_DROPPED.has(mode.trim().toUpperCase()));
      if (kept.length < modes.length) {
        await run(session, 'setting sql_mode', 'SET SESSION sql_mode = ?', [kept.join(',')]);
      }
      if (deadline !== undefined) await boundSession(session, deadline);
      return session;
    } catch (error) {
      await endClient(session);
      throw error;
    }
  }

  /**
   * The server's side of the deadline: a session whose client went silent (a dead route, a
   * frozen Lambda) is ended by the server once the invocation is over (wait_timeout), and no
   * statement waits on a lock past it (lock_wait_timeout for metadata and ACL locks,
   * innodb_lock_wait_timeout for rows, MariaDB's max_statement_time for the whole statement).
   * Never raised above what the session already has. The adapter runs no transaction and
   * takes no user lock (GET_LOCK): each statement's locks end with it.
   */
  async function boundSession(session: MysqlSession, deadline: number): Promise<void> {
    const seconds = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
    const mariadb = session.server.flavor === 'mariadb';
    await run(
      session,
      'bounding the session by the deadline',
      `SET SESSION wait_timeout = LEAST(@@SESSION.wait_timeout, ?),
           lock_wait_timeout = LEAST(@@SESSION.lock_wait_timeout, ?),
           innodb_lock_wait_timeout = LEAST(@@SESSION.innodb_lock_wait_timeout, ?)${
             mariadb
               ? ', max_statement_time = IF(@@SESSION.max_statement_time = 0, ?, LEAST(@@SESSION.max_statement_time, ?))'
               : ''
           }`,
      mariadb ? [seconds, seconds, seconds, seconds, seconds] : [seconds, seconds, seconds],
    );
  }

  /** Ends the client politely, but never waits on it past a second, nor past the deadline. */
  async function endClient(session: MysqlSession): Promise<void> {
    if (session.destroyed) return;
    const { client } = session;
    const wait = Math.max(
      0,
      Math.min(1_000, session.deadline === undefined ? 1_000 : session.deadline - Date.now()),
    );
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([
      client.end().then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), wait);
      }),
    ]);
    clearTimeout(timer);
    if (!ended) client.destroy();
    session.destroyed = true;
  }

  /** The host part of `user`'s only account, read from mysql.user. */
  async function accountScope(session: MysqlSession, user: string): Promise<string | undefined> {
    const rows = await run<{ host: string }[]>(
      session,
      `looking up the accounts of user "${user}"`,
      `SELECT Host AS host FROM mysql.user WHERE User = ?${session.server.flavor === 'mariadb' ? " AND is_role <> 'Y'" : ''} ORDER BY Host`,
      [user],
    );
    if (rows.length === 0) return undefined;
    if (rows.length > 1) {
      throw new InvalidSecretError(
        `user "${user}" has ${rows.length} accounts (${rows.map((r) => `'${user}'@'${r.host}'`).join(', ')}): name the one to rotate in the secret's field "${ACCOUNT_HOST_FIELD}"`,
        ACCOUNT_HOST_FIELD,
      );
    }
    return (rows[0] as { host: string }).host;
  }

  /** The account `user` names: the session's own, the secret's `accounthost`, or the only one. */
  async function accountOf(session: MysqlSession, user: string, scope?: string): Promise<Account> {
    if (session.account.user === user) {
      if (scope !== undefined && scope.toLowerCase() !== session.account.host.toLowerCase()) {
        throw new InvalidSecretError(
          `signed in as ${showAccount(session.account)}, but the secret's "${ACCOUNT_HOST_FIELD}" names '${user}'@'${scope}'`,
          ACCOUNT_HOST_FIELD,
        );
      }
      return session.account;
    }
    if (scope !== undefined) return { user, host: scope };
    const host = await accountScope(session, user);
    if (host === undefined) throw new DatabaseError(`MySQL/MariaDB: there is no user "${user}"`);
    return { user, host };
  }

  async function accountExists(session: MysqlSession, account: Account): Promise<boolean> {
    const rows = await run<unknown[]>(
      session,
      `looking up ${showAccount(account)}`,
      `SELECT 1 FROM mysql.user WHERE User = ? AND Host = ?${session.server.flavor === 'mariadb' ? " AND is_role <> 'Y'" : ''}`,
      [account.user, account.host],
    );
    return rows.length > 0;
  }

  async function showGrants(session: MysqlSession, account: Account) {
    const rows = await run<Record<string, unknown>[]>(
      session,
      `reading the grants of ${showAccount(account)}`,
      'SHOW GRANTS FOR ?@?',
      [account.user, account.host],
    );
    return parseShowGrants(rows.map((row) => String(Object.values(row)[0] ?? '')));
  }

  async function readOptions(session: MysqlSession, account: Account): Promise<AccountOptions> {
    const mariadb = session.server.flavor === 'mariadb';
    const rows = await run<Record<string, unknown>[]>(
      session,
      `reading the account options of ${showAccount(account)}`,
      `SELECT plugin, CONVERT(ssl_type USING utf8mb4) AS sslType,
              CONVERT(ssl_cipher USING utf8mb4) AS sslCipher,
              CONVERT(x509_issuer USING utf8mb4) AS x509Issuer,
              CONVERT(x509_subject USING utf8mb4) AS x509Subject,
              max_questions AS maxQuestions, max_updates AS maxUpdates,
              max_connections AS maxConnections, max_user_connections AS maxUserConnections
              ${mariadb ? ', CAST(max_statement_time AS CHAR) AS maxStatementTime' : ''}
         FROM mysql.user WHERE User = ? AND Host = ?`,
      [account.user, account.host],
    );
    const row = rows[0];
    if (!row) throw new DatabaseError(`MySQL/MariaDB: there is no account ${showAccount(account)}`);
    const text = (value: unknown) => (value === null || value === undefined ? '' : String(value));
    return {
      plugin: text(row.plugin),
      sslType: text(row.sslType),
      sslCipher: text(row.sslCipher),
      x509Issuer: text(row.x509Issuer),
      x509Subject: text(row.x509Subject),
      maxQuestions: Number(row.maxQuestions ?? 0),
      maxUpdates: Number(row.maxUpdates ?? 0),
      maxConnections: Number(row.maxConnections ?? 0),
      maxUserConnections: Number(row.maxUserConnections ?? 0),
      ...(mariadb ? { maxStatementTime: text(row.maxStatementTime) || '0' } : {}),
    };
  }

  /** MySQL 8 keeps default roles in mysql.default_roles; MariaDB prints them in SHOW GRANTS. */
  async function mysqlDefaultRoles(session: MysqlSession, account: Account): Promise<Role[]> {
    const rows = await run<{ name: string; host: string }[]>(
      session,
      `reading the default roles of ${showAccount(account)}`,
      'SELECT DEFAULT_ROLE_USER AS name, DEFAULT_ROLE_HOST AS host FROM mysql.default_roles WHERE USER = ? AND HOST = ? ORDER BY 1, 2',
      [account.user, account.host],
    );
    return rows.map((r) => ({ name: String(r.name), host: String(r.host) }));
  }

  async function syncDefaultRoles(
    session: MysqlSession,
    clone: Account,
    want: Role[],
    have: Role[],
  ): Promise<string[]> {
    const key = (roles: Role[]) =>
      JSON.stringify(roles.map((r) => [r.name, r.host ?? null]).sort());
    if (key(want) === key(have)) return [];
    const q = quoting(session);
    const roles =
      want.length === 0 ? 'NONE' : want.map((r) => renderRole(r, session.server, q)).join(', ');
    const sql =
      session.server.flavor === 'mariadb'
        ? `SET DEFAULT ROLE ${roles} FOR ${renderAccount(clone, q)}`
        : `SET DEFAULT ROLE ${roles} TO ${renderAccount(clone, q)}`;
    await run(session, `setting the default role of ${showAccount(clone)}`, sql);
    const shown =
      want.length === 0
        ? 'NONE'
        : want
            .map((r) => (r.host === undefined ? `\`${r.name}\`` : `\`${r.name}\`@\`${r.host}\``))
            .join(', ');
    return [`set DEFAULT ROLE ${shown}`];
  }

  /** Makes `clone`'s account options, grants, roles and default role those of `original`. */
  async function sync(session: MysqlSession, clone: Account, original: Account): Promise<string[]> {
    const q = quoting(session);
    const changes: string[] = [];
    const options = planAccountOptions(
      session.server,
      clone,
      await readOptions(session, original),
      await readOptions(session, clone),
      q,
    );
    for (const sql of options.statements) {
      await run(session, `setting the account options of ${showAccount(clone)}`, sql);
    }
    changes.push(...options.changes);

    const MAX_PASSES = 4;
    let want = await showGrants(session, original);
    let have = await showGrants(session, clone);
    for (let pass = 1; ; pass++) {
      const plan = planGrantChanges(session.server, clone, want.grants, have.grants, q);
      if (plan.statements.length === 0) break;
      if (pass === MAX_PASSES) {
        throw new DatabaseError(
          `MySQL/MariaDB: the grants of ${showAccount(clone)} still differ from ${showAccount(original)}'s after ${MAX_PASSES - 1} passes: ${plan.changes.join('; ')}`,
        );
      }
      for (const sql of plan.statements) {
        await run(session, `changing the grants of ${showAccount(clone)}`, sql);
      }
      changes.push(...plan.changes);
      want = await showGrants(session, original);
      have = await showGrants(session, clone);
    }

    if (capabilitiesOf(session.server).roles) {
      const [wantDefault, haveDefault] =
        session.server.flavor === 'mariadb'
          ? [want.defaultRole ? [want.defaultRole] : [], have.defaultRole ? [have.defaultRole] : []]
          : [await mysqlDefaultRoles(session, original), await mysqlDefaultRoles(session, clone)];
      changes.push(...(await syncDefaultRoles(session, clone, wantDefault, haveDefault)));
    }
    return changes;
  }

  /** The authentication plugins of a MariaDB account (SHOW CREATE USER: allowed on one's own). */
  async function mariadbPlugins(session: MysqlSession, account: Account): Promise<string[]> {
    const own = sameAccount(account, session.account);
    const show = atLeastMariadb(session, 10, 2) ? 'SHOW CREATE USER' : 'SHOW GRANTS FOR';
    const rows = await run<Record<string, unknown>[]>(
      session,
      `reading how ${showAccount(account)} authenticates`,
      own ? `${show} CURRENT_USER()` : `${show} ?@?`,
      own ? [] : [account.user, account.host],
    );
    return authenticationPlugins(rows.map((row) => String(Object.values(row)[0] ?? '')));
  }

  /** Gives the session the caller's hooks beyond the logger. */
  function withHooks(session: MysqlSession, options: ConnectOptions): MysqlSession {
    if (options.degraded) session.degraded = options.degraded;
    return session;
  }

  async function changePassword(
    session: MysqlSession,
    account: Account,
    password: string,
    plugins?: string[],
  ): Promise<void> {
    const q = quoting(session);
    const target = renderAccount(account, q);
    const capabilities = capabilitiesOf(session.server);
    const what = `changing the password of ${showAccount(account)}`;
    if (session.server.flavor === 'mariadb') {
      // MariaDB writes statements to its general and slow query logs as sent: send the hash.
      // Only mysql_native_password's can be computed here; the password-less unix_socket and
      // named_pipe may sit beside it (IDENTIFIED VIA unix_socket OR mysql_native_password).
      const methods = plugins ?? (await mariadbPlugins(session, account));
      const other = methods.filter(
        (p) => p !== 'mysql_native_password' && p !== 'unix_socket' && p !== 'named_pipe',
      );
      if (other.length > 0 || !methods.includes('mysql_native_password')) {
        throw new DatabaseError(
          `MySQL/MariaDB: ${showAccount(account)} authenticates with ${methods.join(' OR ')}; this function changes MariaDB passwords only for mysql_native_password accounts, whose hash it sends instead of the password (a plain-text password would be written to the server's general and slow query logs)`,
        );
      }
      const hash = nativePasswordHash(password);
      await run(session, what, `SET PASSWORD FOR ${target} = ?`, [hash], [password, hash]);
      return;
    }
    if (capabilities.passwordSyntax === 'set-password') {
      // MySQL before 5.7.6: the server rewrites SET PASSWORD out of its logs.
      await run(session, what, `SET PASSWORD FOR ${target} = PASSWORD(?)`, [password], [password]);
      return;
    }
    const own = sameAccount(account, session.account);
    if (capabilities.dualPasswords) {
      // A secondary password left by the previous rotation (or a person) goes first.
      try {
        await run(
          session,
          `discarding the old password of ${showAccount(account)}`,
          `ALTER USER ${target} DISCARD OLD PASSWORD`,
        );
      } catch (error) {
        if (!(own && errorNumber((error as Error).cause) === ER.specificAccessDenied)) throw error;
        session.logger?.debug(
          'no APPLICATION_PASSWORD_ADMIN: cannot discard an old secondary password',
          {
            account: showAccount(account),
          },
        );
      }
      if (own && retainCurrentPassword) {
        try {
          await run(
            session,
            what,
            `ALTER USER ${target} IDENTIFIED BY ? RETAIN CURRENT PASSWORD`,
            [password],
            [password],
          );
          session.logger?.info(
            'kept the replaced password as the secondary password until the next rotation (RETAIN CURRENT PASSWORD)',
            { account: showAccount(account) },
          );
          return;
        } catch (error) {
          if (errorNumber((error as Error).cause) !== ER.specificAccessDenied) throw error;
          session.logger?.warn(
            'the user lacks APPLICATION_PASSWORD_ADMIN: changing the password without a grace period (set MYSQL_RETAIN_CURRENT_PASSWORD=false to silence this)',
            { account: showAccount(account) },
          );
          // The metric Degraded (Feature=MysqlRetainCurrentPassword): the template's alarm on it
          // tells a person, who may not read warnings, that the grace period is gone.
          session.degraded?.(GRACE_PERIOD_FEATURE);
        }
      }
    }
    await run(session, what, `ALTER USER ${target} IDENTIFIED BY ?`, [password], [password]);
  }

  return {
    name: 'MySQL/MariaDB',
    engines: ['mysql', 'aurora-mysql', 'mariadb'],
    defaultPort: 3306,
    defaultDatabase: '',
    masterDatabase: '',
    maxUsernameLength: Math.min(80, usernameLimit ?? 80),
    maxUsernameLengthFor: (engine) =>
      Math.min(engine === 'mariadb' ? 80 : 32, usernameLimit ?? Number.POSITIVE_INFINITY),
    scopeField: ACCOUNT_HOST_FIELD,

    async connect(login: Login, connectOptions: ConnectOptions = {}): Promise<MysqlSession> {
      const timeoutMs = connectOptions.timeoutMs ?? connectTimeoutMs;
      const logger = connectOptions.logger;
      const deadline = connectOptions.deadline;
      try {
        if (login.tls === 'disable')
          return withHooks(
            await open(login, undefined, timeoutMs, logger, deadline),
            connectOptions,
          );
        if (login.tls === 'verify') {
          return withHooks(
            await open(
              login,
              { rejectUnauthorized: true, verifyIdentity: true },
              timeoutMs,
              logger,
              deadline,
            ),
            connectOptions,
          );
        }
        try {
          // "TLS preferred": encrypt without verification; plaintext only if the server has no TLS.
          return withHooks(
            await open(login, { rejectUnauthorized: false }, timeoutMs, logger, deadline),
            connectOptions,
          );
        } catch (error) {
          if (errorCode(error) !== 'HANDSHAKE_NO_SSL_SUPPORT') throw error;
          logger?.warn(
            'server offers no TLS; connecting in plaintext (set "ssl": true to forbid this)',
            {
              host: login.host,
              port: login.port,
              user: login.user,
            },
          );
          return withHooks(
            await open(login, undefined, timeoutMs, logger, deadline),
            connectOptions,
          );
        }
      } catch (error) {
        throw classifyMysqlError(error, login);
      }
    },

    async setPassword(session, user, password, scope) {
      await changePassword(session, await accountOf(session, user, scope), password);
    },

    async userExists(session, user, scope) {
      if (scope === undefined) {
        const rows = await run<unknown[]>(
          session,
          `looking up user "${user}"`,
          'SELECT 1 FROM mysql.user WHERE User = ?',
          [user],
        );
        return rows.length > 0;
      }
      return accountExists(session, { user, host: scope });
    },

    accountScope,

    async signedInScope(session) {
      return session.account.host;
    },

    async createUserLike(session, user, password, like, scope) {
      const original = await accountOf(session, like, scope);
      const clone = { user, host: original.host };
      const q = quoting(session);
      // A throw-away password until the clone holds every grant: AWSPENDING signs in only once
      // the clone is complete, so a crash half-way is never taken for a finished job by a retry.
      const throwaway = `${randomBytes(18).toString('base64url')}#Aa1`;
      const mariadb = session.server.flavor === 'mariadb';
      try {
        await run(
          session,
          `creating ${showAccount(clone)}`,
          renderCreateUser(session.server, clone, await readOptions(session, original), q),
          [mariadb ? nativePasswordHash(throwaway) : throwaway],
          [throwaway, ...(mariadb ? [nativePasswordHash(throwaway)] : [])],
        );
      } catch (error) {
        // ER_CANNOT_USER: an overlapping invocation created it a moment ago.
        if (
          errorNumber((error as Error).cause) === ER.cannotUser &&
          (await accountExists(session, clone))
        ) {
          throw new UserExistsError(`MySQL/MariaDB: ${showAccount(clone)} exists already`, {
            cause: error,
          });
        }
        throw error;
      }
      await sync(session, clone, original);
      // On MariaDB the clone was just made IDENTIFIED BY PASSWORD: mysql_native_password.
      await changePassword(
        session,
        clone,
        password,
        mariadb ? ['mysql_native_password'] : undefined,
      );
    },

    async syncPrivileges(session, user, like, scope) {
      const original = await accountOf(session, like, scope);
      return sync(session, { user, host: original.host }, original);
    },

    async verifyClone(session, clone, original, scope) {
      const originalAccount = await accountOf(session, original, scope);
      const cloneAccount = { user: clone, host: originalAccount.host };
      if (!(await accountExists(session, cloneAccount))) return;
      const originalGrants = await showGrants(session, originalAccount);
      const cloneGrants = await showGrants(session, cloneAccount);
      const extra = extraGlobalPrivileges(originalGrants.grants, cloneGrants.grants);
      if (cloneGrants.ignored.includes('PROXY') && !originalGrants.ignored.includes('PROXY')) {
        extra.push('PROXY');
      }
      // A clone signs in only with the password this function sets: never through another
      // plugin (unix_socket, PAM...) someone else may use.
      const plugins =
        session.server.flavor === 'mariadb'
          ? await mariadbPlugins(session, cloneAccount)
          : [(await readOptions(session, cloneAccount)).plugin];
      const own =
        session.server.flavor === 'mariadb'
          ? plugins.length === 1 && plugins[0] === 'mysql_native_password'
          : plugins.every((p) => MYSQL_PASSWORD_PLUGINS.has(p));
      if (!own) {
        throw new InvalidSecretError(
          `MySQL/MariaDB account ${showAccount(cloneAccount)} authenticates with ${plugins.join(' OR ')}: not a clone made by this function; refusing to take it over`,
          'username',
        );
      }
      if (extra.length > 0) {
        throw new InvalidSecretError(
          `MySQL/MariaDB account ${showAccount(cloneAccount)} holds ${extra.join(', ')} ON *.*, which ${showAccount(originalAccount)} lacks: not a clone made by this function; refusing to take it over`,
          'username',
        );
      }
    },

    async ping(session) {
      await run(session, 'running a test query', 'SELECT 1');
    },

    async close(session) {
      await endClient(session);
    },
  };
}
