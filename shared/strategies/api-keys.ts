import { createHash } from 'node:crypto';
import {
  AuthenticationError,
  ConfigurationError,
  InvalidSecretError,
  RotationError,
} from '../common/errors.js';
import {
  type Fields,
  jsonObject,
  optionalStringArrayField,
  optionalStringField,
  stringField,
} from '../common/fields.js';
import type { KeyProvider, KeySummary } from '../providers/types.js';
import type { Stage, StepContext, Strategy } from '../rotation/types.js';

/** An API-key secret value, validated. Unknown keys are kept. */
export interface ApiKeySecret<Spec> {
  /** The secret's `provider` field ("sendgrid", "stripe", "twilio"). */
  provider: string;
  /** The key itself (`key`). Never logged. */
  key: string;
  /** The provider's id of the key (`key_id`). */
  keyId: string;
  /** The managing secret (`adminarn`): a credential allowed to mint and revoke keys. */
  adminarn?: string;
  /** The provider-specific fields (scopes, account, policy...). */
  spec: Spec;
  /** The stored JSON object as it was, so serialisation keeps every other key. */
  raw: Readonly<Record<string, unknown>>;
}

/** When the key that loses AWSCURRENT is revoked. */
export const RevokeDemotedKey = {
  /** One rotation later: it stays AWSPREVIOUS and keeps working for a whole interval. */
  nextRotation: 'next-rotation',
  /** At the end of this rotation's finishSecret. */
  immediately: 'immediately',
} as const;
export type RevokeDemotedKey = (typeof RevokeDemotedKey)[keyof typeof RevokeDemotedKey];

type Env = Readonly<Record<string, string | undefined>>;

/** Options of {@link apiKeys}; each overrides its environment variable. */
/**
 * The longest KEY_PROPAGATION_TIMEOUT_SECONDS. template.yaml gives the API-key functions 90 s
 * and the same MaxValue: testSecret also reads the rotated and the managing secret, lists keys
 * and keeps the handler's safety margin, so a longer wait could only end at the Lambda deadline.
 */
export const MAX_KEY_PROPAGATION_SECONDS = 60;

export interface ApiKeysOptions {
  /** Where settings are read (default `process.env`). */
  env?: Env;
  /** REVOKE_DEMOTED_KEY (default `next-rotation`). */
  revokeDemotedKey?: RevokeDemotedKey;
  /** KEY_NAME_PREFIX (default `rotation`): first part of every key name we mint. */
  keyNamePrefix?: string;
  /**
   * KEY_PROPAGATION_TIMEOUT_SECONDS × 1000 (default 60000, at most
   * {@link MAX_KEY_PROPAGATION_SECONDS} s): how long testSecret waits for a new key.
   */
  propagationTimeoutMs?: number;
  /** For tests. */
  sleep?: (ms: number) => Promise<void>;
}

interface Settings {
  revokeDemotedKey: RevokeDemotedKey;
  keyNamePrefix: string;
  propagationTimeoutMs: number;
  sleep: (ms: number) => Promise<void>;
}

const KEY_ID = /^[A-Za-z0-9_-]{1,255}$/;
const PREFIX = /^[A-Za-z0-9][A-Za-z0-9-]{0,23}$/;

/** An ARN pattern of `allowedsecrets`: `*` and `?` wildcards, as in IAM. */
const ARN_PATTERN = /^arn:\S{1,2044}$/;

/**
 * IAM-style wildcard match: `*` any run of characters, `?` exactly one; case-sensitive. One
 * backtrack point, no regex: O(pattern × ARN) at worst, both bounded.
 *
 * @example
 * arnMatches('arn:aws:secretsmanager:*:123456789012:secret:team-a/*', arn);
 */
