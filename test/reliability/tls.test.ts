import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TlsError } from '../../shared/common/errors.js';
import { createPostgres } from '../../shared/databases/postgres.js';
import { singleUser } from '../../shared/strategies/single-user.js';
import { randomName } from '../support/pg-admin.js';
import { RotationHarness } from '../support/rotation-harness.js';

const url = process.env.PG_TLS_ADMIN_URL;
const caFile = process.env.PG_TLS_CA_FILE;
if (process.env.CI === 'true' && (!url || !caFile)) {
  throw new Error(
    'CI=true but PG_TLS_ADMIN_URL / PG_TLS_CA_FILE are not set: start the TLS server (PG_TLS=1 scripts/start-postgres.sh)',
  );
}

/**
 * TLS against a PostgreSQL that accepts only TLS (hostssl), with a certificate from a test CA
 * that the process does not trust unless NODE_EXTRA_CA_CERTS names it, as in Lambda.
 * Start the server with: PG_TLS=1 PG_PORT=25436 PG_URL_VAR=PG_TLS_ADMIN_URL bash scripts/start-postgres.sh
 */
describe.skipIf(!url || !caFile)('TLS', () => {
  const harness = new RotationHarness();
  let admin: pg.Client;
  let ca: string;
  const users: string[] = [];

  beforeAll(async () => {
    ca = readFileSync(caFile as string, 'utf8');
    admin = new pg.Client({ connectionString: url, ssl: { ca } });
    await admin.connect();
    await harness.start();
  });
  afterAll(async () => {
    for (const name of users)
      await admin.query(`DROP ROLE IF EXISTS ${admin.escapeIdentifier(name)}`);
    await admin.end();
    await harness.stop();
  });

  const server = () => new URL(url as string);
  async function provision(ssl: boolean | undefined, host = 'localhost') {
    const name = randomName('tls');
    const password = `initial-${randomName('pw')}`;
    await admin.query(
      `CREATE ROLE ${admin.escapeIdentifier(name)} LOGIN PASSWORD ${admin.escapeLiteral(password)}`,
    );
    users.push(name);
    const secretId = harness.fake.createSecret({
      name: `tls/${name}`,
      secretString: JSON.stringify({
        engine: 'postgres',
        host,
        port: Number(server().port),
        username: name,
        password,
        ...(ssl === undefined ? {} : { ssl }),
      }),
    });
    return { name, password, secretId };
  }

  /** Signs in over verified TLS with the test CA; false when the password is refused. */
  async function signsIn(user: string, password: string): Promise<boolean> {
    const client = new pg.Client({
      host: 'localhost',
      port: Number(server().port),
      user,
      password,
      database: 'postgres',
      ssl: { ca },
    });
    client.on('error', () => {});
    try {
      await client.connect();
      return true;
    } catch (error) {
      if ((error as { code?: string }).code === '28P01') return false;
      throw error;
    } finally {
      await client.end().catch(() => {});
    }
  }

  it('fails with a TLS error, without falling back, when ssl is true and the CA is not trusted', async () => {
    // Prepare: this process does not trust the test CA.
    const { name, password, secretId } = await provision(true);

    // Act
    const result = await harness.rotate(harness.handler(singleUser(createPostgres())), secretId);

    // Assess
    expect(result.failedStep).toBe('setSecret');
    expect(result.error).toBeInstanceOf(TlsError);
    expect(String(result.error)).toMatch(
      /TLS with PostgreSQL at localhost:\d+ .* failed: SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY/,
    );
    expect(harness.logs.messages().some((m) => m.includes('plaintext'))).toBe(false);
    expect(await signsIn(name, password)).toBe(true);
  });

  it('rotates over verified TLS when NODE_EXTRA_CA_CERTS names the CA, as the template sets it', async () => {
    // Prepare: a fresh process, like a Lambda cold start, with the CA bundle in its environment.
    const { name, password, secretId } = await provision(true);
    const token = harness.fake.startRotation(secretId);
    const fn = pathToFileURL(path.resolve('functions/postgres-single-user/index.ts')).href;

    // Act
    const output = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          'scripts/bench-child.mjs',
          fn,
          harness.fake.arnOf(secretId),
          token,
          'createSecret,setSecret,testSecret,finishSecret',
        ],
        {
          env: {
            ...process.env,
            NODE_EXTRA_CA_CERTS: caFile,
            SECRETS_MANAGER_ENDPOINT: harness.endpoint,
            POWERTOOLS_LOG_LEVEL: 'ERROR',
            POWERTOOLS_METRICS_DISABLED: 'true',
          },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let stderr = '';
      child.stderr.on('data', (chunk) => {
        stderr += chunk;
      });
      child.on('close', (code) => resolve({ code, stderr }));
    });

    // Assess
    expect(output.code, output.stderr.slice(-2000)).toBe(0);
    expect(harness.fake.versionOf(secretId)).toBe(token);
    const current = JSON.parse(harness.fake.valueOf(secretId) as string) as { password: string };
    expect(await signsIn(name, current.password)).toBe(true);
    expect(await signsIn(name, password)).toBe(false);
  });

  it('uses TLS without verification when ssl is absent and the server offers it', async () => {
    // Prepare: the server accepts only TLS, so a plaintext attempt would be refused.
    const { name, secretId } = await provision(undefined);

    // Act
    const result = await harness.rotate(harness.handler(singleUser(createPostgres())), secretId);

    // Assess
    expect(result.completed, String(result.error)).toBe(true);
    expect(harness.logs.messages().some((m) => m.includes('plaintext'))).toBe(false);
    const current = JSON.parse(harness.fake.valueOf(secretId) as string) as { password: string };
    expect(await signsIn(name, current.password)).toBe(true);
  });
});
