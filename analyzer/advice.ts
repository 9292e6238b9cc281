import { z } from 'zod';
import { chNumber } from '../storage/rows.js';
import type { QueryParams, Store } from '../storage/store.js';
import { closestName } from '../server/edit-distance.js';
import type { UnmatchedName } from './report.js';
import {
  compareCohort,
  judgedCost,
  matched,
  matchedNote,
  pts,
  sideCost,
  sideSumColumns,
  STRATUM_COLUMNS,
  stratumOf,
  stratumRow,
  understated,
} from './gate.js';
import type { Matched } from './gate.js';
import type { CohortComparison, GateOptions, SideStats } from './gate.js';
import { toClickHouseTime } from './report.js';
import { costPerSuccess } from './stats.js';
import { queryTasks } from '../storage/window-sql.js';

/**
 * Routing advice per cohort, from the evidence: production traffic on the small and the large
 * route over a window, and the latest eval runs of the small route. Each verdict carries the
 * numbers behind it. Pure decision (`adviseCohort`), thin read (`buildAdvice`).
 */

export const ADVICE_VERDICTS = [
  'keep',
  'expand small',
  'revert to large',
  'try small',
  'review fallback',
  'insufficient data',
] as const;
export type AdviceVerdict = (typeof ADVICE_VERDICTS)[number];

export interface AdviceOptions extends GateOptions {
  smallRoute: string;
  largeRoute: string;
  /** A fallback rate at or above this means the cheap route pays twice too often. */
  reviewFallbackRate: number;
}

export const DEFAULT_ADVICE: AdviceOptions = {
  maxSuccessDrop: 0.02,
  minCases: 200,
  smallRoute: 'small',
  largeRoute: 'large',
  reviewFallbackRate: 0.25,
};

export interface RouteEvidence {
  tasks: number;
  known: number;
  successRate: number | null;
  costPerSuccessfulTask: number | null;
  fallbackRate: number | null;
}

export interface CohortAdvice {
  cohort: string;
  /** The cohort's cheap route the advice weighs against the large one (cheapRouteOf). */
  smallRoute: string;
  verdict: AdviceVerdict;
  /** The route most of the cohort's production traffic takes first now. */
  currentRoute: string | null;
  /** One or two sentences with the numbers. */
  reason: string;
  small: RouteEvidence | null;
  large: RouteEvidence | null;
  /** The small route in the cohort's latest eval run that has it (smallEvalRun). */
  smallEval: RouteEvidence | null;
  /** That eval run's name: the latest, never several pooled. */
  smallEvalRun: string | null;
  /** The comparison the verdict rests on (large as baseline), when there is one. */
  comparison: CohortComparison | null;
  /** insufficient data: how many more tasks (with an outcome) the thinner side needs. */
  tasksNeeded: number | null;
}

function evidence(s: SideStats | undefined): RouteEvidence | null {
  if (!s || s.tasks === 0) return null;
  return {
    tasks: s.tasks,
    known: s.known,
    successRate: s.known > 0 ? s.successes / s.known : null,
    costPerSuccessfulTask: costPerSuccess(judgedCost(s))?.value ?? null,
    fallbackRate: s.tasks > 0 ? s.fallbacks / s.tasks : null,
  };
}

const pct = (v: number | null) => (v === null ? '—' : `${(v * 100).toFixed(1)} %`);
/** The change's 95 % interval, in points. */
const ci = (c: CohortComparison) =>
  c.successChange.interval
    ? `95 % CI of the change ${signed(c.successChange.interval.lower)} to ${signed(c.successChange.interval.upper)}`
    : '';
const signed = (v: number) => `${v >= 0 ? '+' : '−'}${pts(Math.abs(v))}`;
const usd = (v: number | null) => (v === null ? '—' : `$${v.toPrecision(3)}`);
const known = (s: SideStats | undefined) => s?.known ?? 0;

