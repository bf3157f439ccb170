import {
  createHash,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  randomUUID,
} from 'node:crypto';
import { ConfigurationError, InvalidSecretError, type RotationError } from '../common/errors.js';
import {
  type Fields,
  optionalStringArrayField,
  optionalStringField,
  stringField,
} from '../common/fields.js';
import { KeyLimitError, ProviderError } from './errors.js';
import {
  type CallContext,
  createHttpClient,
  type HttpClientOptions,
  type HttpRequest,
  type HttpResponse,
  type ProviderErrorDetail,
  sameOriginUrl,
} from './http.js';
import { decryptCompactJwe, JweError } from './jwe.js';
import type { KeyProvider, KeySummary, MintedKey } from './types.js';

export const STRIPE_BASE_URL = 'https://api.stripe.com';

/**
 * Why this function needs preview access, in the words every cold-start failure uses. Stripe
 * describes `/v2/iam/api_keys` (list, create, retrieve, update, expire, rotate) only in its
 * private-preview OpenAPI document (stripe/openapi `preview/openapi.private_preview.spec3.sdk.json`,
 * every operation marked `x-stripeNotPublic`), not in the GA document nor in the public preview;
 * the official SDKs have the resource only in their private-preview (alpha) releases, e.g.
 * stripe-node 20.2.0-alpha.1 (2025-12-15.preview) to 22.6.0-alpha.2 (2026-08-12.preview), while
 * GA `stripe` 23.1.0 and beta 22.7.0-beta.1 have none. The operations also refuse a "direct
 * account" (`api_key_direct_operation_not_supported`): the managing key must act on the account
 * through `Stripe-Context`, as a platform or a Stripe App does.
 */
export const STRIPE_PREVIEW_REQUIREMENT =
  "Stripe's Managed API Keys API (/v2/iam/api_keys) is a private preview: it is in no generally available Stripe API version, only in the preview versions of accounts Stripe admitted to it, and only for a platform or Stripe App key acting on the account through Stripe-Context. Set STRIPE_API_VERSION to the preview version Stripe gave your account (such as 2026-09-30.preview). Without that access this function cannot rotate Stripe keys: use a Stripe App's OAuth credential (refreshed by the app) or restricted keys rolled in the Dashboard instead";

const MAX_PAGES = 50;
const PAGE_SIZE = 100;

/** What a Stripe secret holds besides key and key id. */
export interface StripeSpec {
  /** Permissions of the new restricted key, sent as given. Absent: Stripe's default. */
  permissions?: string[];
}

/** The credential allowed to manage keys (a Stripe App's key), and where new secrets go. */
export interface StripeAdmin {
  key: string;
  /** `Stripe-Context`: the account the managing key acts on. */
  context?: string;
  /** Decrypts live-mode secrets; its public half goes with every create. */
  privateKey?: KeyObject;
  publicKeyPem?: string;
  /** Our identifier of that public key (Stripe echoes it as `recipient_key_id`). */
  publicKeyId?: string;
  /** The PEM text as stored, so it can be kept out of logs. */
  privateKeyText?: string;
}

export interface StripeOptions {
  /** Default https://api.stripe.com. */
  baseUrl?: string;
  /** The preview `Stripe-Version`; default STRIPE_API_VERSION (required: see {@link STRIPE_PREVIEW_REQUIREMENT}). */
  apiVersion?: string;
  /** Where STRIPE_API_VERSION is read (default `process.env`). */
  env?: Readonly<Record<string, string | undefined>>;
  timeoutMs?: number;
  http?: Partial<HttpClientOptions>;
}

/** `{"error":{"type":…,"code":…,"message":…}}`, Stripe's v1 and v2 error body. */
export function stripeError(body: unknown): ProviderErrorDetail {
  const error = (body as { error?: unknown } | undefined)?.error as
    | { type?: unknown; code?: unknown; message?: unknown }
    | undefined;
  if (!error || typeof error !== 'object') return {};
  const code = typeof error.code === 'string' ? error.code : error.type;
  return {
    ...(typeof code === 'string' ? { code } : {}),
    ...(typeof error.message === 'string' ? { message: error.message } : {}),
  };
}

const record = (value: unknown): Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};

/**
 * Stripe's answer to a path it does not route for this account and version ("Unrecognized
 * request URL", HTTP 404), as opposed to a 404 for an unknown key (`resource_missing`).
 */
function unservedRoute(response: { status: number; body: unknown }): boolean {
  if (response.status !== 404) return false;
  const { code, message } = stripeError(response.body);
  return code !== 'resource_missing' && (message ?? '').startsWith('Unrecognized request URL');
}

