import { type Document, MongoServerError, UUID } from 'mongodb';
import { AuthenticationError } from '../../shared/common/errors.js';
import type { MongoConnection, RoleGrant } from '../../shared/databases/mongodb.js';
import type { Login } from '../../shared/databases/types.js';

interface StoredUser {
  user: string;
  db: string;
  password: string;
  roles: RoleGrant[];
  customData?: Document;
  /** As createUser takes them: [{ clientSource: [...], serverAddress: [...] }, ...]. */
  authenticationRestrictions: Document[];
  userId: UUID;
}

const RESTRICTIONS_FLAG = 'showAuthenticationRestrictions';

/** A server error exactly as the driver builds it from the server's answer document. */
export const serverError = (code: number, codeName: string, errmsg: string): MongoServerError =>
  new MongoServerError({ ok: 0, errmsg, code, codeName });

/**
 * MongoDB's user administration for unit tests (no network): the commands the adapter sends
 * (usersInfo, createUser, updateUser, grantRolesToUser, revokeRolesFromUser, ping), answered
 * with the documents and errors a MongoDB 7/8 server returns, and a record of every command
 * (passwords left out). Servers that lack a feature are played by switching it off, with the
 * answer FerretDB 1.24 gives.
 */
export class MongoUserStore {
  private readonly users = new Map<string, StoredUser>();
  /** Every command received, as `database: command-name user`, in order. */
  readonly commands: string[] = [];
  /** Every command document received, with pwd replaced by "***". */
  readonly documents: Document[] = [];
  /** Off: roles other than [] and customData are answered NotImplemented, as FerretDB 1.x does. */
  features = { roles: true, customData: true, restrictions: true };
  /** The next command fails with this error. */
  failNext?: MongoServerError;

  private key = (user: string, db: string) => `${db}.${user}`;

  addUser(
    user: string,
    password: string,
    options: {
      db?: string;
      roles?: RoleGrant[];
      customData?: Document;
      authenticationRestrictions?: Document[];
    } = {},
  ): this {
    const db = options.db ?? 'admin';
    this.users.set(this.key(user, db), {
      user,
      db,
      password,
      roles: options.roles ?? [],
      ...(options.customData ? { customData: options.customData } : {}),
      authenticationRestrictions: options.authenticationRestrictions ?? [],
      userId: new UUID(),
    });
    return this;
  }

  user(user: string, db = 'admin'): StoredUser | undefined {
    return this.users.get(this.key(user, db));
  }

  rolesOf(user: string, db = 'admin'): string[] {
    return (this.user(user, db)?.roles ?? []).map((r) => `${r.role}@${r.db}`).sort();
  }

  /** Signs in as the adapter's connect would, and returns its kind of connection. */
  connect(login: Login): MongoConnection {
    const stored = this.user(login.user, login.database);
    if (!stored || stored.password !== login.password) {
      throw new AuthenticationError(`MongoUserStore refused "${login.user}"`);
    }
    return {
      client: { close: async () => {} },
      users: this.database(login.usersDatabase ?? login.database),
      user: login.user,
    };
  }

  /** A `Db` stand-in for one database: `command` and `databaseName`, as the adapter uses. */
  database(databaseName: string): MongoConnection['users'] {
    return {
      databaseName,
      command: async (command: Document) => this.run(databaseName, command),
    };
  }

  private run(db: string, command: Document): Document {
    const name = Object.keys(command)[0] as string;
    this.commands.push(
      `${db}: ${name} ${typeof command[name] === 'string' ? command[name] : ''}`.trim(),
    );
    this.documents.push({ ...command, ...('pwd' in command ? { pwd: '***' } : {}) });
    if (this.failNext) {
      const error = this.failNext;
      this.failNext = undefined;
      throw error;
    }
    switch (name) {
      case 'ping':
        return { ok: 1 };
      case 'usersInfo':
        return this.usersInfo(db, command);
      case 'createUser':
        return this.createUser(db, command);
      case 'updateUser':
        return this.updateUser(db, command);
      case 'grantRolesToUser':
      case 'revokeRolesFromUser':
        return this.changeRoles(db, name, command);
      default:
        throw serverError(59, 'CommandNotFound', `no such command: '${name}'`);
    }
  }

