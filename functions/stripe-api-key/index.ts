import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { createStripe } from '../../shared/providers/stripe.js';
import { createRotationHandler } from '../../shared/rotation/handler.js';
import { powertoolsStepMetrics } from '../../shared/rotation/metrics.js';
import { apiKeys } from '../../shared/strategies/api-keys.js';

/**
 * Rotates a Stripe key through Stripe's Managed API Keys API (/v2/iam/api_keys), a private
 * preview: it needs an account admitted to it, a platform or Stripe App managing key acting
 * through Stripe-Context, and STRIPE_API_VERSION set to the preview version Stripe gave the
 * account. Without STRIPE_API_VERSION, or with one that is not a preview, this module throws at
 * cold start with that explanation (README: "Stripe needs a private preview").
 */
const serviceName = 'stripe-api-key';

export const handler = createRotationHandler({
  strategy: apiKeys(createStripe()),
  logger: new Logger({ serviceName }),
  metrics: powertoolsStepMetrics(new Metrics({ namespace: 'SecretsRotation', serviceName })),
});
