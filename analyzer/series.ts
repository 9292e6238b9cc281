import { z } from 'zod';
import { chNumber } from '../storage/rows.js';
import type { Store } from '../storage/store.js';
import type { RatioSums } from './stats.js';
import { toClickHouseTime } from './report.js';
import { queryTasks } from '../storage/window-sql.js';

/**
 * What the evaluator reads from the store: additive counts of tasks, per cohort × primary route
 * × policy version, in time buckets over the current window and as one aggregate over a
 * baseline range. Everything the rules test is a sum of per-task facts, so buckets add up.
 */

/** Additive counts over a set of tasks. */
export interface TaskCounts {
  tasks: number;
  /** Tasks with a known outcome, and of those the failures (failure, escalated, abandoned) and successes. */
  known: number;
  failures: number;
  successes: number;
  cost: number;
  costSquared: number;
  /** Σ cost of the successful tasks. */
  successCost: number;
  /**
   * Σ cost and Σ cost² of the tasks with a known outcome: the cost rules judge only those, so a
   * task whose outcome has not arrived yet is not counted as money spent without a success.
   */
  knownCost: number;
  knownCostSquared: number;
  fallbacks: number;
  cascades: number;
  /** Tasks with a fallback that gave no reason. */
  invisible: number;
  reasks: number;
  escalations: number;
  /** Tasks over the loop rules' call budget. */
  loops: number;
  calls: number;
  unpricedCalls: number;
  /** Model calls whose HTTP requests were counted, and those the SDK retried (more than one). */
  httpCountedCalls: number;
  retriedCalls: number;
  /** Tasks slower than their monitor's latency threshold (the baseline p95). */
  slow: number;
  /** Tasks that fell back, by reason (`(none)` for a fallback without one). */
  reasons: Record<string, number>;
}

export function emptyCounts(): TaskCounts {
  return {
    tasks: 0,
    known: 0,
    failures: 0,
    successes: 0,
    cost: 0,
    costSquared: 0,
    successCost: 0,
    knownCost: 0,
    knownCostSquared: 0,
    fallbacks: 0,
    cascades: 0,
    invisible: 0,
    reasks: 0,
    escalations: 0,
    loops: 0,
    calls: 0,
    unpricedCalls: 0,
    httpCountedCalls: 0,
    retriedCalls: 0,
    slow: 0,
    reasons: {},
  };
}

/**
 * The sums cost per successful task is estimated from, over the tasks with a known outcome: a
 * task still waiting for its outcome is neither a success nor a failure yet, and counting its
 * cost against the successes so far would read late outcomes as a rise in cost.
 */
export function knownOutcomeSums(c: TaskCounts): RatioSums {
  return {
    tasks: c.known,
    successes: c.successes,
    cost: c.knownCost,
    costSquared: c.knownCostSquared,
    successCost: c.successCost,
  };
}

/** Adds `b` into `a` (in place) and returns `a`. */
export function addCounts(a: TaskCounts, b: TaskCounts): TaskCounts {
  a.tasks += b.tasks;
  a.known += b.known;
  a.failures += b.failures;
  a.successes += b.successes;
  a.cost += b.cost;
  a.costSquared += b.costSquared;
  a.successCost += b.successCost;
  a.knownCost += b.knownCost;
  a.knownCostSquared += b.knownCostSquared;
  a.fallbacks += b.fallbacks;
  a.cascades += b.cascades;
  a.invisible += b.invisible;
  a.reasks += b.reasks;
  a.escalations += b.escalations;
  a.loops += b.loops;
  a.calls += b.calls;
  a.unpricedCalls += b.unpricedCalls;
  a.httpCountedCalls += b.httpCountedCalls;
  a.retriedCalls += b.retriedCalls;
  a.slow += b.slow;
  for (const [reason, n] of Object.entries(b.reasons))
    a.reasons[reason] = (a.reasons[reason] ?? 0) + n;
  return a;
}

const countsColumns = {
  tasks: chNumber,
  known: chNumber,
  failures: chNumber,
  successes: chNumber,
  cost: chNumber,
  cost_squared: chNumber,
  success_cost: chNumber,
  known_cost: chNumber,
  known_cost_squared: chNumber,
  fallbacks: chNumber,
  cascades: chNumber,
  invisible: chNumber,
  reasks: chNumber,
  escalations: chNumber,
  loops: chNumber,
  calls: chNumber,
  unpriced_calls: chNumber,
  http_counted_calls: chNumber,
  retried_calls: chNumber,
  slow: chNumber,
  reason_names: z.array(z.string()),
  reason_tasks: z.array(chNumber),
};

