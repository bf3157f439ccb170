import mysql from 'mysql2';
import { describe, expect, it } from 'vitest';
import { DatabaseError } from '../../shared/common/errors.js';
import {
  type AccountOptions,
  authenticationPlugins,
  capabilitiesOf,
  extraGlobalPrivileges,
  type MysqlServer,
  nativePasswordHash,
  parseServerVersion,
  parseShowGrants,
  planAccountOptions,
  planGrantChanges,
  renderCreateUser,
  renderLimits,
  renderRequire,
  tokenize,
} from '../../shared/databases/mysql-grants.js';

const q = { id: (name: string) => mysql.escapeId(name, true), str: (v: string) => mysql.escape(v) };
const clone = { user: 'app_clone', host: '%' };
const mysql8 = parseServerVersion('8.0.36');
const mariadb = parseServerVersion('10.11.19-MariaDB-0+deb12u1');

/** SHOW GRANTS as MariaDB 10.11 answers it through mysql2 (captured from scripts/start-mariadb.sh). */
const MARIADB_GRANTS = [
  'GRANT `r1` TO `x1`@`%`',
  'GRANT `r2` TO `x1`@`%` WITH ADMIN OPTION',
  "GRANT PROCESS ON *.* TO `x1`@`%` IDENTIFIED BY PASSWORD '*2B602296A79E0A8784ACC5C88D92E46588CCA3C3' REQUIRE SSL WITH MAX_QUERIES_PER_HOUR 100 MAX_USER_CONNECTIONS 5",
  'GRANT SELECT, INSERT ON `rotation_test`.* TO `x1`@`%` WITH GRANT OPTION',
  'GRANT SELECT (`a`), UPDATE (`a`, `b`) ON `rotation_test`.`t1` TO `x1`@`%`',
  'SET DEFAULT ROLE `r1` FOR `x1`@`%`',
];

/** SHOW GRANTS as MySQL 8.0 prints it (the reference manual's examples). */
const MYSQL8_GRANTS = [
  'GRANT SELECT, INSERT, UPDATE, DELETE ON *.* TO `u1`@`%`',
  'GRANT BACKUP_ADMIN,BINLOG_ADMIN ON *.* TO `u1`@`%` WITH GRANT OPTION',
  'GRANT SELECT (`a`), UPDATE (`b`) ON `db`.`t` TO `u1`@`%`',
  'GRANT EXECUTE ON PROCEDURE `db`.`p` TO `u1`@`%`',
  'REVOKE INSERT, UPDATE ON `mysql`.* FROM `u1`@`%`',
  'GRANT `r1`@`%`,`r2`@`localhost` TO `u1`@`%`',
  'GRANT `r3`@`%` TO `u1`@`%` WITH ADMIN OPTION',
  'GRANT PROXY ON ``@`` TO `u1`@`%`',
];

describe('mysql server versions', () => {
  it.each([
    ['8.4.3', 'mysql', 'alter-user', true, 32],
    ['9.1.0', 'mysql', 'alter-user', true, 32],
    ['8.0.14', 'mysql', 'alter-user', true, 32],
    ['8.0.13', 'mysql', 'alter-user', false, 32],
    ['8.0.mysql_aurora.3.05.2', 'mysql', 'alter-user', true, 32],
    ['5.7.44-log', 'mysql', 'alter-user', false, 32],
    ['5.7.mysql_aurora.2.11.2', 'mysql', 'alter-user', false, 32],
    ['5.6.51', 'mysql', 'set-password', false, 16],
    ['10.11.19-MariaDB-0+deb12u1', 'mariadb', 'set-password', false, 80],
    ['11.4.2-MariaDB-ubu2404', 'mariadb', 'set-password', false, 80],
    ['5.5.5-10.6.16-MariaDB', 'mariadb', 'set-password', false, 80],
  ])(
    'reads %s as %s: %s, dual passwords %s, user names up to %i',
    (version, flavor, syntax, dual, max) => {
      const server = parseServerVersion(version);
      expect(server.flavor).toBe(flavor);
      expect(capabilitiesOf(server)).toMatchObject({
        passwordSyntax: syntax,
        dualPasswords: dual,
        maxUsernameLength: max,
      });
    },
  );

  it('reads MariaDB 10.6 behind the replication prefix as 10.6', () => {
    expect(parseServerVersion('5.5.5-10.6.16-MariaDB')).toMatchObject({
      major: 10,
      minor: 6,
      patch: 16,
    });
  });
});

