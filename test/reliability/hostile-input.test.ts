import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { RotationError } from '../../shared/common/errors.js';
import { createPostgres } from '../../shared/databases/postgres.js';
import type { RotationHandler } from '../../shared/rotation/handler.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';
import { singleUser } from '../../shared/strategies/single-user.js';
import { eventCases, type HostileCase, secretCases } from '../support/hostile-corpus.js';
import { PgAdmin, randomName } from '../support/pg-admin.js';
import { RotationHarness } from '../support/rotation-harness.js';

/**
 * Bad events and bad secret values against a real PostgreSQL: each gives an error naming the
 * field or the rule, and what clients see (the users on the server, AWSCURRENT and AWSPREVIOUS)
 * is the same before and after.
 */
describe('hostile input', () => {
  const harness = new RotationHarness();
  let admin: PgAdmin;
  let single: RotationHandler;
  const users: string[] = [];
  const corpus: HostileCase[] = [...eventCases(), ...secretCases()];

  beforeAll(async () => {
    admin = await PgAdmin.connect(inject('pgAdminUrl'));
    await harness.start();
    single = harness.handler(singleUser(createPostgres()));
  });
  afterAll(async () => {
    await admin.dropUsers(users);
    await admin.close();
    await harness.stop();
  });

  it('has at least 100 cases', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(100);
  });

  /** What clients and the server show: must not change when a rotation is refused. */
  async function snapshot(secretId: string, name: string) {
    return {
      roles: await admin.rolesLike('hostile_'),
      hashes: await admin.passwordHashes([name, 'postgres', admin.username]),
      current: harness.fake.versionOf(secretId, 'AWSCURRENT'),
      currentValue: harness.fake.valueOf(secretId, 'AWSCURRENT'),
      previous: harness.fake.versionOf(secretId, 'AWSPREVIOUS'),
    };
  }

  async function provision() {
    const name = randomName('hostile');
    const password = `initial-${randomName('pw')}`;
    await admin.createUser(name, password);
    users.push(name);
    const valid = {
      engine: 'postgres',
      host: admin.host,
      port: admin.port,
      username: name,
      password,
      dbname: 'postgres',
      ssl: false,
    };
    return { name, valid };
  }

  it.each(corpus.map((c) => [`${c.kind}: ${c.name}`, c] as const))(
    'refuses %s, naming the field or rule, and changes nothing',
    async (_, hostile) => {
      // Prepare
      const { name, valid } = await provision();
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
        failure = await single(event, { getRemainingTimeInMillis: () => 10_000 }).catch(
          (e: unknown) => e,
        );
      } else {
        const result = await harness.rotate(single, secretId, { token });
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
      { engine: 'mysql' },
      /field "engine" is "mysql"/,
    ],
    [
      'a masterarn missing its password',
      { password: undefined },
      /master secret .*field "password" is missing/,
    ],
  ])('alternating users refuse %s and change nothing', async (_, masterPatch, message) => {
    // Prepare
    const { name, valid } = await provision();
    const master = harness.fake.createSecret({
      name: `hostile/master-${name}`,
      secretString: JSON.stringify({
        host: admin.host,
        port: admin.port,
        username: admin.username,
        password: admin.password,
        ...masterPatch,
      }),
    });
    const secretId = harness.fake.createSecret({
      name: `hostile/${name}`,
      secretString: JSON.stringify({ ...valid, masterarn: master }),
    });
    const before = await snapshot(secretId, name);

    // Act
    const result = await harness.rotate(
      harness.handler(alternatingUsers(createPostgres())),
      secretId,
    );

    // Assess
    expect(String(result.error)).toMatch(message);
    expect(await snapshot(secretId, name)).toEqual(before);
    expect(await admin.userExists(`${name}_clone`)).toBe(false);
  });

  it('alternating users refuse a masterarn that names no secret', async () => {
    const { name, valid } = await provision();
    const secretId = harness.fake.createSecret({
      name: `hostile/${name}`,
      secretString: JSON.stringify({
        ...valid,
        masterarn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf',
      }),
    });
    const result = await harness.rotate(
      harness.handler(alternatingUsers(createPostgres())),
      secretId,
    );
    expect(String(result.error)).toMatch(
      /field "masterarn" names a secret that cannot be read: secret .*nope-AbCdEf has no AWSCURRENT value/,
    );
    expect(await admin.userExists(`${name}_clone`)).toBe(false);
  });
});
