import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { startMysql } from './mysql-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    mysqlAdminUrl: string;
  }
}

/** Starts one MySQL/MariaDB for every integration file; each test makes its own users in it. */
export default async function setup(project: TestProject) {
  const server = await startMysql();
  console.info(`integration tests: MySQL/MariaDB from ${server.source}`);
  project.provide('mysqlAdminUrl', server.adminUrl);
  return () => server.stop();
}
