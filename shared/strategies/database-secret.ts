import { InvalidSecretError } from '../common/errors.js';
import type { Database, Login, TlsMode } from '../databases/types.js';

/** A database secret value as AWS's templates define it, validated. Unknown keys are kept. */
export interface DatabaseSecret {
  engine: string;
  host: string;
  port: number;
  username: string;
  password: string;
  dbname: string;
  tls: TlsMode;
  masterarn?: string;
  /** The stored JSON object as it was, so serialisation keeps every other key. */
  raw: Readonly<Record<string, unknown>>;
}

/** Where a value came from, for messages: a stage name or "the master secret". */
export type Source = string;

const MAX_HOST_LENGTH = 255;
// Control characters and bidirectional overrides have no place in a name and hide what it says.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const CONTROL = /[\u0000-\u001f\u007f\u202a-\u202e\u2066-\u2069]/;

function requireNoControl(value: string | undefined, field: string, source: Source): void {
  if (value !== undefined && CONTROL.test(value)) {
    throw new InvalidSecretError(`${source}: field "${field}" contains control characters`, field);
  }
}

export function parseJsonObject(text: string, source: Source): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // No cause: JSON.parse's message quotes the text, which is a secret.
    throw new InvalidSecretError(`${source} is not valid JSON`, 'SecretString');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidSecretError(`${source} must be a JSON object`, 'SecretString');
  }
  return value as Record<string, unknown>;
}

export function requiredString(
  raw: Record<string, unknown>,
  field: string,
  source: Source,
  maxLength = 1024,
): string {
  const value = raw[field];
  if (value === undefined || value === null) {
    throw new InvalidSecretError(`${source}: field "${field}" is missing`, field);
  }
  if (typeof value !== 'string') {
    throw new InvalidSecretError(
      `${source}: field "${field}" must be a string, got ${typeof value}`,
      field,
    );
  }
  if (value.trim() === '') {
    throw new InvalidSecretError(`${source}: field "${field}" is empty`, field);
  }
  if (value.length > maxLength) {
    throw new InvalidSecretError(
      `${source}: field "${field}" is longer than ${maxLength} characters (${value.length})`,
      field,
    );
  }
  return value;
}

export function optionalString(
  raw: Record<string, unknown>,
  field: string,
  source: Source,
  maxLength = 1024,
): string | undefined {
  return raw[field] === undefined || raw[field] === null
    ? undefined
    : requiredString(raw, field, source, maxLength);
}

export function parsePort(raw: Record<string, unknown>, source: Source, fallback: number): number {
  const value = raw.port;
  if (value === undefined || value === null || value === '') return fallback;
  const port = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidSecretError(
      `${source}: field "port" must be a whole number from 1 to 65535`,
      'port',
    );
  }
  return port;
}

/** `ssl`: true / false, or the strings "true" / "false" in any case; absent means TLS preferred. */
export function parseTls(raw: Record<string, unknown>, source: Source): TlsMode {
  const value = raw.ssl;
  if (value === undefined || value === null) return 'prefer';
  if (value === true) return 'verify';
  if (value === false) return 'disable';
  if (typeof value === 'string') {
    const normalized = value.trim().toLowerCase();
    if (normalized === 'true') return 'verify';
    if (normalized === 'false') return 'disable';
  }
  throw new InvalidSecretError(`${source}: field "ssl" must be true or false`, 'ssl');
}

/**
 * Parses a database secret for `db`, naming the field at fault in every error.
 *
 * @example
 * parseDatabaseSecret('{"engine":"postgres","host":"db","username":"app","password":"..."}', 'AWSCURRENT', createPostgres());
 */
export function parseDatabaseSecret(
  text: string,
  source: Source,
  db: Pick<
    Database<unknown>,
    'engines' | 'defaultPort' | 'defaultDatabase' | 'maxUsernameLength' | 'name'
  >,
): DatabaseSecret {
  const raw = parseJsonObject(text, source);
  const engine = requiredString(raw, 'engine', source, 64);
  requireNoControl(engine, 'engine', source);
  if (!db.engines.includes(engine)) {
    throw new InvalidSecretError(
      `${source}: field "engine" is ${JSON.stringify(engine)}; this function rotates ${db.name} (${db.engines.join(', ')})`,
      'engine',
    );
  }
  const host = requiredString(raw, 'host', source, MAX_HOST_LENGTH);
  if (/\s/.test(host)) {
    throw new InvalidSecretError(`${source}: field "host" contains white space`, 'host');
  }
  const username = requiredString(raw, 'username', source, db.maxUsernameLength);
  const password = requiredString(raw, 'password', source, 4096);
  const masterarn = optionalString(raw, 'masterarn', source, 2048);
  const dbname = optionalString(raw, 'dbname', source, 255);
  requireNoControl(host, 'host', source);
  requireNoControl(username, 'username', source);
  requireNoControl(dbname, 'dbname', source);
  return {
    engine,
    host,
    port: parsePort(raw, source, db.defaultPort),
    username,
    password,
    dbname: dbname ?? db.defaultDatabase,
    tls: parseTls(raw, source),
    ...(masterarn === undefined ? {} : { masterarn }),
    raw,
  };
}

/** The same secret with other credentials; every other key is kept as stored. */
export function withCredentials(
  secret: DatabaseSecret,
  username: string,
  password: string,
): DatabaseSecret {
  return { ...secret, username, password, raw: { ...secret.raw, username, password } };
}

export function serializeDatabaseSecret(secret: DatabaseSecret): string {
  return JSON.stringify({ ...secret.raw, username: secret.username, password: secret.password });
}

/** The login a secret describes. */
export function loginOf(secret: DatabaseSecret): Login {
  return {
    host: secret.host,
    port: secret.port,
    user: secret.username,
    password: secret.password,
    database: secret.dbname,
    tls: secret.tls,
  };
}

/** Host names compare without case; RDS endpoints are DNS names. */
export const sameHost = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();
