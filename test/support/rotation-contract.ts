/**
 * What every database target must do, whatever the server: one suite per strategy, run by each
 * database's integration file against its real server. A new database joins by calling these
 * with its {@link ContractTarget}; what only one server has stays in that server's file.
 */
import { expect, it, vi } from 'vitest';
import { AuthenticationError, InvalidSecretError } from '../../shared/common/errors.js';
import type { RotationHandler } from '../../shared/rotation/handler.js';
import { ALL_PUNCTUATION, randomName } from './pg-admin.js';
import { STEPS } from './rotation-driver.js';
import type { RotationHarness } from './rotation-harness.js';

/** A stored secret value, as far as signing in goes. */
export interface StoredLogin {
  username: string;
  password: string;
  dbname?: unknown;
}

export interface ContractTarget {
  harness: RotationHarness;
  /** The handler as the function builds it (single user: without a password grace period). */
  handler(): RotationHandler;
  /**
   * A user on the server and a secret naming it (alternating users: with the master secret, or
   * `masterarn`). `secretPassword` stores another password than the user's.
   */
  provision(options?: {
    name?: string;
    password?: string;
    secretPassword?: string;
    masterarn?: string;
  }): Promise<{ name: string; password: string; secretId: string }>;
  /** The working master secret (alternating users). */
  masterArn?(): string;
  signsIn(login: StoredLogin): Promise<boolean>;
  /** Every user (account) on the server whose name starts with `name`, sorted. */
  usersLike(name: string): Promise<string[]>;
  /** Sessions of these users left open; absent where the server cannot tell. */
  sessionsOf?(names: string[]): Promise<number>;
  /** User names that need quoting or escaping on this server. */
  namesNeedingQuoting: string[];
}

/** Single user: one user, its password changed in place. */
export function singleUserContract(target: ContractTarget): void {
  const { harness } = target;

  it('rotates three times in a row, each new password signing in and the one before refused', async () => {
    // Prepare
    const { name, password, secretId } = await target.provision();
    const rotate = target.handler();
    let previous = password;

    for (let round = 1; round <= 3; round++) {
      // Act
      const result = await harness.rotate(rotate, secretId);

      // Assess
      expect(result.completed, `round ${round}: ${String(result.error)}`).toBe(true);
      const current = harness.secret(secretId);
      expect(current.password).not.toBe(previous);
      expect(await target.signsIn(current)).toBe(true);
      expect(await target.signsIn({ ...current, password: previous })).toBe(false);
      expect(harness.fake.versionOf(secretId, 'AWSCURRENT')).toBe(result.token);
      expect(current.team, 'keys the function does not know are kept').toBe('payments');
      previous = current.password;
    }
    if (target.sessionsOf) expect(await target.sessionsOf([name])).toBe(0);
    expect(harness.leakedSecrets()).toEqual([]);
  });

  it('rotates users whose names need quoting, with passwords of every punctuation character', async () => {
    for (const name of target.namesNeedingQuoting) {
      // Prepare: AWSCURRENT holds every punctuation character; so will AWSPENDING.
      const { secretId } = await target.provision({ name, password: `Aa1${ALL_PUNCTUATION}` });
      const pending = `Zz9${ALL_PUNCTUATION}${ALL_PUNCTUATION}`;
      const spy = vi
        .spyOn(harness.fake, 'getRandomPassword')
        .mockReturnValue({ RandomPassword: pending });

      // Act
      const result = await harness.rotate(target.handler(), secretId);
      spy.mockRestore();

      // Assess
      expect(result.completed, `${name}: ${String(result.error)}`).toBe(true);
      const current = harness.secret(secretId);
      expect(current.password).toBe(pending);
      expect(await target.signsIn(current)).toBe(true);
      expect(await target.signsIn({ ...current, password: `Aa1${ALL_PUNCTUATION}` })).toBe(false);
    }
  });

  it('converges when a crash after setSecret is followed by a retry with the same token', async () => {
    // Prepare
    const { password, secretId } = await target.provision();
    const rotate = target.handler();

    // Act: the invocation after setSecret never happens (crash); the service retries later.
    const crashed = await harness.rotate(rotate, secretId, { stopAfter: 'setSecret' });
    const pending = harness.secret(secretId, 'AWSPENDING');
    const stateAfterCrash = {
      pending: await target.signsIn(pending),
      current: await target.signsIn({ ...pending, password }),
    };
    const retried = await harness.retry(rotate, secretId, crashed.token);

    // Assess
    expect(crashed.completed).toBe(false);
    expect(stateAfterCrash).toEqual({ pending: true, current: false });
    expect(retried.completed, String(retried.error)).toBe(true);
    expect(harness.secret(secretId).password).toBe(pending.password);
    expect(await target.signsIn(harness.secret(secretId))).toBe(true);
    expect(harness.logs.messages()).toContain('AWSPENDING already signs in; nothing to change');
  });
}

