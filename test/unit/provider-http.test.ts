import { describe, expect, it, vi } from 'vitest';
import {
  AuthenticationError,
  ConnectionError,
  ConnectTimeoutError,
  HostUnreachableError,
} from '../../shared/common/errors.js';
import { ProviderError, RateLimitedError } from '../../shared/providers/errors.js';
import {
  createHttpClient,
  type HttpRequest,
  retryHintMs,
  sameOriginUrl,
  scrubSecrets,
} from '../../shared/providers/http.js';
import { sendGridError } from '../../shared/providers/sendgrid.js';
import { LogRecorder } from '../support/log-recorder.js';

const call = (remainingMs = 30_000) => ({
  logger: new LogRecorder(),
  remainingMs: () => remainingMs,
  redact() {},
});

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });

/** A client whose fetch answers from `answers` in order and whose sleeps are recorded. */
function client(answers: (Response | Error)[]) {
  const waits: number[] = [];
  const fetch = vi.fn(async () => {
    const next = answers.shift();
    if (next === undefined) throw new Error('no more answers');
    if (next instanceof Error) throw next;
    return next;
  });
  const http = createHttpClient({
    provider: 'SendGrid',
    describeError: sendGridError,
    fetch,
    sleep: async (ms) => {
      waits.push(ms);
    },
    random: () => 0.5,
  });
  return { http, fetch, waits };
}

const read: HttpRequest = {
  method: 'GET',
  url: 'https://api.sendgrid.com/v3/api_keys?limit=100',
  idempotent: true,
};
const create: HttpRequest = {
  method: 'POST',
  url: 'https://api.sendgrid.com/v3/api_keys',
  body: '{"name":"x"}',
  idempotent: false,
};

/** A fetch failure as undici reports it. */
const networkError = (code: string) =>
  Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error(code), { code }) });

