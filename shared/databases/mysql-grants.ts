/**
 * What the MySQL adapter knows about servers and accounts without talking to one: the server's
 * flavour and version from `SELECT VERSION()`, `SHOW GRANTS` lines read into single grants, and
 * the statements that make one account's grants and options equal another's. Pure functions,
 * so the shapes of MySQL 5.7 / 8.x / 9.x and MariaDB 10.x / 11.x are unit-tested as printed.
 */
import { createHash } from 'node:crypto';
import { DatabaseError } from '../common/errors.js';

/** MySQL or MariaDB, as the server itself reports it. */
export interface MysqlServer {
  flavor: 'mysql' | 'mariadb';
  major: number;
  minor: number;
  patch: number;
  /** VERSION() as the server answered it. */
  version: string;
}

/** Reads `SELECT VERSION()`: `8.4.3`, `9.1.0`, `8.0.mysql_aurora.3.05.2`, `10.11.6-MariaDB-0+deb12u1`. */
export function parseServerVersion(version: string): MysqlServer {
  const flavor = /mariadb/i.test(version) ? 'mariadb' : 'mysql';
  // Replication-compatible MariaDB handshakes prefix "5.5.5-"; VERSION() does not, but a proxy may.
  const text = flavor === 'mariadb' ? version.replace(/^5\.5\.5-/, '') : version;
  const match = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  if (!match) {
    throw new DatabaseError(`cannot read the server version ${JSON.stringify(version)}`);
  }
  const major = Number(match[1]);
  const minor = Number(match[2]);
  let patch = match[3] === undefined ? 0 : Number(match[3]);
  // Aurora MySQL reports "8.0.mysql_aurora.3.x" / "5.7.mysql_aurora.2.x": every Aurora MySQL 3 is
  // at least MySQL 8.0.23, every Aurora MySQL 2 at least 5.7.12.
  if (match[3] === undefined && /mysql_aurora/i.test(text)) {
    patch = major === 8 ? 23 : major === 5 && minor === 7 ? 12 : 0;
  }
  return { flavor, major, minor, patch, version };
}

const atLeast = (server: MysqlServer, major: number, minor: number, patch = 0): boolean =>
  server.major !== major
    ? server.major > major
    : server.minor !== minor
      ? server.minor > minor
      : server.patch >= patch;

/** What a server can do, by flavour and version (never by the secret's `engine`). */
export function capabilitiesOf(server: MysqlServer) {
  const mariadb = server.flavor === 'mariadb';
  return {
    /**
     * How a password changes. MySQL 5.7.6+ (8.x, 9.x: PASSWORD() is gone): ALTER USER ...
     * IDENTIFIED BY, which needs no privilege for one's own account. MariaDB (every version) and
     * older MySQL: SET PASSWORD FOR ... = PASSWORD(...), because MariaDB's ALTER USER needs
     * CREATE USER even for one's own account.
     */
    passwordSyntax: (!mariadb && atLeast(server, 5, 7, 6) ? 'alter-user' : 'set-password') as
      | 'alter-user'
      | 'set-password',
    /** Roles: MySQL 8.0+, MariaDB 10.0.5+. */
    roles: mariadb ? atLeast(server, 10, 0, 5) : atLeast(server, 8, 0),
    /** RETAIN CURRENT PASSWORD / DISCARD OLD PASSWORD: MySQL 8.0.14+ only; MariaDB has none. */
    dualPasswords: !mariadb && atLeast(server, 8, 0, 14),
    /** User name length: MariaDB 80, MySQL 32 (16 before 5.7.8). */
    maxUsernameLength: mariadb ? 80 : atLeast(server, 5, 7, 8) ? 32 : 16,
  };
}

/** `'user'@'host'`. */
export interface Account {
  user: string;
  host: string;
}

/** A role: `name`@`host` on MySQL, a bare name on MariaDB (host undefined). */
export interface Role {
  name: string;
  host?: string;
}

/** What a privilege is on: `*.*`, `db.*`, `db.table`, `PROCEDURE db.name`... (null = `*`). */
export interface GrantObject {
  routine?: 'FUNCTION' | 'PROCEDURE' | 'PACKAGE' | 'PACKAGE BODY';
  db: string | null;
  table: string | null;
}

/** One privilege on one object (one column for column privileges). */
export interface PrivilegeGrant {
  kind: 'privilege';
  object: GrantObject;
  privilege: string;
  column?: string;
  grantable: boolean;
}

