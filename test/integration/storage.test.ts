import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  applyViews,
  loadMigrations,
  loadViews,
  migrate,
  newerSchemaNotice,
} from '../../storage/migrations.js';
import type { View } from '../../storage/migrations.js';
import { MigrationError, StorageError } from '../../storage/errors.js';
import { openTempStore } from '../support/store.js';

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
    expect(again.viewsApplied).toEqual([]);
    const [recorded] = await temp.store.query(
      'SELECT count() AS n FROM schema_migrations FINAL',
      {},
      countRow,
    );
    expect(recorded?.n).toBe(all.length);
    const tables = await temp.store.query(
      "SELECT name FROM system.tables WHERE database = currentDatabase() AND name NOT LIKE '.%' ORDER BY name",
      {},
      z.object({ name: z.string() }),
    );
    expect(tables.map((t) => t.name)).toEqual([
      'alert_deliveries',
      'alert_events',
      'alert_silences',
      'alert_states',
      'cohort_route_daily',
      'cohort_route_hourly',
      'late_outcomes',
      'rollup_state',
      'schema_migrations',
      'schema_views',
      'spans',
      'task_events',
      'task_events_from_late_outcomes',
      'task_events_from_spans',
      'task_snapshot',
      'v_cohort_route_summary',
      'v_cohort_route_timeseries',
      'v_cohort_route_window',
      'v_cohort_route_window_from_spans',
      'v_failure_concentration',
      'v_overall_window',
      'v_tasks',
      'v_tasks_changed',
      'v_tasks_from_spans',
      'v_tasks_live',
      'v_timeseries_metrics',
      'v_window_metrics',
      'v_window_metrics_from_spans',
      'v_window_scores',
    ]);
  });

  it('refuses an applied migration whose file has changed', async () => {
    const migrations = loadMigrations();
    const edited = migrations.map((m, i) => (i === 0 ? { ...m, checksum: 'f'.repeat(64) } : m));
    await expect(migrate(temp.store, edited)).rejects.toThrow(MigrationError);
    await expect(migrate(temp.store, edited)).rejects.toThrow(/applied with different contents/);
  });

  it('leaves the views alone on a store a newer version migrated, and says which migrations it lacks', async () => {
    // This version, run after a newer one on the same store (a rollback, or an older instance
    // beside newer ones): the newer's migration is recorded, and its views differ from ours.
    const newer = {
      version: 9998,
      name: 'from_a_newer_version',
      statements: ['CREATE TABLE newer_probe (x UInt8) ENGINE = Memory'],
      checksum: 'n',
    };
    await migrate(temp.store, [...loadMigrations(), newer]);
    const theirs: View[] = loadViews().map((v) =>
      v.name === 'v_cohort_route_summary'
        ? {
            ...v,
            statement: v.statement.replace('SELECT', 'SELECT 1 AS newer_column,'),
            checksum: 'theirs',
          }
        : v,
    );
    await applyViews(temp.store, theirs);
    try {
      const ours = await migrate(temp.store);
      expect(ours.newer).toEqual(['9998_from_a_newer_version']);
      expect(ours.applied).toEqual([]);
      expect(ours.viewsApplied).toEqual([]);
      const [row] = await temp.store.query(
        "SELECT as_select FROM system.tables WHERE database = currentDatabase() AND name = 'v_cohort_route_summary'",
        {},
        z.object({ as_select: z.string() }),
      );
      expect(row?.as_select).toMatch(/newer_column/);
      expect(newerSchemaNotice(ours.newer)).toMatch(
        /^the store was migrated by a newer routewatch \(9998_from_a_newer_version applied, which this version does not have\)/,
      );
    } finally {
      // Back to this version's schema for the tests after this one.
      await temp.store.exec('DROP TABLE newer_probe');
      await temp.store.exec(
        'ALTER TABLE schema_migrations DELETE WHERE version = 9998 SETTINGS mutations_sync = 2',
      );
      await applyViews(temp.store, loadViews());
    }
    expect((await migrate(temp.store)).newer).toEqual([]);
    expect(newerSchemaNotice([])).toBeUndefined();
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
});

