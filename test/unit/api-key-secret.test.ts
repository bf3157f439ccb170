import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { ConfigurationError, InvalidSecretError } from '../../shared/common/errors.js';
import { createSendGrid } from '../../shared/providers/sendgrid.js';
import { createStripe } from '../../shared/providers/stripe.js';
import { createTwilio } from '../../shared/providers/twilio.js';
import type { KeyProvider } from '../../shared/providers/types.js';
import {
  apiKeySettings,
  apiKeys,
  arnMatches,
  parseApiKeySecret,
  requireAllowedSecret,
} from '../../shared/strategies/api-keys.js';

const sendGrid = createSendGrid();
const twilio = createTwilio();
const stripe = createStripe({ env: { STRIPE_API_VERSION: '2026-09-30.preview' } });
/** Any provider, for tables that mix them. */
const anyProvider = (provider: unknown) => provider as KeyProvider;

const ACCOUNT = `AC${'1'.repeat(32)}`;
const KEY = 'SG.secret-part-one.secret-part-two-that-must-not-leak';

/** The error `act` throws. */
function failure(act: () => unknown): Error {
  try {
    act();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a failure');
}

describe('API-key secret values', () => {
  it('parses a SendGrid secret and keeps every other field for serialisation', () => {
    // Act
    const secret = parseApiKeySecret(
      JSON.stringify({
        provider: 'SendGrid',
        key: KEY,
        key_id: 'abc-DEF_1',
        region: 'eu',
        team: 'x',
      }),
      'AWSCURRENT',
      sendGrid,
    );

    // Assess
    expect(secret).toMatchObject({
      provider: 'sendgrid',
      key: KEY,
      keyId: 'abc-DEF_1',
      spec: { region: 'eu' },
    });
    expect(secret.raw.team).toBe('x');
  });

  it.each([
    ['text that is not JSON', 'not json', 'SecretString', /^AWSCURRENT is not valid JSON$/],
    ['an array', '[]', 'SecretString', /must be a JSON object/],
    ['no provider', { key: KEY, key_id: 'a' }, 'provider', /field "provider" is missing/],
    [
      'another provider',
      { provider: 'stripe', key: KEY, key_id: 'a' },
      'provider',
      /field "provider" is "stripe"; this function rotates SendGrid keys \("sendgrid"\)/,
    ],
    ['no key', { provider: 'sendgrid', key_id: 'a' }, 'key', /field "key" is missing/],
    [
      'a numeric key',
      { provider: 'sendgrid', key: 42, key_id: 'a' },
      'key',
      /field "key" must be a string, got number/,
    ],
    [
      'a key id that could leave its URL path',
      { provider: 'sendgrid', key: KEY, key_id: '../scopes' },
      'key_id',
      /field "key_id" must be a key id of letters, digits, "_" and "-"/,
    ],
    [
      'an unknown region',
      { provider: 'sendgrid', key: KEY, key_id: 'a', region: 'https://evil.example' },
      'region',
      /field "region" must be "global" or "eu"/,
    ],
    [
      'scopes that are not a list',
      { provider: 'sendgrid', key: KEY, key_id: 'a', scopes: 'mail.send' },
      'scopes',
      /field "scopes" must be an array of non-empty strings/,
    ],
  ])('rejects %s, naming the field and never quoting the key', (_, value, field, message) => {
    // Act
    const error = failure(() =>
      parseApiKeySecret(
        typeof value === 'string' ? value : JSON.stringify(value),
        'AWSCURRENT',
        sendGrid,
      ),
    );

    // Assess
    expect(error).toBeInstanceOf(InvalidSecretError);
    expect((error as InvalidSecretError).field).toBe(field);
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain('secret-part');
  });

  it.each([
    [
      'a Twilio secret without its account',
      twilio,
      { provider: 'twilio', key: 's', key_id: `SK${'a'.repeat(32)}` },
      'account_sid',
      /field "account_sid" is missing/,
    ],
    [
      'a Twilio policy that is a list',
      twilio,
      { provider: 'twilio', key: 's', key_id: 'SK1', account_sid: ACCOUNT, policy: ['x'] },
      'policy',
      /field "policy" must be a JSON object/,
    ],
    [
      'a Twilio secret for another region than US1',
      twilio,
      { provider: 'twilio', key: 's', key_id: 'SK1', account_sid: ACCOUNT, region: 'ie1' },
      'region',
      /field "region" is "ie1", but this function calls Twilio's US1 hosts only/,
    ],
    [
      'a Twilio secret naming an edge',
      twilio,
      { provider: 'twilio', key: 's', key_id: 'SK1', account_sid: ACCOUNT, edge: 'dublin' },
      'edge',
      /field "edge" is "dublin", but this function calls Twilio's US1 hosts only/,
    ],
    [
      'Stripe permissions that are not names',
      stripe,
      { provider: 'stripe', key: 'rk_test_x', key_id: 'mk_1', permissions: ['Balance Read'] },
      'permissions',
      /every entry of field "permissions" must be a Stripe permission/,
    ],
  ])('rejects %s, naming the field', (_, provider, value, field, message) => {
    // Act
    const error = failure(() =>
      parseApiKeySecret(JSON.stringify(value), 'AWSPENDING', anyProvider(provider)),
    );

    // Assess
    expect(error).toBeInstanceOf(InvalidSecretError);
    expect((error as InvalidSecretError).field).toBe(field);
    expect(error.message).toMatch(message);
  });
});

describe('managing secrets', () => {
  const twilioSpec = { accountSid: ACCOUNT };

  it('accepts a Twilio auth token or a Main key, and refuses one for another account', () => {
    // Act
    const token = twilio.parseAdmin({ auth_token: 'token-value' }, 'managing secret m', twilioSpec);
    const mainKey = twilio.parseAdmin(
      { account_sid: ACCOUNT, key_id: `SK${'b'.repeat(32)}`, key: 'main-secret' },
      'managing secret m',
      twilioSpec,
    );
    const other = failure(() =>
      twilio.parseAdmin(
        { account_sid: `AC${'2'.repeat(32)}`, auth_token: 'token-value' },
        'managing secret m',
        twilioSpec,
      ),
    );

    // Assess
    expect(token).toEqual({ accountSid: ACCOUNT, user: ACCOUNT, password: 'token-value' });
    expect(mainKey.user).toBe(`SK${'b'.repeat(32)}`);
    expect(other).toBeInstanceOf(InvalidSecretError);
    expect((other as InvalidSecretError).field).toBe('account_sid');
    expect(other.message).toMatch(/refusing to act on another account/);
    expect(other.message).not.toContain('token-value');
  });

  it('requires a private key with a live Stripe managing key, and an RSA key of 2048 bits at least', () => {
    // Prepare
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();

    // Act
    const missing = failure(() =>
      stripe.parseAdmin({ key: 'sk_live_abc' }, 'managing secret m', {}),
    );
    const garbage = failure(() =>
      stripe.parseAdmin({ key: 'sk_live_abc', private_key: 'not a key' }, 'managing secret m', {}),
    );
    const weak = failure(() =>
      stripe.parseAdmin({ key: 'sk_live_abc', private_key: small }, 'managing secret m', {}),
    );

    // Assess
    expect(missing.message).toMatch(/field "private_key" is missing; in live mode Stripe returns/);
    expect(garbage.message).toBe('managing secret m: field "private_key" is not a PEM private key');
    expect(weak.message).toMatch(/must be an RSA key of at least 2048 bits/);
    expect(weak.message).not.toContain('PRIVATE KEY');
  });

  it('lets a SendGrid key rotate itself only when its scopes can manage keys', () => {
    // Act
    const fullAccess = sendGrid.adminFromKey?.(
      { id: 'a', key: KEY, spec: { region: 'global' } },
      'AWSCURRENT',
    );
    const mailOnly = failure(() =>
      sendGrid.adminFromKey?.(
        { id: 'a', key: KEY, spec: { region: 'global', scopes: ['mail.send'] } },
        'AWSCURRENT',
      ),
    );

    // Assess
    expect(fullAccess).toEqual({ key: KEY });
    expect((mailOnly as InvalidSecretError).field).toBe('scopes');
    expect(mailOnly.message).toBe(
      'AWSCURRENT: field "scopes" lacks api_keys.create, api_keys.read, api_keys.delete; without "adminarn" the new key must be able to rotate itself',
    );
  });
});

describe('API-key strategy settings', () => {
  it('defaults to revoking a demoted key one rotation later, names prefixed "rotation", a 60 s propagation wait', () => {
    // Act
    const settings = apiKeySettings({ env: {} });

    // Assess
    expect(settings).toMatchObject({
      revokeDemotedKey: 'next-rotation',
      keyNamePrefix: 'rotation',
      propagationTimeoutMs: 60_000,
    });
  });

  it.each([
    [
      'REVOKE_DEMOTED_KEY',
      'now',
      /REVOKE_DEMOTED_KEY must be "next-rotation" or "immediately", got "now"/,
    ],
    ['KEY_NAME_PREFIX', 'has space', /KEY_NAME_PREFIX must be 1 to 24 letters, digits or "-"/],
    [
      'KEY_PROPAGATION_TIMEOUT_SECONDS',
      '1.5',
      /KEY_PROPAGATION_TIMEOUT_SECONDS must be a whole number from 0 to 60, got "1.5"/,
    ],
    // The API-key functions time out at 90 s (template.yaml, which allows the same 0 to 60).
    [
      'KEY_PROPAGATION_TIMEOUT_SECONDS',
      '61',
      /KEY_PROPAGATION_TIMEOUT_SECONDS must be a whole number from 0 to 60, got "61"/,
    ],
  ])('fails at cold start when %s is %j', (name, value, message) => {
    // Act
    const error = failure(() => apiKeys(sendGrid, { env: { [name]: value } }));

    // Assess
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error.message).toMatch(message);
  });

  it.each([
    [
      'not a Stripe version',
      'latest',
      /must be a preview version such as 2026-09-30\.preview, got "latest"/,
    ],
    [
      'a generally available version',
      '2026-08-26.dahlia',
      /must be a preview version .* got "2026-08-26\.dahlia"/,
    ],
    ['not set', '', /STRIPE_API_VERSION is not set/],
  ])(
    'fails at cold start, saying what Stripe access it needs, when STRIPE_API_VERSION is %s',
    (_, value, message) => {
      // Act
      const error = failure(() => createStripe({ env: { STRIPE_API_VERSION: value } }));

      // Assess
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error.message).toMatch(message);
      expect(error.message).toContain('/v2/iam/api_keys) is a private preview');
      expect(error.message).toMatch(/Stripe App's OAuth credential/);
    },
  );
});

