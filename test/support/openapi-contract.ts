/**
 * Checks the HTTP traffic recorded by a provider fake against the provider's published OpenAPI
 * document (a pinned copy under test/contracts/): every request must be an operation of the
 * document, with declared and valid parameters, a valid body, the declared content type and the
 * declared authentication scheme; every answer must validate against that operation's response
 * schema for its status.
 *
 * Routing and validation are openapi-backend's (ajv underneath); the documents themselves are
 * checked first with @seriousme/openapi-schema-validator, which knows OpenAPI 3.0 and 3.1
 * (openapi-backend's own document check knows only 3.0, and SendGrid publishes 3.1).
 *
 * Problems name the operation, the status and the JSON path, never a value: answers carry keys.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Validator } from '@seriousme/openapi-schema-validator';
import addFormats from 'ajv-formats';
import { type Document, OpenAPIBackend, type Operation } from 'openapi-backend';
import type { RecordedRequest } from './fake-provider-server.js';

const CONTRACTS = fileURLToPath(new URL('../contracts/', import.meta.url));

/**
 * Formats the providers' documents use that are not JSON Schema's: known, not checked (Twilio's
 * RFC 2822 dates and phone numbers, Stripe's epoch seconds and decimals).
 */
const VENDOR_FORMATS = [
  'date-time-rfc-2822',
  'phone-number',
  'phone-number-capabilities',
  'http-method',
  'unix-time',
  'decimal',
  'currency',
  'int64',
  'int32',
];

export interface ContractCheck {
  /** "GET /v3/api_keys -> 200 (ListApiKey)" */
  exchange: string;
  /** What does not match the document; empty when all does. */
  problems: string[];
  /** The document describes no answer for this status: nothing could be checked for it. */
  undescribed: boolean;
}

/**
 * OpenAPI 3.0 lets `nullable: true` stand beside `anyOf` or `$ref` without a `type` (Stripe's
 * documents do, for expandable fields); ajv's nullable support needs a `type`. Rewritten to what
 * 3.0 means by it, `anyOf: [<schema>, {type: null}]`, so ajv can compile the schema.
 */
function nullableWithoutType(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(nullableWithoutType);
  if (!value || typeof value !== 'object') return value;
  const entries = Object.entries(value).map(([key, child]) => [key, nullableWithoutType(child)]);
  const object = Object.fromEntries(entries) as Record<string, unknown>;
  if (object.nullable === true && object.type === undefined) {
    const { nullable: _, ...rest } = object;
    return { anyOf: [rest, { type: 'null' }] };
  }
  return object;
}

/**
 * Stripe's v2 error answers are `oneOf: [<each error the operation names>…, v2.error]`, and
 * `v2.error` (any `code`) also matches every named one, so a literal `oneOf` refuses every real
 * error body (it matches two branches). Read as the document means it, "one of these shapes":
 * `anyOf`. Only a `oneOf` that lists `catchAll` among its branches is rewritten.
 */
function oneOfWithCatchAll(value: unknown, catchAll: string): unknown {
  if (Array.isArray(value)) return value.map((item) => oneOfWithCatchAll(item, catchAll));
  if (!value || typeof value !== 'object') return value;
  const object = Object.fromEntries(
    Object.entries(value).map(([key, child]) => [key, oneOfWithCatchAll(child, catchAll)]),
  ) as Record<string, unknown>;
  const branches = object.oneOf;
  if (
    Array.isArray(branches) &&
    branches.some((branch) => (branch as { $ref?: unknown } | null)?.$ref === catchAll)
  ) {
    const { oneOf: _, ...rest } = object;
    return { ...rest, anyOf: branches };
  }
  return object;
}

/** Validation errors as "path keyword message", without the offending value. */
const describeErrors = (
  errors: readonly { instancePath?: string; message?: string }[] | null | undefined,
) => (errors ?? []).map((error) => `${error.instancePath || '/'} ${error.message ?? 'invalid'}`);

