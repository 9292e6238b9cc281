import { formatDuration, utcMinute } from '../server/time.js';
import { latencyText } from './latency-text.js';
import { isolate } from './name-list.js';
import type { EvaluationSettings, Rule, RuleKind } from './rules.js';
import { addCounts, emptyCounts, knownOutcomeSums } from './series.js';
import type { TaskCounts } from './series.js';
import {
  RATE_BOUNDS,
  bernoulliCusum,
  bernoulliKl,
  costPerSuccess,
  cusumThreshold,
  gaussianCusum,
  referencedBernoulliCusum,
  twoProportionZ,
  wilson,
} from './stats.js';
import type { CusumResult, CusumWindow, Interval, RatioSums } from './stats.js';

/**
 * The degradation tests, one per rule kind: pure functions from counts to a finding. Each is a
 * one-sided CUSUM over the current window's time buckets (stats.ts) against a baseline: the
 * largest log-likelihood ratio of "changed by `detect`" over "unchanged" for any window ending
 * now, compared with a threshold set from the false-alert budget (α per rule per horizon, split
 * over the rule's monitors), so evaluating every minute over a growing window stays valid.
 * Below the minimum sample the finding is `insufficient_data`; an alarm also needs the observed
 * change to reach `minEffect`.
 *
 * Two things keep that budget honest. The baseline is an estimate, not the truth: each window's
 * evidence is discounted for the trials the baseline holds (stats.ts referenceDiscount), or a
 * baseline that sits low by chance raises false alarms on a rare event. And evidence that has
 * fired and resolved is spent (`evidenceFromMs`): a new incident needs windows after it, as a
 * CUSUM restarts after an alarm.
 */

export type FindingStatus = 'ok' | 'degraded' | 'insufficient_data';

export interface Side {
  /** What the number is: `success rate`, `cost per successful task`, … */
  label: string;
  /** Trials the figure is over (tasks, fallbacks, model calls). */
  n: number;
  value: number | null;
  interval: Interval | null;
  /** failure_concentration: the rest of the traffic's failure rate the window was compared with. */
  restRate?: number | null;
  /** failure_concentration: the rest's baseline rate the window was held to. */
  restBase?: number | null;
}

export interface Finding {
  ruleId: string;
  kind: RuleKind;
  cohort: string;
  route: string;
  /** The fallback reason a reason-shift monitor watches; empty otherwise. */
  detail: string;
  status: FindingStatus;
  /** Why: the evidence in one sentence. */
  summary: string;
  /** `target`: a fixed target (`baseline: target:…`), not measured: `n` is 0, `interval` null. */
  baseline: Side & { description: string; target?: boolean };
  current: Side & { since: string | null };
  /**
   * The evidence of the window shown in `current` (its CUSUM log-likelihood ratio; negative for a
   * recovery, whose window favours the baseline) and the threshold it is held to; null when not
   * computed.
   */
  statistic: number | null;
  threshold: number | null;
  /** The observed change in the alarm window (same unit as the rule's minEffect). */
  effect: number | null;
  /**
   * A firing alert still degraded whose latest data lean towards the baseline: the window ending
   * now that favours it most (CusumResult.recovery) and that evidence, short of a recovery. The
   * alarm window can hold the incident's tasks for a day after the route is well again; this says
   * what the route looks like now. Absent otherwise.
   */
  latest?: Side & {
    since: string;
    evidence: number;
    /**
     * Its evidence reaches the threshold, yet it is no recovery: what it lacks. `duration`: it
     * has not lasted as long as the degraded stretch before it (or an eighth of the window) —
     * it will have at `until`, if it holds; `relapse`: a recent window alarms on its own;
     * `effect`: the change from the baseline is still over `minEffect`.
     */
    missing?: { reason: 'duration' | 'relapse' | 'effect' };
  };
  /**
   * How a firing alert's finding came to be `ok`: `recovered`, the latest data show a recovery
   * that lasted (`current` is that window); `faded`, the alarm window's evidence fell below half
   * the threshold, and `current` is the latest window when one lasted long enough to show
   * (`faded_latest`), else the alarm window (`faded`). Absent for any other finding, and in
   * findings stored before it existed.
   */
  ending?: 'recovered' | 'faded_latest' | 'faded';
}

export interface MonitorInput {
  rule: Rule;
  cohort: string;
  route: string;
  detail: string;
  /** The current window in buckets, oldest first. */
  current: TaskCounts[];
  /** The same summed, when the caller has it already (it is computed otherwise). */
  currentTotal?: TaskCounts;
  /** Start of the current window, and the bucket length. */
  fromMs: number;
  bucketMs: number;
  /** The baseline, aggregated; null when it has no data at all. */
  baseline: TaskCounts | null;
  /** How the baseline was chosen, for people. */
  baselineDescription: string;
  /** Length of the baseline (to scale its volume to a horizon); null for a concurrent baseline. */
  baselineSpanMs: number | null;
  /**
   * A fixed target instead of a measured baseline (`baseline: target:<value>`), in the unit of the
   * rule's figure: a success rate, a rate, or dollars per successful task. `baseline` is then
   * unused, and the null value carries no estimation error.
   */
  target?: number | null;
  /** The baseline's exact p95 latency (p95_regression). */
  baselineP95Ms?: number | null;
  /**
   * failure_concentration: the rest of the traffic, now and in the baseline; `buckets`, now in the
   * buckets of `current`, so that each window is compared with the rest over the same time.
   */
  rest?: {
    current: TaskCounts;
    baseline: TaskCounts | null;
    buckets?: readonly TaskCounts[];
    /**
     * The rest's failures expected at baseline rates, bucket by bucket with `buckets` (restMixOf):
     * each other cohort × route's tasks with a known outcome in the bucket at its own baseline
     * rate. Over a window, over its known tasks, the rest's baseline rate at its current mix.
     * Without it, the rest's pooled baseline rate, which moves when traffic moves between cohorts
     * or routes.
     */
    expected?: readonly number[];
    /** The relative variance of `expected` summed over the window, from the rates' estimates. */
    expectedRelativeVariance?: number;
  };
  /** cheaper_than_large: the large route of the cohort over the current window, or `largeOver`. */
  large?: TaskCounts;
  /** cheaper_than_large: the period `large` covers when it is not the current window. */
  largeOver?: string;
  /** Monitors of this rule evaluated this round: the α budget is split among them. */
  monitors: number;
  /**
   * Evidence before this instant is spent: the monitor's last incident resolved then
   * (lifecycle.ts evidenceFrom), and only windows starting at or after it may raise a new one.
   */
  evidenceFromMs?: number | null;
  /**
   * The state of the monitor's open alert, if it has one. A firing alert is judged recovered
   * once the latest data favour the baseline as strongly as an alarm needs the change
   * (CusumResult.recovery), though a window reaching back into the incident would still alarm: at
   * high volume that window keeps its effect for a day after the route is well again. It also
   * stays degraded until its evidence falls below half the threshold (hysteresis): evidence
   * hovering at the threshold would otherwise resolve and fire the same incident again. A pending
   * alert is judged as an inactive one: a recovery that cleared it would leave the same evidence
   * to raise it again at the next evaluation.
   */
  alertState?: 'pending' | 'firing' | null;
}