/**
 * The level at which the advice must show the small route holds before it says to move traffic
 * to it ("expand small", "try small"): the gate's strict mode. On the estimate alone, a route
 * truly 4 points worse at 200 tasks a side was called within a 2-point margin 29 % of the time.
 */
export const ADVICE_CONFIDENCE = 0.95;

/** The gate's options the advice judges with: strict, at the user's level or ADVICE_CONFIDENCE. */
const shown = (options: AdviceOptions): AdviceOptions => ({
  ...options,
  confidence: options.confidence ?? ADVICE_CONFIDENCE,
});

/** The advice for one cohort. Pure. */
export function adviseCohort(
  cohort: string,
  small: SideStats | undefined,
  large: SideStats | undefined,
  smallEval: SideStats | undefined,
  options: AdviceOptions,
  smallEvalRun: string | null = null,
  byHour: Matched | null = null,
): CohortAdvice {
  const inEval = smallEvalRun ? `eval run ${smallEvalRun}` : 'eval';
  const base = {
    cohort,
    smallRoute: options.smallRoute,
    small: evidence(small),
    large: evidence(large),
    smallEval: evidence(smallEval),
    smallEvalRun,
    comparison: null,
    tasksNeeded: null,
  };
  const currentRoute =
    (small?.tasks ?? 0) === 0 && (large?.tasks ?? 0) === 0
      ? null
      : (small?.tasks ?? 0) >= (large?.tasks ?? 0)
        ? options.smallRoute
        : options.largeRoute;
  const enoughSmall = known(small) >= options.minCases;
  const enoughLarge = known(large) >= options.minCases;
  const S = options.smallRoute;
  const L = options.largeRoute;

  if (enoughSmall) {
    const fallbackRate = small!.fallbacks / small!.tasks;
    if (enoughLarge) {
      const comparison = compareCohort(cohort, large!, small!, shown(options), byHour ?? undefined);
      // The costs per success the routes are weighed on: hour by hour, as their success rates.
      const costs = comparison.costPerSuccessfulTask.matched ?? comparison.costPerSuccessfulTask;
      const cs = costs.candidate.value;
      const cl = costs.baseline.value;
      const floor = comparison.costPerSuccessfulTask.understated;
      const drop = comparison.successChange.estimate;
      // Each pair as it was weighed, so that a rate and the cost beside it reconcile: hour by hour
      // (the verdict's), then pooled (each route's own, the report's columns).
      const pooled = comparison.costPerSuccessfulTask;
      const byHourRate = (p: { successes: number; known: number }) =>
        p.known > 0 ? p.successes / p.known : null;
      const facts =
        pooled.matched && byHour
          ? `${S} ${pct(byHourRate(byHour.candidate))} success at ${costOf(cs, floor.candidate)} per success, ${L} ${pct(byHourRate(byHour.baseline))} at ${costOf(cl, floor.baseline)}, weighed ${pooled.matched.by} by ${pooled.matched.by}; pooled over the ${pooled.matched.by}s, ${S} ${pct(comparison.candidate.successRate.value)} at ${costOf(pooled.candidate.value, floor.candidate)}, ${L} ${pct(comparison.baseline.successRate.value)} at ${costOf(pooled.baseline.value, floor.baseline)}`
          : `${S} ${pct(comparison.candidate.successRate.value)} success at ${costOf(cs, floor.candidate)} per success, ${L} ${pct(comparison.baseline.successRate.value)} at ${costOf(cl, floor.baseline)}`;
      // A floor on S's cost already at L's (known) cost: S is no cheaper, whatever it hides; S's
      // known cost under a floor on L's: S is cheaper, whatever L hides.
      const noCheaper = cs !== null && cl !== null && cs >= cl && !floor.baseline;
      const cheaper = cs !== null && cl !== null && cs < cl && !floor.candidate;
      if (comparison.verdict === 'fail' || noCheaper) {
        const why =
          comparison.verdict === 'fail'
            ? `the ${S} route's success rate is ${pts(-(drop ?? 0))} below ${L}'s, more than the ${pts(options.maxSuccessDrop)} allowed${matchedNote(comparison, options.maxSuccessDrop)}`
            : `the ${S} route no longer costs less per successful task`;
        // Already on L (most of its tasks large-first): nothing to revert, the evidence says stay.
        return {
          ...base,
          currentRoute,
          verdict: currentRoute === L ? 'keep' : 'revert to large',
          comparison,
          reason: currentRoute === L ? `stay on ${L}: ${why} (${facts})` : `${why} (${facts})`,
        };
      }
      // Cheaper is what moving traffic is for: not claimed on costs that are not all known.
      if ((floor.baseline || floor.candidate) && !cheaper) {
        return {
          ...base,
          currentRoute,
          verdict: 'keep',
          comparison,
          reason: `${unpricedWhy([
            [S, small!],
            [L, large!],
          ])} (${facts}): price them (ROUTEWATCH_PRICES, docs/pricing.md) before moving traffic`,
        };
      }
      if (fallbackRate >= options.reviewFallbackRate) {
        return {
          ...base,
          currentRoute,
          verdict: 'review fallback',
          comparison,
          reason: `${pct(fallbackRate)} of the ${S} route's tasks fall back and pay for both models (${facts}): review the validation or confidence gate before routing more here`,
        };
      }
      // Moving traffic to the cheaper model is the risky step: only once the data show it holds.
      if (comparison.verdict !== 'pass') {
        return {
          ...base,
          currentRoute,
          verdict: 'keep',
          comparison,
          reason: `not shown yet that the ${S} route holds against ${L}: ${comparison.reason} (${facts}): keep the split and watch the alerts`,
        };
      }
      return {
        ...base,
        currentRoute,
        verdict: 'expand small',
        comparison,
        reason: `the ${S} route holds within ${pts(options.maxSuccessDrop)} of ${L} and costs ${floor.baseline ? 'at least ' : ''}${pct(cs !== null && cl ? 1 - cs / cl : null)} less per success (${facts}; ${ci(comparison)}${matchedNote(comparison, options.maxSuccessDrop)}); ${large!.tasks} tasks still go to ${L} first and could take ${S}: move them in steps, and watch the alerts`,
      };
    }
    if (fallbackRate >= options.reviewFallbackRate) {
      return {
        ...base,
        currentRoute,
        verdict: 'review fallback',
        reason: `${pct(fallbackRate)} of the ${S} route's tasks fall back and pay for both models (${pct(small!.successes / small!.known)} success at ${sideCostText(small!)} per success)`,
      };
    }
    // Too few large cases for the gate's minimum can still be enough to show harm: the whole 95 %
    // interval of the change beyond the margin.
    const harm = clearHarm(cohort, large, small!, options, byHour);
    if (harm) {
      // Most tasks already large-first, their outcomes still to come: stay, as above.
      const why = `the ${S} route's success rate is ${pts(-(harm.successChange.estimate ?? 0))} below ${L}'s, more than the ${pts(options.maxSuccessDrop)} allowed, even on ${L}'s ${known(large)} cases (${pct(harm.candidate.successRate.value)} against ${pct(harm.baseline.successRate.value)}; ${ci(harm)}, all of it beyond the margin)`;
      return {
        ...base,
        currentRoute,
        verdict: currentRoute === L ? 'keep' : 'revert to large',
        comparison: harm,
        reason: currentRoute === L ? `stay on ${L}: ${why}` : why,
      };
    }
    // Some large traffic, too little to compare with, is not "no traffic": say how much is missing
    // (tasks whose outcomes have not arrived yet count as traffic, not as cases).
    const thin =
      (large?.tasks ?? 0) > 0
        ? `too little ${L} traffic to compare the ${S} route with (${large!.tasks} tasks, ${known(large)} with an outcome, ${options.minCases} needed)`
        : `no ${L} traffic to compare the ${S} route with`;
    return {
      ...base,
      currentRoute,
      verdict: 'keep',
      reason: `${thin} (${pct(small!.successes / small!.known)} success at ${sideCostText(small!)} per success, ${pct(fallbackRate)} fallbacks): keep a share on ${L} as a control, and watch the alerts`,
    };
  }

  if (enoughLarge) {
    // A large-first cohort: is the large model overkill? Only an eval (or a canary) can say.
    if (known(smallEval) >= options.minCases) {
      const comparison = compareCohort(cohort, large!, smallEval!, shown(options));
      const ce = comparison.costPerSuccessfulTask.candidate.value;
      const cl = comparison.costPerSuccessfulTask.baseline.value;
      const floor = comparison.costPerSuccessfulTask.understated;
      const cheaper = ce !== null && cl !== null && ce < cl && !floor.candidate;
      if (comparison.verdict === 'pass' && (floor.baseline || floor.candidate) && !cheaper) {
        return {
          ...base,
          currentRoute,
          verdict: 'keep',
          comparison,
          reason: `in ${inEval}, the ${S} route holds within ${pts(options.maxSuccessDrop)} of ${L}, but ${unpricedWhy(
            [
              [S, smallEval!],
              [L, large!],
            ],
          )}: price them (ROUTEWATCH_PRICES, docs/pricing.md) to tell whether ${S} is cheaper`,
        };
      }
      if (comparison.verdict === 'pass' && cheaper) {
        return {
          ...base,
          currentRoute,
          verdict: 'try small',
          comparison,
          reason: `in ${inEval}, the ${S} route holds within ${pts(options.maxSuccessDrop)} of ${L}'s production success (${pct(comparison.candidate.successRate.value)} against ${pct(comparison.baseline.successRate.value)}; ${ci(comparison)}) at ${usd(ce)} per success against ${usd(cl)}: route a canary share to ${S}`,
        };
      }
      return {
        ...base,
        currentRoute,
        verdict: 'keep',
        comparison,
        reason:
          comparison.verdict === 'fail'
            ? `stay on ${L}: in ${inEval} the ${S} route does not hold against it (${comparison.reason})`
            : `stay on ${L}: in ${inEval} the ${S} route is not shown yet to hold against it (${comparison.reason})`,
      };
    }
    const needed = options.minCases - known(smallEval);
    const carries = `the ${L} route carries the cohort (${pct(large!.successes / large!.known)} success at ${sideCostText(large!)} per success)`;
    // A few production tasks on small: not enough to try it on, but they may already rule it out.
    const harm = clearHarm(cohort, large, small, options, byHour);
    if (harm) {
      return {
        ...base,
        currentRoute,
        verdict: 'keep',
        comparison: harm,
        reason: `${carries}; stay on it: the ${S} route's ${known(small)} production tasks already fall ${pts(-(harm.successChange.estimate ?? 0))} short of it (${pct(harm.candidate.successRate.value)}; ${ci(harm)}, all of it beyond the ${pts(options.maxSuccessDrop)} allowed)`,
      };
    }
    const some =
      known(small) > 0
        ? ` (${known(small)} production tasks on ${S} so far: ${pct(small!.successes / small!.known)})`
        : '';
    const evalSoFar = smallEvalRun ? ` (${inEval} has ${known(smallEval)})` : '';
    return {
      ...base,
      currentRoute,
      verdict: 'keep',
      reason: `${carries}; too little evidence on ${S} yet${some} — an eval of ${needed} more cases on ${S}${evalSoFar} would tell whether ${L} is overkill`,
    };
  }

  const needed = options.minCases - Math.max(known(small), known(large));
  return {
    ...base,
    currentRoute,
    verdict: 'insufficient data',
    tasksNeeded: Math.max(0, needed),
    reason: `${Math.max(known(small), known(large))} tasks with an outcome, fewer than ${options.minCases}: ${Math.max(0, needed)} more needed`,
  };
}

