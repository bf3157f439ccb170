import { createHash } from 'node:crypto';
import type { Client } from 'pg';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ConnectionError,
  ConnectTimeoutError,
  DatabaseError,
  InvalidSecretError,
  TlsError,
} from '../../shared/common/errors.js';
import { createPostgres, type PostgresOptions } from '../../shared/databases/postgres.js';
import type { Database, Login } from '../../shared/databases/types.js';
import { type FakeHandler, FakePgServer, type FakeRow } from '../support/fake-pg-server.js';
import { selfSignedCertificate } from '../support/self-signed.js';

// Kept before any test fakes the timers: waits on the real clock.
const realSetTimeout = globalThis.setTimeout;
const sleep = (ms: number) => new Promise((resolve) => realSetTimeout(resolve, ms));
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (condition()) return;
    await sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Settles `promise` into an inspectable box, so a test can check it is still pending. */
function track<T>(promise: Promise<T>) {
  const box: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    (value) => Object.assign(box, { settled: true, value }),
    (error: unknown) => Object.assign(box, { settled: true, error }),
  );
  return box;
}

const servers: FakePgServer[] = [];
const clients: Client[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const client of clients.splice(0)) await client.end().catch(() => {});
  for (const server of servers.splice(0)) await server.stop();
});

async function serve(options: Parameters<typeof FakePgServer.start>[0] = {}) {
  const server = await FakePgServer.start(options);
  servers.push(server);
  return server;
}

const loginTo = (server: FakePgServer, extra: Partial<Login> = {}): Login => ({
  host: '127.0.0.1',
  port: server.port,
  user: 'app',
  password: 'Pa55-word',
  database: 'postgres',
  tls: 'disable',
  ...extra,
});

async function session(
  handler?: FakeHandler,
  options: PostgresOptions = {},
  server?: FakePgServer,
) {
  const fake = server ?? (await serve({ handler }));
  const db = createPostgres(options);
  const client = await db.connect(loginTo(fake));
  clients.push(client);
  return { fake, db, client };
}

const fails = (pattern: RegExp, code: string, message: string): FakeHandler => {
  return (sql) => (pattern.test(sql) ? { error: { code, message } } : undefined);
};

const settings = (method: string, encoding: string): FakeHandler => {
  return (sql) =>
    sql.includes("current_setting('password_encryption')")
      ? { rows: [{ method, encoding }] }
      : undefined;
};

const md5Of = (password: string, user: string) =>
  `md5${createHash('md5')
    .update(Buffer.from(password + user, 'utf8'))
    .digest('hex')}`;

/** The adapter's clone check (optional in Database; PostgreSQL has it). */
function verifyClone(db: Database<Client>, client: Client, clone: string, original: string) {
  if (db.verifyClone === undefined) throw new Error('the PostgreSQL adapter checks clones');
  return db.verifyClone(client, clone, original);
}

const sent = (fake: FakePgServer, pattern: RegExp) =>
  fake.statements.filter((statement) => pattern.test(statement.sql));

