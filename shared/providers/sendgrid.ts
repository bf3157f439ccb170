import { InvalidSecretError } from '../common/errors.js';
import { type Fields, optionalStringArrayField, stringField } from '../common/fields.js';
import { KeyLimitError, ProviderError } from './errors.js';
import {
  type CallContext,
  createHttpClient,
  type HttpClientOptions,
  type HttpRequest,
  type ProviderErrorDetail,
} from './http.js';
import type { KeyCredential, KeyProvider, KeySummary, MintedKey } from './types.js';

/** SendGrid's two API hosts: global users and subusers, and EU regional subusers. */
export const SENDGRID_BASE_URLS = {
  global: 'https://api.sendgrid.com',
  eu: 'https://api.eu.sendgrid.com',
} as const;
export type SendGridRegion = keyof typeof SENDGRID_BASE_URLS;

/** "There is a limit of 100 API Keys on your account" (SendGrid API reference). */
export const SENDGRID_KEY_LIMIT = 100;

/** The scopes a key needs to rotate itself (no managing secret). */
export const SENDGRID_KEY_MANAGEMENT_SCOPES = [
  'api_keys.create',
  'api_keys.read',
  'api_keys.delete',
] as const;

/** What a SendGrid secret holds besides key and key id. */
export interface SendGridSpec {
  region: SendGridRegion;
  /** Scopes of the new key; absent: SendGrid's default, full access. */
  scopes?: string[];
}

/** A key allowed to manage keys (the managing secret's, or the rotated key itself). */
export interface SendGridAdmin {
  key: string;
}

export interface SendGridOptions {
  /** One base URL for every region (tests, a proxy). Default: by the secret's `region`. */
  baseUrl?: string;
  /** Longest single HTTP attempt, in ms (default 10000). */
  timeoutMs?: number;
  /** For tests: HTTP client settings (fetch, sleep). */
  http?: Partial<HttpClientOptions>;
}

/** `{"errors":[{"field":…,"message":…}]}`, SendGrid's error body. */
export function sendGridError(body: unknown): ProviderErrorDetail {
  const errors = (body as { errors?: unknown } | undefined)?.errors;
  if (!Array.isArray(errors)) return {};
  const messages = errors
    .map((item) => (item as { message?: unknown })?.message)
    .filter((message): message is string => typeof message === 'string');
  return messages.length > 0 ? { message: messages.join('; ') } : {};
}

const record = (value: unknown): Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};

/**
 * SendGrid v3 API keys: `POST /v3/api_keys` mints (the key is returned once), `GET
 * /v3/api_keys` lists names and ids, `DELETE /v3/api_keys/{id}` revokes, `GET /v3/scopes`
 * verifies. Bearer authentication; the EU host for secrets with `"region": "eu"`. A key with the
 * `api_keys.*` scopes may rotate itself, so the managing secret is optional.
 *
 * @example
 * export const handler = createRotationHandler({ strategy: apiKeys(createSendGrid()), logger });
 */
