/**
 * Edges of the API-key strategy that mutation testing found unpinned (issue 14, second pass),
 * driven through the strategy's hooks with a hand-built step and a provider stub: ARN wildcards,
 * the exact ends of the propagation wait, which stage and managing secret an error names, an
 * over-long provider field, and every key left live after failed revocations.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AuthenticationError, type InvalidSecretError } from '../../shared/common/errors.js';
import { stringField } from '../../shared/common/fields.js';
import type { KeyProvider, KeySummary } from '../../shared/providers/types.js';
import type { StepContext } from '../../shared/rotation/types.js';
import {
  type ApiKeySecret,
  type ApiKeysOptions,
  apiKeys,
  arnMatches,
  parseApiKeySecret,
} from '../../shared/strategies/api-keys.js';
import { ownPrefix } from '../support/api-key-fixtures.js';
import { LogRecorder } from '../support/log-recorder.js';

afterEach(() => {
  vi.restoreAllMocks();
});

type Spec = Record<string, never>;
type Admin = { key: string };
type Secret = ApiKeySecret<Spec>;

const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/mailer-AbCdEf';
const ADMIN_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/admin-XyZ123';

/** A provider whose keys cannot manage keys (like Twilio's): it needs a managing secret. */
const stubProvider = (overrides: Partial<KeyProvider<Spec, Admin>> = {}) => {
  const revoked: string[] = [];
  const provider: KeyProvider<Spec, Admin> = {
    id: 'stub',
    name: 'Stub',
    maxNameLength: 100,
    parseSpec: () => ({}),
    differentTarget: () => undefined,
    parseAdmin: (raw, source) => ({ key: stringField(raw, 'key', source) }),
    secretsOfAdmin: (admin) => [admin.key],
    mint: async (_admin, { name }) => ({ id: 'minted-1', name, key: 'minted-key-1' }),
    verify: async () => 'ok',
    list: async () => [],
    revoke: async (_admin, id) => {
      revoked.push(id);
      return 'revoked';
    },
    ...overrides,
  };
  return { provider, revoked };
};

const secretText = (keyId: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ provider: 'stub', key: `key-of-${keyId}`, key_id: keyId, ...extra });

/** A step as the protocol would hand it, with the stored versions given. */
function stepWith(
  provider: KeyProvider<Spec, Admin>,
  versions: { current: string; pending?: string; previous?: string; admin?: string },
  remainingMs = () => 60_000,
): StepContext<Secret> {
  const parse = (text: string) => parseApiKeySecret(text, 'stage', provider);
  return {
    step: 'testSecret',
    secretId: SECRET_ARN,
    secretName: 'team-a/mailer',
    token: 'token-00000000000000000000000000000001',
    logger: new LogRecorder(),
    current: async () => parse(versions.current),
    pending: async () => parse(versions.pending ?? versions.current),
    previous: async () => (versions.previous ? parse(versions.previous) : undefined),
    otherSecret: async (id) => ({
      id,
      secretString: versions.admin ?? '{}',
      tags: async () => ({}),
    }),
    generatePassword: async () => 'unused',
    redact: () => {},
    remainingMs,
    degraded: () => {},
  };
}
const failureOf = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error as InvalidSecretError,
  );

describe('ARN patterns of allowedsecrets', () => {
  it('lets "*" match an empty run in the middle of a pattern', () => {
    expect(
      arnMatches(
        'arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/*mailer-??????',
        SECRET_ARN,
      ),
    ).toBe(true);
    expect(arnMatches('arn:aws:*secretsmanager:*:123456789012:secret:team-a/*', SECRET_ARN)).toBe(
      true,
    );
  });

  it('lets "?" match exactly one character, never none or two', () => {
    const base = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/mailer-';
    expect(arnMatches(`${base}??????`, SECRET_ARN)).toBe(true);
    expect(arnMatches(`${base}?????`, SECRET_ARN)).toBe(false);
    expect(arnMatches(`${base}???????`, SECRET_ARN)).toBe(false);
  });
});

describe('the propagation wait, at its exact ends', () => {
  /** verify refuses `refusals` times, then accepts; the clock moves only while sleeping. */
  function waiting(refusals: number, options: ApiKeysOptions) {
    let clock = 1_000_000;
    vi.spyOn(Date, 'now').mockImplementation(() => clock);
    // Math.random() = 1: each delay is exactly 250 ms × 2^(attempt-1).
    vi.spyOn(Math, 'random').mockReturnValue(1);
    const attempts: number[] = [];
    const { provider } = stubProvider({
      verify: async () => {
        attempts.push(clock);
        if (attempts.length <= refusals) throw new AuthenticationError('key not accepted yet');
        return 'ok';
      },
    });
    const strategy = apiKeys(provider, {
      ...options,
      sleep: async (ms) => {
        clock += ms;
      },
    });
    return { strategy, provider, attempts };
  }

  it('still retries when the next delay ends exactly at KEY_PROPAGATION_TIMEOUT', async () => {
    // Attempts at 0 and 250 ms are refused; the third, at 750 ms = the timeout, is accepted.
    const { strategy, provider, attempts } = waiting(2, { propagationTimeoutMs: 750 });
    await strategy.testPending(stepWith(provider, { current: secretText('k1') }));
    expect(attempts.map((at) => at - 1_000_000)).toEqual([0, 250, 750]);
  });

  it('gives up, naming KEY_PROPAGATION_TIMEOUT_SECONDS, when the next delay would end a millisecond past it', async () => {
    const { strategy, provider, attempts } = waiting(2, { propagationTimeoutMs: 749 });
    const thrown = await failureOf(
      strategy.testPending(stepWith(provider, { current: secretText('k1') })),
    );
    expect(thrown).toBeInstanceOf(AuthenticationError);
    expect(thrown?.message).toContain('KEY_PROPAGATION_TIMEOUT_SECONDS');
    expect(attempts).toHaveLength(2);
  });

  it('still retries when the time left holds the delay plus 2 s exactly', async () => {
    const { strategy, provider, attempts } = waiting(1, { propagationTimeoutMs: 60_000 });
    await strategy.testPending(stepWith(provider, { current: secretText('k1') }, () => 2_250));
    expect(attempts).toHaveLength(2);
  });

  it('gives up before the Lambda deadline when the time left is a millisecond short of that', async () => {
    const { strategy, provider, attempts } = waiting(1, { propagationTimeoutMs: 60_000 });
    const thrown = await failureOf(
      strategy.testPending(stepWith(provider, { current: secretText('k1') }, () => 2_249)),
    );
    expect(thrown?.message).toContain('the time left before the Lambda deadline');
    expect(attempts).toHaveLength(1);
  });
});

