import {
  DescribeSecretCommand,
  GetRandomPasswordCommand,
  GetSecretValueCommand,
  InternalServiceError,
  InvalidParameterException,
  InvalidRequestException,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  SecretsManagerClient,
  SecretsManagerServiceException,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AWSCURRENT,
  AWSPENDING,
  AWSPREVIOUS,
  FakeSecretsManager,
  mockSecretsManager,
  PUNCTUATION,
  type SecretsManagerStub,
  serviceError,
} from '../support/fake-secrets-manager.js';
import {
  type FakeSecretsManagerServer,
  startFakeSecretsManagerServer,
} from '../support/fake-secrets-manager-http.js';
import { type RotationEvent, retry, rotate, STEPS } from '../support/rotation-driver.js';

const NAME = 'prod/app/db';
const V1 = '{"username":"app","password":"first"}';
const V2 = '{"username":"app","password":"second"}';
const V3 = '{"username":"app","password":"third"}';

/** Runs `fn` and returns what it threw (fails the test when it does not throw). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw');
}

/** Completes a rotation by hand: value under the token, then AWSCURRENT moved to it. */
function completeRotation(fake: FakeSecretsManager, secretId: string, value: string): string {
  const current = fake.versionOf(secretId, AWSCURRENT);
  const token = fake.startRotation(secretId);
  fake.putSecretValue({
    SecretId: secretId,
    ClientRequestToken: token,
    SecretString: value,
    VersionStages: [AWSPENDING],
  });
  fake.updateSecretVersionStage({
    SecretId: secretId,
    VersionStage: AWSCURRENT,
    MoveToVersionId: token,
    RemoveFromVersionId: current,
  });
  return token;
}

