import {
  AuthenticationError,
  ConnectionError,
  ConnectTimeoutError,
  HostUnreachableError,
  type RotationError,
  TlsError,
} from '../common/errors.js';
import type { RotationLogger } from '../common/logger.js';
import { PermissionDeniedError, ProviderError, RateLimitedError } from './errors.js';
import type { Verified } from './types.js';

/** What a provider call needs from the rotation step. */
export interface CallContext {
  logger: RotationLogger;
  /** Milliseconds left before the Lambda deadline (safety margin already taken off). */
  remainingMs(): number;
  /** Registers a value that must never be logged, such as a freshly minted key. */
  redact(value: string): void;
}

export interface HttpRequest {
  method: 'GET' | 'POST' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  body?: string;
  /**
   * The request may be sent again after a network failure or a 5xx because the provider cannot
   * act on it twice (a read, a delete, a create carrying an idempotency key). A 429 is always
   * retried: a rate-limited request was not processed.
   */
  idempotent: boolean;
  /** Values to scrub from any message built from the answer (the credential sent). */
  secrets?: readonly string[];
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  /** The parsed JSON body, or undefined when there was none or it was not JSON. */
  body: unknown;
}

/** A provider's error body, reduced to what a message may carry. */
export interface ProviderErrorDetail {
  code?: string;
  message?: string;
}

