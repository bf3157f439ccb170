import {
  RDS_CLUSTER_TAG,
  RDS_INSTANCE_TAG,
  type RdsEndpointResolver,
} from '../aws/rds-endpoint.js';
import {
  AuthenticationError,
  ConfigurationError,
  InvalidSecretError,
  UserExistsError,
} from '../common/errors.js';
import type { Database, TlsMode } from '../databases/types.js';
import type { StepContext, Strategy } from '../rotation/types.js';
import {
  accountOf,
  type DatabaseSecret,
  loginOf,
  maxUsernameLength,
  optionalString,
  parseJsonObject,
  parsePort,
  parseTls,
  requiredString,
  sameHost,
  usernameLength,
  usernameUnit,
  withCredentials,
} from './database-secret.js';
import { trySignIn, withConnection } from './sign-in.js';
import { databaseSecretStrategy, requireSameServer } from './single-user.js';

const CLONE_SUFFIX = '_clone';

/** The user without the clone suffix. */
export const originalUsername = (username: string): string =>
  username.endsWith(CLONE_SUFFIX) ? username.slice(0, -CLONE_SUFFIX.length) : username;

/** `name` ↔ `name_clone`. */
export const alternateUsername = (username: string): string =>
  username.endsWith(CLONE_SUFFIX)
    ? username.slice(0, -CLONE_SUFFIX.length)
    : `${username}${CLONE_SUFFIX}`;

/** Options of {@link alternatingUsers}. */
export interface AlternatingUsersOptions {
  /** Finds the master's host from RDS when the master secret holds only credentials. */
  resolveRdsEndpoint?: RdsEndpointResolver;
}

interface MasterLogin {
  username: string;
  password: string;
  hosts: string[];
  port: number;
  dbname?: string;
  /** The master secret's own `ssl`, when it has one. */
  tls?: TlsMode;
}

/**
 * Two users, `name` and `name_clone`; each rotation changes the password of the one that is
 * not AWSCURRENT, signed in as the superuser named by `masterarn`. AWSCURRENT always signs
 * in, so clients never see a failure.
 *
 * @example
 * export const handler = createRotationHandler({ strategy: alternatingUsers(createPostgres()), logger });
 */
