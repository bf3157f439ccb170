import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ConnectionError,
  DatabaseError,
  InvalidSecretError,
  UserExistsError,
} from '../../shared/common/errors.js';
import { classifyMysqlError, createMysql } from '../../shared/databases/mysql.js';
import { nativePasswordHash } from '../../shared/databases/mysql-grants.js';
import {
  type FakeAccount,
  type FakeServerOptions,
  fakeMysqlServer,
  queryTimeout,
  serverError,
  specificAccessDenied,
} from '../support/fake-mysql-server.js';
import { LogRecorder } from '../support/log-recorder.js';
import { mysqlLogin } from '../support/sample-logins.js';

const login = mysqlLogin;
const master = { ...login, user: 'admin', password: 'm4ster-pw' };
const NEW_PASSWORD = "N3w-p\\a'ss";

/** A MySQL 8 syntax error, quoting the statement from the failing token (cut at 80 characters). */
const parseErrorNear = (text: string, from: number) =>
  serverError(
    'ER_PARSE_ERROR',
    1064,
    '42000',
    `You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near '${text.slice(from, from + 80)}' at line 1`,
  );

async function signIn(
  server: FakeServerOptions,
  options: {
    as?: typeof login;
    db?: Parameters<typeof createMysql>[0];
    connect?: Parameters<ReturnType<typeof createMysql>['connect']>[1];
  } = {},
) {
  const fake = fakeMysqlServer(server);
  const db = createMysql({ env: {}, driver: fake.load, ...options.db });
  const session = await db.connect(options.as ?? login, options.connect);
  fake.statements.length = 0;
  fake.timeouts.length = 0;
  return { fake, db, session };
}

const app = (extra: Partial<FakeAccount> = {}): FakeAccount => ({
  user: 'app',
  host: '%',
  ...extra,
});

afterEach(() => {
  vi.useRealTimers();
});

describe('mysql connections', () => {
  it('asks the driver for utf8mb4, single statements, the program name and the connect timeout', async () => {
    const fake = fakeMysqlServer({ version: '8.0.36' });
    const db = createMysql({ env: {}, driver: fake.load });
    await db.connect(login);
    await db.connect({ ...login, database: 'appdb' }, { timeoutMs: 2_500 });
    await createMysql({ env: {}, driver: fake.load, connectTimeoutMs: 4_000 }).connect(login);

    const [first, second, third] = fake.configs();
    expect(first).toMatchObject({
      host: 'db.internal',
      port: 3306,
      user: 'app',
      charset: 'utf8mb4',
      multipleStatements: false,
      connectAttributes: { program_name: 'secrets-rotation' },
      connectTimeout: 10_000,
    });
    // No TLS asked when the secret says "ssl": false, and no database unless one is named.
    expect(first).not.toHaveProperty('ssl');
    expect(first).not.toHaveProperty('database');
    expect(second).toMatchObject({ database: 'appdb', connectTimeout: 2_500 });
    expect(third?.connectTimeout).toBe(4_000);
  });

  it('never waits to connect past the deadline, and waits at least a millisecond', async () => {
    vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
    const fake = fakeMysqlServer({ version: '8.0.36' });
    const db = createMysql({ env: {}, driver: fake.load });
    await db.connect(login, { deadline: Date.now() + 2_500, timeoutMs: 10_000 });
    await db.connect(login, { deadline: Date.now() + 60_000, timeoutMs: 10_000 });
    const late = await db.connect(login, { deadline: Date.now() - 5_000 }).catch((e: unknown) => e);

    expect(fake.configs().map((c) => c.connectTimeout)).toEqual([2_500, 10_000, 1]);
    // Past the deadline nothing is sent once connected.
    expect(late).toBeInstanceOf(DatabaseError);
  });

  it('gives every statement the statement timeout when there is no deadline', async () => {
    const { fake, db, session } = await signIn({ version: '8.0.36' });
    await db.ping(session);
    const short = await signIn({ version: '8.0.36' }, { db: { statementTimeoutMs: 1_234 } });
    await short.db.ping(short.session);

    expect(fake.timeouts).toEqual([30_000]);
    expect(short.fake.timeouts).toEqual([1_234]);
  });

  it('sends nothing once the deadline is reached, to the millisecond', async () => {
    vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
    const { fake, db, session } = await signIn(
      { version: '8.0.36' },
      { connect: { deadline: Date.now() + 5_000 } },
    );
    vi.setSystemTime(Date.now() + 5_000);

    await expect(db.ping(session)).rejects.toBeInstanceOf(DatabaseError);
    expect(fake.statements).toEqual([]);
  });

  it('bounds a MySQL session by the deadline without MariaDB-only variables', async () => {
    vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
    const fake = fakeMysqlServer({ version: '8.4.3' });
    const db = createMysql({ env: {}, driver: fake.load });
    await db.connect(login, { deadline: Date.now() + 7_200 });

    expect(fake.statements[1]?.replace(/\s+/g, ' ')).toBe(
      'SET SESSION wait_timeout = LEAST(@@SESSION.wait_timeout, 8), lock_wait_timeout = LEAST(@@SESSION.lock_wait_timeout, 8), innodb_lock_wait_timeout = LEAST(@@SESSION.innodb_lock_wait_timeout, 8)',
    );
  });

  it('refuses a server that answers the version query with no row, and closes the connection', async () => {
    const fake = fakeMysqlServer({ version: '8.0.36' });
    const query = fake.client.query.bind(fake.client);
    fake.client.query = async (options) =>
      options.sql.startsWith('SELECT VERSION()') ? [[], undefined] : query(options);
    const error = await createMysql({ env: {}, driver: fake.load })
      .connect(login)
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(DatabaseError);
    expect(fake.calls.end).toBe(1);
  });

  it('takes a CURRENT_USER() without a host part as the account at %', async () => {
    const { db, session } = await signIn({ version: '8.0.36', account: 'app' });
    expect(await db.signedInScope?.(session)).toBe('%');
  });

  it.each([
    ['5.5.68-MariaDB', 'SHOW GRANTS FOR CURRENT_USER()'],
    ['10.1.48-MariaDB', 'SHOW GRANTS FOR CURRENT_USER()'],
    ['10.2.44-MariaDB', 'SHOW CREATE USER CURRENT_USER()'],
    ['11.0.6-MariaDB', 'SHOW CREATE USER CURRENT_USER()'],
  ])(
    'reads how an account authenticates on %s with %s (SHOW CREATE USER is 10.2+)',
    async (version, show) => {
      const { fake, db, session } = await signIn({
        version,
        accounts: [
          app({
            grants: [
              "GRANT USAGE ON *.* TO 'app'@'%' IDENTIFIED BY PASSWORD '*B69027D44F6E5EDC07F1AEAD1477967B16F28227'",
            ],
          }),
        ],
      });
      await db.setPassword(session, 'app', NEW_PASSWORD);
      expect(fake.statements[0]).toBe(show);
    },
  );
});