describe('postgres sessions', () => {
  it('pins search_path, the role and the configured timeouts before any statement of ours', async () => {
    const { fake } = await session(undefined, {
      statementTimeoutMs: 1234,
      idleInTransactionTimeoutMs: 777,
    });
    const pin = fake.statements[0]?.sql ?? '';
    expect(pin).toContain('SET search_path = pg_catalog, pg_temp');
    expect(pin).toContain('SET ROLE NONE');
    expect(pin).toContain('SET statement_timeout = 1234');
    expect(pin).toContain('SET lock_timeout = 1234');
    expect(pin).toContain('SET idle_in_transaction_session_timeout = 777');
  });

  it('a server that refuses a pinned setting fails the connect naming that step, and the session is ended', async () => {
    // PostgreSQL 9.5 has no idle_in_transaction_session_timeout.
    const fake = await serve({
      handler: fails(
        /SET search_path/,
        '42704',
        'unrecognized configuration parameter "idle_in_transaction_session_timeout"',
      ),
    });
    const failure = await createPostgres()
      .connect(loginTo(fake))
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ConnectionError);
    expect((failure as Error).message).toContain('pinning the session settings');
    await until(() => fake.sessions[0]?.terminated === true, 'the goodbye');
  });

  it("gives up on a server that never answers the sign-in after the caller's timeoutMs", async () => {
    const fake = await serve({ silentStartup: true });
    const started = Date.now();
    const failure = await createPostgres({ connectTimeoutMs: 60_000 })
      .connect(loginTo(fake), { timeoutMs: 100 })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ConnectTimeoutError);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('gives up after connectTimeoutMs when the caller gives no timeout', async () => {
    const fake = await serve({ silentStartup: true });
    const failure = await createPostgres({ connectTimeoutMs: 100 })
      .connect(loginTo(fake))
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ConnectTimeoutError);
  });

  it('gives up after 10 s by default', async () => {
    const fake = await serve({ silentStartup: true });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const connecting = track(createPostgres().connect(loginTo(fake)));
    await until(() => fake.sessions.length === 1, 'the sign-in');
    vi.advanceTimersByTime(9_999);
    await sleep(50);
    expect(connecting.settled).toBe(false);
    vi.advanceTimersByTime(1);
    await until(() => connecting.settled, 'the connect to fail');
    expect(connecting.error).toBeInstanceOf(ConnectTimeoutError);
  });

  it('"ssl": true refuses an untrusted certificate even where NODE_TLS_REJECT_UNAUTHORIZED=0 turns verification off by default', async () => {
    const fake = await serve({ tls: await selfSignedCertificate() });
    const before = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    try {
      const failure = await createPostgres()
        .connect(loginTo(fake, { tls: 'verify' }), { timeoutMs: 2_000 })
        .catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(TlsError);
      expect(fake.statements).toEqual([]);
    } finally {
      if (before === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
      else process.env.NODE_TLS_REJECT_UNAUTHORIZED = before;
      warn.mockRestore();
    }
  });

  it('a session the server ends (57P01) fails its next statement instead of crashing the process', async () => {
    const uncaught: unknown[] = [];
    const record = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', record);
    try {
      const { fake, db, client } = await session();
      fake.terminateSessions();
      await fake.sessions[0]?.closed;
      await sleep(50);
      await expect(db.ping(client)).rejects.toBeInstanceOf(DatabaseError);
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', record);
    }
  });
});

describe('postgres statement deadlines', () => {
  it('without a deadline, a statement left unanswered fails after statement_timeout plus 5 s, and its connection is dropped', async () => {
    const { fake, db, client } = await session(
      (sql) => (sql === 'SELECT 1' ? 'silence' : undefined),
      {
        statementTimeoutMs: 200,
      },
    );
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const ping = track(db.ping(client));
    await until(() => sent(fake, /^SELECT 1$/).length === 1 || ping.settled, 'the statement');
    expect(ping.settled).toBe(false);
    vi.advanceTimersByTime(5_199);
    await sleep(50);
    expect(ping.settled).toBe(false);
    vi.advanceTimersByTime(1);
    await until(() => ping.settled, 'the statement to fail');
    expect(ping.error).toBeInstanceOf(ConnectTimeoutError);
    expect((ping.error as Error).cause).toBeInstanceOf(Error);
    // Dropped, not ended: the connection's state is unknown, so no goodbye is attempted.
    await fake.sessions[0]?.closed;
    expect(fake.sessions[0]?.terminated).toBe(false);
  });

  it('a deadline reached exactly fails the next statement before it is sent', async () => {
    const fake = await serve();
    vi.useFakeTimers({ toFake: ['Date'] });
    const now = Date.now();
    const db = createPostgres();
    const client = await db.connect(loginTo(fake), { deadline: now + 60_000 });
    clients.push(client);
    vi.setSystemTime(now + 60_000);
    await expect(db.ping(client)).rejects.toBeInstanceOf(ConnectTimeoutError);
    expect(sent(fake, /^SELECT 1$/)).toEqual([]);
  });

  it('a deadline that passes while the password format is read stops the clone with a timeout, creating nothing', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const now = Date.now();
    const fake = await serve({
      handler: (sql) => {
        if (sql.includes("current_setting('password_encryption')")) vi.setSystemTime(now + 60_000);
        return undefined;
      },
    });
    const db = createPostgres();
    const client = await db.connect(loginTo(fake), { deadline: now + 60_000 });
    clients.push(client);
    await expect(db.createUserLike(client, 'app_clone', 'n3w-Pass', 'app')).rejects.toBeInstanceOf(
      ConnectTimeoutError,
    );
    expect(sent(fake, /CREATE ROLE|BEGIN/)).toEqual([]);
  });
});

