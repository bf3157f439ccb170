import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 7677, as libpq's
 * PQencryptPasswordConn builds it). Sending the verifier instead of the password keeps the
 * plaintext out of the server's statement log, pg_stat_statements and audit trails.
 *
 * Returns undefined for non-ASCII passwords: those need SASLprep normalisation, which the
 * server applies itself when given the plaintext.
 */
export function scramSha256Verifier(password: string, iterations = 4096): string | undefined {
  if (!/^[\x20-\x7e]*$/.test(password)) return undefined;
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/**
 * The md5 verifier PostgreSQL stores where password_encryption is md5: "md5" followed by the
 * hex md5 of the password's bytes and then the user name's (UTF-8).
 */
export const md5Verifier = (password: string, user: string): string =>
  `md5${createHash('md5')
    .update(password + user, 'utf8')
    .digest('hex')}`;
