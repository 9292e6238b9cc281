import { z } from 'zod';
import { closestName } from '../server/edit-distance.js';
import { chFlag, chNullableNumber, chNumber } from '../storage/rows.js';
import type { Store } from '../storage/store.js';
import { queryFlat, readChanged } from '../storage/window-sql.js';
import { nonePriced } from './stats.js';
import type { Interval } from './stats.js';
import { deriveWindowRow, windowSumsRow } from './window-derive.js';

const nullableNumber = chNullableNumber;
const number = chNumber;
const flag = chFlag;

/** The metric columns of v_window_metrics (and its halves v_cohort_route_window, v_overall_window). */
const metricColumns = {
  tasks: number,
  successes: number,
  failures: number,
  known_outcomes: number,
  success_rate: nullableNumber,
  success_rate_lower: nullableNumber,
  success_rate_upper: nullableNumber,
  outcome_coverage: nullableNumber,
  total_cost_usd: number,
  cost_per_successful_task: nullableNumber,
  cost_per_successful_task_lower: nullableNumber,
  cost_per_successful_task_upper: nullableNumber,
  fallbacks: number,
  fallback_rate: number,
  cascades: number,
  cascade_rate: number,
  invisible_fallbacks: number,
  reask_rate: number,
  escalation_rate: number,
  top_fallback_reasons: z.array(
    z.union([
      z.tuple([z.string(), number]).transform(([reason, tasks]) => ({ reason, tasks })),
      z.object({ reason: z.string(), tasks: number }),
    ]),
  ),
  p50_latency_ms: nullableNumber,
  p95_latency_ms: nullableNumber,
  p99_latency_ms: nullableNumber,
  p95_calls_per_task: nullableNumber,
  loop_rate: number,
  total_model_calls: number,
  unpriced_model_calls: number,
  priced_call_share: nullableNumber,
  http_counted_model_calls: number,
  retried_model_calls: number,
  total_http_retries: number,
  total_retry_wait_ms: number,
  retry_rate: nullableNumber,
  retries_per_task: nullableNumber,
};

/** One row of v_cohort_route_window: the metrics of one cohort × primary route. */
export const cohortRouteRow = z.object({
  cohort: z.string(),
  primary_route: z.string(),
  ...metricColumns,
});
export type CohortRouteRow = z.output<typeof cohortRouteRow>;

/** The row of v_overall_window. */
export const overallRow = z.object(metricColumns);

/** One row of v_failure_concentration. */
export const concentrationRow = z.object({
  cohort: z.string(),
  primary_route: z.string(),
  tasks: number,
  failures: number,
  failure_rate: nullableNumber,
  rest_failure_rate: nullableNumber,
  global_success_rate: nullableNumber,
  concentration: nullableNumber,
  z: nullableNumber,
  significantly_worse: flag,
  masked_by_average: flag,
});
export type ConcentrationRow = z.output<typeof concentrationRow>;

/** The counts of one cohort × primary route that failure concentration is judged on. */
interface GroupCounts {
  cohort: string;
  primary_route: string;
  known_outcomes: number;
  failures: number;
}

/**
 * The z a group must reach to be significantly worse than the rest: the one-sided normal quantile
 * of 1 % ÷ the groups judged at once (Bonferroni), by Abramowitz & Stegun 26.2.23 (error under
 * 4.5·10⁻⁴), and never below 3. Written as v_failure_concentration's `z_needed`, term by term.
 */
export function bonferroniZ(groups: number): number {
  const t = Math.sqrt(-2 * Math.log(0.01 / groups));
  return Math.max(
    3,
    t -
      (2.515517 + 0.802853 * t + 0.010328 * t * t) /
        (1 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t),
  );
}

