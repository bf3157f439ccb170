/**
 * The machinery the provider fakes (SendGrid, Stripe, Twilio) share: an HTTP server on
 * 127.0.0.1 and a random port, a router, a log of every request, a key store with the life of a
 * real key (a new key may take a while to work, a revoked one may keep working for a while),
 * and switches for failures:
 *
 *   fake.propagationDelayMs = 500;           // a new key is refused for 500 ms
 *   fake.revocationLagMs = 300;              // a revoked key still works for 300 ms
 *   fake.maxKeys = 3;                        // the account key limit
 *   fake.rateLimitNext(2, { resetSeconds: 1 }); // the next 2 requests answer 429
 *   fake.failNext('create', 'drop-after-effect'); // the key is created, the answer is lost
 *
 * Each provider fake answers with that provider's real paths, headers, bodies and error shapes.
 */
import { randomBytes } from 'node:crypto';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { rememberSecretValue } from './leak-guard.js';

export interface RecordedRequest {
  route: string;
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: string;
  /** Date.now() when it arrived. */
  at: number;
  status?: number;
  /** What the fake answered (headers and parsed body), for the contract tests. */
  response?: { headers: Record<string, string>; body?: unknown };
}

export interface FakeRequest extends RecordedRequest {
  match: RegExpMatchArray;
}

export interface FakeResponse {
  status: number;
  headers?: Record<string, string>;
  /** JSON-serialised; absent for 204. */
  body?: unknown;
}

/**
 * `drop-before-effect`: the connection is closed before the request is processed (network
 * failure). `drop-after-effect`: the request takes effect, then the connection is closed before
 * the answer (a lost response: the client cannot know). A response: answered instead.
 */
export type Fault = 'drop-before-effect' | 'drop-after-effect' | FakeResponse;

export interface Route {
  name: string;
  method: string;
  path: RegExp;
  handle(request: FakeRequest): FakeResponse;
}

/** One key at the fake provider. */
export interface FakeKey {
  id: string;
  name: string;
  secret: string;
  createdAt: number;
  revokedAt?: number;
}

export const randomChars = (alphabet: string, length: number): string => {
  const bytes = randomBytes(length);
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[(bytes[i] as number) % alphabet.length];
  return out;
};
export const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export const HEX = '0123456789abcdef';

export abstract class FakeProviderServer<K extends FakeKey> {
  /** Every request received, in order. */
  readonly requests: RecordedRequest[] = [];
  /** A new key is refused for this long after it is minted. */
  propagationDelayMs = 0;
  /** A revoked key keeps working for this long. */
  revocationLagMs = 0;
  /** Live keys the account may hold. */
  maxKeys = Number.POSITIVE_INFINITY;

  protected readonly keys = new Map<string, K>();
  private readonly faults = new Map<string, Fault[]>();
  private rateLimit: { remaining: number; resetSeconds: number } | undefined;
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private url?: string;

  protected abstract routes(): Route[];
  /** The provider's 429 answer, with its rate-limit headers. */
  protected abstract tooManyRequests(resetSeconds: number): FakeResponse;
  /** The provider's answer to an unknown path. */
  protected abstract notFound(path: string): FakeResponse;

  get baseUrl(): string {
    if (!this.url) throw new Error('start() the fake first');
    return this.url;
  }

