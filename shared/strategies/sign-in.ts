import { AuthenticationError, TooManyConnectionsError } from '../common/errors.js';
import type { RotationLogger } from '../common/logger.js';
import type { Database, Login } from '../databases/types.js';

/** What sign-in needs from the step: the time left and a logger. */
export interface SignInContext {
  logger: RotationLogger;
  remainingMs(): number;
  /** Passed to the database: a feature fell back (the metric Degraded). */
  degraded?: (feature: string) => void;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Longest single connect attempt, in ms. */
const MAX_CONNECT_MS = 10_000;

/**
 * Connects, retrying only "too many connections" with capped exponential backoff and full
 * jitter, and never past the Lambda's remaining time. Every other failure is thrown at once.
 */
export async function connectWithRetry<C>(
  db: Database<C>,
  login: Login,
  context: SignInContext,
): Promise<C> {
  for (let attempt = 0; ; attempt++) {
    const timeoutMs = Math.min(MAX_CONNECT_MS, Math.max(1_000, context.remainingMs()));
    try {
      return await db.connect(login, {
        timeoutMs,
        deadline: Date.now() + context.remainingMs(),
        logger: context.logger,
        ...(context.degraded ? { degraded: context.degraded } : {}),
      });
    } catch (error) {
      if (!(error instanceof TooManyConnectionsError)) throw error;
      const delay = Math.random() * Math.min(4_000, 100 * 2 ** attempt);
      if (context.remainingMs() < delay + 1_000) throw error;
      context.logger.info('server has no free connection slot; retrying', {
        attempt: attempt + 1,
        delayMs: Math.round(delay),
      });
      await sleep(delay);
    }
  }
}

/** Signs in, then runs `use`, closing the connection on every path. */
export async function withConnection<C, T>(
  db: Database<C>,
  login: Login,
  context: SignInContext,
  use: (connection: C) => Promise<T>,
): Promise<T> {
  const connection = await connectWithRetry(db, login, context);
  try {
    return await use(connection);
  } finally {
    await db.close(connection);
  }
}

/**
 * Tries `login`: resolves a connection, or undefined when the server refused the credentials.
 * Any other failure (network, TLS, timeout) is thrown: it is never a reason to change anything.
 */
export async function trySignIn<C>(
  db: Database<C>,
  login: Login,
  context: SignInContext,
): Promise<C | undefined> {
  try {
    return await connectWithRetry(db, login, context);
  } catch (error) {
    if (error instanceof AuthenticationError) return undefined;
    throw error;
  }
}