const sum = (buckets: readonly TaskCounts[]) =>
  buckets.reduce((a, b) => addCounts(a, b), emptyCounts());
const pct = (v: number | null) => (v === null ? '—' : `${(v * 100).toFixed(1)}%`);
const usd = (v: number | null) => (v === null ? '—' : `$${v.toPrecision(3)}`);

/** A Bernoulli view of counts: trials and events, for the kinds that count events. */
interface BernoulliKind {
  label: string;
  trials(c: TaskCounts, detail: string): number;
  events(c: TaskCounts, detail: string): number;
  /** The figure shown: the event rate, or its complement (success rate). */
  shown(rate: number): number;
  /** The rate under the alternative the test is tuned to. */
  alternative(p0: number, detect: number): number;
}

const rise = (
  label: string,
  trials: (c: TaskCounts) => number,
  events: (c: TaskCounts) => number,
): BernoulliKind => ({
  label,
  trials,
  events,
  shown: (rate) => rate,
  alternative: (p0, detect) => p0 + detect,
});

const BERNOULLI: Partial<Record<RuleKind, BernoulliKind>> = {
  success_rate_drop: {
    label: 'success rate',
    trials: (c) => c.known,
    events: (c) => c.failures,
    shown: (rate) => 1 - rate,
    alternative: (p0, detect) => p0 + detect,
  },
  fallback_rate_spike: {
    ...rise(
      'fallback rate',
      (c) => c.tasks,
      (c) => c.fallbacks,
    ),
    // Tuned to a doubling, or a rise of `detect`, whichever is larger, but never more than halfway
    // to 100 %: past a third, that halves the tasks that stay on the route. A doubling of a high
    // rate is above 100 %, and an alternative clamped near 1 makes every task without a fallback
    // heavy evidence against it, so a rise from 50 % to 85 % gave no alarm. Up to a third this is
    // the doubling it always was; the threshold follows the alternative (its null drift).
    alternative: (p0, detect) => p0 + Math.min(Math.max(detect, p0), (1 - p0) / 2),
  },
  fallback_reason_shift: {
    label: 'share of fallbacks',
    trials: (c) => c.fallbacks,
    events: (c, reason) => c.reasons[reason] ?? 0,
    shown: (rate) => rate,
    alternative: (p0, detect) => p0 + detect,
  },
  invisible_fallbacks: rise(
    'tasks with a fallback without reason',
    (c) => c.tasks,
    (c) => c.invisible,
  ),
  cascades: rise(
    'cascade rate',
    (c) => c.tasks,
    (c) => c.cascades,
  ),
  reask_rise: rise(
    'reask rate',
    (c) => c.tasks,
    (c) => c.reasks,
  ),
  escalation_rise: rise(
    'escalation rate',
    (c) => c.tasks,
    (c) => c.escalations,
  ),
  p95_regression: rise(
    'tasks slower than the baseline p95',
    (c) => c.tasks,
    (c) => c.slow,
  ),
  unpriced_rise: rise(
    'model calls without a price',
    (c) => c.calls,
    (c) => c.unpricedCalls,
  ),
  loop_rate_rise: rise(
    'loop rate',
    (c) => c.tasks,
    (c) => c.loops,
  ),
  // Per model call whose HTTP requests were counted: was it retried by the SDK.
  retry_rise: rise(
    'retry rate',
    (c) => c.httpCountedCalls,
    (c) => c.retriedCalls,
  ),
  failure_concentration: {
    label: 'failure rate',
    trials: (c) => c.known,
    events: (c) => c.failures,
    shown: (rate) => rate,
    alternative: (p0, detect) => p0 * (1 + detect),
  },
};

/** A rate estimate that is never 0 or 1 (a CUSUM cannot start from certainty). */
const smoothed = (events: number, trials: number) => (events + 0.5) / (trials + 1);

/**
 * A cohort × route's part in the rest of the traffic's expectation (restMixOf): the failures of
 * its tasks with a known outcome, bucket by bucket, at `weight` of its baseline `rate` and the
 * rest of the weight at what they are (no change imputed to it); `variance`: the estimate's, of
 * one task.
 */
export interface MixRate {
  rate: number;
  weight: number;
  variance: number;
}

/**
 * One cohort × route's MixRate: its baseline rate, weighed against its own current failures by
 * its baseline tasks against `prior` more. Without a baseline it counts as it is. A route with 20
 * baseline tasks that now carries most of the traffic would otherwise set the rest's expectation
 * by the chance of those 20 (two steady cohorts at 5 % fired); a route without a baseline at its
 * whole window's rate would carry the lean of outcomes still coming in into the settled buckets.
 */
export function mixRate(baseline: TaskCounts | null, prior: number): MixRate {
  const n = baseline?.known ?? 0;
  if (!baseline || n === 0) return { rate: 0, weight: 0, variance: 0 };
  const rate = smoothed(baseline.failures, n);
  const weight = n / (n + prior);
  return { rate, weight, variance: (weight * weight * rate * (1 - rate)) / n };
}

/** A bucket's failures expected at a MixRate. */
const expectedOf = (b: TaskCounts, mix: MixRate) =>
  mix.weight * mix.rate * b.known + (1 - mix.weight) * b.failures;

/** All the traffic's failures expected at baseline rates: per bucket, in all, and the variance. */
export interface MixTotals {
  expected: number[];
  total: number;
  variance: number;
}

/** MixTotals over the cohort × routes now (`groups`, their buckets) at their MixRates. */
export function mixTotals(
  groups: Iterable<{ buckets: readonly TaskCounts[]; rate: MixRate }>,
  length: number,
): MixTotals {
  const totals: MixTotals = { expected: new Array<number>(length).fill(0), total: 0, variance: 0 };
  for (const { buckets, rate } of groups) {
    let known = 0;
    buckets.forEach((b, i) => {
      const e = expectedOf(b, rate);
      totals.expected[i] = totals.expected[i]! + e;
      totals.total += e;
      known += b.known;
    });
    totals.variance += known * known * rate.variance;
  }
  return totals;
}

