import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { createPostgres } from '../../shared/databases/postgres.js';
import { createRotationHandler } from '../../shared/rotation/handler.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';
import { singleUser } from '../../shared/strategies/single-user.js';
import { FakeSecretsManager } from '../support/fake-secrets-manager.js';
import { startFakeSecretsManagerServer } from '../support/fake-secrets-manager-http.js';
import {
  FaultInjector,
  FaultMode,
  faultySecretsManagerClient,
} from '../support/fault-injection.js';
import { type FaultReport, type FaultTarget, runFaultMatrix } from '../support/fault-runner.js';
import { PgAdmin, randomName, signsIn } from '../support/pg-admin.js';
import { STEPS } from '../support/rotation-driver.js';

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
  const reports: FaultReport[] = [];
  const users: string[] = [];
  let admin: PgAdmin;
  let endpoint: { endpoint: string; close(): Promise<void> };

  beforeAll(async () => {
    admin = await PgAdmin.connect(inject('pgAdminUrl'));
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
    console.info(
      [
        'fault injection (PostgreSQL):',
        ...reports.map(
          (r) =>
            `  ${r.target.padEnd(28)} ${r.mode.padEnd(13)} ${r.held}/${r.points} injection points held`,
        ),
      ].join('\n'),
    );
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
  const stored = (secretId: string, stage: string) => {
    const text = fake.valueOf(secretId, stage);
    return text === undefined
      ? undefined
      : (JSON.parse(text) as { username: string; password: string });
  };

  async function provisionUser(prefix: string, extra: Record<string, unknown> = {}) {
    const name = randomName(prefix);
    const password = `initial-${randomName('pw')}`;
    await admin.createUser(name, password);
    users.push(`${name}_clone`, name);
    const secretId = fake.createSecret({
      name: `faults/${name}`,
      secretString: JSON.stringify({
        engine: 'postgres',
        host: admin.host,
        port: admin.port,
        username: name,
        password,
        ssl: false,
        ...extra,
      }),
    });
    return { name, secretId };
  }

  const names = new Map<string, string>();

  const singleTarget = (): FaultTarget => ({
    name: 'postgres-single-user',
    handler: createRotationHandler({
      strategy: singleUser(createPostgres()),
      client: faultySecretsManagerClient(endpoint.endpoint, injector),
      env: {},
    }),
    async provision() {
      const { name, secretId } = await provisionUser('fs');
      names.set(secretId, name);
      return secretId;
    },
    async holdsDuring(secretId) {
      const current = stored(secretId, 'AWSCURRENT');
      const pending = stored(secretId, 'AWSPENDING');
      if (current && (await signsIn(login(current)))) return undefined;
      if (pending && (await signsIn(login(pending)))) return undefined;
      return 'neither AWSCURRENT nor AWSPENDING signs in';
    },
    async holdsAfter(secretId) {
      const problems: string[] = [];
      const current = stored(secretId, 'AWSCURRENT');
      if (!current || !(await signsIn(login(current))))
        problems.push('AWSCURRENT does not sign in');
      const name = names.get(secretId) as string;
      const roles = await admin.rolesLike(name);
      if (roles.join() !== name) problems.push(`roles ${roles.join(', ')}`);
      const left = await sessionsLeft();
      if (left > 0) problems.push(`${left} sessions left open`);
      return problems;
    },
    killAbandoned,
  });

  const alternatingTarget = (masterArn: string): FaultTarget => ({
    name: 'postgres-alternating-users',
    handler: createRotationHandler({
      strategy: alternatingUsers(createPostgres()),
      client: faultySecretsManagerClient(endpoint.endpoint, injector),
      env: {},
    }),
    async provision() {
      const { name, secretId } = await provisionUser('fa', { masterarn: masterArn });
      names.set(secretId, name);
      return secretId;
    },
    async holdsDuring(secretId) {
      const current = stored(secretId, 'AWSCURRENT');
      return current && (await signsIn(login(current))) ? undefined : 'AWSCURRENT does not sign in';
    },
    async holdsAfter(secretId) {
      const problems: string[] = [];
      const current = stored(secretId, 'AWSCURRENT');
      if (!current || !(await signsIn(login(current))))
        problems.push('AWSCURRENT does not sign in');
      const previous = stored(secretId, 'AWSPREVIOUS');
      if (!previous || !(await signsIn(login(previous))))
        problems.push('AWSPREVIOUS does not sign in');
      const name = names.get(secretId) as string;
      const roles = await admin.rolesLike(name);
      if (roles.join() !== [name, `${name}_clone`].join())
        problems.push(`roles ${roles.join(', ')}`);
      const member = await admin.query("SELECT pg_has_role($1, $2, 'MEMBER') AS ok", [
        `${name}_clone`,
        name,
      ]);
      if (!member.rows[0]?.ok) problems.push('the clone lacks the privileges of the original');
      const left = await sessionsLeft();
      if (left > 0) problems.push(`${left} sessions left open`);
      return problems;
    },
    killAbandoned,
  });

  it.each([FaultMode.throwBefore, FaultMode.throwAfter, FaultMode.hang])(
    'single user: a fault at any effect (%s) keeps a credential signing in, and the retry converges',
    async (mode) => {
      const [report] = await runFaultMatrix(fake, singleTarget(), injector, [mode]);
      reports.push(report as FaultReport);
      expect(report?.points).toBeGreaterThan(10);
      expect(report?.failures).toEqual([]);
    },
  );

  it.each([FaultMode.throwBefore, FaultMode.throwAfter, FaultMode.hang])(
    'alternating users: a fault at any effect (%s) keeps AWSCURRENT signing in, and the retry converges',
    async (mode) => {
      const master = fake.createSecret({
        name: `faults/master-${randomName('m')}`,
        secretString: JSON.stringify({
          host: admin.host,
          port: admin.port,
          username: admin.username,
          password: admin.password,
          ssl: false,
        }),
      });
      const [report] = await runFaultMatrix(fake, alternatingTarget(master), injector, [mode]);
      reports.push(report as FaultReport);
      expect(report?.points).toBeGreaterThan(10);
      expect(report?.failures).toEqual([]);
    },
  );

  describe('overlapping invocations', () => {
    const targets = () => {
      const master = fake.createSecret({
        name: `faults/master-${randomName('m')}`,
        secretString: JSON.stringify({
          host: admin.host,
          port: admin.port,
          username: admin.username,
          password: admin.password,
          ssl: false,
        }),
      });
      return [singleTarget(), alternatingTarget(master)];
    };

    it.each(STEPS)('two overlapping %s invocations end in the same state as one', async (step) => {
      injector.reset();
      for (const target of targets()) {
        // Prepare
        const secretId = await target.provision();
        const oldVersion = fake.versionOf(secretId);
        const token = fake.startRotation(secretId);
        const invoke = (s: string) =>
          target.handler(
            { Step: s, SecretId: fake.arnOf(secretId), ClientRequestToken: token },
            { getRemainingTimeInMillis: () => 20_000 },
          );
        const index = STEPS.indexOf(step);
        for (const before of STEPS.slice(0, index)) await invoke(before);

        // Act
        const outcomes = await Promise.allSettled([invoke(step), invoke(step)]);
        for (const after of STEPS.slice(index + 1)) await invoke(after);

        // Assess
        expect(
          outcomes.map((o) => (o.status === 'fulfilled' ? 'ok' : String(o.reason))),
          target.name,
        ).toEqual(['ok', 'ok']);
        expect(fake.versionOf(secretId), target.name).toBe(token);
        expect(fake.versionOf(secretId, 'AWSPREVIOUS'), target.name).toBe(oldVersion);
        expect(await target.holdsAfter(secretId), target.name).toEqual([]);
      }
    });
  });
});
