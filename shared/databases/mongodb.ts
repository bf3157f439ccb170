import type { Db, Document, MongoClient, MongoClientOptions } from 'mongodb';
import {
  AuthenticationError,
  ConfigurationError,
  ConnectionError,
  ConnectTimeoutError,
  DatabaseError,
  HostUnreachableError,
  InvalidSecretError,
  type RotationError,
  TlsError,
  UserExistsError,
} from '../common/errors.js';
import type { RotationLogger } from '../common/logger.js';
import { CERTIFICATE_CODES, UNREACHABLE_CODES } from './socket-errors.js';
import type { ConnectOptions, Database, Login } from './types.js';

/** Options of {@link createMongoDb}. */
export interface MongoDbOptions {
  /** Connect timeout in ms when the caller gives none (default 10000). */
  connectTimeoutMs?: number;
  /** Longest wait for one command's answer, in ms (default 30000). */
  operationTimeoutMs?: number;
  /**
   * Longest wait for the server's side of a TLS handshake once TCP is connected, in ms
   * (default 3000). MongoDB has no in-protocol TLS negotiation: a server without TLS may
   * simply wait for more bytes, so this bounds how long "TLS preferred" takes to find out.
   */
  tlsHandshakeTimeoutMs?: number;
  /**
   * PEM certificates to trust instead of the runtime's store for `ssl: true` (default: the
   * runtime's store, which on Lambda includes the RDS and DocumentDB CAs through
   * NODE_EXTRA_CA_CERTS).
   */
  trustedCa?: string;
  /** Loads the driver (default: `import('mongodb')` on first connect). For tests. */
  loadDriver?: () => Promise<Pick<typeof import('mongodb'), 'MongoClient'>>;
}

/** The subset of a driver `Db` the adapter uses: commands, always as documents. */
export type CommandTarget = Pick<Db, 'command' | 'databaseName'>;

/** A signed-in session. `users` is the database the managed users are defined in. */
export interface MongoConnection {
  readonly client: Pick<MongoClient, 'close'>;
  readonly users: CommandTarget;
  readonly user: string;
  /**
   * Epoch ms by which every command of the session must have answered (the invocation's
   * deadline); absent, each command gets the adapter's `operationTimeoutMs`.
   */
  readonly deadline?: number;
}

/** A role grant as usersInfo reports it and createUser / grantRolesToUser accept it. */
export interface RoleGrant {
  role: string;
  db: string;
}

/** The part of a usersInfo entry the adapter reads. */
export interface UserInfo {
  user: string;
  db: string;
  roles: RoleGrant[];
  customData?: Document;
  /**
   * The user's own `authenticationRestrictions` (where it may sign in from, and to), as
   * createUser takes them; [] when it has none or the server has no such notion.
   */
  restrictions: Document[];
}

/**
 * Key in a clone's customData naming the user it was made from. It lets a later rotation tell
 * our clone (whose extra roles it may revoke) from an unrelated account that only shares the
 * name (which it must never take over).
 */
export const CLONE_MARKER = 'secretsRotationCloneOf';

// Server error codes (src/mongo/base/error_codes.yml).
const AUTHENTICATION_FAILED = 18;
const MECHANISM_UNAVAILABLE = 334;
const NOT_IMPLEMENTED = 238;
const BAD_VALUE = 2;
// createUser of an existing user: 51003 on MongoDB 4.2+ and FerretDB, 11000 DuplicateKey before.
const USER_EXISTS = new Set([51003, 11000]);
const UNAVAILABLE_CODES = new Set([
  91, // ShutdownInProgress
  189, // PrimarySteppedDown
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
]);

/**
 * A command's signal fired (AbortSignal.timeout rejects with a DOMException "TimeoutError",
 * which the driver rethrows as MongoOperationTimeoutError when it fires during a socket read),
 * or a socket read outlived socketTimeoutMS.
 */
const TIMEOUT_NAMES = new Set([
  'TimeoutError',
  'MongoOperationTimeoutError',
  'MongoNetworkTimeoutError',
]);

