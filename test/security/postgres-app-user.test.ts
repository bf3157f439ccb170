/**
 * Actor: the application's database user. It owns its database (so its `public` schema), can
 * set defaults for itself and that database (`ALTER ROLE … SET`, `ALTER DATABASE … SET`), and
 * may hold CREATEROLE. What it must never gain: code run with the master's privileges (or any
 * code in the rotation's sessions at all), new attributes or memberships, or the password of a
 * role it prepared (a look-alike `<name>_clone`, a name the server truncates into another).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { InvalidSecretError } from '../../shared/common/errors.js';
import { createPostgres } from '../../shared/databases/postgres.js';
import type { Login } from '../../shared/databases/types.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';
import { singleUser } from '../../shared/strategies/single-user.js';
import { PgAdmin, randomName, signsIn } from '../support/pg-admin.js';
import { RotationHarness } from '../support/rotation-harness.js';
import { provided } from '../support/servers.js';

/** Every call records who ran it; a run as anyone but the app also tries to escalate the app. */
const plants = (app: string, dbname: string) => {
  const id = `"${app.replace(/"/g, '""')}"`;
  const literal = `'${app.replace(/'/g, "''")}'`;
  return `
CREATE TABLE public.ran_as (plant text, who text, session_who text);
GRANT INSERT, SELECT ON public.ran_as TO PUBLIC;
CREATE SEQUENCE public.ran_as_other;
GRANT USAGE, UPDATE ON SEQUENCE public.ran_as_other TO PUBLIC;
CREATE FUNCTION public.record(plant text) RETURNS boolean LANGUAGE plpgsql AS $plant$
BEGIN
  INSERT INTO public.ran_as VALUES (plant, current_user, session_user);
  IF current_user OPERATOR(pg_catalog.<>) ${literal} THEN
    -- nextval survives the caller's rollback
    PERFORM pg_catalog.nextval('public.ran_as_other');
    BEGIN EXECUTE 'ALTER ROLE ${id} CREATEROLE CREATEDB'; EXCEPTION WHEN OTHERS THEN NULL; END;
    BEGIN EXECUTE 'GRANT pg_execute_server_program TO ${id}'; EXCEPTION WHEN OTHERS THEN NULL; END;
  END IF;
  RETURN true;
END $plant$;
GRANT EXECUTE ON FUNCTION public.record(text) TO PUBLIC;
-- An exact match for hashtext()'s integer, which pg_catalog lacks (it has the bigint one).
CREATE FUNCTION public.pg_advisory_xact_lock(integer) RETURNS void LANGUAGE plpgsql AS $plant$
BEGIN PERFORM public.record('pg_advisory_xact_lock(integer)');
      PERFORM pg_catalog.pg_advisory_xact_lock($1::pg_catalog.int8); END $plant$;
CREATE FUNCTION public.hashtext(text) RETURNS integer LANGUAGE plpgsql AS $plant$
BEGIN PERFORM public.record('hashtext'); RETURN pg_catalog.hashtext($1); END $plant$;
CREATE FUNCTION public.current_setting(text) RETURNS text LANGUAGE plpgsql AS $plant$
BEGIN PERFORM public.record('current_setting'); RETURN pg_catalog.current_setting($1); END $plant$;
CREATE FUNCTION public.pg_has_role(name, name, text) RETURNS boolean LANGUAGE plpgsql AS $plant$
BEGIN PERFORM public.record('pg_has_role(name)'); RETURN pg_catalog.pg_has_role($1, $2, $3); END $plant$;
CREATE FUNCTION public.pg_has_role(oid, oid, text) RETURNS boolean LANGUAGE plpgsql AS $plant$
BEGIN PERFORM public.record('pg_has_role(oid)'); RETURN pg_catalog.pg_has_role($1, $2, $3); END $plant$;
CREATE FUNCTION public.name_eq(name, name) RETURNS boolean LANGUAGE plpgsql AS $plant$
BEGIN PERFORM public.record('=(name,name)'); RETURN pg_catalog.nameeq($1, $2); END $plant$;
CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = name, FUNCTION = public.name_eq);
CREATE VIEW public.pg_roles AS SELECT * FROM pg_catalog.pg_roles WHERE public.record('pg_roles view');
CREATE DOMAIN public.text AS pg_catalog.text CHECK (public.record('text domain'));
-- Put its own schema before pg_catalog for every session in its database, and in its own.
ALTER DATABASE ${dbname} SET search_path = public, pg_catalog;
ALTER ROLE ${id} SET search_path = public, pg_catalog;
`;
};

