import { connect, createServer, type Server, type Socket } from 'node:net';
import { closeServer, listenOnLoopback } from './loopback.js';

/**
 * A TCP proxy in front of a real server that can cut connections on demand: the network
 * failures of the tests are real socket failures the driver has to classify.
 */
export class TcpProxy {
  /** How the next connections are treated: passed through, or reset at once. */
  private resets = 0;
  /** While set, bytes from the client are held back, never forwarded: a silent network stall. */
  private stalled = false;
  private readonly sockets = new Set<Socket>();
  private readonly paths = new Set<{ dead: boolean }>();
  connections = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => {
      if (!proxy) return client.destroy();
      proxy.connections++;
      if (proxy.resets > 0) {
        proxy.resets--;
        client.resetAndDestroy();
        return;
      }
      const upstream = connect(target.port, target.host);
      proxy.sockets.add(client).add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
      };
      // A dead path (stall({ blackhole: true })) passes nothing either way, not even a close.
      const path = { dead: false };
      proxy.paths.add(path);
      const gone = (socket: Socket) => () => {
        if (path.dead) socket.destroy();
        else drop();
      };
      client.on('error', gone(client)).on('close', gone(client));
      upstream.on('error', gone(upstream)).on('close', gone(upstream));
      client.on('data', (chunk) => {
        if (proxy?.stalled || path.dead) return;
        upstream.write(chunk);
      });
      upstream.on('data', (chunk) => {
        if (!path.dead) client.write(chunk);
      });
    });
    const port = await listenOnLoopback(server);
    proxy = new TcpProxy(server, port);
    return proxy;
  }

  /** Resets the next `count` connections (ECONNRESET on the client side). */
  resetNext(count = 1): void {
    this.resets = count;
  }

  /**
   * From now on, whatever the clients send is swallowed (connections stay open, nothing is
   * answered or closed): the network path goes silent, as when a route or NAT entry dies.
   * `blackhole`: the open connections die for good, both ways: neither side hears anything
   * more from the other, not even its close (resume() revives only new connections).
   */
  stall(options: { blackhole?: boolean } = {}): void {
    this.stalled = true;
    if (options.blackhole) for (const path of this.paths) path.dead = true;
  }

  /** Forwards again (bytes swallowed while stalled stay lost). */
  resume(): void {
    this.stalled = false;
  }

  async stop(): Promise<void> {
    await closeServer(this.server, this.sockets);
  }
}
