/**
 * Zero downtime, measured from the application's side (`npm run soak`): for each target and
 * strategy, client processes (scripts/soak-client.ts: the AWS Advanced NodeJS Wrapper, a
 * Powertools Parameters reader, a naive reader) sign in and query continuously, with new
 * connections and with pooled ones opened before the first rotation, while the function under
 * test rotates the same secret again and again through the real AWS SDK and the HTTP Secrets
 * Manager fake. The API-key functions run the same way against the three providers' fakes, with
 * RevokeDemotedKey at both settings. Writes one table to bench/soak.md and exits non-zero when
 * a zero the project promises does not hold.
 *
 *   npm run soak [-- --rotations 20 --interval-ms 1500 --only postgres --out file.md]
 *   npm run soak -- --quick, or SOAK_QUICK=1 npm run soak   (CI: 3 rotations per target; the
 *   table goes to the temporary folder, so the committed full one stays)
 */
import { type ChildProcess, fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMongoDb } from '../shared/databases/mongodb.js';
import { createMysql } from '../shared/databases/mysql.js';
import { createPostgres } from '../shared/databases/postgres.js';
import type { Database } from '../shared/databases/types.js';
import type { Strategy } from '../shared/rotation/types.js';
import { alternatingUsers } from '../shared/strategies/alternating-users.js';
import { apiKeys, RevokeDemotedKey } from '../shared/strategies/api-keys.js';
import { singleUser } from '../shared/strategies/single-user.js';
import {
  type ProviderFixture,
  sendGridFixture,
  stripeFixture,
  twilioFixture,
} from '../test/support/api-key-fixtures.js';
import { MongoAdmin } from '../test/support/mongo-admin.js';
import { probeMongo, startMongo } from '../test/support/mongo-server.js';
import { MysqlAdmin } from '../test/support/mysql-admin.js';
import { startMysql } from '../test/support/mysql-server.js';
import { PgAdmin, randomName } from '../test/support/pg-admin.js';
import { startPostgres } from '../test/support/postgres-server.js';
import { type RotationEvent, rotate } from '../test/support/rotation-driver.js';
import { RotationHarness } from '../test/support/rotation-harness.js';
import type { ClientConfig, ClientKind, ClientReport } from './soak-client.js';

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const option = (name: string): string | undefined => {
  const index = argv.indexOf(`--${name}`);
  return index >= 0 ? argv[index + 1] : undefined;
};
const QUICK = flag('quick') || process.env.SOAK_QUICK === '1';
const ROTATIONS = Number(option('rotations') ?? (QUICK ? 3 : 20));
/** Time between two rotations: every re-reading client's cache age is below it. */
const INTERVAL_MS = Number(option('interval-ms') ?? 1500);
const CACHE_SECONDS = 1;
const TICK_MS = 100;
const POOLED = 3;
const ONLY = option('only');
// The quick run (CI) prints its table and leaves the committed full one alone.
const OUT =
  option('out') ??
  (QUICK ? join(tmpdir(), 'soak-quick.md') : join(import.meta.dirname, '..', 'bench', 'soak.md'));
const REGION = 'us-east-1';

interface Row {
  target: string;
  strategy: string;
  client: ClientKind | string;
  rotations: number;
  report?: ClientReport;
  /** Which zeros must hold for this row (empty: a baseline, nothing promised). */
  expect: ('failedSignIns' | 'failedQueries' | 'pooled')[];
  note?: string;
  /** single user: setSecret start → finishSecret end, ms (median, max). */
  window?: { median: number; max: number; openMedian: number; openMax: number };
}

const rows: Row[] = [];
/** Where the single-user window's time goes, per target. */
const windowNotes: string[] = [];
/** The servers the table was measured on. */
const servers: string[] = [];

interface Scenario {
  target: string;
  strategy: string;
  harness: RotationHarness;
  secretId: string;
  handler: (event: RotationEvent) => Promise<unknown>;
  clients: { kind: ClientKind; expect: Row['expect']; note?: string }[];
  clientConfig?: Partial<ClientConfig>;
  cleanup?: () => Promise<void>;
  /** Set by {@link timed} when the server accepted the new password (single user). */
  changed?: { at?: number };
}