describe('SHOW GRANTS', () => {
  it("reads MariaDB's lines, password hash, REQUIRE and limits included, into single grants", () => {
    const parsed = parseShowGrants(MARIADB_GRANTS);
    expect(parsed.defaultRole).toEqual({ name: 'r1' });
    expect(parsed.grants).toEqual([
      { kind: 'role', role: { name: 'r1' }, admin: false },
      { kind: 'role', role: { name: 'r2' }, admin: true },
      {
        kind: 'privilege',
        object: { db: null, table: null },
        privilege: 'PROCESS',
        grantable: false,
      },
      {
        kind: 'privilege',
        object: { db: 'rotation_test', table: null },
        privilege: 'SELECT',
        grantable: true,
      },
      {
        kind: 'privilege',
        object: { db: 'rotation_test', table: null },
        privilege: 'INSERT',
        grantable: true,
      },
      {
        kind: 'privilege',
        object: { db: 'rotation_test', table: 't1' },
        privilege: 'SELECT',
        column: 'a',
        grantable: false,
      },
      {
        kind: 'privilege',
        object: { db: 'rotation_test', table: 't1' },
        privilege: 'UPDATE',
        column: 'a',
        grantable: false,
      },
      {
        kind: 'privilege',
        object: { db: 'rotation_test', table: 't1' },
        privilege: 'UPDATE',
        column: 'b',
        grantable: false,
      },
    ]);
    expect(JSON.stringify(parsed)).not.toContain('2B602296');
  });

  it("reads MySQL 8's lines: dynamic privileges, routines, partial revokes, roles with hosts, PROXY left out", () => {
    const parsed = parseShowGrants(MYSQL8_GRANTS);
    expect(parsed.ignored).toEqual(['PROXY']);
    expect(parsed.grants).toContainEqual({
      kind: 'privilege',
      object: { db: null, table: null },
      privilege: 'BINLOG_ADMIN',
      grantable: true,
    });
    expect(parsed.grants).toContainEqual({
      kind: 'privilege',
      object: { routine: 'PROCEDURE', db: 'db', table: 'p' },
      privilege: 'EXECUTE',
      grantable: false,
    });
    expect(parsed.grants).toContainEqual({
      kind: 'partial-revoke',
      object: { db: 'mysql', table: null },
      privilege: 'UPDATE',
    });
    expect(parsed.grants).toContainEqual({
      kind: 'role',
      role: { name: 'r2', host: 'localhost' },
      admin: false,
    });
    expect(parsed.grants).toContainEqual({
      kind: 'role',
      role: { name: 'r3', host: '%' },
      admin: true,
    });
  });

  it("reads MySQL 5.7's single-quoted accounts and names with quotes, dots and backticks", () => {
    const parsed = parseShowGrants([
      "GRANT USAGE ON *.* TO 'it''s'@'10.%'",
      "GRANT SELECT ON `we``ird.db`.`t.1` TO 'it''s'@'10.%'",
      "GRANT USAGE ON `db`.* TO 'it''s'@'10.%' WITH GRANT OPTION",
    ]);
    expect(parsed.grants).toEqual([
      {
        kind: 'privilege',
        object: { db: 'we`ird.db', table: 't.1' },
        privilege: 'SELECT',
        grantable: false,
      },
      { kind: 'privilege', object: { db: 'db', table: null }, privilege: 'USAGE', grantable: true },
    ]);
  });

  it('refuses a line it cannot read, quoting only its first words', () => {
    expect(() =>
      parseShowGrants(["GRANT SELECT ON `db`.* TO `u`@`%` IDENTIFIED BY PASSWORD '*AB' junk ("]),
    ).not.toThrow();
    expect(() => parseShowGrants(["GRANT 'x' junk ON"])).toThrow(
      /cannot read a SHOW GRANTS line \("GRANT 'x' junk \.\.\."\)/,
    );
  });
});