/**
 * The comparison of `small` against `large` when it shows harm whatever the sample: the whole
 * 95 % interval of the change below −margin. Null otherwise, or with no case on either side.
 */
function clearHarm(
  cohort: string,
  large: SideStats | undefined,
  small: SideStats | undefined,
  options: AdviceOptions,
  byHour: Matched | null,
): CohortComparison | null {
  if (!large || !small || large.known === 0 || small.known === 0) return null;
  const comparison = compareCohort(
    cohort,
    large,
    small,
    { ...options, minCases: 1 },
    byHour ?? undefined,
  );
  const upper = comparison.successChange.interval?.upper;
  return upper !== undefined && upper < -options.maxSuccessDrop ? comparison : null;
}

/** `≥$0.00123`: a cost per success, marked as the floor it is; `unknown` when none is known. */
function costOf(value: number | null, floor: boolean): string {
  if (value === null) return floor ? 'unknown' : usd(null);
  return `${floor ? '≥' : ''}${usd(value)}`;
}

/** One route's cost per success as the report shows it: `≥` a floor, `unknown` none priced. */
const sideCostText = (side: SideStats) => costOf(sideCost(side).value, understated(side));

/** Which routes' costs are not all known, and how many of their calls are unpriced. */
function unpricedWhy(routes: [route: string, side: SideStats][]): string {
  const parts = routes
    .filter(([, side]) => side.unpricedCalls > 0)
    .map(
      ([route, side]) =>
        `${side.unpricedCalls} of the ${route} route's ${side.modelCalls} model calls`,
    );
  return `the cost per success is not known: ${parts.join(' and ')} have no known price`;
}

