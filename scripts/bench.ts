/**
 * The benchmark table (`npm run bench`), measured in one run on this machine and written to
 * bench/results.md:
 * - per function: built size; cold load (median of fresh processes) and its ratio to loading
 *   the bare Secrets Manager client in the same run; whether createSecret / finishSecret load a
 *   database driver (they must not);
 * - per target: wall time of a full four-step rotation against the local server (median of 20),
 *   Secrets Manager calls per rotation, peak resident memory of a process doing a rotation.
 * Targets: cold load ≤ 1.5× the bare client, ≤ 10 Secrets Manager calls, peak memory < 90 MB.
 *
 * PostgreSQL: PG_ADMIN_URL, or an embedded server. MySQL/MariaDB: MYSQL_ADMIN_URL, Testcontainers,
 * or a local MariaDB (test/support/mysql-server.ts). MongoDB: MONGO_ADMIN_URL, Testcontainers, or
 * FerretDB from scripts/start-mongo.sh (test/support/mongo-server.ts). Secrets Manager: the fake
 * over HTTP. API-key functions: their built bundle, with the provider's origin sent to the
 * provider's local fake (scripts/bench-redirect.mjs).
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import pg from 'pg';
import type { RotationHandler } from '../shared/rotation/handler.js';
import { sendGridFixture, stripeFixture, twilioFixture } from '../test/support/api-key-fixtures.js';
import { FakeSecretsManager } from '../test/support/fake-secrets-manager.js';
import { startFakeSecretsManagerServer } from '../test/support/fake-secrets-manager-http.js';
import { STRIPE_FAKE_API_VERSION } from '../test/support/fake-stripe.js';
import { MongoAdmin } from '../test/support/mongo-admin.js';
import { probeMongo, startMongo } from '../test/support/mongo-server.js';
import { MysqlAdmin } from '../test/support/mysql-admin.js';
import { startMysql } from '../test/support/mysql-server.js';
import { startPostgres } from '../test/support/postgres-server.js';
import { rotate } from '../test/support/rotation-driver.js';
import type { RotationHarness } from '../test/support/rotation-harness.js';
// @ts-expect-error: a plain ESM script without types.
import { installRedirect } from './bench-redirect.mjs';
// @ts-expect-error: a plain ESM script without types; its exports are documented there.
import { BASELINE, median, printTable, sample } from './cold-load.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const COLD_RUNS = Number(process.env.BENCH_COLD_RUNS ?? 11);
const LIMITS = { coldRatio: 1.5, calls: 10, rssMB: 90 };

/**
 * The heap limits Lambda's Node.js runtime starts node with, from the function's MemorySize:
 * its /var/runtime/bootstrap passes `--max-semi-space-size` (a twentieth of the memory) and
 * `--max-old-space-size` (nine tenths), 6 and 116 MB at 128 MB. The peak-memory child runs with
 * the same, so that it measures what the function holds there rather than node's desktop
 * defaults (Node 24's young generation grows far larger than 6 MB before it collects).
 */
function lambdaHeapFlags(): string[] {
  const template = readFileSync(path.join(root, 'template.yaml'), 'utf8');
  const memory = Number(/^\s+MemorySize: (\d+)\s*$/m.exec(template)?.[1]);
  if (!Number.isInteger(memory)) throw new Error('template.yaml gives no MemorySize');
  const newSpace = Math.floor(memory / 10);
  return [
    `--max-semi-space-size=${Math.floor(newSpace / 2)}`,
    `--max-old-space-size=${memory - newSpace}`,
  ];
}

interface Target {
  fn: string;
  /** A fresh secret for this target; returns its id. */
  secret(): Promise<string>;
  /** API-key functions have no database driver to check for. */
  apiKey?: boolean;
}

const run = (command: string, args: string[], env: NodeJS.ProcessEnv = process.env) =>
  new Promise<string>((resolve, reject) => {
    const child = spawn(command, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => {
      out += c;
    });
    child.stderr.on('data', (c) => {
      err += c;
    });
    child.on('close', (code) =>
      code === 0
        ? resolve(out)
        : reject(new Error(`${command} ${args.join(' ')}: ${code}\n${err}`)),
    );
  });