/** A role granted to the account. */
export interface RoleGrant {
  kind: 'role';
  role: Role;
  admin: boolean;
}

/** A MySQL partial revoke (`REVOKE INSERT ON mysql.* FROM ...` under partial_revokes). */
export interface PartialRevoke {
  kind: 'partial-revoke';
  object: GrantObject;
  privilege: string;
}

export type Grant = PrivilegeGrant | RoleGrant | PartialRevoke;

/** Everything one account's `SHOW GRANTS` says. */
export interface AccountGrants {
  grants: Grant[];
  /** MariaDB prints `SET DEFAULT ROLE r FOR ...`; MySQL keeps default roles elsewhere. */
  defaultRole?: Role;
  /** Lines this module does not mirror (PROXY), by their first words: never a password hash. */
  ignored: string[];
}

type Token =
  | { t: 'id'; v: string }
  | { t: 'str'; v: string }
  | { t: 'word'; v: string }
  | { t: 'sym'; v: string };

/**
 * Splits a SHOW GRANTS line into identifiers, strings, words and symbols. Names are quoted in
 * backticks, or in double quotes under sql_mode ANSI_QUOTES (kept in the session), and a
 * backslash in them is the name's own (`db\_x%` is a pattern with an escaped `_`); only string
 * literals, always single-quoted, use backslash escapes.
 */
export function tokenize(line: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '`' || c === "'" || c === '"') {
      let value = '';
      i++;
      for (;;) {
        if (i >= line.length) throw new DatabaseError('unterminated quote in a SHOW GRANTS line');
        const d = line[i] as string;
        if (d === '\\' && c === "'" && i + 1 < line.length) {
          const next = line[i + 1] as string;
          value +=
            ({ n: '\n', r: '\r', t: '\t', '0': '\0', Z: '\x1a' } as Record<string, string>)[next] ??
            next;
          i += 2;
        } else if (d === c && line[i + 1] === c) {
          value += c;
          i += 2;
        } else if (d === c) {
          i++;
          break;
        } else {
          value += d;
          i++;
        }
      }
      tokens.push(c === "'" ? { t: 'str', v: value } : { t: 'id', v: value });
    } else if (/[A-Za-z0-9_$]/.test(c)) {
      let value = '';
      while (i < line.length && /[A-Za-z0-9_$]/.test(line[i] as string)) value += line[i++];
      tokens.push({ t: 'word', v: value });
    } else {
      tokens.push({ t: 'sym', v: c });
      i++;
    }
  }
  return tokens;
}

const isWord = (token: Token | undefined, ...words: string[]): boolean =>
  token?.t === 'word' && words.includes(token.v.toUpperCase());
const isSym = (token: Token | undefined, sym: string): boolean =>
  token?.t === 'sym' && token.v === sym;

const PRIVILEGE_NAME = /^[A-Z][A-Z0-9_]*( [A-Z][A-Z0-9_]*)*$/;

class LineReader {
  i = 0;
  constructor(
    readonly tokens: Token[],
    readonly line: string,
  ) {}
  peek(offset = 0): Token | undefined {
    return this.tokens[this.i + offset];
  }
  next(): Token | undefined {
    return this.tokens[this.i++];
  }
  fail(what: string): never {
    // The first words only: a MariaDB GRANT USAGE line goes on with the password hash.
    const start = this.line.split(/\s+/).slice(0, 3).join(' ');
    throw new DatabaseError(`cannot read a SHOW GRANTS line ("${start} ..."): ${what}`);
  }
  expectWord(word: string): void {
    if (!isWord(this.next(), word)) this.fail(`expected ${word}`);
  }
  name(): string {
    const token = this.next();
    if (token?.t === 'id' || token?.t === 'str' || token?.t === 'word') return token.v;
    return this.fail('expected a name');
  }
  /** `user`@`host`, or a bare role name. */
  account(): { user: string; host?: string } {
    const user = this.name();
    if (isSym(this.peek(), '@')) {
      this.next();
      return { user, host: this.name() };
    }
    return { user };
  }
  /** True when `WITH ... <word> OPTION` follows anywhere in the rest of the line. */
  hasOption(word: string): boolean {
    for (let j = this.i; j < this.tokens.length; j++) {
      if (isWord(this.tokens[j], word) && isWord(this.tokens[j + 1], 'OPTION')) return true;
    }
    return false;
  }
}

