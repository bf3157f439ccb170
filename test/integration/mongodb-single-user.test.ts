import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostUnreachableError, InvalidSecretError, TlsError } from '../../shared/common/errors.js';
import { createMongoDb, type MongoDbOptions } from '../../shared/databases/mongodb.js';
import { singleUser } from '../../shared/strategies/single-user.js';
import { MongoAdmin, signsIn } from '../support/mongo-admin.js';
import { randomName } from '../support/pg-admin.js';
import { singleUserContract } from '../support/rotation-contract.js';
import { RotationHarness } from '../support/rotation-harness.js';
import { provided } from '../support/servers.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const tls = provided('mongoTls');
const capabilities = provided('mongoCapabilities');
if (!capabilities.authorization) {
  console.warn(
    `mongodb single user: authorization test skipped: ${capabilities.server} lets any signed-in user change any user`,
  );
}
if (!capabilities.escapedNames) {
  console.warn(
    `mongodb single user: user names with "," or "=" left out: ${capabilities.server} does not decode SCRAM's escaping of them`,
  );
}

describe('mongodb single user', () => {
  let admin: MongoAdmin;
  const harness = new RotationHarness();
  const users: { name: string; db: string }[] = [];
  const handler = (options: MongoDbOptions = {}) =>
    harness.handler(singleUser(createMongoDb(options)));

  beforeAll(async () => {
    admin = await MongoAdmin.connect(provided('mongoAdminUrl'));
    await harness.start();
  });

  afterAll(async () => {
    for (const { name, db } of users) await admin.dropUsers([name], db);
    await admin.close();
    await harness.stop();
  });

  /** A user with a password and a secret describing it. */
  async function provision(
    options: {
      name?: string;
      password?: string;
      db?: string;
      host?: string;
      port?: number;
      ssl?: boolean | null;
      engine?: string;
    } = {},
  ) {
    const name = options.name ?? randomName('single');
    const password = options.password ?? `initial-${randomName('pw')}`;
    const db = options.db ?? 'admin';
    // Where roles are enforced, a user may change its own password only with this action.
    const roles = capabilities.authorization ? [await admin.changeOwnPasswordRole(db)] : [];
    await admin.createUser(name, password, { db, roles });
    users.push({ name, db });
    const secretId = harness.fake.createSecret({
      name: `docdb/${randomName('secret')}`,
      secretString: JSON.stringify({
        engine: options.engine ?? 'mongo',
        host: options.host ?? admin.host,
        port: options.port ?? admin.port,
        username: name,
        password,
        ...(db === 'admin' ? {} : { dbname: db }),
        ...(options.ssl === null ? {} : { ssl: options.ssl ?? false }),
        team: 'payments',
      }),
    });
    return { name, password, db, secretId };
  }

  const login = (name: string, password: string, database = 'admin') => ({
    host: admin.host,
    port: admin.port,
    user: name,
    password,
    database,
  });

  singleUserContract({
    harness,
    handler,
    provision,
    signsIn: (secret) =>
      signsIn(
        login(
          secret.username,
          secret.password,
          typeof secret.dbname === 'string' ? secret.dbname : 'admin',
        ),
      ),
    usersLike: (name) => admin.usersLike(name),
    namesNeedingQuoting: [
      `Mixed Case ${randomName('U')}`,
      `it's "quoted" ${randomName('q')}`,
      `{"$ne": null} ${randomName('o')}`,
      `back\\slash;${randomName('b')}`,
    ],
  });

  it('refuses the old password after rotation and accepts the new one', async () => {
    // Prepare
    const { name, password, secretId } = await provision({ engine: 'docdb' });

    // Act
    const result = await harness.rotate(handler(), secretId);

    // Assess
    expect(result.completed, String(result.error)).toBe(true);
    expect(await signsIn(login(name, password))).toBe(false);
    expect(await signsIn(login(name, harness.secret(secretId).password))).toBe(true);
  });

  it('rotates a user whose authentication database is not admin', async () => {
    // Prepare: the user lives in its application's database, named by dbname.
    const db = randomName('orders');
    const { name, password, secretId } = await provision({ db });

    // Act
    const result = await harness.rotate(handler(), secretId);

    // Assess
    expect(result.completed, String(result.error)).toBe(true);
    const current = harness.secret(secretId);
    expect(current.dbname).toBe(db);
    expect(await signsIn(login(name, current.password, db))).toBe(true);
    expect(await signsIn(login(name, password, db))).toBe(false);
    expect(await admin.userExists(name, 'admin')).toBe(false);
  });

  it('changes nothing but the named user when the username is an injection attempt', async () => {
    // Prepare: a bystander, and users whose names try to reach it.
    const victim = randomName('v');
    await admin.createUser(victim, 'victim-password-1');
    users.push({ name: victim, db: 'admin' });
    const before = await admin.credentialsOf([victim]);
    const attempts = [`${victim}"}); db.dropUser("${victim}`, `${victim}@admin`, `${victim}.$cmd`];
    // SCRAM escapes "," and "=" in user names; servers that do not decode that refuse such users.
    if (capabilities.escapedNames)
      attempts.push(`${victim}", pwd: "owned`, `${victim},n=${victim}`);

    for (const name of attempts) {
      const { secretId } = await provision({ name });

      // Act
      const result = await harness.rotate(handler(), secretId);

      // Assess
      expect(result.completed, String(result.error)).toBe(true);
      expect(await signsIn(login(name, harness.secret(secretId).password))).toBe(true);
    }
    expect(await admin.credentialsOf([victim])).toEqual(before);
    expect(await signsIn(login(victim, 'victim-password-1'))).toBe(true);
  });

  it('signs in with AWSPREVIOUS when AWSCURRENT was lost, as after a restore', async () => {
    // Prepare: one rotation, then the password goes back to the one before it.
    const { name, password, secretId } = await provision();
    const rotate = handler();
    expect((await harness.rotate(rotate, secretId)).completed).toBe(true);
    await admin.command({ updateUser: name, pwd: password });

    // Act
    const result = await harness.rotate(rotate, secretId);

    // Assess
    expect(result.completed, String(result.error)).toBe(true);
    expect(await signsIn(login(name, harness.secret(secretId).password))).toBe(true);
    expect(harness.logs.messages()).toContain('signed in with AWSPREVIOUS');
  });

  it('fails setSecret and changes nothing when the server is unreachable', async () => {
    // Prepare: the secret points at a proxy that is gone by the time setSecret runs.
    const proxy = await TcpProxy.start({ host: admin.host, port: admin.port });
    const { name, secretId } = await provision({ host: '127.0.0.1', port: proxy.port });
    const rotate = handler();
    await harness.rotate(rotate, secretId, { stopAfter: 'createSecret' });
    const token = harness.fake.versionOf(secretId, 'AWSPENDING') as string;
    const before = await admin.credentialsOf([name]);
    await proxy.stop();

    // Act
    const failure = await rotate(
      { Step: 'setSecret', SecretId: harness.fake.arnOf(secretId), ClientRequestToken: token },
      { getRemainingTimeInMillis: () => 60_000 },
    ).catch((error: unknown) => error);

    // Assess
    expect(failure).toBeInstanceOf(HostUnreachableError);
    expect((failure as Error).message).toMatch(
      /^setSecret of secret .*: cannot reach MongoDB at 127\.0\.0\.1:\d+ .* as user/,
    );
    expect(await admin.credentialsOf([name])).toEqual(before);
    expect(harness.fake.versionOf(secretId, 'AWSCURRENT')).not.toBe(token);
  });

  it.each([
    ['the host is missing', { host: undefined }, /field "host" is missing/],
    ['the engine is another database', { engine: 'postgres' }, /field "engine" is "postgres"/],
    ['the port is not a number', { port: 'twenty' }, /field "port" must be a whole number/],
  ])(
    'stops at createSecret with a clear error and changes nothing when %s',
    async (_, change, message) => {
      // Prepare
      const { name, secretId } = await provision();
      const value = { ...harness.secret(secretId), ...change };
      const broken = harness.fake.createSecret({
        name: `docdb/${randomName('broken')}`,
        secretString: JSON.stringify(value),
      });
      const before = await admin.credentialsOf([name]);

      // Act
      const result = await harness.rotate(handler(), broken);

      // Assess
      expect(result.failedStep).toBe('createSecret');
      expect(result.error).toBeInstanceOf(InvalidSecretError);
      expect(String(result.error)).toMatch(message);
      expect(await admin.credentialsOf([name])).toEqual(before);
    },
  );

  it('refuses an AWSPENDING that names another user and changes nobody', async () => {
    // Prepare: AWSPENDING (written by someone else) names a bystander.
    const { name, secretId } = await provision();
    const bystander = await provision();
    const token = harness.fake.startRotation(secretId);
    harness.fake.putSecretValue({
      SecretId: secretId,
      ClientRequestToken: token,
      SecretString: JSON.stringify({
        ...harness.secret(secretId),
        username: bystander.name,
        password: 'taken-over-password-1',
      }),
      VersionStages: ['AWSPENDING'],
    });
    const before = await admin.credentialsOf([name, bystander.name]);

    // Act
    const result = await harness.rotate(handler(), secretId, { token });

    // Assess
    expect(result.failedStep).toBe('setSecret');
    expect(result.error).toBeInstanceOf(InvalidSecretError);
    expect(String(result.error)).toContain(
      `AWSPENDING names user "${bystander.name}" but AWSCURRENT names "${name}"`,
    );
    expect(await admin.credentialsOf([name, bystander.name])).toEqual(before);
  });

  describe.skipIf(!capabilities.authorization)('authorization (on servers that enforce it)', () => {
    it("fails setSecret with the server's refusal, and changes nothing, when the user may not change its own password", async () => {
      // Prepare: a user without the changeOwnPassword action.
      const name = randomName('norole');
      await admin.createUser(name, 'initial-password-1');
      users.push({ name, db: 'admin' });
      const secretId = harness.fake.createSecret({
        name: `docdb/${randomName('secret')}`,
        secretString: JSON.stringify({
          engine: 'mongo',
          host: admin.host,
          port: admin.port,
          username: name,
          password: 'initial-password-1',
          ssl: false,
        }),
      });
      const before = await admin.credentialsOf([name]);

      // Act
      const result = await harness.rotate(handler(), secretId);

      // Assess
      expect(result.failedStep).toBe('setSecret');
      expect(String(result.error)).toMatch(
        /changing the password for user .* failed: .*code 13 Unauthorized/,
      );
      expect(await admin.credentialsOf([name])).toEqual(before);
    });
  });

  describe('TLS', () => {
    it('falls back to plaintext with a warning when ssl is absent and the server offers no TLS', async () => {
      // Prepare: the plaintext port; the secret leaves ssl out ("TLS preferred").
      const { name, secretId } = await provision({ ssl: null });

      // Act
      const result = await harness.rotate(handler({ tlsHandshakeTimeoutMs: 500 }), secretId);

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
      const { name, secretId } = await provision({ ssl: true });
      const before = await admin.credentialsOf([name]);

      // Act
      const result = await harness.rotate(handler({ tlsHandshakeTimeoutMs: 500 }), secretId);

      // Assess
      expect(result.failedStep).toBe('setSecret');
      expect(result.error).toBeInstanceOf(TlsError);
      expect(String(result.error)).toMatch(/did not complete a TLS handshake/);
      expect(await admin.credentialsOf([name])).toEqual(before);
    });

    describe.runIf(tls)("on the server's TLS port", () => {
      it('rotates over verified TLS when ssl is true and the certificate is trusted', async () => {
        // Prepare
        const { name, password, secretId } = await provision({ ssl: true, port: tls?.port });

        // Act
        const result = await harness.rotate(handler({ trustedCa: tls?.ca }), secretId);

        // Assess
        expect(result.completed, String(result.error)).toBe(true);
        expect(await signsIn(login(name, password))).toBe(false);
        expect(await signsIn(login(name, harness.secret(secretId).password))).toBe(true);
      });

      it('refuses an untrusted certificate when ssl is true and changes nothing', async () => {
        // Prepare: the certificate is self-signed and not given to the function.
        const { name, secretId } = await provision({ ssl: true, port: tls?.port });
        const before = await admin.credentialsOf([name]);

        // Act
        const result = await harness.rotate(handler(), secretId);

        // Assess
        expect(result.failedStep).toBe('setSecret');
        expect(result.error).toBeInstanceOf(TlsError);
        expect(String(result.error)).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY/);
        expect(await admin.credentialsOf([name])).toEqual(before);
      });

      it('uses TLS without verification, and warns of nothing, when ssl is absent and TLS is offered', async () => {
        // Prepare: the TLS-only port: a plaintext attempt could not work there.
        const { name, secretId } = await provision({ ssl: null, port: tls?.port });

        // Act
        const result = await harness.rotate(handler(), secretId);

        // Assess
        expect(result.completed, String(result.error)).toBe(true);
        expect(await signsIn(login(name, harness.secret(secretId).password))).toBe(true);
        const warnings = harness.logs.lines.filter(
          (line) => line.level === 'warn' && line.attributes.user === name,
        );
        expect(warnings).toEqual([]);
      });
    });
  });
});