/** A listed key, reduced at once to what may be kept. The list answer carries key secrets. */
export interface StripeKeyListing extends KeySummary {
  status: string;
  type: string;
}

/**
 * Maps one item of `GET /v2/iam/api_keys` to an allow-listed shape: id, name, status, type.
 * Stripe returns every key's secret in that list (`secret_key.token`); nothing else of the item
 * survives this function.
 */
export function toKeyListing(item: unknown): StripeKeyListing | undefined {
  const { id, name, status, type } = record(item);
  if (typeof id !== 'string') return undefined;
  return {
    id,
    name: typeof name === 'string' ? name : '',
    status: typeof status === 'string' ? status : 'unknown',
    type: typeof type === 'string' ? type : 'unknown',
  };
}

/** The parts of a create answer we read: the id, and the secret in one of its two forms. */
interface CreatedKey {
  id: string;
  token?: string;
  ciphertext?: string;
  format?: string;
  recipientKeyId?: string;
}

function toCreatedKey(body: unknown): CreatedKey | undefined {
  const { id, secret_key: secretKey } = record(body);
  if (typeof id !== 'string' || id === '') return undefined;
  const { token, encrypted_secret: encrypted } = record(secretKey);
  const { ciphertext, format, recipient_key_id: recipientKeyId } = record(encrypted);
  return {
    id,
    ...(typeof token === 'string' && token !== '' ? { token } : {}),
    ...(typeof ciphertext === 'string' && ciphertext !== '' ? { ciphertext } : {}),
    ...(typeof format === 'string' ? { format } : {}),
    ...(typeof recipientKeyId === 'string' ? { recipientKeyId } : {}),
  };
}

/** Reads an RSA private key (PEM, PKCS#1 or PKCS#8) of at least 2048 bits. */
function readPrivateKey(text: string, source: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: text, format: 'pem' });
  } catch {
    // No cause: a parser error could quote part of the key.
    throw new InvalidSecretError(
      `${source}: field "private_key" is not a PEM private key`,
      'private_key',
    );
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (key.asymmetricKeyType !== 'rsa' || bits < 2048) {
    throw new InvalidSecretError(
      `${source}: field "private_key" must be an RSA key of at least 2048 bits (Stripe encrypts new secrets to its public half)`,
      'private_key',
    );
  }
  return key;
}

/**
 * Stripe's Managed API Keys API (preview): `POST /v2/iam/api_keys` mints a secret key,
 * `GET /v2/iam/api_keys` lists, `POST /v2/iam/api_keys/{id}/expire` revokes; `GET /v1/balance`
 * verifies (401: dead key, 403: a live restricted key without that permission). JSON bodies,
 * Bearer authentication, the preview `Stripe-Version`, `Stripe-Context` when the managing secret
 * names an account, and an `Idempotency-Key` on every POST. In live mode Stripe returns the new
 * secret only as a compact JWE encrypted to the public half of the managing secret's
 * `private_key`; it is decrypted in memory. No key can manage keys itself: a managing secret is
 * required.
 *
 * @example
 * export const handler = createRotationHandler({ strategy: apiKeys(createStripe()), logger });
 */
