/**
 * A fetch for the provider adapters' unit tests: it records every request as the provider would
 * receive it (URL, method, lower-cased headers, body) and answers from a script, in order. An
 * answer may be an HTTP answer, a network failure (an Error, thrown as fetch throws it), or a
 * function of the request. Nothing leaves the process.
 */
import { LogRecorder } from './log-recorder.js';

export interface SentRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string | undefined;
  redirect: RequestInit['redirect'];
}

export interface ScriptedAnswer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type Answer = ScriptedAnswer | Error | ((request: SentRequest) => ScriptedAnswer | Error);

export function recordingFetch(answers: Answer[]) {
  const sent: SentRequest[] = [];
  const fetch = async (url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request: SentRequest = {
      url: String(url),
      method: init?.method ?? 'GET',
      headers: Object.fromEntries(
        Object.entries((init?.headers ?? {}) as Record<string, string>).map(([k, v]) => [
          k.toLowerCase(),
          v,
        ]),
      ),
      body: typeof init?.body === 'string' ? init.body : undefined,
      redirect: init?.redirect,
    };
    sent.push(request);
    const next = answers.shift();
    if (next === undefined) throw new Error(`recordingFetch: no answer left for ${request.url}`);
    const answer = typeof next === 'function' ? next(request) : next;
    if (answer instanceof Error) throw answer;
    return new Response(answer.body === undefined ? null : JSON.stringify(answer.body), {
      status: answer.status,
      headers: { 'content-type': 'application/json', ...answer.headers },
    });
  };
  return { fetch, sent };
}

/** A step's call context: 30 s left, a log, and the values registered for redaction. */
export function callContext(remainingMs = 30_000) {
  const redacted: string[] = [];
  return {
    logger: new LogRecorder(),
    remainingMs: () => remainingMs,
    redact: (value: string) => void redacted.push(value),
    redacted,
  };
}

/** A fetch failure as undici reports it: a TypeError whose cause carries the code. */
export const networkError = (code: string) =>
  Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error(code), { code }) });

/** HTTP client settings for tests: the scripted fetch, no real waiting. */
export const noWait = (
  fetch: typeof globalThis.fetch | ReturnType<typeof recordingFetch>['fetch'],
) => ({
  fetch: fetch as typeof globalThis.fetch,
  sleep: async () => {},
  random: () => 0.5,
});

/** What a promise rejected with (fails the test when it resolved). */
export async function failureOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a failure, but the call succeeded');
}
