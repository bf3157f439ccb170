/**
 * Actor (a): the application's database user, owner of its own database. It may set defaults on
 * that database (`ALTER DATABASE … SET`) and create objects in it, and every session that signs
 * in to it gets them. What it must never gain: any say over the master's session. So the master
 * signs in to its own database (its secret's `dbname`, else `postgres`), never the application's.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgres } from '../../shared/databases/postgres.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';
import { HostilePgServer } from '../support/hostile-pg-server.js';
import { PgAdmin, randomName } from '../support/pg-admin.js';
import { RotationHarness } from '../support/rotation-harness.js';
import { provided } from '../support/servers.js';

describe('the application user, owner of its database, against the master’s session', () => {
  let admin: PgAdmin;
  let relay: HostilePgServer;
  const harness = new RotationHarness();
  const users: string[] = [];
  const databases: string[] = [];

  beforeAll(async () => {
    admin = await PgAdmin.connect(provided('pgAdminUrl'));
    await harness.start();
    // Relays every sign-in to the real server and notes which database each one asked for.
    relay = await HostilePgServer.start({
      upstream: { host: admin.host, port: admin.port },
      capture: () => false,
    });
  });

  afterAll(async () => {
    await relay.stop();
    for (const database of databases) {
      await admin.query(`DROP DATABASE IF EXISTS ${admin.ident(database)} WITH (FORCE)`);
    }
    await admin.dropUsers(users.flatMap((name) => [`${name}_clone`, name]));
    await admin.close();
    await harness.stop();
  });

  it('keeps the master out of the app’s database, so the owner’s database defaults never reach its session', async () => {
    // Prepare: the app user owns its database and makes every session there store passwords
    // as md5 (weaker than the server's SCRAM).
    const name = randomName('sec_owner');
    const password = `app-${randomUUID()}`;
    await admin.createUser(name, password);
    users.push(name);
    const database = randomName('sec_owned_db');
    await admin.query(`CREATE DATABASE ${admin.ident(database)} OWNER ${admin.ident(name)}`);
    databases.push(database);
    const { default: pg } = await import('pg');
    const owner = new pg.Client({
      host: admin.host,
      port: admin.port,
      user: name,
      password,
      database,
    });
    await owner.connect();
    await owner.query(
      `ALTER DATABASE ${owner.escapeIdentifier(database)} SET password_encryption = 'md5'`,
    );
    await owner.end();
    // An RDS-style master secret: no dbname.
    const masterarn = harness.fake.createSecret({
      name: `master/${randomName('m')}`,
      secretString: JSON.stringify({
        engine: 'postgres',
        host: '127.0.0.1',
        port: relay.port,
        username: admin.username,
        password: admin.password,
        ssl: false,
      }),
    });
    const secretId = harness.fake.createSecret({
      name: `app/${randomName('secret')}`,
      secretString: JSON.stringify({
        engine: 'postgres',
        host: '127.0.0.1',
        port: relay.port,
        username: name,
        password,
        dbname: database,
        ssl: false,
        masterarn,
      }),
    });

    // Act
    const result = await harness.rotate(
      harness.handler(alternatingUsers(createPostgres())),
      secretId,
    );

    // Assess: the master's sessions were in `postgres`, and the clone's password is stored as the
    // server stores passwords, not as the app's database would have it.
    expect(result.completed, String(result.error)).toBe(true);
    const masterSessions = relay.sessions.filter((session) => session.user === admin.username);
    expect(masterSessions.length).toBeGreaterThan(0);
    expect(new Set(masterSessions.map((session) => session.database))).toEqual(
      new Set(['postgres']),
    );
    const hashes = await admin.passwordHashes([`${name}_clone`]);
    expect(hashes[`${name}_clone`]).toMatch(/^SCRAM-SHA-256\$/);
  });
});
