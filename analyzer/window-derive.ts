import { z } from 'zod';
import { chFlag, chNullableNumber, chNumber } from '../storage/rows.js';
import type { WindowRow } from './report.js';

/**
 * v_window_metrics's derived columns, computed here from its sums.
 *
 * The report reads the view's statement without its outer SELECT (storage/window-sql.ts, the
 * `routewatch:derived` region): the sums per cohort × route and overall. It derives the rates,
 * the intervals, the top fallback reasons and the call-count quantile here, with the view's
 * definitions (sql/views/v_window_metrics.sql) in the same Float64 arithmetic. The outer SELECT is
 * about a third of the time ClickHouse spends analysing the statement, and a 24 h window's time is
 * mostly analysis (docs/benchmarks.md). test/integration/rollups.test.ts checks that the rows are
 * the view's.
 */

const number = chNumber;
const flag = chFlag;
/** A quantile of nothing is nan: no value. */
const quantile = chNullableNumber;
const counts = z.record(z.string(), number);

/** One row of v_window_metrics's sums (the statement without its derived columns). */
export const windowSumsRow = z.object({
  is_overall: flag,
  cohort: z.string(),
  primary_route: z.string(),
  tasks: number,
  successes: number,
  failures: number,
  known_outcomes: number,
  total_cost_usd: number,
  cost_squared_sum: number,
  success_cost_sum: number,
  fallbacks: number,
  cascades: number,
  invisible_fallbacks: number,
  reasks: number,
  escalations: number,
  reason_tasks: counts,
  latency_quantiles: z.array(quantile),
  calls_tasks: counts,
  total_model_calls: number,
  unpriced_model_calls: number,
  http_counted_model_calls: number,
  retried_model_calls: number,
  total_http_retries: number,
  total_retry_wait_ms: number,
  score_tasks: counts,
  score_sums: counts,
  score_squares: counts,
});
export type WindowSums = z.output<typeof windowSumsRow>;

const Z95 = 1.959963984540054;

/** ClickHouse compares strings by their bytes. */
const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/**
 * quantileExactHigh(0.95) over the tasks' call counts, each count repeated by its number of tasks:
 * the element at index ⌊0.95 · n⌋ of the sorted counts.
 */
function p95OfCounts(callsTasks: Record<string, number>): number | null {
  const entries = Object.entries(callsTasks)
    .map(([calls, n]) => [Number(calls), n] as const)
    .sort((a, b) => a[0] - b[0]);
  const total = entries.reduce((sum, [, n]) => sum + n, 0);
  if (total === 0) return null;
  const index = Math.min(total - 1, Math.floor(0.95 * total));
  let seen = 0;
  for (const [calls, n] of entries) {
    seen += n;
    if (index < seen) return calls;
  }
  return null;
}

/** The row v_window_metrics gives for these sums. */
export function deriveWindowRow(sums: WindowSums): WindowRow {
  const { tasks, successes, known_outcomes: known } = sums;
  const totalCost = sums.total_cost_usd;
  const successRate = known === 0 ? null : successes / known;
  const wilson = (sign: 1 | -1): number | null => {
    if (known === 0 || successRate === null) return null;
    const bound =
      (successRate +
        (Z95 * Z95) / (2 * known) +
        sign *
          Z95 *
          Math.sqrt(
            (successRate * (1 - successRate)) / known + (Z95 * Z95) / (4 * known * known),
          )) /
      (1 + (Z95 * Z95) / known);
    return sign < 0 ? Math.max(0, bound) : Math.min(1, bound);
  };
  const costPerSuccess = successes === 0 ? null : totalCost / successes;
  let halfWidth: number | null = null;
  if (costPerSuccess !== null && tasks >= 2) {
    const meanCost = totalCost / tasks;
    const successShare = successes / tasks;
    const variance = Math.max(
      0,
      Math.max(0, sums.cost_squared_sum / tasks - Math.pow(meanCost, 2)) -
        2 * costPerSuccess * (sums.success_cost_sum / tasks - meanCost * successShare) +
        Math.pow(costPerSuccess, 2) * successShare * (1 - successShare),
    );
    halfWidth = Z95 * Math.sqrt(variance / (tasks * Math.pow(successShare, 2)));
  }
  const reasons = Object.entries(sums.reason_tasks)
    .map(([reason, n]) => ({ reason: reason === '' ? '(none)' : reason, tasks: n }))
    .sort((a, b) => b.tasks - a.tasks || byBytes(a.reason, b.reason));
  const loopTasks = Object.entries(sums.calls_tasks).reduce(
    (sum, [calls, n]) => sum + (Number(calls) > 10 ? n : 0),
    0,
  );
  const counted = sums.http_counted_model_calls;
  const [p50, p95, p99] = sums.latency_quantiles;
  return {
    is_overall: sums.is_overall,
    cohort: sums.cohort,
    primary_route: sums.primary_route,
    tasks,
    successes,
    failures: sums.failures,
    known_outcomes: known,
    success_rate: successRate,
    success_rate_lower: wilson(-1),
    success_rate_upper: wilson(1),
    outcome_coverage: known / tasks,
    total_cost_usd: totalCost,
    cost_per_successful_task: costPerSuccess,
    cost_per_successful_task_lower:
      halfWidth === null ? null : Math.max(0, costPerSuccess! - halfWidth),
    cost_per_successful_task_upper: halfWidth === null ? null : costPerSuccess! + halfWidth,
    fallbacks: sums.fallbacks,
    fallback_rate: sums.fallbacks / tasks,
    cascades: sums.cascades,
    cascade_rate: sums.cascades / tasks,
    invisible_fallbacks: sums.invisible_fallbacks,
    reask_rate: sums.reasks / tasks,
    escalation_rate: sums.escalations / tasks,
    top_fallback_reasons: reasons,
    p50_latency_ms: p50 ?? null,
    p95_latency_ms: p95 ?? null,
    p99_latency_ms: p99 ?? null,
    p95_calls_per_task: p95OfCounts(sums.calls_tasks),
    loop_rate: loopTasks / tasks,
    total_model_calls: sums.total_model_calls,
    unpriced_model_calls: sums.unpriced_model_calls,
    priced_call_share:
      sums.total_model_calls === 0 ? null : 1 - sums.unpriced_model_calls / sums.total_model_calls,
    http_counted_model_calls: counted,
    retried_model_calls: sums.retried_model_calls,
    total_http_retries: sums.total_http_retries,
    total_retry_wait_ms: sums.total_retry_wait_ms,
    retry_rate: counted === 0 ? null : sums.retried_model_calls / counted,
    retries_per_task: counted === 0 ? null : sums.total_http_retries / tasks,
    score_tasks: sums.score_tasks,
    score_sums: sums.score_sums,
    score_squares: sums.score_squares,
  };
}