describe('mysql closing a session', () => {
  it('ends the connection politely once, and a second close sends nothing', async () => {
    const { fake, db, session } = await signIn({ version: '8.0.36' });
    await db.close(session);
    await db.close(session);
    expect(fake.calls).toEqual({ end: 1, destroy: 0 });
  });

  it('waits for a slow but polite end without dropping the connection', async () => {
    vi.useFakeTimers();
    const { fake, db, session } = await signIn({ version: '8.0.36' });
    fake.endWith({ ms: 500 });
    const closing = db.close(session);
    await vi.advanceTimersByTimeAsync(500);
    await closing;
    expect(fake.calls).toEqual({ end: 1, destroy: 0 });
    // Its one-second guard is cleared: nothing keeps the Lambda's event loop busy.
    expect(vi.getTimerCount()).toBe(0);
  });

  it('drops a connection whose end fails', async () => {
    const { fake, db, session } = await signIn({ version: '8.0.36' });
    fake.endWith('reject');
    await db.close(session);
    expect(fake.calls.destroy).toBe(1);
  });

  it('drops a connection that does not end within a second, and leaves no timer behind', async () => {
    vi.useFakeTimers();
    const { fake, db, session } = await signIn({ version: '8.0.36' });
    fake.endWith('never');
    let closed = false;
    const closing = db.close(session).then(() => {
      closed = true;
    });
    await vi.advanceTimersByTimeAsync(999);
    expect(closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await closing;
    expect(fake.calls.destroy).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('waits for the end no longer than the deadline leaves, nor at all past it', async () => {
    vi.useFakeTimers();
    const { fake, db, session } = await signIn(
      { version: '8.0.36' },
      { connect: { deadline: Date.now() + 10_000 } },
    );
    fake.endWith('never');
    session.deadline = Date.now() + 300;
    let closed = false;
    const closing = db.close(session).then(() => {
      closed = true;
    });
    await vi.advanceTimersByTimeAsync(300);
    expect(closed).toBe(true);
    await closing;
    expect(fake.calls.destroy).toBe(1);

    const late = await signIn(
      { version: '8.0.36' },
      { connect: { deadline: Date.now() + 10_000 } },
    );
    late.fake.endWith('never');
    late.session.deadline = Date.now() - 1_000;
    const lateClosing = late.db.close(late.session);
    await vi.advanceTimersByTimeAsync(0);
    await lateClosing;
    expect(late.fake.calls.destroy).toBe(1);
  });

  it('drops the connection of a statement that timed out, and close then sends nothing', async () => {
    const { fake, db, session } = await signIn({ version: '8.0.36' });
    fake.failures.push({ match: /^SELECT 1$/, error: queryTimeout() });

    await expect(db.ping(session)).rejects.toBeInstanceOf(DatabaseError);
    expect(fake.calls.destroy).toBe(1);
    await db.close(session);
    expect(fake.calls).toEqual({ end: 0, destroy: 1 });
  });

  it('keeps the connection of a statement the server refused, and ends it on close', async () => {
    const { fake, db, session } = await signIn({ version: '8.0.36' });
    fake.failures.push({
      match: /^SELECT 1$/,
      error: serverError('ER_QUERY_INTERRUPTED', 1317, '70100', 'Query execution was interrupted'),
    });

    await expect(db.ping(session)).rejects.toBeInstanceOf(DatabaseError);
    expect(fake.calls.destroy).toBe(0);
    await db.close(session);
    expect(fake.calls).toEqual({ end: 1, destroy: 0 });
  });
});

describe('mysql failure details', () => {
  it.each([
    [
      'a server shutting down (1053)',
      serverError('ER_SERVER_SHUTDOWN', 1053, '08S01', 'Server shutdown in progress'),
    ],
    ['an unknown server error', serverError('ER_UNKNOWN_ERROR', 1105, 'HY000', 'Unknown error')],
  ])('reports %s as the server being unavailable', (_, error) => {
    const classified = classifyMysqlError(error, login);
    expect(classified).toBeInstanceOf(ConnectionError);
    expect((classified as ConnectionError).failure).toBe('unavailable');
  });

  it('names where it connected: host, port, user, and the database when there is one', () => {
    const error = serverError('ER_UNKNOWN_ERROR', 1105, 'HY000', 'Unknown error');
    expect(classifyMysqlError(error, login).message).toContain(
      'MySQL/MariaDB at db.internal:3306 as user "app"',
    );
    expect(classifyMysqlError(error, { ...login, database: 'appdb' }).message).toContain(
      'db.internal:3306 (database "appdb") as user "app"',
    );
  });

  it('describes itself as the MySQL/MariaDB adapter of the mysql, aurora-mysql and mariadb engines', () => {
    const db = createMysql({ env: {} });
    expect(db.name).toBe('MySQL/MariaDB');
    expect(db.engines).toEqual(['mysql', 'aurora-mysql', 'mariadb']);
  });

  it('takes a blank MYSQL_MAX_USERNAME_LENGTH as unset, and a set one lowers every limit', () => {
    expect(createMysql({ env: { MYSQL_MAX_USERNAME_LENGTH: '   ' } }).maxUsernameLength).toBe(80);
    expect(createMysql({ env: { MYSQL_MAX_USERNAME_LENGTH: '16' } }).maxUsernameLength).toBe(16);
    expect(createMysql({ env: {}, maxUsernameLength: 24 }).maxUsernameLength).toBe(24);
  });

  it.each([
    ['reading the server version', /^SELECT VERSION/, 'connect'],
    ['setting sql_mode', /^SET SESSION sql_mode/, 'connect'],
    ['bounding the session by the deadline', /wait_timeout/, 'connect'],
    ['running a test query', /^SELECT 1$/, 'ping'],
    [`looking up the accounts of user "app"`, /^SELECT Host/, 'setPassword'],
    [`looking up 'app_clone'@'%'`, /^SELECT 1 FROM/, 'verifyClone'],
    [`reading the grants of 'app'@'%'`, /^SHOW GRANTS/, 'syncPrivileges'],
    [`reading the account options of 'app'@'%'`, /^SELECT plugin/, 'syncPrivileges'],
    [`setting the account options of 'app_clone'@'%'`, /^ALTER USER .* REQUIRE/, 'syncPrivileges'],
    [`changing the grants of 'app_clone'@'%'`, /^GRANT/, 'syncPrivileges'],
    [`reading the default roles of 'app'@'%'`, /default_roles/, 'syncPrivileges'],
    [`creating 'app_clone'@'%'`, /^CREATE USER/, 'createUserLike'],
    [`discarding the old password of 'app'@'%'`, /DISCARD OLD PASSWORD/, 'setPassword'],
    [`changing the password of 'app'@'%'`, /IDENTIFIED BY/, 'setPassword'],
    [`setting the default role of 'app_clone'@'%'`, /^SET DEFAULT ROLE/, 'syncPrivileges'],
    [`looking up user "app"`, /^SELECT 1 FROM/, 'userExists'],
  ])('a failed statement names its step: %s', async (step, match, operation) => {
    const fake = fakeMysqlServer({
      version: '8.0.36',
      account: 'admin@%',
      sqlMode: 'NO_BACKSLASH_ESCAPES',
      accounts: [
        app({
          sslType: 'ANY',
          grants: ['GRANT USAGE ON *.* TO `app`@`%`', 'GRANT SELECT ON `appdb`.* TO `app`@`%`'],
          defaultRoles: [{ name: 'reader', host: '%' }],
        }),
        { user: 'app_clone', host: '%' },
      ],
    });
    const error = new Error('Lost connection to MySQL server during query');
    const refuse = serverError('ER_UNKNOWN_ERROR', 1105, 'HY000', 'Unknown error');
    if (operation !== 'connect') fake.failures.push({ match, error: refuse });
    else fake.failures.push({ match, error });
    fake.after(/^GRANT/, () => {
      fake.account('app_clone', '%').grants = [
        'GRANT USAGE ON *.* TO `app_clone`@`%`',
        'GRANT SELECT ON `appdb`.* TO `app_clone`@`%`',
      ];
    });
    const db = createMysql({ env: {}, driver: fake.load });
    const run = async () => {
      const session = await db.connect(master, { deadline: Date.now() + 60_000 });
      if (operation === 'ping') return db.ping(session);
      if (operation === 'userExists') return db.userExists(session, 'app');
      if (operation === 'setPassword') return db.setPassword(session, 'app', 'pw');
      if (operation === 'verifyClone') return db.verifyClone?.(session, 'app_clone', 'app');
      if (operation === 'syncPrivileges') return db.syncPrivileges?.(session, 'app_clone', 'app');
      if (operation === 'createUserLike') {
        fake.accounts.splice(1, 1);
        return db.createUserLike(session, 'app_clone', 'pw', 'app');
      }
    };
    const failure = await run().then(
      () => 'resolved',
      (e: unknown) => e,
    );
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toContain(step);
  });
});

describe('mysql password changes on MySQL 8 (dual passwords)', () => {
  it('keeps the old password signing in without a logger or a Degraded hook', async () => {
    const { fake, db, session } = await signIn({ version: '8.0.36' });
    await db.setPassword(session, 'app', NEW_PASSWORD);
    expect(fake.statements.at(-1)).toMatch(/RETAIN CURRENT PASSWORD$/);
  });

  it('without APPLICATION_PASSWORD_ADMIN changes the password in place, also with no logger or hook', async () => {
    const { fake, db, session } = await signIn({ version: '8.0.36' });
    fake.failures.push({
      match: /DISCARD OLD PASSWORD|RETAIN CURRENT PASSWORD/,
      error: specificAccessDenied('APPLICATION_PASSWORD_ADMIN'),
    });
    await db.setPassword(session, 'app', NEW_PASSWORD);
    expect(fake.statements.at(-1)).toBe("ALTER USER 'app'@'%' IDENTIFIED BY 'N3w-p\\\\a\\'ss'");
  });

  it('names the account in the lines it logs about the grace period', async () => {
    const logger = new LogRecorder();
    const fake = fakeMysqlServer({ version: '8.0.36' });
    fake.failures.push({
      match: /DISCARD OLD PASSWORD|RETAIN CURRENT PASSWORD/,
      error: specificAccessDenied('APPLICATION_PASSWORD_ADMIN'),
    });
    const db = createMysql({ env: {}, driver: fake.load });
    await db.setPassword(await db.connect(login, { logger }), 'app', NEW_PASSWORD);
    const kept = await signIn({ version: '8.0.36' }, { connect: { logger } });
    await kept.db.setPassword(kept.session, 'app', NEW_PASSWORD);

    const lines = logger.lines.filter((l) => l.attributes.account !== undefined);
    expect(lines.map((l) => [l.level, l.attributes.account])).toEqual([
      ['debug', "'app'@'%'"],
      ['warn', "'app'@'%'"],
      ['info', "'app'@'%'"],
    ]);
    expect(lines[0]?.message).toMatch(/APPLICATION_PASSWORD_ADMIN/);
  });

  it('fails, sending no other password change, when discarding the old password fails for another reason', async () => {
    const { fake, db, session } = await signIn({ version: '8.0.36' });
    fake.failures.push({
      match: /DISCARD OLD PASSWORD/,
      error: serverError('ER_UNKNOWN_ERROR', 1105, 'HY000', 'Unknown error'),
    });
    await expect(db.setPassword(session, 'app', NEW_PASSWORD)).rejects.toBeInstanceOf(
      DatabaseError,
    );
    expect(fake.statements).toEqual(["ALTER USER 'app'@'%' DISCARD OLD PASSWORD"]);
  });

  it("fails when the master may not discard another account's old password (it needs CREATE USER)", async () => {
    const { fake, db, session } = await signIn(
      { version: '8.0.36', account: 'admin@%' },
      { as: master },
    );
    fake.failures.push({
      match: /DISCARD OLD PASSWORD/,
      error: specificAccessDenied('CREATE USER'),
    });
    await expect(db.setPassword(session, 'app_clone', 'pw', '%')).rejects.toBeInstanceOf(
      DatabaseError,
    );
    expect(fake.statements).toHaveLength(1);
  });

  it('fails, without a change in place, when RETAIN CURRENT PASSWORD fails for another reason than the privilege', async () => {
    const { fake, db, session } = await signIn({ version: '8.0.36' });
    fake.failures.push({
      match: /RETAIN CURRENT PASSWORD/,
      error: serverError(
        'ER_MFA_METHOD_EXISTS',
        1396,
        'HY000',
        "Operation ALTER USER failed for 'app'@'%'",
      ),
    });
    await expect(db.setPassword(session, 'app', NEW_PASSWORD)).rejects.toBeInstanceOf(
      DatabaseError,
    );
    expect(fake.statements.filter((s) => /IDENTIFIED BY/.test(s))).toHaveLength(1);
  });

  it('never retains the old password of another account at the same host', async () => {
    const { fake, db, session } = await signIn(
      { version: '8.0.36', account: 'admin@%' },
      { as: master },
    );
    await db.setPassword(session, 'app_clone', 'pw', '%');
    expect(fake.statements.at(-1)).toBe("ALTER USER 'app_clone'@'%' IDENTIFIED BY 'pw'");
  });

  it.each([
    ['8.0.36', 'RETAIN CURRENT PASSWORD', {}],
    ['8.0.36', 'IDENTIFIED BY', { retainCurrentPassword: false }],
    ['5.6.51', 'SET PASSWORD', {}],
  ])(
    'on %s a syntax error in %s quoting the statement from the password on shows none of it',
    async (version, statement, options) => {
      const { fake, db, session } = await signIn({ version }, { db: options });
      fake.failures.push({
        match: new RegExp(statement),
        // The server quotes the statement from the password's literal on.
        error: (text) => parseErrorNear(text, text.indexOf("'N3w")),
      });
      const error = (await db
        .setPassword(session, 'app', NEW_PASSWORD)
        .catch((e: unknown) => e)) as Error;
      expect(error).toBeInstanceOf(DatabaseError);
      expect(error.message).not.toMatch(/N3w/);
      expect(String((error.cause as Error).message)).not.toMatch(/N3w/);
    },
  );

  /** A syntax error quoting `text` from `from` on, cut as `cut` does. */
  const cutParseError = (text: string, from: number, cut: (quoted: string) => string) =>
    serverError(
      'ER_PARSE_ERROR',
      1064,
      '42000',
      `You have an error in your SQL syntax; check the manual that corresponds to your server version for the right syntax to use near '${cut(text.slice(from))}' at line 1`,
    );

  it('on MySQL 8 a syntax error whose quote of the statement is cut inside the password shows none of its start', async () => {
    const { fake, db, session } = await signIn({ version: '8.0.36' });
    const password = `Lp-${'x9Q'.repeat(30)}`;
    // MySQL quotes 80 characters from the failing token; here 20 before the password's literal.
    fake.failures.push({
      match: /IDENTIFIED BY/,
      error: (text) => cutParseError(text, text.indexOf("'Lp-") - 20, (q) => q.slice(0, 80)),
    });
    const error = (await db
      .setPassword(session, 'app', password)
      .catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(DatabaseError);
    for (const text of [
      error.message,
      (error.cause as Error).message,
      String((error.cause as Error).stack),
    ]) {
      expect(text).toMatch(/IDENTIFIED BY '\*\*\*' at line 1/);
      expect(text).not.toContain(password.slice(0, 4));
    }
  });

  it('keeps whole a syntax error quote that stops short of the password, and one with no quote at all', async () => {
    const { fake, db, session } = await signIn({ version: '8.0.36' });
    const password = `Lp-${'x9Q'.repeat(30)}`;
    // MariaDB behind a proxy that reports 8.0: the clause after the password is what it refuses.
    fake.failures.push({
      match: /RETAIN CURRENT PASSWORD/,
      error: (text) => cutParseError(text, text.indexOf('RETAIN'), (q) => q.slice(0, 80)),
    });
    const error = (await db
      .setPassword(session, 'app', password)
      .catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(DatabaseError);
    expect(error.message).toMatch(/near 'RETAIN CURRENT PASSWORD' at line 1$/);
    // A message with no quote of the statement, ending with what could start a password.
    fake.failures.length = 0;
    fake.failures.push({
      match: /RETAIN CURRENT PASSWORD/,
      error: serverError(
        'ER_UNKNOWN_ERROR',
        1105,
        'HY000',
        "Unknown error near the end: 'L' at line 1",
      ),
    });
    const other = (await db
      .setPassword(session, 'app', password)
      .catch((e: unknown) => e)) as Error;
    expect(other.message).toMatch(/the end: 'L' at line 1$/);
  });

  it('on MariaDB a syntax error whose quote of the statement is cut inside the password hash shows none of its start', async () => {
    const user = `application_user_${'n'.repeat(28)}`;
    const { fake, db, session } = await signIn({
      version: '10.11.6-MariaDB',
      accounts: [app({ user })],
    });
    const hash = nativePasswordHash(NEW_PASSWORD);
    // MariaDB 10.11, as seen on the server: 77 characters of the statement and "...".
    fake.failures.push({
      match: /^SET PASSWORD/,
      error: (text) => cutParseError(text, 0, (q) => `${q.slice(0, 77)}...`),
    });
    const error = (await db
      .setPassword(session, user, NEW_PASSWORD)
      .catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(DatabaseError);
    for (const text of [error.message, (error.cause as Error).message]) {
      expect(text).toMatch(/= '\*\*\*\.\.\.' at line 1/);
      expect(text).not.toContain(hash.slice(0, 4));
    }
  });

  it('on MariaDB keeps the mysql_native_password hash (as good as the password) out of a failure', async () => {
    const { fake, db, session } = await signIn({
      version: '10.11.6-MariaDB',
      accounts: [app()],
    });
    const hash = nativePasswordHash(NEW_PASSWORD);
    fake.failures.push({
      match: /^SET PASSWORD/,
      error: (text) => parseErrorNear(text, text.indexOf("'*")),
    });
    const error = (await db
      .setPassword(session, 'app', NEW_PASSWORD)
      .catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(DatabaseError);
    expect(error.message).not.toContain(hash);
    expect(error.message).not.toContain(hash.slice(1));
  });

  it.each([
    "CREATE USER `app`@`%` IDENTIFIED VIA mysql_native_password USING '*B69027D44F6E5EDC07F1AEAD1477967B16F28227' OR unix_socket",
    "CREATE USER `app`@`%` IDENTIFIED VIA named_pipe OR mysql_native_password USING '*B69027D44F6E5EDC07F1AEAD1477967B16F28227'",
  ])(
    'on MariaDB changes the hash of an account that may also sign in without a password (%s)',
    async (createUser) => {
      const { fake, db, session } = await signIn({
        version: '10.11.6-MariaDB',
        accounts: [app({ createUser })],
      });
      await db.setPassword(session, 'app', NEW_PASSWORD);
      expect(fake.statements.at(-1)).toBe(
        `SET PASSWORD FOR 'app'@'%' = '${nativePasswordHash(NEW_PASSWORD)}'`,
      );
    },
  );
});

describe('mysql accounts by host', () => {
  it('takes the host part the secret names case-insensitively, as MySQL does', async () => {
    const { fake, db, session } = await signIn({ version: '8.0.36', account: 'app@localhost' });
    await db.setPassword(session, 'app', 'pw', 'LOCALHOST');
    await db.setPassword(session, 'app', 'pw', 'localhost');
    expect(fake.statements.filter((s) => s.includes('IDENTIFIED BY'))).toEqual([
      "ALTER USER 'app'@'localhost' IDENTIFIED BY 'pw' RETAIN CURRENT PASSWORD",
      "ALTER USER 'app'@'localhost' IDENTIFIED BY 'pw' RETAIN CURRENT PASSWORD",
    ]);
  });

  it("changes another user's only account at its own host, looked up when the secret names none", async () => {
    const { fake, db, session } = await signIn(
      { version: '8.0.36', account: 'admin@%', accounts: [{ user: 'app_clone', host: '10.%' }] },
      { as: master },
    );
    await db.setPassword(session, 'app_clone', 'pw');
    expect(fake.statements).toEqual([
      "SELECT Host AS host FROM mysql.user WHERE User = 'app_clone' ORDER BY Host",
      "ALTER USER 'app_clone'@'10.%' DISCARD OLD PASSWORD",
      "ALTER USER 'app_clone'@'10.%' IDENTIFIED BY 'pw'",
    ]);
  });

  it('fails as a database error, changing nothing, for a user without an account', async () => {
    const { fake, db, session } = await signIn(
      { version: '8.0.36', account: 'admin@%' },
      { as: master },
    );
    await expect(db.setPassword(session, 'nobody', 'pw')).rejects.toBeInstanceOf(DatabaseError);
    expect(fake.statements).toHaveLength(1);
    expect(await db.accountScope?.(session, 'nobody')).toBeUndefined();
  });

  it('on MariaDB a role of the same name is not one more account of the user', async () => {
    const { db, session } = await signIn(
      {
        version: '10.11.6-MariaDB',
        account: 'admin@%',
        accounts: [app(), { user: 'app', host: '', isRole: true }],
      },
      { as: master },
    );
    expect(await db.accountScope?.(session, 'app')).toBe('%');
    expect(await db.userExists(session, 'app', '')).toBe(false);
    expect(await db.userExists(session, 'app', '%')).toBe(true);
  });

  it('tells whether a user has an account, at any host or at the one named', async () => {
    const { db, session } = await signIn(
      { version: '8.0.36', account: 'admin@%', accounts: [app({ host: '10.%' })] },
      { as: master },
    );
    expect(await db.userExists(session, 'app')).toBe(true);
    expect(await db.userExists(session, 'nobody')).toBe(false);
    expect(await db.userExists(session, 'app', '10.%')).toBe(true);
    expect(await db.userExists(session, 'app', '%')).toBe(false);
    expect(await db.accountScope?.(session, 'app')).toBe('10.%');
  });
});

describe('mysql clones on MySQL 8', () => {
  const original = (extra: Partial<FakeAccount> = {}) =>
    app({
      plugin: 'caching_sha2_password',
      maxQuestions: 100,
      maxUpdates: 5,
      maxConnections: 7,
      maxUserConnections: 3,
      grants: [
        'GRANT USAGE ON *.* TO `app`@`%`',
        'GRANT SELECT, INSERT ON `my.db`.* TO `app`@`%`',
        'GRANT `reader`@`%` TO `app`@`%`',
      ],
      defaultRoles: [{ name: 'reader', host: '%' }],
      ...extra,
    });
  const cloneGrants = [
    'GRANT USAGE ON *.* TO `app_clone`@`%`',
    'GRANT SELECT, INSERT ON `my.db`.* TO `app_clone`@`%`',
    'GRANT `reader`@`%` TO `app_clone`@`%`',
  ];

  async function cloneOf(account: FakeAccount, version = '8.0.36') {
    const fake = fakeMysqlServer({ version, account: 'admin@%', accounts: [account] });
    const db = createMysql({ env: {}, driver: fake.load });
    const session = await db.connect(master);
    fake.statements.length = 0;
    fake.after(/^GRANT/, () => {
      fake.account('app_clone', '%').grants = cloneGrants;
    });
    return { fake, db, session };
  }

  it("creates the clone with the original's plugin and limits, a throw-away password first, then its grants, default role and password", async () => {
    const { fake, db, session } = await cloneOf(original());
    await db.createUserLike(session, 'app_clone', NEW_PASSWORD, 'app');

    const create = fake.statements.find((s) => s.startsWith('CREATE USER')) ?? '';
    const throwaway = /BY '([^']*)'/.exec(create)?.[1] ?? '';
    expect(create).toBe(
      `CREATE USER 'app_clone'@'%' IDENTIFIED WITH caching_sha2_password BY '${throwaway}' REQUIRE NONE WITH MAX_QUERIES_PER_HOUR 100 MAX_UPDATES_PER_HOUR 5 MAX_CONNECTIONS_PER_HOUR 7 MAX_USER_CONNECTIONS 3`,
    );
    // Random, meets validate_password's MEDIUM policy, and is not the password being set.
    expect(throwaway).toMatch(/^[A-Za-z0-9_-]{24}#Aa1$/);
    expect(fake.statements).toContain("GRANT SELECT, INSERT ON `my.db`.* TO 'app_clone'@'%'");
    expect(fake.statements).toContain("GRANT 'reader'@'%' TO 'app_clone'@'%'");
    expect(fake.statements).toContain("SET DEFAULT ROLE 'reader'@'%' TO 'app_clone'@'%'");
    expect(fake.statements.slice(-2)).toEqual([
      "ALTER USER 'app_clone'@'%' DISCARD OLD PASSWORD",
      "ALTER USER 'app_clone'@'%' IDENTIFIED BY 'N3w-p\\\\a\\'ss'",
    ]);
  });

  it('keeps the throw-away password out of the error when creating the clone fails', async () => {
    const { fake, db, session } = await cloneOf(original());
    fake.failures.push({
      match: /^CREATE USER/,
      error: (text) => parseErrorNear(text, text.indexOf('BY ') + 3),
    });
    const error = (await db
      .createUserLike(session, 'app_clone', NEW_PASSWORD, 'app')
      .catch((e: unknown) => e)) as Error;
    const throwaway = /BY '([^']*)'/.exec(fake.statements.at(-1) ?? '')?.[1] ?? 'missing';
    expect(error).toBeInstanceOf(DatabaseError);
    expect(error.message).not.toContain(throwaway);
  });

  /** MySQL's answer to CREATE USER of an account that exists (or that it could not create). */
  const cannotCreateClone = () =>
    serverError(
      'ER_CANNOT_USER',
      1396,
      'HY000',
      "Operation CREATE USER failed for 'app_clone'@'%'",
    );

  it('reports a clone an overlapping invocation created a moment ago as existing', async () => {
    const { fake, db, session } = await cloneOf(original());
    fake.failures.push({
      match: /^CREATE USER/,
      error: cannotCreateClone(),
    });
    fake.accounts.push({ user: 'app_clone', host: '%' });
    const error = await db
      .createUserLike(session, 'app_clone', 'pw', 'app')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserExistsError);
    // The server's refusal stays attached.
    expect((error as Error).cause).toBeInstanceOf(DatabaseError);
  });

  it('fails as a database error, not as an existing clone, when CREATE USER fails and there is no clone', async () => {
    const { fake, db, session } = await cloneOf(original());
    fake.failures.push({
      match: /^CREATE USER/,
      error: cannotCreateClone(),
    });
    const error = await db
      .createUserLike(session, 'app_clone', 'pw', 'app')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseError);
    expect(error).not.toBeInstanceOf(UserExistsError);

    const other = await cloneOf(original());
    other.fake.accounts.push({ user: 'app_clone', host: '%' });
    other.fake.failures.push({
      match: /^CREATE USER/,
      error: serverError('ER_PARSE_ERROR', 1064, '42000', 'You have an error in your SQL syntax'),
    });
    const syntax = await other.db
      .createUserLike(other.session, 'app_clone', 'pw', 'app')
      .catch((e: unknown) => e);
    expect(syntax).not.toBeInstanceOf(UserExistsError);
  });

  it('fails as a database error, creating nothing, when the secret names a host where the original has no account', async () => {
    const { fake, db, session } = await cloneOf(original());
    const error = await db
      .createUserLike(session, 'app_clone', 'pw', 'app', '10.%')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseError);
    expect(fake.statements.filter((s) => s.startsWith('CREATE'))).toEqual([]);
  });

  it('on MySQL 5.7 (no roles) copies the grants without reading default roles', async () => {
    const { fake, db, session } = await cloneOf(
      original({
        // 5.7 has no caching_sha2_password (the fake refuses it, as the server does).
        plugin: 'mysql_native_password',
        grants: [
          'GRANT USAGE ON *.* TO `app`@`%`',
          'GRANT SELECT, INSERT ON `my.db`.* TO `app`@`%`',
        ],
        defaultRoles: [],
      }),
      '5.7.44-log',
    );
    fake.after(/^GRANT/, () => {
      fake.account('app_clone', '%').grants = cloneGrants.slice(0, 2);
    });
    await db.createUserLike(session, 'app_clone', 'pw', 'app');
    expect(fake.statements.some((s) => s.includes('default_roles'))).toBe(false);
    expect(fake.account('app_clone', '%').plugin).toBe('mysql_native_password');
  });

  it('reports what it changed: account options, grants and the default role', async () => {
    const { fake, db, session } = await cloneOf(original({ sslType: 'ANY' }));
    fake.accounts.push({
      user: 'app_clone',
      host: '%',
      defaultRoles: [{ name: 'reader', host: 'localhost' }],
    });
    const changes = await db.syncPrivileges?.(session, 'app_clone', 'app');
    expect(changes).toEqual(
      expect.arrayContaining([
        'set REQUIRE SSL',
        expect.stringMatching(/^set resource limits MAX_QUERIES_PER_HOUR 100/),
        'granted SELECT, INSERT ON `my.db`.*',
        'granted role `reader`@`%`',
        'set DEFAULT ROLE `reader`@`%`',
      ]),
    );
    expect(fake.statements).toContain("SET DEFAULT ROLE 'reader'@'%' TO 'app_clone'@'%'");
  });

  it('sets no default role when the clone has the same ones, and NONE when the original has none', async () => {
    const same = await cloneOf(original());
    same.fake.accounts.push({
      user: 'app_clone',
      host: '%',
      grants: cloneGrants,
      defaultRoles: [{ name: 'reader', host: '%' }],
    });
    await same.db.syncPrivileges?.(same.session, 'app_clone', 'app');
    expect(same.fake.statements.some((s) => s.startsWith('SET DEFAULT ROLE'))).toBe(false);

    const none = await cloneOf(original({ defaultRoles: [] }));
    none.fake.accounts.push({
      user: 'app_clone',
      host: '%',
      grants: cloneGrants,
      defaultRoles: [
        { name: 'reader', host: '%' },
        { name: 'writer', host: '%' },
      ],
    });
    const changes = await none.db.syncPrivileges?.(none.session, 'app_clone', 'app');
    expect(none.fake.statements).toContain("SET DEFAULT ROLE NONE TO 'app_clone'@'%'");
    expect(changes?.filter((c) => c.includes('DEFAULT ROLE'))).toEqual(['set DEFAULT ROLE NONE']);
  });

  it('gives the clone several default roles in one statement', async () => {
    const { fake, db, session } = await cloneOf(
      original({
        defaultRoles: [
          { name: 'reader', host: '%' },
          { name: 'writer', host: '10.%' },
        ],
      }),
    );
    fake.accounts.push({ user: 'app_clone', host: '%', grants: cloneGrants });
    const changes = await db.syncPrivileges?.(session, 'app_clone', 'app');
    expect(fake.statements).toContain(
      "SET DEFAULT ROLE 'reader'@'%', 'writer'@'10.%' TO 'app_clone'@'%'",
    );
    expect(changes?.filter((c) => c.includes('DEFAULT ROLE'))).toEqual([
      'set DEFAULT ROLE `reader`@`%`, `writer`@`10.%`',
    ]);
  });

  it('gives up after three passes when the grants never converge', async () => {
    const { fake, db, session } = await cloneOf(original());
    fake.accounts.push({ user: 'app_clone', host: '%' });
    fake.after(/^GRANT/, () => {
      fake.account('app_clone', '%').grants = ['GRANT USAGE ON *.* TO `app_clone`@`%`'];
    });
    const error = await db.syncPrivileges?.(session, 'app_clone', 'app').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseError);
    expect(fake.statements.filter((s) => s.startsWith('GRANT SELECT'))).toHaveLength(3);
  });
});

