import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
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

/** One row of a result: text columns, or booleans (sent as bool, 't' / 'f', as the server does). */
export type FakeRow = Record<string, string | boolean | null>;

/** How the fake server answers one statement. */
export type FakeReply =
  | { rows?: FakeRow[]; command?: string }
  | { error: { code: string; message: string } }
  /** Never answers, as on a network gone silent mid-statement. */
  | 'silence';

/** Answers a statement (simple query text, or an extended query with its parameters). */
export type FakeHandler = (sql: string, params: (string | null)[]) => FakeReply | undefined;

/** One client connection, as the server saw it. */
export interface FakeSession {
  user: string;
  /** Whether the client said goodbye (Terminate). */
  terminated: boolean;
  /** Resolves when the connection is gone. */
  closed: Promise<void>;
  socket: Socket;
}

/** The answers of a PostgreSQL 16 with UTF8 encoding and SCRAM passwords, for what `handler` leaves. */
export const defaultReply = (sql: string): FakeReply => {
  if (sql.includes("current_setting('password_encryption')"))
    return { rows: [{ method: 'scram-sha-256', encoding: 'UTF8' }] };
  const command = /^\s*(\w+)/.exec(sql)?.[1]?.toUpperCase() ?? '';
  if (command === 'SELECT') return { rows: [], command: 'SELECT 0' };
  if (command === 'ALTER' || command === 'CREATE') return { command: `${command} ROLE` };
  return { command };
};

const BOOL_OID = 16;
const TEXT_OID = 25;

/**
 * A PostgreSQL endpoint on loopback speaking the real v3 wire protocol to the real `pg` client:
 * trust sign-in, simple and extended queries answered by `handler` (then {@link defaultReply}),
 * TLS when given a certificate. For what a running server cannot be made to do on demand: stay
 * silent (at sign-in, mid-statement, or after Terminate), end a session (57P01), answer as an
 * older server or another encoding. Every statement is recorded.
 */
