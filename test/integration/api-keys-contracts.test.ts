/**
 * The API-key adapters and the provider fakes against the providers' published OpenAPI documents
 * (pinned copies in test/contracts/, see its README). Each provider is driven through whole
 * rotations and through every error the adapter reads (401, 403, 404, 429); then every request
 * the adapter sent is checked to be an operation of the document with valid parameters, body and
 * authentication, and every answer the fake gave is checked against that operation's schema.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthenticationError } from '../../shared/common/errors.js';
import { SENDGRID_BASE_URLS } from '../../shared/providers/sendgrid.js';
import { createStripe, STRIPE_BASE_URL } from '../../shared/providers/stripe.js';
import { TWILIO_API_BASE_URL, TWILIO_IAM_BASE_URL } from '../../shared/providers/twilio.js';
import type { KeyProvider } from '../../shared/providers/types.js';
import { apiKeys } from '../../shared/strategies/api-keys.js';
import { sendGridFixture, stripeFixture, twilioFixture } from '../support/api-key-fixtures.js';
import { PHONE_NUMBERS_READ } from '../support/fake-twilio.js';
import { LogRecorder } from '../support/log-recorder.js';
import {
  checkTraffic,
  OpenApiContract,
  stripeManagedKeysContract,
} from '../support/openapi-contract.js';
import { RotationHarness } from '../support/rotation-harness.js';

const harness = new RotationHarness();
const contractFile = (name: string) =>
  fileURLToPath(new URL(`../contracts/${name}`, import.meta.url));
beforeAll(() => harness.start());
afterAll(() => harness.stop());

const call = { logger: new LogRecorder(), remainingMs: () => 30_000, redact: () => {} };

/** Drives `provider` and ignores how each call ends: the traffic is what is checked. */
const settle = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    () => undefined,
  );

/** The servers a document declares, without a trailing slash. */
const serversOf = async (file: string) => {
  const contract = await OpenApiContract.load(file);
  return contract.servers();
};

describe('SendGrid against twilio/sendgrid-oai (tsg_api_keys_v3, tsg_scopes_v3)', () => {
  const fixture = sendGridFixture();
  let keys: OpenApiContract;
  let scopes: OpenApiContract;
  beforeAll(async () => {
    await fixture.fake.start();
    keys = await OpenApiContract.load('tsg_api_keys_v3.json');
    scopes = await OpenApiContract.load('tsg_scopes_v3.json');
  });
  afterAll(() => fixture.fake.stop());

  it('sends only operations of the documents, and the fake answers only what they describe', async () => {
    // Prepare: three whole rotations (a key rotating itself), then each error the adapter reads.
    const { secretId } = fixture.provision(harness);
    const provider = fixture.provider() as KeyProvider<{ region: 'global' }, { key: string }>;
    const spec = { region: 'global' as const };
    const sendOnly = fixture.fake.seedKey('send-only', { scopes: ['mail.send'] });
    const dead = fixture.fake.seedKey('dead');
    fixture.fake.revokeInConsole(dead.id);

    // Act
    for (let i = 0; i < 3; i++) {
      const result = await harness.rotate(
        harness.handler(apiKeys(provider, { env: {} })),
        secretId,
      );
      expect(result.completed, String(result.error)).toBe(true);
    }
    await settle(provider.verify({ id: dead.id, key: dead.secret, spec }, call)); // 401
    await settle(provider.mint({ key: sendOnly.secret }, { name: 'n', spec }, call)); // 403
    await settle(provider.list({ key: sendOnly.secret }, spec, call)); // 403
    const admin = { key: fixture.fake.seedKey('admin').secret };
    await settle(provider.revoke(admin, 'unknown-key-id', spec, call)); // 404
    fixture.fake.rateLimitNext(1, { resetSeconds: 0 });
    await settle(provider.list(admin, spec, call)); // 429, then 200
    fixture.fake.maxKeys = fixture.fake.liveKeys().length;
    await settle(provider.mint(admin, { name: 'over-the-limit', spec }, call)); // 403 at the limit
    fixture.fake.resetSwitches();

    // Assess
    const traffic = checkTraffic(fixture.fake.requests, [
      { contract: scopes, serves: (path) => path === '/v3/scopes' },
      { contract: keys, serves: (path) => path.startsWith('/v3/api_keys') },
    ]);
    expect(traffic.unpinned).toEqual([]);
    expect(traffic.failures).toEqual([]);
    expect(traffic.statuses).toEqual(expect.arrayContaining([200, 201, 204, 401, 403, 404, 429]));
    // SendGrid's documents describe no 429 answer: its body and headers are not checked.
    expect(traffic.undescribed.every((exchange) => exchange.includes('-> 429'))).toBe(true);
  });

  it('calls only the hosts the documents declare, the EU one included', async () => {
    const servers = [
      ...(await serversOf('tsg_api_keys_v3.json')),
      ...(await serversOf('tsg_scopes_v3.json')),
    ];
    expect(servers).toEqual(expect.arrayContaining(Object.values(SENDGRID_BASE_URLS)));
  });
});

