import {
  type CipherGCMTypes,
  constants,
  createCipheriv,
  generateKeyPairSync,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decryptCompactJwe, JweError } from '../../shared/providers/jwe.js';
import { encryptCompactJwe } from '../support/fake-stripe.js';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
const secret = 'rk_live_51ExampleSecretValueThatStripeWouldEncrypt';

/** The same JWE with one segment replaced. */
const withSegment = (jwe: string, index: number, value: string) =>
  jwe
    .split('.')
    .map((part, i) => (i === index ? value : part))
    .join('.');
const header = (fields: object) => Buffer.from(JSON.stringify(fields)).toString('base64url');

describe('compact JWE decryption', () => {
  it.each(['RSA-OAEP', 'RSA-OAEP-256'] as const)(
    'reads a secret encrypted with %s and A256GCM',
    (alg) => {
      // Prepare
      const jwe = encryptCompactJwe(secret, publicPem, alg);

      // Act
      const plaintext = decryptCompactJwe(jwe, privateKey);

      // Assess
      expect(plaintext).toBe(secret);
    },
  );

  it.each([
    ['three segments (a JWS)', 'a.b.c', /must have 5 segments, got 3/],
    [
      'another key algorithm',
      withSegment(
        encryptCompactJwe(secret, publicPem),
        0,
        header({ alg: 'RSA1_5', enc: 'A256GCM' }),
      ),
      /JWE alg "RSA1_5" is not supported \(RSA-OAEP, RSA-OAEP-256\)/,
    ],
    [
      'another content algorithm',
      withSegment(
        encryptCompactJwe(secret, publicPem),
        0,
        header({ alg: 'RSA-OAEP-256', enc: 'A128CBC-HS256' }),
      ),
      /JWE enc "A128CBC-HS256" is not supported/,
    ],
    [
      'a tampered ciphertext',
      withSegment(
        encryptCompactJwe(secret, publicPem),
        3,
        Buffer.from('tampered').toString('base64url'),
      ),
      /JWE authentication failed/,
    ],
    [
      'a secret encrypted to another public key',
      encryptCompactJwe(
        secret,
        generateKeyPairSync('rsa', { modulusLength: 2048 })
          .publicKey.export({ type: 'spki', format: 'pem' })
          .toString(),
      ),
      /cannot unwrap the JWE content key/,
    ],
  ])('refuses %s by name, without quoting it', (_, jwe, message) => {
    // Act
    const failure = (() => {
      try {
        decryptCompactJwe(jwe, privateKey);
      } catch (error) {
        return error;
      }
    })();

    // Assess
    expect(failure).toBeInstanceOf(JweError);
    expect((failure as Error).message).toMatch(message);
    expect((failure as Error).message).not.toContain(jwe.slice(0, 20));
  });
});

