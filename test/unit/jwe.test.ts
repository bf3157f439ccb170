import { generateKeyPairSync } from 'node:crypto';
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
