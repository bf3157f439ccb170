import type { GetRandomPasswordRequest } from '@aws-sdk/client-secrets-manager';
import { ConfigurationError } from '../common/errors.js';

/** The characters AWS's rotation templates exclude by default (they break connection strings). */
export const DEFAULT_EXCLUDE_CHARACTERS = ':/@"\'\\';

type Env = Readonly<Record<string, string | undefined>>;

function readBoolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const normalized = raw.trim().toLowerCase();
  if (normalized === 'true') return true;
  if (normalized === 'false') return false;
  throw new ConfigurationError(
    `environment variable ${name} must be "true" or "false", got ${JSON.stringify(raw)}`,
  );
}

/**
 * Reads the password policy from the environment, under the names AWS's rotation templates
 * use, and validates it at creation so a bad setting fails at cold start, not mid-rotation.
 *
 * @example
 * passwordPolicyFromEnv({ PASSWORD_LENGTH: '40', EXCLUDE_PUNCTUATION: 'true' });
 * // → { PasswordLength: 40, ExcludePunctuation: true, ExcludeCharacters: ':/@"\'\\', ... }
 */
export function passwordPolicyFromEnv(env: Env): GetRandomPasswordRequest {
  const rawLength = env.PASSWORD_LENGTH?.trim();
  const length = rawLength === undefined || rawLength === '' ? 32 : Number(rawLength);
  if (!Number.isInteger(length) || length < 1 || length > 4096) {
    throw new ConfigurationError(
      `environment variable PASSWORD_LENGTH must be a whole number from 1 to 4096, got ${JSON.stringify(rawLength)}`,
    );
  }
  const policy: GetRandomPasswordRequest = {
    PasswordLength: length,
    // Unset means the AWS default; set to the empty string means "exclude nothing", as in AWS's templates.
    ExcludeCharacters: env.EXCLUDE_CHARACTERS ?? DEFAULT_EXCLUDE_CHARACTERS,
    ExcludeNumbers: readBoolean(env, 'EXCLUDE_NUMBERS', false),
    ExcludePunctuation: readBoolean(env, 'EXCLUDE_PUNCTUATION', false),
    ExcludeUppercase: readBoolean(env, 'EXCLUDE_UPPERCASE', false),
    ExcludeLowercase: readBoolean(env, 'EXCLUDE_LOWERCASE', false),
    RequireEachIncludedType: readBoolean(env, 'REQUIRE_EACH_INCLUDED_TYPE', true),
  };
  if (
    policy.ExcludeNumbers &&
    policy.ExcludePunctuation &&
    policy.ExcludeUppercase &&
    policy.ExcludeLowercase
  ) {
    throw new ConfigurationError(
      'password policy excludes numbers, punctuation, upper and lower case: nothing is left to draw from',
    );
  }
  if (policy.ExcludeCharacters === '') delete policy.ExcludeCharacters;
  return policy;
}
