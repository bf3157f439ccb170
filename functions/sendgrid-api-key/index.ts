import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { createSendGrid } from '../../shared/providers/sendgrid.js';
import { createRotationHandler } from '../../shared/rotation/handler.js';
import { powertoolsStepMetrics } from '../../shared/rotation/metrics.js';
import { apiKeys } from '../../shared/strategies/api-keys.js';

const serviceName = 'sendgrid-api-key';

export const handler = createRotationHandler({
  strategy: apiKeys(createSendGrid()),
  logger: new Logger({ serviceName }),
  metrics: powertoolsStepMetrics(new Metrics({ namespace: 'SecretsRotation', serviceName })),
});
