import {
  type Document,
  MongoNetworkError,
  MongoNetworkTimeoutError,
  MongoOperationTimeoutError,
  MongoServerSelectionError,
  type TopologyDescription,
} from 'mongodb';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  AuthenticationError,
  ConfigurationError,
  ConnectionError,
  ConnectTimeoutError,
  DatabaseError,
  HostUnreachableError,
  InvalidSecretError,
  TlsError,
  UserExistsError,
} from '../../shared/common/errors.js';
import {
  CLONE_MARKER,
  classifyMongoError,
  createMongoDb,
  type MongoConnection,
} from '../../shared/databases/mongodb.js';
import type { Database, Login } from '../../shared/databases/types.js';
import { createRotationHandler } from '../../shared/rotation/handler.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';
import { parseDatabaseSecret } from '../../shared/strategies/database-secret.js';
import { singleUser } from '../../shared/strategies/single-user.js';
import { FakeSecretsManager, mockSecretsManager } from '../support/fake-secrets-manager.js';
import { LogRecorder } from '../support/log-recorder.js';
import { MongoUserStore, serverError } from '../support/mongo-user-store.js';
import { rotate } from '../support/rotation-driver.js';
import { mongoLogin } from '../support/sample-logins.js';

const login = mongoLogin;

/** A socket error as Node reports it. */
const socketError = (code: string, message = code) => Object.assign(new Error(message), { code });

/**
 * The error MongoClient.connect() throws when no server could be selected: the monitor's last
 * error sits in the topology description's `servers` (and, since driver 6, in `cause`). The
 * description classes are not exported at run time: this is their public shape.
 */
function selectionError(monitorError?: Error): MongoServerSelectionError {
  const address = `${login.host}:27017`;
  const reason = {
    type: 'Single',
    servers: new Map([[address, { address, type: 'Unknown', error: monitorError ?? null }]]),
  } as unknown as TopologyDescription;
  const message = monitorError?.message ?? 'Server selection timed out after 10000 ms';
  return new MongoServerSelectionError(message, reason);
}

