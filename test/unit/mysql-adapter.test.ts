import mysql from 'mysql2';
import { describe, expect, it, vi } from 'vitest';
import {
  AuthenticationError,
  ConfigurationError,
  ConnectionError,
  ConnectTimeoutError,
  DatabaseError,
  HostUnreachableError,
  TlsError,
  TooManyConnectionsError,
} from '../../shared/common/errors.js';
import {
  classifyMysqlError,
  createMysql,
  type MysqlClient,
  type MysqlDriver,
} from '../../shared/databases/mysql.js';
import { nativePasswordHash } from '../../shared/databases/mysql-grants.js';
import { LogRecorder } from '../support/log-recorder.js';
import { mysqlLogin } from '../support/sample-logins.js';

const login = mysqlLogin;

/** An error as mysql2 builds it from a server ERR packet. */
const serverError = (code: string, errno: number, sqlState: string, message: string) =>
  Object.assign(new Error(message), { code, errno, sqlState, sqlMessage: message, fatal: true });
/** A socket error as Node reports it (mysql2 passes it on, fatal). */
const socketError = (code: string, message = code) =>
  Object.assign(new Error(message), { code, errno: -111, fatal: true });
const accessDenied = (privilege: string) =>
  serverError(
    'ER_SPECIFIC_ACCESS_DENIED_ERROR',
    1227,
    '42000',
    `Access denied; you need (at least one of) the ${privilege} privilege(s) for this operation`,
  );

/**
 * A scripted mysql2: answers the adapter's session set-up as a given server would, records
 * every statement (formatted with the real mysql2 escaping), and fails the ones told to.
 */
function fakeDriver(server: { version: string; account?: string; sqlMode?: string }) {
  const statements: string[] = [];
  const failures: { match: RegExp; error: Error }[] = [];
  const client: MysqlClient = {
    async query({ sql, values }) {
      const text = mysql.format(sql, values as never[]);
      statements.push(text);
      const failure = failures.find((f) => f.match.test(text));
      if (failure) throw failure.error;
      if (sql.startsWith('SELECT VERSION()')) {
        return [
          [
            {
              version: server.version,
              account: server.account ?? 'app@%',
              sqlMode: server.sqlMode ?? 'STRICT_TRANS_TABLES',
            },
          ],
          [],
        ];
      }
      return [[], []];
    },
    end: async () => {},
    destroy: () => {},
    on: () => client,
  };
  const driver: MysqlDriver = {
    createConnection: vi.fn(async () => client),
    escape: (value) => mysql.escape(value as string),
    escapeId: (value, forbidQualified) => mysql.escapeId(value, forbidQualified),
  };
  return { driver, statements, failures, load: vi.fn(async () => driver) };
}

async function changeOwnPassword(
  server: Parameters<typeof fakeDriver>[0],
  options: {
    retainCurrentPassword?: boolean;
    fail?: { match: RegExp; error: Error }[];
    env?: Record<string, string>;
  } = {},
) {
  const fake = fakeDriver(server);
  fake.failures.push(...(options.fail ?? []));
  const logger = new LogRecorder();
  const degraded: string[] = [];
  const db = createMysql({
    env: options.env ?? {},
    driver: fake.load,
    retainCurrentPassword: options.retainCurrentPassword,
  });
  const session = await db.connect(login, {
    logger,
    degraded: (feature) => degraded.push(feature),
  });
  fake.statements.length = 0;
  const outcome = await db.setPassword(session, 'app', "N3w-p\\a'ss").then(
    () => 'ok',
    (error: unknown) => error,
  );
  return { statements: fake.statements, logger, outcome, degraded };
}

