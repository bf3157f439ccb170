import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { clientFor, type MongoEndpoint, parseMongoUrl } from './mongo-admin.js';
import { scriptOutput } from './mysql-server.js';
import { randomName } from './pg-admin.js';

/** Images and versions pinned in one place. */
export const MONGO_IMAGE = 'mongo:8.0';

/** What the server under test implements; tests that need more say so and are skipped. */
export interface MongoCapabilities {
  /** "FerretDB v1.24.0 (MongoDB 7.0.42 wire protocol)", "MongoDB 8.0.4". */
  server: string;
  /** createUser / grantRolesToUser with roles. */
  roles: boolean;
  /** Why not, in the server's own words, when `roles` is false. */
  rolesReason?: string;
  /** createUser with customData. */
  customData: boolean;
  /** A user without privileges is refused user administration (role-based authorization). */
  authorization: boolean;
  /**
   * A user whose name holds "," or "=" signs in: SCRAM sends them escaped (RFC 5802 saslname),
   * and the server must decode them.
   */
  escapedNames: boolean;
}

export interface MongoServer {
  /** An administrator URL (SCRAM), with the authentication database as path. */
  adminUrl: string;
  /** A TLS-only port of the same server, with its CA certificate (PEM), when there is one. */
  tls?: { port: number; ca: string };
  source: 'environment' | 'testcontainers' | 'start-mongo.sh';
  stop(): Promise<void>;
}

const dockerReachable = (): boolean =>
  Boolean(process.env.DOCKER_HOST) || existsSync('/var/run/docker.sock');

async function tlsFromEnvironment(
  env: NodeJS.ProcessEnv,
): Promise<{ port: number; ca: string } | undefined> {
  if (!env.MONGO_TLS_PORT || !env.MONGO_TLS_CA_FILE) return undefined;
  return { port: Number(env.MONGO_TLS_PORT), ca: await readFile(env.MONGO_TLS_CA_FILE, 'utf8') };
}

/**
 * The MongoDB wire-protocol server the integration tests run against, in this order:
 * 1. `MONGO_ADMIN_URL` (CI starts FerretDB with scripts/start-mongo.sh), with `MONGO_TLS_PORT`
 *    and `MONGO_TLS_CA_FILE` for its TLS listener when set;
 * 2. Testcontainers (MongoDB 8, authentication on), when a Docker engine is reachable;
 * 3. scripts/start-mongo.sh on a random port (builds FerretDB the first time).
 * In CI (`CI=true`) only the first is accepted, so a missing server fails loudly.
 */
