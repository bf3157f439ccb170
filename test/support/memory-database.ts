import {
  AuthenticationError,
  type ConnectionError,
  DatabaseError,
} from '../../shared/common/errors.js';
import type { Database, Login } from '../../shared/databases/types.js';
import type { FakeSecretsManager } from './fake-secrets-manager.js';

interface MemoryConnection {
  id: number;
  user: string;
  host: string;
}

interface MemoryUser {
  password: string;
  superuser: boolean;
  memberOf: string[];
}

/**
 * A database double for unit tests (no network): users with passwords on named hosts, the
 * same error classes a real adapter throws, and a record of every action. Integration tests
 * use a real PostgreSQL instead.
 */
export class MemoryDatabase implements Database<MemoryConnection> {
  readonly name = 'MemoryDB';
  readonly engines = ['postgres', 'aurora-postgresql'] as const;
  readonly defaultPort = 5432;
  readonly defaultDatabase = 'postgres';
  readonly maxUsernameLength = 63;

  /** host → user → account */
  private readonly hosts = new Map<string, Map<string, MemoryUser>>();
  private readonly faults: ConnectionError[] = [];
  private nextId = 1;
  readonly open = new Set<number>();
  /** Every attempt and change, in order, without passwords. */
  readonly actions: string[] = [];
  /** Every login attempted, TLS mode included (passwords left out). */
  readonly logins: Omit<Login, 'password'>[] = [];
  /** When set, the next setPassword fails with this message (drivers may quote input). */
  failSetPassword?: string;
  /** When set, ping fails: a session that signs in but cannot work. */
  failPing = false;

  addUser(
    host: string,
    user: string,
    password: string,
    options: { superuser?: boolean; memberOf?: string[] } = {},
  ): this {
    let users = this.hosts.get(host);
    if (!users) {
      users = new Map();
      this.hosts.set(host, users);
    }
    users.set(user, {
      password,
      superuser: options.superuser ?? false,
      memberOf: options.memberOf ?? [],
    });
    return this;
  }

  passwordOf(host: string, user: string): string | undefined {
    return this.hosts.get(host)?.get(user)?.password;
  }

  user(host: string, user: string): MemoryUser | undefined {
    return this.hosts.get(host)?.get(user);
  }

  /** The next connection attempts fail with these errors, in order. */
  failNextConnect(...errors: ConnectionError[]): void {
    this.faults.push(...errors);
  }

  async connect(login: Login): Promise<MemoryConnection> {
    this.actions.push(`connect ${login.user}@${login.host}`);
    const { password: _password, ...rest } = login;
    this.logins.push(rest);
    const fault = this.faults.shift();
    if (fault) throw fault;
    const account = this.hosts.get(login.host)?.get(login.user);
    if (!account || account.password !== login.password) {
      throw new AuthenticationError(`${this.name} at ${login.host} refused user "${login.user}"`);
    }
    const connection = { id: this.nextId++, user: login.user, host: login.host };
    this.open.add(connection.id);
    return connection;
  }

  async setPassword(connection: MemoryConnection, user: string, password: string): Promise<void> {
    const account = this.requireAllowed(connection, user);
    if (this.failSetPassword !== undefined) {
      const message = this.failSetPassword;
      this.failSetPassword = undefined;
      throw new DatabaseError(message);
    }
    account.password = password;
    this.actions.push(`set password ${user}@${connection.host} as ${connection.user}`);
  }

  async userExists(connection: MemoryConnection, user: string): Promise<boolean> {
    return this.hosts.get(connection.host)?.has(user) ?? false;
  }

  async createUserLike(
    connection: MemoryConnection,
    user: string,
    password: string,
    like: string,
  ): Promise<void> {
    if (!this.user(connection.host, connection.user)?.superuser) {
      throw new DatabaseError(`permission denied to create user "${user}"`);
    }
    if (this.user(connection.host, user)) throw new DatabaseError(`user "${user}" already exists`);
    this.addUser(connection.host, user, password, { memberOf: [like] });
    this.actions.push(`create ${user}@${connection.host} like ${like}`);
  }

  /** Grants of each user, for servers whose clones must be reconciled (MySQL, MongoDB). */
  readonly grants = new Map<string, string[]>();

  async syncPrivileges(
    connection: MemoryConnection,
    user: string,
    like: string,
  ): Promise<string[]> {
    if (!this.user(connection.host, connection.user)?.superuser) {
      throw new DatabaseError(`permission denied to grant to "${user}"`);
    }
    const want = this.grants.get(like) ?? [];
    const have = this.grants.get(user) ?? [];
    const changes = [
      ...want.filter((grant) => !have.includes(grant)).map((grant) => `granted ${grant}`),
      ...have.filter((grant) => !want.includes(grant)).map((grant) => `revoked ${grant}`),
    ];
    this.grants.set(user, [...want]);
    this.actions.push(`sync ${user}@${connection.host} like ${like}`);
    return changes;
  }

  async ping(connection: MemoryConnection): Promise<void> {
    if (!this.open.has(connection.id)) throw new DatabaseError('connection is closed');
    if (this.failPing) throw new DatabaseError('permission denied for the test query');
  }

  async close(connection: MemoryConnection): Promise<void> {
    this.open.delete(connection.id);
  }

  private requireAllowed(connection: MemoryConnection, user: string): MemoryUser {
    const account = this.user(connection.host, user);
    if (!account) throw new DatabaseError(`user "${user}" does not exist`);
    if (connection.user !== user && !this.user(connection.host, connection.user)?.superuser) {
      throw new DatabaseError(`permission denied to change user "${user}"`);
    }
    return account;
  }
}

/** The database host the unit suites' secrets name. */
export const UNIT_HOST = 'orders.cluster-abc.us-east-1.rds.amazonaws.com';

/** The secret value of user `app` on {@link UNIT_HOST}, with `overrides` applied. */
export const appSecretValue = (overrides: Record<string, unknown> = {}): string =>
  JSON.stringify({
    engine: 'postgres',
    host: UNIT_HOST,
    username: 'app',
    password: 'current-password-1',
    ...overrides,
  });

/**
 * The alternating-users starting point: user `app` and a superuser `root` on `host`, and a
 * master secret for `root` (with `master` applied). Resolves the master secret's ARN.
 */
export function seedMaster(
  db: MemoryDatabase,
  fake: FakeSecretsManager,
  host: string,
  master: Record<string, unknown> = {},
): string {
  db.addUser(host, 'app', 'current-password-1');
  db.addUser(host, 'root', 'master-password-1', { superuser: true });
  return fake.createSecret({
    name: 'master',
    secretString: JSON.stringify({
      engine: 'postgres',
      host,
      username: 'root',
      password: 'master-password-1',
      ...master,
    }),
  });
}
