import { defineConfig } from 'vitest/config';

/** The planted failure of `.ci/run`'s exit-status check, with the tests' server setup. */
export default defineConfig({
  test: {
    include: ['test/exit-status/*.test.ts'],
    globalSetup: ['test/support/servers-global-setup.ts'],
    hookTimeout: 180_000,
  },
});
