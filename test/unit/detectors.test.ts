import { describe, expect, it } from 'vitest';
import { detect } from '../../analyzer/detectors.js';
import type { MonitorInput } from '../../analyzer/detectors.js';
import { parseRules } from '../../analyzer/rules.js';
import { emptyCounts } from '../../analyzer/series.js';
import type { TaskCounts } from '../../analyzer/series.js';

// The detectors on crafted counts: pure functions, no store.

const HOUR = 3_600_000;
const { evaluation, rules } = parseRules(`
evaluation:
  horizon: 24h
  baselineWindow: 7d
  buckets: 24
  minTasks: 100
  minBaselineTasks: 100
`);

/** Counts of `tasks` tasks with one model call each; `counted` of the calls counted, `retried` retried. */
function calls(tasks: number, counted: number, retried: number): TaskCounts {
  return {
    ...emptyCounts(),
    tasks,
    known: tasks,
    successes: tasks,
    calls: tasks,
    httpCountedCalls: counted,
    retriedCalls: retried,
  };
}

function monitor(current: TaskCounts[], baseline: TaskCounts | null): MonitorInput {
  return {
    rule: rules.find((r) => r.kind === 'retry_rise')!,
    cohort: 'faq',
    route: 'small',
    detail: '',
    current,
    fromMs: Date.UTC(2026, 11, 1),
    bucketMs: HOUR,
    baseline,
    baselineDescription: 'the 7 days before',
    baselineSpanMs: 7 * 24 * HOUR,
    monitors: 4,
  };
}

// The baseline: 7 days of 350 calls a day, 2 % of them retried by the SDK.
const BASELINE = calls(2_450, 2_450, 49);

describe('retry_rise', () => {
  it('stays quiet on a steady retry rate', () => {
    const steady = Array.from({ length: 24 }, () => calls(50, 50, 1));
    const finding = detect(monitor(steady, BASELINE), evaluation);
    expect(finding.status).toBe('ok');
    expect(finding.baseline.value).toBeCloseTo(0.02, 6);
    expect(finding.current.value).toBeCloseTo(0.02, 6);
    expect(finding.statistic!).toBeLessThan(finding.threshold!);
  });

  it('fires when the share of retried calls rises and stays up', () => {
    // From hour 12 on, 8 calls in 50 need a retry: 16 % against 2 %.
    const rising = Array.from({ length: 24 }, (_, i) => calls(50, 50, i < 12 ? 1 : 8));
    const finding = detect(monitor(rising, BASELINE), evaluation);
    expect(finding.status).toBe('degraded');
    expect(finding.kind).toBe('retry_rise');
    expect(finding.current.label).toBe('retry rate');
    expect(finding.statistic!).toBeGreaterThanOrEqual(finding.threshold!);
    // The alarm window starts where the rise does, and its rate is the risen one.
    expect(finding.current.since).toBe(new Date(Date.UTC(2026, 11, 1) + 12 * HOUR).toISOString());
    expect(finding.current.value).toBeCloseTo(0.16, 6);
    expect(finding.effect!).toBeGreaterThan(0.1);
    expect(finding.summary).toMatch(/retry rate 2\.0% → 16\.0%/);
  });

  it('counts only calls whose HTTP requests were counted: none counted is insufficient data', () => {
    const uncounted = Array.from({ length: 24 }, () => calls(50, 0, 0));
    const finding = detect(monitor(uncounted, calls(2_450, 0, 0)), evaluation);
    expect(finding.status).toBe('insufficient_data');
    expect(finding.current.n).toBe(0);
  });

  it('is one-sided: fewer retries than the baseline raise nothing', () => {
    const calmer = Array.from({ length: 24 }, () => calls(50, 50, 0));
    const finding = detect(monitor(calmer, calls(2_450, 2_450, 490)), evaluation);
    expect(finding.status).toBe('ok');
    expect(finding.current.value).toBe(0);
  });
});
