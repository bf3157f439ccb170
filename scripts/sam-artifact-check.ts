/**
 * What `sam deploy` uploads, run as Lambda runs it: `.aws-sam/build/Function/index.mjs` (the
 * entry point every stack's Handler names) with ROTATION_FUNCTION set, in a fresh node process
 * per check, against the fake Secrets Manager over HTTP and the real servers. For each database
 * function:
 *   1. createSecret then finishSecret load no database driver (no file of the package that holds
 *      pg, mysql2 or the mongodb driver; the loads are recorded by scripts/record-loads.mjs);
 *   2. a whole rotation (all four steps; testSecret signs in with the new password) succeeds, and
 *      does load the driver (so check 1 can see a driver load).
 * scripts/bench.ts checks laziness on the sources and rotates through dist/ (npm run build), not
 * through this package, whose chunks esbuild lays out differently (one split build of every
 * function, target node24).
 *
 *   bash scripts/sam-check.sh && npx tsx scripts/sam-artifact-check.ts
 *
 * Servers as in the tests: PG_ADMIN_URL, MYSQL_ADMIN_URL, MONGO_ADMIN_URL (or what
 * test/support/*-server.ts starts). Exits non-zero on any failure.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { FakeSecretsManager } from '../test/support/fake-secrets-manager.js';
import { startFakeSecretsManagerServer } from '../test/support/fake-secrets-manager-http.js';
import { MongoAdmin } from '../test/support/mongo-admin.js';
import { startMongo } from '../test/support/mongo-server.js';
import { MysqlAdmin } from '../test/support/mysql-admin.js';
import { startMysql } from '../test/support/mysql-server.js';
import { startPostgres } from '../test/support/postgres-server.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = path.join(root, '.aws-sam', 'build', 'Function');

/** A string each driver's code holds and ours does not. */
const DRIVER_MARKERS = {
  pg: 'client password must be a string',
  mysql2: 'Pool is closed.',
  mongodb: 'mongodb+srv',
} as const;

function driverFiles(): Map<string, string> {
  const found = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.name.endsWith('.mjs')) {
        const code = readFileSync(file, 'utf8');
        for (const [driver, marker] of Object.entries(DRIVER_MARKERS))
          if (code.includes(marker)) found.set(pathToFileURL(file).href, driver);
      }
    }
  };
  walk(pkg);
  for (const driver of Object.keys(DRIVER_MARKERS)) {
    if (![...found.values()].includes(driver))
      throw new Error(`no file of ${pkg} holds ${driver} (its marker changed?)`);
  }
  return found;
}

function run(env: NodeJS.ProcessEnv, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`exit ${code}: ${output.slice(-2000)}`)),
    );
  });
}

