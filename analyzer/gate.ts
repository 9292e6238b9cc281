import { z } from 'zod';
import { chNumber } from '../storage/rows.js';
import { ConfigError } from '../server/config.js';
import { EARLIEST, LATEST, isDuration, parseDuration, parseInstant } from '../server/time.js';
import type { QueryParams, Store } from '../storage/store.js';
import { toClickHouseTime } from './report.js';
import { Z95, costPerSuccess, nonePriced, normalCdf, normalQuantile, wilson } from './stats.js';
import type { Interval, RatioSums } from './stats.js';
import { queryTasks } from '../storage/window-sql.js';

/**
 * The before/after gate: per cohort, a candidate (an eval run, a policy version, a window of
 * production traffic) against a baseline, with a verdict on success rate held to a margin, and
 * the cost per successful task, p95 latency, fallback and reask rates and quality scores beside
 * it. Used by `routewatch gate` (CI, canaries) and `GET /api/v1/compare`.
 */

export type GateRef =
  | { kind: 'eval'; run: string }
  | { kind: 'policy'; version: string }
  | { kind: 'window'; from: Date; to: Date };

export class GateRefError extends ConfigError {
  constructor(message: string) {
    super(message);
    this.name = 'GateRefError';
  }
}

/** A `--cohort` (`?cohort=`) that neither side has: a typo, not a cohort lacking data. */
export class GateCohortError extends ConfigError {
  constructor(message: string) {
    super(message);
    this.name = 'GateCohortError';
  }
}

/**
 * A reference that selects no task at all while the other side has some: a name mistyped, or an
 * eval that never exported to this routewatch. Comparing with nothing is a mistake to point at,
 * not data still to come.
 */
export class GateEmptyRefError extends ConfigError {
  constructor(message: string) {
    super(message);
    this.name = 'GateEmptyRefError';
  }
}

const REF_USAGE =
  'use eval:<run>, policy:<version> or window:<from>/<to> (dates, ISO instants or durations ago: window:14d/7d)';

/**
 * Throws GateRefError when the two references select the same tasks (the same text, or the same
 * window written two ways): a gate of a side against itself passes every cohort, and a CI job
 * given one variable twice would stay green whatever the change.
 */
export function distinctRefs(baseline: GateRef, candidate: GateRef): void {
  if (refLabel(baseline) !== refLabel(candidate)) return;
  throw new GateRefError(
    `the baseline and the candidate are the same reference (${refLabel(baseline)}): a side compared with itself passes every cohort. Give the candidate the run, version or window to judge against this baseline`,
  );
}

/**
 * `eval:<run>`, `policy:<version>` or `window:<from>/<to>`, each end a date, an ISO instant or
 * a duration before `now`; throws GateRefError.
 */
export function parseRef(text: string, now: Date = new Date()): GateRef {
  const colon = text.indexOf(':');
  const kind = colon < 0 ? '' : text.slice(0, colon);
  const value = colon < 0 ? '' : text.slice(colon + 1);
  if (value === '')
    throw new GateRefError(`invalid reference ${JSON.stringify(text)}: ${REF_USAGE}`);
  if (kind === 'eval') return { kind: 'eval', run: value };
  if (kind === 'policy') return { kind: 'policy', version: value };
  if (kind === 'window') {
    const parts = value.split('/');
    if (parts.length !== 2)
      throw new GateRefError(`invalid window ${JSON.stringify(value)}: ${REF_USAGE}`);
    try {
      const at = (part: string) =>
        isDuration(part) ? new Date(now.getTime() - parseDuration(part)) : parseInstant(part);
      const from = at(parts[0]!);
      const to = at(parts[1]!);
      for (const end of [from, to]) {
        if (Number.isNaN(end.getTime()) || end < EARLIEST || end > LATEST) {
          throw new GateRefError(
            `window ${value}: ${Number.isNaN(end.getTime()) ? 'an end' : end.toISOString()} falls outside the time routewatch can store (${EARLIEST.toISOString().slice(0, 10)} to ${LATEST.toISOString().slice(0, 10)})`,
          );
        }
      }
      if (from >= to) throw new GateRefError(`window ${value}: from must be before to`);
      return { kind: 'window', from, to };
    } catch (error) {
      if (error instanceof GateRefError) throw error;
      throw new GateRefError(
        `invalid window ${JSON.stringify(value)}: ${(error as Error).message}`,
      );
    }
  }
  throw new GateRefError(`invalid reference ${JSON.stringify(text)}: ${REF_USAGE}`);
}

export function refLabel(ref: GateRef): string {
  switch (ref.kind) {
    case 'eval':
      return `eval:${ref.run}`;
    case 'policy':
      return `policy:${ref.version}`;
    case 'window':
      return `window:${ref.from.toISOString()}/${ref.to.toISOString()}`;
  }
}

/** What one side (baseline or candidate) measured for one cohort. */
export interface SideStats {
  tasks: number;
  known: number;
  successes: number;
  cost: number;
  costSquared: number;
  successCost: number;
  /**
   * Σ cost and Σ cost² over the tasks with a known outcome: cost per successful task is compared
   * on those (judgedCost), as the alerts judge it, so a side whose outcomes are still arriving
   * (a canary started an hour ago) does not read as dearer for the successes it has yet to hear of.
   */
  knownCost: number;
  knownCostSquared: number;
  fallbacks: number;
  reasks: number;
  /** Model calls under the costs, and those with no known price (their cost counts as 0). */
  modelCalls: number;
  unpricedCalls: number;
  p95LatencyMs: number | null;
  /** Named quality scores: count, Σ, Σ². */
  scores: Record<string, { n: number; sum: number; sumSquared: number }>;
}

export interface GateOptions {
  /** The largest drop in success rate (absolute) a candidate may show: --max-success-drop. */
  maxSuccessDrop: number;
  /** Fewer tasks with a known outcome than this on either side: insufficient_data. */
  minCases: number;
  /**
   * Strict mode: pass only when the one-sided lower confidence bound of the difference clears
   * the margin at this level (a formal non-inferiority test). Unset: the estimate decides, the
   * interval and p-value are reported beside it (see docs/gate.md for why).
   */
  confidence?: number;
}

export const DEFAULT_GATE: GateOptions = { maxSuccessDrop: 0.02, minCases: 200 };

/**
 * The largest margin the gate and the advice take: a drop of half the success rate is no margin,
 * and a larger one is far likelier a unit mistaken (points given as a fraction) than a policy.
 */
export const MAX_SUCCESS_DROP_LIMIT = 0.5;

/**
 * Rates are differences of fractions in floating point: 222/250 − 217/250 comes out as
 * 0.020000000000000018. A drop of exactly the margin is not "more than" it; no real difference
 * is this small.
 */
const RATE_EPSILON = 1e-9;

export type Verdict = 'pass' | 'fail' | 'insufficient_data';

export interface Figure {
  value: number | null;
  interval: Interval | null;
}