type CountsRow = { [K in keyof typeof countsColumns]: z.output<(typeof countsColumns)[K]> };

function countsOf(row: CountsRow): TaskCounts {
  const reasons: Record<string, number> = {};
  row.reason_names.forEach((name, i) => {
    reasons[name === '' ? '(none)' : name] = row.reason_tasks[i] ?? 0;
  });
  return {
    tasks: row.tasks,
    known: row.known,
    failures: row.failures,
    successes: row.successes,
    cost: row.cost,
    costSquared: row.cost_squared,
    successCost: row.success_cost,
    knownCost: row.known_cost,
    knownCostSquared: row.known_cost_squared,
    fallbacks: row.fallbacks,
    cascades: row.cascades,
    invisible: row.invisible,
    reasks: row.reasks,
    escalations: row.escalations,
    loops: row.loops,
    calls: row.calls,
    unpricedCalls: row.unpriced_calls,
    httpCountedCalls: row.http_counted_calls,
    retriedCalls: row.retried_calls,
    slow: row.slow,
    reasons,
  };
}

/** The aggregate expressions over `t`, a per-task subquery with a `slow` flag. */
const COUNTS_SQL = `
    count() AS tasks,
    countIf(outcome != 'unknown') AS known,
    countIf(outcome IN ('failure', 'escalated', 'abandoned')) AS failures,
    countIf(outcome = 'success') AS successes,
    sum(cost_usd) AS cost,
    sum(cost_usd * cost_usd) AS cost_squared,
    sumIf(cost_usd, outcome = 'success') AS success_cost,
    sumIf(cost_usd, outcome != 'unknown') AS known_cost,
    sumIf(cost_usd * cost_usd, outcome != 'unknown') AS known_cost_squared,
    countIf(attempts >= 2) AS fallbacks,
    countIf(attempts > 2) AS cascades,
    countIf(invisible_fallbacks > 0) AS invisible,
    countIf(reask) AS reasks,
    countIf(outcome = 'escalated') AS escalations,
    countIf(model_calls > {callBudget:UInt32}) AS loops,
    sum(model_calls) AS calls,
    sum(unpriced_calls) AS unpriced_calls,
    sum(http_counted_calls) AS http_counted_calls,
    sum(retried_calls) AS retried_calls,
    countIf(slow) AS slow,
    sumMap(arrayDistinct(fallback_reasons), arrayMap(r -> toUInt64(1), arrayDistinct(fallback_reasons))) AS reason_map,
    reason_map.1 AS reason_names,
    reason_map.2 AS reason_tasks`;

/**
 * Tasks started in [from, to) with a `slow` flag: slower than the threshold given for their
 * cohort × route (none: never slow).
 */
const TASKS_SQL = `
    SELECT
        *,
        indexOf({slowKeys:Array(String)}, concat(cohort, '\\t', primary_route)) AS slow_index,
        slow_index > 0 AND latency_ms > toFloat64OrZero(arrayElement({slowValues:Array(String)}, slow_index)) AS slow
    FROM {view}
    WHERE started_at >= {from:DateTime64(9, 'UTC')} AND started_at < {to:DateTime64(9, 'UTC')}
      AND eval_run = ''`;

/**
 * A condition true for the tasks of the spans `exclude` names, written into the statement. Over 2
 * million tasks (`npm run bench:exclusion`, docs/benchmarks.md) a literal OR-chain read as fast as
 * a plain read with 10 spans and 2.4× as long with 100; the same test over array parameters took
 * 3.7× and 53× (a lambda per row and span). A server also takes parameters in the URL, whose size
 * the spans would push past what proxies accept. Names are quoted as ClickHouse string literals.
 */
function excludedTasksSql(exclude: readonly ExcludedSpan[]): string {
  return exclude
    .map(
      (e) =>
        `(${routeSql(e.cohort, e.route)}` +
        ` AND started_at >= ${msSql(e.fromMs)} AND started_at < ${msSql(e.toMs)})`,
    )
    .join('\n        OR ');
}

/**
 * A condition true for the tasks from `fromMs` on, and for those of each cohort × route `reach`
 * names from its own, earlier start: written into the statement, as the spans left out are.
 */
function reachSql(fromMs: number, reach: readonly RouteReach[]): string {
  return [
    `started_at >= ${msSql(fromMs)}`,
    ...reach.map((r) => `(${routeSql(r.cohort, r.route)} AND started_at >= ${msSql(r.fromMs)})`),
  ].join('\n        OR ');
}

