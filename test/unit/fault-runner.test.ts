import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { RotationHandler } from '../../shared/rotation/handler.js';
import { FakeSecretsManager } from '../support/fake-secrets-manager.js';
import { FaultInjector, FaultMode } from '../support/fault-injection.js';
import { type FaultTarget, runFaultMatrix } from '../support/fault-runner.js';

/**
 * The fault harness must fail when the product is wrong: a toy key rotation (a set of live keys,
 * one effect per step) is run through it correct, and with the bugs the harness exists to catch.
 */
describe('the fault-injection harness', () => {
  interface Toy {
    /** setSecret revokes the old key before it enables the new one. */
    revokeFirst?: boolean;
    /** createSecret refuses to run again once AWSPENDING exists (not idempotent). */
    strictCreate?: boolean;
    /** setSecret never returns when it runs a second time for a token. */
    hangOnRetry?: boolean;
  }

  function toyTarget(bugs: Toy = {}): {
    target: FaultTarget;
    fake: FakeSecretsManager;
    injector: FaultInjector;
  } {
    const fake = new FakeSecretsManager();
    const injector = new FaultInjector();
    const live = new Set<string>();
    const setCalls = new Map<string, number>();
    const key = (secretId: string, stage: string) => {
      const text = fake.valueOf(secretId, stage);
      return text === undefined ? undefined : (JSON.parse(text) as { key: string }).key;
    };
    const handler: RotationHandler = async (raw) => {
      const event = raw as { Step: string; SecretId: string; ClientRequestToken: string };
      const id = event.SecretId;
      const token = event.ClientRequestToken;
      switch (event.Step) {
        case 'createSecret':
          // RotateSecret made the version, without a value: the value is what createSecret adds.
          if (key(id, 'AWSPENDING') !== undefined) {
            if (bugs.strictCreate) throw new Error('AWSPENDING exists already');
            return;
          }
          await injector.effect('put', async () => {
            fake.dispatch('PutSecretValue', {
              SecretId: id,
              ClientRequestToken: token,
              SecretString: JSON.stringify({ key: randomUUID() }),
              VersionStages: ['AWSPENDING'],
            });
          });
          return;
        case 'setSecret': {
          const calls = (setCalls.get(token) ?? 0) + 1;
          setCalls.set(token, calls);
          if (bugs.hangOnRetry && calls > 1) await new Promise(() => {});
          const pending = key(id, 'AWSPENDING') as string;
          if (bugs.revokeFirst) {
            const current = key(id, 'AWSCURRENT') as string;
            await injector.effect('revoke', async () => void live.delete(current));
          }
          await injector.effect('enable', async () => void live.add(pending));
          return;
        }
        case 'testSecret':
          await injector.effect('test', async () => {
            if (!live.has(key(id, 'AWSPENDING') as string)) throw new Error('AWSPENDING refused');
          });
          return;
        case 'finishSecret': {
          const current = fake.versionOf(id);
          if (current === token) return;
          await injector.effect('finish', async () => {
            fake.dispatch('UpdateSecretVersionStage', {
              SecretId: id,
              VersionStage: 'AWSCURRENT',
              MoveToVersionId: token,
              RemoveFromVersionId: current,
            });
          });
          return;
        }
      }
    };
    const target: FaultTarget = {
      name: 'toy',
      handler,
      async provision() {
        const first = randomUUID();
        live.add(first);
        return fake.createSecret({
          name: `toy/${first}`,
          secretString: JSON.stringify({ key: first }),
        });
      },
      async holdsDuring(secretId) {
        return live.has(key(secretId, 'AWSCURRENT') as string) ? undefined : 'AWSCURRENT refused';
      },
      async holdsAfter(secretId) {
        return live.has(key(secretId, 'AWSCURRENT') as string) ? [] : ['AWSCURRENT refused'];
      },
      killAbandoned: async () => {},
    };
    return { target, fake, injector };
  }

  it.each([FaultMode.throwBefore, FaultMode.throwAfter, FaultMode.hang])(
    'holds at every point (%s) for a correct rotation',
    async (mode) => {
      const { target, fake, injector } = toyTarget();
      const [report] = await runFaultMatrix(fake, target, injector, [mode]);
      expect(report).toMatchObject({ points: 4, held: 4, failures: [] });
    },
  );

  it('reports the point at which no stored credential works', async () => {
    const { target, fake, injector } = toyTarget({ revokeFirst: true });
    const [report] = await runFaultMatrix(fake, target, injector, [FaultMode.throwBefore]);
    // From the revocation on, AWSCURRENT is refused until finishSecret moves the label.
    expect(report).toMatchObject({ points: 5, held: 2 });
    expect(report?.failures).toEqual([
      'toy throw-before at effect 3 (enable): AWSCURRENT refused',
      'toy throw-before at effect 4 (test): AWSCURRENT refused',
      'toy throw-before at effect 5 (finish): AWSCURRENT refused',
    ]);
  });

  it('reports a rotation whose retry can never converge', async () => {
    const { target, fake, injector } = toyTarget({ strictCreate: true });
    const [report] = await runFaultMatrix(fake, target, injector, [FaultMode.throwAfter]);
    expect(report?.failures).toContain(
      'toy throw-after at effect 1 (put): no convergence after 5 retries',
    );
  });

  it('reports an invocation the product left hanging at its injection point', async () => {
    const { target, fake, injector } = toyTarget({ hangOnRetry: true });
    const [report] = await runFaultMatrix(fake, target, injector, [FaultMode.throwBefore], {
      stuckAfterMs: 50,
    });
    expect(report?.failures).toContain(
      'toy throw-before at effect 2 (enable): an invocation was still running after 50 ms',
    );
  });
});