export class FakePgServer {
  readonly statements: { sql: string; params: (string | null)[] }[] = [];
  readonly sessions: FakeSession[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(
    options: {
      handler?: FakeHandler;
      /** A certificate: SSLRequest is answered "S" and the session runs over TLS. */
      tls?: { cert: string; key: string };
      /** Never answers the startup message. */
      silentStartup?: boolean;
      /** Keeps the connection open after Terminate (a goodbye the network loses). */
      ignoreTerminate?: boolean;
    } = {},
  ): Promise<FakePgServer> {
    let self: FakePgServer | undefined;
    const reply = (sql: string, params: (string | null)[]): FakeReply => {
      self?.statements.push({ sql, params });
      return options.handler?.(sql, params) ?? defaultReply(sql);
    };
    // allowHalfOpen: a client's FIN does not close our side, so ignoreTerminate can hold it open.
    const server = createServer({ allowHalfOpen: true }, (raw) => {
      if (!self) return raw.destroy();
      const owner = self;
      owner.sockets.add(raw);
      raw.on('error', () => {});
      let resolveClosed = () => {};
      const session: FakeSession = {
        user: '',
        terminated: false,
        closed: new Promise<void>((resolve) => {
          resolveClosed = resolve;
        }),
        socket: raw,
      };
      raw.on('close', () => resolveClosed());
      raw.on('end', () => {
        if (!options.ignoreTerminate) raw.end();
      });
      let socket: Socket = raw;
      let buffer: Buffer = Buffer.alloc(0);
      let started = false;
      let silent = false;
      let skipping = false;
      let pending: { sql: string; answer?: FakeReply } = { sql: '' };
      const send = (type: string, body?: Buffer) => socket.write(pgMessage(type, body));
      const ready = () => send('Z', Buffer.from('I'));
      const sendError = (code: string, message: string) =>
        socket.write(errorResponse(code, message));
      const sendRows = (answer: FakeReply, describe: boolean) => {
        if (answer === 'silence' || 'error' in answer) return;
        const rows = answer.rows;
        if (describe) {
          if (rows === undefined) send('n');
          else send('T', rowDescription(rows));
        }
        for (const row of rows ?? []) send('D', dataRow(row));
        send('C', cstring(answer.command ?? (rows ? `SELECT ${rows.length}` : 'OK')));
      };
      const onData = (chunk: Buffer) => {
        buffer = Buffer.concat([buffer, chunk]);
        for (;;) {
          if (!started) {
            const startup = takeStartup(buffer);
            if (!startup) return;
            const { code, message } = startup;
            buffer = startup.rest;
            if (code === SSL_REQUEST) {
              if (!options.tls) {
                socket.write('N');
                continue;
              }
              socket.write('S');
              socket.off('data', onData);
              socket = new TLSSocket(raw, { isServer: true, ...options.tls });
              socket.on('error', () => {});
              socket.on('data', onData);
              return;
            }
            if (code !== PROTOCOL_3) return void raw.destroy();
            session.user = startupParameters(message).user ?? '';
            owner.sessions.push(session);
            started = true;
            if (options.silentStartup) {
              silent = true;
              return;
            }
            const ok = Buffer.alloc(4);
            send('R', ok); // AuthenticationOk
            const key = Buffer.alloc(8);
            key.writeInt32BE(4242, 0);
            send('K', key);
            ready();
            continue;
          }
          const typed = takeTyped(buffer);
          if (!typed) return;
          const { type, body } = typed;
          buffer = typed.rest;
          if (type === 'X') {
            session.terminated = true;
            if (!options.ignoreTerminate) socket.end();
            return;
          }
          if (silent) continue;
          if (type === 'Q') {
            const answer = reply(body.toString('utf8').replace(/\0$/, ''), []);
            if (answer === 'silence') {
              silent = true;
              continue;
            }
            if ('error' in answer) sendError(answer.error.code, answer.error.message);
            else sendRows(answer, true);
            ready();
          } else if (type === 'P') {
            if (skipping) continue;
            const [, sql = ''] = body.toString('utf8').split('\0');
            pending = { sql };
            send('1');
          } else if (type === 'B') {
            if (skipping) continue;
            const answer = reply(pending.sql, bindParameters(body));
            pending.answer = answer;
            if (answer === 'silence') {
              silent = true;
              continue;
            }
            if ('error' in answer) {
              sendError(answer.error.code, answer.error.message);
              skipping = true;
            } else send('2');
          } else if (type === 'D') {
            if (!skipping && pending.answer) sendRows(pending.answer, true);
          } else if (type === 'S') {
            skipping = false;
            ready();
          }
          // 'E' (Execute): the rows went with Describe; 'H' (Flush): nothing buffered.
        }
      };
      socket.on('data', onData);
    });
    const port = await listenOnLoopback(server);
    self = new FakePgServer(server, port);
    return self;
  }

  /** Ends every session as `pg_terminate_backend` does: FATAL 57P01, then the socket closes. */
  terminateSessions(): void {
    for (const session of this.sessions) {
      session.socket.end(
        errorResponse('57P01', 'terminating connection due to administrator command', 'FATAL'),
      );
    }
  }

  async stop(): Promise<void> {
    await closeServer(this.server, this.sockets);
  }
}

const cstring = (text: string) => Buffer.from(`${text}\0`, 'utf8');

function rowDescription(rows: FakeRow[]): Buffer {
  const first = rows[0] ?? {};
  const names = Object.keys(first);
  const parts = [Buffer.alloc(2)];
  parts[0]?.writeInt16BE(names.length, 0);
  for (const name of names) {
    const field = Buffer.alloc(18);
    field.writeInt32BE(0, 0); // table oid
    field.writeInt16BE(0, 4); // column number
    field.writeInt32BE(typeof first[name] === 'boolean' ? BOOL_OID : TEXT_OID, 6);
    field.writeInt16BE(-1, 10); // type size
    field.writeInt32BE(-1, 12); // type modifier
    field.writeInt16BE(0, 16); // text format
    parts.push(cstring(name), field);
  }
  return Buffer.concat(parts);
}

function dataRow(row: FakeRow): Buffer {
  const values = Object.values(row);
  const parts = [Buffer.alloc(2)];
  parts[0]?.writeInt16BE(values.length, 0);
  for (const value of values) {
    const length = Buffer.alloc(4);
    if (value === null) {
      length.writeInt32BE(-1, 0);
      parts.push(length);
      continue;
    }
    const text = Buffer.from(typeof value === 'boolean' ? (value ? 't' : 'f') : value, 'utf8');
    length.writeInt32BE(text.length, 0);
    parts.push(length, text);
  }
  return Buffer.concat(parts);
}

/** The text parameters of a Bind message. */
function bindParameters(body: Buffer): (string | null)[] {
  let at = body.indexOf(0) + 1; // portal
  at = body.indexOf(0, at) + 1; // statement
  const formats = body.readInt16BE(at);
  at += 2 + 2 * formats;
  const count = body.readInt16BE(at);
  at += 2;
  const params: (string | null)[] = [];
  for (let i = 0; i < count; i++) {
    const length = body.readInt32BE(at);
    at += 4;
    if (length < 0) {
      params.push(null);
      continue;
    }
    params.push(body.subarray(at, at + length).toString('utf8'));
    at += length;
  }
  return params;
}