interface ParsedPrivilege {
  name: string;
  columns?: string[];
}

function readPrivileges(reader: LineReader): ParsedPrivilege[] {
  const privileges: ParsedPrivilege[] = [];
  for (;;) {
    const words: string[] = [];
    while (reader.peek()?.t === 'word' && !isWord(reader.peek(), 'ON')) {
      words.push((reader.next() as Token).v.toUpperCase());
    }
    if (words.length === 0) reader.fail('expected a privilege');
    const name = words.join(' ');
    if (!PRIVILEGE_NAME.test(name)) reader.fail('unexpected privilege name');
    const privilege: ParsedPrivilege = { name };
    if (isSym(reader.peek(), '(')) {
      reader.next();
      const columns: string[] = [];
      for (;;) {
        columns.push(reader.name());
        const sep = reader.next();
        if (isSym(sep, ')')) break;
        if (!isSym(sep, ',')) reader.fail('expected , or ) in a column list');
      }
      privilege.columns = columns;
    }
    privileges.push(privilege);
    if (!isSym(reader.peek(), ',')) return privileges;
    reader.next();
  }
}

function readObject(reader: LineReader): GrantObject {
  let routine: GrantObject['routine'];
  if (isWord(reader.peek(), 'TABLE')) reader.next();
  else if (isWord(reader.peek(), 'FUNCTION', 'PROCEDURE')) {
    routine = (reader.next() as Token).v.toUpperCase() as 'FUNCTION' | 'PROCEDURE';
  } else if (isWord(reader.peek(), 'PACKAGE')) {
    reader.next();
    routine = 'PACKAGE';
    if (isWord(reader.peek(), 'BODY')) {
      reader.next();
      routine = 'PACKAGE BODY';
    }
  }
  const part = (): string | null => {
    if (isSym(reader.peek(), '*')) {
      reader.next();
      return null;
    }
    return reader.name();
  };
  const first = part();
  if (!isSym(reader.peek(), '.'))
    return { ...(routine ? { routine } : {}), db: null, table: first };
  reader.next();
  const second = part();
  return { ...(routine ? { routine } : {}), db: first, table: second };
}

/**
 * Reads every line of `SHOW GRANTS FOR ...` of one account, on MySQL or MariaDB, into single
 * grants. Throws on a line it does not understand rather than drop a privilege silently.
 */
export function parseShowGrants(lines: readonly string[]): AccountGrants {
  const result: AccountGrants = { grants: [], ignored: [] };
  for (const line of lines) {
    const reader = new LineReader(tokenize(line), line);
    const verb = reader.next();
    if (isWord(verb, 'SET')) {
      // MariaDB: SET DEFAULT ROLE `r` FOR `u`@`h`
      reader.expectWord('DEFAULT');
      reader.expectWord('ROLE');
      const role = reader.account();
      if (role.host === undefined && role.user.toUpperCase() === 'NONE') continue;
      result.defaultRole =
        role.host === undefined ? { name: role.user } : { name: role.user, host: role.host };
      continue;
    }
    if (!isWord(verb, 'GRANT', 'REVOKE')) reader.fail('expected GRANT, REVOKE or SET');
    const revoke = isWord(verb, 'REVOKE');
    // Roles are printed quoted; privileges are bare words.
    if (!revoke && (reader.peek()?.t === 'id' || reader.peek()?.t === 'str')) {
      const roles: Role[] = [];
      for (;;) {
        const role = reader.account();
        roles.push(
          role.host === undefined ? { name: role.user } : { name: role.user, host: role.host },
        );
        if (!isSym(reader.peek(), ',')) break;
        reader.next();
      }
      reader.expectWord('TO');
      reader.account();
      const admin = reader.hasOption('ADMIN');
      for (const role of roles) result.grants.push({ kind: 'role', role, admin });
      continue;
    }
    const privileges = readPrivileges(reader);
    reader.expectWord('ON');
    if (privileges.some((p) => p.name === 'PROXY')) {
      result.ignored.push('PROXY');
      continue;
    }
    const object = readObject(reader);
    reader.expectWord(revoke ? 'FROM' : 'TO');
    reader.account();
    if (revoke) {
      for (const p of privileges) {
        result.grants.push({ kind: 'partial-revoke', object, privilege: p.name });
      }
      continue;
    }
    const grantable = reader.hasOption('GRANT');
    for (const p of privileges) {
      // USAGE means "no privilege"; with GRANT OPTION it still carries the grant option.
      if (p.name === 'USAGE' && !grantable) continue;
      for (const column of p.columns ?? [undefined]) {
        result.grants.push({
          kind: 'privilege',
          object,
          privilege: p.name,
          ...(column === undefined ? {} : { column }),
          grantable,
        });
      }
    }
  }
  return result;
}

