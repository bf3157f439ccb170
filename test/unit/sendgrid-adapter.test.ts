/**
 * The SendGrid adapter as the API-key strategy relies on it: the requests it sends (paths, auth,
 * bodies), how it reads SendGrid's answers and errors, which calls it repeats, and what of an
 * answer reaches an error. Scripted fetch, SendGrid's documented answer shapes; no network.
 */
import { describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  ConnectTimeoutError,
  InvalidSecretError,
} from '../../shared/common/errors.js';
import {
  KeyLimitError,
  PermissionDeniedError,
  ProviderError,
} from '../../shared/providers/errors.js';
import { createSendGrid, sendGridError } from '../../shared/providers/sendgrid.js';
import {
  type Answer,
  callContext,
  failureOf,
  noWait,
  recordingFetch,
} from '../support/recording-fetch.js';

/** A managing key that is not shaped like a SendGrid key: only the adapter's own list removes it. */
const ADMIN = { key: 'managing-key-0123456789abcdef' };
const GLOBAL = { region: 'global' as const };

function sendGrid(answers: Answer[], baseUrl?: string) {
  const { fetch, sent } = recordingFetch(answers);
  const provider = createSendGrid({ ...(baseUrl ? { baseUrl } : {}), http: noWait(fetch) });
  return { provider, sent };
}

/** SendGrid's error body, echoing the credential it refused. */
const echoing = (status: number, secret: string) => ({
  status,
  body: { errors: [{ field: null, message: `key ${secret} is not allowed` }] },
});

describe('SendGrid answers and errors', () => {
  it('joins the messages of an error body and ignores entries without one', () => {
    // Act
    const detail = sendGridError({
      errors: [null, { field: 'name', message: 'a' }, { message: 42 }, { message: 'b' }],
    });

    // Assess
    expect(detail).toEqual({ message: 'a; b' });
    expect(sendGridError(undefined)).toEqual({});
    expect(sendGridError({ errors: 'no' })).toEqual({});
  });

  it('names the HTTP status of a failure whose body is empty or not an error body', async () => {
    // Prepare
    const { provider } = sendGrid([{ status: 400 }, { status: 400, body: [1, 2] }]);

    // Act
    const empty = await failureOf(provider.revoke(ADMIN, 'id1', GLOBAL, callContext()));
    const odd = await failureOf(provider.revoke(ADMIN, 'id1', GLOBAL, callContext()));

    // Assess
    for (const failure of [empty, odd]) {
      expect(failure).toBeInstanceOf(ProviderError);
      expect((failure as ProviderError).status).toBe(400);
      expect((failure as ProviderError).provider).toBe('SendGrid');
      expect(failure.message).toContain('DELETE /v3/api_keys/id1 (revoking key id1) (HTTP 400)');
    }
  });

  it('keeps the managing key out of an error even when it is not shaped like a SendGrid key', async () => {
    // Prepare: every call answers with an error body quoting the key it was sent.
    const { provider } = sendGrid(
      Array.from({ length: 4 }, (_, i) => echoing(i === 0 ? 400 : 401, ADMIN.key)),
    );
    const key = { id: 'k1', key: 'own-key-0123456789abcdef', spec: GLOBAL };
    const { provider: verifier } = sendGrid([echoing(401, key.key)]);

    // Act
    const failures = [
      await failureOf(provider.mint(ADMIN, { name: 'n', spec: GLOBAL }, callContext())),
      await failureOf(provider.list(ADMIN, GLOBAL, callContext())),
      await failureOf(provider.revoke(ADMIN, 'id1', GLOBAL, callContext())),
      await failureOf(verifier.verify(key, callContext())),
    ];

    // Assess
    for (const failure of failures) {
      expect(failure.message).toContain('key *** is not allowed');
      expect(failure.message).not.toContain('0123456789abcdef');
    }
  });
});