/** The pinned copy of one published OpenAPI document. */
export class OpenApiContract {
  private constructor(
    readonly file: string,
    private readonly api: OpenAPIBackend,
    private readonly document: Document,
    private readonly pageCursor?: string,
  ) {}

  /** Loads test/contracts/<file>, checks it is valid OpenAPI, and prepares its operations. */
  static async load(
    file: string,
    options: {
      /** Formats the document uses in another sense than JSON Schema's (name -> ajv-formats name). */
      formatAliases?: Record<string, string>;
      /** A schema every `oneOf` lists as its last resort: such a `oneOf` is read as `anyOf`. */
      oneOfCatchAll?: string;
      /**
       * Query parameters a follow-up page URL carries that the operations do not declare (an
       * opaque cursor): accepted on GET requests, with any value.
       */
      pageCursor?: string;
    } = {},
  ): Promise<OpenApiContract> {
    const document = JSON.parse(readFileSync(`${CONTRACTS}${file}`, 'utf8')) as Document;
    const validity = await new Validator().validate(
      structuredClone(document) as unknown as Record<string, unknown>,
    );
    if (!validity.valid) {
      throw new Error(
        `${file} is not a valid OpenAPI ${document.openapi} document: ${JSON.stringify(validity.errors).slice(0, 2000)}`,
      );
    }
    let definition: unknown = structuredClone(document);
    if (document.openapi.startsWith('3.0')) definition = nullableWithoutType(definition);
    if (options.oneOfCatchAll) definition = oneOfWithCatchAll(definition, options.oneOfCatchAll);
    const api = new OpenAPIBackend({
      definition: definition as Document,
      strict: true,
      // The document was validated above, with a validator that knows its OpenAPI version.
      quick: true,
      validate: true,
      ajvOpts: { strict: false },
      // JSON Schema's formats (uri, date-time, email) are checked; vendor ones only accepted.
      customizeAjv: (ajv) => {
        addFormats.default(ajv);
        for (const format of VENDOR_FORMATS) ajv.addFormat(format, true);
        for (const [format, alias] of Object.entries(options.formatAliases ?? {})) {
          ajv.addFormat(format, addFormats.default.get(alias as 'uri'));
        }
        return ajv;
      },
    });
    await api.init();
    return new OpenApiContract(file, api, document, options.pageCursor);
  }

  /** The base URLs the document declares (its own and its paths'), without a trailing slash. */
  servers(): string[] {
    const items = Object.values(this.document.paths ?? {}) as { servers?: { url: string }[] }[];
    const all = [...(this.document.servers ?? []), ...items.flatMap((item) => item.servers ?? [])];
    return [...new Set(all.map((server) => server.url.replace(/\/+$/, '')))];
  }

  /** The schema of one body field of an operation, as the document gives it. */
  bodyField(method: string, path: string, field: string): { description?: string } | undefined {
    const item = this.document.paths?.[path] as Record<string, unknown> | undefined;
    const operation = item?.[method.toLowerCase()] as
      | {
          requestBody?: {
            content?: Record<string, { schema?: { properties?: Record<string, unknown> } }>;
          };
        }
      | undefined;
    const media = Object.values(operation?.requestBody?.content ?? {})[0];
    return media?.schema?.properties?.[field] as { description?: string } | undefined;
  }

  /** One operation of the document, as it gives it. */
  operation(method: string, path: string): Record<string, unknown> | undefined {
    const item = this.document.paths?.[path] as Record<string, unknown> | undefined;
    return item?.[method.toLowerCase()] as Record<string, unknown> | undefined;
  }

  /** The whole document, as pinned. */
  get pinned(): Document {
    return this.document;
  }