/** The filters of AdviceFilter, bound as `cohorts`, `services` and `policies`: an empty list is all. */
const FILTERED = `AND (empty({cohorts:Array(String)}) OR has({cohorts:Array(String)}, cohort))
       AND (empty({services:Array(String)}) OR has({services:Array(String)}, service_name))
       AND (empty({policies:Array(String)}) OR has({policies:Array(String)}, policy_version))`;

const row = z.object({
  cohort: z.string(),
  primary_route: z.string(),
  /** The eval run, '' for production. */
  run: z.string(),
  last_ms: chNumber,
  ...sideSumColumns,
});

export interface AdviceReport {
  from: string;
  to: string;
  options: AdviceOptions;
  cohorts: CohortAdvice[];
  /**
   * Cohorts the filter names that no production task of the window has, each with the window's
   * cohort it most likely means (a typo reads as "no traffic" otherwise); absent when none.
   */
  unmatched?: UnmatchedName[];
}

/**
 * Which tasks advice reads: the report's filters but the route's (advice weighs a cohort's
 * routes against each other). An empty list: all.
 */
export interface AdviceFilter {
  cohorts?: readonly string[];
  services?: readonly string[];
  policies?: readonly string[];
}

/**
 * Advice for every cohort with production tasks in [from, to), using the latest eval run of the
 * last `evalLookbackMs` for the small route of large-first cohorts.
 */
