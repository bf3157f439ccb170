/**
 * Rules that live in module-level constants (the event's shape checks, the protocol's log
 * context, the service-error match, the default password exclusions, the API-key id, prefix and
 * ARN patterns), each stated on hostile or boundary input.
 *
 * Each test loads the module afresh inside the test (vi.resetModules, then import): a module's
 * constants are evaluated when it loads, and a mutation run (Stryker) can only measure, and
 * change, what loads while a test runs. The behaviour asserted is the product's, not the loader's.
 */
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { LogRecorder } from '../support/log-recorder.js';

beforeEach(() => {
  vi.resetModules();
});

const TOKEN = 'a'.repeat(32);
const failure = (run: () => unknown) => {
  try {
    run();
  } catch (error) {
    return error as Error & { field?: string };
  }
  return undefined;
};

describe('the rotation event (event.ts)', () => {
  it('accepts a well-formed event, freshly loaded', async () => {
    const { parseRotationEvent } = await import('../../shared/rotation/event.js');
    expect(
      parseRotationEvent({ Step: 'setSecret', SecretId: 'app', ClientRequestToken: TOKEN }),
    ).toEqual({ Step: 'setSecret', SecretId: 'app', ClientRequestToken: TOKEN });
  });

  it.each([
    [null, 'got null'],
    [[], 'got an array'],
    ['createSecret', 'got a string'],
  ])('says what it got instead of an object (%j)', async (event, got) => {
    const { parseRotationEvent } = await import('../../shared/rotation/event.js');
    const error = failure(() => parseRotationEvent(event));
    expect(error?.name).toBe('InvalidEventError');
    expect(error?.message).toBe(`rotation event must be an object, ${got}`);
  });

  it('names the field and the type it got for a field of the wrong type', async () => {
    const { parseRotationEvent } = await import('../../shared/rotation/event.js');
    const error = failure(() =>
      parseRotationEvent({ Step: 'setSecret', SecretId: 7, ClientRequestToken: TOKEN }),
    );
    expect(error?.message).toBe('rotation event: field SecretId must be a string, got a number');
  });
});

describe('the protocol handler (handler.ts)', () => {
  it('puts the step, the secret and the token on every line it writes, freshly loaded', async () => {
    const { createRotationHandler } = await import('../../shared/rotation/handler.js');
    const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:app-AbCdEf';
    // DescribeSecret: the token is already AWSCURRENT, so the step logs one decision and ends.
    const client = {
      send: async () => ({
        ARN: arn,
        Name: 'app',
        VersionIdsToStages: { [TOKEN]: ['AWSCURRENT'] },
      }),
    } as unknown as SecretsManagerClient;
    const logs = new LogRecorder();
    const handler = createRotationHandler({
      strategy: {
        parse: (text) => text,
        serialize: (value) => value,
        secretsOf: () => [],
        createPending: async () => 'x',
        setPending: async () => {},
        testPending: async () => {},
      },
      logger: logs,
      client,
      env: {},
    });
    await handler({ Step: 'finishSecret', SecretId: arn, ClientRequestToken: TOKEN });
    expect(logs.lines).toEqual([
      {
        level: 'info',
        message: 'version is already AWSCURRENT; nothing to do',
        attributes: { step: 'finishSecret', secretId: arn, token: TOKEN },
      },
    ]);
  });
});

describe('service errors (secrets-store.ts)', () => {
  const storeAnswering = async (error: Error) => {
    const { SecretStore } = await import('../../shared/rotation/secrets-store.js');
    const client = {
      send: async () => {
        throw error;
      },
    } as unknown as SecretsManagerClient;
    return new SecretStore(client, 'app');
  };
  const named = (name: string) => Object.assign(new Error(`${name} from the service`), { name });

  it('reads a ResourceNotFoundException as "no value", freshly loaded', async () => {
    const store = await storeAnswering(named('ResourceNotFoundException'));
    await expect(store.read({ stage: 'AWSPENDING' as never })).resolves.toBeUndefined();
  });

  it('passes any other service error on (throttling is no "no value")', async () => {
    const store = await storeAnswering(named('ThrottlingException'));
    await expect(store.read({ stage: 'AWSPENDING' as never })).rejects.toThrow(
      'ThrottlingException from the service',
    );
  });
});