describe('mongodb failure classification', () => {
  it.each([
    [
      'a wrong password (18 AuthenticationFailed)',
      serverError(18, 'AuthenticationFailed', 'Authentication failed.'),
      AuthenticationError,
    ],
    [
      'a mechanism the user has no credentials for (334 MechanismUnavailable)',
      serverError(
        334,
        'MechanismUnavailable',
        'Unable to use SCRAM-SHA-256 based authentication for user without any SCRAM-SHA-256 credentials registered',
      ),
      AuthenticationError,
    ],
    [
      'refused connections (monitor error inside a server selection timeout)',
      selectionError(
        new MongoNetworkError('connect ECONNREFUSED 10.0.0.1:27017', {
          cause: socketError('ECONNREFUSED'),
        }),
      ),
      HostUnreachableError,
    ],
    [
      'an unknown host',
      selectionError(
        new MongoNetworkError('getaddrinfo ENOTFOUND db', { cause: socketError('ENOTFOUND') }),
      ),
      HostUnreachableError,
    ],
    ['a server selection timeout with no monitor error', selectionError(), ConnectTimeoutError],
    [
      'a socket timeout',
      new MongoNetworkTimeoutError('connection timed out', { cause: socketError('ETIMEDOUT') }),
      ConnectTimeoutError,
    ],
    [
      'a TCP connect timeout of the pre-check',
      socketError('ETIMEDOUT', 'TCP connect timed out after 10000 ms'),
      ConnectTimeoutError,
    ],
    [
      'a TLS-only server dropping the handshake',
      new MongoNetworkError(
        'Client network socket disconnected before secure TLS connection was established',
      ),
      TlsError,
    ],
    [
      'an untrusted certificate',
      socketError('SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain'),
      TlsError,
    ],
    [
      'a host name mismatch',
      socketError(
        'ERR_TLS_CERT_ALTNAME_INVALID',
        "Hostname/IP does not match certificate's altnames",
      ),
      TlsError,
    ],
    [
      'a server shutting down (91 ShutdownInProgress)',
      serverError(91, 'ShutdownInProgress', 'The server is in quiesce mode and will shut down'),
      ConnectionError,
    ],
    [
      "a password the driver's SASLprep refuses to send (never a server problem to retry)",
      new Error('Prohibited character, see https://tools.ietf.org/html/rfc4013#section-2.3'),
      InvalidSecretError,
    ],
    [
      'a command the user may not run (13 Unauthorized)',
      serverError(13, 'Unauthorized', 'not authorized on admin to execute command { ping: 1 }'),
      DatabaseError,
    ],
    [
      'refused connections (a socket error of its own)',
      socketError('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.1:27017'),
      HostUnreachableError,
    ],
    [
      'both address families refused',
      new AggregateError([socketError('ECONNREFUSED')]),
      HostUnreachableError,
    ],
    [
      'a TLS handshake timeout',
      socketError('ERR_TLS_HANDSHAKE_TIMEOUT', 'TLS handshake'),
      TlsError,
    ],
    [
      'plaintext answered to a TLS client',
      socketError('ERR_SSL_WRONG_VERSION_NUMBER', 'wrong version number'),
      TlsError,
    ],
    ['a TLS protocol error', socketError('EPROTO', 'write EPROTO'), TlsError],
    [
      'a socket timeout with a bare message',
      socketError('ETIMEDOUT', 'connect failed'),
      ConnectTimeoutError,
    ],
    [
      'a network timeout with a bare message',
      new MongoNetworkTimeoutError('socket idle'),
      ConnectTimeoutError,
    ],
    ['a message saying timeout', new Error('server heartbeat timeout'), ConnectTimeoutError],
    [
      'a server selection error without a topology description',
      Object.assign(new Error('no server'), { name: 'MongoServerSelectionError' }),
      ConnectTimeoutError,
    ],
    [
      'a server selection error whose topology description lists no servers',
      Object.assign(new Error('no server'), {
        name: 'MongoServerSelectionError',
        reason: { type: 'Unknown' },
      }),
      ConnectTimeoutError,
    ],
    ['an unknown failure', new Error('connection closed'), ConnectionError],
    ['an unknown socket code', Object.assign(new Error('odd'), { code: 'EODD' }), ConnectionError],
  ])('classifies %s', (_, error, type) => {
    const classified = classifyMongoError(error, login);
    expect(classified).toBeInstanceOf(type);
    // Exactly that class: a subclass (TLS, timeout, unreachable) is handled differently.
    expect(classified.constructor).toBe(type);
    expect(classified.message).toContain('as user "app"');
    expect(classified.message).toContain(`${login.host}:27017`);
    expect(classified.cause).toBe(error);
    // What a strategy acts on: which field is bad, or which kind of connection failure.
    if (type === InvalidSecretError)
      expect((classified as InvalidSecretError).field).toBe('password');
    if (type === ConnectionError)
      expect((classified as ConnectionError).failure).toBe('unavailable');
  });

  it('follows a cause chain five errors deep, no deeper', () => {
    const chain = (depth: number): Error => {
      let error: Error = socketError('ECONNREFUSED');
      for (let i = 0; i < depth; i++) error = new Error(`wrapper ${i}`, { cause: error });
      return error;
    };
    expect(classifyMongoError(chain(4), login).constructor).toBe(HostUnreachableError);
    expect(classifyMongoError(chain(5), login).constructor).toBe(ConnectionError);
  });

  it('only wrong credentials are authentication errors', () => {
    const others = [
      selectionError(
        new MongoNetworkError('connect ECONNREFUSED', { cause: socketError('ECONNREFUSED') }),
      ),
      selectionError(),
      serverError(13, 'Unauthorized', 'not authorized'),
      serverError(11600, 'InterruptedAtShutdown', 'interrupted at shutdown'),
    ];
    for (const error of others) {
      expect(classifyMongoError(error, login)).not.toBeInstanceOf(AuthenticationError);
    }
  });

  it('classifies a thrown value that is not an Error (undefined, null, a string)', () => {
    for (const thrown of [undefined, null, 'failure']) {
      const classified = classifyMongoError(thrown, login);
      expect(classified.constructor).toBe(ConnectionError);
      expect(classified.cause).toBe(thrown);
    }
  });

  it('ends on a cause chain that loops back on itself', () => {
    const error: Error & { cause?: unknown } = new Error('odd');
    error.cause = error;
    expect(classifyMongoError(error, login).constructor).toBe(ConnectionError);
  });

  it('names the server error code and its name', () => {
    expect(classifyMongoError(serverError(13, 'Unauthorized', 'no'), login).message).toContain(
      '(code 13 Unauthorized)',
    );
    const bare = Object.assign(new Error('no'), { code: 13 });
    expect(classifyMongoError(bare, login).message).toMatch(/\(code 13\)$/);
  });

  it('suggests dropping "ssl": false only for a plaintext connection the server closed', () => {
    const closed = new MongoNetworkError('connection 1 to 10.0.0.1:27017 closed');
    const hint = '"ssl": false';
    expect(classifyMongoError(closed, { ...login, tls: 'disable' }).message).toContain(hint);
    expect(classifyMongoError(closed, { ...login, tls: 'prefer' }).message).not.toContain(hint);
    // Without the hint, the message ends with the driver's own words.
    expect(classifyMongoError(closed, { ...login, tls: 'prefer' }).message).toMatch(/ closed$/);
    const refused = new Error('connection refused');
    expect(classifyMongoError(refused, { ...login, tls: 'disable' }).message).not.toContain(hint);
  });

  it('keeps the message whole when the password is empty (nothing to scrub)', () => {
    const classified = classifyMongoError(new Error('odd failure'), { ...login, password: '' });
    expect(classified.message).toContain('odd failure');
    expect(classified.message).not.toContain('***');
  });

  it('scrubs the password should a message ever quote it', () => {
    const classified = classifyMongoError(new Error(`odd failure near "${login.password}"`), login);
    expect(classified.message).not.toContain(login.password);
    expect(classified.message).toContain('***');
  });
});

describe('mongodb adapter options', () => {
  it.each([
    [{ connectTimeoutMs: 0 }, /connectTimeoutMs must be a positive number/],
    [{ tlsHandshakeTimeoutMs: Number.NaN }, /tlsHandshakeTimeoutMs must be a positive number/],
    [{ trustedCa: 'not a certificate' }, /trustedCa must hold PEM certificates/],
  ])('refuses %o when created, not mid-rotation', (options, message) => {
    expect(() => createMongoDb(options)).toThrow(ConfigurationError);
    expect(() => createMongoDb(options)).toThrow(message);
  });

  it('reads the engines, the default port 27017 and the default authentication database admin', () => {
    const db = createMongoDb();
    const parse = (value: object) => parseDatabaseSecret(JSON.stringify(value), 'AWSCURRENT', db);
    const secret = parse({ engine: 'docdb', host: 'h', username: 'app', password: 'p' });
    expect([secret.port, secret.dbname]).toEqual([27017, 'admin']);
    expect(
      parse({ engine: 'mongo', host: 'h', username: 'app', password: 'p', dbname: 'orders' })
        .dbname,
    ).toBe('orders');
    expect(() => parse({ engine: 'mysql', host: 'h', username: 'app', password: 'p' })).toThrow(
      /field "engine" is "mysql"; this function rotates MongoDB \(mongo, docdb\)/,
    );
  });

  it('refuses a host that is neither a name nor an IP address before connecting', async () => {
    const loadDriver = vi.fn();
    const db = createMongoDb({ loadDriver });
    for (const host of ['evil@other-host', 'a,b', 'h/path']) {
      const failure = await db.connect({ ...login, host }).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(InvalidSecretError);
      expect((failure as InvalidSecretError).field).toBe('host');
    }
    expect(loadDriver).not.toHaveBeenCalled();
  });

  it('takes an IPv6 address as a host: it tries to connect, and no field is refused', async () => {
    const db = createMongoDb({ loadDriver: vi.fn() });
    // Nothing listens on port 1 of the loopback: the connection fails, the secret does not.
    const failure = await db
      .connect({ ...login, host: '::1', port: 1, tls: 'disable' })
      .catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ConnectionError);
  });
});