const objectKey = (o: GrantObject): string => JSON.stringify([o.routine ?? '', o.db, o.table]);
const roleKey = (r: Role): string => JSON.stringify([r.name, r.host ?? null]);

/** A grant as a comparable string. */
export function grantKey(g: Grant): string {
  switch (g.kind) {
    case 'privilege':
      return JSON.stringify(['p', objectKey(g.object), g.privilege, g.column ?? null, g.grantable]);
    case 'role':
      return JSON.stringify(['r', roleKey(g.role), g.admin]);
    case 'partial-revoke':
      return JSON.stringify(['x', objectKey(g.object), g.privilege]);
  }
}

/** Quoting through the driver: identifiers (never split on dots) and string literals. */
export interface Quoting {
  id(name: string): string;
  str(value: string): string;
}

export const renderAccount = (a: Account, q: Quoting): string =>
  `${q.str(a.user)}@${q.str(a.host)}`;

export const renderObject = (o: GrantObject, q: Quoting): string =>
  `${o.routine ? `${o.routine} ` : ''}${o.db === null ? '*' : q.id(o.db)}.${o.table === null ? '*' : q.id(o.table)}`;

export const renderRole = (r: Role, server: MysqlServer, q: Quoting): string =>
  server.flavor === 'mariadb' || r.host === undefined
    ? q.id(r.name)
    : `${q.str(r.name)}@${q.str(r.host)}`;

/** The same object printed for a log line (backticks, as the server prints it). */
const showObject = (o: GrantObject): string =>
  renderObject(o, { id: (n) => `\`${n.replaceAll('`', '``')}\``, str: (v) => `'${v}'` });
const showRole = (r: Role): string =>
  r.host === undefined ? `\`${r.name}\`` : `\`${r.name}\`@\`${r.host}\``;

function privilegeList(grants: PrivilegeGrant[], q: Quoting): string {
  const byName = new Map<string, string[] | null>();
  for (const g of grants) {
    const columns = byName.get(g.privilege);
    if (g.column === undefined) byName.set(g.privilege, null);
    else if (columns !== null) byName.set(g.privilege, [...(columns ?? []), g.column]);
  }
  return [...byName.entries()]
    .map(([name, columns]) =>
      columns ? `${name} (${columns.map((c) => q.id(c)).join(', ')})` : name,
    )
    .join(', ');
}

/** Statements to run, in order, and a description of each for the log (never a secret). */
export interface Plan {
  statements: string[];
  changes: string[];
}

function groupBy<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    groups.set(k, [...(groups.get(k) ?? []), item]);
  }
  return groups;
}

/**
 * The GRANT / REVOKE statements that move `clone`'s grants towards `want` (the original's).
 * Grants come before revokes, so a clone in use never lacks a privilege both agree on; the
 * caller re-reads and plans again until nothing is left (a REVOKE of ALL PRIVILEGES or of a
 * grant option can take more than what differs, and the next pass gives it back).
 */