describe('planning the clone', () => {
  it('grants what is missing before revoking what is extra, quoting through the driver', () => {
    const want = parseShowGrants([
      'GRANT SELECT ON `db`.`orders` TO `app`@`%` WITH GRANT OPTION',
      'GRANT `reader` TO `app`@`%`',
    ]).grants;
    const have = parseShowGrants([
      'GRANT SELECT, DELETE ON `db`.`orders` TO `app_clone`@`%`',
      'GRANT SELECT ON `db`.`old` TO `app_clone`@`%`',
      'GRANT `writer` TO `app_clone`@`%`',
    ]).grants;

    const plan = planGrantChanges(mariadb, clone, want, have, q);

    expect(plan.statements).toEqual([
      "GRANT `reader` TO 'app_clone'@'%'",
      "GRANT SELECT ON `db`.`orders` TO 'app_clone'@'%' WITH GRANT OPTION",
      "REVOKE DELETE ON `db`.`orders` FROM 'app_clone'@'%'",
      "REVOKE SELECT ON `db`.`old` FROM 'app_clone'@'%'",
      "REVOKE `writer` FROM 'app_clone'@'%'",
    ]);
    expect(plan.changes).toContain('granted SELECT ON `db`.`orders` WITH GRANT OPTION');
  });

  it('takes away a grant option the original lacks, and names MySQL roles with their host', () => {
    const want = parseShowGrants([
      'GRANT SELECT ON `db`.* TO `app`@`%`',
      'GRANT `r`@`%` TO `app`@`%`',
    ]).grants;
    const have = parseShowGrants([
      'GRANT SELECT ON `db`.* TO `app_clone`@`%` WITH GRANT OPTION',
    ]).grants;

    const plan = planGrantChanges(mysql8, clone, want, have, q);

    expect(plan.statements).toEqual([
      "GRANT 'r'@'%' TO 'app_clone'@'%'",
      "GRANT SELECT ON `db`.* TO 'app_clone'@'%'",
      "REVOKE GRANT OPTION ON `db`.* FROM 'app_clone'@'%'",
    ]);
  });

  it('mirrors MySQL partial revokes and column privileges', () => {
    const want = parseShowGrants([
      'GRANT SELECT, INSERT ON *.* TO `app`@`%`',
      'REVOKE INSERT ON `mysql`.* FROM `app`@`%`',
      'GRANT SELECT (`a`, `b`) ON `db`.`t` TO `app`@`%`',
    ]).grants;
    const have = parseShowGrants([
      'GRANT SELECT, INSERT ON *.* TO `app_clone`@`%`',
      'GRANT SELECT (`a`) ON `db`.`t` TO `app_clone`@`%`',
    ]).grants;

    const plan = planGrantChanges(mysql8, clone, want, have, q);

    expect(plan.statements).toEqual([
      "GRANT SELECT (`b`) ON `db`.`t` TO 'app_clone'@'%'",
      "REVOKE INSERT ON `mysql`.* FROM 'app_clone'@'%'",
    ]);
  });

  it('plans nothing when the grants are equal', () => {
    const grants = parseShowGrants(MYSQL8_GRANTS).grants;
    expect(planGrantChanges(mysql8, clone, grants, grants, q)).toEqual({
      statements: [],
      changes: [],
    });
  });

  it('copies the TLS requirement and limits in one ALTER USER, quoting issuer and subject', () => {
    const base = {
      plugin: 'mysql_native_password',
      sslType: '',
      sslCipher: '',
      x509Issuer: '',
      x509Subject: '',
      maxQuestions: 0,
      maxUpdates: 0,
      maxConnections: 0,
      maxUserConnections: 0,
    };
    const want = {
      ...base,
      sslType: 'SPECIFIED',
      x509Issuer: "/CN=it's CA",
      x509Subject: '/CN=app',
      maxUserConnections: 5,
    };

    const plan = planAccountOptions(mysql8, clone, want, base, q);

    expect(plan.statements).toEqual([
      "ALTER USER 'app_clone'@'%' REQUIRE ISSUER '/CN=it\\'s CA' AND SUBJECT '/CN=app' WITH MAX_QUERIES_PER_HOUR 0 MAX_UPDATES_PER_HOUR 0 MAX_CONNECTIONS_PER_HOUR 0 MAX_USER_CONNECTIONS 5",
    ]);
    expect(plan.changes).toEqual([
      'set REQUIRE ISSUER',
      'set resource limits MAX_QUERIES_PER_HOUR 0 MAX_UPDATES_PER_HOUR 0 MAX_CONNECTIONS_PER_HOUR 0 MAX_USER_CONNECTIONS 5',
    ]);
    expect(planAccountOptions(mysql8, clone, want, want, q).statements).toEqual([]);
    expect(
      renderCreateUser(mysql8, clone, { ...base, plugin: 'caching_sha2_password' }, q),
    ).toMatch(
      /^CREATE USER 'app_clone'@'%' IDENTIFIED WITH caching_sha2_password BY \? REQUIRE NONE WITH /,
    );
    expect(renderCreateUser(mariadb, clone, { ...base, maxStatementTime: '0.500000' }, q)).toMatch(
      /^CREATE USER 'app_clone'@'%' IDENTIFIED BY PASSWORD \? REQUIRE NONE WITH .* MAX_STATEMENT_TIME 0.500000$/,
    );
  });

  it("computes mysql_native_password's verifier as PASSWORD() does", () => {
    // Known values: PASSWORD('') is not asked for; PASSWORD('password') and a non-ASCII one.
    expect(nativePasswordHash('password')).toBe('*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19');
    // PASSWORD('ünï') as MariaDB 10.11 answers it over a utf8mb4 connection: UTF-8 bytes hashed.
    expect(nativePasswordHash('ünï')).toBe('*09636711B49FF8246557756812DFE48B7EA7DA8C');
  });

  it.each([
    [
      "CREATE USER `app`@`%` IDENTIFIED BY PASSWORD '*186A1556BF10BBEB98235904B95B9CAFE89D6E8C'",
      ['mysql_native_password'],
    ],
    ['CREATE USER `app`@`%`', ['mysql_native_password']],
    [
      "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '7c786c222596437b'",
      ['mysql_old_password'],
    ],
    [
      "CREATE USER `app`@`%` IDENTIFIED VIA ed25519 USING 'ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJY'",
      ['ed25519'],
    ],
    [
      "CREATE USER `app`@`%` IDENTIFIED VIA mysql_native_password USING '*B69027D44F6E5EDC07F1AEAD1477967B16F28227' OR unix_socket REQUIRE SSL",
      ['mysql_native_password', 'unix_socket'],
    ],
    [
      "CREATE USER `x IDENTIFIED VIA ed25519`@`%` IDENTIFIED BY PASSWORD '*186A1556BF10BBEB98235904B95B9CAFE89D6E8C'",
      ['mysql_native_password'],
    ],
    ['CREATE USER `x IDENTIFIED VIA ed25519`@`%`', ['mysql_native_password']],
  ])('reads the authentication plugins of %s', (line, plugins) => {
    expect(authenticationPlugins([line])).toEqual(plugins);
  });

  it('finds global privileges a would-be clone holds beyond the original', () => {
    const original = parseShowGrants(['GRANT PROCESS ON *.* TO `app`@`%`']).grants;
    const candidate = parseShowGrants([
      'GRANT PROCESS, RELOAD ON *.* TO `app_clone`@`%` WITH GRANT OPTION',
      'GRANT SELECT ON `db`.* TO `app_clone`@`%`',
    ]).grants;
    expect(extraGlobalPrivileges(original, candidate)).toEqual([
      'PROCESS WITH GRANT OPTION',
      'RELOAD WITH GRANT OPTION',
    ]);
    expect(extraGlobalPrivileges(candidate, original)).toEqual([]);
  });
});

/** The grants `want` (the original's lines) and `have` (the clone's) as one planning pass. */
const planFor = (server: MysqlServer, want: string[], have: string[]) =>
  planGrantChanges(server, clone, parseShowGrants(want).grants, parseShowGrants(have).grants, q);

describe('mysql server versions, read exactly', () => {
  it.each([
    ['8.0.36', 'mysql', 8, 0, 36],
    ['8.0', 'mysql', 8, 0, 0],
    ['5.5.5-log', 'mysql', 5, 5, 5],
    ['10.5.5-MariaDB-log', 'mariadb', 10, 5, 5],
    ['8.0.mysql_aurora.3.05.2', 'mysql', 8, 0, 23],
    ['5.7.mysql_aurora.2.11.2', 'mysql', 5, 7, 12],
    // Aurora MySQL 1 (5.6-compatible): no floor kept for it, so no patch level assumed.
    ['5.6.mysql_aurora.1.22.2', 'mysql', 5, 6, 0],
  ])('reads %s as %s %i.%i.%i', (version, flavor, major, minor, patch) => {
    expect(parseServerVersion(version)).toEqual({ flavor, major, minor, patch, version });
  });

  it.each(['', 'MariaDB', 'v8.0.36', 'mysql-8.0.36'])(
    'refuses the version %j rather than guess what the server can do',
    (version) => {
      expect(() => parseServerVersion(version)).toThrow(DatabaseError);
    },
  );
});