describe('mongodb database names', () => {
  it.each([
    ['a dot (namespace separator)', 'orders.archive', /contains "\."/],
    ['a dollar (reserved: $external, $cmd)', '$external', /contains "\$"/],
    ['a slash', 'a/b', /contains "\/"/],
    ['a space', 'my orders', /contains " "/],
    ['a NUL', 'orders\u0000admin', /contains "\\u0000"/],
    ['64 bytes in UTF-8 (32 characters)', 'é'.repeat(32), /1 to 63 bytes long \(it has 64\)/],
    ['the empty name', '', /1 to 63 bytes long \(it has 0\)/],
  ])('refuses %s before any connection, naming dbname', async (_, name, message) => {
    const loadDriver = vi.fn();
    const db = createMongoDb({ loadDriver });
    for (const [target, which] of [
      [{ ...login, database: name }, 'the authentication database'],
      [{ ...login, database: 'admin', usersDatabase: name }, "the users' database"],
    ] as const) {
      const failure = await db.connect(target).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(InvalidSecretError);
      expect((failure as InvalidSecretError).field).toBe('dbname');
      expect(String(failure)).toMatch(message);
      // It says which of the two names is at fault.
      expect(String(failure)).toContain(`(${which}, `);
    }
    expect(loadDriver).not.toHaveBeenCalled();
  });
});

