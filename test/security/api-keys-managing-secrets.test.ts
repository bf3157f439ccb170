/**
 * Attacks on the API-key functions through the rotated secret's value, which anyone with
 * PutSecretValue on it can write:
 *
 *   (b) a PutSecretValue holder on team A's secret plants an AWSPREVIOUS (or AWSCURRENT) naming
 *       team B's production key id, so that finishSecret revokes it;
 *   (c) team A points its secret's `adminarn` at team B's managing secret (every API-key
 *       function may read every managing secret), so that the rotation mints in B's account,
 *       stores B's key in A, and revokes B's production key.
 *
 * Run through the real handler against each provider's HTTP fake; two provider accounts (team A,
 * team B) sit behind one base URL, as at the real provider. Invariants: B's key is never revoked
 * and keeps working, nothing is minted in B's account, nothing of B's is stored in A.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InvalidSecretError } from '../../shared/common/errors.js';
import { createSendGrid } from '../../shared/providers/sendgrid.js';
import { createStripe } from '../../shared/providers/stripe.js';
import { createTwilio } from '../../shared/providers/twilio.js';
import type { KeyProvider } from '../../shared/providers/types.js';
import { apiKeys } from '../../shared/strategies/api-keys.js';
import { allowing, ownPrefix, randomSuffix } from '../support/api-key-fixtures.js';
import { FakeProviderAccounts } from '../support/fake-provider-accounts.js';
import type { FakeKey, FakeProviderServer } from '../support/fake-provider-server.js';
import { FakeSendGrid } from '../support/fake-sendgrid.js';
import { FakeStripe } from '../support/fake-stripe.js';
import { FakeTwilio } from '../support/fake-twilio.js';
import { RotationHarness } from '../support/rotation-harness.js';

type Fake = FakeProviderServer<FakeKey>;

/** What differs per provider: the fake of one account, its managing secret, a secret's fields. */
interface ProviderCase {
  name: string;
  account(): Fake;
  adapter(baseUrl: string): KeyProvider<unknown, unknown>;
  /** The managing secret's value for `account` (its credential allowed to manage keys). */
  managing(account: Fake): Record<string, unknown>;
  /** The rotated secret's value besides key, key_id and adminarn. */
  fields(account: Fake): Record<string, unknown>;
}

const cases: ProviderCase[] = [
  {
    name: 'SendGrid',
    account: () => new FakeSendGrid(),
    adapter: (baseUrl) => createSendGrid({ baseUrl }) as KeyProvider<unknown, unknown>,
    managing: (account) => ({ key: account.seedKey(`key-manager-${randomSuffix()}`).secret }),
    fields: () => ({ provider: 'sendgrid' }),
  },
  {
    name: 'Stripe',
    account: () => {
      const fake = new FakeStripe('test');
      fake.contextAccount = `acct_${randomSuffix()}`;
      return fake;
    },
    adapter: (baseUrl) =>
      createStripe({ baseUrl, apiVersion: '2026-09-30.preview' }) as KeyProvider<unknown, unknown>,
    managing: (account) => ({
      key: (account as FakeStripe).managingKey,
      stripe_context: (account as FakeStripe).contextAccount,
    }),
    fields: () => ({ provider: 'stripe' }),
  },
  {
    name: 'Twilio',
    account: () => new FakeTwilio(),
    adapter: (baseUrl) =>
      createTwilio({ apiBaseUrl: baseUrl, iamBaseUrl: baseUrl }) as KeyProvider<unknown, unknown>,
    managing: (account) => ({
      account_sid: (account as FakeTwilio).accountSid,
      auth_token: (account as FakeTwilio).authToken,
    }),
    fields: (account) => ({ provider: 'twilio', account_sid: (account as FakeTwilio).accountSid }),
  },
];