describe('SHOW GRANTS, quoting and scopes', () => {
  it("keeps a database pattern's escaped wildcards, so the clone's grant is no wider", () => {
    // As MariaDB 10.11 prints GRANT ... ON `grants\_h%`.*: `_` escaped, `%` a wildcard.
    const want = ['GRANT SELECT ON `grants\\_h%`.* TO `app`@`%`'];
    expect(parseShowGrants(want).grants).toEqual([
      {
        kind: 'privilege',
        object: { db: 'grants\\_h%', table: null },
        privilege: 'SELECT',
        grantable: false,
      },
    ]);
    expect(planFor(mariadb, want, []).statements).toEqual([
      "GRANT SELECT ON `grants\\_h%`.* TO 'app_clone'@'%'",
    ]);
    // The unescaped pattern (any character for `_`) is another, wider grant: taken away.
    expect(planFor(mariadb, want, ['GRANT SELECT ON `grants_h%`.* TO `app_clone`@`%`'])).toEqual({
      statements: [
        "GRANT SELECT ON `grants\\_h%`.* TO 'app_clone'@'%'",
        "REVOKE SELECT ON `grants_h%`.* FROM 'app_clone'@'%'",
      ],
      changes: ['granted SELECT ON `grants\\_h%`.*', 'revoked SELECT ON `grants_h%`.*'],
    });
  });

  it('reads a database named `*` as that one database, never as every database', () => {
    // MariaDB 10.11: GRANT SELECT ON `*`.* prints the name quoted; *.* is bare.
    const one = parseShowGrants(['GRANT SELECT ON `*`.* TO `app`@`%`']).grants;
    expect(one).toEqual([
      {
        kind: 'privilege',
        object: { db: '*', table: null },
        privilege: 'SELECT',
        grantable: false,
      },
    ]);
    expect(planFor(mariadb, ['GRANT SELECT ON `*`.* TO `app`@`%`'], []).statements).toEqual([
      "GRANT SELECT ON `*`.* TO 'app_clone'@'%'",
    ]);
    expect(
      planFor(
        mariadb,
        ['GRANT SELECT ON `*`.* TO `app`@`%`'],
        ['GRANT SELECT ON *.* TO `app_clone`@`%`', 'GRANT SELECT ON `*`.* TO `app_clone`@`%`'],
      ).statements,
    ).toEqual(["REVOKE SELECT ON *.* FROM 'app_clone'@'%'"]);
  });

  it('reads the lines MariaDB prints under sql_mode ANSI_QUOTES as the same grants', () => {
    // Captured from MariaDB 10.11 with SET SESSION sql_mode = 'ANSI_QUOTES'; the adapter keeps
    // a server's ANSI_QUOTES (it only takes NO_BACKSLASH_ESCAPES out of the session).
    const ansi = [
      'GRANT "grants_h_none" TO "grants_h_a"@"%"',
      'GRANT USAGE ON *.* TO "grants_h_a"@"%" IDENTIFIED BY PASSWORD \'*B69027D44F6E5EDC07F1AEAD1477967B16F28227\' WITH GRANT OPTION',
      'GRANT SELECT, SELECT ("a"), UPDATE ("a") ON "grants_h_db"."t" TO "grants_h_a"@"%"',
      'GRANT EXECUTE ON PROCEDURE "rotation_test"."grants_h_p" TO "grants_h_a"@"%"',
    ];
    const backticks = [
      'GRANT `grants_h_none` TO `grants_h_a`@`%`',
      "GRANT USAGE ON *.* TO `grants_h_a`@`%` IDENTIFIED BY PASSWORD '*B69027D44F6E5EDC07F1AEAD1477967B16F28227' WITH GRANT OPTION",
      'GRANT SELECT, SELECT (`a`), UPDATE (`a`) ON `grants_h_db`.`t` TO `grants_h_a`@`%`',
      'GRANT EXECUTE ON PROCEDURE `rotation_test`.`grants_h_p` TO `grants_h_a`@`%`',
    ];
    const parsed = parseShowGrants(ansi);
    expect(parsed).toEqual(parseShowGrants(backticks));
    expect(parsed.grants).toContainEqual({
      kind: 'role',
      role: { name: 'grants_h_none' },
      admin: false,
    });
  });

  it('keeps the backslashes of double-quoted names under ANSI_QUOTES: an escaped wildcard stays escaped', () => {
    // MariaDB 10.11 under sql_mode ANSI_QUOTES, for GRANT SELECT ON `grants\_h%`.* and the
    // role `grants_h_r'q\`: a double-quoted name is an identifier, whose backslashes are its own.
    const ansi = parseShowGrants([
      'GRANT "grants_h_r\'q\\" TO "grants_h_d"@"%"',
      'GRANT SELECT ON "grants\\_h%".* TO "grants_h_d"@"%"',
    ]);
    expect(ansi.grants).toEqual([
      { kind: 'role', role: { name: "grants_h_r'q\\" }, admin: false },
      {
        kind: 'privilege',
        object: { db: 'grants\\_h%', table: null },
        privilege: 'SELECT',
        grantable: false,
      },
    ]);
    // Read as `grants_h%`, the clone would be granted SELECT on every database matching
    // grants?h% (`_` any one character), and the next pass would find nothing to change.
    expect(
      planFor(mariadb, ['GRANT SELECT ON "grants\\_h%".* TO "app"@"%"'], []).statements,
    ).toEqual(["GRANT SELECT ON `grants\\_h%`.* TO 'app_clone'@'%'"]);
  });

  it('reads quoted names and strings the way the server escapes them', () => {
    // MariaDB 10.11 prints REQUIRE SUBJECT '/CN=it''s a \\ test' for the subject /CN=it's a \ test.
    expect(tokenize("SUBJECT '/CN=it''s a \\\\ test' X")).toEqual([
      { t: 'word', v: 'SUBJECT' },
      { t: 'str', v: "/CN=it's a \\ test" },
      { t: 'word', v: 'X' },
    ]);
    expect(tokenize("'it\\'s' 'l1\\nl2\\r\\t\\0\\Z' '\\\\'")).toEqual([
      { t: 'str', v: "it's" },
      { t: 'str', v: 'l1\nl2\r\t\0\x1a' },
      { t: 'str', v: '\\' },
    ]);
    // A backslash in a backtick-quoted name is the name's own (database patterns use it).
    expect(tokenize('`a\\_b``c`.*')).toEqual([
      { t: 'id', v: 'a\\_b`c' },
      { t: 'sym', v: '.' },
      { t: 'sym', v: '*' },
    ]);
  });

  it.each([
    'GRANT SELECT ON `db',
    "GRANT USAGE ON *.* TO `app`@`%` REQUIRE SUBJECT '/CN=a",
    "GRANT USAGE ON *.* TO `app`@`%` REQUIRE SUBJECT '/CN=a\\",
  ])('refuses a line whose quote does not end: %s', (line) => {
    expect(() => tokenize(line)).toThrow(DatabaseError);
    expect(() => parseShowGrants([line])).toThrow(DatabaseError);
  });
});

