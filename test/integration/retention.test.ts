import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { toClickHouseTime } from '../../analyzer/report.js';
import type { Report } from '../../analyzer/report.js';
import {
  generateParams,
  insertLateOutcomesSql,
  insertSpansSql,
} from '../../bench/analyzer/generate.js';
import { configWith } from '../../server/config.js';
import { startRoutewatch } from '../../server/start.js';
import type { RunningRoutewatch } from '../../server/start.js';
import { applyRetention, refreshRollups } from '../../storage/rollups.js';
import { approximately } from '../support/figures.js';

// Retention as `routewatch start` sets it: raw spans kept ROUTEWATCH_RETENTION_DAYS (2 here), the
// rollups ROUTEWATCH_ROLLUP_RETENTION_DAYS. Old tasks are written straight into the store (the
// collector refuses spans older than the retention); the TTL is then applied at once with
// ALTER TABLE … MATERIALIZE TTL instead of waiting for the engine's merges.

const DAY = 86_400_000;
const OLD_TASKS = 300;
const RECENT_TASKS = 100;
let dir: string;
let running: RunningRoutewatch;
const now = new Date();
const oldWindow = {
  from: new Date(now.getTime() - 6 * DAY),
  to: new Date(now.getTime() - 3 * DAY),
};

const countRow = z.object({ n: z.coerce.number() });
const count = async (sql: string, params = {}) =>
  (await running.store.query(sql, params, countRow))[0]!.n;
const createQuery = async (table: string) =>
  (
    await running.store.query(
      'SELECT create_table_query AS q FROM system.tables WHERE database = currentDatabase() AND name = {table:String}',
      { table },
      z.object({ q: z.string() }),
    )
  )[0]!.q;