/**
 * v_failure_concentration from the per cohort × route counts of v_window_metrics: the view's
 * definitions (sql/views/v_failure_concentration.sql), one by one, in the same Float64
 * arithmetic, so the report needs no second read of the rollups (test/integration/
 * rollups.test.ts checks it equals the view). `all` is all the traffic of the window, when the
 * groups are only part of it (a filter by service or policy): each group is judged against the
 * rest of all of it.
 */
export function concentrationOf(
  groups: readonly GroupCounts[],
  all: readonly GroupCounts[] = groups,
): ConcentrationRow[] {
  const allKnown = all.reduce((sum, g) => sum + g.known_outcomes, 0);
  const allFailed = all.reduce((sum, g) => sum + g.failures, 0);
  const zNeeded = bonferroniZ(Math.max(all.filter((g) => g.known_outcomes > 0).length, 1));
  return groups.map(({ cohort, primary_route, known_outcomes: known, failures: failed }) => {
    const failureRate = known === 0 ? null : failed / known;
    const restTasks = allKnown - known;
    const restFailures = allFailed - failed;
    const restFailureRate = restTasks === 0 ? null : restFailures / restTasks;
    const globalSuccessRate = allKnown === 0 ? null : 1 - allFailed / allKnown;
    const failureShare = allFailed === 0 ? null : failed / allFailed;
    const taskShare = allKnown === 0 ? null : known / allKnown;
    const concentration = allFailed === 0 || known === 0 ? null : failureShare! / taskShare!;
    const pooled = known + restTasks === 0 ? null : (failed + restFailures) / (known + restTasks);
    const z =
      known === 0 || restTasks === 0 || pooled === null || pooled === 0 || pooled === 1
        ? null
        : (failureRate! - restFailureRate!) /
          Math.sqrt(pooled * (1 - pooled) * (1 / known + 1 / restTasks));
    const freemanTukey =
      restTasks === 0
        ? null
        : Math.sqrt(failed) + Math.sqrt(failed + 1) - Math.sqrt(4 * known * restFailureRate! + 1);
    const significantlyWorse =
      z !== null &&
      freemanTukey !== null &&
      z >= zNeeded &&
      freemanTukey >= zNeeded &&
      failureRate! >= 1.5 * restFailureRate!;
    const maskedByAverage = significantlyWorse && 1 - restFailureRate! - globalSuccessRate! < 0.05;
    return {
      cohort,
      primary_route,
      tasks: known,
      failures: failed,
      failure_rate: failureRate,
      rest_failure_rate: restFailureRate,
      global_success_rate: globalSuccessRate,
      concentration,
      z,
      significantly_worse: significantlyWorse,
      masked_by_average: maskedByAverage,
    };
  });
}

export interface FailureConcentration {
  /** Share of failures ÷ share of tasks; 1 is average. */
  ratio: number | null;
  failureRate: number | null;
  restFailureRate: number | null;
  /** One-sided two-proportion z against the rest. */
  z: number | null;
  significantlyWorse: boolean;
  /** Significantly worse while the global average stays near the rest's: a global threshold misses it. */
  maskedByAverage: boolean;
}