describe('SHOW GRANTS, lines it must refuse', () => {
  it.each([
    '',
    'GRANT',
    'GRANT SELECT',
    'GRANT SELECT ON',
    'GRANT SELECT ON `db`.',
    'GRANT SELECT ON `db`.*',
    'GRANT SELECT ON `db`.* TO',
    'GRANT SELECT ON `db`.* `app`@`%`',
    'GRANT SELECT ON `db`.* TO `app`@',
    'GRANT SELECT (`a`',
    'GRANT SELECT (`a` `b`) ON `db`.`t` TO `app`@`%`',
    'GRANT SELECT (`a`, ) ON `db`.`t` TO `app`@`%`',
    'GRANT SELECT (`a` `b` `c`) ON `db`.`t` TO `app`@`%`',
    'GRANT SELECT (`a`; `b`) ON `db`.`t` TO `app`@`%`',
    'GRANT `r`',
    'GRANT `r` TO',
    'GRANT `r`, TO `app`@`%`',
    'REVOKE INSERT ON `mysql`.* FROM',
    'REVOKE INSERT ON `mysql`.* TO `app`@`%`',
    'SET DEFAULT ROLE',
    'SET ROLE `r` FOR `app`@`%`',
    'SET DEFAULT `r` FOR `app`@`%`',
  ])(
    'refuses the cut or malformed line %j as a DatabaseError, never drops or crashes on it',
    (line) => {
      expect(() => parseShowGrants([line])).toThrow(DatabaseError);
    },
  );

  it.each([
    'CREATE USER `app`@`%`',
    'DENY SELECT ON `db`.* TO `app`@`%`',
    'SELECT ON `db`.* TO `app`@`%`',
  ])('never reads %j, which is not a GRANT, REVOKE or SET DEFAULT ROLE, as a grant', (line) => {
    expect(() => parseShowGrants([line])).toThrow(DatabaseError);
  });

  it.each([
    'GRANT SELECT, 1X ON `db`.* TO `app`@`%`',
    'GRANT SELECT, $X ON `db`.* TO `app`@`%`',
    'GRANT SELECT, ON `db`.* TO `app`@`%`',
    'GRANT ON `db`.* TO `app`@`%`',
  ])('refuses %j: a privilege is written back unquoted, so only a plain keyword passes', (line) => {
    expect(() => parseShowGrants([line])).toThrow(DatabaseError);
  });
});

describe('SHOW GRANTS, objects, roles and default roles', () => {
  it('reads functions, procedures, packages and package bodies apart from tables, and grants them back so', () => {
    // MariaDB 10.11's lines (PACKAGE and PACKAGE BODY: sql_mode ORACLE objects).
    const want = [
      'GRANT EXECUTE ON FUNCTION `grants_h_db`.`f` TO `app`@`%`',
      'GRANT EXECUTE ON PROCEDURE `grants_h_db`.`p` TO `app`@`%`',
      'GRANT EXECUTE ON PACKAGE `grants_h_db`.`pkg` TO `app`@`%`',
      'GRANT EXECUTE ON PACKAGE BODY `grants_h_db`.`pkg` TO `app`@`%`',
      'GRANT SELECT ON TABLE `grants_h_db`.`t` TO `app`@`%`',
    ];
    expect(parseShowGrants(want).grants.map((g) => g.kind === 'privilege' && g.object)).toEqual([
      { routine: 'FUNCTION', db: 'grants_h_db', table: 'f' },
      { routine: 'PROCEDURE', db: 'grants_h_db', table: 'p' },
      { routine: 'PACKAGE', db: 'grants_h_db', table: 'pkg' },
      { routine: 'PACKAGE BODY', db: 'grants_h_db', table: 'pkg' },
      { db: 'grants_h_db', table: 't' },
    ]);
    expect(planFor(mariadb, want, []).statements).toEqual([
      "GRANT EXECUTE ON FUNCTION `grants_h_db`.`f` TO 'app_clone'@'%'",
      "GRANT EXECUTE ON PROCEDURE `grants_h_db`.`p` TO 'app_clone'@'%'",
      "GRANT EXECUTE ON PACKAGE `grants_h_db`.`pkg` TO 'app_clone'@'%'",
      "GRANT EXECUTE ON PACKAGE BODY `grants_h_db`.`pkg` TO 'app_clone'@'%'",
      "GRANT SELECT ON `grants_h_db`.`t` TO 'app_clone'@'%'",
    ]);
  });

  it('does not take EXECUTE on a procedure for EXECUTE on the function of the same name', () => {
    const plan = planFor(
      mariadb,
      ['GRANT EXECUTE ON FUNCTION `db`.`x` TO `app`@`%`'],
      ['GRANT EXECUTE ON PROCEDURE `db`.`x` TO `app_clone`@`%`'],
    );
    expect(plan).toEqual({
      statements: [
        "GRANT EXECUTE ON FUNCTION `db`.`x` TO 'app_clone'@'%'",
        "REVOKE EXECUTE ON PROCEDURE `db`.`x` FROM 'app_clone'@'%'",
      ],
      changes: ['granted EXECUTE ON FUNCTION `db`.`x`', 'revoked EXECUTE ON PROCEDURE `db`.`x`'],
    });
  });

  it("reads a MariaDB role's own grants, whose lines end at its bare name", () => {
    // SHOW GRANTS FOR grants_h_none on MariaDB 10.11.
    const parsed = parseShowGrants([
      'GRANT `grants_h_role` TO `grants_h_none` WITH ADMIN OPTION',
      'GRANT USAGE ON *.* TO `grants_h_none`',
    ]);
    expect(parsed).toEqual({
      grants: [{ kind: 'role', role: { name: 'grants_h_role' }, admin: true }],
      ignored: [],
    });
  });

  it('takes SET DEFAULT ROLE NONE for no default role, and a named one for that role', () => {
    expect(parseShowGrants(['SET DEFAULT ROLE NONE FOR `app`@`%`']).defaultRole).toBeUndefined();
    expect(parseShowGrants(['SET DEFAULT ROLE none FOR `app`@`%`']).defaultRole).toBeUndefined();
    expect(parseShowGrants(['SET DEFAULT ROLE `r1` FOR `app`@`%`']).defaultRole).toEqual({
      name: 'r1',
    });
  });
});

