/**
 * The logging seam shared code depends on. Powertools' `Logger` satisfies it; tests pass a
 * recorder. Every method takes a message and structured attributes, one line per decision.
 */
export interface RotationLogger {
  debug(message: string, ...attributes: Record<string, unknown>[]): void;
  info(message: string, ...attributes: Record<string, unknown>[]): void;
  warn(message: string, ...attributes: Record<string, unknown>[]): void;
  error(message: string, ...attributes: Record<string, unknown>[]): void;
}

/** A logger that drops everything: the default where none is given. */
export const silentLogger: RotationLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/**
 * Wraps a logger so that no string from `secrets` reaches it: every string attribute, nested
 * value and the message itself has each known secret replaced by `***`. Errors are reduced to
 * their name, class of failure and scrubbed message (driver errors can quote input).
 *
 * @example
 * const secrets = new Set<string>();
 * const log = redactingLogger(powertoolsLogger, secrets);
 * secrets.add(password); // from now on `password` never reaches powertoolsLogger
 */
export function redactingLogger(
  inner: RotationLogger,
  secrets: ReadonlySet<string>,
): RotationLogger {
  const scrubString = (text: string): string => {
    let out = text;
    for (const secret of secrets) {
      // Very short values would blank out ordinary words; every generated secret is long.
      if (secret.length >= 4 && out.includes(secret)) out = out.split(secret).join('***');
    }
    return out;
  };
  const scrub = (value: unknown, depth: number): unknown => {
    if (typeof value === 'string') return scrubString(value);
    if (depth > 6 || value === null || typeof value !== 'object') return value;
    if (value instanceof Error) {
      const failure = (value as { failure?: unknown }).failure;
      return {
        name: value.name,
        message: scrubString(value.message),
        ...(failure === undefined ? {} : { failure }),
        ...(value.cause === undefined ? {} : { cause: scrub(value.cause, depth + 1) }),
      };
    }
    if (Array.isArray(value)) return value.map((item) => scrub(item, depth + 1));
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, scrub(item, depth + 1)]),
    );
  };
  const wrap =
    (level: keyof RotationLogger) =>
    (message: string, ...attributes: Record<string, unknown>[]) =>
      inner[level](
        scrubString(message),
        ...attributes.map((item) => scrub(item, 0) as Record<string, unknown>),
      );
  return { debug: wrap('debug'), info: wrap('info'), warn: wrap('warn'), error: wrap('error') };
}

/** `text` with every known secret replaced by `***`. */
export function scrubText(text: string, secrets: ReadonlySet<string>): string {
  let out = text;
  for (const secret of secrets) {
    // Very short values would blank out ordinary words; every generated secret is long.
    if (secret.length >= 4 && out.includes(secret)) out = out.split(secret).join('***');
  }
  return out;
}

/**
 * Scrubs an error in place before it leaves the function: the Lambda runtime logs a thrown
 * error's message and stack itself, outside any logger. Walks the `cause` chain.
 */
export function scrubError(error: unknown, secrets: ReadonlySet<string>): void {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current instanceof Error && !seen.has(current)) {
    seen.add(current);
    current.message = scrubText(current.message, secrets);
    if (current.stack !== undefined) current.stack = scrubText(current.stack, secrets);
    current = current.cause;
  }
}
