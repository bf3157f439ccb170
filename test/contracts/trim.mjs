#!/usr/bin/env node
// Reproduces a pinned excerpt of a provider's OpenAPI document from the full upstream file:
//   node test/contracts/trim.mjs [--stub a,b] <full.json> <out.json> "GET /path" "POST /path" ...
// Keeps openapi, info, servers, security, every securityScheme, the listed operations (with their
// path item's parameters and servers) and every component they reference, transitively.
// --stub replaces the named components by a schema that accepts anything, and does not follow
// them: for objects an answer may embed but no adapter sends or reads (Stripe's card-error
// objects inside every error), whose closure is most of the document.
// Prints the sha256 of the input so it can be compared with manifest.json.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

const args = process.argv.slice(2);
const stubs = new Set(args[0] === '--stub' ? (args.splice(0, 2)[1] ?? '').split(',') : []);
const [input, output, ...operations] = args;
if (!input || !output || operations.length === 0) {
  console.error('usage: trim.mjs <full.json> <out.json> "METHOD /path" ...');
  process.exit(2);
}
const text = readFileSync(input);
const sha256 = createHash('sha256').update(text).digest('hex');
const full = JSON.parse(text.toString('utf8'));

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
writeFileSync(output, `${JSON.stringify(trimmed, null, 2)}\n`);
console.log(`${sha256}  ${input}`);
