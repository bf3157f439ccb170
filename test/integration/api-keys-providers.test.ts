import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidSecretError } from '../../shared/common/errors.js';
import { apiKeys } from '../../shared/strategies/api-keys.js';
import {
  ownPrefix,
  randomSuffix,
  sendGridFixture,
  stripeFixture,
  twilioFixture,
} from '../support/api-key-fixtures.js';
import { PHONE_NUMBERS_READ } from '../support/fake-twilio.js';
import { RotationHarness } from '../support/rotation-harness.js';

const harness = new RotationHarness();
beforeAll(() => harness.start());
afterAll(() => harness.stop());

const current = (secretId: string, stage = 'AWSCURRENT') =>
  JSON.parse(harness.fake.valueOf(secretId, stage) ?? 'null') as { key: string; key_id: string };

describe('SendGrid API key rotation', () => {
  const fixture = sendGridFixture();
  beforeAll(() => fixture.fake.start());
  afterAll(() => fixture.fake.stop());
  const handler = () => harness.handler(apiKeys(fixture.provider(), { env: {} }));

  it('gives the new key the scopes the secret names, when the key rotates itself', async () => {
    // Prepare
    const scopes = ['mail.send', 'api_keys.create', 'api_keys.read', 'api_keys.delete'];
    const { secretId } = fixture.provision(harness, { scopes });

    // Act
    const result = await harness.rotate(handler(), secretId);

    // Assess
    expect(result.completed, String(result.error)).toBe(true);
    expect(fixture.fake.key(current(secretId).key_id)?.scopes).toEqual(scopes);
  });

  it('rotates a send-only key through a managing secret', async () => {
    // Prepare: the rotated key may only send mail; another key manages keys.
    const manager = fixture.fake.seedKey(`key-manager-${randomSuffix()}`);
    const adminArn = harness.fake.createSecret({
      name: `api-key-admin/sendgrid-${randomSuffix()}`,
      secretString: JSON.stringify({
        key: manager.secret,
        allowedsecrets: ['arn:aws:secretsmanager:*:*:secret:sendgrid/*'],
      }),
    });
    const { secretId, firstKeyId } = fixture.provision(harness, {
      scopes: ['mail.send'],
      adminarn: adminArn,
    });
    Object.assign(fixture.fake.key(firstKeyId) ?? {}, { scopes: ['mail.send'] });

    // Act: three rotations, so that a key the function minted is superseded by a whole interval.
    const first = await harness.rotate(handler(), secretId);
    const minted = current(secretId).key_id;
    const second = await harness.rotate(handler(), secretId);
    const third = await harness.rotate(handler(), secretId);

    // Assess
    expect(
      first.completed && second.completed && third.completed,
      String(first.error ?? second.error ?? third.error),
    ).toBe(true);
    expect(fixture.fake.key(minted)?.revokedAt).toBeDefined();
    // The first key was made by a person, not named for this secret: left live, with a warning.
    expect(fixture.fake.accepts(firstKeyId)).toBe(true);
    expect(fixture.fake.key(current(secretId).key_id)?.scopes).toEqual(['mail.send']);
    expect(fixture.fake.accepts(manager.id)).toBe(true);
  });

  it('refuses, before minting anything, a send-only key that has no managing secret', async () => {
    // Prepare
    const { secretId } = fixture.provision(harness, { scopes: ['mail.send'] });
    const before = fixture.fake.liveKeys().length;

    // Act
    const result = await harness.rotate(handler(), secretId);

    // Assess
    expect(result.failedStep).toBe('createSecret');
    expect(result.error).toBeInstanceOf(InvalidSecretError);
    expect((result.error as InvalidSecretError).field).toBe('scopes');
    expect(fixture.fake.liveKeys()).toHaveLength(before);
  });
});