/**
 * The adapter as the function uses it, with a clock on setPassword: the single-user window
 * opens when the server accepts the new password, not when setSecret starts.
 */
function timed<C>(db: Database<C>, changed: { at?: number }): Database<C> {
  return {
    ...db,
    async setPassword(...args: Parameters<Database<C>['setPassword']>) {
      await db.setPassword(...args);
      changed.at = performance.now();
      if (SABOTAGE === 'end-sessions') await endOtherSessions(args[0], args[1]);
    },
  };
}

/**
 * SOAK_SABOTAGE=end-sessions (PostgreSQL only; test/reliability/soak.test.ts): the rotation also
 * ends the user's other sessions, as a rotation that "cleans up" would. The soak must then
 * report lost pooled connections and fail: the proof that it can.
 */
const SABOTAGE = process.env.SOAK_SABOTAGE;
async function endOtherSessions(connection: unknown, user: string): Promise<void> {
  const client = connection as { query(sql: string, values: unknown[]): Promise<unknown> };
  await client.query(
    'SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = $1 AND pid <> pg_catalog.pg_backend_pid()',
    [user],
  );
}

function startClient(config: ClientConfig): { child: ChildProcess; ready: Promise<void> } {
  const child = fork(
    join(import.meta.dirname, 'soak-client.ts'),
    [Buffer.from(JSON.stringify(config)).toString('base64')],
    { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  const ready = new Promise<void>((resolve, reject) => {
    child.once('message', (message) => (message === 'ready' ? resolve() : reject(message)));
    child.once('exit', (code) => reject(new Error(`client ${config.client} exited ${code}`)));
  });
  return { child, ready };
}

function stopClient(child: ChildProcess): Promise<ClientReport> {
  return new Promise((resolve, reject) => {
    child.on('message', (message) => {
      const report = (message as { report?: ClientReport }).report;
      if (report) resolve(report);
    });
    child.once('exit', (code) => reject(new Error(`client exited ${code} before reporting`)));
    child.send('stop');
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
};

async function runScenario(scenario: Scenario): Promise<void> {
  const label = `${scenario.target} ${scenario.strategy}`;
  const started = scenario.clients.map((client) =>
    startClient({
      target: scenario.target as ClientConfig['target'],
      client: client.kind,
      secretId: scenario.secretId,
      endpoint: scenario.harness.endpoint,
      region: REGION,
      tickMs: TICK_MS,
      cacheSeconds: client.kind === 'naive' ? 3600 : CACHE_SECONDS,
      pooled: scenario.target in PROVIDERS ? 0 : POOLED,
      ...scenario.clientConfig,
    }),
  );
  const windows: number[] = [];
  const openWindows: number[] = [];
  const windowParts: Record<string, number[]> = {};
  const part = (name: string, ms: number) => {
    const list = windowParts[name] ?? [];
    list.push(ms);
    windowParts[name] = list;
  };
  const stepMs: Record<string, number[]> = {};
  let completed = 0;
  try {
    await Promise.all(started.map((client) => client.ready));
    await sleep(INTERVAL_MS);
    for (let round = 0; round < ROTATIONS; round++) {
      const marks: Record<string, number> = {};
      const result = await rotate({
        fake: scenario.harness.fake,
        secretId: scenario.secretId,
        invoke: async (event) => {
          const t0 = performance.now();
          marks[`${event.Step}:start`] = t0;
          try {
            return await scenario.handler(event);
          } finally {
            const t1 = performance.now();
            marks[`${event.Step}:end`] = t1;
            const list = stepMs[event.Step] ?? [];
            list.push(t1 - t0);
            stepMs[event.Step] = list;
          }
        },
      });
      if (!result.completed) {
        throw new Error(`${label}: rotation ${round + 1} failed at ${result.failedStep}`, {
          cause: result.error,
        });
      }
      completed++;
      const setStart = marks['setSecret:start'];
      const finishEnd = marks['finishSecret:end'];
      if (setStart !== undefined && finishEnd !== undefined) windows.push(finishEnd - setStart);
      if (scenario.changed?.at !== undefined && finishEnd !== undefined) {
        openWindows.push(finishEnd - scenario.changed.at);
        const at = scenario.changed.at;
        const m = (key: string) => marks[key] ?? at;
        part('rest of setSecret', m('setSecret:end') - at);
        part('testSecret', m('testSecret:end') - m('testSecret:start'));
        part('finishSecret', m('finishSecret:end') - m('finishSecret:start'));
        part(
          'between steps',
          m('testSecret:start') -
            m('setSecret:end') +
            m('finishSecret:start') -
            m('testSecret:end'),
        );
        scenario.changed.at = undefined;
      }
      await sleep(INTERVAL_MS);
    }
  } finally {
    const reports = await Promise.all(
      started.map((client) => stopClient(client.child).catch(() => undefined)),
    );
    scenario.clients.forEach((client, index) => {
      rows.push({
        target: scenario.target,
        strategy: scenario.strategy,
        client: client.kind,
        rotations: completed,
        report: reports[index],
        expect: client.expect,
        note: client.note,
        window:
          scenario.strategy === 'single user' && windows.length > 0
            ? {
                median: median(windows),
                max: Math.max(...windows),
                openMedian: median(openWindows),
                openMax: Math.max(...openWindows),
              }
            : undefined,
      });
    });
    const steps = Object.entries(stepMs)
      .map(([step, list]) => `${step} ${median(list).toFixed(0)} ms`)
      .join(', ');
    console.log(`${label}: ${completed} rotations; median per step: ${steps}`);
    if (openWindows.length > 0) {
      const parts = Object.entries(windowParts)
        .map(([name, list]) => `${name} ${median(list).toFixed(0)} ms`)
        .join(', ');
      console.log(`  single-user window (new password accepted → finishSecret end): ${parts}`);
      windowNotes.push(`${label}: ${parts}`);
    }
    await scenario.cleanup?.();
  }
}

const PROVIDERS: Record<string, () => ProviderFixture> = {
  sendgrid: sendGridFixture,
  stripe: stripeFixture,
  twilio: twilioFixture,
};

/** What must hold: a client that re-reads within an interval sees no failure at all. */
const ALTERNATING_EXPECT: Row['expect'] = ['failedSignIns', 'failedQueries', 'pooled'];

function databaseClients(
  target: string,
  strategy: 'single' | 'alternating',
  dualPasswords = false,
): Scenario['clients'] {
  // MySQL 8.0.14+ keeps the replaced password (RETAIN CURRENT PASSWORD) until the next rotation:
  // single user then has no window for a client that re-reads within an interval.
  const noWindow = strategy === 'alternating' || dualPasswords;
  const rereading: Row['expect'] = noWindow ? ALTERNATING_EXPECT : ['failedQueries', 'pooled'];
  const clients: Scenario['clients'] = [];
  if (target !== 'mongodb') {
    clients.push({
      kind: 'wrapper',
      // 2.0.1 (the release on npm) keeps the secret until a sign-in is refused: it does not
      // re-read once per interval, so alternating users cost it one refused attempt per
      // rotation, which its retry absorbs. In the single-user window its retry re-reads
      // AWSCURRENT, which is still the refused value until finishSecret.
      expect: noWindow ? ['failedQueries', 'pooled'] : ['pooled'],
    });
  }
  clients.push({ kind: 'powertools', expect: rereading });
  clients.push({ kind: 'naive', expect: ['pooled'] });
  return clients;
}

async function databaseScenarios(): Promise<void> {
  const want = (target: string) => ONLY === undefined || ONLY === target;

  if (want('postgres')) {
    const server = await startPostgres();
    const admin = await PgAdmin.connect(server.adminUrl);
    const harness = await new RotationHarness().start();
    const created: string[] = [];
    try {
      servers.push(
        `PostgreSQL ${(await admin.query('SHOW server_version')).rows[0].server_version}`,
      );
      const master = harness.masterSecret(admin.masterSecretValue());
      for (const strategy of ['single', 'alternating'] as const) {
        const name = randomName(`soak_${strategy.slice(0, 3)}`);
        const password = `initial-${randomName('pw')}`;
        await admin.createUser(name, password);
        created.push(name, `${name}_clone`);
        const secretId = harness.appSecret(
          admin.secretValue(
            name,
            password,
            strategy === 'alternating' ? { masterarn: master } : {},
          ),
        );
        const changed: { at?: number } = {};
        const rotation = harness.handler(
          strategy === 'single'
            ? singleUser(timed(createPostgres(), changed))
            : alternatingUsers(createPostgres()),
        );
        await runScenario({
          target: 'postgres',
          strategy: strategy === 'single' ? 'single user' : 'alternating users',
          harness,
          secretId,
          handler: harness.invoker(rotation),
          changed,
          clients: databaseClients('postgres', strategy),
        });
      }
      assertNoLeak(harness, 'postgres');
    } finally {
      await admin.dropUsers(created);
      await admin.close();
      await harness.stop();
      await server.stop();
    }
  }

  if (want('mysql')) {
    const server = await startMysql();
    const admin = await MysqlAdmin.connect(server.adminUrl);
    const harness = await new RotationHarness().start();
    const created: string[] = [];
    try {
      const versionRows = await admin.query<{ version: string }[]>('SELECT VERSION() AS version');
      const version = versionRows[0]?.version ?? '';
      const [major = 0, minor = 0, patch = 0] = version.split(/[.-]/).map(Number);
      const dualPasswords =
        !admin.mariadb && (major > 8 || (major === 8 && (minor > 0 || patch >= 14)));
      servers.push(
        `${admin.mariadb ? 'MariaDB' : 'MySQL'} ${version}${dualPasswords ? ' (dual passwords)' : ' (no dual passwords: single user has a window)'}`,
      );
      const master = harness.masterSecret(admin.masterSecretValue());
      for (const strategy of ['single', 'alternating'] as const) {
        const name = randomName(`soak_${strategy.slice(0, 3)}`);
        const password = `initial-${randomName('pw')}`;
        await admin.createUser(name, password);
        created.push(`${name}_clone`, name);
        const secretId = harness.appSecret(
          JSON.stringify({
            engine: admin.engine,
            host: admin.host,
            port: admin.port,
            username: name,
            password,
            ssl: false,
            ...(strategy === 'alternating' ? { masterarn: master } : {}),
          }),
        );
        const changed: { at?: number } = {};
        const db = createMysql({ env: {} });
        const rotation = harness.handler(
          strategy === 'single' ? singleUser(timed(db, changed)) : alternatingUsers(db),
        );
        await runScenario({
          target: 'mysql',
          strategy: strategy === 'single' ? 'single user' : 'alternating users',
          harness,
          secretId,
          handler: harness.invoker(rotation),
          changed,
          clients: databaseClients('mysql', strategy, dualPasswords),
        });
      }
      assertNoLeak(harness, 'mysql');
    } finally {
      await admin.dropUsers(created);
      await admin.close();
      await harness.stop();
      await server.stop();
    }
  }

  if (want('mongodb')) {
    const server = await startMongo();
    const admin = await MongoAdmin.connect(server.adminUrl);
    const capabilities = await probeMongo(server.adminUrl);
    servers.push(capabilities.server);
    const harness = await new RotationHarness().start();
    const created: string[] = [];
    try {
      const master = harness.masterSecret(admin.masterSecretValue());
      for (const strategy of ['single', 'alternating'] as const) {
        const name = randomName(`soak_${strategy.slice(0, 3)}`);
        const password = `initial-${randomName('pw')}`;
        const roles =
          strategy === 'single' && capabilities.authorization
            ? [await admin.changeOwnPasswordRole('admin')]
            : [];
        await admin.createUser(name, password, { roles });
        created.push(`${name}_clone`, name);
        const secretId = harness.appSecret(
          JSON.stringify({
            engine: 'mongo',
            host: admin.host,
            port: admin.port,
            username: name,
            password,
            dbname: 'admin',
            ssl: false,
            ...(strategy === 'alternating' ? { masterarn: master } : {}),
          }),
        );
        const changed: { at?: number } = {};
        const rotation = harness.handler(
          strategy === 'single'
            ? singleUser(timed(createMongoDb(), changed))
            : alternatingUsers(createMongoDb()),
        );
        await runScenario({
          target: 'mongodb',
          strategy: strategy === 'single' ? 'single user' : 'alternating users',
          harness,
          secretId,
          handler: harness.invoker(rotation),
          changed,
          clients: databaseClients('mongodb', strategy),
        });
        rows.push({
          target: 'mongodb',
          strategy: strategy === 'single' ? 'single user' : 'alternating users',
          client: 'wrapper',
          rotations: 0,
          expect: [],
          note: 'n/a: the wrapper wraps pg and mysql2 only',
        });
      }
      assertNoLeak(harness, 'mongodb');
    } finally {
      await admin.dropUsers(created);
      await admin.close();
      await harness.stop();
      await server.stop();
    }
  }
}

async function apiKeyScenarios(): Promise<void> {
  for (const [target, makeFixture] of Object.entries(PROVIDERS)) {
    if (ONLY !== undefined && ONLY !== target) continue;
    for (const mode of [RevokeDemotedKey.nextRotation, RevokeDemotedKey.immediately]) {
      const fixture = makeFixture();
      await fixture.fake.start();
      const harness = await new RotationHarness().start();
      try {
        const { secretId } = fixture.provision(harness);
        const strategy = apiKeys(fixture.provider(), { env: {}, revokeDemotedKey: mode });
        const rotation = harness.handler(strategy as Strategy<unknown>);
        // The first key was made by a person, and the function never revokes a key it did not
        // mint: one rotation first, so every client starts with a key the function will revoke.
        const warmUp = await harness.rotate(rotation, secretId);
        if (!warmUp.completed)
          throw new Error(`${target}: first rotation failed`, { cause: warmUp.error });
        await runScenario({
          target,
          strategy: `api key, RevokeDemotedKey ${mode}`,
          harness,
          secretId,
          handler: harness.invoker(rotation),
          clients: [
            {
              kind: 'powertools',
              // Re-reads within an interval: no failed call. With `immediately` its cached key
              // (at most maxAge old) may be refused once, then the retry's fresh one works.
              expect:
                mode === RevokeDemotedKey.nextRotation
                  ? ['failedSignIns', 'failedQueries']
                  : ['failedQueries'],
            },
            { kind: 'naive', expect: [] },
          ],
          clientConfig: {
            providerBaseUrl: fixture.fake.baseUrl,
            ...('apiVersion' in fixture.fake
              ? { stripeApiVersion: String((fixture.fake as { apiVersion: string }).apiVersion) }
              : {}),
          },
        });
        const leaked = harness.leakedSecrets();
        if (leaked.length > 0) throw new Error(`${target}: a log line holds ${leaked.join(', ')}`);
      } finally {
        await harness.stop();
        await fixture.fake.stop();
      }
    }
  }
}

function assertNoLeak(harness: RotationHarness, target: string) {
  const leaked = harness.leakedSecrets();
  if (leaked.length > 0) throw new Error(`${target}: a log line holds ${leaked.join(', ')}`);
}

/** The zeros of a row that did not hold. */
function broken(row: Row): string[] {
  const r = row.report;
  if (row.expect.length === 0) return [];
  if (!r) return ['no report'];
  const out: string[] = [];
  if (row.rotations < ROTATIONS) out.push(`only ${row.rotations}/${ROTATIONS} rotations`);
  if (row.expect.includes('failedSignIns') && r.failedSignIns > 0)
    out.push(`${r.failedSignIns} failed sign-ins`);
  if (row.expect.includes('failedQueries') && r.failedQueries > 0)
    out.push(`${r.failedQueries} failed queries`);
  if (row.expect.includes('pooled') && r.pooledSurviving < r.pooledOpened)
    out.push(`${r.pooledOpened - r.pooledSurviving} pooled connections lost`);
  return out;
}

function table(): string {
  const header =
    '| target | strategy | client | rotations | sign-ins | failed sign-ins | queries | failed queries | longest window unable to sign in | pooled connections surviving | secret reads | single-user window: setSecret start / new password accepted → finishSecret end (median, max) | zeros promised | holds |';
  const lines = [header, `|${' --- |'.repeat(14)}`];
  for (const row of rows) {
    const r = row.report;
    const fails = broken(row);
    const promised =
      row.expect.length === 0
        ? (row.note ?? 'none (baseline)')
        : row.expect
            .map((e) =>
              e === 'failedSignIns' ? 'sign-ins' : e === 'failedQueries' ? 'queries' : 'pooled',
            )
            .join(', ');
    lines.push(
      `| ${row.target} | ${row.strategy} | ${row.client} | ${row.rotations} | ${r?.signIns ?? '-'} | ${r?.failedSignIns ?? '-'} | ${r?.queries ?? '-'} | ${r?.failedQueries ?? '-'} | ${r ? `${r.longestOutageMs} ms` : '-'} | ${r && r.pooledOpened > 0 ? `${r.pooledSurviving}/${r.pooledOpened}` : '-'} | ${r && row.client !== 'wrapper' ? r.secretReads : '-'} | ${row.window ? `${row.window.median.toFixed(0)} ms, ${row.window.max.toFixed(0)} ms / ${row.window.openMedian.toFixed(0)} ms, ${row.window.openMax.toFixed(0)} ms` : '-'} | ${promised} | ${row.expect.length === 0 ? '-' : fails.length === 0 ? 'yes' : `**no**: ${fails.join(', ')}`} |`,
    );
  }
  return lines.join('\n');
}

async function main() {
  Object.assign(process.env, {
    AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: 'soak',
    AWS_SECRET_ACCESS_KEY: 'soak',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  });
  const started = performance.now();
  await databaseScenarios();
  await apiKeyScenarios();
  const text = [
    '# Soak: applications under rotation (`npm run soak`)',
    '',
    `${QUICK ? 'Quick run' : 'Full run'}: ${ROTATIONS} rotations per target and strategy, one every ${INTERVAL_MS} ms; each client opens a new connection (or makes a new API call) every ${TICK_MS} ms and queries ${POOLED} pooled connections opened before the first rotation. The Powertools reader keeps the secret ${CACHE_SECONDS} s (less than the interval); the wrapper (2.0.1, the release on npm, which has no cache age) keeps it until a sign-in is refused; the naive client keeps it an hour. A failed sign-in is one refused attempt; a failed query is an application request that failed after the client's own retries. Generated by scripts/soak.ts in ${((performance.now() - started) / 1000).toFixed(0)} s.`,
    '',
    `Servers: ${servers.join('; ')}. API keys: the SendGrid, Stripe and Twilio fakes of test/support.`,
    '',
    table(),
    '',
    'The single-user window, from the moment the server accepts the new password to the end of finishSecret (medians; in Lambda each step is also a separate invocation):',
    '',
    ...windowNotes.map((note) => `- ${note}`),
    '',
  ].join('\n');
  writeFileSync(OUT, text);
  console.log(text);
  for (const row of rows) {
    if (row.report && row.report.failedQueries > 0) {
      console.log(
        `${row.target} ${row.strategy} ${row.client}: failed queries by kind ${JSON.stringify(row.report.failures)}`,
      );
    }
  }
  const failing = rows.filter((row) => broken(row).length > 0);
  for (const row of failing) {
    console.error(
      `${row.target} ${row.strategy} ${row.client}: ${broken(row).join(', ')}; failures by kind ${JSON.stringify(row.report?.failures ?? {})}`,
    );
  }
  if (failing.length > 0) {
    console.error(`soak: ${failing.length} row(s) broke a promised zero`);
    process.exitCode = 1;
  }
}

main()
  .catch((error) => {
    console.error('soak failed:', error instanceof Error ? error.message : error);
    if (error instanceof Error && error.cause) console.error('  cause:', String(error.cause));
    process.exitCode = 1;
  })
  .finally(() => process.exit());
