import { afterAll, beforeAll, expect } from 'vitest';
import { capturedLineCount, leaks, rememberOutput } from './leak-guard.js';

/**
 * Runs in every test file: captures everything written to stdout, stderr and the console, and
 * fails the file if any value a fake ever stored (a password, an API key) appears in it.
 */
const restore: (() => void)[] = [];

beforeAll(() => {
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream);
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      rememberOutput(String(chunk));
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof stream.write;
    restore.push(() => {
      stream.write = write as typeof stream.write;
    });
  }
  for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    const original = console[level];
    console[level] = (...args: unknown[]) => {
      rememberOutput(
        args.map((arg) => (typeof arg === 'string' ? arg : safeString(arg))).join(' '),
      );
      original.apply(console, args);
    };
    restore.push(() => {
      console[level] = original;
    });
  }
});

function safeString(value: unknown): string {
  try {
    return value instanceof Error
      ? `${value.message}\n${value.stack ?? ''}`
      : JSON.stringify(value);
  } catch {
    return String(value);
  }
}

afterAll(() => {
  for (const undo of restore.splice(0)) undo();
  expect(leaks(), `secret values in ${capturedLineCount()} captured lines`).toEqual([]);
});
