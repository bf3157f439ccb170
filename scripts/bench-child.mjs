// One process, one job, for scripts/bench.ts: runs rotation steps of a built function against
// the Secrets Manager endpoint in the environment and prints what it measured as JSON.
//   node scripts/bench-child.mjs <bundle-or-source-url> <secret-arn> <token> <step,step,...>
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const [target, secretId, token, steps] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const driverLoaded = () =>
  Object.keys(require.cache).some((file) =>
    /[/\\]node_modules[/\\](pg|mysql2|mongodb)[/\\]/.test(file),
  );

/**
 * This process's peak resident memory in KiB. Not getrusage's maxRSS: on Linux that survives
 * execve, and a child forked from a large parent starts out with the parent's resident size, so
 * it would report the bench's own memory. VmHWM is the high-water mark of this process image
 * alone. Elsewhere maxRSS is the fallback.
 */
function peakRssKiB() {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
    if (match) return Number(match[1]);
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS;
}

const { handler } = await import(target);
const loadedAfter = {};
for (const step of steps.split(',')) {
  await handler(
    { Step: step, SecretId: secretId, ClientRequestToken: token },
    { getRemainingTimeInMillis: () => 30_000 },
  );
  loadedAfter[step] = driverLoaded();
}
process.stdout.write(`${JSON.stringify({ loadedAfter, maxRssKiB: peakRssKiB() })}\n`);
