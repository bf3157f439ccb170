/**
 * One application process of the soak (`npm run soak`, scripts/soak.ts forks it): it reads its
 * credentials the way one kind of real application does, then, until the parent says stop,
 * opens a new connection and runs a query every tick, and runs a query on each of its pooled
 * connections (opened before the first rotation, kept open). It reports counts, never values.
 *
 * Clients (each a library nobody here wrote):
 * - `wrapper`: aws-advanced-nodejs-wrapper (pg / mysql2) with its `secretsManager` plugin, which
 *   caches the secret (2.0.1, the release on npm: until a refusal; `secretExpirationSec` came in
 *   2.1) and re-reads AWSCURRENT once when a sign-in is refused;
 * - `powertools`: `@aws-lambda-powertools/parameters` SecretsProvider.get with `maxAge`; on an
 *   authentication failure it retries once with `forceFetch` and, when AWSCURRENT is still the
 *   value that was just refused (the single-user window), with AWSPENDING;
 * - `naive`: GetSecretValue once, cached for an hour (the baseline of doing nothing).
 */
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { MongoClient } from 'mongodb';
import mysql from 'mysql2/promise';
import pg from 'pg';

export type DbTarget = 'postgres' | 'mysql' | 'mongodb';
export type ApiTarget = 'sendgrid' | 'stripe' | 'twilio';
export type ClientKind = 'wrapper' | 'powertools' | 'naive';

export interface ClientConfig {
  target: DbTarget | ApiTarget;
  client: ClientKind;
  secretId: string;
  endpoint: string;
  region: string;
  tickMs: number;
  /** How long the client keeps a secret before reading it again, in seconds. */
  cacheSeconds: number;
  pooled: number;
  /** API keys: where the provider's fake listens. */
  providerBaseUrl?: string;
  stripeApiVersion?: string;
}

export interface ClientReport {
  signIns: number;
  failedSignIns: number;
  queries: number;
  failedQueries: number;
  longestOutageMs: number;
  pooledOpened: number;
  pooledSurviving: number;
  secretReads: number;
  /** Kinds of failure seen (error codes or names), with counts: never a message with a value. */
  failures: Record<string, number>;
}

interface Credentials {
  username: string;
  password: string;
  raw: Record<string, unknown>;
}