export interface WindowMetrics {
  tasks: number;
  successes: number;
  failures: number;
  knownOutcomes: number;
  successRate: number | null;
  /** Wilson 95 % interval of the success rate. */
  successRateInterval: Interval | null;
  outcomeCoverage: number | null;
  totalCostUsd: number;
  /** Null with no successful task, or when no model call under it was priced (unknown). */
  costPerSuccessfulTask: number | null;
  /** Delta-method 95 % interval of the cost per successful task. */
  costPerSuccessfulTaskInterval: Interval | null;
  fallbacks: number;
  fallbackRate: number;
  cascades: number;
  cascadeRate: number;
  invisibleFallbacks: number;
  reaskRate: number;
  escalationRate: number;
  topFallbackReasons: { reason: string; tasks: number; share: number }[];
  p50LatencyMs: number | null;
  p95LatencyMs: number | null;
  p99LatencyMs: number | null;
  p95CallsPerTask: number | null;
  /** Tasks over the call budget (10 model calls). */
  loopRate: number;
  modelCalls: number;
  unpricedCalls: number;
  /** Model calls with a known cost, over all; below 1 the cost per success is understated. */
  pricedCallShare: number | null;
  /**
   * Whether a model call under the costs has no known price: `totalCostUsd` and
   * `costPerSuccessfulTask` are then lower bounds, not the cost (unknown when `pricedCallShare` is 0).
   */
  costUnderstated: boolean;
  /** Model calls whose HTTP requests were counted (`routewatch.http.attempts`). */
  httpCountedCalls: number;
  /** Of those, the calls the SDK retried: more than one HTTP request. */
  retriedCalls: number;
  /** Extra HTTP requests: Σ (requests − 1) over the counted calls. */
  httpRetries: number;
  /** Time the retried calls spent between their requests, ms. */
  retryWaitMs: number;
  /** Retry rate: retried calls ÷ counted calls; null when no call was counted. */
  retryRate: number | null;
  /** Extra HTTP requests per task; null when no call was counted. */
  retriesPerTask: number | null;
  /** Named quality scores (0..1) of the tasks that carry them, by name. */
  scores: ScoreSummary[];
}

/** The mean of one named score over the tasks that carry it, with a 95 % interval. */
export interface ScoreSummary {
  name: string;
  /** Tasks with the score. */
  n: number;
  mean: number;
  /** Normal 95 % interval of the mean, clamped to 0..1; null below 2 tasks. */
  interval: Interval | null;
}

export interface CohortRouteMetrics extends WindowMetrics {
  cohort: string;
  primaryRoute: string;
  concentration: FailureConcentration | null;
}

/** Which tasks a report covers besides the window; an empty list (or none) means all. */
export interface ReportFilter {
  cohorts?: readonly string[];
  routes?: readonly string[];
  services?: readonly string[];
  policies?: readonly string[];
}

export interface Report {
  from: string;
  to: string;
  generatedAt: string;
  /** The filter applied, as given. */
  filter: Required<ReportFilter>;
  rows: CohortRouteMetrics[];
  /** Every task of the window together: the global average beside what it hides. */
  overall: WindowMetrics | null;
  /**
   * Cohorts and routes the filter names that no task of the window has (a typo reads as "no
   * traffic" otherwise), each with the name of the window it most likely means; absent when
   * every name matched or there is no such filter.
   */
  unmatched?: UnmatchedName[];
}

export interface UnmatchedName {
  filter: 'cohort' | 'route';
  name: string;
  /** The window's name nearest it, when near enough to be a typo of it; null otherwise. */
  suggestion: string | null;
}

export interface ReportWindow {
  from: Date;
  to: Date;
}

/** ClickHouse DateTime64 literal in UTC, e.g. 2026-11-28 12:00:00.000. */
export function toClickHouseTime(date: Date): string {
  return date.toISOString().replace('T', ' ').replace('Z', '');
}

const interval = (lower: number | null, upper: number | null): Interval | null =>
  lower === null || upper === null ? null : { lower, upper };