describe('postgres password verifiers', () => {
  const alterRole = (fake: FakePgServer) => sent(fake, /^ALTER ROLE/).map((s) => s.sql);

  it.each([
    ['LATIN1', 'plain-ASCII-pass', 'app'],
    ['UTF8', 'pässwörd', 'app'],
    // SQL_ASCII stores the bytes as sent: ours, UTF-8.
    ['SQL_ASCII', 'pässwörd', 'app'],
    ['SQL_ASCII', 'Pa55', 'äpp'],
  ])(
    'md5 on a %s server with password %s for user %s: the md5 verifier, never the password',
    async (encoding, password, user) => {
      const { fake, db, client } = await session(settings('md5', encoding));
      await db.setPassword(client, user, password);
      expect(alterRole(fake)).toEqual([
        `ALTER ROLE "${user}" WITH PASSWORD '${md5Of(password, user)}'`,
      ]);
    },
  );

  it.each([
    ['pässwörd', 'app'],
    ['Pa55', 'äpp'],
    ['tab\there', 'app'],
  ])(
    'md5 on a LATIN1 server refuses password %s for user %s (the server would hash other bytes)',
    async (password, user) => {
      const { fake, db, client } = await session(settings('md5', 'LATIN1'));
      const failure = await db.setPassword(client, user, password).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(InvalidSecretError);
      expect((failure as InvalidSecretError).field).toBe('password');
      expect((failure as Error).message).toContain('LATIN1');
      expect((failure as Error).message).not.toContain(password);
      expect(alterRole(fake)).toEqual([]);
    },
  );

  it('refuses a password_encryption it cannot compute, naming it, and sends no password', async () => {
    const { fake, db, client } = await session(settings('crypt', 'UTF8'));
    const failure = await db.setPassword(client, 'app', 'Pa55').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(InvalidSecretError);
    expect((failure as InvalidSecretError).field).toBe('password');
    expect((failure as Error).message).toContain('"crypt"');
    expect(alterRole(fake)).toEqual([]);
  });

  it('refuses a non-ASCII password under SCRAM, saying it would need SASLprep', async () => {
    const { fake, db, client } = await session();
    const failure = await db
      .setPassword(client, 'app', 'pässwörd')
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(InvalidSecretError);
    expect((failure as Error).message).toContain('SASLprep');
    expect(alterRole(fake)).toEqual([]);
  });
});

describe('postgres failures name the step', () => {
  // As an Aurora reader answers a writer's statement.
  const readOnly = {
    error: { code: '25006', message: 'cannot execute statement in a read-only transaction' },
  };
  it.each([
    ['reading password_encryption', /current_setting\('password_encryption'\)/, 'setPassword'],
    ['changing the password', /^BEGIN$/, 'setPassword'],
    ['changing the password', /^ALTER ROLE/, 'setPassword'],
    ['looking up', /pg_roles WHERE rolname/, 'userExists'],
    ['creating', /pg_advisory_xact_lock/, 'createUserLike'],
    ['creating', /^CREATE ROLE/, 'createUserLike'],
    ['granting role "app"', /^GRANT/, 'createUserLike'],
    ['checking the clone', /r\.rolsuper/, 'verifyClone'],
    ['checking the roles of the clone', /is_original/, 'verifyClone'],
    ['running a test query', /^SELECT 1$/, 'ping'],
  ] as const)(
    'a failure while %s says so (%s in %s), naming the user',
    async (step, pattern, operation) => {
      const { db, client } = await session((sql, _params) => {
        if (pattern.test(sql)) return readOnly;
        if (/r\.rolsuper/.test(sql)) return { rows: [role('app_clone'), role('app')] };
        return undefined;
      });
      const calls = {
        setPassword: () => db.setPassword(client, 'app', 'n3w-Pass'),
        userExists: () => db.userExists(client, 'app'),
        createUserLike: () => db.createUserLike(client, 'app_clone', 'n3w-Pass', 'app'),
        verifyClone: () => verifyClone(db, client, 'app_clone', 'app'),
        ping: () => db.ping(client),
      };
      const failure = await calls[operation]().catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(DatabaseError);
      expect((failure as Error).message).toContain(step);
      const user =
        operation === 'createUserLike' || operation === 'verifyClone' ? 'app_clone' : 'app';
      expect((failure as Error).message).toContain(`user "${user}"`);
    },
  );
});

