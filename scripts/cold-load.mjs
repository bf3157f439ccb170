#!/usr/bin/env node
// Measures the cold load of every built bundle (dist/<name>/index.mjs, see `npm run build`): each
// sample is a fresh `node` process that times, from the inside, `await import()` of the bundle
// (which runs its top level: SDK clients, Powertools, handler factory). A baseline child that
// imports only @aws-sdk/client-secrets-manager (unbundled, from node_modules) and constructs a
// client runs in the same rounds, interleaved with the bundles, so machine noise hits all alike.
//
//   npm run cold-load                       15 samples of each
//   npm run cold-load -- --runs 40          more samples
//   npm run cold-load -- --warmup 2 postgres-single-user
//
// Exits non-zero only when a child fails (bundle missing or throwing at import), never because
// something is slow: these numbers depend on the machine and are for comparison, not a gate.

import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const distDir = path.join(root, 'dist');
export const BASELINE = 'baseline: client-secrets-manager';

// The child: as little as possible before t0, then one import, then the numbers on stdout.
const CHILD = `
const [kind, target] = process.argv.slice(-2);
const t0 = performance.now();
if (kind === 'baseline') {
  const { SecretsManagerClient } = await import('@aws-sdk/client-secrets-manager');
  new SecretsManagerClient({});
} else {
  const mod = await import(target);
  if (typeof mod.handler !== 'function') throw new Error(target + ' exports no handler function');
}
const t1 = performance.now();
process.stdout.write(JSON.stringify({ importMs: t1 - t0, bootMs: t0, rss: process.memoryUsage().rss }) + '\\n');
`;

function parseArgs(argv) {
  const options = { runs: 15, warmup: 1, names: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes('=') ? arg.split(/=(.*)/s) : [arg, undefined];
    if (flag === '--runs' || flag === '--warmup') {
      const raw = inline ?? argv[++i];
      const value = Number(raw);
      const min = flag === '--runs' ? 1 : 0;
      if (!Number.isInteger(value) || value < min) {
        throw new Error(`${flag} needs a whole number >= ${min}, got ${JSON.stringify(raw)}`);
      }
      options[flag.slice(2)] = value;
    } else if (flag === '--help' || flag === '-h') {
      console.log('usage: node scripts/cold-load.mjs [--runs N] [--warmup N] [function ...]');
      process.exit(0);
    } else if (flag.startsWith('-')) {
      throw new Error(`unknown option ${arg}`);
    } else {
      options.names.push(arg);
    }
  }
  return options;
}

export function discoverBundles(names) {
  const built = existsSync(distDir)
    ? readdirSync(distDir, { withFileTypes: true })
        .filter((e) => e.isDirectory() && existsSync(path.join(distDir, e.name, 'index.mjs')))
        .map((e) => e.name)
        .sort()
    : [];
  const missing = names.filter((n) => !built.includes(n));
  if (missing.length > 0) {
    throw new Error(`not built: ${missing.join(', ')} (run npm run build first)`);
  }
  const chosen = names.length > 0 ? names : built;
  if (chosen.length === 0) throw new Error('no dist/*/index.mjs: run `npm run build` first');
  return chosen.map((name) => ({
    name,
    kind: 'bundle',
    target: pathToFileURL(path.join(distDir, name, 'index.mjs')).href,
  }));
}

/** Runs one child; resolves its numbers plus the wall time seen from here. */
export function sample({ kind, target }) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(
      process.execPath,
      ['--no-warnings', '--input-type=module', '-e', CHILD, kind, target],
      {
        cwd: root,
        // Same settings as the Lambda function gets, so the top level runs as it would there;
        // nothing here makes a network call at import.
        env: {
          ...process.env,
          AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
          POWERTOOLS_METRICS_NAMESPACE: 'SecretsRotation',
          POWERTOOLS_LOG_LEVEL: 'WARN',
          // The Stripe function refuses to load without a preview Stripe-Version (README).
          STRIPE_API_VERSION: process.env.STRIPE_API_VERSION ?? '2026-09-30.preview',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = performance.now() - started;
      const line = stdout.trim().split('\n').at(-1) ?? '';
      if (code !== 0) {
        reject(new Error(`${target}: child exited with ${code}\n${stderr.trim()}`));
        return;
      }
      try {
        resolve({ ...JSON.parse(line), wallMs });
      } catch {
        reject(
          new Error(`${target}: unreadable child output ${JSON.stringify(stdout)}\n${stderr}`),
        );
      }
    });
  });
}

const quantile = (sorted, q) =>
  sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
export const median = (sorted) =>
  sorted.length % 2 === 1
    ? sorted[(sorted.length - 1) / 2]
    : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;

export function printTable(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) =>
    cells
      .map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i])))
      .join('  ');
  console.log(line(headers));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const targets = [
    { name: BASELINE, kind: 'baseline', target: 'baseline' },
    ...discoverBundles(options.names),
  ];
  const samples = new Map(targets.map((t) => [t.name, []]));

  console.log(
    `cold load: ${options.runs} fresh node ${process.version} processes per target ` +
      `(+${options.warmup} warm-up each), interleaved`,
  );
  for (let round = 0; round < options.warmup + options.runs; round++) {
    // Rotate the order every round so no target always runs first (or right after another).
    const order = targets.map((_, i) => targets[(i + round) % targets.length]);
    for (const target of order) {
      const result = await sample(target);
      if (round >= options.warmup) samples.get(target.name).push(result);
    }
    process.stdout.write(round < options.warmup ? 'w' : '.');
  }
  process.stdout.write('\n\n');

  const baselineMedian = median(
    samples
      .get(BASELINE)
      .map((s) => s.importMs)
      .sort((a, b) => a - b),
  );
  const rows = targets.map(({ name }) => {
    const list = samples.get(name);
    const imports = list.map((s) => s.importMs).sort((a, b) => a - b);
    const walls = list.map((s) => s.wallMs).sort((a, b) => a - b);
    const rss = list.map((s) => s.rss).sort((a, b) => a - b);
    const med = median(imports);
    return [
      name,
      med.toFixed(1),
      quantile(imports, 0.9).toFixed(1),
      imports[0].toFixed(1),
      `${(med / baselineMedian).toFixed(2)}x`,
      median(walls).toFixed(0),
      (median(rss) / 2 ** 20).toFixed(1),
    ];
  });
  printTable(
    ['target', 'import median ms', 'p90 ms', 'min ms', 'vs baseline', 'process wall ms', 'RSS MiB'],
    rows,
  );
  console.log(
    '\nimport = await import() inside the child (performance.now); process wall = spawn to exit, ' +
      'seen from the parent (includes node start-up).',
  );
}

// Run as a script, not when imported (scripts/bench.ts reuses the sampling).
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((error) => {
    console.error(`cold-load failed: ${error instanceof Error ? error.message : error}`);
    process.exit(1);
  });
}