describe('the stripe-api-key function at cold start', () => {
  const load = async (version: string | undefined) => {
    vi.resetModules();
    vi.stubEnv('STRIPE_API_VERSION', version);
    try {
      return await import('../../functions/stripe-api-key/index.js');
    } finally {
      vi.unstubAllEnvs();
    }
  };

  it('refuses to load without a preview STRIPE_API_VERSION, and says what Stripe access it needs', async () => {
    // Act / Assess
    await expect(load(undefined)).rejects.toThrow(
      /STRIPE_API_VERSION is not set\. Stripe's Managed API Keys API \(\/v2\/iam\/api_keys\) is a private preview/,
    );
  });

  it('loads when STRIPE_API_VERSION names a preview version', async () => {
    // Act
    const module = await load('2026-09-30.preview');

    // Assess
    expect(typeof module.handler).toBe('function');
  });
});

describe('the binding of a managing secret to the secrets it serves', () => {
  const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/mailer-AbCdEf';
  const where =
    'managing secret arn:aws:secretsmanager:us-east-1:123456789012:secret:api-key-admin/b';

  it('matches ARN patterns as IAM does: * any run, ? one character, case-sensitive', () => {
    // Act / Assess
    expect(arnMatches(arn, arn)).toBe(true);
    expect(arnMatches('arn:aws:secretsmanager:*:123456789012:secret:team-a/*', arn)).toBe(true);
    expect(arnMatches('arn:aws:secretsmanager:us-east-1:*:secret:team-a/mailer-??????', arn)).toBe(
      true,
    );
    expect(arnMatches('arn:aws:secretsmanager:*:*:secret:team-b/*', arn)).toBe(false);
    expect(arnMatches('arn:aws:secretsmanager:*:*:secret:TEAM-A/*', arn)).toBe(false);
    expect(
      arnMatches('arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/mailer', arn),
    ).toBe(false);
    expect(arnMatches('arn:*:team-a/*-?????', arn)).toBe(false);
  });

  it('matches a pattern full of stars against a long ARN quickly', () => {
    // Prepare
    const pattern = `arn:${'*a'.repeat(1000)}*b`;
    const long = `arn:${'a'.repeat(2040)}`;

    // Act
    const started = performance.now();
    const matched = arnMatches(pattern, long);

    // Assess
    expect(matched).toBe(false);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('fails closed, naming "adminarn", when the managing secret lists no secrets', () => {
    // Act
    const missing = () => requireAllowedSecret({ key: 'x' }, where, arn);
    const other = () =>
      requireAllowedSecret(
        { allowedsecrets: ['arn:aws:secretsmanager:*:*:secret:team-b/*'] },
        where,
        arn,
      );
    const malformed = () => requireAllowedSecret({ allowedsecrets: ['team-a/*'] }, where, arn);

    // Assess
    expect(missing).toThrow(InvalidSecretError);
    expect(missing).toThrow(
      `field "adminarn" names ${where}, which has no "allowedsecrets": add "allowedsecrets": ["${arn}"] (ARN patterns with * allowed) to its value to let this secret use it`,
    );
    expect(other).toThrow(/whose "allowedsecrets" does not list this secret/);
    expect((failure(other) as InvalidSecretError).field).toBe('adminarn');
    expect(malformed).toThrow(/every entry of field "allowedsecrets" must be a secret ARN/);
    expect(() =>
      requireAllowedSecret(
        { allowedsecrets: ['arn:aws:secretsmanager:*:*:secret:team-a/*'] },
        where,
        arn,
      ),
    ).not.toThrow();
  });
});
