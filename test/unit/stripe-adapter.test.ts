/**
 * The Stripe adapter (Managed API Keys preview) as the API-key strategy relies on it: the
 * requests (version, context, idempotency keys), the two forms of a new secret (test-mode token,
 * live-mode JWE), paging, the preview's own error codes, and what of an answer reaches an error.
 * Scripted fetch with the shapes of Stripe's preview document; no network.
 */
import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  ConfigurationError,
  ConnectTimeoutError,
  InvalidSecretError,
} from '../../shared/common/errors.js';
import { KeyLimitError, ProviderError } from '../../shared/providers/errors.js';
import {
  createStripe,
  STRIPE_PREVIEW_REQUIREMENT,
  type StripeAdmin,
  stripeError,
  toKeyListing,
} from '../../shared/providers/stripe.js';
import { encryptCompactJwe } from '../support/fake-stripe.js';
import {
  type Answer,
  callContext,
  failureOf,
  noWait,
  recordingFetch,
} from '../support/recording-fetch.js';

const VERSION = '2026-09-30.preview';
/** A test-mode managing key (no private key needed), not shaped like a key the scrubber knows. */
const ADMIN: StripeAdmin = { key: 'app-managing-key-0123456789abcdef' };

function stripe(answers: Answer[], options: { baseUrl?: string } = {}) {
  const { fetch, sent } = recordingFetch(answers);
  const provider = createStripe({ apiVersion: VERSION, ...options, http: noWait(fetch) });
  return { provider, sent };
}

const stripeFailure = (status: number, type: string, message: string, code?: string) => ({
  status,
  body: { error: { type, ...(code ? { code } : {}), message } },
});
const unrecognized = stripeFailure(
  404,
  'invalid_request_error',
  'Unrecognized request URL (POST: /v2/iam/api_keys).',
);
const keyItem = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  object: 'v2.iam.api_key',
  name: `name-${id}`,
  status: 'active',
  type: 'secret_key',
  ...extra,
});

