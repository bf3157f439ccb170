/**
 * A generated corpus of bad events and bad secret values. Each case says which error it must
 * produce: a pattern naming the field or the rule at fault.
 */
export interface EventCase {
  kind: 'event';
  name: string;
  /** Replaces the event (or a field of it, `undefined` removing it). */
  event: (valid: Record<string, unknown>) => unknown;
  expect: RegExp;
}

export interface SecretCase {
  kind: 'current' | 'pending';
  name: string;
  /** The JSON text to store (built from the valid value). */
  value: (valid: Record<string, unknown>) => string;
  expect: RegExp;
}

export type HostileCase = EventCase | SecretCase;

const OVERSIZED = 'x'.repeat(5000);
const UNICODE = 'ユーザー\u202e\u0000名';
const WRONG_TYPES: [string, unknown][] = [
  ['a number', 42],
  ['null', null],
  ['an array', ['a']],
  ['an object', { $gt: '' }],
  ['a boolean', true],
];

export function eventCases(): EventCase[] {
  const cases: EventCase[] = [];
  for (const [name, value] of [
    ['null', null],
    ['a string', 'createSecret'],
    ['an array', []],
    ['a number', 7],
  ] as const) {
    cases.push({
      kind: 'event',
      name: `event is ${name}`,
      event: () => value,
      expect: /rotation event must be an object/,
    });
  }
  for (const field of ['Step', 'SecretId', 'ClientRequestToken']) {
    cases.push({
      kind: 'event',
      name: `${field} missing`,
      event: (valid) => ({ ...valid, [field]: undefined }),
      expect: new RegExp(`field ${field} is missing`),
    });
  }
  for (const field of ['Step', 'SecretId', 'ClientRequestToken', 'RotationToken']) {
    for (const [typeName, value] of WRONG_TYPES.filter(
      ([, v]) => v !== null || field !== 'RotationToken',
    )) {
      cases.push({
        kind: 'event',
        name: `${field} is ${typeName}`,
        event: (valid) => ({ ...valid, [field]: value }),
        expect: new RegExp(`field ${field} (must be a string|is missing)`),
      });
    }
    cases.push({
      kind: 'event',
      name: `${field} is empty`,
      event: (valid) => ({ ...valid, [field]: '' }),
      expect: new RegExp(`field ${field} must be`),
    });
    cases.push({
      kind: 'event',
      name: `${field} is oversized`,
      event: (valid) => ({ ...valid, [field]: OVERSIZED }),
      expect: new RegExp(`field ${field} must be`),
    });
  }
  cases.push(
    {
      kind: 'event',
      name: 'Step is unicode',
      event: (valid) => ({ ...valid, Step: UNICODE }),
      expect: /field Step must be one of/,
    },
    {
      kind: 'event',
      name: 'Step is an injection string',
      event: (valid) => ({ ...valid, Step: "createSecret'; DROP TABLE x;--" }),
      expect: /field Step must be one of/,
    },
    {
      kind: 'event',
      name: 'SecretId names another secret',
      event: (valid) => ({
        ...valid,
        SecretId: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf',
      }),
      expect: /ResourceNotFoundException|can't find the specified secret/i,
    },
    {
      kind: 'event',
      name: 'ClientRequestToken is not a version of the secret',
      event: (valid) => ({ ...valid, ClientRequestToken: '0'.repeat(36) }),
      expect: /is not a version of the secret/,
    },
  );
  return cases;
}

const REQUIRED = ['engine', 'host', 'username', 'password'];
const SQL_INJECTIONS = [
  "x'; DROP ROLE postgres; --",
  "x\"; ALTER ROLE postgres PASSWORD 'o'; --",
  "' OR '1'='1",
  'x\\"; SELECT pg_sleep(10); --',
];
const NOSQL_INJECTIONS = ['{"$ne": null}', "'; db.dropDatabase(); '", '$where: 1 == 1'];

/** What the secret cases need to know of the database they run against. */
export interface CorpusProfile {
  /** The engine a valid secret names, e.g. "postgres". */
  engine: string;
  /** Engines another function rotates: each must be refused. */
  otherEngines: readonly string[];
  /** An existing user that is not the secret's (the administrator). */
  otherUser: string;
  /**
   * How the server's refusal of a database the user may not use reads (`database` as a regex
   * source): PostgreSQL says it does not exist, MySQL denies access to it, MongoDB (where it is
   * the authentication database) finds no such user in it.
   */
  refusedDatabase(database: string): RegExp;
}