describe('mysql password changes, by server', () => {
  it('keeps the old password as the secondary one on MySQL 8.0.14+ (RETAIN CURRENT PASSWORD), after discarding the older one', async () => {
    const { statements, logger, degraded } = await changeOwnPassword({ version: '8.0.36' });
    expect(degraded).toEqual([]);
    expect(statements).toEqual([
      "ALTER USER 'app'@'%' DISCARD OLD PASSWORD",
      "ALTER USER 'app'@'%' IDENTIFIED BY 'N3w-p\\\\a\\'ss' RETAIN CURRENT PASSWORD",
    ]);
    expect(logger.messages()).toContain(
      'kept the replaced password as the secondary password until the next rotation (RETAIN CURRENT PASSWORD)',
    );
  });

  it('does the same on MySQL 9, which a "version starts with 8" test gets wrong', async () => {
    const { statements } = await changeOwnPassword({ version: '9.1.0' });
    expect(statements.at(-1)).toMatch(/IDENTIFIED BY .* RETAIN CURRENT PASSWORD$/);
  });

  it('changes in place, old secondary discarded, when the grace period is switched off', async () => {
    const { statements } = await changeOwnPassword(
      { version: '8.4.3' },
      { retainCurrentPassword: false },
    );
    expect(statements).toEqual([
      "ALTER USER 'app'@'%' DISCARD OLD PASSWORD",
      "ALTER USER 'app'@'%' IDENTIFIED BY 'N3w-p\\\\a\\'ss'",
    ]);
  });

  it('falls back to a plain change with a warning and the Degraded metric when the user lacks APPLICATION_PASSWORD_ADMIN', async () => {
    const denied = accessDenied('APPLICATION_PASSWORD_ADMIN');
    const { statements, logger, outcome, degraded } = await changeOwnPassword(
      { version: '8.0.36' },
      { fail: [{ match: /DISCARD OLD PASSWORD|RETAIN CURRENT PASSWORD/, error: denied }] },
    );
    expect(outcome).toBe('ok');
    expect(statements.at(-1)).toBe("ALTER USER 'app'@'%' IDENTIFIED BY 'N3w-p\\\\a\\'ss'");
    expect(logger.lines.filter((l) => l.level === 'warn').map((l) => l.message)).toEqual([
      expect.stringContaining('lacks APPLICATION_PASSWORD_ADMIN'),
    ]);
    // Told once, by the name template.yaml's GracePeriodDegradedAlarm watches.
    expect(degraded).toEqual(['MysqlRetainCurrentPassword']);
  });

  it.each([
    ['8.0.13', "ALTER USER 'app'@'%' IDENTIFIED BY 'N3w-p\\\\a\\'ss'"],
    ['5.7.44-log', "ALTER USER 'app'@'%' IDENTIFIED BY 'N3w-p\\\\a\\'ss'"],
    ['5.7.mysql_aurora.2.11.2', "ALTER USER 'app'@'%' IDENTIFIED BY 'N3w-p\\\\a\\'ss'"],
    ['5.6.51', "SET PASSWORD FOR 'app'@'%' = PASSWORD('N3w-p\\\\a\\'ss')"],
  ])(
    'on %s changes the password with one plain statement (the server rewrites it out of its logs)',
    async (version, statement) => {
      const { statements } = await changeOwnPassword({ version });
      expect(statements).toEqual([statement]);
    },
  );

  it.each([
    ['10.11.19-MariaDB-0+deb12u1', 'SHOW CREATE USER CURRENT_USER()'],
    ['11.4.2-MariaDB-ubu2404', 'SHOW CREATE USER CURRENT_USER()'],
    ['10.1.48-MariaDB', 'SHOW GRANTS FOR CURRENT_USER()'],
  ])(
    'on %s sends the mysql_native_password hash, never the password (MariaDB logs statements as sent)',
    async (version, show) => {
      const { statements } = await changeOwnPassword({ version });
      expect(statements).toEqual([
        show,
        `SET PASSWORD FOR 'app'@'%' = '${nativePasswordHash("N3w-p\\a'ss")}'`,
      ]);
      expect(statements.join('\n')).not.toContain('N3w');
    },
  );

  it('changes the account the session signed in as, host part included', async () => {
    const { statements } = await changeOwnPassword({
      version: '10.11.6-MariaDB',
      account: 'app@10.0.%',
    });
    expect(statements.at(-1)).toBe(
      `SET PASSWORD FOR 'app'@'10.0.%' = '${nativePasswordHash("N3w-p\\a'ss")}'`,
    );
  });

  it.each([
    "CREATE USER `app`@`%` IDENTIFIED VIA ed25519 USING 'ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJY'",
    'CREATE USER `app`@`%` IDENTIFIED VIA unix_socket',
    "CREATE USER `app`@`%` IDENTIFIED VIA mysql_native_password USING '*B69027D44F6E5EDC07F1AEAD1477967B16F28227' OR pam",
  ])(
    'refuses, rather than send the password in plain text, a MariaDB account whose hash it cannot compute: %s',
    async (line) => {
      const fake = fakeDriver({ version: '10.11.6-MariaDB' });
      const db = createMysql({ env: {}, driver: fake.load });
      const session = await db.connect(login);
      const query = session.client.query.bind(session.client);
      session.client.query = async (options) =>
        options.sql.startsWith('SHOW CREATE USER')
          ? [[{ 'CREATE USER for app@%': line }], []]
          : query(options);
      fake.statements.length = 0;
      const error = await db.setPassword(session, 'app', 'N3w-pass').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DatabaseError);
      expect((error as Error).message).toMatch(/only for mysql_native_password accounts/);
      expect(fake.statements.join('\n')).not.toContain('N3w');
      expect(fake.statements.filter((s) => s.startsWith('SET PASSWORD'))).toEqual([]);
    },
  );

  it('never retains the old password of another account (alternating users, as the master)', async () => {
    const fake = fakeDriver({ version: '8.0.36', account: 'admin@%' });
    const db = createMysql({ env: {}, driver: fake.load });
    const session = await db.connect({ ...login, user: 'admin' });
    fake.statements.length = 0;

    await db.setPassword(session, 'app_clone', 'pw', '10.%');

    expect(fake.statements).toEqual([
      "ALTER USER 'app_clone'@'10.%' DISCARD OLD PASSWORD",
      "ALTER USER 'app_clone'@'10.%' IDENTIFIED BY 'pw'",
    ]);
  });

  it.each([
    ['@localhost', /an anonymous account/],
    ['root@%', /another user "root"/],
  ])(
    'refuses a session the server signed in as %s instead of the user named (anonymous or proxied account)',
    async (account, message) => {
      const fake = fakeDriver({ version: '10.11.6-MariaDB', account });
      const db = createMysql({ env: {}, driver: fake.load });
      const error = await db.connect(login).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AuthenticationError);
      expect((error as Error).message).toMatch(message);
    },
  );

  it('reports the host part the server authenticated as the signed-in scope', async () => {
    const fake = fakeDriver({ version: '10.11.6-MariaDB', account: 'app@10.0.%' });
    const db = createMysql({ env: {}, driver: fake.load });
    expect(await db.signedInScope?.(await db.connect(login))).toBe('10.0.%');
  });

  it('bounds every statement by the deadline, and has the server end the session after it', async () => {
    const fake = fakeDriver({ version: '10.11.6-MariaDB' });
    const timeouts: (number | undefined)[] = [];
    const db = createMysql({ env: {}, driver: fake.load });
    const session = await db.connect(login, { deadline: Date.now() + 4_500 });
    const query = session.client.query.bind(session.client);
    session.client.query = (options) => {
      timeouts.push(options.timeout);
      return query(options);
    };
    await db.ping(session);
    expect(fake.statements[1]).toMatch(
      /^SET SESSION wait_timeout = LEAST\(@@SESSION.wait_timeout, 5\),\s+lock_wait_timeout = LEAST\(@@SESSION.lock_wait_timeout, 5\),\s+innodb_lock_wait_timeout = LEAST\(@@SESSION.innodb_lock_wait_timeout, 5\), max_statement_time = IF\(@@SESSION.max_statement_time = 0, 5, LEAST\(@@SESSION.max_statement_time, 5\)\)$/,
    );
    expect(timeouts[0]).toBeLessThanOrEqual(4_500);
    expect(timeouts[0]).toBeGreaterThan(4_000);
    const late = await db.connect(login, { deadline: Date.now() + 10_000 });
    late.deadline = Date.now() - 1;
    await expect(db.ping(late)).rejects.toThrow(/no time left before the deadline/);
  });

  it('takes NO_BACKSLASH_ESCAPES out of the session, since the driver escapes with backslashes', async () => {
    const fake = fakeDriver({
      version: '8.0.36',
      sqlMode: 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES,STRICT_ALL_TABLES',
    });
    await createMysql({ env: {}, driver: fake.load }).connect(login);
    expect(fake.statements[1]).toBe("SET SESSION sql_mode = 'ANSI_QUOTES,STRICT_ALL_TABLES'");
  });

  it('keeps the password out of the error when a statement fails, and drops the statement from the cause', async () => {
    const fake = fakeDriver({ version: '8.0.36' });
    const failure = Object.assign(
      serverError(
        'ER_PARSE_ERROR',
        1064,
        '42000',
        "You have an error near 'N3w-p\\\\a\\'ss' at line 1",
      ),
      { sql: "ALTER USER 'app'@'%' IDENTIFIED BY 'N3w-p\\\\a\\'ss'" },
    );
    fake.failures.push({ match: /IDENTIFIED BY/, error: failure });
    const db = createMysql({ env: {}, driver: fake.load, retainCurrentPassword: false });
    const session = await db.connect(login);

    const error = await db.setPassword(session, 'app', "N3w-p\\a'ss").catch((e: unknown) => e);

    expect(error).toBeInstanceOf(DatabaseError);
    expect((error as Error).message).not.toContain('N3w');
    expect((error as Error).message).toContain('***');
    expect((error as Error).cause).not.toHaveProperty('sql');
  });

  it('loads the driver on the first connect only, never at creation', async () => {
    const fake = fakeDriver({ version: '8.0.36' });
    const db = createMysql({ env: {}, driver: fake.load });
    expect(fake.load).not.toHaveBeenCalled();
    await db.connect(login);
    await db.connect(login);
    expect(fake.load).toHaveBeenCalledTimes(1);
  });

  it('asks for TLS with certificate and host name checks when ssl is true, and falls back only from "prefer"', async () => {
    const fake = fakeDriver({ version: '8.0.36' });
    const logger = new LogRecorder();
    const db = createMysql({ env: {}, driver: fake.load });
    await db.connect({ ...login, tls: 'verify' });
    vi.mocked(fake.driver.createConnection).mockRejectedValueOnce(
      Object.assign(new Error('Server does not support secure connection'), {
        code: 'HANDSHAKE_NO_SSL_SUPPORT',
        fatal: true,
      }),
    );
    await db.connect({ ...login, tls: 'prefer' }, { logger });
    const configs = vi
      .mocked(fake.driver.createConnection)
      .mock.calls.map(([config]) => config.ssl);
    expect(configs).toEqual([
      { rejectUnauthorized: true, verifyIdentity: true },
      { rejectUnauthorized: false },
      undefined,
    ]);
    expect(logger.lines[0]?.message).toMatch(/server offers no TLS; connecting in plaintext/);
  });
});

