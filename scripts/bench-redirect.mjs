// Sends a built API-key function's provider calls to the provider's local fake, so the bench
// measures the real bundle (the bundle itself always calls the real provider).
//   BENCH_REDIRECT='{"https://api.stripe.com":"http://127.0.0.1:4242"}' node --import ./scripts/bench-redirect.mjs …
// The bundle's HTTP client calls the global fetch at call time, so wrapping it is enough.

/** Rewrites requests to each origin of `map` (origin → origin) before they leave the process. */
export function installRedirect(map) {
  const original = globalThis.fetch;
  globalThis.fetch = (input, init) => {
    const url = typeof input === 'string' || input instanceof URL ? String(input) : input.url;
    const origin = new URL(url).origin;
    const to = map[origin];
    if (to === undefined) return original(input, init);
    const target = to + url.slice(origin.length);
    return original(
      typeof input === 'string' || input instanceof URL ? target : new Request(target, input),
      init,
    );
  };
}

if (process.env.BENCH_REDIRECT) installRedirect(JSON.parse(process.env.BENCH_REDIRECT));