export async function startMongo(): Promise<MongoServer> {
  const fromEnv = process.env.MONGO_ADMIN_URL;
  if (fromEnv) {
    const tls = await tlsFromEnvironment(process.env);
    return {
      adminUrl: fromEnv,
      ...(tls ? { tls } : {}),
      source: 'environment',
      stop: async () => {},
    };
  }
  if (process.env.CI === 'true') {
    throw new Error('CI=true but MONGO_ADMIN_URL is not set: run scripts/start-mongo.sh first');
  }
  if (dockerReachable()) {
    const { MongoDBContainer } = await import('@testcontainers/mongodb');
    const container = await new MongoDBContainer(MONGO_IMAGE)
      .withUsername('rotation_admin')
      .withPassword('rotation-admin-password')
      .start();
    return {
      // mongodb://user:password@host:port?authSource=admin
      adminUrl: container.getConnectionString(),
      source: 'testcontainers',
      stop: async () => {
        await container.stop();
      },
    };
  }
  const dir = await mkdtemp(join(tmpdir(), 'rotation-mongo-'));
  // Below Linux's ephemeral range (32768-60999), where a client socket could hold it first.
  const port = 20000 + 2 * Math.floor(Math.random() * 500);
  const env = { ...process.env, MONGO_PORT: String(port), MONGO_DATA_DIR: join(dir, 'data') };
  const script = join(import.meta.dirname, '../../scripts/start-mongo.sh');
  const { stdout } = await promisify(execFile)('bash', [script], { env, timeout: 900_000 }).catch(
    (error) => {
      throw new Error(`scripts/start-mongo.sh failed: ${scriptOutput(error)}`);
    },
  );
  const exported = Object.fromEntries(
    [...stdout.matchAll(/^export (\w+)=(.*)$/gm)].map((match) => [match[1], match[2]]),
  );
  const adminUrl = exported.MONGO_ADMIN_URL;
  if (!adminUrl) throw new Error(`scripts/start-mongo.sh printed no MONGO_ADMIN_URL: ${stdout}`);
  const tls = await tlsFromEnvironment(exported);
  return {
    adminUrl,
    ...(tls ? { tls } : {}),
    source: 'start-mongo.sh',
    stop: async () => {
      await promisify(execFile)('bash', [script, '--stop'], { env });
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const describeError = (error: unknown): string => {
  const { code, codeName, message } = error as {
    code?: unknown;
    codeName?: unknown;
    message?: unknown;
  };
  return `${String(codeName ?? 'error')} (code ${String(code)}): ${String(message)}`;
};

/**
 * Finds out what the server implements, and first that it enforces authentication at all: a
 * wrong password must be refused, or nothing the tests show would mean anything.
 */
export async function probeMongo(adminUrl: string): Promise<MongoCapabilities> {
  const endpoint: MongoEndpoint = parseMongoUrl(adminUrl);
  const admin = {
    host: endpoint.host,
    port: endpoint.port,
    user: endpoint.username,
    password: endpoint.password,
    database: endpoint.authSource,
  };

  const intruder = clientFor({ ...admin, password: `${admin.password}-wrong` });
  const refused = await intruder
    .connect()
    .then(() => intruder.db('admin').command({ connectionStatus: 1 }))
    .then(
      () => false,
      (error: { code?: unknown }) => error.code === 18,
    );
  await intruder.close();
  if (!refused) {
    throw new Error(
      `the MongoDB server at ${endpoint.host}:${endpoint.port} accepted a wrong password`,
    );
  }

  const client = clientFor(admin);
  await client.connect();
  const db = client.db('admin');
  try {
    const build = await db.command({ buildInfo: 1 });
    const server =
      typeof build.ferretdbVersion === 'string'
        ? `FerretDB ${build.ferretdbVersion} (MongoDB ${build.version} wire protocol)`
        : `MongoDB ${build.version}`;

    const attempt = async (command: Record<string, unknown>) => {
      try {
        await db.command(command);
        return undefined;
      } catch (error) {
        return describeError(error);
      }
    };
    const probeUser = randomName('probe');
    const rolesFailure = await attempt({
      createUser: probeUser,
      pwd: 'probe-password-1',
      roles: [{ role: 'read', db: 'admin' }],
    });
    const markedUser = randomName('probe');
    const customDataFailure = await attempt({
      createUser: markedUser,
      pwd: 'probe-password-1',
      roles: [],
      customData: { probe: true },
    });

    // A user with no role tries to read another user: refused where authorization exists.
    const weak = randomName('probe');
    await db.command({ createUser: weak, pwd: 'probe-password-1', roles: [] });
    const weakClient = clientFor({
      ...admin,
      user: weak,
      password: 'probe-password-1',
      database: 'admin',
    });
    const authorization = await weakClient
      .connect()
      .then(() => weakClient.db('admin').command({ usersInfo: admin.user }))
      .then(
        () => false,
        (error: { code?: unknown }) => error.code === 13,
      );
    await weakClient.close();

    const oddName = `${randomName('probe')},n=x`;
    await db.command({ createUser: oddName, pwd: 'probe-password-1', roles: [] });
    const odd = clientFor({
      ...admin,
      user: oddName,
      password: 'probe-password-1',
      database: 'admin',
    });
    const escapedNames = await odd
      .connect()
      .then(() => odd.db('admin').command({ connectionStatus: 1 }))
      .then(
        () => true,
        () => false,
      );
    await odd.close();

    for (const name of [probeUser, markedUser, weak, oddName]) {
      await db.command({ dropUser: name }).catch(() => {});
    }
    return {
      server,
      roles: rolesFailure === undefined,
      ...(rolesFailure === undefined ? {} : { rolesReason: rolesFailure }),
      customData: customDataFailure === undefined,
      authorization,
      escapedNames,
    };
  } finally {
    await client.close();
  }
}
