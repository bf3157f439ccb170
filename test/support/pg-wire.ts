/**
 * PostgreSQL v3 wire-protocol framing for the test servers that speak it (fake-pg-server.ts,
 * hostile-pg-server.ts): reading the untyped startup messages and the typed ones from a
 * buffer, and writing typed messages.
 */

/** The startup codes a client sends first: SSLRequest, then StartupMessage for protocol 3.0. */
export const SSL_REQUEST = 80877103;
export const PROTOCOL_3 = 196608;

/** A typed message: its type byte, its length (itself included), its body. */
export function pgMessage(type: string, body: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0);
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

/** ErrorResponse with a severity, an SQLSTATE and a message. */
export const errorResponse = (code: string, message: string, severity = 'ERROR'): Buffer =>
  pgMessage('E', Buffer.from(`S${severity}\0V${severity}\0C${code}\0M${message}\0\0`, 'utf8'));

/** The first startup-phase message in `buffer` (length, then code), or undefined until whole. */
export function takeStartup(
  buffer: Buffer,
): { code: number; message: Buffer; rest: Buffer } | undefined {
  if (buffer.length < 8) return undefined;
  const length = buffer.readInt32BE(0);
  if (buffer.length < length) return undefined;
  const message = buffer.subarray(0, length);
  return { code: message.readInt32BE(4), message, rest: buffer.subarray(length) };
}

/** The first typed message in `buffer`, or undefined until it is whole. */
export function takeTyped(
  buffer: Buffer,
): { type: string; body: Buffer; rest: Buffer } | undefined {
  if (buffer.length < 5) return undefined;
  const length = buffer.readInt32BE(1);
  if (buffer.length < length + 1) return undefined;
  return {
    type: String.fromCharCode(buffer[0] ?? 0),
    body: buffer.subarray(5, length + 1),
    rest: buffer.subarray(length + 1),
  };
}

/** The parameters of a StartupMessage (user, database, options…). */
export function startupParameters(message: Buffer): Record<string, string> {
  const fields = message.subarray(8).toString('utf8').split('\0');
  const params: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const key = fields[i];
    if (key) params[key] = fields[i + 1] ?? '';
  }
  return params;
}
