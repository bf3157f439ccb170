import { randomInt } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type Db, type DbOptions, type Document, MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe } from 'vitest';
import { createMongoDb, type RoleGrant } from '../../shared/databases/mongodb.js';
import { describeDatabaseFaults } from '../support/database-faults.js';
import { FakeSecretsManager } from '../support/fake-secrets-manager.js';
import { startFakeSecretsManagerServer } from '../support/fake-secrets-manager-http.js';
import { FaultInjector } from '../support/fault-injection.js';
import { MongoAdmin, signsIn } from '../support/mongo-admin.js';
import { randomName } from '../support/pg-admin.js';
import { provided } from '../support/servers.js';

const capabilities = provided('mongoCapabilities');
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
    admin = await MongoAdmin.connect(provided('mongoAdminUrl'));
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

  let masterArn: string | undefined;
  const masterSecret = () =>
    fake.createSecret({
      name: `faults/master-${randomName('m')}`,
      secretString: admin.masterSecretValue(),
    });

  describeDatabaseFaults({
    name: () => 'mongodb',
    label: () => `MongoDB, ${capabilities.server}`,
    fake,
    injector,
    endpoint: () => endpoint.endpoint,
    database: createDatabase,
    provision(strategy) {
      if (strategy === 'single-user') return provisionUser('fs');
      masterArn ??= masterSecret();
      return provisionUser('fa', { masterarn: masterArn });
    },
    signsIn: (value) => signsIn(login(value)),
    usersLike: (name) => admin.usersLike(name),
    async cloneDiffers(name) {
      if (noRoles) return undefined;
      const [original, clone] = [await admin.rolesOf(name), await admin.rolesOf(`${name}_clone`)];
      return clone.join() === original.join()
        ? undefined
        : `the clone has roles ${clone.join(', ')}, the original ${original.join(', ')}`;
    },
    leftOpen: () => leftOpen(),
    killAbandoned,
  });
});
