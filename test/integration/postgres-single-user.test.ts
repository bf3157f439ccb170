import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionError, TlsError } from '../../shared/common/errors.js';
import { createPostgres } from '../../shared/databases/postgres.js';
import { singleUser } from '../../shared/strategies/single-user.js';
import { PgAdmin, queryAs, randomName, signsIn } from '../support/pg-admin.js';
import { singleUserContract } from '../support/rotation-contract.js';
import { RotationHarness } from '../support/rotation-harness.js';
import { provided } from '../support/servers.js';
import { TcpProxy } from '../support/tcp-proxy.js';

describe('postgres single user', () => {
  let admin: PgAdmin;
  const harness = new RotationHarness();
  const users: string[] = [];
  const handler = () => harness.handler(singleUser(createPostgres()));

  beforeAll(async () => {
    admin = await PgAdmin.connect(provided('pgAdminUrl'));
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
      host?: string;
      port?: number;
      ssl?: boolean | null;
    } = {},
  ) {
    const name = options.name ?? randomName('single');
    const password = options.password ?? `initial-${randomName('pw')}`;
    await admin.createUser(name, password);
    users.push(name);
    const secretId = harness.fake.createSecret({
      name: `rds/${randomName('secret')}`,
      secretString: JSON.stringify({
        engine: 'postgres',
        host: options.host ?? admin.host,
        port: options.port ?? admin.port,
        username: name,
        password,
        dbname: 'postgres',
        ...(options.ssl === null ? {} : { ssl: options.ssl ?? false }),
        team: 'payments',
      }),
    });
    return { name, password, secretId };
  }

  const login = (name: string, password: string) => ({
    host: admin.host,
    port: admin.port,
    user: name,
    password,
  });

  singleUserContract({
    harness,
    handler,
    provision,
    signsIn: (secret) => signsIn(login(secret.username, secret.password)),
    usersLike: (name) => admin.rolesLike(name),
    namesNeedingQuoting: [
      `Mixed Case ${randomName('U')}`,
      `it's "quoted" ${randomName('q')}`,
      `back\\slash;${randomName('b')}`,
    ],
  });

  it('refuses the old password after rotation and accepts the new one', async () => {
    // Prepare
    const { name, password, secretId } = await provision();

    // Act
    const result = await harness.rotate(handler(), secretId);

    // Assess
    expect(result.completed).toBe(true);
    expect(await signsIn(login(name, password))).toBe(false);
    const rows = await queryAs(login(name, harness.secret(secretId).password));
    expect(rows).toEqual([{ user: name }]);
  });

  it('changes nothing but the named user when the username is an injection attempt', async () => {
    // Prepare: a bystander, and users whose names are SQL aimed at it.
    const victim = randomName('v');
    await admin.createUser(victim, 'victim-password');
    users.push(victim);
    const before = await admin.passwordHashes([victim]);
    const attempts = [`x";DROP ROLE "${victim}";--`, `';ALTER ROLE ${victim} PASSWORD 'o';--`];

    for (const name of attempts) {
      const { secretId } = await provision({ name });

      // Act
      const result = await harness.rotate(handler(), secretId);

      // Assess
      expect(result.completed, String(result.error)).toBe(true);
      expect(await signsIn(login(name, harness.secret(secretId).password))).toBe(true);
    }
    expect(await admin.userExists(victim)).toBe(true);
    expect(await admin.passwordHashes([victim])).toEqual(before);
    expect(await signsIn(login(victim, 'victim-password'))).toBe(true);
  });

  it('fails setSecret and changes nothing when the network drops the AWSPENDING attempt', async () => {
    // Prepare: the secret points at a proxy that resets the next connection.
    const proxy = await TcpProxy.start({ host: admin.host, port: admin.port });
    try {
      const { name, password, secretId } = await provision({ host: '127.0.0.1', port: proxy.port });
      const rotate = handler();
      await harness.rotate(rotate, secretId, { stopAfter: 'createSecret' });
      const token = harness.fake.versionOf(secretId, 'AWSPENDING') as string;
      const hashBefore = await admin.passwordHashes([name]);
      proxy.resetNext(1);

      // Act
      const failure = await rotate(
        { Step: 'setSecret', SecretId: harness.fake.arnOf(secretId), ClientRequestToken: token },
        { getRemainingTimeInMillis: () => 60_000 },
      ).catch((error: unknown) => error);

      // Assess
      expect(failure).toBeInstanceOf(ConnectionError);
      expect((failure as Error).message).toMatch(
        /^setSecret of secret .*: cannot reach PostgreSQL .* as user/,
      );
      expect(await admin.passwordHashes([name])).toEqual(hashBefore);
      expect(await signsIn(login(name, password))).toBe(true);
      expect(harness.fake.versionOf(secretId, 'AWSCURRENT')).not.toBe(token);
    } finally {
      await proxy.stop();
    }
  });

  it('keeps the password out of the server when the server stores SCRAM: it receives a verifier', async () => {
    // Prepare
    const { name, secretId } = await provision();

    // Act
    await harness.rotate(handler(), secretId);

    // Assess: the stored hash is SCRAM and the new password signs in through it.
    const hashes = await admin.passwordHashes([name]);
    expect(hashes[name]).toMatch(/^SCRAM-SHA-256\$4096:/);
    expect(await signsIn(login(name, harness.secret(secretId).password))).toBe(true);
  });

  it('falls back to plaintext with a warning when ssl is absent and the server offers no TLS', async () => {
    // Prepare: this server has no certificate; the secret leaves ssl out ("TLS preferred").
    const { name, secretId } = await provision({ ssl: null });

    // Act
    const result = await harness.rotate(handler(), secretId);

    // Assess
    expect(result.completed, String(result.error)).toBe(true);
    expect(await signsIn(login(name, harness.secret(secretId).password))).toBe(true);
    const warnings = harness.logs.lines.filter(
      (line) => line.level === 'warn' && line.attributes.user === name,
    );
    expect(warnings[0]?.message).toMatch(/server offers no TLS; connecting in plaintext/);
  });

  it('fails with a TLS error and changes nothing when ssl is true and the server offers no TLS', async () => {
    // Prepare
    const { name, password, secretId } = await provision({ ssl: true });
    const hashBefore = await admin.passwordHashes([name]);

    // Act
    const result = await harness.rotate(handler(), secretId);

    // Assess
    expect(result.failedStep).toBe('setSecret');
    expect(result.error).toBeInstanceOf(TlsError);
    expect(await admin.passwordHashes([name])).toEqual(hashBefore);
    expect(await signsIn(login(name, password))).toBe(true);
  });
});