/**
 * The rest of the traffic's failures expected at baseline rates, bucket by bucket, and their
 * relative variance: all the traffic's (mixTotals) less the cohort × route's own. A shift of
 * traffic towards a cohort that always fails more raises the rest's pooled rate; against the
 * pooled baseline rate every steady cohort × route left behind looked concentrated (a routing
 * change fired three of them, for days). Null when the rest expects no failure.
 */
export function restMixOf(
  all: MixTotals,
  own: { buckets: readonly TaskCounts[]; rate: MixRate } | null,
): Pick<NonNullable<MonitorInput['rest']>, 'expected' | 'expectedRelativeVariance'> | null {
  let known = 0;
  let total = all.total;
  const expected = all.expected.map((e, i) => {
    const b = own?.buckets[i];
    if (!b || !own) return e;
    known += b.known;
    const mine = expectedOf(b, own.rate);
    total -= mine;
    return Math.max(0, e - mine);
  });
  const variance = Math.max(0, all.variance - known * known * (own?.rate.variance ?? 0));
  // A difference of float sums: "none expected" below a millionth of a failure.
  if (!(total > 1e-6)) return null;
  return { expected, expectedRelativeVariance: variance / (total * total) };
}

const clampRate = (p: number) => Math.min(RATE_BOUNDS.max, Math.max(RATE_BOUNDS.min, p));

/** Relative variance of a rate estimated from counts, Var(p̂)/p²: (1 − p)/(n·p). */
const relativeVariance = (events: number, trials: number) => {
  const p = smoothed(events, trials);
  return (1 - p) / (trials * p);
};

/** The first bucket a window may start at: the ones before `evidenceFromMs` are spent. */
function firstBucket(input: MonitorInput): number {
  if (input.evidenceFromMs === undefined || input.evidenceFromMs === null) return 0;
  const index = Math.ceil((input.evidenceFromMs - input.fromMs) / input.bucketMs);
  return Math.min(input.current.length, Math.max(0, index));
}

/** A CUSUM over the buckets from `first` on, its window start counted from the first bucket. */
function fromBucket<B>(
  buckets: readonly B[],
  first: number,
  cusum: (buckets: readonly B[]) => CusumResult | null,
): CusumResult | null {
  const result = cusum(first > 0 ? buckets.slice(first) : buckets);
  if (!result || first === 0) return result;
  const { recovery } = result;
  return {
    ...result,
    start: result.start + first,
    recovery: recovery && { ...recovery, start: recovery.start + first },
  };
}

function side(label: string, n: number, events: number, shown: (rate: number) => number): Side {
  if (n <= 0) return { label, n, value: null, interval: null };
  const rate = events / n;
  const interval = wilson(events, n);
  const a = interval ? shown(interval.lower) : null;
  const b = interval ? shown(interval.upper) : null;
  return {
    label,
    n,
    value: shown(rate),
    interval: a === null || b === null ? null : { lower: Math.min(a, b), upper: Math.max(a, b) },
  };
}

/**
 * The alternatives every monitor tests at once, as multiples of `detect`, and the share of the
 * false-alert budget each is held to (Σ = 1, so by the union bound the monitor keeps α). A rate
 * chart tuned to one change gains at most ln(p₁/p₀) per event however large the change: a drop
 * of 25 points on a large-first cohort of a few hundred tasks gathered evidence barely faster
 * than a 5-point one, and went unalerted. A cost chart's gain grows with the rise, but one tuned
 * to +25 % gains less than half as fast on a doubling as one tuned to it. The tuned chart keeps
 * most of the budget (its threshold rises by ln 1.25 ≈ 0.2); the charts tuned to 2× and 4× the
 * change catch the large ones in a fraction of the tasks.
 */
const CHARTS = [
  { multiple: 1, share: 0.8 },
  { multiple: 2, share: 0.1 },
  { multiple: 4, share: 0.1 },
] as const;

interface Chart {
  result: CusumResult | null;
  h: number;
}

/**
 * Runs one chart per alternative (CHARTS; `run` gives undefined for one that adds nothing) and
 * keeps the one whose evidence stands highest over its own threshold: it speaks for the monitor.
 */
function strongestChart(run: (chart: (typeof CHARTS)[number]) => Chart | undefined): Chart {
  let chosen: Chart | undefined;
  for (const chart of CHARTS) {
    const next = run(chart);
    if (!next) continue;
    const standing = next.result ? next.result.statistic / next.h : -Infinity;
    const best = chosen?.result ? chosen.result.statistic / chosen.h : -Infinity;
    if (!chosen || standing > best) chosen = next;
  }
  return chosen!;
}

/** failure_concentration's null for a window: p₀, the trials its error is worth, the rest's rate. */
interface RestNull {
  p0: number;
  referenceTrials: number;
  restRate: number;
  /** The rest's baseline rate it was held to: at the window's mix, or pooled. */
  restBase: number;
}

/** The threshold for a monitor: ARL₀ = expected trials per horizon × monitors ÷ α. */
function threshold(
  expectedTrials: number,
  monitors: number,
  alpha: number,
  nullDrift: number,
): number {
  const arl0 = (Math.max(1, expectedTrials) * Math.max(1, monitors)) / alpha;
  return cusumThreshold(arl0, nullDrift);
}

function insufficient(
  input: MonitorInput,
  label: string,
  why: string,
  currentN: number,
  baseN: number,
): Finding {
  return {
    ruleId: input.rule.id,
    kind: input.rule.kind,
    cohort: input.cohort,
    route: input.route,
    detail: input.detail,
    status: 'insufficient_data',
    summary: why,
    baseline:
      input.target !== undefined && input.target !== null
        ? {
            label,
            n: 0,
            value: input.target,
            interval: null,
            description: input.baselineDescription,
            target: true,
          }
        : { label, n: baseN, value: null, interval: null, description: input.baselineDescription },
    current: { label, n: currentN, value: null, interval: null, since: null },
    statistic: null,
    threshold: null,
    effect: null,
  };
}

/** Trials the baseline would hold over one horizon, for the threshold's false-alert budget. */
function expectedPerHorizon(
  input: MonitorInput,
  settings: EvaluationSettings,
  currentN: number,
  baseN: number,
): number {
  const scaled =
    input.baselineSpanMs && input.baselineSpanMs > 0
      ? (baseN * settings.horizonMs) / input.baselineSpanMs
      : 0;
  return Math.max(currentN, scaled);
}

