import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { provided } from '../support/servers.js';

/**
 * The soak (`npm run soak`) is what says "no outage": it must fail when a rotation costs an
 * application something it promised not to. Two short runs on PostgreSQL: a clean one, and one
 * whose rotation also ends the user's other sessions (SOAK_SABOTAGE=end-sessions).
 */
describe('the soak (applications under rotation)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'soak-test-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function soak(out: string, env: Record<string, string> = {}) {
    return new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [
          '--import',
          'tsx',
          'scripts/soak.ts',
          '--only',
          'postgres',
          '--rotations',
          '2',
          '--out',
          out,
        ],
        {
          env: { ...process.env, PG_ADMIN_URL: provided('pgAdminUrl'), ...env },
          timeout: 240_000,
        },
        (error, _stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stderr }),
      );
    });
  }

  it('passes, with every pooled connection alive, when the rotation leaves sessions alone', async () => {
    const out = join(dir, 'clean.md');
    const run = await soak(out);
    const table = await readFile(out, 'utf8');
    expect(run.code, run.stderr).toBe(0);
    // Six rows: both strategies × wrapper, Powertools, naive; every promised zero holds.
    const rows = table.split('\n').filter((line) => line.startsWith('| postgres |'));
    expect(rows).toHaveLength(6);
    for (const row of rows) expect(row).toMatch(/\| (yes|-) \|$/);
    expect(table).toMatch(/\| postgres \| single user \| powertools \| 2 \|/);
    // The baseline shows the cost of never re-reading: its new sign-ins fail.
    expect(table).toMatch(/\| postgres \| single user \| naive \| 2 \| \d+ \| [1-9]\d* \|/);
  });

  it('fails and names the lost pooled connections when the rotation ends the user’s sessions', async () => {
    const out = join(dir, 'sabotaged.md');
    const run = await soak(out, { SOAK_SABOTAGE: 'end-sessions' });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/single user (wrapper|powertools|naive): .*pooled connections lost/);
    const table = await readFile(out, 'utf8');
    expect(table).toMatch(
      /\| postgres \| single user \| powertools \| .*\*\*no\*\*: .*pooled connections lost/,
    );
  });
});
