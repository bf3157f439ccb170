#!/usr/bin/env node
// Summarises Stryker's JSON reports (bench/tmp/mutation-<run>.json, written by scripts/mutate.sh)
// into bench/mutation/scores.json (the recorded baseline, one entry per run) and renders
// bench/mutation.md from it.
//   node scripts/mutation-report.mjs                 record the newest report in bench/tmp, render
//   node scripts/mutation-report.mjs --as <name> F   record report F under the run name <name>
//   node scripts/mutation-report.mjs --check [run]   compare the reports in bench/tmp with the
//       recorded baseline; exit 1 when any file's score is lower (CI), record nothing
// Scores are Stryker's: detected (killed + timed out) / valid (detected + survived + no
// coverage); ignored mutants (log and message text, static mutants) are outside the score.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { calculateMutationTestMetrics } from 'mutation-testing-metrics';

const BENCH = 'bench';
const SCORES = join(BENCH, 'mutation', 'scores.json');
const EQUIVALENT = join(BENCH, 'mutation', 'equivalent.json');
// MUTATION_REPORT_DIR: where --check reads the reports (.ci/run points it at a planted drop).
const REPORT_DIR = process.env.MUTATION_REPORT_DIR ?? join(BENCH, 'tmp');

const TITLES = {
  'protocol-before': 'Before (commit 8f0d0dc, unit project): shared/rotation + shared/strategies',
  'protocol-all':
    'shared/rotation + shared/strategies, killed by all four projects (`npm run mutate`: the unit project, then the database projects over its survivors)',
  'protocol-unit': 'shared/rotation + shared/strategies, killed by the unit project',
  'adapters-before':
    'Adapters before (commit f3721fd, unit project): shared/databases + shared/providers',
  'adapters-unit': 'shared/databases + shared/providers (adapters), killed by the unit project',
  'adapters-servers':
    'shared/databases + shared/providers (adapters): the unit project, and for the database files named below also the projects the Targets table names',
  'adapters-all': 'shared/databases + shared/providers (adapters), killed by all four projects',
};

/** The adapters' targets, and why (bench/mutation.md says it next to the numbers). */
const PROVIDER_TARGET = 90;
const DATABASE_TARGET = 80;
const ADAPTER_REASON =
  'Adapters, targets of our own. **Providers** (`shared/providers`, HTTP to SendGrid, Stripe and ' +
  'Twilio): everything they do (request shapes, auth, paging, retries and deadlines, error ' +
  'classification, what an error may quote) can be driven in-process by a scripted fetch and ' +
  "the provider fakes, so the bar is the protocol's: ≥ 90 %, with the unit project. " +
  '**Databases** (`shared/databases`): what they do is said to a server (SQL, grants, MongoDB ' +
  'commands, TLS, sessions), and only the server can tell a right statement from a wrong one, so ' +
  'they are measured with the unit and integration projects against the real servers, file by ' +
  'file (`--mutate shared/databases/<file>`: the unit project over every mutant, then the others ' +
  'over its survivors; 2 to 20 min a file here), and for some files also the security project ' +
  "(hostile servers, a silent network; the table names each file's projects). The bar is " +
  'lower, ≥ 80 % a file: part of each adapter is reachable only on servers this machine cannot ' +
  'run (MySQL 8: APPLICATION_PASSWORD_ADMIN, default roles, caching_sha2; MongoDB proper, where ' +
  'FerretDB lacks roles and customData), where the unit tests drive it over scripted servers ' +
  'that answer as those do, and part only by the reliability project (fault matrices), not run ' +
  'for the adapters. A file without a run with the servers shows its unit score, marked so.';

/** Detected / valid over the files of `run` whose path starts with `prefix`. */
function groupScore(run, prefix) {
  let detected = 0;
  let valid = 0;
  for (const [path, f] of Object.entries(run?.files ?? {})) {
    if (!path.startsWith(prefix)) continue;
    detected += f.killed + f.timeout;
    valid += f.killed + f.timeout + f.survived + f.noCoverage;
  }
  return valid === 0 ? Number.NaN : (100 * detected) / valid;
}

