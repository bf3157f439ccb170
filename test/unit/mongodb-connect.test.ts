import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { Document, MongoClientOptions } from 'mongodb';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { AuthenticationError, ConnectTimeoutError, TlsError } from '../../shared/common/errors.js';
import { createMongoDb, type MongoDbOptions } from '../../shared/databases/mongodb.js';
import type { Login } from '../../shared/databases/types.js';
import { FakeMongoServer } from '../support/mongo-fake-server.js';
import { selfSignedCertificate } from '../support/self-signed.js';

// A bundle that puts the driver in a chunk of its own gives its exports only as `default`
// (BSON stays a named export for the wire-protocol fake of this file).
vi.mock('mongodb', async () => {
  const real = await vi.importActual<typeof import('mongodb')>('mongodb');
  return { default: real, BSON: real.BSON };
});

const { MongoClient } = await vi.importActual<typeof import('mongodb')>('mongodb');

/** How a stand-in database answers a command: a document, or never (null). */
type Answer = (command: Document) => Document | null;

/**
 * The real driver's client (its parsing of the connection string and of every option), with
 * the network part replaced: connect() succeeds at once, and commands are answered by `answer`
 * or, when it says null, never, ending only when the command's signal fires (as the driver does).
 */
function recordingDriver(answer: Answer = () => ({ ok: 1 })) {
  const made: InstanceType<typeof MongoClient>[] = [];
  class RecordingClient extends MongoClient {
    constructor(url: string, options?: MongoClientOptions) {
      super(url, options);
      made.push(this);
    }
    override async connect() {
      return this;
    }
    override async close() {}
    override db(name?: string) {
      const command = (document: Document, options?: { signal?: AbortSignal }) =>
        new Promise<Document>((resolve, reject) => {
          const reply = answer(document);
          if (reply !== null) return resolve(reply);
          options?.signal?.addEventListener('abort', () => reject(options.signal?.reason));
        });
      return { databaseName: name ?? 'admin', command } as never;
    }
  }
  const loadDriver: MongoDbOptions['loadDriver'] = async () => ({
    MongoClient: RecordingClient as unknown as typeof MongoClient,
  });
  return { made, loadDriver };
}