describe('planning the clone: exactly the original grants, no more', () => {
  it('grants what is missing one statement per object and grant option, multi-word privileges and columns included', () => {
    // MariaDB 10.11's lines for the original.
    const plan = planFor(
      mariadb,
      [
        'GRANT PROCESS ON *.* TO `app`@`%`',
        'GRANT ALL PRIVILEGES ON `grants\\_h\\_other`.* TO `app`@`%` WITH GRANT OPTION',
        'GRANT CREATE TEMPORARY TABLES, LOCK TABLES, SHOW VIEW ON `grants_h_db`.* TO `app`@`%`',
        'GRANT SELECT (`b`, `a`), INSERT (`a`) ON `grants_h_db`.`t` TO `app`@`%`',
        'GRANT SELECT (`we``ird`) ON `grants_h_db`.`t2` TO `app`@`%`',
      ],
      [],
    );
    expect(plan.statements).toEqual([
      "GRANT PROCESS ON *.* TO 'app_clone'@'%'",
      "GRANT ALL PRIVILEGES ON `grants\\_h\\_other`.* TO 'app_clone'@'%' WITH GRANT OPTION",
      "GRANT CREATE TEMPORARY TABLES, LOCK TABLES, SHOW VIEW ON `grants_h_db`.* TO 'app_clone'@'%'",
      "GRANT SELECT (`b`, `a`), INSERT (`a`) ON `grants_h_db`.`t` TO 'app_clone'@'%'",
      "GRANT SELECT (`we``ird`) ON `grants_h_db`.`t2` TO 'app_clone'@'%'",
    ]);
    expect(plan.changes.slice(0, 4)).toEqual([
      'granted PROCESS ON *.*',
      'granted ALL PRIVILEGES ON `grants\\_h\\_other`.* WITH GRANT OPTION',
      'granted CREATE TEMPORARY TABLES, LOCK TABLES, SHOW VIEW ON `grants_h_db`.*',
      'granted SELECT (`b`, `a`), INSERT (`a`) ON `grants_h_db`.`t`',
    ]);
  });

  it('grants a privilege held on the whole table and on a column as the table-wide one', () => {
    // MariaDB 10.11 prints both on one line.
    const want = ['GRANT SELECT, SELECT (`a`), UPDATE (`a`) ON `db`.`t` TO `app`@`%`'];
    expect(planFor(mariadb, want, []).statements).toEqual([
      "GRANT SELECT, UPDATE (`a`) ON `db`.`t` TO 'app_clone'@'%'",
    ]);
  });

  it('takes away a table-wide privilege when the original holds it on one column only', () => {
    expect(
      planFor(
        mariadb,
        ['GRANT SELECT (`a`) ON `db`.`t` TO `app`@`%`'],
        ['GRANT SELECT ON `db`.`t` TO `app_clone`@`%`'],
      ),
    ).toEqual({
      statements: [
        "GRANT SELECT (`a`) ON `db`.`t` TO 'app_clone'@'%'",
        "REVOKE SELECT ON `db`.`t` FROM 'app_clone'@'%'",
      ],
      changes: ['granted SELECT (`a`) ON `db`.`t`', 'revoked SELECT ON `db`.`t`'],
    });
  });

  it('revokes a column privilege the original lacks, even beside the table-wide one it holds', () => {
    expect(
      planFor(
        mariadb,
        ['GRANT SELECT ON `db`.`t` TO `app`@`%`'],
        ['GRANT SELECT, SELECT (`b`), UPDATE (`b`) ON `db`.`t` TO `app_clone`@`%`'],
      ),
    ).toEqual({
      statements: ["REVOKE SELECT (`b`), UPDATE (`b`) ON `db`.`t` FROM 'app_clone'@'%'"],
      changes: ['revoked SELECT (`b`), UPDATE (`b`) ON `db`.`t`'],
    });
  });

  it('takes the grant option off USAGE without revoking USAGE itself', () => {
    expect(
      planFor(
        mariadb,
        ['GRANT USAGE ON *.* TO `app`@`%`'],
        ['GRANT USAGE ON *.* TO `app_clone`@`%` WITH GRANT OPTION'],
      ),
    ).toEqual({
      statements: ["REVOKE GRANT OPTION ON *.* FROM 'app_clone'@'%'"],
      changes: ['revoked GRANT OPTION ON *.*'],
    });
  });

  it('does not take a MySQL role on another host for the same role', () => {
    expect(
      planFor(mysql8, ['GRANT `r`@`localhost` TO `app`@`%`'], ['GRANT `r`@`%` TO `app_clone`@`%`']),
    ).toEqual({
      statements: [
        "GRANT 'r'@'localhost' TO 'app_clone'@'%'",
        "REVOKE 'r'@'%' FROM 'app_clone'@'%'",
      ],
      changes: ['granted role `r`@`localhost`', 'revoked role `r`@`%`'],
    });
  });

  it('gives the admin option of a role only where the original holds it', () => {
    expect(planFor(mariadb, ['GRANT `r` TO `app`@`%` WITH ADMIN OPTION'], [])).toEqual({
      statements: ["GRANT `r` TO 'app_clone'@'%' WITH ADMIN OPTION"],
      changes: ['granted role `r` WITH ADMIN OPTION'],
    });
    // Held with an admin option the original lacks: revoked (no REVOKE ADMIN OPTION FOR on
    // MySQL), then granted back plain on the next pass.
    const first = planFor(
      mariadb,
      ['GRANT `r` TO `app`@`%`'],
      ['GRANT `r` TO `app_clone`@`%` WITH ADMIN OPTION'],
    );
    expect(first.statements).toContain("REVOKE `r` FROM 'app_clone'@'%'");
    expect(first.statements.join(';')).not.toContain('ADMIN OPTION');
    expect(first.changes).toContain('revoked role `r`');
    expect(planFor(mariadb, ['GRANT `r` TO `app`@`%`'], [])).toEqual({
      statements: ["GRANT `r` TO 'app_clone'@'%'"],
      changes: ['granted role `r`'],
    });
  });

  it('mirrors the partial revokes the original has and lifts those it lacks', () => {
    const plan = planFor(
      mysql8,
      ['GRANT SELECT, INSERT ON *.* TO `app`@`%`', 'REVOKE INSERT ON `mysql`.* FROM `app`@`%`'],
      [
        'GRANT SELECT, INSERT ON *.* TO `app_clone`@`%`',
        'REVOKE INSERT ON `sys`.* FROM `app_clone`@`%`',
      ],
    );
    expect(plan).toEqual({
      statements: [
        "REVOKE INSERT ON `mysql`.* FROM 'app_clone'@'%'",
        "GRANT INSERT ON `sys`.* TO 'app_clone'@'%'",
      ],
      changes: [
        'partially revoked INSERT ON `mysql`.*',
        'lifted the partial revoke of INSERT ON `sys`.*',
      ],
    });
  });

  it('names objects in the log as the server prints them, backticks doubled', () => {
    expect(planFor(mariadb, ['GRANT SELECT ON `we``ird`.* TO `app`@`%`'], []).changes).toEqual([
      'granted SELECT ON `we``ird`.*',
    ]);
  });
});