async function main() {
  console.log('building bundles…');
  await run(process.execPath, ['scripts/build.mjs']);
  // Servers started so far are stopped if a later one fails to start.
  const started: (() => Promise<unknown>)[] = [];
  const start = async <T>(what: Promise<T>, stop: (value: T) => Promise<unknown>): Promise<T> => {
    try {
      const value = await what;
      started.unshift(() => stop(value));
      return value;
    } catch (error) {
      for (const undo of started) await undo().catch(() => {});
      throw error;
    }
  };
  const server = await start(startPostgres(), (s) => s.stop());
  const mysqlServer = await start(startMysql(), (s) => s.stop());
  const mysql = await start(MysqlAdmin.connect(mysqlServer.adminUrl), (a) => a.close());
  const mongoServer = await start(startMongo(), (s) => s.stop());
  const mongo = await start(MongoAdmin.connect(mongoServer.adminUrl), (a) => a.close());
  const mongoName = (await start(probeMongo(mongoServer.adminUrl), async () => {})).server;
  const fake = new FakeSecretsManager();
  const sm = await startFakeSecretsManagerServer(fake);
  const admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  const url = new URL(server.adminUrl);
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    SECRETS_MANAGER_ENDPOINT: sm.endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    POWERTOOLS_LOG_LEVEL: 'ERROR',
    POWERTOOLS_METRICS_DISABLED: 'true',
    // Each bundle carries its own SDK copy, and each would warn that Node 20 support ends; the
    // functions deploy on nodejs24.x (template.yaml), and the warnings would bury the table.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    // The Stripe function refuses to load without a preview Stripe-Version (a deployment with
    // preview access sets one); the fake's.
    STRIPE_API_VERSION: STRIPE_FAKE_API_VERSION,
  };
  Object.assign(process.env, childEnv);
  const made: string[] = [];
  const stops: (() => Promise<unknown>)[] = [];
  const madeInMongo: string[] = [];
  const madeInMysql: string[] = [];
  try {
    const base = { engine: 'postgres', host: url.hostname, port: Number(url.port), ssl: false };
    const master = fake.createSecret({
      name: 'bench/master',
      secretString: JSON.stringify({
        ...base,
        username: decodeURIComponent(url.username),
        password: decodeURIComponent(url.password),
      }),
    });
    const user = async (extra: Record<string, unknown> = {}) => {
      const name = `bench_${Math.random().toString(36).slice(2, 10)}`;
      await admin.query(
        `CREATE ROLE ${admin.escapeIdentifier(name)} LOGIN PASSWORD 'bench-initial-1'`,
      );
      made.push(`${name}_clone`, name);
      return fake.createSecret({
        name: `bench/${name}`,
        secretString: JSON.stringify({
          ...base,
          username: name,
          password: 'bench-initial-1',
          ...extra,
        }),
      });
    };
    const mysqlBase = {
      engine: mysql.mariadb ? 'mariadb' : 'mysql',
      host: mysql.host,
      port: mysql.port,
      dbname: mysql.database,
      ssl: false,
    };
    const mysqlMaster = fake.createSecret({
      name: 'bench/mysql-master',
      secretString: JSON.stringify({
        ...mysqlBase,
        username: mysql.username,
        password: mysql.password,
      }),
    });
    const mysqlUser = async (extra: Record<string, unknown> = {}) => {
      const name = `bench_${Math.random().toString(36).slice(2, 10)}`;
      await mysql.createUser(name, 'bench-initial-1');
      await mysql.query(`GRANT SELECT ON ${mysql.id(mysql.database)}.* TO ${mysql.account(name)}`);
      madeInMysql.push(`${name}_clone`, name);
      return fake.createSecret({
        name: `bench/${name}`,
        secretString: JSON.stringify({
          ...mysqlBase,
          username: name,
          password: 'bench-initial-1',
          ...extra,
        }),
      });
    };
    const mongoBase = { engine: 'mongo', host: mongo.host, port: mongo.port, ssl: false };
    const mongoMaster = fake.createSecret({
      name: 'bench/mongo-master',
      secretString: JSON.stringify({
        ...mongoBase,
        username: mongo.username,
        password: mongo.password,
        dbname: mongo.authSource,
      }),
    });
    // Where roles are enforced, single user needs the changeOwnPassword action (README).
    const ownPassword = await mongo.changeOwnPasswordRole().then(
      (role) => [role],
      () => [],
    );
    const mongoUser = async (extra: Record<string, unknown> = {}) => {
      const name = `bench_${Math.random().toString(36).slice(2, 10)}`;
      await mongo.createUser(name, 'bench-initial-1', { roles: ownPassword });
      madeInMongo.push(`${name}_clone`, name);
      return fake.createSecret({
        name: `bench/${name}`,
        secretString: JSON.stringify({
          ...mongoBase,
          username: name,
          password: 'bench-initial-1',
          ...extra,
        }),
      });
    };
    const targets: Target[] = [
      { fn: 'postgres-single-user', secret: () => user() },
      { fn: 'postgres-alternating-users', secret: () => user({ masterarn: master }) },
      { fn: 'mysql-single-user', secret: () => mysqlUser() },
      { fn: 'mysql-alternating-users', secret: () => mysqlUser({ masterarn: mysqlMaster }) },
      { fn: 'mongodb-single-user', secret: () => mongoUser() },
      { fn: 'mongodb-alternating-users', secret: () => mongoUser({ masterarn: mongoMaster }) },
    ];
    // The API-key bundles call the real providers: their origins go to the local fakes, in this
    // process and in the children.
    const redirect: Record<string, string> = {};
    for (const [fn, fixture, origins] of [
      [
        'sendgrid-api-key',
        sendGridFixture(),
        ['https://api.sendgrid.com', 'https://api.eu.sendgrid.com'],
      ],
      ['stripe-api-key', stripeFixture('live'), ['https://api.stripe.com']],
      ['twilio-api-key', twilioFixture(), ['https://api.twilio.com', 'https://iam.twilio.com']],
    ] as const) {
      await fixture.fake.start();
      stops.push(() => fixture.fake.stop());
      for (const origin of origins) redirect[origin] = fixture.fake.baseUrl;
      targets.push({
        fn,
        secret: async () => fixture.provision({ fake } as RotationHarness).secretId,
        apiKey: true,
      });
    }
    installRedirect(redirect);
    Object.assign(process.env, childEnv);
    const redirectEnv = { ...childEnv, BENCH_REDIRECT: JSON.stringify(redirect) };

    // Cold load, interleaved with the bare client in the same rounds.
    console.log(`cold load: ${COLD_RUNS} fresh processes each…`);
    const cold = new Map<string, number[]>([
      [BASELINE, []],
      ...targets.map((t) => [t.fn, []] as [string, number[]]),
    ]);
    for (let round = 0; round <= COLD_RUNS; round++) {
      for (const name of cold.keys()) {
        const result = await sample(
          name === BASELINE
            ? { kind: 'baseline', target: 'baseline' }
            : {
                kind: 'bundle',
                target: pathToFileURL(path.join(root, 'dist', name, 'index.mjs')).href,
              },
        );
        if (round > 0) cold.get(name)?.push(result.importMs);
      }
    }
    const coldMedian = (name: string) =>
      median([...(cold.get(name) ?? [])].sort((a, b) => a - b)) as number;
    const baseline = coldMedian(BASELINE);

    const rows: string[][] = [];
    const verdicts: string[] = [];
    for (const target of targets) {
      const bundle = path.join(root, 'dist', target.fn, 'index.mjs');
      // index.mjs is what a cold start parses; the chunks (the driver, the SDK's lazy parts)
      // load when a step imports them.
      const files = readdirSync(path.dirname(bundle))
        .filter((file) => file.endsWith('.mjs'))
        .map((file) => readFileSync(path.join(path.dirname(bundle), file)));
      const bytes = files.reduce((sum, code) => sum + code.length, 0);
      const gzip = files.reduce((sum, code) => sum + gzipSync(code).length, 0);
      const indexBytes = statSync(bundle).size;

      // Driver laziness, on the source (the bundle keeps the same lazy import).
      const lazySecret = await target.secret();
      const lazyToken = fake.startRotation(lazySecret);
      const lazy = target.apiKey
        ? { loadedAfter: {} }
        : JSON.parse(
            await run(
              process.execPath,
              [
                '--import',
                'tsx',
                'scripts/bench-child.mjs',
                pathToFileURL(path.join(root, 'functions', target.fn, 'index.ts')).href,
                fake.arnOf(lazySecret),
                lazyToken,
                'createSecret,finishSecret',
              ],
              childEnv,
            ),
          );

      // Full rotations in this process, through the built bundle (a warm function).
      const handler: RotationHandler = (await import(pathToFileURL(bundle).href)).handler;
      const secretId = await target.secret();
      const times: number[] = [];
      const calls: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const before = fake.calls.length;
        const started = performance.now();
        const result = await rotate({
          fake,
          secretId,
          invoke: (e) => handler(e, { getRemainingTimeInMillis: () => 30_000 }),
        });
        times.push(performance.now() - started);
        if (!result.completed) throw result.error;
        calls.push(fake.calls.length - before);
      }

      // Peak memory of a fresh process doing one whole rotation with the built bundle.
      const rssSecret = await target.secret();
      const rssToken = fake.startRotation(rssSecret);
      const rss = JSON.parse(
        await run(
          process.execPath,
          [
            '--no-warnings',
            ...lambdaHeapFlags(),
            ...(target.apiKey ? ['--import', './scripts/bench-redirect.mjs'] : []),
            'scripts/bench-child.mjs',
            pathToFileURL(bundle).href,
            fake.arnOf(rssSecret),
            rssToken,
            'createSecret,setSecret,testSecret,finishSecret',
          ],
          target.apiKey ? redirectEnv : childEnv,
        ),
      );

      const coldMs = coldMedian(target.fn);
      const ratio = coldMs / baseline;
      const callsMedian = median([...calls].sort((a, b) => a - b)) as number;
      const rssMB = rss.maxRssKiB / 1024;
      const driverLoaded = lazy.loadedAfter.createSecret || lazy.loadedAfter.finishSecret;
      rows.push([
        target.fn,
        `${(bytes / 1024).toFixed(0)} KiB (${(gzip / 1024).toFixed(0)} gz), index ${(indexBytes / 1024).toFixed(0)} KiB`,
        coldMs.toFixed(1),
        `${ratio.toFixed(2)}x`,
        target.apiKey ? 'none (no driver)' : driverLoaded ? 'yes' : 'no',
        (median([...times].sort((a, b) => a - b)) as number).toFixed(1),
        `${callsMedian} (first ${calls[0]})`,
        rssMB.toFixed(1),
      ]);
      if (ratio > LIMITS.coldRatio)
        verdicts.push(`${target.fn}: cold load ${ratio.toFixed(2)}x > ${LIMITS.coldRatio}x`);
      if (Math.max(...calls) > LIMITS.calls)
        verdicts.push(
          `${target.fn}: ${Math.max(...calls)} Secrets Manager calls > ${LIMITS.calls}`,
        );
      if (rssMB >= LIMITS.rssMB)
        verdicts.push(`${target.fn}: peak ${rssMB.toFixed(1)} MB ≥ ${LIMITS.rssMB} MB`);
      if (driverLoaded)
        verdicts.push(`${target.fn}: createSecret/finishSecret load a database driver`);
    }

    const headers = [
      'function',
      'built size',
      'cold load ms',
      'vs bare client',
      'driver in create/finish',
      'rotation ms (median)',
      'SM calls/rotation',
      'peak RSS MB',
    ];
    console.log(
      `\nbaseline: bare Secrets Manager client loads in ${baseline.toFixed(1)} ms (median of ${COLD_RUNS})\n`,
    );
    printTable(headers, rows);
    const summary =
      verdicts.length === 0
        ? 'All targets met (cold load ≤ 1.5x, ≤ 10 calls, < 90 MB, no driver in create/finish).'
        : `Missed: ${verdicts.join('; ')}`;
    console.log(`\n${summary}`);

    const markdown = [
      '# Benchmark',
      '',
      `Measured by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}: node ${process.version}, ${server.source} PostgreSQL, ${mysql.version} from ${mysqlServer.source}, ${mongoName} from ${mongoServer.source}, the fake Secrets Manager over HTTP on loopback.`,
      `Built size: every file of the function (index.mjs is what a cold start parses; the driver is a chunk of its own that setSecret and testSecret import). Cold load: median of ${COLD_RUNS} fresh processes, interleaved with the bare client (${baseline.toFixed(1)} ms in this run). Rotation: median of ${RUNS} full rotations of the built bundle in one warm process ("first": the first rotation's calls), against the local server; API-key bundles reach the provider's local HTTP fake through a fetch redirect (scripts/bench-redirect.mjs). Peak RSS: the high-water resident memory (VmHWM) of a fresh process doing one whole rotation with the built bundle, started with the heap limits Lambda's Node.js bootstrap derives from the template's MemorySize (${lambdaHeapFlags().join(' ')}).`,
      '',
      `| ${headers.join(' | ')} |`,
      `| ${headers.map(() => '---').join(' | ')} |`,
      ...rows.map((row) => `| ${row.join(' | ')} |`),
      '',
      summary,
      '',
    ].join('\n');
    await mkdir(path.join(root, 'bench'), { recursive: true });
    await writeFile(path.join(root, 'bench', 'results.md'), markdown);
    console.log('written to bench/results.md');
  } finally {
    for (const name of made)
      await admin.query(`DROP ROLE IF EXISTS ${admin.escapeIdentifier(name)}`).catch(() => {});
    await admin.end();
    await mysql.dropUsers(madeInMysql).catch(() => {});
    await mysql.close();
    await mysqlServer.stop();
    await mongo.dropUsers(madeInMongo).catch(() => {});
    await mongo.close();
    await mongoServer.stop();
    await sm.close();
    await server.stop();
  }
}

main()
  .catch((error) => {
    console.error('bench failed:', error instanceof Error ? error.message : error);
    process.exitCode = 1;
  })
  // Keep-alive sockets of the SDK and the fakes must not hold the process (or CI) open.
  .finally(() => process.exit());
