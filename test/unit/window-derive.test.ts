import { describe, expect, it } from 'vitest';
import { deriveWindowRow, windowSumsRow } from '../../analyzer/window-derive.js';

// Edge cases of the derived columns. That they equal v_window_metrics's own on generated traffic is
// checked in test/integration/rollups.test.ts.

const sums = (overrides: Record<string, unknown> = {}) =>
  windowSumsRow.parse({
    is_overall: 0,
    cohort: 'faq',
    primary_route: 'small',
    tasks: '10',
    successes: '8',
    failures: '2',
    known_outcomes: '10',
    total_cost_usd: 0.5,
    cost_squared_sum: 0.03,
    success_cost_sum: 0.4,
    fallbacks: '3',
    cascades: '1',
    invisible_fallbacks: '0',
    reasks: '1',
    escalations: '0',
    reason_tasks: { timeout: '1', '': '1', low_confidence: '2' },
    latency_quantiles: [100, 'nan', 300],
    calls_tasks: { '1': '7', '2': '2', '12': '1' },
    total_model_calls: '23',
    unpriced_model_calls: '0',
    http_counted_model_calls: '0',
    retried_model_calls: '0',
    total_http_retries: '0',
    total_retry_wait_ms: '0',
    score_tasks: {},
    score_sums: {},
    score_squares: {},
    ...overrides,
  });

describe('deriveWindowRow', () => {
  it('derives rates, the call-count p95, loops and the top reasons', () => {
    const row = deriveWindowRow(sums());
    expect(row.success_rate).toBe(0.8);
    expect(row.fallback_rate).toBe(0.3);
    expect(row.cost_per_successful_task).toBe(0.0625);
    // Sorted counts 1×7, 2×2, 12×1: index ⌊0.95 · 10⌋ = 9 is the 12.
    expect(row.p95_calls_per_task).toBe(12);
    expect(row.loop_rate).toBe(0.1);
    expect(row.top_fallback_reasons).toEqual([
      { reason: 'low_confidence', tasks: 2 },
      { reason: '(none)', tasks: 1 },
      { reason: 'timeout', tasks: 1 },
    ]);
    expect([row.p50_latency_ms, row.p95_latency_ms, row.p99_latency_ms]).toEqual([100, null, 300]);
    expect(row.priced_call_share).toBe(1);
    expect(row.retry_rate).toBeNull();
    expect(row.retries_per_task).toBeNull();
    expect(row.success_rate_lower!).toBeLessThan(0.8);
    expect(row.success_rate_upper!).toBeGreaterThan(0.8);
    expect(row.cost_per_successful_task_lower!).toBeLessThan(0.0625);
  });

  it('gives no rate or interval where the view gives NULL', () => {
    const none = deriveWindowRow(sums({ known_outcomes: 0, successes: 0, failures: 0 }));
    expect(none.success_rate).toBeNull();
    expect(none.success_rate_lower).toBeNull();
    expect(none.success_rate_upper).toBeNull();
    expect(none.cost_per_successful_task).toBeNull();
    expect(none.cost_per_successful_task_upper).toBeNull();
    const one = deriveWindowRow(
      sums({ tasks: 1, successes: 1, known_outcomes: 1, calls_tasks: { '1': 1 } }),
    );
    expect(one.cost_per_successful_task).toBe(0.5);
    expect(one.cost_per_successful_task_lower).toBeNull();
    expect(one.cost_per_successful_task_upper).toBeNull();
    expect(one.p95_calls_per_task).toBe(1);
  });

  it('keeps the Wilson interval inside 0..1', () => {
    const all = deriveWindowRow(sums({ successes: 10, failures: 0 }));
    expect(all.success_rate_upper!).toBeLessThanOrEqual(1);
    expect(all.success_rate_upper!).toBeCloseTo(1, 12);
    const nothing = deriveWindowRow(sums({ successes: 0, failures: 10 }));
    expect(nothing.success_rate_lower!).toBeGreaterThanOrEqual(0);
    expect(nothing.success_rate_lower!).toBeCloseTo(0, 12);
  });
});