  /** Checks one recorded exchange. */
  check(recorded: RecordedRequest): ContractCheck {
    const problems: string[] = [];
    const headers = Object.fromEntries(
      Object.entries(recorded.headers).map(([name, value]) => [name, String(value)]),
    );
    const query = Object.fromEntries(recorded.query.entries());
    if (this.pageCursor && recorded.method === 'GET') delete query[this.pageCursor];
    const request = { method: recorded.method, path: recorded.path, headers, query };
    const operation = this.api.router.matchOperation(request) as Operation | undefined;
    const label = `${recorded.method} ${recorded.path} -> ${recorded.status}`;
    if (!operation) {
      return {
        exchange: label,
        problems: [`${this.file} has no operation ${recorded.method} ${recorded.path}`],
        undescribed: false,
      };
    }
    const exchange = `${label} (${operation.operationId ?? operation.path})`;

    // Parameters: every query parameter sent must be declared; values must be valid.
    const declared = new Set(
      (operation.parameters ?? [])
        .map((parameter) => parameter as { in?: string; name?: string })
        .filter((parameter) => parameter.in === 'query')
        .map((parameter) => parameter.name),
    );
    for (const name of Object.keys(query)) {
      if (!declared.has(name)) problems.push(`query parameter "${name}" is not declared`);
    }

    // Body: the declared media type, declared fields, a valid value.
    const content = (
      operation.requestBody as { content?: Record<string, { schema?: unknown }> } | undefined
    )?.content;
    let body: unknown;
    if (recorded.body !== '') {
      const type = (headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
      const media = content?.[type];
      if (!media) {
        problems.push(
          `body sent as "${type}", the operation accepts ${content ? Object.keys(content).join(', ') : 'no body'}`,
        );
      }
      body =
        type === 'application/x-www-form-urlencoded'
          ? Object.fromEntries(new URLSearchParams(recorded.body).entries())
          : JSON.parse(recorded.body);
      const properties = (media?.schema as { properties?: Record<string, unknown> } | undefined)
        ?.properties;
      if (properties && body && typeof body === 'object') {
        for (const field of Object.keys(body)) {
          if (!(field in properties)) problems.push(`body field "${field}" is not declared`);
        }
      }
    }
    const validation = this.api.validator.validateRequest(
      { ...request, ...(body === undefined ? {} : { body }) },
      operation,
    );
    problems.push(...describeErrors(validation.errors).map((error) => `request ${error}`));

    // Authentication: the scheme the operation (or the document) declares.
    const requirements = operation.security ?? this.document.security ?? [];
    const schemes = (this.document.components?.securitySchemes ?? {}) as Record<
      string,
      { type?: string; scheme?: string }
    >;
    const allowed = requirements.flatMap((requirement) =>
      Object.keys(requirement).map((name) => schemes[name]?.scheme?.toLowerCase() ?? name),
    );
    const sent = (headers.authorization ?? '').split(' ')[0]?.toLowerCase() ?? '';
    if (allowed.length > 0 && !allowed.includes(sent)) {
      problems.push(
        `authorization "${sent || 'none'}", the operation declares ${allowed.join(' or ')}`,
      );
    }

    // Answer: the schema of its status (or the range, or default).
    const status = recorded.status ?? 0;
    const responses = (operation.responses ?? {}) as Record<string, unknown>;
    const described = [String(status), `${String(status)[0]}XX`, 'default'].some(
      (key) => key in responses,
    );
    if (described && recorded.response?.body !== undefined) {
      const result = this.api.validator.validateResponse(recorded.response.body, operation, status);
      problems.push(...describeErrors(result.errors).map((error) => `response ${error}`));
    } else if (described && status !== 204) {
      const schema = responses[String(status)] as { content?: unknown } | undefined;
      if (schema?.content) problems.push('response has no body, the operation describes one');
    }
    return { exchange, problems, undescribed: !described };
  }

  /** Checks many; returns only the exchanges with problems, and the undescribed ones apart. */
  checkAll(recorded: readonly RecordedRequest[]): {
    failures: ContractCheck[];
    undescribed: string[];
    checked: number;
  } {
    const results = recorded.map((exchange) => this.check(exchange));
    return {
      failures: results.filter((result) => result.problems.length > 0),
      undescribed: [...new Set(results.filter((r) => r.undescribed).map((r) => r.exchange))],
      checked: results.length,
    };
  }
}

/** What {@link checkTraffic} found in a fake's log. */
export interface TrafficReport {
  /** "<exchange>: <problems>" for each exchange that does not match. */
  failures: string[];
  /** Exchanges whose status the document does not describe (their body went unchecked). */
  undescribed: string[];
  /** Requests to paths no pinned document covers ("METHOD path"). */
  unpinned: string[];
  statuses: number[];
}

/** The pinned documents of one provider, and the paths each one serves. */
export type ProviderContracts = { contract: OpenApiContract; serves: (path: string) => boolean }[];

/** Loads the pinned documents of a provider (test/contracts/manifest.json). */
export async function contractsOf(
  provider: 'SendGrid' | 'Twilio' | 'Stripe',
): Promise<ProviderContracts> {
  switch (provider) {
    case 'SendGrid':
      return [
        {
          contract: await OpenApiContract.load('tsg_scopes_v3.json'),
          serves: (p) => p === '/v3/scopes',
        },
        {
          contract: await OpenApiContract.load('tsg_api_keys_v3.json'),
          serves: (p) => p.startsWith('/v3/api_keys'),
        },
      ];
    case 'Twilio':
      return [
        {
          // The 2010-04-01 document types its page links as "uri", but its own examples (and
          // Twilio's answers) are relative ("/2010-04-01/Accounts/…"): URI references.
          contract: await OpenApiContract.load('twilio_api_v2010.json', {
            formatAliases: { uri: 'uri-reference' },
          }),
          serves: (p) => p.startsWith('/2010-04-01/'),
        },
        {
          contract: await OpenApiContract.load('twilio_iam_v1.json'),
          serves: (p) => p.startsWith('/v1/'),
        },
      ];
    case 'Stripe':
      return [
        {
          contract: await OpenApiContract.load('stripe_spec3_v1.json'),
          serves: (p) => p.startsWith('/v1/'),
        },
        {
          contract: await stripeManagedKeysContract(),
          serves: (p) => p.startsWith('/v2/iam/'),
        },
      ];
  }
}

/**
 * Stripe's private-preview Managed API Keys operations (test/contracts/stripe_v2_iam_api_keys.json),
 * with the two readings the document needs: its error `oneOf`s end in the catch-all `v2.error`,
 * and a v2 list's `next_page_url` carries a `page` cursor its operation does not declare (the
 * document's own activity-log example: `/v2/iam/activity_logs?page=page_…`).
 */
export function stripeManagedKeysContract(): Promise<OpenApiContract> {
  return OpenApiContract.load('stripe_v2_iam_api_keys.json', {
    oneOfCatchAll: '#/components/schemas/v2.error',
    pageCursor: 'page',
  });
}

/** Checks every exchange of a fake's log against the document that serves its path. */
export function checkTraffic(
  recorded: readonly RecordedRequest[],
  contracts: ProviderContracts,
): TrafficReport {
  const failures: string[] = [];
  const undescribed = new Set<string>();
  const unpinned = new Set<string>();
  const statuses = new Set<number>();
  for (const exchange of recorded) {
    const owner = contracts.find((candidate) => candidate.serves(exchange.path));
    if (!owner) {
      unpinned.add(
        `${exchange.method} ${exchange.path.replace(/\/(mk|SK)_?[A-Za-z0-9]+/g, '/{id}')}`,
      );
      continue;
    }
    const result = owner.contract.check(exchange);
    statuses.add(exchange.status ?? 0);
    if (result.problems.length > 0)
      failures.push(`${result.exchange}: ${result.problems.join('; ')}`);
    if (result.undescribed) {
      undescribed.add(result.exchange.replace(/\/(AC|SK)[0-9a-f]{32}/g, '/{sid}'));
    }
  }
  return {
    failures,
    undescribed: [...undescribed].sort(),
    unpinned: [...unpinned].sort(),
    statuses: [...statuses].sort(),
  };
}