function bernoulliFinding(
  input: MonitorInput,
  settings: EvaluationSettings,
  kind: BernoulliKind,
): Finding {
  const { rule, detail } = input;
  const target = input.target ?? null;
  const now = input.currentTotal ?? sum(input.current);
  const base = input.baseline ?? emptyCounts();
  const currentN = kind.trials(now, detail);
  const baseN = kind.trials(base, detail);
  if (currentN < settings.minTasks) {
    // A reason shift counts fallbacks, not tasks: 77 of them may come from 400 tasks. Too few
    // fallbacks among enough tasks is no missing verdict: the fallbacks have subsided, and a
    // shift in their reasons does not matter (an alert on it resolves, rather than being held
    // "with no verdict" by the route's own recovery).
    if (rule.kind === 'fallback_reason_shift' && now.tasks >= settings.minTasks) {
      return {
        ...insufficient(input, kind.label, '', currentN, baseN),
        status: 'ok',
        summary: `only ${currentN} fallbacks in ${now.tasks} tasks in the current window, fewer than the minimum ${settings.minTasks}: too few for a shift in their reasons to matter`,
      };
    }
    const what = rule.kind === 'fallback_reason_shift' ? `${currentN} fallbacks` : `${currentN}`;
    return insufficient(
      input,
      kind.label,
      `${what} in the current window, fewer than the minimum ${settings.minTasks}`,
      currentN,
      baseN,
    );
  }
  // Concentration compares with the rest of the traffic, now, as it compared in the baseline.
  let p0: number;
  // The trials p0 was estimated from (p95: the baseline's quantile, exceeded by 5 % ± its error).
  let referenceTrials = baseN;
  // failure_concentration: the null of each window the test tries (restNull); `p0` is the whole
  // current window's, for the threshold.
  let restNull: ((refX: number, refN: number, refE: number) => RestNull) | undefined;
  if (rule.kind === 'failure_concentration') {
    // The cohort's own baseline first: without it there is no rest of the traffic in the baseline
    // either (the evaluator leaves it out), and blaming the rest would send people looking there.
    if (!input.baseline) {
      return insufficient(
        input,
        kind.label,
        'no baseline for this cohort × route yet',
        currentN,
        baseN,
      );
    }
    if (baseN < settings.minBaselineTasks) {
      return insufficient(
        input,
        kind.label,
        `${baseN} in the baseline, fewer than the minimum ${settings.minBaselineTasks}`,
        currentN,
        baseN,
      );
    }
    const rest = input.rest;
    if (
      !rest?.baseline ||
      rest.current.known < settings.minTasks ||
      rest.baseline.known < settings.minBaselineTasks
    ) {
      return insufficient(
        input,
        kind.label,
        'too few tasks in the rest of the traffic to compare with',
        currentN,
        baseN,
      );
    }
    // How the cohort × route compared with the rest in the baseline. The rest's baseline rate is
    // taken over the tasks compared, at their mix (restMixOf: the failures they were expected to
    // have at baseline rates), when the evaluator gave it; else the rest's pooled baseline rate.
    const ownBase = smoothed(base.failures, base.known);
    const pooledBase = smoothed(rest.baseline.failures, rest.baseline.known);
    const mixed = rest.expected && rest.buckets?.length === rest.expected.length;
    // p0 is a product of three estimates: its relative variance is (about) the sum of theirs, and
    // the trials of a plain baseline with that much error are (1 − p0)/(p0·variance).
    const ratioVariance =
      relativeVariance(base.failures, base.known) +
      (mixed && rest.expectedRelativeVariance !== undefined
        ? rest.expectedRelativeVariance
        : relativeVariance(rest.baseline.failures, rest.baseline.known));
    const nullOver = (refX: number, refN: number, refE: number): RestNull => {
      const restBase = mixed && refE > 0 && refN > 0 ? refE / refN : pooledBase;
      const q0 = clampRate((smoothed(refX, refN) * ownBase) / restBase);
      const variance = ratioVariance + relativeVariance(refX, refN);
      return {
        p0: q0,
        referenceTrials: (1 - q0) / (q0 * variance),
        restRate: refX / refN,
        restBase,
      };
    };
    const whole = rest.current;
    const wholeExpected = mixed ? rest.expected!.reduce((a, e) => a + e, 0) : 0;
    const wholeNull = nullOver(whole.failures, whole.known, wholeExpected);
    p0 = wholeNull.p0;
    referenceTrials = wholeNull.referenceTrials;
    // A window is held to the rest's rate over that same window when the rest's failures rose
    // there, clearly, over the rest of the current window (z > 2): a change of all traffic within
    // the window, which the whole window's rate would dilute (a two-hour outage of everything
    // fired on every cohort). Else to the whole window's rate, the steadier estimate: a rest of
    // a few tasks a bucket, taken window by window, left too little evidence to find a cohort's
    // own failures.
    restNull = (refX, refN, refE) => {
      const outsideN = whole.known - refN;
      const rose =
        refN > 0 && outsideN > 0
          ? (twoProportionZ(refX, refN, whole.failures - refX, outsideN) ?? 0) > 2
          : false;
      return rose ? nullOver(refX, refN, refE) : wholeNull;
    };
  } else if (target !== null) {
    // A target is exact: no estimate, no discount. `shown` maps a rate to the figure and back.
    p0 = clampRate(kind.shown(target));
    referenceTrials = Infinity;
  } else {
    if (baseN < settings.minBaselineTasks) {
      return insufficient(
        input,
        kind.label,
        `${baseN} in the baseline (${input.baselineDescription}), fewer than the minimum ${settings.minBaselineTasks}`,
        currentN,
        baseN,
      );
    }
    p0 =
      rule.kind === 'p95_regression' ? 0.05 : clampRate(smoothed(kind.events(base, detail), baseN));
  }
  const buckets = input.current.map((c) => ({
    n: kind.trials(c, detail),
    x: kind.events(c, detail),
  }));
  // The rest of the traffic in the same buckets, when the evaluator gave it (failure_concentration).
  const restBuckets =
    restNull && input.rest?.buckets?.length === buckets.length ? input.rest.buckets : undefined;
  // And the failures it was expected to have at baseline rates (0 without: the pooled rate).
  const restExpected = restBuckets ? (input.rest?.expected ?? []) : [];
  const referenced = restBuckets
    ? buckets.map((b, i) => ({
        ...b,
        refN: restBuckets[i]!.known,
        refX: restBuckets[i]!.failures,
        refE: restExpected[i] ?? 0,
      }))
    : undefined;
  const expected = expectedPerHorizon(input, settings, currentN, baseN);
  // One chart per alternative (CHARTS), each held to its share of the false-alert budget; the one
  // whose evidence stands highest over its threshold speaks for the monitor.
  let lastP1 = p0;
  const { result, h } = strongestChart((chart) => {
    const p1 = clampRate(kind.alternative(p0, rule.detect * chart.multiple));
    // A larger multiple that the kind or the clamp makes no larger adds no chart.
    if (chart.multiple > 1 && p1 <= lastP1 + 1e-12) return undefined;
    lastP1 = p1;
    const multiple = rule.detect * chart.multiple;
    return {
      result:
        referenced && restNull
          ? fromBucket(referenced, firstBucket(input), (list) =>
              referencedBernoulliCusum(
                list,
                (refX, refN, refE) => {
                  const { p0: q0, referenceTrials: trials } = restNull!(refX, refN, refE);
                  return {
                    p0: q0,
                    p1: clampRate(kind.alternative(q0, multiple)),
                    referenceTrials: trials,
                  };
                },
                settings.minTasks,
              ),
            )
          : fromBucket(buckets, firstBucket(input), (list) =>
              bernoulliCusum(list, p0, p1, settings.minTasks, referenceTrials),
            ),
      h: threshold(expected, input.monitors, settings.alpha * chart.share, bernoulliKl(p0, p1)),
    };
  });
  const baselineSide = {
    ...(target !== null
      ? { label: kind.label, n: 0, value: target, interval: null, target: true }
      : rule.kind === 'p95_regression'
        ? { label: kind.label, n: baseN, value: 0.05, interval: null }
        : rule.kind === 'failure_concentration'
          ? side(kind.label, baseN, base.failures, kind.shown)
          : side(kind.label, baseN, kind.events(base, detail), kind.shown)),
    description: input.baselineDescription,
  };
  return conclude(input, settings, result, h, baselineSide, (window, from) => {
    const windowSide: Side = side(kind.label, window.n, window.x, kind.shown);
    const observed = window.n > 0 ? window.x / window.n : 0;
    if (rule.kind === 'failure_concentration') {
      // Against the null the window was held to, and the rest's rate it came from.
      const rest = restBuckets ? sum(restBuckets.slice(from)) : input.rest?.current;
      const restE = restExpected.slice(from).reduce((a, e) => a + e, 0);
      const held = rest && restNull ? restNull(rest.failures, rest.known, restE) : undefined;
      const restRate = held && Number.isFinite(held.restRate) ? held.restRate : null;
      return {
        side: { ...windowSide, restRate, restBase: held?.restBase ?? null },
        effect: observed / (held?.p0 ?? p0) - 1,
      };
    }
    const effect =
      rule.kind === 'p95_regression' || target !== null
        ? observed - p0
        : observed - smoothed(kind.events(base, detail), baseN);
    return { side: windowSide, effect };
  });
}