export function arnMatches(pattern: string, arn: string): boolean {
  let p = 0;
  let s = 0;
  let star = -1;
  let resume = 0;
  while (s < arn.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === arn[s])) {
      p++;
      s++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      resume = s;
    } else if (star >= 0) {
      p = star + 1;
      s = ++resume;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

/**
 * The managing secret names the secrets allowed to use it (`allowedsecrets`, written by whoever
 * administers it); a rotated secret's `adminarn` is written by anyone with PutSecretValue on
 * that secret, so it alone proves nothing. Fails closed when the field is missing.
 */
export function requireAllowedSecret(raw: Fields, where: string, secretArn: string): void {
  const allowed = optionalStringArrayField(raw, 'allowedsecrets', where, {
    maxItems: 100,
    itemPattern: ARN_PATTERN,
    describe:
      'a secret ARN or ARN pattern (with * and ?), such as arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/*',
  });
  if (allowed === undefined) {
    throw new InvalidSecretError(
      `field "adminarn" names ${where}, which has no "allowedsecrets": add "allowedsecrets": ["${secretArn}"] (ARN patterns with * allowed) to its value to let this secret use it`,
      'adminarn',
    );
  }
  if (!allowed.some((pattern) => arnMatches(pattern, secretArn))) {
    throw new InvalidSecretError(
      `field "adminarn" names ${where}, whose "allowedsecrets" does not list this secret (${secretArn}); refusing to act through it`,
      'adminarn',
    );
  }
}

/** Reads and validates the strategy's settings, so a bad value fails at cold start. */
export function apiKeySettings(options: ApiKeysOptions = {}): Settings {
  const env = options.env ?? process.env;
  const mode = options.revokeDemotedKey ?? env.REVOKE_DEMOTED_KEY?.trim() ?? '';
  const revokeDemotedKey = mode === '' ? RevokeDemotedKey.nextRotation : mode;
  if (!Object.values(RevokeDemotedKey).includes(revokeDemotedKey as RevokeDemotedKey)) {
    throw new ConfigurationError(
      `environment variable REVOKE_DEMOTED_KEY must be "next-rotation" or "immediately", got ${JSON.stringify(mode)}`,
    );
  }
  const prefix = options.keyNamePrefix ?? env.KEY_NAME_PREFIX?.trim() ?? '';
  const keyNamePrefix = prefix === '' ? 'rotation' : prefix;
  if (!PREFIX.test(keyNamePrefix)) {
    throw new ConfigurationError(
      `environment variable KEY_NAME_PREFIX must be 1 to 24 letters, digits or "-" (starting with a letter or digit), got ${JSON.stringify(prefix)}`,
    );
  }
  let propagationTimeoutMs = options.propagationTimeoutMs;
  if (propagationTimeoutMs === undefined) {
    const raw = env.KEY_PROPAGATION_TIMEOUT_SECONDS?.trim() ?? '';
    const seconds = raw === '' ? 60 : Number(raw);
    if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_KEY_PROPAGATION_SECONDS) {
      throw new ConfigurationError(
        `environment variable KEY_PROPAGATION_TIMEOUT_SECONDS must be a whole number from 0 to ${MAX_KEY_PROPAGATION_SECONDS}, got ${JSON.stringify(raw)}`,
      );
    }
    propagationTimeoutMs = seconds * 1000;
  }
  return {
    revokeDemotedKey: revokeDemotedKey as RevokeDemotedKey,
    keyNamePrefix,
    propagationTimeoutMs,
    sleep: options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
  };
}

/**
 * Parses an API-key secret for `provider`, naming the field at fault in every error.
 *
 * @example
 * parseApiKeySecret('{"provider":"sendgrid","key":"SG.…","key_id":"abc"}', 'AWSCURRENT', createSendGrid());
 */
export function parseApiKeySecret<Spec>(
  text: string,
  source: string,
  provider: Pick<KeyProvider<Spec>, 'id' | 'name' | 'parseSpec'>,
): ApiKeySecret<Spec> {
  const raw = jsonObject(text, source);
  const name = stringField(raw, 'provider', source, { maxLength: 64 });
  if (name.toLowerCase() !== provider.id) {
    throw new InvalidSecretError(
      `${source}: field "provider" is ${JSON.stringify(name)}; this function rotates ${provider.name} keys ("${provider.id}")`,
      'provider',
    );
  }
  const key = stringField(raw, 'key', source, { maxLength: 4096 });
  const keyId = stringField(raw, 'key_id', source, {
    pattern: KEY_ID,
    describe: 'a key id of letters, digits, "_" and "-"',
  });
  const adminarn = optionalStringField(raw, 'adminarn', source, { maxLength: 2048 });
  return {
    provider: provider.id,
    key,
    keyId,
    ...(adminarn === undefined ? {} : { adminarn }),
    spec: provider.parseSpec(raw, source),
    raw,
  };
}

