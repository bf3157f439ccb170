/**
 * Actor (b): a principal with PutSecretValue on one rotated secret and no database access. It
 * can write any AWSCURRENT it likes; the service then moves the real, still valid value to
 * AWSPREVIOUS. What it must never gain: a password it does not already hold. So no stored
 * password may leave for a host, port or account that its own version does not name.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidSecretError } from '../../shared/common/errors.js';
import { createMysql } from '../../shared/databases/mysql.js';
import { createPostgres } from '../../shared/databases/postgres.js';
import { singleUser } from '../../shared/strategies/single-user.js';
import { HostileMysqlServer } from '../support/hostile-mysql-server.js';
import { HostilePgServer } from '../support/hostile-pg-server.js';
import { MysqlAdmin, signsIn as mysqlSignsIn } from '../support/mysql-admin.js';
import { PgAdmin, randomName, signsIn } from '../support/pg-admin.js';
import { RotationHarness } from '../support/rotation-harness.js';
import { provided } from '../support/servers.js';

describe('a PutSecretValue holder on one secret (no database access)', () => {
  let admin: PgAdmin;
  let attacker: HostilePgServer;
  const harness = new RotationHarness();
  const users: string[] = [];

  beforeAll(async () => {
    admin = await PgAdmin.connect(provided('pgAdminUrl'));
    await harness.start();
    attacker = await HostilePgServer.start();
  });

  afterAll(async () => {
    await attacker.stop();
    await admin.dropUsers(users);
    await admin.close();
    await harness.stop();
  });

  async function provision() {
    const name = randomName('sec_writer');
    const password = `real-${randomUUID()}`;
    await admin.createUser(name, password);
    users.push(name);
    const real = {
      engine: 'postgres',
      host: admin.host,
      port: admin.port,
      username: name,
      password,
      ssl: false,
    };
    const secretId = harness.fake.createSecret({
      name: `app/${randomName('secret')}`,
      secretString: JSON.stringify(real),
    });
    return { name, password, real, secretId };
  }

  it.each([
    ['the same host name, another port', (port: number) => ({ host: '127.0.0.1', port })],
    ['another host name for the same machine', (port: number) => ({ host: 'localhost', port })],
  ])(
    'never sends the real password (now AWSPREVIOUS) to an AWSCURRENT that names the attacker’s server: %s',
    async (_, where) => {
      // Prepare: the attacker writes an AWSCURRENT for the same user at its own server, in
      // plaintext; the service moves the real value to AWSPREVIOUS.
      const { name, password, real, secretId } = await provision();
      harness.fake.putSecretValue({
        SecretId: secretId,
        ClientRequestToken: randomUUID(),
        SecretString: JSON.stringify({
          ...real,
          ...where(attacker.port),
          password: 'attacker-knows-this',
        }),
        VersionStages: ['AWSCURRENT'],
      });
      expect(harness.secret(secretId, 'AWSPREVIOUS').password).toBe(password);

      // Act: the next scheduled rotation.
      const result = await harness.rotate(harness.handler(singleUser(createPostgres())), secretId);

      // Assess: the attacker's server heard sign-ins, but never the real password; it still
      // signs in at the real server, unchanged.
      expect(result.completed).toBe(false);
      expect(attacker.startups).toContain(name);
      expect(attacker.passwords()).not.toContain(password);
      expect(await signsIn({ host: admin.host, port: admin.port, user: name, password })).toBe(
        true,
      );
    },
  );

  it('refuses a secret value nested thousands of levels deep as an invalid secret, changing nothing', async () => {
    // Prepare: a value that JSON.parse accepts but JSON.stringify and loggers cannot walk.
    const { name, password, real, secretId } = await provision();
    const deep = `${'{"a":'.repeat(4_500)}1${'}'.repeat(4_500)}`;
    harness.fake.putSecretValue({
      SecretId: secretId,
      ClientRequestToken: randomUUID(),
      SecretString: `${JSON.stringify(real).slice(0, -1)},"nested":${deep}}`,
      VersionStages: ['AWSCURRENT'],
    });

    // Act
    const result = await harness.rotate(harness.handler(singleUser(createPostgres())), secretId);

    // Assess
    expect(result.failedStep).toBe('createSecret');
    expect(result.error).toBeInstanceOf(InvalidSecretError);
    expect((result.error as InvalidSecretError).field).toBe('SecretString');
    expect(harness.fake.valueOf(secretId, 'AWSPENDING')).toBeUndefined();
    expect(await signsIn({ host: admin.host, port: admin.port, user: name, password })).toBe(true);
  });
});

describe('a PutSecretValue holder on one MySQL/MariaDB secret (no database access)', () => {
  let admin: MysqlAdmin;
  let attacker: HostileMysqlServer;
  const harness = new RotationHarness();
  const users: string[] = [];

  beforeAll(async () => {
    admin = await MysqlAdmin.connect(provided('mysqlAdminUrl'));
    await harness.start();
    attacker = await HostileMysqlServer.start();
  });

  afterAll(async () => {
    await attacker.stop();
    await admin.dropUsers(users);
    await admin.close();
    await harness.stop();
  });

  it('never sends the real password (now AWSPREVIOUS) to an AWSCURRENT naming a server that offers its own RSA key for it', async () => {
    // Prepare
    const name = randomName('sec_writer');
    const password = `real-${randomUUID()}`;
    await admin.createUser(name, password);
    users.push(name);
    const real = {
      engine: admin.mariadb ? 'mariadb' : 'mysql',
      host: admin.host,
      port: admin.port,
      username: name,
      password,
      ssl: false,
    };
    const secretId = harness.fake.createSecret({
      name: `app/${randomName('secret')}`,
      secretString: JSON.stringify(real),
    });
    harness.fake.putSecretValue({
      SecretId: secretId,
      ClientRequestToken: randomUUID(),
      SecretString: JSON.stringify({
        ...real,
        port: attacker.port,
        password: 'attacker-knows-this',
      }),
      VersionStages: ['AWSCURRENT'],
    });

    // Act
    const result = await harness.rotate(harness.handler(singleUser(createMysql())), secretId);

    // Assess
    expect(result.completed).toBe(false);
    expect(attacker.users).toContain(name);
    expect(attacker.passwords()).not.toContain(password);
    expect(await mysqlSignsIn({ host: admin.host, port: admin.port, user: name, password })).toBe(
      true,
    );
  });
});