describe('mongodb user administration on MongoDB answers', () => {
  let store: MongoUserStore;
  const db = createMongoDb();
  const master = (): MongoConnection =>
    store.connect({ ...login, user: 'master', password: 'master-password-1', tls: 'disable' });

  beforeEach(() => {
    store = new MongoUserStore().addUser('master', 'master-password-1');
  });

  it('changes a password with one updateUser command document', async () => {
    // Prepare
    store.addUser('app', 'old-password-1');

    // Act
    await db.setPassword(master(), 'app', 'new-password-2');

    // Assess
    expect(store.user('app')?.password).toBe('new-password-2');
    expect(store.documents).toEqual([{ updateUser: 'app', pwd: '***' }]);
  });

  it('reports a missing user with the server code and never the password it was given', async () => {
    // Prepare: a server that quotes the command in its message.
    store.failNext = serverError(
      13,
      'Unauthorized',
      'not authorized on admin to execute command { updateUser: "app", pwd: "new-password-2" }',
    );

    // Act
    const failure = await db
      .setPassword(master(), 'app', 'new-password-2')
      .catch((e: unknown) => e);

    // Assess
    expect(failure).toBeInstanceOf(DatabaseError);
    expect((failure as Error).message).toMatch(
      /changing the password for user "app" in database "admin" failed: .*\(code 13 Unauthorized\)/,
    );
    expect((failure as Error).message).not.toContain('new-password-2');
  });

  it('takes user names as values, whatever they hold', async () => {
    // Prepare
    const name = '{"$ne": null}", pwd: "x';
    store.addUser(name, 'old-password-1').addUser('bystander', 'bystander-password-1');

    // Act
    await db.setPassword(master(), name, 'new-password-2');

    // Assess
    expect(store.user(name)?.password).toBe('new-password-2');
    expect(store.user('bystander')?.password).toBe('bystander-password-1');
    expect(await db.userExists(master(), name)).toBe(true);
    expect(await db.userExists(master(), 'nobody')).toBe(false);
  });

  it('creates the clone with the roles of the original and its mark, in one command', async () => {
    // Prepare
    store.addUser('app', 'app-password-1', {
      roles: [
        { role: 'readWrite', db: 'orders' },
        { role: 'read', db: 'reports' },
      ],
    });

    // Act
    await db.createUserLike(master(), 'app_clone', 'clone-password-1', 'app');

    // Assess
    expect(store.rolesOf('app_clone')).toEqual(['read@reports', 'readWrite@orders']);
    expect(store.user('app_clone')?.customData).toEqual({ [CLONE_MARKER]: 'app' });
    expect(store.commands.filter((c) => c.includes('createUser'))).toEqual([
      'admin: createUser app_clone',
    ]);
  });

  it('creates an unmarked clone where the server has no customData (as FerretDB 1.x answers)', async () => {
    // Prepare
    store.features.customData = false;
    store.addUser('app', 'app-password-1');

    // Act
    await db.createUserLike(master(), 'app_clone', 'clone-password-1', 'app');

    // Assess
    expect(store.user('app_clone')?.password).toBe('clone-password-1');
    expect(store.user('app_clone')?.customData).toBeUndefined();
  });

  it('fails clearly when the original is missing or the clone already exists', async () => {
    // Prepare
    store.addUser('app', 'app-password-1').addUser('app_clone', 'x-password-1');

    // Act
    const missing = await db
      .createUserLike(master(), 'ghost_clone', 'p-1', 'ghost')
      .catch((e: unknown) => e);
    const duplicate = await db
      .createUserLike(master(), 'app_clone', 'p-1', 'app')
      .catch((e: unknown) => e);

    // Assess
    expect(missing).toBeInstanceOf(DatabaseError);
    expect(String(missing)).toContain('no user "ghost" in database "admin"');
    // UserExistsError: an overlapping invocation made it; the strategy then treats it as existing.
    expect(duplicate).toBeInstanceOf(UserExistsError);
    expect(String(duplicate)).toContain(
      'MongoDB user "app_clone" exists already in database "admin"',
    );
    expect(String((duplicate as Error).cause)).toContain('(code 51003 Location51003)');
    expect(store.user('app_clone')?.password).toBe('x-password-1');
  });

  it('mirrors roles added to and removed from the original, revoking first', async () => {
    // Prepare
    store
      .addUser('app', 'p-1', {
        roles: [
          { role: 'readWrite', db: 'orders' },
          { role: 'read', db: 'audit' },
        ],
      })
      .addUser('app_clone', 'p-2', {
        roles: [
          { role: 'readWrite', db: 'orders' },
          { role: 'read', db: 'reports' },
        ],
        customData: { [CLONE_MARKER]: 'app' },
      });

    // Act
    const changes = await db.syncPrivileges?.(master(), 'app_clone', 'app');

    // Assess
    expect(changes).toEqual(['revoked role read@reports', 'granted role read@audit']);
    expect(store.rolesOf('app_clone')).toEqual(store.rolesOf('app'));
    expect(store.commands.slice(-2)).toEqual([
      'admin: revokeRolesFromUser app_clone',
      'admin: grantRolesToUser app_clone',
    ]);
  });

  it('sends no command when the roles already match', async () => {
    store.addUser('app', 'p-1', { roles: [{ role: 'read', db: 'orders' }] });
    store.addUser('app_clone', 'p-2', { roles: [{ role: 'read', db: 'orders' }] });
    expect(await db.syncPrivileges?.(master(), 'app_clone', 'app')).toEqual([]);
    expect(store.commands.every((c) => c.includes('usersInfo'))).toBe(true);
  });

  it.each([
    [
      'marked as its clone, even with roles the original lost since',
      { [CLONE_MARKER]: 'app' },
      ['dbAdmin@orders'],
      undefined,
    ],
    [
      'unmarked, with a subset of its roles (made by hand or by another tool)',
      undefined,
      [],
      undefined,
    ],
    [
      'unmarked, with a role the original lacks',
      undefined,
      ['root@admin'],
      /has roles "app" lacks \(root@admin\).*refusing to hand out its password/,
    ],
    [
      'marked as the clone of another user',
      { [CLONE_MARKER]: 'other' },
      [],
      /made as a clone of "other", not of "app"/,
    ],
  ])('verifies a <user>_clone %s', async (_, customData, extraRoles, refusal) => {
    // Prepare
    store.addUser('app', 'p-1', { roles: [{ role: 'read', db: 'orders' }] });
    store.addUser('app_clone', 'p-2', {
      roles: extraRoles.map((key) => {
        const [role, roleDb] = key.split('@') as [string, string];
        return { role, db: roleDb };
      }),
      ...(customData ? { customData } : {}),
    });

    // Act
    const outcome = await db.verifyClone?.(master(), 'app_clone', 'app').then(
      () => 'accepted',
      (e: unknown) => e,
    );

    // Assess
    if (refusal === undefined) expect(outcome).toBe('accepted');
    else {
      expect(outcome).toBeInstanceOf(InvalidSecretError);
      expect(String(outcome)).toMatch(refusal);
    }
  });
});

describe('mongodb clones and authenticationRestrictions (MongoDB answers; FerretDB has none)', () => {
  let store: MongoUserStore;
  const db = createMongoDb();
  const master = (): MongoConnection =>
    store.connect({ ...login, user: 'master', password: 'master-password-1', tls: 'disable' });
  const appNetwork = [{ clientSource: ['10.0.0.0/16'], serverAddress: ['10.0.1.5'] }];

  beforeEach(() => {
    store = new MongoUserStore().addUser('master', 'master-password-1');
  });

  it('creates the clone bound by the restrictions of the original', async () => {
    store.addUser('app', 'p-1', {
      roles: [{ role: 'read', db: 'orders' }],
      authenticationRestrictions: appNetwork,
    });

    await db.createUserLike(master(), 'app_clone', 'clone-password-1', 'app');

    expect(store.user('app_clone')?.authenticationRestrictions).toEqual(appNetwork);
  });

  it('refuses to take over an unmarked clone that may sign in from anywhere while the original may not', async () => {
    // Prepare: a look-alike with the same roles, made by hand, without the restrictions.
    store.addUser('app', 'p-1', {
      roles: [{ role: 'read', db: 'orders' }],
      authenticationRestrictions: appNetwork,
    });
    store.addUser('app_clone', 'p-2', { roles: [{ role: 'read', db: 'orders' }] });

    // Act
    const outcome = await db.verifyClone?.(master(), 'app_clone', 'app').then(
      () => 'accepted',
      (e: unknown) => e,
    );

    // Assess
    expect(outcome).toBeInstanceOf(InvalidSecretError);
    expect(String(outcome)).toMatch(/other authenticationRestrictions than "app".*refusing/);
    expect(store.user('app_clone')?.password).toBe('p-2');
  });

  it('brings a marked clone to the original restrictions before granting it a role', async () => {
    // Prepare: our clone, made before the original was restricted and given a role.
    store.addUser('app', 'p-1', {
      roles: [
        { role: 'read', db: 'orders' },
        { role: 'read', db: 'audit' },
      ],
      authenticationRestrictions: appNetwork,
    });
    store.addUser('app_clone', 'p-2', {
      roles: [{ role: 'read', db: 'orders' }],
      customData: { [CLONE_MARKER]: 'app' },
    });

    // Act
    const changes = await db.syncPrivileges?.(master(), 'app_clone', 'app');

    // Assess
    expect(changes).toEqual([
      'set authenticationRestrictions like "app"',
      'granted role read@audit',
    ]);
    expect(store.user('app_clone')?.authenticationRestrictions).toEqual(appNetwork);
    expect(store.commands.slice(-2)).toEqual([
      'admin: updateUser app_clone',
      'admin: grantRolesToUser app_clone',
    ]);
  });

  it.each([
    ['a megabyte string', 'x'.repeat(1_000_000), /clone of "x{128}…", not of "app"/],
    [
      'a deeply nested document',
      JSON.parse(`${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}`),
      /clone of a mark of type object/,
    ],
    ['an array', ['app'], /clone of a mark of type array/],
  ])(
    'names a foreign clone mark that is %s without quoting it whole',
    async (_, marker, message) => {
      store
        .addUser('app', 'p-1')
        .addUser('app_clone', 'p-2', { customData: { [CLONE_MARKER]: marker } });

      const outcome = await db.verifyClone?.(master(), 'app_clone', 'app').catch((e: unknown) => e);

      expect(outcome).toBeInstanceOf(InvalidSecretError);
      expect(String(outcome)).toMatch(message);
      expect(String(outcome).length).toBeLessThan(1_000);
    },
  );

  it('asks for restrictions in the same usersInfo, and does without where the server refuses the flag', async () => {
    store.features.restrictions = false;
    store.addUser('app', 'p-1');

    await db.createUserLike(master(), 'app_clone', 'clone-password-1', 'app');

    expect(store.user('app_clone')?.password).toBe('clone-password-1');
    expect(store.documents[0]).toMatchObject({ showAuthenticationRestrictions: true });
  });
});

