import { InvalidSecretError } from '../common/errors.js';
import { jsonObject, optionalStringField, stringField } from '../common/fields.js';
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
  /**
   * The account scope the secret names in the database's `scopeField` (MySQL: the host part of
   * `'user'@'host'`, field `accounthost`); absent, the adapter reads it from the server.
   */
  scope?: string;
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

/** The secret value as a JSON object (shared with every other kind of secret). */
export const parseJsonObject = jsonObject;

export function requiredString(
  raw: Record<string, unknown>,
  field: string,
  source: Source,
  maxLength = 1024,
): string {
  return stringField(raw, field, source, { maxLength });
}

export function optionalString(
  raw: Record<string, unknown>,
  field: string,
  source: Source,
  maxLength = 1024,
): string | undefined {
  return optionalStringField(raw, field, source, { maxLength });
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
    | 'engines'
    | 'defaultPort'
    | 'defaultDatabase'
    | 'maxUsernameLength'
    | 'maxUsernameLengthFor'
    | 'usernameLimitUnit'
    | 'scopeField'
    | 'name'
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
  const maxUsername = maxUsernameLength(db, engine);
  if (typeof raw.username === 'string' && usernameLength(db, raw.username) > maxUsername) {
    throw new InvalidSecretError(
      `${source}: field "username" is longer than the ${maxUsername} ${usernameUnit(db)} engine "${engine}" accepts (${usernameLength(db, raw.username)})`,
      'username',
    );
  }
  const username = requiredString(raw, 'username', source, maxUsername);
  const password = requiredString(raw, 'password', source, 4096);
  const masterarn = optionalString(raw, 'masterarn', source, 2048);
  const scope =
    db.scopeField === undefined
      ? undefined
      : optionalString(raw, db.scopeField, source, MAX_HOST_LENGTH);
  const dbname = optionalString(raw, 'dbname', source, 255);
  requireNoControl(host, 'host', source);
  requireNoControl(username, 'username', source);
  requireNoControl(dbname, 'dbname', source);
  if (db.scopeField !== undefined) requireNoControl(scope, db.scopeField, source);
  return {
    engine,
    host,
    port: parsePort(raw, source, db.defaultPort),
    username,
    password,
    dbname: dbname ?? db.defaultDatabase,
    tls: parseTls(raw, source),
    ...(masterarn === undefined ? {} : { masterarn }),
    ...(scope === undefined ? {} : { scope }),
    raw,
  };
}

/** The longest user name `db` accepts for a secret of `engine`. */
export const maxUsernameLength = (
  db: Pick<Database<unknown>, 'maxUsernameLength' | 'maxUsernameLengthFor'>,
  engine: string,
): number => db.maxUsernameLengthFor?.(engine) ?? db.maxUsernameLength;

/** A user name's length in the unit `db` counts its limit in (PostgreSQL: UTF-8 bytes). */
export const usernameLength = (
  db: Pick<Database<unknown>, 'usernameLimitUnit'>,
  username: string,
): number =>
  db.usernameLimitUnit === 'bytes' ? Buffer.byteLength(username, 'utf8') : username.length;

/** The unit of `db`'s user name limit, for messages. */
export const usernameUnit = (db: Pick<Database<unknown>, 'usernameLimitUnit'>): string =>
  db.usernameLimitUnit === 'bytes' ? 'bytes' : 'characters';

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

/**
 * Where a secret signs in, for error messages: `user "app" at db:5432 (database "orders")`; the
 * database is left out where the secret names none and the engine has no default (MySQL).
 */
export const accountOf = (secret: DatabaseSecret): string =>
  `user "${secret.username}" at ${secret.host}:${secret.port}${
    secret.dbname === '' ? '' : ` (database "${secret.dbname}")`
  }`;

/** Host names compare without case; RDS endpoints are DNS names. */
export const sameHost = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();