describe('the application database user against PostgreSQL rotation', () => {
  let admin: PgAdmin;
  const harness = new RotationHarness();
  const users: string[] = [];
  const databases: string[] = [];

  beforeAll(async () => {
    admin = await PgAdmin.connect(provided('pgAdminUrl'));
    await harness.start();
  });

  afterAll(async () => {
    for (const name of databases) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.dropUsers(users);
    await admin.close();
    await harness.stop();
  });

  /** A superuser session in `dbname` that the database's settings cannot redirect. */
  async function inspect<T>(dbname: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({
      host: admin.host,
      port: admin.port,
      user: admin.username,
      password: admin.password,
      database: dbname,
      options: '-c search_path=pg_catalog,pg_temp -c role=none',
    });
    await client.connect();
    try {
      return await use(client);
    } finally {
      await client.end();
    }
  }

  /** The app user, owner of its own database, with every plant in place. */
  async function appWithPlants() {
    const name = randomName('sec_owner');
    const password = `initial-${randomName('pw')}`;
    await admin.createUser(name, password);
    users.push(`${name}_clone`, name);
    const dbname = randomName('sec_appdb');
    await admin.query(`CREATE DATABASE ${dbname} OWNER ${admin.ident(name)}`);
    databases.push(dbname);
    const asApp = new pg.Client({
      host: admin.host,
      port: admin.port,
      user: name,
      password,
      database: dbname,
    });
    await asApp.connect();
    await asApp.query(plants(name, dbname));
    await asApp.end();
    return { name, password, dbname };
  }

  async function aftermath(name: string, dbname: string) {
    const ran = await inspect(dbname, async (client) => {
      const rows = await client.query('SELECT plant, who FROM public.ran_as');
      const other = await client.query('SELECT is_called FROM public.ran_as_other');
      return { rows: rows.rows, ranAsSomeoneElse: other.rows[0].is_called as boolean };
    });
    const role = await admin.query(
      `SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls,
              (SELECT count(*)::int FROM pg_auth_members m WHERE m.member = r.oid) AS memberships
         FROM pg_roles r WHERE r.rolname = $1`,
      [name],
    );
    return { ...ran, role: role.rows[0] };
  }

  const unchangedApp = {
    rolsuper: false,
    rolcreaterole: false,
    rolcreatedb: false,
    rolreplication: false,
    rolbypassrls: false,
    memberships: 0,
  };

  it.each([
    ['a master secret that names the application database', true],
    ['a master secret that names no database', false],
  ])('alternating users never run its planted code: %s', async (_, masterNamesAppDb) => {
    // Prepare
    const { name, password, dbname } = await appWithPlants();
    const masterarn = harness.masterSecret(
      admin.masterSecretValue(masterNamesAppDb ? { dbname } : {}),
    );
    const secretId = harness.appSecret(admin.secretValue(name, password, { dbname, masterarn }));
    const handler = harness.handler(alternatingUsers(createPostgres()));

    // Act: the first rotation creates the clone, the second verifies it and changes a password.
    const first = await harness.rotate(handler, secretId);
    const second = await harness.rotate(handler, secretId);

    // Assess
    expect(first.completed, String(first.error)).toBe(true);
    expect(second.completed, String(second.error)).toBe(true);
    const after = await aftermath(name, dbname);
    expect(after.rows.filter((row) => row.who !== name)).toEqual([]);
    expect(after.ranAsSomeoneElse).toBe(false);
    expect(after.rows).toEqual([]);
    expect(after.role).toEqual(unchangedApp);
    const clone = await aftermath(`${name}_clone`, dbname);
    expect(clone.role).toEqual({ ...unchangedApp, memberships: 1 });
    const current = harness.secret(secretId);
    expect(
      await signsIn({ host: admin.host, port: admin.port, user: name, password: current.password }),
    ).toBe(true);
  });

  it('single user never runs its planted code in the session that changes its password', async () => {
    // Prepare
    const { name, password, dbname } = await appWithPlants();
    const secretId = harness.appSecret(admin.secretValue(name, password, { dbname }));

    // Act
    const result = await harness.rotate(harness.handler(singleUser(createPostgres())), secretId);

    // Assess
    expect(result.completed, String(result.error)).toBe(true);
    const after = await aftermath(name, dbname);
    expect(after.rows).toEqual([]);
    expect(after.role).toEqual(unchangedApp);
  });

  it('cannot move the search_path or the role of a session with ALTER ROLE / ALTER DATABASE SET', async () => {
    // Prepare: besides the plants, its database makes every session become the app itself.
    const { name, password, dbname } = await appWithPlants();
    await inspect(dbname, (client) =>
      client.query(`ALTER DATABASE ${dbname} SET role = ${admin.ident(name)}`),
    );
    const db = createPostgres();
    const logins: Login[] = [
      { ...adminLogin(), database: dbname },
      {
        host: admin.host,
        port: admin.port,
        user: name,
        password,
        database: dbname,
        tls: 'disable',
      },
    ];

    for (const login of logins) {
      // Act: any unqualified name in these sessions.
      const connection = await db.connect(login, { deadline: Date.now() + 20_000 });
      try {
        const settings = await connection.query(
          "SELECT current_user AS who, pg_catalog.current_setting('search_path') AS path",
        );
        await connection.query('BEGIN');
        await connection.query("SELECT pg_advisory_xact_lock(hashtext('probe'))");
        await connection.query("SELECT 1 FROM pg_roles WHERE rolname = 'probe'");
        await connection.query('COMMIT');

        // Assess
        expect(settings.rows[0]).toEqual({ who: login.user, path: 'pg_catalog, pg_temp' });
      } finally {
        await db.close(connection);
      }
    }
    expect((await aftermath(name, dbname)).rows).toEqual([]);
  });

  it('sends only schema-qualified catalog names, types and operators', async () => {
    // Prepare: a rotation that creates a clone, and one that verifies it and changes a password.
    const name = randomName('sec_sql');
    const password = `initial-${randomName('pw')}`;
    await admin.createUser(name, password);
    users.push(`${name}_clone`, name);
    const masterarn = harness.masterSecret(admin.masterSecretValue());
    const secretId = harness.appSecret(admin.secretValue(name, password, { masterarn }));
    const spy = vi.spyOn(pg.Client.prototype, 'query');

    // Act
    const handler = harness.handler(alternatingUsers(createPostgres()));
    const results = [
      await harness.rotate(handler, secretId),
      await harness.rotate(handler, secretId),
    ];
    const single = harness.handler(singleUser(createPostgres()));
    results.push(await harness.rotate(single, secretId));
    const sent = spy.mock.calls.map((call) =>
      typeof call[0] === 'string' ? call[0] : String((call[0] as { text?: unknown }).text),
    );
    spy.mockRestore();

    // Assess
    expect(results.map((result) => result.completed)).toEqual([true, true, true]);
    expect(sent.some((text) => text.includes('pg_has_role'))).toBe(true);
    expect(sent.flatMap(unqualified)).toEqual([]);
  });

  const adminLogin = (): Login => ({
    host: admin.host,
    port: admin.port,
    user: admin.username,
    password: admin.password,
    database: 'postgres',
    tls: 'disable',
  });

  describe('names the server truncates at 63 bytes', () => {
    /** `count` two-byte characters and a random ASCII tail: `bytes` bytes long in all. */
    const multibyte = (bytes: number): string => {
      const tail = `_${randomName('m').slice(2)}`; // "_" + 10 hex digits
      const name = 'é'.repeat(Math.floor((bytes - tail.length) / 2)) + tail;
      const padded = Buffer.byteLength(name) < bytes ? `x${name}` : name;
      expect(Buffer.byteLength(padded)).toBe(bytes);
      return padded;
    };
    /** What the server makes of a name: its first 63 bytes, cut at a character boundary. */
    const truncated = (name: string): string => {
      let out = '';
      for (const char of name) {
        if (Buffer.byteLength(out + char) > 63) break;
        out += char;
      }
      return out;
    };

    async function secretFor(name: string, password: string) {
      const masterarn = harness.masterSecret(admin.masterSecretValue());
      return harness.appSecret(admin.secretValue(name, password, { masterarn }));
    }

    it('never alternates to a name whose "_clone" form the server would cut into another role', async () => {
      // Prepare: a 61-byte original (36 characters); its clone name (67 bytes) would be cut to
      // "<original>_c", a role that exists and belongs to someone else.
      const name = multibyte(61);
      const victim = truncated(`${name}_clone`);
      expect(victim).toBe(`${name}_c`);
      const password = `initial-${randomName('pw')}`;
      await admin.createUser(name, password);
      await admin.createUser(victim, `victim-${randomName('pw')}`);
      users.push(victim, name);
      const before = await admin.passwordHashes([victim, name]);
      const secretId = await secretFor(name, password);

      // Act
      const result = await harness.rotate(
        harness.handler(alternatingUsers(createPostgres())),
        secretId,
      );

      // Assess: nothing changed; it stopped before any AWSPENDING was written.
      expect(result.failedStep).toBe('createSecret');
      expect(result.error).toBeInstanceOf(InvalidSecretError);
      expect(await admin.passwordHashes([victim, name])).toEqual(before);
      expect(await signsIn({ host: admin.host, port: admin.port, user: name, password })).toBe(
        true,
      );
    });

    it('refuses a user name over 63 bytes and accepts one of exactly 63', async () => {
      // Prepare
      const long = multibyte(64);
      const exact = multibyte(63);
      const password = `initial-${randomName('pw')}`;
      await admin.createUser(exact, password);
      users.push(exact);
      const single = harness.handler(singleUser(createPostgres()));

      // Act
      const refused = await harness.rotate(single, await secretFor(long, password));
      const accepted = await harness.rotate(single, await secretFor(exact, password));

      // Assess
      expect(refused.failedStep).toBe('createSecret');
      expect(refused.error).toBeInstanceOf(InvalidSecretError);
      expect(accepted.completed, String(accepted.error)).toBe(true);
    });

    it('the adapter refuses a name over 63 bytes in every call, so no role is aliased', async () => {
      // Prepare
      const name = multibyte(61);
      const victim = truncated(`${name}_clone`);
      await admin.createUser(victim, `victim-${randomName('pw')}`);
      await admin.createUser(name, `initial-${randomName('pw')}`);
      users.push(victim, name);
      const before = await admin.passwordHashes([victim]);
      const db = createPostgres();
      const connection = await db.connect(adminLogin());

      // Act
      const calls = [
        db.userExists(connection, `${name}_clone`),
        db.setPassword(connection, `${name}_clone`, 'a-new-password-1'),
        db.createUserLike(connection, `${name}_clone`, 'a-new-password-1', name),
        db.verifyClone?.(connection, `${name}_clone`, name),
      ];
      const outcomes = await Promise.allSettled(calls);
      await db.close(connection);

      // Assess
      for (const outcome of outcomes) {
        expect(outcome.status).toBe('rejected');
        expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(InvalidSecretError);
      }
      expect(await admin.passwordHashes([victim])).toEqual(before);
    });

    it('verifyClone fails closed when it finds no role under the exact name', async () => {
      const name = randomName('sec_orig');
      await admin.createUser(name, `initial-${randomName('pw')}`);
      users.push(name);
      const db = createPostgres();
      const connection = await db.connect(adminLogin());
      const outcome = await db.verifyClone?.(connection, `${name}_clone`, name).then(
        () => 'adopted',
        (error: unknown) => error,
      );
      await db.close(connection);
      expect(outcome).toBeInstanceOf(InvalidSecretError);
    });
  });

  describe('a look-alike <name>_clone made before the first rotation', () => {
    async function lookAlike(extra: (clone: string, name: string) => string[], asMember = '') {
      const name = randomName('sec_orig');
      const clone = `${name}_clone`;
      const password = `initial-${randomName('pw')}`;
      await admin.createUser(name, password);
      await admin.query(`CREATE ROLE ${admin.ident(clone)} LOGIN PASSWORD 'look-alike-pw-1'`);
      users.push(clone, name);
      await admin.query(`GRANT ${admin.ident(name)} TO ${admin.ident(clone)} ${asMember}`);
      for (const sql of extra(admin.ident(clone), admin.ident(name))) await admin.query(sql);
      const masterarn = harness.masterSecret(admin.masterSecretValue());
      const secretId = harness.appSecret(admin.secretValue(name, password, { masterarn }));
      return { name, clone, password, secretId };
    }

    const middle = randomName('sec_mid');
    afterAll(async () => {
      await admin.dropUsers([middle]);
    });

    it.each<[string, (clone: string, name: string) => string[], string?]>([
      [
        'a member of pg_execute_server_program',
        (clone) => [`GRANT pg_execute_server_program TO ${clone}`],
      ],
      [
        'a member of pg_read_server_files through another role',
        (clone) => [
          `CREATE ROLE ${middle} NOLOGIN`,
          `GRANT pg_read_server_files TO ${middle}`,
          `GRANT ${middle} TO ${clone}`,
        ],
      ],
      ['a member of the original WITH ADMIN OPTION', () => [], 'WITH ADMIN OPTION'],
      [
        'a holder of ADMIN OPTION on a role the original only belongs to',
        (clone, name) => [
          `GRANT pg_monitor TO ${name}`,
          `GRANT pg_monitor TO ${clone} WITH ADMIN OPTION`,
        ],
      ],
      ['CREATEROLE', (clone) => [`ALTER ROLE ${clone} CREATEROLE`]],
      ['CREATEDB', (clone) => [`ALTER ROLE ${clone} CREATEDB`]],
      ['BYPASSRLS', (clone) => [`ALTER ROLE ${clone} BYPASSRLS`]],
      ['REPLICATION', (clone) => [`ALTER ROLE ${clone} REPLICATION`]],
    ])('is never adopted when it is %s', async (_, extra, asMember) => {
      // Prepare
      const { name, clone, password, secretId } = await lookAlike(extra, asMember);
      const before = await admin.passwordHashes([clone]);

      // Act
      const result = await harness.rotate(
        harness.handler(alternatingUsers(createPostgres())),
        secretId,
      );

      // Assess: its password never changed, so the secret never hands one out.
      expect(result.failedStep).toBe('setSecret');
      expect(result.error).toBeInstanceOf(InvalidSecretError);
      expect(await admin.passwordHashes([clone])).toEqual(before);
      expect(harness.secret(secretId).username).toBe(name);
      expect(await signsIn({ host: admin.host, port: admin.port, user: name, password })).toBe(
        true,
      );
    });

    it('is adopted when every role it reaches, it reaches as the original does', async () => {
      // Prepare: roles of the original, one of them also granted to the clone directly.
      const { clone, secretId } = await lookAlike((clone, name) => [
        `GRANT pg_read_all_data TO ${name}`,
        `GRANT pg_monitor TO ${name}`,
        `GRANT pg_monitor TO ${clone}`,
      ]);

      // Act
      const result = await harness.rotate(
        harness.handler(alternatingUsers(createPostgres())),
        secretId,
      );

      // Assess
      expect(result.completed, String(result.error)).toBe(true);
      const current = harness.secret(secretId);
      expect(current.username).toBe(clone);
      expect(
        await signsIn({
          host: admin.host,
          port: admin.port,
          user: clone,
          password: current.password,
        }),
      ).toBe(true);
    });
  });
});

