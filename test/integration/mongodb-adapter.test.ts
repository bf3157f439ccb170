import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  ConnectionError,
  HostUnreachableError,
  TlsError,
} from '../../shared/common/errors.js';
import { createMongoDb } from '../../shared/databases/mongodb.js';
import type { Login } from '../../shared/databases/types.js';
import { MongoAdmin } from '../support/mongo-admin.js';
import { provided } from '../support/servers.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const tls = provided('mongoTls');

describe('mongodb adapter on a real server', () => {
  let admin: MongoAdmin;
  let adminLogin: Login;
  const db = createMongoDb({ tlsHandshakeTimeoutMs: 500 });

  beforeAll(async () => {
    admin = await MongoAdmin.connect(provided('mongoAdminUrl'));
    adminLogin = {
      host: admin.host,
      port: admin.port,
      user: admin.username,
      password: admin.password,
      database: admin.authSource,
      tls: 'disable',
    };
  });
  afterAll(async () => {
    await admin.close();
  });

  const failureOf = (login: Login, timeoutMs = 2_000) =>
    db.connect(login, { timeoutMs }).then(
      async (connection) => {
        await db.close(connection);
        return 'signed in';
      },
      (error: unknown) => error,
    );

  it('signs in and runs a command as the administrator', async () => {
    const connection = await db.connect(adminLogin);
    await db.ping(connection);
    expect(await db.userExists(connection, admin.username)).toBe(true);
    await db.close(connection);
  });

  it('classifies a wrong password as an authentication failure, the only one that allows a fallback', async () => {
    const failure = await failureOf({ ...adminLogin, password: `${admin.password}-wrong` });
    expect(failure).toBeInstanceOf(AuthenticationError);
    expect(String(failure)).toContain('refused the credentials');
    expect(String(failure)).not.toContain(admin.password);
  });

  it('classifies a closed port as an unreachable host, at once rather than after a timeout', async () => {
    // Prepare: a port that was just open and is closed now.
    const proxy = await TcpProxy.start({ host: admin.host, port: admin.port });
    await proxy.stop();
    const started = Date.now();

    // Act
    const failure = await failureOf({ ...adminLogin, host: '127.0.0.1', port: proxy.port }, 10_000);

    // Assess
    expect(failure).toBeInstanceOf(HostUnreachableError);
    expect(String(failure)).toContain('ECONNREFUSED');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('classifies a server that accepts TCP and then drops every connection as unavailable, not as wrong credentials', async () => {
    // Prepare
    const proxy = await TcpProxy.start({ host: admin.host, port: admin.port });
    proxy.resetNext(1_000);

    // Act
    const failure = await failureOf({ ...adminLogin, host: '127.0.0.1', port: proxy.port });
    await proxy.stop();

    // Assess
    expect(failure).toBeInstanceOf(ConnectionError);
    expect(failure).not.toBeInstanceOf(AuthenticationError);
  });

  describe.runIf(tls)("on the server's TLS port", () => {
    it('classifies an untrusted certificate as a TLS failure when ssl is true', async () => {
      const failure = await failureOf({ ...adminLogin, port: tls?.port as number, tls: 'verify' });
      expect(failure).toBeInstanceOf(TlsError);
    });

    it('signs in over verified TLS with the CA trusted, by IP address and by host name', async () => {
      const trusting = createMongoDb({ trustedCa: tls?.ca });
      for (const host of ['127.0.0.1', 'localhost']) {
        const connection = await trusting.connect({
          ...adminLogin,
          host,
          port: tls?.port as number,
          tls: 'verify',
        });
        await trusting.ping(connection);
        await trusting.close(connection);
      }
    });

    it('says TLS may be required when a plaintext connection is dropped (ssl false on a TLS port)', async () => {
      const failure = await failureOf({ ...adminLogin, port: tls?.port as number, tls: 'disable' });
      expect(failure).toBeInstanceOf(ConnectionError);
      expect(String(failure)).toContain('if the server requires TLS, remove "ssl": false');
    });
  });
});
