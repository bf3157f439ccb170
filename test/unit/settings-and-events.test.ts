/**
 * The password policy from the environment, the rotation event, the step metrics through
 * Powertools, and sign-in retries: each by what a user of the function sees.
 */
import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it, vi } from 'vitest';
import {
  AuthenticationError,
  ConfigurationError,
  HostUnreachableError,
  InvalidEventError,
  TooManyConnectionsError,
} from '../../shared/common/errors.js';
import type { Database, Login } from '../../shared/databases/types.js';
import { parseRotationEvent } from '../../shared/rotation/event.js';
import { powertoolsStepMetrics } from '../../shared/rotation/metrics.js';
import { passwordPolicyFromEnv } from '../../shared/rotation/password-policy.js';
import { connectWithRetry, trySignIn, withConnection } from '../../shared/strategies/sign-in.js';
import { LogRecorder } from '../support/log-recorder.js';

describe('password policy from the environment', () => {
  it('defaults to 32 characters of every type, excluding the characters that break connection strings', () => {
    expect(passwordPolicyFromEnv({})).toEqual({
      PasswordLength: 32,
      ExcludeCharacters: ':/@"\'\\',
      ExcludeNumbers: false,
      ExcludePunctuation: false,
      ExcludeUppercase: false,
      ExcludeLowercase: false,
      RequireEachIncludedType: true,
    });
  });

  it('reads blank values as unset, and booleans in any case with spaces', () => {
    expect(
      passwordPolicyFromEnv({
        PASSWORD_LENGTH: '  ',
        EXCLUDE_NUMBERS: ' TRUE ',
        EXCLUDE_UPPERCASE: '  ',
        REQUIRE_EACH_INCLUDED_TYPE: 'False',
      }),
    ).toMatchObject({
      PasswordLength: 32,
      ExcludeNumbers: true,
      ExcludeUppercase: false,
      RequireEachIncludedType: false,
    });
  });

  it('leaves ExcludeCharacters out when EXCLUDE_CHARACTERS is set to the empty string (exclude nothing)', () => {
    expect('ExcludeCharacters' in passwordPolicyFromEnv({ EXCLUDE_CHARACTERS: '' })).toBe(false);
  });

  it.each(['1', '4096', ' 64 '])('accepts PASSWORD_LENGTH %j', (length) => {
    expect(passwordPolicyFromEnv({ PASSWORD_LENGTH: length }).PasswordLength).toBe(Number(length));
  });

  it.each(['0', '4097', '-5', '12.5', 'abc'])('refuses PASSWORD_LENGTH %j', (length) => {
    expect(() => passwordPolicyFromEnv({ PASSWORD_LENGTH: length })).toThrow(/PASSWORD_LENGTH/);
  });

  it.each([
    'EXCLUDE_NUMBERS',
    'EXCLUDE_PUNCTUATION',
    'EXCLUDE_UPPERCASE',
    'EXCLUDE_LOWERCASE',
    'REQUIRE_EACH_INCLUDED_TYPE',
  ])('reads %s, and refuses a value that is not true or false, naming it', (name) => {
    const key = name
      .toLowerCase()
      .replace(/(^|_)([a-z])/g, (_, __, c: string) => c.toUpperCase()) as keyof ReturnType<
      typeof passwordPolicyFromEnv
    >;
    const fallback = passwordPolicyFromEnv({})[key];
    expect(passwordPolicyFromEnv({ [name]: fallback ? 'false' : 'true' })[key]).toBe(!fallback);
    expect(() => passwordPolicyFromEnv({ [name]: 'yes' })).toThrow(ConfigurationError);
    expect(() => passwordPolicyFromEnv({ [name]: 'yes' })).toThrow(name);
  });

  it.each([
    ['EXCLUDE_NUMBERS'],
    ['EXCLUDE_PUNCTUATION'],
    ['EXCLUDE_UPPERCASE'],
    ['EXCLUDE_LOWERCASE'],
  ])('accepts excluding three of the four types (all but %s)', (kept) => {
    const env = Object.fromEntries(
      ['EXCLUDE_NUMBERS', 'EXCLUDE_PUNCTUATION', 'EXCLUDE_UPPERCASE', 'EXCLUDE_LOWERCASE'].map(
        (name) => [name, name === kept ? 'false' : 'true'],
      ),
    );
    expect(() => passwordPolicyFromEnv(env)).not.toThrow();
  });
});

describe('rotation event', () => {
  const valid = { Step: 'setSecret', SecretId: 'arn:s', ClientRequestToken: 't'.repeat(32) };
  const refuse = (event: unknown) => () => parseRotationEvent(event);

  it('keeps the fields of a valid event, RotationToken when present', () => {
    expect(parseRotationEvent({ ...valid, Extra: 1 })).toEqual(valid);
    expect(parseRotationEvent({ ...valid, RotationToken: 'r' })).toEqual({
      ...valid,
      RotationToken: 'r',
    });
  });

  it.each([
    ['an array', [valid], /must be an object, got an array/],
    [
      'a 65-character token',
      { ...valid, ClientRequestToken: 't'.repeat(65) },
      /ClientRequestToken must be 32 to 64/,
    ],
    [
      'a 2049-character SecretId',
      { ...valid, SecretId: 's'.repeat(2049) },
      /SecretId must be 1 to 2048/,
    ],
    ['an empty RotationToken', { ...valid, RotationToken: '' }, /RotationToken must be 1 to 4096/],
    ['a Step of 65 characters', { ...valid, Step: 's'.repeat(65) }, /Step must be 1 to 64/],
  ])('refuses %s, naming the field', (_, event, message) => {
    expect(refuse(event)).toThrow(InvalidEventError);
    expect(refuse(event)).toThrow(message);
  });

  it('accepts the limits themselves', () => {
    expect(() =>
      parseRotationEvent({
        ...valid,
        SecretId: 's'.repeat(2048),
        ClientRequestToken: 't'.repeat(64),
        RotationToken: 'r'.repeat(4096),
      }),
    ).not.toThrow();
  });
});

