import { createHash, createHmac } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';

// The salt is the only random input of a verifier: pinned to the RFC's, the verifier must be the
// one a server derives from the RFC's exchange.
const pinned = vi.hoisted(() => ({ salt: undefined as Buffer | undefined }));
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return {
    ...actual,
    randomBytes: (size: number) => pinned.salt ?? actual.randomBytes(size),
  };
});

const { md5Verifier, scramSha256Verifier } = await import('../../shared/databases/scram.js');

/**
 * RFC 7677 section 3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096
 * iterations; the client's proof and the server's signature over the exchange's AuthMessage.
 */
const rfc7677 = {
  password: 'pencil',
  salt: 'W22ZaJ0SNY7soEsUEjb6gQ==',
  authMessage: [
    'n=user,r=rOprNGfwEbeRWgbNEkqO',
    'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  ].join(','),
  clientProof: 'dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverSignature: '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

/** The parts of a PostgreSQL SCRAM-SHA-256 verifier: SCRAM-SHA-256$<i>:<salt>$<StoredKey>:<ServerKey>. */
const parse = (verifier: string) => {
  const match = /^SCRAM-SHA-256\$(\d+):([^$:]+)\$([^$:]+):([^$:]+)$/.exec(verifier);
  if (!match) throw new Error(`not a SCRAM-SHA-256 verifier: ${verifier}`);
  const [, iterations, salt, storedKey, serverKey] = match as unknown as string[];
  return {
    iterations: Number(iterations),
    salt: salt as string,
    storedKey: Buffer.from(storedKey as string, 'base64'),
    serverKey: Buffer.from(serverKey as string, 'base64'),
  };
};

/** What the server does with a stored verifier (RFC 5802 section 3): check the client's proof. */
const serverAccepts = (storedKey: Buffer, authMessage: string, clientProof: string): boolean => {
  const signature = createHmac('sha256', storedKey).update(authMessage).digest();
  const proof = Buffer.from(clientProof, 'base64');
  const clientKey = Buffer.from(proof.map((byte, i) => byte ^ (signature[i] as number)));
  return createHash('sha256').update(clientKey).digest().equals(storedKey);
};

afterEach(() => {
  pinned.salt = undefined;
});

describe('the SCRAM-SHA-256 verifier sent instead of a password', () => {
  it('is the verifier of RFC 7677: the server accepts the RFC client proof and signs as the RFC says', () => {
    // Arrange
    pinned.salt = Buffer.from(rfc7677.salt, 'base64');

    // Act
    const verifier = scramSha256Verifier(rfc7677.password);

    // Assert
    const parts = parse(verifier as string);
    expect(parts).toMatchObject({ iterations: 4096, salt: rfc7677.salt });
    expect(serverAccepts(parts.storedKey, rfc7677.authMessage, rfc7677.clientProof)).toBe(true);
    expect(createHmac('sha256', parts.serverKey).update(rfc7677.authMessage).digest('base64')).toBe(
      rfc7677.serverSignature,
    );
  });

  it('refuses a client proof made from another password', () => {
    pinned.salt = Buffer.from(rfc7677.salt, 'base64');

    const parts = parse(scramSha256Verifier('pencil2') as string);

    expect(serverAccepts(parts.storedKey, rfc7677.authMessage, rfc7677.clientProof)).toBe(false);
  });

  it('uses a fresh 16-byte salt each time, so two users with one password get different verifiers', () => {
    const first = parse(scramSha256Verifier('same-password') as string);
    const second = parse(scramSha256Verifier('same-password') as string);

    expect(Buffer.from(first.salt, 'base64')).toHaveLength(16);
    expect(first.salt).not.toBe(second.salt);
    expect(first.storedKey.equals(second.storedKey)).toBe(false);
  });

  it('takes the iteration count it is given', () => {
    pinned.salt = Buffer.from(rfc7677.salt, 'base64');

    const parts = parse(scramSha256Verifier(rfc7677.password, 8192) as string);

    expect(parts.iterations).toBe(8192);
    expect(serverAccepts(parts.storedKey, rfc7677.authMessage, rfc7677.clientProof)).toBe(false);
  });

  it.each([
    ['every printable ASCII character', ' !"#$%&\'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~'],
    ['the empty password', ''],
  ])('computes a verifier for %s', (_, password) => {
    expect(scramSha256Verifier(password)).toMatch(/^SCRAM-SHA-256\$4096:/);
  });

  it.each([
    ['a non-ASCII letter first', 'épassword'],
    ['a non-ASCII letter last', 'passwordé'],
    ['a non-ASCII letter inside', 'pass\u00a0word'],
    ['a tab (a control character SASLprep prohibits)', 'pass\tword'],
    ['DEL', 'pass\x7fword'],
  ])('computes none for a password with %s: SASLprep would change it', (_, password) => {
    expect(scramSha256Verifier(password)).toBeUndefined();
  });
});

describe('the md5 verifier sent where password_encryption is md5', () => {
  it('is "md5" + md5(password + user), as PostgreSQL stores it', () => {
    // md5("pencil" + "user"), computed independently: printf 'penciluser' | md5sum
    expect(md5Verifier('pencil', 'user')).toBe('md520c46e3762c864548e296b33c3406aa9');
  });

  it('hashes UTF-8 bytes, as a UTF8 server does', () => {
    // printf 'pässwordüser' | md5sum, in a UTF-8 shell
    expect(md5Verifier('pässword', 'üser')).toBe('md56a55f4ebb8ef2746f6751244835a7559');
  });
});
