import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RotationError } from '../../shared/common/errors.js';
import { createMongoDb } from '../../shared/databases/mongodb.js';
import { createMysql } from '../../shared/databases/mysql.js';
import { createPostgres } from '../../shared/databases/postgres.js';
import type { Database } from '../../shared/databases/types.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';
import { singleUser } from '../../shared/strategies/single-user.js';
import {
  type CorpusProfile,
  eventCases,
  type HostileCase,
  secretCases,
} from '../support/hostile-corpus.js';
import { MongoAdmin } from '../support/mongo-admin.js';
import { MysqlAdmin } from '../support/mysql-admin.js';
import { PgAdmin, randomName } from '../support/pg-admin.js';
import { RotationHarness } from '../support/rotation-harness.js';
import { provided } from '../support/servers.js';

/** One database the corpus runs against: how to make a user, and what "nothing changed" means. */
interface HostileTarget extends CorpusProfile {
  name: string;
  // biome-ignore lint/suspicious/noExplicitAny: each target has its own session type
  database(): Database<any>;
  connect(): Promise<void>;
  close(): Promise<void>;
  /** A user with a password on the server; resolves its name and a valid secret for it. */
  provision(): Promise<{ name: string; valid: Record<string, unknown> }>;
  /** The users this corpus made, and the stored password hashes of `name` and the admin. */
  serverState(name: string): Promise<unknown>;
  userExists(name: string): Promise<boolean>;
  /** The administrator's login, as a master secret holds it. */
  master(): Record<string, unknown>;
}

const initialPassword = () => `initial-${randomName('pw')}`;

/** The secret engine matching the MySQL-family server the tests were given. */
const mysqlEngine = await MysqlAdmin.connect(provided('mysqlAdminUrl')).then(async (admin) => {
  const engine = admin.mariadb ? 'mariadb' : 'mysql';
  await admin.close();
  return engine;
});

