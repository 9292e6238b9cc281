import { expect } from 'vitest';
import type { DemoResult } from '../../cli/demo.js';
import { costPerSuccessfulTask } from '../../examples/ground-truth.js';

/** The demo run both end-to-end suites make: 600 tasks, seed 7, no simulated latency. */
export const DEMO = { seed: 7, tasks: 600, concurrency: 16, latencyScale: 0 } as const;

/** The demo's report against the ground truth the simulator counted itself. */
export function expectReportMatchesTruth(result: DemoResult, printed: string): void {
  const { report, truth, spansWritten, mismatches } = result;
  expect(truth.totals.tasks).toBe(600);
  // Four cohorts; the small-first ones also carry a large-first control group.
  expect(truth.groups.length).toBe(6);
  expect(truth.totals.fallbacks).toBeGreaterThan(0);
  expect(truth.totals.failures).toBeGreaterThan(0);
  expect(truth.totals.retriedCalls).toBeGreaterThan(0);
  expect(spansWritten).toBeGreaterThan(truth.totals.tasks * 3);
  expect(report.rows).toHaveLength(truth.groups.length);

  for (const group of truth.groups) {
    const row = report.rows.find(
      (r) => r.cohort === group.cohort && r.primaryRoute === group.primaryRoute,
    );
    expect(row, `${group.cohort} × ${group.primaryRoute}`).toBeDefined();
    expect(row!.tasks).toBe(group.tasks);
    expect(row!.successes).toBe(group.successes);
    expect(row!.failures).toBe(group.failures);
    expect(row!.fallbacks).toBe(group.fallbacks);
    // The OpenAI client's own retries of the simulated 429s and 500s, counted by the service
    // through its fetch, by the instrumentation through Node's diagnostics channels.
    expect(row!.retriedCalls).toBe(group.retriedCalls);
    expect(row!.httpRetries).toBe(group.httpRetries);
    expect(row!.httpCountedCalls).toBe(group.llmCalls);
    expect(row!.invisibleFallbacks).toBe(0);
    expect(Math.abs(row!.totalCostUsd - group.costUsd)).toBeLessThan(1e-9);
    const want = costPerSuccessfulTask(group);
    expect(want).not.toBeNull();
    expect(Math.abs(row!.costPerSuccessfulTask! - want!)).toBeLessThan(1e-9);
    const reasons = Object.fromEntries(row!.topFallbackReasons.map((r) => [r.reason, r.tasks]));
    expect(reasons).toEqual(group.fallbackReasons);
  }
  expect(mismatches).toEqual([]);
  // The before/after: the degraded cohort is caught (at least pending by the last evaluation,
  // whatever the timing), and no other cohort × route raises anything.
  const raised = result.transitions.filter((t) => t.kind === 'pending' || t.kind === 'firing');
  expect(raised.some((t) => t.cohort === 'extraction' && t.route === 'small')).toBe(true);
  expect(raised.filter((t) => t.cohort !== 'extraction' || t.route !== 'small')).toEqual([]);
  expect(printed).toMatch(/cost\/success/);
  // The SDK's own retries of the simulated 429s and 500s, under the table.
  expect(printed).toMatch(
    /SDK retries \(model calls that needed more than one HTTP request\): \S+ × \S+ \d+\.\d%/,
  );
  expect(printed).toMatch(/matches what the example service counted itself/);
}