/**
 * Per-task cost − R·success, summed per bucket over the tasks with a known outcome: its mean is 0
 * when the cost per success is R.
 */
function costBuckets(buckets: readonly TaskCounts[], perSuccess: number) {
  return buckets.map((c) => ({ n: c.known, sum: c.knownCost - perSuccess * c.successes }));
}

/** Var(c − R·s) per task, from sums over tasks (those with a known outcome). */
function costVariance(c: RatioSums, perSuccess: number): number {
  if (c.tasks < 2) return 0;
  const n = c.tasks;
  const meanCost = c.cost / n;
  const meanSuccess = c.successes / n;
  const varCost = Math.max(0, c.costSquared / n - meanCost * meanCost);
  const cov = c.successCost / n - meanCost * meanSuccess;
  const varSuccess = meanSuccess * (1 - meanSuccess);
  return Math.max(0, varCost - 2 * perSuccess * cov + perSuccess * perSuccess * varSuccess);
}

function costFinding(input: MonitorInput, settings: EvaluationSettings): Finding {
  const { rule } = input;
  const label = 'cost per successful task';
  // Only tasks with a known outcome are judged, on both sides (knownOutcomeSums): a task whose
  // outcome comes later would otherwise count as a failure until it does, and the newest buckets,
  // always in the window, would read as a rise whenever outcomes arrive late.
  const now = knownOutcomeSums(input.currentTotal ?? sum(input.current));
  const target = input.target ?? null;
  const counts = rule.kind === 'cheaper_than_large' ? (input.large ?? null) : input.baseline;
  // A target stands in for R0; the window's own sums give the variance and the success share.
  const reference = target !== null ? now : counts && knownOutcomeSums(counts);
  if (now.tasks < settings.minTasks) {
    return insufficient(
      input,
      label,
      `${now.tasks} tasks with a known outcome in the current window, fewer than the minimum ${settings.minTasks}`,
      now.tasks,
      target !== null ? 0 : (reference?.tasks ?? 0),
    );
  }
  if (!reference || (target === null && reference.tasks < settings.minBaselineTasks)) {
    const what =
      rule.kind === 'cheaper_than_large'
        ? `the ${settings.largeRoute} route of ${input.cohort}${input.largeOver ? ` over ${input.largeOver}` : ''}`
        : `the baseline (${input.baselineDescription})`;
    return insufficient(
      input,
      label,
      `${reference?.tasks ?? 0} tasks with a known outcome in ${what}, fewer than the minimum ${settings.minBaselineTasks}`,
      now.tasks,
      reference?.tasks ?? 0,
    );
  }
  const referenceCost =
    target !== null ? { value: target, interval: null } : costPerSuccess(reference);
  if (!referenceCost || referenceCost.value <= 0) {
    return insufficient(
      input,
      label,
      'the reference has no successful task with a cost',
      now.tasks,
      reference.tasks,
    );
  }
  const r0 = referenceCost.value;
  // cost_per_success_rise: from R0 to R0·(1 + detect). cheaper_than_large: from R_large·(1 − detect)
  // (cheaper by the margin) to R_large (no longer cheaper).
  const nullPerSuccess = rule.kind === 'cheaper_than_large' ? r0 * (1 - rule.detect) : r0;
  const measuredShare =
    (rule.kind === 'cheaper_than_large' ? now : reference).successes /
    Math.max(1, (rule.kind === 'cheaper_than_large' ? now : reference).tasks);
  // A target has no reference to take the share from: the window's, or, when nothing in it
  // succeeded (money spent for no success, the worst rise there is), a share of 1 to tune to.
  const successShare = target !== null && measuredShare === 0 ? 1 : measuredShare;
  const shift = successShare * r0 * rule.detect;
  const measuredVariance = costVariance(
    rule.kind === 'cheaper_than_large' ? now : reference,
    nullPerSuccess,
  );
  // Against a target the variance is the window's own, and a window of identical costs has none:
  // the verdict would then hang on rounding. Costs are taken to vary by at least 5 % of the target.
  const variance =
    target !== null ? Math.max(measuredVariance, (0.05 * r0) ** 2) : measuredVariance;
  if (!(shift > 0) || !(variance > 0)) {
    return insufficient(
      input,
      label,
      'no variation in cost to test against',
      now.tasks,
      reference.tasks,
    );
  }
  // R0 is an estimate from the reference: Var(R̂0) by the delta method (as costPerSuccess). It
  // moves each task's mean by ∂(c − R·s)/∂R0 = successShare·(null R / R0), so the window sum's
  // error is that of a baseline of variance / (∂² · Var(R̂0)) trials.
  const referenceShare = reference.successes / reference.tasks;
  const referenceError =
    costVariance(reference, r0) / (reference.tasks * referenceShare * referenceShare);
  const perUnit = successShare * (nullPerSuccess / r0);
  const referenceTrials =
    target === null && referenceError > 0
      ? variance / (perUnit * perUnit * referenceError)
      : Infinity;
  // As a rate monitor (CHARTS): a chart tuned to `detect` gains (shift/σ²)·(Δ − shift/2) a task
  // for a true rise Δ, half of what one tuned to a doubling of the cost per success gains on it.
  const costs = costBuckets(input.current, nullPerSuccess);
  const expected = expectedPerHorizon(input, settings, now.tasks, reference.tasks);
  const { result, h } = strongestChart((chart) => {
    const chartShift = shift * chart.multiple;
    return {
      result: fromBucket(costs, firstBucket(input), (list) =>
        gaussianCusum(list, chartShift, variance, settings.minTasks, referenceTrials),
      ),
      h: threshold(
        expected,
        input.monitors,
        settings.alpha * chart.share,
        (chartShift * chartShift) / (2 * variance),
      ),
    };
  });
  const baselineSide = {
    label:
      rule.kind === 'cheaper_than_large'
        ? `cost per successful task on ${settings.largeRoute}`
        : label,
    n: target !== null ? 0 : reference.tasks,
    ...(target !== null ? { target: true } : {}),
    value: r0,
    interval: referenceCost.interval,
    description: input.baselineDescription,
  };
  return conclude(input, settings, result, h, baselineSide, (window, from) => {
    const windowCounts = knownOutcomeSums(sum(input.current.slice(from)));
    const cps = costPerSuccess(windowCounts);
    const value = cps?.value ?? null;
    // Tasks with outcomes, none a success, money spent: the cost per success is unbounded, the
    // worst rise there is, not a missing figure.
    const noneSucceeded =
      windowCounts.tasks > 0 && windowCounts.successes === 0 && windowCounts.cost > 0;
    return {
      side: { label, n: windowCounts.tasks, value, interval: cps?.interval ?? null },
      // Relative change against the reference; cheaper_than_large: how far above −minEffect.
      effect: value !== null ? value / r0 - 1 : noneSucceeded ? Infinity : null,
    };
  });
}