const UNREACHABLE = new Set(UNREACHABLE_CODES);
const CERTIFICATE = new Set([...CERTIFICATE_CODES]);
const TLS_CLOSED = 'before secure TLS connection was established';

type Failure = { name?: unknown; code?: unknown; codeName?: unknown; message?: unknown };

const asFailure = (error: unknown): Failure =>
  typeof error === 'object' && error !== null ? (error as Failure) : {};

/** The socket-level code of an error or of the first error in its cause chain. */
function socketCode(error: unknown): string | undefined {
  for (let current: unknown = error, depth = 0; current && depth < 5; depth++) {
    if (current instanceof AggregateError) current = current.errors[0];
    const code = asFailure(current).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The error the server monitor recorded, which a server selection timeout only wraps. */
function monitorError(error: unknown): unknown {
  const reason = (error as { reason?: { servers?: Map<string, { error?: unknown }> } }).reason;
  for (const server of reason?.servers?.values() ?? []) {
    if (server.error) return server.error;
  }
  return (error as { cause?: unknown }).cause;
}

const scrub = (text: string, login: Pick<Login, 'password'>): string =>
  login.password.length > 0 ? text.split(login.password).join('***') : text;

const messageOf = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);

const where = (login: Login): string =>
  `MongoDB at ${login.host}:${login.port} (authentication database "${login.database}") as user "${login.user}"`;

/** Turns a driver failure while connecting into the error family strategies act on. */
export function classifyMongoError(error: unknown, login: Login): RotationError {
  const at = where(login);
  const failure = asFailure(error);
  const message = scrub(messageOf(error), login);
  // The driver's SASLprep (RFC 4013) refuses to send a password with prohibited, unassigned or
  // mixed-direction characters: no server ever saw it, and no retry can change that.
  if (/rfc ?(4013|3454)/i.test(message)) {
    return new InvalidSecretError(
      `${at}: the password cannot be used with SCRAM: ${message}`,
      'password',
      { cause: error },
    );
  }
  if (failure.code === AUTHENTICATION_FAILED || failure.code === MECHANISM_UNAVAILABLE) {
    return new AuthenticationError(`${at} refused the credentials: ${message}`, { cause: error });
  }
  if (typeof failure.code === 'number') {
    if (UNAVAILABLE_CODES.has(failure.code)) {
      return new ConnectionError(
        `${at}: the server is not accepting work now: ${message}`,
        'unavailable',
        { cause: error },
      );
    }
    const codeName = typeof failure.codeName === 'string' ? ` ${failure.codeName}` : '';
    return new DatabaseError(`${at}: ${message} (code ${failure.code}${codeName})`, {
      cause: error,
    });
  }
  if (failure.name === 'MongoServerSelectionError') {
    const inner = monitorError(error);
    if (inner !== undefined) {
      const classified = classifyMongoError(inner, login);
      // Keep the whole story: the selection error, which carries the monitor's error as cause.
      return Object.assign(classified, { cause: error });
    }
    return new ConnectTimeoutError(`${at} did not answer in time: ${message}`, { cause: error });
  }
  const code = socketCode(error);
  if (code !== undefined && UNREACHABLE.has(code)) {
    return new HostUnreachableError(`cannot reach ${at}: ${code}`, { cause: error });
  }
  if (
    code !== undefined &&
    (CERTIFICATE.has(code) || code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL'))
  ) {
    return new TlsError(`TLS with ${at} failed: ${code}`, { cause: error });
  }
  if (message.includes(TLS_CLOSED) || code === 'EPROTO') {
    return new TlsError(`TLS with ${at} failed: ${message}`, { cause: error });
  }
  if (
    code === 'ETIMEDOUT' ||
    failure.name === 'MongoNetworkTimeoutError' ||
    /timed? ?out/i.test(message)
  ) {
    return new ConnectTimeoutError(`${at} did not answer in time: ${message}`, { cause: error });
  }
  // A server that requires TLS closes a plaintext connection without a word.
  const hint =
    login.tls === 'disable' && /closed/i.test(message)
      ? ' (if the server requires TLS, remove "ssl": false from the secret)'
      : '';
  return new ConnectionError(`${at}: ${message}${hint}`, 'unavailable', { cause: error });
}

/** What the TLS probe found on the server's port. */
type TlsProbe =
  | { offered: true }
  | { offered: false; detail: string }
  | { offered: 'untrusted'; error: Error };

/** Host names go into the connection string as they are; IPv6 addresses in brackets. */
async function hostForUrl(host: string): Promise<string> {
  if (/^[A-Za-z0-9._-]+$/.test(host)) return host;
  const { isIPv6 } = await import('node:net');
  if (isIPv6(host)) return `[${host}]`;
  throw new InvalidSecretError(
    `field "host" (${JSON.stringify(host)}) is not a host name or an IP address`,
    'host',
  );
}

/**
 * MongoDB's rules for a database name (Unix servers: no `/\\. "$`, no NUL, fewer than 64 bytes),
 * checked before anything is sent: the driver would throw a raw argument error for some, and
 * servers answer others as a failed sign-in (FerretDB) or InvalidNamespace, which must not read
 * as wrong credentials. `$external` is no SCRAM user's home either.
 */
function requireDatabaseName(name: string, what: string): void {
  const bytes = Buffer.byteLength(name, 'utf8');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is one of the forbidden characters.
  const bad = /[/\\. "$\u0000]/.exec(name);
  if (name.length === 0 || bytes >= 64 || bad) {
    throw new InvalidSecretError(
      `field "dbname" (${what}, "${name}") is not a MongoDB database name: ${
        bad
          ? `it contains ${JSON.stringify(bad[0])}`
          : `it must be 1 to 63 bytes long (it has ${bytes})`
      }`,
      'dbname',
    );
  }
}

/** Opens TCP to the server; its failures are the host's (unreachable, timeout), whatever the TLS mode. */
async function openTcp(login: Login, timeoutMs: number): Promise<import('node:net').Socket> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const tcp = net.connect({ host: login.host, port: login.port });
    tcp.setTimeout(timeoutMs, () => {
      tcp.destroy();
      reject(
        Object.assign(new Error(`TCP connect timed out after ${timeoutMs} ms`), {
          code: 'ETIMEDOUT',
        }),
      );
    });
    tcp.once('error', reject);
    tcp.once('connect', () => {
      tcp.setTimeout(0);
      tcp.removeListener('error', reject);
      // From here on the caller reports failures; an unheard 'error' would crash the process.
      tcp.on('error', () => {});
      resolve(tcp);
    });
  });
}

