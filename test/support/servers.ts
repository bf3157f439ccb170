import { inject } from 'vitest';
import type { MongoCapabilities } from './mongo-server.js';

/** The database servers a test file can ask for, and what each provides. */
export interface ServerContext {
  pgAdminUrl: string;
  mysqlAdminUrl: string;
  mongoAdminUrl: string;
  /** The server's TLS-only port and CA certificate, when it has one. */
  mongoTls: { port: number; ca: string } | null;
  mongoCapabilities: MongoCapabilities;
}

export type ServerKind = 'PostgreSQL' | 'MySQL/MariaDB' | 'MongoDB';

/** Which server provides each value. */
export const SERVER_OF: Record<keyof ServerContext, ServerKind> = {
  pgAdminUrl: 'PostgreSQL',
  mysqlAdminUrl: 'MySQL/MariaDB',
  mongoAdminUrl: 'MongoDB',
  mongoTls: 'MongoDB',
  mongoCapabilities: 'MongoDB',
};

declare module 'vitest' {
  export interface ProvidedContext extends Partial<ServerContext> {
    /** Why a server a selected file needs did not start, by kind. */
    serverErrors: Partial<Record<ServerKind, string>>;
  }
}

/**
 * A value of a server started by test/support/servers-global-setup.ts. The global setup starts
 * a server only when a selected test file names one of its values in a `provided('…')` call, so
 * every file that needs a server asks for it here. When that server could not start, the file
 * fails with the reason (what to install or set), and the files that do not need it still run.
 */
export function provided<K extends keyof ServerContext>(key: K): ServerContext[K] {
  const value = inject(key);
  if (value !== undefined) return value as ServerContext[K];
  const kind = SERVER_OF[key];
  const reason = inject('serverErrors')?.[kind];
  throw new Error(
    reason
      ? `this file needs ${kind}, which did not start: ${reason}`
      : `this file needs ${kind} (${key}), which test/support/servers-global-setup.ts did not start: name it in a provided('${key}') call in the test file`,
  );
}