/** A connection the application holds; `query` runs a harmless query or API call on it. */
interface Connection {
  query(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens `client` and gives the application's view of it: `query` runs `work`, `close` ends it.
 * A client whose connect fails is closed before the error goes on, so a refused sign-in leaves
 * no socket behind.
 */
async function held(
  client: { connect(): Promise<unknown> },
  work: () => Promise<unknown>,
  close: () => Promise<unknown>,
): Promise<Connection> {
  try {
    await client.connect();
  } catch (error) {
    await close().catch(() => {});
    throw error;
  }
  return { query: async () => void (await work()), close: async () => void (await close()) };
}

/** How one target is reached with explicit credentials (naive and Powertools clients). */
interface Driver {
  connect(credentials: Credentials): Promise<Connection>;
}

class AuthFailure extends Error {}

/** An authentication refusal, as each driver reports it (and as the wrapper's plugin tests it). */
export function isAuthFailure(error: unknown): boolean {
  if (error instanceof AuthFailure) return true;
  const e = error as { code?: unknown; errno?: unknown; message?: unknown; cause?: unknown };
  if (e?.code === '28P01' || e?.errno === 1045 || e?.code === 'ER_ACCESS_DENIED_ERROR') return true;
  // MongoDB AuthenticationFailed (18), possibly wrapped by the driver.
  if (e?.code === 18 || (e?.cause as { code?: unknown } | undefined)?.code === 18) return true;
  const message = typeof e?.message === 'string' ? e.message : '';
  return (
    message.includes('password authentication failed') ||
    message.includes('Access denied') ||
    message.includes('Authentication failed')
  );
}

const failureKind = (error: unknown): string => {
  if (isAuthFailure(error)) return 'auth';
  const e = error as { code?: unknown; name?: unknown };
  return String(e?.code ?? e?.name ?? 'error');
};

function dbDriver(target: DbTarget): Driver {
  if (target === 'postgres') {
    return {
      async connect({ raw, username, password }) {
        const client = new pg.Client({
          host: String(raw.host),
          port: Number(raw.port),
          database: String(raw.dbname ?? 'postgres'),
          user: username,
          password,
          connectionTimeoutMillis: 5_000,
        });
        client.on('error', () => {});
        return held(
          client,
          () => client.query('SELECT 1'),
          () => client.end(),
        );
      },
    };
  }
  if (target === 'mysql') {
    return {
      async connect({ raw, username, password }) {
        const connection = await mysql.createConnection({
          host: String(raw.host),
          port: Number(raw.port),
          user: username,
          password,
          connectTimeout: 5_000,
        });
        connection.on('error', () => {});
        return {
          query: async () => void (await connection.query('SELECT 1')),
          close: () => connection.end(),
        };
      },
    };
  }
  return {
    async connect({ raw, username, password }) {
      const client = new MongoClient(`mongodb://${String(raw.host)}:${Number(raw.port)}/`, {
        auth: { username, password },
        authSource: String(raw.dbname ?? 'admin'),
        directConnection: true,
        retryWrites: false,
        serverSelectionTimeoutMS: 5_000,
        connectTimeoutMS: 5_000,
        maxPoolSize: 1,
      });
      return held(
        client,
        () => client.db('admin').command({ ping: 1 }),
        () => client.close(),
      );
    },
  };
}

/** An API-key "connection": the provider's cheap authenticated call with the key. */
async function apiDriver(config: ClientConfig): Promise<Driver> {
  const baseUrl = config.providerBaseUrl as string;
  const { AuthenticationError } = await import('../shared/common/errors.js');
  const provider =
    config.target === 'sendgrid'
      ? (await import('../shared/providers/sendgrid.js')).createSendGrid({ baseUrl })
      : config.target === 'stripe'
        ? (await import('../shared/providers/stripe.js')).createStripe({
            baseUrl,
            apiVersion: config.stripeApiVersion,
          })
        : (await import('../shared/providers/twilio.js')).createTwilio({
            apiBaseUrl: baseUrl,
            iamBaseUrl: baseUrl,
          });
  const call = {
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    remainingMs: () => 10_000,
  };
  const typed = provider as unknown as {
    parseSpec(raw: Record<string, unknown>, source: string): unknown;
    verify(key: { id: string; key: string; spec: unknown }, call: unknown): Promise<unknown>;
  };
  return {
    async connect({ raw }) {
      const key = { id: String(raw.key_id), key: String(raw.key), spec: typed.parseSpec(raw, '') };
      const once = async () => {
        try {
          await typed.verify(key, call);
        } catch (error) {
          throw error instanceof AuthenticationError ? new AuthFailure('key refused') : error;
        }
      };
      // An API call has no sign-in apart from the call: the call is the sign-in (retried by
      // the client on a refusal), and the "query" on the result has nothing more to do.
      await once();
      return { query: async () => {}, close: async () => {} };
    },
  };
}

/** The credentials source and sign-in behaviour of one client kind. */
interface Application {
  /** A new connection, signed in as this client signs in (its retries included). */
  connect(): Promise<Connection>;
  reads(): number;
  signInAttempts: { ok: number; refused: number; lastRefusedAt?: number; outageStart?: number };
}

function credentialsOf(secretString: string | undefined): Credentials {
  const raw = JSON.parse(secretString ?? '{}') as Record<string, unknown>;
  return { username: String(raw.username), password: String(raw.password), raw };
}

function applicationFor(config: ClientConfig, driver: Driver | undefined): Application {
  const attempts: Application['signInAttempts'] = { ok: 0, refused: 0 };
  const tryDriver = async (credentials: Credentials) => {
    try {
      const connection = await (driver as Driver).connect(credentials);
      attempts.ok++;
      return connection;
    } catch (error) {
      if (isAuthFailure(error)) attempts.refused++;
      throw error;
    }
  };

  if (config.client === 'naive') {
    const sm = new SecretsManagerClient({ endpoint: config.endpoint, region: config.region });
    let cached: { credentials: Credentials; at: number } | undefined;
    let reads = 0;
    return {
      signInAttempts: attempts,
      reads: () => reads,
      async connect() {
        if (!cached || Date.now() - cached.at > config.cacheSeconds * 1000) {
          reads++;
          const out = await sm.send(new GetSecretValueCommand({ SecretId: config.secretId }));
          cached = { credentials: credentialsOf(out.SecretString), at: Date.now() };
        }
        return tryDriver(cached.credentials);
      },
    };
  }

  if (config.client === 'powertools') {
    let reads = 0;
    const countReads = (client: SecretsManagerClient) =>
      // Powertools answers from its cache within maxAge: count only the calls that go out.
      client.middlewareStack.add(
        (next) => (args) => {
          reads++;
          return next(args);
        },
        { step: 'initialize', name: 'soakCountReads' },
      );
    const clientConfig = { endpoint: config.endpoint, region: config.region };
    const provider = new SecretsProvider({ clientConfig });
    // Its own provider: Powertools keys its cache by name and transform only, so reading
    // AWSPENDING through the same one would replace the cached AWSCURRENT.
    const pendingProvider = new SecretsProvider({ clientConfig });
    countReads(provider.client);
    countReads(pendingProvider.client);
    const read = async (options: { forceFetch?: boolean; stage?: string } = {}) => {
      const value = await (options.stage ? pendingProvider : provider).get(config.secretId, {
        maxAge: config.cacheSeconds,
        forceFetch: options.forceFetch ?? false,
        ...(options.stage ? { sdkOptions: { VersionStage: options.stage } } : {}),
      });
      return credentialsOf(value as string);
    };
    return {
      signInAttempts: attempts,
      reads: () => reads,
      async connect() {
        const first = await read();
        try {
          return await tryDriver(first);
        } catch (error) {
          if (!isAuthFailure(error)) throw error;
        }
        // One retry. A fresh AWSCURRENT that is still the refused value means the rotation is
        // between setSecret and finishSecret (single user): AWSPENDING is the password now.
        const fresh = await read({ forceFetch: true });
        const retryWith =
          JSON.stringify(fresh.raw) === JSON.stringify(first.raw)
            ? await read({ forceFetch: true, stage: 'AWSPENDING' }).catch(() => fresh)
            : fresh;
        return tryDriver(retryWith);
      },
    };
  }

  // wrapper: the plugin reads the secret itself; only pg and mysql2 are wrapped.
  let counting: Promise<void> | undefined;
  return {
    signInAttempts: attempts,
    reads: () => 0,
    async connect() {
      counting ??= countWrapperSignIns(config.target, attempts);
      await counting;
      const props = {
        host: '',
        port: 0,
        plugins: 'secretsManager',
        secretId: config.secretId,
        secretRegion: config.region,
        secretEndpoint: config.endpoint,
        // No cache age: 2.0.1, the release on npm, keeps the secret until a sign-in is refused
        // (`secretExpirationSec` came later, and mysql2 warns about it as an unknown option).
      };
      const info = wrapperTarget;
      if (!info) throw new Error('wrapper target not resolved');
      props.host = info.host;
      props.port = info.port;
      if (config.target === 'postgres') {
        const { AwsPGClient } = await import('aws-advanced-nodejs-wrapper/pg');
        const client = new AwsPGClient({ ...props, database: info.dbname ?? 'postgres' });
        return held(
          client,
          () => client.query('SELECT 1'),
          () => client.end(),
        );
      }
      const { AwsMySQLClient } = await import('aws-advanced-nodejs-wrapper/mysql');
      const client = new AwsMySQLClient(props);
      return held(
        client,
        () => client.query('SELECT 1'),
        () => client.end(),
      );
    },
  };
}

/**
 * The wrapper's plugin retries inside `connect()`, so its refused attempts are invisible from
 * outside: count them where the wrapper hands the sign-in to the driver (its driver dialect).
 * The dialect modules are loaded by file URL: the package's exports map hides them, and the
 * same file is the same module instance the wrapper uses.
 */
async function countWrapperSignIns(
  target: ClientConfig['target'],
  attempts: Application['signInAttempts'],
): Promise<void> {
  const root = new URL('../node_modules/aws-advanced-nodejs-wrapper/dist/', import.meta.url);
  const file =
    target === 'postgres'
      ? 'pg/lib/dialect/node_postgres_driver_dialect.js'
      : 'mysql/lib/dialect/mysql2_driver_dialect.js';
  const module = (await import(new URL(file, root).href)) as Record<
    string,
    { prototype: { connect: (...args: unknown[]) => Promise<unknown> } }
  >;
  const dialect = module.NodePostgresDriverDialect ?? module.MySQL2DriverDialect;
  if (!dialect) throw new Error('wrapper driver dialect not found');
  const original = dialect.prototype.connect;
  dialect.prototype.connect = async function (this: unknown, ...args: unknown[]) {
    try {
      const connection = await original.apply(this, args);
      attempts.ok++;
      return connection;
    } catch (error) {
      if (isAuthFailure(error)) attempts.refused++;
      throw error;
    }
  };
}

/** Host and port for the wrapper, read once from the secret (the wrapper takes them as props). */
let wrapperTarget: { host: string; port: number; dbname?: string } | undefined;

async function main() {
  const config = JSON.parse(
    Buffer.from(process.argv[2] ?? '', 'base64').toString(),
  ) as ClientConfig;
  const isApi = ['sendgrid', 'stripe', 'twilio'].includes(config.target);
  if (config.client === 'wrapper') {
    const sm = new SecretsManagerClient({ endpoint: config.endpoint, region: config.region });
    const raw = credentialsOf(
      (await sm.send(new GetSecretValueCommand({ SecretId: config.secretId }))).SecretString,
    ).raw;
    wrapperTarget = {
      host: String(raw.host),
      port: Number(raw.port),
      dbname: typeof raw.dbname === 'string' ? raw.dbname : undefined,
    };
  }
  const driver =
    config.client === 'wrapper'
      ? undefined
      : isApi
        ? await apiDriver(config)
        : dbDriver(config.target as DbTarget);
  const app = applicationFor(config, driver);
  const report: ClientReport = {
    signIns: 0,
    failedSignIns: 0,
    queries: 0,
    failedQueries: 0,
    longestOutageMs: 0,
    pooledOpened: 0,
    pooledSurviving: 0,
    secretReads: 0,
    failures: {},
  };
  const fail = (error: unknown) => {
    const kind = failureKind(error);
    report.failures[kind] = (report.failures[kind] ?? 0) + 1;
  };

  const pool: { connection: Connection; alive: boolean }[] = [];
  for (let i = 0; i < config.pooled; i++) {
    pool.push({ connection: await app.connect(), alive: true });
  }
  report.pooledOpened = pool.length;

  let stopping = false;
  process.on('message', (message) => {
    if (message === 'stop') stopping = true;
  });
  process.send?.('ready');

  // The outage: from the first refused sign-in after a successful one to the next success.
  let outageSince: number | undefined;
  while (!stopping) {
    const tickStarted = Date.now();
    const before = app.signInAttempts.refused;
    report.queries++;
    try {
      const connection = await app.connect();
      try {
        await connection.query();
      } finally {
        await connection.close().catch(() => {});
      }
      if (outageSince !== undefined) {
        report.longestOutageMs = Math.max(report.longestOutageMs, Date.now() - outageSince);
        outageSince = undefined;
      }
    } catch (error) {
      report.failedQueries++;
      fail(error);
      if (isAuthFailure(error) && outageSince === undefined) outageSince = tickStarted;
    }
    if (app.signInAttempts.refused > before && outageSince === undefined) {
      // Refused, then signed in on the retry: the outage is that retry's duration.
      report.longestOutageMs = Math.max(report.longestOutageMs, Date.now() - tickStarted);
    }
    for (const held of pool) {
      if (!held.alive) continue;
      report.queries++;
      try {
        await held.connection.query();
      } catch (error) {
        held.alive = false;
        report.failedQueries++;
        fail(error);
      }
    }
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, config.tickMs - (Date.now() - tickStarted))),
    );
  }
  if (outageSince !== undefined) {
    report.longestOutageMs = Math.max(report.longestOutageMs, Date.now() - outageSince);
  }
  report.pooledSurviving = pool.filter((held) => held.alive).length;
  for (const held of pool) await held.connection.close().catch(() => {});
  report.signIns = app.signInAttempts.ok + app.signInAttempts.refused;
  report.failedSignIns = app.signInAttempts.refused;
  report.secretReads = app.reads();
  process.send?.({ report });
}

main().then(
  () => process.exit(0),
  (error) => {
    // Kinds only: a driver's message could name a value in some future version.
    console.error(`soak client failed: ${failureKind(error)}`);
    process.exit(2);
  },
);
