import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { createMongoDb } from '../../shared/databases/mongodb.js';
import { createRotationHandler } from '../../shared/rotation/handler.js';
import { powertoolsStepMetrics } from '../../shared/rotation/metrics.js';
import { singleUser } from '../../shared/strategies/single-user.js';

const serviceName = 'mongodb-single-user';

export const handler = createRotationHandler({
  strategy: singleUser(createMongoDb()),
  logger: new Logger({ serviceName }),
  metrics: powertoolsStepMetrics(new Metrics({ namespace: 'SecretsRotation', serviceName })),
});
