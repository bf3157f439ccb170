import type { StepContext, Strategy } from '../../shared/rotation/types.js';

/** The value the probing strategy rotates: a counter. */
export interface Value {
  n: number;
}

/** A strategy that hands each step's context to `probe`; no testCurrent, no afterFinish. */
export const probing = (
  probe: (step: StepContext<Value>) => Promise<void> = async () => {},
  overrides: Partial<Strategy<Value>> = {},
): Strategy<Value> => ({
  parse: (text) => JSON.parse(text) as Value,
  serialize: (value) => JSON.stringify(value),
  secretsOf: () => [],
  async createPending(step) {
    await probe(step);
    return { n: (await step.current()).n + 1 };
  },
  async setPending(step) {
    await probe(step);
  },
  async testPending(step) {
    await probe(step);
  },
  ...overrides,
});
