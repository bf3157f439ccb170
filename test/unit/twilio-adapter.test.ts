/**
 * The Twilio adapter as the API-key strategy relies on it: standard keys through the 2010-04-01
 * API, restricted keys (a secret with a policy) through IAM v1, Basic authentication, paging by
 * next_page_uri and meta.next_page_url, which calls it repeats, and what of an answer reaches an
 * error. Scripted fetch with Twilio's documented shapes; no network.
 */
import { describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  ConnectTimeoutError,
  InvalidSecretError,
} from '../../shared/common/errors.js';
import { PermissionDeniedError, ProviderError } from '../../shared/providers/errors.js';
import { createTwilio, type TwilioAdmin, twilioError } from '../../shared/providers/twilio.js';
import {
  type Answer,
  callContext,
  failureOf,
  noWait,
  recordingFetch,
} from '../support/recording-fetch.js';

const ACCOUNT = `AC${'1'.repeat(32)}`;
const OTHER_ACCOUNT = `AC${'2'.repeat(32)}`;
const KEY_SID = `SK${'a'.repeat(32)}`;
/** An auth token: 32 hex digits, which no key-shape pattern recognises. */
const TOKEN = '0123456789abcdef0123456789abcdef';
const ADMIN: TwilioAdmin = { accountSid: ACCOUNT, user: ACCOUNT, password: TOKEN };
const STANDARD = { accountSid: ACCOUNT };
const RESTRICTED = {
  accountSid: ACCOUNT,
  policy: { allow: ['/twilio/messaging/messages/create'] },
};
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

function twilio(answers: Answer[], options: { apiBaseUrl?: string; iamBaseUrl?: string } = {}) {
  const { fetch, sent } = recordingFetch(answers);
  const provider = createTwilio({ ...options, http: noWait(fetch) });
  return { provider, sent };
}

const twilioFailure = (status: number, code: number, message: string) => ({
  status,
  body: { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status },
});
const unavailable = twilioFailure(503, 20503, 'Service unavailable');

describe('Twilio errors', () => {
  it('reads a numeric or string code and the message, and nothing from other bodies', () => {
    // Act
    const cases = [
      twilioError({ code: 20003, message: 'Authenticate' }),
      twilioError({ code: 'E1', message: 7 }),
      twilioError({ message: 'only a message' }),
      twilioError(null),
      twilioError(undefined),
    ];

    // Assess
    expect(cases).toStrictEqual([
      { code: '20003', message: 'Authenticate' },
      { code: 'E1' },
      { message: 'only a message' },
      {},
      {},
    ]);
  });

  it('keeps the auth token and a verified key out of errors that quote them', async () => {
    // Prepare
    const quoting = (secret: string) => twilioFailure(400, 20001, `bad credential ${secret}`);
    const { provider } = twilio([
      quoting(TOKEN),
      quoting(TOKEN),
      quoting(TOKEN),
      quoting(TOKEN),
      quoting(TOKEN),
      quoting('fedcba9876543210fedcba9876543210'),
    ]);
    const key = { id: KEY_SID, key: 'fedcba9876543210fedcba9876543210', spec: STANDARD };

    // Act
    const failures = [
      await failureOf(provider.mint(ADMIN, { name: 'n', spec: STANDARD }, callContext())),
      await failureOf(provider.mint(ADMIN, { name: 'n', spec: RESTRICTED }, callContext())),
      await failureOf(provider.list(ADMIN, STANDARD, callContext())),
      await failureOf(provider.list(ADMIN, RESTRICTED, callContext())),
      await failureOf(provider.revoke(ADMIN, KEY_SID, STANDARD, callContext())),
      await failureOf(provider.verify(key, callContext())),
    ];

    // Assess
    for (const failure of failures) {
      expect(failure).toBeInstanceOf(ProviderError);
      expect(failure.message).toContain('(HTTP 400, code 20001): bad credential ***');
      expect(failure.message).not.toContain('0123456789');
      expect(failure.message).not.toContain('fedcba98');
    }
  });
});

