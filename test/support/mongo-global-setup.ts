import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { type MongoCapabilities, probeMongo, startMongo } from './mongo-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    mongoAdminUrl: string;
    /** The server's TLS-only port and CA certificate, when it has one. */
    mongoTls: { port: number; ca: string } | null;
    mongoCapabilities: MongoCapabilities;
  }
}

/** Starts one MongoDB wire-protocol server for every integration file and says what it implements. */
export default async function setup(project: TestProject) {
  const server = await startMongo();
  try {
    const capabilities = await probeMongo(server.adminUrl);
    console.info(
      [
        `integration tests: ${capabilities.server} from ${server.source}`,
        `  roles: ${capabilities.roles ? 'yes' : `no (${capabilities.rolesReason})`}`,
        `  customData: ${capabilities.customData ? 'yes' : 'no'}`,
        `  authorization of user administration: ${capabilities.authorization ? 'yes' : 'no: any signed-in user may change any user'}`,
        `  user names with "," or "=": ${capabilities.escapedNames ? 'yes' : "no (the server does not decode SCRAM's escaping of them)"}`,
        `  TLS listener: ${server.tls ? `port ${server.tls.port}` : 'none'}`,
      ].join('\n'),
    );
    project.provide('mongoAdminUrl', server.adminUrl);
    project.provide('mongoTls', server.tls ?? null);
    project.provide('mongoCapabilities', capabilities);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return () => server.stop();
}
