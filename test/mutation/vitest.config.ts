import { defineConfig } from 'vitest/config';
import base from '../../vitest.config.js';

/**
 * The vitest projects Stryker runs (scripts/mutate.sh): MUTATE_PROJECTS, comma-separated, from
 * the projects of the main config (default: all four). `unit` alone is the quick check.
 */
const wanted = (process.env.MUTATE_PROJECTS ?? 'unit,integration,reliability,security')
  .split(',')
  .map((name) => name.trim())
  .filter(Boolean);
type Project = { test: { name: string } };
const projects = (base.test?.projects ?? []) as Project[];
const unknown = wanted.filter((name) => !projects.some((project) => project.test.name === name));
if (unknown.length > 0) throw new Error(`MUTATE_PROJECTS: no vitest project ${unknown.join(', ')}`);

// The root's settings come too: its global setup starts the servers the database projects ask for
// (test/support/servers-global-setup.ts); without it every database test fails the dry run.
export default defineConfig({
  test: {
    ...base.test,
    projects: projects.filter((project) => wanted.includes(project.test.name)) as never,
  },
});
