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

/**
 * A project of test/<name> against the real servers. The servers come from the root's global
 * setup (test/support/servers-global-setup.ts): once per run for every project, and only those
 * the selected files ask for. One server of each kind is shared by every file (each test makes
 * its own users), so files run one at a time.
 */
const databaseProject = (name: string, testTimeout: number) => ({
  test: {
    name,
    include: [`test/${name}/**/*.test.ts`],
    environment: 'node' as const,
    env: awsEnv,
    setupFiles: ['test/support/leak-guard-setup.ts'],
    testTimeout,
    hookTimeout: 180_000,
    fileParallelism: false,
  },
});

export default defineConfig({
  test: {
    // Runs once per `vitest run` (the root project's), whatever projects are selected.
    globalSetup: ['test/support/servers-global-setup.ts'],
    hookTimeout: 180_000,
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
      databaseProject('integration', 60_000),
      databaseProject('reliability', 300_000),
      databaseProject('security', 120_000),
    ],
  },
});