describe('Twilio against twilio/twilio-oai (twilio_api_v2010, twilio_iam_v1)', () => {
  const fixture = twilioFixture();
  let api: OpenApiContract;
  let iam: OpenApiContract;
  beforeAll(async () => {
    await fixture.fake.start();
    // The 2010-04-01 document types its page links as "uri" but its own examples (and Twilio's
    // answers) are relative ("/2010-04-01/Accounts/…"): checked as URI references.
    api = await OpenApiContract.load('twilio_api_v2010.json', {
      formatAliases: { uri: 'uri-reference' },
    });
    iam = await OpenApiContract.load('twilio_iam_v1.json');
  });
  afterAll(() => fixture.fake.stop());

  it('sends only operations of the documents, and the fake answers only what they describe', async () => {
    // Prepare: rotations of a standard and of a restricted key, then each error the adapter reads.
    const standard = fixture.provision(harness);
    const restricted = fixture.provision(harness, { policy: { allow: [PHONE_NUMBERS_READ] } });
    const provider = fixture.provider();
    const accountSid = fixture.fake.accountSid;
    const admin = { accountSid, user: accountSid, password: fixture.fake.authToken };
    const dead = fixture.fake.seedKey('dead');
    fixture.fake.revokeInConsole(dead.id);
    const blind = fixture.fake.seedKey('blind', { type: 'restricted', policy: { allow: [] } });

    // Act
    for (const { secretId } of [standard, standard, standard, restricted, restricted, restricted]) {
      const result = await harness.rotate(
        harness.handler(apiKeys(provider, { env: {} })),
        secretId,
      );
      expect(result.completed, String(result.error)).toBe(true);
    }
    for (const spec of [{ accountSid }, { accountSid, policy: { allow: [] } }]) {
      await settle(provider.verify({ id: dead.id, key: dead.secret, spec }, call)); // 401
      await settle(provider.verify({ id: blind.id, key: blind.secret, spec }, call)); // 403
      await settle(provider.revoke(admin, `SK${'0'.repeat(32)}`, spec, call)); // 404
      fixture.fake.rateLimitNext(1, { resetSeconds: 0 });
      await settle(provider.list(admin, spec, call)); // 429, then 200
    }

    // Assess
    const traffic = checkTraffic(fixture.fake.requests, [
      { contract: api, serves: (path) => path.startsWith('/2010-04-01/') },
      { contract: iam, serves: (path) => path.startsWith('/v1/') },
    ]);
    expect(traffic.unpinned).toEqual([]);
    expect(traffic.failures).toEqual([]);
    expect(traffic.statuses).toEqual(expect.arrayContaining([200, 201, 204, 401, 403, 404, 429]));
    // Twilio's documents describe success answers only: its error bodies are not checked.
    expect(traffic.undescribed.every((exchange) => / -> (401|403|404|429) /.test(exchange))).toBe(
      true,
    );
  });

  it('names keys within the FriendlyName length both documents state', () => {
    // Arrange
    const stated = [
      api.bodyField('POST', '/2010-04-01/Accounts/{AccountSid}/Keys.json', 'FriendlyName'),
      iam.bodyField('POST', '/v1/Keys', 'FriendlyName'),
    ].map((field) => Number(/up to (\d+) characters/.exec(field?.description ?? '')?.[1]));

    // Assess
    expect(stated).toEqual([64, 64]);
    expect(fixture.provider().maxNameLength).toBeLessThanOrEqual(Math.min(...stated));
  });

  it('calls only the hosts the documents declare', async () => {
    expect(await serversOf('twilio_api_v2010.json')).toContain(TWILIO_API_BASE_URL);
    expect(await serversOf('twilio_iam_v1.json')).toContain(TWILIO_IAM_BASE_URL);
  });
});

