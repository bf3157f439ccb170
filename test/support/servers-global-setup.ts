import { readFile } from 'node:fs/promises';
import type { TestProject } from 'vitest/node';
import { probeMongo, startMongo } from './mongo-server.js';
import { startMysql } from './mysql-server.js';
import { startPostgres } from './postgres-server.js';
import { SERVER_OF, type ServerContext, type ServerKind } from './servers.js';

interface Started {
  stop(): Promise<void>;
}

/** Starts one server of a kind and provides its values; returns how to stop it. */
const STARTERS: Record<ServerKind, (project: TestProject) => Promise<Started>> = {
  PostgreSQL: async (project) => {
    const server = await startPostgres();
    console.info(`tests: PostgreSQL from ${server.source}`);
    project.provide('pgAdminUrl', server.adminUrl);
    return server;
  },
  'MySQL/MariaDB': async (project) => {
    const server = await startMysql();
    console.info(`tests: MySQL/MariaDB from ${server.source}`);
    project.provide('mysqlAdminUrl', server.adminUrl);
    return server;
  },
  MongoDB: async (project) => {
    const server = await startMongo();
    try {
      const capabilities = await probeMongo(server.adminUrl);
      console.info(
        [
          `tests: ${capabilities.server} from ${server.source}`,
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
    return server;
  },
};

const PROVIDED_CALL = /\b(?:provided|inject)\(\s*['"](\w+)['"]\s*\)/g;

/** The server kinds a test file asks for (`provided('pgAdminUrl')` and the like). */
export function serversNamedIn(source: string): Set<ServerKind> {
  const kinds = new Set<ServerKind>();
  for (const [, key] of source.matchAll(PROVIDED_CALL)) {
    const kind = SERVER_OF[key as keyof ServerContext];
    if (kind) kinds.add(kind);
  }
  return kinds;
}

/**
 * The root project's global setup: it runs once per `vitest run`, whatever projects run, and
 * what it provides reaches every project. It starts only the servers the selected files name
 * (a PostgreSQL file waits for no MariaDB or FerretDB; the unit tests for none), each kind once
 * and all of them at the same time. A server that cannot start fails the files that need it,
 * with the reason, and the others still run; the run then exits non-zero.
 */
export default async function setup(project: TestProject) {
  const vitest = project.vitest;
  // The files this run will execute: the command line's filters (an internal field of Vitest 4;
  // if it goes, every file of the selected projects counts, which starts more, never fewer).
  const filters = (vitest as unknown as { filenamePattern?: string[] }).filenamePattern;
  const specifications = await vitest.getRelevantTestSpecifications(filters);
  const needed = new Set<ServerKind>();
  for (const file of new Set(specifications.map((s) => s.moduleId))) {
    for (const kind of serversNamedIn(await readFile(file, 'utf8'))) needed.add(kind);
  }
  const errors: Partial<Record<ServerKind, string>> = {};
  const started: Started[] = [];
  await Promise.all(
    [...needed].map(async (kind) => {
      try {
        started.push(await STARTERS[kind](project));
      } catch (error) {
        errors[kind] = error instanceof Error ? error.message : String(error);
        console.error(`tests: ${kind} did not start; the files that need it fail: ${errors[kind]}`);
      }
    }),
  );
  project.provide('serverErrors', errors);
  return async () => {
    await Promise.allSettled(started.map((server) => server.stop()));
  };
}