const pct = (value) =>
  typeof value !== 'number' || Number.isNaN(value) ? 'n/a' : `${value.toFixed(1)} %`;
const readJson = (file, fallback) =>
  existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : fallback;

/** One run's summary: per-file counts and score, and the survivors (not text mutants). */
function summarise(report) {
  const { systemUnderTestMetrics } = calculateMutationTestMetrics(report);
  const files = {};
  const survivors = [];
  const ignoredBy = {};
  const collect = (node) => {
    if (node.file) {
      const path = node.file.name.replace(/^.*?(shared\/)/, '$1');
      const m = node.metrics;
      files[path] = {
        mutants: m.totalMutants,
        killed: m.killed,
        timeout: m.timeout,
        survived: m.survived,
        noCoverage: m.noCoverage,
        ignored: m.ignored,
        errors: m.runtimeErrors + m.compileErrors,
        score: Number(m.mutationScore.toFixed(2)),
      };
      const lines = node.file.source.split('\n');
      for (const mutant of node.file.mutants) {
        if (mutant.status === 'Ignored') {
          const reason = /static/i.test(mutant.statusReason ?? '')
            ? 'static mutant'
            : (mutant.statusReason ?? 'ignored');
          ignoredBy[reason] = (ignoredBy[reason] ?? 0) + 1;
        }
        if (mutant.status !== 'Survived' && mutant.status !== 'NoCoverage') continue;
        const line = mutant.location.start.line;
        survivors.push({
          file: path,
          line,
          status: mutant.status,
          mutator: mutant.mutatorName,
          replacement: mutant.replacement ?? '',
          code: (lines[line - 1] ?? '').trim().slice(0, 110),
        });
      }
    }
    for (const child of node.childResults) collect(child);
  };
  collect(systemUnderTestMetrics);
  const total = systemUnderTestMetrics.metrics;
  return {
    date: new Date().toISOString().slice(0, 16).replace('T', ' '),
    total: {
      mutants: total.totalMutants,
      killed: total.killed,
      timeout: total.timeout,
      survived: total.survived,
      noCoverage: total.noCoverage,
      ignored: total.ignored,
      score: Number(total.mutationScore.toFixed(2)),
      coveredScore: Number(total.mutationScoreBasedOnCoveredCode.toFixed(2)),
    },
    ignoredBy,
    files,
    survivors,
    // Files scored with more projects than the run's own (scripts/mutation-union.mjs).
    ...(report.unionMeasured ? { measured: report.unionMeasured } : {}),
    ...(report.unionProjects ? { measuredProjects: report.unionProjects } : {}),
  };
}

const reports = () =>
  existsSync(REPORT_DIR)
    ? readdirSync(REPORT_DIR)
        .filter((name) => /^mutation-.+\.json$/.test(name))
        .map((name) => ({
          run: basename(name, '.json').slice('mutation-'.length),
          file: join(REPORT_DIR, name),
        }))
    : [];

function check(only) {
  const recorded = readJson(SCORES, {});
  let dropped = 0;
  const found = reports().filter(({ run }) => only === undefined || run === only);
  if (found.length === 0) {
    console.error(`mutation check: no report in ${REPORT_DIR}${only ? ` for ${only}` : ''}`);
    process.exit(1);
  }
  for (const { run, file } of found) {
    const now = summarise(readJson(file));
    const before = recorded[run];
    if (!before) {
      console.error(`mutation check: no recorded baseline for run ${run} in ${SCORES}`);
      process.exit(1);
    }
    console.log(`run ${run}: ${pct(now.total.score)} now, ${pct(before.total.score)} recorded`);
    console.log('file | recorded | now');
    for (const [path, was] of Object.entries(before.files)) {
      const is = now.files[path];
      const drop = is === undefined || is.score < was.score;
      if (drop) dropped++;
      console.log(
        `${path} | ${pct(was.score)} | ${is ? pct(is.score) : 'missing'}${drop ? '  <-- dropped' : ''}`,
      );
    }
  }
  if (dropped > 0) {
    console.error(
      `mutation check: the score of ${dropped} file(s) dropped below the recorded baseline`,
    );
    process.exit(1);
  }
  console.log('mutation check: no file scores lower than the recorded baseline');
}

