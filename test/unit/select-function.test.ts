import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../shared/common/errors.js';
import { bundledFunctions, loadRotationHandler } from '../../shared/rotation/select-function.js';

// A code package as sam build lays it out: index.mjs (the entry point) and <name>/index.mjs.
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'select-function-'));
  const bundle = (name: string, source: string) => {
    mkdirSync(path.join(dir, name));
    writeFileSync(path.join(dir, name, 'index.mjs'), source);
  };
  bundle('alpha-single-user', "export const handler = async () => 'alpha';");
  bundle('beta-api-key', "export const handler = async () => 'beta';");
  bundle('no-handler', 'export const other = 1;');
  mkdirSync(path.join(dir, 'empty-folder'));
  // Not function folders: a name that is not kebab-case (a chunk folder, an upper-case copy).
  bundle('Shared_Chunks', "export const handler = async () => 'chunk';");
  bundle('Alpha-Single-User', "export const handler = async () => 'copy';");
  writeFileSync(path.join(dir, 'loose-file'), '');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the entry point loads the function the stack deploys', () => {
  it('lists the bundles beside it, and only folders named like a function', () => {
    expect(bundledFunctions(dir)).toEqual(['alpha-single-user', 'beta-api-key', 'no-handler']);
  });

  it('returns the handler of the function ROTATION_FUNCTION names, and only that one', async () => {
    const alpha = await loadRotationHandler('alpha-single-user', dir);
    const beta = await loadRotationHandler(' beta-api-key ', dir);
    expect(await (alpha as unknown as () => Promise<string>)()).toBe('alpha');
    expect(await (beta as unknown as () => Promise<string>)()).toBe('beta');
  });

  it.each([
    [undefined, '""'],
    ['', '""'],
    ['gamma', '"gamma"'],
    ['../alpha-single-user', '"../alpha-single-user"'],
    ['empty-folder', '"empty-folder"'],
  ])('fails at cold start, naming the variable and the choices, for %j', async (name, shown) => {
    const failure = await loadRotationHandler(name, dir).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ConfigurationError);
    expect((failure as Error).message).toBe(
      `environment variable ROTATION_FUNCTION must name a function in this package (alpha-single-user, beta-api-key, no-handler), got ${shown}`,
    );
  });

  it('fails when the bundle exports no handler', async () => {
    await expect(loadRotationHandler('no-handler', dir)).rejects.toThrow(
      'no-handler/index.mjs exports no handler function',
    );
  });
});
