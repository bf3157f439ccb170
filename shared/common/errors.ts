/**
 * The error family every layer throws. Messages name the step, the secret and the user or
 * field at fault, and never carry a secret value; the underlying error is always kept as
 * `cause` so nothing is lost for debugging.
 *
 * The protocol prefixes `step` and `secret` once (see {@link RotationError.withContext}), so
 * lower layers only describe what they know: the user, the host, the field.
 */
export class RotationError extends Error {
  override name = 'RotationError';
  /** The rotation step that failed, set by the protocol. */
  step?: string;
  /** The secret's name or ARN, set by the protocol. */
  secret?: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }

  /** Prefix the step and secret once; returns the same error so its class survives. */
  withContext(step: string, secret: string): this {
    if (this.step === undefined) {
      this.step = step;
      this.secret = secret;
      this.message = `${step} of secret ${secret}: ${this.message}`;
    }
    return this;
  }
}

/** The Lambda event is not a rotation event (missing or invalid field). */
export class InvalidEventError extends RotationError {
  override name = 'InvalidEventError';
}

/** A secret value is unusable: not JSON, a missing or ill-typed field, a rule broken. */
export class InvalidSecretError extends RotationError {
  override name = 'InvalidSecretError';
  constructor(
    message: string,
    readonly field?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The secret's versions or rotation settings forbid this step (a guard of the protocol). */
export class StageError extends RotationError {
  override name = 'StageError';
}

/** The function's own configuration (environment, options) is invalid. */
export class ConfigurationError extends RotationError {
  override name = 'ConfigurationError';
}

/** The server answered and refused these credentials. The only error that allows a fallback. */
export class AuthenticationError extends RotationError {
  override name = 'AuthenticationError';
}

/** What went wrong while reaching a server, as opposed to being refused by it. */
export const ConnectionFailure = {
  unreachable: 'unreachable',
  tls: 'tls',
  timeout: 'timeout',
  tooManyConnections: 'too-many-connections',
  unavailable: 'unavailable',
} as const;
export type ConnectionFailure = (typeof ConnectionFailure)[keyof typeof ConnectionFailure];

/** The server could not be reached or talked to; never a reason to change anything. */
export class ConnectionError extends RotationError {
  override name = 'ConnectionError';
  constructor(
    message: string,
    readonly failure: ConnectionFailure,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Host unreachable: DNS failure, connection refused, no route. */
export class HostUnreachableError extends ConnectionError {
  override name = 'HostUnreachableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ConnectionFailure.unreachable, options);
  }
}

/** TLS could not be negotiated or the certificate was not trusted. */
export class TlsError extends ConnectionError {
  override name = 'TlsError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ConnectionFailure.tls, options);
  }
}

/** The server did not answer in time. */
export class ConnectTimeoutError extends ConnectionError {
  override name = 'ConnectTimeoutError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ConnectionFailure.timeout, options);
  }
}

/** The server refused the connection because it has no free connection slot. Retryable. */
export class TooManyConnectionsError extends ConnectionError {
  override name = 'TooManyConnectionsError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ConnectionFailure.tooManyConnections, options);
  }
}

/** A statement failed once signed in (missing privilege, unknown role...). */
export class DatabaseError extends RotationError {
  override name = 'DatabaseError';
}

/** The user to create exists already (an overlapping invocation made it a moment ago). */
export class UserExistsError extends DatabaseError {
  override name = 'UserExistsError';
}

/** The new credential signed in but did not work as expected (testSecret). */
export class VerificationError extends RotationError {
  override name = 'VerificationError';
}
