/**
 * The statistics routewatch decides with: Wilson intervals, Newcombe's difference of proportions,
 * the delta method for a ratio, normal quantiles, CUSUM log-likelihood ratios (docs/rules.md says
 * which rule uses which). Pure functions, tested directly in test/unit/stats.test.ts against
 * independent computations.
 */

export interface Interval {
  lower: number;
  upper: number;
}

/** The standard normal quantile (inverse CDF), by Acklam's rational approximation (|error| < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) {
    if (p === 0) return -Infinity;
    if (p === 1) return Infinity;
    return NaN;
  }
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972,
    -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734,
    4.374664141464968, 2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  let x: number;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    x =
      (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
      ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  } else if (p <= 1 - low) {
    const q = p - 0.5;
    const r = q * q;
    x =
      ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
      (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x =
      -(((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
      ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  return x;
}

/** The standard normal CDF (relative error below 1.2e-7). */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

/** Complementary error function (Numerical Recipes' erfcc, relative error < 1.2e-7). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t *
                              (-1.13520398 +
                                t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** z for a two-sided 95 % interval. */
export const Z95 = 1.959963984540054;

/**
 * The Wilson score interval of a proportion of `successes` in `n` trials: well-behaved for small
 * n and for proportions near 0 or 1, unlike the normal approximation. Null when n is 0.
 */
export function wilson(successes: number, n: number, z = Z95): Interval | null {
  if (n <= 0) return null;
  const p = successes / n;
  const z2 = z * z;
  const denominator = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denominator;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denominator;
  return { lower: Math.max(0, centre - half), upper: Math.min(1, centre + half) };
}

/** Sums over a set of tasks, enough for the cost-per-success estimate and its variance. */
export interface RatioSums {
  tasks: number;
  /** Successful tasks. */
  successes: number;
  /** Σ cost. */
  cost: number;
  /** Σ cost². */
  costSquared: number;
  /** Σ cost over successful tasks (Σ cost·success). */
  successCost: number;
}

/**
 * Cost per successful task, C/S, with a delta-method interval: for per-task cost c and success
 * s, R = c̄/s̄ and Var(R) ≈ [Var(c) − 2R·Cov(c, s) + R²·Var(s)] / (n·s̄²). Null when there is no
 * success; the interval is null below two tasks.
 */
/** Whether model calls were made and none of them has a known price: any cost is unknown. */
export const nonePriced = (calls: number, unpriced: number): boolean =>
  calls > 0 && unpriced >= calls;

export function costPerSuccess(
  sums: RatioSums,
  z = Z95,
): { value: number; interval: Interval | null } | null {
  const { tasks: n, successes } = sums;
  if (successes <= 0 || n <= 0) return null;
  const value = sums.cost / successes;
  if (n < 2) return { value, interval: null };
  const meanCost = sums.cost / n;
  const meanSuccess = successes / n;
  const varCost = Math.max(0, sums.costSquared / n - meanCost * meanCost);
  const covariance = sums.successCost / n - meanCost * meanSuccess;
  const varSuccess = meanSuccess * (1 - meanSuccess);
  const variance =
    Math.max(0, varCost - 2 * value * covariance + value * value * varSuccess) /
    (n * meanSuccess * meanSuccess);
  const half = z * Math.sqrt(variance);
  return { value, interval: { lower: Math.max(0, value - half), upper: value + half } };
}

/** One-sided two-proportion z statistic: how much larger x1/n1 is than x2/n2, pooled variance. */
export function twoProportionZ(x1: number, n1: number, x2: number, n2: number): number | null {
  if (n1 <= 0 || n2 <= 0) return null;
  const pooled = (x1 + x2) / (n1 + n2);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  if (se === 0) return null;
  return (x1 / n1 - x2 / n2) / se;
}

/* ---------- change detection: CUSUM over time buckets ---------- */

/**
 * The rates a Bernoulli test starts from: an estimate of 0 or 1 would make every window's
 * log-likelihood ratio infinite, so p₀ is kept within these (and a target outside them refused).
 */
export const RATE_BOUNDS = { min: 0.0005, max: 0.999 } as const;

/** Counts in one time bucket: `n` trials, `x` events (a failure, a fallback, …). */
export interface BernoulliBucket {
  n: number;
  x: number;
}

/** Sums in one time bucket for a per-task measurement z: count, Σz. */
export interface GaussianBucket {
  n: number;
  sum: number;
}