/**
 * The names in `sql` that the search_path could resolve: catalog names, function calls, types
 * after `::` and operators not written as OPERATOR(pg_catalog.…).
 */
/**
 * A SET of a setting to plain names or numbers (or SET ROLE NONE) looks up no function, type or
 * operator: its "=" is grammar. Anything else in a SET is checked like any statement.
 */
const PLAIN_SET = /^\s*SET\s+(ROLE\s+NONE|[a-z_]+\s*(=|TO)\s*[a-z_0-9]+(\s*,\s*[a-z_0-9]+)*)\s*$/i;

function unqualified(sql: string): string[] {
  const statements = sql.split(';').filter((statement) => statement.trim() !== '');
  if (statements.length > 1 || PLAIN_SET.test(sql)) {
    return statements
      .filter((statement) => !PLAIN_SET.test(statement))
      .flatMap((statement) => unqualifiedIn(statement, sql));
  }
  return unqualifiedIn(sql, sql);
}

function unqualifiedIn(sql: string, whole: string): string[] {
  const text = sql
    .replace(/'(?:[^']|'')*'/g, "''")
    .replace(/"(?:[^"]|"")*"/g, '""')
    .replace(/OPERATOR\(pg_catalog\.[^)]+\)/g, ' ');
  const found: string[] = [];
  for (const match of text.matchAll(/([A-Za-z_][\w.]*)\s*\(/g)) {
    const name = match[1] as string;
    if (!name.startsWith('pg_catalog.') && !/^(OPERATOR|VALUES|IN)$/i.test(name))
      found.push(`${name}(`);
  }
  for (const match of text.matchAll(/(?<![\w.])(pg_\w+)/g)) {
    if (match[1] !== 'pg_catalog') found.push(match[1] as string);
  }
  for (const match of text.matchAll(/::\s*([\w.]+)/g)) {
    if (!match[1]?.startsWith('pg_catalog.')) found.push(`::${match[1]}`);
  }
  for (const match of text.matchAll(/[=<>!~+\-*/%^&|#@?]+|\bANY\b/gi)) found.push(match[0]);
  return found.map((name) => `${name} in: ${whole.slice(0, 60)}`);
}