describe('mongodb alternating users over MongoDB answers (roles, which FerretDB lacks)', () => {
  const fake = new FakeSecretsManager();
  const stub = mockSecretsManager(fake);
  const logs = new LogRecorder();
  let store: MongoUserStore;
  afterAll(() => stub.restore());

  /** The real adapter, signing in to the user store instead of a server. */
  const storeBacked = (): Database<MongoConnection> => ({
    ...createMongoDb(),
    connect: async (target: Login) => store.connect(target),
  });

  it('gives the clone the original roles and mirrors later changes over three rotations', async () => {
    // Prepare
    store = new MongoUserStore()
      .addUser('master', 'master-password-1')
      .addUser('app', 'app-password-1', {
        db: 'orders',
        roles: [{ role: 'readWrite', db: 'orders' }],
      });
    const masterArn = fake.createSecret({
      name: 'master',
      secretString: JSON.stringify({
        engine: 'docdb',
        host: 'h',
        username: 'master',
        password: 'master-password-1',
        dbname: 'admin',
      }),
    });
    const secretId = fake.createSecret({
      name: 'app',
      secretString: JSON.stringify({
        engine: 'docdb',
        host: 'h',
        username: 'app',
        password: 'app-password-1',
        dbname: 'orders',
        masterarn: masterArn,
      }),
    });
    const handler = createRotationHandler({
      strategy: alternatingUsers(storeBacked()),
      logger: logs,
      env: {},
    });
    const run = () =>
      rotate({
        fake,
        secretId,
        invoke: (e) => handler(e, { getRemainingTimeInMillis: () => 30_000 }),
      });

    // Act
    const first = await run();
    const rolesAfterFirst = store.rolesOf('app_clone', 'orders');
    store.user('app', 'orders')?.roles.push({ role: 'read', db: 'audit' });
    const second = await run();
    (store.user('app', 'orders') as { roles: unknown[] }).roles = [{ role: 'read', db: 'audit' }];
    const third = await run();

    // Assess
    expect([first.completed, second.completed, third.completed]).toEqual([true, true, true]);
    expect(rolesAfterFirst).toEqual(['readWrite@orders']);
    expect(store.rolesOf('app_clone', 'orders')).toEqual(['read@audit']);
    expect(store.user('app_clone', 'orders')?.customData).toEqual({ [CLONE_MARKER]: 'app' });
    expect(store.user('app_clone', 'admin')).toBeUndefined();
    // The clone is reconciled before any password changes, on every rotation after the first.
    const order = store.commands.filter((c) =>
      /createUser|updateUser|RolesFromUser|RolesToUser/.test(c),
    );
    expect(order).toEqual([
      'orders: createUser app_clone',
      'orders: grantRolesToUser app_clone',
      'orders: updateUser app',
      'orders: revokeRolesFromUser app_clone',
      'orders: updateUser app_clone',
    ]);
  });

  it('never loads the driver in createSecret and finishSecret', async () => {
    // Prepare
    const loadDriver = vi.fn(async () => {
      throw new Error('driver loaded');
    });
    const secretId = fake.createSecret({
      name: 'lazy',
      secretString: JSON.stringify({
        engine: 'mongo',
        host: 'h',
        username: 'app',
        password: 'p-1',
      }),
    });
    const handler = createRotationHandler({
      strategy: singleUser(createMongoDb({ loadDriver })),
      logger: logs,
      env: {},
    });
    const token = fake.startRotation(secretId);
    const invoke = (Step: 'createSecret' | 'finishSecret') =>
      handler(
        { Step, SecretId: fake.arnOf(secretId), ClientRequestToken: token },
        { getRemainingTimeInMillis: () => 30_000 },
      );

    // Act
    await invoke('createSecret');
    await invoke('finishSecret');

    // Assess
    expect(fake.valueOfVersion(secretId, token)).toBeDefined();
    expect(fake.versionOf(secretId, 'AWSCURRENT')).toBe(token);
    expect(loadDriver).not.toHaveBeenCalled();
  });
});

