import mysql from 'mysql2';
import { vi } from 'vitest';
import type { MysqlClient, MysqlDriver } from '../../shared/databases/mysql.js';

/**
 * A scripted mysql2 over a small catalogue of accounts, answering the adapter's statements the
 * way MySQL 5.7 / 8.x or MariaDB answers them (row shapes, error numbers and SQL states from the
 * MySQL 8.0 / 8.4 and MariaDB references), for the servers this machine cannot run (MySQL 8:
 * dual passwords, mysql.default_roles, caching_sha2_password). Every statement is recorded as
 * mysql2 formats it (the real escaping); statements the catalogue does not model answer with an
 * OK packet, and a test changes the catalogue in `after` hooks where a statement must take effect.
 */

/** An account as mysql.user (and SHOW GRANTS / SHOW CREATE USER) describe it. */
export interface FakeAccount {
  user: string;
  host: string;
  plugin?: string;
  sslType?: string;
  sslCipher?: string;
  x509Issuer?: string;
  x509Subject?: string;
  maxQuestions?: number;
  maxUpdates?: number;
  maxConnections?: number;
  maxUserConnections?: number;
  /** MariaDB: max_statement_time as CAST(... AS CHAR) prints it. */
  maxStatementTime?: string;
  /** SHOW GRANTS lines; default: GRANT USAGE ON *.* TO `user`@`host`. */
  grants?: string[];
  /** MySQL 8: mysql.default_roles rows of this account. */
  defaultRoles?: { name: string; host: string }[];
  /** MariaDB: the line SHOW CREATE USER prints. */
  createUser?: string;
  /** MariaDB: a role, kept in mysql.user with is_role = 'Y' and an empty host. */
  isRole?: boolean;
}

/** An error as mysql2 builds it from a server ERR packet. */
export const serverError = (code: string, errno: number, sqlState: string, message: string) =>
  Object.assign(new Error(message), { code, errno, sqlState, sqlMessage: message });

/** mysql2's own error when a statement outlives its `timeout` (lib/commands/query.js). */
export const queryTimeout = () =>
  Object.assign(new Error('Query inactivity timeout'), {
    code: 'PROTOCOL_SEQUENCE_TIMEOUT',
    errorno: 'PROTOCOL_SEQUENCE_TIMEOUT',
    syscall: 'query',
  });

/** ER_SPECIFIC_ACCESS_DENIED_ERROR (1227, 42000), as MySQL 8 words it for a dynamic privilege. */
export const specificAccessDenied = (privilege: string) =>
  serverError(
    'ER_SPECIFIC_ACCESS_DENIED_ERROR',
    1227,
    '42000',
    `Access denied; you need (at least one of) the ${privilege} privilege(s) for this operation`,
  );

const badField = (column: string, clause: string) =>
  serverError('ER_BAD_FIELD_ERROR', 1054, '42S22', `Unknown column '${column}' in '${clause}'`);

export interface FakeServerOptions {
  version: string;
  /** CURRENT_USER() as the server prints it: user@host. */
  account?: string;
  sqlMode?: string;
  accounts?: FakeAccount[];
}

const literal = "'(?:[^'\\\\]|\\\\.)*'";
const MYSQL_USER_QUERIES = [
  new RegExp(
    `^SELECT Host AS host FROM mysql\\.user WHERE User = ${literal}(?: AND is_role <> 'Y')? ORDER BY Host$`,
  ),
  new RegExp(
    `^SELECT 1 FROM mysql\\.user WHERE User = ${literal}(?: AND Host = ${literal})?(?: AND is_role <> 'Y')?$`,
  ),
  new RegExp(
    `^SELECT plugin, CONVERT\\(ssl_type USING utf8mb4\\) AS sslType, CONVERT\\(ssl_cipher USING utf8mb4\\) AS sslCipher, CONVERT\\(x509_issuer USING utf8mb4\\) AS x509Issuer, CONVERT\\(x509_subject USING utf8mb4\\) AS x509Subject, max_questions AS maxQuestions, max_updates AS maxUpdates, max_connections AS maxConnections, max_user_connections AS maxUserConnections (?:, CAST\\(max_statement_time AS CHAR\\) AS maxStatementTime )?FROM mysql\\.user WHERE User = ${literal} AND Host = ${literal}$`,
  ),
];