export interface HttpClientOptions {
  /** The provider's name for messages ("SendGrid"). */
  provider: string;
  /** Longest single attempt, in ms (default 10000); never longer than the time left. */
  timeoutMs?: number;
  /** Attempts per request, the first included (default 5). */
  maxAttempts?: number;
  /** Largest answer body read, in bytes (default 2 MiB); a larger one fails the call. */
  maxBodyBytes?: number;
  /** Reads the provider's error body. */
  describeError?: (body: unknown) => ProviderErrorDetail;
  /** For tests: the fetch to use and how to wait. */
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

export interface HttpClient {
  readonly provider: string;
  /** Sends the request, retrying 429 and (when idempotent) 5xx and network failures. */
  send(call: CallContext, request: HttpRequest): Promise<HttpResponse>;
  /** The error for an answer the caller did not expect, classified by status. */
  errorFor(request: HttpRequest, response: HttpResponse, what?: string): RotationError;
  /**
   * Sends a read made with key `keyId` and reads the verdict: 200 works, 403 authenticated
   * without that permission, anything else the classified error.
   */
  verify(call: CallContext, request: HttpRequest, keyId: string): Promise<Verified>;
}

/** Shortest attempt worth starting, in ms. */
const MIN_ATTEMPT_MS = 1_000;
const BACKOFF_BASE_MS = 250;
const BACKOFF_CAP_MS = 8_000;

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Longest provider message kept (before scrubbing), in characters. */
const SCRUB_MAX_LENGTH = 1_024;
/**
 * A maximal run of the characters keys are made of. One character class, greedy, and a match
 * can only end where the class ends: linear in the input, whatever a hostile provider sends
 * (the earlier `eyJ[\w-]*\.…` patterns were quadratic on `eyJ-eyJ-…`).
 */
const TOKEN = /[\w.*-]+/g;
/** Where a key starts inside a token: SendGrid `SG.`, Stripe `sk_live_` & co, JWE/JWT `eyJ`. */
const KEY_START = /(?<!\w)(?:SG\.|[prs]k_(?:live|test)_|eyJ)/;

/**
 * Replaces every `secrets` value and anything shaped like a SendGrid, Stripe or JWE token with
 * `***`: provider messages sometimes quote part of the key they refused. Reads at most
 * `maxLength` characters of `text` (plus the longest secret, so that one crossing the cut is
 * still found) and runs in time linear in that: the text comes from the provider's answer.
 *
 * @example
 * scrubSecrets('bad key SG.x1.y2', []); // 'bad key SG.***'
 */
export function scrubSecrets(
  text: string,
  secrets: readonly string[] = [],
  maxLength = SCRUB_MAX_LENGTH,
): string {
  const longest = secrets.reduce((max, secret) => Math.max(max, secret.length), 0);
  const window = text.slice(0, maxLength + longest);
  /** [start, end, replacement], start < maxLength. Secrets first: they win a tie. */
  const ranges: [number, number, string][] = [];
  for (const secret of secrets) {
    if (secret.length < 4) continue;
    for (let at = window.indexOf(secret); at !== -1 && at < maxLength; ) {
      ranges.push([at, at + secret.length, '***']);
      at = window.indexOf(secret, at + secret.length);
    }
  }
  for (const match of window.matchAll(TOKEN)) {
    if (match.index >= maxLength) break;
    const token = match[0];
    const start = token.search(KEY_START);
    if (start < 0 || match.index + start >= maxLength) continue;
    const rest = token.slice(start);
    const replacement = rest.startsWith('SG.')
      ? 'SG.***'
      : rest.startsWith('eyJ')
        ? '***'
        : `${rest.slice(0, 8)}***`;
    ranges.push([match.index + start, match.index + token.length, replacement]);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  let out = '';
  let at = 0;
  for (const [start, end, replacement] of ranges) {
    if (end <= at) continue;
    if (start >= at) {
      out += text.slice(at, start) + replacement;
    }
    at = end;
  }
  if (at < maxLength) out += text.slice(at, maxLength);
  return Math.max(at, maxLength) < text.length ? `${out}…` : out;
}

/**
 * How long a 429 asks to wait, in ms: `Retry-After` (seconds or an HTTP date) or a rate-limit
 * reset header (`X-RateLimit-Reset`, epoch seconds as SendGrid sends it, or seconds from now).
 * Undefined when the answer gives no hint.
 *
 * @example
 * retryHintMs(new Headers({ 'retry-after': '3' }), Date.now()); // 3000
 */
export function retryHintMs(headers: Headers, now: number): number | undefined {
  const hints: number[] = [];
  const retryAfter = headers.get('retry-after')?.trim();
  if (retryAfter) {
    if (/^\d+(\.\d+)?$/.test(retryAfter)) hints.push(Number(retryAfter) * 1000);
    else {
      const date = Date.parse(retryAfter);
      if (!Number.isNaN(date)) hints.push(date - now);
    }
  }
  for (const name of ['x-ratelimit-reset', 'ratelimit-reset']) {
    const raw = headers.get(name)?.trim();
    if (!raw || !/^\d+(\.\d+)?$/.test(raw)) continue;
    const value = Number(raw);
    // Epoch seconds are in the billions; anything smaller counts seconds from now.
    hints.push(value > 1e9 ? value * 1000 - now : value * 1000);
  }
  if (hints.length === 0) return undefined;
  return Math.max(0, ...hints);
}

const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
/** The connection broke once the request may have been sent: the provider may have acted. */
const DROPPED = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

function errorCode(error: unknown): string | undefined {
  for (let current = error, depth = 0; current && depth < 4; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** A fetch failure (no HTTP answer) as the error family strategies act on. */
function classifyNetworkError(error: unknown, where: string, timeoutMs: number): RotationError {
  const name = (error as { name?: unknown } | null)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') {
    return new ConnectTimeoutError(`${where} did not answer within ${timeoutMs} ms`, {
      cause: error,
    });
  }
  const code = errorCode(error);
  if (code !== undefined && UNREACHABLE.has(code)) {
    return new HostUnreachableError(`cannot reach ${where}: ${code}`, { cause: error });
  }
  if (code !== undefined && DROPPED.has(code)) {
    return new ConnectionError(
      `${where}: the connection closed before the answer (${code}); the provider may have acted on the request`,
      'unavailable',
      { cause: error },
    );
  }
  if (
    code !== undefined &&
    (code.startsWith('ERR_TLS') ||
      code.startsWith('ERR_SSL') ||
      code.startsWith('CERT_') ||
      code.includes('CERT') ||
      code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')
  ) {
    return new TlsError(`TLS with ${where} failed: ${code}`, { cause: error });
  }
  return new ConnectionError(`${where} failed: ${code ?? 'network error'}`, 'unavailable', {
    cause: error,
  });
}

/** Largest answer body read by default: a Twilio page of 1000 keys is about 250 KB. */
const MAX_BODY_BYTES = 2 * 1024 * 1024;

/** The answer was larger than the client reads: refused, not retried. */
class BodyTooLargeError extends ProviderError {
  override name = 'BodyTooLargeError';
}

/**
 * Reads a JSON body of at most `limit` bytes. A hostile or broken provider cannot make the
 * function buffer more than that (a Lambda has 128 MB); the attempt's timeout also bounds a body
 * that drips in slowly, because the fetch signal covers the body stream.
 */
async function readJson(
  response: Response,
  limit: number,
  where: string,
  provider: string,
): Promise<unknown> {
  const tooLarge = () =>
    new BodyTooLargeError(
      `${where} answered with a body larger than ${limit} bytes; refusing to read it`,
      provider,
      response.status,
    );
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limit) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  if (response.body === null) return undefined;
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    // Never keep a body we cannot read: it may carry anything.
    return undefined;
  }
}

/**
 * An HTTP client for one provider, on Node's built-in fetch: a timeout on every attempt, retries
 * on 429 (honouring `Retry-After` and rate-limit reset headers) and on 5xx or network failures
 * where repeating is safe, exponential backoff with jitter, and never a wait longer than the
 * time left before the Lambda deadline. Errors name the provider, method, path and status;
 * bodies are never logged and provider messages are scrubbed of keys.
 *
 * @example
 * const http = createHttpClient({ provider: 'SendGrid', describeError: sendGridError });
 * const response = await http.send(step, { method: 'GET', url, headers, idempotent: true });
 */
export function createHttpClient(options: HttpClientOptions): HttpClient {
  const provider = options.provider;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxAttempts = options.maxAttempts ?? 5;
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const sleep = options.sleep ?? defaultSleep;
  const random = options.random ?? Math.random;
  const maxBodyBytes = options.maxBodyBytes ?? MAX_BODY_BYTES;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 100) {
    throw new RangeError(`${provider} HTTP timeout must be a whole number of ms >= 100`);
  }
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new RangeError(`${provider} HTTP attempts must be a whole number >= 1`);
  }

