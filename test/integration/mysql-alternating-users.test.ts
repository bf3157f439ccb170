import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { InvalidSecretError } from '../../shared/common/errors.js';
import { createMysql, type MysqlDriver, type MysqlSession } from '../../shared/databases/mysql.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';
import {
  ALL_PUNCTUATION,
  MysqlAdmin,
  queryAs,
  randomName,
  signsIn,
} from '../support/mysql-admin.js';
import { alternatingUsersContract } from '../support/rotation-contract.js';
import { RotationHarness } from '../support/rotation-harness.js';
import { provided } from '../support/servers.js';

describe('mysql alternating users', () => {
  let admin: MysqlAdmin;
  const harness = new RotationHarness();
  const users: string[] = [];
  const roles: string[] = [];
  let masterArn: string;
  let db: string;
  const handler = () => harness.handler(alternatingUsers(createMysql({ env: {} })));

  beforeAll(async () => {
    admin = await MysqlAdmin.connect(provided('mysqlAdminUrl'));
    db = admin.database;
    await harness.start();
    masterArn = harness.fake.createSecret({
      name: `rds/master-${randomName('m')}`,
      secretString: admin.masterSecretValue(),
    });
  });

  afterAll(async () => {
    await admin.dropUsers(users.flatMap((name) => [`${name}_clone`, name]));
    for (const role of roles) {
      await admin.query(
        `DROP ROLE IF EXISTS ${admin.mariadb ? admin.id(role) : admin.account(role)}`,
      );
    }
    await admin.close();
    await harness.stop();
  });

  const login = (secret: { username: string; password: string }) => ({
    host: admin.host,
    port: admin.port,
    user: secret.username,
    password: secret.password,
  });

  /** A user at `host` (default '%') and a secret naming it. */
  async function provision(
    options: { name?: string; host?: string; fields?: Record<string, unknown> } = {},
  ) {
    const name = options.name ?? randomName('alt');
    const password = `initial-${randomName('pw')}`;
    await admin.createUser(name, password, options.host ?? '%');
    users.push(name);
    const secretId = harness.fake.createSecret({
      name: `app/${randomName('secret')}`,
      secretString: JSON.stringify({
        engine: admin.mariadb ? 'mariadb' : 'mysql',
        host: admin.host,
        port: admin.port,
        username: name,
        password,
        ssl: false,
        masterarn: masterArn,
        ...options.fields,
      }),
    });
    return { name, password, secretId };
  }

  async function createRole(): Promise<{ name: string; sql: string }> {
    const name = randomName('role');
    const sql = admin.mariadb ? admin.id(name) : admin.account(name);
    await admin.query(`CREATE ROLE ${sql}`);
    roles.push(name);
    return { name, sql };
  }

  async function createTable(): Promise<string> {
    const table = `${admin.id(db)}.${admin.id(randomName('t'))}`;
    await admin.query(`CREATE TABLE ${table} (a int, b int)`);
    await admin.query(`INSERT INTO ${table} VALUES (1, 2)`);
    return table;
  }

  alternatingUsersContract({
    harness,
    handler,
    provision: (options = {}) =>
      provision({
        ...(options.name ? { name: options.name } : {}),
        fields: {
          ...(options.masterarn ? { masterarn: options.masterarn } : {}),
          ...(options.secretPassword ? { password: options.secretPassword } : {}),
        },
      }),
    masterArn: () => masterArn,
    signsIn: (secret) => signsIn(login(secret)),
    usersLike: (name) => admin.accountsLike(name),
    sessionsOf: (names) => admin.sessionsOf(names),
    namesNeedingQuoting: [`Mixed Case ${randomName('U')}`, `ünï ${randomName('u')}`],
  });

  it("mirrors the original's grants, roles, grant options and default role onto the clone on every rotation", async () => {
    // Prepare: the original reads a table directly, another through a role (its default role),
    // may pass on INSERT on the schema, and updates one column.
    const { name, secretId } = await provision();
    const [direct, viaRole, later] = [
      await createTable(),
      await createTable(),
      await createTable(),
    ];
    const reader = await createRole();
    const other = await createRole();
    const original = admin.account(name);
    await admin.query(`GRANT SELECT ON ${viaRole} TO ${reader.sql}`);
    await admin.query(`GRANT SELECT ON ${direct} TO ${original}`);
    await admin.query(`GRANT UPDATE (${admin.id('b')}) ON ${direct} TO ${original}`);
    await admin.query(`GRANT INSERT ON ${admin.id(db)}.* TO ${original} WITH GRANT OPTION`);
    await admin.query(`GRANT ${reader.sql} TO ${original}`);
    await admin.query(
      admin.mariadb
        ? `SET DEFAULT ROLE ${reader.sql} FOR ${original}`
        : `SET DEFAULT ROLE ${reader.sql} TO ${original}`,
    );
    const rotate = handler();

    // Act 1: the first rotation creates the clone.
    const first = await harness.rotate(rotate, secretId);

    // Assess 1
    expect(first.completed, String(first.error)).toBe(true);
    const clone = harness.secret(secretId);
    expect(await admin.grantsOf(`${name}_clone`)).toEqual(await admin.grantsOf(name));
    expect(await queryAs(login(clone), `SELECT a FROM ${direct}`)).toEqual([{ a: 1 }]);
    expect(await queryAs(login(clone), `SELECT a FROM ${viaRole}`)).toEqual([{ a: 1 }]);

    // Prepare 2: a DBA changes the original between rotations.
    await admin.query(`GRANT SELECT ON ${later} TO ${original} WITH GRANT OPTION`);
    await admin.query(`GRANT ${other.sql} TO ${original} WITH ADMIN OPTION`);
    await admin.query(`REVOKE SELECT ON ${direct} FROM ${original}`);
    await admin.query(`REVOKE INSERT, GRANT OPTION ON ${admin.id(db)}.* FROM ${original}`);
    await admin.query(`REVOKE ${reader.sql} FROM ${original}`);
    await admin.query(
      admin.mariadb
        ? `SET DEFAULT ROLE ${other.sql} FOR ${original}`
        : `SET DEFAULT ROLE ${other.sql} TO ${original}`,
    );
    harness.logs.lines.length = 0;

    // Act 2: the second rotation changes the original's password, and reconciles the clone.
    const second = await harness.rotate(rotate, secretId);

    // Assess 2
    expect(second.completed, String(second.error)).toBe(true);
    expect(await admin.grantsOf(`${name}_clone`)).toEqual(await admin.grantsOf(name));
    expect(await queryAs(login(clone), `SELECT count(*) AS n FROM ${later}`)).toEqual([{ n: 1 }]);
    await expect(queryAs(login(clone), `SELECT a FROM ${direct}`)).rejects.toThrow(/denied/);
    await expect(queryAs(login(clone), `SELECT a FROM ${viaRole}`)).rejects.toThrow(/denied/);
    const reconciled = harness.logs.lines.filter(
      (line) => line.message === "reconciled the clone's privileges with the original's",
    );
    expect(reconciled).toHaveLength(1);
    expect(reconciled[0]?.attributes.changes).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^granted role .* WITH ADMIN OPTION$/),
        expect.stringMatching(/^granted SELECT ON .* WITH GRANT OPTION$/),
        expect.stringMatching(/^revoked SELECT ON /),
        expect.stringMatching(/^revoked role /),
        expect.stringMatching(/^set DEFAULT ROLE `role_/),
      ]),
    );

    // Act 3: the third rotation changes the clone's password; nothing is left to reconcile.
    harness.logs.lines.length = 0;
    const third = await harness.rotate(rotate, secretId);

    // Assess 3
    expect(third.completed, String(third.error)).toBe(true);
    expect(await admin.grantsOf(`${name}_clone`)).toEqual(await admin.grantsOf(name));
    expect(harness.logs.messages()).not.toContain(
      "reconciled the clone's privileges with the original's",
    );
    await admin.query(`DROP TABLE ${direct}, ${viaRole}, ${later}`);
  });

  it("copies the original's TLS requirement and resource limits, and follows their changes", async () => {
    // Prepare: REQUIRE SSL (the function signs in over TLS, ssl absent) and limits.
    const { name, secretId } = await provision({ fields: { ssl: undefined } });
    await admin.query(
      `ALTER USER ${admin.account(name)} REQUIRE SSL WITH MAX_QUERIES_PER_HOUR 500 MAX_USER_CONNECTIONS 7`,
    );
    const rotate = handler();

    // Act
    const first = await harness.rotate(rotate, secretId);
    await admin.query(`ALTER USER ${admin.account(name)} WITH MAX_USER_CONNECTIONS 9`);
    const second = await harness.rotate(rotate, secretId);

    // Assess
    expect([first.completed, second.completed], String(first.error ?? second.error)).toEqual([
      true,
      true,
    ]);
    const row = await admin.userRow(`${name}_clone`);
    expect(row).toMatchObject({ sslType: 'ANY', maxQuestions: 500, maxUserConnections: 9 });
    expect(await signsIn({ ...login(harness.secret(secretId, 'AWSPREVIOUS')), tls: true })).toBe(
      true,
    );
  });

  it('rotates an account at host localhost: the clone gets the same host and the name at % is left alone', async () => {
    // Prepare: 'app'@'%' and 'app'@'localhost' exist; the secret names the localhost one.
    const name = randomName('local');
    await admin.createUser(name, 'percent-password', '%');
    const { secretId } = await provision({
      name,
      host: 'localhost',
      fields: { accounthost: 'localhost' },
    });
    const percentBefore = await admin.userRow(name, '%');

    // Act
    const results = [
      await harness.rotate(handler(), secretId),
      await harness.rotate(handler(), secretId),
    ];

    // Assess
    expect(
      results.map((r) => r.completed),
      String(results[0]?.error ?? results[1]?.error),
    ).toEqual([true, true]);
    expect(await admin.hostsOf(`${name}_clone`)).toEqual(['localhost']);
    expect(await admin.userRow(name, '%')).toEqual(percentBefore);
    expect(await queryAs(login(harness.secret(secretId, 'AWSPREVIOUS')))).toEqual([
      { account: `${name}_clone@localhost` },
    ]);
  });

  it('refuses a user with accounts at several hosts unless the secret names one, and creates nothing', async () => {
    // Prepare
    const name = randomName('two');
    await admin.createUser(name, 'other-password', '10.%');
    const { secretId } = await provision({ name });

    // Act
    const result = await harness.rotate(handler(), secretId);

    // Assess
    expect(result.failedStep).toBe('setSecret');
    expect(result.error).toBeInstanceOf(InvalidSecretError);
    expect((result.error as InvalidSecretError).field).toBe('accounthost');
    expect(await admin.hostsOf(`${name}_clone`)).toEqual([]);
  });

  it("clones, reconciles and re-keys an account at host '10.%' without touching the same name at '%'", async () => {
    // Prepare: 127.0.0.1 cannot sign in as '10.%', so the adapter is driven as the master would.
    const name = randomName('ten');
    users.push(name);
    await admin.createUser(name, 'ten-password', '10.%');
    await admin.createUser(name, 'percent-password', '%');
    await admin.createUser(`${name}_clone`, 'unrelated-password', '%');
    const table = await createTable();
    await admin.query(`GRANT SELECT ON ${table} TO ${admin.account(name, '10.%')}`);
    await admin.query(
      `ALTER USER ${admin.account(name, '10.%')} REQUIRE ISSUER '/CN=rotation-test-ca' AND SUBJECT '/CN=app' AND CIPHER 'ECDHE-RSA-AES256-GCM-SHA384'`,
    );
    const percent = [await admin.userRow(name, '%'), await admin.userRow(`${name}_clone`, '%')];
    const mysql = createMysql({ env: {} });
    const session: MysqlSession = await mysql.connect({
      host: admin.host,
      port: admin.port,
      user: admin.username,
      password: admin.password,
      database: '',
      tls: 'disable',
    });

    try {
      // Act
      await mysql.createUserLike(session, `${name}_clone`, 'first-password', name, '10.%');
      await admin.query(`GRANT UPDATE ON ${table} TO ${admin.account(name, '10.%')}`);
      const hashBefore = (await admin.userRow(`${name}_clone`, '10.%'))?.hash;
      await mysql.verifyClone?.(session, `${name}_clone`, name, '10.%');
      const changes = await mysql.syncPrivileges?.(session, `${name}_clone`, name, '10.%');
      await mysql.setPassword(session, `${name}_clone`, 'second-password', '10.%');

      // Assess
      expect(changes).toEqual([expect.stringMatching(/^granted UPDATE ON /)]);
      expect(await admin.grantsOf(`${name}_clone`, '10.%')).toEqual(
        await admin.grantsOf(name, '10.%'),
      );
      expect(await admin.userRow(`${name}_clone`, '10.%')).toMatchObject({
        sslType: 'SPECIFIED',
        x509Issuer: '/CN=rotation-test-ca',
        x509Subject: '/CN=app',
        sslCipher: 'ECDHE-RSA-AES256-GCM-SHA384',
      });
      expect((await admin.userRow(`${name}_clone`, '10.%'))?.hash).not.toBe(hashBefore);
      expect([await admin.userRow(name, '%'), await admin.userRow(`${name}_clone`, '%')]).toEqual(
        percent,
      );
    } finally {
      await mysql.close(session);
      await admin.query(`DROP TABLE ${table}`);
    }
  });

  it('refuses to take over an existing unrelated <user>_clone account with more power, and leaves it alone', async () => {
    // Prepare: someone else's account happens to be called <name>_clone.
    const { name, secretId } = await provision();
    await admin.createUser(`${name}_clone`, 'someone-elses-password');
    await admin.query(`GRANT PROCESS, RELOAD ON *.* TO ${admin.account(`${name}_clone`)}`);
    const before = await admin.userRow(`${name}_clone`);

    // Act
    const result = await harness.rotate(handler(), secretId);

    // Assess
    expect(result.failedStep).toBe('setSecret');
    expect(result.error).toBeInstanceOf(InvalidSecretError);
    expect(String(result.error)).toContain('refusing to take it over');
    expect(await admin.userRow(`${name}_clone`)).toEqual(before);
    expect(
      await signsIn(login({ username: `${name}_clone`, password: 'someone-elses-password' })),
    ).toBe(true);
  });

  it('completes a clone left half-made by a crash (no grants, unknown password) on the retry', async () => {
    // Prepare: createUserLike crashed after CREATE USER, before the grants and the password.
    const { name, secretId } = await provision();
    const table = await createTable();
    await admin.query(`GRANT SELECT ON ${table} TO ${admin.account(name)}`);
    await admin.createUser(`${name}_clone`, `throwaway-${randomBytes(6).toString('hex')}`);

    // Act
    const result = await harness.rotate(handler(), secretId);

    // Assess
    expect(result.completed, String(result.error)).toBe(true);
    expect(harness.secret(secretId).username).toBe(`${name}_clone`);
    expect(await queryAs(login(harness.secret(secretId)), `SELECT a FROM ${table}`)).toEqual([
      { a: 1 },
    ]);
    await admin.query(`DROP TABLE ${table}`);
  });

  it('rotates users whose names need quoting, and injection attempts change nothing else', async () => {
    // Prepare: a bystander, and users whose names and passwords are SQL aimed at it.
    const victim = `v${randomBytes(3).toString('hex')}`;
    await admin.createUser(victim, 'victim-password');
    users.push(victim);
    const before = await admin.userRow(victim);
    const password = `Aa1${ALL_PUNCTUATION}'); DROP USER '${victim}'@'%'; #`;
    for (const name of [
      `it's "q" ${randomBytes(3).toString('hex')}`,
      `x'@'%';DROP USER '${victim}';#`,
    ]) {
      const { secretId } = await provision({ name });
      const spy = vi
        .spyOn(harness.fake, 'getRandomPassword')
        .mockReturnValue({ RandomPassword: password });

      // Act
      const results = [
        await harness.rotate(handler(), secretId),
        await harness.rotate(handler(), secretId),
      ];
      spy.mockRestore();

      // Assess
      expect(
        results.map((r) => r.completed),
        String(results[0]?.error ?? results[1]?.error),
      ).toEqual([true, true]);
      expect(await signsIn(login(harness.secret(secretId)))).toBe(true);
      expect(await signsIn(login(harness.secret(secretId, 'AWSPREVIOUS')))).toBe(true);
    }
    expect(await admin.userRow(victim)).toEqual(before);
  });
  it('under sql_mode ANSI_QUOTES, a grant on an escaped wildcard stays escaped on the clone: it reads no other database', async () => {
    // Prepare: a server whose sql_mode has ANSI_QUOTES (a parameter group can set it), so
    // SHOW GRANTS prints names in double quotes; every session of the adapter gets it, as it
    // would from the server's global setting. The original may read the databases matching
    // `<p>\_x%` (an escaped `_`: a literal underscore); `<p>Ax1` must stay out of the clone's reach.
    const real = await import('mysql2/promise');
    const ansiQuotes = async (): Promise<MysqlDriver> => ({
      createConnection: async (config) => {
        const client = await real.createConnection(config);
        await client.query("SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',ANSI_QUOTES')");
        return client as unknown as Awaited<ReturnType<MysqlDriver['createConnection']>>;
      },
      escape: (value) => real.escape(value as string),
      escapeId: (value, forbidQualified) => real.escapeId(value, forbidQualified),
    });
    const { name, secretId } = await provision();
    const prefix = `w${randomBytes(4).toString('hex')}`;
    const outside = `${prefix}Ax1`;
    await admin.query(`CREATE DATABASE ${admin.id(outside)}`);
    await admin.query(`CREATE TABLE ${admin.id(outside)}.t (a int)`);
    await admin.query(`INSERT INTO ${admin.id(outside)}.t VALUES (7)`);
    await admin.query(`GRANT SELECT ON ${admin.id(`${prefix}\\_x%`)}.* TO ${admin.account(name)}`);
    try {
      // Act: two rotations (the clone is created, then its password changed and its grants reconciled).
      const rotate = harness.handler(
        alternatingUsers(createMysql({ env: {}, driver: ansiQuotes })),
      );
      const results = [
        await harness.rotate(rotate, secretId),
        await harness.rotate(rotate, secretId),
      ];

      // Assess: the clone holds exactly the original's grants, and what the pattern excludes
      // stays out of its reach.
      expect(
        results.map((r) => r.completed),
        String(results[0]?.error ?? results[1]?.error),
      ).toEqual([true, true]);
      expect(await admin.grantsOf(`${name}_clone`)).toEqual(await admin.grantsOf(name));
      const clone = harness.secret(secretId, 'AWSPREVIOUS');
      expect(clone.username).toBe(`${name}_clone`);
      await expect(queryAs(login(clone), `SELECT a FROM ${admin.id(outside)}.t`)).rejects.toThrow(
        /denied/,
      );
    } finally {
      await admin.query(`DROP DATABASE ${admin.id(outside)}`);
    }
  });

  it('under sql_mode PAD_CHAR_TO_FULL_LENGTH (a server setting the adapter keeps), the rotations complete and the clone holds exactly the original grants', async () => {
    // Prepare: a server whose sql_mode has PAD_CHAR_TO_FULL_LENGTH, so a CHAR column such as
    // mysql.user's Host is read padded with spaces to its full length ('%' and 254 spaces);
    // every session of the adapter gets it, as it would from the server's global setting. On
    // MariaDB 10.11.19 the first rotation fails with "creating 'x_clone'@'%<254 spaces>'
    // failed: Operation CREATE USER failed".
    const real = await import('mysql2/promise');
    const padded = async (): Promise<MysqlDriver> => ({
      createConnection: async (config) => {
        const client = await real.createConnection(config);
        await client.query(
          "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',PAD_CHAR_TO_FULL_LENGTH')",
        );
        return client as unknown as Awaited<ReturnType<MysqlDriver['createConnection']>>;
      },
      escape: (value) => real.escape(value as string),
      escapeId: (value, forbidQualified) => real.escapeId(value, forbidQualified),
    });
    const { name, secretId } = await provision();
    const table = await createTable();
    await admin.query(`GRANT SELECT ON ${table} TO ${admin.account(name)}`);
    const rotate = harness.handler(alternatingUsers(createMysql({ env: {}, driver: padded })));

    // Act: two rotations (the clone is created, then the original's password changes).
    const first = await harness.rotate(rotate, secretId);
    expect(first.completed, String(first.error)).toBe(true);
    const second = await harness.rotate(rotate, secretId);

    // Assess
    expect(second.completed, String(second.error)).toBe(true);
    expect(await admin.grantsOf(`${name}_clone`)).toEqual(await admin.grantsOf(name));
    expect(await signsIn(login(harness.secret(secretId)))).toBe(true);
    expect(await signsIn(login(harness.secret(secretId, 'AWSPREVIOUS')))).toBe(true);
  });
});