export interface CohortComparison {
  cohort: string;
  verdict: Verdict;
  /** Why, with the numbers. */
  reason: string;
  baseline: { tasks: number; known: number; successRate: Figure };
  candidate: { tasks: number; known: number; successRate: Figure };
  /**
   * Candidate minus baseline success rate, its 95 % interval (Newcombe), and the one-sided p-value
   * of "it dropped by the margin or more" (`pValue`, strict mode's). `dropPValue` is the one-sided
   * p-value a `fail` rests on: of "it did not drop" (a cohort with the minimum of cases), or of
   * "it did not drop beyond the margin" (one with fewer); `familySize`, the number of cohorts
   * judged together, whose p-values are held to FAIL_ALPHA by Holm's method (settleFamily).
   * `matchedBy`: the strata the change was weighed over (matched()): `hour` for a canary and for
   * the advice's two routes over its window; null when pooled. `cases`: the cases with an outcome
   * it rests on, on the smaller side: the effective ones when weighed stratum by stratum.
   */
  successChange: {
    estimate: number | null;
    interval: Interval | null;
    pValue: number | null;
    dropPValue: number | null;
    /** The smallest `dropPValue` its counts allow (every candidate case failing). */
    leastPValue: number | null;
    familySize: number;
    matchedBy: 'hour' | 'day' | null;
    cases: number;
  };
  /**
   * A side whose model calls are not all priced is `understated`: its figure is a lower bound
   * (unknown, null, when none was priced), and `relativeChange` is null, as no comparison holds.
   */
  costPerSuccessfulTask: {
    baseline: Figure;
    candidate: Figure;
    relativeChange: number | null;
    understated: { baseline: boolean; candidate: boolean };
    /**
     * Each side's cost per success weighed over the strata the success change was (a canary's
     * hours), which `relativeChange` then compares (not when a side is understated, as above);
     * null when the change is pooled, or a side had no success in those strata. `baseline` and
     * `candidate` stay each side's own pooled figure.
     */
    matched: { baseline: Figure; candidate: Figure; by: 'hour' | 'day' } | null;
  };
  p95LatencyMs: { baseline: number | null; candidate: number | null };
  fallbackRate: { baseline: number | null; candidate: number | null };
  reaskRate: { baseline: number | null; candidate: number | null };
  scores: { name: string; baseline: Figure & { n: number }; candidate: Figure & { n: number } }[];
}

const rate = (x: number, n: number) => (n > 0 ? x / n : null);

/** Mean of a score with a normal 95 % interval. */
function meanOf(
  score: { n: number; sum: number; sumSquared: number } | undefined,
): Figure & { n: number } {
  if (!score || score.n === 0) return { n: 0, value: null, interval: null };
  const mean = score.sum / score.n;
  if (score.n < 2) return { n: score.n, value: mean, interval: null };
  const variance = Math.max(0, (score.sumSquared - score.n * mean * mean) / (score.n - 1));
  const half = 1.959963984540054 * Math.sqrt(variance / score.n);
  return { n: score.n, value: mean, interval: { lower: mean - half, upper: mean + half } };
}

type Proportion = { successes: number; known: number };

/**
 * Newcombe's hybrid score interval of candidate − baseline, from the two Wilson intervals at `z`
 * (Z95: the two-sided 95 % interval; normalQuantile(0.95): the one-sided 95 % bounds). Unlike a
 * Wald interval it keeps its width at rates of 0 or 1, where √(p(1 − p)/n) is 0.
 */
export function newcombe(baseline: Proportion, candidate: Proportion, z = Z95): Interval | null {
  const wb = wilson(baseline.successes, baseline.known, z);
  const wc = wilson(candidate.successes, candidate.known, z);
  if (!wb || !wc) return null;
  const pb = baseline.successes / baseline.known;
  const pc = candidate.successes / candidate.known;
  return {
    lower: pc - pb - Math.sqrt((pc - wc.lower) ** 2 + (wb.upper - pb) ** 2),
    upper: pc - pb + Math.sqrt((wc.upper - pc) ** 2 + (pb - wb.lower) ** 2),
  };
}

/**
 * The one-sided p-value of H₀: candidate − baseline ≤ −margin, by inverting Newcombe's interval:
 * 1 − Φ(z) for the z at which its lower bound reaches −margin (Φ(z) for its upper bound, when
 * the estimate is below −margin). So it agrees with the interval the gate shows and strict mode
 * decides on: p ≤ 1 − confidence exactly when that bound clears the margin.
 */
function newcombePValue(baseline: Proportion, candidate: Proportion, margin: number): number {
  const estimate = candidate.successes / candidate.known - baseline.successes / baseline.known;
  if (Math.abs(estimate + margin) <= RATE_EPSILON) return 0.5;
  const above = estimate > -margin;
  const reached = (z: number) => {
    const interval = newcombe(baseline, candidate, z)!;
    return above ? interval.lower <= -margin : interval.upper >= -margin;
  };
  let low = 0;
  let high = 1;
  while (!reached(high)) {
    // A drop of the margin lies outside every interval (a baseline below the margin cannot drop
    // by it): no level reaches it.
    if (high > 64) return above ? 0 : 1;
    low = high;
    high *= 2;
  }
  for (let i = 0; i < 60; i++) {
    const mid = (low + high) / 2;
    if (reached(mid)) high = mid;
    else low = mid;
  }
  const z = (low + high) / 2;
  return above ? 1 - normalCdf(z) : normalCdf(z);
}

/**
 * The difference of two proportions (candidate − baseline) with Newcombe's hybrid score interval
 * (from the two Wilson intervals), and the one-sided p-value of H₀: difference ≤ −margin.
 */
export function successDifference(
  baseline: Proportion,
  candidate: Proportion,
  margin: number,
): { estimate: number; interval: Interval; pValue: number } | null {
  const interval = newcombe(baseline, candidate);
  if (!interval) return null;
  const raw = candidate.successes / candidate.known - baseline.successes / baseline.known;
  // Rates weighed hour by hour carry floating-point dust: an equal pair is 0, not −0.0 pts.
  const estimate = Math.abs(raw) <= RATE_EPSILON ? 0 : raw;
  return { estimate, interval, pValue: newcombePValue(baseline, candidate, margin) };
}

/** A difference of two rates, in percentage points (a 2-point margin is not a 2 % one). */
export const pts = (v: number) => `${(v * 100).toFixed(1)} pts`;

/** A change of success rate with its 95 % interval, as every reason states it. */
const changeText = (diff: { estimate: number; interval: Interval }) =>
  `success rate ${pts(diff.estimate)} (95 % CI ${pts(diff.interval.lower)} to ${pts(diff.interval.upper)})`;

/**
 * The sums cost per successful task is compared on: the tasks with a known outcome, each side. With
 * every outcome in, the same as all cost ÷ all successes (the report's figure).
 */
export function judgedCost(s: SideStats): RatioSums {
  return {
    tasks: s.known,
    successes: s.successes,
    cost: s.knownCost,
    costSquared: s.knownCostSquared,
    successCost: s.successCost,
  };
}

/** Whether a side's cost is a lower bound: some of its model calls have no known price. */
export const understated = (s: SideStats) => s.unpricedCalls > 0;

/** A side's cost per successful task: unknown (null) when none of its model calls was priced. */
export function sideCost(s: SideStats): Figure {
  const figure = costPerSuccess(judgedCost(s));
  if (!figure || nonePriced(s.modelCalls, s.unpricedCalls)) return { value: null, interval: null };
  return { value: figure.value, interval: figure.interval };
}

function costComparison(
  b: SideStats,
  c: SideStats,
  matchedRates?: Matched,
): CohortComparison['costPerSuccessfulTask'] {
  const baseline = sideCost(b);
  const candidate = sideCost(c);
  const flagged = { baseline: understated(b), candidate: understated(c) };
  // Compared on the strata the success change was weighed over, when their costs were read: a
  // side that served more of its tasks in an incident's hours pays for those hours' failures.
  // Kept for a side with unpriced calls (a floor weighed is a floor still: the advice weighs
  // floors), not when a side had no success in those hours (nothing to weigh: pooled, then).
  const weighed = matchedRates?.cost;
  const matchedCost =
    weighed && weighed.baseline.value !== null && weighed.candidate.value !== null
      ? { ...weighed, by: matchedRates.by }
      : null;
  const compared = matchedCost ?? { baseline, candidate };
  return {
    baseline,
    candidate,
    relativeChange:
      !flagged.baseline &&
      !flagged.candidate &&
      compared.baseline.value !== null &&
      compared.candidate.value !== null &&
      compared.baseline.value > 0
        ? compared.candidate.value / compared.baseline.value - 1
        : null,
    understated: flagged,
    matched: matchedCost,
  };
}