async function reportOver(window: { from: Date; to: Date }): Promise<Report> {
  const res = await fetch(
    `${running.url}/api/v1/report?from=${window.from.toISOString()}&to=${window.to.toISOString()}`,
  );
  expect(res.status).toBe(200);
  return (await res.json()) as Report;
}
const rowsOf = (report: Report) => report.rows;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'routewatch-retention-'));
  running = await startRoutewatch(
    configWith({
      ROUTEWATCH_PORT: '0',
      ROUTEWATCH_DATA_DIR: dir,
      ROUTEWATCH_RETENTION_DAYS: '2',
      ROUTEWATCH_ROLLUP_RETENTION_DAYS: '400',
      ROUTEWATCH_ROLLUP_INTERVAL: '1h',
    }),
  );
  const insert = async (seed: number, tasks: number, base: Date, periodDays: number) => {
    const params = generateParams({
      seed,
      tasks,
      first: 0,
      count: tasks,
      base: toClickHouseTime(base),
      periodDays,
    });
    await running.store.exec(insertSpansSql('main'), params);
    await running.store.exec(insertSpansSql('withheld'), params);
    await running.store.exec(insertLateOutcomesSql(), params);
  };
  // Tasks 5 to 4 days old, past the raw retention; and tasks of the last 12 hours.
  await insert(1, OLD_TASKS, new Date(now.getTime() - 5 * DAY), 1);
  await insert(2, RECENT_TASKS, new Date(now.getTime() - DAY / 2), 0.25);
  // No insert runs now: a margin of 0 is right.
  await refreshRollups(running.store, { marginMs: 0 });
});
afterAll(async () => {
  await running?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('retention', () => {
  it('sets the TTLs from the configuration at start, and changes them only when they differ', async () => {
    expect(await createQuery('spans')).toMatch(
      /\bTTL toDateTime\(timestamp\) \+ toIntervalDay\(2\)/,
    );
    expect(await createQuery('task_events')).toMatch(
      /\bTTL toDateTime\(timestamp\) \+ toIntervalDay\(400\)/,
    );
    expect(await createQuery('task_snapshot')).toMatch(
      /\bTTL toDateTime\(started_at\) \+ toIntervalDay\(400\)/,
    );
    expect(await createQuery('cohort_route_hourly')).toMatch(/\bTTL hour \+ toIntervalDay\(400\)/);
    expect(await createQuery('cohort_route_daily')).toMatch(/\bTTL day \+ toIntervalDay\(401\)/);
    const settings = { rawDays: 2, rollupDays: 400 };
    expect(await applyRetention(running.store, settings)).toEqual([]);
    expect(await applyRetention(running.store, { ...settings, rawDays: 3 })).toEqual(['spans']);
    expect(await createQuery('spans')).toMatch(/toIntervalDay\(3\)/);
    expect(await applyRetention(running.store, settings)).toEqual(['spans']);
  });

  it('drops raw spans past retention, and reports over that period still answer from the rollups', async () => {
    const before = await reportOver(oldWindow);
    // The report counts production tasks: the generated eval-run tasks are left out.
    const oldEvalTasks = await count(
      "SELECT count() AS n FROM v_tasks WHERE started_at < {t:DateTime64(9, 'UTC')} AND eval_run != ''",
      { t: toClickHouseTime(oldWindow.to) },
    );
    expect(oldEvalTasks).toBeGreaterThan(0);
    expect(before.rows.reduce((n, r) => n + r.tasks, 0)).toBe(OLD_TASKS - oldEvalTasks);
    const oldTasks = await count(
      "SELECT count() AS n FROM v_tasks WHERE started_at < {t:DateTime64(9, 'UTC')}",
      {
        t: toClickHouseTime(oldWindow.to),
      },
    );
    expect(oldTasks).toBe(OLD_TASKS);

    await running.store.exec('ALTER TABLE spans MATERIALIZE TTL SETTINGS mutations_sync = 2');

    const rawLeft = await count(
      'SELECT count() AS n FROM spans WHERE timestamp < now64() - toIntervalDay(2)',
    );
    expect(rawLeft).toBe(0);
    expect(await count('SELECT uniqExact(task_id) AS n FROM spans')).toBe(RECENT_TASKS);
    // The computation from raw spans no longer sees the old tasks…
    expect(
      await count(
        "SELECT count() AS n FROM v_tasks_from_spans WHERE started_at < {t:DateTime64(9, 'UTC')}",
        { t: toClickHouseTime(oldWindow.to) },
      ),
    ).toBe(0);
    // …the report and v_tasks do, from the rollups: the same figures as before.
    const after = await reportOver(oldWindow);
    // (Counts exactly; floats to 12 decimals: the intervals' variances are float sums the engine
    // may add in another order over the rollups, which moves their last bit.)
    expect(rowsOf(after)).toEqual(approximately(rowsOf(before)));
    expect(
      await count("SELECT count() AS n FROM v_tasks WHERE started_at < {t:DateTime64(9, 'UTC')}", {
        t: toClickHouseTime(oldWindow.to),
      }),
    ).toBe(OLD_TASKS);
    const series = await fetch(
      `${running.url}/api/v1/timeseries?from=${oldWindow.from.toISOString()}&to=${oldWindow.to.toISOString()}&bucket=1d`,
    );
    expect(series.status).toBe(200);
    const body = (await series.json()) as { series: { points: { tasks: number }[] }[] };
    expect(body.series.flatMap((s) => s.points).reduce((n, p) => n + p.tasks, 0)).toBe(
      OLD_TASKS - oldEvalTasks,
    );
  });

  it('still takes a late outcome for a task whose raw spans are gone', async () => {
    const [task] = await running.store.query(
      `SELECT task_id, outcome FROM v_tasks WHERE started_at < {t:DateTime64(9, 'UTC')} AND outcome = 'success' ORDER BY task_id LIMIT 1`,
      { t: toClickHouseTime(oldWindow.to) },
      z.object({ task_id: z.string(), outcome: z.string() }),
    );
    const before = await reportOver(oldWindow);
    const res = await fetch(`${running.url}/v1/outcomes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ taskId: task!.task_id, outcome: 'failure', reason: 'audit' }),
    });
    expect(res.status).toBe(202);
    const [row] = await running.store.query(
      'SELECT outcome, outcome_reason FROM v_tasks WHERE task_id = {id:String}',
      { id: task!.task_id },
      z.object({ outcome: z.string(), outcome_reason: z.string() }),
    );
    expect(row).toEqual({ outcome: 'failure', outcome_reason: 'audit' });
    const after = await reportOver(oldWindow);
    const successes = (report: Report) => report.rows.reduce((n, r) => n + r.successes, 0);
    expect(successes(after)).toBe(successes(before) - 1);
  });

  it('drops the rollups past their own retention', async () => {
    expect(await applyRetention(running.store, { rawDays: 2, rollupDays: 3 })).toEqual([
      'task_events',
      'task_snapshot',
      'cohort_route_hourly',
      'cohort_route_daily',
    ]);
    for (const table of [
      'task_events',
      'task_snapshot',
      'cohort_route_hourly',
      'cohort_route_daily',
    ]) {
      await running.store.exec(`ALTER TABLE ${table} MATERIALIZE TTL SETTINGS mutations_sync = 2`);
    }
    await refreshRollups(running.store, { marginMs: 0 });
    expect((await reportOver(oldWindow)).rows).toEqual([]);
    expect(await count('SELECT count() AS n FROM v_tasks')).toBe(RECENT_TASKS);
  });
});