describe('mysql user name limits', () => {
  it('allows 32 characters on MySQL and Aurora MySQL, 80 on MariaDB, lowered by MYSQL_MAX_USERNAME_LENGTH', () => {
    const db = createMysql({ env: {} });
    expect(['mysql', 'aurora-mysql', 'mariadb'].map((e) => db.maxUsernameLengthFor?.(e))).toEqual([
      32, 32, 80,
    ]);
    const lowered = createMysql({ env: { MYSQL_MAX_USERNAME_LENGTH: '16' } });
    expect(['mysql', 'mariadb'].map((e) => lowered.maxUsernameLengthFor?.(e))).toEqual([16, 16]);
  });

  it.each([
    ['1', 1],
    ['80', 80],
    [' 24 ', 24],
    ['', 80],
  ])(
    'takes MYSQL_MAX_USERNAME_LENGTH=%o as %i on MariaDB (empty: the server limit)',
    (raw, limit) => {
      const db = createMysql({ env: { MYSQL_MAX_USERNAME_LENGTH: raw } });
      expect(db.maxUsernameLengthFor?.('mariadb')).toBe(limit);
    },
  );

  it.each(['0', '81', '-1', '12.5', 'many'])(
    'refuses MYSQL_MAX_USERNAME_LENGTH=%o at creation, naming the variable',
    (raw) => {
      expect(() => createMysql({ env: { MYSQL_MAX_USERNAME_LENGTH: raw } })).toThrow(
        /MYSQL_MAX_USERNAME_LENGTH/,
      );
    },
  );

  it.each([
    ['false', false],
    [' FALSE ', false],
    ['true', true],
    ['True', true],
    ['', true],
  ])(
    'reads MYSQL_RETAIN_CURRENT_PASSWORD=%o as retain=%s (empty: the default, retain)',
    async (raw, retain) => {
      const { statements } = await changeOwnPassword(
        { version: '8.0.36' },
        { env: { MYSQL_RETAIN_CURRENT_PASSWORD: raw } },
      );
      expect(statements.at(-1)?.endsWith('RETAIN CURRENT PASSWORD')).toBe(retain);
    },
  );

  it('fails at creation on an invalid setting, naming the variable', () => {
    expect(() => createMysql({ env: { MYSQL_MAX_USERNAME_LENGTH: 'many' } })).toThrow(
      ConfigurationError,
    );
    expect(() => createMysql({ env: { MYSQL_RETAIN_CURRENT_PASSWORD: 'yes' } })).toThrow(
      /MYSQL_RETAIN_CURRENT_PASSWORD/,
    );
  });
});

