import type { RotationLogger } from '../common/logger.js';

/** The four steps Secrets Manager invokes, in order. */
export const Steps = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const;
export type Step = (typeof Steps)[number];

/** The version labels the protocol manages. */
export const Stage = {
  current: 'AWSCURRENT',
  pending: 'AWSPENDING',
  previous: 'AWSPREVIOUS',
} as const;
export type Stage = (typeof Stage)[keyof typeof Stage];

/** The event Secrets Manager sends, validated. */
export interface RotationEvent {
  Step: Step;
  SecretId: string;
  ClientRequestToken: string;
  RotationToken?: string;
}

/** The part of the Lambda context the protocol uses. */
export interface InvocationContext {
  getRemainingTimeInMillis?: () => number;
  awsRequestId?: string;
}

/** Another secret read during a step (the master secret). */
export interface OtherSecret {
  /** The ARN or name it was asked for by. */
  id: string;
  secretString: string;
  /** The secret's tags (DescribeSecret), read only when asked for: RDS puts the instance ARN there. */
  tags(): Promise<Readonly<Record<string, string>>>;
}

/**
 * What a strategy receives for one step. Readers are lazy and memoised: each secret version is
 * fetched at most once per invocation, and only if the strategy asks for it.
 */
export interface StepContext<S> {
  readonly step: Step;
  /** The secret's ARN as DescribeSecret reports it. */
  readonly secretId: string;
  /** The secret's name, for messages. */
  readonly secretName: string;
  /** The rotation's version id (ClientRequestToken). */
  readonly token: string;
  /** AWSCURRENT, parsed by the strategy. */
  current(): Promise<S>;
  /** The token's version (AWSPENDING), parsed; throws if it has no value yet. */
  pending(): Promise<S>;
  /** AWSPREVIOUS, parsed, or undefined when there is none or it no longer parses. */
  previous(): Promise<S | undefined>;
  /** Reads another secret's AWSCURRENT by ARN or name; its values are redacted from logs. */
  otherSecret(secretId: string): Promise<OtherSecret>;
  /** A new password under the function's password policy (GetRandomPassword). */
  generatePassword(): Promise<string>;
  /** Registers a value that must never be logged. Values read from secrets already are. */
  redact(value: string): void;
  /** Logger with secret, step and token attached; redacts every secret value. */
  readonly logger: RotationLogger;
  /** Milliseconds left before the Lambda deadline, minus a safety margin. */
  remainingMs(): number;
  /** A feature fell back and the step goes on without it: recorded as the metric `Degraded`. */
  degraded(feature: string): void;
}

/**
 * How a credential is replaced: the protocol calls these hooks, the strategy never talks to
 * Secrets Manager itself.
 *
 * @example
 * const strategy: Strategy<DatabaseSecret> = singleUser(createPostgres());
 * export const handler = createRotationHandler({ strategy, logger });
 */
export interface Strategy<S> {
  /** Parses and validates a secret value; throws InvalidSecretError naming the field. */
  parse(secretString: string, stage: Stage | 'other'): S;
  /** Serialises a value for PutSecretValue, keeping unknown keys. */
  serialize(value: S): string;
  /** Values inside `value` that must never be logged (passwords, keys). */
  secretsOf(value: S): string[];
  /** The pending value, derived from AWSCURRENT (new password, other user, new key). */
  createPending(step: StepContext<S>): Promise<S>;
  /**
   * Undoes what createPending did outside Secrets Manager when its value was not stored
   * (PutSecretValue failed, or an overlapping invocation stored another value first): for
   * example, revoke a freshly minted API key so that no one is left holding it.
   */
  discardPending?(step: StepContext<S>, value: S): Promise<void>;
  /** Makes the protected service accept AWSPENDING. Idempotent; never locks out AWSCURRENT. */
  setPending(step: StepContext<S>): Promise<void>;
  /** Proves AWSPENDING works. */
  testPending(step: StepContext<S>): Promise<void>;
  /**
   * Checks the configuration when testSecret runs without a pending value (RotateSecret with
   * RotateImmediately=false): usually a sign-in with AWSCURRENT.
   */
  testCurrent?(step: StepContext<S>): Promise<void>;
  /**
   * Runs after AWSCURRENT moved to the token (for example: revoke a superseded key). In it,
   * `current()` and `previous()` still answer what AWSCURRENT and AWSPREVIOUS were *before*
   * the move: the protocol reads them first.
   */
  afterFinish?(step: StepContext<S>): Promise<void>;
}