/**
 * A firing alert resolves only once its evidence falls below this fraction of the threshold (or
 * the effect below `minEffect`, or the latest data show a recovery). Without it, a lasting
 * degradation at low volume, whose evidence hovers at the threshold, resolved within an hour of
 * firing and fired again the next day.
 */
export const RESOLVE_BELOW = 0.5;

function conclude(
  input: MonitorInput,
  settings: EvaluationSettings,
  result: CusumResult | null,
  h: number,
  baselineSide: Side & { description: string },
  windowOf: (window: CusumWindow, from: number) => { side: Side; effect: number | null },
): Finding {
  const { rule } = input;
  const base = {
    ruleId: rule.id,
    kind: rule.kind,
    cohort: input.cohort,
    route: input.route,
    detail: input.detail,
    baseline: baselineSide,
    threshold: h,
  };
  if (!result) {
    const first = firstBucket(input);
    return {
      ...base,
      status: 'insufficient_data',
      summary:
        first > 0
          ? `no window of at least ${settings.minTasks} since the last alert resolved (${utcMinute(input.fromMs + first * input.bucketMs)})`
          : `no window of at least ${settings.minTasks} in the current window`,
      current: { ...baselineSide, n: 0, value: null, interval: null, since: null },
      statistic: null,
      effect: null,
    };
  }
  const { side: windowSide, effect } = windowOf(result, result.start);
  const sinceOf = (start: number) => new Date(input.fromMs + start * input.bucketMs).toISOString();
  const since = sinceOf(result.start);
  const minEffect = rule.kind === 'cheaper_than_large' ? -rule.minEffect : rule.minEffect;
  const large = effect !== null && effect >= minEffect;
  // A firing alert holds until its evidence falls below half the threshold (RESOLVE_BELOW).
  const bar = input.alertState === 'firing' ? h * RESOLVE_BELOW : h;
  const crossed = result.statistic >= bar;
  const degraded = crossed && large;
  const held = degraded && result.statistic < h;
  const what = describe(rule, input, baselineSide, windowSide, effect);
  const neutral = describe(rule, input, baselineSide, windowSide, effect, 'neutral');
  const recovery = result.recovery;
  const minLength = Math.ceil(input.current.length / 8);
  // The window after the alarm's that leans most towards the baseline: what the route does now,
  // and whether it has lasted an eighth of the window by the clock.
  const recent = recovery
    ? {
        ...windowOf(recovery, recovery.start),
        since: sinceOf(recovery.start),
        lastedMinLength: input.current.length - recovery.start >= minLength,
      }
    : null;
  // What a recovery still lacks, when its evidence is there: set below.
  let missing: NonNullable<Finding['latest']>['missing'] | undefined;
  if (degraded && input.alertState === 'firing' && recovery && recent && recovery.statistic >= h) {
    // The incident may be over: the data since `recovery.start` favour the baseline beyond the
    // threshold, though the window since `since` still holds the incident's own tasks. A
    // recovery must also last (as long as the degraded stretch before it, and an eighth of the
    // window: a quiet gap between bursts, or a stretch without the rare expensive task, is not
    // one), show no relapse of its own, and look like one (its change under `minEffect`).
    // Both stretches count their buckets with tasks: hours without traffic (a sender or a
    // collector down) showed neither a degradation nor a recovery. The recovery also lasts an
    // eighth of the window by the clock.
    const active = (from: number, to: number) =>
      input.current.slice(from, to).filter((b) => b.tasks > 0).length;
    const longEnough =
      active(recovery.start, input.current.length) >= active(result.start, recovery.start) &&
      recent.lastedMinLength;
    const settled = recent.effect === null || recent.effect < minEffect;
    // No time is promised for `duration`: the alarm window slides with the clock, and with it
    // how long the recovery must last.
    if (!longEnough) missing = { reason: 'duration' };
    else if (recovery.relapse >= h) missing = { reason: 'relapse' };
    else if (!settled) missing = { reason: 'effect' };
    if (longEnough && recovery.relapse < h && settled) {
      return {
        ...base,
        status: 'ok',
        summary: `recovered: ${describe(rule, input, baselineSide, recent.side, recent.effect, 'recovered')} since ${utcMinute(recent.since)}, evidence ${recovery.statistic.toFixed(1)} for the ${input.target !== undefined && input.target !== null ? 'target' : 'baseline'} over the threshold ${h.toFixed(1)} (the window since ${utcMinute(since)}, holding the incident, would still alarm)`,
        current: { ...recent.side, since: recent.since },
        // The evidence of the window shown, as for any finding: its ratio, negative here.
        statistic: -recovery.statistic,
        effect: recent.effect,
        ending: 'recovered',
      };
    }
  }
  // Still firing, but the latest data lean towards the baseline: shown, so that a repeat of an
  // alert whose route looks well again does not read as a route still degraded now. Only with
  // evidence that means something (half the threshold, over an eighth of the window at least):
  // the best of a score of recent windows leans towards the baseline by chance a quarter of the
  // time during a degradation that goes on. Not for failure_concentration, whose test compares
  // with the rest of the traffic, not with the baseline line its messages show.
  const latest =
    degraded &&
    input.alertState === 'firing' &&
    rule.kind !== 'failure_concentration' &&
    recovery &&
    recent?.lastedMinLength &&
    recovery.statistic >= h * RESOLVE_BELOW
      ? {
          ...recent.side,
          since: recent.since,
          evidence: recovery.statistic,
          ...(missing ? { missing } : {}),
        }
      : undefined;
  // A firing alert resolved because its evidence faded: the window since the alarm's start still
  // holds the incident's own tasks, and read as a breach (a route back at 95 % for 6 h showed
  // "87.2% against the target 90.0%"). The latest data say what the route does now; only over an
  // eighth of the window at least, as `latest`: the best of a score of short windows leans
  // towards the baseline by chance.
  if (!crossed && bar < h && recovery && recent?.lastedMinLength) {
    return {
      ...base,
      status: 'ok',
      summary: `${describe(rule, input, baselineSide, recent.side, recent.effect, 'neutral')} since ${utcMinute(recent.since)}; no longer degraded: the window since ${utcMinute(since)} has evidence ${result.statistic.toFixed(1)}, below half the threshold ${h.toFixed(1)}`,
      current: { ...recent.side, since: recent.since },
      // The evidence of the window shown, as for any finding: its own ratio.
      statistic: -recovery.statistic,
      effect: recent.effect,
      ending: 'faded_latest',
    };
  }
  const summary = held
    ? `${what}; evidence ${result.statistic.toFixed(1)}, under the threshold ${h.toFixed(1)} but not under half of it: still firing`
    : degraded
      ? what
      : crossed
        ? `${what}; below the minimum effect ${rule.minEffect}`
        : bar < h
          ? `${neutral}; no longer degraded: evidence ${result.statistic.toFixed(1)} below half the threshold ${h.toFixed(1)}`
          : `${neutral}; no degradation: evidence ${result.statistic.toFixed(1)} below the threshold ${h.toFixed(1)}`;
  return {
    ...base,
    status: degraded ? 'degraded' : 'ok',
    summary,
    current: { ...windowSide, since },
    statistic: result.statistic,
    effect,
    ...(latest ? { latest } : {}),
    ...(!crossed && bar < h ? { ending: 'faded' as const } : {}),
  };
}

