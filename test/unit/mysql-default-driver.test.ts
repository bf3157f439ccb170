import { describe, expect, it, vi } from 'vitest';
import { createMysql } from '../../shared/databases/mysql.js';

const fake = vi.hoisted(() => ({ configs: [] as unknown[], statements: [] as string[] }));

// A bundle that puts mysql2 in a chunk of its own gives the CommonJS exports only as `default`.
vi.mock('mysql2/promise', async () => {
  const mysql = (await import('mysql2')).default;
  const client = {
    async query({ sql, values }: { sql: string; values?: unknown[] }) {
      fake.statements.push(mysql.format(sql, (values ?? []) as never[]));
      return [[{ version: '8.0.36', account: 'app@%', sqlMode: '' }], undefined];
    },
    end: async () => {},
    destroy: () => {},
    on: () => client,
  };
  return {
    default: {
      createConnection: async (config: unknown) => {
        fake.configs.push(config);
        return client;
      },
      escape: mysql.escape,
      escapeId: mysql.escapeId,
    },
  };
});

describe('mysql default driver', () => {
  it('loads mysql2 from a module that exports it only as default, as a bundled chunk does', async () => {
    const db = createMysql({ env: {} });
    const session = await db.connect({
      host: 'db.internal',
      port: 3306,
      user: 'app',
      password: 'pw',
      database: '',
      tls: 'disable',
    });
    await db.setPassword(session, 'app', "N3w'pw");

    expect(fake.configs).toHaveLength(1);
    // Escaped by the loaded driver.
    expect(fake.statements.at(-1)).toBe(
      "ALTER USER 'app'@'%' IDENTIFIED BY 'N3w\\'pw' RETAIN CURRENT PASSWORD",
    );
  });
});