describe('SendGrid requests', () => {
  it('sends JSON only with a create, and Bearer auth with every call', async () => {
    // Prepare
    const { provider, sent } = sendGrid([
      { status: 201, body: { api_key: 'SG.n.k', api_key_id: 'id-1' } },
      { status: 200, body: { result: [] } },
      { status: 200, body: { scopes: [] } },
      { status: 204 },
    ]);

    // Act
    await provider.mint(ADMIN, { name: 'n', spec: GLOBAL }, callContext());
    await provider.list(ADMIN, GLOBAL, callContext());
    await provider.verify({ id: 'id-1', key: 'SG.n.k', spec: GLOBAL }, callContext());
    await provider.revoke(ADMIN, 'id-1', GLOBAL, callContext());

    // Assess
    const bearer = `Bearer ${ADMIN.key}`;
    expect(sent.map(({ method, url, headers }) => ({ method, url, headers }))).toEqual([
      {
        method: 'POST',
        url: 'https://api.sendgrid.com/v3/api_keys',
        headers: {
          accept: 'application/json',
          authorization: bearer,
          'content-type': 'application/json',
        },
      },
      {
        method: 'GET',
        url: 'https://api.sendgrid.com/v3/api_keys?limit=100',
        headers: { accept: 'application/json', authorization: bearer },
      },
      {
        method: 'GET',
        url: 'https://api.sendgrid.com/v3/scopes',
        headers: { accept: 'application/json', authorization: 'Bearer SG.n.k' },
      },
      {
        method: 'DELETE',
        url: 'https://api.sendgrid.com/v3/api_keys/id-1',
        headers: { accept: 'application/json', authorization: bearer },
      },
    ]);
    expect(sent[0]?.body).toBe('{"name":"n"}');
  });

  it('uses a configured base URL without its trailing slashes, and encodes the key id in the path', async () => {
    // Prepare
    const { provider, sent } = sendGrid([{ status: 204 }], 'https://proxy.example/sendgrid//');

    // Act
    await provider.revoke(ADMIN, 'a/b?c', GLOBAL, callContext());

    // Assess
    expect(sent[0]?.url).toBe('https://proxy.example/sendgrid/v3/api_keys/a%2Fb%3Fc');
  });

  it('gives up an attempt after the configured timeout', async () => {
    // Prepare: a SendGrid that never answers, and a 150 ms timeout.
    const provider = createSendGrid({
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
      provider.verify({ id: 'k', key: 'SG.a.b', spec: GLOBAL }, callContext()),
    );

    // Assess
    expect(failure).toBeInstanceOf(ConnectTimeoutError);
    expect(failure.message).toBe('SendGrid GET /v3/scopes did not answer within 150 ms');
  });

  it('repeats reads and deletes after a 503, but never a create (SendGrid has no idempotency key)', async () => {
    // Prepare
    const unavailable = { status: 503, body: { errors: [{ message: 'unavailable' }] } };
    const { provider, sent } = sendGrid([
      unavailable,
      { status: 200, body: { result: [] } },
      unavailable,
      { status: 200, body: { scopes: [] } },
      unavailable,
      { status: 204 },
      unavailable,
    ]);

    // Act
    await provider.list(ADMIN, GLOBAL, callContext());
    await provider.verify({ id: 'k', key: 'SG.a.b', spec: GLOBAL }, callContext());
    await provider.revoke(ADMIN, 'k', GLOBAL, callContext());
    const failure = await failureOf(
      provider.mint(ADMIN, { name: 'n', spec: GLOBAL }, callContext()),
    );

    // Assess
    expect(sent.map((request) => request.method)).toEqual([
      'GET',
      'GET',
      'GET',
      'GET',
      'DELETE',
      'DELETE',
      'POST',
    ]);
    expect((failure as ProviderError).status).toBe(503);
  });
});

describe('SendGrid minting', () => {
  it('accepts a 200 as well as a 201, and registers the key before returning it', async () => {
    // Prepare
    const { provider } = sendGrid([{ status: 200, body: { api_key: 'SG.x.y', api_key_id: 'id' } }]);
    const call = callContext();

    // Act
    const minted = await provider.mint(ADMIN, { name: 'n', spec: GLOBAL }, call);

    // Assess
    expect(minted).toEqual({ id: 'id', key: 'SG.x.y', name: 'n' });
    expect(call.redacted).toEqual(['SG.x.y']);
  });

  it.each([
    ['no key', { api_key_id: 'id' }],
    ['no id', { api_key: 'SG.x.y' }],
    ['an empty key', { api_key: '', api_key_id: 'id' }],
    ['an empty id', { api_key: 'SG.x.y', api_key_id: '' }],
    ['a numeric id', { api_key: 'SG.x.y', api_key_id: 7 }],
    ['a null body', null],
  ])('refuses a create answer with %s, and registers only a key it was given', async (_, body) => {
    // Prepare
    const { provider } = sendGrid([{ status: 201, body }]);
    const call = callContext();

    // Act
    const failure = await failureOf(provider.mint(ADMIN, { name: 'n', spec: GLOBAL }, call));

    // Assess
    expect(failure).toBeInstanceOf(ProviderError);
    expect((failure as ProviderError).status).toBe(201);
    expect((failure as ProviderError).provider).toBe('SendGrid');
    const given = (body as { api_key?: unknown } | null)?.api_key;
    expect(call.redacted).toEqual(typeof given === 'string' ? [given] : []);
  });

  it('reports a 403 as missing permission when the key count cannot be read, or is under 100', async () => {
    // Prepare
    const forbidden = { status: 403, body: { errors: [{ message: 'access forbidden' }] } };
    const unreadable = sendGrid([forbidden, { status: 401 }]);
    const underLimit = sendGrid([
      forbidden,
      {
        status: 200,
        body: {
          result: Array.from({ length: 99 }, (_, i) => ({ api_key_id: `k${i}`, name: 'n' })),
        },
      },
    ]);
    const request = { name: 'n', spec: GLOBAL };

    // Act
    const first = await failureOf(unreadable.provider.mint(ADMIN, request, callContext()));
    const second = await failureOf(underLimit.provider.mint(ADMIN, request, callContext()));

    // Assess
    for (const failure of [first, second]) {
      expect(failure).toBeInstanceOf(PermissionDeniedError);
      expect(failure).not.toBeInstanceOf(KeyLimitError);
    }
  });

  it('reports the 100-key limit as such, with its own error name', async () => {
    // Prepare
    const { provider } = sendGrid([
      { status: 403, body: { errors: [{ message: 'access forbidden' }] } },
      {
        status: 200,
        body: {
          result: Array.from({ length: 100 }, (_, i) => ({ api_key_id: `k${i}`, name: 'n' })),
        },
      },
    ]);

    // Act
    const failure = await failureOf(
      provider.mint(ADMIN, { name: 'n', spec: GLOBAL }, callContext()),
    );

    // Assess
    expect(failure).toBeInstanceOf(KeyLimitError);
    expect(failure.name).toBe('KeyLimitError');
    expect((failure as KeyLimitError).provider).toBe('SendGrid');
    expect((failure as KeyLimitError).status).toBe(403);
  });

  it('reports another refusal as it is, without counting keys', async () => {
    // Prepare
    const { provider, sent } = sendGrid([
      { status: 400, body: { errors: [{ field: 'name', message: 'name is required' }] } },
    ]);

    // Act
    const failure = await failureOf(
      provider.mint(ADMIN, { name: 'n', spec: GLOBAL }, callContext()),
    );

    // Assess
    expect(failure).toBeInstanceOf(ProviderError);
    expect(failure).not.toBeInstanceOf(KeyLimitError);
    expect((failure as ProviderError).status).toBe(400);
    expect(failure.message).toContain('(minting a key) (HTTP 400): name is required');
    expect(sent).toHaveLength(1);
  });
});

describe('SendGrid listing and revoking', () => {
  it('lists only entries with a string id and name', async () => {
    // Prepare
    const { provider } = sendGrid([
      {
        status: 200,
        body: {
          result: [
            { api_key_id: 'a', name: 'rotation-a' },
            { api_key_id: 5, name: 'numeric id' },
            { api_key_id: 'b' },
            { name: 'no id' },
            null,
          ],
        },
      },
    ]);

    // Act
    const keys = await provider.list(ADMIN, GLOBAL, callContext());

    // Assess
    expect(keys).toEqual([{ id: 'a', name: 'rotation-a' }]);
  });

  it('fails a listing SendGrid refused, or one without a result list', async () => {
    // Prepare
    const { provider } = sendGrid([
      { status: 401, body: { errors: [{ message: 'authorization required' }] } },
      { status: 200, body: { keys: [] } },
      { status: 200, body: null },
    ]);

    // Act
    const refused = await failureOf(provider.list(ADMIN, GLOBAL, callContext()));
    const shapeless = await failureOf(provider.list(ADMIN, GLOBAL, callContext()));
    const empty = await failureOf(provider.list(ADMIN, GLOBAL, callContext()));

    // Assess
    expect(refused).toBeInstanceOf(AuthenticationError);
    expect(refused.message).toContain('(listing keys)');
    for (const failure of [shapeless, empty]) {
      expect(failure).toBeInstanceOf(ProviderError);
      expect((failure as ProviderError).provider).toBe('SendGrid');
      expect((failure as ProviderError).status).toBe(200);
    }
  });

  it('reads 204 and 200 as revoked and 404 as already gone; anything else fails naming the key', async () => {
    // Prepare
    const { provider } = sendGrid([
      { status: 204 },
      { status: 200, body: {} },
      { status: 404, body: { errors: [{ message: 'not found' }] } },
      { status: 401, body: { errors: [{ message: 'authorization required' }] } },
    ]);

    // Act
    const outcomes = [
      await provider.revoke(ADMIN, 'k1', GLOBAL, callContext()),
      await provider.revoke(ADMIN, 'k2', GLOBAL, callContext()),
      await provider.revoke(ADMIN, 'k3', GLOBAL, callContext()),
    ];
    const refused = await failureOf(provider.revoke(ADMIN, 'k4', GLOBAL, callContext()));

    // Assess
    expect(outcomes).toEqual(['revoked', 'revoked', 'not-found']);
    expect(refused).toBeInstanceOf(AuthenticationError);
    expect(refused.message).toContain('(revoking key k4)');
  });
});

describe('SendGrid secrets', () => {
  // Made in each test: an adapter made while the file loads would escape mutation testing.
  const sendGridProvider = () => createSendGrid();

  it('names itself for the secret\'s "provider" field and for messages', () => {
    // Act
    const provider = sendGridProvider();

    // Assess
    expect([provider.id, provider.name, provider.maxNameLength]).toEqual([
      'sendgrid',
      'SendGrid',
      100,
    ]);
  });

  it('reads the region and scopes, and keeps no "scopes" when there are none', () => {
    // Act
    const plain = sendGridProvider().parseSpec({}, 'AWSCURRENT');
    const scoped = sendGridProvider().parseSpec(
      { region: 'eu', scopes: ['mail.send', 'api_keys.read', 'a-b_c.1'] },
      'AWSCURRENT',
    );

    // Assess
    expect(plain).toStrictEqual({ region: 'global' });
    expect(scoped).toStrictEqual({
      region: 'eu',
      scopes: ['mail.send', 'api_keys.read', 'a-b_c.1'],
    });
  });

  it.each([
    ['a scope with a space', ['mail send']],
    ['a scope with a leading symbol', ['!mail.send']],
    ['a scope with a trailing symbol', ['mail.send!']],
    ['a scope longer than 100 characters', ['m'.repeat(101)]],
  ])('refuses %s, naming the field and what a scope looks like', (_, scopes) => {
    // Act
    const failure = (() => {
      try {
        sendGridProvider().parseSpec({ scopes }, 'AWSCURRENT');
      } catch (error) {
        return error as InvalidSecretError;
      }
    })();

    // Assess
    expect(failure).toBeInstanceOf(InvalidSecretError);
    expect(failure?.field).toBe('scopes');
    expect(failure?.message).toContain('a SendGrid scope such as "mail.send"');
  });

  it('accepts one-character and 100-character scopes', () => {
    // Act
    const spec = sendGridProvider().parseSpec({ scopes: ['m', 'm'.repeat(100)] }, 'AWSCURRENT');

    // Assess
    expect(spec.scopes).toEqual(['m', 'm'.repeat(100)]);
  });

  it('tells two versions of different regions apart', () => {
    // Act
    const same = sendGridProvider().differentTarget(GLOBAL, { region: 'global' });
    const other = sendGridProvider().differentTarget(GLOBAL, { region: 'eu' });

    // Assess
    expect(same).toBeUndefined();
    expect(other).toBe('it names region "eu" but AWSCURRENT names "global"');
  });

  it('reads the managing key, refuses a missing or overlong one, and keeps it out of logs', () => {
    // Act
    const admin = sendGridProvider().parseAdmin({ key: ADMIN.key }, 'managing secret m', GLOBAL);
    const missing = () => sendGridProvider().parseAdmin({}, 'managing secret m', GLOBAL);
    const long = () =>
      sendGridProvider().parseAdmin({ key: 'k'.repeat(513) }, 'managing secret m', GLOBAL);

    // Assess
    expect(admin).toStrictEqual(ADMIN);
    expect(sendGridProvider().secretsOfAdmin(admin)).toEqual([ADMIN.key]);
    expect(missing).toThrow(expect.objectContaining({ field: 'key' }));
    expect(long).toThrow(expect.objectContaining({ field: 'key' }));
    expect(sendGridProvider().parseAdmin({ key: 'k'.repeat(512) }, 'm', GLOBAL).key).toHaveLength(
      512,
    );
  });

  it('lets a key rotate itself only with all three key-management scopes', () => {
    // Prepare
    const own = (scopes?: string[]) => ({
      id: 'k',
      key: 'SG.own.key',
      spec: { region: 'global' as const, ...(scopes ? { scopes } : {}) },
    });
    const provider = sendGridProvider();
    const adminFromKey = provider.adminFromKey?.bind(provider);

    // Act
    const full = adminFromKey?.(own(), 'AWSCURRENT');
    const enough = adminFromKey?.(
      own(['mail.send', 'api_keys.create', 'api_keys.read', 'api_keys.delete']),
      'AWSCURRENT',
    );
    const lacking = () => adminFromKey?.(own(['api_keys.create', 'api_keys.read']), 'AWSCURRENT');

    // Assess
    expect(full).toEqual({ key: 'SG.own.key' });
    expect(enough).toEqual({ key: 'SG.own.key' });
    expect(lacking).toThrow(expect.objectContaining({ field: 'scopes' }));
    expect(lacking).toThrow(/lacks api_keys\.delete;/);
  });
});