/**
 * Tries a TLS handshake on an open socket and says whether the server offers TLS. Needed
 * because a MongoDB server without TLS gives no answer a driver could report: it closes the
 * socket or waits for more bytes, and the driver then only reports a server selection timeout.
 */
async function probeTls(
  socket: import('node:net').Socket,
  login: Login,
  verify: boolean,
  ca: string | undefined,
  handshakeTimeoutMs: number,
): Promise<TlsProbe> {
  const [net, tls] = await Promise.all([import('node:net'), import('node:tls')]);
  return new Promise<TlsProbe>((resolve) => {
    const secure = tls.connect({
      socket,
      host: login.host,
      ...(net.isIP(login.host) === 0 ? { servername: login.host } : {}),
      rejectUnauthorized: verify,
      ...(ca === undefined ? {} : { ca }),
    });
    const done = (result: TlsProbe) => {
      clearTimeout(timer);
      secure.destroy();
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(
      () => done({ offered: false, detail: `no TLS handshake within ${handshakeTimeoutMs} ms` }),
      handshakeTimeoutMs,
    );
    secure.once('secureConnect', () => done({ offered: true }));
    secure.on('error', (error: Error) => {
      const code = socketCode(error);
      const certificate =
        code !== undefined && (CERTIFICATE.has(code) || code.startsWith('ERR_TLS_CERT'));
      done(
        certificate
          ? { offered: 'untrusted', error }
          : { offered: false, detail: code ?? error.message },
      );
    });
    secure.once('close', () =>
      done({ offered: false, detail: 'the server closed the connection' }),
    );
  });
}

function rolesOf(info: Document): RoleGrant[] {
  const roles = Array.isArray(info.roles) ? info.roles : [];
  return roles
    .filter(
      (grant): grant is RoleGrant =>
        typeof grant === 'object' &&
        grant !== null &&
        typeof grant.role === 'string' &&
        typeof grant.db === 'string',
    )
    .map(({ role, db }) => ({ role, db }));
}

const grantKey = (grant: RoleGrant): string => `${grant.role}@${grant.db}`;

const RESTRICTIONS_FLAG = 'showAuthenticationRestrictions';

/**
 * A clone mark for a message. Whoever may change the user's customData wrote it: it may be of
 * any type, nested deep or megabytes long, none of which may break or flood the message.
 */
const describeMarker = (marker: unknown): string =>
  typeof marker === 'string'
    ? JSON.stringify(marker.length > 128 ? `${marker.slice(0, 128)}…` : marker)
    : `a mark of type ${marker === null ? 'null' : Array.isArray(marker) ? 'array' : typeof marker}`;

/** Two users' restrictions as comparable text (documents as the driver decoded them, in order). */
const sameRestrictions = (a: UserInfo, b: UserInfo): boolean =>
  JSON.stringify(a.restrictions) === JSON.stringify(b.restrictions);

/** Grants in `a` and not in `b`. */
const missingFrom = (a: RoleGrant[], b: RoleGrant[]): RoleGrant[] => {
  const keys = new Set(b.map(grantKey));
  return a.filter((grant) => !keys.has(grantKey(grant)));
};

/** The server does not implement a field (FerretDB 1.x answers NotImplemented to customData). */
const unsupportedField = (error: unknown, field: string): boolean => {
  const failure = asFailure(error);
  return (
    (failure.code === NOT_IMPLEMENTED || failure.code === BAD_VALUE) &&
    messageOf(error).includes(field)
  );
};

/**
 * Closes a client, waiting at most `ms`: close() may send endSessions, which a silent network
 * would leave unanswered, and a close never holds the invocation past its deadline.
 */
async function closeWithin(client: Pick<MongoClient, 'close'> | undefined, ms: number) {
  if (client === undefined) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    client.close().catch(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

/**
 * MongoDB and Amazon DocumentDB through the official `mongodb` driver. The driver is imported
 * on first connect, so createSecret and finishSecret never load it.
 *
 * Every connection goes straight to the host of the secret (`directConnection`; for
 * DocumentDB, the cluster endpoint, which always points at the primary), authenticates with
 * SCRAM against `dbname` (default `admin`), and runs user administration as command documents
 * (`updateUser`, `usersInfo`, `createUser`, `grantRolesToUser`, `revokeRolesFromUser`) in the
 * database the users are defined in. Retryable writes are off: DocumentDB before 8.0.2 rejects
 * them, and user administration never needs them.
 *
 * @example
 * export const handler = createRotationHandler({ strategy: singleUser(createMongoDb()), logger });
 */
export function createMongoDb(options: MongoDbOptions = {}): Database<MongoConnection> {
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const operationTimeoutMs = options.operationTimeoutMs ?? 30_000;
  const tlsHandshakeTimeoutMs = options.tlsHandshakeTimeoutMs ?? 3_000;
  for (const [name, value] of Object.entries({
    connectTimeoutMs,
    operationTimeoutMs,
    tlsHandshakeTimeoutMs,
  })) {
    if (!Number.isFinite(value) || value <= 0) {
      throw new ConfigurationError(`createMongoDb: ${name} must be a positive number of ms`);
    }
  }
  if (options.trustedCa !== undefined && !options.trustedCa.includes('BEGIN CERTIFICATE')) {
    throw new ConfigurationError('createMongoDb: trustedCa must hold PEM certificates');
  }
  // The driver is CommonJS: Node's import() gives its exports as named ones and as `default`; a
  // bundle that puts the driver in a chunk of its own gives only `default`.
  const loadDriver =
    options.loadDriver ??
    (async () => {
      const module = await import('mongodb');
      return module.default ?? module;
    });

  /** How long the next command of `connection` may wait for its answer, in ms (at least 1). */
  const commandBudget = (connection: Pick<MongoConnection, 'deadline'>): number =>
    Math.max(
      1,
      Math.floor(
        Math.min(
          operationTimeoutMs,
          (connection.deadline ?? Number.POSITIVE_INFINITY) - Date.now(),
        ),
      ),
    );

  /** Decides the driver's TLS options from the secret's mode and what the server offers. */
  async function tlsOptions(
    login: Login,
    timeoutMs: number,
    logger: RotationLogger | undefined,
  ): Promise<MongoClientOptions> {
    // TCP first, in every mode: an unreachable host fails at once with its own error instead of
    // after the driver's whole server selection timeout.
    const socket = await openTcp(login, timeoutMs);
    if (login.tls === 'disable') {
      socket.destroy();
      return { tls: false };
    }
    const verify = login.tls === 'verify';
    const probe = await probeTls(
      socket,
      login,
      verify,
      options.trustedCa,
      Math.min(timeoutMs, tlsHandshakeTimeoutMs),
    );
    if (probe.offered === true) {
      if (!verify) return { tls: true, tlsInsecure: true };
      return { tls: true, ...(options.trustedCa === undefined ? {} : { ca: options.trustedCa }) };
    }
    if (probe.offered === 'untrusted') throw probe.error;
    if (verify) {
      throw new TlsError(
        `TLS with ${where(login)} failed: the server did not complete a TLS handshake (${probe.detail})`,
      );
    }
    logger?.warn('server offers no TLS; connecting in plaintext (set "ssl": true to forbid this)', {
      host: login.host,
      port: login.port,
      user: login.user,
      detail: probe.detail,
    });
    return { tls: false };
  }

  async function run(
    connection: MongoConnection,
    what: string,
    user: string,
    command: Document,
    secret?: string,
  ): Promise<Document> {
    const budget = commandBudget(connection);
    try {
      // The signal bounds the wait on the client side whatever the network does: a stalled
      // path answers nothing, so a server-side maxTimeMS would never be heard.
      return await connection.users.command(command, { signal: AbortSignal.timeout(budget) });
    } catch (error) {
      // A server may quote the command in its message ("not authorized ... to execute command").
      const said =
        secret === undefined ? messageOf(error) : scrub(messageOf(error), { password: secret });
      const failure = asFailure(error);
      const code =
        typeof failure.code === 'number'
          ? ` (code ${failure.code}${typeof failure.codeName === 'string' ? ` ${failure.codeName}` : ''})`
          : '';
      const text = `MongoDB: ${what} for user "${user}" in database "${connection.users.databaseName}" failed: ${said}${code}`;
      if (typeof failure.name === 'string' && TIMEOUT_NAMES.has(failure.name)) {
        throw new ConnectTimeoutError(`${text} (no answer within ${budget} ms)`, { cause: error });
      }
      if (typeof failure.name === 'string' && /Network|ServerSelection/.test(failure.name)) {
        throw new ConnectionError(text, 'unavailable', { cause: error });
      }
      throw new DatabaseError(text, { cause: error });
    }
  }

  async function userInfo(
    connection: MongoConnection,
    user: string,
  ): Promise<UserInfo | undefined> {
    const db = connection.users.databaseName;
    const lookup = { usersInfo: { user, db } };
    let answer: Document;
    try {
      // Restrictions count as power: a clone that may sign in from anywhere holds more than an
      // original bound to the application's network.
      answer = await run(connection, 'looking up', user, {
        ...lookup,
        showAuthenticationRestrictions: true,
      });
    } catch (error) {
      // A server without the notion (it cannot restrict anyone) may refuse the flag.
      if (!(error instanceof DatabaseError) || !messageOf(error).includes(RESTRICTIONS_FLAG)) {
        throw error;
      }
      answer = await run(connection, 'looking up', user, lookup);
    }
    const users = Array.isArray(answer.users) ? (answer.users as Document[]) : [];
    const info = users.find((entry) => entry.user === user && entry.db === db);
    if (!info) return undefined;
    return {
      user,
      db,
      roles: rolesOf(info),
      ...(typeof info.customData === 'object' && info.customData !== null
        ? { customData: info.customData as Document }
        : {}),
      restrictions: Array.isArray(info.authenticationRestrictions)
        ? (info.authenticationRestrictions as Document[])
        : [],
    };
  }

  return {
    name: 'MongoDB',
    engines: ['mongo', 'docdb'],
    defaultPort: 27017,
    defaultDatabase: 'admin',
    // MongoDB sets no limit of its own; this keeps names (and user documents) reasonable.
    maxUsernameLength: 256,

    async connect(login: Login, connectOptions: ConnectOptions = {}): Promise<MongoConnection> {
      const started = Date.now();
      const timeoutMs = Math.max(1, Math.floor(connectOptions.timeoutMs ?? connectTimeoutMs));
      // The session ends with the invocation; signing in ends sooner, after timeoutMs.
      const sessionDeadline = connectOptions.deadline;
      const connectDeadline = Math.min(
        started + timeoutMs,
        sessionDeadline ?? Number.POSITIVE_INFINITY,
      );
      const left = () => Math.max(1, Math.floor(connectDeadline - Date.now()));
      const url = `mongodb://${await hostForUrl(login.host)}:${login.port}/`;
      requireDatabaseName(login.database, 'the authentication database');
      if (login.usersDatabase !== undefined) {
        requireDatabaseName(login.usersDatabase, "the users' database");
      }
      let client: MongoClient | undefined;
      try {
        const tls = await tlsOptions(login, left(), connectOptions.logger);
        const { MongoClient } = await loadDriver();
        const budget = left();
        client = new MongoClient(url, {
          ...tls,
          // Credentials as options, never in the connection string: no escaping, no leaks.
          auth: { username: login.user, password: login.password },
          authSource: login.database,
          directConnection: true,
          retryWrites: false,
          serverSelectionTimeoutMS: budget,
          connectTimeoutMS: budget,
          // The idle limit of every socket read, SCRAM's included (the driver gives only the
          // first hello connectTimeoutMS): no read outlives the session. Each command is bounded
          // more tightly by its own signal (run).
          socketTimeoutMS: commandBudget({ deadline: sessionDeadline }),
          // Bounds getting a signed-in connection (TCP, TLS, hello and SCRAM together) by the
          // connect timeout: a server that answers hello and then stalls SCRAM is found out
          // in timeoutMs, not at the end of the invocation.
          waitQueueTimeoutMS: budget,
          maxPoolSize: 1,
          appName: 'secrets-rotation',
        });
        await client.connect();
        // Signs in (SCRAM) and proves the session answers.
        await client
          .db(login.database)
          .command({ ping: 1 }, { signal: AbortSignal.timeout(left()) });
        return {
          client,
          users: client.db(login.usersDatabase ?? login.database),
          user: login.user,
          ...(sessionDeadline === undefined ? {} : { deadline: sessionDeadline }),
        };
      } catch (error) {
        await closeWithin(client, 1_000);
        if (error instanceof TlsError || error instanceof InvalidSecretError) throw error;
        const name = asFailure(error).name;
        if (typeof name === 'string' && TIMEOUT_NAMES.has(name)) {
          throw new ConnectTimeoutError(
            `${where(login)} did not answer in time: no answer within ${timeoutMs} ms`,
            { cause: error },
          );
        }
        throw classifyMongoError(error, login);
      }
    },

    async setPassword(connection, user, password) {
      await run(
        connection,
        'changing the password',
        user,
        { updateUser: user, pwd: password },
        password,
      );
    },

    async userExists(connection, user) {
      return (await userInfo(connection, user)) !== undefined;
    },

    async createUserLike(connection, user, password, like) {
      const original = await userInfo(connection, like);
      if (!original) {
        throw new DatabaseError(
          `MongoDB: cannot create "${user}" like "${like}": no user "${like}" in database "${connection.users.databaseName}"`,
        );
      }
      // One command: the clone exists with its roles, restrictions and password, or not at all.
      const command = {
        createUser: user,
        pwd: password,
        roles: original.roles,
        ...(original.restrictions.length > 0
          ? { authenticationRestrictions: original.restrictions }
          : {}),
      };
      const create = async (document: Document) => {
        try {
          await run(connection, 'creating', user, document, password);
        } catch (error) {
          // An overlapping invocation created it first: the strategy carries on as with an
          // existing user.
          const code = asFailure(error instanceof DatabaseError ? error.cause : error).code;
          if (typeof code === 'number' && USER_EXISTS.has(code)) {
            throw new UserExistsError(
              `MongoDB user "${user}" exists already in database "${connection.users.databaseName}"`,
              { cause: error },
            );
          }
          throw error;
        }
      };
      try {
        await create({ ...command, customData: { [CLONE_MARKER]: like } });
      } catch (error) {
        if (!unsupportedField(error instanceof DatabaseError ? error.cause : error, 'customData'))
          throw error;
        // Servers without customData (FerretDB 1.x) get an unmarked clone; see verifyClone.
        await create(command);
      }
    },

    async verifyClone(connection, clone, original) {
      const [cloneInfo, originalInfo] = await Promise.all([
        userInfo(connection, clone),
        userInfo(connection, original),
      ]);
      if (!cloneInfo || !originalInfo) return;
      const marker = cloneInfo.customData?.[CLONE_MARKER];
      if (marker === original) return;
      if (marker !== undefined) {
        throw new InvalidSecretError(
          `MongoDB user "${clone}" was made as a clone of ${describeMarker(marker)}, not of "${original}"; refusing to take it over`,
          'username',
        );
      }
      // No marker (made by hand, by another tool, or on a server without customData): accept
      // it only if it holds no role the original lacks and is bound by the same restrictions.
      if (!sameRestrictions(cloneInfo, originalInfo)) {
        throw new InvalidSecretError(
          `MongoDB user "${clone}" has other authenticationRestrictions than "${original}" and no ${CLONE_MARKER} mark in its customData: not a clone made by this function; refusing to hand out its password`,
          'username',
        );
      }
      const extra = missingFrom(cloneInfo.roles, originalInfo.roles);
      if (extra.length > 0) {
        throw new InvalidSecretError(
          `MongoDB user "${clone}" has roles "${original}" lacks (${extra.map(grantKey).join(', ')}) and no ${CLONE_MARKER} mark in its customData: not a clone made by this function; refusing to hand out its password`,
          'username',
        );
      }
    },

    async syncPrivileges(connection, user, like) {
      const [cloneInfo, originalInfo] = await Promise.all([
        userInfo(connection, user),
        userInfo(connection, like),
      ]);
      if (!cloneInfo || !originalInfo) return [];
      const revoke = missingFrom(cloneInfo.roles, originalInfo.roles);
      const grant = missingFrom(originalInfo.roles, cloneInfo.roles);
      // Revoke first: the clone never holds more than either the old or the new set.
      if (revoke.length > 0) {
        await run(connection, 'revoking roles', user, { revokeRolesFromUser: user, roles: revoke });
      }
      // Then the original's restrictions, before any grant: a new role never arrives at a clone
      // still looser than the original.
      const restrict = !sameRestrictions(cloneInfo, originalInfo);
      if (restrict) {
        await run(connection, 'copying authenticationRestrictions', user, {
          updateUser: user,
          authenticationRestrictions: originalInfo.restrictions,
        });
      }
      if (grant.length > 0) {
        await run(connection, 'granting roles', user, { grantRolesToUser: user, roles: grant });
      }
      return [
        ...revoke.map((role) => `revoked role ${grantKey(role)}`),
        ...(restrict ? [`set authenticationRestrictions like "${like}"`] : []),
        ...grant.map((role) => `granted role ${grantKey(role)}`),
      ];
    },

    async ping(connection) {
      await run(connection, 'running a test command', connection.user, { ping: 1 });
    },

    async close(connection) {
      await closeWithin(connection.client, Math.min(1_000, commandBudget(connection)));
    },
  };
}