const { privateKey: rsaKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PRIVATE_PEM = rsaKey.export({ type: 'pkcs8', format: 'pem' }).toString();

describe('Stripe configuration', () => {
  it('reads STRIPE_API_VERSION with surrounding white space, and refuses anything but a preview date', () => {
    // Prepare
    const make = (value: string | undefined) => () =>
      createStripe({ env: { STRIPE_API_VERSION: value } });

    // Assess
    expect(make(` ${VERSION}\n`)).not.toThrow();
    expect(make(undefined)).toThrow(ConfigurationError);
    expect(make(`x${VERSION}`)).toThrow(ConfigurationError);
    expect(make(`${VERSION}x`)).toThrow(ConfigurationError);
    expect(make('2026-09-30')).toThrow(ConfigurationError);
  });

  it('sends the configured version and the account context, and uses a base URL without trailing slashes', async () => {
    // Prepare
    const { provider, sent } = stripe([{ status: 200, body: { data: [] } }], {
      baseUrl: 'https://stripe.proxy.example//',
    });

    // Act
    await provider.list({ ...ADMIN, context: 'acct_1X' }, {}, callContext());

    // Assess
    expect(sent[0]?.url).toBe('https://stripe.proxy.example/v2/iam/api_keys?limit=100');
    expect(sent[0]?.headers).toEqual({
      accept: 'application/json',
      authorization: `Bearer ${ADMIN.key}`,
      'stripe-version': VERSION,
      'stripe-context': 'acct_1X',
    });
  });

  it('gives up an attempt after the configured timeout', async () => {
    // Prepare
    const provider = createStripe({
      apiVersion: VERSION,
      timeoutMs: 150,
      http: {
        maxAttempts: 1,
        fetch: (_, init) =>
          new Promise((_resolve, reject) =>
            init?.signal?.addEventListener('abort', () => reject(init.signal?.reason)),
          ),
      },
    });

    // Act
    const failure = await failureOf(
      provider.verify({ id: 'mk', key: 'rk_test_x', spec: {} }, callContext()),
    );

    // Assess
    expect(failure).toBeInstanceOf(ConnectTimeoutError);
    expect(failure.message).toBe('Stripe GET /v1/balance did not answer within 150 ms');
  });
});

describe('Stripe errors', () => {
  it('reads the code, or the type when there is no code, and the message', () => {
    // Act
    const cases = [
      stripeError({
        error: { type: 'invalid_request_error', code: 'resource_missing', message: 'm' },
      }),
      stripeError({ error: { type: 'api_error', message: 'm' } }),
      stripeError({ error: { code: 5, type: 7, message: 5 } }),
      stripeError({ error: 'text' }),
      stripeError({ error: null }),
      stripeError(undefined),
    ];

    // Assess
    expect(cases).toStrictEqual([
      { code: 'resource_missing', message: 'm' },
      { code: 'api_error', message: 'm' },
      {},
      {},
      {},
      {},
    ]);
  });

  it('says the preview is missing when Stripe does not route the path, naming the call', async () => {
    // Prepare
    const { provider } = stripe([unrecognized, unrecognized, unrecognized]);

    // Act
    const failures = [
      await failureOf(provider.mint(ADMIN, { name: 'n', spec: {} }, callContext())),
      await failureOf(provider.list(ADMIN, {}, callContext())),
      await failureOf(provider.revoke(ADMIN, 'mk_1', {}, callContext())),
    ];

    // Assess
    expect(failures.map((failure) => failure.message.slice(0, 60))).toEqual([
      'Stripe does not serve POST /v2/iam/api_keys to this account ',
      'Stripe does not serve GET /v2/iam/api_keys to this account (',
      'Stripe does not serve POST /v2/iam/api_keys/mk_1/expire to t',
    ]);
    for (const failure of failures) {
      expect(failure).toBeInstanceOf(ProviderError);
      expect((failure as ProviderError).status).toBe(404);
      expect((failure as ProviderError).provider).toBe('Stripe');
      expect(failure.message).toContain(STRIPE_PREVIEW_REQUIREMENT);
    }
  });

  it('tells an unknown key (resource_missing) from an unrouted path, and a 404 without a message from both', async () => {
    // Prepare
    const { provider } = stripe([
      stripeFailure(404, 'invalid_request_error', 'Unrecognized request URL', 'resource_missing'),
      { status: 404 },
      stripeFailure(404, 'invalid_request_error', 'No such api key: mk_3'),
    ]);

    // Act
    const outcomes = [
      await provider.revoke(ADMIN, 'mk_1', {}, callContext()),
      await provider.revoke(ADMIN, 'mk_2', {}, callContext()),
      await provider.revoke(ADMIN, 'mk_3', {}, callContext()),
    ];

    // Assess
    expect(outcomes).toEqual(['not-found', 'not-found', 'not-found']);
  });

  it('reads "Unrecognized request URL" as a missing preview only on a 404', async () => {
    // Prepare
    const { provider } = stripe([
      stripeFailure(
        400,
        'invalid_request_error',
        'Unrecognized request URL (POST: /v2/iam/api_keys).',
      ),
    ]);

    // Act
    const failure = await failureOf(provider.mint(ADMIN, { name: 'n', spec: {} }, callContext()));

    // Assess
    expect((failure as ProviderError).status).toBe(400);
    expect(failure.message).not.toContain(STRIPE_PREVIEW_REQUIREMENT);
  });

  it('keeps a message that is not text out of the error', async () => {
    // Prepare: a hostile answer whose message is a number.
    const { provider } = stripe([
      { status: 400, body: { error: { type: 'invalid_request_error', message: 5 } } },
    ]);

    // Act
    const failure = await failureOf(provider.mint(ADMIN, { name: 'n', spec: {} }, callContext()));

    // Assess
    expect(failure).toBeInstanceOf(ProviderError);
    expect(failure.message).toMatch(/\(HTTP 400, code invalid_request_error\)$/);
  });

  it('explains a direct account and the key limit by their preview codes', async () => {
    // Prepare
    const { provider } = stripe([
      stripeFailure(
        400,
        'invalid_request_error',
        'direct',
        'api_key_direct_operation_not_supported',
      ),
      stripeFailure(400, 'invalid_request_error', 'limit', 'api_key_limit_reached'),
      stripeFailure(400, 'invalid_request_error', 'other', 'parameter_missing'),
    ]);
    const request = { name: 'n', spec: {} };

    // Act
    const direct = await failureOf(provider.mint(ADMIN, request, callContext()));
    const limit = await failureOf(provider.mint(ADMIN, request, callContext()));
    const other = await failureOf(provider.mint(ADMIN, request, callContext()));

    // Assess
    expect(direct).toBeInstanceOf(ProviderError);
    expect(direct).not.toBeInstanceOf(KeyLimitError);
    expect((direct as ProviderError).code).toBe('api_key_direct_operation_not_supported');
    expect((direct as ProviderError).status).toBe(400);
    expect((direct as ProviderError).provider).toBe('Stripe');
    expect(direct.message).toContain('set "stripe_context" in the managing secret');
    expect(limit).toBeInstanceOf(KeyLimitError);
    expect((limit as ProviderError).code).toBe('api_key_limit_reached');
    expect((limit as ProviderError).provider).toBe('Stripe');
    expect(other).not.toBeInstanceOf(KeyLimitError);
    expect((other as ProviderError).code).toBe('parameter_missing');
    expect(other.message).toContain('(minting a key) (HTTP 400, code parameter_missing): other');
  });

  it('keeps the managing key and a verified key out of errors that quote them', async () => {
    // Prepare
    const quoting = (secret: string) =>
      stripeFailure(401, 'invalid_request_error', `Invalid API Key provided: ${secret}`);
    const { provider } = stripe([
      quoting(ADMIN.key),
      quoting(ADMIN.key),
      quoting(ADMIN.key),
      quoting('verified-key-0123456789abcdef'),
    ]);

    // Act
    const failures = [
      await failureOf(provider.mint(ADMIN, { name: 'n', spec: {} }, callContext())),
      await failureOf(provider.list(ADMIN, {}, callContext())),
      await failureOf(provider.revoke(ADMIN, 'mk_1', {}, callContext())),
      await failureOf(
        provider.verify(
          { id: 'mk', key: 'verified-key-0123456789abcdef', spec: {} },
          callContext(),
        ),
      ),
    ];

    // Assess
    for (const failure of failures) {
      expect(failure).toBeInstanceOf(AuthenticationError);
      expect(failure.message).toContain('Invalid API Key provided: ***');
      expect(failure.message).not.toContain('0123456789abcdef');
    }
  });
});

describe('Stripe expiring keys', () => {
  it('expires with a POST that has no body and one idempotency key, kept across retries', async () => {
    // Prepare
    const { provider, sent } = stripe([
      stripeFailure(503, 'api_error', 'unavailable'),
      { status: 200, body: keyItem('mk_1', { status: 'expired' }) },
    ]);

    // Act
    const outcome = await provider.revoke(ADMIN, 'mk/1', {}, callContext());

    // Assess
    expect(outcome).toBe('revoked');
    expect(sent).toHaveLength(2);
    expect(sent[0]?.url).toBe('https://api.stripe.com/v2/iam/api_keys/mk%2F1/expire');
    expect(sent[0]?.method).toBe('POST');
    expect(sent[0]?.body).toBeUndefined();
    const { 'idempotency-key': idempotencyKey, ...headers } = sent[0]?.headers ?? {};
    expect(idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);
    expect(sent[1]?.headers['idempotency-key']).toBe(idempotencyKey);
    expect(headers).toEqual({
      accept: 'application/json',
      authorization: `Bearer ${ADMIN.key}`,
      'stripe-version': VERSION,
    });
  });

  it('reads an already expired key as revoked, and fails another refusal naming the key', async () => {
    // Prepare
    const { provider } = stripe([
      stripeFailure(400, 'invalid_request_error', 'already expired', 'api_key_expired'),
      stripeFailure(400, 'invalid_request_error', 'bad', 'parameter_invalid'),
      stripeFailure(409, 'invalid_request_error', 'conflict', 'api_key_expired'),
    ]);

    // Act
    const expired = await provider.revoke(ADMIN, 'mk_1', {}, callContext());
    const refused = await failureOf(provider.revoke(ADMIN, 'mk_2', {}, callContext()));
    const conflict = await failureOf(provider.revoke(ADMIN, 'mk_3', {}, callContext()));

    // Assess
    expect(expired).toBe('revoked');
    expect(refused).toBeInstanceOf(ProviderError);
    expect(refused.message).toContain('(expiring key mk_2) (HTTP 400, code parameter_invalid)');
    expect((conflict as ProviderError).status).toBe(409);
  });
});

describe('Stripe minting', () => {
  const minted = (secretKey: Record<string, unknown>, id = 'mk_new') => ({
    status: 200,
    body: { ...keyItem(id), secret_key: secretKey },
  });

  it('sends the permissions, retries a 503 under the same idempotency key, and accepts a 201', async () => {
    // Prepare
    const { provider, sent } = stripe([
      stripeFailure(503, 'api_error', 'unavailable'),
      { status: 201, body: { ...keyItem('mk_new'), secret_key: { token: 'rk_test_new' } } },
    ]);
    const call = callContext();

    // Act
    const key = await provider.mint(
      ADMIN,
      { name: 'n', spec: { permissions: ['balance_read'] } },
      call,
    );

    // Assess
    expect(key).toEqual({ id: 'mk_new', key: 'rk_test_new', name: 'n' });
    expect(sent).toHaveLength(2);
    expect(sent[1]?.headers['idempotency-key']).toBe(sent[0]?.headers['idempotency-key']);
    expect(sent[0]?.headers['content-type']).toBe('application/json');
    expect(JSON.parse(sent[0]?.body ?? '')).toEqual({
      type: 'secret_key',
      name: 'n',
      permissions: ['balance_read'],
    });
    expect(call.redacted).toContain('rk_test_new');
  });

  it('uses a new idempotency key for each mint', async () => {
    // Prepare
    const { provider, sent } = stripe([
      minted({ token: 'rk_test_1' }, 'mk_1'),
      minted({ token: 'rk_test_2' }, 'mk_2'),
    ]);

    // Act
    await provider.mint(ADMIN, { name: 'a', spec: {} }, callContext());
    await provider.mint(ADMIN, { name: 'b', spec: {} }, callContext());

    // Assess
    expect(sent[0]?.headers['idempotency-key']).not.toBe(sent[1]?.headers['idempotency-key']);
  });

  it('decrypts a JWE without a format or recipient, and registers the secret', async () => {
    // Prepare
    const admin = createStripe({ apiVersion: VERSION }).parseAdmin(
      { key: 'sk_live_app', private_key: PRIVATE_PEM },
      'managing secret m',
      {},
    );
    const ciphertext = encryptCompactJwe('rk_live_decrypted', admin.publicKeyPem ?? '');
    const { provider } = stripe([minted({ encrypted_secret: { ciphertext } })]);
    const call = callContext();

    // Act
    const key = await provider.mint(admin, { name: 'n', spec: {} }, call);

    // Assess
    expect(key.key).toBe('rk_live_decrypted');
    expect(call.redacted).toContain('rk_live_decrypted');
  });

  it.each([
    ['another format', { format: 'jwe_json' }, /as "jwe_json"; only jwe_compact is supported/],
    [
      'another recipient',
      { recipient_key_id: 'someone-else' },
      /to public key someone-else, not ours/,
    ],
    [
      'a ciphertext that does not decrypt',
      { ciphertext: 'a.b.c.d.e' },
      /cannot decrypt the new Stripe secret/,
    ],
  ])('refuses an encrypted secret with %s, and expires the key', async (_, override, message) => {
    // Prepare
    const admin = createStripe({ apiVersion: VERSION }).parseAdmin(
      { key: 'sk_live_app', private_key: PRIVATE_PEM },
      'managing secret m',
      {},
    );
    const ciphertext = encryptCompactJwe('rk_live_x', admin.publicKeyPem ?? '');
    const { provider, sent } = stripe([
      minted({ encrypted_secret: { ciphertext, format: 'jwe_compact', ...override } }),
      { status: 200, body: keyItem('mk_new', { status: 'expired' }) },
    ]);

    // Act
    const failure = await failureOf(provider.mint(admin, { name: 'n', spec: {} }, callContext()));

    // Assess
    expect(failure).toBeInstanceOf(ProviderError);
    expect((failure as ProviderError).provider).toBe('Stripe');
    expect(failure.message).toMatch(message);
    expect(failure.message).toContain('(expired key mk_new)');
    expect(sent[1]?.url).toBe('https://api.stripe.com/v2/iam/api_keys/mk_new/expire');
  });

  it('registers a plain token even when the encrypted form beside it cannot be read', async () => {
    // Prepare
    const { provider } = stripe([
      minted({ token: 'rk_test_beside', encrypted_secret: { ciphertext: 'a.b.c.d.e' } }),
      { status: 200, body: keyItem('mk_new', { status: 'expired' }) },
    ]);
    const call = callContext();

    // Act
    const failure = await failureOf(provider.mint(ADMIN, { name: 'n', spec: {} }, call));

    // Assess
    expect(failure).toBeInstanceOf(ProviderError);
    expect((failure as ProviderError).provider).toBe('Stripe');
    expect(failure.message).toContain('the managing secret has no "private_key" to decrypt it');
    expect(call.redacted).toEqual(['rk_test_beside']);
  });

  it('says so when the key it could not read could not be expired either', async () => {
    // Prepare
    const { provider } = stripe([
      minted({}),
      stripeFailure(400, 'invalid_request_error', 'bad', 'parameter_invalid'),
    ]);
    const call = callContext();

    // Act
    const failure = await failureOf(provider.mint(ADMIN, { name: 'n', spec: {} }, call));

    // Assess
    expect(failure).toBeInstanceOf(ProviderError);
    expect(failure.message).toContain('neither secret_key.token nor secret_key.encrypted_secret');
    expect((failure as ProviderError).provider).toBe('Stripe');
    expect(failure.message).toContain('(could not expire key mk_new either)');
    expect(call.redacted).toEqual([]);
  });

  it.each([
    ['an empty token', { token: '' }],
    ['a numeric token', { token: 5 }],
    ['an empty ciphertext', { encrypted_secret: { ciphertext: '' } }],
    ['a numeric ciphertext', { encrypted_secret: { ciphertext: 5 } }],
  ])('reads %s as no secret at all', async (_, secretKey) => {
    // Prepare
    const { provider } = stripe([minted(secretKey), { status: 200, body: keyItem('mk_new') }]);

    // Act
    const failure = await failureOf(provider.mint(ADMIN, { name: 'n', spec: {} }, callContext()));

    // Assess
    expect(failure.message).toContain('neither secret_key.token nor secret_key.encrypted_secret');
  });

  it('ignores a format or recipient that is not a string', async () => {
    // Prepare
    const admin = createStripe({ apiVersion: VERSION }).parseAdmin(
      { key: 'sk_live_app', private_key: PRIVATE_PEM },
      'managing secret m',
      {},
    );
    const ciphertext = encryptCompactJwe('rk_live_y', admin.publicKeyPem ?? '');
    const { provider } = stripe([
      minted({ encrypted_secret: { ciphertext, format: 1, recipient_key_id: 2 } }),
    ]);

    // Act
    const key = await provider.mint(admin, { name: 'n', spec: {} }, callContext());

    // Assess
    expect(key.key).toBe('rk_live_y');
  });

  it.each([
    ['no id', { secret_key: { token: 'rk_test_z' } }],
    ['an empty id', { id: '', secret_key: { token: 'rk_test_z' } }],
    ['a numeric id', { id: 7, secret_key: { token: 'rk_test_z' } }],
    ['a null body', null],
  ])('refuses a create answer with %s, after registering any token in it', async (_, body) => {
    // Prepare
    const { provider, sent } = stripe([{ status: 200, body }]);
    const call = callContext();

    // Act
    const failure = await failureOf(provider.mint(ADMIN, { name: 'n', spec: {} }, call));

    // Assess
    expect(failure).toBeInstanceOf(ProviderError);
    expect((failure as ProviderError).status).toBe(200);
    expect((failure as ProviderError).provider).toBe('Stripe');
    expect(call.redacted).toEqual(body === null ? [] : ['rk_test_z']);
    expect(sent).toHaveLength(1);
  });
});

describe('Stripe verification and listing', () => {
  it('verifies with GET /v1/balance and only the key, repeating a 503', async () => {
    // Prepare
    const { provider, sent } = stripe([
      stripeFailure(503, 'api_error', 'unavailable'),
      { status: 200, body: { object: 'balance' } },
      stripeFailure(403, 'permission_error', 'restricted'),
    ]);
    const key = { id: 'mk_1', key: 'rk_test_key', spec: {} };

    // Act
    const ok = await provider.verify(key, callContext());
    const limited = await provider.verify(key, callContext());

    // Assess
    expect(ok).toBe('ok');
    expect(limited).toBe('authenticated-without-permission');
    expect(sent[0]).toMatchObject({
      method: 'GET',
      url: 'https://api.stripe.com/v1/balance',
      headers: { accept: 'application/json', authorization: 'Bearer rk_test_key' },
    });
    expect(Object.keys(sent[0]?.headers ?? {})).toEqual(['accept', 'authorization']);
    expect(sent).toHaveLength(3);
  });

  it('follows next_page_url on the same host, and keeps only live secret keys', async () => {
    // Prepare
    const { provider, sent } = stripe([
      stripeFailure(503, 'api_error', 'unavailable'),
      {
        status: 200,
        body: {
          data: [keyItem('mk_1'), keyItem('mk_2', { status: 'expired' }), null],
          next_page_url: '/v2/iam/api_keys?limit=100&page=p2',
        },
      },
      {
        status: 200,
        body: {
          data: [keyItem('mk_3', { type: 'publishable_key' }), keyItem('mk_4'), { name: 'no id' }],
          next_page_url: '',
        },
      },
    ]);

    // Act
    const keys = await provider.list(ADMIN, {}, callContext());

    // Assess
    expect(keys).toEqual([
      { id: 'mk_1', name: 'name-mk_1' },
      { id: 'mk_4', name: 'name-mk_4' },
    ]);
    expect(sent.map((request) => request.url)).toEqual([
      'https://api.stripe.com/v2/iam/api_keys?limit=100',
      'https://api.stripe.com/v2/iam/api_keys?limit=100',
      'https://api.stripe.com/v2/iam/api_keys?limit=100&page=p2',
    ]);
    expect(sent[2]?.headers['content-type']).toBeUndefined();
  });

  it('stops at a next link that is not a string, and fails a page without data', async () => {
    // Prepare
    const { provider } = stripe([
      { status: 200, body: { data: [keyItem('mk_1')], next_page_url: 5 } },
      { status: 200, body: { next_page_url: null } },
    ]);

    // Act
    const keys = await provider.list(ADMIN, {}, callContext());
    const failure = await failureOf(provider.list(ADMIN, {}, callContext()));

    // Assess
    expect(keys).toEqual([{ id: 'mk_1', name: 'name-mk_1' }]);
    expect(failure).toBeInstanceOf(ProviderError);
    expect((failure as ProviderError).status).toBe(200);
    expect((failure as ProviderError).provider).toBe('Stripe');
  });

  it('refuses a next page on another host, and names the listing in a refusal', async () => {
    // Prepare
    const { provider } = stripe([
      { status: 200, body: { data: [], next_page_url: 'https://evil.example/v2/iam/api_keys' } },
      stripeFailure(400, 'invalid_request_error', 'bad limit', 'parameter_invalid'),
    ]);

    // Act
    const offHost = await failureOf(provider.list(ADMIN, {}, callContext()));
    const refused = await failureOf(provider.list(ADMIN, {}, callContext()));

    // Assess
    expect(offHost).toBeInstanceOf(ProviderError);
    expect((offHost as ProviderError).provider).toBe('Stripe');
    expect(offHost.message).toContain('(https://evil.example)');
    expect(refused.message).toContain('GET /v2/iam/api_keys (listing keys) (HTTP 400');
  });

  it('stops after 50 pages of a listing that never ends', async () => {
    // Prepare
    const endless = () => ({
      status: 200,
      body: { data: [], next_page_url: '/v2/iam/api_keys?page=next' },
    });
    const { provider, sent } = stripe(Array.from({ length: 60 }, () => endless));

    // Act
    const failure = await failureOf(provider.list(ADMIN, {}, callContext()));

    // Assess
    expect(failure).toBeInstanceOf(ProviderError);
    expect(failure.message).toBe('Stripe listed more than 50 pages of keys');
    expect((failure as ProviderError).provider).toBe('Stripe');
    expect(sent).toHaveLength(50);
  });

  it('keeps only id, name, status and type of a listed key, with defaults for missing ones', () => {
    // Act
    const bare = toKeyListing({
      id: 'mk_1',
      name: 5,
      status: null,
      secret_key: { token: 'rk_live_x' },
    });
    const none = toKeyListing({ name: 'no id' });

    // Assess
    expect(bare).toStrictEqual({ id: 'mk_1', name: '', status: 'unknown', type: 'unknown' });
    expect(none).toBeUndefined();
    expect(toKeyListing(null)).toBeUndefined();
  });
});

describe('Stripe secrets', () => {
  // Made in each test: an adapter made while the file loads would escape mutation testing.
  const provider = () => createStripe({ apiVersion: VERSION });

  it('reads permissions as given, up to 300, and none as Stripe default', () => {
    // Act
    const none = provider().parseSpec({}, 'AWSCURRENT');
    const some = provider().parseSpec({ permissions: ['balance_read', 'a'] }, 'AWSCURRENT');
    const many = provider().parseSpec(
      { permissions: Array.from({ length: 300 }, (_, i) => `p${i}`) },
      'AWSCURRENT',
    );

    // Assess
    expect(none).toStrictEqual({});
    expect(some).toStrictEqual({ permissions: ['balance_read', 'a'] });
    expect(many.permissions).toHaveLength(300);
    expect(provider().differentTarget(some, none)).toBeUndefined();
  });

  it.each([
    ['an upper-case permission', ['Balance_read']],
    ['a trailing symbol', ['balance_read!']],
    ['301 permissions', Array.from({ length: 301 }, (_, i) => `p${i}`)],
    ['a permission longer than 100 characters', ['p'.repeat(101)]],
  ])('refuses %s, naming the field', (_, permissions) => {
    // Act
    const parse = () => provider().parseSpec({ permissions }, 'AWSCURRENT');

    // Assess
    expect(parse).toThrow(InvalidSecretError);
    expect(parse).toThrow(expect.objectContaining({ field: 'permissions' }));
  });

  it('reads a test-mode managing secret without a private key, and with no context unless given', () => {
    // Act
    const admin = provider().parseAdmin({ key: 'sk_test_app' }, 'managing secret m', {});
    const withContext = provider().parseAdmin(
      { key: 'sk_test_app', stripe_context: 'acct_1X/sub_2' },
      'managing secret m',
      {},
    );

    // Assess
    expect(admin).toStrictEqual({ key: 'sk_test_app' });
    expect(withContext).toStrictEqual({ key: 'sk_test_app', context: 'acct_1X/sub_2' });
    expect(provider().secretsOfAdmin(admin)).toEqual(['sk_test_app']);
  });

  it.each([
    ['a live secret key without private_key', { key: 'sk_live_app' }, 'private_key'],
    ['a live restricted key without private_key', { key: 'rk_live_app' }, 'private_key'],
    ['a context with a space', { key: 'sk_test_app', stripe_context: 'acct 1' }, 'stripe_context'],
    [
      'a context of 256 characters',
      { key: 'sk_test_app', stripe_context: 'a'.repeat(256) },
      'stripe_context',
    ],
    ['a key of 513 characters', { key: 'k'.repeat(513) }, 'key'],
    [
      'a private key that is not PEM',
      { key: 'sk_test_app', private_key: 'not a key' },
      'private_key',
    ],
  ])('refuses %s, naming the field', (_, raw, field) => {
    // Act
    const parse = () => provider().parseAdmin(raw, 'managing secret m', {});

    // Assess
    expect(parse).toThrow(InvalidSecretError);
    expect(parse).toThrow(expect.objectContaining({ field }));
  });

  it('names itself for the secret\'s "provider" field and for messages', () => {
    // Act
    const stripeProvider = provider();

    // Assess
    expect([stripeProvider.id, stripeProvider.name, stripeProvider.maxNameLength]).toEqual([
      'stripe',
      'Stripe',
      64,
    ]);
  });

  it('says what a Stripe-Context value looks like when one is malformed', () => {
    // Act
    const parse = () =>
      provider().parseAdmin(
        { key: 'sk_test_app', stripe_context: 'acct 1' },
        'managing secret m',
        {},
      );

    // Assess
    expect(parse).toThrow('an account id such as acct_123 (a Stripe-Context value)');
  });

  it('refuses an RSA key under 2048 bits, an RSA-PSS key (Stripe encrypts with RSA-OAEP) and a key that is not RSA', () => {
    // Prepare
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    const pss = generateKeyPairSync('rsa-pss', { modulusLength: 2048 })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();

    // Assess
    for (const pem of [small, pss, ec]) {
      expect(() =>
        provider().parseAdmin({ key: 'sk_test_app', private_key: pem }, 'managing secret m', {}),
      ).toThrow(expect.objectContaining({ field: 'private_key' }));
    }
  });

  it('derives the public key and its id from the private key, and keeps the PEM out of logs', () => {
    // Act
    const admin = provider().parseAdmin(
      { key: 'sk_live_app', private_key: PRIVATE_PEM },
      'managing secret m',
      {},
    );

    // Assess
    const publicKey = createPublicKey(rsaKey);
    const der = publicKey.export({ type: 'spki', format: 'der' });
    expect(admin.publicKeyPem).toBe(publicKey.export({ type: 'spki', format: 'pem' }).toString());
    expect(admin.publicKeyId).toBe(
      `rotation-${createHash('sha256').update(der).digest('hex').slice(0, 16)}`,
    );
    expect(provider().secretsOfAdmin(admin)).toEqual(['sk_live_app', PRIVATE_PEM]);
  });
});
