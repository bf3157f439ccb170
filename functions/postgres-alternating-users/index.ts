import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { createPostgres } from '../../shared/databases/postgres.js';
import { createRotationHandler } from '../../shared/rotation/handler.js';
import { powertoolsStepMetrics } from '../../shared/rotation/metrics.js';
import { alternatingUsers } from '../../shared/strategies/alternating-users.js';

const serviceName = 'postgres-alternating-users';

export const handler = createRotationHandler({
  strategy: alternatingUsers(createPostgres()),
  logger: new Logger({ serviceName }),
  metrics: powertoolsStepMetrics(new Metrics({ namespace: 'SecretsRotation', serviceName })),
});
