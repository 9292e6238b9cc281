import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import {
  concentrationOf,
  concentrationRow,
  scoreRow,
  scoresOf,
  toClickHouseTime,
  windowRow,
} from '../../analyzer/report.js';
import {
  generateParams,
  insertLateOutcomesSql,
  insertSpansSql,
} from '../../bench/analyzer/generate.js';
import { RollupRefresher } from '../../storage/rollup-refresher.js';
import { refreshRollups, repairRollups } from '../../storage/rollups.js';
import {
  FLAT_VIEWS,
  MAX_BOUND_CHANGED_TASKS,
  holdsWholeDay,
  queryFlat,
  readChanged,
} from '../../storage/window-sql.js';
import type { Changed } from '../../storage/window-sql.js';
import { deriveWindowRow, windowSumsRow } from '../../analyzer/window-derive.js';
import { hexId, otlpBody } from '../support/otlp.js';
import { openTempStore } from '../support/store.js';
import { storeUnreachable } from '../support/outage.js';
import type { TestSpan } from '../support/otlp.js';
import { testApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';
import { BASE_MS, dateAt, nsAt } from '../support/time.js';

// The rollups (task_events, task_snapshot, cohort_route_hourly; sql/migrations/0032) against the
// computation from raw spans (v_tasks_from_spans, v_cohort_route_window_from_spans), on generated
// tasks (bench/analyzer/generate.ts: fallbacks, cascades, late outcomes and their retries,
// duplicated exports, primary-route spans inserted last) and on tasks sent through the collector:
// a late outcome arriving after the task's hour closed (and retried), an export retried past the
// collector's de-duplication, spans of one task arriving hours apart with the earliest last.
// Checked before any refresh (every task computed from task_events), after a refresh (every task
// from the rollups), after more changes (both at once) and after the next refresh.

const HOUR = 3_600_000;
let temp: Awaited<ReturnType<typeof openTempStore>>;
let rw: TestApp;

const anyRow = z.record(z.string(), z.unknown());
const countRow = z.object({ n: z.coerce.number() });

async function post(spans: TestSpan[]): Promise<void> {
  const res = await rw.app.inject({
    method: 'POST',
    url: '/v1/traces',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(otlpBody(spans)),
  });
  expect(res.statusCode).toBe(200);
  await rw.writer.flush();
}

async function report(outcome: Record<string, unknown>): Promise<void> {
  const res = await rw.app.inject({
    method: 'POST',
    url: '/v1/outcomes',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(outcome),
  });
  expect(res.statusCode).toBe(202);
}

function span(
  taskId: string,
  kind: 'task' | 'attempt' | 'llm',
  startMs: number,
  attributes: TestSpan['attributes'] = {},
): TestSpan {
  const common = { 'routewatch.task.id': taskId, 'routewatch.cohort': 'scenario' };
  const names = { task: 'routewatch.task scenario', attempt: 'routewatch.attempt', llm: 'chat' };
  return {
    traceId: hexId(16),
    spanId: hexId(8),
    name: names[kind],
    kind: kind === 'llm' ? 3 : 1,
    start: nsAt(startMs),
    end: nsAt(startMs + 400),
    attributes: {
      ...common,
      ...(kind === 'llm'
        ? {
            'gen_ai.request.model': 'gpt-4o-mini',
            'gen_ai.usage.input_tokens': 1000,
            'gen_ai.usage.output_tokens': 200,
          }
        : {}),
      ...attributes,
    },
  };
}

// Task "late-after-hour": one hour, success; a failure reported 3 h later (after a refresh).
const lateTask = [
  span('late-after-hour', 'task', 10 * 60_000, { 'routewatch.outcome': 'success' }),
  span('late-after-hour', 'attempt', 10 * 60_000 + 1, {
    'routewatch.route': 'small',
    'routewatch.attempt': 1,
  }),
  span('late-after-hour', 'llm', 10 * 60_000 + 2, {
    'routewatch.route': 'small',
    'routewatch.attempt': 1,
  }),
];
// Task "retried-export": the same export twice.
const retriedExport = [
  span('retried-export', 'task', 20 * 60_000, { 'routewatch.outcome': 'success' }),
  span('retried-export', 'llm', 20 * 60_000 + 2, {
    'routewatch.route': 'large',
    'routewatch.attempt': 1,
    'gen_ai.request.model': 'gpt-4o',
  }),
];
// Task "hours-apart": its task span and fallback arrive first, in hour BASE+2h; attempt 1 (the
// primary route) arrives after a refresh, from a service whose clock puts it in hour BASE+1h.
const hoursApartFirst = [
  span('hours-apart', 'task', 2 * HOUR + 10 * 60_000, { 'routewatch.outcome': 'success' }),
  span('hours-apart', 'attempt', 2 * HOUR + 11 * 60_000, {
    'routewatch.route': 'large',
    'routewatch.attempt': 2,
    'routewatch.fallback.reason': 'timeout',
  }),
];
const hoursApartLater = [
  span('hours-apart', 'attempt', HOUR + 50 * 60_000, {
    'routewatch.route': 'small',
    'routewatch.attempt': 1,
  }),
  span('hours-apart', 'llm', HOUR + 50 * 60_000 + 1, {
    'routewatch.route': 'small',
    'routewatch.attempt': 1,
  }),
];

const GENERATED_DAYS = 2;
const GENERATED_TASKS = 1500;
/** Tasks the later tests add to the generated ones and the three scenario tasks. */
let extraTasks = 0;

beforeAll(async () => {
  temp = await openTempStore();
  // No de-duplication window: a retried export reaches the table twice, as one that slipped past
  // the window (or a replay after a restart) does.
  rw = await testApp(temp.store, { config: { ROUTEWATCH_DEDUP_WINDOW: '0' } });
  const params = generateParams({
    seed: 3,
    tasks: GENERATED_TASKS,
    first: 0,
    count: GENERATED_TASKS,
    base: toClickHouseTime(dateAt(-GENERATED_DAYS * 24 * HOUR)),
    periodDays: GENERATED_DAYS,
  });
  await temp.store.exec(insertSpansSql('main'), params);
  await temp.store.exec(insertLateOutcomesSql(), params);
  await temp.store.exec(insertSpansSql('duplicated'), params);
  await temp.store.exec(insertSpansSql('withheld'), params);
  await post(lateTask);
  await post(retriedExport);
  await post(retriedExport);
  await post(hoursApartFirst);
});
afterAll(async () => {
  await rw?.close();
  await temp?.dispose();
});

/** Every column of v_tasks equal, row for row, to the computation from raw spans. */
async function expectTasksEqualRaw(): Promise<void> {
  const differ = async (a: string, b: string) =>
    (await temp.store.query(`SELECT count() AS n FROM (${a} EXCEPT ${b})`, {}, countRow))[0]!.n;
  const rollups = 'SELECT * FROM v_tasks';
  const raw = 'SELECT * EXCEPT (llm_cost, cleanup_cost) FROM v_tasks_from_spans';
  expect(await differ(rollups, raw)).toBe(0);
  expect(await differ(raw, rollups)).toBe(0);
  const [counts] = await temp.store.query(
    'SELECT (SELECT count() FROM v_tasks) AS a, (SELECT count() FROM v_tasks_from_spans) AS b',
    {},
    z.object({ a: z.coerce.number(), b: z.coerce.number() }),
  );
  expect(counts!.a).toBe(counts!.b);
  expect(counts!.a).toBe(GENERATED_TASKS + 3 + extraTasks);
  // The generated tasks exercise every column: eval runs, span and late scores, unpriced and
  // retried calls.
  const [coverage] = await temp.store.query(
    `SELECT countIf(eval_run != '') AS eval, countIf(mapContains(scores, 'groundedness')) AS scored,
       countIf(unpriced_calls > 0) AS unpriced, countIf(retried_calls > 0) AS retried,
       countIf(http_counted_calls < model_calls) AS uncounted
     FROM v_tasks`,
    {},
    z.record(z.string(), z.coerce.number()),
  );
  for (const [column, n] of Object.entries(coverage!)) {
    expect(n, column).toBeGreaterThan(0);
  }
}

const QUANTILES = [
  ['p50_latency_ms', 0.5],
  ['p95_latency_ms', 0.95],
  ['p99_latency_ms', 0.99],
] as const;
/** ClickHouse's t-digest: δ = 0.01 of rank (QuantileTDigest.h), means kept as Float32. */
const TDIGEST_RANK_ERROR = 0.01;

/** A quantile the t-digest gave is within its stated error: its rank among the exact values. */
function expectWithinRankError(value: number, sorted: number[], level: number): void {
  const n = sorted.length;
  const close = (x: number) => Math.abs(x - value) <= 1e-6 * Math.max(1, Math.abs(value));
  const below = sorted.filter((x) => x < value && !close(x)).length;
  const atOrBelow = sorted.filter((x) => x < value || close(x)).length;
  const slack = TDIGEST_RANK_ERROR + 1 / n;
  expect(below / n).toBeLessThanOrEqual(level + slack);
  expect(atOrBelow / n).toBeGreaterThanOrEqual(level - slack);
}

const WINDOWS: [string, number, number][] = [
  ['all of it', -GENERATED_DAYS * 24 * HOUR - HOUR, 4 * HOUR],
  ['whole hours', -36 * HOUR, 3 * HOUR],
  ['partial first and last hours', -30 * HOUR + 17 * 60_000, 2 * HOUR + 5 * 60_000],
  ['inside one hour', HOUR + 40 * 60_000, HOUR + 55 * 60_000],
  ['no task', 5 * HOUR, 6 * HOUR],
];

/**
 * Σ cost² is a Float64 sum, whose last bits depend on the order of its terms; it and the interval
 * of cost per success computed from it are compared to a relative 1e-9.
 */
const FLOAT_SUMS = [
  'cost_squared_sum',
  'cost_per_successful_task_half_width',
  'cost_per_successful_task_lower',
  'cost_per_successful_task_upper',
];
/**
 * Every column but the latency quantiles (t-digests), FLOAT_SUMS and the Float64 score sums
 * (score_sums, score_squares: compared through v_window_scores by expectScoresEqualRaw).
 */
const exact = (rows: Record<string, unknown>[]) =>
  rows.map((row) =>
    Object.fromEntries(
      Object.entries(row).filter(
        ([k]) =>
          !k.endsWith('_latency_ms') &&
          !FLOAT_SUMS.includes(k) &&
          k !== 'score_sums' &&
          k !== 'score_squares',
      ),
    ),
  );
/** Rows equal: exactly (see `exact`), FLOAT_SUMS within a relative 1e-9. */
function expectRowsEqual(rollups: Record<string, unknown>[], raw: Record<string, unknown>[]): void {
  expect(exact(rollups)).toEqual(exact(raw));
  rollups.forEach((row, i) => {
    for (const column of FLOAT_SUMS) {
      const [a, b] = [row[column], raw[i]![column]];
      if (a === undefined || a === null || b === null) {
        expect(a, column).toBe(b);
        continue;
      }
      const gap = Math.abs(Number(a) - Number(b));
      expect(gap, column).toBeLessThanOrEqual(1e-9 * Math.max(1e-12, Math.abs(Number(b))));
    }
  });
}

/** The filters of v_window_metrics each window is read with (none: every production task). */
const FILTERS: Record<string, string[]>[] = [
  {},
  { cohorts: ['cohort-03', 'scenario'], services: ['svc-a', 'test-service'] },
  { routes: ['large'], policies: ['v2'] },
];

/**
 * v_window_metrics (per cohort × route and overall, unfiltered and filtered) and
 * v_cohort_route_window equal to the raw computation on every window: counts, sums, rates exactly.
 */
async function expectWindowsEqualRaw(): Promise<void> {
  for (const [name, fromMs, toMs] of WINDOWS) {
    const window = { from: toClickHouseTime(dateAt(fromMs)), to: toClickHouseTime(dateAt(toMs)) };
    const range = "from = {from:DateTime64(9, 'UTC')}, to = {to:DateTime64(9, 'UTC')}";
    // The filters on one window with whole and partial hours (each read recomputes the changed
    // tasks: fewer reads keep the suite quick).
    for (const filter of name === 'partial first and last hours' ? FILTERS : FILTERS.slice(0, 1)) {
      const lists = {
        cohorts: filter['cohorts'] ?? [],
        routes: filter['routes'] ?? [],
        services: filter['services'] ?? [],
        policies: filter['policies'] ?? [],
      };
      const readMetrics = (view: string) =>
        temp.store.query(
          `SELECT * FROM ${view}(${range}, cohorts = {cohorts:Array(String)}, routes = {routes:Array(String)},
             services = {services:Array(String)}, policies = {policies:Array(String)})
           ORDER BY is_overall, cohort, primary_route`,
          { ...window, ...lists },
          anyRow,
        );
      const metrics = await readMetrics('v_window_metrics');
      expectRowsEqual(metrics, await readMetrics('v_window_metrics_from_spans'));
    }
    const read = (view: string) =>
      temp.store.query(
        `SELECT * FROM ${view}(${range}) ORDER BY cohort, primary_route`,
        window,
        anyRow,
      );
    const rollups = await read('v_cohort_route_window');
    const raw = await read('v_cohort_route_window_from_spans');
    expectRowsEqual(rollups, raw);
    const latencies = await temp.store.query(
      `SELECT cohort, primary_route, arraySort(groupArray(latency_ms)) AS sorted FROM v_tasks_from_spans
       WHERE started_at >= {from:DateTime64(9, 'UTC')} AND started_at < {to:DateTime64(9, 'UTC')} AND eval_run = ''
       GROUP BY cohort, primary_route ORDER BY cohort, primary_route`,
      window,
      z.object({ cohort: z.string(), primary_route: z.string(), sorted: z.array(z.number()) }),
    );
    expect(latencies).toHaveLength(rollups.length);
    latencies.forEach((group, i) => {
      for (const [column, level] of QUANTILES) {
        expectWithinRankError(Number(rollups[i]![column]), group.sorted, level);
      }
    });
  }
}

/**
 * v_failure_concentration as it was computed before the rollups, from one row per task: here over
 * the raw spans (v_tasks_from_spans), the reference the view's reading of the rollups must equal.
 */
const CONCENTRATION_FROM_SPANS = `
  WITH
      groups AS
      (
          SELECT cohort, primary_route,
              countIf(outcome != 'unknown') AS known,
              countIf(outcome IN ('failure', 'escalated', 'abandoned')) AS failed
          FROM v_tasks_from_spans
          WHERE started_at >= {from:DateTime64(9, 'UTC')} AND started_at < {to:DateTime64(9, 'UTC')}
              AND eval_run = ''
          GROUP BY cohort, primary_route
      ),
      totals AS (
          SELECT sum(known) AS all_known, sum(failed) AS all_failed,
              sqrt(-2 * log(0.01 / greatest(countIf(known > 0), 1))) AS bonferroni_t
          FROM groups)
  SELECT
      cohort, primary_route, known AS tasks, failed AS failures,
      if(known = 0, NULL, failed / known) AS failure_rate,
      all_known - known AS rest_tasks,
      all_failed - failed AS rest_failures,
      if(rest_tasks = 0, NULL, rest_failures / rest_tasks) AS rest_failure_rate,
      if(all_known = 0, NULL, 1 - all_failed / all_known) AS global_success_rate,
      if(all_failed = 0, NULL, failed / all_failed) AS failure_share,
      if(all_known = 0, NULL, known / all_known) AS task_share,
      if(all_failed = 0 OR known = 0, NULL, failure_share / task_share) AS concentration,
      (failed + rest_failures) / nullIf(known + rest_tasks, 0) AS pooled_rate,
      if(known = 0 OR rest_tasks = 0 OR pooled_rate IN (0, 1), NULL,
          (failure_rate - rest_failure_rate) / sqrt(pooled_rate * (1 - pooled_rate) * (1 / known + 1 / rest_tasks))) AS z,
      greatest(3, bonferroni_t - (2.515517 + 0.802853 * bonferroni_t + 0.010328 * bonferroni_t * bonferroni_t)
          / (1 + 1.432788 * bonferroni_t + 0.189269 * bonferroni_t * bonferroni_t + 0.001308 * bonferroni_t * bonferroni_t * bonferroni_t)) AS z_needed,
      if(rest_tasks = 0, NULL, sqrt(failed) + sqrt(failed + 1) - sqrt(4 * known * rest_failure_rate + 1)) AS freeman_tukey,
      ifNull(z >= z_needed AND freeman_tukey >= z_needed AND failure_rate >= 1.5 * rest_failure_rate, 0) AS significantly_worse,
      ifNull(significantly_worse AND (1 - rest_failure_rate) - global_success_rate < 0.05, 0) AS masked_by_average
  FROM groups
  CROSS JOIN totals`;

/**
 * v_failure_concentration (whole hours from cohort_route_hourly, the rest from per-task rows)
 * equal to the computation from raw spans on every window: every column exactly.
 */
async function expectConcentrationEqualRaw(): Promise<void> {
  let groups = 0;
  for (const [, fromMs, toMs] of WINDOWS) {
    const window = { from: toClickHouseTime(dateAt(fromMs)), to: toClickHouseTime(dateAt(toMs)) };
    const rollups = await temp.store.query(
      `SELECT * FROM v_failure_concentration(from = {from:DateTime64(9, 'UTC')}, to = {to:DateTime64(9, 'UTC')})
       ORDER BY cohort, primary_route`,
      window,
      anyRow,
    );
    const raw = await temp.store.query(
      `SELECT * FROM (${CONCENTRATION_FROM_SPANS}) ORDER BY cohort, primary_route`,
      window,
      anyRow,
    );
    expect(rollups).toEqual(raw);
    groups += rollups.length;
    // The report computes it from the window metrics' counts instead (no filter): the same.
    const fromView = await temp.store.query(
      `SELECT * FROM v_failure_concentration(from = {from:DateTime64(9, 'UTC')}, to = {to:DateTime64(9, 'UTC')})
       ORDER BY cohort, primary_route`,
      window,
      concentrationRow,
    );
    const metrics = await temp.store.query(
      `SELECT * FROM v_window_metrics(from = {from:DateTime64(9, 'UTC')}, to = {to:DateTime64(9, 'UTC')},
         cohorts = [], routes = [], services = [], policies = [])
       WHERE NOT is_overall ORDER BY cohort, primary_route`,
      window,
      windowRow,
    );
    expect(concentrationOf(metrics)).toEqual(fromView);
  }
  expect(groups).toBeGreaterThan(0);
}

/**
 * Each bucket of v_timeseries_metrics equal to the raw tasks started in it, of the cohorts, routes,
 * services and policy versions of `filter`; unfiltered, v_cohort_route_timeseries gives the same.
 */
async function expectTimeseriesEqualRaw(
  bucketSeconds: number,
  filter: Record<string, string[]> = {},
): Promise<void> {
  const params = {
    from: toClickHouseTime(dateAt(-30 * HOUR + 17 * 60_000)),
    to: toClickHouseTime(dateAt(3 * HOUR)),
    bucket: bucketSeconds,
    cohorts: filter['cohorts'] ?? [],
    routes: filter['routes'] ?? [],
    services: filter['services'] ?? [],
    policies: filter['policies'] ?? [],
  };
  const columns =
    'tasks, successes, failures, known_outcomes, success_rate, total_cost_usd, cost_per_successful_task, fallbacks, fallback_rate, cascades, invisible_fallbacks, top_fallback_reasons, ' +
    'p95_calls_per_task, loop_rate, total_model_calls, unpriced_model_calls, http_counted_model_calls, retried_model_calls, total_http_retries, total_retry_wait_ms';
  const range =
    "from = {from:DateTime64(9, 'UTC')}, to = {to:DateTime64(9, 'UTC')}, bucket = {bucket:UInt32}";
  const readSeries = (view: string, lists: string) =>
    temp.store.query(
      `SELECT toString(bucket_start) AS bucket, cohort, primary_route, ${columns}
       FROM ${view}(${range}${lists}) ORDER BY bucket, cohort, primary_route`,
      params,
      anyRow,
    );
  const rollups = await readSeries(
    'v_timeseries_metrics',
    ', cohorts = {cohorts:Array(String)}, routes = {routes:Array(String)}, services = {services:Array(String)}, policies = {policies:Array(String)}',
  );
  if (Object.keys(filter).length === 0)
    expect(await readSeries('v_cohort_route_timeseries', '')).toEqual(rollups);
  // The raw tasks, bucketed here, with v_cohort_route_window_from_spans' definitions.
  const raw = await temp.store.query(
    `SELECT toString(toDateTime64(toStartOfInterval(started_at, toIntervalSecond({bucket:UInt32})), 9, 'UTC')) AS bucket, cohort, primary_route,
       count() AS tasks, countIf(outcome = 'success') AS successes,
       countIf(outcome IN ('failure', 'escalated', 'abandoned')) AS failures,
       countIf(outcome != 'unknown') AS known_outcomes,
       if(known_outcomes = 0, NULL, successes / known_outcomes) AS success_rate,
       toFloat64(sum(llm_cost + cleanup_cost)) AS total_cost_usd,
       if(successes = 0, NULL, total_cost_usd / successes) AS cost_per_successful_task,
       countIf(attempts >= 2) AS fallbacks, fallbacks / tasks AS fallback_rate,
       countIf(attempts > 2) AS cascades, sum(invisible_fallbacks) AS invisible_fallbacks,
       arraySort(x -> (-x.2, x.1), arrayMap(r -> (if(r = '', '(none)', r), toUInt64(countEqual(groupArrayArray(arrayDistinct(fallback_reasons)), r))), arrayDistinct(groupArrayArray(fallback_reasons)))) AS top_fallback_reasons,
       quantileExactHigh(0.95)(model_calls) AS p95_calls_per_task, countIf(model_calls > 10) / tasks AS loop_rate,
       sum(model_calls) AS total_model_calls, sum(unpriced_calls) AS unpriced_model_calls,
       sum(http_counted_calls) AS http_counted_model_calls, sum(retried_calls) AS retried_model_calls,
       sum(http_retries) AS total_http_retries, sum(retry_wait_ms) AS total_retry_wait_ms
     FROM v_tasks_from_spans
     WHERE started_at >= {from:DateTime64(9, 'UTC')} AND started_at < {to:DateTime64(9, 'UTC')} AND eval_run = ''
       AND (empty({cohorts:Array(String)}) OR has({cohorts:Array(String)}, cohort))
       AND (empty({routes:Array(String)}) OR has({routes:Array(String)}, primary_route))
       AND (empty({services:Array(String)}) OR has({services:Array(String)}, service_name))
       AND (empty({policies:Array(String)}) OR has({policies:Array(String)}, policy_version))
     GROUP BY bucket, cohort, primary_route ORDER BY bucket, cohort, primary_route`,
    params,
    anyRow,
  );
  expect(rollups.length).toBeGreaterThan(0);
  expect(rollups).toEqual(raw);
}

/**
 * v_window_scores (whole hours from cohort_route_hourly's score sums, the rest from per-task rows)
 * against the raw tasks: n exactly; the mean and the deviation are Float64 sums in another order
 * (the deviation from Σ score², which loses digits when the scores barely vary), so within 1e-12
 * and 1e-6.
 */
async function expectScoresEqualRaw(): Promise<void> {
  let names = 0;
  for (const [, fromMs, toMs] of WINDOWS) {
    const window = {
      from: toClickHouseTime(dateAt(fromMs)),
      to: toClickHouseTime(dateAt(toMs)),
      ...NO_FILTER,
    };
    const rollups = await temp.store.query(
      `SELECT * FROM v_window_scores(from = {from:DateTime64(9, 'UTC')}, to = {to:DateTime64(9, 'UTC')},
         cohorts = {cohorts:Array(String)}, routes = {routes:Array(String)},
         services = {services:Array(String)}, policies = {policies:Array(String)})
       ORDER BY is_overall, cohort, primary_route, score_name`,
      window,
      anyRow,
    );
    const raw = await temp.store.query(
      `SELECT grouping(cohort, primary_route) != 0 AS is_overall, cohort, primary_route, score_name,
         count() AS n, avg(score) AS mean_score, if(n < 2, NULL, stddevSamp(score)) AS score_stddev
       FROM v_tasks_from_spans ARRAY JOIN mapKeys(scores) AS score_name, mapValues(scores) AS score
       WHERE started_at >= {from:DateTime64(9, 'UTC')} AND started_at < {to:DateTime64(9, 'UTC')} AND eval_run = ''
       GROUP BY GROUPING SETS ((cohort, primary_route, score_name), (score_name))
       ORDER BY is_overall, cohort, primary_route, score_name`,
      window,
      anyRow,
    );
    const key = (row: Record<string, unknown>) =>
      [row['is_overall'], row['cohort'], row['primary_route'], row['score_name'], row['n']].join(
        '/',
      );
    expect(rollups.map(key)).toEqual(raw.map(key));
    rollups.forEach((row, i) => {
      const other = raw[i]!;
      expect(Number(row['mean_score'])).toBeCloseTo(Number(other['mean_score']), 12);
      if (other['score_stddev'] === null) expect(row['score_stddev']).toBeNull();
      else expect(Number(row['score_stddev'])).toBeCloseTo(Number(other['score_stddev']), 6);
    });
    names += rollups.length;
    // The report computes them from the window metrics' score sums instead: the same.
    const [metrics, fromView] = await Promise.all([
      temp.store.query(
        `SELECT * FROM v_window_metrics(from = {from:DateTime64(9, 'UTC')}, to = {to:DateTime64(9, 'UTC')},
           cohorts = [], routes = [], services = [], policies = []) ORDER BY is_overall, cohort, primary_route`,
        window,
        windowRow,
      ),
      temp.store.query(
        `SELECT * FROM v_window_scores(from = {from:DateTime64(9, 'UTC')}, to = {to:DateTime64(9, 'UTC')},
           cohorts = [], routes = [], services = [], policies = []) ORDER BY is_overall, cohort, primary_route, score_name`,
        window,
        scoreRow,
      ),
    ]);
    // Both sides sum Float64 over parts read in parallel: the last bits may differ between reads.
    const computed = metrics.flatMap((row) => scoresOf(row).map((score) => ({ row, score })));
    expect(
      computed.map(({ row, score }) => [
        row.is_overall,
        row.cohort,
        row.primary_route,
        score.name,
        score.n,
      ]),
    ).toEqual(
      fromView.map((row) => [row.is_overall, row.cohort, row.primary_route, row.score_name, row.n]),
    );
    computed.forEach(({ score }, i) => {
      const other = fromView[i]!;
      expect(score.mean).toBeCloseTo(other.mean_score, 12);
      expect(score.interval === null).toBe(other.mean_score_lower === null);
      if (score.interval) {
        expect(score.interval.lower).toBeCloseTo(other.mean_score_lower!, 12);
        expect(score.interval.upper).toBeCloseTo(other.mean_score_upper!, 12);
      }
    });
  }
  expect(names).toBeGreaterThan(0);
}

const NO_FILTER = { cohorts: [], routes: [], services: [], policies: [] };

/**
 * The analyzer's flat reads (storage/window-sql.ts: the changed tasks bound as parameters, the
 * v_tasks_live branch dropped when none changed) against the views they are made from, on a window
 * with partial hours and filtered: the same rows. Float64 sums and t-digests are compared as the
 * raw comparisons compare them (their last bits depend on the order of the parts).
 */
async function expectFlatEqualViews(): Promise<void> {
  const changed = await readChanged(temp.store);
  const [stored] = await temp.store.query('SELECT count() AS n FROM v_tasks_changed', {}, countRow);
  // Up to one more than can be bound: beyond MAX_BOUND_CHANGED_TASKS (before the first refresh
  // here) the flat reads fall back to the views' own statements, which this compares as well.
  expect(changed.tasks).toHaveLength(Math.min(stored!.n, MAX_BOUND_CHANGED_TASKS + 1));
  // Windows with partial hours: one holding a whole UTC day (read from cohort_route_daily), one of
  // 24 h that holds none (its flat statement goes without the daily branch).
  const DAY = 24 * HOUR;
  const midnight = Math.floor(dateAt(-30 * HOUR).getTime() / DAY) * DAY;
  const windows = [
    { from: new Date(midnight - 7 * HOUR + 17 * 60_000), to: new Date(midnight + DAY + 3 * HOUR) },
    { from: new Date(midnight + 5 * HOUR + 17 * 60_000), to: new Date(midnight + DAY + 5 * HOUR) },
  ];
  expect(
    windows.map((w) =>
      holdsWholeDay({ from: toClickHouseTime(w.from), to: toClickHouseTime(w.to) }),
    ),
  ).toEqual([true, false]);
  for (const window of windows) {
    await expectFlatEqualViewsIn(changed, {
      from: toClickHouseTime(window.from),
      to: toClickHouseTime(window.to),
      bucket: 3600,
    });
  }
}

async function expectFlatEqualViewsIn(
  changed: Changed,
  params: { from: string; to: string; bucket: number },
): Promise<void> {
  const args: Record<(typeof FLAT_VIEWS)[number], string> = {
    v_tasks: '',
    v_window_metrics: `(from = {from:DateTime64(9, 'UTC')}, to = {to:DateTime64(9, 'UTC')}, cohorts = {cohorts:Array(String)}, routes = {routes:Array(String)}, services = {services:Array(String)}, policies = {policies:Array(String)})`,
    v_timeseries_metrics: `(from = {from:DateTime64(9, 'UTC')}, to = {to:DateTime64(9, 'UTC')}, bucket = {bucket:UInt32}, cohorts = {cohorts:Array(String)}, routes = {routes:Array(String)}, services = {services:Array(String)}, policies = {policies:Array(String)})`,
  };
  for (const filter of [NO_FILTER, { ...NO_FILTER, cohorts: ['cohort-03', 'scenario'] }]) {
    for (const view of FLAT_VIEWS) {
      const order = 'ORDER BY ALL';
      const fromView = await temp.store.query(
        `SELECT * FROM ${view}${args[view]} ${order}`,
        { ...params, ...filter },
        anyRow,
      );
      const flat = await queryFlat(
        temp.store,
        view,
        changed,
        `SELECT * FROM {view} ${order}`,
        { ...params, ...filter },
        anyRow,
      );
      expect(fromView.length, view).toBeGreaterThan(0);
      if (view === 'v_tasks') expect(flat, view).toEqual(fromView);
      else expectRowsEqual(flat, fromView);
    }
    // The report reads v_window_metrics's sums and derives the other columns itself
    // (analyzer/window-derive.ts): the view's rows, parsed as the report parses them.
    const order = 'ORDER BY is_overall, cohort, primary_route';
    const derived = await queryFlat(
      temp.store,
      'v_window_metrics',
      changed,
      `SELECT * FROM {view} ${order}`,
      { ...params, ...filter },
      windowSumsRow,
      { derived: false },
    );
    const viewRows = await temp.store.query(
      `SELECT * FROM v_window_metrics${args.v_window_metrics} ${order}`,
      { ...params, ...filter },
      windowRow,
    );
    expect(viewRows.length).toBeGreaterThan(1);
    expectRowsEqual(derived.map(deriveWindowRow), viewRows);
  }
}

async function expectAllEqualRaw(): Promise<void> {
  await expectTasksEqualRaw();
  await expectWindowsEqualRaw();
  await expectConcentrationEqualRaw();
  for (const bucket of [900, 3600, 86_400]) await expectTimeseriesEqualRaw(bucket);
  // Cut before the sums: a policy version's or a service's buckets hold its own tasks only.
  for (const filter of FILTERS.slice(1)) await expectTimeseriesEqualRaw(3600, filter);
  await expectScoresEqualRaw();
  await expectFlatEqualViews();
}

const taskRow = (id: string) =>
  temp.store
    .query('SELECT * FROM v_tasks WHERE task_id = {id:String}', { id }, anyRow)
    .then((rows) => rows[0]);

describe('rollups against the computation from raw spans', () => {
  it('are equal before any refresh, every task computed from task_events', async () => {
    const [state] = await temp.store.query('SELECT count() AS n FROM rollup_state', {}, countRow);
    expect(state!.n).toBe(0);
    await expectAllEqualRaw();
  });

  it('are equal after a refresh, every task read from task_snapshot and cohort_route_hourly', async () => {
    const refreshed = await refreshRollups(temp.store, { marginMs: 0 });
    expect(refreshed.tasks).toBe(GENERATED_TASKS + 3);
    const [changed] = await temp.store.query(
      'SELECT count() AS n FROM v_tasks_changed',
      {},
      countRow,
    );
    expect(changed!.n).toBe(0);
    // The window over all of it holds at least one whole UTC day, which the views read from
    // cohort_route_daily.
    const [days] = await temp.store.query(
      'SELECT uniqExact(day) AS n FROM cohort_route_daily FINAL',
      {},
      countRow,
    );
    expect(days!.n).toBeGreaterThanOrEqual(2);
    await expectAllEqualRaw();
  });

  it('count a retried export once though it was stored twice', async () => {
    expect(rw.writer.stats.duplicatesDropped).toBe(0);
    const [stored] = await temp.store.query(
      "SELECT count() AS n FROM task_events FINAL WHERE task_id = 'retried-export'",
      {},
      countRow,
    );
    // Two inserts of two spans, collapsed to the two spans; one task, one LLM call.
    expect(stored!.n).toBe(2);
    expect(await taskRow('retried-export')).toMatchObject({ model_calls: '1', attempts: 1 });
  });

  it('are equal with changes since the refresh: a late outcome after the hour closed, its retry, the primary route arriving hours later from an earlier hour, another retried export', async () => {
    // Observed 3 h after the task's hour closed; sent twice without observedAt by one client.
    await report({
      taskId: 'late-after-hour',
      outcome: 'failure',
      reason: 'user_reported',
      cleanupCostUsd: 0.25,
      observedAt: new Date(BASE_MS + 3 * HOUR).toISOString(),
    });
    await report({ taskId: 'late-after-hour', outcome: 'escalated', cleanupCostUsd: 0.5 });
    await new Promise((resolve) => setTimeout(resolve, 5));
    await report({ taskId: 'late-after-hour', outcome: 'escalated', cleanupCostUsd: 0.5 });
    await post(hoursApartLater);
    await post(retriedExport);

    const [changed] = await temp.store.query(
      'SELECT count() AS n FROM v_tasks_changed',
      {},
      countRow,
    );
    expect(changed!.n).toBe(3);
    await expectAllEqualRaw();

    expect(await taskRow('late-after-hour')).toMatchObject({
      outcome: 'escalated',
      late_wins: 1,
      cleanup_cost_usd: 0.75,
    });
    expect(await taskRow('hours-apart')).toMatchObject({
      primary_route: 'small',
      attempts: 2,
      fallback_reasons: ['timeout'],
    });
  });

  it('are equal after the next refresh, which moves a task to the earlier hour and retires its old row', async () => {
    const refreshed = await refreshRollups(temp.store, { marginMs: 0 });
    expect(refreshed.tasks).toBe(3);
    await expectAllEqualRaw();
    const rows = await temp.store.query(
      "SELECT toString(toStartOfHour(started_at)) AS hour, is_deleted FROM task_snapshot FINAL WHERE task_id = 'hours-apart'",
      {},
      z.object({ hour: z.string(), is_deleted: z.number() }),
    );
    expect(rows).toEqual([{ hour: toClickHouseTime(dateAt(HOUR)).slice(0, 19), is_deleted: 0 }]);
    const retired = await temp.store.query(
      "SELECT toString(toStartOfHour(started_at)) AS hour FROM task_snapshot WHERE task_id = 'hours-apart' AND is_deleted = 1",
      {},
      z.object({ hour: z.string() }),
    );
    expect(retired).toEqual([{ hour: toClickHouseTime(dateAt(2 * HOUR)).slice(0, 19) }]);
    // The task's old hour held only it in its cohort × route: that group is retired as well.
    const [hourly] = await temp.store.query(
      `SELECT sum(tasks) AS n FROM cohort_route_hourly FINAL
       WHERE cohort = 'scenario' AND hour = {hour:DateTime('UTC')}`,
      { hour: toClickHouseTime(dateAt(2 * HOUR)).slice(0, 19) },
      countRow,
    );
    expect(hourly!.n).toBe(0);
  });

  it('leave the hours still going on to the refresh after they end, and are equal meanwhile', async () => {
    // Here "still going on" is every hour from BASE-6h on (openFrom), so that whole windows hold one.
    const hourOf = (offsetMs: number) => toClickHouseTime(dateAt(offsetMs)).slice(0, 13) + ':00:00';
    const routing = { 'routewatch.route': 'small', 'routewatch.attempt': 1 };
    await post([
      span('pending-hour', 'task', -5 * HOUR + 5 * 60_000, { 'routewatch.outcome': 'failure' }),
      span('pending-hour', 'attempt', -5 * HOUR + 5 * 60_000 + 1, routing),
      span('pending-hour', 'llm', -5 * HOUR + 5 * 60_000 + 2, routing),
      span('closed-hour', 'task', -20 * HOUR + 5 * 60_000, { 'routewatch.outcome': 'success' }),
      span('closed-hour', 'llm', -20 * HOUR + 5 * 60_000 + 2, routing),
    ]);
    extraTasks += 2;
    const scenarioTasks = async (hour: string) => {
      const [row] = await temp.store.query(
        `SELECT sum(tasks) AS n FROM cohort_route_hourly FINAL
         WHERE cohort = 'scenario' AND hour = {hour:DateTime('UTC')}`,
        { hour },
        countRow,
      );
      return row!.n;
    };
    const pendingBefore = await scenarioTasks(hourOf(-5 * HOUR));
    const refreshed = await refreshRollups(temp.store, {
      marginMs: 0,
      openFrom: hourOf(-6 * HOUR),
    });
    expect(refreshed).toMatchObject({ tasks: 2, hours: 1, pendingHours: [hourOf(-5 * HOUR)] });
    // The closed hour is rebuilt; the one still going on is not, and the views read it (and its
    // day) from the tasks' rows until it is.
    expect(await scenarioTasks(hourOf(-20 * HOUR))).toBeGreaterThanOrEqual(1);
    expect(await scenarioTasks(hourOf(-5 * HOUR))).toBe(pendingBefore);
    expect((await readChanged(temp.store)).hours).toEqual([hourOf(-5 * HOUR)]);
    await expectAllEqualRaw();

    // The next refresh, with nothing changed, rebuilds the hour now that it is over.
    const next = await refreshRollups(temp.store, { marginMs: 0 });
    expect(next).toMatchObject({ tasks: 0, hours: 1, pendingHours: [] });
    expect(await scenarioTasks(hourOf(-5 * HOUR))).toBe(pendingBefore + 1);
    expect((await readChanged(temp.store)).hours).toEqual([]);
    await expectAllEqualRaw();
  }, 180_000);

  it('do not change when a refresh finds nothing to do', async () => {
    const refreshed = await refreshRollups(temp.store, { marginMs: 0 });
    expect(refreshed).toMatchObject({ tasks: 0, hours: 0 });
    await expectTasksEqualRaw();
  });
});

describe('RollupRefresher', () => {
  it('refreshes at start and on demand, one refresh at a time, and stops', async () => {
    await post([span('refresher', 'task', 30 * 60_000, { 'routewatch.outcome': 'success' })]);
    const refresher = new RollupRefresher(temp.store, {
      intervalMs: 60_000,
      refresh: { marginMs: 0 },
    });
    refresher.start();
    await vi.waitFor(() => expect(refresher.stats.refreshes).toBe(1), { timeout: 30_000 });
    expect(refresher.stats.last?.tasks).toBe(1);
    const [first, second] = await Promise.all([refresher.refreshNow(), refresher.refreshNow()]);
    expect([first.tasks, second.tasks]).toEqual([0, 0]);
    // One after the other: each stamps its version (ClickHouse time) in its first statement, so
    // the second's comes at least the rest of the first's run after the first's. Two at once would
    // stamp theirs together. (The first's duration also counts the time before its stamp, which a
    // loaded machine stretches: CI failed `≥ durationMs − 5` once; half of it holds.)
    const ms = (time: string) => Date.parse(`${time.replace(' ', 'T').slice(0, 23)}Z`);
    expect(ms(second.refreshedAt) - ms(first.refreshedAt)).toBeGreaterThanOrEqual(
      first.durationMs / 2,
    );
    await refresher.stop();
    const after = refresher.stats.refreshes;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(refresher.stats.refreshes).toBe(after);
    expect(refresher.stats.failures).toBe(0);
    expect(await taskRow('refresher')).toMatchObject({ outcome: 'success' });
  });

  it('says a store outage once, not at every refresh, and says when the store answers again', async () => {
    // The store, failing every call as a server that does not answer while `down`.
    let down = true;
    const unreachable = new Proxy(temp.store, {
      get(target, key, receiver) {
        const value: unknown = Reflect.get(target, key, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (down) return Promise.reject(storeUnreachable());
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const lines: Array<[string, string]> = [];
    const at = (level: string) => (_fields: object, message: string) =>
      lines.push([level, message]);
    const refresher = new RollupRefresher(unreachable, {
      intervalMs: 10,
      repairEveryMs: 10,
      refresh: { marginMs: 0 },
      log: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') },
    });
    refresher.start();
    await vi.waitFor(() => expect(refresher.stats.failures).toBeGreaterThanOrEqual(10), {
      timeout: 30_000,
    });
    down = false;
    await vi.waitFor(() => expect(lines.some(([level]) => level === 'info')).toBe(true), {
      timeout: 30_000,
    });
    await refresher.stop();
    const said = lines.filter(([level]) => level !== 'debug');
    expect(said.map(([level, message]) => [level, message.split(':')[0]])).toEqual([
      ['warn', 'rollup refresh skipped'],
      ['info', 'rollup refresh'],
    ]);
    expect(said[0]![1]).toContain('nothing is lost: the first refresh once it answers');
    expect(said[1]![1]).toBe('rollup refresh: the store answers again');
    // No repair was tried against a store known to be down.
    expect(refresher.stats.repairFailures).toBe(0);
  });

  it('runs a repair of rows seen late after its periodic refreshes, every repairEveryMs', async () => {
    const refresher = new RollupRefresher(temp.store, {
      intervalMs: 20,
      repairEveryMs: 50,
      refresh: { marginMs: 0 },
    });
    refresher.start();
    await vi.waitFor(() => expect(refresher.stats.repairs).toBeGreaterThanOrEqual(2), {
      timeout: 30_000,
    });
    // (A refresh stop() interrupts counts as a failure: refreshes run every 20 ms here.)
    await refresher.stop();
    expect(refresher.stats.repairFailures).toBe(0);
    // Nothing was seen late here: once refreshed, every snapshot equals its events.
    await refreshRollups(temp.store, { marginMs: 0 });
    expect(await repairRollups(temp.store)).toEqual({ tasks: 0 });
  });
});
