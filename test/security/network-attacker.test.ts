/**
 * Actor (d): someone on the network path between the function and the database. It can answer
 * "no TLS" to a TLS request and ask for a password in cleartext. What it must never gain: the
 * master's password, which must travel only over verified TLS unless the master secret itself
 * says "ssl": false (the app secret's writer cannot choose it, and neither can the network).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TlsError } from '../../shared/common/errors.js';
import { createPostgres } from '../../shared/databases/postgres.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';
import { HostilePgServer } from '../support/hostile-pg-server.js';
import { PgAdmin, randomName, signsIn } from '../support/pg-admin.js';
import { RotationHarness } from '../support/rotation-harness.js';
import { provided } from '../support/servers.js';

describe('an on-path attacker between the function and PostgreSQL', () => {
  let admin: PgAdmin;
  let mitm: HostilePgServer | undefined;
  const harness = new RotationHarness();
  const users: string[] = [];

  beforeAll(async () => {
    admin = await PgAdmin.connect(provided('pgAdminUrl'));
    await harness.start();
  });

  afterEach(async () => {
    await mitm?.stop();
    mitm = undefined;
  });

  afterAll(async () => {
    await admin.dropUsers(users.flatMap((name) => [`${name}_clone`, name]));
    await admin.close();
    await harness.stop();
  });

  /**
   * The app user reaches the real server through the attacker, who relays it (its sign-in works,
   * so the rotation goes on) and keeps the master's sign-in for itself.
   */
  async function provision(masterValue: (port: number) => Record<string, unknown>) {
    mitm = await HostilePgServer.start({
      upstream: { host: admin.host, port: admin.port },
      capture: (user) => user === admin.username,
    });
    const name = randomName('sec_mitm');
    const password = `app-${randomUUID()}`;
    await admin.createUser(name, password);
    users.push(name);
    const masterarn = harness.fake.createSecret({
      name: `master/${randomName('m')}`,
      secretString: JSON.stringify(masterValue(mitm.port)),
      tags: [
        {
          Key: 'aws:rds:primaryDBInstanceArn',
          Value: 'arn:aws:rds:us-east-1:123456789012:db:orders',
        },
      ],
    });
    // "ssl" absent: TLS preferred, so the app's own sign-in may fall back to plaintext.
    const secretId = harness.fake.createSecret({
      name: `app/${randomName('secret')}`,
      secretString: JSON.stringify({
        engine: 'postgres',
        host: '127.0.0.1',
        port: mitm.port,
        username: name,
        password,
        masterarn,
      }),
    });
    return { name, password, secretId };
  }

  it.each([
    [
      'a master secret with host and port but no "ssl"',
      (port: number) => ({
        engine: 'postgres',
        host: '127.0.0.1',
        port,
        username: admin.username,
        password: admin.password,
      }),
    ],
    [
      'an RDS-managed master secret (username and password only)',
      () => ({ username: admin.username, password: admin.password }),
    ],
  ])('never receives the master password when it answers "no TLS": %s', async (_, masterValue) => {
    // Prepare
    const { name, password, secretId } = await provision(masterValue);
    const port = mitm?.port as number;
    const handler = harness.handler(
      alternatingUsers(createPostgres(), {
        resolveRdsEndpoint: async () => ({ hosts: ['127.0.0.1'], port, engine: 'postgres' }),
      }),
    );

    // Act
    const result = await harness.rotate(handler, secretId);

    // Assess: the app's sign-in went through it; the master's password never reached it.
    expect(mitm?.startups).toContain(name);
    expect(mitm?.passwords()).not.toContain(admin.password);
    expect(mitm?.captures.filter((capture) => capture.user === admin.username)).toEqual([]);
    expect(result.error).toBeInstanceOf(TlsError);
    expect(await admin.userExists(`${name}_clone`)).toBe(false);
    expect(await signsIn({ host: admin.host, port: admin.port, user: name, password })).toBe(true);
  });

  it('sends the master password in plaintext only when the master secret itself says "ssl": false', async () => {
    // Prepare: the master's owner chose plaintext (a loopback test server); the app secret did not.
    const { name, secretId } = await provision((port) => ({
      engine: 'postgres',
      host: '127.0.0.1',
      port,
      username: admin.username,
      password: admin.password,
      ssl: false,
    }));

    // Act
    const result = await harness.rotate(
      harness.handler(alternatingUsers(createPostgres())),
      secretId,
    );

    // Assess: this is the one case the password may be had (it stops there: the attacker
    // refuses it), and it did not ask for TLS first: plaintext was the secret's own choice.
    expect(result.completed).toBe(false);
    expect(mitm?.captures.map((capture) => [capture.user, capture.askedForTls])).toEqual([
      [admin.username, false],
    ]);
    expect(await admin.userExists(`${name}_clone`)).toBe(false);
  });
});
