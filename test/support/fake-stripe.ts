/**
 * Stripe's Managed API Keys API (preview) and the balance read:
 *
 *   POST /v2/iam/api_keys               {type, name, public_key: {id, pem_key: {algorithm, data}}}
 *   GET  /v2/iam/api_keys?limit=…       {data: [ApiKey…], next_page_url, previous_page_url}
 *   POST /v2/iam/api_keys/{id}/expire
 *   GET  /v1/balance                    401 for a dead key, 403 for a key without balance_read
 *
 * The management endpoints require the preview `Stripe-Version` given to the fake and, when
 * the fake has a `contextAccount`, `Stripe-Context` naming it; only the managing (app) key may
 * call them. In test mode the new secret is returned in `secret_key.token`; in live mode (a
 * `sk_live_` managing key) only as a compact JWE (RSA-OAEP-256, A256GCM) encrypted to the
 * public key sent. As in Stripe, the list returns every key's secret in plain text, and a 401
 * message quotes the start and end of the key refused. Idempotency-Key replays the first
 * answer. Errors as `{"error":{"type":…,"code":…,"message":…}}`, with the codes of Stripe's
 * private-preview document: `api_key_limit_reached` (400) at the key limit, `api_key_expired`
 * (400) for an expire of an expired key, `api_key_direct_operation_not_supported` (400) for a
 * management call without `Stripe-Context` on an account managed through one.
 *
 * Not modelled: publishable keys beyond their presence in lists, `rotate`, updates and IP
 * allow-lists, the real permission vocabulary (only `balance_read` matters here), the real key
 * limit (invented answer for `maxKeys`).
 */
