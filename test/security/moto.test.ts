/**
 * The service itself, as another implementation reads the documentation. Our fake Secrets
 * Manager encodes our reading; moto (an emulator nobody here wrote) encodes another one, and
 * differs where it matters: PutSecretValue with a token whose version already holds a value
 * replaces it instead of answering ResourceExistsException. The no-lockout guarantee must hold
 * there too: after every step some stored credential signs in.
 *
 * moto_server comes from `bash scripts/install-moto.sh` (MOTO_SERVER); CI=true requires it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  RotateSecretCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgres } from '../../shared/databases/postgres.js';
import { createRotationHandler } from '../../shared/rotation/handler.js';
import { singleUser } from '../../shared/strategies/single-user.js';
import { LogRecorder } from '../support/log-recorder.js';
import { PgAdmin, randomName, signsIn } from '../support/pg-admin.js';
import { STEPS, type Step } from '../support/rotation-driver.js';
import { RotationHarness } from '../support/rotation-harness.js';
import { provided } from '../support/servers.js';

const motoServer = process.env.MOTO_SERVER;
if (process.env.CI === 'true' && !motoServer) {
  throw new Error('CI=true but MOTO_SERVER is not set: run scripts/install-moto.sh first');
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe.skipIf(!motoServer)(
  'single user against moto, a Secrets Manager nobody here wrote',
  () => {
    let admin: PgAdmin;
    let moto: ChildProcess;
    let endpoint: string;
    let client: SecretsManagerClient;
    const logs = new LogRecorder();
    const users: string[] = [];

    beforeAll(async () => {
      admin = await PgAdmin.connect(provided('pgAdminUrl'));
      const port = await freePort();
      moto = spawn(motoServer as string, ['-H', '127.0.0.1', '-p', String(port)], {
        stdio: 'ignore',
      });
      endpoint = `http://127.0.0.1:${port}`;
      client = new SecretsManagerClient({ endpoint });
      const started = Date.now();
      for (;;) {
        try {
          await fetch(`${endpoint}/moto-api/`);
          break;
        } catch (error) {
          if (Date.now() - started > 30_000)
            throw new Error('moto_server not up after 30000 ms', { cause: error });
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
    });

    afterAll(async () => {
      moto?.kill();
      await admin?.dropUsers(users);
      await admin?.close();
    });

    /** A handler as a freshly started Lambda would build it: nothing cached. */
    const coldHandler = () =>
      createRotationHandler({
        strategy: singleUser(createPostgres()),
        logger: logs,
        env: { SECRETS_MANAGER_ENDPOINT: endpoint },
      });

    async function provision() {
      const name = randomName('sec_moto');
      const password = `initial-${randomUUID()}`;
      await admin.createUser(name, password);
      users.push(name);
      const created = await client.send(
        new CreateSecretCommand({
          Name: `app/${randomName('secret')}`,
          SecretString: JSON.stringify({
            engine: 'postgres',
            host: admin.host,
            port: admin.port,
            username: name,
            password,
            ssl: false,
          }),
        }),
      );
      const arn = created.ARN as string;
      // RotateSecret registers the AWSPENDING version (no value); moto then fails to invoke a
      // function it does not have, which leaves the rotation to us, as the service's retry would.
      const token = randomUUID();
      await client
        .send(
          new RotateSecretCommand({
            SecretId: arn,
            ClientRequestToken: token,
            RotationLambdaARN: 'arn:aws:lambda:us-east-1:123456789012:function:rotation',
            RotationRules: { AutomaticallyAfterDays: 30 },
          }),
        )
        .catch(() => {});
      const stages = (await client.send(new DescribeSecretCommand({ SecretId: arn })))
        .VersionIdsToStages;
      expect(stages?.[token]).toEqual(['AWSPENDING']);
      return { name, arn, token };
    }

    const stored = async (arn: string, stage: string) => {
      try {
        const value = await client.send(
          new GetSecretValueCommand({ SecretId: arn, VersionStage: stage }),
        );
        return JSON.parse(value.SecretString as string) as { username: string; password: string };
      } catch {
        return undefined;
      }
    };
    const signsInWith = async (arn: string, stage: string) => {
      const value = await stored(arn, stage);
      return (
        value !== undefined &&
        signsIn({
          host: admin.host,
          port: admin.port,
          user: value.username,
          password: value.password,
        })
      );
    };
    const invoke = (
      handler: ReturnType<typeof coldHandler>,
      step: Step,
      arn: string,
      token: string,
    ) =>
      handler(
        { Step: step, SecretId: arn, ClientRequestToken: token },
        { getRemainingTimeInMillis: () => 60_000 },
      );

    it('rotates: AWSCURRENT moves to the new version and signs in, the old one becomes AWSPREVIOUS', async () => {
      // Prepare
      const { arn, token } = await provision();
      const before = await client.send(new DescribeSecretCommand({ SecretId: arn }));
      const old = Object.entries(before.VersionIdsToStages ?? {}).find(([, s]) =>
        s.includes('AWSCURRENT'),
      )?.[0];

      // Act: one warm function for the four steps.
      const handler = coldHandler();
      for (const step of STEPS) await invoke(handler, step, arn, token);

      // Assess
      const after =
        (await client.send(new DescribeSecretCommand({ SecretId: arn }))).VersionIdsToStages ?? {};
      expect(after[token]).toContain('AWSCURRENT');
      expect(after[old as string]).toEqual(['AWSPREVIOUS']);
      expect(await signsInWith(arn, 'AWSCURRENT')).toBe(true);
    });

    it('a createSecret retried on a cold function after setSecret succeeded keeps the password the database has', async () => {
      // Prepare: createSecret and setSecret succeed; the service retries from createSecret (a
      // lost answer, a timeout) on a new instance, with the same token.
      const { arn, token } = await provision();
      const first = coldHandler();
      await invoke(first, 'createSecret', arn, token);
      await invoke(first, 'setSecret', arn, token);
      expect(await signsInWith(arn, 'AWSPENDING')).toBe(true);

      // Act and assess: after each step of the retry some stored credential signs in.
      for (const step of STEPS) {
        await invoke(coldHandler(), step, arn, token).catch(() => {});
        const working =
          (await signsInWith(arn, 'AWSCURRENT')) || (await signsInWith(arn, 'AWSPENDING'));
        expect(
          working,
          `after the retried ${step}, neither AWSCURRENT nor AWSPENDING signs in`,
        ).toBe(true);
      }
      const stages =
        (await client.send(new DescribeSecretCommand({ SecretId: arn }))).VersionIdsToStages ?? {};
      expect(stages[token]).toContain('AWSCURRENT');
      expect(await signsInWith(arn, 'AWSCURRENT')).toBe(true);
    });
  },
);