/** A TCP listener on loopback that records its connections; `onData` decides what it says. */
async function listener(host = '127.0.0.1', onData?: (socket: Socket) => void) {
  const sockets: Socket[] = [];
  const server: Server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
    if (onData) socket.on('data', () => onData(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as { port: number };
  const stop = () => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { port, sockets, stop };
}

const closedWithin = (socket: Socket, ms: number) =>
  new Promise<boolean>((resolve) => {
    if (socket.destroyed || socket.readyState === 'closed') return resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });

const loginAt = (port: number, overrides: Partial<Login> = {}): Login => ({
  host: '127.0.0.1',
  port,
  user: 'app',
  password: 's3cret-Pa55',
  database: 'admin',
  tls: 'disable',
  ...overrides,
});

describe('mongodb connect', () => {
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
  });
  const listen = async (host?: string, onData?: (socket: Socket) => void) => {
    const server = await listener(host, onData);
    stops.push(server.stop);
    return server;
  };

  it('loads a driver bundled with its exports only as `default`, and reaches the server with it', async () => {
    // Prepare: a wire-protocol fake that refuses the sign-in (the driver got that far).
    const fake = await FakeMongoServer.start();
    stops.push(() => fake.stop());

    // Act
    const failure = await createMongoDb()
      .connect(loginAt(fake.port), { timeoutMs: 5_000 })
      .catch((e: unknown) => e);

    // Assess
    expect(failure).toBeInstanceOf(AuthenticationError);
    expect(fake.commands.map((c) => c.name)).toContain('saslStart');
  });

  it('signs in straight to the host of the secret, retryable writes off, under its application name', async () => {
    // Prepare
    const server = await listen();
    const driver = recordingDriver();
    const deadline = Date.now() + 5_000;

    // Act
    const connection = await createMongoDb({ loadDriver: driver.loadDriver }).connect(
      loginAt(server.port),
      { deadline },
    );

    // Assess
    const options = driver.made[0]?.options;
    expect(options?.hosts.map(String)).toEqual([`127.0.0.1:${server.port}`]);
    expect(options?.directConnection).toBe(true);
    expect(options?.retryWrites).toBe(false);
    expect(options?.appName).toBe('secrets-rotation');
    expect(options?.credentials?.username).toBe('app');
    // "ssl": false in the secret is said to the driver, not left to its defaults.
    expect(options?.tls).toBe(false);
    // No socket read outlives the session.
    expect(options?.socketTimeoutMS).toBeGreaterThan(0);
    expect(options?.socketTimeoutMS).toBeLessThanOrEqual(5_000);
    expect(connection.deadline).toBe(deadline);
  });

  it('puts an IPv6 host in brackets in the connection string', async () => {
    const server = await listen('::1');
    const driver = recordingDriver();

    await createMongoDb({ loadDriver: driver.loadDriver }).connect(
      loginAt(server.port, { host: '::1' }),
    );

    expect(driver.made[0]?.options.hosts.map(String)).toEqual([`[::1]:${server.port}`]);
  });

  it('closes the TCP check of a plaintext connection at once', async () => {
    const server = await listen();
    const driver = recordingDriver();

    await createMongoDb({ loadDriver: driver.loadDriver }).connect(loginAt(server.port));

    expect(server.sockets).toHaveLength(1);
    expect(await closedWithin(server.sockets[0] as Socket, 1_000)).toBe(true);
  });

  it('bounds every command of the session by the invocation deadline', async () => {
    // Prepare: a server that signs in, then never answers.
    const server = await listen();
    const driver = recordingDriver((command) => ('ping' in command ? { ok: 1 } : null));
    const db = createMongoDb({ loadDriver: driver.loadDriver, operationTimeoutMs: 5_000 });
    const started = Date.now();
    const connection = await db.connect(loginAt(server.port), { deadline: started + 300 });

    // Act
    const failure = await db
      .setPassword(connection, 'app', 'new-password-2')
      .catch((e: unknown) => e);

    // Assess
    expect(failure).toBeInstanceOf(ConnectTimeoutError);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('gives up on a sign-in whose ping never answers at the connect timeout, saying how long it waited', async () => {
    // Prepare
    const server = await listen();
    const driver = recordingDriver(() => null);
    const started = Date.now();

    // Act
    const failure = await createMongoDb({ loadDriver: driver.loadDriver })
      .connect(loginAt(server.port), { timeoutMs: 300 })
      .catch((e: unknown) => e);

    // Assess
    expect((failure as Error).constructor).toBe(ConnectTimeoutError);
    expect(String(failure)).toContain('no answer within 300 ms');
    expect((failure as Error).cause).toBeInstanceOf(Error);
    expect(((failure as Error).cause as Error).name).toBe('TimeoutError');
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it.each([
    ['closes the connection on the TLS hello', (socket: Socket) => socket.destroy()],
    ['says nothing', undefined],
  ])(
    'with TLS preferred, connects in plaintext, within the connect timeout, to a server that %s',
    async (_, onData) => {
      // Prepare
      const server = await listen('127.0.0.1', onData);
      const driver = recordingDriver();
      const started = Date.now();

      // Act: no logger is given.
      await createMongoDb({ loadDriver: driver.loadDriver }).connect(
        loginAt(server.port, { tls: 'prefer' }),
        { timeoutMs: 400 },
      );

      // Assess
      expect(driver.made[0]?.options.tls).toBe(false);
      expect(Date.now() - started).toBeLessThan(2_000);
    },
  );
});

/** A TLS listener on loopback that records the name each client asked for (SNI) and its sockets. */
async function tlsListener(certificate: { cert: string; key: string }) {
  const servernames: string[] = [];
  const sockets: Socket[] = [];
  const server = createTlsServer(
    {
      ...certificate,
      // Called during the handshake, only for a client that sent a name.
      SNICallback: (name, done) => {
        servernames.push(name);
        done(null, undefined);
      },
    },
    (socket: TLSSocket) => socket.on('error', () => {}),
  );
  server.on('connection', (socket: Socket) => sockets.push(socket));
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const stop = () => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { port, servernames, sockets, stop };
}

describe('mongodb TLS check before the driver', () => {
  let certificate: { cert: string; key: string };
  const stops: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    certificate = await selfSignedCertificate();
  });
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
  });
  const serve = async () => {
    const server = await tlsListener(certificate);
    stops.push(server.stop);
    return server;
  };

  it('with ssl true and the certificate trusted, hands the driver verified TLS with that CA', async () => {
    const server = await serve();
    const driver = recordingDriver();

    await createMongoDb({ loadDriver: driver.loadDriver, trustedCa: certificate.cert }).connect(
      loginAt(server.port, { tls: 'verify' }),
    );

    const options = driver.made[0]?.options;
    expect(options?.tls).toBe(true);
    expect(options?.tlsInsecure).not.toBe(true);
    expect(options?.ca).toBe(certificate.cert);
  });

  it('asks for the host name of the secret (SNI), and for no name when the host is an IP address', async () => {
    const server = await serve();
    const db = createMongoDb({
      loadDriver: recordingDriver().loadDriver,
      trustedCa: certificate.cert,
    });

    await db.connect(loginAt(server.port, { host: 'localhost', tls: 'verify' }));
    await db.connect(loginAt(server.port, { host: '127.0.0.1', tls: 'verify' }));

    expect(server.sockets).toHaveLength(2);
    expect(server.servernames).toEqual(['localhost']);
  });

  it('with ssl true, refuses an untrusted certificate before loading the driver, keeping the TLS error as cause', async () => {
    const server = await serve();
    const driver = recordingDriver();

    const failure = await createMongoDb({ loadDriver: driver.loadDriver })
      .connect(loginAt(server.port, { tls: 'verify' }))
      .catch((e: unknown) => e);

    expect(failure).toBeInstanceOf(TlsError);
    expect(((failure as Error).cause as { code?: unknown })?.code).toBe(
      'DEPTH_ZERO_SELF_SIGNED_CERT',
    );
    expect(driver.made).toHaveLength(0);
  });

  it('closes the connection of the TLS check once it has its answer', async () => {
    const server = await serve();

    await createMongoDb({ loadDriver: recordingDriver().loadDriver }).connect(
      loginAt(server.port, { tls: 'prefer' }),
    );

    expect(server.sockets).toHaveLength(1);
    expect(await closedWithin(server.sockets[0] as Socket, 1_000)).toBe(true);
  });

  it('leaves no timer of the TLS check behind once it has its answer', async () => {
    const server = await serve();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      await createMongoDb({ loadDriver: recordingDriver().loadDriver }).connect(
        loginAt(server.port, { tls: 'prefer' }),
      );
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('with TLS preferred, connects in plaintext to a server that resets the connection on the TLS hello', async () => {
    const plain = await listener('127.0.0.1', (socket) => socket.resetAndDestroy());
    stops.push(plain.stop);
    const driver = recordingDriver();

    await createMongoDb({ loadDriver: driver.loadDriver }).connect(
      loginAt(plain.port, { tls: 'prefer' }),
    );

    expect(driver.made[0]?.options.tls).toBe(false);
  });
});