describe('what an error names', () => {
  it('refuses a "provider" over 64 characters naming the field, without echoing the value', () => {
    const long = `stub${'x'.repeat(496)}`;
    let thrown: InvalidSecretError | undefined;
    try {
      parseApiKeySecret(
        secretText('k1', { provider: long }),
        'AWSCURRENT',
        stubProvider().provider,
      );
    } catch (error) {
      thrown = error as InvalidSecretError;
    }
    expect(thrown?.field).toBe('provider');
    expect(thrown?.message).not.toContain(long);
  });

  it('names the managing secret it refuses', async () => {
    const { provider } = stubProvider();
    const step = stepWith(provider, {
      current: secretText('k1', { adminarn: ADMIN_ARN }),
      admin: JSON.stringify({ key: 'admin-key-1' }),
    });
    const thrown = await failureOf(apiKeys(provider).createPending(step));
    expect(thrown?.field).toBe('adminarn');
    expect(thrown?.message).toContain(`managing secret ${ADMIN_ARN}`);
  });

  it.each([
    ['createSecret', 'AWSCURRENT'],
    ['setSecret', 'AWSCURRENT'],
    ['finishSecret', 'AWSPENDING'],
  ] as const)('in %s, names the stage whose adminarn is missing (%s)', async (stepName, stage) => {
    const { provider, revoked } = stubProvider({
      list: async (): Promise<KeySummary[]> => [],
    });
    const strategy = apiKeys(provider);
    const step = stepWith(provider, {
      current: secretText('k1'),
      pending: secretText('k2'),
      previous: secretText('k0'),
    });
    const hook =
      stepName === 'createSecret'
        ? strategy.createPending(step)
        : stepName === 'setSecret'
          ? strategy.setPending(step)
          : (strategy.afterFinish?.(step) ?? Promise.resolve());
    const thrown = await failureOf(hook);
    expect(thrown?.field).toBe('adminarn');
    expect(thrown?.message.startsWith(`${stage}: field "adminarn" is missing`)).toBe(true);
    expect(revoked).toEqual([]);
  });

  it('lists every superseded key it failed to revoke, so each can be revoked by hand', async () => {
    // Both superseded keys (AWSPREVIOUS, and AWSCURRENT in "immediately" mode) are ours.
    const ours = ownPrefix(SECRET_ARN);
    const { provider } = stubProvider({
      list: async () => [
        { id: 'k0', name: `${ours}older` },
        { id: 'k1', name: `${ours}old` },
      ],
      revoke: async () => {
        throw new Error('provider unavailable');
      },
    });
    const strategy = apiKeys(provider, { revokeDemotedKey: 'immediately' });
    const step = stepWith(provider, {
      current: secretText('k1', { adminarn: ADMIN_ARN }),
      pending: secretText('k2', { adminarn: ADMIN_ARN }),
      previous: secretText('k0', { adminarn: ADMIN_ARN }),
      admin: JSON.stringify({ key: 'admin-key-1', allowedsecrets: [SECRET_ARN] }),
    });

    const thrown = await failureOf(strategy.afterFinish?.(step) ?? Promise.resolve());

    expect(thrown?.message).toContain('revoking the superseded key k0, k1 failed');
  });
});

describe('the revocation log lines', () => {
  it('say which version each revoked key was', async () => {
    const ours = ownPrefix(SECRET_ARN);
    const { provider, revoked } = stubProvider({
      list: async () => [
        { id: 'k0', name: `${ours}older` },
        { id: 'k1', name: `${ours}old` },
      ],
    });
    const step = stepWith(provider, {
      current: secretText('k1', { adminarn: ADMIN_ARN }),
      pending: secretText('k2', { adminarn: ADMIN_ARN }),
      previous: secretText('k0', { adminarn: ADMIN_ARN }),
      admin: JSON.stringify({ key: 'admin-key-1', allowedsecrets: [SECRET_ARN] }),
    });

    await apiKeys(provider, { revokeDemotedKey: 'immediately' }).afterFinish?.(step);

    expect(revoked).toEqual(['k0', 'k1']);
    expect(
      (step.logger as LogRecorder).lines
        .filter((line) => line.message === 'revoked the superseded key')
        .map((line) => [line.attributes.keyId, line.attributes.was]),
    ).toEqual([
      ['k0', 'AWSPREVIOUS before this rotation'],
      ['k1', 'AWSCURRENT before this rotation'],
    ]);
  });
});