describe('Stripe against stripe/openapi (v1 spec3, as pinned by stripe-mock)', () => {
  const fixture = stripeFixture('test');
  let v1: OpenApiContract;
  beforeAll(async () => {
    await fixture.fake.start();
    v1 = await OpenApiContract.load('stripe_spec3_v1.json');
  });
  afterAll(() => fixture.fake.stop());

  it('verifies keys with an operation of the v1 document, and the fake answers as it describes', async () => {
    // Prepare
    const { secretId } = fixture.provision(harness);
    const provider = fixture.provider();
    const dead = fixture.fake.seedKey('dead');
    fixture.fake.revokeInConsole(dead.id);

    // Act
    const result = await harness.rotate(harness.handler(apiKeys(provider, { env: {} })), secretId);
    await settle(provider.verify({ id: dead.id, key: dead.secret, spec: {} }, call)); // 401

    fixture.fake.rateLimitNext(1, { resetSeconds: 0 });
    await settle(provider.verify({ id: dead.id, key: dead.secret, spec: {} }, call)); // 429, 401

    // Assess
    expect(result.completed, String(result.error)).toBe(true);
    const v1Traffic = fixture.fake.requests.filter((request) => request.path.startsWith('/v1/'));
    const traffic = checkTraffic(v1Traffic, [{ contract: v1, serves: () => true }]);
    expect(traffic.failures).toEqual([]);
    expect(traffic.statuses).toEqual(expect.arrayContaining([200, 401, 429]));
    expect(traffic.undescribed).toEqual([]);
    expect(await serversOf('stripe_spec3_v1.json')).toContain(STRIPE_BASE_URL);
  });
});