export async function buildAdvice(
  store: Store,
  window: { from: Date; to: Date },
  options: AdviceOptions = DEFAULT_ADVICE,
  filter: AdviceFilter = {},
  evalLookbackMs = 30 * 86_400_000,
): Promise<AdviceReport> {
  const params = {
    from: toClickHouseTime(window.from),
    to: toClickHouseTime(window.to),
    cohorts: [...(filter.cohorts ?? [])],
    services: [...(filter.services ?? [])],
    policies: [...(filter.policies ?? [])],
  };
  const rows = await queryTasks(
    store,
    `SELECT cohort, primary_route, eval_run AS run,
            toUnixTimestamp64Milli(max(started_at)) AS last_ms,
            count() AS tasks,
            countIf(outcome != 'unknown') AS known,
            countIf(outcome = 'success') AS successes,
            sum(cost_usd) AS cost,
            sum(cost_usd * cost_usd) AS cost_squared,
            sumIf(cost_usd, outcome = 'success') AS success_cost,
            sumIf(cost_usd, outcome != 'unknown') AS known_cost,
            sumIf(cost_usd * cost_usd, outcome != 'unknown') AS known_cost_squared,
            countIf(attempts >= 2) AS fallbacks,
            countIf(reask) AS reasks,
            sum(model_calls) AS model_calls,
            sum(unpriced_calls) AS unpriced_calls
     FROM {view}
     WHERE ((eval_run = '' AND started_at >= {from:DateTime64(9, 'UTC')} AND started_at < {to:DateTime64(9, 'UTC')})
        OR (eval_run != '' AND started_at >= {evalFrom:DateTime64(9, 'UTC')} AND started_at < {to:DateTime64(9, 'UTC')}))
       ${FILTERED}
     GROUP BY cohort, primary_route, run`,
    {
      ...params,
      evalFrom: toClickHouseTime(new Date(window.to.getTime() - evalLookbackMs)),
    },
    row,
  );
  // Per clock hour, each production route's outcomes: the two routes are compared hour by hour,
  // as a cohort moved from large to small during the window while every task's success moved
  // with the hours (an incident) reads as either route's fault when pooled (gate.ts, matched()).
  const hours = await queryTasks(
    store,
    `SELECT cohort, primary_route, toUnixTimestamp(toStartOfHour(started_at)) AS hour,
            ${STRATUM_COLUMNS}
     FROM {view}
     WHERE eval_run = '' AND started_at >= {from:DateTime64(9, 'UTC')} AND started_at < {to:DateTime64(9, 'UTC')}
       ${FILTERED}
     GROUP BY cohort, primary_route, hour`,
    params,
    stratumRow.extend({ cohort: z.string(), primary_route: z.string(), hour: chNumber }),
  );
  const hoursOf = (cohort: string, route: string) =>
    new Map(
      hours
        .filter((d) => d.cohort === cohort && d.primary_route === route)
        .map((d) => [d.hour * 1000, stratumOf(d)]),
    );
  const stats = (r: z.output<typeof row>): SideStats => ({
    tasks: r.tasks,
    known: r.known,
    successes: r.successes,
    cost: r.cost,
    costSquared: r.cost_squared,
    successCost: r.success_cost,
    knownCost: r.known_cost,
    knownCostSquared: r.known_cost_squared,
    fallbacks: r.fallbacks,
    reasks: r.reasks,
    modelCalls: r.model_calls,
    unpricedCalls: r.unpriced_calls,
    p95LatencyMs: null,
    scores: {},
  });
  const cohorts = [...new Set(rows.filter((r) => r.run === '').map((r) => r.cohort))].sort();
  const pick = (cohort: string, route: string) => {
    const found = rows.find(
      (r) => r.cohort === cohort && r.primary_route === route && r.run === '',
    );
    return found ? stats(found) : undefined;
  };
  // The cohort's latest eval run of the route: runs are never pooled, as an old good run would
  // prop up a bad prompt (and every pull request's run lands on a shared instance).
  const latestEval = (cohort: string, route: string) =>
    latestRun(rows.filter((r) => r.cohort === cohort && r.primary_route === route));
  const unmatched = await unmatchedCohorts(store, params, filter.cohorts ?? [], cohorts);
  return {
    from: window.from.toISOString(),
    to: window.to.toISOString(),
    options,
    cohorts: cohorts.map((cohort) => {
      const smallRoute = cheapRouteOf(rows, cohort, options);
      const evalRow = latestEval(cohort, smallRoute);
      return adviseCohort(
        cohort,
        pick(cohort, smallRoute),
        pick(cohort, options.largeRoute),
        evalRow ? stats(evalRow) : undefined,
        { ...options, smallRoute },
        evalRow?.run ?? null,
        // No hour both routes served with outcomes (a full cutover): nothing compares them at
        // the same time, and pooling would weigh each route by its own hours.
        matched(hoursOf(cohort, options.largeRoute), hoursOf(cohort, smallRoute), 'hour') ?? {
          baseline: { successes: 0, known: 0 },
          candidate: { successes: 0, known: 0 },
          by: 'hour',
        },
      );
    }),
    ...(unmatched.length > 0 ? { unmatched } : {}),
  };
}