async function main() {
  if (!existsSync(path.join(pkg, 'index.mjs')))
    throw new Error(`${pkg}/index.mjs is missing: run bash scripts/sam-check.sh first`);
  const drivers = driverFiles();
  const scratch = mkdtempSync(path.join(tmpdir(), 'sam-artifact-'));
  const cleanups: (() => Promise<unknown>)[] = [];
  const fake = new FakeSecretsManager();
  try {
    const sm = await startFakeSecretsManagerServer(fake);
    cleanups.push(() => sm.close());
    const postgres = await startPostgres();
    cleanups.push(() => postgres.stop());
    const admin = new pg.Client({ connectionString: postgres.adminUrl });
    await admin.connect();
    const pgMade: string[] = [];
    cleanups.push(async () => {
      for (const name of pgMade)
        await admin.query(`DROP ROLE IF EXISTS ${admin.escapeIdentifier(name)}`).catch(() => {});
      await admin.end();
    });
    const mysqlServer = await startMysql();
    cleanups.push(() => mysqlServer.stop());
    const mysql = await MysqlAdmin.connect(mysqlServer.adminUrl);
    const mysqlMade: string[] = [];
    cleanups.push(async () => {
      await mysql.dropUsers(mysqlMade).catch(() => {});
      await mysql.close();
    });
    const mongoServer = await startMongo();
    cleanups.push(() => mongoServer.stop());
    const mongo = await MongoAdmin.connect(mongoServer.adminUrl);
    const mongoMade: string[] = [];
    cleanups.push(async () => {
      await mongo.dropUsers(mongoMade).catch(() => {});
      await mongo.close();
    });
    const ownPassword = await mongo.changeOwnPasswordRole().then(
      (r) => [r],
      () => [],
    );

    const name = () => `samcheck_${Math.random().toString(36).slice(2, 10)}`;
    const url = new URL(postgres.adminUrl);
    const pgBase = { engine: 'postgres', host: url.hostname, port: Number(url.port), ssl: false };
    const mysqlBase = {
      engine: mysql.mariadb ? 'mariadb' : 'mysql',
      host: mysql.host,
      port: mysql.port,
      dbname: mysql.database,
      ssl: false,
    };
    const mongoBase = { engine: 'mongo', host: mongo.host, port: mongo.port, ssl: false };
    const secret = (value: Record<string, unknown>) =>
      fake.createSecret({ name: `sam-check/${name()}`, secretString: JSON.stringify(value) });
    const pgMaster = secret({
      ...pgBase,
      username: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
    });
    const mysqlMaster = secret({
      ...mysqlBase,
      username: mysql.username,
      password: mysql.password,
    });
    const mongoMaster = secret({
      ...mongoBase,
      username: mongo.username,
      password: mongo.password,
      dbname: mongo.authSource,
    });
    const pgUser = async (extra: Record<string, unknown> = {}) => {
      const user = name();
      await admin.query(`CREATE ROLE ${admin.escapeIdentifier(user)} LOGIN PASSWORD 'sam-check-1'`);
      pgMade.push(`${user}_clone`, user);
      return secret({ ...pgBase, username: user, password: 'sam-check-1', ...extra });
    };
    const mysqlUser = async (extra: Record<string, unknown> = {}) => {
      const user = name();
      await mysql.createUser(user, 'sam-check-1');
      await mysql.query(`GRANT SELECT ON ${mysql.id(mysql.database)}.* TO ${mysql.account(user)}`);
      mysqlMade.push(`${user}_clone`, user);
      return secret({ ...mysqlBase, username: user, password: 'sam-check-1', ...extra });
    };
    const mongoUser = async (extra: Record<string, unknown> = {}) => {
      const user = name();
      await mongo.createUser(user, 'sam-check-1', { roles: ownPassword });
      mongoMade.push(`${user}_clone`, user);
      return secret({ ...mongoBase, username: user, password: 'sam-check-1', ...extra });
    };
    const targets: [string, string, () => Promise<string>][] = [
      ['postgres-single-user', 'pg', () => pgUser()],
      ['postgres-alternating-users', 'pg', () => pgUser({ masterarn: pgMaster })],
      ['mysql-single-user', 'mysql2', () => mysqlUser()],
      ['mysql-alternating-users', 'mysql2', () => mysqlUser({ masterarn: mysqlMaster })],
      ['mongodb-single-user', 'mongodb', () => mongoUser()],
      ['mongodb-alternating-users', 'mongodb', () => mongoUser({ masterarn: mongoMaster })],
    ];

    const entry = pathToFileURL(path.join(pkg, 'index.mjs')).href;
    const failures: string[] = [];
    console.log(`${'function'.padEnd(28)}  create+finish loads  full rotation  driver loaded`);
    for (const [fn, driver, makeSecret] of targets) {
      const loaded = async (steps: string) => {
        const id = await makeSecret();
        const token = fake.startRotation(id);
        const file = path.join(scratch, `${fn}-${steps.length}.log`);
        await run(
          {
            ...process.env,
            ROTATION_FUNCTION: fn,
            RECORD_LOADS_FILE: file,
            SECRETS_MANAGER_ENDPOINT: sm.endpoint,
            AWS_REGION: 'us-east-1',
            AWS_ACCESS_KEY_ID: 'sam-check',
            AWS_SECRET_ACCESS_KEY: 'sam-check',
            POWERTOOLS_LOG_LEVEL: 'ERROR',
            POWERTOOLS_METRICS_DISABLED: 'true',
            AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
          },
          [
            '--import',
            './scripts/record-loads.mjs',
            'scripts/bench-child.mjs',
            entry,
            fake.arnOf(id),
            token,
            steps,
          ],
        );
        const urls = readFileSync(file, 'utf8').split('\n').filter(Boolean);
        if (!urls.includes(entry)) throw new Error(`${fn}: the recorder saw no load of ${entry}`);
        return urls.filter((u) => drivers.has(u)).map((u) => drivers.get(u));
      };
      let lazy = '?';
      let full = '?';
      let fullDrivers = '';
      try {
        const early = await loaded('createSecret,finishSecret');
        lazy = early.length === 0 ? 'no driver' : `LOADS ${early.join(', ')}`;
        if (early.length > 0)
          failures.push(`${fn}: createSecret/finishSecret load ${early.join(', ')}`);
        const all = await loaded('createSecret,setSecret,testSecret,finishSecret');
        full = 'ok';
        fullDrivers = all.join(', ') || 'none';
        if (!all.includes(driver))
          failures.push(
            `${fn}: a whole rotation loaded no ${driver} file (the check cannot see loads)`,
          );
      } catch (error) {
        full = 'FAILED';
        failures.push(`${fn}: ${error instanceof Error ? error.message : String(error)}`);
      }
      console.log(`${fn.padEnd(28)}  ${lazy.padEnd(19)}  ${full.padEnd(13)}  ${fullDrivers}`);
    }
    if (failures.length > 0) throw new Error(failures.join('\n'));
    console.log('\nsam-artifact-check: OK');
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    rmSync(scratch, { recursive: true, force: true });
  }
}

main()
  .catch((error) => {
    console.error('sam-artifact-check: FAILED:', error instanceof Error ? error.message : error);
    process.exitCode = 1;
  })
  .finally(() => process.exit());
