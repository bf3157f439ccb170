/**
 * The provider HTTP client's policy, as a rotation relies on it: how long it waits and how often
 * it tries, when it gives up before the Lambda deadline, how it names a failure, and what of a
 * provider's answer may reach an error message. Every fetch here is scripted (no network).
 */
import { describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  ConnectionError,
  ConnectTimeoutError,
  HostUnreachableError,
  TlsError,
} from '../../shared/common/errors.js';
import {
  PermissionDeniedError,
  ProviderError,
  RateLimitedError,
} from '../../shared/providers/errors.js';
import {
  createHttpClient,
  type HttpClientOptions,
  type HttpRequest,
  retryHintMs,
  scrubSecrets,
} from '../../shared/providers/http.js';
import { stripeError } from '../../shared/providers/stripe.js';
import {
  type Answer,
  callContext,
  failureOf,
  networkError,
  recordingFetch,
} from '../support/recording-fetch.js';

const read: HttpRequest = {
  method: 'GET',
  url: 'https://api.stripe.com/v2/iam/api_keys?limit=100',
  idempotent: true,
};
const create: HttpRequest = {
  method: 'POST',
  url: 'https://api.stripe.com/v2/iam/api_keys',
  body: '{}',
  idempotent: false,
};

/** A Stripe client over scripted answers; its waits are recorded, never slept. */
function client(answers: Answer[], options: Partial<HttpClientOptions> = {}) {
  const { fetch, sent } = recordingFetch(answers);
  const waits: number[] = [];
  const http = createHttpClient({
    provider: 'Stripe',
    describeError: stripeError,
    fetch: fetch as typeof globalThis.fetch,
    sleep: async (ms) => void waits.push(ms),
    random: () => 0.5,
    ...options,
  });
  return { http, sent, waits };
}

const status = (code: number, headers?: Record<string, string>) => ({
  status: code,
  body: { error: { type: 'api_error', message: `status ${code}` } },
  ...(headers ? { headers } : {}),
});