describe('views (sql/views)', () => {
  const viewQuery = (name: string) =>
    temp.store
      .query(
        'SELECT as_select FROM system.tables WHERE database = currentDatabase() AND name = {name:String}',
        { name },
        z.object({ as_select: z.string() }),
      )
      .then((rows) => rows[0]?.as_select ?? '');

  it('loads one view per file, each after the views it reads', () => {
    const views = loadViews();
    expect(views.map((v) => [v.name, v.reads])).toEqual([
      ['v_tasks_changed', []],
      ['v_tasks_live', []],
      ['v_window_metrics', ['v_tasks_changed', 'v_tasks_live']],
      ['v_cohort_route_window', ['v_window_metrics']],
      ['v_cohort_route_summary', ['v_cohort_route_window']],
      ['v_timeseries_metrics', ['v_tasks_changed', 'v_tasks_live']],
      ['v_cohort_route_timeseries', ['v_timeseries_metrics']],
      ['v_tasks_from_spans', []],
      ['v_window_metrics_from_spans', ['v_tasks_from_spans']],
      ['v_cohort_route_window_from_spans', ['v_window_metrics_from_spans']],
      ['v_failure_concentration', ['v_window_metrics']],
      ['v_overall_window', ['v_window_metrics']],
      ['v_tasks', ['v_tasks_changed', 'v_tasks_live']],
      ['v_window_scores', ['v_window_metrics']],
    ]);
  });

  it('records the checksum of every view it applied', async () => {
    const recorded = await temp.store.query(
      'SELECT name, argMax(checksum, applied_at) AS checksum FROM schema_views GROUP BY name ORDER BY name',
      {},
      z.object({ name: z.string(), checksum: z.string() }),
    );
    expect(recorded).toEqual(
      loadViews()
        .map((v) => ({ name: v.name, checksum: v.checksum }))
        .sort((a, b) => a.name.localeCompare(b.name)),
    );
  });

  it('re-applies a changed view and the views that read it, and nothing else', async () => {
    const views = loadViews();
    const changed: View[] = views.map((v) =>
      v.name === 'v_window_metrics'
        ? {
            ...v,
            statement: v.statement.replace(
              'sum(part_tasks) AS tasks',
              'sum(part_tasks) AS tasks, 1 AS probe',
            ),
            checksum: 'changed',
          }
        : v,
    );
    const readers = [
      'v_window_metrics',
      'v_cohort_route_window',
      'v_cohort_route_summary',
      'v_failure_concentration',
      'v_overall_window',
      'v_window_scores',
    ];
    expect(await applyViews(temp.store, changed)).toEqual(readers);
    expect(await viewQuery('v_window_metrics')).toMatch(/1 AS probe/);
    expect(await applyViews(temp.store, changed)).toEqual([]);
    // Back to the files: the recorded checksum differs again, so the same ones are re-applied.
    expect(await applyViews(temp.store, views)).toEqual(readers);
    expect(await viewQuery('v_window_metrics')).not.toMatch(/probe/);
  });

  it('re-creates a view that is missing even when its checksum is recorded', async () => {
    await temp.store.exec('DROP VIEW v_cohort_route_summary');
    expect(await applyViews(temp.store, loadViews())).toEqual(['v_cohort_route_summary']);
  });

  it('names the view that fails, and does not record it', async () => {
    const broken: View[] = [
      ...loadViews(),
      {
        name: 'v_broken',
        statement: 'CREATE OR REPLACE VIEW v_broken AS SELECT no_such_column FROM spans',
        checksum: 'x',
        reads: [],
      },
    ];
    await expect(applyViews(temp.store, broken)).rejects.toThrow(/view v_broken failed/);
    const [row] = await temp.store.query(
      "SELECT count() AS n FROM schema_views WHERE name = 'v_broken'",
      {},
      countRow,
    );
    expect(row?.n).toBe(0);
  });

  it('refuses a view file that does not create the view it is named for, and a cycle', () => {
    const dir = mkdtempSync(join(tmpdir(), 'routewatch-views-'));
    try {
      writeFileSync(join(dir, 'v_a.sql'), 'CREATE OR REPLACE VIEW v_b AS SELECT 1;\n');
      expect(() => loadViews(dir)).toThrow(/must hold one statement, CREATE OR REPLACE VIEW v_a/);
      writeFileSync(join(dir, 'v_a.sql'), 'CREATE OR REPLACE VIEW v_a AS SELECT * FROM v_b;\n');
      writeFileSync(join(dir, 'v_b.sql'), 'CREATE OR REPLACE VIEW v_b AS SELECT * FROM v_a;\n');
      expect(() => loadViews(dir)).toThrow(/cycle: v_a → v_b → v_a/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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
    await temp.store.insertJsonEachRow('late_outcomes', Buffer.from(body));
    for (const cohort of cohorts) {
      const [row] = await temp.store.query(
        'SELECT count() AS n FROM late_outcomes WHERE outcome_reason = {r:String}',
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
