import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidSecretError } from '../../shared/common/errors.js';
import { CLONE_MARKER, createMongoDb, type RoleGrant } from '../../shared/databases/mongodb.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';
import { MongoAdmin, signsIn } from '../support/mongo-admin.js';
import { randomName } from '../support/pg-admin.js';
import { alternatingUsersContract } from '../support/rotation-contract.js';
import { RotationHarness } from '../support/rotation-harness.js';
import { provided } from '../support/servers.js';

const capabilities = provided('mongoCapabilities');
/** Why the role tests cannot run here, or undefined when they can. */
const noRoles = capabilities.roles
  ? undefined
  : `${capabilities.server} does not implement roles: ${capabilities.rolesReason}`;
const noCustomData = capabilities.customData
  ? undefined
  : `${capabilities.server} does not implement customData`;
if (noRoles) console.warn(`mongodb alternating users: role tests skipped: ${noRoles}`);
if (noCustomData)
  console.warn(`mongodb alternating users: clone-mark tests skipped: ${noCustomData}`);

describe('mongodb alternating users', () => {
  let admin: MongoAdmin;
  const harness = new RotationHarness();
  const users: { name: string; db: string }[] = [];
  let masterArn: string;
  const handler = () => harness.handler(alternatingUsers(createMongoDb()));

  beforeAll(async () => {
    admin = await MongoAdmin.connect(provided('mongoAdminUrl'));
    await harness.start();
    masterArn = harness.fake.createSecret({
      name: `docdb/master-${randomName('m')}`,
      secretString: admin.masterSecretValue(),
    });
  });

  afterAll(async () => {
    for (const { name, db } of users) await admin.dropUsers([`${name}_clone`, name], db);
    await admin.close();
    await harness.stop();
  });

  const login = (secret: { username: string; password: string; dbname?: unknown }) => ({
    host: admin.host,
    port: admin.port,
    user: secret.username,
    password: secret.password,
    database: typeof secret.dbname === 'string' ? secret.dbname : 'admin',
  });

  /** A user and a secret naming it, with the master secret. */
  async function provision(
    options: {
      name?: string;
      db?: string;
      roles?: RoleGrant[];
      secretPassword?: string;
      masterarn?: string;
    } = {},
  ) {
    const name = options.name ?? randomName('alt');
    const db = options.db ?? 'admin';
    const password = `initial-${randomName('pw')}`;
    await admin.createUser(name, password, { db, roles: options.roles ?? [] });
    users.push({ name, db });
    const secretId = harness.fake.createSecret({
      name: `docdb/${randomName('secret')}`,
      secretString: JSON.stringify({
        engine: 'mongo',
        host: admin.host,
        port: admin.port,
        username: name,
        password: options.secretPassword ?? password,
        ...(db === 'admin' ? {} : { dbname: db }),
        ssl: 'FALSE',
        masterarn: options.masterarn ?? masterArn,
      }),
    });
    return { name, db, password, secretId };
  }

  alternatingUsersContract({
    harness,
    handler,
    provision,
    masterArn: () => masterArn,
    signsIn: (secret) => signsIn(login(secret)),
    usersLike: (name) => admin.usersLike(name),
    namesNeedingQuoting: [
      `Mixed Case ${randomName('U')}`,
      `it's "quoted" ${randomName('q')}`,
      `{"$ne": null} ${randomName('o')}`,
    ],
  });

  it("creates the clone in the user's own authentication database while the master signs in against admin", async () => {
    // Prepare: the application's users live in its database; the master in admin.
    const db = randomName('orders');
    const { name, secretId } = await provision({ db });

    // Act
    const first = await harness.rotate(handler(), secretId);
    const second = await harness.rotate(handler(), secretId);

    // Assess
    expect([first.completed, second.completed], String(first.error ?? second.error)).toEqual([
      true,
      true,
    ]);
    expect(await admin.usersLike(name, db)).toEqual([name, `${name}_clone`]);
    expect(await admin.userExists(`${name}_clone`, 'admin')).toBe(false);
    expect(await signsIn(login(harness.secret(secretId)))).toBe(true);
    expect(await signsIn(login(harness.secret(secretId, 'AWSPREVIOUS')))).toBe(true);
  });

  it('converges when a crash after setSecret of a later rotation is followed by a retry', async () => {
    // Prepare: the clone exists; the second rotation changes the original's password, then crashes.
    const { name, secretId } = await provision();
    const rotate = handler();
    expect((await harness.rotate(rotate, secretId)).completed).toBe(true);

    // Act
    const crashed = await harness.rotate(rotate, secretId, { stopAfter: 'setSecret' });
    const pending = harness.secret(secretId, 'AWSPENDING');
    const current = harness.secret(secretId);
    const signInsAfterCrash = [await signsIn(login(pending)), await signsIn(login(current))];
    const retried = await harness.retry(rotate, secretId, crashed.token);

    // Assess
    expect(signInsAfterCrash).toEqual([true, true]);
    expect(retried.completed, String(retried.error)).toBe(true);
    expect(harness.secret(secretId).username).toBe(name);
    expect(await signsIn(login(harness.secret(secretId)))).toBe(true);
  });

  it('refuses an AWSPENDING that names a user other than the clone and changes nobody', async () => {
    // Prepare: AWSPENDING (written by someone else) names a bystander.
    const { name, secretId } = await provision();
    const bystander = await provision();
    const token = harness.fake.startRotation(secretId);
    harness.fake.putSecretValue({
      SecretId: secretId,
      ClientRequestToken: token,
      SecretString: JSON.stringify({ ...harness.secret(secretId), username: bystander.name }),
      VersionStages: ['AWSPENDING'],
    });
    const before = await admin.credentialsOf([name, bystander.name]);

    // Act
    const result = await harness.rotate(handler(), secretId, { token });

    // Assess
    expect(result.failedStep).toBe('setSecret');
    expect(result.error).toBeInstanceOf(InvalidSecretError);
    expect(String(result.error)).toContain(`it must be "${name}_clone"`);
    expect(await admin.credentialsOf([name, bystander.name])).toEqual(before);
    expect(await admin.usersLike(name)).toEqual([name]);
  });

  describe.skipIf(noRoles !== undefined)('roles (on servers that implement them)', () => {
    const dataDbs = [randomName('sales'), randomName('reports'), randomName('audit')];

    it('gives the clone the roles of the original', async () => {
      // Prepare
      const [sales, reports] = dataDbs as [string, string];
      const roles = [
        { role: 'readWrite', db: sales },
        { role: 'read', db: reports },
      ];
      const { name, secretId } = await provision({ roles });

      // Act
      const result = await harness.rotate(handler(), secretId);

      // Assess
      expect(result.completed, String(result.error)).toBe(true);
      expect(await admin.rolesOf(`${name}_clone`)).toEqual([
        `read@${reports}`,
        `readWrite@${sales}`,
      ]);
      const clone = harness.secret(secretId);
      expect(await signsIn(login(clone))).toBe(true);
    });

    it('mirrors roles granted to and revoked from the original since the last rotation', async () => {
      // Prepare: first rotation makes the clone; then a DBA changes the original's roles.
      const [sales, reports, audit] = dataDbs as [string, string, string];
      const { name, secretId } = await provision({
        roles: [
          { role: 'readWrite', db: sales },
          { role: 'read', db: reports },
        ],
      });
      const rotate = handler();
      expect((await harness.rotate(rotate, secretId)).completed).toBe(true);
      await admin.command({ revokeRolesFromUser: name, roles: [{ role: 'read', db: reports }] });
      await admin.command({ grantRolesToUser: name, roles: [{ role: 'read', db: audit }] });

      // Act: the clone is AWSCURRENT now; the rotation changes the original's password.
      const second = await harness.rotate(rotate, secretId);
      const third = await harness.rotate(rotate, secretId);

      // Assess
      expect([second.completed, third.completed]).toEqual([true, true]);
      expect(await admin.rolesOf(`${name}_clone`)).toEqual(await admin.rolesOf(name));
      expect(await admin.rolesOf(`${name}_clone`)).toEqual([`read@${audit}`, `readWrite@${sales}`]);
      const reconciled = harness.logs.lines.find(
        (line) => line.message === "reconciled the clone's privileges with the original's",
      );
      expect(reconciled?.attributes.changes).toEqual([
        `revoked role read@${reports}`,
        `granted role read@${audit}`,
      ]);
    });

    it('refuses to take over an existing unmarked <user>_clone that holds roles the original lacks', async () => {
      // Prepare: someone else made <user>_clone, with more power, before the first rotation.
      const { name, secretId } = await provision({
        roles: [{ role: 'read', db: dataDbs[0] as string }],
      });
      await admin.createUser(`${name}_clone`, 'someone-elses-password-1', {
        roles: [{ role: 'readWriteAnyDatabase', db: 'admin' }],
      });
      const before = await admin.credentialsOf([`${name}_clone`]);

      // Act
      const result = await harness.rotate(handler(), secretId);

      // Assess
      expect(result.failedStep).toBe('setSecret');
      expect(result.error).toBeInstanceOf(InvalidSecretError);
      expect(String(result.error)).toMatch(
        /readWriteAnyDatabase@admin.*refusing to hand out its password/,
      );
      expect(await admin.credentialsOf([`${name}_clone`])).toEqual(before);
      expect(await admin.rolesOf(`${name}_clone`)).toEqual(['readWriteAnyDatabase@admin']);
    });
  });

  describe.skipIf(noCustomData !== undefined)('clone mark (on servers with customData)', () => {
    it('marks the clone with the user it was made from', async () => {
      // Prepare
      const { name, secretId } = await provision();

      // Act
      const result = await harness.rotate(handler(), secretId);

      // Assess
      expect(result.completed, String(result.error)).toBe(true);
      expect((await admin.userInfo(`${name}_clone`))?.customData).toEqual({ [CLONE_MARKER]: name });
    });

    it('refuses a <user>_clone marked as the clone of another user', async () => {
      // Prepare
      const { name, secretId } = await provision();
      await admin.createUser(`${name}_clone`, 'someone-elses-password-1', {
        customData: { [CLONE_MARKER]: 'someone_else' },
      });
      const before = await admin.credentialsOf([`${name}_clone`]);

      // Act
      const result = await harness.rotate(handler(), secretId);

      // Assess
      expect(result.failedStep).toBe('setSecret');
      expect(String(result.error)).toContain('was made as a clone of "someone_else"');
      expect(await admin.credentialsOf([`${name}_clone`])).toEqual(before);
    });
  });
});
