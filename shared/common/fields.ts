import { InvalidSecretError } from './errors.js';

/**
 * Field readers for secret values that any layer may use. Every error names the source (a stage
 * or "the managing secret ...") and the field, and never quotes a value.
 */

export type Fields = Readonly<Record<string, unknown>>;

export function jsonObject(text: string, source: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // No cause: JSON.parse's message quotes the text, which is a secret.
    throw new InvalidSecretError(`${source} is not valid JSON`, 'SecretString');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidSecretError(`${source} must be a JSON object`, 'SecretString');
  }
  // JSON.parse nests as deep as the text does, but JSON.stringify (serialising the secret with
  // its other keys kept) and the logger recurse: a few thousand levels end in a RangeError.
  if (nestingDepth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    throw new InvalidSecretError(
      `${source} nests objects or arrays deeper than ${MAX_JSON_DEPTH} levels`,
      'SecretString',
    );
  }
  return value as Record<string, unknown>;
}

/** Deepest nesting a secret value may have; AWS's own templates use 1. */
export const MAX_JSON_DEPTH = 32;

/** Nesting depth of a parsed JSON value, counted without recursion and stopping past `limit`. */
function nestingDepth(root: unknown, limit: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[root, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop() as [unknown, number];
    if (typeof value !== 'object' || value === null) continue;
    deepest = Math.max(deepest, depth);
    if (deepest > limit) return deepest;
    for (const child of Object.values(value)) stack.push([child, depth + 1]);
  }
  return deepest;
}

export function stringField(
  raw: Fields,
  field: string,
  source: string,
  options: { maxLength?: number; pattern?: RegExp; describe?: string } = {},
): string {
  const value = raw[field];
  if (value === undefined || value === null) {
    throw new InvalidSecretError(`${source}: field "${field}" is missing`, field);
  }
  if (typeof value !== 'string') {
    throw new InvalidSecretError(
      `${source}: field "${field}" must be a string, got ${Array.isArray(value) ? 'an array' : typeof value}`,
      field,
    );
  }
  if (value.trim() === '') {
    throw new InvalidSecretError(`${source}: field "${field}" is empty`, field);
  }
  const maxLength = options.maxLength ?? 1024;
  if (value.length > maxLength) {
    throw new InvalidSecretError(
      `${source}: field "${field}" is longer than ${maxLength} characters (${value.length})`,
      field,
    );
  }
  if (options.pattern && !options.pattern.test(value)) {
    throw new InvalidSecretError(
      `${source}: field "${field}" must be ${options.describe ?? `like ${options.pattern}`}`,
      field,
    );
  }
  return value;
}

export function optionalStringField(
  raw: Fields,
  field: string,
  source: string,
  options: { maxLength?: number; pattern?: RegExp; describe?: string } = {},
): string | undefined {
  return raw[field] === undefined || raw[field] === null
    ? undefined
    : stringField(raw, field, source, options);
}

export function optionalStringArrayField(
  raw: Fields,
  field: string,
  source: string,
  options: { maxItems?: number; itemPattern?: RegExp; describe?: string } = {},
): string[] | undefined {
  const value = raw[field];
  if (value === undefined || value === null) return undefined;
  const maxItems = options.maxItems ?? 500;
  if (
    !Array.isArray(value) ||
    value.some((item) => typeof item !== 'string' || item.trim() === '')
  ) {
    throw new InvalidSecretError(
      `${source}: field "${field}" must be an array of non-empty strings`,
      field,
    );
  }
  if (value.length === 0 || value.length > maxItems) {
    throw new InvalidSecretError(
      `${source}: field "${field}" must hold 1 to ${maxItems} entries, got ${value.length}`,
      field,
    );
  }
  const pattern = options.itemPattern;
  if (pattern && value.some((item: string) => !pattern.test(item))) {
    throw new InvalidSecretError(
      `${source}: every entry of field "${field}" must be ${options.describe ?? `like ${pattern}`}`,
      field,
    );
  }
  return [...(value as string[])];
}