describe('provider HTTP client: retries and waiting', () => {
  it('really waits for Retry-After when no sleep is injected', async () => {
    // Prepare: the default sleep, and a 429 asking for 0.3 s.
    const { fetch } = recordingFetch([status(429, { 'retry-after': '0.3' }), { status: 200 }]);
    const http = createHttpClient({ provider: 'Stripe', fetch: fetch as typeof globalThis.fetch });

    // Act
    const started = Date.now();
    const response = await http.send(callContext(), read);

    // Assess
    expect(response.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
  });

  it('backs off exponentially with jitter, capped at 8 s, and gives up after the attempts allowed', async () => {
    // Prepare: a read that always answers 503; jitter fixed at one half.
    const { http, sent, waits } = client(
      Array.from({ length: 8 }, () => status(503)),
      {
        maxAttempts: 8,
      },
    );

    // Act
    const failure = await failureOf(http.send(callContext(120_000), read));

    // Assess: 250 ms * 2^attempt, capped at 8000, times the jitter.
    expect(waits).toEqual([125, 250, 500, 1_000, 2_000, 4_000, 4_000]);
    expect(sent).toHaveLength(8);
    expect(failure).toBeInstanceOf(ProviderError);
    expect(failure).not.toBeInstanceOf(RateLimitedError);
    expect((failure as ProviderError).status).toBe(503);
    expect(failure.message).toContain('GET /v2/iam/api_keys (after 8 attempts) (HTTP 503');
  });

  it('retries every 5xx on a read, 500 and 599 included, and returns a 4xx at once', async () => {
    // Prepare
    const { http, sent } = client([status(500), status(599), { status: 200 }, status(404)]);

    // Act
    const recovered = await http.send(callContext(), read);
    const missing = await http.send(callContext(), read);

    // Assess
    expect(recovered.status).toBe(200);
    expect(missing.status).toBe(404);
    expect(sent).toHaveLength(4);
  });

  it('stops after five attempts by default', async () => {
    // Prepare
    const { http, sent } = client(Array.from({ length: 6 }, () => status(502)));

    // Act
    const failure = await failureOf(http.send(callContext(), read));

    // Assess
    expect(sent).toHaveLength(5);
    expect(failure.message).toContain('(after 5 attempts)');
  });

  it('waits what a 429 asks plus up to 250 ms of jitter, and falls back to backoff without a hint', async () => {
    // Prepare
    const { http, waits } = client([
      status(429, { 'retry-after': '3' }),
      status(429),
      { status: 200 },
    ]);

    // Act
    await http.send(callContext(), read);

    // Assess
    expect(waits).toEqual([3_125, 250]);
  });

  it('retries a rate-limited create: a 429 was not processed', async () => {
    // Prepare
    const { http, sent } = client([status(429), { status: 201 }]);

    // Act
    const response = await http.send(callContext(), create);

    // Assess
    expect(response.status).toBe(201);
    expect(sent).toHaveLength(2);
  });

  it('retries a 429 whose wait and one more attempt fit exactly in the time left', async () => {
    // Prepare: 3125 ms of wait + 1000 ms for the attempt = 4125 ms left.
    const { http, sent } = client([status(429, { 'retry-after': '3' }), { status: 200 }]);

    // Act
    const response = await http.send(callContext(4_125), read);

    // Assess
    expect(response.status).toBe(200);
    expect(sent).toHaveLength(2);
  });

  it('gives up on a 429 when the wait fits but one more attempt does not', async () => {
    // Prepare: 3125 ms of wait, 3500 ms left.
    const { http, sent, waits } = client([status(429, { 'retry-after': '3' }), { status: 200 }]);

    // Act
    const failure = await failureOf(http.send(callContext(3_500), read));

    // Assess
    expect(failure).toBeInstanceOf(RateLimitedError);
    expect((failure as RateLimitedError).status).toBe(429);
    expect((failure as RateLimitedError).code).toBe('api_error');
    expect(failure.message).toContain(
      'it asks to wait 3 s but 3 s are left before the Lambda deadline',
    );
    expect(sent).toHaveLength(1);
    expect(waits).toEqual([]);
  });

  it('reports a 429 that outlasted the attempts as rate-limited after N attempts', async () => {
    // Prepare: one attempt allowed, and exactly enough time for the wait.
    const { http } = client([status(429, { 'retry-after': '3' })], { maxAttempts: 1 });

    // Act
    const failure = await failureOf(http.send(callContext(4_125), read));

    // Assess
    expect(failure).toBeInstanceOf(RateLimitedError);
    expect(failure.name).toBe('RateLimitedError');
    expect(failure.message).toContain('(after 1 attempts) (HTTP 429, code api_error)');
  });

  it('gives up on a 503 when no time is left for another attempt, as a provider failure', async () => {
    // Prepare: 1100 ms left: the 125 ms backoff and a 1000 ms attempt do not fit.
    const { http, sent } = client([status(503), { status: 200 }]);

    // Act
    const failure = await failureOf(http.send(callContext(1_100), read));

    // Assess
    expect(failure).toBeInstanceOf(ProviderError);
    expect(failure).not.toBeInstanceOf(RateLimitedError);
    expect((failure as ProviderError).status).toBe(503);
    expect(sent).toHaveLength(1);
  });

  it('retries a network failure only when the backoff and one more attempt fit in the time left', async () => {
    // Prepare: 1100 ms left is too little (125 + 1000), 1125 ms is just enough.
    const short = client([networkError('ECONNRESET'), { status: 200 }]);
    const enough = client([networkError('ECONNRESET'), { status: 200 }]);

    // Act
    const failure = await failureOf(short.http.send(callContext(1_100), read));
    const response = await enough.http.send(callContext(1_125), read);

    // Assess
    expect(failure).toBeInstanceOf(ConnectionError);
    expect(short.sent).toHaveLength(1);
    expect(response.status).toBe(200);
    expect(enough.sent).toHaveLength(2);
    expect(enough.waits).toEqual([125]);
  });

  it('starts no attempt with less than a second left, and starts one with a second', async () => {
    // Prepare
    const late = client([{ status: 200 }]);
    const justInTime = client([{ status: 200 }]);

    // Act
    const failure = await failureOf(late.http.send(callContext(999), read));
    const response = await justInTime.http.send(callContext(1_000), read);

    // Assess
    expect(failure).toBeInstanceOf(ConnectTimeoutError);
    expect(failure.message).toContain('no time left before the Lambda deadline (999 ms)');
    expect(late.sent).toHaveLength(0);
    expect(response.status).toBe(200);
  });

  it('refuses settings it cannot honour when the client is made', () => {
    // Prepare
    const make = (options: Partial<HttpClientOptions>) => () =>
      createHttpClient({ provider: 'Stripe', ...options });

    // Assess
    expect(make({ timeoutMs: 99 })).toThrow(RangeError);
    expect(make({ timeoutMs: 150.5 })).toThrow(RangeError);
    expect(make({ timeoutMs: 100 })).not.toThrow();
    expect(make({ maxAttempts: 0 })).toThrow(RangeError);
    expect(make({ maxAttempts: 1.5 })).toThrow(RangeError);
    expect(make({ maxAttempts: 1 })).not.toThrow();
  });
});

describe('provider HTTP client: requests and failures', () => {
  it('asks for JSON, sends the body only when there is one, and never follows a redirect', async () => {
    // Prepare
    const { http, sent } = client([{ status: 200 }, { status: 200 }]);

    // Act
    await http.send(callContext(), { ...read, headers: { authorization: 'Bearer k' } });
    await http.send(callContext(), create);

    // Assess
    expect(sent[0]?.headers).toEqual({ accept: 'application/json', authorization: 'Bearer k' });
    expect(sent[0]?.body).toBeUndefined();
    expect(sent[0]?.redirect).toBe('error');
    expect(sent[1]?.body).toBe('{}');
  });

  it.each([
    ['ENOTFOUND', HostUnreachableError, 'unreachable'],
    ['EAI_AGAIN', HostUnreachableError, 'unreachable'],
    ['EHOSTUNREACH', HostUnreachableError, 'unreachable'],
    ['ENETUNREACH', HostUnreachableError, 'unreachable'],
    ['ECONNREFUSED', HostUnreachableError, 'unreachable'],
    ['ERR_TLS_INVALID_PROTOCOL_VERSION', TlsError, 'tls'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', TlsError, 'tls'],
    ['CERT_HAS_EXPIRED', TlsError, 'tls'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', TlsError, 'tls'],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', TlsError, 'tls'],
    ['ECONNRESET', ConnectionError, 'unavailable'],
    ['EPIPE', ConnectionError, 'unavailable'],
    ['UND_ERR_CLOSED', ConnectionError, 'unavailable'],
    ['ETIMEDOUT', ConnectionError, 'unavailable'],
  ] as const)(
    'classifies a fetch failure with code %s as %O (%s), keeping the cause',
    async (code, type, failure) => {
      // Prepare
      const thrown = networkError(code);
      const { http } = client([thrown]);

      // Act
      const error = await failureOf(http.send(callContext(), create));

      // Assess
      expect(error).toBeInstanceOf(type);
      expect(error.name).toBe(type.name);
      expect((error as ConnectionError).failure).toBe(failure);
      expect(error.cause).toBe(thrown);
      if (type === ConnectionError) {
        expect(error).not.toBeInstanceOf(HostUnreachableError);
        expect(error).not.toBeInstanceOf(TlsError);
      }
    },
  );

  it('tells a lost answer (the provider may have acted) from another network failure', async () => {
    // Prepare
    const codes = ['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED'];
    const dropped = client(codes.map(networkError));
    const other = client([networkError('ETIMEDOUT')]);

    // Act
    const lost: Error[] = [];
    for (const _ of codes) lost.push(await failureOf(dropped.http.send(callContext(), create)));
    const failed = await failureOf(other.http.send(callContext(), create));

    // Assess
    for (const failure of lost) {
      expect(failure.message).toContain('the provider may have acted on the request');
    }
    expect(failed.message).not.toContain('may have acted');
    expect(failed.message).toContain('ETIMEDOUT');
  });

  it('reads a timeout or an abort as a timeout, and a failure without a code as a network error', async () => {
    // Prepare
    const abort = Object.assign(new Error('aborted'), { name: 'AbortError' });
    const timeout = Object.assign(new Error('timed out'), { name: 'TimeoutError' });
    const bare = new TypeError('fetch failed');
    const { http } = client([abort, timeout, bare]);

    // Act
    const aborted = await failureOf(http.send(callContext(), create));
    const timedOut = await failureOf(http.send(callContext(), create));
    const unknown = await failureOf(http.send(callContext(), create));

    // Assess
    expect(aborted).toBeInstanceOf(ConnectTimeoutError);
    expect(aborted.cause).toBe(abort);
    expect(timedOut).toBeInstanceOf(ConnectTimeoutError);
    expect(unknown).toBeInstanceOf(ConnectionError);
    expect(unknown).not.toBeInstanceOf(ConnectTimeoutError);
    expect((unknown as ConnectionError).failure).toBe('unavailable');
    expect(unknown.message).toContain('network error');
    expect(unknown.cause).toBe(bare);
  });

  it('does not hang on a failure whose cause chain loops', async () => {
    // Prepare: an error that is its own cause, without a code.
    const looped: Error & { cause?: unknown } = new TypeError('fetch failed');
    looped.cause = looped;
    const { http } = client([looped]);

    // Act
    const error = await failureOf(http.send(callContext(), create));

    // Assess
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error.message).toContain('network error');
  });

  it('classifies answers by status, with the provider code, also without an error reader', async () => {
    // Prepare
    const body = { error: { code: 'some_code', message: 'no' } };
    const withReader = client([]).http;
    const withoutReader = createHttpClient({ provider: 'Stripe' });
    const answer = (code: number) => ({ status: code, headers: new Headers(), body });

    // Act
    const forbidden = withReader.errorFor(read, answer(403));
    const limited = withReader.errorFor(read, answer(429));
    const broken = withReader.errorFor(read, answer(500));
    const refused = withReader.errorFor(read, answer(401));
    const bare = withoutReader.errorFor(read, answer(403));

    // Assess
    expect(forbidden).toBeInstanceOf(PermissionDeniedError);
    expect(forbidden.name).toBe('PermissionDeniedError');
    expect((forbidden as ProviderError).code).toBe('some_code');
    expect(limited).toBeInstanceOf(RateLimitedError);
    expect((limited as ProviderError).code).toBe('some_code');
    expect(broken).toBeInstanceOf(ProviderError);
    expect(broken).not.toBeInstanceOf(PermissionDeniedError);
    expect(broken).not.toBeInstanceOf(RateLimitedError);
    expect(broken.name).toBe('ProviderError');
    expect((broken as ProviderError).status).toBe(500);
    expect((broken as ProviderError).code).toBe('some_code');
    expect(refused).toBeInstanceOf(AuthenticationError);
    expect(bare).toBeInstanceOf(PermissionDeniedError);
    expect(bare.message).toMatch(/ \(HTTP 403\)$/);
    expect((bare as ProviderError).code).toBeUndefined();
  });

  it('gives up on a long 429 also without an error reader', async () => {
    // Prepare
    const { fetch } = recordingFetch([status(429, { 'retry-after': '60' })]);
    const http = createHttpClient({ provider: 'Stripe', fetch: fetch as typeof globalThis.fetch });

    // Act
    const failure = await failureOf(http.send(callContext(), read));

    // Assess
    expect(failure).toBeInstanceOf(RateLimitedError);
    expect((failure as RateLimitedError).code).toBeUndefined();
  });

  it('names the key a verification refused, and reads 200 and 403 as verdicts', async () => {
    // Prepare
    const { http } = client([{ status: 200 }, { status: 403 }, { status: 401 }]);

    // Act
    const ok = await http.verify(callContext(), read, 'mk_1');
    const limited = await http.verify(callContext(), read, 'mk_1');
    const dead = await failureOf(http.verify(callContext(), read, 'mk_1'));

    // Assess
    expect(ok).toBe('ok');
    expect(limited).toBe('authenticated-without-permission');
    expect(dead).toBeInstanceOf(AuthenticationError);
    expect(dead.message).toContain('(verifying key mk_1)');
  });
});

describe('provider answers read with limits', () => {
  const withLimit = (answer: () => Response, limit = 1_024) =>
    createHttpClient({
      provider: 'Stripe',
      maxBodyBytes: limit,
      fetch: async () => answer(),
      sleep: async () => {},
    });

  it('refuses a declared length above the limit before reading a byte of the body', async () => {
    // Prepare: a small body that lies about its length; count what is read of it.
    let pulled = 0;
    const body = () =>
      new ReadableStream<Uint8Array>({
        pull(controller) {
          pulled++;
          controller.enqueue(new TextEncoder().encode('{}'));
          controller.close();
        },
      });
    const http = withLimit(
      () => new Response(body(), { status: 200, headers: { 'content-length': '1025' } }),
    );

    // Act
    const failure = await failureOf(http.send(callContext(), read));

    // Assess
    expect(failure).toBeInstanceOf(ProviderError);
    expect(failure.name).toBe('BodyTooLargeError');
    expect(pulled).toBeLessThanOrEqual(1);
  });

  it('refuses a bodiless answer that declares a length above the limit, without retrying', async () => {
    // Prepare
    let calls = 0;
    const http = createHttpClient({
      provider: 'Stripe',
      maxBodyBytes: 1_024,
      fetch: async () => {
        calls++;
        return new Response(null, { status: 204, headers: { 'content-length': '99999' } });
      },
      sleep: async () => {},
    });

    // Act
    const failure = await failureOf(http.send(callContext(), read));

    // Assess
    expect(failure.name).toBe('BodyTooLargeError');
    expect(calls).toBe(1);
  });

  it('reads a body of exactly the limit, declared or streamed', async () => {
    // Prepare: a JSON string of 1024 bytes.
    const text = JSON.stringify('x'.repeat(1_022));
    const declared = withLimit(
      () => new Response(text, { status: 200, headers: { 'content-length': '1024' } }),
    );
    const streamed = withLimit(
      () =>
        new Response(
          new ReadableStream<Uint8Array>({
            start(controller) {
              controller.enqueue(new TextEncoder().encode(text));
              controller.close();
            },
          }),
          { status: 200 },
        ),
    );

    // Act
    const one = await declared.send(callContext(), read);
    const two = await streamed.send(callContext(), read);

    // Assess
    expect(one.body).toBe('x'.repeat(1_022));
    expect(two.body).toBe('x'.repeat(1_022));
  });

  it('answers a 204 without a body, and keeps nothing of a body that is not JSON', async () => {
    // Prepare
    const empty = withLimit(() => new Response(null, { status: 204 }));
    const html = withLimit(() => new Response('<html>sk_live_leaked</html>', { status: 502 }));

    // Act
    const deleted = await empty.send(callContext(), { ...read, method: 'DELETE' });
    const page = await html.send(callContext(), create);

    // Assess
    expect(deleted.status).toBe(204);
    expect(deleted.body).toBeUndefined();
    expect(page.status).toBe(502);
    expect(page.body).toBeUndefined();
  });
});

describe('retry hints', () => {
  const now = Date.UTC(2026, 10, 22, 12, 0, 0);

  it('reads fractional seconds, and ignores values that are not plain numbers', () => {
    // Act
    const hints = {
      fraction: retryHintMs(new Headers({ 'retry-after': '1.25' }), now),
      half: retryHintMs(new Headers({ 'retry-after': '2.5' }), now),
      prefixed: retryHintMs(new Headers({ 'retry-after': 'x5' }), now),
      suffixed: retryHintMs(new Headers({ 'retry-after': '5x' }), now),
      resetFraction: retryHintMs(new Headers({ 'x-ratelimit-reset': '1.25' }), now),
      resetWord: retryHintMs(new Headers({ 'x-ratelimit-reset': 'soon' }), now),
      resetPrefixed: retryHintMs(new Headers({ 'ratelimit-reset': 'x5' }), now),
      resetSuffixed: retryHintMs(new Headers({ 'ratelimit-reset': '5x' }), now),
      resetHalf: retryHintMs(new Headers({ 'ratelimit-reset': '2.5' }), now),
    };

    // Assess
    expect(hints).toEqual({
      fraction: 1_250,
      half: 2_500,
      prefixed: undefined,
      suffixed: undefined,
      resetFraction: 1_250,
      resetWord: undefined,
      resetPrefixed: undefined,
      resetSuffixed: undefined,
      resetHalf: 2_500,
    });
  });

  it('takes the longest of several hints, and never a negative wait', () => {
    // Act
    const longest = retryHintMs(
      new Headers({ 'retry-after': '2', 'x-ratelimit-reset': String(now / 1000 + 9) }),
      now,
    );
    const past = retryHintMs(new Headers({ 'x-ratelimit-reset': String(now / 1000 - 60) }), now);

    // Assess
    expect(longest).toBe(9_000);
    expect(past).toBe(0);
  });
});

describe('scrubbing provider messages', () => {
  it('removes a secret of four characters, and leaves shorter values alone', () => {
    // Act
    const four = scrubSecrets('code abcd refused', ['abcd']);
    const three = scrubSecrets('code abc refused', ['abc']);

    // Assess
    expect(four).toBe('code *** refused');
    expect(three).toBe('code abc refused');
  });

  it('removes a secret whole when a key-shaped part of it ends earlier', () => {
    // Prepare: a secret with a space, whose first word looks like a SendGrid key.
    const secret = 'SG.abc def';

    // Act
    const whole = scrubSecrets(`refused ${secret}!`, [secret]);
    const overlap = scrubSecrets('k abc SG.xyz', ['abc SG.x']);

    // Assess
    expect(whole).toBe('refused ***!');
    expect(overlap).toBe('k ***');
  });

  it('cuts a key-shaped token from where the key starts inside it', () => {
    // Act
    const joined = scrubSecrets('bad key-SG.abc.def here');
    const stripe = scrubSecrets('was:rk_live_51Habc');

    // Assess
    expect(joined).toBe('bad key-SG.*** here');
    expect(stripe).toBe('was:rk_live_***');
  });

  it('stops at the cut: nothing after it is added, and a text of exactly the limit is not marked cut', () => {
    // Prepare: a long secret makes the window reach past the cut, where a short one sits.
    const long = 'a-long-secret-value-123';

    // Act
    const secretAfterCut = scrubSecrets(`${'x'.repeat(10)}abcd tail`, [long, 'abcd'], 10);
    const keyAfterCut = scrubSecrets(`${'x'.repeat(9)} SG.abc tail`, [], 10);
    // A token that starts before the cut, with the key part starting at the cut.
    // (A secret makes the window reach past the cut, as it does for the secrets of every request.)
    const keyPartAtCut = scrubSecrets(`${'x'.repeat(7)} k-SG.abc`, [long], 10);
    const exact = scrubSecrets('x'.repeat(300), [], 300);

    // Assess
    expect(secretAfterCut).toBe(`${'x'.repeat(10)}…`);
    expect(keyAfterCut).toBe(`${'x'.repeat(9)} …`);
    expect(keyPartAtCut).toBe(`${'x'.repeat(7)} k-…`);
    expect(exact).toBe('x'.repeat(300));
  });
});