describe('mysql taking over an existing clone', () => {
  async function verify(version: string, clone: Partial<FakeAccount>, appGrants?: string[]) {
    const fake = fakeMysqlServer({
      version,
      account: 'admin@%',
      accounts: [
        app(appGrants ? { grants: appGrants } : {}),
        { user: 'app_clone', host: '%', ...clone },
      ],
    });
    const db = createMysql({ env: {}, driver: fake.load });
    const session = await db.connect(master);
    return (db.verifyClone?.(session, 'app_clone', 'app') ?? Promise.resolve()).then(
      () => 'accepted',
      (e: unknown) => e,
    );
  }

  it('does nothing when there is no clone yet', async () => {
    const fake = fakeMysqlServer({ version: '8.0.36', account: 'admin@%', accounts: [app()] });
    const db = createMysql({ env: {}, driver: fake.load });
    const session = await db.connect(master);
    fake.statements.length = 0;
    await db.verifyClone?.(session, 'app_clone', 'app');
    expect(fake.statements.some((s) => s.startsWith('SHOW GRANTS'))).toBe(false);
  });

  it.each(['caching_sha2_password', 'mysql_native_password', 'sha256_password'])(
    'on MySQL 8 accepts a clone that signs in with a password (%s)',
    async (plugin) => {
      expect(await verify('8.0.36', { plugin })).toBe('accepted');
    },
  );

  it.each([
    ['8.0.36', { plugin: 'auth_socket' }],
    ['10.11.6-MariaDB', { createUser: 'CREATE USER `app_clone`@`%` IDENTIFIED VIA unix_socket' }],
    [
      '10.11.6-MariaDB',
      {
        createUser:
          "CREATE USER `app_clone`@`%` IDENTIFIED VIA ed25519 USING 'ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJY'",
      },
    ],
    [
      '10.11.6-MariaDB',
      {
        createUser:
          "CREATE USER `app_clone`@`%` IDENTIFIED VIA mysql_native_password USING '*B69027D44F6E5EDC07F1AEAD1477967B16F28227' OR unix_socket",
      },
    ],
    // A second password someone else may know.
    [
      '10.11.6-MariaDB',
      {
        createUser:
          "CREATE USER `app_clone`@`%` IDENTIFIED VIA mysql_native_password USING '*B69027D44F6E5EDC07F1AEAD1477967B16F28227' OR mysql_native_password USING '*0D3CED9BEC10A777AEC23CCC353A8C08A633045E'",
      },
    ],
  ])('on %s refuses a clone that may sign in another way: %o', async (version, clone) => {
    const error = await verify(version, clone);
    expect(error).toBeInstanceOf(InvalidSecretError);
    expect((error as InvalidSecretError).field).toBe('username');
  });

  it('accepts a MariaDB clone that signs in with mysql_native_password only', async () => {
    expect(await verify('10.11.6-MariaDB', {})).toBe('accepted');
  });

  it('refuses a clone holding a global privilege or PROXY the original lacks, naming the user name', async () => {
    for (const grants of [
      ['GRANT SUPER ON *.* TO `app_clone`@`%`'],
      ['GRANT USAGE ON *.* TO `app_clone`@`%`', "GRANT PROXY ON ''@'' TO 'app_clone'@'%'"],
    ]) {
      const error = await verify('8.0.36', { grants });
      expect(error).toBeInstanceOf(InvalidSecretError);
      expect((error as InvalidSecretError).field).toBe('username');
      // It names the privilege at fault.
      expect((error as Error).message).toContain(grants.length === 1 ? 'SUPER' : 'PROXY');
    }
  });

  it('accepts PROXY on a clone whose original holds it too', async () => {
    expect(
      await verify(
        '8.0.36',
        {
          grants: [
            'GRANT USAGE ON *.* TO `app_clone`@`%`',
            "GRANT PROXY ON ''@'' TO 'app_clone'@'%'",
          ],
        },
        ['GRANT USAGE ON *.* TO `app`@`%`', "GRANT PROXY ON ''@'' TO 'app'@'%'"],
      ),
    ).toBe('accepted');
  });
});

