import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthenticationError, TlsError } from '../../shared/common/errors.js';
import { createMongoDb } from '../../shared/databases/mongodb.js';
import type { Login, TlsMode } from '../../shared/databases/types.js';
import { CountingListener, FakeMongoServer } from '../support/mongo-fake-server.js';
import { selfSignedCertificate } from '../support/self-signed.js';

const PASSWORD = 'Master-Password-9f3a7c1e5b2d';
const USER = 'rotation_master';

/** Every encoding in which a password could travel that a listener could read back. */
const exposures = (password: string, user: string): Buffer[] => [
  Buffer.from(password, 'utf8'),
  Buffer.from(Buffer.from(password, 'utf8').toString('base64')),
  // SASL PLAIN: "\0user\0password", base64 in the payload or raw in BinData.
  Buffer.from(`\u0000${user}\u0000${password}`, 'utf8'),
  Buffer.from(Buffer.from(`\u0000${user}\u0000${password}`, 'utf8').toString('base64')),
];

const leaked = (fake: FakeMongoServer): boolean => {
  const bytes = fake.allReceived();
  return exposures(PASSWORD, USER).some((needle) => bytes.includes(needle));
};

/**
 * Whoever answers at the address a secret names (an on-path attacker, a host taken over, a
 * look-alike endpoint) must never obtain a privileged credential: not in plaintext, not by
 * naming another host for the driver to follow, not by offering a cleartext mechanism.
 */
describe('mongodb credentials facing a hostile server', () => {
  const servers: { stop(): Promise<void> }[] = [];
  let certificate: { cert: string; key: string } | undefined;
  const db = createMongoDb({ connectTimeoutMs: 3_000, tlsHandshakeTimeoutMs: 1_000 });

  beforeAll(async () => {
    certificate = await selfSignedCertificate().catch(() => undefined);
    if (!certificate)
      console.warn('mongodb hostile server: TLS impostor tests skipped: no openssl');
  });

  afterAll(async () => {
    for (const server of servers) await server.stop();
  });

  async function fake(options: Parameters<typeof FakeMongoServer.start>[0] = {}) {
    const server = await FakeMongoServer.start(options);
    servers.push(server);
    return server;
  }

  const login = (server: FakeMongoServer, tls: TlsMode, host = server.host): Login => ({
    host,
    port: server.port,
    user: USER,
    password: PASSWORD,
    database: 'admin',
    tls,
  });

  const attempt = (target: Login, trustedCa?: string) =>
    (trustedCa === undefined ? db : createMongoDb({ trustedCa, connectTimeoutMs: 3_000 }))
      .connect(target, { timeoutMs: 3_000, deadline: Date.now() + 5_000 })
      .then(
        async (connection) => {
          await db.close(connection);
          return undefined;
        },
        (error: unknown) => error,
      );

  it('never follows a primary or hosts list the server names in its hello answer', async () => {
    // Prepare: the impostor says it is a secondary of a replica set whose primary is elsewhere.
    const elsewhere = await CountingListener.start();
    servers.push(elsewhere);
    const impostor = await fake({
      hello: {
        ismaster: false,
        isWritablePrimary: false,
        secondary: true,
        setName: 'rs0',
        setVersion: 1,
        hosts: [`127.0.0.1:${elsewhere.port}`],
        primary: `127.0.0.1:${elsewhere.port}`,
        me: '127.0.0.1:1',
      },
    });

    // Act
    const failure = await attempt(login(impostor, 'disable'));

    // Assess: nothing, not even a monitor, went to the host the answer named.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(elsewhere.connections).toBe(0);
    expect(leaked(impostor)).toBe(false);
    expect(failure).toBeInstanceOf(AuthenticationError);
  });

  it('never sends the password to a server that offers only PLAIN (or a mechanism it invents)', async () => {
    // Prepare
    const impostor = await fake({ hello: { saslSupportedMechs: ['PLAIN', 'MONGODB-CR'] } });

    // Act
    const failure = await attempt(login(impostor, 'disable'));

    // Assess: only SCRAM conversations were started, and no form of the password arrived.
    expect(failure).toBeInstanceOf(AuthenticationError);
    const mechanisms = impostor.commands
      .filter((command) => command.name === 'saslStart')
      .map((command) => String(command.document.mechanism));
    const speculative = impostor.commands
      .map((command) => command.document.speculativeAuthenticate?.mechanism)
      .filter((mechanism) => mechanism !== undefined);
    expect(mechanisms.length + speculative.length).toBeGreaterThan(0);
    expect([...mechanisms, ...speculative].every((m) => /^SCRAM-SHA-(1|256)$/.test(m))).toBe(true);
    expect(leaked(impostor)).toBe(false);
  });

  it('with ssl true, tells a plaintext server neither the user nor the password', async () => {
    // Prepare: the address answers in plaintext (TLS stripped by whoever sits on the path).
    const impostor = await fake();

    // Act
    const failure = await attempt(login(impostor, 'verify'));

    // Assess
    expect(failure).toBeInstanceOf(TlsError);
    expect(impostor.commands).toEqual([]);
    expect(impostor.allReceived().includes(Buffer.from(USER))).toBe(false);
    expect(leaked(impostor)).toBe(false);
  });

  describe('a TLS impostor', () => {
    it('with ssl true, gets nothing when its trusted certificate names another host', async (context) => {
      if (!certificate) return context.skip();
      // Prepare: a certificate the function trusts, for 127.0.0.1 and localhost, served at
      // 127.0.0.2 (the name the secret gives): valid, but for another host.
      const impostor = await fake({ tls: certificate, host: '127.0.0.2' });

      // Act
      const failure = await attempt(login(impostor, 'verify'), certificate.cert);

      // Assess: no command was decrypted, so no sign-in was attempted.
      expect(failure).toBeInstanceOf(TlsError);
      expect(impostor.commands).toEqual([]);
      expect(leaked(impostor)).toBe(false);
    });

    it('with ssl true, gets nothing when its certificate is not trusted', async (context) => {
      if (!certificate) return context.skip();
      const other = await selfSignedCertificate();
      const impostor = await fake({ tls: certificate });

      const failure = await attempt(login(impostor, 'verify'), other.cert);

      expect(failure).toBeInstanceOf(TlsError);
      expect(impostor.commands).toEqual([]);
      expect(leaked(impostor)).toBe(false);
    });

    it('with ssl true and the right host, gets a SCRAM proof only (control: the fake works)', async (context) => {
      if (!certificate) return context.skip();
      const impostor = await fake({ tls: certificate });

      const failure = await attempt(login(impostor, 'verify'), certificate.cert);

      expect(failure).toBeInstanceOf(Error);
      expect(impostor.commands.map((command) => command.name)).toContain('saslStart');
      expect(leaked(impostor)).toBe(false);
    });
  });
});
