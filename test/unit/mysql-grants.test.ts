import mysql from 'mysql2';
import { describe, expect, it } from 'vitest';
import {
  authenticationPlugins,
  capabilitiesOf,
  extraGlobalPrivileges,
  nativePasswordHash,
  parseServerVersion,
  parseShowGrants,
  planAccountOptions,
  planGrantChanges,
  renderCreateUser,
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
    expect(nativePasswordHash('ünï')).toMatch(/^\*[0-9A-F]{40}$/);
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