export function alternatingUsers<C>(
  db: Database<C>,
  options: AlternatingUsersOptions = {},
): Strategy<DatabaseSecret> {
  const base = databaseSecretStrategy(db);

  let defaultResolver: RdsEndpointResolver | undefined;
  async function resolveEndpoint(arn: string) {
    if (options.resolveRdsEndpoint) return options.resolveRdsEndpoint(arn);
    defaultResolver ??= (await import('../aws/rds-endpoint.js')).rdsEndpointResolver();
    return defaultResolver(arn);
  }

  /** Reads the master secret; finds its host through RDS when RDS manages it. */
  async function readMaster(
    step: StepContext<DatabaseSecret>,
    current: DatabaseSecret,
  ): Promise<MasterLogin> {
    const masterarn = current.masterarn;
    if (masterarn === undefined) {
      throw new InvalidSecretError(
        'AWSCURRENT: field "masterarn" is missing (alternating users needs it)',
        'masterarn',
      );
    }
    let master: Awaited<ReturnType<typeof step.otherSecret>>;
    try {
      master = await step.otherSecret(masterarn);
    } catch (error) {
      throw new InvalidSecretError(
        `AWSCURRENT: field "masterarn" names a secret that cannot be read: ${error instanceof Error ? error.message : String(error)}`,
        'masterarn',
        { cause: error },
      );
    }
    const source = `master secret ${masterarn}`;
    const raw = parseJsonObject(master.secretString, source);
    const password = requiredString(raw, 'password', source, 4096);
    step.redact(password);
    const username = requiredString(raw, 'username', source, db.maxUsernameLength);
    const host = optionalString(raw, 'host', source, 255);
    const dbname = optionalString(raw, 'dbname', source, 255);
    const tls = raw.ssl === undefined || raw.ssl === null ? undefined : parseTls(raw, source);
    const extra = { ...(dbname ? { dbname } : {}), ...(tls ? { tls } : {}) };
    if (host !== undefined) {
      const engine = optionalString(raw, 'engine', source, 64);
      if (engine !== undefined && !db.engines.includes(engine)) {
        throw new InvalidSecretError(
          `${source}: field "engine" is ${JSON.stringify(engine)}, not ${db.name}`,
          'engine',
        );
      }
      return {
        username,
        password,
        hosts: [host],
        port: parsePort(raw, source, db.defaultPort),
        ...extra,
      };
    }
    // RDS-managed master secrets hold only username and password; RDS tags them with the database.
    // RDS writes the keys as aws:rds:primaryDBInstanceArn / …ClusterArn; they are compared
    // without case, as AWS's own rotation samples do.
    const tags = new Map(
      Object.entries(await master.tags()).map(([key, value]) => [key.toLowerCase(), value]),
    );
    const arn = tags.get(RDS_INSTANCE_TAG) ?? tags.get(RDS_CLUSTER_TAG);
    if (arn === undefined) {
      throw new InvalidSecretError(
        `${source}: field "host" is missing and the secret has no ${RDS_INSTANCE_TAG} or ${RDS_CLUSTER_TAG} tag`,
        'host',
      );
    }
    let endpoint: Awaited<ReturnType<RdsEndpointResolver>>;
    try {
      endpoint = await resolveEndpoint(arn);
    } catch (error) {
      throw new ConfigurationError(
        `cannot find the endpoint of ${arn} for ${source} through the RDS API`,
        { cause: error },
      );
    }
    if (!db.engines.includes(endpoint.engine)) {
      throw new InvalidSecretError(
        `${source}: RDS reports engine ${endpoint.engine} for ${arn}, not ${db.name}`,
        'engine',
      );
    }
    step.logger.info('found the master host through the RDS API', { arn, hosts: endpoint.hosts });
    return {
      username,
      password,
      hosts: endpoint.hosts,
      port: endpoint.port,
      ...extra,
    };
  }

  return {
    ...base,

    async createPending(step) {
      const current = await step.current();
      const username = alternateUsername(current.username);
      const limit = maxUsernameLength(db, current.engine);
      if (usernameLength(db, username) > limit) {
        throw new InvalidSecretError(
          `AWSCURRENT: user "${current.username}" cannot alternate: "${username}" is longer than ${db.name}'s ${limit} ${usernameUnit(db)} (engine "${current.engine}")`,
          'username',
        );
      }
      return withCredentials(current, username, await step.generatePassword());
    },

    async setPending(step) {
      const [pending, current] = await Promise.all([step.pending(), step.current()]);
      const expected = alternateUsername(current.username);
      if (pending.username !== expected) {
        throw new InvalidSecretError(
          `AWSPENDING names user "${pending.username}"; alternating from "${current.username}" it must be "${expected}"`,
          'username',
        );
      }
      requireSameServer(pending, current, db.scopeField);
      if (pending.masterarn !== current.masterarn) {
        throw new InvalidSecretError(
          'AWSPENDING names another masterarn than AWSCURRENT',
          'masterarn',
        );
      }

      // Confused-deputy guard: whoever wrote this secret must hold working credentials for it.
      const proof = await trySignIn(db, loginOf(current), step);
      if (proof === undefined) {
        throw new AuthenticationError(
          `AWSCURRENT (${accountOf(current)}) does not sign in; refusing to change users with the master secret`,
        );
      }
      // The proof holds for the account the server authenticated, and for no other of that
      // name: everything below acts in that scope (MySQL's host part) or not at all.
      let proved: string | undefined;
      try {
        proved = await db.signedInScope?.(proof);
      } finally {
        await db.close(proof);
      }

      const already = await trySignIn(db, loginOf(pending), step);
      if (already !== undefined) await db.close(already);

      const master = await readMaster(step, current);
      if (
        !master.hosts.some((host) => sameHost(host, current.host)) ||
        master.port !== current.port
      ) {
        throw new InvalidSecretError(
          `the master secret is for ${master.hosts.join(' / ')}:${master.port}, AWSCURRENT for ${current.host}:${current.port}; refusing to act on another host`,
          'masterarn',
        );
      }
      if (pending.username === master.username || current.username === master.username) {
        throw new InvalidSecretError(
          `alternating users must not rotate the master user "${master.username}" itself`,
          'username',
        );
      }
      const masterLogin = {
        ...loginOf(current),
        user: master.username,
        password: master.password,
        // The master signs in to its own database, never to one the application user owns
        // (and may have planted functions in), unless its own secret says so.
        database: master.dbname ?? db.masterDatabase ?? current.dbname,
        usersDatabase: current.dbname,
        // A privileged credential goes only over verified TLS unless its own secret says
        // "ssl": false: neither the app secret's writer nor an on-path attacker who answers
        // "no TLS" can make it travel in plaintext.
        tls: master.tls ?? 'verify',
      };
      await withConnection(db, masterLogin, step, async (connection) => {
        // The original (the name without _clone) is the source of truth. Where accounts have a
        // scope (MySQL's host part), the clone lives in the original's.
        const original = originalUsername(current.username);
        const clone = `${original}${CLONE_SUFFIX}`;
        const scope = current.scope ?? (await db.accountScope?.(connection, original)) ?? proved;
        if (proved !== undefined && proved.toLowerCase() !== scope?.toLowerCase()) {
          throw new InvalidSecretError(
            `AWSCURRENT (${accountOf(current)}) signs in to the account in scope "${proved}", but the account to rotate is in ${scope === undefined ? 'no known scope' : `scope "${scope}"`} ("${db.scopeField}"): refusing to act on an account that did not prove itself`,
            db.scopeField ?? 'scope',
          );
        }
        const scoped = scope === undefined ? {} : { scope };
        if (!(await db.userExists(connection, pending.username, scope))) {
          try {
            await db.createUserLike(
              connection,
              pending.username,
              pending.password,
              current.username,
              scope,
            );
            step.logger.info("created the alternate user with the privileges of AWSCURRENT's", {
              user: pending.username,
              like: current.username,
              ...scoped,
            });
            return;
          } catch (error) {
            // An overlapping invocation created it first: carry on as with an existing user.
            if (!(error instanceof UserExistsError)) throw error;
          }
        }
        // Grants a DBA gives or takes from the original are mirrored onto the clone, whichever of
        // the two is AWSCURRENT. This runs even when AWSPENDING already signs in (a retry): a run
        // that died after setting the password, on a server whose changes are not transactional,
        // must still converge.
        // Never adopt an account that is not our clone: its password would be handed out.
        await db.verifyClone?.(connection, clone, original, scope);
        const changes = (await db.syncPrivileges?.(connection, clone, original, scope)) ?? [];
        if (changes.length > 0) {
          step.logger.info("reconciled the clone's privileges with the original's", {
            user: clone,
            like: original,
            ...scoped,
            changes,
          });
        }
        if (already !== undefined) {
          step.logger.info('AWSPENDING already signs in; password unchanged', {
            user: pending.username,
          });
          return;
        }
        await db.setPassword(connection, pending.username, pending.password, scope);
        step.logger.info('changed the password of the alternate user', {
          user: pending.username,
        });
      });
    },
  };
}
