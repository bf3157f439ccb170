import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { BSON, type Document } from 'mongodb';
import { closeServer, listenOnLoopback } from './loopback.js';

const OP_REPLY = 1;
const OP_QUERY = 2004;
const OP_MSG = 2013;

/** One command the fake received: the database it was sent to and its document. */
export interface ReceivedCommand {
  db: string;
  name: string;
  document: Document;
}

export interface FakeMongoOptions {
  /** Fields of the hello answer, over the defaults of a standalone MongoDB 7 server. */
  hello?: Document;
  /**
   * Answers a command other than hello (null: never answer it, as a stalled server); default:
   * saslStart/saslContinue refused (code 18).
   */
  answer?: (command: ReceivedCommand) => Document | null | undefined;
  /** Serve TLS with this certificate and key (PEM) instead of plaintext. */
  tls?: { cert: string; key: string };
  /** Listen address (default 127.0.0.1). */
  host?: string;
}

const REFUSED = {
  ok: 0,
  code: 18,
  codeName: 'AuthenticationFailed',
  errmsg: 'Authentication failed.',
};

/**
 * A hostile or impostor MongoDB server on loopback that speaks enough of the wire protocol
 * (OP_QUERY and OP_MSG, OP_REPLY) for the real driver to connect, answers hello as it is told,
 * and records every byte and command it receives (decrypted, when it serves TLS). It shows what a
 * function would hand to whoever answers at the address a secret names.
 */
export class FakeMongoServer {
  /** Everything the clients sent, per connection, in order (after TLS decryption). */
  readonly received: Buffer[] = [];
  readonly commands: ReceivedCommand[] = [];
  connections = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly host: string,
    readonly port: number,
  ) {}

  static async start(options: FakeMongoOptions = {}): Promise<FakeMongoServer> {
    let fake: FakeMongoServer | undefined;
    const onSocket = (socket: Socket) => {
      if (!fake) return socket.destroy();
      fake.serve(socket, options);
    };
    const server = options.tls
      ? createTlsServer({ cert: options.tls.cert, key: options.tls.key }, onSocket)
      : createTcpServer(onSocket);
    // A TLS handshake the client aborts is an error of the server, not of the test.
    server.on('tlsClientError', () => {});
    const host = options.host ?? '127.0.0.1';
    const port = await listenOnLoopback(server, host);
    fake = new FakeMongoServer(server, host, port);
    if (options.tls) server.on('connection', () => fake && fake.connections++);
    return fake;
  }

  /** All bytes received, as one buffer: search it for what must never have been sent. */
  allReceived(): Buffer {
    return Buffer.concat(this.received);
  }

  private serve(socket: Socket, options: FakeMongoOptions) {
    if (!options.tls) this.connections++;
    this.sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => this.sockets.delete(socket));
    const index = this.received.push(Buffer.alloc(0)) - 1;
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      this.received[index] = Buffer.concat([this.received[index] as Buffer, chunk]);
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 16) {
        const length = pending.readInt32LE(0);
        if (length < 16 || length > 48_000_000) return socket.destroy();
        if (pending.length < length) return;
        const message = pending.subarray(0, length);
        pending = pending.subarray(length);
        const reply = this.handle(message, options);
        if (reply) socket.write(reply);
      }
    });
  }

  private handle(message: Buffer, options: FakeMongoOptions): Buffer | undefined {
    const requestId = message.readInt32LE(4);
    const opCode = message.readInt32LE(12);
    if (opCode === OP_QUERY) {
      const nameEnd = message.indexOf(0, 20);
      const collection = message.subarray(20, nameEnd).toString('utf8');
      const at = nameEnd + 1 + 8;
      const document = BSON.deserialize(message.subarray(at, at + message.readInt32LE(at)));
      const answer = this.answer(collection.split('.')[0] ?? 'admin', document, options);
      if (answer === null) return undefined;
      const body = BSON.serialize(answer);
      const header = Buffer.alloc(36);
      header.writeInt32LE(36 + body.length, 0);
      header.writeInt32LE(requestId + 1_000_000, 4);
      header.writeInt32LE(requestId, 8);
      header.writeInt32LE(OP_REPLY, 12);
      header.writeInt32LE(1, 32); // numberReturned; flags, cursorId and startingFrom stay 0
      return Buffer.concat([header, body]);
    }
    if (opCode === OP_MSG) {
      const flags = message.readUInt32LE(16);
      const end = flags & 1 ? message.length - 4 : message.length;
      let document: Document | undefined;
      for (let at = 20; at < end; ) {
        const kind = message[at] as number;
        const size = message.readInt32LE(at + 1);
        if (kind === 0) document = BSON.deserialize(message.subarray(at + 1, at + 1 + size));
        at += 1 + size;
      }
      if (!document) return undefined;
      const answer = this.answer(String(document.$db ?? 'admin'), document, options);
      // flagBits bit 1 (moreToCome): the client expects no answer (endSessions with w:0).
      if (answer === null || flags & 2) return undefined;
      const body = BSON.serialize(answer);
      const header = Buffer.alloc(21);
      header.writeInt32LE(21 + body.length, 0);
      header.writeInt32LE(requestId + 1_000_000, 4);
      header.writeInt32LE(requestId, 8);
      header.writeInt32LE(OP_MSG, 12);
      return Buffer.concat([header, body]);
    }
    return undefined;
  }

  private answer(db: string, document: Document, options: FakeMongoOptions): Document | null {
    const name = Object.keys(document)[0] ?? '';
    const command = { db, name, document };
    this.commands.push(command);
    if (/^(hello|ismaster|isMaster)$/.test(name)) {
      return {
        ismaster: true,
        isWritablePrimary: true,
        helloOk: true,
        maxBsonObjectSize: 16_777_216,
        maxMessageSizeBytes: 48_000_000,
        maxWriteBatchSize: 100_000,
        localTime: new Date(),
        logicalSessionTimeoutMinutes: 30,
        connectionId: this.connections,
        minWireVersion: 0,
        maxWireVersion: 21,
        readOnly: false,
        ...options.hello,
        ok: 1,
      };
    }
    const custom = options.answer?.(command);
    if (custom !== undefined) return custom;
    if (name === 'saslStart' || name === 'saslContinue') return REFUSED;
    if (name === 'endSessions') return { ok: 1 };
    return { ok: 0, code: 13, codeName: 'Unauthorized', errmsg: 'command requires authentication' };
  }

  async stop(): Promise<void> {
    await closeServer(this.server, this.sockets);
  }
}

/** A listener that only counts who connects to it: the host a hostile answer points at. */
export class CountingListener {
  connections = 0;
  private readonly sockets = new Set<Socket>();
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(): Promise<CountingListener> {
    let listener: CountingListener | undefined;
    const server = createTcpServer((socket) => {
      if (listener) {
        listener.connections++;
        listener.sockets.add(socket);
      }
      socket.on('error', () => {});
    });
    const port = await listenOnLoopback(server);
    listener = new CountingListener(server, port);
    return listener;
  }

  async stop(): Promise<void> {
    await closeServer(this.server, this.sockets);
  }
}