function toWindowMetrics(row: z.output<typeof overallRow>): WindowMetrics {
  // No model call priced: the cost per success is unknown, not $0.
  const unknownCost = nonePriced(row.total_model_calls, row.unpriced_model_calls);
  return {
    tasks: row.tasks,
    successes: row.successes,
    failures: row.failures,
    knownOutcomes: row.known_outcomes,
    successRate: row.success_rate,
    successRateInterval: interval(row.success_rate_lower, row.success_rate_upper),
    outcomeCoverage: row.outcome_coverage,
    totalCostUsd: row.total_cost_usd,
    costPerSuccessfulTask: unknownCost ? null : row.cost_per_successful_task,
    costPerSuccessfulTaskInterval: unknownCost
      ? null
      : interval(row.cost_per_successful_task_lower, row.cost_per_successful_task_upper),
    fallbacks: row.fallbacks,
    fallbackRate: row.fallback_rate,
    cascades: row.cascades,
    cascadeRate: row.cascade_rate,
    invisibleFallbacks: row.invisible_fallbacks,
    reaskRate: row.reask_rate,
    escalationRate: row.escalation_rate,
    topFallbackReasons: row.top_fallback_reasons.map((r) => ({
      reason: r.reason,
      tasks: r.tasks,
      // Of the tasks that fell back; a cascade with two reasons counts under both.
      share: row.fallbacks === 0 ? 0 : r.tasks / row.fallbacks,
    })),
    p50LatencyMs: row.p50_latency_ms,
    p95LatencyMs: row.p95_latency_ms,
    p99LatencyMs: row.p99_latency_ms,
    p95CallsPerTask: row.p95_calls_per_task,
    loopRate: row.loop_rate,
    modelCalls: row.total_model_calls,
    unpricedCalls: row.unpriced_model_calls,
    pricedCallShare: row.priced_call_share,
    costUnderstated: row.unpriced_model_calls > 0,
    httpCountedCalls: row.http_counted_model_calls,
    retriedCalls: row.retried_model_calls,
    httpRetries: row.total_http_retries,
    retryWaitMs: row.total_retry_wait_ms,
    retryRate: row.retry_rate,
    retriesPerTask: row.retries_per_task,
    scores: [],
  };
}

export function toMetrics(
  row: CohortRouteRow,
  concentration?: ConcentrationRow,
): CohortRouteMetrics {
  return {
    cohort: row.cohort,
    primaryRoute: row.primary_route,
    ...toWindowMetrics(row),
    concentration: concentration
      ? {
          ratio: concentration.concentration,
          failureRate: concentration.failure_rate,
          restFailureRate: concentration.rest_failure_rate,
          z: concentration.z,
          significantlyWorse: concentration.significantly_worse,
          maskedByAverage: concentration.masked_by_average,
        }
      : null,
  };
}

/** The counts of one cohort × route that failure concentration needs. */
const groupCountsRow = z.object({
  cohort: z.string(),
  primary_route: z.string(),
  known_outcomes: number,
  failures: number,
});

/** One row of v_window_metrics: a cohort × route, or the overall row. */
export const windowRow = cohortRouteRow.extend({
  is_overall: flag,
  score_tasks: z.record(z.string(), number),
  score_sums: z.record(z.string(), number),
  score_squares: z.record(z.string(), number),
});
export type WindowRow = z.output<typeof windowRow>;

const Z95 = 1.959963984540054;

/**
 * The quality scores of one v_window_metrics row (per name: tasks, Σ score, Σ score²) as
 * v_window_scores gives them: the mean and a normal 95 % interval of it, clamped to 0..1, null
 * below 2 tasks; by name. The view's formulas in the same Float64 arithmetic, so the report needs
 * no second read; test/integration/rollups.test.ts checks they agree.
 */
export function scoresOf(row: {
  score_tasks: Record<string, number>;
  score_sums: Record<string, number>;
  score_squares: Record<string, number>;
}): ScoreSummary[] {
  return Object.keys(row.score_tasks)
    .sort()
    .map((name) => {
      const n = row.score_tasks[name]!;
      const sum = row.score_sums[name] ?? 0;
      const squares = row.score_squares[name] ?? 0;
      const mean = sum / n;
      if (n < 2) return { name, n, mean, interval: null };
      const stddev = Math.sqrt(Math.max(0, (squares - (sum * sum) / n) / (n - 1)));
      const half = (Z95 * stddev) / Math.sqrt(n);
      return {
        name,
        n,
        mean,
        interval: interval(Math.max(0, mean - half), Math.min(1, mean + half)),
      };
    });
}

