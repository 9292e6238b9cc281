import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadMigrations, migrate, splitStatements } from '../storage/migrations.js';
import { MigrationError, StorageError } from '../storage/errors.js';
import { openTempStore } from './helpers.js';

let temp: Awaited<ReturnType<typeof openTempStore>>;
beforeAll(async () => {
  temp = await openTempStore();
});
afterAll(async () => {
  await temp?.dispose();
});

const countRow = z.object({ n: z.coerce.number() });

describe('migrations', () => {
  it('applies every migration once, and a second run changes nothing', async () => {
    const all = loadMigrations();
    expect(all.map((m) => m.version)).toEqual([...all.map((m) => m.version)].sort((a, b) => a - b));
    const again = await migrate(temp.store);
    expect(again.applied).toEqual([]);
    expect(again.alreadyApplied).toBe(all.length);
    const [recorded] = await temp.store.query(
      'SELECT count() AS n FROM schema_migrations FINAL',
      {},
      countRow,
    );
    expect(recorded?.n).toBe(all.length);
    const tables = await temp.store.query(
      "SELECT name FROM system.tables WHERE database = currentDatabase() AND name IN ('spans', 'outcomes', 'outcome_reports', 'alerts', 'v_tasks', 'v_cohort_route_summary') ORDER BY name",
      {},
      z.object({ name: z.string() }),
    );
    expect(tables.map((t) => t.name)).toEqual([
      'alerts',
      'outcome_reports',
      'spans',
      'v_cohort_route_summary',
      'v_tasks',
    ]);
  });

  it('refuses an applied migration whose file has changed', async () => {
    const migrations = loadMigrations();
    const edited = migrations.map((m, i) => (i === 0 ? { ...m, checksum: 'f'.repeat(64) } : m));
    await expect(migrate(temp.store, edited)).rejects.toThrow(MigrationError);
    await expect(migrate(temp.store, edited)).rejects.toThrow(/applied with different contents/);
  });

  it('names the migration that fails', async () => {
    const broken = [
      ...loadMigrations(),
      {
        version: 9999,
        name: 'broken',
        statements: ['CREATE TABLE oops (x Nope) ENGINE = Memory'],
        checksum: 'x',
      },
    ];
    await expect(migrate(temp.store, broken)).rejects.toThrow(/9999_broken failed/);
    const [row] = await temp.store.query(
      'SELECT count() AS n FROM schema_migrations FINAL WHERE version = 9999',
      {},
      countRow,
    );
    expect(row?.n).toBe(0);
  });

  it('carries late outcomes of the 0002 table over to outcome_reports, once', async () => {
    const byVersion = new Map(loadMigrations().map((m) => [m.version, m]));
    const run = async (version: number) => {
      for (const statement of byVersion.get(version)!.statements) await temp.store.exec(statement);
    };
    await run(2); // the old table, as a store migrated before 0005 has it
    const old = [
      { task_id: 'old-1', observed_at: '2026-01-01 00:00:00.000000001', outcome: 'failure' },
      { task_id: 'old-1', observed_at: '2026-01-02 00:00:00.000000000', outcome: 'success' },
      { task_id: 'old-2', observed_at: '2026-01-01 00:00:00.000000000', outcome: 'failure' },
    ].map((r) => JSON.stringify({ ...r, cleanup_cost_usd: 0.5, source: 'api' }));
    await temp.store.insertJsonEachRow('outcomes', Buffer.from(old.join('\n')));
    await run(5);
    await run(5); // a migration interrupted and run again adds nothing
    await run(6);
    const carried = await temp.store.query(
      "SELECT task_id, outcome, cleanup_cost_usd FROM outcome_reports FINAL WHERE task_id LIKE 'old-%' ORDER BY task_id, observed_at",
      {},
      z.object({ task_id: z.string(), outcome: z.string(), cleanup_cost_usd: z.number() }),
    );
    expect(carried).toEqual([
      { task_id: 'old-1', outcome: 'failure', cleanup_cost_usd: 0.5 },
      { task_id: 'old-1', outcome: 'success', cleanup_cost_usd: 0.5 },
      { task_id: 'old-2', outcome: 'failure', cleanup_cost_usd: 0.5 },
    ]);
    const [left] = await temp.store.query(
      "SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name = 'outcomes'",
      {},
      countRow,
    );
    expect(left?.n).toBe(0);
    await temp.store.exec("DELETE FROM outcome_reports WHERE task_id LIKE 'old-%'");
  });

  it('splits statements at a semicolon ending a line and drops comment lines', () => {
    expect(splitStatements("-- a comment; here\nSELECT 1;\nSELECT ';'\nFROM x;\n")).toEqual([
      'SELECT 1',
      "SELECT ';'\nFROM x",
    ]);
  });
});

describe('embedded store', () => {
  it('binds parameters so quotes, backslashes and unicode arrive intact', async () => {
    const cohorts = [
      `it's "quoted"`,
      'back\\slash\\',
      'ünïcødé 🚀 路由',
      "'; DROP TABLE spans; --",
    ];
    for (const cohort of cohorts) {
      const rows = await temp.store.query(
        'SELECT {cohort:String} AS cohort, length({cohort:String}) AS bytes',
        { cohort },
        z.object({ cohort: z.string(), bytes: z.coerce.number() }),
      );
      expect(rows).toEqual([{ cohort, bytes: Buffer.byteLength(cohort) }]);
    }
    const body = cohorts
      .map((c, i) =>
        JSON.stringify({
          task_id: `t${i}`,
          report_id: `r${i}`,
          observed_at: '1',
          outcome: 'success',
          outcome_reason: c,
        }),
      )
      .join('\n');
    await temp.store.insertJsonEachRow('outcome_reports', Buffer.from(body));
    for (const cohort of cohorts) {
      const [row] = await temp.store.query(
        'SELECT count() AS n FROM outcome_reports WHERE outcome_reason = {r:String}',
        { r: cohort },
        countRow,
      );
      expect(row?.n).toBe(1);
    }
    const [spans] = await temp.store.query('SELECT count() AS n FROM spans', {}, countRow);
    expect(spans?.n).toBe(0);
  });

  it('returns 64-bit integers the same way as the server driver (quoted, coerced by the row schema)', async () => {
    const rows = await temp.store.query(
      'SELECT toUInt64(18446744073709551615) AS big',
      {},
      z.object({ big: z.string() }),
    );
    expect(rows[0]?.big).toBe('18446744073709551615');
  });

  it('reports a failing query as a StorageError with the engine message', async () => {
    await expect(temp.store.query('SELECT * FROM no_such_table', {}, countRow)).rejects.toThrow(
      StorageError,
    );
    await expect(temp.store.query('SELECT * FROM no_such_table', {}, countRow)).rejects.toThrow(
      /no_such_table/,
    );
  });

  it('refuses rows of the wrong shape', async () => {
    await expect(
      temp.store.query("SELECT 'x' AS n", {}, z.object({ n: z.number() })),
    ).rejects.toThrow(/unexpected shape/);
  });
});
