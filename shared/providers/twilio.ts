import { InvalidSecretError } from '../common/errors.js';
import { type Fields, optionalStringField, stringField } from '../common/fields.js';
import { ProviderError } from './errors.js';
import {
  basicAuth,
  type CallContext,
  createHttpClient,
  type HttpClientOptions,
  type HttpRequest,
  type ProviderErrorDetail,
  sameOriginUrl,
} from './http.js';
import type { KeyProvider, KeySummary, MintedKey } from './types.js';

export const TWILIO_API_BASE_URL = 'https://api.twilio.com';
export const TWILIO_IAM_BASE_URL = 'https://iam.twilio.com';

/** Twilio error codes the adapter tells apart. */
export const TwilioErrorCode = {
  /** "Authenticate": wrong account SID / token, deleted key. HTTP 401. */
  authenticate: 20003,
  /** "Authorization Failed": the credentials are valid but lack a permission. HTTP 403. */
  authorizationFailed: 70051,
  notFound: 20404,
  tooManyRequests: 20429,
} as const;

const ACCOUNT_SID = /^AC[0-9a-fA-F]{32}$/;
const KEY_SID = /^SK[0-9a-fA-F]{32}$/;
/** Friendly names "can be up to 64 characters long" (Key resource). */
const MAX_FRIENDLY_NAME = 64;
/** Safety stop for paging. */
const MAX_PAGES = 50;

/** What a Twilio secret holds besides key (the key's secret) and key id (its SK SID). */
export interface TwilioSpec {
  accountSid: string;
  /** Present: a restricted key with this policy, through the IAM v1 Key resource. */
  policy?: Record<string, unknown>;
}

/** The Main credentials allowed to manage keys: the auth token, or a Main API key. */
export interface TwilioAdmin {
  accountSid: string;
  user: string;
  password: string;
}

export interface TwilioOptions {
  /** Default https://api.twilio.com (2010-04-01 API: standard keys, verification). */
  apiBaseUrl?: string;
  /** Default https://iam.twilio.com (IAM v1 Key resource: restricted keys). */
  iamBaseUrl?: string;
  /** Longest single HTTP attempt, in ms (default 10000). */
  timeoutMs?: number;
  http?: Partial<HttpClientOptions>;
}

/** `{"code":20003,"message":"Authenticate","more_info":…,"status":401}`. */
export function twilioError(body: unknown): ProviderErrorDetail {
  const { code, message } = (body ?? {}) as { code?: unknown; message?: unknown };
  return {
    ...(typeof code === 'number' || typeof code === 'string' ? { code: String(code) } : {}),
    ...(typeof message === 'string' ? { message } : {}),
  };
}

const record = (value: unknown): Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

/**
 * Twilio API keys. Standard keys through the 2010-04-01 Keys resource
 * (`/2010-04-01/Accounts/{AccountSid}/Keys.json`), restricted keys (a secret with `policy`)
 * through the IAM v1 Key resource (`https://iam.twilio.com/v1/Keys`, `AccountSid` as a
 * parameter). HTTP Basic authentication. Standard and restricted keys cannot manage keys, so a
 * managing secret (auth token or Main key) is required. Verification reads one incoming phone
 * number with the key: 401 (20003) is a dead key, 403 (70051) a live key without that permission.
 *
 * @example
 * export const handler = createRotationHandler({ strategy: apiKeys(createTwilio()), logger });
 */