function render(recorded) {
  const equivalent = readJson(EQUIVALENT, []);
  const reasonOf = (s) =>
    equivalent.find(
      (e) =>
        e.file === s.file &&
        (e.mutator === undefined || e.mutator === s.mutator) &&
        (e.line === undefined || e.line === s.line) &&
        (e.replacement === undefined || e.replacement === s.replacement),
    )?.reason;
  const out = [
    '# Mutation testing (Stryker)',
    '',
    'Written by `scripts/mutation-report.mjs` from the runs recorded in `bench/mutation/scores.json`',
    '(each from `npm run mutate`, i.e. `scripts/mutate.sh`; see `stryker.config.mjs`). Score =',
    'detected (killed + timed out) / valid (detected + survived + no coverage). Excluded, and',
    'counted as *ignored*: whole log calls (`logger.*(...)`: text, fields, whether the line is',
    'written) and the message text of errors (the first argument of `new *Error(...)` when it is',
    'a string or template), by `scripts/stryker-ignore-messages.mjs`; and static mutants',
    '(module-level constants, `ignoreStatic`, for run time). Every other string (SQL, field names,',
    "labels, paths, an error's field) is mutated. The *before* run excluded only the first",
    'argument of log calls, not their fields. Surviving string mutants are counted, not listed;',
    'every other survivor is listed, with the reason it is equivalent where it is',
    '(`bench/mutation/equivalent.json`); "not argued" marks a gap.',
    '',
  ];
  const score = (run) => (recorded[run] ? pct(recorded[run].total.score) : 'not run');
  const met = (run, target) =>
    recorded[run] ? (recorded[run].total.score >= target ? 'met' : '**not met**') : 'not run';
  out.push(
    '## Targets',
    '',
    '| scope | target | now | |',
    '|---|---|---|---|',
    `| shared/rotation + shared/strategies, \`npm run mutate\` (all four projects) | ≥ 90 % | ${score('protocol-all')} (before: ${score('protocol-before')}, unit project) | ${met('protocol-all', 90)} |`,
    `| shared/rotation + shared/strategies, unit project alone (CI's check) | ≥ 90 % | ${score('protocol-unit')} | ${met('protocol-unit', 90)} |`,
    `| the guards named in issue 14 | 100 % | see \`bench/mutation-guards.md\` | |`,
    (() => {
      const now = groupScore(recorded['adapters-unit'], 'shared/providers/');
      const before = groupScore(recorded['adapters-before'], 'shared/providers/');
      return `| shared/providers (unit project) | ≥ ${PROVIDER_TARGET} % | ${pct(now)} (before: ${pct(before)}) | ${now >= PROVIDER_TARGET ? 'met' : '**not met**'} |`;
    })(),
    ...Object.entries(recorded['adapters-unit']?.files ?? {})
      .filter(([path]) => path.startsWith('shared/databases/'))
      .filter(([, f]) => f.mutants > f.ignored)
      .map(([path]) => {
        const servers = recorded['adapters-servers']?.files?.[path];
        const measured = recorded['adapters-servers']?.measured?.includes(path);
        const unit = recorded['adapters-unit'].files[path];
        const before = recorded['adapters-before']?.files?.[path];
        const now = measured ? servers.score : unit.score;
        const projects = recorded['adapters-servers']?.measuredProjects?.[path] ?? [
          'unit',
          'integration',
        ];
        return `| ${path} (${measured ? `${projects.join(' + ')} projects` : 'unit project only: no run with the servers yet'}) | ≥ ${DATABASE_TARGET} % | ${pct(now)} (unit alone: ${pct(unit.score)}; before: ${pct(before?.score)}) | ${measured && now >= DATABASE_TARGET ? 'met' : '**not met**'} |`;
      }),
    '',
    ADAPTER_REASON,
    '',
  );
  const order = Object.keys(TITLES).filter((run) => recorded[run]);
  for (const run of [...order, ...Object.keys(recorded).filter((r) => !order.includes(r))]) {
    const r = recorded[run];
    out.push(`## ${TITLES[run] ?? run}`, '');
    out.push(
      `Run \`${run}\`, ${r.date} UTC${r.command ? `: \`${r.command}\`` : ''}${r.seconds ? `, ${r.seconds} s` : ''}.`,
      `**${pct(r.total.score)}** of ${r.total.mutants - r.total.ignored} valid mutants detected (${pct(r.total.coveredScore)} of those the tests reach); ${r.total.ignored} ignored${
        r.ignoredBy
          ? ` (${Object.entries(r.ignoredBy)
              .map(([why, n]) => `${n} ${why}`)
              .join(', ')})`
          : ''
      }.`,
      '',
      '| file | mutants | killed | timed out | survived | no coverage | ignored | score |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const [path, f] of Object.entries(r.files).sort(([a], [b]) => a.localeCompare(b))) {
      out.push(
        `| ${path} | ${f.mutants} | ${f.killed} | ${f.timeout} | ${f.survived} | ${f.noCoverage} | ${f.ignored} | ${pct(f.score)} |`,
      );
    }
    const t = r.total;
    out.push(
      `| **total** | ${t.mutants} | ${t.killed} | ${t.timeout} | ${t.survived} | ${t.noCoverage} | ${t.ignored} | **${pct(t.score)}** |`,
      '',
    );
    if (run.endsWith('-before')) continue;
    const strings = r.survivors.filter((s) => s.mutator === 'StringLiteral');
    const others = r.survivors.filter((s) => s.mutator !== 'StringLiteral');
    out.push(
      `Surviving string mutants (not listed): ${strings.length}. Other survivors: ${others.length}` +
        ` (${others.filter((s) => reasonOf(s)).length} with a stated reason).`,
      '',
    );
    if (others.length > 0) {
      out.push(
        '| file:line | status | mutator | code → replacement | equivalent? |',
        '|---|---|---|---|---|',
      );
      for (const s of others) {
        const cell = (text) => text.replaceAll('|', '\\|').replaceAll('\n', ' ').slice(0, 90);
        out.push(
          `| ${s.file}:${s.line} | ${s.status} | ${s.mutator} | \`${cell(s.code)}\` → \`${cell(s.replacement)}\` | ${reasonOf(s) ?? 'not argued: a gap'} |`,
        );
      }
      out.push('');
    }
  }
  // Hand-written notes (run times, what CI runs), kept next to the recorded runs.
  const notes = join(BENCH, 'mutation', 'notes.md');
  if (existsSync(notes)) out.push(readFileSync(notes, 'utf8').trim(), '');
  writeFileSync(join(BENCH, 'mutation.md'), `${out.join('\n')}\n`);
}

const args = process.argv.slice(2);
if (args[0] === '--check') {
  check(args[1]);
} else {
  const recorded = readJson(SCORES, {});
  const meta = {
    command: process.env.MUTATE_COMMAND,
    seconds: Number(process.env.MUTATE_SECONDS) || undefined,
  };
  const newest = reports()
    .map((report) => ({ ...report, time: statSync(report.file).mtimeMs }))
    .sort((a, b) => b.time - a.time)
    .slice(0, 1);
  const inputs = args[0] === '--as' ? [{ run: args[1], file: args[2] }] : newest;
  for (const { run, file } of inputs) {
    recorded[run] = {
      ...summarise(readJson(file)),
      command: meta.command ?? recorded[run]?.command,
      seconds: meta.seconds ?? recorded[run]?.seconds,
    };
    console.log(`recorded ${run}: ${pct(recorded[run].total.score)}`);
  }
  writeFileSync(SCORES, `${JSON.stringify(recorded, null, 1)}\n`);
  render(recorded);
  console.log(`wrote ${SCORES} and ${join(BENCH, 'mutation.md')}`);
}
