// Mutation testing of the protocol and the strategies (issue 14). Run it with `npm run mutate`
// (scripts/mutate.sh: Stryker needs Node 22+; it runs on CI's Node 24); the summary goes to
// bench/mutation.md (scripts/mutation-report.mjs).
const SCOPES = {
  protocol: ['shared/rotation/**/*.ts', 'shared/strategies/**/*.ts'],
  adapters: ['shared/databases/**/*.ts', 'shared/providers/**/*.ts'],
};
const scope = process.env.MUTATE_SCOPE ?? 'protocol';
if (!(scope in SCOPES)) throw new Error(`MUTATE_SCOPE must be one of ${Object.keys(SCOPES)}`);
// Which vitest projects kill mutants (test/mutation/vitest.config.ts reads the same variable):
// a run with other tests is another run, with its own incremental file and report.
// scripts/mutate.sh runs the default (all four) in two phases, the unit project over every
// mutant and then the database projects over the survivors, each a run of this config.
const projects = process.env.MUTATE_PROJECTS ?? 'unit,integration,reliability,security';
const run = `${scope}-${projects === 'unit' ? 'unit' : projects.split(',').length === 4 ? 'all' : projects.replaceAll(',', '+')}`;

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'test/mutation/vitest.config.ts', related: false },
  // MUTATE_SCOPE=protocol (default): every file of the two layers the issue targets;
  // MUTATE_SCOPE=adapters: the databases and providers below them (reported with their own
  // target in bench/mutation.md). types.ts files hold only types and constants. Each scope keeps
  // its own incremental file.
  mutate: [...SCOPES[scope], '!shared/**/types.ts'],
  // Exclusions, stated (the issue allows log and message strings): mutants of a logger call
  // (the line's text, its fields, whether it is written) and of the message text of an
  // error constructor (its first argument, when a string or template literal) are ignored, by
  // the ignorer in scripts/stryker-ignore-messages.mjs; bench/mutation.md counts them. Tests
  // match an error by its class and the field or step it names, not by its wording. Every other
  // string (SQL, field names, labels, HTTP paths, the error's field argument) is mutated.
  ignorers: ['log-and-message-strings'],
  plugins: ['@stryker-mutator/vitest-runner', './scripts/stryker-ignore-messages.mjs'],
  coverageAnalysis: 'perTest',
  // Static mutants (module-level constants: regular expressions, suffixes) would run every test
  // for each of them, 77 % of the time for 7 % of the mutants: they are reported as ignored.
  ignoreStatic: true,
  // The machine has 2 cores shared with other work.
  concurrency: Number(process.env.MUTATE_CONCURRENCY ?? 2),
  timeoutMS: 60_000,
  // The database projects' first run (with coverage) takes 4 to 10 minutes here: Stryker's
  // default limit, 5, failed it under load.
  dryRunTimeoutMinutes: 20,
  timeoutFactor: 2,
  incremental: true,
  incrementalFile: `bench/mutation/incremental-${run}.json`,
  reporters: ['json', 'clear-text', 'progress'],
  jsonReporter: { fileName: `bench/tmp/mutation-${run}.json` },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
  thresholds: { high: 90, low: 80, break: null },
};