describe('mysql failure classification', () => {
  it.each([
    [
      'wrong password (1045)',
      serverError(
        'ER_ACCESS_DENIED_ERROR',
        1045,
        '28000',
        "Access denied for user 'app'@'10.0.0.1' (using password: YES)",
      ),
      AuthenticationError,
    ],
    [
      'no account for this host (1130)',
      serverError(
        'ER_HOST_NOT_PRIVILEGED',
        1130,
        'HY000',
        "Host '10.0.0.1' is not allowed to connect",
      ),
      AuthenticationError,
    ],
    [
      'too many connections (1040)',
      serverError('ER_CON_COUNT_ERROR', 1040, '08004', 'Too many connections'),
      TooManyConnectionsError,
    ],
    [
      'max_user_connections (1203)',
      serverError(
        'ER_TOO_MANY_USER_CONNECTIONS',
        1203,
        '42000',
        "User app already has more than 'max_user_connections' active connections",
      ),
      TooManyConnectionsError,
    ],
    [
      'an account limit (1226)',
      serverError(
        'ER_USER_LIMIT_REACHED',
        1226,
        '42000',
        "User 'app' has exceeded the 'max_user_connections' resource",
      ),
      TooManyConnectionsError,
    ],
    [
      'an unknown database (1049)',
      serverError('ER_BAD_DB_ERROR', 1049, '42000', "Unknown database 'nope'"),
      DatabaseError,
    ],
    [
      'a locked account (MySQL 3118)',
      serverError(
        'ER_ACCOUNT_HAS_BEEN_LOCKED',
        3118,
        'HY000',
        'Access denied for user. Account is locked.',
      ),
      DatabaseError,
    ],
    [
      'a locked account (MariaDB 4151)',
      serverError(
        'ER_ACCOUNT_HAS_BEEN_LOCKED',
        4151,
        'HY000',
        'Access denied, this account is locked',
      ),
      DatabaseError,
    ],
    [
      'a server shutting down (1053)',
      serverError('ER_SERVER_SHUTDOWN', 1053, '08S01', 'Server shutdown in progress'),
      ConnectionError,
    ],
    [
      'connection refused',
      socketError('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.1:3306'),
      HostUnreachableError,
    ],
    [
      'an unknown host',
      socketError('ENOTFOUND', 'getaddrinfo ENOTFOUND db.internal'),
      HostUnreachableError,
    ],
    [
      'a lost connection',
      Object.assign(new Error('Connection lost: The server closed the connection.'), {
        code: 'PROTOCOL_CONNECTION_LOST',
        fatal: true,
      }),
      HostUnreachableError,
    ],
    [
      'a connect timeout',
      Object.assign(new Error('connect ETIMEDOUT'), {
        code: 'ETIMEDOUT',
        errorno: 'ETIMEDOUT',
        fatal: true,
      }),
      ConnectTimeoutError,
    ],
    [
      'an untrusted certificate',
      Object.assign(new Error('self-signed certificate in certificate chain'), {
        code: 'HANDSHAKE_SSL_ERROR',
        fatal: true,
      }),
      TlsError,
    ],
    [
      'a server without TLS',
      Object.assign(new Error('Server does not support secure connection'), {
        code: 'HANDSHAKE_NO_SSL_SUPPORT',
        fatal: true,
      }),
      TlsError,
    ],
    [
      'an account without a password refused (1698)',
      serverError(
        'ER_ACCESS_DENIED_NO_PASSWORD_ERROR',
        1698,
        '28000',
        "Access denied for user 'app'@'localhost'",
      ),
      AuthenticationError,
    ],
    [
      'no access to the database (1044)',
      serverError(
        'ER_DBACCESS_DENIED_ERROR',
        1044,
        '42000',
        "Access denied for user 'app'@'%' to database 'other'",
      ),
      DatabaseError,
    ],
    [
      'a host blocked after connection errors (1129)',
      serverError(
        'ER_HOST_IS_BLOCKED',
        1129,
        'HY000',
        "Host '10.0.0.1' is blocked because of many connection errors",
      ),
      ConnectionError,
    ],
    [
      'a handshake that never finished',
      Object.assign(new Error('Handshake inactivity'), {
        code: 'PROTOCOL_SEQUENCE_TIMEOUT',
        fatal: true,
      }),
      ConnectTimeoutError,
    ],
    [
      'both address families refused',
      new AggregateError([socketError('ECONNREFUSED')]),
      HostUnreachableError,
    ],
    [
      'an unknown server error',
      serverError('ER_UNKNOWN_ERROR', 1105, 'HY000', 'Unknown error'),
      ConnectionError,
    ],
    ['a failure without a code', new Error('Connection closed'), ConnectionError],
    ['a numeric code', Object.assign(new Error('odd'), { code: 7 }), ConnectionError],
  ])('classifies %s', (_, error, type) => {
    const classified = classifyMysqlError(error, login);
    expect(classified).toBeInstanceOf(type);
    // Exactly that class: a subclass (TLS, timeout, unreachable) is handled differently.
    expect(classified.constructor).toBe(type);
    expect(classified.cause).toBe(error);
    expect(classified.message).toContain('as user "app"');
    expect(classified.message).toContain('db.internal:3306');
  });

  it('only wrong credentials are authentication errors, and a password is never quoted', () => {
    for (const error of [
      socketError('ECONNREFUSED'),
      serverError('ER_CON_COUNT_ERROR', 1040, '08004', 'Too many connections'),
    ]) {
      expect(classifyMysqlError(error, login)).not.toBeInstanceOf(AuthenticationError);
    }
    const classified = classifyMysqlError(new Error(`odd failure near "${login.password}"`), login);
    expect(classified.message).not.toContain(login.password);
  });

  it('classifies a thrown value that is not an Error (undefined, null, a string) and scrubs the password from it', () => {
    for (const thrown of [undefined, null, `failure near ${login.password}`]) {
      const classified = classifyMysqlError(thrown, login);
      expect(classified.constructor).toBe(ConnectionError);
      expect(classified.cause).toBe(thrown);
      expect(classified.message).not.toContain(login.password);
    }
  });

  it.each([
    ['ERR_TLS_INVALID_PROTOCOL_VERSION', 'TLSv1 is not a supported protocol'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'wrong version number'],
  ])('classifies any Node TLS error code (%s) as a TLS failure', (code, message) => {
    expect(classifyMysqlError(socketError(code, message), login)).toBeInstanceOf(TlsError);
  });

  it('keeps the driver message whole when the password is empty (nothing to scrub)', () => {
    const classified = classifyMysqlError(new Error('odd failure'), { ...login, password: '' });
    expect(classified.message).toContain('odd failure');
    expect(classified.message).not.toContain('***');
  });

  it('takes the password out of the driver error itself (message, sqlMessage, stack) and drops its statement', () => {
    const message = `You have an error in your SQL syntax near '${login.password}'`;
    const error = Object.assign(serverError('ER_PARSE_ERROR', 1064, '42000', message), {
      sql: `SET PASSWORD = '${login.password}'`,
    });

    const classified = classifyMysqlError(error, login);

    expect(classified.cause).toBe(error);
    expect(error).not.toHaveProperty('sql');
    for (const field of [error.message, error.sqlMessage, error.stack]) {
      expect(field).not.toContain(login.password);
      expect(field).toContain('***');
    }
  });
});
