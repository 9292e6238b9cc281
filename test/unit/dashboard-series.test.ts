import { describe, expect, it } from 'vitest';
import type { TimeseriesSeries } from '../../dashboard/api-types.js';
import { latency, pct, reasons, span, timeTicks, usd, utc } from '../../dashboard/format.js';
import {
  chooseBucket,
  costPerSuccessByRoute,
  fallbackRateByReason,
  pointsOf,
  selectSeries,
  successRateByRoute,
} from '../../dashboard/series.js';
import { wilson } from '../../analyzer/stats.js';
import { PALETTE, colour, dashOf } from '../../dashboard/palette.js';

const T0 = '2026-12-02T10:00:00.000Z';
const T1 = '2026-12-02T11:00:00.000Z';
const T2 = '2026-12-02T12:00:00.000Z';

function point(
  bucketStart: string,
  counts: {
    tasks: number;
    successes: number;
    known?: number;
    cost: number;
    reasons?: Record<string, number>;
  },
) {
  const reasonList = Object.entries(counts.reasons ?? {}).map(([reason, tasks]) => ({
    reason,
    tasks,
  }));
  return {
    bucketStart,
    tasks: counts.tasks,
    successes: counts.successes,
    knownOutcomes: counts.known ?? counts.tasks,
    totalCostUsd: counts.cost,
    fallbacks: reasonList.reduce((n, r) => n + r.tasks, 0),
    topFallbackReasons: reasonList,
  };
}

const SERIES: TimeseriesSeries[] = [
  {
    cohort: 'faq',
    primaryRoute: 'small',
    points: [
      point(T0, { tasks: 10, successes: 10, cost: 1, reasons: { timeout: 2 } }),
      point(T1, { tasks: 10, successes: 0, known: 5, cost: 1 }),
    ],
  },
  {
    cohort: 'extraction',
    primaryRoute: 'small',
    points: [
      point(T0, {
        tasks: 30,
        successes: 20,
        cost: 6,
        reasons: { validation_failed: 6, timeout: 2 },
      }),
      point(T2, { tasks: 4, successes: 3, cost: 0.4 }),
    ],
  },
  {
    cohort: 'extraction',
    primaryRoute: 'large',
    points: [point(T1, { tasks: 5, successes: 5, cost: 2 })],
  },
];