/** One row of v_window_scores. */
export const scoreRow = z.object({
  is_overall: flag,
  cohort: z.string(),
  primary_route: z.string(),
  score_name: z.string(),
  n: number,
  mean_score: number,
  mean_score_lower: nullableNumber,
  mean_score_upper: nullableNumber,
});

/**
 * The per cohort × primary route metrics of tasks started in [from, to), and the overall row,
 * over the tasks the filter names. Failure concentration compares each row's tasks with all the
 * rest of the traffic in the window, filtered or not.
 */
export async function buildReport(
  store: Store,
  window: ReportWindow,
  now: Date = new Date(),
  filter: ReportFilter = {},
): Promise<Report> {
  const lists = {
    cohorts: [...(filter.cohorts ?? [])],
    routes: [...(filter.routes ?? [])],
    services: [...(filter.services ?? [])],
    policies: [...(filter.policies ?? [])],
  };
  const params = { from: toClickHouseTime(window.from), to: toClickHouseTime(window.to), ...lists };
  // The reads share one look at the tasks changed since the last refresh (window-sql.ts).
  const changed = await readChanged(store);
  const filtered = Object.values(lists).some((list) => list.length > 0);
  const [metrics, unfiltered] = await Promise.all([
    // The sums only: the rates and intervals are derived here (window-derive.ts).
    queryFlat(
      store,
      'v_window_metrics',
      changed,
      'SELECT * FROM {view} ORDER BY is_overall, cohort, primary_route',
      params,
      windowSumsRow,
      { derived: false },
    ).then((rows) => rows.map(deriveWindowRow)),
    // Failure concentration compares each group with all the rest of the traffic: with a filter
    // the metrics hold only part of it, so the counts of all of it are read too.
    filtered
      ? queryFlat(
          store,
          'v_window_metrics',
          changed,
          'SELECT cohort, primary_route, known_outcomes, failures FROM {view} WHERE NOT is_overall',
          { ...params, cohorts: [], routes: [], services: [], policies: [] },
          groupCountsRow,
          { derived: false },
        )
      : null,
  ]);
  const rows = metrics.filter((m) => !m.is_overall);
  // Each row's own tasks (a service's or a policy's part of its cohort × route, with such a
  // filter) against all the rest of the window's traffic.
  const concentration = concentrationOf(rows, unfiltered ?? rows);
  const overall = metrics.filter((m) => m.is_overall);
  const key = (cohort: string, route: string) => `${cohort}\u0000${route}`;
  const byGroup = new Map(concentration.map((c) => [key(c.cohort, c.primary_route), c]));
  const unmatched = unfiltered ? unmatchedNames(lists, unfiltered) : [];
  return {
    from: window.from.toISOString(),
    to: window.to.toISOString(),
    generatedAt: now.toISOString(),
    filter: lists,
    rows: rows.map((row) => ({
      ...toMetrics(row, byGroup.get(key(row.cohort, row.primary_route))),
      scores: scoresOf(row),
    })),
    overall: overall[0] ? { ...toWindowMetrics(overall[0]), scores: scoresOf(overall[0]) } : null,
    ...(unmatched.length > 0 ? { unmatched } : {}),
  };
}

/** The filter's cohorts and routes that no group of the whole window has (see Report.unmatched). */
function unmatchedNames(
  lists: { cohorts: string[]; routes: string[] },
  groups: readonly { cohort: string; primary_route: string }[],
): UnmatchedName[] {
  const seen = {
    cohort: new Set(groups.map((g) => g.cohort)),
    route: new Set(groups.map((g) => g.primary_route)),
  };
  const given = [
    ...lists.cohorts.map((name) => ({ filter: 'cohort' as const, name })),
    ...lists.routes.map((name) => ({ filter: 'route' as const, name })),
  ];
  return given
    .filter(({ filter, name }) => !seen[filter].has(name))
    .map(({ filter, name }) => ({
      filter,
      name,
      suggestion: closestName(name, [...seen[filter]].filter((n) => n !== '').sort()) ?? null,
    }));
}