function describe(
  rule: Rule,
  input: MonitorInput,
  baseline: Side,
  now: Side,
  effect: number | null = null,
  /** How a cheaper_than_large figure reads: a loss, a gain back, or neither. */
  mode: 'degraded' | 'recovered' | 'neutral' = 'degraded',
): string {
  const where = `${isolate(input.cohort) || '(none)'} × ${isolate(input.route) || '(none)'}`;
  const money = rule.kind === 'cost_per_success_rise' || rule.kind === 'cheaper_than_large';
  const show = money ? usd : pct;
  // The window's figure: a cost per success without a success (effect +∞) is unbounded.
  const shown = (side: Side) =>
    money && side.value === null && effect === Infinity
      ? 'unbounded (no task succeeded)'
      : show(side.value);
  // A p95 regression counts tasks over the baseline's p95: say what that latency is.
  const detail = input.detail
    ? ` "${isolate(input.detail)}"`
    : rule.kind === 'p95_regression' &&
        input.baselineP95Ms !== null &&
        input.baselineP95Ms !== undefined
      ? ` (${latencyText(input.baselineP95Ms)})`
      : '';
  if (rule.kind === 'failure_concentration' && input.rest) {
    // The rest over the window shown; over the whole current window when it is not known.
    const restNow =
      now.restRate !== undefined
        ? now.restRate
        : input.rest.current.known > 0
          ? input.rest.current.failures / input.rest.current.known
          : null;
    const rest = input.rest.baseline;
    // The rest's baseline rate the window was held to: at its mix when the evaluator gave it.
    const mixed = input.rest.expected !== undefined;
    const restBase = now.restBase ?? (rest && rest.known > 0 ? rest.failures / rest.known : null);
    const before =
      restBase && restBase > 0 && baseline.value !== null
        ? ` (${(baseline.value / restBase).toFixed(1)}× the rest's in the baseline${mixed ? ', at its current mix' : ''})`
        : '';
    const ratio =
      restNow && now.value !== null
        ? ` — ${(now.value / restNow).toFixed(1)}× the rest's rate now${before}`
        : '';
    return `${where}: ${pct(now.value)} of tasks fail against ${pct(restNow)} for the rest of the traffic${ratio}`;
  }
  if (rule.kind === 'cheaper_than_large') {
    const large = `the ${baseline.label.replace('cost per successful task on ', '')} route's ${show(baseline.value)}${input.largeOver ? ` over ${input.largeOver}` : ''}`;
    const costs = `${where}: costs ${shown(now)} per successful task`;
    return mode === 'recovered'
      ? `${costs}, less than ${large} again`
      : mode === 'neutral'
        ? `${costs}, against ${large}`
        : `${costs}, no longer less than ${large}`;
  }
  if (input.target !== undefined && input.target !== null) {
    return `${where}: ${now.label}${detail} ${shown(now)} (n ${now.n}) against the target ${show(baseline.value)}`;
  }
  return `${where}: ${now.label}${detail} ${show(baseline.value)} → ${shown(now)} (n ${baseline.n} → ${now.n})`;
}

