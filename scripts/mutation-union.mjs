#!/usr/bin/env node
// Combines two Stryker JSON reports of the same scope into one, mutant by mutant:
//   node scripts/mutation-union.mjs [--older-projects a,b] OLDER NEWER OUT
//   node scripts/mutation-union.mjs --trim REPORT FILES PROJECTS OUT
//       writes the mutants of FILES (comma-separated) from REPORT, trimmed, saying PROJECTS
//   node scripts/mutation-union.mjs --survivors REPORT [FILES]
//       prints the mutants REPORT left alive (survived or not covered) as Stryker mutation
//       ranges (file:line:column-line:column, comma-separated), for `stryker run --mutate`
// A mutant counts as detected when either run detected it. That is what one run with both runs'
// tests would find, as long as the code and the older run's tests are still there: so mutants
// are matched (mutator, replacement, position) only in files whose source is the same in both
// reports; in a file that changed, only NEWER counts. Used to put the all-projects run
// (`npm run mutate`, slow: the database projects) together with a later unit-project run
// (`npm run mutate:unit`, after tests were added) without rerunning the servers' tests for
// every mutant; bench/mutation.md names both runs.
import { readFileSync, writeFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';

if (process.argv[2] === '--survivors') {
  const report = JSON.parse(readFileSync(process.argv[3], 'utf8'));
  // Only these files (the run's --mutate, ranges cut off; not when it holds a glob), when
  // given: a report seeded from a whole incremental file lists every file of it.
  const only =
    process.argv[4] && !/[*?{[!]/.test(process.argv[4])
      ? new Set(process.argv[4].split(',').map((spec) => spec.replace(/:\d+:\d+-\d+:\d+$/, '')))
      : undefined;
  const ranges = [];
  for (const [name, file] of Object.entries(report.files)) {
    const path = relative(process.cwd(), resolve(name));
    if (only && !only.has(path)) continue;
    for (const { status, location: at } of file.mutants) {
      if (status !== 'Survived' && status !== 'NoCoverage') continue;
      // The report's columns count from 1, a range's start column from 0 (its end column is included).
      ranges.push(
        `${path}:${at.start.line}:${at.start.column - 1}-${at.end.line}:${at.end.column}`,
      );
    }
  }
  process.stdout.write(ranges.join(','));
  process.exit(0);
}

if (process.argv[2] === '--trim') {
  // --trim REPORT FILES PROJECTS OUT: the mutants of FILES (comma-separated paths) from REPORT,
  // with only what a union needs, saying which projects ran (bench/mutation/servers/).
  const [reportFile, paths, projects, out] = process.argv.slice(3);
  const report = JSON.parse(readFileSync(reportFile, 'utf8'));
  const keep = ['id', 'mutatorName', 'replacement', 'location', 'status', 'statusReason'];
  const files = {};
  for (const path of paths.split(',')) {
    const file = report.files[path];
    if (!file) throw new Error(`${reportFile} has no ${path}`);
    files[path] = {
      language: file.language,
      source: file.source,
      mutants: file.mutants.map((m) =>
        Object.fromEntries(keep.filter((k) => k in m).map((k) => [k, m[k]])),
      ),
    };
  }
  const trimmed = {
    schemaVersion: report.schemaVersion,
    thresholds: report.thresholds,
    projects: projects.split(','),
    files,
  };
  writeFileSync(out, `${JSON.stringify(trimmed, null, 1)}\n`);
  process.exit(0);
}

const args = process.argv.slice(2);
// --older-projects a,b: the projects OLDER ran (when the report does not say it itself).
const flag = args.indexOf('--older-projects');
const olderProjects = flag === -1 ? undefined : args.splice(flag, 2)[1].split(',');
const [olderFile, newerFile, outFile] = args;
if (!outFile) {
  console.error(
    'usage: node scripts/mutation-union.mjs [--older-projects a,b] OLDER.json NEWER.json OUT.json',
  );
  process.exit(2);
}
const older = JSON.parse(readFileSync(olderFile, 'utf8'));
const newer = JSON.parse(readFileSync(newerFile, 'utf8'));

const RANK = { Killed: 3, Timeout: 3, Survived: 1, NoCoverage: 0 };
const keyOf = (m) =>
  [
    m.mutatorName,
    m.replacement,
    m.location.start.line,
    m.location.start.column,
    m.location.end.line,
    m.location.end.column,
  ].join(':');

let upgraded = 0;
let changedFiles = 0;
// The files OUT scores with both runs' tests (kept across successive unions; bench/mutation.md
// names them), and with which projects: a report may say its own (`"projects": [...]`, as the
// trimmed runs in bench/mutation/servers/ do); one that does not is a unit + integration run.
const measured = new Set(newer.unionMeasured ?? []);
const projectsOf = { ...(newer.unionProjects ?? {}) };
const projectList = (report) => olderProjects ?? report.projects ?? ['unit', 'integration'];
for (const [name, file] of Object.entries(newer.files)) {
  const before = older.files[name];
  if (!before || before.source !== file.source) {
    changedFiles++;
    continue;
  }
  const path = name.replace(/^.*?(shared\/)/, '$1');
  measured.add(path);
  projectsOf[path] = [
    ...new Set([...(projectsOf[path] ?? newer.projects ?? ['unit']), ...projectList(older)]),
  ];
  const earlier = new Map(before.mutants.map((m) => [keyOf(m), m]));
  for (const mutant of file.mutants) {
    const other = earlier.get(keyOf(mutant));
    if (!other || !(mutant.status in RANK) || !(other.status in RANK)) continue;
    if (RANK[other.status] > RANK[mutant.status]) {
      mutant.status = other.status;
      mutant.killedBy = other.killedBy;
      mutant.statusReason = `detected by the older run (${olderFile})`;
      upgraded++;
    }
  }
}
newer.unionMeasured = [...measured].sort();
newer.unionProjects = projectsOf;
writeFileSync(outFile, JSON.stringify(newer));
console.log(
  `mutation union: ${upgraded} mutant(s) detected only by ${olderFile}; ${changedFiles} file(s) absent from the older run or changed since, taken from ${newerFile} alone; wrote ${outFile}`,
);
