import { randomInt } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type Db, type DbOptions, type Document, MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createMongoDb, type RoleGrant } from '../../shared/databases/mongodb.js';
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
import { MongoAdmin, signsIn } from '../support/mongo-admin.js';
import { randomName } from '../support/pg-admin.js';
import { STEPS } from '../support/rotation-driver.js';

const capabilities = inject('mongoCapabilities');
// FerretDB 1.x implements no roles: every user has none, so "the clone has the original's
// roles" holds trivially there and proves nothing; the check runs only where roles exist.
const noRoles = capabilities.roles
  ? undefined
  : `${capabilities.server} does not implement roles: ${capabilities.rolesReason}`;
if (noRoles) console.warn(`mongodb faults: the clone's roles are not compared: ${noRoles}`);

/**
 * The functions' driver sockets leave from this loopback address (the driver's `localAddress`),
 * so that the server's ends of their TCP connections can be told from everyone else's. The
 * adapter's TCP/TLS probe, a raw socket opened before the driver and destroyed at once, is not
 * among them.
 */
const FUNCTIONS_ADDRESS = `127.77.${randomInt(1, 255)}.${randomInt(1, 255)}`;

/** /proc/net/tcp writes an IPv4 address as the hex of its 32-bit word in host (little-endian) order. */
const procAddress = (ipv4: string): string =>
  ipv4
    .split('.')
    .map((part) => Number(part).toString(16).padStart(2, '0'))
    .reverse()
    .join('')
    .toUpperCase();

/** TCP states in which the server's end of a connection is still open: SYN_RECV, ESTABLISHED, CLOSE_WAIT. */
const SERVER_END_OPEN = new Set(['01', '03', '08']);

/**
 * Whatever instruction a rotation dies at, and however often it is retried, some stored
 * credential signs in, and the retry converges. Effects counted: every Secrets Manager call
 * (through the real SDK, over HTTP) and every MongoDB connect and command of the functions.
 */