/**
 * One stratum of a side: its tasks with an outcome and successes and, when read, the sums of their
 * cost: Σ cost, Σ cost² and Σ cost over the successes.
 */
export interface Stratum extends Proportion {
  cost?: { sum: number; squares: number; successes: number };
}

/** Per stratum (a clock hour's or a day's start, ms), a side's tasks with an outcome and successes. */
export type StrataCounts = ReadonlyMap<number, Stratum>;

/** Two sides' success counts weighed stratum by stratum: what compareCohort compares then. */
export interface Matched {
  baseline: Proportion;
  candidate: Proportion;
  by: 'hour' | 'day';
  /** Each side's cost per success weighed over the same strata: when every stratum had its cost. */
  cost?: { baseline: Figure; candidate: Figure };
}

type CostedStratum = Required<Stratum>;

/**
 * A side's cost per successful task weighed over strata: its mean cost per task and its success
 * rate, each the weighted mean of the strata's (with the weights matched() gives the success
 * rates), and their ratio R, with a delta-method 95 % interval. With one stratum, or the same
 * share of the side in each, it is the pooled figure. Unknown (null) without a success.
 *
 * The interval's variance is that of each task's residual d = cost − R·success, taken within its
 * stratum and pooled over the strata with a degree of freedom spent per stratum
 * (Σ SS_h ÷ Σ (n_h − 1)), then Σ w_h² s²/n_h ÷ (Σ w_h p_h)². Each stratum's own plug-in variance
 * would not do: a canary's hours hold one or two of a side's tasks, an hour of one task has none,
 * and with two candidate tasks an hour those intervals held the truth 81 % of the time against
 * the pooled interval's 91 % (test/unit/gate.test.ts "keeps the weighed cost interval honest on
 * thin hours"), so "the intervals apart" warned on noise. No interval when no stratum holds two
 * tasks.
 */
function weighedCost(strata: readonly { weight: number; side: CostedStratum }[]): Figure {
  let cost = 0;
  let success = 0;
  for (const { weight: w, side } of strata) {
    cost += (w * side.cost.sum) / side.known;
    success += (w * side.successes) / side.known;
  }
  if (success <= 0) return { value: null, interval: null };
  const value = cost / success;
  let squares = 0;
  let freedom = 0;
  let spread = 0;
  for (const { weight: w, side } of strata) {
    const n = side.known;
    const meanCost = side.cost.sum / n;
    const p = side.successes / n;
    const varCost = Math.max(0, side.cost.squares / n - meanCost * meanCost);
    const covariance = side.cost.successes / n - meanCost * p;
    // n × the plug-in variance of the residual within the stratum: its sum of squares.
    squares += n * Math.max(0, varCost - 2 * value * covariance + value * value * p * (1 - p));
    freedom += n - 1;
    spread += (w * w) / n;
  }
  if (freedom < 1) return { value, interval: null };
  const variance = ((squares / freedom) * spread) / (success * success);
  const half = Z95 * Math.sqrt(variance);
  return { value, interval: { lower: Math.max(0, value - half), upper: value + half } };
}

/**
 * Two sides weighed stratum by stratum: a canary's clock hours, the advice's days. Pooled, a
 * version that took 10 % of the traffic in good hours and 50 % in bad ones (a ramp-up into a
 * provider incident) is compared on different hours: an identical candidate failed by 7 points
 * and one 5 points worse in every hour passed. Each stratum both sides have outcomes in is
 * weighed by n_b·n_c/(n_b + n_c) (Mantel–Haenszel's weight for a difference of rates); each side
 * becomes its weighted success rate over an effective number of cases (Σw)²/Σ(w²/n), so the
 * intervals and p-values downstream keep their meaning (with one stratum, or the same share in
 * each, it is the pooled comparison). When every such stratum carries its cost, each side's cost
 * per success is weighed over them too (weighedCost). Null with no such stratum.
 */
export function matched(
  baseline: StrataCounts,
  candidate: StrataCounts,
  by: Matched['by'] = 'hour',
): Matched | null {
  let weights = 0;
  let rateB = 0;
  let rateC = 0;
  let spreadB = 0;
  let spreadC = 0;
  const shared: { weight: number; baseline: Stratum; candidate: Stratum }[] = [];
  for (const [hour, b] of baseline) {
    const c = candidate.get(hour);
    if (!c || b.known === 0 || c.known === 0) continue;
    const w = (b.known * c.known) / (b.known + c.known);
    weights += w;
    rateB += (w * b.successes) / b.known;
    rateC += (w * c.successes) / c.known;
    spreadB += (w * w) / b.known;
    spreadC += (w * w) / c.known;
    shared.push({ weight: w, baseline: b, candidate: c });
  }
  if (weights === 0) return null;
  const side = (rate: number, spread: number): Proportion => {
    const known = (weights * weights) / spread;
    return { successes: (rate / weights) * known, known };
  };
  const costed = (s: Stratum): s is CostedStratum => s.cost !== undefined;
  const cost = shared.every((s) => costed(s.baseline) && costed(s.candidate))
    ? {
        baseline: weighedCost(
          shared.map((s) => ({ weight: s.weight, side: s.baseline as CostedStratum })),
        ),
        candidate: weighedCost(
          shared.map((s) => ({ weight: s.weight, side: s.candidate as CostedStratum })),
        ),
      }
    : undefined;
  return {
    baseline: side(rateB, spreadB),
    candidate: side(rateC, spreadC),
    by,
    ...(cost ? { cost } : {}),
  };
}

/**
 * A change weighed stratum by stratum, when the pooled one would tell another story (by half the
 * margin or more): what pooling would read and why. '' otherwise.
 */
export function matchedNote(comparison: CohortComparison, margin: number): string {
  const { estimate, matchedBy } = comparison.successChange;
  const b = comparison.baseline.successRate.value;
  const c = comparison.candidate.successRate.value;
  if (matchedBy === null || estimate === null || b === null || c === null) return '';
  const pooled = c - b;
  if (Math.abs(pooled - estimate) < margin / 2) return '';
  return `; weighed ${matchedBy} by ${matchedBy}: pooled over the ${matchedBy}s it would read ${pts(pooled)}, as the two sides' shares of the traffic differ from ${matchedBy} to ${matchedBy}`;
}

/**
 * How many more cases would let a lower bound clear the margin, if the change held at its
 * estimate: the bound's distance below the estimate shrinks with √n, so each side needs
 * (distance ÷ (estimate + margin))² times its cases. Rounded up to tens; beyond a hundredfold,
 * or with the estimate at the margin itself, no number is promised.
 */
function casesToShow(estimate: number, bound: number, margin: number, fewest: number): string {
  const room = estimate + margin;
  const factor = room > RATE_EPSILON ? ((estimate - bound) / room) ** 2 : Infinity;
  if (!Number.isFinite(factor) || factor > 100)
    return 'more cases needed (at this estimate, many times as many)';
  const more = Math.max(10, Math.ceil((fewest * (factor - 1)) / 10) * 10);
  return `more cases needed: about ${more} more on the smaller side, the other in proportion, if the change holds at ${pts(estimate)}`;
}