describe('mongodb commands bounded by the session deadline', () => {
  /** A server that never answers: only the command's signal ends the wait, as in the driver. */
  const silent = (deadline?: number): MongoConnection => ({
    client: { close: () => new Promise(() => {}) },
    users: {
      databaseName: 'admin',
      command: (_: unknown, options?: { signal?: AbortSignal }) =>
        new Promise((_resolve, reject) => {
          options?.signal?.addEventListener('abort', () => reject(options.signal?.reason));
        }),
    } as MongoConnection['users'],
    user: 'master',
    ...(deadline === undefined ? {} : { deadline }),
  });

  it('gives up on a command at the deadline with a timeout, never an authentication error', async () => {
    // Prepare
    const db = createMongoDb();
    const started = Date.now();

    // Act
    const failure = await db
      .setPassword(silent(started + 150), 'app', 'new-password-2')
      .catch((e: unknown) => e);

    // Assess
    expect(failure).toBeInstanceOf(ConnectTimeoutError);
    expect(String(failure)).toMatch(/no answer within \d+ ms/);
    expect(String(failure)).not.toContain('new-password-2');
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('without a deadline, bounds each command by operationTimeoutMs', async () => {
    const db = createMongoDb({ operationTimeoutMs: 100 });
    const started = Date.now();
    await expect(db.ping(silent())).rejects.toThrow(ConnectTimeoutError);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('closes within a second even if the close never completes', async () => {
    const db = createMongoDb();
    const started = Date.now();
    await db.close(silent(started + 60_000));
    expect(Date.now() - started).toBeLessThan(1_500);
  });
});

/**
 * The store's server behind a connection whose answers can be changed: `edit` rewrites a
 * usersInfo answer (a server answering other shapes than MongoDB's own), `fail` makes a command
 * fail instead of reaching the store (it gets the command and how many came before it).
 */
function served(
  store: MongoUserStore,
  change: {
    edit?: (answer: Document) => Document;
    fail?: (command: Document, index: number) => unknown;
  },
): MongoConnection {
  const base = store.connect({
    ...login,
    user: 'master',
    password: 'master-password-1',
    tls: 'disable',
  });
  let index = 0;
  const command = async (document: Document) => {
    const failure = change.fail?.(document, index++);
    if (failure !== undefined) {
      store.commands.push(`${base.users.databaseName}: ${Object.keys(document)[0]} (failed)`);
      throw failure;
    }
    const answer = await base.users.command(document);
    return 'usersInfo' in document && change.edit ? change.edit(answer) : answer;
  };
  return { ...base, users: { databaseName: base.users.databaseName, command } as never };
}

/** A `fail` for {@link served}: the first command named `name` fails with `error`. */
const firstOf = (name: string, error: unknown) => {
  let failed = false;
  return (command: Document) => {
    if (failed || !(name in command)) return undefined;
    failed = true;
    return error;
  };
};

const commandsNamed = (store: MongoUserStore, name: string) =>
  store.commands.filter((c) => c.split(' ')[1] === name);

describe('mongodb usersInfo answers of other shapes than expected', () => {
  let store: MongoUserStore;
  const db = createMongoDb();

  beforeEach(() => {
    store = new MongoUserStore().addUser('master', 'master-password-1');
  });

  it('never grants the clone a roles entry without a string role and db', async () => {
    // Prepare: an answer whose roles list holds, before the real grant, entries of every shape.
    store.addUser('app', 'p-1', { roles: [{ role: 'read', db: 'orders' }] });
    const malformed = [
      null,
      undefined, // BSON's deprecated undefined type decodes to it
      'readWrite',
      7,
      { role: 'dbAdmin' },
      { db: 'orders' },
      { role: 1, db: 'orders' },
      { role: 'root', db: { $ne: null } },
    ];
    const connection = served(store, {
      edit: (answer) => ({
        ...answer,
        users: (answer.users as Document[]).map((entry) =>
          entry.user === 'app' ? { ...entry, roles: [...malformed, ...entry.roles] } : entry,
        ),
      }),
    });

    // Act
    await db.createUserLike(connection, 'app_clone', 'clone-password-1', 'app');

    // Assess
    expect(store.rolesOf('app_clone')).toEqual(['read@orders']);
    expect(store.documents.find((d) => 'createUser' in d)?.roles).toEqual([
      { role: 'read', db: 'orders' },
    ]);
  });

  it('takes only the entry of our user in our database: a same-named user of another database is not ours', async () => {
    // Prepare: the answer lists, before ours, app of another database and another user of ours.
    store.addUser('app', 'p-1', { roles: [{ role: 'read', db: 'orders' }] });
    const strangers = [
      { user: 'app', db: 'reports', roles: [{ role: 'root', db: 'admin' }] },
      { user: 'other', db: 'admin', roles: [{ role: 'dbOwner', db: 'orders' }] },
    ];
    const connection = served(store, {
      edit: (answer) => ({ ...answer, users: [...strangers, ...(answer.users as Document[])] }),
    });

    // Act
    await db.createUserLike(connection, 'app_clone', 'clone-password-1', 'app');
    const ghostExists = await db.userExists(connection, 'ghost');

    // Assess
    expect(store.rolesOf('app_clone')).toEqual(['read@orders']);
    expect(ghostExists).toBe(false);
  });

  it('reports a usersInfo refusal that is not about the restrictions flag, without retrying it', async () => {
    // Prepare
    store.addUser('app', 'p-1');
    store.failNext = serverError(
      13,
      'Unauthorized',
      'not authorized on admin to execute command { usersInfo: { user: "app", db: "admin" } }',
    );

    // Act
    const failure = await db.userExists(served(store, {}), 'app').catch((e: unknown) => e);

    // Assess
    expect((failure as Error).constructor).toBe(DatabaseError);
    expect(String(failure)).toMatch(/looking up for user "app"/);
    expect(commandsNamed(store, 'usersInfo')).toHaveLength(1);
  });

  it('names the look-up when the retry without the restrictions flag fails too', async () => {
    // Prepare: a server without the notion, whose second usersInfo fails.
    store.features.restrictions = false;
    store.addUser('app', 'p-1');
    const connection = served(store, {
      fail: (_, index) =>
        index === 1 ? serverError(13, 'Unauthorized', 'not authorized on admin') : undefined,
    });

    // Act
    const failure = await db.userExists(connection, 'app').catch((e: unknown) => e);

    // Assess
    expect((failure as Error).constructor).toBe(DatabaseError);
    expect(String(failure)).toMatch(/looking up for user "app"/);
  });

  it('never sends authenticationRestrictions for an original that has none', async () => {
    // Prepare: one server that answers the flag (with []), one that refuses it.
    store.addUser('app', 'p-1');
    const refusing = new MongoUserStore()
      .addUser('master', 'master-password-1')
      .addUser('app', 'p-1');
    refusing.features.restrictions = false;

    // Act
    await db.createUserLike(served(store, {}), 'app_clone', 'clone-password-1', 'app');
    await db.createUserLike(served(refusing, {}), 'app_clone', 'clone-password-1', 'app');

    // Assess
    for (const server of [store, refusing]) {
      const create = server.documents.find((d) => 'createUser' in d);
      expect(create).toBeDefined();
      expect(create).not.toHaveProperty('authenticationRestrictions');
      expect(server.user('app_clone')?.authenticationRestrictions).toEqual([]);
    }
  });
});

describe('mongodb clone marks and servers without customData', () => {
  let store: MongoUserStore;
  const db = createMongoDb();

  beforeEach(() => {
    store = new MongoUserStore().addUser('master', 'master-password-1').addUser('app', 'p-1');
  });

  it.each([
    [
      'exactly 128 characters long, quoted whole',
      'y'.repeat(128),
      /clone of "y{128}", not of "app"/,
    ],
    ['null', null, /clone of a mark of type null,/],
    ['a number', 42, /clone of a mark of type number,/],
  ])('names a foreign clone mark that is %s', async (_, marker, message) => {
    store.addUser('app_clone', 'p-2', { customData: { [CLONE_MARKER]: marker } });

    const outcome = await db
      .verifyClone?.(served(store, {}), 'app_clone', 'app')
      .catch((e: unknown) => e);

    expect(outcome).toBeInstanceOf(InvalidSecretError);
    expect((outcome as InvalidSecretError).field).toBe('username');
    expect(String(outcome)).toMatch(message);
  });

  it('makes an unmarked clone where the server answers BadValue naming customData', async () => {
    // Prepare
    const refusal = serverError(
      2,
      'BadValue',
      '"customData" is not a valid argument to createUser',
    );

    // Act
    await db.createUserLike(
      served(store, { fail: firstOf('createUser', refusal) }),
      'app_clone',
      'clone-password-1',
      'app',
    );

    // Assess
    expect(store.user('app_clone')?.password).toBe('clone-password-1');
    expect(store.user('app_clone')?.customData).toBeUndefined();
  });

  it('never makes an unmarked clone when createUser is refused for another reason, even quoting customData', async () => {
    // Prepare: the server quotes the command, mark included, in its refusal.
    const refusal = serverError(
      13,
      'Unauthorized',
      `not authorized on admin to execute command { createUser: "app_clone", customData: { ${CLONE_MARKER}: "app" } }`,
    );

    // Act
    const failure = await db
      .createUserLike(
        served(store, { fail: firstOf('createUser', refusal) }),
        'app_clone',
        'clone-password-1',
        'app',
      )
      .catch((e: unknown) => e);

    // Assess
    expect((failure as Error).constructor).toBe(DatabaseError);
    expect(String(failure)).toMatch(/creating for user "app_clone"/);
    expect(store.user('app_clone')).toBeUndefined();
    expect(commandsNamed(store, 'createUser')).toHaveLength(1);
  });

  it('does not retry without the mark when the server lacks another field (roles)', async () => {
    // Prepare: FerretDB 1.x without roles, asked to clone a user that holds one.
    store.features.roles = false;
    store.user('app')?.roles.push({ role: 'read', db: 'orders' });

    // Act
    const failure = await db
      .createUserLike(served(store, {}), 'app_clone', 'clone-password-1', 'app')
      .catch((e: unknown) => e);

    // Assess
    expect((failure as Error).constructor).toBe(DatabaseError);
    expect(commandsNamed(store, 'createUser')).toHaveLength(1);
    expect(store.user('app_clone')).toBeUndefined();
  });

  it('names the field "username" when refusing an unmarked look-alike', async () => {
    // Prepare: one with other restrictions, one with a role the original lacks.
    store.addUser('app_clone', 'p-2', {
      authenticationRestrictions: [{ clientSource: ['0.0.0.0/0'] }],
    });
    store.addUser('app2', 'p-3').addUser('app2_clone', 'p-4', {
      roles: [{ role: 'root', db: 'admin' }],
    });

    // Act
    const outcomes = await Promise.all(
      [
        ['app_clone', 'app'],
        ['app2_clone', 'app2'],
      ].map(([clone, original]) =>
        db
          .verifyClone?.(served(store, {}), clone as string, original as string)
          .catch((e: unknown) => e),
      ),
    );

    // Assess
    for (const outcome of outcomes) {
      expect(outcome).toBeInstanceOf(InvalidSecretError);
      expect((outcome as InvalidSecretError).field).toBe('username');
    }
  });

  it.each([
    ['the clone', 'ghost_clone', 'app'],
    ['the original', 'app_clone', 'ghost'],
  ])(
    'leaves a clone whose counterpart is missing (%s) alone: no refusal, no role change',
    async (_, clone, original) => {
      // Prepare: an unmarked clone with a role, so any comparison would refuse it.
      store.addUser('app_clone', 'p-2', { roles: [{ role: 'root', db: 'admin' }] });

      // Act
      const verified = await db.verifyClone?.(served(store, {}), clone, original);
      const changes = await db.syncPrivileges?.(served(store, {}), clone, original);

      // Assess
      expect(verified).toBeUndefined();
      expect(changes).toEqual([]);
      expect(store.commands.every((c) => c.includes('usersInfo'))).toBe(true);
      expect(store.rolesOf('app_clone')).toEqual(['root@admin']);
    },
  );
});

describe('mongodb command failures', () => {
  const db = createMongoDb();
  const failing = (error: unknown): MongoConnection => ({
    client: { close: async () => {} },
    users: {
      databaseName: 'admin',
      command: async () => {
        throw error;
      },
    } as never,
    user: 'master',
  });

  it.each([
    [
      'a connection closed mid-command',
      new MongoNetworkError('connection 2 to 10.0.0.1:27017 closed'),
      ConnectionError,
    ],
    [
      'no server to send it to',
      new MongoServerSelectionError('Server selection timed out after 30000 ms', {
        type: 'Single',
        servers: new Map(),
      } as unknown as TopologyDescription),
      ConnectionError,
    ],
    [
      'a command timeout',
      new MongoOperationTimeoutError('Timed out during socket read'),
      ConnectTimeoutError,
    ],
    ['a socket read timeout', new MongoNetworkTimeoutError('socket idle'), ConnectTimeoutError],
    [
      'a server refusal (13 Unauthorized)',
      serverError(13, 'Unauthorized', 'not authorized on admin'),
      DatabaseError,
    ],
    ['a thrown value without a name', { code: 'odd' }, DatabaseError],
    // Only a driver's own (string) error name says network; a name of another type says nothing.
    ['a thrown value whose name is not a string', { name: ['MongoNetworkError'] }, DatabaseError],
  ])(
    'classifies %s as exactly that kind of failure, keeping it as cause',
    async (_, error, type) => {
      const failure = await db.ping(failing(error)).catch((e: unknown) => e);

      expect((failure as Error).constructor).toBe(type);
      expect((failure as Error).cause).toBe(error);
      if (type === ConnectionError)
        expect((failure as ConnectionError).failure).toBe('unavailable');
    },
  );

  it('names the server code only when the server gave one, and its name only when given', async () => {
    const network = await db
      .ping(failing(new MongoNetworkError('connection 2 to 10.0.0.1:27017 closed')))
      .catch((e: unknown) => e);
    const bare = await db
      .ping(failing(Object.assign(new Error('refused'), { code: 13 })))
      .catch((e: unknown) => e);

    expect(String((network as Error).message)).toMatch(
      /failed: connection 2 to 10\.0\.0\.1:27017 closed$/,
    );
    expect(String((bare as Error).message)).toMatch(/failed: refused \(code 13\)$/);
  });

  it.each([
    ['revoking roles', 'revokeRolesFromUser'],
    ['copying authenticationRestrictions', 'updateUser'],
    ['granting roles', 'grantRolesToUser'],
  ])('names the step (%s) when mirroring the original fails there', async (step, name) => {
    // Prepare: a clone with one role to revoke, one to get, and other restrictions.
    const store = new MongoUserStore()
      .addUser('master', 'master-password-1')
      .addUser('app', 'p-1', {
        roles: [{ role: 'read', db: 'audit' }],
        authenticationRestrictions: [{ clientSource: ['10.0.0.0/16'] }],
      })
      .addUser('app_clone', 'p-2', {
        roles: [{ role: 'read', db: 'reports' }],
        customData: { [CLONE_MARKER]: 'app' },
      });
    const connection = served(store, {
      fail: (command) =>
        name in command ? serverError(13, 'Unauthorized', 'not authorized on admin') : undefined,
    });

    // Act
    const failure = await db
      .syncPrivileges?.(connection, 'app_clone', 'app')
      .catch((e: unknown) => e);

    // Assess
    expect((failure as Error).constructor).toBe(DatabaseError);
    expect(String(failure)).toContain(`${step} for user "app_clone"`);
  });

  it('names the test command when a ping fails', async () => {
    const failure = await db
      .ping(failing(serverError(13, 'Unauthorized', 'no')))
      .catch((e: unknown) => e);
    expect(String(failure)).toMatch(/running a test command for user "master"/);
  });
});

describe('mongodb closing a session', () => {
  afterEach(() => vi.useRealTimers());

  it('closes the driver client of the session', async () => {
    const close = vi.fn(async () => {});
    await createMongoDb().close({
      client: { close },
      users: { databaseName: 'admin', command: async () => ({ ok: 1 }) } as never,
      user: 'master',
    });
    expect(close).toHaveBeenCalledTimes(1);
  });

  it('leaves no timer behind once the client has closed (the invocation may end at once)', async () => {
    vi.useFakeTimers();
    await createMongoDb().close({
      client: { close: async () => {} },
      users: { databaseName: 'admin', command: async () => ({ ok: 1 }) } as never,
      user: 'master',
    });
    expect(vi.getTimerCount()).toBe(0);
  });
});
