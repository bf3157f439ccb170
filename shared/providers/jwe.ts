import {
  type CipherGCMTypes,
  constants,
  createDecipheriv,
  type KeyObject,
  privateDecrypt,
} from 'node:crypto';

/** Why a JWE could not be read. Never quotes the token or the key. */
export class JweError extends Error {
  override name = 'JweError';
}

/**
 * Key management algorithms accepted, with the OAEP hash each one uses. Maps, not object
 * literals: the header comes from the provider, and "toString" or "__proto__" must not find an
 * entry every object inherits.
 */
const KEY_ALGORITHMS: ReadonlyMap<string, string> = new Map([
  ['RSA-OAEP', 'sha1'],
  ['RSA-OAEP-256', 'sha256'],
]);

/** Content encryption algorithms accepted, with their key length in bytes. */
const CONTENT_ALGORITHMS: ReadonlyMap<string, number> = new Map([
  ['A128GCM', 16],
  ['A192GCM', 24],
  ['A256GCM', 32],
]);

const BASE64URL = /^[A-Za-z0-9_-]*$/;

function segment(value: string, what: string): Buffer {
  if (!BASE64URL.test(value)) throw new JweError(`JWE ${what} is not base64url`);
  return Buffer.from(value, 'base64url');
}

/**
 * Decrypts a compact JWE (RFC 7516) encrypted to an RSA public key: `alg` RSA-OAEP or
 * RSA-OAEP-256, `enc` AES-GCM. Anything else (another algorithm, `zip`, a tampered tag) is
 * refused by name rather than guessed at. Uses node:crypto only.
 *
 * @example
 * const secret = decryptCompactJwe(ciphertext, createPrivateKey(pem));
 */
export function decryptCompactJwe(compact: string, privateKey: KeyObject): string {
  const parts = compact.trim().split('.');
  if (parts.length !== 5) {
    throw new JweError(`compact JWE must have 5 segments, got ${parts.length}`);
  }
  const [protectedB64, encryptedKeyB64, ivB64, ciphertextB64, tagB64] = parts as [
    string,
    string,
    string,
    string,
    string,
  ];
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(segment(protectedB64, 'header').toString('utf8'));
  } catch (error) {
    if (error instanceof JweError) throw error;
    throw new JweError('JWE protected header is not JSON');
  }
  const alg = typeof header.alg === 'string' ? header.alg : '';
  const enc = typeof header.enc === 'string' ? header.enc : '';
  const oaepHash = KEY_ALGORITHMS.get(alg);
  if (oaepHash === undefined) {
    throw new JweError(
      `JWE alg ${JSON.stringify(alg)} is not supported (${[...KEY_ALGORITHMS.keys()].join(', ')})`,
    );
  }
  const keyLength = CONTENT_ALGORITHMS.get(enc);
  if (keyLength === undefined) {
    throw new JweError(
      `JWE enc ${JSON.stringify(enc)} is not supported (${[...CONTENT_ALGORITHMS.keys()].join(', ')})`,
    );
  }
  if (header.zip !== undefined) throw new JweError('compressed JWE (zip) is not supported');
  if (Array.isArray(header.crit) && header.crit.length > 0) {
    throw new JweError('JWE with critical header parameters is not supported');
  }

  let contentKey: Buffer;
  try {
    contentKey = privateDecrypt(
      { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash },
      segment(encryptedKeyB64, 'encrypted key'),
    );
  } catch (error) {
    if (error instanceof JweError) throw error;
    throw new JweError(
      'cannot unwrap the JWE content key with the private key (was it encrypted to another public key?)',
    );
  }
  if (contentKey.length !== keyLength) {
    throw new JweError(`JWE content key is ${contentKey.length} bytes; ${enc} needs ${keyLength}`);
  }
  const iv = segment(ivB64, 'iv');
  const tag = segment(tagB64, 'tag');
  if (iv.length !== 12) throw new JweError(`JWE iv is ${iv.length} bytes; AES-GCM needs 12`);
  if (tag.length !== 16) throw new JweError(`JWE tag is ${tag.length} bytes; AES-GCM needs 16`);
  try {
    const algorithm = `aes-${keyLength * 8}-gcm` as CipherGCMTypes;
    const decipher = createDecipheriv(algorithm, contentKey, iv);
    decipher.setAAD(Buffer.from(protectedB64, 'ascii'));
    decipher.setAuthTag(tag);
    return Buffer.concat([
      decipher.update(segment(ciphertextB64, 'ciphertext')),
      decipher.final(),
    ]).toString('utf8');
  } catch (error) {
    if (error instanceof JweError) throw error;
    throw new JweError('JWE authentication failed: the ciphertext or its tag was altered');
  }
}
