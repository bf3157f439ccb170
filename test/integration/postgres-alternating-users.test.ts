import { DescribeDBInstancesCommand, RDSClient } from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rdsEndpointResolver } from '../../shared/aws/rds-endpoint.js';
import { TlsError } from '../../shared/common/errors.js';
import { createPostgres } from '../../shared/databases/postgres.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';
import { PgAdmin, queryAs, randomName, signsIn } from '../support/pg-admin.js';
import { alternatingUsersContract } from '../support/rotation-contract.js';
import { RotationHarness } from '../support/rotation-harness.js';
import { provided } from '../support/servers.js';

describe('postgres alternating users', () => {
  let admin: PgAdmin;
  const harness = new RotationHarness();
  const users: string[] = [];
  let masterArn: string;
  const handler = () => harness.handler(alternatingUsers(createPostgres()));

  beforeAll(async () => {
    admin = await PgAdmin.connect(provided('pgAdminUrl'));
    await harness.start();
    masterArn = harness.fake.createSecret({
      name: `rds/master-${randomName('m')}`,
      secretString: JSON.stringify({
        engine: 'postgres',
        host: admin.host,
        port: admin.port,
        username: admin.username,
        password: admin.password,
        ssl: false,
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
  async function provision(
    options: { name?: string; masterarn?: string; secretPassword?: string } = {},
  ) {
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
        password: options.secretPassword ?? password,
        dbname: 'postgres',
        ssl: 'FALSE',
        masterarn: options.masterarn ?? masterArn,
      }),
    });
    return { name, password, secretId };
  }

  alternatingUsersContract({
    harness,
    handler,
    provision,
    masterArn: () => masterArn,
    signsIn: (secret) => signsIn(login(secret)),
    usersLike: (name) => admin.rolesLike(name),
    namesNeedingQuoting: [`App "User" ${randomName('Q')}`, `it's;${randomName('q')}`],
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

  it('finds the host of an RDS-managed master secret through the RDS API, and signs the master in only over verified TLS', async () => {
    // Prepare: the master secret holds only credentials and RDS's tag, as RDS creates it (the
    // tag key as RDS writes it: aws:rds:primaryDBInstanceArn).
    const instanceArn = 'arn:aws:rds:us-east-1:123456789012:db:orders';
    const managed = harness.fake.createSecret({
      name: `rds!db-${randomName('m')}`,
      secretString: JSON.stringify({ username: admin.username, password: admin.password }),
      tags: [{ Key: 'aws:rds:primaryDBInstanceArn', Value: instanceArn }],
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

    // Assess: the host came from RDS; the secret says nothing of TLS, and this test server
    // offers none, so the master's password is never sent and nothing changes.
    expect(rds.commandCalls(DescribeDBInstancesCommand)).toHaveLength(1);
    expect(harness.logs.messages()).toContain('found the master host through the RDS API');
    expect(result.completed).toBe(false);
    expect(result.error).toBeInstanceOf(TlsError);
    expect(await admin.userExists(`${name}_clone`)).toBe(false);
    expect(harness.secret(secretId).username).toBe(name);
  });
});