/** The comparison of one cohort. Pure. */
export function compareCohort(
  cohort: string,
  b: SideStats,
  c: SideStats,
  options: GateOptions,
  matchedRates?: Matched,
): CohortComparison {
  // The success rates are compared hour by hour when the sides' mix of hours differs (a canary).
  const [mb, mc] = matchedRates ? [matchedRates.baseline, matchedRates.candidate] : [b, c];
  const diff = successDifference(mb, mc, options.maxSuccessDrop);
  const margin = options.maxSuccessDrop;
  // The cases the comparison rests on: weighed stratum by stratum, the effective ones, which a
  // thin overlap (one large task in the hour of a move) leaves far below the raw counts.
  const fewest = Math.min(mb.known, mc.known);
  const enough = fewest >= options.minCases;
  const casesText = matchedRates
    ? `${Math.floor(fewest)} effective cases in the ${matchedRates.by}s both served with outcomes`
    : `${fewest} cases with an outcome`;
  // What a fail would claim: a drop at all, for a cohort with its cases and an estimate beyond
  // the margin; a drop beyond the margin, for one with fewer (a collapse shows on few cases).
  const claim = enough ? 0 : margin;
  const dropPValue = diff ? 1 - newcombePValue(mb, mc, claim) : null;
  // The smallest p-value these counts allow (every candidate case failing): Tarone's screen of
  // the cohorts that could fail at all (settleFamily).
  const leastPValue = diff
    ? 1 - newcombePValue(mb, { successes: 0, known: mc.known }, claim)
    : null;
  const beyond = diff !== null && diff.estimate < -margin - RATE_EPSILON;
  let verdict: Verdict;
  let reason: string;
  if (!diff || (!enough && !(beyond && dropPValue! <= FAIL_ALPHA))) {
    verdict = 'insufficient_data';
    const missing = Math.max(0, Math.ceil(options.minCases - fewest));
    const absent = (['baseline', 'candidate'] as const).filter(
      (name) => (name === 'baseline' ? b : c).tasks === 0,
    );
    reason =
      absent.length === 1
        ? `the ${absent[0]} has no task in this cohort: nothing to compare with`
        : matchedRates && !diff
          ? `no ${matchedRates.by} in which both served it with outcomes: nothing compares them at the same time`
          : `${casesText} on the smaller side, fewer than ${options.minCases}: ${missing} more needed`;
  } else if (!enough) {
    verdict = 'fail';
    reason = `${changeText(diff)} on ${casesText}, fewer than ${options.minCases}, but already a larger drop than the ${pts(margin)} allowed beyond chance (one-sided p ${pValueText(dropPValue!)})`;
  } else if (beyond) {
    verdict = dropPValue! <= FAIL_ALPHA ? 'fail' : 'insufficient_data';
    reason =
      verdict === 'fail'
        ? `${changeText(diff)}, a larger drop than the ${pts(margin)} allowed`
        : notBeyondChance(diff, margin, dropPValue!, dropPValue!, FAIL_ALPHA, fewest, 1);
  } else if (options.confidence !== undefined) {
    const bound = newcombe(mb, mc, normalQuantile(options.confidence))!.lower;
    verdict = bound > -margin ? 'pass' : 'insufficient_data';
    reason =
      verdict === 'pass'
        ? `success rate ${pts(diff.estimate)}; its ${Math.round(options.confidence * 100)} % lower bound ${pts(bound)} is within the ${pts(margin)} allowed`
        : `success rate ${pts(diff.estimate)}, but its ${Math.round(options.confidence * 100)} % lower bound ${pts(bound)} does not clear the ${pts(margin)} allowed: ${casesToShow(diff.estimate, bound, margin, fewest)}`;
  } else {
    verdict = 'pass';
    reason = `${changeText(diff)}, within the ${pts(margin)} allowed`;
  }
  const pending = (['baseline', 'candidate'] as const)
    .map((name) => ({ name, side: name === 'baseline' ? b : c }))
    .filter(({ side }) => side.tasks > side.known)
    .map(({ name, side }) => `${side.tasks - side.known} of the ${name}'s ${side.tasks} tasks`);
  // Judged on the tasks whose outcome has arrived: say how many have not, since failures that
  // report later than successes (a review queue) make a side look better than it will.
  if (pending.length > 0)
    reason += `; not judged, their outcome still to come: ${pending.join(' and ')}`;
  const names = [...new Set([...Object.keys(b.scores), ...Object.keys(c.scores)])].sort();
  const comparison: CohortComparison = {
    cohort,
    verdict,
    reason,
    baseline: {
      tasks: b.tasks,
      known: b.known,
      successRate: { value: rate(b.successes, b.known), interval: wilson(b.successes, b.known) },
    },
    candidate: {
      tasks: c.tasks,
      known: c.known,
      successRate: { value: rate(c.successes, c.known), interval: wilson(c.successes, c.known) },
    },
    successChange: {
      ...(diff
        ? {
            estimate: diff.estimate,
            interval: diff.interval,
            pValue: diff.pValue,
            dropPValue,
            leastPValue,
          }
        : { estimate: null, interval: null, pValue: null, dropPValue: null, leastPValue: null }),
      familySize: 1,
      matchedBy: matchedRates?.by ?? null,
      cases: fewest,
    },
    costPerSuccessfulTask: costComparison(b, c, matchedRates),
    p95LatencyMs: { baseline: b.p95LatencyMs, candidate: c.p95LatencyMs },
    fallbackRate: { baseline: rate(b.fallbacks, b.tasks), candidate: rate(c.fallbacks, c.tasks) },
    reaskRate: { baseline: rate(b.reasks, b.tasks), candidate: rate(c.reasks, c.tasks) },
    scores: names.map((name) => ({
      name,
      baseline: meanOf(b.scores[name]),
      candidate: meanOf(c.scores[name]),
    })),
  };
  const note = matchedNote(comparison, margin);
  if (!note) return comparison;
  // Before the note of outcomes still to come, which ends the reason.
  const at = comparison.reason.indexOf('; not judged, their outcome still to come: ');
  return {
    ...comparison,
    reason:
      at < 0
        ? comparison.reason + note
        : comparison.reason.slice(0, at) + note + comparison.reason.slice(at),
  };
}

/** When a side served a cohort: the start of its first and of its last task, ms since the epoch. */
export interface Span {
  firstMs: number;
  lastMs: number;
}

/**
 * A canary's cohort (both sides policy versions, both serving it): when each served it, and the
 * overlap that was compared, `[from, to)`; null when they never served it at the same time.
 */
export interface CohortOverlap {
  /** `hours`: the clock hours within it that both served (sharedHours): the ones compared. */
  overlap: { from: string; to: string; hours?: number } | null;
  baseline: { first: string; last: string };
  candidate: { first: string; last: string };
}

export interface GateCohort extends CohortComparison {
  /** For two policy versions that both served the cohort; null otherwise. */
  concurrent: CohortOverlap | null;
}

export interface GateResult {
  baseline: string;
  candidate: string;
  /** Both sides policy versions: each cohort is compared on the time both served it only. */
  canary: boolean;
  /**
   * One side an eval run, the other production: the cohorts production has and the eval run does
   * not cover, left out of the comparison (an eval run judges the cohorts it covers). A cohort
   * asked for by name is compared whatever the eval covers.
   */
  notCovered: string[];
  /**
   * Neither side selects any task, in any cohort: what the store holds instead, and what to
   * check (an eval that never exported reads the same as one not run yet). Null otherwise.
   */
  empty: string | null;
  options: GateOptions;
  verdict: Verdict;
  cohorts: GateCohort[];
}

