import { EventEmitter } from 'node:events';
import { describe, expect, it, vi } from 'vitest';
import { ConnectTimeoutError } from '../../shared/common/errors.js';
import { createMongoDb } from '../../shared/databases/mongodb.js';
import { mongoLogin } from '../support/sample-logins.js';

/**
 * A TCP connect that never completes (a firewall that drops the SYN): node:net is replaced for
 * this file by sockets that never connect, whose idle timer is real.
 */
class SilentSocket extends EventEmitter {
  destroyed = false;
  timeoutMs: number | undefined;
  setTimeout(ms: number, onTimeout?: () => void): this {
    this.timeoutMs = ms;
    if (ms > 0 && onTimeout) setTimeout(onTimeout, ms);
    return this;
  }
  destroy(): this {
    this.destroyed = true;
    return this;
  }
}
const sockets: SilentSocket[] = [];
vi.mock('node:net', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:net')>();
  const connect = () => {
    const socket = new SilentSocket();
    sockets.push(socket);
    return socket;
  };
  return { ...real, connect, default: { ...real, connect } };
});

const login = mongoLogin;

describe('mongodb against a host whose TCP connect never completes', () => {
  it.each(['verify', 'prefer', 'disable'] as const)(
    'with tls %s fails with a connect timeout, bounded by the connect timeout, closes the socket and never loads the driver',
    async (tls) => {
      const loadDriver = vi.fn();
      const db = createMongoDb({ connectTimeoutMs: 60, loadDriver });
      const failure = await db.connect({ ...login, tls }).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(ConnectTimeoutError);
      expect(String(failure)).toContain('orders.cluster-abc');
      const socket = sockets.at(-1);
      expect(socket?.timeoutMs).toBeGreaterThan(0);
      expect(socket?.timeoutMs).toBeLessThanOrEqual(60);
      expect(socket?.destroyed).toBe(true);
      expect(loadDriver).not.toHaveBeenCalled();
    },
  );
});
