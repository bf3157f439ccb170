#!/usr/bin/env node
// Reproduces a pinned excerpt of a provider's OpenAPI document from the full upstream file:
//   node test/contracts/trim.mjs [--stub a,b] [--check] [--pieces manifest.json] \
//     <full.json> <out.json> "GET /path" "POST /path" ...
// Keeps openapi, info, servers, security, every securityScheme, the listed operations (with their
// path item's parameters and servers) and every component they reference, transitively.
// --stub replaces the named components by a schema that accepts anything, and does not follow
// them: for objects an answer may embed but no adapter sends or reads (Stripe's card-error
// objects inside every error), whose closure is most of the document.
// --check compares the excerpt with <out.json> instead of writing it, and fails on a difference.
// --pieces checks, before anything else, that the full file holds at each recorded offset the
// text the manifest entry of <out.json> records (length and sha256 of every piece copied by hand
// from paged reads: Unicode code-point offsets, as the paging tool counted them).
// Prints the sha256 of the input so it can be compared with manifest.json.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';

const args = process.argv.slice(2);
let stubs = new Set();
let check = false;
let piecesFrom;
while (args[0]?.startsWith('--')) {
  const option = args.shift();
  if (option === '--stub') stubs = new Set((args.shift() ?? '').split(','));
  else if (option === '--check') check = true;
  else if (option === '--pieces') piecesFrom = args.shift();
  else {
    console.error(`unknown option ${option}`);
    process.exit(2);
  }
}
const [input, output, ...operations] = args;
if (!input || !output || operations.length === 0) {
  console.error(
    'usage: trim.mjs [--stub a,b] [--check] [--pieces manifest.json] <full.json> <out.json> "METHOD /path" ...',
  );
  process.exit(2);
}
const text = readFileSync(input);
const sha256 = createHash('sha256').update(text).digest('hex');
const source = text.toString('utf8');

if (piecesFrom) {
  const manifest = JSON.parse(readFileSync(piecesFrom, 'utf8'));
  const entry = manifest.documents.find((document) => document.file === basename(output));
  if (!entry?.pieces) {
    console.error(`${piecesFrom}: no pieces recorded for ${basename(output)}`);
    process.exit(2);
  }
  // Code-point offsets to UTF-16 indexes, in one pass over the file.
  const wanted = [
    ...new Set(entry.pieces.flatMap((piece) => [piece.offset, piece.offset + piece.length])),
  ].sort((a, b) => a - b);
  const index = new Map();
  let codePoints = 0;
  let i = 0;
  for (const target of wanted) {
    while (codePoints < target && i < source.length) {
      const unit = source.charCodeAt(i);
      i += unit >= 0xd800 && unit <= 0xdbff ? 2 : 1;
      codePoints++;
    }
    index.set(target, codePoints === target ? i : -1);
  }
  let total = codePoints;
  for (let j = i; j < source.length; total++) {
    const unit = source.charCodeAt(j);
    j += unit >= 0xd800 && unit <= 0xdbff ? 2 : 1;
  }
  if (entry.total_chars !== undefined && total !== entry.total_chars) {
    console.error(`${input}: ${total} code points, the manifest records ${entry.total_chars}`);
    process.exit(1);
  }
  let bad = 0;
  for (const piece of entry.pieces) {
    const from = index.get(piece.offset);
    const to = index.get(piece.offset + piece.length);
    const slice = from < 0 || to < 0 ? '' : source.slice(from, to);
    const digest = createHash('sha256').update(slice, 'utf8').digest('hex');
    const ok = digest === piece.sha256;
    if (!ok) bad++;
    console.log(`${ok ? 'same' : 'DIFFERS'}  ${piece.offset}+${piece.length}  ${piece.what}`);
  }
  if (bad > 0) {
    console.error(`${bad} of ${entry.pieces.length} pieces differ from ${input}`);
    process.exit(1);
  }
}
const full = JSON.parse(source);

const paths = {};
for (const operation of operations) {
  const [method, path] = operation.split(' ');
  const item = full.paths?.[path];
  const op = item?.[method.toLowerCase()];
  if (!op) {
    console.error(`${input}: no operation ${operation}`);
    process.exit(1);
  }
  paths[path] ??= Object.fromEntries(
    Object.entries(item).filter(([key]) =>
      ['parameters', 'servers', 'summary', 'description'].includes(key),
    ),
  );
  paths[path][method.toLowerCase()] = op;
}

// Transitive closure of "#/components/<kind>/<name>" references.
const components = {};
const pending = [paths];
const seen = new Set();
const visit = (value) => {
  if (Array.isArray(value)) value.forEach(visit);
  else if (value && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      if (key === '$ref' && typeof child === 'string' && child.startsWith('#/components/')) {
        if (!seen.has(child)) {
          seen.add(child);
          const [, , kind, ...rest] = child.split('/');
          const name = rest.join('/').replace(/~1/g, '/').replace(/~0/g, '~');
          const target = full.components?.[kind]?.[name];
          if (target === undefined) throw new Error(`${input}: dangling ${child}`);
          components[kind] ??= {};
          if (stubs.has(name)) {
            components[kind][name] = { description: `${name}: stubbed by trim.mjs --stub` };
          } else {
            components[kind][name] = target;
            pending.push(target);
          }
        }
      } else visit(child);
    }
  }
};
while (pending.length > 0) visit(pending.pop());
if (full.components?.securitySchemes) {
  components.securitySchemes = full.components.securitySchemes;
}
const sorted = (object) =>
  Object.fromEntries(
    Object.keys(object)
      .sort()
      .map((key) => [key, object[key]]),
  );
for (const kind of Object.keys(components)) components[kind] = sorted(components[kind]);

const trimmed = {
  openapi: full.openapi,
  info: full.info,
  ...(full.servers ? { servers: full.servers } : {}),
  ...(full.security ? { security: full.security } : {}),
  paths,
  components: sorted(components),
};
const result = `${JSON.stringify(trimmed, null, 2)}\n`;
if (check) {
  const pinned = readFileSync(output, 'utf8');
  if (pinned !== result) {
    console.error(`${output} differs from the excerpt of ${input}`);
    process.exit(1);
  }
  console.log(`${output}: same as the excerpt of ${input}`);
} else {
  writeFileSync(output, result);
}
console.log(`${sha256}  ${input}`);