describe('Twilio requests', () => {
  it('uses configured hosts without their trailing slashes, and gives up after the configured timeout', async () => {
    // Prepare
    const { provider, sent } = twilio([{ status: 204 }, { status: 204 }], {
      apiBaseUrl: 'https://api.proxy.example//',
      iamBaseUrl: 'https://iam.proxy.example//',
    });
    const silent = createTwilio({
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
    await provider.revoke(ADMIN, KEY_SID, STANDARD, callContext());
    await provider.revoke(ADMIN, KEY_SID, RESTRICTED, callContext());
    const failure = await failureOf(
      silent.verify({ id: KEY_SID, key: 'k', spec: STANDARD }, callContext()),
    );

    // Assess
    expect(sent.map((request) => request.url)).toEqual([
      `https://api.proxy.example/2010-04-01/Accounts/${ACCOUNT}/Keys/${KEY_SID}.json`,
      `https://iam.proxy.example/v1/Keys/${KEY_SID}`,
    ]);
    expect(failure).toBeInstanceOf(ConnectTimeoutError);
    expect(failure.message).toBe(
      `Twilio GET /2010-04-01/Accounts/${ACCOUNT}/IncomingPhoneNumbers.json did not answer within 150 ms`,
    );
  });

  it('verifies a key by reading one phone number with the key itself, repeating a 503', async () => {
    // Prepare
    const { provider, sent } = twilio([
      unavailable,
      { status: 200, body: { incoming_phone_numbers: [] } },
    ]);

    // Act
    const verdict = await provider.verify(
      { id: KEY_SID, key: 'key-secret', spec: STANDARD },
      callContext(),
    );

    // Assess
    expect(verdict).toBe('ok');
    expect(sent).toHaveLength(2);
    expect(sent[1]).toMatchObject({
      method: 'GET',
      url: `https://api.twilio.com/2010-04-01/Accounts/${ACCOUNT}/IncomingPhoneNumbers.json?PageSize=1`,
      headers: { authorization: basic(KEY_SID, 'key-secret') },
    });
  });

  it('never repeats a create after a 503 (no idempotency key), on either API', async () => {
    // Prepare
    const { provider, sent } = twilio([unavailable, unavailable]);

    // Act
    const standard = await failureOf(
      provider.mint(ADMIN, { name: 'n', spec: STANDARD }, callContext()),
    );
    const restricted = await failureOf(
      provider.mint(ADMIN, { name: 'n', spec: RESTRICTED }, callContext()),
    );

    // Assess
    expect(sent).toHaveLength(2);
    for (const failure of [standard, restricted]) {
      expect((failure as ProviderError).status).toBe(503);
      expect(failure.message).toContain('(minting a key)');
    }
  });
});

describe('Twilio minting', () => {
  it('posts a form to the Keys resource of each API, with Basic auth of the managing credential', async () => {
    // Prepare
    const { provider, sent } = twilio([
      { status: 201, body: { sid: KEY_SID, secret: 'restricted-secret' } },
      { status: 201, body: { sid: KEY_SID, secret: 'standard-secret' } },
    ]);

    // Act
    await provider.mint(ADMIN, { name: 'n1', spec: RESTRICTED }, callContext());
    await provider.mint(ADMIN, { name: 'n2', spec: STANDARD }, callContext());

    // Assess
    const headers = {
      accept: 'application/json',
      authorization: basic(ACCOUNT, TOKEN),
      'content-type': 'application/x-www-form-urlencoded',
    };
    expect(sent.map(({ method, url, headers }) => ({ method, url, headers }))).toEqual([
      { method: 'POST', url: 'https://iam.twilio.com/v1/Keys', headers },
      {
        method: 'POST',
        url: `https://api.twilio.com/2010-04-01/Accounts/${ACCOUNT}/Keys.json`,
        headers,
      },
    ]);
    expect(Object.fromEntries(new URLSearchParams(sent[0]?.body))).toEqual({
      AccountSid: ACCOUNT,
      FriendlyName: 'n1',
      KeyType: 'restricted',
      Policy: JSON.stringify(RESTRICTED.policy),
    });
    expect(sent[1]?.body).toBe('FriendlyName=n2');
  });

  it('accepts a 200 as well as a 201, and registers the secret before returning it', async () => {
    // Prepare
    const { provider } = twilio([{ status: 200, body: { sid: KEY_SID, secret: 'new-secret' } }]);
    const call = callContext();

    // Act
    const minted = await provider.mint(ADMIN, { name: 'n', spec: STANDARD }, call);

    // Assess
    expect(minted).toEqual({ id: KEY_SID, key: 'new-secret', name: 'n' });
    expect(call.redacted).toEqual(['new-secret']);
  });

  it.each([
    ['no sid', { secret: 's3cret' }],
    ['no secret', { sid: KEY_SID }],
    ['an empty secret', { sid: KEY_SID, secret: '' }],
    ['a numeric secret', { sid: KEY_SID, secret: 5 }],
    ['a null body', null],
  ])(
    'refuses a create answer with %s, and registers only a secret it was given',
    async (_, body) => {
      // Prepare
      const { provider } = twilio([{ status: 201, body }]);
      const call = callContext();

      // Act
      const failure = await failureOf(provider.mint(ADMIN, { name: 'n', spec: STANDARD }, call));

      // Assess
      expect(failure).toBeInstanceOf(ProviderError);
      expect((failure as ProviderError).status).toBe(201);
      expect((failure as ProviderError).provider).toBe('Twilio');
      const given = (body as { secret?: unknown } | null)?.secret;
      expect(call.redacted).toEqual(typeof given === 'string' ? [given] : []);
    },
  );

  it('reports a refused create by its class: 401 dead credentials, 403 missing permission', async () => {
    // Prepare
    const { provider } = twilio([
      twilioFailure(401, 20003, 'Authenticate'),
      twilioFailure(403, 70051, 'Authorization Failed'),
    ]);

    // Act
    const dead = await failureOf(
      provider.mint(ADMIN, { name: 'n', spec: STANDARD }, callContext()),
    );
    const denied = await failureOf(
      provider.mint(ADMIN, { name: 'n', spec: RESTRICTED }, callContext()),
    );

    // Assess
    expect(dead).toBeInstanceOf(AuthenticationError);
    expect(denied).toBeInstanceOf(PermissionDeniedError);
    expect((denied as PermissionDeniedError).code).toBe('70051');
  });
});

describe('Twilio listing', () => {
  it('follows next_page_uri on the API host, repeating a 503, and reads sid and friendly name', async () => {
    // Prepare
    const next = `/2010-04-01/Accounts/${ACCOUNT}/Keys.json?PageSize=1000&Page=1&PageToken=PA1`;
    const { provider, sent } = twilio([
      unavailable,
      {
        status: 200,
        body: {
          keys: [
            { sid: 'SK1', friendly_name: 'rotation-1' },
            { sid: 'SK2' },
            { friendly_name: 'no sid' },
            null,
          ],
          next_page_uri: next,
        },
      },
      { status: 200, body: { keys: [{ sid: 'SK3', friendly_name: 7 }], next_page_uri: null } },
    ]);

    // Act
    const keys = await provider.list(ADMIN, STANDARD, callContext());

    // Assess
    expect(keys).toEqual([
      { id: 'SK1', name: 'rotation-1' },
      { id: 'SK2', name: '' },
      { id: 'SK3', name: '' },
    ]);
    expect(sent.map((request) => request.url)).toEqual([
      `https://api.twilio.com/2010-04-01/Accounts/${ACCOUNT}/Keys.json?PageSize=1000`,
      `https://api.twilio.com/2010-04-01/Accounts/${ACCOUNT}/Keys.json?PageSize=1000`,
      `https://api.twilio.com${next}`,
    ]);
    expect(sent[0]?.headers.authorization).toBe(basic(ACCOUNT, TOKEN));
  });

  it('lists restricted keys through IAM v1, following meta.next_page_url', async () => {
    // Prepare
    const next = `https://iam.twilio.com/v1/Keys?AccountSid=${ACCOUNT}&PageSize=1000&Page=1&PageToken=PA1`;
    const { provider, sent } = twilio([
      {
        status: 200,
        body: { keys: [{ sid: 'SK1', friendly_name: 'a' }], meta: { next_page_url: next } },
      },
      {
        status: 200,
        body: { keys: [{ sid: 'SK2', friendly_name: 'b' }], meta: { next_page_url: '' } },
      },
    ]);

    // Act
    const keys = await provider.list(ADMIN, RESTRICTED, callContext());

    // Assess
    expect(keys).toEqual([
      { id: 'SK1', name: 'a' },
      { id: 'SK2', name: 'b' },
    ]);
    expect(sent.map((request) => request.url)).toEqual([
      `https://iam.twilio.com/v1/Keys?AccountSid=${ACCOUNT}&PageSize=1000`,
      next,
    ]);
  });

  it('refuses a next page on another host, a page without "keys", and a refused listing', async () => {
    // Prepare
    const { provider } = twilio([
      { status: 200, body: { keys: [], next_page_uri: 'https://evil.example/Keys.json' } },
      { status: 200, body: { Keys: [] } },
      twilioFailure(401, 20003, 'Authenticate'),
    ]);

    // Act
    const offHost = await failureOf(provider.list(ADMIN, STANDARD, callContext()));
    const shapeless = await failureOf(provider.list(ADMIN, STANDARD, callContext()));
    const refused = await failureOf(provider.list(ADMIN, STANDARD, callContext()));

    // Assess
    expect(offHost).toBeInstanceOf(ProviderError);
    expect((offHost as ProviderError).provider).toBe('Twilio');
    expect(offHost.message).toContain('next-page link to another host (https://evil.example)');
    expect(shapeless).toBeInstanceOf(ProviderError);
    expect((shapeless as ProviderError).provider).toBe('Twilio');
    expect((shapeless as ProviderError).status).toBe(200);
    expect(refused).toBeInstanceOf(AuthenticationError);
    expect(refused.message).toContain('(listing keys)');
  });

  it('stops after 50 pages of a listing that never ends', async () => {
    // Prepare
    const endless = () => ({
      status: 200,
      body: { keys: [], next_page_uri: `/2010-04-01/Accounts/${ACCOUNT}/Keys.json?Page=n` },
    });
    const { provider, sent } = twilio(Array.from({ length: 60 }, () => endless));

    // Act
    const failure = await failureOf(provider.list(ADMIN, STANDARD, callContext()));

    // Assess
    expect(failure).toBeInstanceOf(ProviderError);
    expect(failure.message).toBe('Twilio listed more than 50 pages of keys; stopping');
    expect((failure as ProviderError).provider).toBe('Twilio');
    expect(sent).toHaveLength(50);
  });
});

describe('Twilio revoking', () => {
  it('deletes through the API that made the key: 204 and 200 revoked, 404 already gone', async () => {
    // Prepare
    const { provider, sent } = twilio([
      unavailable,
      { status: 204 },
      { status: 200, body: {} },
      twilioFailure(404, 20404, 'The requested resource was not found'),
    ]);

    // Act
    const outcomes = [
      await provider.revoke(ADMIN, KEY_SID, STANDARD, callContext()),
      await provider.revoke(ADMIN, 'SK/2', RESTRICTED, callContext()),
      await provider.revoke(ADMIN, KEY_SID, STANDARD, callContext()),
    ];

    // Assess
    expect(outcomes).toEqual(['revoked', 'revoked', 'not-found']);
    expect(sent.map(({ method, url }) => `${method} ${url}`)).toEqual([
      `DELETE https://api.twilio.com/2010-04-01/Accounts/${ACCOUNT}/Keys/${KEY_SID}.json`,
      `DELETE https://api.twilio.com/2010-04-01/Accounts/${ACCOUNT}/Keys/${KEY_SID}.json`,
      'DELETE https://iam.twilio.com/v1/Keys/SK%2F2',
      `DELETE https://api.twilio.com/2010-04-01/Accounts/${ACCOUNT}/Keys/${KEY_SID}.json`,
    ]);
    expect(sent[0]?.headers.authorization).toBe(basic(ACCOUNT, TOKEN));
  });

  it('fails another answer, naming the key', async () => {
    // Prepare
    const { provider } = twilio([twilioFailure(401, 20003, 'Authenticate')]);

    // Act
    const failure = await failureOf(provider.revoke(ADMIN, KEY_SID, STANDARD, callContext()));

    // Assess
    expect(failure).toBeInstanceOf(AuthenticationError);
    expect(failure.message).toContain(`(revoking key ${KEY_SID})`);
  });
});

describe('Twilio secrets', () => {
  // Made in each test: an adapter made while the file loads would escape mutation testing.
  const provider = () => createTwilio();
  const parseFailure = (parse: () => unknown) => {
    try {
      parse();
    } catch (error) {
      return error as InvalidSecretError;
    }
    throw new Error('expected the secret to be refused');
  };

  it('names itself for the secret\'s "provider" field and for messages', () => {
    // Act
    const twilioProvider = provider();

    // Assess
    expect([twilioProvider.id, twilioProvider.name, twilioProvider.maxNameLength]).toEqual([
      'twilio',
      'Twilio',
      64,
    ]);
  });

  it('says what a SID looks like when one is malformed', () => {
    // Act
    const spec = parseFailure(() => provider().parseSpec({ account_sid: 'AC1' }, 'AWSCURRENT'));
    const admin = parseFailure(() =>
      provider().parseAdmin(
        { account_sid: 'AC1', auth_token: TOKEN },
        'managing secret m',
        STANDARD,
      ),
    );
    const key = parseFailure(() =>
      provider().parseAdmin({ key_id: 'SK1', key: 'k' }, 'managing secret m', STANDARD),
    );

    // Assess
    expect(spec.message).toContain('a Twilio account SID (AC followed by 32 hex digits)');
    expect(admin.message).toContain('must be a Twilio account SID');
    expect(key.message).toContain('a Twilio API key SID (SK followed by 32 hex digits)');
  });

  it('reads a standard and a restricted key, region us1 and a null policy included', () => {
    // Act
    const standard = provider().parseSpec(
      { account_sid: ACCOUNT, region: 'us1', policy: null },
      'AWSCURRENT',
    );
    const restricted = provider().parseSpec(
      { account_sid: ACCOUNT, region: null, edge: null, policy: RESTRICTED.policy },
      'AWSCURRENT',
    );

    // Assess
    expect(standard).toStrictEqual({ accountSid: ACCOUNT });
    expect(restricted).toStrictEqual(RESTRICTED);
  });

  it.each([
    ['another region', { region: 'ie1' }, 'region'],
    ['any edge', { edge: 'dublin' }, 'edge'],
    ['an edge named us1', { edge: 'us1' }, 'edge'],
    ['an account SID of another shape', { account_sid: 'AC123' }, 'account_sid'],
    ['a policy that is a list', { policy: ['allow'] }, 'policy'],
    ['a policy that is text', { policy: 'allow all' }, 'policy'],
    ['a policy over 16 KiB', { policy: { allow: ['x'.repeat(16_384)] } }, 'policy'],
  ])('refuses %s, naming the field', (_, fields, field) => {
    // Act
    const failure = parseFailure(() =>
      provider().parseSpec({ account_sid: ACCOUNT, ...fields }, 'AWSCURRENT'),
    );

    // Assess
    expect(failure).toBeInstanceOf(InvalidSecretError);
    expect(failure.field).toBe(field);
  });

  it('accepts a policy of exactly 16 KiB', () => {
    // Prepare: {"a":"…"} is 8 characters around the value.
    const policy = { a: 'x'.repeat(16_384 - 8) };

    // Act
    const spec = provider().parseSpec({ account_sid: ACCOUNT, policy }, 'AWSCURRENT');

    // Assess
    expect(JSON.stringify(spec.policy)).toHaveLength(16_384);
  });

  it('tells versions of another account or another kind of key apart', () => {
    // Act
    const same = provider().differentTarget(RESTRICTED, { ...RESTRICTED, policy: { allow: [] } });
    const account = provider().differentTarget(STANDARD, { accountSid: OTHER_ACCOUNT });
    const kind = provider().differentTarget(STANDARD, RESTRICTED);
    const reverse = provider().differentTarget(RESTRICTED, STANDARD);

    // Assess
    expect(same).toBeUndefined();
    expect(provider().differentTarget(STANDARD, STANDARD)).toBeUndefined();
    expect(account).toBe(`it names account ${OTHER_ACCOUNT} but AWSCURRENT names ${ACCOUNT}`);
    expect(kind).toBe('one names a restricted key (policy) and the other a standard key');
    expect(reverse).toBe(kind);
  });

  it('reads a managing secret with the auth token, or with a Main key, for the rotated account', () => {
    // Act
    const token = provider().parseAdmin({ auth_token: TOKEN }, 'managing secret m', STANDARD);
    const named = provider().parseAdmin(
      { account_sid: ACCOUNT, auth_token: TOKEN },
      'managing secret m',
      STANDARD,
    );
    const main = provider().parseAdmin(
      { auth_token: null, key_id: KEY_SID, key: 'main-secret' },
      'managing secret m',
      STANDARD,
    );

    // Assess
    expect(token).toStrictEqual(ADMIN);
    expect(named).toStrictEqual(ADMIN);
    expect(main).toStrictEqual({ accountSid: ACCOUNT, user: KEY_SID, password: 'main-secret' });
    expect(provider().secretsOfAdmin(main)).toEqual(['main-secret']);
  });

  it.each([
    ['another account', { account_sid: OTHER_ACCOUNT, auth_token: TOKEN }, 'account_sid'],
    ['an account SID of another shape', { account_sid: 'AC1', auth_token: TOKEN }, 'account_sid'],
    ['neither token nor key', {}, 'auth_token'],
    ['a key id without the key', { key_id: KEY_SID }, 'key'],
    ['a key without its id', { key: 'main-secret' }, 'key_id'],
    ['a key id of another shape', { key_id: 'SK1', key: 'main-secret' }, 'key_id'],
    ['an auth token over 256 characters', { auth_token: 't'.repeat(257) }, 'auth_token'],
    ['a key over 256 characters', { key_id: KEY_SID, key: 'k'.repeat(257) }, 'key'],
  ])('refuses a managing secret with %s, naming the field', (_, raw, field) => {
    // Act
    const failure = parseFailure(() => provider().parseAdmin(raw, 'managing secret m', STANDARD));

    // Assess
    expect(failure).toBeInstanceOf(InvalidSecretError);
    expect(failure.field).toBe(field);
  });

  it('accepts a token and a key of 256 characters', () => {
    // Act
    const token = provider().parseAdmin({ auth_token: 't'.repeat(256) }, 'm', STANDARD);
    const key = provider().parseAdmin({ key_id: KEY_SID, key: 'k'.repeat(256) }, 'm', STANDARD);

    // Assess
    expect(token.password).toHaveLength(256);
    expect(key.password).toHaveLength(256);
  });
});
