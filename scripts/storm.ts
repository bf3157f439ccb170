/**
 * Rotation storm (`npm run storm`): 200 secrets on one PostgreSQL whose max_connections is 30,
 * all rotated at once, each by its own function instance (as 200 concurrent Lambda invocations
 * would be). Every rotation must succeed ("too many connections" is retried with backoff within
 * the function's time) and no connection may be left behind. Prints the wall time.
 *
 *   npm run storm [-- --secrets 200 --max-connections 30]
 */
import pg from 'pg';
import { createPostgres } from '../shared/databases/postgres.js';
import { createRotationHandler } from '../shared/rotation/handler.js';
import { singleUser } from '../shared/strategies/single-user.js';
import { FakeSecretsManager } from '../test/support/fake-secrets-manager.js';
import { startFakeSecretsManagerServer } from '../test/support/fake-secrets-manager-http.js';
import { LogRecorder } from '../test/support/log-recorder.js';
import { startPostgres } from '../test/support/postgres-server.js';
import { rotate } from '../test/support/rotation-driver.js';

const arg = (name: string, fallback: number) => {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? Number(process.argv[index + 1]) : fallback;
};
const SECRETS = arg('secrets', 200);
const MAX_CONNECTIONS = arg('max-connections', 30);
const FUNCTION_TIMEOUT_MS = 60_000; // template.yaml's Timeout

async function main() {
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'storm',
    AWS_SECRET_ACCESS_KEY: 'storm',
    // The SDK warns once per loaded copy that Node 20 support ends; the functions deploy on
    // nodejs24.x (template.yaml), and the warning would only bury the result.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  });
  const server = await startPostgres({
    settings: { max_connections: String(MAX_CONNECTIONS) },
    ignoreEnvironment: true,
  });
  const fake = new FakeSecretsManager();
  const sm = await startFakeSecretsManagerServer(fake);
  const admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  const url = new URL(server.adminUrl);
  try {
    console.log(
      `PostgreSQL (${server.source}) with max_connections=${(await admin.query('SHOW max_connections')).rows[0].max_connections}; ${SECRETS} secrets`,
    );
    const secrets: string[] = [];
    for (let i = 0; i < SECRETS; i++) {
      const name = `storm_${i}`;
      await admin.query(`DROP ROLE IF EXISTS ${name}`);
      await admin.query(`CREATE ROLE ${name} LOGIN PASSWORD 'storm-initial-${i}'`);
      secrets.push(
        fake.createSecret({
          name: `storm/${name}`,
          secretString: JSON.stringify({
            engine: 'postgres',
            host: url.hostname,
            port: Number(url.port),
            username: name,
            password: `storm-initial-${i}`,
            ssl: false,
          }),
        }),
      );
    }
    const logs = new LogRecorder();
    const env = { SECRETS_MANAGER_ENDPOINT: sm.endpoint };
    const started = performance.now();
    const results = await Promise.all(
      secrets.map((secretId) => {
        // One function instance per secret, each with the Lambda's time budget per step.
        const handler = createRotationHandler({
          strategy: singleUser(createPostgres()),
          logger: logs,
          env,
        });
        return rotate({
          fake,
          secretId,
          invoke: (event) =>
            handler(event, { getRemainingTimeInMillis: () => FUNCTION_TIMEOUT_MS }),
        });
      }),
    );
    const wallMs = performance.now() - started;
    const failed = results.filter((result) => !result.completed);
    const retries = logs.lines.filter((line) =>
      line.message.includes('no free connection slot'),
    ).length;
    await new Promise((resolve) => setTimeout(resolve, 500));
    const left = (
      await admin.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'secrets-rotation'",
      )
    ).rows[0].n;
    let signIns = 0;
    for (const secretId of secrets) {
      const value = JSON.parse(fake.valueOf(secretId) as string);
      const client = new pg.Client({
        host: url.hostname,
        port: Number(url.port),
        user: value.username,
        password: value.password,
        database: 'postgres',
      });
      await client.connect().then(
        () => signIns++,
        () => {},
      );
      await client.end().catch(() => {});
    }
    console.log(`wall time ${(wallMs / 1000).toFixed(1)} s for ${SECRETS} concurrent rotations`);
    console.log(
      `completed ${SECRETS - failed.length}/${SECRETS}; "too many connections" retries ${retries}; AWSCURRENT signs in for ${signIns}/${SECRETS}; connections left ${left}`,
    );
    for (const failure of failed.slice(0, 5))
      console.log(`  failed at ${failure.failedStep}: ${String(failure.error)}`);
    if (failed.length > 0 || left > 0 || signIns !== SECRETS) process.exitCode = 1;
  } finally {
    await admin.end();
    await sm.close();
    await server.stop();
  }
}

main()
  .catch((error) => {
    console.error('storm failed:', error instanceof Error ? error.message : error);
    process.exitCode = 1;
  })
  // Keep-alive sockets of the SDK and the fakes must not hold the process (or CI) open.
  .finally(() => process.exit());