/** What the three test administrators have in common. */
interface Admin {
  host: string;
  port: number;
  username: string;
  password: string;
  createUser(name: string, password: string): Promise<void>;
  dropUsers(names: string[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * `provision`, `close` (dropping the users made) and `master`, from a target's administrator.
 * `prepare` gives a new user what it needs to sign in to the secret's database and resolves the
 * secret's other fields.
 */
const adminParts = (
  engine: string,
  admin: () => Admin,
  prepare: (name: string) => Promise<Record<string, unknown>> = async () => ({}),
) => {
  const users: string[] = [];
  return {
    async provision() {
      const name = randomName('hostile');
      const password = initialPassword();
      await admin().createUser(name, password);
      users.push(`${name}_clone`, name);
      const extra = await prepare(name);
      const valid = {
        engine,
        host: admin().host,
        port: admin().port,
        username: name,
        password,
        ssl: false,
        ...extra,
      };
      return { name, valid };
    },
    async close() {
      await admin().dropUsers(users);
      await admin().close();
    },
    master: () => ({
      host: admin().host,
      port: admin().port,
      username: admin().username,
      password: admin().password,
      // The test servers are plaintext on loopback: the master says so itself.
      ssl: false,
    }),
  };
};

function postgresTarget(): HostileTarget {
  let admin: PgAdmin;
  return {
    name: 'PostgreSQL',
    engine: 'postgres',
    otherEngines: ['mysql', 'mongo', 'docdb'],
    otherUser: 'postgres',
    refusedDatabase: (database) => new RegExp(`database "${database}" does not exist`),
    database: () => createPostgres(),
    async connect() {
      admin = await PgAdmin.connect(provided('pgAdminUrl'));
    },
    async serverState(name) {
      return {
        users: await admin.rolesLike('hostile_'),
        hashes: await admin.passwordHashes([name, 'postgres', admin.username]),
      };
    },
    userExists: (name) => admin.userExists(name),
    ...adminParts(
      'postgres',
      () => admin,
      async () => ({ dbname: 'postgres' }),
    ),
  };
}

function mysqlTarget(): HostileTarget {
  let admin: MysqlAdmin;
  return {
    name: 'MySQL/MariaDB',
    // The engine whose user name limit the server has (MySQL 32, MariaDB 80), so that long
    // injection strings reach the server instead of stopping at the length rule.
    engine: mysqlEngine,
    otherEngines: ['postgres', 'mongo', 'aurora-postgresql'],
    otherUser: 'root',
    refusedDatabase: (database) =>
      new RegExp(`Access denied for user '[^']*'@'[^']*' to database '${database}'`),
    database: () => createMysql(),
    async connect() {
      admin = await MysqlAdmin.connect(provided('mysqlAdminUrl'));
    },
    async serverState(name) {
      return admin.query(
        `SELECT User AS user, Host AS host, authentication_string AS hash FROM mysql.user
          WHERE User LIKE 'hostile\\_%' OR User IN (?, 'root', ?) ORDER BY User, Host`,
        [name, admin.username],
      );
    },
    async userExists(name) {
      return (await admin.hostsOf(name)).length > 0;
    },
    ...adminParts(
      mysqlEngine,
      () => admin,
      async (name) => {
        await admin.query(
          `GRANT SELECT ON ${admin.id(admin.database)}.* TO ${admin.account(name)}`,
        );
        return { dbname: admin.database };
      },
    ),
  };
}

function mongoTarget(): HostileTarget {
  let admin: MongoAdmin;
  return {
    name: 'MongoDB',
    engine: 'mongo',
    otherEngines: ['postgres', 'mysql', 'mariadb'],
    otherUser: 'root',
    // A name MongoDB forbids stops before any sign-in; one it allows is refused by the server.
    refusedDatabase: (database) =>
      new RegExp(
        `field "dbname" \\(the authentication database, "${database}"\\) is not a MongoDB database name|user "[^"]*" at \\S+ \\(database "${database}"\\) refuses AWSPENDING, AWSCURRENT and AWSPREVIOUS`,
      ),
    database: () => createMongoDb(),
    async connect() {
      admin = await MongoAdmin.connect(provided('mongoAdminUrl'));
    },
    async serverState(name) {
      return {
        users: await admin.usersLike('hostile_'),
        credentials: await admin.credentialsOf([name, admin.username]),
      };
    },
    userExists: (name) => admin.userExists(name),
    ...adminParts('mongo', () => admin),
  };
}

/**
 * Bad events and bad secret values against each real database: each gives an error naming the
 * field or the rule, and what clients see (the users on the server, their password hashes,
 * AWSCURRENT and AWSPREVIOUS) is the same before and after.
 */
describe.each([postgresTarget(), mysqlTarget(), mongoTarget()])(
  'hostile input on $name',
  (target) => {
    const harness = new RotationHarness();
    const single = () => harness.handler(singleUser(target.database()));
    const corpus: HostileCase[] = [...eventCases(), ...secretCases(target)];

    beforeAll(async () => {
      await target.connect();
      await harness.start();
    });
    afterAll(async () => {
      await target.close();
      await harness.stop();
    });

    it('has at least 100 cases', () => {
      expect(corpus.length).toBeGreaterThanOrEqual(100);
    });

    /** What clients and the server show: must not change when a rotation is refused. */
    async function snapshot(secretId: string, name: string) {
      return {
        server: await target.serverState(name),
        current: harness.fake.versionOf(secretId, 'AWSCURRENT'),
        currentValue: harness.fake.valueOf(secretId, 'AWSCURRENT'),
        previous: harness.fake.versionOf(secretId, 'AWSPREVIOUS'),
      };
    }

    it.each(corpus.map((c) => [`${c.kind}: ${c.name}`, c] as const))(
      'refuses %s, naming the field or rule, and changes nothing',
      async (_, hostile) => {
        // Prepare
        const { name, valid } = await target.provision();
        const secretId = harness.fake.createSecret({
          name: `hostile/${name}`,
          secretString: hostile.kind === 'current' ? hostile.value(valid) : JSON.stringify(valid),
        });
        const token = harness.fake.startRotation(secretId);
        if (hostile.kind === 'pending') {
          harness.fake.putSecretValue({
            SecretId: secretId,
            ClientRequestToken: token,
            SecretString: hostile.value(valid),
            VersionStages: ['AWSPENDING'],
          });
        }
        const before = await snapshot(secretId, name);

        // Act
        let failure: unknown;
        if (hostile.kind === 'event') {
          const event = hostile.event({
            Step: 'setSecret',
            SecretId: harness.fake.arnOf(secretId),
            ClientRequestToken: token,
            RotationToken: 'rotation-token',
          });
          failure = await single()(event, { getRemainingTimeInMillis: () => 10_000 }).catch(
            (e: unknown) => e,
          );
        } else {
          const result = await harness.rotate(single(), secretId, { token });
          failure = result.error;
        }

        // Assess
        expect(failure, 'the rotation must fail').toBeInstanceOf(Error);
        expect(String(failure)).toMatch(hostile.expect);
        if (failure instanceof RotationError)
          expect(failure.message).toMatch(/^(\w+ of secret |rotation event)/);
        expect(await snapshot(secretId, name)).toEqual(before);
      },
    );

    it.each([
      [
        'a masterarn pointing at another host',
        { host: 'localhost' },
        /refusing to act on another host/,
      ],
      [
        'a masterarn whose secret holds another engine',
        { engine: target.otherEngines[0] },
        new RegExp(`field "engine" is "${target.otherEngines[0]}"`),
      ],
      [
        'a masterarn missing its password',
        { password: undefined },
        /master secret .*field "password" is missing/,
      ],
    ])('alternating users refuse %s and change nothing', async (_, masterPatch, message) => {
      // Prepare
      const { name, valid } = await target.provision();
      const master = harness.fake.createSecret({
        name: `hostile/master-${name}`,
        secretString: JSON.stringify({ ...target.master(), ...masterPatch }),
      });
      const secretId = harness.fake.createSecret({
        name: `hostile/${name}`,
        secretString: JSON.stringify({ ...valid, masterarn: master }),
      });
      const before = await snapshot(secretId, name);

      // Act
      const result = await harness.rotate(
        harness.handler(alternatingUsers(target.database())),
        secretId,
      );

      // Assess
      expect(String(result.error)).toMatch(message);
      expect(await snapshot(secretId, name)).toEqual(before);
      expect(await target.userExists(`${name}_clone`)).toBe(false);
    });

    it('alternating users refuse a masterarn that names no secret', async () => {
      const { name, valid } = await target.provision();
      const secretId = harness.fake.createSecret({
        name: `hostile/${name}`,
        secretString: JSON.stringify({
          ...valid,
          masterarn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf',
        }),
      });
      const result = await harness.rotate(
        harness.handler(alternatingUsers(target.database())),
        secretId,
      );
      expect(String(result.error)).toMatch(
        /field "masterarn" names a secret that cannot be read: secret .*nope-AbCdEf has no AWSCURRENT value/,
      );
      expect(await target.userExists(`${name}_clone`)).toBe(false);
    });
  },
);
