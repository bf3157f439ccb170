import { defineConfig } from 'vitest/config';

/** The real AWS SDK runs in every test, against a fake Secrets Manager: it needs a region and
 * credentials, never real ones. */
const awsEnv = {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'AKIDTESTONLY',
  AWS_SECRET_ACCESS_KEY: 'test-only-secret',
  AWS_EC2_METADATA_DISABLED: 'true',
  POWERTOOLS_DEV: 'true',
};

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          env: awsEnv,
          setupFiles: ['test/support/leak-guard-setup.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          env: awsEnv,
          setupFiles: ['test/support/leak-guard-setup.ts'],
          // One global setup per server kind: each server starts once for every file.
          globalSetup: [
            'test/support/postgres-global-setup.ts',
            'test/support/mysql-global-setup.ts',
            'test/support/mongo-global-setup.ts',
          ],
          testTimeout: 60_000,
          hookTimeout: 180_000,
          // One server of each kind is shared by every file; each test makes its own users.
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'reliability',
          include: ['test/reliability/**/*.test.ts'],
          environment: 'node',
          env: awsEnv,
          setupFiles: ['test/support/leak-guard-setup.ts'],
          globalSetup: [
            'test/support/postgres-global-setup.ts',
            'test/support/mysql-global-setup.ts',
            'test/support/mongo-global-setup.ts',
          ],
          testTimeout: 300_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'security',
          include: ['test/security/**/*.test.ts'],
          environment: 'node',
          env: awsEnv,
          setupFiles: ['test/support/leak-guard-setup.ts'],
          globalSetup: [
            'test/support/postgres-global-setup.ts',
            'test/support/mysql-global-setup.ts',
            'test/support/mongo-global-setup.ts',
          ],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
