import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { Step } from './types.js';

/** How a step ended. `skipped`: the guards found the work already done. */
export type StepOutcome = 'success' | 'failure' | 'skipped';

/** The metrics seam: one `record` per invocation, one `degraded` per fallback. */
export interface StepMetrics {
  record(step: Step, outcome: StepOutcome, durationMs: number, errorName?: string): void;
  /** A feature fell back while the step went on (e.g. the MySQL grace period). */
  degraded?(feature: string): void;
}

/**
 * Step metrics through Powertools (CloudWatch embedded metric format): `StepDuration` in
 * milliseconds and `StepOutcome` as a count, with dimensions `service`, `step` and `outcome`,
 * flushed at the end of every invocation; `Degraded` (count) with dimensions `service` and
 * `Feature`, written at once. In Lambda both also carry `FunctionName` (the deployed function,
 * AWS_LAMBDA_FUNCTION_NAME): `service` is the same in every stack of one function, and a
 * stack's alarms must not fire for another stack's rotations. template.yaml's alarms name
 * exactly these.
 *
 * @example
 * const metrics = powertoolsStepMetrics(new Metrics({ namespace: 'SecretsRotation', serviceName }));
 */
export function powertoolsStepMetrics(metrics: Metrics): StepMetrics {
  const functionName = process.env.AWS_LAMBDA_FUNCTION_NAME;
  const deployed: Record<string, string> = functionName ? { FunctionName: functionName } : {};
  return {
    record(step, outcome, durationMs, errorName) {
      metrics.addDimensions({ ...deployed, step, outcome });
      metrics.addMetric('StepDuration', 'Milliseconds', durationMs);
      metrics.addMetric('StepOutcome', 'Count', 1);
      if (errorName !== undefined) metrics.addMetadata('error', errorName);
      metrics.publishStoredMetrics();
    },
    degraded(feature) {
      const single = metrics.singleMetric();
      single.addDimensions({ ...deployed, Feature: feature });
      single.addMetric('Degraded', 'Count', 1);
    },
  };
}