describe("Stripe's Managed API Keys against stripe/openapi's private preview (stripe_v2_iam_api_keys)", () => {
  const testMode = stripeFixture('test');
  const liveMode = stripeFixture('live');
  let v1: OpenApiContract;
  let v2: OpenApiContract;
  beforeAll(async () => {
    await testMode.fake.start();
    await liveMode.fake.start();
    v1 = await OpenApiContract.load('stripe_spec3_v1.json');
    v2 = await stripeManagedKeysContract();
  });
  afterAll(async () => {
    await testMode.fake.stop();
    await liveMode.fake.stop();
  });
  const provider = (fixture = testMode) =>
    fixture.provider() as KeyProvider<Record<string, never>, unknown>;
  const admin = (fixture = testMode, fields: Record<string, unknown> = {}) =>
    provider(fixture).parseAdmin(
      { key: fixture.fake.managingKey, stripe_context: fixture.fake.contextAccount, ...fields },
      'managing secret',
      {},
    );

  it('sends only operations of the document, and the fake answers only what it describes', async () => {
    // Prepare: rotations in test mode (plain token) and live mode (JWE), a list longer than a page.
    const rotations = [testMode, testMode, liveMode, liveMode].map((fixture) => ({
      fixture,
      secretId: fixture.provision(harness).secretId,
    }));
    for (let i = 0; i < 120; i++) testMode.fake.seedKey(`bulk-${i}`);
    const expired = testMode.fake.seedKey('expired-once');
    const holder = testMode.fake.seedKey('not-a-manager');

    // Act
    for (const { fixture, secretId } of rotations) {
      const result = await harness.rotate(
        harness.handler(apiKeys(provider(fixture), { env: {} })),
        secretId,
      );
      expect(result.completed, String(result.error)).toBe(true);
    }
    await settle(provider().revoke(admin(), expired.id, {}, call)); // 200
    await settle(provider().revoke(admin(), expired.id, {}, call)); // 400 api_key_expired
    await settle(provider().revoke(admin(), 'mk_unknown', {}, call)); // 404
    await settle(provider().list(admin(testMode, { stripe_context: undefined }), {}, call)); // 400
    await settle(provider().list(admin(testMode, { key: holder.secret }), {}, call)); // 403
    await settle(provider().list(admin(testMode, { key: 'sk_test_unknown' }), {}, call)); // 401
    await settle(provider().list(admin(testMode, { stripe_context: 'acct_other' }), {}, call)); // 403
    const otherVersion = createStripe({
      baseUrl: testMode.fake.baseUrl,
      apiVersion: '2025-01-01.preview',
    }) as KeyProvider<Record<string, never>, unknown>;
    await settle(otherVersion.list(admin(), {}, call)); // 400, a preview without the API
    testMode.fake.rateLimitNext(1, { resetSeconds: 0 });
    await settle(provider().list(admin(), {}, call)); // 429, then 200
    testMode.fake.maxKeys = testMode.fake.liveKeys().length;
    await settle(provider().mint(admin(), { name: 'over-the-limit', spec: {} }, call)); // 400
    testMode.fake.resetSwitches();

    // Assess
    const requests = [...testMode.fake.requests, ...liveMode.fake.requests];
    const traffic = checkTraffic(requests, [
      { contract: v1, serves: (path) => path.startsWith('/v1/') },
      { contract: v2, serves: (path) => path.startsWith('/v2/iam/') },
    ]);
    expect(traffic.unpinned).toEqual([]);
    expect(traffic.failures).toEqual([]);
    expect(traffic.undescribed).toEqual([]);
    expect(traffic.statuses).toEqual(expect.arrayContaining([200, 400, 401, 403, 404, 429]));
    const operations = new Set(
      requests.map((r) => `${r.method} ${r.path.replace(/\/mk_[A-Za-z0-9]+/, '/{id}')}`),
    );
    expect([...operations].sort()).toEqual([
      'GET /v1/balance',
      'GET /v2/iam/api_keys',
      'POST /v2/iam/api_keys',
      'POST /v2/iam/api_keys/{id}/expire',
    ]);
    expect(requests.some((r) => r.query.has('page'))).toBe(true); // the second page was read
    expect(await serversOf('stripe_v2_iam_api_keys.json')).toContain(STRIPE_BASE_URL);
  });

  it('handles exactly the error codes the document names for each operation, with its HTTP status', () => {
    // Arrange: the codes the adapter tells apart, and the operations it expects them from.
    const handled = [
      ['GET', '/v2/iam/api_keys', 'api_key_direct_operation_not_supported'],
      ['POST', '/v2/iam/api_keys', 'api_key_direct_operation_not_supported'],
      ['POST', '/v2/iam/api_keys', 'api_key_limit_reached'],
      ['POST', '/v2/iam/api_keys/{id}/expire', 'api_key_direct_operation_not_supported'],
      ['POST', '/v2/iam/api_keys/{id}/expire', 'api_key_expired'],
    ] as const;

    // Act
    const named = handled.map(([method, path, code]) => {
      const errors = (v2.operation(method, path)?.['x-stripeErrors'] ?? []) as {
        code: string;
        httpStatusCode: number;
      }[];
      return errors.find((error) => error.code === code)?.httpStatusCode;
    });

    // Assess
    expect(named).toEqual(handled.map(() => 400));
  });

  it('accepts, as STRIPE_API_VERSION, the preview version the document is published under', () => {
    // Arrange
    const { version } = v2.pinned.info;

    // Act
    const create = () => createStripe({ env: { STRIPE_API_VERSION: version } });

    // Assess
    expect(version).toBe('2026-07-29.preview');
    expect(create).not.toThrow();
  });

  it('counts a key Stripe answers "already expired" (400 api_key_expired) as revoked', async () => {
    // Prepare
    const key = testMode.fake.seedKey('expired-twice');
    await provider().revoke(admin(), key.id, {}, call);

    // Act: the same expire again, as a retried finishSecret sends it.
    const again = await provider().revoke(admin(), key.id, {}, call);

    // Assess
    expect(again).toBe('revoked');
    expect(testMode.fake.requests.at(-1)?.response?.body).toMatchObject({
      error: { code: 'api_key_expired' },
    });
  });

  it('says that Stripe-Context is needed when Stripe refuses a direct account', async () => {
    // Act
    const refused = await provider()
      .list(admin(testMode, { stripe_context: undefined }), {}, call)
      .then(
        () => undefined,
        (error: unknown) => error as Error,
      );

    // Assess
    expect(refused?.message).toMatch(
      /api_key_direct_operation_not_supported.*set "stripe_context" in the managing secret/,
    );
  });

  it('is the text of the pieces manifest.json records, at the blob it names', () => {
    // Arrange
    const manifest = JSON.parse(readFileSync(contractFile('manifest.json'), 'utf8')) as {
      documents: {
        file: string;
        blob?: string;
        pieces?: { what: string; length: number; sha256: string }[];
      }[];
    };
    const entry = manifest.documents.find((d) => d.file === 'stripe_v2_iam_api_keys.json');
    const excerpt = v2.pinned as unknown as {
      openapi: string;
      info: unknown;
      servers: unknown;
      security: unknown;
      paths: Record<string, unknown>;
      components: { schemas: Record<string, unknown>; securitySchemes: unknown };
    };
    const members = (object: Record<string, unknown>) =>
      Object.entries(object)
        .map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`)
        .join(',');
    const { schemas } = excerpt.components;
    const errors = Object.fromEntries(
      Object.entries(schemas).filter(([name]) => name.startsWith('v2.error.')),
    );

    // Act: each piece rebuilt from the excerpt, as compact JSON in the document's own key order.
    const rebuilt = [
      members({
        openapi: excerpt.openapi,
        info: excerpt.info,
        servers: excerpt.servers,
        security: excerpt.security,
      }),
      members({ '/v2/iam/api_keys': excerpt.paths['/v2/iam/api_keys'] }),
      members({ '/v2/iam/api_keys/{id}/expire': excerpt.paths['/v2/iam/api_keys/{id}/expire'] }),
      members({ 'v2.error': schemas['v2.error'] }),
      members(errors),
      members({ 'v2.iam.api_key': schemas['v2.iam.api_key'] }),
      members({ securitySchemes: excerpt.components.securitySchemes }),
    ].map((text) => ({
      length: text.length,
      sha256: createHash('sha256').update(text, 'utf8').digest('hex'),
    }));

    // Assess
    expect(entry?.blob).toBe('c94e49503a6d50216125fca4cc64d630b1af81dc');
    expect(rebuilt).toEqual(entry?.pieces?.map(({ length, sha256 }) => ({ length, sha256 })));
  });
});

/**
 * The binary scripts/build-stripe-mock.sh builds once into ~/.cache (CI runs it and exports
 * STRIPE_MOCK_BIN; elsewhere the test runs the script, which needs Go the first time).
 */
function stripeMockBinary(): string {
  if (process.env.STRIPE_MOCK_BIN) return process.env.STRIPE_MOCK_BIN;
  const script = fileURLToPath(new URL('../../scripts/build-stripe-mock.sh', import.meta.url));
  return execFileSync('bash', [script], { encoding: 'utf8', timeout: 170_000 }).trim();
}

describe("Stripe's official mock server (stripe-mock v0.203.0)", () => {
  let server: ChildProcess | undefined;
  let baseUrl = '';
  beforeAll(async () => {
    const stripeMockBin = stripeMockBinary();
    if (!existsSync(stripeMockBin)) {
      throw new Error(
        `stripe-mock is not at ${stripeMockBin}: run scripts/build-stripe-mock.sh (or set STRIPE_MOCK_BIN)`,
      );
    }
    const child = spawn(stripeMockBin, ['-http-addr', '127.0.0.1:', '-https-addr', '127.0.0.1:']);
    server = child;
    baseUrl = await new Promise<string>((resolve, reject) => {
      let output = '';
      const timer = setTimeout(
        () => reject(new Error(`stripe-mock did not start: ${output}`)),
        30_000,
      );
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString('utf8');
        const address = /Listening for HTTP at address: (\S+)/.exec(output)?.[1];
        if (address) {
          clearTimeout(timer);
          resolve(`http://${address}`);
        }
      });
      child.once('exit', (status) =>
        reject(new Error(`stripe-mock exited (${status}): ${output}`)),
      );
    });
  }, 180_000);
  afterAll(() => {
    server?.kill();
  });
  const stripe = () => createStripe({ baseUrl, apiVersion: '2026-09-30.preview' });

  it('accepts a test key and refuses a malformed one on the v1 verification call', async () => {
    // Act
    const accepted = await stripe().verify({ id: 'mk_1', key: 'rk_test_123', spec: {} }, call);
    const refused = await stripe()
      .verify({ id: 'mk_2', key: 'not-a-key', spec: {} }, call)
      .then(
        () => undefined,
        (error: unknown) => error,
      );

    // Assess
    expect(accepted).toBe('ok');
    expect(refused).toBeInstanceOf(AuthenticationError);
  });

  it('does not count a revoke as done when Stripe does not serve the Managed API Keys API', async () => {
    // Prepare: stripe-mock, like an account without the preview, has no /v2/iam routes.
    const admin = stripe().parseAdmin({ key: 'sk_test_123' }, 'managing secret', {});

    // Act
    const outcomes = await Promise.all([
      stripe()
        .revoke(admin, 'mk_123', {}, call)
        .then(String, (error: Error) => error.message),
      stripe()
        .list(admin, {}, call)
        .then(String, (error: Error) => error.message),
    ]);

    // Assess
    for (const outcome of outcomes) {
      expect(outcome).toMatch(/Stripe does not serve .*\/v2\/iam\/api_keys.* is a private preview/);
    }
  });
});
