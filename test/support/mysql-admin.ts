import mysql from 'mysql2/promise';

export { ALL_PUNCTUATION, randomName } from './pg-admin.js';

export interface MysqlLogin {
  host: string;
  port: number;
  user: string;
  password: string;
  /** TLS without verification (REQUIRE SSL accounts need it). */
  tls?: boolean;
}

/** An admin session for provisioning and inspecting a MySQL or MariaDB server. */
export class MysqlAdmin {
  readonly url: URL;
  private constructor(
    private readonly connection: mysql.Connection,
    url: string,
    readonly version: string,
  ) {
    this.url = new URL(url);
  }

  static async connect(url: string): Promise<MysqlAdmin> {
    const parsed = new URL(url);
    const connection = await mysql.createConnection({
      host: parsed.hostname,
      port: Number(parsed.port || 3306),
      user: decodeURIComponent(parsed.username),
      password: decodeURIComponent(parsed.password),
      database: parsed.pathname.slice(1) || undefined,
    });
    const [rows] = await connection.query<mysql.RowDataPacket[]>('SELECT VERSION() AS v');
    return new MysqlAdmin(connection, url, String(rows[0]?.v));
  }

  get mariadb(): boolean {
    return /mariadb/i.test(this.version);
  }
  get host(): string {
    return this.url.hostname;
  }
  get port(): number {
    return Number(this.url.port || 3306);
  }
  get username(): string {
    return decodeURIComponent(this.url.username);
  }
  get password(): string {
    return decodeURIComponent(this.url.password);
  }
  get database(): string {
    return this.url.pathname.slice(1);
  }

  /** The secret engine matching the server. */
  get engine(): string {
    return this.mariadb ? 'mariadb' : 'mysql';
  }

  /**
   * The administrator as a master secret's value holds it (alternating users), optionally
   * reached through another port (a proxy). The test server is plaintext on loopback: the
   * master secret says so itself, as the function requires.
   */
  masterSecretValue(at: { host?: string; port?: number } = {}): string {
    return JSON.stringify({
      engine: this.engine,
      host: at.host ?? this.host,
      port: at.port ?? this.port,
      username: this.username,
      password: this.password,
      ssl: false,
    });
  }

  async query<T = mysql.RowDataPacket[]>(sql: string, values: unknown[] = []): Promise<T> {
    const [rows] = await this.connection.query(sql, values);
    return rows as T;
  }

  /** `'user'@'host'`, quoted by the driver. */
  account(user: string, host = '%'): string {
    return `${mysql.escape(user)}@${mysql.escape(host)}`;
  }

  id(name: string): string {
    return mysql.escapeId(name, true);
  }

  async createUser(user: string, password: string, host = '%'): Promise<void> {
    await this.query(`CREATE USER ${this.account(user, host)} IDENTIFIED BY ?`, [password]);
  }

  /** The host parts of a user name's accounts, sorted. */
  async hostsOf(user: string): Promise<string[]> {
    const rows = await this.query(
      'SELECT Host AS host FROM mysql.user WHERE User = ? ORDER BY Host',
      [user],
    );
    return rows.map((row) => String(row.host));
  }

  /** SHOW GRANTS of an account with its own name taken out, sorted: comparable across accounts. */
  async grantsOf(user: string, host = '%'): Promise<string[]> {
    const rows = await this.query(`SHOW GRANTS FOR ${this.account(user, host)}`);
    const self = `${this.id(user)}@${this.id(host)}`;
    return rows
      .map((row) => String(Object.values(row)[0]))
      .map((line) =>
        line
          .split(self)
          .join('<account>')
          .replace(/ IDENTIFIED BY PASSWORD '[^']*'/, ''),
      )
      .sort();
  }

  /**
   * Every account whose user name starts with `prefix`, sorted: `user` at host '%', else
   * `user@host`, so an account at an unexpected host part shows.
   */
  async accountsLike(prefix: string): Promise<string[]> {
    const rows = await this.query(
      'SELECT User AS user, Host AS host FROM mysql.user WHERE LEFT(User, CHAR_LENGTH(?)) = ?',
      [prefix, prefix],
    );
    return rows
      .map((row) => (row.host === '%' ? String(row.user) : `${row.user}@${row.host}`))
      .sort();
  }

  /** mysql.user columns of an account (TLS requirement, limits, plugin, stored hash). */
  async userRow(user: string, host = '%'): Promise<Record<string, unknown> | undefined> {
    const rows = await this.query(
      `SELECT plugin, authentication_string AS hash, CONVERT(ssl_type USING utf8mb4) AS sslType,
              CONVERT(ssl_cipher USING utf8mb4) AS sslCipher, CONVERT(x509_issuer USING utf8mb4) AS x509Issuer,
              CONVERT(x509_subject USING utf8mb4) AS x509Subject, max_questions AS maxQuestions,
              max_updates AS maxUpdates, max_connections AS maxConnections,
              max_user_connections AS maxUserConnections
         FROM mysql.user WHERE User = ? AND Host = ?`,
      [user, host],
    );
    return rows[0] ? { ...rows[0] } : undefined;
  }

  /** Open sessions of these users: the functions must leave none behind. */
  async sessionsOf(users: string[]): Promise<number> {
    if (users.length === 0) return 0;
    const rows = await this.query(
      'SELECT count(*) AS n FROM information_schema.PROCESSLIST WHERE USER IN (?)',
      [users],
    );
    return Number(rows[0]?.n);
  }

  /** Drops every account of these user names (and these roles), ignoring missing ones. */
  async dropUsers(users: string[]): Promise<void> {
    for (const user of users) {
      for (const host of await this.hostsOf(user)) {
        await this.query(`DROP USER IF EXISTS ${this.account(user, host)}`);
      }
    }
  }

  async close(): Promise<void> {
    await this.connection.end();
  }
}

/** Signs in as `login` and runs `sql`; resolves the rows, or rejects with the driver's error. */
export async function queryAs(
  login: MysqlLogin,
  sql = 'SELECT CURRENT_USER() AS account',
): Promise<Record<string, unknown>[]> {
  const connection = await mysql.createConnection({
    host: login.host,
    port: login.port,
    user: login.user,
    password: login.password,
    ...(login.tls ? { ssl: { rejectUnauthorized: false } } : {}),
  });
  connection.on('error', () => {});
  try {
    const [rows] = await connection.query(sql);
    return (rows as Record<string, unknown>[]).map((row) => ({ ...row }));
  } finally {
    await connection.end();
  }
}

/** True when the credentials sign in, false when the server refuses them (1045). */
export async function signsIn(login: MysqlLogin): Promise<boolean> {
  try {
    await queryAs(login);
    return true;
  } catch (error) {
    if ((error as { errno?: number }).errno === 1045) return false;
    throw error;
  }
}
