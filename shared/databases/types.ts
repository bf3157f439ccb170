import type { RotationLogger } from '../common/logger.js';

/**
 * TLS policy of a connection, from the secret's `ssl` field:
 * `verify` (ssl true): TLS with certificate and host name verification, no fallback;
 * `prefer` (ssl absent): TLS without verification, plaintext only if the server offers no TLS;
 * `disable` (ssl false): plaintext.
 */
export type TlsMode = 'verify' | 'prefer' | 'disable';

/** Everything needed to sign in. `password` never appears in a message. */
export interface Login {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  tls: TlsMode;
  /**
   * Where the users being changed are defined, when that is not `database`. MongoDB keeps a
   * user in its authentication database: the master may sign in against `admin` while the
   * application's users live in another one. Adapters whose users are server-wide ignore it.
   */
  usersDatabase?: string;
}

export interface ConnectOptions {
  /** Give up connecting after this long, in ms. */
  timeoutMs?: number;
  /**
   * Epoch ms by which the session must be done: the invocation's deadline. Every statement or
   * command of the session is bounded by it on the client side, and the server is told to end
   * a session left idle in a transaction, so a silent network stall can neither outlive the
   * invocation nor leave a lock that blocks the service's retry.
   */
  deadline?: number;
  /** Receives the warning when `prefer` falls back to plaintext. */
  logger?: RotationLogger;
  /**
   * Told, with a feature name, when the adapter falls back from a feature it was asked to use
   * (for example MySQL's RETAIN CURRENT PASSWORD without APPLICATION_PASSWORD_ADMIN): the
   * rotation goes on, and the handler emits the metric `Degraded` with that `Feature`.
   */
  degraded?: (feature: string) => void;
}

/**
 * What a database gives the strategies. Adapters know nothing of Secrets Manager; they sign
 * in, classify failures, and change users, always quoting through the driver.
 *
 * `connect` throws `AuthenticationError` when the server refused the credentials and a
 * `ConnectionError` subclass (unreachable, TLS, timeout, too many connections) otherwise:
 * strategies fall back to older credentials only on the former.
 *
 * @example
 * const db = createPostgres();
 * const connection = await db.connect({ host, port: 5432, user, password, database: 'postgres', tls: 'verify' });
 * try { await db.ping(connection); } finally { await db.close(connection); }
 */
export interface Database<C> {
  /** Human name for messages ("PostgreSQL"). */
  readonly name: string;
  /** Accepted values of the secret's `engine`. */
  readonly engines: readonly string[];
  readonly defaultPort: number;
  readonly defaultDatabase: string;
  /**
   * The database the master signs in to when its secret names none (PostgreSQL `postgres`,
   * MySQL none): never the application's, whose owner may have planted objects in it. Absent,
   * the application secret's `dbname` (MongoDB: the authentication database).
   */
  readonly masterDatabase?: string;
  /** Longest user name the server accepts, in `usernameLimitUnit`. */
  readonly maxUsernameLength: number;
  /**
   * What the user name limits count: UTF-8 `bytes` (PostgreSQL truncates names at
   * NAMEDATALEN - 1 = 63 bytes) or `characters` (MySQL, MariaDB; the default). A name checked
   * in the wrong unit passes and is then cut by the server into another role's name.
   */
  readonly usernameLimitUnit?: 'bytes' | 'characters';
  /**
   * Longest user name for a secret's `engine`, where the servers one adapter serves differ
   * (MySQL 32, MariaDB 80). createSecret never connects, so the engine is all it can go by;
   * defaults to `maxUsernameLength`.
   */
  maxUsernameLengthFor?(engine: string): number;
  /**
   * The optional secret field that names a user's account *scope*, on servers where a user name
   * alone is ambiguous: MySQL's host part of `'user'@'host'` (field `accounthost`). Parsed into
   * `DatabaseSecret.scope` and passed to the methods below as `scope`; absent, the adapter reads
   * it from the server. Servers without the notion leave this out and ignore `scope`.
   */
  readonly scopeField?: string;
  connect(login: Login, options?: ConnectOptions): Promise<C>;
  /** Changes `user`'s password. Signed in as that user or as an administrator. */
  setPassword(connection: C, user: string, password: string, scope?: string): Promise<void>;
  userExists(connection: C, user: string, scope?: string): Promise<boolean>;
  /** Creates `user` with `password` and the privileges of `like`, atomically. */
  createUserLike(
    connection: C,
    user: string,
    password: string,
    like: string,
    scope?: string,
  ): Promise<void>;
  /**
   * The scope of `user`'s account, read from the server (MySQL: the host part), for servers
   * with `scopeField`. Throws InvalidSecretError naming `scopeField` when the name is
   * ambiguous (several accounts) and the secret must choose.
   */
  accountScope?(connection: C, user: string): Promise<string | undefined>;
  /**
   * The scope of the account `connection` is signed in as, as the server authenticated it
   * (MySQL: the host part of CURRENT_USER()), for servers with `scopeField`. A sign-in proves
   * only that account: another account of the same name must never borrow the proof.
   */
  signedInScope?(connection: C): Promise<string | undefined>;
  /**
   * Makes `user`'s privileges equal to `like`'s (grants, roles, account options), for
   * servers where a clone does not follow its original by itself. Idempotent. Resolves a short
   * description of each difference it fixed, for the log (never a secret).
   */
  syncPrivileges?(connection: C, user: string, like: string, scope?: string): Promise<string[]>;
  /**
   * Throws InvalidSecretError unless `clone` is a faithful clone of `original`: made from it
   * and holding no power the original lacks. Called before an existing alternate user's
   * password is changed, so that rotation never takes over an unrelated account.
   */
  verifyClone?(connection: C, clone: string, original: string, scope?: string): Promise<void>;
  /** A harmless query that proves the session works. */
  ping(connection: C): Promise<void>;
  /** Closes the connection; never throws. */
  close(connection: C): Promise<void>;
}