/** The time both sides served a cohort, `[fromMs, toMs)`; null when they never did. Pure. */
export function overlapOf(
  baseline: Span,
  candidate: Span,
): { fromMs: number; toMs: number } | null {
  const fromMs = Math.max(baseline.firstMs, candidate.firstMs);
  const lastMs = Math.min(baseline.lastMs, candidate.lastMs);
  return fromMs <= lastMs ? { fromMs, toMs: lastMs + 1 } : null;
}

const HOUR_MS = 3_600_000;

/**
 * Fewer tasks than this in a clock hour, beside at least this many of the other version's, are a
 * straggler (an old pod finishing a queued job): they do not make the hour shared. One task each,
 * as at the very end of a canary, does.
 */
export const SERVED_HOUR_TASKS = 2;

/**
 * The clock hours (their starts, ms) within `overlap` in which both versions served the cohort,
 * from each side's tasks per hour. Only these are compared: one late task of the baseline
 * stretches the overlap to it, and without this, hours the candidate served alone would be
 * compared with the baseline's from before. Pure.
 */
export function sharedHours(
  baseline: ReadonlyMap<number, number>,
  candidate: ReadonlyMap<number, number>,
  overlap: { fromMs: number; toMs: number },
): number[] {
  const hours: number[] = [];
  for (const [hour, n] of baseline) {
    const m = candidate.get(hour) ?? 0;
    if (n === 0 || m === 0) continue;
    if (Math.min(n, m) < SERVED_HOUR_TASKS && Math.max(n, m) >= SERVED_HOUR_TASKS) continue;
    if (hour + HOUR_MS <= overlap.fromMs || hour >= overlap.toMs) continue;
    hours.push(hour);
  }
  return hours.sort((x, y) => x - y);
}

const iso = (ms: number) => new Date(ms).toISOString();
const spanLabel = (span: Span) => ({ first: iso(span.firstMs), last: iso(span.lastMs) });

export const EMPTY_SIDE: SideStats = {
  tasks: 0,
  known: 0,
  successes: 0,
  cost: 0,
  costSquared: 0,
  successCost: 0,
  knownCost: 0,
  knownCostSquared: 0,
  fallbacks: 0,
  reasks: 0,
  modelCalls: 0,
  unpricedCalls: 0,
  p95LatencyMs: null,
  scores: {},
};

/** The `window:<from>/<to>` reference of the time a side served a cohort, its last task included. */
const windowRefOf = (span: Span) => `window:${iso(span.firstMs)}/${iso(span.lastMs + 1)}`;

/**
 * A canary's cohort compared on its own overlap: `baseline` and `candidate` are the sides' sums
 * over that overlap only (over its `hours` both served, when given). A cohort the two versions
 * never served at the same time — or never in the same clock hour — is not compared at all:
 * insufficient_data, like a cohort short of cases, with both sides' times in the reason. Pure.
 */
export function compareConcurrent(
  cohort: string,
  spans: { baseline: Span; candidate: Span },
  within: { baseline: SideStats; candidate: SideStats },
  options: GateOptions,
  hours?: number,
  matchedRates?: Matched | null,
): GateCohort {
  const overlap = overlapOf(spans.baseline, spans.candidate);
  const concurrent = {
    baseline: spanLabel(spans.baseline),
    candidate: spanLabel(spans.candidate),
  };
  if (!overlap) {
    const [earlier, later] =
      spans.baseline.lastMs < spans.candidate.firstMs
        ? (['baseline', 'candidate'] as const)
        : (['candidate', 'baseline'] as const);
    return {
      ...compareCohort(cohort, EMPTY_SIDE, EMPTY_SIDE, options),
      verdict: 'insufficient_data',
      reason:
        `no overlap: ${earlier}'s last task at ${concurrent[earlier].last}, ${later}'s first at ${concurrent[later].first}; two policy versions are compared only on the time both served a cohort. ` +
        `For a straight cutover, compare the time each served it (a before/after comparison: the traffic may have changed too): ` +
        `--baseline ${windowRefOf(spans.baseline)} --candidate ${windowRefOf(spans.candidate)} --cohort ${cohort}`,
      concurrent: { overlap: null, ...concurrent },
    };
  }
  if (hours === 0) {
    return {
      ...compareCohort(cohort, EMPTY_SIDE, EMPTY_SIDE, options),
      verdict: 'insufficient_data',
      reason:
        `no hour both served: between ${iso(overlap.fromMs)} and ${iso(overlap.toMs)} the versions never served it in the same clock hour (a straggling task beside the other's traffic does not count); two policy versions are compared only on the time both served a cohort. ` +
        `The baseline served it from ${concurrent.baseline.first} to ${concurrent.baseline.last}, the candidate from ${concurrent.candidate.first} to ${concurrent.candidate.last}`,
      concurrent: { overlap: null, ...concurrent },
    };
  }
  return {
    ...compareCohort(cohort, within.baseline, within.candidate, options, matchedRates ?? undefined),
    concurrent: {
      overlap: {
        from: iso(overlap.fromMs),
        to: iso(overlap.toMs),
        ...(hours !== undefined ? { hours } : {}),
      },
      ...concurrent,
    },
  };
}

/**
 * The chance a gate may fail a candidate that truly dropped by nothing (by no more than the
 * margin, for a cohort under the minimum of cases), over all the cohorts it judges at once.
 */
export const FAIL_ALPHA = 0.05;

const pValueText = (p: number) => (p < 0.0001 ? '< 0.0001' : p.toPrecision(2));

/**
 * A drop beyond the margin on the estimate, not beyond chance: how many more cases per side would
 * make a drop this large tell (the evidence grows with √n), and why it does not yet.
 */
function notBeyondChance(
  diff: { estimate: number; interval: Interval },
  margin: number,
  p: number,
  adjusted: number,
  alpha: number,
  cases: number,
  family: number,
): string {
  const level =
    family > 1
      ? `one-sided p ${pValueText(p)}, Holm-adjusted ${pValueText(adjusted)} among the ${family} cohorts that could fail, above ${FAIL_ALPHA}`
      : `one-sided p ${pValueText(p)}, above ${FAIL_ALPHA}`;
  // Its own level met, it waits on a weaker drop ranked before it: more cases of its own will not
  // tell.
  if (p <= alpha) {
    return `${changeText(diff)}, a larger drop than the ${pts(margin)} allowed on the estimate, but not beyond chance (${level}: Holm's method stopped at a cohort ranked before it, by a smaller p-value, whose drop did not stand)`;
  }
  const zNow = normalQuantile(1 - Math.min(Math.max(p, 1e-12), 0.5 - 1e-9));
  const more = Math.ceil(cases * ((normalQuantile(1 - alpha) / zNow) ** 2 - 1));
  return `${changeText(diff)}, a larger drop than the ${pts(margin)} allowed on the estimate, but not beyond chance (${level}): about ${Math.max(1, more)} more cases per side would tell a drop this large`;
}

/**
 * Judges the cohorts of one gate together: a cohort fails only when its drop stands after Holm's
 * method over the cohorts compared, so a policy that changed nothing fails at most FAIL_ALPHA of
 * the time however many cohorts it has (with 20 cohorts at 200 cases a side, a drop beyond 2
 * points on the estimate alone shows in one cohort or more almost every time). The family is
 * screened first by Tarone's method: the smallest m such that at most m cohorts could reach
 * FAIL_ALPHA ÷ m at all (leastPValue), so cohorts of a few cases, which no result could fail, do
 * not dilute the others' level. A cohort whose drop does not stand is insufficient_data, saying
 * why and how many more cases would tell. Passes are untouched: strict mode's bounds each hold at
 * their level (all must, so no adjustment is due).
 */
