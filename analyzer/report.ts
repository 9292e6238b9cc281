import { z } from 'zod';
import type { Store } from '../storage/store.js';

const nullableNumber = z
  .union([z.number(), z.string(), z.null()])
  .transform((v) => (v === null ? null : Number(v)));
const number = z.union([z.number(), z.string()]).transform(Number);

/** One row of v_cohort_route_window: the metrics of one cohort × primary route. */
export const cohortRouteRow = z.object({
  cohort: z.string(),
  primary_route: z.string(),
  tasks: number,
  successes: number,
  failures: number,
  known_outcomes: number,
  success_rate: nullableNumber,
  outcome_coverage: number,
  total_cost_usd: number,
  cost_per_successful_task: nullableNumber,
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
});
export type CohortRouteRow = z.output<typeof cohortRouteRow>;

export interface CohortRouteMetrics {
  cohort: string;
  primaryRoute: string;
  tasks: number;
  successes: number;
  failures: number;
  knownOutcomes: number;
  successRate: number | null;
  outcomeCoverage: number;
  totalCostUsd: number;
  costPerSuccessfulTask: number | null;
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
}

export interface Report {
  from: string;
  to: string;
  generatedAt: string;
  rows: CohortRouteMetrics[];
}

export interface ReportWindow {
  from: Date;
  to: Date;
}

/** ClickHouse DateTime64 literal in UTC, e.g. 2026-11-28 12:00:00.000. */
export function toClickHouseTime(date: Date): string {
  return date.toISOString().replace('T', ' ').replace('Z', '');
}

export function toMetrics(row: CohortRouteRow): CohortRouteMetrics {
  return {
    cohort: row.cohort,
    primaryRoute: row.primary_route,
    tasks: row.tasks,
    successes: row.successes,
    failures: row.failures,
    knownOutcomes: row.known_outcomes,
    successRate: row.success_rate,
    outcomeCoverage: row.outcome_coverage,
    totalCostUsd: row.total_cost_usd,
    costPerSuccessfulTask: row.cost_per_successful_task,
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
  };
}

/** The per cohort × primary route metrics of tasks started in [from, to). */
export async function buildReport(
  store: Store,
  window: ReportWindow,
  now: Date = new Date(),
): Promise<Report> {
  const rows = await store.query(
    `SELECT * FROM v_cohort_route_window(from = {from:DateTime64(9, 'UTC')}, to = {to:DateTime64(9, 'UTC')})
     ORDER BY cohort, primary_route`,
    { from: toClickHouseTime(window.from), to: toClickHouseTime(window.to) },
    cohortRouteRow,
  );
  return {
    from: window.from.toISOString(),
    to: window.to.toISOString(),
    generatedAt: now.toISOString(),
    rows: rows.map(toMetrics),
  };
}
