/**
 * Twilio API keys on one port, for both hosts (api.twilio.com and iam.twilio.com):
 *
 *   POST/GET   /2010-04-01/Accounts/{AccountSid}/Keys.json        standard keys (FriendlyName)
 *   DELETE     /2010-04-01/Accounts/{AccountSid}/Keys/{Sid}.json
 *   POST/GET   /v1/Keys   (AccountSid, FriendlyName, KeyType=restricted, Policy; list by AccountSid)
 *   DELETE     /v1/Keys/{Sid}
 *   GET        /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json   (verification)
 *
 * HTTP Basic with the account SID and auth token (or a Main key's SID and secret) to manage
 * keys; a standard key managing keys gets 401 with code 20003, as Twilio answers standard keys
 * on Account resources; a restricted key without the permission gets 403 with 70051. Errors as
 * `{"code":…,"message":…,"more_info":…,"status":…}`; 429 with code 20429 and Retry-After. Lists
 * page with `next_page_uri` (2010) and `meta.next_page_url` (v1). Friendly names up to 64.
 *
 * Not modelled: subaccounts, regions and edges, signing keys, updates of a key, the real key
 * limit (Twilio documents none; the `maxKeys` switch answers an invented 400).
 */
import type { IncomingHttpHeaders } from 'node:http';
import {
  ALNUM,
  basic,
  type FakeKey,
  FakeProviderServer,
  type FakeRequest,
  type FakeResponse,
  HEX,
  type Route,
  randomChars,
} from './fake-provider-server.js';
import { rememberSecretValue } from './leak-guard.js';

export interface TwilioKey extends FakeKey {
  type: 'main' | 'standard' | 'restricted';
  policy?: { allow?: string[] };
  /** Created through the IAM v1 resource. */
  iam: boolean;
}

/** The permission that lets a restricted key read incoming phone numbers. */
export const PHONE_NUMBERS_READ = '/twilio/phone-numbers/incoming/read';

const error = (status: number, code: number, message: string): FakeResponse => ({
  status,
  body: { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status },
});
const authenticate = () => error(401, 20003, 'Authenticate');
const rfc2822 = (ms: number) => new Date(ms).toUTCString().replace('GMT', '+0000');

/** The fields every Key resource answer has, in both APIs. */
const keyResource = (key: TwilioKey) => ({
  sid: key.id,
  friendly_name: key.name,
  date_created: rfc2822(key.createdAt),
  date_updated: rfc2822(key.createdAt),
});

export class FakeTwilio extends FakeProviderServer<TwilioKey> {
  readonly accountSid = `AC${randomChars(HEX, 32)}`;
  readonly authToken = randomChars(HEX, 32);

  constructor() {
    super();
    rememberSecretValue(this.authToken);
  }

  seedKey(name: string, extra: Partial<TwilioKey> = {}): TwilioKey {
    return this.store({
      id: `SK${randomChars(HEX, 32)}`,
      name,
      secret: randomChars(ALNUM, 32),
      createdAt: Date.now() - 86_400_000,
      type: 'standard',
      iam: false,
      ...extra,
    });
  }

  override allSecrets(): string[] {
    return [...super.allSecrets(), this.authToken];
  }

  knowsCredential(headers: IncomingHttpHeaders): boolean {
    const header = headers.authorization ?? '';
    const user = Buffer.from(header.replace(/^Basic /, ''), 'base64')
      .toString('utf8')
      .split(':')[0];
    return user === this.accountSid || (user !== undefined && this.keys.has(user));
  }

  protected tooManyRequests(resetSeconds: number): FakeResponse {
    return {
      ...error(429, 20429, 'Too Many Requests'),
      headers: { 'Retry-After': String(resetSeconds) },
    };
  }

  protected notFound(path: string): FakeResponse {
    return error(404, 20404, `The requested resource ${path} was not found`);
  }

  /** 'account' for the auth token, the key for a key's SID and secret, else a 401. */
  private caller(request: FakeRequest): 'account' | TwilioKey | FakeResponse {
    const credentials = basic(request);
    if (!credentials) return authenticate();
    if (credentials.user === this.accountSid) {
      return credentials.password === this.authToken ? 'account' : authenticate();
    }
    const key = this.bySecret(credentials.password);
    return key && key.id === credentials.user ? key : authenticate();
  }

  /** Only the auth token or a Main key may manage keys. */
  private manager(request: FakeRequest): FakeResponse | undefined {
    const caller = this.caller(request);
    if (typeof caller === 'object' && 'status' in caller) return caller;
    if (caller === 'account' || caller.type === 'main') return undefined;
    return caller.type === 'restricted'
      ? error(403, 70051, 'Authorization Failed')
      : authenticate();
  }

  private form(request: FakeRequest): URLSearchParams {
    return new URLSearchParams(request.body);
  }

  private mint(name: string | null, extra: Partial<TwilioKey>): TwilioKey | FakeResponse {
    if (name !== null && name.length > 64) {
      return error(400, 20001, 'FriendlyName must be at most 64 characters');
    }
    if (this.atKeyLimit()) return error(400, 20001, 'Maximum number of API keys reached');
    return this.seedKey(name ?? '', { createdAt: Date.now(), ...extra });
  }

