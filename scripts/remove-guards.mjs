#!/usr/bin/env node
// Removes each guard named in issue 14 by hand, one at a time, runs the unit tests that state
// its behaviour, and restores the file; prints which tests failed (and writes the table to
// bench/mutation-guards.md). A guard whose removal fails no test makes the script exit 1.
//   node scripts/remove-guards.mjs            (run on Node 20 with the project's vitest)
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';

const TESTS = ['test/unit/protocol-guards.test.ts', 'test/unit/api-keys-strategy.test.ts'];

/** [issue item, file, exact text, replacement] — each text must occur exactly once. */
const GUARDS = [
  [
    'secrets-store.ts ~117: only ResourceNotFoundException reads as "no value"',
    'shared/rotation/secrets-store.ts',
    "if (isServiceError(error, 'ResourceNotFoundException')) return undefined;",
    'return undefined;',
  ],
  [
    'handler.ts ~208: a failed AWSPREVIOUS read is an error, not "does not parse"',
    'shared/rotation/handler.ts',
    'if (!(error instanceof InvalidSecretError)) throw error;',
    '',
  ],
  [
    'handler.ts ~343: after InvalidParameterException, AWSCURRENT must be on the token',
    'shared/rotation/handler.ts',
    'if (!fresh.VersionIdsToStages?.[token]?.includes(Stage.current)) throw error;',
    '',
  ],
  [
    'handler.ts ~277: discard the minted credential when another value holds the token',
    'shared/rotation/handler.ts',
    "if (landed === 'absent' || landed === 'other') {",
    "if (landed === 'absent') {",
  ],
  [
    "handler.ts ~222: the protocol redacts another secret's credential fields",
    'shared/rotation/handler.ts',
    'for (const value of credentialValues(secretString)) secrets.add(value);',
    '',
  ],
  [
    'handler.ts ~244: redact() redacts',
    'shared/rotation/handler.ts',
    'redact(value) {\n        secrets.add(value);',
    'redact(value) {',
  ],
  [
    'alternating-users.ts ~215: never rotate the master user itself',
    'shared/strategies/alternating-users.ts',
    'if (pending.username === master.username || current.username === master.username) {',
    'if (false) {',
  ],
  [
    "alternating-users.ts ~108: the master secret's own ssl is read",
    'shared/strategies/alternating-users.ts',
    'const tls = raw.ssl === undefined || raw.ssl === null ? undefined : parseTls(raw, source);',
    'const tls = undefined as TlsMode | undefined;',
  ],
  [
    "alternating-users.ts ~228: the master signs in over verified TLS unless its own secret says ssl: false (old code: the app secret's mode)",
    'shared/strategies/alternating-users.ts',
    "tls: master.tls ?? 'verify',",
    "tls: master.tls ?? (current.tls === 'disable' ? 'prefer' : current.tls),",
  ],
  [
    'single-user.ts ~46: AWSPENDING must name the same account scope (accounthost)',
    'shared/strategies/single-user.ts',
    'if (pending.scope !== current.scope) {',
    'if (false) {',
  ],
  [
    'handler.ts ~190: no AWSCURRENT value is a stage error',
    'shared/rotation/handler.ts',
    "if (value === undefined) throw new StageError('the secret has no AWSCURRENT value');",
    '',
  ],
  [
    'secrets-store.ts ~106: a SecretBinary value is an error, not "no value"',
    'shared/rotation/secrets-store.ts',
    'if (output.SecretString === undefined) {',
    'if (false) {',
  ],
  [
    'single-user.ts ~108: AWSPENDING set meanwhile is success',
    'shared/strategies/single-user.ts',
    'if (late !== undefined) {',
    'if (false) {',
  ],
  [
    'handler.ts ~332: with afterFinish, AWSCURRENT and AWSPREVIOUS are read before the move',
    'shared/rotation/handler.ts',
    'if (strategy.afterFinish) {',
    'if (false) {',
  ],
  [
    'api-keys.ts ~348: afterFinish spares the demoted key (default mode)',
    'shared/strategies/api-keys.ts',
    '(settings.revokeDemotedKey === RevokeDemotedKey.immediately ||\n            secret.keyId !== demoted.keyId) &&',
    '',
  ],
];

const out = 'bench/tmp/remove-guards.json';
const rows = [];
let toothless = 0;
for (const [item, file, text, replacement] of GUARDS) {
  const original = readFileSync(file, 'utf8');
  const count = original.split(text).length - 1;
  if (count !== 1)
    throw new Error(`${file}: expected the guard text once, found ${count}: ${text}`);
  const restore = () => writeFileSync(file, original);
  process.once('SIGINT', restore);
  let failed = [];
  try {
    writeFileSync(file, original.replace(text, replacement));
    rmSync(out, { force: true });
    try {
      execFileSync(
        'npx',
        ['vitest', 'run', '--project', 'unit', ...TESTS, '--reporter=json', `--outputFile=${out}`],
        { stdio: 'ignore', env: { ...process.env, NO_COLOR: '1' } },
      );
    } catch {
      // failing tests: read below
    }
    const result = JSON.parse(readFileSync(out, 'utf8'));
    failed = result.testResults.flatMap((f) =>
      f.assertionResults
        .filter((a) => a.status === 'failed')
        .map((a) => `${f.name.replace(/^.*\/test\//, 'test/')}: ${a.title}`),
    );
    if (result.numFailedTestSuites > 0 && failed.length === 0)
      failed = ['(a test file failed to run)'];
  } finally {
    restore();
    process.removeListener('SIGINT', restore);
  }
  if (failed.length === 0) toothless++;
  rows.push({ item, failed });
  console.log(`${failed.length === 0 ? 'NO TEST FAILS' : `${failed.length} failing`}: ${item}`);
}

const md = [
  '# Guards of issue 14, removed by hand',
  '',
  'Written by `node scripts/remove-guards.mjs`: each guard is removed alone (the exact edit is in',
  `the script), \`npx vitest run --project unit ${TESTS.join(' ')}\` runs, the file is restored.`,
  '',
  '| guard removed | tests that fail |',
  '|---|---|',
  ...rows.map(
    ({ item, failed }) =>
      `| ${item} | ${failed.length === 0 ? '**none**' : `${failed.length}: ${failed.map((f) => f.replaceAll('|', '\\|')).join('<br>')}`} |`,
  ),
  '',
];
writeFileSync('bench/mutation-guards.md', md.join('\n'));
if (toothless > 0) {
  console.error(`${toothless} guard(s) removable without a failing test`);
  process.exit(1);
}
