/**
 * One fixture per API-key provider, so the same end-to-end scenarios run against each: the
 * provider's HTTP fake, the adapter pointed at it, and `provision`, which seeds the key a person
 * would have created in the provider's console and writes the secret that records it (and the
 * managing secret where the provider needs one).
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createSendGrid } from '../../shared/providers/sendgrid.js';
import { createStripe } from '../../shared/providers/stripe.js';
import { createTwilio } from '../../shared/providers/twilio.js';
import type { KeyProvider } from '../../shared/providers/types.js';
import type { FakeKey, FakeProviderServer } from './fake-provider-server.js';
import { FakeSendGrid } from './fake-sendgrid.js';
import { FakeStripe } from './fake-stripe.js';
import { FakeTwilio } from './fake-twilio.js';
import type { RotationHarness } from './rotation-harness.js';

export interface Provisioned {
  secretId: string;
  /** The key the secret starts with (made by a person: not named by us). */
  firstKeyId: string;
}

export interface ProviderFixture<
  Fake extends FakeProviderServer<FakeKey> = FakeProviderServer<FakeKey>,
> {
  /** "SendGrid" */
  name: string;
  fake: Fake;
  /** The adapter, talking to the fake. */
  provider(): KeyProvider<unknown, unknown>;
  /** Seeds a first key and writes a secret recording it; `fields` are merged into the value. */
  provision(harness: RotationHarness, fields?: Record<string, unknown>): Provisioned;
  /** Secret values besides the fake's keys that must never be logged (managing secrets). */
  otherSecrets(): string[];
}

export const randomSuffix = () => randomBytes(4).toString('hex');

/** The start of every key name minted for the secret with this ARN (prefix `rotation`). */
export const ownPrefix = (arn: string, prefix = 'rotation') =>
  `${prefix}-${createHash('sha256').update(arn).digest('hex').slice(0, 10)}-`;

/**
 * `allowedsecrets` of a managing secret serving exactly the secret named `name` (the fake, like
 * Secrets Manager, appends `-` and six characters to the name in the ARN).
 */
export const allowing = (...names: string[]) => ({
  allowedsecrets: names.map((name) => `arn:aws:secretsmanager:*:*:secret:${name}-??????`),
});

export function sendGridFixture(): ProviderFixture<FakeSendGrid> {
  const fake = new FakeSendGrid();
  return {
    name: 'SendGrid',
    fake,
    provider: () => createSendGrid({ baseUrl: fake.baseUrl }) as KeyProvider<unknown, unknown>,
    provision(harness, fields = {}) {
      // Full access, so the key may rotate itself: no managing secret.
      const first = fake.seedKey(`prod-mailer-${randomSuffix()}`);
      const secretId = harness.fake.createSecret({
        name: `sendgrid/${randomSuffix()}`,
        secretString: JSON.stringify({
          provider: 'sendgrid',
          key: first.secret,
          key_id: first.id,
          team: 'growth',
          ...fields,
        }),
      });
      return { secretId, firstKeyId: first.id };
    },
    otherSecrets: () => [],
  };
}

export function stripeFixture(mode: 'test' | 'live' = 'live'): ProviderFixture<FakeStripe> {
  const fake = new FakeStripe(mode);
  fake.contextAccount = 'acct_1PlatformCustomer';
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return {
    name: 'Stripe',
    fake,
    provider: () =>
      createStripe({ baseUrl: fake.baseUrl, apiVersion: fake.apiVersion }) as KeyProvider<
        unknown,
        unknown
      >,
    provision(harness, fields = {}) {
      const name = `stripe/${randomSuffix()}`;
      const adminArn = harness.fake.createSecret({
        name: `api-key-admin/stripe-${randomSuffix()}`,
        secretString: JSON.stringify({
          key: fake.managingKey,
          stripe_context: fake.contextAccount,
          private_key: privateKeyPem,
          ...allowing(name),
        }),
      });
      const first = fake.seedKey(`checkout-${randomSuffix()}`);
      const secretId = harness.fake.createSecret({
        name,
        secretString: JSON.stringify({
          provider: 'stripe',
          key: first.secret,
          key_id: first.id,
          adminarn: adminArn,
          ...fields,
        }),
      });
      return { secretId, firstKeyId: first.id };
    },
    otherSecrets: () => [privateKeyPem],
  };
}

export function twilioFixture(): ProviderFixture<FakeTwilio> {
  const fake = new FakeTwilio();
  return {
    name: 'Twilio',
    fake,
    provider: () =>
      createTwilio({ apiBaseUrl: fake.baseUrl, iamBaseUrl: fake.baseUrl }) as KeyProvider<
        unknown,
        unknown
      >,
    provision(harness, fields = {}) {
      const name = `twilio/${randomSuffix()}`;
      const adminArn = harness.fake.createSecret({
        name: `api-key-admin/twilio-${randomSuffix()}`,
        secretString: JSON.stringify({
          account_sid: fake.accountSid,
          auth_token: fake.authToken,
          ...allowing(name),
        }),
      });
      const first = fake.seedKey(`sms-sender-${randomSuffix()}`);
      const secretId = harness.fake.createSecret({
        name,
        secretString: JSON.stringify({
          provider: 'twilio',
          key: first.secret,
          key_id: first.id,
          account_sid: fake.accountSid,
          adminarn: adminArn,
          ...fields,
        }),
      });
      return { secretId, firstKeyId: first.id };
    },
    otherSecrets: () => [],
  };
}

/**
 * Which of `secrets` appear in `texts`, described by position and length only (never the value).
 */
export function leakedSecrets(texts: readonly string[], secrets: readonly string[]): string[] {
  const haystack = texts.join('\n');
  return secrets
    .map((secret, index) =>
      secret.length >= 8 && haystack.includes(secret)
        ? `secret #${index} (${secret.length} chars)`
        : '',
    )
    .filter((found) => found !== '');
}

export { errorText } from './leak-guard.js';