/** A window of whole buckets ending at the last one, and its (discounted) log-likelihood ratio. */
export interface CusumWindow {
  /** The window's log-likelihood ratio, discounted for the reference (referenceDiscount). */
  statistic: number;
  /** Index of the window's first bucket. */
  start: number;
  /** Trials (tasks) in the window, and events (Bernoulli) or Σz (Gaussian). */
  n: number;
  x: number;
}

export interface CusumResult extends CusumWindow {
  /**
   * The strongest evidence the other way, among the windows ending at the last bucket that start
   * after the alarm window (`start`) and hold the minimum sample: the largest ratio of "unchanged"
   * over "changed" (its own ratio negated), null when there is no such window. While the alarm
   * window still reaches back into an incident, a recovery shows here first: the latest data
   * favour the null as strongly as an alarm needs the alternative. `relapse` is the largest
   * ratio (for the change) of a window starting inside it: a recent stretch that alarms on its
   * own is a relapse, however well the quiet stretch before it nets out.
   */
  recovery: (CusumWindow & { relapse: number }) | null;
}

/**
 * How much a window's evidence is worth when the null value it is tested against (p₀, R₀) is
 * itself estimated from `referenceTrials` trials: the divisor of its log-likelihood ratio.
 *
 * An error ε in the estimate shifts a window of n trials by n·ε, so the window's excess over the
 * estimate has variance n·σ²·(1 + n/N) instead of n·σ² (the two-sample variance 1/n + 1/N, over
 * 1/n). A CUSUM's false-alarm rate is exponential in its threshold over that variance, so a
 * plug-in estimate that happens to sit low multiplies the false alarms of every long window: a
 * rare event over a week of a small cohort (a few hundred events) gives p₀ a relative error of
 * 5–10 %, which tripled the false alerts of the reask rule (docs/benchmarks.md). Dividing each
 * window's LLR by 1 + n/N puts it back on the scale the threshold assumes; with a reference much
 * larger than the window it changes nothing. Infinity (no estimation error) gives 1.
 */
export function referenceDiscount(windowTrials: number, referenceTrials: number): number {
  return referenceTrials > 0 ? 1 + windowTrials / referenceTrials : Infinity;
}

/**
 * The CUSUM over per-bucket ratios (`llrOf`), restricted to bucket boundaries: the window ending at
 * the last bucket with the largest discounted log-likelihood ratio and at least `minN` trials, and
 * the recovery window after it (CusumResult). Null when no window holds `minN` trials.
 */
function cusumOf(
  count: number,
  llrOf: (i: number) => number,
  nOf: (i: number) => number,
  xOf: (i: number) => number,
  minN: number,
  referenceTrials: number,
): CusumResult | null {
  let llr = 0;
  return windowsOf(count, nOf, xOf, minN, (i, n) => {
    llr += llrOf(i);
    return llr / referenceDiscount(n, referenceTrials);
  });
}

/**
 * The windows of whole buckets ending at the last one, latest start first, each with the
 * statistic `statisticOf(start, n, x)` gives it (called for every start in that order, so that
 * it may sum as it goes; n and x are the window's sums): the best window holding `minN` trials
 * and the recovery window after it, as cusumOf.
 */
function windowsOf(
  count: number,
  nOf: (i: number) => number,
  xOf: (i: number) => number,
  minN: number,
  statisticOf: (start: number, n: number, x: number) => number,
): CusumResult | null {
  // The candidates, latest start first.
  const windows: CusumWindow[] = [];
  let best: CusumWindow | null = null;
  let n = 0;
  let x = 0;
  for (let i = count - 1; i >= 0; i--) {
    n += nOf(i);
    x += xOf(i);
    const statistic = statisticOf(i, n, x);
    if (n < minN) continue;
    const window = { statistic, start: i, n, x };
    windows.push(window);
    if (best === null || window.statistic > best.statistic) best = window;
  }
  if (best === null) return null;
  let recovery: CusumResult['recovery'] = null;
  // The largest ratio of the windows seen so far: those starting at or after the current one.
  let later = -Infinity;
  for (const window of windows) {
    if (window.start <= best.start) break;
    later = Math.max(later, window.statistic);
    if (recovery === null || -window.statistic > recovery.statistic) {
      recovery = { ...window, statistic: -window.statistic, relapse: later };
    }
  }
  return { ...best, recovery };
}

/**
 * Bernoulli CUSUM for a rise of an event rate from p0 to p1 (> p0), over buckets in time order:
 * the largest log-likelihood ratio Σ [x·ln(p1/p0) + (n − x)·ln((1 − p1)/(1 − p0))] of any window
 * of whole buckets ending at the last one — CUSUM restricted to bucket boundaries, computed from
 * scratch at each evaluation (no state to lose). Windows with fewer than `minN` trials are not
 * candidates: below the minimum sample there is no evidence to alarm on. When p0 was estimated
 * from `referenceTrials` trials, each window's ratio is discounted for that (referenceDiscount).
 */