/**
 * The most one span or reach of this cohort × route adds to a statement (excludedTasksSql,
 * reachSql), in bytes: its quoted names and the time condition around them.
 */
export function clauseBytes(cohort: string, route: string): number {
  return (
    Buffer.byteLength(routeSql(cohort, route)) + 2 * msSql(Number.MAX_SAFE_INTEGER).length + 60
  );
}

/** One cohort × route, its names quoted as ClickHouse string literals. */
function routeSql(cohort: string, route: string): string {
  // Braces as escapes too: `{view}` and `{name:Type}` in the statement are placeholders.
  const quoted = (text: string) =>
    `'${text
      .replaceAll('\\', '\\\\')
      .replaceAll("'", "\\'")
      .replaceAll('{', '\\x7B')
      .replaceAll('}', '\\x7D')}'`;
  return `cohort = ${quoted(cohort)} AND primary_route = ${quoted(route)}`;
}

const msSql = (value: number) => `fromUnixTimestamp64Milli(toInt64(${Math.trunc(value)}), 'UTC')`;

/** A stretch of one cohort × route's tasks left out of a read: those started in [fromMs, toMs). */
export interface ExcludedSpan {
  cohort: string;
  route: string;
  fromMs: number;
  toMs: number;
  /**
   * Older incidents of this cohort × route were dropped from the list (too many to write into a
   * statement): a read reaches back no further than this span's start (evaluator.ts reachBack).
   */
  cut?: boolean;
}

/** A cohort × route read from further back than the rest of a read: from its own fromMs. */
export interface RouteReach {
  cohort: string;
  route: string;
  fromMs: number;
}

export interface SeriesOptions {
  /** Model calls per task above which a task counts as a loop. */
  callBudget: number;
  /** Latency threshold per `cohort\troute` (ms), for the `slow` count. */
  slowThresholds?: ReadonlyMap<string, number>;
  /** Tasks left out, by aggregateCounts only: a baseline without the incidents of its routes. */
  exclude?: readonly ExcludedSpan[];
  /**
   * Cohort × routes read from before `from`, by aggregateCounts only: a baseline whose resolved
   * incidents are left out reaches back by the time they took.
   */
  reach?: readonly RouteReach[];
}

export const monitorKey = (cohort: string, route: string) => `${cohort}\t${route}`;

function params(from: Date, to: Date, options: SeriesOptions) {
  const thresholds = [...(options.slowThresholds ?? new Map<string, number>()).entries()];
  return {
    from: toClickHouseTime(from),
    to: toClickHouseTime(to),
    callBudget: options.callBudget,
    slowKeys: thresholds.map(([key]) => key),
    slowValues: thresholds.map(([, value]) => String(value)),
  };
}

export interface BucketedCounts {
  cohort: string;
  route: string;
  policyVersion: string;
  /** Counts per bucket, oldest first; every bucket present (empty ones zero). */
  buckets: TaskCounts[];
}

const bucketRow = z.object({
  cohort: z.string(),
  primary_route: z.string(),
  policy_version: z.string(),
  bucket: chNumber,
  ...countsColumns,
});

/** Counts per cohort × route × policy version in `buckets` equal buckets of [from, to). */
export async function bucketedCounts(
  store: Store,
  from: Date,
  to: Date,
  buckets: number,
  options: SeriesOptions,
): Promise<BucketedCounts[]> {
  const bucketMs = Math.max(1, Math.floor((to.getTime() - from.getTime()) / buckets));
  const rows = await queryTasks(
    store,
    `SELECT cohort, primary_route, policy_version,
            least(intDiv(toUnixTimestamp64Milli(started_at) - {fromMs:Int64}, {bucketMs:Int64}), {last:Int64}) AS bucket,
            ${COUNTS_SQL}
     FROM (${TASKS_SQL}) AS t
     GROUP BY cohort, primary_route, policy_version, bucket
     ORDER BY cohort, primary_route, policy_version, bucket`,
    { ...params(from, to, options), fromMs: from.getTime(), bucketMs, last: buckets - 1 },
    bucketRow,
  );
  const series = new Map<string, BucketedCounts>();
  for (const row of rows) {
    const key = `${row.cohort}\t${row.primary_route}\t${row.policy_version}`;
    let entry = series.get(key);
    if (!entry) {
      entry = {
        cohort: row.cohort,
        route: row.primary_route,
        policyVersion: row.policy_version,
        buckets: Array.from({ length: buckets }, emptyCounts),
      };
      series.set(key, entry);
    }
    entry.buckets[row.bucket] = countsOf(row);
  }
  return [...series.values()];
}

