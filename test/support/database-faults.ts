/**
 * The fault-injection suite of a database target, both strategies: the matrix of
 * {@link runFaultMatrix} in each mode, and overlapping invocations of each step. A database's
 * file gives what only it knows (how its driver's effects are counted, how a user is made, what
 * its server shows of users, privileges and sessions) as a {@link DatabaseFaults}.
 */
import { afterAll, expect, it } from 'vitest';
import type { Database } from '../../shared/databases/types.js';
import { createRotationHandler } from '../../shared/rotation/handler.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';
import { singleUser } from '../../shared/strategies/single-user.js';
import type { FakeSecretsManager } from './fake-secrets-manager.js';
import { type FaultInjector, FaultMode, faultySecretsManagerClient } from './fault-injection.js';
import {
  describeOverlappingSteps,
  type FaultReport,
  type FaultTarget,
  runFaultMatrix,
} from './fault-runner.js';
import type { StoredLogin } from './rotation-contract.js';

export type StrategyName = 'single-user' | 'alternating-users';

export interface DatabaseFaults {
  /** Names the targets: `<name>-single-user`, `<name>-alternating-users`. */
  name(): string;
  /** Heads the report printed after the suite. */
  label(): string;
  fake: FakeSecretsManager;
  injector: FaultInjector;
  /** The fake Secrets Manager's HTTP endpoint. */
  endpoint(): string;
  /** The adapter, with every connect and statement or command going through the injector. */
  // biome-ignore lint/suspicious/noExplicitAny: each database has its own session type
  database(): Database<any>;
  /** A user and its secret (alternating users: with a master secret); resolves both. */
  provision(strategy: StrategyName): Promise<{ name: string; secretId: string }>;
  signsIn(value: StoredLogin): Promise<boolean>;
  /**
   * Every user (account) on the server whose name starts with `name`, sorted: only `name` and,
   * for alternating users, `name_clone` may be there, and nothing else like them.
   */
  usersLike(name: string): Promise<string[]>;
  /** Why the clone lacks the original's privileges, or undefined when it has them. */
  cloneDiffers(name: string): Promise<string | undefined>;
  /** What the functions left open for this secret's users (sessions, clients). */
  leftOpen(secretId: string): Promise<string[]>;
  /** Drops what an abandoned invocation left open, as the death of its process would. */
  killAbandoned(): Promise<void>;
}

const MODES = [FaultMode.throwBefore, FaultMode.throwAfter, FaultMode.hang];

/** The two strategies of a database as fault-matrix targets. */
function faultTargets(db: DatabaseFaults): Record<StrategyName, () => FaultTarget> {
  const names = new Map<string, string>();
  const stored = (secretId: string, stage: string): StoredLogin | undefined => {
    const text = db.fake.valueOf(secretId, stage);
    return text === undefined ? undefined : (JSON.parse(text) as StoredLogin);
  };
  const signsInAt = async (secretId: string, stage: string) => {
    const value = stored(secretId, stage);
    return value !== undefined && (await db.signsIn(value));
  };

  const target = (strategy: StrategyName): FaultTarget => ({
    name: `${db.name()}-${strategy}`,
    handler: createRotationHandler({
      strategy:
        strategy === 'single-user' ? singleUser(db.database()) : alternatingUsers(db.database()),
      client: faultySecretsManagerClient(db.endpoint(), db.injector),
      env: {},
    }),
    async provision() {
      const { name, secretId } = await db.provision(strategy);
      names.set(secretId, name);
      return secretId;
    },
    async holdsDuring(secretId) {
      if (await signsInAt(secretId, 'AWSCURRENT')) return undefined;
      if (strategy === 'alternating-users') return 'AWSCURRENT does not sign in';
      if (await signsInAt(secretId, 'AWSPENDING')) return undefined;
      return 'neither AWSCURRENT nor AWSPENDING signs in';
    },
    async holdsAfter(secretId) {
      const problems: string[] = [];
      const name = names.get(secretId) as string;
      if (!(await signsInAt(secretId, 'AWSCURRENT'))) problems.push('AWSCURRENT does not sign in');
      const expected = strategy === 'single-user' ? [name] : [name, `${name}_clone`];
      const users = await db.usersLike(name);
      if (users.join() !== expected.join()) problems.push(`users ${users.join(', ')}`);
      if (strategy === 'alternating-users') {
        if (!(await signsInAt(secretId, 'AWSPREVIOUS')))
          problems.push('AWSPREVIOUS does not sign in');
        const differs = users.includes(`${name}_clone`) ? await db.cloneDiffers(name) : undefined;
        if (differs) problems.push(differs);
      }
      problems.push(...(await db.leftOpen(secretId)));
      return problems;
    },
    killAbandoned: () => db.killAbandoned(),
  });
  return {
    'single-user': () => target('single-user'),
    'alternating-users': () => target('alternating-users'),
  };
}

/**
 * Registers the suite: for each strategy and mode, a fault at any effect keeps a credential
 * signing in and the retry converges; two overlapping invocations of each step end like one.
 */
export function describeDatabaseFaults(db: DatabaseFaults): void {
  const reports: FaultReport[] = [];
  const targets = faultTargets(db);

  afterAll(() => {
    console.info(
      [
        `fault injection (${db.label()}):`,
        ...reports.map(
          (r) =>
            `  ${r.target.padEnd(28)} ${r.mode.padEnd(13)} ${r.held}/${r.points} injection points held`,
        ),
      ].join('\n'),
    );
  });

  it.each(MODES)(
    'single user: a fault at any effect (%s) keeps a credential signing in, and the retry converges',
    async (mode) => {
      const [report] = await runFaultMatrix(db.fake, targets['single-user'](), db.injector, [mode]);
      reports.push(report as FaultReport);
      expect(report?.points).toBeGreaterThan(10);
      expect(report?.failures, report?.failures.join('; ')).toEqual([]);
    },
  );

  it.each(MODES)(
    'alternating users: a fault at any effect (%s) keeps AWSCURRENT signing in, and the retry converges',
    async (mode) => {
      const [report] = await runFaultMatrix(db.fake, targets['alternating-users'](), db.injector, [
        mode,
      ]);
      reports.push(report as FaultReport);
      expect(report?.points).toBeGreaterThan(10);
      expect(report?.failures, report?.failures.join('; ')).toEqual([]);
    },
  );

  describeOverlappingSteps(db.fake, db.injector, () => [
    targets['single-user'](),
    targets['alternating-users'](),
  ]);
}
