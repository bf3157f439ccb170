import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** Images and versions pinned in one place. */
export const MYSQL_IMAGE = 'mysql:8.4';

export interface MysqlServer {
  /** An admin URL (ALL PRIVILEGES WITH GRANT OPTION, password authentication). */
  adminUrl: string;
  /** Where it came from, for the test report. */
  source: 'environment' | 'testcontainers' | 'local mariadb';
  stop(): Promise<void>;
}

const dockerReachable = (): boolean =>
  Boolean(process.env.DOCKER_HOST) || existsSync('/var/run/docker.sock');

/** What a failed script said on stderr (its last lines), for the reason a server did not start. */
export function scriptOutput(error: unknown): string {
  const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
  const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
  return stderr ? stderr.split('\n').slice(-5).join(' | ') : (message ?? 'no output');
}

const MARIADB_BINARIES = ['/usr/sbin/mariadbd', '/usr/sbin/mysqld'];

/**
 * The MySQL or MariaDB the integration tests run against, in this order:
 * 1. `MYSQL_ADMIN_URL` (CI starts a MariaDB with scripts/start-mariadb.sh);
 * 2. Testcontainers with MySQL 8.4, when a Docker engine is reachable;
 * 3. a MariaDB already installed on this machine, started by scripts/start-mariadb.sh on a
 *    random port in a temporary folder (the script is not allowed to install anything here).
 * In CI (`CI=true`) only the first is accepted, so a missing database fails loudly.
 */
export async function startMysql(): Promise<MysqlServer> {
  const fromEnv = process.env.MYSQL_ADMIN_URL;
  if (fromEnv) return { adminUrl: fromEnv, source: 'environment', stop: async () => {} };
  if (process.env.CI === 'true') {
    throw new Error('CI=true but MYSQL_ADMIN_URL is not set: run scripts/start-mariadb.sh first');
  }
  if (dockerReachable()) {
    const { MySqlContainer } = await import('@testcontainers/mysql');
    const container = await new MySqlContainer(MYSQL_IMAGE)
      .withRootPassword('rotation-admin-password')
      .withDatabase('rotation_test')
      .start();
    return {
      adminUrl: container.getConnectionUri(true),
      source: 'testcontainers',
      stop: async () => {
        await container.stop();
      },
    };
  }
  if (MARIADB_BINARIES.some((path) => existsSync(path))) {
    const dir = await mkdtemp(join(tmpdir(), 'rotation-mariadb-'));
    // As root, the script runs the server as the mysql user, which must reach its data folder.
    await chmod(dir, 0o755);
    const env = {
      ...process.env,
      // Below Linux's ephemeral range (32768-60999), where a client socket could hold it first.
      MYSQL_PORT: String(30000 + Math.floor(Math.random() * 2000)),
      MYSQL_DATA_DIR: join(dir, 'server'),
      MARIADB_NO_INSTALL: 'true',
    };
    const script = join(import.meta.dirname, '../../scripts/start-mariadb.sh');
    const { stdout } = await promisify(execFile)('bash', [script], { env }).catch((error) => {
      throw new Error(`scripts/start-mariadb.sh failed: ${scriptOutput(error)}`);
    });
    const url = /export MYSQL_ADMIN_URL=(\S+)/.exec(stdout)?.[1];
    if (!url) throw new Error(`scripts/start-mariadb.sh printed no MYSQL_ADMIN_URL:\n${stdout}`);
    return {
      adminUrl: url,
      source: 'local mariadb',
      stop: async () => {
        await promisify(execFile)('bash', [script, '--stop'], { env });
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
  throw new Error(
    'no MySQL/MariaDB for the integration tests: set MYSQL_ADMIN_URL (eval "$(bash scripts/start-mariadb.sh)" installs and starts a MariaDB), or make a Docker engine reachable for Testcontainers',
  );
}
