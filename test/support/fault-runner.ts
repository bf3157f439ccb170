import { describe, expect, it } from 'vitest';
import type { RotationHandler } from '../../shared/rotation/handler.js';
import type { FakeSecretsManager } from './fake-secrets-manager.js';
import { type FaultInjector, type FaultMode, FaultMode as Modes } from './fault-injection.js';
import { STEPS } from './rotation-driver.js';

/** What the fault matrix needs from one target × strategy. */
export interface FaultTarget {
  name: string;
  /** A fresh account and secret; resolves the secret id. */
  provision(): Promise<string>;
  handler: RotationHandler;
  /** What must hold at every instant, even mid-rotation; resolves a violation or undefined. */
  holdsDuring(secretId: string): Promise<string | undefined>;
  /** What must hold once the rotation converged (beyond the labels, checked here). */
  holdsAfter(secretId: string): Promise<string[]>;
  /** Drops what an abandoned invocation left open, as the death of its process would. */
  killAbandoned(): Promise<void>;
}

export interface FaultReport {
  target: string;
  mode: FaultMode;
  points: number;
  held: number;
  failures: string[];
}

/** The time each invocation is told it has left (the Lambda's remaining time). */
const INVOCATION_BUDGET_MS = 20_000;

/**
 * Longest one invocation may run before the harness calls it stuck (default): past its budget a
 * Lambda would have been stopped. A hang the product caused (a lock wait, a call without a
 * timeout) is then reported at its injection point instead of surfacing as the whole test's
 * timeout. Normal invocations here take well under a second.
 */
const STUCK_AFTER_MS = INVOCATION_BUDGET_MS + 2_000;

type RunOutcome = 'completed' | 'failed' | 'stuck';

/**
 * Runs the four steps; stops at the first failure, when the armed fault fired (abandoned), or
 * when an invocation is stuck (abandoned too, and reported).
 */
async function runOnce(
  fake: FakeSecretsManager,
  target: FaultTarget,
  injector: FaultInjector,
  secretId: string,
  token: string,
  stuckAfterMs: number,
): Promise<RunOutcome> {
  const abandoned = injector.fired.then(() => 'abandoned' as const);
  for (const step of STEPS) {
    const event = {
      Step: step,
      SecretId: fake.arnOf(secretId),
      ClientRequestToken: token,
      RotationToken: fake.rotationTokenFor(secretId, token),
    };
    const invocation = target
      .handler(event, { getRemainingTimeInMillis: () => INVOCATION_BUDGET_MS })
      .then(
        () => 'ok' as const,
        () => 'failed' as const,
      );
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise<'stuck'>((resolve) => {
      timer = setTimeout(() => resolve('stuck'), stuckAfterMs);
    });
    try {
      let outcome = await Promise.race([invocation, abandoned, stuck]);
      if (outcome === 'abandoned' && !injector.hangs) {
        // A thrown fault does not abandon its invocation: wait for it (up to the stuck limit,
        // however loaded the machine is), so that a retry never overlaps a run that is still
        // unwinding, and go on as the service would if the step still succeeded.
        outcome = await Promise.race([invocation, stuck]);
      }
      if (outcome === 'ok') continue;
      if (outcome === 'failed') return 'failed';
      await target.killAbandoned();
      return outcome === 'stuck' ? 'stuck' : 'failed';
    } finally {
      clearTimeout(timer);
    }
  }
  return 'completed';
}

/** Each label on exactly one version (AWSPENDING may also sit on AWSCURRENT), and AWSPREVIOUS the old version. */
function labelViolations(
  fake: FakeSecretsManager,
  secretId: string,
  oldVersion: string,
  token: string,
): string[] {
  const problems: string[] = [];
  const labels = fake.labels(secretId);
  for (const stage of ['AWSCURRENT', 'AWSPREVIOUS']) {
    const holders = Object.keys(labels).filter((id) => labels[id]?.includes(stage));
    if (holders.length !== 1) problems.push(`${stage} on ${holders.length} versions`);
  }
  if (fake.versionOf(secretId, 'AWSCURRENT') !== token)
    problems.push('AWSCURRENT is not the new version');
  if (fake.versionOf(secretId, 'AWSPREVIOUS') !== oldVersion)
    problems.push('AWSPREVIOUS is not the old version');
  return problems;
}