describe('FakeSecretsManager', () => {
  let fake: FakeSecretsManager;
  let arn: string;
  let v1: string;

  beforeEach(() => {
    fake = new FakeSecretsManager();
    arn = fake.createSecret({ name: NAME, secretString: V1 });
    v1 = fake.versionOf(arn, AWSCURRENT) as string;
  });

  describe('secrets', () => {
    it('returns an ARN made of the name and six random characters, with one AWSCURRENT version', () => {
      // prepare
      const other = new FakeSecretsManager();
      // act
      const otherArn = other.createSecret({ name: 'x/y', secretString: 'v' });
      // assess
      expect(otherArn).toMatch(
        /^arn:aws:secretsmanager:us-east-1:123456789012:secret:x\/y-[A-Za-z0-9]{6}$/,
      );
      expect(Object.values(other.labels(otherArn))).toEqual([[AWSCURRENT]]);
      expect(other.valueOf(otherArn, AWSCURRENT)).toBe('v');
    });

    it('finds a secret by ARN, by name and by partial ARN', () => {
      // prepare
      const partial = arn.slice(0, -7);
      // act
      const names = [arn, NAME, partial].map((id) => fake.describeSecret({ SecretId: id }).ARN);
      // assess
      expect(partial).toBe(`arn:aws:secretsmanager:us-east-1:123456789012:secret:${NAME}`);
      expect(names).toEqual([arn, arn, arn]);
    });

    it('answers ResourceNotFoundException for an unknown secret', () => {
      // prepare
      const unknown = `${arn.slice(0, -6)}zzzzzz`;
      // act
      const error = thrown(() => fake.getSecretValue({ SecretId: unknown }));
      // assess
      expect(error).toBeInstanceOf(ResourceNotFoundException);
      expect((error as Error).message).toBe("Secrets Manager can't find the specified secret.");
    });

    it('refuses to create a second secret with the same name', () => {
      // prepare
      const again = { name: NAME, secretString: 'other' };
      // act
      const error = thrown(() => fake.createSecret(again));
      // assess
      expect(error).toBeInstanceOf(ResourceExistsException);
    });

    it('forgets everything on reset', () => {
      // prepare
      fake.getSecretValue({ SecretId: arn });
      fake.failNext('GetSecretValue', new Error('boom'));
      // act
      fake.reset();
      // assess
      expect(fake.calls).toEqual([]);
      expect(fake.allStoredValues()).toEqual([]);
      expect(() => fake.getSecretValue({ SecretId: arn })).toThrow(ResourceNotFoundException);
    });
  });

  describe('RotateSecret (startRotation)', () => {
    it('registers the token as a version with AWSPENDING and no value', () => {
      // prepare
      const token = 'a1b2c3d4-0000-4000-8000-000000000001';
      // act
      const returned = fake.startRotation(arn, token);
      // assess
      expect(returned).toBe(token);
      expect(fake.labels(arn)).toEqual({ [v1]: [AWSCURRENT], [token]: [AWSPENDING] });
      expect(() =>
        fake.getSecretValue({ SecretId: arn, VersionId: token, VersionStage: AWSPENDING }),
      ).toThrow(ResourceNotFoundException);
    });

    it('takes AWSPENDING off the version that kept it after the previous rotation', () => {
      // prepare
      const first = completeRotation(fake, arn, V2);
      const before = fake.labels(arn)[first];
      // act
      const second = fake.startRotation(arn);
      // assess
      expect(before).toEqual([AWSPENDING, AWSCURRENT]);
      expect(fake.labels(arn)[first]).toEqual([AWSCURRENT]);
      expect(fake.labels(arn)[second]).toEqual([AWSPENDING]);
    });

    it('fails with InvalidRequestException while AWSPENDING is on a version without AWSCURRENT', () => {
      // prepare
      const first = fake.startRotation(arn);
      // act
      const error = thrown(() => fake.startRotation(arn));
      // assess
      expect(error).toBeInstanceOf(InvalidRequestException);
      expect((error as Error).message).toContain("previous rotation isn't complete");
      expect(fake.versionOf(arn, AWSPENDING)).toBe(first);
    });

    it('gives every rotation its own opaque RotationToken', () => {
      // prepare
      const first = completeRotation(fake, arn, V2);
      // act
      const second = fake.startRotation(arn);
      // assess
      const tokens = [fake.rotationTokenFor(arn, first), fake.rotationTokenFor(arn, second)];
      expect(tokens[0]).toEqual(expect.any(String));
      expect(tokens[1]).toEqual(expect.any(String));
      expect(tokens[0]).not.toBe(tokens[1]);
      expect(fake.rotationTokenFor(arn, v1)).toBeUndefined();
    });

    it('does not log startRotation as a command', () => {
      // prepare
      const before = fake.calls.length;
      // act
      fake.startRotation(arn);
      // assess
      expect(before).toBe(0);
      expect(fake.calls).toEqual([]);
    });
  });

  describe('DescribeSecret', () => {
    it('returns ARN, Name, RotationEnabled, RotationLambdaARN, Tags and VersionIdsToStages', () => {
      // prepare
      const tagged = fake.createSecret({
        name: 'tagged',
        secretString: 'v',
        tags: [{ Key: 'team', Value: 'db' }],
      });
      // act
      const out = fake.describeSecret({ SecretId: 'tagged' });
      // assess
      expect(out).toMatchObject({
        ARN: tagged,
        Name: 'tagged',
        RotationEnabled: true,
        RotationLambdaARN: expect.stringMatching(/^arn:aws:lambda:/),
        Tags: [{ Key: 'team', Value: 'db' }],
        VersionIdsToStages: { [fake.versionOf('tagged') as string]: [AWSCURRENT] },
      });
      expect(out.DeletedDate).toBeUndefined();
    });

    it('reports RotationEnabled false, or leaves it out, as set', () => {
      // prepare
      const off = fake.createSecret({ name: 'off', secretString: 'v', rotationEnabled: false });
      const absent = fake.createSecret({
        name: 'absent',
        secretString: 'v',
        rotationEnabled: null,
      });
      // act
      const outOff = fake.describeSecret({ SecretId: off });
      const outAbsent = fake.describeSecret({ SecretId: absent });
      fake.setRotationEnabled(off, true);
      // assess
      expect(outOff.RotationEnabled).toBe(false);
      expect('RotationEnabled' in outAbsent).toBe(false);
      expect(fake.describeSecret({ SecretId: off }).RotationEnabled).toBe(true);
    });

    it('leaves out of VersionIdsToStages the versions that have no label', () => {
      // prepare
      const token = fake.startRotation(arn);
      fake.updateSecretVersionStage({
        SecretId: arn,
        VersionStage: AWSPENDING,
        RemoveFromVersionId: token,
      });
      // act
      const out = fake.describeSecret({ SecretId: arn });
      // assess
      expect(out.VersionIdsToStages).toEqual({ [v1]: [AWSCURRENT] });
      expect(fake.versionIds(arn)).toEqual([v1, token]);
    });

    it('reports DeletedDate for a secret scheduled for deletion', () => {
      // prepare
      const now = new Date('2030-01-02T03:04:05Z');
      const clocked = new FakeSecretsManager({ now: () => now });
      const id = clocked.createSecret({ name: 's', secretString: 'v' });
      // act
      const deleted = clocked.deleteSecret({ SecretId: id, RecoveryWindowInDays: 7 });
      const out = clocked.describeSecret({ SecretId: id });
      // assess
      expect(out.DeletedDate).toEqual(now);
      expect(deleted.DeletionDate).toEqual(new Date('2030-01-09T03:04:05Z'));
    });
  });

  describe('GetSecretValue', () => {
    it('answers AWSCURRENT when no stage or version is given', () => {
      // prepare
      const token = fake.startRotation(arn);
      fake.putSecretValue({
        SecretId: arn,
        ClientRequestToken: token,
        SecretString: V2,
        VersionStages: [AWSPENDING],
      });
      // act
      const out = fake.getSecretValue({ SecretId: arn });
      // assess
      expect(out).toMatchObject({
        ARN: arn,
        Name: NAME,
        VersionId: v1,
        SecretString: V1,
        VersionStages: [AWSCURRENT],
      });
      expect(out.CreatedDate).toBeInstanceOf(Date);
    });

    it('requires the version named by VersionId to carry the VersionStage given with it', () => {
      // prepare
      const token = fake.startRotation(arn);
      fake.putSecretValue({
        SecretId: arn,
        ClientRequestToken: token,
        SecretString: V2,
        VersionStages: [AWSPENDING],
      });
      // act
      const match = fake.getSecretValue({
        SecretId: arn,
        VersionId: token,
        VersionStage: AWSPENDING,
      });
      const error = thrown(() =>
        fake.getSecretValue({ SecretId: arn, VersionId: token, VersionStage: AWSCURRENT }),
      );
      // assess
      expect(match.SecretString).toBe(V2);
      expect(error).toBeInstanceOf(ResourceNotFoundException);
      expect((error as Error).message).toContain(
        `Secrets Manager can't find the specified secret value for VersionId: ${token}`,
      );
    });

    it('answers ResourceNotFoundException for a version that has no value', () => {
      // prepare
      const token = fake.startRotation(arn);
      // act
      const byId = thrown(() => fake.getSecretValue({ SecretId: arn, VersionId: token }));
      const byStage = thrown(() =>
        fake.getSecretValue({ SecretId: arn, VersionStage: AWSPENDING }),
      );
      // assess
      expect(byId).toBeInstanceOf(ResourceNotFoundException);
      expect(byStage).toBeInstanceOf(ResourceNotFoundException);
      expect((byId as Error).message).toBe(
        `Secrets Manager can't find the specified secret value for VersionId: ${token}`,
      );
    });

    it('answers ResourceNotFoundException for a stage that no version has', () => {
      // prepare
      const input = { SecretId: arn, VersionStage: AWSPREVIOUS };
      // act
      const error = thrown(() => fake.getSecretValue(input));
      // assess
      expect(error).toBeInstanceOf(ResourceNotFoundException);
      expect((error as Error).message).toBe(
        "Secrets Manager can't find the specified secret value for staging label: AWSPREVIOUS",
      );
    });

    it('still answers a deprecated version by its VersionId', () => {
      // prepare
      completeRotation(fake, arn, V2);
      completeRotation(fake, arn, V3);
      // act
      const out = fake.getSecretValue({ SecretId: arn, VersionId: v1 });
      // assess
      expect(fake.labels(arn)[v1]).toBeUndefined();
      expect(out.SecretString).toBe(V1);
      expect(out.VersionStages).toEqual([]);
    });

    it('answers InvalidRequestException for a secret scheduled for deletion', () => {
      // prepare
      fake.deleteSecret({ SecretId: arn });
      // act
      const error = thrown(() => fake.getSecretValue({ SecretId: arn }));
      // assess
      expect(error).toBeInstanceOf(InvalidRequestException);
      expect((error as Error).message).toContain('marked for deletion');
    });
  });

  describe('PutSecretValue', () => {
    it('refuses an empty VersionStages list, as the API does (1 to 20 items)', () => {
      const token = fake.startRotation(arn);
      const error = thrown(() =>
        fake.putSecretValue({
          SecretId: arn,
          ClientRequestToken: token,
          SecretString: 'x',
          VersionStages: [],
        }),
      );
      expect((error as Error).name).toBe('ValidationException');
      expect(fake.valueOfVersion(arn, token)).toBeUndefined();
    });

    it('makes the new version AWSCURRENT when VersionStages is omitted, and the old one AWSPREVIOUS', () => {
      // prepare
      const token = 'put-token-0000000000000000000000000001';
      // act
      const out = fake.putSecretValue({
        SecretId: arn,
        ClientRequestToken: token,
        SecretString: V2,
      });
      // assess
      expect(out).toEqual({ ARN: arn, Name: NAME, VersionId: token, VersionStages: [AWSCURRENT] });
      expect(fake.labels(arn)).toEqual({ [v1]: [AWSPREVIOUS], [token]: [AWSCURRENT] });
    });

    it('takes AWSPREVIOUS off its holder when AWSCURRENT moves again', () => {
      // prepare
      const v2 = fake.putSecretValue({ SecretId: arn, SecretString: V2 }).VersionId as string;
      // act
      const v3 = fake.putSecretValue({ SecretId: arn, SecretString: V3 }).VersionId as string;
      // assess
      expect(fake.labels(arn)).toEqual({ [v2]: [AWSPREVIOUS], [v3]: [AWSCURRENT] });
      expect(fake.versionIds(arn)).toContain(v1);
    });

    it('takes AWSPENDING off every other version when a version is put with AWSPENDING', () => {
      // prepare
      const stale = fake.startRotation(arn);
      const token = 'put-token-0000000000000000000000000002';
      // act
      fake.putSecretValue({
        SecretId: arn,
        ClientRequestToken: token,
        SecretString: V2,
        VersionStages: [AWSPENDING],
      });
      // assess
      expect(fake.versionOf(arn, AWSPENDING)).toBe(token);
      expect(fake.labels(arn)[stale]).toBeUndefined();
      expect(fake.labels(arn)[v1]).toEqual([AWSCURRENT]);
    });

    it('succeeds without any change when the token already has the same value', () => {
      // prepare
      const token = fake.startRotation(arn);
      const input = {
        SecretId: arn,
        ClientRequestToken: token,
        SecretString: V2,
        VersionStages: [AWSPENDING],
      };
      fake.putSecretValue(input);
      const before = fake.labels(arn);
      // act
      const out = fake.putSecretValue({ ...input, VersionStages: [AWSCURRENT] });
      // assess
      expect(out).toEqual({ ARN: arn, Name: NAME, VersionId: token, VersionStages: [AWSPENDING] });
      expect(fake.labels(arn)).toEqual(before);
      expect(fake.valueOf(arn, AWSPENDING)).toBe(V2);
    });

    it('answers ResourceExistsException when the token already has a different value', () => {
      // prepare
      const token = fake.startRotation(arn);
      fake.putSecretValue({
        SecretId: arn,
        ClientRequestToken: token,
        SecretString: V2,
        VersionStages: [AWSPENDING],
      });
      // act
      const error = thrown(() =>
        fake.putSecretValue({
          SecretId: arn,
          ClientRequestToken: token,
          SecretString: V3,
          VersionStages: [AWSPENDING],
        }),
      );
      // assess
      expect(error).toBeInstanceOf(ResourceExistsException);
      expect(fake.valueOf(arn, AWSPENDING)).toBe(V2);
    });

    it('replaces the value instead, as moto does, when made with overwriteVersions', () => {
      // prepare
      const moto = new FakeSecretsManager({ overwriteVersions: true });
      const id = moto.createSecret({ name: 'orders/app', secretString: V1 });
      const token = moto.startRotation(id);
      moto.putSecretValue({
        SecretId: id,
        ClientRequestToken: token,
        SecretString: V2,
        VersionStages: [AWSPENDING],
      });
      // act
      moto.putSecretValue({
        SecretId: id,
        ClientRequestToken: token,
        SecretString: V3,
        VersionStages: [AWSPENDING],
      });
      // assess
      expect(moto.valueOf(id, AWSPENDING)).toBe(V3);
      expect(moto.versionOf(id, AWSPENDING)).toBe(token);
    });

    it('fills in the empty version registered by RotateSecret', () => {
      // prepare
      const token = fake.startRotation(arn);
      // act
      const out = fake.putSecretValue({
        SecretId: arn,
        ClientRequestToken: token,
        SecretString: V2,
        VersionStages: [AWSPENDING],
      });
      // assess
      expect(out.VersionStages).toEqual([AWSPENDING]);
      expect(fake.versionIds(arn)).toEqual([v1, token]);
      expect(
        fake.getSecretValue({ SecretId: arn, VersionId: token, VersionStage: AWSPENDING })
          .SecretString,
      ).toBe(V2);
    });

    it('accepts 65,536 bytes and answers ValidationException above', () => {
      // prepare
      const limit = 'é'.repeat(32_768);
      const over = `${limit}x`;
      // act
      const ok = fake.putSecretValue({ SecretId: arn, SecretString: limit, VersionStages: ['A'] });
      const error = thrown(() =>
        fake.putSecretValue({ SecretId: arn, SecretString: over, VersionStages: ['B'] }),
      );
      // assess
      expect(ok.VersionStages).toEqual(['A']);
      expect(error).toBeInstanceOf(SecretsManagerServiceException);
      expect((error as Error).name).toBe('ValidationException');
      expect(fake.versionOf(arn, 'B')).toBeUndefined();
    });

    it('records the RotationToken of each call', () => {
      // prepare
      const token = fake.startRotation(arn);
      const rotationToken = fake.rotationTokenFor(arn, token);
      // act
      fake.putSecretValue({
        SecretId: arn,
        ClientRequestToken: token,
        SecretString: V2,
        VersionStages: [AWSPENDING],
        RotationToken: rotationToken,
      });
      fake.putSecretValue({ SecretId: arn, SecretString: V3, VersionStages: ['X'] });
      // assess
      expect(rotationToken).toEqual(expect.any(String));
      expect(fake.putRotationTokens).toEqual([rotationToken, undefined]);
    });

    it('answers InvalidRequestException for a secret scheduled for deletion', () => {
      // prepare
      fake.deleteSecret({ SecretId: arn });
      // act
      const error = thrown(() => fake.putSecretValue({ SecretId: arn, SecretString: V2 }));
      // assess
      expect(error).toBeInstanceOf(InvalidRequestException);
    });
  });

  describe('UpdateSecretVersionStage', () => {
    it('refuses to move a label whose holder is not named by RemoveFromVersionId, changing nothing', () => {
      // prepare
      const token = fake.startRotation(arn);
      fake.putSecretValue({
        SecretId: arn,
        ClientRequestToken: token,
        SecretString: V2,
        VersionStages: [AWSPENDING],
      });
      const before = fake.labels(arn);
      // act
      const missing = thrown(() =>
        fake.updateSecretVersionStage({
          SecretId: arn,
          VersionStage: AWSCURRENT,
          MoveToVersionId: token,
        }),
      );
      const wrong = thrown(() =>
        fake.updateSecretVersionStage({
          SecretId: arn,
          VersionStage: AWSCURRENT,
          MoveToVersionId: token,
          RemoveFromVersionId: token,
        }),
      );
      // assess
      expect(missing).toBeInstanceOf(InvalidParameterException);
      expect(wrong).toBeInstanceOf(InvalidParameterException);
      expect(fake.labels(arn)).toEqual(before);
    });

    it('gives AWSPREVIOUS to the version that loses AWSCURRENT and takes it from its holder', () => {
      // prepare
      const v2 = fake.putSecretValue({ SecretId: arn, SecretString: V2 }).VersionId as string;
      const v3 = fake.putSecretValue({ SecretId: arn, SecretString: V3, VersionStages: ['NEXT'] })
        .VersionId as string;
      // act
      fake.updateSecretVersionStage({
        SecretId: arn,
        VersionStage: AWSCURRENT,
        MoveToVersionId: v3,
        RemoveFromVersionId: v2,
      });
      // assess
      expect(fake.labels(arn)).toEqual({ [v2]: [AWSPREVIOUS], [v3]: ['NEXT', AWSCURRENT] });
      expect(fake.versionIds(arn)).toContain(v1);
    });

    it('leaves AWSPENDING where it is when AWSCURRENT moves', () => {
      // prepare
      const token = fake.startRotation(arn);
      fake.putSecretValue({
        SecretId: arn,
        ClientRequestToken: token,
        SecretString: V2,
        VersionStages: [AWSPENDING],
      });
      // act
      fake.updateSecretVersionStage({
        SecretId: arn,
        VersionStage: AWSCURRENT,
        MoveToVersionId: token,
        RemoveFromVersionId: v1,
      });
      // assess
      expect(fake.labels(arn)).toEqual({ [v1]: [AWSPREVIOUS], [token]: [AWSPENDING, AWSCURRENT] });
      expect(fake.valueOf(arn, AWSCURRENT)).toBe(V2);
    });

    it('deprecates a version whose last label is removed, keeping its value', () => {
      // prepare
      const token = fake.startRotation(arn);
      fake.putSecretValue({
        SecretId: arn,
        ClientRequestToken: token,
        SecretString: V2,
        VersionStages: [AWSPENDING],
      });
      // act
      fake.updateSecretVersionStage({
        SecretId: arn,
        VersionStage: AWSPENDING,
        RemoveFromVersionId: token,
      });
      // assess
      expect(fake.labels(arn)).toEqual({ [v1]: [AWSCURRENT] });
      expect(fake.valueOfVersion(arn, token)).toBe(V2);
    });

    it('needs no RemoveFromVersionId to attach a label to the version that already has it', () => {
      // prepare
      const input = { SecretId: arn, VersionStage: AWSCURRENT, MoveToVersionId: v1 };
      // act
      const out = fake.updateSecretVersionStage(input);
      // assess
      expect(out).toEqual({ ARN: arn, Name: NAME });
      expect(fake.labels(arn)).toEqual({ [v1]: [AWSCURRENT] });
    });

    it('refuses to remove AWSCURRENT without moving it', () => {
      // prepare
      const input = { SecretId: arn, VersionStage: AWSCURRENT, RemoveFromVersionId: v1 };
      // act
      const error = thrown(() => fake.updateSecretVersionStage(input));
      // assess
      expect(error).toBeInstanceOf(InvalidParameterException);
      expect(fake.versionOf(arn, AWSCURRENT)).toBe(v1);
    });

    it('answers ResourceNotFoundException for a version id that does not exist', () => {
      // prepare
      const input = {
        SecretId: arn,
        VersionStage: AWSCURRENT,
        MoveToVersionId: 'no-such-version',
        RemoveFromVersionId: v1,
      };
      // act
      const error = thrown(() => fake.updateSecretVersionStage(input));
      // assess
      expect(error).toBeInstanceOf(ResourceNotFoundException);
      expect(fake.versionOf(arn, AWSCURRENT)).toBe(v1);
    });
  });

  describe('GetRandomPassword', () => {
    const draw = (n: number, input: Parameters<FakeSecretsManager['getRandomPassword']>[0]) =>
      Array.from({ length: n }, () => fake.getRandomPassword(input).RandomPassword as string);

    it('returns 32 characters with a lowercase, an uppercase, a number and a punctuation by default', () => {
      // prepare
      const n = 50;
      // act
      const passwords = draw(n, {});
      // assess
      for (const password of passwords) {
        expect(password).toHaveLength(32);
        expect(password).toMatch(/[a-z]/);
        expect(password).toMatch(/[A-Z]/);
        expect(password).toMatch(/[0-9]/);
        expect([...password].some((c) => PUNCTUATION.includes(c))).toBe(true);
        expect(password).not.toContain(' ');
      }
    });

    it('honours PasswordLength from 1 to 4096 and answers ValidationException outside', () => {
      // prepare
      const lengths = [1, 4096];
      // act
      const passwords = lengths.map(
        (PasswordLength) => draw(1, { PasswordLength, RequireEachIncludedType: false })[0],
      );
      const errors = [0, 4097].map((PasswordLength) =>
        thrown(() => fake.getRandomPassword({ PasswordLength })),
      );
      // assess
      expect(passwords.map((p) => p?.length)).toEqual([1, 4096]);
      for (const error of errors) expect((error as Error).name).toBe('ValidationException');
    });

    it('never uses an excluded character', () => {
      // prepare
      const excluded = ':/@"\'\\abcXYZ019';
      // act
      const passwords = draw(20, { PasswordLength: 512, ExcludeCharacters: excluded });
      // assess
      for (const password of passwords) {
        for (const c of excluded) expect(password).not.toContain(c);
      }
    });

    it('drops each character type that is excluded', () => {
      // prepare
      const long = { PasswordLength: 1024 };
      // act
      const noNumbers = draw(1, { ...long, ExcludeNumbers: true })[0] as string;
      const noPunctuation = draw(1, { ...long, ExcludePunctuation: true })[0] as string;
      const noUpper = draw(1, { ...long, ExcludeUppercase: true })[0] as string;
      const noLower = draw(1, { ...long, ExcludeLowercase: true })[0] as string;
      // assess
      expect(noNumbers).not.toMatch(/[0-9]/);
      expect(noPunctuation).toMatch(/^[A-Za-z0-9]+$/);
      expect(noUpper).not.toMatch(/[A-Z]/);
      expect(noLower).not.toMatch(/[a-z]/);
    });

    it('uses exactly the service punctuation set', () => {
      // prepare
      const onlyPunctuation = {
        PasswordLength: 4096,
        ExcludeLowercase: true,
        ExcludeUppercase: true,
        ExcludeNumbers: true,
      };
      // act
      const password = draw(1, onlyPunctuation)[0] as string;
      // assess
      expect(PUNCTUATION).toBe('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');
      expect(new Set(password)).toEqual(new Set(PUNCTUATION));
    });

    it('includes the space only when IncludeSpace is set', () => {
      // prepare
      const long = { PasswordLength: 4096 };
      // act
      const without = draw(1, long)[0] as string;
      const withSpace = draw(1, { ...long, IncludeSpace: true })[0] as string;
      // assess
      expect(without).not.toContain(' ');
      expect(withSpace).toContain(' ');
    });

    it('puts one character of each included type in even the shortest password', () => {
      // prepare
      const input = { PasswordLength: 4 };
      // act
      const passwords = draw(200, input);
      // assess
      for (const password of passwords) {
        expect(password).toMatch(/[a-z]/);
        expect(password).toMatch(/[A-Z]/);
        expect(password).toMatch(/[0-9]/);
        expect([...password].some((c) => PUNCTUATION.includes(c))).toBe(true);
      }
    });

    it('answers InvalidParameterException when the length cannot hold one of each required type', () => {
      // prepare
      const input = { PasswordLength: 3 };
      // act
      const required = thrown(() => fake.getRandomPassword(input));
      const relaxed = fake.getRandomPassword({ ...input, RequireEachIncludedType: false });
      // assess
      expect(required).toBeInstanceOf(InvalidParameterException);
      expect(relaxed.RandomPassword).toHaveLength(3);
    });

    it('answers InvalidParameterException when every type is excluded', () => {
      // prepare
      const input = {
        ExcludeLowercase: true,
        ExcludeUppercase: true,
        ExcludeNumbers: true,
        ExcludePunctuation: true,
      };
      // act
      const error = thrown(() => fake.getRandomPassword(input));
      // assess
      expect(error).toBeInstanceOf(InvalidParameterException);
    });
  });

  describe('DeleteSecret', () => {
    it('forgets the secret at once with ForceDeleteWithoutRecovery', () => {
      // prepare
      const input = { SecretId: arn, ForceDeleteWithoutRecovery: true };
      // act
      fake.deleteSecret(input);
      // assess
      expect(() => fake.describeSecret({ SecretId: arn })).toThrow(ResourceNotFoundException);
    });
  });

  describe('call log, faults and introspection', () => {
    it('logs every command received with a copy of its input', () => {
      // prepare
      const input = { SecretId: arn, VersionStage: AWSCURRENT };
      // act
      fake.describeSecret({ SecretId: arn });
      fake.getSecretValue(input);
      input.VersionStage = 'mutated';
      thrown(() => fake.getSecretValue({ SecretId: 'nope' }));
      // assess
      expect(fake.calls).toEqual([
        { command: 'DescribeSecret', input: { SecretId: arn } },
        { command: 'GetSecretValue', input: { SecretId: arn, VersionStage: AWSCURRENT } },
        { command: 'GetSecretValue', input: { SecretId: 'nope' } },
      ]);
    });

    it('makes the next call of a command throw the injected error, once, before any effect', () => {
      // prepare
      const boom = serviceError('ThrottlingException', 'Rate exceeded');
      fake.failNext('PutSecretValueCommand', boom);
      // act
      const first = thrown(() => fake.putSecretValue({ SecretId: arn, SecretString: V2 }));
      const labelsAfterFailure = fake.labels(arn);
      fake.putSecretValue({ SecretId: arn, SecretString: V2 });
      // assess
      expect(first).toBe(boom);
      expect(labelsAfterFailure).toEqual({ [v1]: [AWSCURRENT] });
      expect(fake.valueOf(arn, AWSCURRENT)).toBe(V2);
      expect(fake.commandNames()).toEqual(['PutSecretValue', 'PutSecretValue']);
    });

    it('fails as many calls in a row as `times` says', () => {
      // prepare
      fake.failNext('GetSecretValue', new Error('down'), { times: 2 });
      // act
      const outcomes = [1, 2, 3].map(() => {
        try {
          return fake.getSecretValue({ SecretId: arn }).SecretString;
        } catch (error) {
          return (error as Error).message;
        }
      });
      // assess
      expect(outcomes).toEqual(['down', 'down', V1]);
    });

    it('applies the call and then throws when afterEffect is set (a lost response)', () => {
      // prepare
      fake.failNext('UpdateSecretVersionStage', new Error('socket hang up'), { afterEffect: true });
      const v2 = fake.putSecretValue({ SecretId: arn, SecretString: V2, VersionStages: ['N'] })
        .VersionId as string;
      // act
      const error = thrown(() =>
        fake.updateSecretVersionStage({
          SecretId: arn,
          VersionStage: AWSCURRENT,
          MoveToVersionId: v2,
          RemoveFromVersionId: v1,
        }),
      );
      // assess
      expect((error as Error).message).toBe('socket hang up');
      expect(fake.versionOf(arn, AWSCURRENT)).toBe(v2);
    });

    it('keeps every SecretString ever stored or sent for leak checks', () => {
      // prepare
      const token = fake.startRotation(arn);
      fake.putSecretValue({
        SecretId: arn,
        ClientRequestToken: token,
        SecretString: V2,
        VersionStages: [AWSPENDING],
      });
      // act
      thrown(() =>
        fake.putSecretValue({ SecretId: arn, ClientRequestToken: token, SecretString: V3 }),
      );
      // assess
      expect(fake.allStoredValues().sort()).toEqual([V1, V2, V3].sort());
    });

    it('reports labels, values and versions by stage', () => {
      // prepare
      const token = completeRotation(fake, arn, V2);
      // act
      const labels = fake.labels(NAME);
      // assess
      expect(labels).toEqual({ [v1]: [AWSPREVIOUS], [token]: [AWSPENDING, AWSCURRENT] });
      expect(fake.valueOf(NAME, AWSCURRENT)).toBe(V2);
      expect(fake.valueOf(NAME, AWSPREVIOUS)).toBe(V1);
      expect(fake.versionOf(NAME, AWSPREVIOUS)).toBe(v1);
    });
  });
});