export function settleFamily<T extends CohortComparison>(
  cohorts: readonly T[],
  options: GateOptions,
): T[] {
  const judged = cohorts.filter((c) => c.successChange.dropPValue !== null);
  if (judged.length <= 1) return [...cohorts];
  const least = (c: CohortComparison) => c.successChange.leastPValue ?? 0;
  let family = 1;
  while (judged.filter((c) => least(c) <= FAIL_ALPHA / family).length > family) family++;
  const testable = judged.filter((c) => least(c) <= FAIL_ALPHA / family);
  const ranked = [...testable].sort(
    (x, y) => x.successChange.dropPValue! - y.successChange.dropPValue!,
  );
  // Holm's adjusted p-values, and the ones that stand.
  const adjusted = new Map<T, number>();
  let running = 0;
  let stopped = false;
  const stands = new Set<T>();
  for (const [rank, cohort] of ranked.entries()) {
    const p = cohort.successChange.dropPValue!;
    running = Math.max(running, Math.min(1, (family - rank) * p));
    adjusted.set(cohort, running);
    if (!stopped && p <= FAIL_ALPHA / (family - rank)) stands.add(cohort);
    else stopped = true;
  }
  return cohorts.map((cohort) => {
    if (cohort.successChange.dropPValue === null) return cohort;
    const settled = { ...cohort, successChange: { ...cohort.successChange, familySize: family } };
    if (cohort.verdict !== 'fail' || stands.has(cohort)) return settled;
    const { estimate, interval, dropPValue } = cohort.successChange;
    const rank = ranked.indexOf(cohort);
    const own = rank < 0 ? FAIL_ALPHA / family : FAIL_ALPHA / (family - rank);
    // The cases the comparison rests on: a canary's effective ones, weighed hour by hour.
    const cases = Math.floor(cohort.successChange.cases);
    const casesText =
      cohort.successChange.matchedBy === null
        ? `${cases} cases with an outcome on the smaller side`
        : `${cases} effective cases with an outcome on the smaller side, in the ${cohort.successChange.matchedBy}s both served`;
    const pending =
      cohort.reason.match(/; not judged, their outcome still to come: .*$/)?.[0] ?? '';
    return {
      ...settled,
      verdict: 'insufficient_data',
      reason:
        (cases < options.minCases
          ? `${casesText}, fewer than ${options.minCases}: ${options.minCases - cases} more needed (its drop of ${pts(-estimate!)} is beyond the ${pts(options.maxSuccessDrop)} allowed on fewer, but not beyond chance among the ${family} cohorts that could fail)`
          : notBeyondChance(
              { estimate: estimate!, interval: interval! },
              options.maxSuccessDrop,
              dropPValue!,
              adjusted.get(cohort) ?? Math.min(1, family * dropPValue!),
              own,
              // More of the same traffic: the raw cases, which the evidence grows with in step.
              Math.min(cohort.baseline.known, cohort.candidate.known),
              family,
            )) +
        matchedNote(cohort, options.maxSuccessDrop) +
        pending,
    };
  });
}

/** The overall verdict: fail if any cohort fails, else insufficient_data if any is, else pass. */
export function overallVerdict(cohorts: readonly CohortComparison[]): Verdict {
  if (cohorts.some((c) => c.verdict === 'fail')) return 'fail';
  if (cohorts.length === 0 || cohorts.some((c) => c.verdict === 'insufficient_data'))
    return 'insufficient_data';
  return 'pass';
}

/* ---------- reading a side from the store ---------- */

/** The per-cohort sums a side is built from (compareCohort): the gate's and the advice's rows. */
export const sideSumColumns = {
  tasks: chNumber,
  known: chNumber,
  successes: chNumber,
  cost: chNumber,
  cost_squared: chNumber,
  success_cost: chNumber,
  known_cost: chNumber,
  known_cost_squared: chNumber,
  fallbacks: chNumber,
  reasks: chNumber,
  model_calls: chNumber,
  unpriced_calls: chNumber,
};

const sideRow = z.object({
  cohort: z.string(),
  ...sideSumColumns,
  p95: z
    .union([z.number(), z.string(), z.null()])
    .transform((v) => (v === null ? null : Number(v))),
  first_ms: chNumber,
  last_ms: chNumber,
});

/** The WHERE clause and parameters a reference selects (eval tasks only for eval refs). */
function refFilter(ref: GateRef, prefix: string): { sql: string; params: Record<string, string> } {
  switch (ref.kind) {
    case 'eval':
      return { sql: `eval_run = {${prefix}Run:String}`, params: { [`${prefix}Run`]: ref.run } };
    case 'policy':
      return {
        sql: `eval_run = '' AND policy_version = {${prefix}Version:String}`,
        params: { [`${prefix}Version`]: ref.version },
      };
    case 'window':
      return {
        sql: `eval_run = '' AND started_at >= {${prefix}From:DateTime64(9, 'UTC')} AND started_at < {${prefix}To:DateTime64(9, 'UTC')}`,
        params: {
          [`${prefix}From`]: toClickHouseTime(ref.from),
          [`${prefix}To`]: toClickHouseTime(ref.to),
        },
      };
  }
}

interface Side extends Span {
  stats: SideStats;
}

/**
 * Per cohort, the time a side is read from: a canary's overlap, `[from, to)` in ms, and within it
 * the clock hours both served (their starts, ms).
 */
type CohortWindows = ReadonlyMap<string, { fromMs: number; toMs: number; hours: number[] }>;

/** The SQL and parameters that keep each cohort's tasks within its own window. */
function windowsFilter(windows: CohortWindows | undefined): {
  sql: string;
  params: QueryParams;
} {
  if (!windows) return { sql: '', params: {} };
  const clauses: string[] = [];
  const params: QueryParams = {};
  [...windows].forEach(([cohort, window], i) => {
    clauses.push(
      `(cohort = {withinCohort${i}:String} AND started_at >= {withinFrom${i}:DateTime64(9, 'UTC')} AND started_at < {withinTo${i}:DateTime64(9, 'UTC')}` +
        ` AND has({withinHours${i}:Array(String)}, toString(toUnixTimestamp(toStartOfHour(started_at)))))`,
    );
    params[`withinCohort${i}`] = cohort;
    params[`withinFrom${i}`] = toClickHouseTime(new Date(window.fromMs));
    params[`withinTo${i}`] = toClickHouseTime(new Date(window.toMs));
    params[`withinHours${i}`] = window.hours.map((ms) => String(ms / 1000));
  });
  return { sql: `AND (${clauses.join(' OR ')})`, params };
}

/** Per cohort, a side's tasks per clock hour (the hour's start, ms). */
async function readHours(
  store: Store,
  ref: GateRef,
  cohorts: readonly string[],
): Promise<Map<string, Map<number, number>>> {
  const filter = refFilter(ref, 'ref');
  const rows = await queryTasks(
    store,
    `SELECT cohort, toUnixTimestamp(toStartOfHour(started_at)) AS hour, count() AS n
     FROM {view}
     WHERE ${filter.sql}
       AND (empty({cohorts:Array(String)}) OR has({cohorts:Array(String)}, cohort))
     GROUP BY cohort, hour`,
    { ...filter.params, cohorts: [...cohorts] },
    z.object({ cohort: z.string(), hour: chNumber, n: chNumber }),
  );
  const out = new Map<string, Map<number, number>>();
  for (const r of rows) {
    const hours = out.get(r.cohort) ?? new Map<number, number>();
    hours.set(r.hour * 1000, r.n);
    out.set(r.cohort, hours);
  }
  return out;
}