const okPacket = { fieldCount: 0, affectedRows: 0, insertId: 0, info: '', warningStatus: 0 };

export function fakeMysqlServer(options: FakeServerOptions) {
  const mariadb = /mariadb/i.test(options.version);
  const major = Number(/^(\d+)/.exec(options.version)?.[1] ?? 0);
  const accounts: FakeAccount[] = [...(options.accounts ?? [])];
  const statements: string[] = [];
  const timeouts: (number | undefined)[] = [];
  const failures: { match: RegExp; error: Error | ((sql: string) => Error) }[] = [];
  const afters: { match: RegExp; run: (sql: string) => void }[] = [];
  const calls = { end: 0, destroy: 0 };
  /** How client.end() settles: at once, never, with an error, or after `ms` of (fake) time. */
  let ending: 'resolve' | 'never' | 'reject' | { ms: number } = 'resolve';

  const find = (user: unknown, host: unknown) =>
    accounts.find((a) => a.user === user && a.host.toLowerCase() === String(host).toLowerCase());
  const grantsOf = (a: FakeAccount) =>
    a.grants ?? [`GRANT USAGE ON *.* TO \`${a.user}\`@\`${a.host}\``];
  const signedIn = () => {
    const text = options.account ?? 'app@%';
    const at = text.lastIndexOf('@');
    return { user: text.slice(0, at), host: text.slice(at + 1) };
  };

  function answer(sql: string, values: unknown[]): unknown {
    if (sql.startsWith('SELECT VERSION()')) {
      return [
        {
          version: options.version,
          account: options.account ?? 'app@%',
          sqlMode: options.sqlMode ?? 'STRICT_TRANS_TABLES',
        },
      ];
    }
    if (sql.startsWith('SET SESSION')) {
      // MySQL has max_execution_time, not MariaDB's max_statement_time.
      if (!mariadb && sql.includes('max_statement_time')) {
        throw serverError(
          'ER_UNKNOWN_SYSTEM_VARIABLE',
          1193,
          'HY000',
          "Unknown system variable 'max_statement_time'",
        );
      }
      return okPacket;
    }
    if (sql.includes('FROM mysql.user')) {
      // Only the statements the adapter sends parse; anything else is a syntax error.
      const flat = sql.replace(/\s+/g, ' ');
      if (!MYSQL_USER_QUERIES.some((shape) => shape.test(flat))) {
        throw serverError(
          'ER_PARSE_ERROR',
          1064,
          '42000',
          `You have an error in your SQL syntax; check the manual that corresponds to your server version for the right syntax to use near '${flat.slice(0, 80)}' at line 1`,
        );
      }
      if (!mariadb && sql.includes('is_role')) throw badField('is_role', 'where clause');
      if (!mariadb && sql.includes('max_statement_time')) {
        throw badField('max_statement_time', 'field list');
      }
      const rows = accounts.filter(
        (a) =>
          a.user === values[0] &&
          (values.length < 2 || a.host.toLowerCase() === String(values[1]).toLowerCase()) &&
          !(a.isRole && sql.includes("is_role <> 'Y'")),
      );
      if (sql.startsWith('SELECT Host AS host')) {
        return rows.map((a) => ({ host: a.host })).sort((x, y) => (x.host < y.host ? -1 : 1));
      }
      if (sql.startsWith('SELECT 1')) return rows.map(() => ({ 1: 1 }));
      return rows.map((a) => ({
        // The default authentication plugin: caching_sha2_password from MySQL 8.0 on.
        plugin:
          a.plugin ?? (mariadb || major < 8 ? 'mysql_native_password' : 'caching_sha2_password'),
        sslType: a.sslType ?? '',
        sslCipher: a.sslCipher ?? '',
        x509Issuer: a.x509Issuer ?? '',
        x509Subject: a.x509Subject ?? '',
        maxQuestions: a.maxQuestions ?? 0,
        maxUpdates: a.maxUpdates ?? 0,
        maxConnections: a.maxConnections ?? 0,
        maxUserConnections: a.maxUserConnections ?? 0,
        ...(sql.includes('AS maxStatementTime')
          ? { maxStatementTime: a.maxStatementTime ?? '0.000000' }
          : {}),
      }));
    }
    if (sql.includes('mysql.default_roles')) {
      if (mariadb || major < 8) {
        throw serverError(
          'ER_NO_SUCH_TABLE',
          1146,
          '42S02',
          "Table 'mysql.default_roles' doesn't exist",
        );
      }
      const roles = find(values[0], values[1])?.defaultRoles ?? [];
      return [...roles]
        .sort((x, y) => (x.name + x.host < y.name + y.host ? -1 : 1))
        .map((r) => ({ name: r.name, host: r.host }));
    }
    if (sql.startsWith('SHOW GRANTS FOR') || sql.startsWith('SHOW CREATE USER')) {
      const own = sql.endsWith('CURRENT_USER()');
      const { user, host } = own ? signedIn() : { user: values[0], host: values[1] };
      const account = find(user, host);
      if (!account) {
        throw serverError(
          'ER_NONEXISTING_GRANT',
          1141,
          '42000',
          `There is no such grant defined for user '${user}' on host '${host}'`,
        );
      }
      if (sql.startsWith('SHOW CREATE USER')) {
        return [
          {
            [`CREATE USER for ${user}@${host}`]:
              account.createUser ??
              `CREATE USER \`${user}\`@\`${host}\` IDENTIFIED BY PASSWORD '*B69027D44F6E5EDC07F1AEAD1477967B16F28227'`,
          },
        ];
      }
      return grantsOf(account).map((line) => ({ [`Grants for ${user}@${host}`]: line }));
    }
    const create = /^CREATE USER '([^']*)'@'([^']*)'(?: IDENTIFIED WITH (\w+))?/.exec(sql);
    if (create) {
      const [, user = '', host = '', plugin] = create;
      // MySQL 5.7 has no caching_sha2_password (8.0.4+).
      if (plugin === 'caching_sha2_password' && !mariadb && major < 8) {
        throw serverError(
          'ER_PLUGIN_IS_NOT_LOADED',
          1524,
          'HY000',
          `Plugin '${plugin}' is not loaded`,
        );
      }
      if (find(user, host)) {
        throw serverError(
          'ER_CANNOT_USER',
          1396,
          'HY000',
          `Operation CREATE USER failed for '${user}'@'${host}'`,
        );
      }
      accounts.push({ user, host, ...(plugin ? { plugin } : {}) });
      return okPacket;
    }
    return okPacket;
  }

  const client: MysqlClient = {
    async query({ sql, values, timeout }) {
      const text = mysql.format(sql, (values ?? []) as never[]);
      statements.push(text);
      timeouts.push(timeout);
      const failure = failures.find((f) => f.match.test(text));
      if (failure) {
        const error = typeof failure.error === 'function' ? failure.error(text) : failure.error;
        // mysql2 attaches the statement as sent, values and all, to a server error.
        if ('errno' in error && !('sql' in error)) Object.assign(error, { sql: text });
        throw error;
      }
      const rows = answer(text, values ?? []);
      for (const after of afters) if (after.match.test(text)) after.run(text);
      return [rows, undefined];
    },
    end() {
      calls.end += 1;
      if (ending === 'resolve') return Promise.resolve();
      if (ending === 'reject') {
        return Promise.reject(
          new Error("Can't add new command when connection is in closed state"),
        );
      }
      if (ending === 'never') return new Promise<void>(() => {});
      const { ms } = ending;
      return new Promise<void>((resolve) => setTimeout(resolve, ms));
    },
    destroy() {
      calls.destroy += 1;
    },
    on: () => client,
  };
  const driver: MysqlDriver = {
    createConnection: vi.fn(async () => client),
    escape: (value) => mysql.escape(value as string),
    escapeId: (value, forbidQualified) => mysql.escapeId(value, forbidQualified),
  };
  return {
    driver,
    load: vi.fn(async () => driver),
    client,
    accounts,
    statements,
    timeouts,
    failures,
    calls,
    /** Runs `run` after each statement matching `match` succeeded. */
    after(match: RegExp, run: (sql: string) => void) {
      afters.push({ match, run });
    },
    endWith(how: typeof ending) {
      ending = how;
    },
    account(user: string, host: string): FakeAccount {
      const account = find(user, host);
      if (!account) throw new Error(`no account '${user}'@'${host}' in the fake`);
      return account;
    },
    /** The configs createConnection was called with. */
    configs() {
      return vi.mocked(driver.createConnection).mock.calls.map(([config]) => config);
    },
  };
}