describe('account options of the clone', () => {
  const base: AccountOptions = {
    plugin: 'mysql_native_password',
    sslType: '',
    sslCipher: '',
    x509Issuer: '',
    x509Subject: '',
    maxQuestions: 0,
    maxUpdates: 0,
    maxConnections: 0,
    maxUserConnections: 0,
  };

  it.each([
    [{ sslType: '' }, 'REQUIRE NONE'],
    [{ sslType: 'ANY' }, 'REQUIRE SSL'],
    [{ sslType: 'any' }, 'REQUIRE SSL'],
    [{ sslType: 'X509' }, 'REQUIRE X509'],
    [
      { sslType: 'SPECIFIED', sslCipher: 'EDH-RSA-DES-CBC3-SHA' },
      "REQUIRE CIPHER 'EDH-RSA-DES-CBC3-SHA'",
    ],
    [{ sslType: 'SPECIFIED', x509Subject: '/CN=app' }, "REQUIRE SUBJECT '/CN=app'"],
    [
      {
        sslType: 'SPECIFIED',
        x509Issuer: '/CN=CA "q"',
        x509Subject: "/CN=it's",
        sslCipher: 'AES256-SHA',
      },
      "REQUIRE ISSUER '/CN=CA \\\"q\\\"' AND SUBJECT '/CN=it\\'s' AND CIPHER 'AES256-SHA'",
    ],
    [{ sslType: 'SPECIFIED' }, 'REQUIRE SSL'],
  ])('copies ssl_type %j as %s', (options, clause) => {
    expect(renderRequire({ ...base, ...options }, q)).toBe(clause);
  });

  it('refuses an ssl_type it does not know rather than drop the requirement', () => {
    expect(() => renderRequire({ ...base, sslType: 'TLS13' }, q)).toThrow(DatabaseError);
  });

  it.each([
    [{ sslType: 'ANY' }, 'set REQUIRE SSL'],
    [{ sslType: 'SPECIFIED', sslCipher: 'AES256-SHA' }, 'set REQUIRE CIPHER'],
    [{ sslType: 'SPECIFIED', x509Issuer: '/CN=CA' }, 'set REQUIRE ISSUER'],
    [{ sslType: 'SPECIFIED', x509Subject: '/CN=app' }, 'set REQUIRE SUBJECT'],
    [{ maxQuestions: 1 }, 'set resource limits'],
    [{ maxUpdates: 1 }, 'set resource limits'],
    [{ maxConnections: 1 }, 'set resource limits'],
    [{ maxUserConnections: 1 }, 'set resource limits'],
    [{ maxStatementTime: '0.500000' }, 'set resource limits'],
  ])('changes the clone when only %j differs', (options, change) => {
    const want = { ...base, maxStatementTime: '0.000000', ...options };
    const have = { ...base, maxStatementTime: '0.000000' };
    // A TLS clause differing in one field only: the clone starts from the same ssl_type.
    if (want.sslType === 'SPECIFIED') have.sslType = 'SPECIFIED';
    const plan = planAccountOptions(mariadb, clone, want, have, q);
    expect(plan.statements).toHaveLength(1);
    expect(plan.statements[0]).toMatch(/^ALTER USER 'app_clone'@'%' /);
    expect(plan.changes).toHaveLength(1);
    expect(plan.changes[0]?.startsWith(change)).toBe(true);
  });

  it('changes nothing when the options are the same as the server compares them', () => {
    const want = { ...base, sslType: 'any', maxStatementTime: '0' };
    const have = { ...base, sslType: 'ANY', maxStatementTime: '0.000000' };
    expect(planAccountOptions(mariadb, clone, want, have, q)).toEqual({
      statements: [],
      changes: [],
    });
  });

  it.each([
    ['maxQuestions', 'max_questions', -1],
    ['maxUpdates', 'max_updates', 1.5],
    ['maxConnections', 'max_connections', Number.NaN],
    ['maxUserConnections', 'max_user_connections', 2 ** 53],
  ])('refuses %s = %d, which is no count, naming the column %s', (field, column, value) => {
    expect(() => renderLimits({ ...base, [field]: value }, mysql8)).toThrow(DatabaseError);
    expect(() => renderLimits({ ...base, [field]: value }, mysql8)).toThrow(
      new RegExp(`\\b${column}\\b`),
    );
  });

  it('writes MAX_STATEMENT_TIME on MariaDB only, and only when it is known', () => {
    expect(renderLimits({ ...base, maxStatementTime: '1.500000' }, mysql8)).not.toContain(
      'MAX_STATEMENT_TIME',
    );
    expect(renderLimits(base, mariadb)).toBe(
      'WITH MAX_QUERIES_PER_HOUR 0 MAX_UPDATES_PER_HOUR 0 MAX_CONNECTIONS_PER_HOUR 0 MAX_USER_CONNECTIONS 0',
    );
    for (const time of ['0', '10.000000', '1.500000']) {
      expect(renderLimits({ ...base, maxStatementTime: time }, mariadb)).toMatch(
        new RegExp(` MAX_STATEMENT_TIME ${time.replace('.', '\\.')}$`),
      );
    }
  });

  it.each(['1.5; DROP USER x', 'x1', '1.', '-1', ' 1', ''])(
    'never pastes the max_statement_time %j into a statement',
    (time) => {
      expect(() => renderLimits({ ...base, maxStatementTime: time }, mariadb)).toThrow(
        DatabaseError,
      );
    },
  );

  it.each([
    ['caching_sha2_password', 'IDENTIFIED WITH caching_sha2_password BY ?'],
    ['sha256_password', 'IDENTIFIED WITH sha256_password BY ?'],
    ['mysql_native_password', 'IDENTIFIED WITH mysql_native_password BY ?'],
    ['auth_socket', 'IDENTIFIED BY ?'],
    ['authentication_ldap_sasl', 'IDENTIFIED BY ?'],
  ])('creates the MySQL clone of a %s account with a password: %s', (plugin, identified) => {
    expect(renderCreateUser(mysql8, clone, { ...base, plugin }, q)).toMatch(
      new RegExp(`^CREATE USER 'app_clone'@'%' ${identified.replace('?', '\\?')} REQUIRE NONE `),
    );
  });
});