export function createStripe(options: StripeOptions = {}): KeyProvider<StripeSpec, StripeAdmin> {
  const env = options.env ?? process.env;
  const version = options.apiVersion ?? env.STRIPE_API_VERSION?.trim() ?? '';
  if (version === '') {
    throw new ConfigurationError(
      `environment variable STRIPE_API_VERSION is not set. ${STRIPE_PREVIEW_REQUIREMENT}`,
    );
  }
  if (!/^\d{4}-\d{2}-\d{2}\.preview$/.test(version)) {
    throw new ConfigurationError(
      `environment variable STRIPE_API_VERSION must be a preview version such as 2026-09-30.preview, got ${JSON.stringify(version)}. ${STRIPE_PREVIEW_REQUIREMENT}`,
    );
  }
  const http = createHttpClient({
    provider: 'Stripe',
    describeError: stripeError,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...options.http,
  });
  const base = (options.baseUrl ?? STRIPE_BASE_URL).replace(/\/+$/, '');

  const managementHeaders = (admin: StripeAdmin, json: boolean): Record<string, string> => ({
    authorization: `Bearer ${admin.key}`,
    'stripe-version': version,
    ...(admin.context ? { 'stripe-context': admin.context } : {}),
    ...(json ? { 'content-type': 'application/json' } : {}),
  });

  /**
   * The error for a refused management call. Codes from the preview document: a direct account
   * (no platform or app acting through Stripe-Context), and the account's key limit.
   */
  function managementError(
    request: HttpRequest,
    response: HttpResponse,
    doing: string,
  ): RotationError {
    const { code, message } = stripeError(response.body);
    if (unservedRoute(response)) {
      return new ProviderError(
        `Stripe does not serve ${where(request)} to this account (HTTP 404: ${message ?? 'Unrecognized request URL'}). ${STRIPE_PREVIEW_REQUIREMENT}`,
        'Stripe',
        404,
      );
    }
    if (code === 'api_key_direct_operation_not_supported') {
      return new ProviderError(
        `Stripe refused ${doing} (HTTP ${response.status}, api_key_direct_operation_not_supported): Stripe manages keys only through a platform or Stripe App key acting on the account; set "stripe_context" in the managing secret to that account (acct_…)`,
        'Stripe',
        response.status,
        code,
      );
    }
    if (code === 'api_key_limit_reached') {
      return new KeyLimitError(
        `Stripe refused ${doing}: the account holds as many API keys as Stripe allows (api_key_limit_reached); expire keys that are no longer used, then retry the rotation`,
        'Stripe',
        response.status,
        code,
      );
    }
    return http.errorFor(request, response, doing);
  }

  const where = (request: HttpRequest) => `${request.method} ${new URL(request.url).pathname}`;

  async function expire(
    admin: StripeAdmin,
    id: string,
    call: CallContext,
  ): Promise<'revoked' | 'not-found'> {
    // No body: the preview document's expire operation declares none (no requestBody).
    const request: HttpRequest = {
      method: 'POST',
      url: `${base}/v2/iam/api_keys/${encodeURIComponent(id)}/expire`,
      headers: { ...managementHeaders(admin, false), 'idempotency-key': randomUUID() },
      idempotent: true,
      secrets: [admin.key],
    };
    const response = await http.send(call, request);
    if (response.status === 200) return 'revoked';
    // A 404 for the route itself is an API this account does not have, not an unknown key.
    if (response.status === 404 && !unservedRoute(response)) return 'not-found';
    // "attempting to modify an API key that is already expired" (400): a retried expire whose
    // first answer was lost, or a key expired by hand. Either way it no longer works.
    if (response.status === 400 && stripeError(response.body).code === 'api_key_expired') {
      return 'revoked';
    }
    throw managementError(request, response, `expiring key ${id}`);
  }

  /** The new key's secret, from the plain token (test mode) or the JWE (live mode). */
  function secretOf(created: CreatedKey, admin: StripeAdmin): string {
    if (created.ciphertext !== undefined) {
      if (!admin.privateKey) {
        throw new ProviderError(
          'Stripe returned the new secret encrypted, and the managing secret has no "private_key" to decrypt it',
          'Stripe',
        );
      }
      if (created.format !== undefined && created.format !== 'jwe_compact') {
        throw new ProviderError(
          `Stripe returned the new secret as ${JSON.stringify(created.format)}; only jwe_compact is supported`,
          'Stripe',
        );
      }
      if (created.recipientKeyId !== undefined && created.recipientKeyId !== admin.publicKeyId) {
        throw new ProviderError(
          `Stripe encrypted the new secret to public key ${created.recipientKeyId}, not ours (${admin.publicKeyId})`,
          'Stripe',
        );
      }
      try {
        return decryptCompactJwe(created.ciphertext, admin.privateKey);
      } catch (error) {
        if (error instanceof JweError) {
          throw new ProviderError(
            `cannot decrypt the new Stripe secret: ${error.message}`,
            'Stripe',
          );
        }
        throw error;
      }
    }
    if (created.token !== undefined) return created.token;
    throw new ProviderError(
      'Stripe answered POST /v2/iam/api_keys without the new secret (neither secret_key.token nor secret_key.encrypted_secret)',
      'Stripe',
    );
  }

  return {
    id: 'stripe',
    name: 'Stripe',
    // Not documented for the preview API; 64 is safe and our names are about 60 characters.
    maxNameLength: 64,

    parseSpec(raw: Fields, source: string): StripeSpec {
      const permissions = optionalStringArrayField(raw, 'permissions', source, {
        maxItems: 300,
        itemPattern: /^[a-z0-9_]{1,100}$/,
        describe: 'a Stripe permission such as "balance_read"',
      });
      return permissions === undefined ? {} : { permissions };
    },

    differentTarget: () => undefined,

    parseAdmin(raw: Fields, source: string): StripeAdmin {
      const key = stringField(raw, 'key', source, { maxLength: 512 });
      const context = optionalStringField(raw, 'stripe_context', source, {
        maxLength: 255,
        pattern: /^[A-Za-z0-9_/]+$/,
        describe: 'an account id such as acct_123 (a Stripe-Context value)',
      });
      const privateKeyText = optionalStringField(raw, 'private_key', source, { maxLength: 16_384 });
      if (privateKeyText === undefined && /^(sk|rk)_live_/.test(key)) {
        throw new InvalidSecretError(
          `${source}: field "private_key" is missing; in live mode Stripe returns new secrets only encrypted to its public half`,
          'private_key',
        );
      }
      const admin: StripeAdmin = { key, ...(context ? { context } : {}) };
      if (privateKeyText !== undefined) {
        const privateKey = readPrivateKey(privateKeyText, source);
        const publicKey = createPublicKey(privateKey);
        const der = publicKey.export({ type: 'spki', format: 'der' });
        admin.privateKey = privateKey;
        admin.privateKeyText = privateKeyText;
        admin.publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
        admin.publicKeyId = `rotation-${createHash('sha256').update(der).digest('hex').slice(0, 16)}`;
      }
      return admin;
    },

    secretsOfAdmin: (admin) => [admin.key, ...(admin.privateKeyText ? [admin.privateKeyText] : [])],

    async mint(admin, { name, spec }, call): Promise<MintedKey> {
      const request: HttpRequest = {
        method: 'POST',
        url: `${base}/v2/iam/api_keys`,
        // One idempotency key per mint, kept across HTTP retries: a retried create cannot mint twice.
        headers: { ...managementHeaders(admin, true), 'idempotency-key': randomUUID() },
        body: JSON.stringify({
          type: 'secret_key',
          name,
          ...(spec.permissions ? { permissions: spec.permissions } : {}),
          ...(admin.publicKeyPem
            ? {
                public_key: {
                  id: admin.publicKeyId,
                  // The preview document's own request example spells it "rsa".
                  pem_key: { algorithm: 'rsa', data: admin.publicKeyPem },
                },
              }
            : {}),
        }),
        idempotent: true,
        secrets: [admin.key],
      };
      const response = await http.send(call, request);
      if (response.status !== 200 && response.status !== 201) {
        throw managementError(request, response, 'minting a key');
      }
      const token = record(record(response.body).secret_key).token;
      if (typeof token === 'string') call.redact(token);
      const created = toCreatedKey(response.body);
      if (created === undefined) {
        throw new ProviderError(
          `Stripe answered POST /v2/iam/api_keys (HTTP ${response.status}) without an id`,
          'Stripe',
          response.status,
        );
      }
      let key: string;
      try {
        key = secretOf(created, admin);
      } catch (error) {
        // The key exists but nobody can read it: expire it now rather than leave it behind.
        const outcome = await expire(admin, created.id, call).then(
          () => `expired key ${created.id}`,
          () => `could not expire key ${created.id} either`,
        );
        if (error instanceof ProviderError) error.message += ` (${outcome})`;
        throw error;
      }
      call.redact(key);
      return { id: created.id, key, name };
    },

    async verify(key, call) {
      const request: HttpRequest = {
        method: 'GET',
        url: `${base}/v1/balance`,
        headers: { authorization: `Bearer ${key.key}` },
        idempotent: true,
        secrets: [key.key],
      };
      return http.verify(call, request, key.id);
    },

    async list(admin, _spec, call) {
      const keys: KeySummary[] = [];
      let url: string | undefined = `${base}/v2/iam/api_keys?limit=${PAGE_SIZE}`;
      for (let page = 0; url !== undefined; page++) {
        if (page >= MAX_PAGES) {
          throw new ProviderError(`Stripe listed more than ${MAX_PAGES} pages of keys`, 'Stripe');
        }
        const request: HttpRequest = {
          method: 'GET',
          url,
          headers: managementHeaders(admin, false),
          idempotent: true,
          secrets: [admin.key],
        };
        const response = await http.send(call, request);
        if (response.status !== 200) throw managementError(request, response, 'listing keys');
        const { data, next_page_url: next } = record(response.body);
        if (!Array.isArray(data)) {
          throw new ProviderError('Stripe answered a key list without "data"', 'Stripe', 200);
        }
        for (const listing of data.map(toKeyListing)) {
          if (listing && listing.type === 'secret_key' && listing.status !== 'expired') {
            keys.push({ id: listing.id, name: listing.name });
          }
        }
        url =
          typeof next === 'string' && next !== '' ? sameOriginUrl(next, base, 'Stripe') : undefined;
      }
      return keys;
    },

    revoke: (admin, id, _spec, call) => expire(admin, id, call),
  };
}