describe('the charts’ data', () => {
  it('sums counts per route and bucket before dividing: cost per success over several cohorts is exact', () => {
    const chart = costPerSuccessByRoute(SERIES);
    expect(chart.times).toEqual([T0, T1, T2].map(Date.parse));
    expect(chart.lines.map((l) => l.label)).toEqual(['large', 'small']);
    // small at T0: (1 + 6) / (10 + 20), not the mean of 0.1 and 0.3.
    expect(chart.lines[1]!.values[0]).toBeCloseTo(7 / 30, 12);
    // No success at T1 on small: no value, not 0 and not infinity; no task of large at T0.
    expect(chart.lines[1]!.values[1]).toBeNull();
    expect(chart.lines[0]!.values).toEqual([null, 0.4, null]);
    expect(pointsOf(chart)).toBe(3);
  });

  it('gives the success rate over known outcomes with its Wilson interval as the band', () => {
    const chart = successRateByRoute(SERIES);
    const small = chart.lines.find((l) => l.label === 'small')!;
    expect(small.values[0]).toBeCloseTo(30 / 40, 12);
    expect(small.values[1]).toBe(0); // 0 of 5 known
    const interval = wilson(30, 40)!;
    expect(small.band!.lower[0]).toBeCloseTo(interval.lower, 12);
    expect(small.band!.upper[0]).toBeCloseTo(interval.upper, 12);
    expect(small.band!.upper[1]).toBeGreaterThan(0);
  });

  it('gives the fallback rate of each reason over all tasks of the bucket, 0 where the reason is absent', () => {
    const chart = fallbackRateByReason(SERIES);
    expect(chart.lines.map((l) => l.label)).toEqual(['timeout', 'validation_failed']);
    const [timeout, validation] = chart.lines;
    expect(timeout!.values).toEqual([4 / 40, 0, 0]);
    expect(validation!.values).toEqual([6 / 40, 0, 0]);
  });

  it('gives every bucket between the first and the last a time, so that a bucket without tasks is a gap in each chart', () => {
    const HOUR = 3_600_000;
    const sparse: TimeseriesSeries[] = [
      {
        cohort: 'faq',
        primaryRoute: 'small',
        points: [
          point(T0, { tasks: 4, successes: 4, cost: 1, reasons: { timeout: 1 } }),
          point('2026-12-02T13:00:00.000Z', { tasks: 4, successes: 0, cost: 1 }),
        ],
      },
    ];
    const times = [0, 1, 2, 3].map((i) => Date.parse(T0) + i * HOUR);
    for (const chart of [
      costPerSuccessByRoute(sparse, HOUR),
      successRateByRoute(sparse, HOUR),
      fallbackRateByReason(sparse, HOUR),
    ]) {
      expect(chart.times).toEqual(times);
      for (const line of chart.lines) expect(line.values.slice(1, 3)).toEqual([null, null]);
    }
    expect(successRateByRoute(sparse, HOUR).lines[0]!.values).toEqual([1, null, null, 0]);
    // Without the bucket's length, the buckets the API gave.
    expect(costPerSuccessByRoute(sparse).times).toEqual([times[0], times[3]]);
  });

  it('draws no two of the first 32 lines alike: past the palette, the colours come back dashed, then dotted', () => {
    const looks = Array.from({ length: 32 }, (_, i) => `${colour(i)} ${dashOf(i)?.join(',')}`);
    expect(new Set(looks).size).toBe(32);
    expect(dashOf(PALETTE.length - 1)).toBeUndefined();
    expect(dashOf(PALETTE.length)).toBeDefined();
  });

  it('keeps the series of the cohorts and routes the view names', () => {
    const view = { cohorts: ['extraction'], routes: [] };
    expect(selectSeries(SERIES, view).map((s) => s.primaryRoute)).toEqual(['small', 'large']);
    expect(selectSeries(SERIES, { cohorts: [], routes: ['large'] })).toHaveLength(1);
    expect(selectSeries(SERIES, { cohorts: [], routes: [] })).toHaveLength(3);
  });

  it('chooses the smallest bucket that keeps a line under 120 points', () => {
    expect(chooseBucket(3_600_000)).toBe('1m');
    expect(chooseBucket(6 * 3_600_000)).toBe('5m');
    expect(chooseBucket(24 * 3_600_000)).toBe('15m');
    expect(chooseBucket(7 * 86_400_000)).toBe('3h');
    expect(chooseBucket(30 * 86_400_000)).toBe('6h');
    expect(chooseBucket(3650 * 86_400_000)).toBe('7d');
  });
});

describe('the dashboard’s figures', () => {
  it('writes money, rates, latencies, times and reasons as the CLI does', () => {
    expect(usd(0.0031914)).toBe('$0.00319');
    expect(usd(null)).toBe('—');
    expect(pct(0.936)).toBe('93.6 %');
    expect(latency(850.4)).toBe('850 ms');
    expect(latency(1234)).toBe('1.23 s');
    expect(latency(45_000)).toBe('45.0 s');
    // Review audit-B: a 3-hour p95 read "10800000 ms" in the report.
    expect(latency(3 * 3_600_000)).toBe('3.0 h');
    expect(latency(300_000)).toBe('5.0 min');
    expect(utc('2026-12-02T10:05:00.000Z')).toBe('2026-12-02 10:05 UTC');
    expect(utc('2026-12-02T10:05:07.000Z')).toBe('2026-12-02 10:05:07 UTC');
    expect(span(300)).toBe('5 min');
    expect(span(3600)).toBe('1 h');
    expect(
      reasons([
        { reason: 'a', share: 0.5 },
        { reason: 'b', share: 0.3 },
        { reason: 'c', share: 0.1 },
        { reason: 'd', share: 0.1 },
      ]),
    ).toBe('a 50 %, b 30 %, c 10 %, +1 more');
  });

  it('labels a time axis in UTC, with the date under the first tick of each day', () => {
    const at = (iso: string) => Date.parse(iso) / 1000;
    expect(
      timeTicks([
        at('2026-12-01T22:00:00Z'),
        at('2026-12-01T23:00:00Z'),
        at('2026-12-02T00:00:00Z'),
      ]),
    ).toEqual(['22:00\n12-01', '23:00', '00:00\n12-02']);
    expect(timeTicks([at('2026-12-01T00:00:00Z'), at('2026-12-05T00:00:00Z')])).toEqual([
      '12-01',
      '12-05',
    ]);
    // Ticks under a minute apart (a few minutes' window) carry seconds, not a repeated minute.
    expect(
      timeTicks([
        at('2026-12-07T20:24:00Z'),
        at('2026-12-07T20:24:15Z'),
        at('2026-12-07T20:24:30Z'),
      ]),
    ).toEqual(['20:24:00\n12-07', '20:24:15', '20:24:30']);
  });
});
