// `node --import ./scripts/record-loads.mjs …`: appends the URL of every module Node loads to the
// file named by RECORD_LOADS_FILE, one a line (scripts/sam-artifact-check.ts reads it).
import { register } from 'node:module';

if (process.env.RECORD_LOADS_FILE) {
  register('./record-loads-hooks.mjs', import.meta.url, {
    data: { file: process.env.RECORD_LOADS_FILE },
  });
}
