/**
 * Plays the Secrets Manager rotation loop against any rotation handler: RotateSecret registers
 * the AWSPENDING version, then the four steps run in order, synchronously, stopping at the
 * first failure. A failed rotation is retried later by the service with the same token, from
 * createSecret (`retry`).
 */
import { AWSPENDING, type FakeSecretsManager } from './fake-secrets-manager.js';

export const STEPS = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const;
export type Step = (typeof STEPS)[number];

/** What a handler's promise was rejected with (`E`, as the test expects it), or undefined. */
export const failure = <E = Error>(promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error as E,
  );

/** For tests that drive one step at a time against `fake`: its event, and a stored AWSPENDING. */
export function stepHelpers(fake: FakeSecretsManager) {
  return {
    event: (secretId: string, token: string, step: Step) => ({
      Step: step,
      SecretId: fake.arnOf(secretId),
      ClientRequestToken: token,
    }),
    putPending(secretId: string, token: string, value: string) {
      fake.putSecretValue({
        SecretId: secretId,
        ClientRequestToken: token,
        SecretString: value,
        VersionStages: [AWSPENDING],
      });
    },
  };
}

export interface RotationEvent {
  Step: Step;
  SecretId: string;
  ClientRequestToken: string;
  RotationToken?: string;
}

export interface RotateOptions {
  fake: FakeSecretsManager;
  secretId: string;
  invoke: (event: RotationEvent) => Promise<unknown>;
  /** The ClientRequestToken. A token that already names a version continues that rotation. */
  token?: string;
  /** Run up to and including this step, then stop (the rotation is then not completed). */
  stopAfter?: Step;
  /** Leave RotationToken out of the events, as older events did. */
  withoutRotationToken?: boolean;
  /**
   * After a completed rotation, take AWSPENDING off the new current version, which the
   * service is allowed to do ("AWSPENDING ... might not be attached to any version").
   */
  clearPendingOnSuccess?: boolean;
}

export interface RotationResult {
  token: string;
  completed: boolean;
  failedStep?: Step;
  error?: unknown;
  stepsRun: Step[];
}

export async function rotate(options: RotateOptions): Promise<RotationResult> {
  const { fake, secretId, invoke } = options;
  const continuing =
    options.token !== undefined && fake.versionIds(secretId).includes(options.token);
  const token = continuing
    ? (options.token as string)
    : fake.startRotation(secretId, options.token);
  const arn = fake.arnOf(secretId);
  const rotationToken = options.withoutRotationToken
    ? undefined
    : fake.rotationTokenFor(secretId, token);

  const stepsRun: Step[] = [];
  for (const step of STEPS) {
    const event: RotationEvent = { Step: step, SecretId: arn, ClientRequestToken: token };
    if (rotationToken !== undefined) event.RotationToken = rotationToken;
    stepsRun.push(step);
    try {
      await invoke(event);
    } catch (error) {
      return { token, completed: false, failedStep: step, error, stepsRun };
    }
    if (step === options.stopAfter) break;
  }
  const completed = stepsRun.length === STEPS.length;
  if (completed && options.clearPendingOnSuccess && fake.versionOf(secretId) === token) {
    fake.removeLabel(secretId, AWSPENDING);
  }
  return { token, completed, stepsRun };
}

/** Runs the rotation of `token` again from createSecret, as the service does after a failure. */
export async function retry(
  options: Omit<RotateOptions, 'token'> & { token: string },
): Promise<RotationResult> {
  if (!options.fake.versionIds(options.secretId).includes(options.token)) {
    throw new Error(`retry: no version ${options.token} on ${options.secretId}; use rotate()`);
  }
  return rotate(options);
}