export interface AggregateCounts {
  cohort: string;
  route: string;
  policyVersion: string;
  counts: TaskCounts;
  /** Exact p95 task latency (ms), or null without tasks. */
  p95LatencyMs: number | null;
  /** When the last task of this group started. */
  lastStartedAt: Date;
  /** When the first task of this group started (within the range read). */
  firstStartedAt: Date;
}

const aggregateRow = z.object({
  cohort: z.string(),
  primary_route: z.string(),
  policy_version: z.string(),
  p95_latency_ms: z
    .union([z.number(), z.string(), z.null()])
    .transform((v) => (v === null ? null : Number(v))),
  last_started_ms: chNumber,
  first_started_ms: chNumber,
  ...countsColumns,
});

/** Counts over [from, to), per cohort × route, and per policy version too when `byVersion`. */
export async function aggregateCounts(
  store: Store,
  from: Date,
  to: Date,
  options: SeriesOptions & { byVersion: boolean },
): Promise<AggregateCounts[]> {
  const version = options.byVersion ? 'policy_version' : "'' AS policy_version";
  const reach = (options.reach ?? []).filter((r) => r.fromMs < from.getTime());
  const start = Math.min(from.getTime(), ...reach.map((r) => r.fromMs));
  const conditions = [
    ...(reach.length ? [`\n      AND (${reachSql(from.getTime(), reach)})`] : []),
    ...(options.exclude?.length ? [`\n      AND NOT (${excludedTasksSql(options.exclude)})`] : []),
  ].join('');
  const rows = await queryTasks(
    store,
    `SELECT cohort, primary_route, ${version},
            quantileExact(0.95)(latency_ms) AS p95_latency_ms,
            toUnixTimestamp64Milli(max(started_at)) AS last_started_ms,
            toUnixTimestamp64Milli(min(started_at)) AS first_started_ms,
            ${COUNTS_SQL}
     FROM (${TASKS_SQL}${conditions}) AS t
     GROUP BY cohort, primary_route${options.byVersion ? ', policy_version' : ''}`,
    params(new Date(start), to, options),
    aggregateRow,
  );
  return rows.map((row) => ({
    cohort: row.cohort,
    route: row.primary_route,
    policyVersion: row.policy_version,
    counts: countsOf(row),
    p95LatencyMs: Number.isNaN(row.p95_latency_ms) ? null : row.p95_latency_ms,
    lastStartedAt: new Date(row.last_started_ms),
    firstStartedAt: new Date(row.first_started_ms),
  }));
}

/** Failure reasons (outcome_reason) of one cohort × route's failed tasks in [from, to), most first. */
export async function failureReasons(
  store: Store,
  cohort: string,
  route: string,
  from: Date,
  to: Date,
): Promise<{ reason: string; tasks: number }[]> {
  return queryTasks(
    store,
    `SELECT if(outcome_reason = '', '(none)', outcome_reason) AS reason, count() AS tasks
     FROM {view}
     WHERE started_at >= {from:DateTime64(9, 'UTC')} AND started_at < {to:DateTime64(9, 'UTC')}
       AND cohort = {cohort:String} AND primary_route = {route:String} AND eval_run = ''
       AND outcome IN ('failure', 'escalated', 'abandoned')
     GROUP BY reason ORDER BY tasks DESC, reason LIMIT 5`,
    { from: toClickHouseTime(from), to: toClickHouseTime(to), cohort, route },
    z.object({ reason: z.string(), tasks: chNumber }),
  );
}

/** Exact p95 task latency of one cohort × route in [from, to). */
export async function p95Latency(
  store: Store,
  cohort: string,
  route: string,
  from: Date,
  to: Date,
): Promise<number | null> {
  const [row] = await queryTasks(
    store,
    `SELECT quantileExact(0.95)(latency_ms) AS p95
     FROM {view}
     WHERE started_at >= {from:DateTime64(9, 'UTC')} AND started_at < {to:DateTime64(9, 'UTC')}
       AND cohort = {cohort:String} AND primary_route = {route:String}`,
    { from: toClickHouseTime(from), to: toClickHouseTime(to), cohort, route },
    z.object({ p95: z.union([z.number(), z.string(), z.null()]) }),
  );
  const p95 = row?.p95 === null || row?.p95 === undefined ? null : Number(row.p95);
  return p95 === null || Number.isNaN(p95) ? null : p95;
}
