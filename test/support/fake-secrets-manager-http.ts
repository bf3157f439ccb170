/**
 * Serves a FakeSecretsManager over HTTP with the awsJson1_1 protocol, so that the real
 * SecretsManagerClient (serialisation, signing, retries, error parsing) talks to it:
 *
 *   const server = await startFakeSecretsManagerServer(fake);
 *   const client = new SecretsManagerClient({ endpoint: server.endpoint, region: 'us-east-1',
 *     credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
 *
 * POST / with `X-Amz-Target: secretsmanager.<Operation>` and the input as JSON. Success: 200 and
 * the output as JSON (dates as epoch seconds, blobs as base64). Error: 400 (500 for server
 * faults) with `{"__type": "<Name>", "message": "..."}` and `x-amzn-errortype: <Name>`.
 * An injected error whose `code` starts with 'E' (ECONNRESET, ETIMEDOUT...) drops the
 * connection instead, as a network failure would.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { type FakeSecretsManager, UnknownCommandError } from './fake-secrets-manager.js';

export interface FakeSecretsManagerServer {
  endpoint: string;
  close(): Promise<void>;
}

const TARGET_PREFIX = 'secretsmanager.';
const CONTENT_TYPE = 'application/x-amz-json-1.1';

/** Fields sent as blobs (base64 on the wire). */
const BLOB_FIELDS = new Set(['SecretBinary']);

function toWire(value: unknown): unknown {
  if (value instanceof Date) return value.getTime() / 1000;
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (Array.isArray(value)) return value.map(toWire);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(value)) {
      if (field !== undefined) out[key] = toWire(field);
    }
    return out;
  }
  return value;
}

function fromWire(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) {
    out[key] =
      BLOB_FIELDS.has(key) && typeof field === 'string'
        ? new Uint8Array(Buffer.from(field, 'base64'))
        : field;
  }
  return out;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': CONTENT_TYPE,
    'content-length': Buffer.byteLength(payload),
    'x-amzn-requestid': randomUUID(),
    ...headers,
  });
  res.end(payload);
}

function sendError(res: ServerResponse, status: number, name: string, message: string) {
  send(res, status, { __type: name, message, Message: message }, { 'x-amzn-errortype': name });
}

function isNetworkFault(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code);
}

function errorStatus(error: Error): number {
  const e = error as { $fault?: unknown; $metadata?: { httpStatusCode?: unknown } };
  if (typeof e.$metadata?.httpStatusCode === 'number') return e.$metadata.httpStatusCode;
  return e.$fault === 'server' ? 500 : 400;
}

export async function startFakeSecretsManagerServer(
  fake: FakeSecretsManager,
  options: { port?: number } = {},
): Promise<FakeSecretsManagerServer> {
  const sockets = new Set<Socket>();
  const server = createServer(async (req, res) => {
    try {
      const target = req.headers['x-amz-target'];
      const body = await readBody(req);
      if (
        req.method !== 'POST' ||
        typeof target !== 'string' ||
        !target.startsWith(TARGET_PREFIX)
      ) {
        sendError(res, 400, 'UnknownOperationException', `Unknown operation ${String(target)}`);
        return;
      }
      let input: unknown;
      try {
        input = fromWire(body === '' ? {} : JSON.parse(body));
      } catch {
        sendError(res, 400, 'SerializationException', 'The request body is not valid JSON.');
        return;
      }
      const operation = target.slice(TARGET_PREFIX.length);
      let output: unknown;
      try {
        output = fake.dispatch(operation, input);
      } catch (error) {
        if (error instanceof UnknownCommandError) {
          sendError(res, 400, 'UnknownOperationException', error.message);
        } else if (isNetworkFault(error)) {
          req.socket.destroy();
        } else if (error instanceof Error && '$fault' in error) {
          sendError(res, errorStatus(error), error.name, error.message);
        } else {
          sendError(res, 500, 'InternalServiceError', 'An error occurred on the server side.');
        }
        return;
      }
      send(res, 200, toWire(output));
    } catch {
      if (!res.headersSent)
        sendError(res, 500, 'InternalServiceError', 'An error occurred on the server side.');
      else res.destroy();
    }
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const socket of sockets) socket.destroy();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