/**
 * The cohorts `asked` names that the advice found no production task of (`found`), with the
 * window's production cohort nearest each, read only when some are missing.
 */
async function unmatchedCohorts(
  store: Store,
  params: QueryParams,
  asked: readonly string[],
  found: readonly string[],
): Promise<UnmatchedName[]> {
  const missing = [...new Set(asked)].filter((name) => !found.includes(name));
  if (missing.length === 0) return [];
  const names = await queryTasks(
    store,
    `SELECT DISTINCT cohort FROM {view}
     WHERE eval_run = '' AND started_at >= {from:DateTime64(9, 'UTC')} AND started_at < {to:DateTime64(9, 'UTC')}
       AND cohort != ''`,
    params,
    z.object({ cohort: z.string() }),
  );
  const seen = names.map((n) => n.cohort).sort();
  return missing.map((name) => ({
    filter: 'cohort' as const,
    name,
    suggestion: closestName(name, seen) ?? null,
  }));
}

/**
 * The cohort's cheap route: `smallRoute` when its production traffic takes it; else the route other
 * than the large one that most of its production tasks take first (routes named after models,
 * `gpt-4o-mini` beside `gpt-4o`). For a cohort on the large route only: the route other than the
 * large one of its latest eval run (the candidate the team tried), else the one most production
 * tasks of the other cohorts take first (the deployment's cheap route, say `tiny`), else
 * `smallRoute`.
 */
