import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AuthenticationError } from '../../shared/common/errors.js';
import {
  KeyLimitError,
  PermissionDeniedError,
  ProviderError,
} from '../../shared/providers/errors.js';
import { createSendGrid } from '../../shared/providers/sendgrid.js';
import { createStripe, toKeyListing } from '../../shared/providers/stripe.js';
import { createTwilio } from '../../shared/providers/twilio.js';
import { encryptCompactJwe } from '../support/fake-stripe.js';
import { LogRecorder } from '../support/log-recorder.js';

interface Sent {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string | undefined;
}

/** A fetch that records requests and answers from `answers` in order. */
function recordingFetch(answers: { status: number; body?: unknown }[]) {
  const sent: Sent[] = [];
  const fetch = async (url: string | URL | Request, init?: RequestInit) => {
    sent.push({
      url: String(url),
      method: init?.method ?? 'GET',
      headers: Object.fromEntries(
        Object.entries((init?.headers ?? {}) as Record<string, string>).map(([k, v]) => [
          k.toLowerCase(),
          v,
        ]),
      ),
      body: typeof init?.body === 'string' ? init.body : undefined,
    });
    const answer = answers.shift() ?? { status: 500 };
    return new Response(answer.body === undefined ? null : JSON.stringify(answer.body), {
      status: answer.status,
    });
  };
  return { fetch, sent };
}

const redacted: string[] = [];
const call = {
  logger: new LogRecorder(),
  remainingMs: () => 30_000,
  redact: (v: string) => void redacted.push(v),
};
const ACCOUNT = `AC${'1'.repeat(32)}`;

describe('SendGrid adapter', () => {
  it('uses the EU host for secrets with "region": "eu" and the global host otherwise', async () => {
    // Prepare
    const { fetch, sent } = recordingFetch([
      { status: 200, body: { scopes: [] } },
      { status: 200, body: { scopes: [] } },
    ]);
    const sendGrid = createSendGrid({ http: { fetch } });

    // Act
    await sendGrid.verify({ id: 'a', key: 'SG.k.k', spec: { region: 'eu' } }, call);
    await sendGrid.verify({ id: 'a', key: 'SG.k.k', spec: { region: 'global' } }, call);

    // Assess
    expect(sent.map((request) => request.url)).toEqual([
      'https://api.eu.sendgrid.com/v3/scopes',
      'https://api.sendgrid.com/v3/scopes',
    ]);
    expect(sent[0]?.headers.authorization).toBe('Bearer SG.k.k');
  });

  it('mints with the name and scopes, and registers the new key before returning it', async () => {
    // Prepare
    const { fetch, sent } = recordingFetch([
      {
        status: 201,
        body: { api_key: 'SG.new.key', api_key_id: 'id-1', name: 'n', scopes: ['mail.send'] },
      },
    ]);

    // Act
    const minted = await createSendGrid({ http: { fetch } }).mint(
      { key: 'SG.admin.key' },
      { name: 'rotation-abc-token', spec: { region: 'global', scopes: ['mail.send'] } },
      call,
    );

    // Assess
    expect(minted).toEqual({ id: 'id-1', key: 'SG.new.key', name: 'rotation-abc-token' });
    expect(JSON.parse(sent[0]?.body ?? '')).toEqual({
      name: 'rotation-abc-token',
      scopes: ['mail.send'],
    });
    expect(redacted).toContain('SG.new.key');
  });

  it('tells the 100-key account limit from a missing scope, both answered 403', async () => {
    // Prepare
    const hundred = Array.from({ length: 100 }, (_, i) => ({ api_key_id: `k${i}`, name: `k${i}` }));
    const forbidden = {
      status: 403,
      body: { errors: [{ field: null, message: 'access forbidden' }] },
    };
    const full = recordingFetch([forbidden, { status: 200, body: { result: hundred } }]);
    const scope = recordingFetch([
      forbidden,
      { status: 200, body: { result: hundred.slice(0, 3) } },
    ]);
    const request = { name: 'n', spec: { region: 'global' as const } };

    // Act
    const atLimit = await createSendGrid({ http: { fetch: full.fetch } })
      .mint({ key: 'SG.a.b' }, request, call)
      .catch((error: unknown) => error);
    const lacksScope = await createSendGrid({ http: { fetch: scope.fetch } })
      .mint({ key: 'SG.a.b' }, request, call)
      .catch((error: unknown) => error);

    // Assess
    expect(atLimit).toBeInstanceOf(KeyLimitError);
    expect((atLimit as Error).message).toBe(
      'SendGrid allows 100 API keys per account and this account has 100: delete keys that are no longer used, then retry the rotation',
    );
    expect(lacksScope).toBeInstanceOf(PermissionDeniedError);
    expect((lacksScope as Error).message).toBe(
      'SendGrid denied the request: SendGrid POST /v3/api_keys (minting a key) (HTTP 403): access forbidden',
    );
  });
});

