import pg from 'pg';
import { afterAll, beforeAll, describe, vi } from 'vitest';
import { createPostgres } from '../../shared/databases/postgres.js';
import { describeDatabaseFaults } from '../support/database-faults.js';
import { FakeSecretsManager } from '../support/fake-secrets-manager.js';
import { startFakeSecretsManagerServer } from '../support/fake-secrets-manager-http.js';
import { FaultInjector } from '../support/fault-injection.js';
import { PgAdmin, randomName, signsIn } from '../support/pg-admin.js';
import { provided } from '../support/servers.js';

const APPLICATION = 'secrets-rotation';
type TrackedClient = pg.Client & { connectionParameters?: { application_name?: string } };
const isOurs = (client: TrackedClient) =>
  client.connectionParameters?.application_name === APPLICATION;

/**
 * Whatever instruction a rotation dies at, and however often it is retried, some stored
 * credential signs in, and the retry converges. Effects counted: every Secrets Manager call
 * (through the real SDK, over HTTP) and every PostgreSQL connect and statement of the functions.
 */
describe('postgres under injected faults', () => {
  const fake = new FakeSecretsManager();
  const injector = new FaultInjector();
  const open = new Set<TrackedClient>();
  const users: string[] = [];
  let admin: PgAdmin;
  let endpoint: { endpoint: string; close(): Promise<void> };

  beforeAll(async () => {
    admin = await PgAdmin.connect(provided('pgAdminUrl'));
    endpoint = await startFakeSecretsManagerServer(fake);
    const connect = pg.Client.prototype.connect;
    const query = pg.Client.prototype.query;
    const end = pg.Client.prototype.end;
    vi.spyOn(pg.Client.prototype, 'connect').mockImplementation(function (
      this: TrackedClient,
      ...args: unknown[]
    ) {
      if (!isOurs(this)) return (connect as (...a: unknown[]) => unknown).apply(this, args);
      return injector.effect('PostgreSQL.connect', async () => {
        await (connect as unknown as () => Promise<void>).apply(this);
        open.add(this);
      });
    } as typeof connect);
    vi.spyOn(pg.Client.prototype, 'query').mockImplementation(function (
      this: TrackedClient,
      ...args: unknown[]
    ) {
      if (!isOurs(this)) return (query as (...a: unknown[]) => unknown).apply(this, args);
      const text = String(args[0]).split(/\s/)[0]?.toUpperCase() ?? '?';
      return injector.effect(`PostgreSQL.${text}`, () =>
        (query as (...a: unknown[]) => Promise<unknown>).apply(this, args),
      );
    } as typeof query);
    vi.spyOn(pg.Client.prototype, 'end').mockImplementation(function (
      this: TrackedClient,
      ...args: unknown[]
    ) {
      open.delete(this);
      return (end as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof end);
  });

  afterAll(async () => {
    vi.restoreAllMocks();
    await admin.dropUsers(users);
    await admin.close();
    await endpoint.close();
  });

  /** Kills the sockets of invocations that were abandoned mid-flight, as a dead process would. */
  async function killAbandoned() {
    for (const client of open) {
      (
        client as unknown as { connection: { stream: { destroy(): void } } }
      ).connection.stream.destroy();
      open.delete(client);
    }
  }

  async function sessionsLeft(): Promise<number> {
    for (let i = 0; i < 30; i++) {
      const { rows } = await admin.query(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
        [APPLICATION],
      );
      if (rows[0].n === 0) return 0;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return (
      await admin.query(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
        [APPLICATION],
      )
    ).rows[0].n;
  }

  const login = (value: { username: string; password: string }) => ({
    host: admin.host,
    port: admin.port,
    user: value.username,
    password: value.password,
  });

  let masterArn: string | undefined;
  const masterSecret = () =>
    fake.createSecret({
      name: `faults/master-${randomName('m')}`,
      secretString: JSON.stringify({
        host: admin.host,
        port: admin.port,
        username: admin.username,
        password: admin.password,
        ssl: false,
      }),
    });

  describeDatabaseFaults({
    name: () => 'postgres',
    label: () => 'PostgreSQL',
    fake,
    injector,
    endpoint: () => endpoint.endpoint,
    database: () => createPostgres(),
    async provision(strategy) {
      const name = randomName(strategy === 'single-user' ? 'fs' : 'fa');
      const password = `initial-${randomName('pw')}`;
      await admin.createUser(name, password);
      users.push(`${name}_clone`, name);
      if (strategy === 'alternating-users') masterArn ??= masterSecret();
      const secretId = fake.createSecret({
        name: `faults/${name}`,
        secretString: JSON.stringify({
          engine: 'postgres',
          host: admin.host,
          port: admin.port,
          username: name,
          password,
          ssl: false,
          ...(strategy === 'alternating-users' ? { masterarn: masterArn } : {}),
        }),
      });
      return { name, secretId };
    },
    signsIn: (value) => signsIn(login(value)),
    usersLike: (name) => admin.rolesLike(name),
    async cloneDiffers(name) {
      const member = await admin.query("SELECT pg_has_role($1, $2, 'MEMBER') AS ok", [
        `${name}_clone`,
        name,
      ]);
      return member.rows[0]?.ok ? undefined : 'the clone lacks the privileges of the original';
    },
    async leftOpen() {
      const left = await sessionsLeft();
      return left > 0 ? [`${left} sessions left open`] : [];
    },
    killAbandoned,
  });
});