describe('Stripe API key rotation', () => {
  const live = stripeFixture('live');
  const test = stripeFixture('test');
  beforeAll(async () => {
    await live.fake.start();
    await test.fake.start();
  });
  afterAll(async () => {
    await live.fake.stop();
    await test.fake.stop();
  });

  it('creates keys with the preview version, the context and the public half of the managing secret key', async () => {
    // Prepare
    const { secretId } = live.provision(harness);
    const from = live.fake.requests.length;

    // Act
    const result = await harness.rotate(
      harness.handler(apiKeys(live.provider(), { env: {} })),
      secretId,
    );

    // Assess
    expect(result.completed, String(result.error)).toBe(true);
    const create = live.fake.requests.slice(from).find((request) => request.route === 'create');
    expect(create?.headers).toMatchObject({
      'stripe-version': '2026-09-30.preview',
      'stripe-context': 'acct_1PlatformCustomer',
    });
    const body = JSON.parse(create?.body ?? '{}');
    expect(body.public_key.pem_key.data).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(body.name.startsWith(ownPrefix(harness.fake.arnOf(secretId)))).toBe(true);
    expect(live.fake.accepts(current(secretId).key_id)).toBe(true);
    expect(live.fake.key(current(secretId).key_id)?.secret).toBe(current(secretId).key);
  });

  it('rotates in test mode, where Stripe returns the new secret in plain text', async () => {
    // Prepare
    const { secretId, firstKeyId } = test.provision(harness);

    // Act
    const result = await harness.rotate(
      harness.handler(apiKeys(test.provider(), { env: {} })),
      secretId,
    );

    // Assess
    expect(result.completed, String(result.error)).toBe(true);
    expect(current(secretId).key).toMatch(/^rk_test_/);
    expect(current(secretId, 'AWSPREVIOUS').key_id).toBe(firstKeyId);
  });

  it('passes testSecret for a restricted key that cannot read the balance (403: authenticated)', async () => {
    // Prepare
    const { secretId } = live.provision(harness, { permissions: ['customer_read'] });

    // Act
    const result = await harness.rotate(
      harness.handler(apiKeys(live.provider(), { env: {} })),
      secretId,
    );

    // Assess
    expect(result.completed, String(result.error)).toBe(true);
    expect(live.fake.key(current(secretId).key_id)?.permissions).toEqual(['customer_read']);
    expect(harness.logs.messages()).toContain(
      'AWSPENDING key authenticates (it lacks permission for the verification call, which proves it is live)',
    );
  });
});

describe('Twilio API key rotation', () => {
  const fixture = twilioFixture();
  beforeAll(() => fixture.fake.start());
  afterAll(() => fixture.fake.stop());
  const handler = () => harness.handler(apiKeys(fixture.provider(), { env: {} }));

  it('rotates a restricted key through the IAM v1 Key resource, keeping its policy', async () => {
    // Prepare
    const policy = { allow: [PHONE_NUMBERS_READ, '/twilio/messaging/messages/create'] };
    const { secretId, firstKeyId } = fixture.provision(harness, { policy });
    Object.assign(fixture.fake.key(firstKeyId) ?? {}, {
      type: 'restricted',
      iam: true,
      policy,
    });
    const from = fixture.fake.requests.length;

    // Act: three rotations, so that a key the function minted is superseded by a whole interval.
    const first = await harness.rotate(handler(), secretId);
    const minted = current(secretId).key_id;
    const second = await harness.rotate(handler(), secretId);
    const third = await harness.rotate(handler(), secretId);

    // Assess
    expect(
      first.completed && second.completed && third.completed,
      String(first.error ?? second.error ?? third.error),
    ).toBe(true);
    expect(fixture.fake.key(minted)?.revokedAt).toBeDefined();
    // The first key was made by a person, not named for this secret: left live, with a warning.
    expect(fixture.fake.accepts(firstKeyId)).toBe(true);
    const newKey = fixture.fake.key(current(secretId).key_id);
    expect(newKey).toMatchObject({ type: 'restricted', iam: true, policy });
    const paths = new Set(fixture.fake.requests.slice(from).map((r) => `${r.method} ${r.path}`));
    expect(paths.has('POST /v1/Keys')).toBe(true);
    expect([...paths].some((path) => path.includes('/Keys.json'))).toBe(false);
  });

  it('passes testSecret for a restricted key without the phone-number permission (70051: authenticated)', async () => {
    // Prepare
    const policy = { allow: ['/twilio/messaging/messages/create'] };
    const { secretId } = fixture.provision(harness, { policy });

    // Act
    const result = await harness.rotate(handler(), secretId);

    // Assess
    expect(result.completed, String(result.error)).toBe(true);
    expect(fixture.fake.accepts(current(secretId).key_id)).toBe(true);
  });

  it('refuses a managing secret of another account, naming the field, and mints nothing', async () => {
    // Prepare
    const adminArn = harness.fake.createSecret({
      name: `api-key-admin/twilio-other-${randomSuffix()}`,
      secretString: JSON.stringify({
        account_sid: `AC${'9'.repeat(32)}`,
        auth_token: fixture.fake.authToken,
        allowedsecrets: ['arn:aws:secretsmanager:*:*:secret:twilio/*'],
      }),
    });
    const { secretId } = fixture.provision(harness, { adminarn: adminArn });
    const before = fixture.fake.liveKeys().length;

    // Act
    const result = await harness.rotate(handler(), secretId);

    // Assess
    expect(result.failedStep).toBe('createSecret');
    expect((result.error as InvalidSecretError).field).toBe('account_sid');
    expect((result.error as Error).message).not.toContain(fixture.fake.authToken);
    expect(fixture.fake.liveKeys()).toHaveLength(before);
  });
});
