// The Lambda entry point of every stack (template.yaml: Handler index.handler): loads the one
// function the stack deploys, named by ROTATION_FUNCTION, from the bundles sam build puts beside
// this file. See shared/rotation/select-function.ts.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadRotationHandler } from '../shared/rotation/select-function.js';

export const handler = await loadRotationHandler(
  process.env.ROTATION_FUNCTION,
  path.dirname(fileURLToPath(import.meta.url)),
);