describe('provider HTTP client', () => {
  it('waits as long as Retry-After asks on a 429, then returns the answer', async () => {
    // Prepare
    const { http, waits } = client([
      json(429, { errors: [{ message: 'too many requests' }] }, { 'retry-after': '3' }),
      json(200, { result: [] }),
    ]);

    // Act
    const response = await http.send(call(), read);

    // Assess
    expect(response.status).toBe(200);
    expect(waits).toHaveLength(1);
    expect(waits[0]).toBeGreaterThanOrEqual(3_000);
    expect(waits[0]).toBeLessThan(3_250);
  });

  it('reads SendGrid X-RateLimit-Reset as epoch seconds, and Retry-After as seconds or a date', () => {
    // Prepare
    const now = Date.UTC(2026, 10, 22, 12, 0, 0);

    // Act
    const hints = [
      retryHintMs(new Headers({ 'x-ratelimit-reset': String(now / 1000 + 7) }), now),
      retryHintMs(new Headers({ 'retry-after': '2' }), now),
      retryHintMs(new Headers({ 'retry-after': new Date(now + 5_000).toUTCString() }), now),
      retryHintMs(new Headers({ 'x-ratelimit-reset': '4' }), now),
      retryHintMs(new Headers({ 'retry-after': 'soon' }), now),
    ];

    // Assess
    expect(hints).toEqual([7_000, 2_000, 5_000, 4_000, undefined]);
  });

  it('gives up at once with a clear error when a 429 asks to wait longer than the time left', async () => {
    // Prepare
    const { http, fetch, waits } = client([
      json(429, { errors: [{ message: 'too many requests' }] }, { 'retry-after': '30' }),
    ]);

    // Act
    const failure = await http.send(call(10_000), read).catch((error: unknown) => error);

    // Assess
    expect(failure).toBeInstanceOf(RateLimitedError);
    expect((failure as Error).message).toMatch(
      /^SendGrid rate-limited GET \/v3\/api_keys \(HTTP 429\): too many requests; it asks to wait 30 s but 10 s are left before the Lambda deadline$/,
    );
    expect(fetch).toHaveBeenCalledTimes(1);
    expect(waits).toEqual([]);
  });

  it('retries a 503 on a read, but hands a 503 on a create straight back (the key may exist)', async () => {
    // Prepare
    const { http, fetch } = client([
      json(503, {}),
      json(200, { result: [] }),
      json(503, { errors: [{ message: 'service unavailable' }] }),
    ]);

    // Act
    const readResponse = await http.send(call(), read);
    const createResponse = await http.send(call(), create);

    // Assess
    expect(readResponse.status).toBe(200);
    expect(createResponse.status).toBe(503);
    expect(fetch).toHaveBeenCalledTimes(3);
  });

  it('never repeats a create whose connection dropped, and says the provider may have acted', async () => {
    // Prepare
    const { http, fetch } = client([networkError('UND_ERR_SOCKET')]);

    // Act
    const failure = await http.send(call(), create).catch((error: unknown) => error);

    // Assess
    expect(failure).toBeInstanceOf(ConnectionError);
    expect((failure as Error).message).toBe(
      'SendGrid POST /v3/api_keys: the connection closed before the answer (UND_ERR_SOCKET); the provider may have acted on the request',
    );
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it('retries a read after a network failure and reports an unreachable host by name', async () => {
    // Prepare
    const { http, fetch } = client([
      networkError('ECONNRESET'),
      json(200, { result: [] }),
      networkError('ECONNREFUSED'),
      networkError('ECONNREFUSED'),
      networkError('ECONNREFUSED'),
      networkError('ECONNREFUSED'),
      networkError('ECONNREFUSED'),
    ]);

    // Act
    const recovered = await http.send(call(), read);
    const failure = await http.send(call(), read).catch((error: unknown) => error);

    // Assess
    expect(recovered.status).toBe(200);
    expect(failure).toBeInstanceOf(HostUnreachableError);
    expect((failure as Error).message).toBe('cannot reach SendGrid GET /v3/api_keys: ECONNREFUSED');
    expect(fetch).toHaveBeenCalledTimes(7);
  });

  it('cuts an attempt short at the time left before the Lambda deadline', async () => {
    // Prepare: a provider that never answers; 1200 ms are left.
    const http = createHttpClient({
      provider: 'Stripe',
      timeoutMs: 10_000,
      maxAttempts: 1,
      fetch: (_, init) =>
        new Promise((_resolve, reject) =>
          init?.signal?.addEventListener('abort', () => reject(init.signal?.reason)),
        ),
    });

    // Act
    const started = Date.now();
    const failure = await http
      .send(call(1_200), {
        method: 'GET',
        url: 'https://api.stripe.com/v1/balance',
        idempotent: true,
      })
      .catch((error: unknown) => error);

    // Assess
    expect(failure).toBeInstanceOf(ConnectTimeoutError);
    expect((failure as Error).message).toBe('Stripe GET /v1/balance did not answer within 1200 ms');
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('classifies answers by status and keeps keys out of the provider message', async () => {
    // Prepare: SendGrid quoting the key it refused, and a Stripe-style partial key.
    const credential = 'SG.aaaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
    const { http } = client([
      json(401, {
        errors: [{ message: `bad key ${credential} (rk_live_********wxyz) eyJh.eyJi.abc.def.ghi` }],
      }),
    ]);
    const request = { ...read, secrets: [credential] };

    // Act
    const response = await http.send(call(), request);
    const error = http.errorFor(request, response, 'listing keys');

    // Assess
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error.message).toBe(
      'SendGrid refused the credentials: SendGrid GET /v3/api_keys (listing keys) (HTTP 401): bad key *** (rk_live_***) ***',
    );
    expect(scrubSecrets('sk_test_abc SG.x1.y2 a-secret-value', ['a-secret-value'])).toBe(
      'sk_test_*** SG.*** ***',
    );
  });

  it('refuses to follow a next-page link to another host', () => {
    // Act
    const same = sameOriginUrl('/v2/iam/api_keys?page=2', 'https://api.stripe.com', 'Stripe');
    const other = () =>
      sameOriginUrl('https://evil.example/keys', 'https://api.stripe.com', 'Stripe');

    // Assess
    expect(same).toBe('https://api.stripe.com/v2/iam/api_keys?page=2');
    expect(other).toThrow(ProviderError);
    expect(other).toThrow(/next-page link to another host \(https:\/\/evil\.example\)/);
  });
});

describe('provider message scrubbing against a hostile provider', () => {
  it('scrubs 160 KB of "eyJ-" in well under a second (linear, not quadratic)', () => {
    // Prepare: the answer that took the earlier patterns 12.7 s.
    const hostile = 'eyJ-'.repeat(40_000);
    const credential = 'SG.aaaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';

    // Act
    const started = performance.now();
    const scrubbed = scrubSecrets(hostile, [credential]);
    const message = scrubSecrets(`${hostile} ${credential}`, [credential], 300);
    const elapsed = performance.now() - started;

    // Assess
    expect(elapsed).toBeLessThan(500);
    expect(scrubbed).toBe('***…');
    expect(message).not.toContain('bbbbbbbb');
  });

  it('still removes every key shape and secret it removed before, also across the cut', () => {
    // Prepare
    const secret = 'a-secret-value-0123456789';
    const jwe = 'eyJhbGciOiJSU0EtT0FFUCJ9.c2VjcmV0.aXY.Y2lwaGVy.dGFn';

    // Act
    const cases = {
      shapes: scrubSecrets(`SG.x1.y2 sk_live_abc rk_test_**wxyz pk_live_q ${jwe} ${secret}`, [
        secret,
      ]),
      // A secret that starts before the cut and ends after it is still found.
      acrossCut: scrubSecrets(`${'x'.repeat(290)}${secret} tail`, [secret], 300),
      // A key-shaped token crossing the cut is cut out from where it starts.
      tokenAcrossCut: scrubSecrets(
        `${'x '.repeat(148)}SG.${'k'.repeat(40)}.${'z'.repeat(40)}`,
        [],
        300,
      ),
      plain: scrubSecrets('Authenticate (code 20003)'),
    };

    // Assess
    expect(cases.shapes).toBe('SG.*** sk_live_*** rk_test_*** pk_live_*** *** ***');
    expect(cases.acrossCut).toBe(`${'x'.repeat(290)}***…`);
    expect(cases.tokenAcrossCut).toBe(`${'x '.repeat(148)}SG.***…`);
    expect(cases.plain).toBe('Authenticate (code 20003)');
  });
});

describe('provider answers a hostile provider could send', () => {
  it('refuses a body larger than the limit without buffering it, declared or streamed', async () => {
    // Prepare: one answer that declares its size, one that streams without a length.
    const huge = 'x'.repeat(64 * 1024);
    const streamed = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new TextEncoder().encode(huge));
      },
    });
    const http = (answer: Response) =>
      createHttpClient({
        provider: 'SendGrid',
        maxBodyBytes: 32 * 1024,
        fetch: async () => answer,
        sleep: async () => {},
      });

    // Act
    const declared = await http(
      new Response(huge, { status: 200, headers: { 'content-length': String(huge.length) } }),
    )
      .send(call(), read)
      .catch((error: unknown) => error);
    const endless = await http(new Response(streamed, { status: 200 }))
      .send(call(), read)
      .catch((error: unknown) => error);

    // Assess
    for (const failure of [declared, endless]) {
      expect(failure).toBeInstanceOf(ProviderError);
      expect((failure as Error).message).toBe(
        'SendGrid GET /v3/api_keys answered with a body larger than 32768 bytes; refusing to read it',
      );
    }
  });
});