/** A compact JWE with a chosen protected header, content key length, iv and tag (RSA-OAEP-256). */
function jweWith(
  fields: Record<string, unknown>,
  options: { keyBytes?: number; ivBytes?: number; tagBytes?: number; plaintext?: string } = {},
): string {
  const protectedHeader = header({ alg: 'RSA-OAEP-256', enc: 'A256GCM', ...fields });
  const keyBytes = options.keyBytes ?? 32;
  const contentKey = randomBytes(keyBytes);
  const encryptedKey = publicEncrypt(
    { key: publicPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
    contentKey,
  );
  const iv = randomBytes(options.ivBytes ?? 12);
  const cipher = createCipheriv(`aes-${keyBytes * 8}-gcm` as CipherGCMTypes, contentKey, iv, {
    authTagLength: 16,
  });
  cipher.setAAD(Buffer.from(protectedHeader, 'ascii'));
  const ciphertext = Buffer.concat([
    cipher.update(options.plaintext ?? secret, 'utf8'),
    cipher.final(),
  ]);
  const tag = cipher.getAuthTag().subarray(0, options.tagBytes ?? 16);
  return [
    protectedHeader,
    ...[encryptedKey, iv, ciphertext, tag].map((part) => part.toString('base64url')),
  ].join('.');
}

const failureOf = (jwe: string) => {
  try {
    decryptCompactJwe(jwe, privateKey);
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the JWE to be refused');
};

describe('compact JWE decryption, every check', () => {
  it.each([
    ['A128GCM', 16],
    ['A192GCM', 24],
    ['A256GCM', 32],
  ] as const)('reads %s with a content key of %i bytes', (enc, keyBytes) => {
    // Act
    const plaintext = decryptCompactJwe(jweWith({ enc }, { keyBytes }), privateKey);

    // Assess
    expect(plaintext).toBe(secret);
  });

  it('reads a JWE with surrounding white space, and with an empty crit list', () => {
    // Act
    const padded = decryptCompactJwe(`\n ${encryptCompactJwe(secret, publicPem)} \n`, privateKey);
    const emptyCrit = decryptCompactJwe(jweWith({ crit: [] }), privateKey);

    // Assess
    expect(padded).toBe(secret);
    expect(emptyCrit).toBe(secret);
  });

  it.each([
    ['the header', 0, 'header'],
    ['the encrypted key', 1, 'encrypted key'],
    ['the iv', 2, 'iv'],
    ['the ciphertext', 3, 'ciphertext'],
    ['the tag', 4, 'tag'],
  ])('refuses %s in standard base64 rather than base64url, naming it', (_, index, name) => {
    // Prepare: a "+" (standard base64) in one segment of a good JWE.
    const jwe = encryptCompactJwe(secret, publicPem);
    const parts = jwe.split('.');
    parts[index] = `+${parts[index]?.slice(1)}`;

    // Act
    const failure = failureOf(parts.join('.'));

    // Assess
    expect(failure).toBeInstanceOf(JweError);
    expect(failure.name).toBe('JweError');
    expect(failure.message).toBe(`JWE ${name} is not base64url`);
  });

  it.each([
    [
      'a header that is not JSON',
      () =>
        withSegment(
          encryptCompactJwe(secret, publicPem),
          0,
          Buffer.from('not json').toString('base64url'),
        ),
      /protected header is not JSON/,
    ],
    [
      'an alg given as a list',
      () => jweWith({ alg: ['RSA-OAEP-256'] }),
      /JWE alg "" is not supported/,
    ],
    ['an enc given as a list', () => jweWith({ enc: ['A256GCM'] }), /JWE enc "" is not supported/],
    ['a compressed payload', () => jweWith({ zip: 'DEF' }), /compressed JWE \(zip\)/],
    [
      'critical header parameters',
      () => jweWith({ crit: ['exp'], exp: 1 }),
      /critical header parameters/,
    ],
    [
      'a content key of the wrong length',
      () => jweWith({ enc: 'A128GCM' }, { keyBytes: 32 }),
      /content key is 32 bytes; A128GCM needs 16/,
    ],
    ['an iv of 16 bytes', () => jweWith({}, { ivBytes: 16 }), /iv is 16 bytes; AES-GCM needs 12/],
    ['a tag of 8 bytes', () => jweWith({}, { tagBytes: 8 }), /tag is 8 bytes; AES-GCM needs 16/],
  ])('refuses %s by name', (_, make, message) => {
    // Act
    const failure = failureOf(make());

    // Assess
    expect(failure).toBeInstanceOf(JweError);
    expect(failure.message).toMatch(message);
  });
});

describe('compact JWE headers naming inherited object keys', () => {
  it.each([
    ['alg', 'toString', /^JWE alg "toString" is not supported \(RSA-OAEP, RSA-OAEP-256\)$/],
    ['alg', '__proto__', /^JWE alg "__proto__" is not supported/],
    [
      'enc',
      'constructor',
      /^JWE enc "constructor" is not supported \(A128GCM, A192GCM, A256GCM\)$/,
    ],
    ['enc', 'hasOwnProperty', /^JWE enc "hasOwnProperty" is not supported/],
  ])('refuses %s %s as an unsupported algorithm, by name', (field, value, message) => {
    // Prepare: a JWE from a hostile provider whose header names a key every object inherits.
    const jwe = jweWith({ [field]: value });

    // Act
    const failure = failureOf(jwe);

    // Assess
    expect(failure).toBeInstanceOf(JweError);
    expect(failure.message).toMatch(message);
  });
});