  private page(request: FakeRequest, iam: boolean) {
    const size = Math.min(1000, Number(request.query.get('PageSize') ?? 50));
    const page = Number(request.query.get('Page') ?? 0);
    const all = this.liveKeys().filter((key) => key.type !== 'main');
    const keys = all.slice(page * size, (page + 1) * size).map((key) => ({
      ...keyResource(key),
      ...(iam ? { flags: key.type === 'restricted' ? ['restricted'] : [] } : {}),
    }));
    const more = (page + 1) * size < all.length;
    return { size, page, keys, more };
  }

  protected routes(): Route[] {
    const account = /^\/2010-04-01\/Accounts\/(AC[0-9a-f]{32})/;
    const sameAccount = (request: FakeRequest) => request.match[1] === this.accountSid;
    return [
      {
        name: 'create',
        method: 'POST',
        path: new RegExp(`${account.source}/Keys\\.json$`),
        handle: (request) => {
          const refused = this.manager(request);
          if (refused) return refused;
          if (!sameAccount(request)) return authenticate();
          const key = this.mint(this.form(request).get('FriendlyName'), {});
          if ('status' in key) return key;
          return {
            status: 201,
            body: { ...keyResource(key), secret: key.secret },
          };
        },
      },
      {
        name: 'list',
        method: 'GET',
        path: new RegExp(`${account.source}/Keys\\.json$`),
        handle: (request) => {
          const refused = this.manager(request);
          if (refused) return refused;
          if (!sameAccount(request)) return authenticate();
          const { size, page, keys, more } = this.page(request, false);
          const uri = (p: number) =>
            `/2010-04-01/Accounts/${this.accountSid}/Keys.json?PageSize=${size}&Page=${p}`;
          return {
            status: 200,
            body: {
              keys,
              first_page_uri: uri(0),
              next_page_uri: more ? uri(page + 1) : null,
              previous_page_uri: page > 0 ? uri(page - 1) : null,
              page,
              page_size: size,
              start: page * size,
              end: page * size + Math.max(0, keys.length - 1),
              uri: uri(page),
            },
          };
        },
      },
      {
        name: 'delete',
        method: 'DELETE',
        path: new RegExp(`${account.source}/Keys/(SK[0-9a-f]{32})\\.json$`),
        handle: (request) => {
          const refused = this.manager(request);
          if (refused) return refused;
          if (!sameAccount(request)) return authenticate();
          return this.revoke(request.match[2] as string)
            ? { status: 204 }
            : this.notFound(request.path);
        },
      },
      {
        name: 'create',
        method: 'POST',
        path: /^\/v1\/Keys$/,
        handle: (request) => {
          const refused = this.manager(request);
          if (refused) return refused;
          const form = this.form(request);
          if (form.get('AccountSid') !== this.accountSid) {
            return error(400, 20001, 'Invalid AccountSid');
          }
          const restricted = form.get('KeyType') === 'restricted';
          let policy: TwilioKey['policy'];
          if (restricted) {
            try {
              policy = JSON.parse(form.get('Policy') ?? '');
            } catch {
              return error(400, 20001, 'Policy is required for restricted keys');
            }
          }
          const key = this.mint(form.get('FriendlyName'), {
            iam: true,
            type: restricted ? 'restricted' : 'standard',
            ...(policy ? { policy } : {}),
          });
          if ('status' in key) return key;
          return {
            status: 201,
            body: { ...keyResource(key), secret: key.secret, policy: key.policy ?? null },
          };
        },
      },
      {
        name: 'list',
        method: 'GET',
        path: /^\/v1\/Keys$/,
        handle: (request) => {
          const refused = this.manager(request);
          if (refused) return refused;
          if (request.query.get('AccountSid') !== this.accountSid) {
            return error(400, 20001, 'Invalid AccountSid');
          }
          const { size, page, keys, more } = this.page(request, true);
          const url = (p: number) =>
            `${this.baseUrl}/v1/Keys?AccountSid=${this.accountSid}&PageSize=${size}&Page=${p}`;
          return {
            status: 200,
            body: {
              keys,
              meta: {
                page,
                page_size: size,
                first_page_url: url(0),
                previous_page_url: page > 0 ? url(page - 1) : null,
                url: url(page),
                next_page_url: more ? url(page + 1) : null,
                key: 'keys',
              },
            },
          };
        },
      },
      {
        name: 'delete',
        method: 'DELETE',
        path: /^\/v1\/Keys\/(SK[0-9a-f]{32})$/,
        handle: (request) => {
          const refused = this.manager(request);
          if (refused) return refused;
          return this.revoke(request.match[1] as string)
            ? { status: 204 }
            : this.notFound(request.path);
        },
      },
      {
        name: 'verify',
        method: 'GET',
        path: new RegExp(`${account.source}/IncomingPhoneNumbers\\.json$`),
        handle: (request) => {
          const caller = this.caller(request);
          if (typeof caller === 'object' && 'status' in caller) return caller;
          if (!sameAccount(request)) return authenticate();
          if (
            caller !== 'account' &&
            caller.type === 'restricted' &&
            !caller.policy?.allow?.includes(PHONE_NUMBERS_READ)
          ) {
            return error(403, 70051, 'Authorization Failed');
          }
          return {
            status: 200,
            body: { incoming_phone_numbers: [], page: 0, page_size: 1, next_page_uri: null },
          };
        },
      },
    ];
  }
}