/**
 * The columns of one stratum (`known`, `successes` and their cost sums, over the tasks with an
 * outcome), as a SELECT lists them, and the row they read into.
 */
export const STRATUM_COLUMNS = `countIf(outcome != 'unknown') AS known,
            countIf(outcome = 'success') AS successes,
            sumIf(cost_usd, outcome != 'unknown') AS known_cost,
            sumIf(cost_usd * cost_usd, outcome != 'unknown') AS known_cost_squared,
            sumIf(cost_usd, outcome = 'success') AS success_cost`;
export const stratumRow = z.object({
  known: chNumber,
  successes: chNumber,
  known_cost: chNumber,
  known_cost_squared: chNumber,
  success_cost: chNumber,
});

export const stratumOf = (r: z.output<typeof stratumRow>): Stratum => ({
  known: r.known,
  successes: r.successes,
  cost: { sum: r.known_cost, squares: r.known_cost_squared, successes: r.success_cost },
});

/** Per cohort and clock hour within its window, a side's tasks with an outcome, successes, cost. */
async function readOutcomeHours(
  store: Store,
  ref: GateRef,
  cohorts: readonly string[],
  windows: CohortWindows,
): Promise<Map<string, Map<number, Stratum>>> {
  const filter = refFilter(ref, 'ref');
  const range = windowsFilter(windows);
  const rows = await queryTasks(
    store,
    `SELECT cohort, toUnixTimestamp(toStartOfHour(started_at)) AS hour,
            ${STRATUM_COLUMNS}
     FROM {view}
     WHERE ${filter.sql} ${range.sql}
       AND (empty({cohorts:Array(String)}) OR has({cohorts:Array(String)}, cohort))
     GROUP BY cohort, hour`,
    { ...filter.params, ...range.params, cohorts: [...cohorts] },
    stratumRow.extend({ cohort: z.string(), hour: chNumber }),
  );
  const out = new Map<string, Map<number, Stratum>>();
  for (const r of rows) {
    const hours = out.get(r.cohort) ?? new Map<number, Stratum>();
    hours.set(r.hour * 1000, stratumOf(r));
    out.set(r.cohort, hours);
  }
  return out;
}

async function readSide(
  store: Store,
  ref: GateRef,
  cohorts: readonly string[],
  windows?: CohortWindows,
): Promise<Map<string, Side>> {
  const filter = refFilter(ref, 'ref');
  const range = windowsFilter(windows);
  const rows = await queryTasks(
    store,
    `SELECT cohort,
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
            sum(unpriced_calls) AS unpriced_calls,
            quantileExact(0.95)(latency_ms) AS p95,
            toUnixTimestamp64Milli(min(started_at)) AS first_ms,
            toUnixTimestamp64Milli(max(started_at)) AS last_ms
     FROM {view}
     WHERE ${filter.sql} ${range.sql}
       AND (empty({cohorts:Array(String)}) OR has({cohorts:Array(String)}, cohort))
     GROUP BY cohort`,
    { ...filter.params, ...range.params, cohorts: [...cohorts] },
    sideRow,
  );
  const scores = await readScores(store, filter, cohorts, range);
  return new Map(
    rows.map((r) => [
      r.cohort,
      {
        stats: {
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
          p95LatencyMs: r.p95 === null || Number.isNaN(r.p95) ? null : r.p95,
          scores: scores.get(r.cohort) ?? {},
        },
        firstMs: r.first_ms,
        lastMs: r.last_ms,
      },
    ]),
  );
}

const scoreRow = z.object({
  cohort: z.string(),
  name: z.string(),
  n: chNumber,
  total: chNumber,
  squares: chNumber,
});

async function readScores(
  store: Store,
  filter: { sql: string; params: Record<string, string> },
  cohorts: readonly string[],
  range: { sql: string; params: QueryParams },
): Promise<Map<string, SideStats['scores']>> {
  const rows = await queryTasks(
    store,
    `SELECT cohort, name, count() AS n, sum(value) AS total, sum(value * value) AS squares
     FROM {view} ARRAY JOIN mapKeys(scores) AS name, mapValues(scores) AS value
     WHERE ${filter.sql} ${range.sql}
       AND (empty({cohorts:Array(String)}) OR has({cohorts:Array(String)}, cohort))
     GROUP BY cohort, name`,
    { ...filter.params, ...range.params, cohorts: [...cohorts] },
    scoreRow,
  );
  const out = new Map<string, SideStats['scores']>();
  for (const r of rows) {
    const entry = out.get(r.cohort) ?? {};
    entry[r.name] = { n: r.n, sum: r.total, sumSquared: r.squares };
    out.set(r.cohort, entry);
  }
  return out;
}

/** At most this many cohorts are listed in the message about an unknown one. */
const LISTED_COHORTS = 50;

/**
 * The GateCohortError for cohorts asked for that neither side has, listing the ones they have;
 * null when neither side has any task at all (no typo to point at: nothing to compare yet).
 */
async function unknownCohorts(
  store: Store,
  baseline: GateRef,
  candidate: GateRef,
  missing: readonly string[],
): Promise<GateCohortError | null> {
  const b = refFilter(baseline, 'baseline');
  const c = refFilter(candidate, 'candidate');
  const rows = await queryTasks(
    store,
    `SELECT DISTINCT cohort FROM {view} WHERE (${b.sql}) OR (${c.sql}) ORDER BY cohort`,
    { ...b.params, ...c.params },
    z.object({ cohort: z.string() }),
  );
  if (rows.length === 0) return null;
  const names = rows.map((r) => JSON.stringify(r.cohort));
  const listed = `${names.slice(0, LISTED_COHORTS).join(', ')}${names.length > LISTED_COHORTS ? `, and ${names.length - LISTED_COHORTS} more` : ''}`;
  const comma = rows.some((r) => r.cohort.includes(','))
    ? ' (a comma inside a cohort name is written \\, in --cohort: a,b is two cohorts)'
    : '';
  return new GateCohortError(
    `no ${missing.length === 1 ? 'cohort' : 'cohorts'} ${missing.map((m) => JSON.stringify(m)).join(', ')} in baseline ${refLabel(baseline)} or candidate ${refLabel(candidate)}; the cohorts there: ${listed}${comma}`,
  );
}

/** Whether a reference selects any task at all, in any cohort. */
async function selectsAny(store: Store, ref: GateRef): Promise<boolean> {
  const filter = refFilter(ref, 'ref');
  const rows = await queryTasks(
    store,
    `SELECT count() AS n FROM {view} WHERE ${filter.sql}`,
    filter.params,
    z.object({ n: chNumber }),
  );
  return (rows[0]?.n ?? 0) > 0;
}

/** At most this many eval runs or policy versions are named in the message about an empty side. */
const LISTED_REFS = 8;

