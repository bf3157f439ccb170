import { SecretsManagerServiceException } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createRotationHandler } from '../../shared/rotation/handler.js';
import type { Strategy } from '../../shared/rotation/types.js';
import { FakeSecretsManager, mockSecretsManager } from '../support/fake-secrets-manager.js';
import { LogRecorder } from '../support/log-recorder.js';
import { rotate, STEPS } from '../support/rotation-driver.js';

/**
 * A minimal key-like strategy that records what the protocol asks of it: the hooks API-key
 * targets rely on (discardPending, afterFinish seeing the labels from before the move).
 */
interface Key {
  id: string;
}
const fake = new FakeSecretsManager();
const stub = mockSecretsManager(fake);
afterAll(() => stub.restore());

let minted: string[];
let discarded: string[];
let finished: { current: string; previous: string | undefined }[];
const logs = new LogRecorder();
let counter: number;

beforeEach(() => {
  fake.reset();
  stub.resetHistory();
  minted = [];
  discarded = [];
  finished = [];
  logs.lines.length = 0;
  counter = 0;
});

const strategy: Strategy<Key> = {
  parse: (text) => JSON.parse(text) as Key,
  serialize: (value) => JSON.stringify(value),
  secretsOf: () => [],
  async createPending() {
    const id = `key-${++counter}`;
    minted.push(id);
    return { id };
  },
  async discardPending(_, value) {
    discarded.push(value.id);
  },
  async setPending() {},
  async testPending() {},
  async afterFinish(step) {
    finished.push({ current: (await step.current()).id, previous: (await step.previous())?.id });
  },
};
const handler = createRotationHandler({ strategy, logger: logs, env: {} });
const invoke = (event: object) => handler(event, { getRemainingTimeInMillis: () => 10_000 });

describe('strategy hooks', () => {
  it('discards a pending value whose PutSecretValue failed, and still fails the step', async () => {
    // Prepare
    const secretId = fake.createSecret({ name: 'key', secretString: '{"id":"key-0"}' });
    fake.failNext(
      'PutSecretValue',
      new SecretsManagerServiceException({
        name: 'InternalServiceError',
        $fault: 'server',
        $metadata: {},
        message: 'boom',
      }),
    );

    // Act
    const result = await rotate({ fake, secretId, invoke });

    // Assess
    expect(result.failedStep).toBe('createSecret');
    expect(discarded).toEqual(['key-1']);
    expect(logs.messages()).toContain('discarded the pending value that was not stored');
  });

  it('discards its own value when an overlapping invocation stored first', async () => {
    // Prepare: the other invocation's value lands between our read and our write.
    const secretId = fake.createSecret({ name: 'key', secretString: '{"id":"key-0"}' });
    const token = fake.startRotation(secretId);
    fake.putSecretValue({
      SecretId: secretId,
      ClientRequestToken: token,
      SecretString: '{"id":"other"}',
      VersionStages: ['AWSPENDING'],
    });
    fake.removeLabel(secretId, 'AWSPENDING');
    fake.updateSecretVersionStage({
      SecretId: secretId,
      VersionStage: 'AWSPENDING',
      MoveToVersionId: token,
    });
    const read = fake.getSecretValue.bind(fake);
    let hidden = true;
    fake.getSecretValue = (input) => {
      // The first read of the pending version happens before the other invocation's write.
      if (hidden && input.VersionId === token) {
        hidden = false;
        return read({ ...input, VersionId: 'no-such-version' });
      }
      return read(input);
    };

    // Act
    await invoke({ Step: 'createSecret', SecretId: secretId, ClientRequestToken: token });
    fake.getSecretValue = read;

    // Assess
    expect(minted).toEqual(['key-1']);
    expect(discarded).toEqual(['key-1']);
    expect(fake.valueOf(secretId, 'AWSPENDING')).toBe('{"id":"other"}');
  });

  it('lets afterFinish see AWSCURRENT and AWSPREVIOUS as they were before the move', async () => {
    // Prepare
    const secretId = fake.createSecret({ name: 'key', secretString: '{"id":"key-0"}' });

    // Act
    for (let round = 0; round < 3; round++) await rotate({ fake, secretId, invoke });

    // Assess
    expect(finished).toEqual([
      { current: 'key-0', previous: undefined },
      { current: 'key-1', previous: 'key-0' },
      { current: 'key-2', previous: 'key-1' },
    ]);
    expect(STEPS).toHaveLength(4);
  });
});