describe('Twilio adapter', () => {
  it('mints restricted keys through IAM v1 with their policy, and standard keys through 2010-04-01', async () => {
    // Prepare
    const { fetch, sent } = recordingFetch([
      { status: 201, body: { sid: `SK${'a'.repeat(32)}`, secret: 'restricted-secret' } },
      { status: 201, body: { sid: `SK${'b'.repeat(32)}`, secret: 'standard-secret' } },
    ]);
    const twilio = createTwilio({ http: { fetch } });
    const admin = { accountSid: ACCOUNT, user: ACCOUNT, password: 'token' };
    const policy = { allow: ['/twilio/messaging/messages/create'] };

    // Act
    await twilio.mint(admin, { name: 'n1', spec: { accountSid: ACCOUNT, policy } }, call);
    await twilio.mint(admin, { name: 'n2', spec: { accountSid: ACCOUNT } }, call);

    // Assess
    expect(sent[0]?.url).toBe('https://iam.twilio.com/v1/Keys');
    expect(Object.fromEntries(new URLSearchParams(sent[0]?.body))).toEqual({
      AccountSid: ACCOUNT,
      FriendlyName: 'n1',
      KeyType: 'restricted',
      Policy: JSON.stringify(policy),
    });
    expect(sent[1]?.url).toBe(`https://api.twilio.com/2010-04-01/Accounts/${ACCOUNT}/Keys.json`);
    expect(sent[1]?.body).toBe('FriendlyName=n2');
    expect(sent[0]?.headers.authorization).toBe(
      `Basic ${Buffer.from(`${ACCOUNT}:token`).toString('base64')}`,
    );
  });

  it('tells a dead key (401, 20003) from a live key without the permission (403, 70051)', async () => {
    // Prepare
    const { fetch } = recordingFetch([
      { status: 403, body: { code: 70051, message: 'Authorization Failed', status: 403 } },
      { status: 401, body: { code: 20003, message: 'Authenticate', status: 401 } },
    ]);
    const twilio = createTwilio({ http: { fetch } });
    const key = { id: `SK${'c'.repeat(32)}`, key: 'secret', spec: { accountSid: ACCOUNT } };

    // Act
    const restricted = await twilio.verify(key, call);
    const dead = await twilio.verify(key, call).catch((error: unknown) => error);

    // Assess
    expect(restricted).toBe('authenticated-without-permission');
    expect(dead).toBeInstanceOf(AuthenticationError);
    expect((dead as Error).message).toMatch(/\(HTTP 401, code 20003\): Authenticate$/);
  });
});

describe('Stripe adapter', () => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

  it('sends the preview version, the context, an idempotency key and our public key, then decrypts the answer', async () => {
    // Prepare
    const stripe = createStripe({ apiVersion: '2026-09-30.preview', http: {} });
    const admin = stripe.parseAdmin(
      { key: 'sk_live_app', stripe_context: 'acct_1X', private_key: privateKeyPem },
      'managing secret m',
      {},
    );
    const answer = (publicPem: string) => ({
      status: 200,
      body: {
        id: 'mk_new',
        secret_key: {
          encrypted_secret: {
            ciphertext: encryptCompactJwe('rk_live_new_secret', publicPem),
            format: 'jwe_compact',
            recipient_key_id: admin.publicKeyId,
          },
        },
      },
    });
    const { fetch, sent } = recordingFetch([answer(admin.publicKeyPem ?? '')]);

    // Act
    const minted = await createStripe({ apiVersion: '2026-09-30.preview', http: { fetch } }).mint(
      admin,
      { name: 'rotation-x', spec: {} },
      call,
    );

    // Assess
    expect(minted).toEqual({ id: 'mk_new', key: 'rk_live_new_secret', name: 'rotation-x' });
    const request = sent[0] as Sent;
    expect(request.url).toBe('https://api.stripe.com/v2/iam/api_keys');
    expect(request.headers).toMatchObject({
      authorization: 'Bearer sk_live_app',
      'stripe-version': '2026-09-30.preview',
      'stripe-context': 'acct_1X',
      'content-type': 'application/json',
    });
    expect(request.headers['idempotency-key']).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.parse(request.body ?? '')).toEqual({
      type: 'secret_key',
      name: 'rotation-x',
      public_key: {
        id: admin.publicKeyId,
        pem_key: { algorithm: 'rsa', data: admin.publicKeyPem },
      },
    });
  });

  it('expires a key whose secret it cannot read, and says so', async () => {
    // Prepare: a test-mode managing secret without private key, and an encrypted answer.
    const { fetch, sent } = recordingFetch([
      {
        status: 200,
        body: {
          id: 'mk_unreadable',
          secret_key: { encrypted_secret: { ciphertext: 'a.b.c.d.e' } },
        },
      },
      { status: 200, body: { id: 'mk_unreadable', status: 'expired' } },
    ]);
    const stripe = createStripe({ apiVersion: '2026-09-30.preview', http: { fetch } });

    // Act
    const failure = await stripe
      .mint({ key: 'sk_test_app' }, { name: 'n', spec: {} }, call)
      .catch((error: unknown) => error);

    // Assess
    expect(failure).toBeInstanceOf(ProviderError);
    expect((failure as Error).message).toBe(
      'Stripe returned the new secret encrypted, and the managing secret has no "private_key" to decrypt it (expired key mk_unreadable)',
    );
    expect(sent[1]?.url).toBe('https://api.stripe.com/v2/iam/api_keys/mk_unreadable/expire');
  });

  it('keeps nothing of a listed key but id, name, status and type: the list carries every secret', async () => {
    // Prepare
    const item = {
      id: 'mk_1',
      object: 'v2.iam.api_key',
      name: 'rotation-abc',
      status: 'active',
      type: 'secret_key',
      secret_key: { token: 'rk_live_leaky_secret', secret_token_redacted: 'rk_live_***' },
    };
    const { fetch } = recordingFetch([
      {
        status: 200,
        body: { data: [item, { ...item, id: 'mk_2', status: 'expired' }], next_page_url: null },
      },
    ]);

    // Act
    const listing = toKeyListing(item);
    const listed = await createStripe({ apiVersion: '2026-09-30.preview', http: { fetch } }).list(
      { key: 'sk_test_app' },
      {},
      call,
    );

    // Assess
    expect(listing).toEqual({
      id: 'mk_1',
      name: 'rotation-abc',
      status: 'active',
      type: 'secret_key',
    });
    expect(listed).toEqual([{ id: 'mk_1', name: 'rotation-abc' }]);
    expect(JSON.stringify([listing, listed])).not.toContain('leaky');
  });
});