/** The GateEmptyRefError for a side that selects no task, naming what the store has instead. */
async function emptyRefError(
  store: Store,
  role: 'baseline' | 'candidate',
  ref: GateRef,
): Promise<GateEmptyRefError> {
  const head = `the ${role} ${refLabel(ref)} selects no task, in any cohort`;
  if (ref.kind === 'window') {
    const rows = await queryTasks(
      store,
      `SELECT count() AS n, toUnixTimestamp64Milli(min(started_at)) AS first_ms,
              toUnixTimestamp64Milli(max(started_at)) AS last_ms
       FROM {view} WHERE eval_run = ''`,
      {},
      z.object({ n: chNumber, first_ms: chNumber, last_ms: chNumber }),
    );
    const r = rows[0];
    return new GateEmptyRefError(
      r && r.n > 0
        ? `${head}: the production tasks stored here started from ${iso(r.first_ms)} to ${iso(r.last_ms)}; choose a window within that time`
        : `${head}: no production task is stored here at all; check that the service exports to this routewatch (OTEL_EXPORTER_OTLP_ENDPOINT)`,
    );
  }
  const column = ref.kind === 'eval' ? 'eval_run' : 'policy_version';
  const where = ref.kind === 'eval' ? "eval_run != ''" : "eval_run = '' AND policy_version != ''";
  const rows = await queryTasks(
    store,
    `SELECT ${column} AS name, toUnixTimestamp64Milli(max(started_at)) AS last_ms
     FROM {view} WHERE ${where}
     GROUP BY name ORDER BY last_ms DESC, name LIMIT ${LISTED_REFS + 1}`,
    {},
    z.object({ name: z.string(), last_ms: chNumber }),
  );
  const what = ref.kind === 'eval' ? 'eval runs' : 'policy versions';
  const listed = rows
    .slice(0, LISTED_REFS)
    .map((r) => `${ref.kind}:${r.name} (last task ${iso(r.last_ms)})`)
    .join(', ');
  const known =
    rows.length === 0
      ? `there is no ${ref.kind === 'eval' ? 'eval run' : 'production task with a policy version (routewatch.policy.version)'} here at all`
      : `the ${what} here, latest first: ${listed}${rows.length > LISTED_REFS ? ', …' : ''}`;
  const check =
    ref.kind === 'eval'
      ? 'check the run name, and that the eval exported to this routewatch (OTEL_EXPORTER_OTLP_ENDPOINT, with the instrumentation loaded)'
      : 'check the version name';
  return new GateEmptyRefError(`${head}: ${known}; ${check}`);
}

/** A cohort asked for when neither side has any task: insufficient data, saying so. */
function emptyCohort(
  cohort: string,
  baseline: GateRef,
  candidate: GateRef,
  options: GateOptions,
): GateCohort {
  return {
    ...compareCohort(cohort, EMPTY_SIDE, EMPTY_SIDE, options),
    reason: `no task yet in baseline ${refLabel(baseline)} or candidate ${refLabel(candidate)}, in any cohort: check the references, or wait for the traffic (an eval run still going)`,
    concurrent: null,
  };
}

/**
 * Compares a candidate with a baseline, per cohort. Two policy versions (a canary) are compared
 * cohort by cohort on the time both served that cohort only: the same traffic, the same hours. A
 * cohort one version stopped serving before the other started is not compared at all
 * (compareConcurrent). A cohort asked for that neither side has throws GateCohortError, unless
 * neither side has any task at all: then each cohort asked for is insufficient_data.
 */
export async function runGate(
  store: Store,
  baseline: GateRef,
  candidate: GateRef,
  options: GateOptions = DEFAULT_GATE,
  cohorts: readonly string[] = [],
): Promise<GateResult> {
  const b = await readSide(store, baseline, cohorts);
  const c = await readSide(store, candidate, cohorts);
  const missing = [...new Set(cohorts)].filter((name) => !b.has(name) && !c.has(name));
  if (missing.length > 0) {
    const error = await unknownCohorts(store, baseline, candidate, missing);
    if (error) throw error;
  }
  // One side with no task at all, the other with some: a wrong reference, not data to wait for.
  for (const [role, ref, side, other] of [
    ['baseline', baseline, b, c],
    ['candidate', candidate, c, b],
  ] as const) {
    if (side.size === 0 && other.size > 0 && !(await selectsAny(store, ref)))
      throw await emptyRefError(store, role, ref);
  }
  // Neither side with any task: nothing to judge, and each side says what the store has instead.
  const empty =
    b.size === 0 &&
    c.size === 0 &&
    !(await selectsAny(store, baseline)) &&
    !(await selectsAny(store, candidate))
      ? `${(await emptyRefError(store, 'baseline', baseline)).message}. And ${(await emptyRefError(store, 'candidate', candidate)).message}`
      : null;
  const canary = baseline.kind === 'policy' && candidate.kind === 'policy';
  // An eval run against production: the cohorts the eval covers are the ones judged.
  const evalSide =
    baseline.kind === 'eval' && candidate.kind !== 'eval'
      ? b
      : candidate.kind === 'eval' && baseline.kind !== 'eval'
        ? c
        : null;
  const asked = new Set(cohorts);
  const all = [...new Set([...b.keys(), ...c.keys()])].sort();
  const notCovered =
    evalSide && evalSide.size > 0
      ? all.filter((name) => !evalSide.has(name) && !asked.has(name))
      : [];
  const names = all.filter((name) => !notCovered.includes(name));
  // A canary's cohorts served by both: each read again over its own overlap, on the hours both
  // served within it.
  const windows = new Map<string, { fromMs: number; toMs: number; hours: number[] }>();
  if (canary) {
    const bHours = await readHours(store, baseline, cohorts);
    const cHours = await readHours(store, candidate, cohorts);
    for (const name of names) {
      const bs = b.get(name);
      const cs = c.get(name);
      const overlap = bs && cs ? overlapOf(bs, cs) : null;
      if (!overlap) continue;
      const hours = sharedHours(
        bHours.get(name) ?? new Map(),
        cHours.get(name) ?? new Map(),
        overlap,
      );
      windows.set(name, { ...overlap, hours });
    }
  }
  const served = new Map([...windows].filter(([, w]) => w.hours.length > 0));
  const bWithin = served.size > 0 ? await readSide(store, baseline, cohorts, served) : null;
  const cWithin = served.size > 0 ? await readSide(store, candidate, cohorts, served) : null;
  const bHourly = served.size > 0 ? await readOutcomeHours(store, baseline, cohorts, served) : null;
  const cHourly =
    served.size > 0 ? await readOutcomeHours(store, candidate, cohorts, served) : null;
  const comparisons = [
    ...missing.map((cohort) => emptyCohort(cohort, baseline, candidate, options)),
    ...names.map((cohort): GateCohort => {
      const bs = b.get(cohort);
      const cs = c.get(cohort);
      if (canary && bs && cs) {
        return compareConcurrent(
          cohort,
          { baseline: bs, candidate: cs },
          {
            baseline: bWithin?.get(cohort)?.stats ?? EMPTY_SIDE,
            candidate: cWithin?.get(cohort)?.stats ?? EMPTY_SIDE,
          },
          options,
          windows.get(cohort)?.hours.length,
          matched(bHourly?.get(cohort) ?? new Map(), cHourly?.get(cohort) ?? new Map(), 'hour'),
        );
      }
      return {
        ...compareCohort(cohort, bs?.stats ?? EMPTY_SIDE, cs?.stats ?? EMPTY_SIDE, options),
        concurrent: null,
      };
    }),
  ].sort((x, y) => (x.cohort < y.cohort ? -1 : x.cohort > y.cohort ? 1 : 0));
  const settled = settleFamily(comparisons, options);
  return {
    baseline: refLabel(baseline),
    candidate: refLabel(candidate),
    canary,
    notCovered,
    empty,
    options,
    verdict: overallVerdict(settled),
    cohorts: settled,
  };
}
