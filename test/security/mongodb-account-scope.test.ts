import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMongoDb } from '../../shared/databases/mongodb.js';
import { singleUser } from '../../shared/strategies/single-user.js';
import { MongoAdmin } from '../support/mongo-admin.js';
import { randomName } from '../support/pg-admin.js';
import { RotationHarness } from '../support/rotation-harness.js';
import { provided } from '../support/servers.js';

/**
 * On MongoDB a user is `name@dbname`: the authentication database is part of the account, as
 * MySQL's host part is. Whoever may write AWSPENDING (PutSecretValue on the secret, without
 * access to the database) and may create a user in some database (a team's own userAdmin, or
 * the application itself with dbOwner on its database) plants `app@theirs` with a password of
 * their choosing and writes AWSPENDING with the same user name, that password and
 * `"dbname": "theirs"`. The application's secret must never end up naming that account.
 */
describe('mongodb account scope of AWSPENDING', () => {
  let admin: MongoAdmin;
  const harness = new RotationHarness();
  const planted: { name: string; db: string }[] = [];

  beforeAll(async () => {
    admin = await MongoAdmin.connect(provided('mongoAdminUrl'));
    await harness.start();
  });

  afterAll(async () => {
    for (const { name, db } of planted) await admin?.dropUsers([name], db);
    await admin?.close();
    await harness.stop();
  });

  // requireSameServer compares dbname too: on MongoDB it is part of the user's identity.
  it('never promotes an AWSPENDING that names the same user in another authentication database', async () => {
    // Prepare: the application's user in admin, and the planted namesake in another database.
    const name = randomName('scoped');
    const theirs = randomName('theirs');
    const password = `initial-${randomName('pw')}`;
    await admin.createUser(name, password);
    planted.push({ name, db: 'admin' });
    await admin.createUser(name, 'planted-password-1', { db: theirs });
    planted.push({ name, db: theirs });
    const secret = {
      engine: 'mongo',
      host: admin.host,
      port: admin.port,
      username: name,
      password,
      ssl: false,
    };
    const secretId = harness.fake.createSecret({
      name: `docdb/${randomName('secret')}`,
      secretString: JSON.stringify(secret),
    });
    const token = harness.fake.startRotation(secretId);
    harness.fake.putSecretValue({
      SecretId: secretId,
      ClientRequestToken: token,
      SecretString: JSON.stringify({ ...secret, password: 'planted-password-1', dbname: theirs }),
      VersionStages: ['AWSPENDING'],
    });

    // Act
    await harness.rotate(harness.handler(singleUser(createMongoDb())), secretId, { token });

    // Assess
    expect(harness.secret(secretId).dbname ?? 'admin').toBe('admin');
  });
});