describe('step metrics through Powertools', () => {
  it('publishes StepDuration and StepOutcome with the step and outcome as dimensions, and the error name', () => {
    const lines: string[] = [];
    const metrics = new Metrics({ namespace: 'SecretsRotation', serviceName: 'test' });
    const publish = metrics.publishStoredMetrics.bind(metrics);
    const quiet = vi.spyOn(console, 'log').mockImplementation(() => {});
    metrics.publishStoredMetrics = () => {
      lines.push(JSON.stringify(metrics.serializeMetrics()));
      return publish();
    };
    try {
      const step = powertoolsStepMetrics(metrics);
      step.record('setSecret', 'failure', 123, 'AuthenticationError');
      step.record('testSecret', 'success', 45);
    } finally {
      quiet.mockRestore();
    }
    const emitted = lines.map((line) => JSON.parse(line));
    expect(emitted).toHaveLength(2);
    expect(emitted[0]).toMatchObject({
      step: 'setSecret',
      outcome: 'failure',
      StepDuration: 123,
      StepOutcome: 1,
      error: 'AuthenticationError',
    });
    expect(emitted[0]._aws.CloudWatchMetrics[0].Metrics).toEqual([
      { Name: 'StepDuration', Unit: 'Milliseconds' },
      { Name: 'StepOutcome', Unit: 'Count' },
    ]);
    expect(emitted[1]).toMatchObject({ step: 'testSecret', outcome: 'success', StepDuration: 45 });
    expect(emitted[1].error).toBeUndefined();
  });
});

describe('sign-in', () => {
  const login: Login = {
    host: 'h',
    port: 1,
    user: 'u',
    password: 'p',
    database: 'd',
    tls: 'verify',
  };
  function database(failures: Error[]) {
    const opened: number[] = [];
    const closed: number[] = [];
    const options: unknown[] = [];
    const db = {
      async connect(_: Login, connectOptions: unknown) {
        options.push(connectOptions);
        const failure = failures.shift();
        if (failure) throw failure;
        opened.push(opened.length + 1);
        return opened.length;
      },
      async close(connection: number) {
        closed.push(connection);
      },
    } as unknown as Database<number>;
    return { db, opened, closed, options };
  }
  const tooMany = () => new TooManyConnectionsError('too many connections');
  const step = (remaining: number) => ({ logger: new LogRecorder(), remainingMs: () => remaining });

  it('retries "too many connections" while time is left, then connects', async () => {
    const { db, opened } = database([tooMany(), tooMany()]);
    expect(await connectWithRetry(db, login, step(30_000))).toBe(1);
    expect(opened).toEqual([1]);
  });

  it('gives up on "too many connections" when less than a second would be left', async () => {
    const { db } = database([tooMany()]);
    await expect(connectWithRetry(db, login, step(900))).rejects.toBeInstanceOf(
      TooManyConnectionsError,
    );
  });

  it('bounds each attempt by the time left: at least 1 s, at most 10 s', async () => {
    const long = database([]);
    await connectWithRetry(long.db, login, step(60_000));
    const short = database([]);
    await connectWithRetry(short.db, login, step(200));
    const medium = database([]);
    await connectWithRetry(medium.db, login, step(4_000));
    const timeouts = [long, short, medium].map(
      ({ options }) => (options[0] as { timeoutMs: number }).timeoutMs,
    );
    expect(timeouts).toEqual([10_000, 1_000, 4_000]);
    const deadline = (long.options[0] as { deadline: number }).deadline - Date.now();
    expect(deadline).toBeGreaterThan(59_000);
    expect(deadline).toBeLessThanOrEqual(60_000);
  });

  it('never retries another failure', async () => {
    const { db, options } = database([new HostUnreachableError('no route')]);
    await expect(connectWithRetry(db, login, step(30_000))).rejects.toBeInstanceOf(
      HostUnreachableError,
    );
    expect(options).toHaveLength(1);
  });

  it('trySignIn answers undefined only for refused credentials', async () => {
    expect(await trySignIn(database([new AuthenticationError('no')]).db, login, step(30_000))).toBe(
      undefined,
    );
    await expect(
      trySignIn(database([new HostUnreachableError('x')]).db, login, step(30_000)),
    ).rejects.toBeInstanceOf(HostUnreachableError);
  });

  it('withConnection closes the connection whether the work succeeds or fails', async () => {
    const { db, closed } = database([]);
    expect(await withConnection(db, login, step(30_000), async () => 'done')).toBe('done');
    await expect(
      withConnection(db, login, step(30_000), async () => {
        throw new Error('work failed');
      }),
    ).rejects.toThrow('work failed');
    expect(closed).toEqual([1, 2]);
  });
});