import { constants, createCipheriv, publicEncrypt, randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import {
  ALNUM,
  bearer,
  type FakeKey,
  FakeProviderServer,
  type FakeRequest,
  type FakeResponse,
  jsonBody,
  type Route,
  randomChars,
} from './fake-provider-server.js';
import { rememberSecretValue } from './leak-guard.js';

export interface StripeKey extends FakeKey {
  livemode: boolean;
  type: 'secret_key' | 'publishable_key';
  /** undefined: every permission. */
  permissions?: string[];
}

const error = (status: number, type: string, message: string, code?: string): FakeResponse => ({
  status,
  body: { error: { type, ...(code ? { code } : {}), message } },
});
/** How Stripe quotes a refused key in its messages. */
const redacted = (secret: string) =>
  `${secret.slice(0, secret.indexOf('_', 3) + 1)}********${secret.slice(-4)}`;

/** A compact JWE of `plaintext` for `publicKeyPem`, as a Stripe live-mode create returns it. */
export function encryptCompactJwe(
  plaintext: string,
  publicKeyPem: string,
  alg: 'RSA-OAEP' | 'RSA-OAEP-256' = 'RSA-OAEP-256',
): string {
  const header = Buffer.from(JSON.stringify({ alg, enc: 'A256GCM' })).toString('base64url');
  const contentKey = randomBytes(32);
  const encryptedKey = publicEncrypt(
    {
      key: publicKeyPem,
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: alg === 'RSA-OAEP' ? 'sha1' : 'sha256',
    },
    contentKey,
  );
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', contentKey, iv);
  cipher.setAAD(Buffer.from(header, 'ascii'));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [header, encryptedKey, iv, ciphertext, cipher.getAuthTag()]
    .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
    .join('.');
}

/**
 * A preview version with /v2/iam/api_keys: a later copy of Stripe's private-preview document is
 * `2026-09-30.preview`; the pinned one (test/contracts/stripe_v2_iam_api_keys.json) is
 * `2026-07-29.preview`.
 */
export const STRIPE_FAKE_API_VERSION = '2026-09-30.preview';

export class FakeStripe extends FakeProviderServer<StripeKey> {
  /** The preview version the management endpoints accept (any `….preview` Stripe granted). */
  apiVersion = STRIPE_FAKE_API_VERSION;
  /** When set, management requests must carry `Stripe-Context` with this account. */
  contextAccount: string | undefined;
  /** The Stripe App's key, allowed to manage keys. */
  readonly managingKey: string;
  private readonly replays = new Map<string, FakeResponse>();

  constructor(readonly mode: 'test' | 'live' = 'test') {
    super();
    this.managingKey = `sk_${mode}_${randomChars(ALNUM, 99)}`;
    rememberSecretValue(this.managingKey);
  }

  seedKey(name: string, extra: Partial<StripeKey> = {}): StripeKey {
    return this.store({
      id: `mk_${randomChars(ALNUM, 24)}`,
      name,
      secret: `rk_${this.mode}_${randomChars(ALNUM, 99)}`,
      createdAt: Date.now() - 86_400_000,
      livemode: this.mode === 'live',
      type: 'secret_key',
      ...extra,
    });
  }

  override allSecrets(): string[] {
    return [...super.allSecrets(), this.managingKey];
  }

  knowsCredential(headers: IncomingHttpHeaders): boolean {
    const token = headers.authorization?.replace(/^Bearer /, '');
    return (
      token === this.managingKey || [...this.keys.values()].some((key) => key.secret === token)
    );
  }

  protected tooManyRequests(resetSeconds: number): FakeResponse {
    return {
      ...error(
        429,
        'invalid_request_error',
        'Too many requests hit the API too quickly.',
        'rate_limit',
      ),
      headers: { 'Retry-After': String(resetSeconds), 'Stripe-Should-Retry': 'true' },
    };
  }

  protected notFound(path: string): FakeResponse {
    return error(404, 'invalid_request_error', `Unrecognized request URL (${path}).`);
  }

  private view(key: StripeKey, secret?: Record<string, unknown>) {
    return {
      id: key.id,
      object: 'v2.iam.api_key',
      name: key.name,
      type: key.type,
      status: key.revokedAt === undefined ? 'active' : 'expired',
      livemode: key.livemode,
      created: new Date(key.createdAt).toISOString(),
      ip_allowlist: [],
      ...(key.type === 'secret_key'
        ? {
            secret_key: secret ?? {
              token: key.secret,
              secret_token_redacted: redacted(key.secret),
            },
          }
        : { publishable_key: { token: key.secret } }),
    };
  }

  /** Checks the management headers; undefined when the request may proceed. */
  private refuseManagement(request: FakeRequest): FakeResponse | undefined {
    // v2 error bodies always carry a code (the preview document's v2.error requires one); it
    // names none for 401, 403 or a refused version or context, so those codes are the fake's own.
    const token = bearer(request);
    if (token === undefined) {
      return error(
        401,
        'invalid_request_error',
        'You did not provide an API key.',
        'api_key_missing',
      );
    }
    if (token !== this.managingKey) {
      if (this.bySecret(token)) {
        return error(
          403,
          'invalid_request_error',
          `The provided key '${redacted(token)}' does not have the required permissions for this endpoint.`,
          'api_key_permission_denied',
        );
      }
      return error(
        401,
        'invalid_request_error',
        `Invalid API Key provided: ${redacted(token)}`,
        'api_key_invalid',
      );
    }
    if (request.headers['stripe-version'] !== this.apiVersion) {
      return error(
        400,
        'invalid_request_error',
        `This endpoint is only available in preview versions; Stripe-Version ${String(request.headers['stripe-version'])} is not one of them.`,
        'api_version_not_supported',
      );
    }
    if (this.contextAccount !== undefined && request.headers['stripe-context'] === undefined) {
      return error(
        400,
        'invalid_request_error',
        'API keys cannot be managed on a direct account.',
        'api_key_direct_operation_not_supported',
      );
    }
    if (
      this.contextAccount !== undefined &&
      request.headers['stripe-context'] !== this.contextAccount
    ) {
      return error(
        403,
        'invalid_request_error',
        'Stripe-Context must name the account this app is installed on.',
        'stripe_context_invalid',
      );
    }
    return undefined;
  }

  private replayable(request: FakeRequest, handle: () => FakeResponse): FakeResponse {
    const key = request.headers['idempotency-key'];
    if (typeof key !== 'string') return handle();
    const replay = this.replays.get(key);
    if (replay) return replay;
    const response = handle();
    if (response.status < 500) this.replays.set(key, response);
    return response;
  }

  protected routes(): Route[] {
    return [
      {
        name: 'create',
        method: 'POST',
        path: /^\/v2\/iam\/api_keys$/,
        handle: (request) =>
          this.replayable(request, () => {
            const refused = this.refuseManagement(request);
            if (refused) return refused;
            const body = jsonBody(request);
            if (body?.type !== 'secret_key' || typeof body.name !== 'string') {
              return error(
                400,
                'invalid_request_error',
                'type and name are required',
                'invalid_fields',
              );
            }
            const publicKey = body.public_key as
              | { id?: string; pem_key?: { algorithm?: string; data?: string } }
              | undefined;
            if (this.mode === 'live' && typeof publicKey?.pem_key?.data !== 'string') {
              return error(
                400,
                'invalid_request_error',
                'A public key is required to create secret keys in livemode.',
                'invalid_fields',
              );
            }
            if (this.atKeyLimit()) {
              return error(
                400,
                'invalid_request_error',
                'This account has too many API keys.',
                'api_key_limit_reached',
              );
            }
            const key = this.seedKey(body.name, {
              createdAt: Date.now(),
              ...(Array.isArray(body.permissions)
                ? { permissions: body.permissions as string[] }
                : {}),
            });
            const secret =
              this.mode === 'live'
                ? {
                    encrypted_secret: {
                      ciphertext: encryptCompactJwe(key.secret, publicKey?.pem_key?.data as string),
                      format: 'jwe_compact',
                      ...(publicKey?.id ? { recipient_key_id: publicKey.id } : {}),
                    },
                    secret_token_redacted: redacted(key.secret),
                  }
                : { token: key.secret, secret_token_redacted: redacted(key.secret) };
            return { status: 200, body: this.view(key, secret) };
          }),
      },
      {
        name: 'list',
        method: 'GET',
        path: /^\/v2\/iam\/api_keys$/,
        handle: (request) => {
          const refused = this.refuseManagement(request);
          if (refused) return refused;
          const limit = Math.min(100, Number(request.query.get('limit') ?? 20));
          const start = Number(request.query.get('page') ?? 0);
          const all = [...this.keys.values()].filter(
            (key) => key.revokedAt === undefined || request.query.get('include_expired') === 'true',
          );
          const more = start + limit < all.length;
          return {
            status: 200,
            body: {
              data: all.slice(start, start + limit).map((key) => this.view(key)),
              next_page_url: more ? `/v2/iam/api_keys?limit=${limit}&page=${start + limit}` : null,
              previous_page_url: null,
            },
          };
        },
      },
      {
        name: 'delete',
        method: 'POST',
        path: /^\/v2\/iam\/api_keys\/([^/]+)\/expire$/,
        handle: (request) =>
          this.replayable(request, () => {
            const refused = this.refuseManagement(request);
            if (refused) return refused;
            const id = decodeURIComponent(request.match[1] as string);
            const key = this.keys.get(id);
            if (!key) {
              return error(
                404,
                'invalid_request_error',
                `No such api_key: '${id}'`,
                'resource_missing',
              );
            }
            if (!this.revoke(id)) {
              return error(
                400,
                'invalid_request_error',
                `The API key '${id}' is already expired.`,
                'api_key_expired',
              );
            }
            return {
              status: 200,
              body: this.view(key, { secret_token_redacted: redacted(key.secret) }),
            };
          }),
      },
      {
        name: 'verify',
        method: 'GET',
        path: /^\/v1\/balance$/,
        handle: (request) => {
          const token = bearer(request) ?? '';
          const key = this.bySecret(token);
          if (!key) {
            const known = [...this.keys.values()].some((k) => k.secret === token);
            return known
              ? error(
                  401,
                  'invalid_request_error',
                  `Expired API Key provided: ${redacted(token)}`,
                  'api_key_expired',
                )
              : error(401, 'invalid_request_error', `Invalid API Key provided: ${redacted(token)}`);
          }
          if (key.permissions && !key.permissions.includes('balance_read')) {
            return error(
              403,
              'invalid_request_error',
              `The provided key '${redacted(token)}' does not have the required permissions for this endpoint. Having the 'rak_balance_read' permission would allow this request to continue.`,
            );
          }
          return {
            status: 200,
            body: {
              object: 'balance',
              available: [{ amount: 0, currency: 'usd', source_types: { card: 0 } }],
              pending: [{ amount: 0, currency: 'usd', source_types: { card: 0 } }],
              livemode: key.livemode,
            },
          };
        },
      },
    ];
  }
}
