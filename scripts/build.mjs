#!/usr/bin/env node
// Bundles every rotation function (functions/<name>/index.ts) into dist/<name>/index.mjs with
// the same esbuild options template.yaml gives `sam build` (see BuildProperties there), then
// prints the bundle sizes.
//
//   npm run build                      all functions
//   npm run build -- --analyze         also list the largest packages inside each bundle
//   npm run build -- postgres-single-user [...]   only these functions
//
// The one intended difference from template.yaml: target node20 here (so the bundles also run on
// Node 20, the oldest the project supports) instead of node24 (the Lambda runtime).
// Each bundle's esbuild metafile is written to dist/<name>/meta.json; drop it into
// https://esbuild.github.io/analyze/ to see what is inside.

import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const functionsDir = path.join(root, 'functions');
const distDir = path.join(root, 'dist');

// pg is CommonJS and require()s node builtins; in an ESM bundle esbuild's require shim needs a
// real `require`, which this banner provides. Keep it byte-identical to template.yaml's Banner.
export const BANNER =
  "import { createRequire } from 'module'; const require = createRequire(import.meta.url);";

/** The options shared with template.yaml's BuildProperties (there: Target es2022 + node24). */
export const sharedOptions = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: ['es2022', 'node20'],
  minify: true,
  // The database driver, imported only by setSecret and testSecret, goes to a chunk of its own:
  // createSecret and finishSecret (and every cold start) parse only the index file.
  splitting: true,
  sourcemap: false,
  banner: { js: BANNER },
  legalComments: 'none',
  logLevel: 'warning',
};

/** Every functions/<name>/index.ts, sorted by name. */
export function discoverFunctions() {
  if (!existsSync(functionsDir)) return [];
  return readdirSync(functionsDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .filter((name) => existsSync(path.join(functionsDir, name, 'index.ts')))
    .sort();
}

const kib = (bytes) => (bytes / 1024).toFixed(1);

function printTable(headers, rows, rightAligned) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) =>
    cells
      .map((c, i) =>
        rightAligned.has(i) ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i]),
      )
      .join('  ');
  console.log(line(headers));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
}

/** Sums a metafile's output bytes by npm package (or "(project)" for our own code). */
function bytesByPackage(metafile, outfile) {
  const output = Object.entries(metafile.outputs).find(
    ([file]) => path.resolve(root, file) === outfile,
  )?.[1];
  const totals = new Map();
  for (const [input, { bytesInOutput }] of Object.entries(output?.inputs ?? {})) {
    const match = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
    const name = match ? match[1] : '(project)';
    totals.set(name, (totals.get(name) ?? 0) + bytesInOutput);
  }
  return [...totals.entries()].sort((a, b) => b[1] - a[1]);
}

/** Warns when template.yaml and this script have drifted apart. */
function checkTemplate(names) {
  const templatePath = path.join(root, 'template.yaml');
  if (!existsSync(templatePath)) return;
  const template = readFileSync(templatePath, 'utf8');
  if (!template.includes(BANNER)) {
    console.warn(
      'warning: template.yaml does not carry the same esbuild Banner as scripts/build.mjs',
    );
  }
  for (const name of names) {
    if (!template.includes(`functions/${name}/index.ts`)) {
      console.warn(
        `warning: functions/${name}/index.ts has no function in template.yaml (EntryPoints)`,
      );
    }
  }
}

async function main() {
  const args = process.argv.slice(2);
  const analyze = args.includes('--analyze');
  const wanted = args.filter((a) => !a.startsWith('--'));
  const all = discoverFunctions();
  const unknown = wanted.filter((name) => !all.includes(name));
  if (unknown.length > 0) {
    throw new Error(
      `no functions/<name>/index.ts for: ${unknown.join(', ')} (have: ${all.join(', ')})`,
    );
  }
  const names = wanted.length > 0 ? wanted : all;
  if (names.length === 0) throw new Error('no functions/*/index.ts found');
  checkTemplate(names);

  const started = performance.now();
  const results = await Promise.all(
    names.map(async (name) => {
      const outDir = path.join(distDir, name);
      rmSync(outDir, { recursive: true, force: true });
      const outfile = path.join(outDir, 'index.mjs');
      const result = await esbuild.build({
        ...sharedOptions,
        absWorkingDir: root,
        entryPoints: [path.join(functionsDir, name, 'index.ts')],
        outdir: outDir,
        outExtension: { '.js': '.mjs' },
        metafile: true,
      });
      writeFileSync(path.join(outDir, 'meta.json'), JSON.stringify(result.metafile));
      const code = readFileSync(outfile);
      return {
        name,
        outfile,
        raw: code.length,
        gzip: gzipSync(code, { level: 9 }).length,
        packages: bytesByPackage(result.metafile, outfile),
        warnings: result.warnings.length,
      };
    }),
  );
  const elapsed = performance.now() - started;

  console.log(
    `\nBundled ${results.length} function(s) in ${(elapsed / 1000).toFixed(2)} s (esbuild ${esbuild.version}, target ${sharedOptions.target.join('+')})\n`,
  );
  printTable(
    ['function', 'bundle', 'bytes', 'KiB', 'gzip bytes', 'gzip KiB', 'warnings'],
    results.map((r) => [
      r.name,
      path.relative(root, r.outfile),
      r.raw,
      kib(r.raw),
      r.gzip,
      kib(r.gzip),
      r.warnings,
    ]),
    new Set([2, 3, 4, 5, 6]),
  );

  if (analyze) {
    for (const r of results) {
      console.log(`\n${r.name}: largest packages (bytes in the minified bundle)`);
      printTable(
        ['package', 'bytes', 'KiB', 'share'],
        r.packages
          .slice(0, 15)
          .map(([pkg, bytes]) => [
            pkg,
            bytes,
            kib(bytes),
            `${((100 * bytes) / r.raw).toFixed(1)}%`,
          ]),
        new Set([1, 2, 3]),
      );
    }
  } else {
    console.log(
      '\n(npm run build -- --analyze lists the largest packages; metafiles: dist/<name>/meta.json)',
    );
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
