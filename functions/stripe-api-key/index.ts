import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { createStripe } from '../../shared/providers/stripe.js';
import { createRotationHandler } from '../../shared/rotation/handler.js';
import { powertoolsStepMetrics } from '../../shared/rotation/metrics.js';
import { apiKeys } from '../../shared/strategies/api-keys.js';

const serviceName = 'stripe-api-key';

export const handler = createRotationHandler({
  strategy: apiKeys(createStripe()),
  logger: new Logger({ serviceName }),
  metrics: powertoolsStepMetrics(new Metrics({ namespace: 'SecretsRotation', serviceName })),
});
