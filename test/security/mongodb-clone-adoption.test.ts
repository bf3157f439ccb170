import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidSecretError } from '../../shared/common/errors.js';
import { createMongoDb } from '../../shared/databases/mongodb.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';
import { MongoAdmin, signsIn } from '../support/mongo-admin.js';
import { randomName } from '../support/pg-admin.js';
import { RotationHarness } from '../support/rotation-harness.js';
import { provided } from '../support/servers.js';

const capabilities = provided('mongoCapabilities');
/** authenticationRestrictions exist on MongoDB proper; FerretDB accepts and ignores them. */
const noRestrictions = capabilities.server.startsWith('MongoDB ')
  ? undefined
  : `${capabilities.server} has no authenticationRestrictions (it accepts and ignores them)`;
if (noRestrictions) {
  console.warn(`mongodb clone adoption: restriction tests skipped: ${noRestrictions}`);
}

/**
 * Someone who may create users in the application's database (another team's user
 * administrator) plants `<user>_clone` before the first rotation, with the original's roles but
 * without the restrictions that bind the original to the application's network: adopting it
 * would hand out, through the application's secret, an account that signs in from anywhere.
 */
describe.skipIf(noRestrictions !== undefined)('mongodb clone adoption and restrictions', () => {
  let admin: MongoAdmin;
  const harness = new RotationHarness();
  const users: string[] = [];
  let masterArn: string;
  // The tests connect from loopback; the restriction still differs from "anywhere".
  const appNetwork = [{ clientSource: ['127.0.0.1'] }];

  beforeAll(async () => {
    admin = await MongoAdmin.connect(provided('mongoAdminUrl'));
    await harness.start();
    masterArn = harness.fake.createSecret({
      name: `docdb/master-${randomName('m')}`,
      secretString: admin.masterSecretValue(),
    });
  });

  afterAll(async () => {
    await admin?.dropUsers(users.flatMap((name) => [`${name}_clone`, name]));
    await admin?.close();
    await harness.stop();
  });

  async function provision() {
    const name = randomName('restricted');
    const password = `initial-${randomName('pw')}`;
    await admin.command({
      createUser: name,
      pwd: password,
      roles: [{ role: 'read', db: 'admin' }],
      authenticationRestrictions: appNetwork,
    });
    users.push(name);
    const secretId = harness.fake.createSecret({
      name: `docdb/${randomName('secret')}`,
      secretString: JSON.stringify({
        engine: 'mongo',
        host: admin.host,
        port: admin.port,
        username: name,
        password,
        ssl: false,
        masterarn: masterArn,
      }),
    });
    return { name, secretId };
  }

  const restrictionsOf = async (user: string) =>
    (
      await admin.command({
        usersInfo: { user, db: 'admin' },
        showAuthenticationRestrictions: true,
      })
    ).users[0]?.authenticationRestrictions;

  it('makes the clone bound by the restrictions of the original', async () => {
    const { name, secretId } = await provision();

    const result = await harness.rotate(
      harness.handler(alternatingUsers(createMongoDb())),
      secretId,
    );

    expect(result.completed, String(result.error)).toBe(true);
    expect(await restrictionsOf(`${name}_clone`)).toEqual(appNetwork);
    const clone = harness.secret(secretId);
    expect(
      await signsIn({
        host: admin.host,
        port: admin.port,
        user: clone.username,
        password: clone.password,
      }),
    ).toBe(true);
  });

  it('refuses to adopt an unmarked look-alike clone free of the original restrictions', async () => {
    // Prepare: the planted clone, same roles, no restrictions, its planter's password.
    const { name, secretId } = await provision();
    await admin.createUser(`${name}_clone`, 'planted-password-1', {
      roles: [{ role: 'read', db: 'admin' }],
    });
    const before = await admin.credentialsOf([`${name}_clone`]);

    // Act
    const result = await harness.rotate(
      harness.handler(alternatingUsers(createMongoDb())),
      secretId,
    );

    // Assess: its password never changed, so nobody was handed an unrestricted account.
    expect(result.failedStep).toBe('setSecret');
    expect(result.error).toBeInstanceOf(InvalidSecretError);
    expect(await admin.credentialsOf([`${name}_clone`])).toEqual(before);
    expect(await restrictionsOf(`${name}_clone`)).toEqual([]);
  });
});
