import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { InvalidSecretError, RotationError, StageError } from '../common/errors.js';
import {
  type RotationLogger,
  redactingLogger,
  scrubError,
  silentLogger,
} from '../common/logger.js';
import { parseRotationEvent } from './event.js';
import type { StepMetrics } from './metrics.js';
import { passwordPolicyFromEnv } from './password-policy.js';
import { isServiceError, SecretStore, VersionCache } from './secrets-store.js';
import {
  type InvocationContext,
  type OtherSecret,
  type RotationEvent,
  Stage,
  type StepContext,
  type Strategy,
} from './types.js';

/** Options of {@link createRotationHandler}. */
export interface RotationHandlerOptions<S> {
  strategy: Strategy<S>;
  /** Powertools Logger or any {@link RotationLogger}; every line goes through redaction. */
  logger?: RotationLogger;
  metrics?: StepMetrics;
  /** A Secrets Manager client; by default one is made for SECRETS_MANAGER_ENDPOINT if set. */
  client?: SecretsManagerClient;
  /** The environment to read settings from (default `process.env`). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Time kept in reserve before the Lambda deadline, in ms (default 2000). */
  safetyMarginMs?: number;
}

/** The Lambda handler: resolves when the step is done, throws a {@link RotationError} if not. */
export type RotationHandler = (event: unknown, context?: InvocationContext) => Promise<void>;

const withAttributes = (
  logger: RotationLogger,
  fixed: Record<string, unknown>,
): RotationLogger => ({
  debug: (message, ...attributes) => logger.debug(message, Object.assign({}, fixed, ...attributes)),
  info: (message, ...attributes) => logger.info(message, Object.assign({}, fixed, ...attributes)),
  warn: (message, ...attributes) => logger.warn(message, Object.assign({}, fixed, ...attributes)),
  error: (message, ...attributes) => logger.error(message, Object.assign({}, fixed, ...attributes)),
});

/** Fields of another secret (the master) whose values must never be logged. */
const CREDENTIAL_FIELD = /pass|secret|key|token|private/i;

function credentialValues(secretString: string): string[] {
  try {
    const value: unknown = JSON.parse(secretString);
    if (typeof value !== 'object' || value === null) return [secretString];
    return Object.entries(value)
      .filter(([field, item]) => typeof item === 'string' && CREDENTIAL_FIELD.test(field))
      .map(([, item]) => item as string);
  } catch {
    return [secretString];
  }
}

/** Without a Lambda context (tests, scripts) a step gets this long. */
const DEFAULT_BUDGET_MS = 60_000;

/**
 * Builds a rotation Lambda handler: validates the event, runs the guards of the protocol,
 * dispatches the step to the strategy, keeps every secret value out of the logs and records
 * one metric per step. Settings are read and validated here, at cold start.
 *
 * @example
 * export const handler = createRotationHandler({
 *   strategy: singleUser(createPostgres()),
 *   logger: new Logger({ serviceName: 'postgres-single-user' }),
 * });
 */
