import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { startPostgres } from './postgres-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
  }
}

/** Starts one PostgreSQL for every integration file; each test makes its own users in it. */
export default async function setup(project: TestProject) {
  const server = await startPostgres();
  console.info(`integration tests: PostgreSQL from ${server.source}`);
  project.provide('pgAdminUrl', server.adminUrl);
  return () => server.stop();
}
