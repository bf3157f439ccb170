/**
 * SECRETS_MANAGER_ENDPOINT (a VPC endpoint), as the template sets it: the handler's own client
 * goes there, over the real SDK, even with white space around the value.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createRotationHandler } from '../../shared/rotation/handler.js';
import type { Strategy } from '../../shared/rotation/types.js';
import { FakeSecretsManager } from '../support/fake-secrets-manager.js';
import {
  type FakeSecretsManagerServer,
  startFakeSecretsManagerServer,
} from '../support/fake-secrets-manager-http.js';

const fake = new FakeSecretsManager();
let server: FakeSecretsManagerServer;
beforeAll(async () => {
  server = await startFakeSecretsManagerServer(fake);
});
afterAll(() => server.close());

const strategy: Strategy<{ n: number }> = {
  parse: (text) => JSON.parse(text) as { n: number },
  serialize: (value) => JSON.stringify(value),
  secretsOf: () => [],
  async createPending(step) {
    return { n: (await step.current()).n + 1 };
  },
  async setPending() {},
  async testPending() {},
};

it('sends every call to SECRETS_MANAGER_ENDPOINT, trimmed', async () => {
  const secretId = fake.createSecret({ name: 'app', secretString: '{"n":1}' });
  const token = fake.startRotation(secretId);
  const handler = createRotationHandler({
    strategy,
    env: { SECRETS_MANAGER_ENDPOINT: `  ${server.endpoint}\n` },
  });
  await handler(
    { Step: 'createSecret', SecretId: secretId, ClientRequestToken: token },
    { getRemainingTimeInMillis: () => 10_000 },
  );
  expect(fake.valueOf(secretId, 'AWSPENDING')).toBe('{"n":2}');
});

it('treats a blank SECRETS_MANAGER_ENDPOINT as unset: the SDK picks the endpoint itself', async () => {
  // The SDK's own endpoint setting (AWS_ENDPOINT_URL_SECRETS_MANAGER) stands in for the regional
  // endpoint it would otherwise choose; an explicit blank endpoint would override it.
  const secretId = fake.createSecret({ name: 'blank', secretString: '{"n":1}' });
  const token = fake.startRotation(secretId);
  const saved = process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER;
  process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = server.endpoint;
  try {
    const handler = createRotationHandler({ strategy, env: { SECRETS_MANAGER_ENDPOINT: '  \n' } });
    await handler(
      { Step: 'createSecret', SecretId: secretId, ClientRequestToken: token },
      { getRemainingTimeInMillis: () => 10_000 },
    );
  } finally {
    if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER;
    else process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = saved;
  }
  expect(fake.valueOf(secretId, 'AWSPENDING')).toBe('{"n":2}');
});