describe.each(cases)('$name managing secrets and superseded keys under attack', (provider) => {
  const harness = new RotationHarness();
  const teamA = provider.account();
  const teamB = provider.account();
  const accounts = new FakeProviderAccounts([teamA, teamB]);

  beforeAll(async () => {
    await accounts.start();
    await harness.start();
  });
  afterAll(async () => {
    await harness.stop();
    await accounts.stop();
  });

  const handler = (env: Record<string, string> = {}) =>
    harness.handler(
      apiKeys(provider.adapter(accounts.baseUrl), {
        env: { KEY_PROPAGATION_TIMEOUT_SECONDS: '1', ...env },
      }),
    );

  const value = (secretId: string, stage = 'AWSCURRENT') =>
    JSON.parse(harness.fake.valueOf(secretId, stage) ?? 'null') as Record<string, unknown> & {
      key: string;
      key_id: string;
    };

  /** A team's managing secret, serving the secrets named `<team>/…`. */
  function managingSecret(account: Fake, team: string, ...alsoFor: string[]): string {
    return harness.fake.createSecret({
      name: `api-key-admin/${team}-${randomSuffix()}`,
      secretString: JSON.stringify({
        ...provider.managing(account),
        allowedsecrets: [team, ...alsoFor].map(
          (name) => `arn:aws:secretsmanager:*:*:secret:${name}/*`,
        ),
      }),
    });
  }

  /** A team's secret, first holding a key a person made, then rotated once by the function. */
  async function rotatedSecret(account: Fake, team: string, adminarn: string) {
    const first = account.seedKey(`${team}-prod-${randomSuffix()}`);
    const secretId = harness.fake.createSecret({
      name: `${team}/${randomSuffix()}`,
      secretString: JSON.stringify({
        ...provider.fields(account),
        key: first.secret,
        key_id: first.id,
        adminarn,
      }),
    });
    const rotated = await harness.rotate(handler(), secretId);
    expect(rotated.completed, String(rotated.error)).toBe(true);
    return { secretId, firstKeyId: first.id, productionKeyId: value(secretId).key_id };
  }

  /** Writes a version with `stages` as a PutSecretValue holder would. */
  const plant = (secretId: string, stages: string[], fields: Record<string, unknown>) => {
    // The last rotation's version keeps AWSPENDING until the next one starts; as in the service,
    // a new AWSCURRENT must not leave it behind.
    if (stages.includes('AWSCURRENT')) harness.fake.removeLabel(secretId, 'AWSPENDING');
    return harness.fake.putSecretValue({
      SecretId: secretId,
      SecretString: JSON.stringify({ ...value(secretId), ...fields }),
      VersionStages: stages,
    });
  };

  /** Every stored value of the secret, as text. */
  const storedIn = (secretId: string) =>
    harness.fake
      .versionIds(secretId)
      .map((id) => harness.fake.valueOfVersion(secretId, id) ?? '')
      .join('\n');

  it("(c) team A naming team B's managing secret mints nothing in B's account, stores nothing of B's, revokes nothing of B's", async () => {
    // Prepare: team B's production key, minted by B's own rotation; team A's secret.
    const adminB = managingSecret(teamB, 'team-b');
    const b = await rotatedSecret(teamB, 'team-b', adminB);
    const adminA = managingSecret(teamA, 'team-a');
    const a = await rotatedSecret(teamA, 'team-a', adminA);
    // Team A (or anyone with PutSecretValue on A) points A at B's managing secret and account,
    // and plants an AWSPREVIOUS naming B's production key for finishSecret to revoke.
    const hijack = { adminarn: adminB, ...provider.fields(teamB) };
    plant(a.secretId, ['AWSPREVIOUS'], { ...hijack, key_id: b.productionKeyId });
    plant(a.secretId, ['AWSCURRENT'], hijack);
    const keysOfB = teamB.liveKeys().length;
    const fromB = teamB.requests.length;

    // Act
    const result = await harness.rotate(handler(), a.secretId);

    // Assess
    expect(result.completed).toBe(false);
    expect((result.error as InvalidSecretError).field).toBe('adminarn');
    expect(teamB.key(b.productionKeyId)?.revokedAt).toBeUndefined();
    expect(teamB.accepts(b.productionKeyId)).toBe(true);
    expect(teamB.liveKeys()).toHaveLength(keysOfB);
    expect(teamB.requests.slice(fromB).filter((r) => r.route === 'create')).toEqual([]);
    const storedA = storedIn(a.secretId);
    expect(teamB.allSecrets().filter((secret) => storedA.includes(secret))).toEqual([]);
    // No call at all reached B's account with B's credential.
    expect(teamB.requests.slice(fromB)).toEqual([]);
  });

  it.each([
    ['AWSPREVIOUS', 'next-rotation'],
    ['AWSCURRENT', 'immediately'],
  ] as const)(
    "(b) a PutSecretValue holder on A planting %s with team B's production key id (same account, shared managing secret, REVOKE_DEMOTED_KEY=%s) cannot have it revoked",
    async (stage, mode) => {
      // Prepare: teams A and B share one account and one managing secret that serves both.
      const shared = managingSecret(teamA, 'team-a', 'team-b');
      const b = await rotatedSecret(teamA, 'team-b', shared);
      const bystander = teamA.seedKey(`team-b-console-${randomSuffix()}`);
      const a = await rotatedSecret(teamA, 'team-a', shared);
      // AWSPREVIOUS names B's key minted by the function (carrying B's tag); in the AWSCURRENT
      // variant, a key B made in the console.
      const planted = stage === 'AWSPREVIOUS' ? b.productionKeyId : bystander.id;
      plant(a.secretId, [stage], { key_id: planted });

      // Act
      const result = await harness.rotate(handler({ REVOKE_DEMOTED_KEY: mode }), a.secretId);

      // Assess: B's key lives and works; A's rotation completes and warns.
      expect(result.completed, String(result.error)).toBe(true);
      expect(teamA.key(planted)?.revokedAt).toBeUndefined();
      expect(teamA.accepts(planted)).toBe(true);
      expect(teamA.accepts(value(a.secretId).key_id)).toBe(true);
      expect(
        harness.logs.lines.some(
          (line) =>
            line.message.startsWith('the superseded key was not minted by this function') &&
            line.attributes.keyId === planted,
        ),
      ).toBe(true);
      // B's own rotation still works afterwards.
      const again = await harness.rotate(handler(), b.secretId);
      expect(again.completed, String(again.error)).toBe(true);
    },
  );

  it("(b) an AWSPREVIOUS naming a key of another account is never sent for revocation, even under this secret's tag", async () => {
    // Prepare: team B's account holds a key carrying A's tag (B's admin may name keys freely).
    const adminA = managingSecret(teamA, 'team-a');
    const a = await rotatedSecret(teamA, 'team-a', adminA);
    const lookalike = teamB.seedKey(`${ownPrefix(harness.fake.arnOf(a.secretId))}lookalike`);
    plant(a.secretId, ['AWSPREVIOUS'], { key_id: lookalike.id });
    const fromA = teamA.requests.length;

    // Act
    const result = await harness.rotate(handler(), a.secretId);

    // Assess: A's account does not list it, so no revocation of it is attempted anywhere.
    expect(result.completed, String(result.error)).toBe(true);
    expect(teamB.accepts(lookalike.id)).toBe(true);
    const mentions = [...teamA.requests.slice(fromA), ...teamB.requests].filter(
      (request) => request.route === 'delete' && request.path.includes(lookalike.id),
    );
    expect(mentions).toEqual([]);
  });
});

