import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigurationError } from '../common/errors.js';
import type { RotationHandler } from './handler.js';

/** A function folder's name: kebab-case, as in functions/<name>/. */
const FUNCTION_NAME = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/** The function bundles beside the entry point: every `<name>/index.mjs` in `directory`. */
export function bundledFunctions(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && FUNCTION_NAME.test(entry.name))
    .filter((entry) => existsSync(path.join(directory, entry.name, 'index.mjs')))
    .map((entry) => entry.name)
    .sort();
}

/**
 * Loads the handler of the one function a stack deploys. `sam build` bundles every
 * functions/<name>/index.ts into `<name>/index.mjs` beside the entry point (functions/index.ts);
 * the template sets ROTATION_FUNCTION to the stack's RotationFunction parameter. Only that
 * bundle is loaded, so a cold start costs what the single function costs. A name that is not in
 * the package fails at cold start, naming the variable and the functions it may be.
 *
 * @example
 * export const handler = await loadRotationHandler(process.env.ROTATION_FUNCTION, here);
 */
export async function loadRotationHandler(
  name: string | undefined,
  directory: string,
): Promise<RotationHandler> {
  const available = bundledFunctions(directory);
  const wanted = name?.trim() ?? '';
  if (!FUNCTION_NAME.test(wanted) || !available.includes(wanted)) {
    throw new ConfigurationError(
      `environment variable ROTATION_FUNCTION must name a function in this package (${available.join(', ') || 'none found'}), got ${JSON.stringify(wanted)}`,
    );
  }
  const loaded: { handler?: unknown } = await import(
    pathToFileURL(path.join(directory, wanted, 'index.mjs')).href
  );
  if (typeof loaded.handler !== 'function') {
    throw new ConfigurationError(`${wanted}/index.mjs exports no handler function`);
  }
  return loaded.handler as RotationHandler;
}
