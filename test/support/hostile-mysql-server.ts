import { constants, generateKeyPairSync, privateDecrypt, randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { closeServer, listenOnLoopback } from './loopback.js';

/** What a hostile MySQL endpoint obtained from one connection. */
export interface MysqlCapture {
  user: string;
  /** The password, decrypted from the client's RSA answer (or sent in the clear). */
  password: string;
}

const CAPABILITIES =
  0x00000001 | // CLIENT_LONG_PASSWORD
  0x00000008 | // CLIENT_CONNECT_WITH_DB
  0x00000200 | // CLIENT_PROTOCOL_41
  0x00002000 | // CLIENT_TRANSACTIONS
  0x00008000 | // CLIENT_SECURE_CONNECTION
  0x00080000 | // CLIENT_PLUGIN_AUTH
  0x00200000; // CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA

function packet(sequence: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUIntLE(payload.length, 0, 3);
  header.writeUInt8(sequence & 0xff, 3);
  return Buffer.concat([header, payload]);
}

function handshake(salt: Buffer): Buffer {
  const parts = [
    Buffer.from([0x0a]),
    Buffer.from('8.0.36\0', 'latin1'),
    Buffer.from([1, 0, 0, 0]),
    salt.subarray(0, 8),
    Buffer.from([0]),
    Buffer.from([CAPABILITIES & 0xff, (CAPABILITIES >> 8) & 0xff]),
    Buffer.from([0xff]), // utf8mb4
    Buffer.from([0x02, 0x00]),
    Buffer.from([(CAPABILITIES >> 16) & 0xff, (CAPABILITIES >> 24) & 0xff]),
    Buffer.from([21]),
    Buffer.alloc(10),
    Buffer.concat([salt.subarray(8), Buffer.from([0])]),
    Buffer.from('caching_sha2_password\0', 'latin1'),
  ];
  return Buffer.concat(parts);
}

function errorPacket(code: number, state: string, message: string): Buffer {
  const head = Buffer.alloc(3);
  head.writeUInt8(0xff, 0);
  head.writeUInt16LE(code, 1);
  return Buffer.concat([head, Buffer.from(`#${state}${message}`, 'utf8')]);
}

/**
 * A MySQL server run by an attacker, on loopback, speaking the real protocol
 * (caching_sha2_password): it offers no TLS, answers the client's scramble with "perform full
 * authentication", hands out its own RSA public key when asked, decrypts the password the client
 * encrypts with it (or takes it as sent, when the client believes the connection secure), and
 * finally refuses the sign-in (1045), so the client sees an ordinary wrong password.
 */
export class HostileMysqlServer {
  readonly captures: MysqlCapture[] = [];
  /** Every user name that tried to sign in. */
  readonly users: string[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(): Promise<HostileMysqlServer> {
    const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const publicPem = keys.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    let self: HostileMysqlServer | undefined;
    const server = createServer((client) => {
      if (!self) return client.destroy();
      self.sockets.add(client);
      client.on('error', () => {});
      const salt = randomBytes(20);
      client.write(packet(0, handshake(salt)));
      let buffer = Buffer.alloc(0);
      let user: string | undefined;
      let keySent = false;
      const capture = (password: string) => {
        self?.captures.push({ user: user ?? '', password });
      };
      client.on('data', (chunk) => {
        buffer = Buffer.concat([buffer, chunk]);
        while (buffer.length >= 4) {
          const length = buffer.readUIntLE(0, 3);
          if (buffer.length < 4 + length) return;
          const sequence = buffer.readUInt8(3);
          const payload = buffer.subarray(4, 4 + length);
          buffer = buffer.subarray(4 + length);
          const reply = (body: Buffer) => client.write(packet(sequence + 1, body));
          const refuse = () =>
            client.end(
              packet(sequence + 1, errorPacket(1045, '28000', `Access denied for user '${user}'`)),
            );
          if (user === undefined) {
            // HandshakeResponse41: capabilities 4, max packet 4, charset 1, 23 reserved, user\0.
            const end = payload.indexOf(0, 32);
            user = payload.subarray(32, end < 0 ? undefined : end).toString('utf8');
            self?.users.push(user);
            reply(Buffer.from([0x01, 0x04])); // AuthMoreData: perform full authentication
            continue;
          }
          if (!keySent && payload.length === 1 && payload[0] === 0x02) {
            keySent = true;
            reply(Buffer.concat([Buffer.from([0x01]), Buffer.from(publicPem, 'latin1')]));
            continue;
          }
          if (keySent) {
            try {
              const xored = privateDecrypt(
                {
                  key: keys.privateKey,
                  oaepHash: 'sha1',
                  padding: constants.RSA_PKCS1_OAEP_PADDING,
                },
                payload,
              );
              const plain = Buffer.from(
                xored.map((byte, i) => byte ^ (salt[i % salt.length] ?? 0)),
              );
              capture(plain.toString('utf8').replace(/\0$/, ''));
            } catch {
              // not an RSA answer: nothing learnt
            }
          } else {
            capture(payload.toString('utf8').replace(/\0$/, ''));
          }
          refuse();
          return;
        }
      });
    });
    const port = await listenOnLoopback(server);
    self = new HostileMysqlServer(server, port);
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