/**
 * Counts the effects of one clean rotation, then for each k fails the k-th effect in `mode`,
 * checks what must hold at once, retries with the same token until the rotation completes, and
 * checks the end state. Resolves one report per mode.
 */
export async function runFaultMatrix(
  fake: FakeSecretsManager,
  target: FaultTarget,
  injector: FaultInjector,
  modes: FaultMode[] = [Modes.throwBefore, Modes.throwAfter, Modes.hang],
  { stuckAfterMs = STUCK_AFTER_MS }: { stuckAfterMs?: number } = {},
): Promise<FaultReport[]> {
  // A clean run tells how many effects one rotation has.
  const probe = await target.provision();
  injector.reset();
  const probeToken = fake.startRotation(probe);
  const clean = await runOnce(fake, target, injector, probe, probeToken, stuckAfterMs);
  if (clean !== 'completed') {
    throw new Error(`${target.name}: a rotation without faults ${clean}`);
  }
  const points = injector.effects.length;

  const reports: FaultReport[] = [];
  for (const mode of modes) {
    const failures: string[] = [];
    for (let k = 1; k <= points; k++) {
      const secretId = await target.provision();
      const oldVersion = fake.versionOf(secretId) as string;
      const token = fake.startRotation(secretId);
      injector.arm(k, mode);
      const where = `${target.name} ${mode} at effect ${k}`;
      let outcome = await runOnce(fake, target, injector, secretId, token, stuckAfterMs);
      const effect = injector.effects[k - 1] ?? '?';
      const during = await target.holdsDuring(secretId);
      if (during) failures.push(`${where} (${effect}): ${during}`);

      injector.reset();
      for (let attempt = 0; attempt < 5 && outcome === 'failed'; attempt++) {
        outcome = await runOnce(fake, target, injector, secretId, token, stuckAfterMs);
      }
      if (outcome !== 'completed') {
        failures.push(
          `${where} (${effect}): ${
            outcome === 'stuck'
              ? `an invocation was still running after ${stuckAfterMs} ms`
              : 'no convergence after 5 retries'
          }`,
        );
        continue;
      }
      const after = [
        ...labelViolations(fake, secretId, oldVersion, token),
        ...(await target.holdsAfter(secretId)),
      ];
      if (after.length > 0) failures.push(`${where} (${effect}): ${after.join('; ')}`);
    }
    reports.push({
      target: target.name,
      mode,
      points,
      held: points - new Set(failures.map((f) => f.split(':')[0])).size,
      failures,
    });
  }
  return reports;
}

/**
 * Registers, for each step, a test that two overlapping invocations of it (the steps before run
 * once, the steps after once) end in the same state as one: both succeed, the labels moved once,
 * and what must hold after a rotation holds. `targets` makes fresh targets for each test.
 */
export function describeOverlappingSteps(
  fake: FakeSecretsManager,
  injector: FaultInjector,
  targets: () => FaultTarget[],
): void {
  describe('overlapping invocations', () => {
    it.each(STEPS)('two overlapping %s invocations end in the same state as one', async (step) => {
      injector.reset();
      for (const target of targets()) {
        // Prepare
        const secretId = await target.provision();
        const oldVersion = fake.versionOf(secretId);
        const token = fake.startRotation(secretId);
        const invoke = (s: string) =>
          target.handler(
            { Step: s, SecretId: fake.arnOf(secretId), ClientRequestToken: token },
            { getRemainingTimeInMillis: () => INVOCATION_BUDGET_MS },
          );
        const index = STEPS.indexOf(step);
        for (const before of STEPS.slice(0, index)) await invoke(before);

        // Act
        const outcomes = await Promise.allSettled([invoke(step), invoke(step)]);
        for (const after of STEPS.slice(index + 1)) await invoke(after);

        // Assess
        expect(
          outcomes.map((o) => (o.status === 'fulfilled' ? 'ok' : String(o.reason))),
          target.name,
        ).toEqual(['ok', 'ok']);
        expect(fake.versionOf(secretId), target.name).toBe(token);
        expect(fake.versionOf(secretId, 'AWSPREVIOUS'), target.name).toBe(oldVersion);
        expect(await target.holdsAfter(secretId), target.name).toEqual([]);
      }
    });
  });
}