function cheapRouteOf(
  rows: readonly {
    cohort: string;
    primary_route: string;
    run: string;
    tasks: number;
    last_ms: number;
  }[],
  cohort: string,
  options: AdviceOptions,
): string {
  const cheap = rows.filter((r) => r.primary_route !== options.largeRoute);
  const busiest = (list: readonly (typeof rows)[number][]) => {
    const tasks = new Map<string, number>();
    for (const r of list) tasks.set(r.primary_route, (tasks.get(r.primary_route) ?? 0) + r.tasks);
    return [...tasks].reduce<[string, number] | undefined>(
      (best, entry) => (best === undefined || entry[1] > best[1] ? entry : best),
      undefined,
    )?.[0];
  };
  const production = cheap.filter((r) => r.cohort === cohort && r.run === '');
  if (production.some((r) => r.primary_route === options.smallRoute)) return options.smallRoute;
  const evaluated = latestRun(cheap.filter((r) => r.cohort === cohort));
  return (
    busiest(production) ??
    evaluated?.primary_route ??
    busiest(cheap.filter((r) => r.run === '')) ??
    options.smallRoute
  );
}

/**
 * The row of the latest eval run among `rows` (production rows, `run` '', are not runs): the one
 * whose last task started last, the later name on a tie, so that the run chosen does not hang on
 * the order ClickHouse returned them in (its rows of two routes ending at the same millisecond
 * still could, for the route: callers filter to one route, or take the route only).
 */
function latestRun<T extends { run: string; last_ms: number }>(rows: readonly T[]): T | undefined {
  return rows
    .filter((r) => r.run !== '')
    .reduce<T | undefined>(
      (best, r) =>
        best === undefined ||
        r.last_ms > best.last_ms ||
        (r.last_ms === best.last_ms && r.run > best.run)
          ? r
          : best,
      undefined,
    );
}