  private usersInfo(db: string, command: Document): Document {
    if (!this.features.restrictions && RESTRICTIONS_FLAG in command) {
      // A server without the notion refusing the flag (an answer made up for the test: it names the field).
      throw serverError(303, 'Location303', `Field '${RESTRICTIONS_FLAG}' is not supported`);
    }
    const wanted = command.usersInfo as { user: string; db: string } | string;
    const [user, userDb] = typeof wanted === 'string' ? [wanted, db] : [wanted.user, wanted.db];
    const found = this.user(user, userDb);
    return {
      users: found
        ? [
            {
              _id: `${found.db}.${found.user}`,
              userId: found.userId,
              user: found.user,
              db: found.db,
              ...(found.customData ? { customData: found.customData } : {}),
              roles: found.roles.map((r) => ({ ...r })),
              mechanisms: ['SCRAM-SHA-1', 'SCRAM-SHA-256'],
              // MongoDB answers both arrays only when asked (roles here carry none).
              ...(command.showAuthenticationRestrictions === true
                ? {
                    authenticationRestrictions: found.authenticationRestrictions,
                    inheritedAuthenticationRestrictions: [],
                  }
                : {}),
            },
          ]
        : [],
      ok: 1,
    };
  }

  private notImplemented(command: string, field: string): MongoServerError {
    return serverError(
      238,
      'NotImplemented',
      `${command}: support for field "${field}" with non-default value is not implemented yet`,
    );
  }

  private createUser(db: string, command: Document): Document {
    const user = command.createUser as string;
    const roles = (command.roles ?? []) as RoleGrant[];
    if (!this.features.roles && roles.length > 0) throw this.notImplemented('createUser', 'roles');
    if (!this.features.customData && command.customData !== undefined)
      throw this.notImplemented('createUser', 'customData');
    if (this.user(user, db)) {
      throw serverError(51003, 'Location51003', `User "${user}@${db}" already exists`);
    }
    this.addUser(user, command.pwd as string, {
      db,
      roles: roles.map((r) => ({ role: r.role, db: r.db })),
      ...(command.customData ? { customData: command.customData as Document } : {}),
      ...(Array.isArray(command.authenticationRestrictions)
        ? { authenticationRestrictions: command.authenticationRestrictions as Document[] }
        : {}),
    });
    return { ok: 1 };
  }

  private updateUser(db: string, command: Document): Document {
    const stored = this.user(command.updateUser as string, db);
    if (!stored) {
      throw serverError(
        11,
        'UserNotFound',
        `Could not find user "${command.updateUser}" for db "${db}"`,
      );
    }
    if (typeof command.pwd === 'string') stored.password = command.pwd;
    if (Array.isArray(command.authenticationRestrictions)) {
      stored.authenticationRestrictions = command.authenticationRestrictions as Document[];
    }
    return { ok: 1 };
  }

  private changeRoles(db: string, name: string, command: Document): Document {
    const stored = this.user(command[name] as string, db);
    if (!stored) {
      throw serverError(
        11,
        'UserNotFound',
        `Could not find user "${command[name]}" for db "${db}"`,
      );
    }
    if (!this.features.roles)
      throw serverError(59, 'CommandNotFound', `no such command: '${name}'`);
    const grants = command.roles as RoleGrant[];
    const same = (a: RoleGrant, b: RoleGrant) => a.role === b.role && a.db === b.db;
    if (name === 'grantRolesToUser') {
      for (const grant of grants) {
        if (!stored.roles.some((r) => same(r, grant))) stored.roles.push({ ...grant });
      }
    } else {
      stored.roles = stored.roles.filter((r) => !grants.some((grant) => same(r, grant)));
    }
    return { ok: 1 };
  }
}
