/**
 * Actor: the network between the function and PostgreSQL, which can go silent mid-session (a
 * dead route or NAT entry: no bytes, no FIN, no RST). What it must never cause: an invocation
 * that outlives its budget, or a session left on the server holding the role's advisory lock
 * so that the service's retry fails on it and the rotation never converges.
 */
import type { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgres } from '../../shared/databases/postgres.js';
import type { Database } from '../../shared/databases/types.js';
import type { RotationHandler } from '../../shared/rotation/handler.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';
import { singleUser } from '../../shared/strategies/single-user.js';
import { PgAdmin, randomName, signsIn } from '../support/pg-admin.js';
import { type RotationEvent, rotate } from '../support/rotation-driver.js';
import { RotationHarness } from '../support/rotation-harness.js';
import { provided } from '../support/servers.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const BUDGET_MS = 8_000;
/** What the function may take beyond its budget: closing sockets, the event loop. */
const SLACK_MS = 1_500;

describe('a network that goes silent between the function and PostgreSQL', () => {
  let admin: PgAdmin;
  const harness = new RotationHarness();
  const users: string[] = [];
  const proxies: TcpProxy[] = [];

  beforeAll(async () => {
    admin = await PgAdmin.connect(provided('pgAdminUrl'));
    await harness.start();
  });

  afterAll(async () => {
    for (const proxy of proxies) await proxy.stop();
    await admin.dropUsers(users);
    await admin.close();
    await harness.stop();
  });

  /** The real adapter, whose sessions go silent just before the first statement matching `at`. */
  function stallingBefore(proxy: TcpProxy, at: RegExp, onStall: () => void): Database<Client> {
    const db = createPostgres();
    let armed = true;
    return {
      ...db,
      async connect(login, options) {
        const client = await db.connect(login, options);
        const query = client.query.bind(client) as (...args: unknown[]) => unknown;
        (client as { query: unknown }).query = (...args: unknown[]) => {
          const first = args[0] as string | { text?: string };
          const text = typeof first === 'string' ? first : (first.text ?? '');
          if (armed && at.test(text)) {
            armed = false;
            proxy.stall({ blackhole: true });
            onStall();
          }
          return query(...args);
        };
        return client;
      },
    };
  }

  /** An invoker with a Lambda budget of `ms` from each invocation's start. */
  const withBudget = (handler: RotationHandler, ms: number) => (event: RotationEvent) => {
    const end = Date.now() + ms;
    return handler(event, { getRemainingTimeInMillis: () => end - Date.now() });
  };

  it.each([
    ['single user, its password change', 'single', /^ALTER ROLE/],
    ['alternating users, the clone creation', 'alternating', /^CREATE ROLE/],
  ])('%s: fails within its budget, and the retry converges', async (_, strategy, at) => {
    // Prepare: every session of the function goes through the proxy.
    const proxy = await TcpProxy.start({ host: admin.host, port: admin.port });
    proxies.push(proxy);
    const name = randomName('sec_stall');
    const password = `initial-${randomName('pw')}`;
    await admin.createUser(name, password);
    users.push(`${name}_clone`, name);
    const server = { engine: 'postgres', host: '127.0.0.1', port: proxy.port, ssl: false };
    const masterarn = harness.fake.createSecret({
      name: `master/${randomName('m')}`,
      secretString: JSON.stringify({
        ...server,
        username: admin.username,
        password: admin.password,
      }),
    });
    const secretId = harness.fake.createSecret({
      name: `app/${randomName('secret')}`,
      secretString: JSON.stringify({ ...server, username: name, password, masterarn }),
    });
    let stalled: () => void = () => {};
    const stall = new Promise<void>((resolve) => {
      stalled = resolve;
    });
    const db = stallingBefore(proxy, at, () => stalled());
    const handler = harness.handler(strategy === 'single' ? singleUser(db) : alternatingUsers(db));

    // Act: the network goes silent mid-transaction.
    const started = Date.now();
    const running = rotate({
      fake: harness.fake,
      secretId,
      invoke: withBudget(handler, BUDGET_MS),
    });
    await stall;
    await new Promise((resolve) => setTimeout(resolve, 500));
    const stranded = await admin.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE state = 'idle in transaction' AND application_name = 'secrets-rotation'
          AND usename = ANY($1)`,
      [[name, admin.username]],
    );
    const first = await Promise.race([
      running,
      new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 3 * BUDGET_MS)),
    ]);
    const elapsed = Date.now() - started;

    // Assess: the server kept a session it cannot know is dead; the function gave up in time.
    expect(stranded.rows[0].n).toBeGreaterThan(0);
    expect(first === 'hung' ? 'hung' : first.failedStep).toBe('setSecret');
    expect(elapsed).toBeLessThan(BUDGET_MS + SLACK_MS);

    // Act: the network comes back; the service retries with a fresh invocation.
    proxy.resume();
    const retried = await rotate({
      fake: harness.fake,
      secretId,
      token: (first as { token: string }).token,
      invoke: withBudget(handler, 30_000),
    });

    // Assess: the server ended the stranded session; AWSCURRENT signs in, directly too.
    expect(retried.completed, String(retried.error)).toBe(true);
    const current = harness.secret(secretId);
    expect(
      await signsIn({
        host: admin.host,
        port: admin.port,
        user: current.username,
        password: current.password,
      }),
    ).toBe(true);
  });
});
