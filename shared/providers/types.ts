import type { CallContext } from './http.js';

export type { CallContext } from './http.js';

/** A key as the provider lists it: never its secret. */
export interface KeySummary {
  id: string;
  name: string;
}

/** A key just minted: the secret is returned once and never again. */
export interface MintedKey extends KeySummary {
  key: string;
}

/** A key and the provider-specific settings of its secret, enough to call the API with it. */
export interface KeyCredential<Spec> {
  id: string;
  key: string;
  spec: Spec;
}

/** How a verification call ended when the key was accepted. */
export type Verified = 'ok' | 'authenticated-without-permission';

/**
 * What an API-key provider gives the `apiKeys` strategy. Adapters know nothing of Secrets
 * Manager; they mint, verify, list and revoke keys over HTTP, map every answer to an
 * allow-listed shape at once, and throw `AuthenticationError` only when the provider refused the
 * credentials (a dead key), `PermissionDeniedError` when it accepted them but refused the action,
 * and a `ConnectionError` subclass when it could not be reached.
 *
 * `Spec` is what the rotated secret holds besides key and id (scopes, account, policy);
 * `Admin` is the credential allowed to manage keys (the managing secret, or the key itself).
 *
 * @example
 * const provider = createSendGrid({ baseUrl: 'https://api.eu.sendgrid.com' });
 * const minted = await provider.mint(admin, { name: 'rotation-1a2b-…', spec }, step);
 * await provider.verify({ id: minted.id, key: minted.key, spec }, step);
 */
export interface KeyProvider<Spec = unknown, Admin = unknown> {
  /** The value of the secret's `provider` field ("sendgrid"). */
  readonly id: string;
  /** Human name for messages ("SendGrid"). */
  readonly name: string;
  /** Longest key name the provider accepts. */
  readonly maxNameLength: number;
  /** Validates the provider-specific fields of a rotated secret; throws InvalidSecretError. */
  parseSpec(raw: Readonly<Record<string, unknown>>, source: string): Spec;
  /** Why two versions of a secret cannot be rotated into each other (another account...), or undefined. */
  differentTarget(current: Spec, other: Spec): string | undefined;
  /** Validates the managing secret; throws InvalidSecretError naming the field. */
  parseAdmin(raw: Readonly<Record<string, unknown>>, source: string, spec: Spec): Admin;
  /** Values inside an admin credential that must never be logged. */
  secretsOfAdmin(admin: Admin): string[];
  /** Present where a key may manage keys itself (SendGrid): the key as its own admin. */
  adminFromKey?(key: KeyCredential<Spec>, source: string): Admin;
  /** Creates a key named `name`. Resolves only once the secret is in hand (decrypted). */
  mint(admin: Admin, request: { name: string; spec: Spec }, call: CallContext): Promise<MintedKey>;
  /** One cheap authenticated call with the key. */
  verify(key: KeyCredential<Spec>, call: CallContext): Promise<Verified>;
  /** Every live key of the account (id and name only). */
  list(admin: Admin, spec: Spec, call: CallContext): Promise<KeySummary[]>;
  /** Revokes (deletes, expires) a key. An unknown id is success: 'not-found'. */
  revoke(admin: Admin, id: string, spec: Spec, call: CallContext): Promise<'revoked' | 'not-found'>;
}