describe('single user against our fake, set to accept a second value for a token as moto does', () => {
  let admin: PgAdmin;
  const harness = new RotationHarness({ overwriteVersions: true });
  const users: string[] = [];

  beforeAll(async () => {
    admin = await PgAdmin.connect(provided('pgAdminUrl'));
    await harness.start();
  });

  afterAll(async () => {
    await admin.dropUsers(users);
    await admin.close();
    await harness.stop();
  });

  it('a createSecret retried on a cold function after setSecret succeeded keeps the password the database has', async () => {
    // Prepare
    const name = randomName('sec_overwrite');
    await admin.createUser(name, 'initial-password-1');
    users.push(name);
    const secretId = harness.appSecret(admin.secretValue(name, 'initial-password-1'));
    const handler = () => harness.handler(singleUser(createPostgres()));
    const first = await harness.rotate(handler(), secretId, { stopAfter: 'setSecret' });
    const signs = async (stage: string) => {
      const value = harness.fake.valueOf(secretId, stage);
      if (value === undefined) return false;
      const { username, password } = JSON.parse(value);
      return signsIn({ host: admin.host, port: admin.port, user: username, password });
    };
    expect(await signs('AWSPENDING')).toBe(true);

    // Act: the service's retry, each step on a new instance.
    for (const step of STEPS) {
      await harness
        .invoker(handler())({
          Step: step,
          SecretId: harness.fake.arnOf(secretId),
          ClientRequestToken: first.token,
        })
        .catch(() => {});
      // Assess
      expect(
        (await signs('AWSCURRENT')) || (await signs('AWSPENDING')),
        `after the retried ${step}`,
      ).toBe(true);
    }
    expect(harness.fake.versionOf(secretId, 'AWSCURRENT')).toBe(first.token);
  });
});
