/**
 * Remembers every secret value a test double ever stored and every line anything wrote, so
 * that a suite-wide check can prove no secret reached a log (see leak-guard-setup.ts).
 */
interface LeakState {
  values: Set<string>;
  output: string[];
}
// One state per worker, shared by every module instance that imports this file.
const holder = globalThis as { __leakGuard?: LeakState };
holder.__leakGuard ??= { values: new Set<string>(), output: [] };
const state: LeakState = holder.__leakGuard;

/** Called by the fakes for every value they store (SecretString, API key...). */
export function rememberSecretValue(value: string): void {
  state.values.add(value);
}

/** Called by recorders for every line written. */
export function rememberOutput(text: string): void {
  state.output.push(text);
}

const CREDENTIAL_FIELD = /pass|secret|key|token|private/i;
/** Identifiers (an API key's id, a Twilio key SID) name a credential; they are not one. */
const IDENTIFIER_FIELD = /(^|_)(id|sid)$/i;

/** The credentials inside the remembered values: credential fields of JSON, or the whole text. */
export function rememberedCredentials(): string[] {
  const found = new Set<string>();
  for (const value of state.values) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      if (value.length >= 8) found.add(value);
      continue;
    }
    if (typeof parsed !== 'object' || parsed === null) continue;
    for (const [field, item] of Object.entries(parsed)) {
      if (
        typeof item === 'string' &&
        item.length >= 8 &&
        CREDENTIAL_FIELD.test(field) &&
        !IDENTIFIER_FIELD.test(field)
      )
        found.add(item);
    }
  }
  return [...found];
}

/** Every credential found in any captured output, with where it was seen (never the value). */
export function leaks(): string[] {
  const credentials = rememberedCredentials();
  const text = state.output.join('\n');
  // Log lines are often JSON: a value with quotes or backslashes appears escaped there.
  return credentials
    .filter(
      (credential) =>
        text.includes(credential) || text.includes(JSON.stringify(credential).slice(1, -1)),
    )
    .map((credential) => `a stored credential of ${credential.length} characters`);
}

export function capturedLineCount(): number {
  return state.output.length;
}

/** Message, stack and causes of an error, as text for leak checks. */
export function errorText(error: unknown): string {
  const parts: string[] = [];
  for (let current = error, depth = 0; current && depth < 6; depth++) {
    if (current instanceof Error) {
      parts.push(current.message, current.stack ?? '');
      current = current.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join('\n');
}
