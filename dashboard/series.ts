import type { DashboardView } from '../analyzer/dashboard-link.js';
import { wilson } from '../analyzer/stats.js';
import { parseDuration } from '../server/time.js';
import type { TimeseriesSeries } from './api-types.js';

/**
 * The charts' data from the time series API: the series the view selects, summed per route or
 * per fallback reason in each bucket. Rates are recomputed from the summed counts (never averaged
 * rates), so a route's line over several cohorts is exact. Pure.
 */

/** A line of a chart; null where the bucket has no value (no tasks, no success, no outcome). */
export interface Line {
  label: string;
  values: (number | null)[];
  /** The 95 % interval around the values, when the chart draws one. */
  band?: { lower: (number | null)[]; upper: (number | null)[] };
}

export interface ChartData {
  /** Bucket starts, ms since the epoch, ascending. */
  times: number[];
  lines: Line[];
}

/** Bucket sizes the charts use, smallest first (the API takes whole seconds from 1m). */
export const BUCKETS = ['1m', '5m', '15m', '30m', '1h', '3h', '6h', '12h', '1d', '7d'] as const;
/** Points per line the charts aim at, at most: enough for a trend, few enough to read. */
export const MAX_POINTS = 120;

/** The smallest bucket that cuts a window of this length into at most MAX_POINTS buckets. */
export function chooseBucket(windowMs: number): string {
  for (const bucket of BUCKETS) {
    if (windowMs / parseDuration(bucket) <= MAX_POINTS) return bucket;
  }
  return BUCKETS[BUCKETS.length - 1]!;
}

/** The series of the cohorts and routes the view names (all when it names none). */
export function selectSeries(
  series: readonly TimeseriesSeries[],
  view: Pick<DashboardView, 'cohorts' | 'routes'>,
): TimeseriesSeries[] {
  return series.filter(
    (s) =>
      (view.cohorts.length === 0 || view.cohorts.includes(s.cohort)) &&
      (view.routes.length === 0 || view.routes.includes(s.primaryRoute)),
  );
}

interface Totals {
  tasks: number;
  successes: number;
  known: number;
  cost: number;
  fallbacks: number;
  reasons: Map<string, number>;
}

const emptyTotals = (): Totals => ({
  tasks: 0,
  successes: 0,
  known: 0,
  cost: 0,
  fallbacks: 0,
  reasons: new Map(),
});

/**
 * Every bucket start of the series, ascending, and with `stepMs` (the bucket's length) every
 * bucket between the first and the last too: the API leaves out a bucket without tasks, and a
 * chart must show it as a gap, not draw a line across it (a route whose traffic stopped for hours
 * looked steady).
 */
function timesOf(series: readonly TimeseriesSeries[], stepMs?: number): number[] {
  const times = new Set<number>();
  for (const s of series) for (const p of s.points) times.add(Date.parse(p.bucketStart));
  const sorted = [...times].sort((a, b) => a - b);
  if (!stepMs || stepMs <= 0 || sorted.length < 2) return sorted;
  const first = sorted[0]!;
  const last = sorted.at(-1)!;
  // Bounded: a bucket smaller than the API allows would make a chart of millions of points.
  if ((last - first) / stepMs > 100_000) return sorted;
  for (let t = first + stepMs; t < last; t += stepMs) times.add(t);
  return [...times].sort((a, b) => a - b);
}

/** Counts summed per group (route, or one group for all) and bucket. */
function totalsBy(
  series: readonly TimeseriesSeries[],
  groupOf: (s: TimeseriesSeries) => string,
): Map<string, Map<number, Totals>> {
  const groups = new Map<string, Map<number, Totals>>();
  for (const s of series) {
    const group = groupOf(s);
    let buckets = groups.get(group);
    if (!buckets) groups.set(group, (buckets = new Map()));
    for (const p of s.points) {
      const time = Date.parse(p.bucketStart);
      let totals = buckets.get(time);
      if (!totals) buckets.set(time, (totals = emptyTotals()));
      totals.tasks += p.tasks;
      totals.successes += p.successes;
      totals.known += p.knownOutcomes;
      totals.cost += p.totalCostUsd;
      totals.fallbacks += p.fallbacks;
      for (const r of p.topFallbackReasons) {
        totals.reasons.set(r.reason, (totals.reasons.get(r.reason) ?? 0) + r.tasks);
      }
    }
  }
  return new Map([...groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Cost per successful task per primary route: the route's cost ÷ its successes in the bucket. */
export function costPerSuccessByRoute(
  series: readonly TimeseriesSeries[],
  stepMs?: number,
): ChartData {
  const times = timesOf(series, stepMs);
  const lines = [...totalsBy(series, (s) => s.primaryRoute)].map(([route, buckets]) => ({
    label: route,
    values: times.map((t) => {
      const totals = buckets.get(t);
      return totals && totals.successes > 0 ? totals.cost / totals.successes : null;
    }),
  }));
  return { times, lines };
}

/** Success rate per primary route with its Wilson 95 % interval, over known outcomes. */
export function successRateByRoute(
  series: readonly TimeseriesSeries[],
  stepMs?: number,
): ChartData {
  const times = timesOf(series, stepMs);
  const lines = [...totalsBy(series, (s) => s.primaryRoute)].map(([route, buckets]): Line => {
    const of = (t: number) => {
      const totals = buckets.get(t);
      return totals && totals.known > 0 ? totals : undefined;
    };
    const intervals = times.map((t) => {
      const totals = of(t);
      return totals ? wilson(totals.successes, totals.known) : null;
    });
    return {
      label: route,
      values: times.map((t) => {
        const totals = of(t);
        return totals ? totals.successes / totals.known : null;
      }),
      band: {
        lower: intervals.map((i) => i?.lower ?? null),
        upper: intervals.map((i) => i?.upper ?? null),
      },
    };
  });
  return { times, lines };
}

/**
 * Fallback rate by reason: tasks that fell back for that reason ÷ all tasks of the bucket. A task
 * that fell back twice for two reasons counts under both, as in the report.
 */
export function fallbackRateByReason(
  series: readonly TimeseriesSeries[],
  stepMs?: number,
): ChartData {
  const times = timesOf(series, stepMs);
  const buckets = totalsBy(series, () => '').get('') ?? new Map<number, Totals>();
  const reasons = new Set<string>();
  for (const totals of buckets.values())
    for (const reason of totals.reasons.keys()) reasons.add(reason);
  const lines = [...reasons].sort().map((reason) => ({
    label: reason,
    values: times.map((t) => {
      const totals = buckets.get(t);
      return totals && totals.tasks > 0 ? (totals.reasons.get(reason) ?? 0) / totals.tasks : null;
    }),
  }));
  return { times, lines };
}

/** Values drawn in a chart: the points of its lines that have a value. */
export function pointsOf(data: ChartData): number {
  return data.lines.reduce((n, line) => n + line.values.filter((v) => v !== null).length, 0);
}