  async start(): Promise<this> {
    const routes = this.routes();
    this.server = createServer((req, res) => {
      void this.dispatch(routes, req, res);
    });
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject);
      this.server?.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }

  /** Puts every switch back to normal (keys and the request log are kept). */
  resetSwitches(): void {
    this.propagationDelayMs = 0;
    this.revocationLagMs = 0;
    this.maxKeys = Number.POSITIVE_INFINITY;
    this.rateLimit = undefined;
    this.faults.clear();
  }

  /** The next `count` requests, of any route, answer 429 with a reset `resetSeconds` away. */
  rateLimitNext(count: number, options: { resetSeconds: number }): void {
    this.rateLimit = { remaining: count, resetSeconds: options.resetSeconds };
  }

  /** The next request to `route` fails this way. */
  failNext(route: string, fault: Fault): void {
    const queue = this.faults.get(route) ?? [];
    queue.push(fault);
    this.faults.set(route, queue);
  }

  /**
   * Whether a request with these headers authenticates as this account (or tries to, with a key
   * the account once had): how {@link FakeProviderAccounts} routes a request, as the real
   * provider tells accounts apart by the credential.
   */
  abstract knowsCredential(headers: IncomingHttpHeaders): boolean;

  // ----------------------------------------------------------------------- key life (tests)

  /** Adds a key as if made in the provider's console (a bystander, or the first key). */
  abstract seedKey(name: string, extra?: Partial<K>): K;

  /** Keys not revoked. */
  liveKeys(): K[] {
    return [...this.keys.values()].filter((key) => key.revokedAt === undefined);
  }

  key(id: string): K | undefined {
    return this.keys.get(id);
  }

  /** Every secret the fake ever handed out, for leak checks. */
  allSecrets(): string[] {
    return [...this.keys.values()].map((key) => key.secret);
  }

  /** Revokes a key as a person would in the provider's console. */
  revokeInConsole(id: string): void {
    this.revoke(id);
  }

  /** Whether the provider would accept this key now. */
  accepts(id: string): boolean {
    const key = this.keys.get(id);
    return key !== undefined && this.usable(key, Date.now());
  }

  protected usable(key: K, now: number): boolean {
    if (now < key.createdAt + this.propagationDelayMs) return false;
    return key.revokedAt === undefined || now < key.revokedAt + this.revocationLagMs;
  }

  /** The key holding `secret`, if the provider would accept it now. */
  protected bySecret(secret: string): K | undefined {
    const now = Date.now();
    for (const key of this.keys.values()) {
      if (key.secret === secret) return this.usable(key, now) ? key : undefined;
    }
    return undefined;
  }

  protected store(key: K): K {
    rememberSecretValue(key.secret);
    this.keys.set(key.id, key);
    return key;
  }

  protected atKeyLimit(): boolean {
    return this.liveKeys().length >= this.maxKeys;
  }

  /** Revokes a live key; false when it is unknown or already revoked. */
  protected revoke(id: string): boolean {
    const key = this.keys.get(id);
    if (!key || key.revokedAt !== undefined) return false;
    key.revokedAt = Date.now();
    return true;
  }

  // ----------------------------------------------------------------------------- internals

  private async dispatch(routes: Route[], req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://fake');
    const record: RecordedRequest = {
      route: 'unknown',
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      body: Buffer.concat(chunks).toString('utf8'),
      at: Date.now(),
    };
    this.requests.push(record);
    let matched: { route: Route; match: RegExpMatchArray } | undefined;
    for (const route of routes) {
      const match = route.method === record.method ? url.pathname.match(route.path) : null;
      if (match) {
        matched = { route, match };
        break;
      }
    }
    if (!matched) {
      this.answer(res, record, this.notFound(url.pathname));
      return;
    }
    record.route = matched.route.name;
    if (this.rateLimit && this.rateLimit.remaining > 0) {
      this.rateLimit.remaining -= 1;
      this.answer(res, record, this.tooManyRequests(this.rateLimit.resetSeconds));
      return;
    }
    const fault = this.faults.get(record.route)?.shift();
    if (fault === 'drop-before-effect') {
      req.socket.destroy();
      return;
    }
    if (fault !== undefined && fault !== 'drop-after-effect') {
      this.answer(res, record, fault);
      return;
    }
    const response = matched.route.handle({ ...record, match: matched.match });
    if (fault === 'drop-after-effect') {
      req.socket.destroy();
      return;
    }
    this.answer(res, record, response);
  }

  private answer(res: ServerResponse, record: RecordedRequest, response: FakeResponse) {
    record.status = response.status;
    record.response = {
      headers: { ...response.headers },
      ...(response.body === undefined ? {} : { body: response.body }),
    };
    const payload = response.body === undefined ? '' : JSON.stringify(response.body);
    res.writeHead(response.status, {
      ...(payload === '' ? {} : { 'content-type': 'application/json' }),
      'content-length': Buffer.byteLength(payload),
      ...response.headers,
    });
    res.end(payload);
  }
}

/** Parses a JSON body; undefined when it is not JSON. */
export function jsonBody(request: FakeRequest): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(request.body);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The bearer token of a request, if any. */
export function bearer(request: FakeRequest): string | undefined {
  const header = request.headers.authorization;
  return header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
}

/** User and password of `Authorization: Basic`, if any. */
export function basic(request: FakeRequest): { user: string; password: string } | undefined {
  const header = request.headers.authorization;
  if (!header?.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice('Basic '.length), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0
    ? undefined
    : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