describe('a provider answer redirecting elsewhere', () => {
  const harness = new RotationHarness();
  const sendGrid = new FakeSendGrid();
  const received: IncomingHttpHeaders[] = [];
  const elsewhere = createServer((req, res) => {
    received.push(req.headers);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"result":[]}');
  });
  let elsewhereUrl = '';

  beforeAll(async () => {
    await sendGrid.start();
    await harness.start();
    await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', () => resolve()));
    elsewhereUrl = `http://localhost:${(elsewhere.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await harness.stop();
    await sendGrid.stop();
    await new Promise((resolve) => elsewhere.close(resolve));
  });

  it('never sends the managing key, or any request, to the host a 302 names', async () => {
    // Prepare: the provider (or something on its path) answers the key list with a redirect.
    const manager = sendGrid.seedKey(`key-manager-${randomSuffix()}`);
    const name = `team-a/${randomSuffix()}`;
    const adminarn = harness.fake.createSecret({
      name: `api-key-admin/a-${randomSuffix()}`,
      secretString: JSON.stringify({ key: manager.secret, ...allowing(name) }),
    });
    const first = sendGrid.seedKey(`mailer-${randomSuffix()}`);
    const secretId = harness.fake.createSecret({
      name,
      secretString: JSON.stringify({
        provider: 'sendgrid',
        key: first.secret,
        key_id: first.id,
        adminarn,
      }),
    });
    for (let i = 0; i < 5; i++) {
      sendGrid.failNext('list', {
        status: 302,
        headers: { location: `${elsewhereUrl}/v3/api_keys?limit=100` },
      });
    }

    // Act
    const result = await harness.rotate(
      harness.handler(apiKeys(createSendGrid({ baseUrl: sendGrid.baseUrl }), { env: {} })),
      secretId,
    );

    // Assess
    expect(received.map((headers) => headers.authorization !== undefined)).toEqual([]);
    expect(result.completed).toBe(false);
    expect(sendGrid.accepts(first.id)).toBe(true);
  });
});