export function bernoulliCusum(
  buckets: readonly BernoulliBucket[],
  p0: number,
  p1: number,
  minN: number,
  referenceTrials = Infinity,
): CusumResult | null {
  const up = Math.log(p1 / p0);
  const down = Math.log((1 - p1) / (1 - p0));
  return cusumOf(
    buckets.length,
    (i) => buckets[i]!.x * up + (buckets[i]!.n - buckets[i]!.x) * down,
    (i) => buckets[i]!.n,
    (i) => buckets[i]!.x,
    minN,
    referenceTrials,
  );
}

/** A bucket of a monitored group and of the traffic it is measured against, over the same time. */
export interface ReferencedBucket extends BernoulliBucket {
  /** The reference's trials and events in the same bucket (the rest of the traffic). */
  refN: number;
  refX: number;
  /** Events the reference was expected to have (failure_concentration: at baseline rates). */
  refE?: number;
}

/**
 * Bernoulli CUSUM against a reference that moves with time: each window's p₀ is set from the
 * reference's own counts over that window (`nullOf(refX, refN)` gives p₀, the alternative p₁ and
 * the trials p₀'s error is worth, for referenceDiscount), so a change that hits the group and
 * its reference alike is no evidence, however it falls within the window. A p₀ taken from the
 * reference's whole window instead tested a two-hour outage of all traffic, diluted by the
 * healthy hours before it, against every group's outage hours, and fired on each of them.
 */
export function referencedBernoulliCusum(
  buckets: readonly ReferencedBucket[],
  nullOf: (
    refX: number,
    refN: number,
    refE: number,
  ) => { p0: number; p1: number; referenceTrials: number },
  minN: number,
): CusumResult | null {
  let refN = 0;
  let refX = 0;
  let refE = 0;
  return windowsOf(
    buckets.length,
    (i) => buckets[i]!.n,
    (i) => buckets[i]!.x,
    minN,
    (i, n, x) => {
      refN += buckets[i]!.refN;
      refX += buckets[i]!.refX;
      refE += buckets[i]!.refE ?? 0;
      const { p0, p1, referenceTrials } = nullOf(refX, refN, refE);
      const llr = x * Math.log(p1 / p0) + (n - x) * Math.log((1 - p1) / (1 - p0));
      return llr / referenceDiscount(n, referenceTrials);
    },
  );
}

/**
 * Gaussian CUSUM for a rise of a per-task mean from 0 to `shift` (variance σ²): the largest
 * Σ (shift/σ²)·(z − shift/2) of a window of whole buckets ending at the last one, discounted for
 * the reference the zero was set from (`referenceTrials`, as in bernoulliCusum).
 */
export function gaussianCusum(
  buckets: readonly GaussianBucket[],
  shift: number,
  variance: number,
  minN: number,
  referenceTrials = Infinity,
): CusumResult | null {
  const scale = shift / variance;
  return cusumOf(
    buckets.length,
    (i) => scale * (buckets[i]!.sum - (buckets[i]!.n * shift) / 2),
    (i) => buckets[i]!.n,
    (i) => buckets[i]!.sum,
    minN,
    referenceTrials,
  );
}

/** Kullback–Leibler divergence of Bernoulli(p) from Bernoulli(q), in nats. */
export function bernoulliKl(p: number, q: number): number {
  const term = (a: number, b: number) => (a === 0 ? 0 : a * Math.log(a / b));
  return term(p, q) + term(1 - p, 1 - q);
}

/**
 * The CUSUM threshold h whose average run length to a false alarm is `arl0` observations, by
 * Siegmund's approximation ARL₀ ≈ (e^h − h − 1) / |E₀[LLR]| (solved by bisection), never below
 * ln(2) so that a single observation cannot alarm.
 */
export function cusumThreshold(arl0: number, nullDrift: number): number {
  const drift = Math.abs(nullDrift);
  if (!(arl0 > 1) || !(drift > 0)) return Math.log(Math.max(arl0, 2));
  const target = arl0 * drift;
  let lo = 0;
  let hi = Math.log(target + 2) + 2;
  for (let i = 0; i < 80; i++) {
    const h = (lo + hi) / 2;
    if (Math.exp(h) - h - 1 < target) lo = h;
    else hi = h;
  }
  return Math.max(Math.LN2, (lo + hi) / 2);
}