  const where = (request: HttpRequest) =>
    `${provider} ${request.method} ${new URL(request.url).pathname}`;

  function detail(request: HttpRequest, response: HttpResponse): string {
    const described = options.describeError?.(response.body) ?? {};
    const code = described.code ? `, code ${described.code}` : '';
    const message = described.message
      ? `: ${scrubSecrets(described.message, request.secrets, 300)}`
      : '';
    return `(HTTP ${response.status}${code})${message}`;
  }

  function errorFor(request: HttpRequest, response: HttpResponse, what?: string): RotationError {
    const described = options.describeError?.(response.body) ?? {};
    const subject = what ? `${where(request)} (${what})` : where(request);
    const text = `${subject} ${detail(request, response)}`;
    if (response.status === 401) {
      return new AuthenticationError(`${provider} refused the credentials: ${text}`);
    }
    if (response.status === 403) {
      return new PermissionDeniedError(
        `${provider} denied the request: ${text}`,
        provider,
        403,
        described.code,
      );
    }
    if (response.status === 429) {
      return new RateLimitedError(
        `${provider} rate-limited the request: ${text}`,
        provider,
        429,
        described.code,
      );
    }
    return new ProviderError(
      `${provider} failed: ${text}`,
      provider,
      response.status,
      described.code,
    );
  }

  function backoffMs(attempt: number): number {
    return random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  }

