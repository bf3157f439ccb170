import { InvalidEventError } from '../common/errors.js';
import { type RotationEvent, type Step, Steps } from './types.js';

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const describeValue = (value: unknown): string =>
  value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;

function requireString(
  event: Record<string, unknown>,
  field: string,
  limits: { min: number; max: number },
): string {
  const value = event[field];
  if (value === undefined) throw new InvalidEventError(`rotation event: field ${field} is missing`);
  if (typeof value !== 'string') {
    throw new InvalidEventError(
      `rotation event: field ${field} must be a string, got ${describeValue(value)}`,
    );
  }
  if (value.length < limits.min || value.length > limits.max) {
    throw new InvalidEventError(
      `rotation event: field ${field} must be ${limits.min} to ${limits.max} characters, got ${value.length}`,
    );
  }
  return value;
}

/**
 * Validates the event Secrets Manager sends. Each error names the field at fault.
 *
 * @example
 * parseRotationEvent({ Step: 'createSecret', SecretId: arn, ClientRequestToken: token });
 */
export function parseRotationEvent(event: unknown): RotationEvent {
  if (!isRecord(event)) {
    throw new InvalidEventError(`rotation event must be an object, got ${describeValue(event)}`);
  }
  const step = requireString(event, 'Step', { min: 1, max: 64 });
  if (!(Steps as readonly string[]).includes(step)) {
    throw new InvalidEventError(
      `rotation event: field Step must be one of ${Steps.join(', ')}, got ${JSON.stringify(step)}`,
    );
  }
  const parsed: RotationEvent = {
    Step: step as Step,
    SecretId: requireString(event, 'SecretId', { min: 1, max: 2048 }),
    // Secrets Manager's ClientRequestToken is 32 to 64 characters.
    ClientRequestToken: requireString(event, 'ClientRequestToken', { min: 32, max: 64 }),
  };
  if (event.RotationToken !== undefined) {
    parsed.RotationToken = requireString(event, 'RotationToken', { min: 1, max: 4096 });
  }
  return parsed;
}
