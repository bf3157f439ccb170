/**
 * SendGrid v3 API keys, as the API reference describes them: Bearer authentication; POST, GET
 * /v3/api_keys; DELETE /v3/api_keys/{api_key_id}; GET /v3/scopes; errors as
 * `{"errors":[{"field":…,"message":…}]}`; 429 with X-RateLimit-Limit / -Remaining / -Reset (epoch
 * seconds); the 100-key account limit as a 403. Keys are 69 characters, `SG.<22>.<43>`.
 *
 * Not modelled: subusers and `on-behalf-of`, billing scopes, GET/PUT/PATCH of one key, the
 * real wording of the key-limit message (not documented; the adapter does not rely on it).
 */
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

export interface SendGridKey extends FakeKey {
  /** undefined: full access. */
  scopes?: string[];
}

const B64URL = `${ALNUM}-_`;

const errors = (status: number, message: string, field: string | null = null): FakeResponse => ({
  status,
  body: { errors: [{ field, message }] },
});

export class FakeSendGrid extends FakeProviderServer<SendGridKey> {
  /** Keys per page of GET /v3/api_keys when no limit is given. */
  defaultListLimit = 100;

  seedKey(name: string, extra: Partial<SendGridKey> = {}): SendGridKey {
    const id = randomChars(B64URL, 22);
    return this.store({
      id,
      name,
      secret: `SG.${id}.${randomChars(B64URL, 43)}`,
      createdAt: Date.now() - 86_400_000,
      ...extra,
    });
  }

  knowsCredential(headers: IncomingHttpHeaders): boolean {
    const token = headers.authorization?.replace(/^Bearer /, '');
    return [...this.keys.values()].some((key) => key.secret === token);
  }

  protected tooManyRequests(resetSeconds: number): FakeResponse {
    return {
      ...errors(429, 'too many requests'),
      headers: {
        'X-RateLimit-Limit': '150',
        'X-RateLimit-Remaining': '0',
        'X-RateLimit-Reset': String(Math.ceil(Date.now() / 1000 + resetSeconds)),
      },
    };
  }

  protected notFound(): FakeResponse {
    return errors(404, 'resource not found');
  }

  /** The caller's key, or the 401 SendGrid answers. */
  private caller(request: FakeRequest): SendGridKey | FakeResponse {
    const token = bearer(request);
    const key = token === undefined ? undefined : this.bySecret(token);
    return key ?? errors(401, 'authorization required');
  }

  private may(key: SendGridKey, scope: string): boolean {
    return key.scopes === undefined || key.scopes.includes(scope);
  }

  protected routes(): Route[] {
    const guard = (request: FakeRequest, scope: string): SendGridKey | FakeResponse => {
      const key = this.caller(request);
      if ('status' in key) return key;
      return this.may(key, scope) ? key : errors(403, 'access forbidden');
    };
    return [
      {
        name: 'create',
        method: 'POST',
        path: /^\/v3\/api_keys$/,
        handle: (request) => {
          const caller = guard(request, 'api_keys.create');
          if ('status' in caller) return caller;
          const body = jsonBody(request);
          if (typeof body?.name !== 'string' || body.name === '') {
            return errors(400, 'missing required argument', 'name');
          }
          if (this.atKeyLimit()) return errors(403, 'Cannot create more than 100 API keys');
          const scopes = Array.isArray(body.scopes) ? (body.scopes as string[]) : undefined;
          const key = this.seedKey(body.name, {
            createdAt: Date.now(),
            ...(scopes ? { scopes } : {}),
          });
          return {
            status: 201,
            body: {
              api_key: key.secret,
              api_key_id: key.id,
              name: key.name,
              scopes: scopes ?? [
                'mail.send',
                'api_keys.create',
                'api_keys.read',
                'api_keys.delete',
              ],
            },
          };
        },
      },
      {
        name: 'list',
        method: 'GET',
        path: /^\/v3\/api_keys$/,
        handle: (request) => {
          const caller = guard(request, 'api_keys.read');
          if ('status' in caller) return caller;
          const limit = Number(request.query.get('limit') ?? this.defaultListLimit);
          return {
            status: 200,
            body: {
              result: this.liveKeys()
                .slice(0, limit)
                .map((key) => ({ name: key.name, api_key_id: key.id })),
            },
          };
        },
      },
      {
        name: 'delete',
        method: 'DELETE',
        path: /^\/v3\/api_keys\/([^/]+)$/,
        handle: (request) => {
          const caller = guard(request, 'api_keys.delete');
          if ('status' in caller) return caller;
          return this.revoke(decodeURIComponent(request.match[1] as string))
            ? { status: 204 }
            : errors(404, 'unable to find API Key');
        },
      },
      {
        name: 'scopes',
        method: 'GET',
        path: /^\/v3\/scopes$/,
        handle: (request) => {
          const caller = this.caller(request);
          if ('status' in caller) return caller;
          return {
            status: 200,
            body: { scopes: caller.scopes ?? ['mail.send', 'api_keys.create', 'api_keys.read'] },
          };
        },
      },
    ];
  }
}