describe('FakeSecretsManager behind aws-sdk-client-mock', () => {
  let fake: FakeSecretsManager;
  let stub: SecretsManagerStub;
  let arn: string;

  beforeEach(() => {
    fake = new FakeSecretsManager();
    stub = mockSecretsManager(fake);
    arn = fake.createSecret({ name: NAME, secretString: V1 });
  });

  afterEach(() => {
    stub.restore();
  });

  it('gives a real SecretsManagerClient the fake answer', async () => {
    // prepare
    const client = new SecretsManagerClient({ region: 'us-east-1' });
    // act
    const out = await client.send(new GetSecretValueCommand({ SecretId: NAME }));
    // assess
    expect(out.SecretString).toBe(V1);
    expect(out.ARN).toBe(arn);
    expect(fake.calls).toEqual([{ command: 'GetSecretValue', input: { SecretId: NAME } }]);
  });

  it('rejects the send promise with the SDK exception class', async () => {
    // prepare
    const client = new SecretsManagerClient({ region: 'us-east-1' });
    const token = fake.startRotation(arn);
    // act
    const sent = client.send(new GetSecretValueCommand({ SecretId: arn, VersionId: token }));
    // assess
    expect(sent).toBeInstanceOf(Promise);
    await expect(sent).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it('changes the fake state through commands sent by the client', async () => {
    // prepare
    const client = new SecretsManagerClient({ region: 'us-east-1' });
    // act
    await client.send(new PutSecretValueCommand({ SecretId: arn, SecretString: V2 }));
    // assess
    expect(fake.valueOf(arn, AWSCURRENT)).toBe(V2);
    expect(fake.valueOf(arn, AWSPREVIOUS)).toBe(V1);
  });
});

/** A protocol-following rotation function with no protected service, over the real SDK. */
function referenceRotation(client: SecretsManagerClient) {
  return async (event: RotationEvent): Promise<void> => {
    const { SecretId: arn, ClientRequestToken: token, RotationToken } = event;
    const described = await client.send(new DescribeSecretCommand({ SecretId: arn }));
    if (described.RotationEnabled === false) throw new Error('not enabled for rotation');
    const stages = described.VersionIdsToStages?.[token];
    if (!stages) throw new Error('token is not a version of the secret');
    if (stages.includes(AWSCURRENT)) return;
    if (!stages.includes(AWSPENDING)) throw new Error('token is not AWSPENDING');
    switch (event.Step) {
      case 'createSecret': {
        const current = await client.send(new GetSecretValueCommand({ SecretId: arn }));
        try {
          await client.send(
            new GetSecretValueCommand({
              SecretId: arn,
              VersionId: token,
              VersionStage: AWSPENDING,
            }),
          );
          return;
        } catch (error) {
          if (!(error instanceof ResourceNotFoundException)) throw error;
        }
        const { RandomPassword } = await client.send(
          new GetRandomPasswordCommand({ ExcludeCharacters: ':/@"\'\\' }),
        );
        const value = { ...JSON.parse(current.SecretString as string), password: RandomPassword };
        await client.send(
          new PutSecretValueCommand({
            SecretId: arn,
            ClientRequestToken: token,
            SecretString: JSON.stringify(value),
            VersionStages: [AWSPENDING],
            RotationToken,
          }),
        );
        return;
      }
      case 'setSecret':
        return;
      case 'testSecret':
        await client.send(
          new GetSecretValueCommand({ SecretId: arn, VersionId: token, VersionStage: AWSPENDING }),
        );
        return;
      case 'finishSecret': {
        const holder = Object.entries(described.VersionIdsToStages ?? {}).find(([, s]) =>
          s.includes(AWSCURRENT),
        )?.[0];
        await client.send(
          new UpdateSecretVersionStageCommand({
            SecretId: arn,
            VersionStage: AWSCURRENT,
            MoveToVersionId: token,
            RemoveFromVersionId: holder,
          }),
        );
        return;
      }
    }
  };
}

describe('FakeSecretsManager over HTTP with the real SDK', () => {
  const fake = new FakeSecretsManager();
  let server: FakeSecretsManagerServer;
  let client: SecretsManagerClient;
  let arn: string;

  beforeAll(async () => {
    server = await startFakeSecretsManagerServer(fake);
    client = new SecretsManagerClient({
      endpoint: server.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
      maxAttempts: 1,
    });
  });

  afterAll(async () => {
    client.destroy();
    await server.close();
  });

  beforeEach(() => {
    fake.reset();
    arn = fake.createSecret({ name: NAME, secretString: V1 });
  });

  it('answers values, stages and dates as the SDK expects them', async () => {
    // prepare
    const binary = fake.createSecret({ name: 'bin', secretBinary: new Uint8Array([0, 1, 254]) });
    // act
    const out = await client.send(new GetSecretValueCommand({ SecretId: NAME }));
    const bin = await client.send(new GetSecretValueCommand({ SecretId: binary }));
    const described = await client.send(new DescribeSecretCommand({ SecretId: arn }));
    // assess
    expect(out).toMatchObject({
      ARN: arn,
      Name: NAME,
      SecretString: V1,
      VersionStages: [AWSCURRENT],
    });
    expect(out.CreatedDate).toBeInstanceOf(Date);
    expect(Math.abs((out.CreatedDate as Date).getTime() - Date.now())).toBeLessThan(60_000);
    expect([...(bin.SecretBinary as Uint8Array)]).toEqual([0, 1, 254]);
    expect(described.VersionIdsToStages).toEqual(fake.labels(arn));
    expect(described.RotationEnabled).toBe(true);
  });

  it('raises ResourceNotFoundException in the client', async () => {
    // prepare
    const token = fake.startRotation(arn);
    // act
    const sent = client.send(new GetSecretValueCommand({ SecretId: arn, VersionId: token }));
    // assess
    await expect(sent).rejects.toBeInstanceOf(ResourceNotFoundException);
    await expect(sent).rejects.toThrow(
      `can't find the specified secret value for VersionId: ${token}`,
    );
  });

  it('raises InvalidRequestException in the client', async () => {
    // prepare
    fake.deleteSecret({ SecretId: arn });
    // act
    const sent = client.send(new GetSecretValueCommand({ SecretId: arn }));
    // assess
    await expect(sent).rejects.toBeInstanceOf(InvalidRequestException);
  });

  it('raises InvalidParameterException in the client', async () => {
    // prepare
    const token = fake.startRotation(arn);
    // act
    const sent = client.send(
      new UpdateSecretVersionStageCommand({
        SecretId: arn,
        VersionStage: AWSCURRENT,
        MoveToVersionId: token,
      }),
    );
    // assess
    await expect(sent).rejects.toBeInstanceOf(InvalidParameterException);
    expect(fake.versionOf(arn, AWSCURRENT)).not.toBe(token);
  });

  it('raises ResourceExistsException in the client', async () => {
    // prepare
    const token = fake.startRotation(arn);
    fake.putSecretValue({
      SecretId: arn,
      ClientRequestToken: token,
      SecretString: V2,
      VersionStages: [AWSPENDING],
    });
    // act
    const sent = client.send(
      new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: token, SecretString: V3 }),
    );
    // assess
    await expect(sent).rejects.toBeInstanceOf(ResourceExistsException);
  });

  it('raises ValidationException in the client as a SecretsManagerServiceException', async () => {
    // prepare
    const big = 'x'.repeat(65_537);
    // act
    const sent = client.send(new PutSecretValueCommand({ SecretId: arn, SecretString: big }));
    // assess
    await expect(sent).rejects.toBeInstanceOf(SecretsManagerServiceException);
    await expect(sent).rejects.toMatchObject({ name: 'ValidationException' });
  });

  it('raises an injected InternalServiceError in the client', async () => {
    // prepare
    fake.failNext(
      'DescribeSecret',
      new InternalServiceError({ message: 'internal', $metadata: { httpStatusCode: 500 } }),
    );
    // act
    const sent = client.send(new DescribeSecretCommand({ SecretId: arn }));
    // assess
    await expect(sent).rejects.toBeInstanceOf(InternalServiceError);
  });

  it('drops the connection for an injected network error', async () => {
    // prepare
    fake.failNext('DescribeSecret', Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
    // act
    const outcome = await client.send(new DescribeSecretCommand({ SecretId: arn })).then(
      () => 'answered',
      (error: unknown) => error,
    );
    // assess
    expect(outcome).toBeInstanceOf(Error);
    expect(outcome).not.toBeInstanceOf(SecretsManagerServiceException);
    expect(fake.commandNames()).toEqual(['DescribeSecret']);
  });

  it('lets the SDK retry an injected ThrottlingException', async () => {
    // prepare
    const retrying = new SecretsManagerClient({
      endpoint: server.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
      maxAttempts: 3,
    });
    fake.failNext('GetSecretValue', serviceError('ThrottlingException', 'Rate exceeded'));
    // act
    const out = await retrying.send(new GetSecretValueCommand({ SecretId: arn }));
    retrying.destroy();
    // assess
    expect(out.SecretString).toBe(V1);
    expect(fake.commandNames()).toEqual(['GetSecretValue', 'GetSecretValue']);
  });

  it('carries a full rotation through the expected call sequence', async () => {
    // prepare
    const invoke = referenceRotation(client);
    // act
    const result = await rotate({ fake, secretId: arn, invoke });
    // assess
    expect(result).toEqual({ token: result.token, completed: true, stepsRun: [...STEPS] });
    expect(fake.commandNames()).toEqual([
      'DescribeSecret',
      'GetSecretValue',
      'GetSecretValue',
      'GetRandomPassword',
      'PutSecretValue',
      'DescribeSecret',
      'DescribeSecret',
      'GetSecretValue',
      'DescribeSecret',
      'UpdateSecretVersionStage',
    ]);
    expect(fake.putRotationTokens).toEqual([fake.rotationTokenFor(arn, result.token)]);
    expect(fake.labels(arn)).toEqual({
      [fake.versionOf(arn, AWSPREVIOUS) as string]: [AWSPREVIOUS],
      [result.token]: [AWSPENDING, AWSCURRENT],
    });
    expect(JSON.parse(fake.valueOf(arn, AWSCURRENT) as string).password).toBe(
      fake.generatedPasswords[0],
    );
  });
});

describe('rotation driver', () => {
  let fake: FakeSecretsManager;
  let arn: string;
  let events: RotationEvent[];

  beforeEach(() => {
    fake = new FakeSecretsManager();
    arn = fake.createSecret({ name: NAME, secretString: V1 });
    events = [];
  });

  it('invokes the four steps in order with the ARN, the token and the RotationToken', async () => {
    // prepare
    const invoke = async (event: RotationEvent) => {
      events.push(event);
    };
    // act
    const result = await rotate({ fake, secretId: NAME, invoke, token: 'tok-1' });
    // assess
    expect(result).toEqual({ token: 'tok-1', completed: true, stepsRun: [...STEPS] });
    expect(events.map((e) => e.Step)).toEqual([...STEPS]);
    for (const event of events) {
      expect(event).toEqual({
        Step: event.Step,
        SecretId: arn,
        ClientRequestToken: 'tok-1',
        RotationToken: fake.rotationTokenFor(arn, 'tok-1'),
      });
    }
  });

  it('stops at the first failing step and reports it', async () => {
    // prepare
    const boom = new Error('boom');
    const invoke = async (event: RotationEvent) => {
      events.push(event);
      if (event.Step === 'setSecret') throw boom;
    };
    // act
    const result = await rotate({ fake, secretId: arn, invoke });
    // assess
    expect(result).toEqual({
      token: result.token,
      completed: false,
      failedStep: 'setSecret',
      error: boom,
      stepsRun: ['createSecret', 'setSecret'],
    });
    expect(fake.versionOf(arn, AWSPENDING)).toBe(result.token);
  });

  it('retries from createSecret with the same token, without a new RotateSecret', async () => {
    // prepare
    let fail = true;
    const invoke = async (event: RotationEvent) => {
      events.push(event);
      if (event.Step === 'testSecret' && fail) throw new Error('not yet');
    };
    const first = await rotate({ fake, secretId: arn, invoke });
    fail = false;
    // act
    const second = await retry({ fake, secretId: arn, invoke, token: first.token });
    // assess
    expect(first.failedStep).toBe('testSecret');
    expect(second).toEqual({ token: first.token, completed: true, stepsRun: [...STEPS] });
    expect(events.map((e) => e.Step)).toEqual([
      'createSecret',
      'setSecret',
      'testSecret',
      ...STEPS,
    ]);
    expect(new Set(events.map((e) => e.RotationToken)).size).toBe(1);
  });

  it('stops after the step named by stopAfter', async () => {
    // prepare
    const invoke = async (event: RotationEvent) => {
      events.push(event);
    };
    // act
    const result = await rotate({ fake, secretId: arn, invoke, stopAfter: 'createSecret' });
    // assess
    expect(result).toEqual({ token: result.token, completed: false, stepsRun: ['createSecret'] });
    expect(events).toHaveLength(1);
  });

  it('leaves RotationToken out of the events when asked to', async () => {
    // prepare
    const invoke = async (event: RotationEvent) => {
      events.push(event);
    };
    // act
    await rotate({
      fake,
      secretId: arn,
      invoke,
      withoutRotationToken: true,
      stopAfter: 'setSecret',
    });
    // assess
    expect(events).toHaveLength(2);
    for (const event of events) expect('RotationToken' in event).toBe(false);
  });
});