export function createSendGrid(
  options: SendGridOptions = {},
): KeyProvider<SendGridSpec, SendGridAdmin> {
  const http = createHttpClient({
    provider: 'SendGrid',
    describeError: sendGridError,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...options.http,
  });
  const baseOf = (spec: SendGridSpec) =>
    (options.baseUrl ?? SENDGRID_BASE_URLS[spec.region]).replace(/\/+$/, '');
  const headers = (key: string, json = false): Record<string, string> => ({
    authorization: `Bearer ${key}`,
    ...(json ? { 'content-type': 'application/json' } : {}),
  });

  async function list(
    admin: SendGridAdmin,
    spec: SendGridSpec,
    call: CallContext,
  ): Promise<KeySummary[]> {
    const request: HttpRequest = {
      method: 'GET',
      url: `${baseOf(spec)}/v3/api_keys?limit=${SENDGRID_KEY_LIMIT}`,
      headers: headers(admin.key),
      idempotent: true,
      secrets: [admin.key],
    };
    const response = await http.send(call, request);
    if (response.status !== 200) throw http.errorFor(request, response, 'listing keys');
    const result = record(response.body).result;
    if (!Array.isArray(result)) {
      throw new ProviderError(
        'SendGrid answered GET /v3/api_keys without a "result" list',
        'SendGrid',
        200,
      );
    }
    return result.flatMap((item) => {
      const { api_key_id: id, name } = record(item);
      return typeof id === 'string' && typeof name === 'string' ? [{ id, name }] : [];
    });
  }

  return {
    id: 'sendgrid',
    name: 'SendGrid',
    // Not documented; SendGrid's own console truncates long names. Ours are about 60 characters.
    maxNameLength: 100,

    parseSpec(raw: Fields, source: string): SendGridSpec {
      const region = raw.region ?? 'global';
      if (region !== 'global' && region !== 'eu') {
        throw new InvalidSecretError(
          `${source}: field "region" must be "global" or "eu" (SendGrid's EU host)`,
          'region',
        );
      }
      const scopes = optionalStringArrayField(raw, 'scopes', source, {
        itemPattern: /^[A-Za-z0-9_.-]{1,100}$/,
        describe: 'a SendGrid scope such as "mail.send"',
      });
      return { region, ...(scopes === undefined ? {} : { scopes }) };
    },

    differentTarget(current, other) {
      return current.region === other.region
        ? undefined
        : `it names region "${other.region}" but AWSCURRENT names "${current.region}"`;
    },

    parseAdmin(raw: Fields, source: string): SendGridAdmin {
      return { key: stringField(raw, 'key', source, { maxLength: 512 }) };
    },

    secretsOfAdmin: (admin) => [admin.key],

    adminFromKey(key: KeyCredential<SendGridSpec>, source: string): SendGridAdmin {
      const scopes = key.spec.scopes;
      const missing = scopes
        ? SENDGRID_KEY_MANAGEMENT_SCOPES.filter((scope) => !scopes.includes(scope))
        : [];
      if (missing.length > 0) {
        throw new InvalidSecretError(
          `${source}: field "scopes" lacks ${missing.join(', ')}; without "adminarn" the new key must be able to rotate itself`,
          'scopes',
        );
      }
      return { key: key.key };
    },

    async mint(admin, { name, spec }, call): Promise<MintedKey> {
      const request: HttpRequest = {
        method: 'POST',
        url: `${baseOf(spec)}/v3/api_keys`,
        headers: headers(admin.key, true),
        body: JSON.stringify({ name, ...(spec.scopes ? { scopes: spec.scopes } : {}) }),
        // No idempotency key in SendGrid's API: a lost answer may have created a key, which the
        // strategy's sweep of unrecorded keys revokes later.
        idempotent: false,
        secrets: [admin.key],
      };
      const response = await http.send(call, request);
      if (response.status === 201 || response.status === 200) {
        const { api_key: key, api_key_id: id } = record(response.body);
        if (typeof key === 'string') call.redact(key);
        if (typeof key !== 'string' || typeof id !== 'string' || key === '' || id === '') {
          throw new ProviderError(
            `SendGrid answered POST /v3/api_keys (HTTP ${response.status}) without "api_key" and "api_key_id"`,
            'SendGrid',
            response.status,
          );
        }
        return { id, key, name };
      }
      if (response.status === 403) {
        // SendGrid answers 403 both for a missing scope and for the key limit: count to tell.
        const count = await list(admin, spec, call).then(
          (keys) => keys.length,
          () => undefined,
        );
        if (count !== undefined && count >= SENDGRID_KEY_LIMIT) {
          throw new KeyLimitError(
            `SendGrid allows ${SENDGRID_KEY_LIMIT} API keys per account and this account has ${count}: delete keys that are no longer used, then retry the rotation`,
            'SendGrid',
            403,
          );
        }
      }
      throw http.errorFor(request, response, 'minting a key');
    },

    async verify(key, call) {
      const request: HttpRequest = {
        method: 'GET',
        url: `${baseOf(key.spec)}/v3/scopes`,
        headers: headers(key.key),
        idempotent: true,
        secrets: [key.key],
      };
      return http.verify(call, request, key.id);
    },

    list,

    async revoke(admin, id, spec, call) {
      const request: HttpRequest = {
        method: 'DELETE',
        url: `${baseOf(spec)}/v3/api_keys/${encodeURIComponent(id)}`,
        headers: headers(admin.key),
        idempotent: true,
        secrets: [admin.key],
      };
      const response = await http.send(call, request);
      if (response.status === 204 || response.status === 200) return 'revoked';
      if (response.status === 404) return 'not-found';
      throw http.errorFor(request, response, `revoking key ${id}`);
    },
  };
}