/** The secret with another key; every other field is kept as stored. */
function withKey<Spec>(secret: ApiKeySecret<Spec>, id: string, key: string): ApiKeySecret<Spec> {
  return { ...secret, key, keyId: id, raw: { ...secret.raw, key, key_id: id } };
}

/**
 * Two keys overlap, none is ever orphaned. createSecret mints a new key named
 * `<prefix>-<secret tag>-<token>` after revoking every key carrying this secret's tag that no
 * stored version records (what a crashed run left behind); setSecret sweeps again once the new
 * key is stored; testSecret calls the provider with the new key, waiting while it propagates;
 * finishSecret's hook revokes the key superseded by a whole interval (the one that was
 * AWSPREVIOUS before the rotation), or with REVOKE_DEMOTED_KEY=immediately also the one that
 * just lost AWSCURRENT. Nothing is revoked without this secret's tag: the sweep lists by it, and
 * a superseded key id (read from a stored version, which any PutSecretValue holder can write) is
 * revoked only if the managing secret's account lists it under a name with the tag; any other
 * key (the first one, made by a person) is left live with a warning. A managing secret acts only
 * for the secrets its `allowedsecrets` names, checked before any provider call.
 *
 * @example
 * export const handler = createRotationHandler({ strategy: apiKeys(createSendGrid()), logger });
 */
