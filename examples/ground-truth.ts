import type { FallbackReason } from '@routewatch/instrumentation/semconv';
import type { Cohort, Route } from './support-tasks.js';
import { COHORTS } from './support-tasks.js';

/**
 * What the example service itself saw, computed from its own calls and never from spans: the
 * figures routewatch's pipeline must reproduce. Everything is deterministic for a seed except
 * `taskId` (assigned by the instrumentation) and latencies (wall clock); see `stableTruth`.
 */

/** How a failed model call ended: the fallback reasons a thrown call error triggers. */
export type CallFailure = Extract<FallbackReason, 'error' | 'rate_limited' | 'timeout'>;

export interface AttemptTruth {
  attempt: number;
  route: Route;
  model: string;
  /** Why this attempt happened (`withFallback`'s trail); set on attempt 2+. */
  fallbackReason?: FallbackReason;
  /** `pass`/`fail`: the validation gate; `error`: a model call threw. */
  result: 'pass' | 'fail' | 'error';
  /** For `error`: error, rate_limited or timeout. */
  errorReason?: CallFailure;
  confidence?: number;
  /** Model calls made, failed ones included. */
  llmCalls: number;
  /** Calls that made more than one HTTP request (the SDK retried them), and the extra requests. */
  retriedCalls: number;
  httpRetries: number;
  costUsd: number;
}

export interface TaskTruth {
  index: number;
  taskId: string;
  cohort: Cohort;
  primaryRoute: Route;
  attempts: AttemptTruth[];
  outcome: 'success' | 'failure';
  /** Why a task failed: error, rate_limited, timeout, validation_failed or unresolved. */
  outcomeReason?: string;
  /** Σ over model calls that returned usage; failed calls cost 0. */
  costUsd: number;
  latencyMs: number;
  /** Named quality scores the service recorded (`task.setScore`). */
  scores?: Record<string, number>;
}

export interface CohortRouteTruth {
  cohort: Cohort;
  primaryRoute: Route;
  tasks: number;
  successes: number;
  failures: number;
  /** Tasks with ≥ 2 attempts. */
  fallbacks: number;
  fallbackReasons: Record<string, number>;
  failureReasons: Record<string, number>;
  llmCalls: number;
  /** Calls the SDK retried, and the extra HTTP requests they made (Σ requests − 1). */
  retriedCalls: number;
  httpRetries: number;
  costUsd: number;
  /** Task latencies in task order, ms. */
  latenciesMs: number[];
  /** Per score name: tasks that carry it and the sum of its values. */
  scores: Record<string, { n: number; sum: number }>;
}

export interface TruthTotals {
  tasks: number;
  successes: number;
  failures: number;
  fallbacks: number;
  llmCalls: number;
  retriedCalls: number;
  httpRetries: number;
  costUsd: number;
}

export interface GroundTruth {
  seed: number;
  policyVersion?: string;
  /** One entry per (cohort, primary route) that received tasks, in cohort order. */
  groups: CohortRouteTruth[];
  totals: TruthTotals;
  /** Every task, by index. */
  tasks: TaskTruth[];
}

/** Cost per successful task: total cost ÷ successes; null when nothing succeeded. */
export function costPerSuccessfulTask(figures: {
  costUsd: number;
  successes: number;
}): number | null {
  return figures.successes === 0 ? null : figures.costUsd / figures.successes;
}

/** Aggregate per-task records (in index order, so sums do not depend on completion order). */
export function summarizeTruth(
  seed: number,
  policyVersion: string | undefined,
  tasks: TaskTruth[],
): GroundTruth {
  const groups = new Map<string, CohortRouteTruth>();
  const totals: TruthTotals = {
    tasks: 0,
    successes: 0,
    failures: 0,
    fallbacks: 0,
    llmCalls: 0,
    retriedCalls: 0,
    httpRetries: 0,
    costUsd: 0,
  };
  const sorted = [...tasks].sort((x, y) => x.index - y.index);
  for (const task of sorted) {
    const key = `${task.cohort}\u0000${task.primaryRoute}`;
    let group = groups.get(key);
    if (group === undefined) {
      group = {
        cohort: task.cohort,
        primaryRoute: task.primaryRoute,
        tasks: 0,
        successes: 0,
        failures: 0,
        fallbacks: 0,
        fallbackReasons: {},
        failureReasons: {},
        llmCalls: 0,
        retriedCalls: 0,
        httpRetries: 0,
        costUsd: 0,
        latenciesMs: [],
        scores: {},
      };
      groups.set(key, group);
    }
    const llmCalls = task.attempts.reduce((sum, attempt) => sum + attempt.llmCalls, 0);
    const httpRetries = task.attempts.reduce((sum, attempt) => sum + attempt.httpRetries, 0);
    const retriedCalls = task.attempts.reduce((sum, attempt) => sum + attempt.retriedCalls, 0);
    for (const figures of [group, totals]) {
      figures.tasks += 1;
      figures.successes += task.outcome === 'success' ? 1 : 0;
      figures.failures += task.outcome === 'failure' ? 1 : 0;
      figures.fallbacks += task.attempts.length >= 2 ? 1 : 0;
      figures.llmCalls += llmCalls;
      figures.retriedCalls += retriedCalls;
      figures.httpRetries += httpRetries;
      figures.costUsd += task.costUsd;
    }
    group.latenciesMs.push(task.latencyMs);
    for (const [name, value] of Object.entries(task.scores ?? {})) {
      const score = (group.scores[name] ??= { n: 0, sum: 0 });
      score.n += 1;
      score.sum += value;
    }
    // Counted in tasks: a task falling back twice for one reason counts once under it.
    const reasons = new Set(task.attempts.slice(1).map((a) => a.fallbackReason ?? 'unspecified'));
    for (const reason of reasons) {
      group.fallbackReasons[reason] = (group.fallbackReasons[reason] ?? 0) + 1;
    }
    if (task.outcomeReason !== undefined) {
      group.failureReasons[task.outcomeReason] =
        (group.failureReasons[task.outcomeReason] ?? 0) + 1;
    }
  }
  const cohortOrder = (cohort: Cohort): number => COHORTS.indexOf(cohort);
  return {
    seed,
    ...(policyVersion === undefined ? {} : { policyVersion }),
    groups: [...groups.values()].sort(
      (x, y) =>
        cohortOrder(x.cohort) - cohortOrder(y.cohort) ||
        x.primaryRoute.localeCompare(y.primaryRoute),
    ),
    totals,
    tasks: sorted,
  };
}

/**
 * The truth without what legitimately differs between two runs of one seed (task ids, wall-clock
 * latencies): two runs with the same seed must give equal stable truths at any concurrency.
 */
export function stableTruth(truth: GroundTruth): unknown {
  return {
    ...truth,
    groups: truth.groups.map(({ latenciesMs, ...group }) => ({
      ...group,
      latencies: latenciesMs.length,
    })),
    tasks: truth.tasks.map(({ taskId: _taskId, latencyMs: _latencyMs, ...task }) => task),
  };
}
