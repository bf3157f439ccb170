import { DescribeDBInstancesCommand, RDSClient } from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { rdsEndpointResolver } from '../../shared/aws/rds-endpoint.js';
import { AuthenticationError, InvalidSecretError } from '../../shared/common/errors.js';
import { createPostgres } from '../../shared/databases/postgres.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';
import { PgAdmin, queryAs, randomName, signsIn } from '../support/pg-admin.js';
import { STEPS } from '../support/rotation-driver.js';
import { RotationHarness } from '../support/rotation-harness.js';

describe('postgres alternating users', () => {
  let admin: PgAdmin;
  const harness = new RotationHarness();
  const users: string[] = [];
  let masterArn: string;
  const handler = () => harness.handler(alternatingUsers(createPostgres()));

  beforeAll(async () => {
    admin = await PgAdmin.connect(inject('pgAdminUrl'));
    await harness.start();
    masterArn = harness.fake.createSecret({
      name: `rds/master-${randomName('m')}`,
      secretString: JSON.stringify({
        engine: 'postgres',
        host: admin.host,
        port: admin.port,
        username: admin.username,
        password: admin.password,
      }),
    });
  });

  afterAll(async () => {
    await admin.dropUsers(users.flatMap((name) => [`${name}_clone`, name]));
    await admin.close();
    await harness.stop();
  });

  const login = (secret: { username: string; password: string }) => ({
    host: admin.host,
    port: admin.port,
    user: secret.username,
    password: secret.password,
  });

  /** A user that owns nothing but can read a table, and a secret naming it. */
  async function provision(options: { name?: string; masterarn?: string; password?: string } = {}) {
    const name = options.name ?? randomName('alt');
    const password = `initial-${randomName('pw')}`;
    await admin.createUser(name, password);
    users.push(name);
    const secretId = harness.fake.createSecret({
      name: `app/${randomName('secret')}`,
      secretString: JSON.stringify({
        engine: 'postgres',
        host: admin.host,
        port: admin.port,
        username: name,
        password: options.password ?? password,
        dbname: 'postgres',
        ssl: 'FALSE',
        masterarn: options.masterarn ?? masterArn,
      }),
    });
    return { name, password, secretId };
  }

  it('rotates three times in a row, alternating between the user and its clone', async () => {
    // Prepare
    const { name, secretId } = await provision();
    const rotate = handler();
    const seen: string[] = [];

    for (let round = 1; round <= 3; round++) {
      const before = harness.secret(secretId);

      // Act
      const result = await harness.rotate(rotate, secretId);

      // Assess
      expect(result.completed, `round ${round}: ${String(result.error)}`).toBe(true);
      const current = harness.secret(secretId);
      seen.push(current.username);
      expect(await signsIn(login(current))).toBe(true);
      // The user that was AWSCURRENT before keeps its password: clients using it see no failure.
      expect(await signsIn(login(before))).toBe(true);
      expect(harness.secret(secretId, 'AWSPREVIOUS').username).toBe(before.username);
    }
    expect(seen).toEqual([`${name}_clone`, name, `${name}_clone`]);
    expect(await admin.sessionsOf([name, `${name}_clone`])).toBe(0);
    expect(harness.leakedSecrets()).toEqual([]);
  });

  it('keeps AWSCURRENT signing in after every step of every rotation', async () => {
    // Prepare
    const { secretId } = await provision();
    const rotate = handler();
    const invoke = harness.invoker(rotate);
    const checks: boolean[] = [];

    for (let round = 1; round <= 2; round++) {
      const token = harness.fake.startRotation(secretId);
      for (const step of STEPS) {
        // Act
        await invoke({
          Step: step,
          SecretId: harness.fake.arnOf(secretId),
          ClientRequestToken: token,
        });

        // Assess
        checks.push(await signsIn(login(harness.secret(secretId))));
      }
    }
    expect(checks).toEqual(Array(8).fill(true));
  });

  it('gives the clone the tables and roles of the original', async () => {
    // Prepare: the original reads one table directly and another through a role.
    const { name, secretId } = await provision();
    const direct = randomName('direct');
    const viaRole = randomName('via_role');
    const reader = randomName('reader');
    await admin.query(`CREATE TABLE ${direct} (v text); INSERT INTO ${direct} VALUES ('direct')`);
    await admin.query(`CREATE TABLE ${viaRole} (v text); INSERT INTO ${viaRole} VALUES ('role')`);
    await admin.query(`CREATE ROLE ${reader} NOLOGIN; GRANT SELECT ON ${viaRole} TO ${reader}`);
    await admin.query(
      `GRANT SELECT ON ${direct} TO ${admin.ident(name)}; GRANT ${reader} TO ${admin.ident(name)}`,
    );
    users.push(reader);

    // Act
    const result = await harness.rotate(handler(), secretId);

    // Assess
    expect(result.completed, String(result.error)).toBe(true);
    const clone = harness.secret(secretId);
    expect(clone.username).toBe(`${name}_clone`);
    expect(await queryAs(login(clone), `SELECT v FROM ${direct}`)).toEqual([{ v: 'direct' }]);
    expect(await queryAs(login(clone), `SELECT v FROM ${viaRole}`)).toEqual([{ v: 'role' }]);
    // A table granted to the original later is readable by the clone too.
    const later = randomName('later');
    await admin.query(
      `CREATE TABLE ${later} (v text); GRANT SELECT ON ${later} TO ${admin.ident(name)}`,
    );
    expect(await queryAs(login(clone), `SELECT count(*)::int AS n FROM ${later}`)).toEqual([
      { n: 0 },
    ]);
    await admin.query(`DROP TABLE ${direct}, ${viaRole}, ${later}`);
  });

  it('rotates a user whose name needs quoting', async () => {
    // Prepare
    const name = `App "User" ${randomName('Q')}`;
    const { secretId } = await provision({ name });

    // Act
    const first = await harness.rotate(handler(), secretId);
    const second = await harness.rotate(handler(), secretId);

    // Assess
    expect([first.completed, second.completed]).toEqual([true, true]);
    expect(harness.secret(secretId).username).toBe(name);
    expect(await signsIn(login(harness.secret(secretId)))).toBe(true);
    expect(await signsIn(login(harness.secret(secretId, 'AWSPREVIOUS')))).toBe(true);
  });

  it('converges when a crash after setSecret is followed by a retry with the same token', async () => {
    // Prepare
    const { name, secretId } = await provision();
    const rotate = handler();

    // Act
    const crashed = await harness.rotate(rotate, secretId, { stopAfter: 'setSecret' });
    const retried = await harness.retry(rotate, secretId, crashed.token);

    // Assess
    expect(crashed.completed).toBe(false);
    expect(retried.completed, String(retried.error)).toBe(true);
    expect(harness.secret(secretId).username).toBe(`${name}_clone`);
    expect(await signsIn(login(harness.secret(secretId)))).toBe(true);
    expect(await admin.rolesLike(name)).toEqual([name, `${name}_clone`]);
  });

  it('refuses to act when AWSCURRENT does not sign in (confused deputy) and creates nothing', async () => {
    // Prepare: a secret whose AWSCURRENT password is wrong, pointing at a working master.
    const { name, secretId } = await provision({ password: 'not-the-password' });

    // Act
    const result = await harness.rotate(handler(), secretId);

    // Assess
    expect(result.failedStep).toBe('setSecret');
    expect(result.error).toBeInstanceOf(AuthenticationError);
    expect(String(result.error)).toContain('refusing to change users with the master secret');
    expect(await admin.rolesLike(name)).toEqual([name]);
    expect(harness.fake.versionOf(secretId)).not.toBe(result.token);
  });

  it('refuses a master secret for another host and changes nothing', async () => {
    // Prepare: the same server under another name is still "another host" to the guard.
    const otherMaster = harness.fake.createSecret({
      name: `rds/other-${randomName('m')}`,
      secretString: JSON.stringify({
        engine: 'postgres',
        host: 'localhost',
        port: admin.port,
        username: admin.username,
        password: admin.password,
      }),
    });
    const { name, secretId } = await provision({ masterarn: otherMaster });

    // Act
    const result = await harness.rotate(handler(), secretId);

    // Assess
    expect(result.failedStep).toBe('setSecret');
    expect(result.error).toBeInstanceOf(InvalidSecretError);
    expect(String(result.error)).toContain('refusing to act on another host');
    expect(await admin.rolesLike(name)).toEqual([name]);
  });

  it('finds the host of an RDS-managed master secret through the RDS API', async () => {
    // Prepare: the master secret holds only credentials and RDS's tag, as RDS creates it.
    const instanceArn = 'arn:aws:rds:us-east-1:123456789012:db:orders';
    const managed = harness.fake.createSecret({
      name: `rds!db-${randomName('m')}`,
      secretString: JSON.stringify({ username: admin.username, password: admin.password }),
      tags: [{ Key: 'aws:rds:primarydbinstancearn', Value: instanceArn }],
    });
    const rds = mockClient(RDSClient);
    rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: instanceArn }).resolves({
      DBInstances: [{ Endpoint: { Address: admin.host, Port: admin.port }, Engine: 'postgres' }],
    });
    const { name, secretId } = await provision({ masterarn: managed });

    // Act
    const result = await harness.rotate(
      harness.handler(
        alternatingUsers(createPostgres(), { resolveRdsEndpoint: rdsEndpointResolver() }),
      ),
      secretId,
    );
    rds.restore();

    // Assess
    expect(result.completed, String(result.error)).toBe(true);
    expect(harness.secret(secretId).username).toBe(`${name}_clone`);
    expect(rds.commandCalls(DescribeDBInstancesCommand)).toHaveLength(1);
    expect(harness.logs.messages()).toContain('found the master host through the RDS API');
  });
});