/** Kinds judged over the tasks with a known outcome: their figures wait for outcomes to arrive. */
const OUTCOME_KINDS: ReadonlySet<RuleKind> = new Set([
  'success_rate_drop',
  'failure_concentration',
  'cost_per_success_rise',
  'cheaper_than_large',
]);

/**
 * A bucket whose share of tasks with a known outcome is below this fraction of the baseline's is
 * not settled yet: its outcomes are still coming in.
 */
const SETTLED_COVERAGE = 0.5;

/** A bucket with its outcomes left out: its tasks stay, none of them has an outcome yet. */
const withoutOutcomes = (b: TaskCounts): TaskCounts => ({
  ...b,
  known: 0,
  failures: 0,
  successes: 0,
  successCost: 0,
  knownCost: 0,
  knownCostSquared: 0,
});

/**
 * The current window with the outcomes of its newest unsettled buckets left out (their tasks
 * stay): the run of newest buckets whose outcome coverage is under half the reference's (the
 * baseline's; against a target, which has none, the best of the window's older half). Where
 * outcomes arrive late, and bad news sooner than good (a complaint in minutes, an acceptance job
 * overnight), the tasks known so far are mostly the failures: judged on them, a steady route read
 * as 93 % → 62 % and fired for a day. Those buckets are judged once their outcomes are in, as a
 * bucket with no outcome yet always was. What the route is compared with over the same time
 * loses the same buckets (the rest of the traffic, for failure_concentration); a reference summed
 * over the window (the large route, cheaper_than_large) cannot, so a monitor against it is left
 * as it is: both sides carry the same lean. `unsettledMs` is how much of the window was left out.
 */
export function settleOutcomes(input: MonitorInput): { input: MonitorInput; unsettledMs: number } {
  const unchanged = { input, unsettledMs: 0 };
  if (!OUTCOME_KINDS.has(input.rule.kind) || input.large !== undefined) return unchanged;
  const target = input.target !== undefined && input.target !== null;
  // A reference of the same time (the large route) or of the version before (which may be as
  // recent) carries the same lean as the route: left as they are, as the large route is.
  const reference = input.rule.baseline.kind;
  if (reference === 'large_route' || reference === 'previous_policy') return unchanged;
  const rest = input.rest;
  if (input.rule.kind === 'failure_concentration' && rest?.buckets?.length !== input.current.length)
    return unchanged;
  const base = input.baseline;
  const older = input.current.slice(0, Math.floor(input.current.length / 2));
  const coverage = target
    ? Math.max(0, ...older.filter((b) => b.tasks > 0).map((b) => b.known / b.tasks))
    : base && base.tasks > 0
      ? base.known / base.tasks
      : 0;
  if (coverage === 0) return unchanged;
  let first = input.current.length;
  while (first > 0) {
    const bucket = input.current[first - 1]!;
    if (bucket.tasks > 0 && bucket.known / bucket.tasks >= SETTLED_COVERAGE * coverage) break;
    first--;
  }
  // The empty buckets at the end alone: nothing to leave out.
  if (input.current.slice(first).every((b) => b.known === 0)) return unchanged;
  const settle = (buckets: readonly TaskCounts[]) =>
    buckets.map((b, i) => (i < first ? b : withoutOutcomes(b)));
  const { currentTotal: _total, ...others } = input;
  const settled: MonitorInput = { ...others, current: settle(input.current) };
  if (input.rule.kind === 'failure_concentration' && rest?.buckets) {
    const buckets = settle(rest.buckets);
    const dropped = sum(rest.buckets.slice(first));
    settled.rest = {
      ...rest,
      buckets,
      // The failures expected of the buckets left out go with their outcomes.
      ...(rest.expected ? { expected: rest.expected.map((e, i) => (i < first ? e : 0)) } : {}),
      current: {
        ...rest.current,
        known: rest.current.known - dropped.known,
        failures: rest.current.failures - dropped.failures,
        successes: rest.current.successes - dropped.successes,
        successCost: rest.current.successCost - dropped.successCost,
        knownCost: rest.current.knownCost - dropped.knownCost,
        knownCostSquared: rest.current.knownCostSquared - dropped.knownCostSquared,
      },
    };
  }
  return { input: settled, unsettledMs: (input.current.length - first) * input.bucketMs };
}

/** The finding of one monitor. */
export function detect(input: MonitorInput, settings: EvaluationSettings): Finding {
  const settled = settleOutcomes(input);
  const finding = detectSettled(settled.input, settings);
  if (settled.unsettledMs === 0 || finding.status !== 'insufficient_data') return finding;
  const recent = input.current.slice(-Math.round(settled.unsettledMs / input.bucketMs));
  const tasks = recent.reduce((n, b) => n + b.tasks, 0);
  const known = recent.reduce((n, b) => n + b.known, 0);
  const base = input.baseline;
  const reference =
    base && base.tasks > 0 ? `${pct(base.known / base.tasks)} in the baseline` : 'more before it';
  return {
    ...finding,
    summary:
      `${finding.summary}; the outcomes of the last ${formatDuration(settled.unsettledMs)} are still ` +
      `coming in (${pct(tasks > 0 ? known / tasks : 0)} of its tasks have one, ${reference}): ` +
      'judged once they are',
  };
}

function detectSettled(input: MonitorInput, settings: EvaluationSettings): Finding {
  if (input.rule.kind === 'cost_per_success_rise' || input.rule.kind === 'cheaper_than_large') {
    return costFinding(input, settings);
  }
  const kind = BERNOULLI[input.rule.kind];
  if (!kind) throw new Error(`no detector for rule kind ${input.rule.kind}`);
  return bernoulliFinding(input, settings, kind);
}
