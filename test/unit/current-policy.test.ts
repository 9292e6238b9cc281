import { describe, expect, it } from 'vitest';
import { currentPolicies } from '../../analyzer/evaluator.js';
import type { AggregateCounts } from '../../analyzer/series.js';
import { emptyCounts } from '../../analyzer/series.js';

// The current policy version of a cohort, for the previous_policy baseline.

const HOUR = 3_600_000;
const NOW = Date.UTC(2026, 11, 6, 12);
const FROM = NOW - 12 * HOUR;

const row = (
  policyVersion: string,
  firstHoursAgo: number,
  lastHoursAgo: number,
  route = 'small',
): AggregateCounts => ({
  cohort: 'faq',
  route,
  policyVersion,
  counts: emptyCounts(),
  p95LatencyMs: null,
  firstStartedAt: new Date(NOW - firstHoursAgo * HOUR),
  lastStartedAt: new Date(NOW - lastHoursAgo * HOUR),
});

describe('currentPolicies', () => {
  it('is the version that started serving last while two serve at once (a canary, an A/B split)', () => {
    // p1 for weeks and still serving; p2 a canary since 6 h. Whichever served the latest task,
    // p2 is current (review round3 F1: the version of the latest task flipped from task to task).
    for (const latest of [0.01, 0.02]) {
      const rows = [row('p1', 700, latest), row('p2', 6, 0.015)];
      expect(currentPolicies(rows, FROM).get('faq')?.version).toBe('p2');
    }
  });

  it('is the only version in the window after a cut-over, and not one that stopped before it', () => {
    expect(currentPolicies([row('p1', 700, 20), row('p2', 18, 0)], FROM).get('faq')?.version).toBe(
      'p2',
    );
    // Rolled back: p2 stopped before the window, p1 serves alone again.
    expect(currentPolicies([row('p1', 700, 0), row('p2', 40, 30)], FROM).get('faq')?.version).toBe(
      'p1',
    );
    expect(currentPolicies([row('p1', 700, 20)], FROM).has('faq')).toBe(false);
  });

  it('gives two versions serving since before the look-back the same answer at every evaluation', () => {
    // review diff #2: both first seen at the look-back's sliding start, the one whose task fell
    // first after it lost, and that changed from one evaluation to the next.
    const LOOKBACK = 720; // hours
    const lookback = { fromMs: NOW - LOOKBACK * HOUR, slackMs: HOUR / 4 };
    for (const [a, b] of [
      [LOOKBACK - 0.001, LOOKBACK - 0.003],
      [LOOKBACK - 0.005, LOOKBACK - 0.002],
    ] as const) {
      const rows = [row('v9', a, 0.01), row('v10', b, 0.02)];
      expect(currentPolicies(rows, FROM, lookback).get('faq')?.version).toBe('v10');
    }
    // A canary started inside the look-back is still the current one beside them.
    const rows = [
      row('v9', LOOKBACK - 0.001, 0.01),
      row('v10', LOOKBACK - 0.002, 0),
      row('v11', 5, 1),
    ];
    expect(currentPolicies(rows, FROM, lookback).get('faq')?.version).toBe('v11');
  });

  it("takes a version's first and last task over all its routes", () => {
    // p2's small route started 2 h ago, its large route 30 h ago: it started before p3.
    const rows = [row('p2', 2, 0), row('p2', 30, 1, 'large'), row('p3', 10, 0.5)];
    expect(currentPolicies(rows, FROM).get('faq')?.version).toBe('p3');
  });
});