/** Alternating users: the user and its clone take turns; the master secret changes them. */
export function alternatingUsersContract(target: ContractTarget): void {
  const { harness } = target;

  it('rotates three times in a row, alternating between the user and its clone', async () => {
    // Prepare
    const { name, secretId } = await target.provision();
    const rotate = target.handler();
    const seen: string[] = [];

    for (let round = 1; round <= 3; round++) {
      const before = harness.secret(secretId);

      // Act
      const result = await harness.rotate(rotate, secretId);

      // Assess
      expect(result.completed, `round ${round}: ${String(result.error)}`).toBe(true);
      const current = harness.secret(secretId);
      seen.push(current.username);
      expect(await target.signsIn(current)).toBe(true);
      // The user that was AWSCURRENT before keeps its password: clients using it see no failure.
      expect(await target.signsIn(before)).toBe(true);
      expect(harness.secret(secretId, 'AWSPREVIOUS').username).toBe(before.username);
    }
    expect(seen).toEqual([`${name}_clone`, name, `${name}_clone`]);
    expect(await target.usersLike(name)).toEqual([name, `${name}_clone`]);
    if (target.sessionsOf) expect(await target.sessionsOf([name, `${name}_clone`])).toBe(0);
    expect(harness.leakedSecrets()).toEqual([]);
  });

  it('keeps AWSCURRENT signing in after every step of every rotation', async () => {
    // Prepare
    const { secretId } = await target.provision();
    const invoke = harness.invoker(target.handler());
    const checks: boolean[] = [];

    for (let round = 1; round <= 3; round++) {
      const token = harness.fake.startRotation(secretId);
      for (const step of STEPS) {
        // Act
        await invoke({
          Step: step,
          SecretId: harness.fake.arnOf(secretId),
          ClientRequestToken: token,
        });

        // Assess
        checks.push(await target.signsIn(harness.secret(secretId)));
      }
    }
    expect(checks).toEqual(Array(12).fill(true));
  });

  it('rotates users whose names need quoting', async () => {
    for (const name of target.namesNeedingQuoting) {
      // Prepare
      const { secretId } = await target.provision({ name });

      // Act
      const first = await harness.rotate(target.handler(), secretId);
      const second = await harness.rotate(target.handler(), secretId);

      // Assess
      expect(
        [first.completed, second.completed],
        `${name}: ${String(first.error ?? second.error)}`,
      ).toEqual([true, true]);
      expect(harness.secret(secretId).username).toBe(name);
      expect(await target.signsIn(harness.secret(secretId))).toBe(true);
      expect(await target.signsIn(harness.secret(secretId, 'AWSPREVIOUS'))).toBe(true);
    }
  });

  it('converges when a crash after setSecret is followed by a retry with the same token', async () => {
    // Prepare
    const { name, secretId } = await target.provision();
    const rotate = target.handler();

    // Act
    const crashed = await harness.rotate(rotate, secretId, { stopAfter: 'setSecret' });
    const retried = await harness.retry(rotate, secretId, crashed.token);

    // Assess
    expect(crashed.completed).toBe(false);
    expect(retried.completed, String(retried.error)).toBe(true);
    expect(harness.secret(secretId).username).toBe(`${name}_clone`);
    expect(await target.signsIn(harness.secret(secretId))).toBe(true);
    expect(await target.usersLike(name)).toEqual([name, `${name}_clone`]);
    expect(harness.logs.messages()).toContain('AWSPENDING already signs in; password unchanged');
  });

  it('refuses to act when AWSCURRENT does not sign in (confused deputy) and creates nothing', async () => {
    // Prepare: a secret whose AWSCURRENT password is wrong, pointing at a working master.
    const { name, secretId } = await target.provision({ secretPassword: 'not-the-password' });

    // Act
    const result = await harness.rotate(target.handler(), secretId);

    // Assess
    expect(result.failedStep).toBe('setSecret');
    expect(result.error).toBeInstanceOf(AuthenticationError);
    expect(String(result.error)).toContain('refusing to change users with the master secret');
    expect(await target.usersLike(name)).toEqual([name]);
    expect(harness.fake.versionOf(secretId)).not.toBe(result.token);
  });

  it('refuses a master secret for another host and changes nothing', async () => {
    // Prepare: the same server under another name is still "another host" to the guard.
    if (!target.masterArn) throw new Error('alternating users targets give masterArn');
    const master = JSON.parse(harness.fake.valueOf(target.masterArn()) as string);
    const { name, secretId } = await target.provision({
      masterarn: harness.fake.createSecret({
        name: `master/${randomName('other')}`,
        secretString: JSON.stringify({ ...master, host: 'localhost' }),
      }),
    });

    // Act
    const result = await harness.rotate(target.handler(), secretId);

    // Assess
    expect(result.failedStep).toBe('setSecret');
    expect(result.error).toBeInstanceOf(InvalidSecretError);
    expect(String(result.error)).toContain('refusing to act on another host');
    expect(await target.usersLike(name)).toEqual([name]);
  });

  it('stops with a clear error and creates nothing when masterarn is missing', async () => {
    // Prepare
    const { name, secretId } = await target.provision();
    const { masterarn: _, ...withoutMaster } = harness.secret(secretId);
    const broken = harness.fake.createSecret({
      name: `app/${randomName('broken')}`,
      secretString: JSON.stringify(withoutMaster),
    });

    // Act
    const result = await harness.rotate(target.handler(), broken);

    // Assess
    expect(result.failedStep).toBe('setSecret');
    expect(result.error).toBeInstanceOf(InvalidSecretError);
    expect(String(result.error)).toContain('field "masterarn" is missing');
    expect(await target.usersLike(name)).toEqual([name]);
  });
}
