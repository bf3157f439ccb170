import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

/** How an injected fault behaves. */
export const FaultMode = {
  /** The effect is not applied; the call throws (a refused request, a failed statement). */
  throwBefore: 'throw-before',
  /** The effect is applied, then the call throws (an answer lost on the way back). */
  throwAfter: 'throw-after',
  /** The call never returns and the invocation is abandoned (a Lambda timeout, a dead process). */
  hang: 'hang',
} as const;
export type FaultMode = (typeof FaultMode)[keyof typeof FaultMode];

/** The error an injected fault throws. */
export class InjectedFault extends Error {
  override name = 'InjectedFault';
}

/**
 * Counts the external side effects of a rotation (Secrets Manager calls, database statements,
 * provider HTTP calls) and fails the k-th one. Every effect goes through `effect()`.
 */
export class FaultInjector {
  /** Effects seen since the last `arm()`/`reset()`, by name, in order. */
  readonly effects: string[] = [];
  private failAt?: number;
  private mode: FaultMode = FaultMode.throwBefore;
  private fire?: () => void;
  /** Resolves when the armed fault fires (so an abandoned invocation can be given up on). */
  fired: Promise<void> = new Promise(() => {});

  /** Fails the k-th effect from now on (1-based), once. */
  arm(k: number, mode: FaultMode): void {
    this.effects.length = 0;
    this.failAt = k;
    this.mode = mode;
    this.fired = new Promise((resolve) => {
      this.fire = resolve;
    });
  }

  /** True when the armed fault leaves its invocation hanging (it must be abandoned). */
  get hangs(): boolean {
    return this.mode === FaultMode.hang;
  }

  /** Counts without failing. */
  reset(): void {
    this.effects.length = 0;
    this.failAt = undefined;
    this.fired = new Promise(() => {});
  }

  async effect<T>(name: string, run: () => Promise<T>): Promise<T> {
    this.effects.push(name);
    if (this.effects.length !== this.failAt) return run();
    this.failAt = undefined;
    this.fire?.();
    const fault = new InjectedFault(`injected fault at effect ${this.effects.length} (${name})`);
    switch (this.mode) {
      case FaultMode.throwBefore:
        throw fault;
      case FaultMode.throwAfter:
        await run();
        throw fault;
      case FaultMode.hang:
        return new Promise<T>(() => {});
    }
  }
}

/**
 * A real Secrets Manager client (real SDK, real HTTP to `endpoint`) whose every command goes
 * through the injector.
 */
export function faultySecretsManagerClient(
  endpoint: string,
  injector: FaultInjector,
): SecretsManagerClient {
  const client = new SecretsManagerClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    // One attempt: an injected fault must reach the handler as it is, not be retried away.
    maxAttempts: 1,
  });
  client.middlewareStack.add(
    (next, context) => (args) =>
      injector.effect(`SecretsManager.${String(context.commandName).replace(/Command$/, '')}`, () =>
        next(args),
      ),
    { step: 'initialize', name: 'faultInjection' },
  );
  return client;
}
