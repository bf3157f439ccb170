import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** A random identifier-safe suffix, so tests never collide and re-run on a dirty server. */
export const randomName = (prefix: string): string => `${prefix}_${randomBytes(5).toString('hex')}`;

/** Every punctuation character GetRandomPassword may produce. */
export const ALL_PUNCTUATION = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';

/** A superuser session for provisioning and inspecting the server. */
export class PgAdmin {
  readonly url: URL;
  private constructor(
    private readonly client: pg.Client,
    url: string,
  ) {
    this.url = new URL(url);
  }

  static async connect(url: string): Promise<PgAdmin> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    return new PgAdmin(client, url);
  }

  get host(): string {
    return this.url.hostname;
  }
  get port(): number {
    return Number(this.url.port || 5432);
  }
  get username(): string {
    return decodeURIComponent(this.url.username);
  }
  get password(): string {
    return decodeURIComponent(this.url.password);
  }

  /**
   * A PostgreSQL secret value for a user of this server, as JSON. The test server is plaintext
   * on loopback, so the value says `"ssl": false`; `extra` adds or overrides fields.
   */
  secretValue(username: string, password: string, extra: Record<string, unknown> = {}): string {
    return JSON.stringify({
      engine: 'postgres',
      host: this.host,
      port: this.port,
      username,
      password,
      ssl: false,
      ...extra,
    });
  }

  /** This administrator as a master secret's value holds it (alternating users). */
  masterSecretValue(extra: Record<string, unknown> = {}): string {
    return this.secretValue(this.username, this.password, extra);
  }

  query(sql: string, values?: unknown[]) {
    return this.client.query(sql, values);
  }

  ident(name: string): string {
    return this.client.escapeIdentifier(name);
  }

  /** Creates a login role with a password (stored as SCRAM by the server). */
  async createUser(
    name: string,
    password: string,
    options: { createRole?: boolean } = {},
  ): Promise<void> {
    await this.query(
      `CREATE ROLE ${this.ident(name)} WITH LOGIN ${options.createRole ? 'CREATEROLE' : ''} PASSWORD ${this.client.escapeLiteral(password)}`,
    );
  }

  async userExists(name: string): Promise<boolean> {
    return (
      ((await this.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount ?? 0) > 0
    );
  }

  /** Role names with a prefix, sorted: the "users before and after" snapshot. */
  async rolesLike(prefix: string): Promise<string[]> {
    const result = await this.query(
      'SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY rolname',
      [prefix],
    );
    return result.rows.map((row) => row.rolname as string);
  }

  /** The stored password hashes of some roles: proves a password did or did not change. */
  async passwordHashes(names: string[]): Promise<Record<string, string | null>> {
    const result = await this.query(
      'SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY($1) ORDER BY rolname',
      [names],
    );
    return Object.fromEntries(result.rows.map((row) => [row.rolname, row.rolpassword]));
  }

  /** Open sessions of these users: the functions must leave none behind. */
  async sessionsOf(names: string[]): Promise<number> {
    const result = await this.query(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = ANY($1)',
      [names],
    );
    return result.rows[0].n as number;
  }

  async dropUsers(names: string[]): Promise<void> {
    for (const name of names) {
      if (!(await this.userExists(name))) continue;
      await this.query(`DROP OWNED BY ${this.ident(name)} CASCADE`);
      await this.query(`DROP ROLE ${this.ident(name)}`);
    }
  }

  async close(): Promise<void> {
    await this.client.end();
  }
}

/** Signs in as `user` and runs `sql`; resolves the rows, or rejects with the driver's error. */
export async function queryAs(
  login: { host: string; port: number; user: string; password: string; database?: string },
  sql = 'SELECT current_user AS user',
): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ ...login, database: login.database ?? 'postgres', ssl: false });
  client.on('error', () => {});
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

/** True when the credentials sign in, false when the server refuses them (28P01). */
export async function signsIn(login: {
  host: string;
  port: number;
  user: string;
  password: string;
  database?: string;
}): Promise<boolean> {
  try {
    await queryAs(login);
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === '28P01') return false;
    throw error;
  }
}