export function planGrantChanges(
  server: MysqlServer,
  clone: Account,
  want: readonly Grant[],
  have: readonly Grant[],
  q: Quoting,
): Plan {
  const plan: Plan = { statements: [], changes: [] };
  const to = renderAccount(clone, q);
  const haveKeys = new Set(have.map(grantKey));
  const wantKeys = new Set(want.map(grantKey));
  const missing = want.filter((g) => !haveKeys.has(grantKey(g)));
  const extra = have.filter((g) => !wantKeys.has(grantKey(g)));

  // 1. Roles the clone lacks (or holds without the admin option the original has).
  for (const g of missing) {
    if (g.kind !== 'role') continue;
    plan.statements.push(
      `GRANT ${renderRole(g.role, server, q)} TO ${to}${g.admin ? ' WITH ADMIN OPTION' : ''}`,
    );
    plan.changes.push(`granted role ${showRole(g.role)}${g.admin ? ' WITH ADMIN OPTION' : ''}`);
  }

  // 2. Privileges the clone lacks, one GRANT per object and grant option.
  const missingPrivileges = missing.filter((g): g is PrivilegeGrant => g.kind === 'privilege');
  for (const group of groupBy(
    missingPrivileges,
    (g) => `${objectKey(g.object)}|${g.grantable}`,
  ).values()) {
    const first = group[0] as PrivilegeGrant;
    const list = privilegeList(group, q);
    plan.statements.push(
      `GRANT ${list} ON ${renderObject(first.object, q)} TO ${to}${first.grantable ? ' WITH GRANT OPTION' : ''}`,
    );
    plan.changes.push(
      `granted ${privilegeList(group, { id: (n) => `\`${n}\``, str: (v) => v })} ON ${showObject(first.object)}${first.grantable ? ' WITH GRANT OPTION' : ''}`,
    );
  }

  // 3. Privileges the original does not hold at all, one REVOKE per object.
  const wantedPrivilege = new Set(
    want
      .filter((g): g is PrivilegeGrant => g.kind === 'privilege')
      .map((g) => JSON.stringify([objectKey(g.object), g.privilege, g.column ?? null])),
  );
  const extraPrivileges = extra.filter(
    (g): g is PrivilegeGrant =>
      g.kind === 'privilege' &&
      g.privilege !== 'USAGE' &&
      !wantedPrivilege.has(JSON.stringify([objectKey(g.object), g.privilege, g.column ?? null])),
  );
  for (const group of groupBy(extraPrivileges, (g) => objectKey(g.object)).values()) {
    const first = group[0] as PrivilegeGrant;
    plan.statements.push(
      `REVOKE ${privilegeList(group, q)} ON ${renderObject(first.object, q)} FROM ${to}`,
    );
    plan.changes.push(
      `revoked ${privilegeList(group, { id: (n) => `\`${n}\``, str: (v) => v })} ON ${showObject(first.object)}`,
    );
  }

  // 4. A grant option the original lacks on an object.
  const wantedGrantable = new Set(
    want
      .filter((g): g is PrivilegeGrant => g.kind === 'privilege' && g.grantable)
      .map((g) => JSON.stringify([objectKey(g.object), g.privilege, g.column ?? null])),
  );
  const objectsLosingGrantOption = new Map<string, GrantObject>();
  for (const g of extra) {
    if (
      g.kind === 'privilege' &&
      g.grantable &&
      !wantedGrantable.has(JSON.stringify([objectKey(g.object), g.privilege, g.column ?? null]))
    ) {
      objectsLosingGrantOption.set(objectKey(g.object), g.object);
    }
  }
  for (const object of objectsLosingGrantOption.values()) {
    plan.statements.push(`REVOKE GRANT OPTION ON ${renderObject(object, q)} FROM ${to}`);
    plan.changes.push(`revoked GRANT OPTION ON ${showObject(object)}`);
  }

  // 5. Roles the original does not hold, or holds without the admin option (granted back
  //    without it on the next pass: MySQL has no REVOKE ADMIN OPTION FOR).
  for (const g of extra) {
    if (g.kind !== 'role') continue;
    plan.statements.push(`REVOKE ${renderRole(g.role, server, q)} FROM ${to}`);
    plan.changes.push(`revoked role ${showRole(g.role)}`);
  }

  // 6. MySQL partial revokes: mirror the original's exceptions to its global privileges.
  for (const g of missing) {
    if (g.kind !== 'partial-revoke') continue;
    plan.statements.push(`REVOKE ${g.privilege} ON ${renderObject(g.object, q)} FROM ${to}`);
    plan.changes.push(`partially revoked ${g.privilege} ON ${showObject(g.object)}`);
  }
  for (const g of extra) {
    if (g.kind !== 'partial-revoke') continue;
    plan.statements.push(`GRANT ${g.privilege} ON ${renderObject(g.object, q)} TO ${to}`);
    plan.changes.push(`lifted the partial revoke of ${g.privilege} ON ${showObject(g.object)}`);
  }
  return plan;
}

/** An account's options kept in mysql.user: authentication plugin, TLS requirement, limits. */
export interface AccountOptions {
  plugin: string;
  /** '' (none), 'ANY' (REQUIRE SSL), 'X509', 'SPECIFIED' (issuer / subject / cipher). */
  sslType: string;
  sslCipher: string;
  x509Issuer: string;
  x509Subject: string;
  maxQuestions: number;
  maxUpdates: number;
  maxConnections: number;
  maxUserConnections: number;
  /** MariaDB only: MAX_STATEMENT_TIME in seconds, as the server prints it ("0.000000"). */
  maxStatementTime?: string;
}

/** `REQUIRE ...` of an account. */
export function renderRequire(o: AccountOptions, q: Quoting): string {
  switch (o.sslType.toUpperCase()) {
    case '':
      return 'REQUIRE NONE';
    case 'ANY':
      return 'REQUIRE SSL';
    case 'X509':
      return 'REQUIRE X509';
    case 'SPECIFIED': {
      const parts = [
        o.x509Issuer ? `ISSUER ${q.str(o.x509Issuer)}` : '',
        o.x509Subject ? `SUBJECT ${q.str(o.x509Subject)}` : '',
        o.sslCipher ? `CIPHER ${q.str(o.sslCipher)}` : '',
      ].filter(Boolean);
      return parts.length > 0 ? `REQUIRE ${parts.join(' AND ')}` : 'REQUIRE SSL';
    }
    default:
      throw new DatabaseError(`unknown ssl_type ${JSON.stringify(o.sslType)}`);
  }
}

const count = (value: number, what: string): string => {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new DatabaseError(`unexpected ${what} ${JSON.stringify(value)}`);
  }
  return String(value);
};

/** `WITH MAX_...` of an account: every limit, zeros included, so one statement sets them all. */
export function renderLimits(o: AccountOptions, server: MysqlServer): string {
  const limits = [
    `MAX_QUERIES_PER_HOUR ${count(o.maxQuestions, 'max_questions')}`,
    `MAX_UPDATES_PER_HOUR ${count(o.maxUpdates, 'max_updates')}`,
    `MAX_CONNECTIONS_PER_HOUR ${count(o.maxConnections, 'max_connections')}`,
    `MAX_USER_CONNECTIONS ${count(o.maxUserConnections, 'max_user_connections')}`,
  ];
  if (server.flavor === 'mariadb' && o.maxStatementTime !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(o.maxStatementTime)) {
      throw new DatabaseError(
        `unexpected max_statement_time ${JSON.stringify(o.maxStatementTime)}`,
      );
    }
    limits.push(`MAX_STATEMENT_TIME ${o.maxStatementTime}`);
  }
  return `WITH ${limits.join(' ')}`;
}

const sameRequire = (a: AccountOptions, b: AccountOptions): boolean =>
  a.sslType.toUpperCase() === b.sslType.toUpperCase() &&
  a.sslCipher === b.sslCipher &&
  a.x509Issuer === b.x509Issuer &&
  a.x509Subject === b.x509Subject;

const sameLimits = (a: AccountOptions, b: AccountOptions): boolean =>
  a.maxQuestions === b.maxQuestions &&
  a.maxUpdates === b.maxUpdates &&
  a.maxConnections === b.maxConnections &&
  a.maxUserConnections === b.maxUserConnections &&
  Number(a.maxStatementTime ?? 0) === Number(b.maxStatementTime ?? 0);

/** The ALTER USER that gives `clone` the original's TLS requirement and resource limits. */
export function planAccountOptions(
  server: MysqlServer,
  clone: Account,
  want: AccountOptions,
  have: AccountOptions,
  q: Quoting,
): Plan {
  const clauses: string[] = [];
  const changes: string[] = [];
  if (!sameRequire(want, have)) {
    const clause = renderRequire(want, q);
    clauses.push(clause);
    // The issuer and subject are names, not secrets; still, the log only says which kind.
    changes.push(`set ${clause.split(' ').slice(0, 2).join(' ')}`);
  }
  if (!sameLimits(want, have)) {
    const clause = renderLimits(want, server);
    clauses.push(clause);
    changes.push(`set resource limits ${clause.slice('WITH '.length)}`);
  }
  if (clauses.length === 0) return { statements: [], changes: [] };
  return { statements: [`ALTER USER ${renderAccount(clone, q)} ${clauses.join(' ')}`], changes };
}

/** Password plugins whose name may be repeated in CREATE USER ... IDENTIFIED WITH. */
const MYSQL_PASSWORD_PLUGINS = new Set([
  'mysql_native_password',
  'caching_sha2_password',
  'sha256_password',
]);

/**
 * CREATE USER for a clone: the original's authentication plugin (MySQL), TLS requirement and
 * limits, and a password given as the placeholder `?`: on MariaDB the mysql_native_password
 * hash of the password (MariaDB logs statements as sent), on MySQL the password (MySQL
 * rewrites it out of its logs).
 */
export function renderCreateUser(
  server: MysqlServer,
  clone: Account,
  like: AccountOptions,
  q: Quoting,
): string {
  const identified =
    server.flavor === 'mysql' && MYSQL_PASSWORD_PLUGINS.has(like.plugin)
      ? `IDENTIFIED WITH ${like.plugin} BY ?`
      : server.flavor === 'mariadb'
        ? 'IDENTIFIED BY PASSWORD ?'
        : 'IDENTIFIED BY ?';
  return `CREATE USER ${renderAccount(clone, q)} ${identified} ${renderRequire(like, q)} ${renderLimits(like, server)}`;
}

/** Grants on `*.*` (global privileges) that `clone` holds and `original` lacks. */
export function extraGlobalPrivileges(
  original: readonly Grant[],
  clone: readonly Grant[],
): string[] {
  const global = (grants: readonly Grant[]) =>
    grants.filter(
      (g): g is PrivilegeGrant =>
        g.kind === 'privilege' && g.object.db === null && g.object.table === null,
    );
  const held = new Set(global(original).map((g) => grantKey(g)));
  const heldPlain = new Set(global(original).map((g) => grantKey({ ...g, grantable: false })));
  return global(clone)
    .filter((g) => (g.grantable ? !held.has(grantKey(g)) : !heldPlain.has(grantKey(g))))
    .map((g) => `${g.privilege}${g.grantable ? ' WITH GRANT OPTION' : ''}`);
}

/**
 * mysql_native_password's stored verifier of `password`: `*` and the upper-case hex of
 * SHA1(SHA1(password)), what PASSWORD() computes. Sent instead of the password, so the server
 * never writes the password itself to its general, slow or binary log (MariaDB rewrites none).
 */
export function nativePasswordHash(password: string): string {
  const inner = createHash('sha1').update(password, 'utf8').digest();
  return `*${createHash('sha1').update(inner).digest('hex').toUpperCase()}`;
}

/**
 * The authentication plugins of a MariaDB account, read from its `SHOW CREATE USER` (or the
 * `GRANT ... ON *.*` line of `SHOW GRANTS` on MariaDB before 10.2): `IDENTIFIED BY PASSWORD
 * '*...'` is mysql_native_password (a 16-digit hash: mysql_old_password), `IDENTIFIED VIA a
 * USING '...' OR b` lists every method, and no IDENTIFIED clause is mysql_native_password
 * with an empty password. Quoted names never count: a user name cannot fake the clause.
 */
export function authenticationPlugins(lines: readonly string[]): string[] {
  for (const line of lines) {
    const tokens = tokenize(line);
    const at = tokens.findIndex((t) => isWord(t, 'IDENTIFIED'));
    if (at < 0) continue;
    const reader = new LineReader(tokens, line);
    reader.i = at + 1;
    if (isWord(reader.peek(), 'BY')) {
      reader.next();
      if (isWord(reader.peek(), 'PASSWORD')) reader.next();
      const hash = reader.next();
      if (hash?.t !== 'str') return reader.fail('expected a password hash');
      return [hash.v.length === 16 ? 'mysql_old_password' : 'mysql_native_password'];
    }
    if (!isWord(reader.next(), 'VIA', 'WITH')) reader.fail('expected VIA or WITH');
    const plugins: string[] = [];
    for (;;) {
      plugins.push(reader.name().toLowerCase());
      if (isWord(reader.peek(), 'USING', 'AS')) {
        reader.next();
        if (isWord(reader.peek(), 'PASSWORD')) {
          // USING PASSWORD('...'): never printed by the server, but skip it whole if it is.
          reader.next();
          while (reader.peek() !== undefined && !isSym(reader.next(), ')')) {}
        } else if (reader.next()?.t !== 'str') {
          reader.fail('expected an authentication string');
        }
      }
      if (!isWord(reader.peek(), 'OR')) return plugins;
      reader.next();
    }
  }
  return ['mysql_native_password'];
}
