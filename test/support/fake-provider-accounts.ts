/**
 * Two or more accounts of one provider behind one base URL, as at the real provider: each
 * request goes to the account its credential belongs to (the first account when none claims it,
 * which then answers 401 as the provider would). Lets a test give one adapter, and so one
 * rotation function, secrets of team A's and team B's accounts.
 *
 *   const accounts = await new FakeProviderAccounts([teamA, teamB]).start();
 *   createSendGrid({ baseUrl: accounts.baseUrl });
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { FakeKey, FakeProviderServer } from './fake-provider-server.js';

export class FakeProviderAccounts {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private url?: string;

  constructor(readonly accounts: readonly FakeProviderServer<FakeKey>[]) {}

  get baseUrl(): string {
    if (!this.url) throw new Error('start() the accounts first');
    return this.url;
  }

  async start(): Promise<this> {
    for (const account of this.accounts) await account.start();
    this.server = createServer((req, res) => {
      void (async () => {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        const account =
          this.accounts.find((candidate) => candidate.knowsCredential(req.headers)) ??
          this.accounts[0];
        const headers = Object.fromEntries(
          Object.entries(req.headers).filter(
            (entry): entry is [string, string] =>
              typeof entry[1] === 'string' && !['host', 'content-length'].includes(entry[0]),
          ),
        );
        const body = Buffer.concat(chunks);
        try {
          const answer = await fetch(`${account?.baseUrl}${req.url ?? '/'}`, {
            method: req.method ?? 'GET',
            headers,
            ...(body.length > 0 ? { body } : {}),
            redirect: 'manual',
          });
          const payload = Buffer.from(await answer.arrayBuffer());
          const out: Record<string, string> = {};
          answer.headers.forEach((value, name) => {
            if (!['content-length', 'transfer-encoding', 'connection'].includes(name)) {
              out[name] = value;
            }
          });
          res.writeHead(answer.status, { ...out, 'content-length': payload.length });
          res.end(payload);
        } catch {
          // The account dropped the connection (a fault switch): drop ours too.
          req.socket.destroy();
        }
      })();
    });
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject);
      this.server?.listen(0, '127.0.0.1', () => resolve());
    });
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
    for (const account of this.accounts) await account.stop();
  }
}