describe('the password policy (password-policy.ts)', () => {
  it("excludes AWS's default characters when EXCLUDE_CHARACTERS is unset, freshly loaded", async () => {
    const { passwordPolicyFromEnv } = await import('../../shared/rotation/password-policy.js');
    expect(passwordPolicyFromEnv({}).ExcludeCharacters).toBe(':/@"\'\\');
  });
});

describe('API-key ids, key name prefixes and ARN patterns (api-keys.ts)', () => {
  const provider = {
    id: 'sendgrid',
    name: 'SendGrid',
    parseSpec: () => ({}),
  };
  const secretWithKeyId = (keyId: string) =>
    JSON.stringify({ provider: 'sendgrid', key: 'SG.test-key-value', key_id: keyId });
  const parseKeyId = async (keyId: string) => {
    const { parseApiKeySecret } = await import('../../shared/strategies/api-keys.js');
    return failure(() => parseApiKeySecret(secretWithKeyId(keyId), 'AWSCURRENT', provider));
  };

  it.each([
    ['one character', 'k'],
    ['letters, digits, "_" and "-"', 'Key_01-abc'],
    ['255 characters', 'k'.repeat(255)],
  ])('accepts a key id of %s', async (_, keyId) => {
    expect(await parseKeyId(keyId)).toBeUndefined();
  });

  it.each([
    ['a trailing newline', 'abc123\n'],
    ['a leading newline', '\nabc123'],
    ['256 characters', 'k'.repeat(256)],
    ['a space inside', 'abc 123'],
    ['a leading slash (a path)', '/abc123'],
    ['a trailing "?" (a query)', 'abc123?'],
  ])('refuses a key id with %s, naming key_id', async (_, keyId) => {
    const error = await parseKeyId(keyId);
    expect(error?.name).toBe('InvalidSecretError');
    expect(error?.field).toBe('key_id');
  });

  const prefixError = async (prefix: string) => {
    const { apiKeySettings } = await import('../../shared/strategies/api-keys.js');
    return failure(() => apiKeySettings({ env: { KEY_NAME_PREFIX: prefix } }));
  };

  it.each([
    ['one character', 'r'],
    ['24 characters', `r${'-'.repeat(23)}`],
  ])('accepts a key name prefix of %s', async (_, prefix) => {
    expect(await prefixError(prefix)).toBeUndefined();
  });

  it.each([
    ['that starts with "-"', '-rotation'],
    ['of 25 characters', 'r'.repeat(25)],
    ['that ends with "_"', 'rotation_'],
    ['with a dot', 'rotation.v2'],
  ])('refuses a key name prefix %s, naming KEY_NAME_PREFIX', async (_, prefix) => {
    const error = await prefixError(prefix);
    expect(error?.name).toBe('ConfigurationError');
    expect(error?.message).toContain('KEY_NAME_PREFIX');
  });

  const SECRET = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/mailer-AbCdEf';
  const allowing = async (...allowedsecrets: string[]) => {
    const { requireAllowedSecret } = await import('../../shared/strategies/api-keys.js');
    return failure(() => requireAllowedSecret({ allowedsecrets }, 'managing secret m', SECRET));
  };

  it('accepts an ARN and an ARN pattern in allowedsecrets', async () => {
    expect(await allowing(SECRET)).toBeUndefined();
    expect(await allowing('arn:aws:secretsmanager:*:123456789012:secret:team-a/*')).toBeUndefined();
  });

  it.each([
    ['a leading space', ` ${SECRET}`],
    ['a trailing newline', `${SECRET}\n`],
    ['a space inside', 'arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/* x'],
    ['something before "arn:"', `x${SECRET}`],
    ['nothing after "arn:"', 'arn:'],
  ])('refuses an allowedsecrets entry with %s, naming allowedsecrets', async (_, entry) => {
    const error = await allowing(entry);
    expect(error?.name).toBe('InvalidSecretError');
    expect(error?.field).toBe('allowedsecrets');
  });
});