describe('a would-be clone holding more than the original', () => {
  it('ignores roles, grants on databases, and a grant option the original holds too', () => {
    const original = parseShowGrants([
      'GRANT PROCESS ON *.* TO `app`@`%` WITH GRANT OPTION',
      'GRANT `r` TO `app`@`%`',
    ]).grants;
    const candidate = parseShowGrants([
      'GRANT `r2` TO `app_clone`@`%` WITH ADMIN OPTION',
      'GRANT PROCESS ON *.* TO `app_clone`@`%` WITH GRANT OPTION',
      'GRANT ALL PRIVILEGES ON `db`.* TO `app_clone`@`%` WITH GRANT OPTION',
    ]).grants;
    expect(extraGlobalPrivileges(original, candidate)).toEqual([]);
  });

  it('names a global privilege the original lacks, with or without a grant option', () => {
    const original = parseShowGrants(['GRANT PROCESS ON *.* TO `app`@`%`']).grants;
    const candidate = parseShowGrants(['GRANT PROCESS, RELOAD ON *.* TO `app_clone`@`%`']).grants;
    expect(extraGlobalPrivileges(original, candidate)).toEqual(['RELOAD']);
  });
});

describe('how a MariaDB account authenticates', () => {
  it.each([
    [
      "CREATE USER `app`@`%` IDENTIFIED VIA mysql_native_password USING PASSWORD('x') OR unix_socket",
      ['mysql_native_password', 'unix_socket'],
    ],
    [
      "CREATE USER `app`@`%` IDENTIFIED WITH ed25519 AS 'ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJY' OR unix_socket",
      ['ed25519', 'unix_socket'],
    ],
    [
      // MariaDB 10.11, SHOW GRANTS FOR grants_h_c@localhost
      "GRANT USAGE ON *.* TO `grants_h_c`@`localhost` IDENTIFIED VIA mysql_native_password USING '*B69027D44F6E5EDC07F1AEAD1477967B16F28227' OR unix_socket",
      ['mysql_native_password', 'unix_socket'],
    ],
    [
      // Cut short inside PASSWORD(...): read to the end of the line, never past it.
      "CREATE USER `app`@`%` IDENTIFIED VIA mysql_native_password USING PASSWORD('x'",
      ['mysql_native_password'],
    ],
  ])('lists every method of %s', (line, plugins) => {
    expect(authenticationPlugins(['GRANT `r` TO `app`@`%`', line])).toEqual(plugins);
  });

  it.each([
    'CREATE USER `app`@`%` IDENTIFIED BY PASSWORD',
    'CREATE USER `app`@`%` IDENTIFIED BY PASSWORD REQUIRE NONE',
    'CREATE USER `app`@`%` IDENTIFIED VIA ed25519 USING',
    'CREATE USER `app`@`%` IDENTIFIED VIA ed25519 USING OR unix_socket',
    "CREATE USER `app`@`%` IDENTIFIED AS 'x'",
    'CREATE USER `app`@`%` IDENTIFIED VIA',
  ])('refuses %j rather than guess how the account signs in', (line) => {
    expect(() => authenticationPlugins([line])).toThrow(DatabaseError);
  });
});
