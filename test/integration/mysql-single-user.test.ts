import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConnectionError, InvalidSecretError, TlsError } from '../../shared/common/errors.js';
import { createMysql, type MysqlOptions } from '../../shared/databases/mysql.js';
import { singleUser } from '../../shared/strategies/single-user.js';
import { MysqlAdmin, queryAs, randomName, signsIn } from '../support/mysql-admin.js';
import { singleUserContract } from '../support/rotation-contract.js';
import { RotationHarness } from '../support/rotation-harness.js';
import { provided } from '../support/servers.js';
import { TcpProxy } from '../support/tcp-proxy.js';

describe('mysql single user', () => {
  let admin: MysqlAdmin;
  const harness = new RotationHarness();
  const users: string[] = [];
  const handler = (options: MysqlOptions = {}) =>
    harness.handler(singleUser(createMysql({ env: {}, ...options })));

  beforeAll(async () => {
    admin = await MysqlAdmin.connect(provided('mysqlAdminUrl'));
    await harness.start();
  });

  afterAll(async () => {
    await admin.dropUsers(users);
    await admin.close();
    await harness.stop();
  });

  /** A user with a password and a secret describing it. */
  async function provision(
    options: {
      name?: string;
      password?: string;
      accountHost?: string;
      secretFields?: Record<string, unknown>;
      port?: number;
      ssl?: boolean | null;
    } = {},
  ) {
    const name = options.name ?? randomName('single');
    const password = options.password ?? `initial-${randomName('pw')}`;
    await admin.createUser(name, password, options.accountHost ?? '%');
    users.push(name);
    const secretId = harness.fake.createSecret({
      name: `rds/${randomName('secret')}`,
      secretString: JSON.stringify({
        engine: admin.mariadb ? 'mariadb' : 'mysql',
        host: admin.host,
        port: options.port ?? admin.port,
        username: name,
        password,
        ...(options.ssl === null ? {} : { ssl: options.ssl ?? false }),
        team: 'payments',
        ...options.secretFields,
      }),
    });
    return { name, password, secretId };
  }

  const login = (user: string, password: string) => ({
    host: admin.host,
    port: admin.port,
    user,
    password,
  });

  singleUserContract({
    harness,
    // MySQL 8's grace period would keep the old password working until the next rotation.
    handler: () => handler({ retainCurrentPassword: false }),
    provision,
    signsIn: (secret) => signsIn(login(secret.username, secret.password)),
    usersLike: (name) => admin.accountsLike(name),
    sessionsOf: (names) => admin.sessionsOf(names),
    namesNeedingQuoting: [
      `Mixed Case ${randomName('U')}`,
      `it's "q" ${randomName('q')}`,
      `back\\slash;${randomName('b')}`,
      `ünï ${randomName('u')}`,
    ],
  });

  it('keeps the old password working until the next rotation where the server has dual passwords, and refuses it where it has not', async () => {
    // Prepare: the grace period is on by default; MySQL 8.0.14+ needs APPLICATION_PASSWORD_ADMIN.
    const { name, password, secretId } = await provision();
    if (!admin.mariadb) {
      await admin.query(`GRANT APPLICATION_PASSWORD_ADMIN ON *.* TO ${admin.account(name)}`);
    }
    const rotate = handler();

    // Act
    const first = await harness.rotate(rotate, secretId);
    const afterFirst = harness.secret(secretId).password;
    const oldAfterFirst = await signsIn(login(name, password));
    const second = await harness.rotate(rotate, secretId);

    // Assess
    expect([first.completed, second.completed]).toEqual([true, true]);
    const current = harness.secret(secretId).password;
    expect(await signsIn(login(name, current))).toBe(true);
    expect(await signsIn(login(name, password))).toBe(false);
    if (admin.mariadb) {
      // MariaDB has no dual passwords: the plain change, and no attempt at RETAIN.
      expect(oldAfterFirst).toBe(false);
      expect(await signsIn(login(name, afterFirst))).toBe(false);
      expect(harness.logs.text()).not.toContain('RETAIN CURRENT PASSWORD');
    } else {
      expect(oldAfterFirst).toBe(true);
      expect(await signsIn(login(name, afterFirst))).toBe(true);
    }
  });

  it('rotates an account at host localhost and leaves the same name at % alone', async () => {
    // Prepare: 'app'@'%' and 'app'@'localhost'; 127.0.0.1 signs in as the localhost one.
    const name = randomName('local');
    await admin.createUser(name, 'percent-password', '%');
    const { password, secretId } = await provision({ name, accountHost: 'localhost' });
    const percentBefore = await admin.userRow(name, '%');
    const localBefore = await admin.userRow(name, 'localhost');

    // Act
    const result = await harness.rotate(handler(), secretId);

    // Assess
    expect(result.completed, String(result.error)).toBe(true);
    expect(await admin.userRow(name, '%')).toEqual(percentBefore);
    expect((await admin.userRow(name, 'localhost'))?.hash).not.toBe(localBefore?.hash);
    const rows = await queryAs(login(name, harness.secret(secretId).password));
    expect(rows).toEqual([{ account: `${name}@localhost` }]);
    expect(await signsIn(login(name, password))).toBe(false);
  });

  it('refuses a secret whose accounthost is not the account it signs in as, and changes nothing', async () => {
    // Prepare
    const name = randomName('scoped');
    await admin.createUser(name, 'percent-password', '%');
    const { secretId } = await provision({
      name,
      accountHost: 'localhost',
      secretFields: { accounthost: '%' },
    });
    const before = [await admin.userRow(name, '%'), await admin.userRow(name, 'localhost')];

    // Act
    const result = await harness.rotate(handler(), secretId);

    // Assess
    expect(result.failedStep).toBe('setSecret');
    expect(result.error).toBeInstanceOf(InvalidSecretError);
    expect(String(result.error)).toContain(`"accounthost" names '${name}'@'%'`);
    expect([await admin.userRow(name, '%'), await admin.userRow(name, 'localhost')]).toEqual(
      before,
    );
  });

  it('changes nothing but the named user when the user name or the password is an injection attempt', async () => {
    // Prepare: a bystander, and users whose names and new passwords are SQL aimed at it.
    const victim = `v${randomBytes(3).toString('hex')}`;
    await admin.createUser(victim, 'victim-password');
    users.push(victim);
    const before = await admin.userRow(victim);
    const attempts = [
      `x'@'%' IDENTIFIED BY 'o';#${victim}`,
      `x\`;DROP USER \`${victim}\`;--`,
      `x\\'; DROP USER '${victim}';#`,
    ];
    const injectedPassword = `Aa1'); DROP USER '${victim}'@'%'; -- \\' #`;

    for (const name of attempts) {
      const { secretId } = await provision({ name });
      const spy = vi
        .spyOn(harness.fake, 'getRandomPassword')
        .mockReturnValue({ RandomPassword: injectedPassword });

      // Act
      const result = await harness.rotate(handler(), secretId);
      spy.mockRestore();

      // Assess
      expect(result.completed, String(result.error)).toBe(true);
      expect(await signsIn(login(name, injectedPassword))).toBe(true);
    }
    expect(await admin.hostsOf(victim)).toEqual(['%']);
    expect(await admin.userRow(victim)).toEqual(before);
    expect(await signsIn(login(victim, 'victim-password'))).toBe(true);
  });

  it('fails setSecret and changes nothing when the network drops the AWSPENDING attempt', async () => {
    // Prepare: the secret points at a proxy that resets the next connection.
    const proxy = await TcpProxy.start({ host: admin.host, port: admin.port });
    try {
      const { name, password, secretId } = await provision({ port: proxy.port });
      const rotate = handler();
      await harness.rotate(rotate, secretId, { stopAfter: 'createSecret' });
      const token = harness.fake.versionOf(secretId, 'AWSPENDING') as string;
      const before = await admin.userRow(name);
      proxy.resetNext(1);

      // Act
      const failure = await rotate(
        { Step: 'setSecret', SecretId: harness.fake.arnOf(secretId), ClientRequestToken: token },
        { getRemainingTimeInMillis: () => 60_000 },
      ).catch((error: unknown) => error);

      // Assess
      expect(failure).toBeInstanceOf(ConnectionError);
      expect((failure as Error).message).toMatch(
        /^setSecret of secret .*: cannot reach MySQL\/MariaDB .* as user/,
      );
      expect(await admin.userRow(name)).toEqual(before);
      expect(await signsIn(login(name, password))).toBe(true);
    } finally {
      await proxy.stop();
    }
  });

  it('signs in over TLS when ssl is absent, also for an account that REQUIRES SSL', async () => {
    // Prepare: the server has a certificate from a private CA; the secret leaves ssl out.
    const { name, secretId } = await provision({ ssl: null });
    await admin.query(`ALTER USER ${admin.account(name)} REQUIRE SSL`);

    // Act
    const result = await harness.rotate(handler(), secretId);

    // Assess
    expect(result.completed, String(result.error)).toBe(true);
    const password = harness.secret(secretId).password;
    expect(await signsIn({ ...login(name, password), tls: true })).toBe(true);
    expect(harness.logs.text()).not.toContain('server offers no TLS');
  });

  it('fails with a TLS error and changes nothing when ssl is true and the certificate is not trusted', async () => {
    // Prepare
    const { name, password, secretId } = await provision({ ssl: true });
    const before = await admin.userRow(name);

    // Act
    const result = await harness.rotate(handler(), secretId);

    // Assess
    expect(result.failedStep).toBe('setSecret');
    expect(result.error).toBeInstanceOf(TlsError);
    expect(await admin.userRow(name)).toEqual(before);
    expect(await signsIn(login(name, password))).toBe(true);
  });

  it("refuses in createSecret a user name longer than the engine's limit", async () => {
    // Prepare: 33 characters, one more than MySQL accepts; the server is never asked.
    const secretId = harness.fake.createSecret({
      name: `rds/${randomName('secret')}`,
      secretString: JSON.stringify({
        engine: 'aurora-mysql',
        host: admin.host,
        port: admin.port,
        username: 'u'.repeat(33),
        password: 'irrelevant',
      }),
    });

    // Act
    const result = await harness.rotate(handler(), secretId);

    // Assess
    expect(result.failedStep).toBe('createSecret');
    expect(result.error).toBeInstanceOf(InvalidSecretError);
    expect(String(result.error)).toContain(
      'is longer than the 32 characters engine "aurora-mysql" accepts',
    );
  });
});
