import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * A self-signed certificate (and its key, PEM) made by openssl for this run, valid one day for
 * the names given as subjectAltName entries (`IP:127.0.0.1`, `DNS:localhost`).
 */
export async function selfSignedCertificate(
  altNames = ['IP:127.0.0.1', 'DNS:localhost'],
): Promise<{ cert: string; key: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'self-signed-'));
  try {
    await promisify(execFile)('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
      '-days',
      '1',
      '-subj',
      '/CN=test',
      '-addext',
      `subjectAltName=${altNames.join(',')}`,
    ]);
    return {
      cert: await readFile(join(dir, 'cert.pem'), 'utf8'),
      key: await readFile(join(dir, 'key.pem'), 'utf8'),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