export function apiKeys<Spec, Admin>(
  provider: KeyProvider<Spec, Admin>,
  options: ApiKeysOptions = {},
): Strategy<ApiKeySecret<Spec>> {
  const settings = apiKeySettings(options);
  type Secret = ApiKeySecret<Spec>;

  /** `<prefix>-<tag>-`: the start of every key name minted for this secret. */
  const ownPrefix = (step: StepContext<Secret>) =>
    `${settings.keyNamePrefix}-${createHash('sha256').update(step.secretId).digest('hex').slice(0, 10)}-`;
  const keyName = (step: StepContext<Secret>) =>
    `${ownPrefix(step)}${step.token}`.slice(0, provider.maxNameLength);

  async function adminFor(step: StepContext<Secret>, secret: Secret, source: Stage | string) {
    if (secret.adminarn !== undefined) {
      const other = await step.otherSecret(secret.adminarn);
      const where = `managing secret ${secret.adminarn}`;
      const raw = jsonObject(other.secretString, where);
      // Before any provider call: the credential acts only for the secrets it names.
      requireAllowedSecret(raw, where, step.secretId);
      const admin = provider.parseAdmin(raw, where, secret.spec);
      for (const value of provider.secretsOfAdmin(admin)) step.redact(value);
      return admin;
    }
    if (provider.adminFromKey) {
      return provider.adminFromKey(
        { id: secret.keyId, key: secret.key, spec: secret.spec },
        source,
      );
    }
    throw new InvalidSecretError(
      `${source}: field "adminarn" is missing; ${provider.name} keys cannot manage keys, so the secret must name a managing secret`,
      'adminarn',
    );
  }

  /** Revokes every key of ours that `keep` does not name (and `spare`, a name still in flight). */
  async function sweep(
    step: StepContext<Secret>,
    admin: Admin,
    spec: Spec,
    keep: ReadonlySet<string>,
    spare?: string,
  ): Promise<KeySummary[]> {
    const prefix = ownPrefix(step);
    const orphans = (await provider.list(admin, spec, step)).filter(
      (key) =>
        key.name.startsWith(prefix) &&
        !keep.has(key.id) &&
        key.name !== spare &&
        KEY_ID.test(key.id),
    );
    for (const orphan of orphans) {
      const outcome = await provider.revoke(admin, orphan.id, spec, step);
      step.logger.info('revoked a key of ours that no version of the secret records', {
        keyId: orphan.id,
        name: orphan.name,
        outcome,
      });
    }
    return orphans;
  }

  /** Pending must be for the same provider account, through the same managing secret. */
  function requireSameTarget(pending: Secret, current: Secret): void {
    if (pending.adminarn !== current.adminarn) {
      throw new InvalidSecretError(
        'AWSPENDING names another "adminarn" than AWSCURRENT; refusing to act through it',
        'adminarn',
      );
    }
    const reason = provider.differentTarget(current.spec, pending.spec);
    if (reason !== undefined) {
      throw new InvalidSecretError(`AWSPENDING does not match AWSCURRENT: ${reason}`, 'provider');
    }
    if (pending.keyId === current.keyId) {
      throw new InvalidSecretError(
        `AWSPENDING records the same key (${pending.keyId}) as AWSCURRENT: nothing would be rotated`,
        'key_id',
      );
    }
  }

  /** Calls the provider with the key, retrying while a new key propagates, within the time left. */
  async function verify(step: StepContext<Secret>, secret: Secret, stage: Stage) {
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        const outcome = await provider.verify(
          { id: secret.keyId, key: secret.key, spec: secret.spec },
          step,
        );
        step.logger.info(
          outcome === 'ok'
            ? `${stage} key works`
            : `${stage} key authenticates (it lacks permission for the verification call, which proves it is live)`,
          { keyId: secret.keyId, attempts: attempt },
        );
        return;
      } catch (error) {
        if (!(error instanceof AuthenticationError)) throw error;
        const waited = Date.now() - started;
        const delay = Math.min(5_000, 250 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
        const outOfPatience = waited + delay > settings.propagationTimeoutMs;
        if (outOfPatience || step.remainingMs() < delay + 2_000) {
          const limit = outOfPatience
            ? `the ${settings.propagationTimeoutMs / 1000} s propagation wait (KEY_PROPAGATION_TIMEOUT_SECONDS)`
            : 'the time left before the Lambda deadline';
          throw new AuthenticationError(
            `${provider.name} refuses the ${stage} key ${secret.keyId}: still refused after ${attempt} attempts within ${limit}; ${error.message}`,
            { cause: error },
          );
        }
        step.logger.info(`${stage} key not accepted yet; waiting for it to propagate`, {
          keyId: secret.keyId,
          attempt,
          delayMs: Math.round(delay),
        });
        await settings.sleep(delay);
      }
    }
  }

  return {
    parse: (text, stage) => parseApiKeySecret(text, stage, provider),

    serialize: (secret) =>
      JSON.stringify({
        ...secret.raw,
        provider: secret.provider,
        key: secret.key,
        key_id: secret.keyId,
      }),

    secretsOf: (secret) => [secret.key],

    async createPending(step) {
      const [current, previous] = await Promise.all([step.current(), step.previous()]);
      const admin = await adminFor(step, current, 'AWSCURRENT');
      const name = keyName(step);
      const keep = new Set([current.keyId, ...(previous ? [previous.keyId] : [])]);
      // A key named for this very token may belong to an overlapping invocation that has not
      // stored it yet: spare it here; setSecret's sweep revokes it once a value is stored.
      await sweep(step, admin, current.spec, keep, name);
      const minted = await provider.mint(admin, { name, spec: current.spec }, step);
      step.redact(minted.key);
      if (!KEY_ID.test(minted.id)) {
        // Stored, it would fail every later parse; the key carries our name, so a sweep revokes it.
        throw new RotationError(
          `${provider.name} answered the mint with a key id that is not 1 to 255 letters, digits, "_" and "-"; not storing it`,
        );
      }
      step.logger.info('minted a new key', { keyId: minted.id, name: minted.name });
      return withKey(current, minted.id, minted.key);
    },

    async discardPending(step, value) {
      const current = await step.current();
      const admin = await adminFor(step, current, 'AWSCURRENT');
      const outcome = await provider.revoke(admin, value.keyId, value.spec, step);
      step.logger.info('revoked the new key, which was not stored', {
        keyId: value.keyId,
        outcome,
      });
    },

    async setPending(step) {
      const [pending, current, previous] = await Promise.all([
        step.pending(),
        step.current(),
        step.previous(),
      ]);
      requireSameTarget(pending, current);
      const admin = await adminFor(step, current, 'AWSCURRENT');
      const keep = new Set([current.keyId, pending.keyId, ...(previous ? [previous.keyId] : [])]);
      await sweep(step, admin, current.spec, keep);
      step.logger.info('AWSPENDING key exists at the provider; nothing to set', {
        keyId: pending.keyId,
      });
    },

    async testPending(step) {
      await verify(step, await step.pending(), 'AWSPENDING');
    },

    async testCurrent(step) {
      await verify(step, await step.current(), 'AWSCURRENT');
    },

    async afterFinish(step) {
      // current() and previous() still answer what they were before AWSCURRENT moved.
      const [now, demoted, before] = await Promise.all([
        step.pending(),
        step.current(),
        step.previous(),
      ]);
      const superseded = [
        ...(before ? [{ secret: before, was: 'AWSPREVIOUS before this rotation' }] : []),
        ...(settings.revokeDemotedKey === RevokeDemotedKey.immediately
          ? [{ secret: demoted, was: 'AWSCURRENT before this rotation' }]
          : []),
      ].filter(
        ({ secret }) =>
          secret.keyId !== now.keyId &&
          (settings.revokeDemotedKey === RevokeDemotedKey.immediately ||
            secret.keyId !== demoted.keyId) &&
          secret.adminarn === now.adminarn &&
          provider.differentTarget(now.spec, secret.spec) === undefined,
      );
      if (superseded.length === 0) {
        step.logger.info('no superseded key to revoke', { keep: demoted.keyId });
        return;
      }
      const admin = await adminFor(step, now, 'AWSPENDING');
      // The key ids come from stored versions, which anyone with PutSecretValue can write: revoke
      // only a key the managing secret's own account lists, named as we name this secret's keys.
      let listed: Map<string, string>;
      try {
        listed = new Map(
          (await provider.list(admin, now.spec, step)).map((key) => [key.id, key.name]),
        );
      } catch (error) {
        const detail = error instanceof Error ? error.message : String(error);
        throw new RotationError(
          `AWSCURRENT moved to the new key, but listing the account's keys before revoking the superseded key ${superseded.map(({ secret }) => secret.keyId).join(', ')} failed: ${detail}. Keys named ${ownPrefix(step)}… are revoked at the next rotation; revoke any other by hand`,
          { cause: error },
        );
      }
      const failures: { keyId: string; error: unknown }[] = [];
      for (const { secret, was } of superseded) {
        const name = listed.get(secret.keyId);
        if (name === undefined) {
          step.logger.info(
            'the superseded key is not a live key of the account; nothing to revoke',
            {
              keyId: secret.keyId,
              was,
              outcome: 'not-found',
            },
          );
          continue;
        }
        if (!name.startsWith(ownPrefix(step))) {
          step.logger.warn(
            'the superseded key was not minted by this function for this secret; left live: revoke it by hand once no client uses it',
            { keyId: secret.keyId, name, was },
          );
          continue;
        }
        try {
          const outcome = await provider.revoke(admin, secret.keyId, secret.spec, step);
          step.logger.info('revoked the superseded key', { keyId: secret.keyId, was, outcome });
        } catch (error) {
          failures.push({ keyId: secret.keyId, error });
        }
      }
      const failure = failures[0];
      if (failure !== undefined) {
        const ids = failures.map(({ keyId }) => keyId).join(', ');
        const detail =
          failure.error instanceof Error ? failure.error.message : String(failure.error);
        throw new RotationError(
          `AWSCURRENT moved to the new key, but revoking the superseded key ${ids} failed: ${detail}. Keys named ${ownPrefix(step)}… are revoked at the next rotation; revoke any other by hand`,
          { cause: failure.error },
        );
      }
    },
  };
}