export function createTwilio(options: TwilioOptions = {}): KeyProvider<TwilioSpec, TwilioAdmin> {
  const http = createHttpClient({
    provider: 'Twilio',
    describeError: twilioError,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...options.http,
  });
  const apiBase = (options.apiBaseUrl ?? TWILIO_API_BASE_URL).replace(/\/+$/, '');
  const iamBase = (options.iamBaseUrl ?? TWILIO_IAM_BASE_URL).replace(/\/+$/, '');
  const keysPath = (spec: TwilioSpec) =>
    `/2010-04-01/Accounts/${encodeURIComponent(spec.accountSid)}/Keys`;
  const auth = (admin: TwilioAdmin) => ({ authorization: basicAuth(admin.user, admin.password) });

  async function listPages(
    admin: TwilioAdmin,
    first: string,
    base: string,
    nextOf: (body: Record<string, unknown>) => unknown,
    call: CallContext,
  ): Promise<KeySummary[]> {
    const keys: KeySummary[] = [];
    let url: string | undefined = first;
    for (let page = 0; url !== undefined; page++) {
      if (page >= MAX_PAGES) {
        throw new ProviderError(
          `Twilio listed more than ${MAX_PAGES} pages of keys; stopping`,
          'Twilio',
        );
      }
      const request: HttpRequest = {
        method: 'GET',
        url,
        headers: auth(admin),
        idempotent: true,
        secrets: [admin.password],
      };
      const response = await http.send(call, request);
      if (response.status !== 200) throw http.errorFor(request, response, 'listing keys');
      const body = record(response.body);
      if (!Array.isArray(body.keys)) {
        throw new ProviderError('Twilio answered a key list without "keys"', 'Twilio', 200);
      }
      for (const item of body.keys) {
        const { sid, friendly_name: name } = record(item);
        if (typeof sid === 'string')
          keys.push({ id: sid, name: typeof name === 'string' ? name : '' });
      }
      const next = nextOf(body);
      url =
        typeof next === 'string' && next !== '' ? sameOriginUrl(next, base, 'Twilio') : undefined;
    }
    return keys;
  }

  return {
    id: 'twilio',
    name: 'Twilio',
    maxNameLength: MAX_FRIENDLY_NAME,

    parseSpec(raw: Fields, source: string): TwilioSpec {
      // Twilio's published documents declare only the US1 hosts (api.twilio.com,
      // iam.twilio.com), and keys and auth tokens are valid in their own region only: a secret
      // naming another region or an edge would fail with a misleading 401, so it is refused.
      for (const field of ['region', 'edge'] as const) {
        const value = raw[field];
        if (value !== undefined && value !== null && !(field === 'region' && value === 'us1')) {
          throw new InvalidSecretError(
            `${source}: field "${field}" is ${JSON.stringify(value)}, but this function calls Twilio's US1 hosts only (api.twilio.com, iam.twilio.com); keys of another region do not work there`,
            field,
          );
        }
      }
      const accountSid = stringField(raw, 'account_sid', source, {
        pattern: ACCOUNT_SID,
        describe: 'a Twilio account SID (AC followed by 32 hex digits)',
      });
      const policy = raw.policy;
      if (policy === undefined || policy === null) return { accountSid };
      if (typeof policy !== 'object' || Array.isArray(policy)) {
        throw new InvalidSecretError(
          `${source}: field "policy" must be a JSON object (a restricted key's policy)`,
          'policy',
        );
      }
      if (JSON.stringify(policy).length > 16_384) {
        throw new InvalidSecretError(`${source}: field "policy" is larger than 16 KiB`, 'policy');
      }
      return { accountSid, policy: policy as Record<string, unknown> };
    },

    differentTarget(current, other) {
      if (current.accountSid !== other.accountSid) {
        return `it names account ${other.accountSid} but AWSCURRENT names ${current.accountSid}`;
      }
      return (current.policy === undefined) === (other.policy === undefined)
        ? undefined
        : 'one names a restricted key (policy) and the other a standard key';
    },

    parseAdmin(raw: Fields, source: string, spec: TwilioSpec): TwilioAdmin {
      const accountSid =
        optionalStringField(raw, 'account_sid', source, {
          pattern: ACCOUNT_SID,
          describe: 'a Twilio account SID',
        }) ?? spec.accountSid;
      if (accountSid !== spec.accountSid) {
        throw new InvalidSecretError(
          `${source} is for account ${accountSid} but the rotated secret for ${spec.accountSid}; refusing to act on another account`,
          'account_sid',
        );
      }
      if (raw.auth_token !== undefined && raw.auth_token !== null) {
        return {
          accountSid,
          user: accountSid,
          password: stringField(raw, 'auth_token', source, { maxLength: 256 }),
        };
      }
      if (raw.key_id === undefined && raw.key === undefined) {
        throw new InvalidSecretError(
          `${source}: field "auth_token" is missing (or give "key_id" and "key" of a Main API key)`,
          'auth_token',
        );
      }
      return {
        accountSid,
        user: stringField(raw, 'key_id', source, {
          pattern: KEY_SID,
          describe: 'a Twilio API key SID (SK followed by 32 hex digits)',
        }),
        password: stringField(raw, 'key', source, { maxLength: 256 }),
      };
    },

    secretsOfAdmin: (admin) => [admin.password],

    async mint(admin, { name, spec }, call): Promise<MintedKey> {
      const request: HttpRequest = spec.policy
        ? {
            method: 'POST',
            url: `${iamBase}/v1/Keys`,
            headers: { ...auth(admin), 'content-type': 'application/x-www-form-urlencoded' },
            body: form({
              AccountSid: spec.accountSid,
              FriendlyName: name,
              KeyType: 'restricted',
              Policy: JSON.stringify(spec.policy),
            }),
            idempotent: false,
            secrets: [admin.password],
          }
        : {
            method: 'POST',
            url: `${apiBase}${keysPath(spec)}.json`,
            headers: { ...auth(admin), 'content-type': 'application/x-www-form-urlencoded' },
            body: form({ FriendlyName: name }),
            idempotent: false,
            secrets: [admin.password],
          };
      const response = await http.send(call, request);
      if (response.status !== 201 && response.status !== 200) {
        throw http.errorFor(request, response, 'minting a key');
      }
      const { sid, secret } = record(response.body);
      if (typeof secret === 'string') call.redact(secret);
      if (typeof sid !== 'string' || typeof secret !== 'string' || secret === '') {
        throw new ProviderError(
          `Twilio answered ${request.method} ${new URL(request.url).pathname} (HTTP ${response.status}) without "sid" and "secret"`,
          'Twilio',
          response.status,
        );
      }
      return { id: sid, key: secret, name };
    },

    async verify(key, call) {
      const request: HttpRequest = {
        method: 'GET',
        // A cheap account-scoped read that standard keys may make (they may not read the
        // Account resource itself: that answers 20003 as if the key were wrong).
        url: `${apiBase}/2010-04-01/Accounts/${encodeURIComponent(key.spec.accountSid)}/IncomingPhoneNumbers.json?PageSize=1`,
        headers: { authorization: basicAuth(key.id, key.key) },
        idempotent: true,
        secrets: [key.key],
      };
      return http.verify(call, request, key.id);
    },

    list(admin, spec, call) {
      return spec.policy
        ? listPages(
            admin,
            `${iamBase}/v1/Keys?${form({ AccountSid: spec.accountSid, PageSize: '1000' })}`,
            iamBase,
            (body) => record(body.meta).next_page_url,
            call,
          )
        : listPages(
            admin,
            `${apiBase}${keysPath(spec)}.json?PageSize=1000`,
            apiBase,
            (body) => body.next_page_uri,
            call,
          );
    },

    async revoke(admin, id, spec, call) {
      const request: HttpRequest = {
        method: 'DELETE',
        url: spec.policy
          ? `${iamBase}/v1/Keys/${encodeURIComponent(id)}`
          : `${apiBase}${keysPath(spec)}/${encodeURIComponent(id)}.json`,
        headers: auth(admin),
        idempotent: true,
        secrets: [admin.password],
      };
      const response = await http.send(call, request);
      if (response.status === 204 || response.status === 200) return 'revoked';
      if (response.status === 404) return 'not-found';
      throw http.errorFor(request, response, `revoking key ${id}`);
    },
  };
}