const role = (rolname: string, extra: Partial<Record<string, boolean>> = {}): FakeRow => ({
  rolname,
  rolsuper: false,
  rolcreaterole: false,
  rolcreatedb: false,
  rolreplication: false,
  rolbypassrls: false,
  ...extra,
});

const reach = (rolname: string, extra: Partial<Record<string, boolean>> = {}): FakeRow => ({
  rolname,
  is_original: rolname === 'app',
  original_member: true,
  clone_usage: true,
  original_usage: true,
  clone_admin: false,
  original_admin: false,
  clone_set: true,
  original_set: true,
  ...extra,
});

describe('postgres clone checks', () => {
  const catalogue =
    (roles: FakeRow[], reached: FakeRow[]): FakeHandler =>
    (sql) => {
      if (/r\.rolsuper/.test(sql)) return { rows: roles };
      if (/is_original/.test(sql)) return { rows: reached };
      return undefined;
    };

  it('takes over a clone that reaches exactly what its original does', async () => {
    const { db, client } = await session(
      catalogue([role('app_clone'), role('app')], [reach('app'), reach('readers')]),
    );
    await expect(verifyClone(db, client, 'app_clone', 'app')).resolves.toBeUndefined();
  });

  it.each([
    ['the original', [role('app_clone')]],
    ['the clone', [role('app')]],
  ])(
    'refuses when %s cannot be read under exactly its name, whatever the memberships say',
    async (_, roles) => {
      const { db, client } = await session(catalogue(roles, [reach('app'), reach('readers')]));
      const failure = await verifyClone(db, client, 'app_clone', 'app').catch(
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(InvalidSecretError);
      expect((failure as InvalidSecretError).field).toBe('username');
    },
  );

  it('refuses a clone that may SET a role its original may not (PostgreSQL 16)', async () => {
    const { db, client } = await session(
      catalogue(
        [role('app_clone'), role('app')],
        [reach('app'), reach('owners', { original_set: false })],
      ),
    );
    const failure = await verifyClone(db, client, 'app_clone', 'app').catch(
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(InvalidSecretError);
    expect((failure as InvalidSecretError).field).toBe('username');
    expect((failure as Error).message).toContain('"owners" (SET)');
  });
});

describe('postgres close', () => {
  it('returns after about a second when the server never acknowledges the goodbye, and frees the socket', async () => {
    const fake = await serve({ ignoreTerminate: true });
    const { db, client } = await session(undefined, {}, fake);
    const socket = (client as unknown as { connection: { stream: { destroyed: boolean } } })
      .connection.stream;
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const closing = track(db.close(client));
    await until(() => fake.sessions[0]?.terminated === true, 'the goodbye');
    await sleep(50);
    expect(closing.settled).toBe(false);
    vi.advanceTimersByTime(1_000);
    await until(() => closing.settled, 'close to return');
    expect(closing.error).toBeUndefined();
    expect(socket.destroyed).toBe(true);
  });

  it('leaves no timer behind when the server says goodbye', async () => {
    const { fake, db, client } = await session();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    await db.close(client);
    expect(fake.sessions[0]?.terminated).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });
});