describe('mysql clones on MariaDB', () => {
  it("copies the original's MAX_STATEMENT_TIME", async () => {
    const fake = fakeMysqlServer({
      version: '10.11.6-MariaDB',
      account: 'admin@%',
      accounts: [app({ maxStatementTime: '2.500000' })],
    });
    const db = createMysql({ env: {}, driver: fake.load });
    const session = await db.connect(master);
    await db.createUserLike(session, 'app_clone', 'pw', 'app');
    const create = fake.statements.find((s) => s.startsWith('CREATE USER')) ?? '';
    expect(create).toMatch(
      /^CREATE USER 'app_clone'@'%' IDENTIFIED BY PASSWORD '\*[0-9A-F]{40}' .* MAX_STATEMENT_TIME 2\.500000$/,
    );
  });
});

describe('mysql on MariaDB, more', () => {
  it("gives the clone the original's default role, MariaDB's way (SET DEFAULT ROLE ... FOR)", async () => {
    const fake = fakeMysqlServer({
      version: '10.11.6-MariaDB',
      account: 'admin@%',
      accounts: [
        app({
          grants: [
            'GRANT `reader` TO `app`@`%`',
            'GRANT USAGE ON *.* TO `app`@`%`',
            'SET DEFAULT ROLE `reader` FOR `app`@`%`',
          ],
        }),
        {
          user: 'app_clone',
          host: '%',
          grants: ['GRANT `reader` TO `app_clone`@`%`', 'GRANT USAGE ON *.* TO `app_clone`@`%`'],
        },
      ],
    });
    const db = createMysql({ env: {}, driver: fake.load });
    const session = await db.connect(master);
    const changes = await db.syncPrivileges?.(session, 'app_clone', 'app');
    expect(fake.statements).toContain("SET DEFAULT ROLE `reader` FOR 'app_clone'@'%'");
    expect(changes).toEqual(['set DEFAULT ROLE `reader`']);
  });

  it('a failure reading how the account authenticates names that step', async () => {
    const { fake, db, session } = await signIn({ version: '10.11.6-MariaDB', accounts: [app()] });
    fake.failures.push({
      match: /^SHOW CREATE USER/,
      error: serverError('ER_UNKNOWN_ERROR', 1105, 'HY000', 'Unknown error'),
    });
    const error = await db.setPassword(session, 'app', 'pw').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseError);
    expect((error as Error).message).toContain("reading how 'app'@'%' authenticates");
  });
});

