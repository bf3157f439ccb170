import { describe, expect, it } from 'vitest';
import { DatabaseError } from '../../shared/common/errors.js';
import { createMysql } from '../../shared/databases/mysql.js';
import {
  type FakeServerOptions,
  fakeMysqlServer,
  serverError,
} from '../support/fake-mysql-server.js';

/**
 * A syntax error quotes the statement as sent from the failing token on: MySQL 80 characters
 * (`near '<80>' at line 1`), MariaDB 77 and "..." (seen on MariaDB 10.11.19, with the adapter's
 * own statements made to fail: `near 'USERX 'rv_o_clone'@'%' IDENTIFIED BY PASSWORD
 * '*A6DD0987F0CFEF7BB5C6FE8547FC6...' at line 1`). Whatever the cut, no part of a password,
 * nor of the hash sent for it, may reach an error.
 */
const login = {
  host: 'db.internal',
  port: 3306,
  user: 'admin',
  password: 'm4ster-pw',
  database: '',
  tls: 'disable' as const,
};

const parseError = (quoted: string) =>
  serverError(
    'ER_PARSE_ERROR',
    1064,
    '42000',
    `You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near '${quoted}' at line 1`,
  );

async function signIn(server: FakeServerOptions) {
  const fake = fakeMysqlServer({ account: 'admin@%', ...server });
  const db = createMysql({ env: {}, driver: fake.load });
  const session = await db.connect(login);
  fake.statements.length = 0;
  return { fake, db, session };
}

/** The texts of a failure a log line or a caller may show. */
const texts = (error: Error) => [
  error.message,
  String(error.stack),
  (error.cause as Error).message,
  String((error.cause as Error).stack),
  String((error.cause as { sqlMessage?: unknown }).sqlMessage),
  // mysql2's copy of the statement as sent (the fake attaches it too): dropped.
  String((error.cause as { sql?: unknown }).sql),
];

describe('mysql syntax errors that quote a statement carrying a password', () => {
  it("on MySQL 8 a password containing ' at line shows none of itself when the quote is cut inside it", async () => {
    const { fake, db, session } = await signIn({
      version: '8.0.36',
      accounts: [{ user: 'app', host: '%' }],
    });
    // A password may hold any character: here the text that ends the server's quote.
    const password = `Lp-' at line 9 ${'x9Q'.repeat(30)}`;
    fake.failures.push({
      match: /IDENTIFIED BY/,
      error: (text) => {
        const from = text.indexOf("'Lp-") - 20;
        return parseError(text.slice(from, from + 80));
      },
    });
    const error = (await db
      .setPassword(session, 'app', password)
      .catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(DatabaseError);
    for (const text of texts(error)) {
      expect(text).not.toContain('x9Qx9Q');
      expect(text).not.toContain('at line 9');
    }
  });

  it('on MySQL 8 a quote cut just after "..." inside the password shows none of it either', async () => {
    const { fake, db, session } = await signIn({
      version: '8.0.36',
      accounts: [{ user: 'app', host: '%' }],
    });
    // The quote (20 characters before the literal, its quote mark, 59 of the password) ends
    // with the password's own "...", which MySQL does not add.
    const password = `${'k'.repeat(56)}...${'z'.repeat(30)}`;
    fake.failures.push({
      match: /IDENTIFIED BY/,
      error: (text) => {
        const from = text.indexOf(`'${password.slice(0, 4)}`) - 20;
        return parseError(text.slice(from, from + 80));
      },
    });
    const error = (await db
      .setPassword(session, 'app', password)
      .catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(DatabaseError);
    for (const text of texts(error).slice(0, 3)) {
      expect(text).toMatch(/IDENTIFIED BY '\*\*\*' at line 1/);
    }
  });

  it('a server message that is only the quote, cut inside the password, shows none of it', async () => {
    const { fake, db, session } = await signIn({
      version: '8.0.36',
      accounts: [{ user: 'app', host: '%' }],
    });
    // A server (or a proxy) may answer with the bare quote: nothing before "near '".
    const password = `Lp-${'x9Q'.repeat(30)}`;
    fake.failures.push({
      match: /IDENTIFIED BY/,
      error: (text) => {
        const from = text.indexOf("'Lp-") - 20;
        return serverError(
          'ER_PARSE_ERROR',
          1064,
          '42000',
          `near '${text.slice(from, from + 80)}' at line 1`,
        );
      },
    });
    const error = (await db
      .setPassword(session, 'app', password)
      .catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(DatabaseError);
    for (const text of texts(error)) expect(text).not.toContain('Lp-x');
  });

  it('on MySQL 8 a password with a character outside the BMP shows none of itself in a syntax error', async () => {
    const { fake, db, session } = await signIn({
      version: '8.0.36',
      accounts: [{ user: 'app', host: '%' }],
    });
    // The server builds error messages in utf8mb3: a 4-byte character of the statement comes
    // back as "?" (MariaDB 10.11.19, the ALTER USER made to fail: near 'USERX 'rv_u'@'%'
    // IDENTIFIED BY 'Ab?cdefgh'' at line 1), so the quoted literal is not the password.
    const password = `Lp-\u{1F600}-${'x9Q'.repeat(5)}`;
    fake.failures.push({
      match: /IDENTIFIED BY/,
      error: (text) => {
        const from = text.indexOf("'Lp-") - 20;
        return parseError(text.slice(from, from + 80).replace(/[\u{10000}-\u{10FFFF}]/gu, '?'));
      },
    });
    const error = (await db
      .setPassword(session, 'app', password)
      .catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(DatabaseError);
    for (const text of texts(error)) expect(text).not.toContain('x9Qx9Q');
  });

  it("on MariaDB a failed CREATE USER of the clone shows none of the throw-away password's hash", async () => {
    const { fake, db, session } = await signIn({
      version: '10.11.6-MariaDB',
      accounts: [{ user: 'app', host: '%' }],
    });
    // As MariaDB 10.11 answered the adapter's CREATE USER made to fail at its second word.
    fake.failures.push({
      match: /^CREATE USER/,
      error: (text) =>
        parseError(`${text.slice(text.indexOf('USER'), text.indexOf('USER') + 77)}...`),
    });
    const error = (await db
      .createUserLike(session, 'app_clone', 'N3w-pw', 'app')
      .catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(DatabaseError);
    const sent = /IDENTIFIED BY PASSWORD '(\*[0-9A-F]{40})'/.exec(
      fake.statements.find((s) => s.startsWith('CREATE USER')) ?? '',
    )?.[1];
    expect(sent).toBeDefined();
    for (const text of texts(error)) expect(text).not.toContain((sent as string).slice(0, 8));
  });
});
