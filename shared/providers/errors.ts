import { RotationError } from '../common/errors.js';

/**
 * A key provider (SendGrid, Stripe, Twilio) answered with an error that is not about the
 * credentials: a refused request, a server fault, an unexpected answer. The message names the
 * provider, the method and path, the HTTP status and the provider's own error code, and never a
 * key (provider messages are scrubbed of anything shaped like one).
 */
export class ProviderError extends RotationError {
  override name = 'ProviderError';
  constructor(
    message: string,
    readonly provider: string,
    readonly status?: number,
    readonly code?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The credential authenticated but may not do this (HTTP 403, Twilio 70051). */
export class PermissionDeniedError extends ProviderError {
  override name = 'PermissionDeniedError';
}

/** The account holds as many keys as the provider allows; no new key can be minted. */
export class KeyLimitError extends ProviderError {
  override name = 'KeyLimitError';
}

/** Still rate-limited (HTTP 429) when the time left before the Lambda deadline ran out. */
export class RateLimitedError extends ProviderError {
  override name = 'RateLimitedError';
}
