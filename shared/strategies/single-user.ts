import { AuthenticationError, InvalidSecretError } from '../common/errors.js';
import type { Database } from '../databases/types.js';
import type { Stage, StepContext, Strategy } from '../rotation/types.js';
import {
  accountOf,
  type DatabaseSecret,
  loginOf,
  parseDatabaseSecret,
  sameHost,
  serializeDatabaseSecret,
  withCredentials,
} from './database-secret.js';
import { trySignIn, withConnection } from './sign-in.js';

/** The checks and helpers both database strategies share. */
export function databaseSecretStrategy<C>(db: Database<C>) {
  return {
    parse: (text: string, stage: Stage | 'other') => parseDatabaseSecret(text, stage, db),
    serialize: serializeDatabaseSecret,
    secretsOf: (secret: DatabaseSecret) => [secret.password],
    async testPending(step: StepContext<DatabaseSecret>) {
      const pending = await step.pending();
      await withConnection(db, loginOf(pending), step, (connection) => db.ping(connection));
      step.logger.info('AWSPENDING signs in and runs a query', { user: pending.username });
    },
    async testCurrent(step: StepContext<DatabaseSecret>) {
      const current = await step.current();
      await withConnection(db, loginOf(current), step, (connection) => db.ping(connection));
      step.logger.info('AWSCURRENT signs in and runs a query', { user: current.username });
    },
  };
}

/** The same user of the same account at the same server: where one secret's password may go. */
export const sameAccount = (a: DatabaseSecret, b: DatabaseSecret): boolean =>
  a.username === b.username &&
  sameHost(a.host, b.host) &&
  a.port === b.port &&
  a.scope === b.scope &&
  // MongoDB: the authentication database is part of the user's identity.
  a.dbname === b.dbname;

/** Pending must target the same server and account scope as AWSCURRENT: never act elsewhere. */
export function requireSameServer(
  pending: DatabaseSecret,
  current: DatabaseSecret,
  scopeField = 'scope',
): void {
  if (!sameHost(pending.host, current.host) || pending.port !== current.port) {
    throw new InvalidSecretError(
      `AWSPENDING names host ${pending.host}:${pending.port} but AWSCURRENT names ${current.host}:${current.port}`,
      'host',
    );
  }
  if (pending.scope !== current.scope) {
    throw new InvalidSecretError(
      `AWSPENDING names another "${scopeField}" than AWSCURRENT`,
      scopeField,
    );
  }
  // On MongoDB a user is defined in its authentication database ("dbname"): another one is
  // another user, even under the same name. Elsewhere a different database is never needed.
  if (pending.dbname !== current.dbname) {
    throw new InvalidSecretError('AWSPENDING names another "dbname" than AWSCURRENT', 'dbname');
  }
}

/**
 * One user whose password changes in place. Between setSecret and finishSecret only
 * AWSPENDING signs in; clients re-fetch the secret when their sign-in fails.
 *
 * @example
 * export const handler = createRotationHandler({ strategy: singleUser(createPostgres()), logger });
 */
export function singleUser<C>(db: Database<C>): Strategy<DatabaseSecret> {
  const base = databaseSecretStrategy(db);
  return {
    ...base,

    async createPending(step) {
      const current = await step.current();
      return withCredentials(current, current.username, await step.generatePassword());
    },

    async setPending(step) {
      const [pending, current] = await Promise.all([step.pending(), step.current()]);
      if (pending.username !== current.username) {
        throw new InvalidSecretError(
          `AWSPENDING names user "${pending.username}" but AWSCURRENT names "${current.username}"`,
          'username',
        );
      }
      requireSameServer(pending, current, db.scopeField);

      const already = await trySignIn(db, loginOf(pending), step);
      if (already !== undefined) {
        await db.close(already);
        step.logger.info('AWSPENDING already signs in; nothing to change', {
          user: pending.username,
        });
        return;
      }

      let connection = await trySignIn(db, loginOf(current), step);
      let signedInWith = 'AWSCURRENT';
      if (connection === undefined) {
        // AWSPREVIOUS helps when the database was restored, or a person reset the password, to
        // the value before the last rotation. Its password goes only where AWSPREVIOUS itself
        // points, and only when that is AWSCURRENT's account: whoever can PutSecretValue can
        // write an AWSCURRENT naming their own server, and AWSPREVIOUS then holds the real,
        // still valid password (the service moved it there).
        const previous = await step.previous();
        if (previous !== undefined && sameAccount(previous, current)) {
          connection = await trySignIn(db, loginOf(previous), step);
          signedInWith = 'AWSPREVIOUS';
        } else if (previous !== undefined) {
          step.logger.warn(
            'AWSPREVIOUS names another user, host, port or account than AWSCURRENT; not sending its password there',
            { user: current.username },
          );
        }
      }
      if (connection === undefined) {
        // An overlapping invocation may have set AWSPENDING since we first tried it.
        const late = await trySignIn(db, loginOf(pending), step);
        if (late !== undefined) {
          await db.close(late);
          step.logger.info('AWSPENDING signs in now (set meanwhile); nothing to change', {
            user: pending.username,
          });
          return;
        }
        throw new AuthenticationError(
          `${accountOf(current)} refuses AWSPENDING, AWSCURRENT and AWSPREVIOUS`,
        );
      }
      step.logger.info(`signed in with ${signedInWith}`, { user: current.username });
      try {
        await db.setPassword(connection, pending.username, pending.password, pending.scope);
      } finally {
        await db.close(connection);
      }
      step.logger.info('changed the password to AWSPENDING', { user: pending.username });
    },
  };
}
