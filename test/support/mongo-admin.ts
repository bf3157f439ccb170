import { type Document, MongoClient } from 'mongodb';
import type { RoleGrant } from '../../shared/databases/mongodb.js';

/** Where a MongoDB server is and how its administrator signs in, from a mongodb:// URL. */
export interface MongoEndpoint {
  host: string;
  port: number;
  username: string;
  password: string;
  authSource: string;
}

export function parseMongoUrl(url: string): MongoEndpoint {
  const parsed = new URL(url);
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, ''),
    port: Number(parsed.port || 27017),
    username: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    authSource:
      parsed.searchParams.get('authSource') ??
      (parsed.pathname.length > 1 ? decodeURIComponent(parsed.pathname.slice(1)) : 'admin'),
  };
}

export interface MongoLogin {
  host: string;
  port: number;
  user: string;
  password: string;
  /** Authentication database (default admin). */
  database?: string;
  tls?: { ca?: string; insecure?: boolean };
}

/** A plain driver client for a login: straight to the host, as the adapter does. */
export function clientFor(login: MongoLogin, timeoutMs = 5_000): MongoClient {
  const host = login.host.includes(':') ? `[${login.host}]` : login.host;
  return new MongoClient(`mongodb://${host}:${login.port}/`, {
    auth: { username: login.user, password: login.password },
    authSource: login.database ?? 'admin',
    directConnection: true,
    retryWrites: false,
    serverSelectionTimeoutMS: timeoutMs,
    connectTimeoutMS: timeoutMs,
    ...(login.tls
      ? {
          tls: true,
          ...(login.tls.ca ? { ca: login.tls.ca } : {}),
          ...(login.tls.insecure ? { tlsInsecure: true } : {}),
        }
      : {}),
  });
}

/** Signs in as `login` and runs `command` in its authentication database. */
export async function commandAs(login: MongoLogin, command: Document): Promise<Document> {
  const client = clientFor(login);
  try {
    await client.connect();
    return await client.db(login.database ?? 'admin').command(command);
  } finally {
    await client.close();
  }
}

/** True when the credentials sign in, false when the server refuses them (code 18). */
export async function signsIn(login: MongoLogin): Promise<boolean> {
  try {
    // connectionStatus, not ping: FerretDB answers ping without authentication.
    const status = await commandAs(login, { connectionStatus: 1 });
    const users = (status.authInfo?.authenticatedUsers ?? []) as { user: string }[];
    return users.some((entry) => entry.user === login.user);
  } catch (error) {
    if ((error as { code?: unknown }).code === 18) return false;
    throw error;
  }
}

/** An administrator session for provisioning and inspecting the server. */
export class MongoAdmin {
  private constructor(
    private readonly client: MongoClient,
    readonly endpoint: MongoEndpoint,
  ) {}

  static async connect(url: string): Promise<MongoAdmin> {
    const endpoint = parseMongoUrl(url);
    const client = clientFor({
      host: endpoint.host,
      port: endpoint.port,
      user: endpoint.username,
      password: endpoint.password,
      database: endpoint.authSource,
    });
    await client.connect();
    return new MongoAdmin(client, endpoint);
  }

  get host(): string {
    return this.endpoint.host;
  }
  get port(): number {
    return this.endpoint.port;
  }
  get username(): string {
    return this.endpoint.username;
  }
  get password(): string {
    return this.endpoint.password;
  }
  get authSource(): string {
    return this.endpoint.authSource;
  }

  /** The administrator as a master secret's value holds it (alternating users). */
  masterSecretValue(): string {
    return JSON.stringify({
      engine: 'mongo',
      host: this.host,
      port: this.port,
      username: this.username,
      password: this.password,
      dbname: this.authSource,
      ssl: false,
    });
  }

  command(command: Document, db = 'admin'): Promise<Document> {
    return this.client.db(db).command(command);
  }

  async createUser(
    name: string,
    password: string,
    options: { db?: string; roles?: RoleGrant[]; customData?: Document } = {},
  ): Promise<void> {
    await this.command(
      {
        createUser: name,
        pwd: password,
        roles: options.roles ?? [],
        ...(options.customData ? { customData: options.customData } : {}),
      },
      options.db,
    );
  }

  /**
   * A role that lets its holder change its own password, in `db`, as MongoDB's documentation
   * advises for single-user rotation (no built-in role below the administrative ones has it).
   */
  async changeOwnPasswordRole(db = 'admin'): Promise<RoleGrant> {
    const role = 'rotationChangeOwnPassword';
    try {
      await this.command(
        {
          createRole: role,
          privileges: [{ resource: { db, collection: '' }, actions: ['changeOwnPassword'] }],
          roles: [],
        },
        db,
      );
    } catch (error) {
      if ((error as { code?: unknown }).code !== 51002) throw error; // role exists already
    }
    return { role, db };
  }

  async userInfo(name: string, db = 'admin'): Promise<Document | undefined> {
    const answer = await this.command({ usersInfo: { user: name, db } }, db);
    return (answer.users as Document[]).find((user) => user.user === name && user.db === db);
  }

  async userExists(name: string, db = 'admin'): Promise<boolean> {
    return (await this.userInfo(name, db)) !== undefined;
  }

  /** Role grants of a user, sorted as `role@db`. */
  async rolesOf(name: string, db = 'admin'): Promise<string[]> {
    const info = await this.userInfo(name, db);
    if (!info) throw new Error(`no user ${name}@${db}`);
    return (info.roles as RoleGrant[]).map((grant) => `${grant.role}@${grant.db}`).sort();
  }

  /** User names of a database that start with `prefix`, sorted: the "users before and after". */
  async usersLike(prefix: string, db = 'admin'): Promise<string[]> {
    const answer = await this.command({ usersInfo: 1 }, db);
    return (answer.users as Document[])
      .map((user) => user.user as string)
      .filter((name) => name.startsWith(prefix))
      .sort();
  }

  /** The stored SCRAM credentials: prove a password did or did not change. */
  async credentialsOf(names: string[], db = 'admin'): Promise<Record<string, string>> {
    const result: Record<string, string> = {};
    for (const name of names) {
      const answer = await this.command(
        { usersInfo: { user: name, db }, showCredentials: true },
        db,
      );
      result[name] = JSON.stringify((answer.users as Document[])[0]?.credentials ?? null);
    }
    return result;
  }

  async dropUsers(names: string[], db = 'admin'): Promise<void> {
    for (const name of names) {
      if (await this.userExists(name, db)) await this.command({ dropUser: name }, db);
    }
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