describe('mysql TLS fallback', () => {
  const noTls = () =>
    Object.assign(new Error('Server does not support secure connection'), {
      code: 'HANDSHAKE_NO_SSL_SUPPORT',
      fatal: true,
    });

  it('connects in plaintext to a server without TLS when TLS is only preferred, also without a logger', async () => {
    const fake = fakeMysqlServer({ version: '8.0.36' });
    vi.mocked(fake.driver.createConnection).mockRejectedValueOnce(noTls());
    await createMysql({ env: {}, driver: fake.load }).connect({ ...login, tls: 'prefer' });
    expect(fake.configs().map((c) => c.ssl)).toEqual([{ rejectUnauthorized: false }, undefined]);
  });

  it('names the server and user in the plaintext warning', async () => {
    const fake = fakeMysqlServer({ version: '8.0.36' });
    vi.mocked(fake.driver.createConnection).mockRejectedValueOnce(noTls());
    const logger = new LogRecorder();
    await createMysql({ env: {}, driver: fake.load }).connect(
      { ...login, tls: 'prefer' },
      { logger },
    );
    expect(logger.lines.filter((l) => l.level === 'warn').map((l) => l.attributes)).toEqual([
      { host: 'db.internal', port: 3306, user: 'app' },
    ]);
  });
});
