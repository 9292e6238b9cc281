import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { toClickHouseTime } from '../../analyzer/report.js';
import {
  generateParams,
  insertLateOutcomesSql,
  insertSpansSql,
} from '../../bench/analyzer/generate.js';
import { EmbeddedStore } from '../../storage/embedded-store.js';
import { loadMigrations, migrate } from '../../storage/migrations.js';
import { refreshRollups } from '../../storage/rollups.js';
import { dateAt } from '../support/time.js';

// A data directory as the version before the rollups leaves it: every migration up to 0031 and
// its views, spans with every column the rollups copy (eval runs, span scores, unpriced calls,
// HTTP attempts and retry waits) and late outcome reports with scores. Then the current migrate:
// 0032 creates the rollups and backfills task_events from what is stored; the views answer the
// same rows as the computation from raw spans before the first refresh and after it.

const TASKS = 600;
const HOUR = 3_600_000;
let dir: string;
let store: EmbeddedStore;

const countRow = z.object({ n: z.coerce.number() });
const count = async (sql: string) => (await store.query(sql, {}, countRow))[0]!.n;

/** Rows of `a` not in `b` plus rows of `b` not in `a`: 0 when the two queries agree. */
async function differ(a: string, b: string): Promise<number> {
  return (
    (await count(`SELECT count() AS n FROM (${a} EXCEPT ${b})`)) +
    (await count(`SELECT count() AS n FROM (${b} EXCEPT ${a})`))
  );
}

const TASKS_ROLLUP = 'SELECT * FROM v_tasks';
const TASKS_RAW = 'SELECT * EXCEPT (llm_cost, cleanup_cost) FROM v_tasks_from_spans';
/** The window metrics but the latency quantiles (t-digests) and the Float64 Σ cost² and interval. */
const metrics = (view: string) =>
  `SELECT * EXCEPT (p50_latency_ms, p95_latency_ms, p99_latency_ms, cost_squared_sum,
     cost_per_successful_task_half_width, cost_per_successful_task_lower, cost_per_successful_task_upper,
     score_sums, score_squares)
   FROM ${view}(from = '${toClickHouseTime(dateAt(-3 * 24 * HOUR))}', to = '${toClickHouseTime(dateAt(HOUR))}',
     cohorts = [], routes = [], services = [], policies = [])`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'routewatch-upgrade-rollups-'));
  store = await EmbeddedStore.open(dir);
  const before = loadMigrations().filter((m) => m.version <= 31);
  expect(before.at(-1)?.version).toBe(31);
  // The views of that version are not replayed here: the current ones need 0032's tables.
  await migrate(store, before, []);
  const params = generateParams({
    seed: 11,
    tasks: TASKS,
    first: 0,
    count: TASKS,
    base: toClickHouseTime(dateAt(-2 * 24 * HOUR)),
    periodDays: 2,
  });
  await store.exec(insertSpansSql('main'), params);
  await store.exec(insertSpansSql('withheld'), params);
  await store.exec(insertLateOutcomesSql(), params);
}, 120_000);
afterAll(async () => {
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('upgrading a store of the version before the rollups', () => {
  it('applies 0032 (and the migrations after it) and backfills task_events from the stored spans and reports', async () => {
    const result = await migrate(store);
    expect(result.applied.map((m) => m.version)).toEqual(
      loadMigrations()
        .map((m) => m.version)
        .filter((v) => v >= 32),
    );
    expect(await count('SELECT uniqExact(task_id) AS n FROM task_events')).toBe(TASKS);
    expect(await count('SELECT count() AS n FROM task_snapshot')).toBe(0);
  });

  it('answers every column of v_tasks and the window metrics as the raw computation, before any refresh', async () => {
    // The stored data exercises the columns main added before the rollups.
    expect(await count("SELECT countIf(eval_run != '') AS n FROM v_tasks")).toBeGreaterThan(0);
    expect(await count('SELECT countIf(length(scores) > 0) AS n FROM v_tasks')).toBeGreaterThan(0);
    expect(await count('SELECT sum(retried_calls) AS n FROM v_tasks')).toBeGreaterThan(0);
    expect(await count('SELECT sum(unpriced_calls) AS n FROM v_tasks')).toBeGreaterThan(0);
    expect(await differ(TASKS_ROLLUP, TASKS_RAW)).toBe(0);
    expect(await differ(metrics('v_window_metrics'), metrics('v_window_metrics_from_spans'))).toBe(
      0,
    );
  });

  it('builds the rollups on the first refresh, with the same answers', async () => {
    const refreshed = await refreshRollups(store, { marginMs: 0 });
    expect(refreshed.tasks).toBe(TASKS);
    expect(await count('SELECT count() AS n FROM v_tasks_changed')).toBe(0);
    expect(await count('SELECT sum(tasks) AS n FROM cohort_route_hourly FINAL')).toBe(
      await count("SELECT count() AS n FROM v_tasks_from_spans WHERE eval_run = ''"),
    );
    expect(await differ(TASKS_ROLLUP, TASKS_RAW)).toBe(0);
    expect(await differ(metrics('v_window_metrics'), metrics('v_window_metrics_from_spans'))).toBe(
      0,
    );
  });

  it('backfills the hourly score sums (0033) and the daily rollup (0034) of a store refreshed at 0032', async () => {
    // The store as 0032 left it after a refresh: hourly rows without score sums, no daily table.
    await store.exec('DROP TABLE cohort_route_daily');
    for (const column of ['score_tasks', 'score_sums', 'score_squares']) {
      await store.exec(`ALTER TABLE cohort_route_hourly DROP COLUMN ${column}`);
    }
    await store.exec('DELETE FROM schema_migrations WHERE version IN (33, 34)');
    const result = await migrate(store);
    expect(result.applied.map((m) => m.version)).toEqual([33, 34]);
    const scored = await count(
      "SELECT count() AS n FROM v_tasks_from_spans WHERE eval_run = '' AND length(scores) > 0",
    );
    expect(scored).toBeGreaterThan(0);
    expect(
      await count(
        'SELECT toUInt64(sum(arraySum(mapValues(score_tasks)))) AS n FROM cohort_route_hourly FINAL',
      ),
    ).toBe(
      await count(
        "SELECT toUInt64(sum(length(scores))) AS n FROM v_tasks_from_spans WHERE eval_run = ''",
      ),
    );
    expect(await count('SELECT sum(tasks) AS n FROM cohort_route_daily FINAL')).toBe(
      await count('SELECT sum(tasks) AS n FROM cohort_route_hourly FINAL'),
    );
    const scores = (sql: string) =>
      `SELECT is_overall, cohort, primary_route, score_name, n FROM (${sql})`;
    const window = `from = '${toClickHouseTime(dateAt(-3 * 24 * HOUR))}', to = '${toClickHouseTime(dateAt(HOUR))}'`;
    expect(
      await differ(
        scores(
          `SELECT * FROM v_window_scores(${window}, cohorts = [], routes = [], services = [], policies = [])`,
        ),
        scores(
          `SELECT grouping(cohort, primary_route) != 0 AS is_overall, cohort, primary_route, score_name, count() AS n
           FROM v_tasks_from_spans ARRAY JOIN mapKeys(scores) AS score_name
           WHERE eval_run = '' GROUP BY GROUPING SETS ((cohort, primary_route, score_name), (score_name))`,
        ),
      ),
    ).toBe(0);
    expect(await differ(metrics('v_window_metrics'), metrics('v_window_metrics_from_spans'))).toBe(
      0,
    );
  });
});