  async function send(call: CallContext, request: HttpRequest): Promise<HttpResponse> {
    for (let attempt = 0; ; attempt++) {
      const left = call.remainingMs();
      if (left < MIN_ATTEMPT_MS) {
        throw new ConnectTimeoutError(
          `${where(request)}: no time left before the Lambda deadline (${Math.max(0, Math.round(left))} ms)`,
        );
      }
      const attemptTimeout = Math.min(timeoutMs, Math.floor(left));
      let response: HttpResponse;
      try {
        const raw = await doFetch(request.url, {
          method: request.method,
          headers: { accept: 'application/json', ...request.headers },
          ...(request.body === undefined ? {} : { body: request.body }),
          signal: AbortSignal.timeout(attemptTimeout),
          // A redirect is an error, never followed: the Authorization header must not go to
          // whatever host a Location names (fetch's default, 'follow', would send it there).
          redirect: 'error',
        });
        response = {
          status: raw.status,
          headers: raw.headers,
          body: await readJson(raw, maxBodyBytes, where(request), provider),
        };
      } catch (error) {
        if (error instanceof BodyTooLargeError) throw error;
        const failure = classifyNetworkError(error, where(request), attemptTimeout);
        const delay = backoffMs(attempt);
        if (
          !request.idempotent ||
          attempt + 1 >= maxAttempts ||
          call.remainingMs() < delay + MIN_ATTEMPT_MS
        ) {
          throw failure;
        }
        call.logger.info('provider call failed on the network; retrying', {
          provider,
          request: where(request),
          error: failure.message,
          attempt: attempt + 1,
          delayMs: Math.round(delay),
        });
        await sleep(delay);
        continue;
      }

      const rateLimited = response.status === 429;
      const serverFault = response.status >= 500 && response.status <= 599;
      if (!rateLimited && !(serverFault && request.idempotent)) return response;

      const hint = rateLimited ? retryHintMs(response.headers, Date.now()) : undefined;
      const delay = hint === undefined ? backoffMs(attempt) : hint + random() * 250;
      const remaining = call.remainingMs();
      if (attempt + 1 >= maxAttempts || remaining < delay + MIN_ATTEMPT_MS) {
        if (rateLimited && remaining < delay + MIN_ATTEMPT_MS) {
          throw new RateLimitedError(
            `${provider} rate-limited ${where(request).slice(provider.length + 1)} ${detail(request, response)}; it asks to wait ${Math.ceil((hint ?? delay) / 1000)} s but ${Math.max(0, Math.floor(remaining / 1000))} s are left before the Lambda deadline`,
            provider,
            429,
            options.describeError?.(response.body).code,
          );
        }
        throw errorFor(request, response, `after ${attempt + 1} attempts`);
      }
      call.logger.info(
        rateLimited ? 'provider rate-limited the call; waiting' : 'provider failed; retrying',
        {
          provider,
          request: where(request),
          status: response.status,
          attempt: attempt + 1,
          delayMs: Math.round(delay),
        },
      );
      await sleep(delay);
    }
  }

  async function verify(call: CallContext, request: HttpRequest, keyId: string): Promise<Verified> {
    const response = await send(call, request);
    if (response.status === 200) return 'ok';
    if (response.status === 403) return 'authenticated-without-permission';
    throw errorFor(request, response, `verifying key ${keyId}`);
  }

  return { provider, send, errorFor, verify };
}

/** `Authorization: Basic` for a user and password. */
export const basicAuth = (user: string, password: string): string =>
  `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;

/**
 * Resolves a provider's next-page link against `base`, only when it stays on the same origin:
 * credentials are never sent to a host the function was not configured for.
 */
export function sameOriginUrl(link: string, base: string, provider: string): string {
  const resolved = new URL(link, base);
  if (resolved.origin !== new URL(base).origin) {
    throw new ProviderError(
      `${provider} returned a next-page link to another host (${resolved.origin}); refusing to follow it`,
      provider,
    );
  }
  return resolved.toString();
}