/** `text` as a regex source that matches it literally. */
const quote = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export function secretCases(profile: CorpusProfile): SecretCase[] {
  const cases: SecretCase[] = [];
  const [otherEngine] = profile.otherEngines;
  const json = (valid: Record<string, unknown>, patch: Record<string, unknown>) =>
    JSON.stringify({ ...valid, ...patch });
  cases.push(
    {
      kind: 'current',
      name: 'not JSON',
      value: () => `{"engine":"${profile.engine}","password":"leak-me-not-1`,
      expect: /AWSCURRENT is not valid JSON/,
    },
    {
      kind: 'current',
      name: 'a JSON string',
      value: () => JSON.stringify(profile.engine),
      expect: /AWSCURRENT must be a JSON object/,
    },
    {
      kind: 'current',
      name: 'a JSON array',
      value: () => '[]',
      expect: /AWSCURRENT must be a JSON object/,
    },
    { kind: 'current', name: 'empty', value: () => '{}', expect: /field "engine" is missing/ },
  );
  for (const field of REQUIRED) {
    cases.push({
      kind: 'current',
      name: `${field} missing`,
      value: (v) => json(v, { [field]: undefined }),
      expect: new RegExp(`field "${field}" is missing`),
    });
    cases.push({
      kind: 'current',
      name: `${field} empty`,
      value: (v) => json(v, { [field]: '' }),
      expect: new RegExp(`field "${field}" is empty`),
    });
    for (const [typeName, value] of WRONG_TYPES.filter(([, v]) => v !== null)) {
      cases.push({
        kind: 'current',
        name: `${field} is ${typeName}`,
        value: (v) => json(v, { [field]: value }),
        expect: new RegExp(`field "${field}" must be a string`),
      });
    }
    cases.push({
      kind: 'current',
      name: `${field} oversized`,
      value: (v) => json(v, { [field]: OVERSIZED }),
      expect: new RegExp(`field "${field}" (is longer than|is "x+")`),
    });
  }
  for (const field of ['host', 'username', 'dbname']) {
    cases.push({
      kind: 'current',
      name: `${field} with control characters`,
      value: (v) => json(v, { [field]: UNICODE }),
      expect: new RegExp(`field "${field}" contains control characters`),
    });
  }
  for (const [name, value, expect] of [
    ['port zero', 0, /field "port" must be a whole number/],
    ['port too large', 70000, /field "port" must be a whole number/],
    ['port fractional', 5432.5, /field "port" must be a whole number/],
    ['port words', 'fifty', /field "port" must be a whole number/],
    ['port an object', { $gt: 0 }, /field "port" must be a whole number/],
    ['ssl a word', 'require', /field "ssl" must be true or false/],
    ['ssl a number', 1, /field "ssl" must be true or false/],
    ['dbname a number', 5, /field "dbname" must be a string/],
    ['dbname empty', '', /field "dbname" is empty/],
    ['masterarn a number', 5, /field "masterarn" must be a string/],
  ] as const) {
    const field = name.split(' ')[0] as string;
    cases.push({ kind: 'current', name, value: (v) => json(v, { [field]: value }), expect });
  }
  for (const engine of [
    ...profile.otherEngines,
    profile.engine.toUpperCase(),
    `${profile.engine} `,
    UNICODE,
  ]) {
    cases.push({
      kind: 'current',
      name: `engine ${JSON.stringify(engine)}`,
      value: (v) => json(v, { engine }),
      expect: /field "engine" (is "|contains control)/,
    });
  }
  for (const injection of [...SQL_INJECTIONS, ...NOSQL_INJECTIONS]) {
    // A name that does not exist on the server: the rotation must stop at sign-in, change nothing.
    cases.push({
      kind: 'current',
      name: `username injection ${injection}`,
      value: (v) => json(v, { username: injection }),
      // No such user: the server refuses every stored password, and the error names the user.
      expect: new RegExp(
        `user "${quote(injection)}" at \\S+(?: \\(database "[^"]*"\\))? refuses AWSPENDING, AWSCURRENT and AWSPREVIOUS`,
      ),
    });
    cases.push({
      kind: 'current',
      name: `dbname injection ${injection}`,
      value: (v) => json(v, { dbname: injection }),
      expect: profile.refusedDatabase(quote(injection)),
    });
  }
  cases.push(
    {
      kind: 'pending',
      name: 'AWSPENDING names another user',
      value: (v) => json(v, { username: profile.otherUser }),
      expect: new RegExp(`AWSPENDING names user "${quote(profile.otherUser)}"`),
    },
    {
      kind: 'pending',
      name: 'AWSPENDING names another host',
      value: (v) => json(v, { host: 'evil.example.com' }),
      expect: /AWSPENDING names host evil\.example\.com/,
    },
    {
      kind: 'pending',
      name: 'AWSPENDING names another port',
      value: (v) => json(v, { port: 1 }),
      expect: /AWSPENDING names host .*:1 but/,
    },
    {
      // MongoDB: the same name in another authentication database is another user.
      kind: 'pending',
      name: 'AWSPENDING names another dbname',
      value: (v) => json(v, { dbname: 'other_database' }),
      expect: /AWSPENDING names another "dbname" than AWSCURRENT/,
    },
    {
      kind: 'pending',
      name: 'AWSPENDING is not JSON',
      value: () => 'not json at all',
      expect: /AWSPENDING is not valid JSON/,
    },
    {
      kind: 'pending',
      name: 'AWSPENDING for another engine',
      value: (v) => json(v, { engine: otherEngine }),
      expect: new RegExp(`AWSPENDING: field "engine" is "${otherEngine}"`),
    },
    {
      kind: 'pending',
      name: 'AWSPENDING with an injection username',
      value: (v) => json(v, { username: SQL_INJECTIONS[0] }),
      expect: /AWSPENDING names user/,
    },
  );
  return cases;
}