describe('mongodb under injected faults', () => {
  const fake = new FakeSecretsManager();
  const injector = new FaultInjector();
  /** The functions' driver clients that are not closed yet. */
  const open = new Set<MongoClient>();
  const reports: FaultReport[] = [];
  const users: string[] = [];
  let admin: MongoAdmin;
  let endpoint: { endpoint: string; close(): Promise<void> };
  /** Why the server's ends of the functions' connections cannot be seen, or undefined. */
  let noServerView: string | undefined;

  /**
   * The real driver's client, with every connect and command of the functions counted as an
   * effect, and every client tracked until it is closed.
   */
  class FaultyMongoClient extends MongoClient {
    constructor(url: string, options: ConstructorParameters<typeof MongoClient>[1] = {}) {
      super(url, noServerView ? options : { ...options, localAddress: FUNCTIONS_ADDRESS });
      open.add(this);
    }

    override connect(): Promise<this> {
      return injector.effect('MongoDB.connect', () => super.connect());
    }

    override db(name?: string, options?: DbOptions): Db {
      const db = super.db(name, options);
      const command = db.command.bind(db);
      db.command = (document: Document, ...rest: unknown[]) =>
        injector.effect(`MongoDB.${Object.keys(document)[0] ?? '?'}`, () =>
          (command as (...args: unknown[]) => Promise<Document>)(document, ...rest),
        );
      return db;
    }

    override close(force?: boolean): Promise<void> {
      open.delete(this);
      return super.close(force);
    }
  }
  const createDatabase = () =>
    createMongoDb({ loadDriver: async () => ({ MongoClient: FaultyMongoClient }) });

  beforeAll(async () => {
    admin = await MongoAdmin.connect(inject('mongoAdminUrl'));
    endpoint = await startFakeSecretsManagerServer(fake);
    if (!admin.host.startsWith('127.')) {
      noServerView = `the server (${admin.host}) is not on an IPv4 loopback address`;
    } else {
      await readFile('/proc/net/tcp', 'utf8').catch((error: Error) => {
        noServerView = `/proc/net/tcp cannot be read (${error.message})`;
      });
    }
    if (noServerView) {
      console.warn(
        `mongodb faults: open connections counted on the client side only: ${noServerView}`,
      );
    }
  });

  afterAll(async () => {
    await admin?.dropUsers(users);
    await admin?.close();
    await endpoint?.close();
    console.info(
      [
        'fault injection (MongoDB):',
        ...reports.map(
          (r) =>
            `  ${r.target.padEnd(28)} ${r.mode.padEnd(13)} ${r.held}/${r.points} injection points held`,
        ),
      ].join('\n'),
    );
  });

  /**
   * Drops the clients of invocations that were abandoned mid-flight, as a dead process would:
   * close() ends their sockets and stops their monitors (a client whose sockets were only
   * destroyed would reconnect, which a dead process does not). It may also send endSessions,
   * which touches no user and is not counted as an effect.
   */
  async function killAbandoned() {
    await Promise.all([...open].map((client) => client.close()));
  }

  /**
   * Connections of the functions the server still holds open. FerretDB 1.24 reports none of
   * its clients (serverStatus has no `connections`, currentOp answers an empty list) and its
   * debug metrics count only all clients together (accepted minus closed), which other test
   * files and the admin session also move. So the server's own ends of the TCP connections
   * are read from the kernel's table, and only those whose peer is the functions' address
   * count. A connection the server still holds open is ESTABLISHED, or CLOSE_WAIT while it
   * has not yet seen the functions close theirs: given 3 s to drain.
   */
  async function serverConnectionsLeft(): Promise<number> {
    const local = `:${admin.port.toString(16).toUpperCase().padStart(4, '0')}`;
    const peer = `${procAddress(FUNCTIONS_ADDRESS)}:`;
    const count = async () =>
      (await readFile('/proc/net/tcp', 'utf8'))
        .split('\n')
        .slice(1)
        .map((line) => line.trim().split(/\s+/))
        .filter(
          ([, from, to, state]) =>
            from?.endsWith(local) && to?.startsWith(peer) && SERVER_END_OPEN.has(state ?? ''),
        ).length;
    for (let i = 0; i < 30; i++) {
      if ((await count()) === 0) return 0;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return count();
  }

  /** What is left open by the functions: unclosed clients, and server-side connections. */
  async function leftOpen(): Promise<string[]> {
    const problems: string[] = [];
    if (open.size > 0) problems.push(`${open.size} MongoClients of the functions never closed`);
    if (!noServerView) {
      const left = await serverConnectionsLeft();
      if (left > 0) problems.push(`${left} connections of the functions left open on the server`);
    }
    return problems;
  }

  const login = (value: { username: string; password: string }) => ({
    host: admin.host,
    port: admin.port,
    user: value.username,
    password: value.password,
    database: 'admin',
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
    const roles: RoleGrant[] = [];
    // Where roles exist, the user holds one (so the clone's roles can be compared) and, where
    // they are enforced, the right to change its own password (for single user).
    if (capabilities.roles) roles.push({ role: 'read', db: `faults_${name}` });
    if (capabilities.authorization) roles.push(await admin.changeOwnPasswordRole());
    await admin.createUser(name, password, { roles });
    users.push(`${name}_clone`, name);
    const secretId = fake.createSecret({
      name: `faults/${name}`,
      secretString: JSON.stringify({
        engine: 'mongo',
        host: admin.host,
        port: admin.port,
        username: name,
        password,
        dbname: 'admin',
        ssl: false,
        ...extra,
      }),
    });
    return { name, secretId };
  }

  const names = new Map<string, string>();

  const singleTarget = (): FaultTarget => ({
    name: 'mongodb-single-user',
    handler: createRotationHandler({
      strategy: singleUser(createDatabase()),
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
      const existing = await admin.usersLike(name);
      if (existing.join() !== name) problems.push(`users ${existing.join(', ')}`);
      problems.push(...(await leftOpen()));
      return problems;
    },
    killAbandoned,
  });

  const alternatingTarget = (masterArn: string): FaultTarget => ({
    name: 'mongodb-alternating-users',
    handler: createRotationHandler({
      strategy: alternatingUsers(createDatabase()),
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
      const existing = await admin.usersLike(name);
      if (existing.join() !== [name, `${name}_clone`].join())
        problems.push(`users ${existing.join(', ')}`);
      if (!noRoles && existing.includes(`${name}_clone`)) {
        const [original, clone] = [await admin.rolesOf(name), await admin.rolesOf(`${name}_clone`)];
        if (clone.join() !== original.join())
          problems.push(
            `the clone has roles ${clone.join(', ')}, the original ${original.join(', ')}`,
          );
      }
      problems.push(...(await leftOpen()));
      return problems;
    },
    killAbandoned,
  });

  const masterSecret = () =>
    fake.createSecret({
      name: `faults/master-${randomName('m')}`,
      secretString: JSON.stringify({
        engine: 'mongo',
        host: admin.host,
        port: admin.port,
        username: admin.username,
        password: admin.password,
        dbname: admin.authSource,
        ssl: false,
      }),
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
      const [report] = await runFaultMatrix(fake, alternatingTarget(masterSecret()), injector, [
        mode,
      ]);
      reports.push(report as FaultReport);
      expect(report?.points).toBeGreaterThan(10);
      expect(report?.failures).toEqual([]);
    },
  );

  describe('overlapping invocations', () => {
    const targets = () => [singleTarget(), alternatingTarget(masterSecret())];

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