export function createRotationHandler<S>(options: RotationHandlerOptions<S>): RotationHandler {
  const env = options.env ?? process.env;
  const strategy = options.strategy;
  const baseLogger = options.logger ?? silentLogger;
  const passwordPolicy = passwordPolicyFromEnv(env);
  const safetyMarginMs = options.safetyMarginMs ?? 2_000;
  const endpoint = env.SECRETS_MANAGER_ENDPOINT?.trim();
  const client = options.client ?? new SecretsManagerClient(endpoint ? { endpoint } : {});
  // The four steps of a rotation usually reach the same warm function: values read or written
  // by one step are not fetched again by the next.
  const versionCache = new VersionCache();

  return async function rotationHandler(rawEvent, lambdaContext) {
    const started = performance.now();
    const secrets = new Set<string>();
    let event: RotationEvent | undefined;
    let logger = redactingLogger(baseLogger, secrets);
    try {
      event = parseRotationEvent(rawEvent);
      logger = redactingLogger(
        withAttributes(baseLogger, {
          step: event.Step,
          secretId: event.SecretId,
          token: event.ClientRequestToken,
        }),
        secrets,
      );
      const skipped = await runStep(event, logger, secrets, lambdaContext);
      options.metrics?.record(
        event.Step,
        skipped ? 'skipped' : 'success',
        performance.now() - started,
      );
    } catch (error) {
      const failure =
        error instanceof RotationError && event !== undefined
          ? error.withContext(event.Step, event.SecretId)
          : error;
      scrubError(failure, secrets);
      logger.error('step failed', { error: failure });
      if (event !== undefined) {
        options.metrics?.record(
          event.Step,
          'failure',
          performance.now() - started,
          error instanceof Error ? error.name : 'unknown',
        );
      }
      throw failure;
    }
  };

  /** Runs one step; resolves true when the guards found nothing to do. */
  async function runStep(
    event: RotationEvent,
    logger: RotationLogger,
    secrets: Set<string>,
    lambdaContext: InvocationContext | undefined,
  ): Promise<boolean> {
    const store = new SecretStore(client, event.SecretId, versionCache);
    const token = event.ClientRequestToken;
    const description = await store.describe();
    const secretName = description.Name ?? event.SecretId;

    // The guards of the protocol, in the service's order.
    if (description.DeletedDate !== undefined) {
      throw new StageError('the secret is scheduled for deletion');
    }
    if (description.RotationEnabled === false) {
      throw new StageError('the secret is not enabled for rotation');
    }
    const versions = description.VersionIdsToStages ?? {};
    const stages = versions[token];
    if (stages === undefined) {
      throw new StageError(`version ${token} is not a version of the secret`);
    }
    if (stages.includes(Stage.current)) {
      logger.info('version is already AWSCURRENT; nothing to do');
      return true;
    }
    if (!stages.includes(Stage.pending)) {
      throw new StageError(`version ${token} is not AWSPENDING`);
    }

    const parseStored = async (stage: Stage, versionId?: string): Promise<S | undefined> => {
      const text = await store.read({ stage, ...(versionId === undefined ? {} : { versionId }) });
      if (text === undefined) return undefined;
      const value = strategy.parse(text, stage);
      for (const secret of strategy.secretsOf(value)) secrets.add(secret);
      return value;
    };
    const memo = <T>(load: () => Promise<T>): (() => Promise<T>) => {
      let promise: Promise<T> | undefined;
      return () => {
        promise ??= load();
        return promise;
      };
    };
    const otherSecrets = new Map<string, Promise<OtherSecret>>();
    const deadline =
      lambdaContext?.getRemainingTimeInMillis !== undefined
        ? Date.now() + lambdaContext.getRemainingTimeInMillis()
        : Date.now() + DEFAULT_BUDGET_MS;

    const context: StepContext<S> = {
      step: event.Step,
      secretId: description.ARN ?? event.SecretId,
      secretName,
      token,
      logger,
      current: memo(async () => {
        const value = await parseStored(Stage.current);
        if (value === undefined) throw new StageError('the secret has no AWSCURRENT value');
        return value;
      }),
      pending: memo(async () => {
        const value = await parseStored(Stage.pending, token);
        if (value === undefined) {
          throw new StageError(
            `AWSPENDING version ${token} has no value yet (createSecret has not run)`,
          );
        }
        return value;
      }),
      previous: memo(async () => {
        try {
          return await parseStored(Stage.previous);
        } catch (error) {
          // A stale AWSPREVIOUS that no longer parses only removes one fallback; any other
          // failure (throttling, access denied) is a real error.
          if (!(error instanceof InvalidSecretError)) throw error;
          logger.warn('AWSPREVIOUS does not parse; ignoring it', { error });
          return undefined;
        }
      }),
      otherSecret(secretId) {
        let other = otherSecrets.get(secretId);
        if (other === undefined) {
          other = (async () => {
            const otherStore = new SecretStore(client, secretId);
            const secretString = await otherStore.read({ stage: Stage.current });
            if (secretString === undefined) {
              throw new StageError(`secret ${secretId} has no AWSCURRENT value`);
            }
            for (const value of credentialValues(secretString)) secrets.add(value);
            return {
              id: secretId,
              secretString,
              tags: async () =>
                Object.fromEntries(
                  ((await otherStore.describe()).Tags ?? []).map((tag) => [
                    tag.Key ?? '',
                    tag.Value ?? '',
                  ]),
                ),
            };
          })();
          otherSecrets.set(secretId, other);
        }
        return other;
      },
      async generatePassword() {
        const password = await store.randomPassword(passwordPolicy);
        secrets.add(password);
        return password;
      },
      redact(value) {
        secrets.add(value);
      },
      remainingMs: () => deadline - Date.now() - safetyMarginMs,
      degraded: (feature) => options.metrics?.degraded?.(feature),
    };

    switch (event.Step) {
      case 'createSecret': {
        const [, existing] = await Promise.all([
          context.current(),
          parseStored(Stage.pending, token),
        ]);
        // Is the pending value there already (a retry)? Always ask, before generating: the
        // no-lockout guarantee must not rest on PutSecretValue refusing a second value for the
        // token (ResourceExistsException). An emulator nobody here wrote (moto) accepts it, and
        // a retried createSecret after a setSecret that succeeded would then replace the
        // password the database already has. One GetSecretValue, free when cached.
        if (existing !== undefined) {
          logger.info('pending value already created');
          return false;
        }
        const value = await strategy.createPending(context);
        for (const secret of strategy.secretsOf(value)) secrets.add(secret);
        const serialized = strategy.serialize(value);
        let stored: boolean;
        try {
          stored = await store.putPending(token, serialized, event.RotationToken);
        } catch (error) {
          // The write may have landed with its answer lost: discard only what is surely not stored.
          const landed = await new SecretStore(client, event.SecretId)
            .read({ versionId: token, stage: Stage.pending })
            .then(
              (text) => (text === undefined ? 'absent' : text === serialized ? 'ours' : 'other'),
              () => 'unknown' as const,
            );
          if (landed === 'absent' || landed === 'other') {
            const outcome = await discard(context, value);
            if (outcome !== 'none') {
              const message = error instanceof Error ? error.message : String(error);
              throw new RotationError(
                outcome === 'discarded'
                  ? `storing the pending value failed, so the new credential was discarded: ${message}`
                  : `storing the pending value failed, and discarding the new credential failed too: ${message}`,
                { cause: error },
              );
            }
          } else {
            logger.warn('PutSecretValue failed but the pending value may be stored; keeping it', {
              stored: landed,
            });
          }
          throw error;
        }
        if (stored) {
          logger.info('created pending value');
          return false;
        }
        // ResourceExistsException: a value was stored first (an earlier run, or an overlapping
        // invocation). Keep it.
        if ((await discard(context, value)) === 'failed') {
          throw new RotationError(
            'an overlapping invocation stored its pending value first, and discarding ours failed',
          );
        }
        if ((await parseStored(Stage.pending, token)) === undefined) {
          throw new StageError(`version ${token} holds a value that cannot be read as AWSPENDING`);
        }
        logger.info('pending value already created; keeping it');
        return false;
      }
      case 'setSecret':
        await context.pending();
        await strategy.setPending(context);
        return false;
      case 'testSecret':
        if ((await parseStored(Stage.pending, token)) === undefined && strategy.testCurrent) {
          // RotateSecret with RotateImmediately=false tests the configuration before any
          // pending value exists: check that AWSCURRENT works instead.
          logger.info('AWSPENDING has no value; testing AWSCURRENT (configuration check)');
          await strategy.testCurrent(context);
          return false;
        }
        await context.pending();
        await strategy.testPending(context);
        return false;
      case 'finishSecret': {
        const holder = Object.entries(versions).find(([, labels]) =>
          labels?.includes(Stage.current),
        )?.[0];
        await context.pending();
        if (strategy.afterFinish) {
          // afterFinish decides from the labels as they were before the move.
          await Promise.all([context.current(), context.previous()]);
        }
        try {
          await store.moveCurrent(token, holder);
          logger.info('moved AWSCURRENT to the pending version', { from: holder });
        } catch (error) {
          // An overlapping finishSecret moved the label between our DescribeSecret and this call.
          if (!isServiceError(error, 'InvalidParameterException')) throw error;
          const fresh = await new SecretStore(client, event.SecretId).describe();
          if (!fresh.VersionIdsToStages?.[token]?.includes(Stage.current)) throw error;
          logger.info('an overlapping invocation moved AWSCURRENT to the pending version first');
        }
        await strategy.afterFinish?.(context);
        return false;
      }
    }
  }

  /** Lets the strategy undo an unstored pending value; never throws, says how it went. */
  async function discard(
    context: StepContext<S>,
    value: S,
  ): Promise<'none' | 'discarded' | 'failed'> {
    if (!strategy.discardPending) return 'none';
    try {
      await strategy.discardPending(context, value);
      context.logger.info('discarded the pending value that was not stored');
      return 'discarded';
    } catch (error) {
      context.logger.error('could not discard the pending value that was not stored', { error });
      return 'failed';
    }
  }
}
