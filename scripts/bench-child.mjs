// One process, one job, for scripts/bench.ts: runs rotation steps of a built function against
// the Secrets Manager endpoint in the environment and prints what it measured as JSON.
//   node scripts/bench-child.mjs <bundle-or-source-url> <secret-arn> <token> <step,step,...>
import { createRequire } from 'node:module';

const [target, secretId, token, steps] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const driverLoaded = () =>
  Object.keys(require.cache).some((file) =>
    /[/\\]node_modules[/\\](pg|mysql2|mongodb)[/\\]/.test(file),
  );

const { handler } = await import(target);
const loadedAfter = {};
for (const step of steps.split(',')) {
  await handler(
    { Step: step, SecretId: secretId, ClientRequestToken: token },
    { getRemainingTimeInMillis: () => 30_000 },
  );
  loadedAfter[step] = driverLoaded();
}
process.stdout.write(
  `${JSON.stringify({ loadedAfter, maxRssKiB: process.resourceUsage().maxRSS })}\n`,
);
