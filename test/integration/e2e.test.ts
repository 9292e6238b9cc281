import { describe, expect, it } from 'vitest';
import { runDemo } from '../../cli/demo.js';
import { costPerSuccessfulTask } from '../../examples/ground-truth.js';

describe('end to end: example service → OpenTelemetry SDK → OTLP/HTTP → collector → ClickHouse → views → report', () => {
  it('reproduces the ground truth the simulator computed itself, per cohort × primary route', async () => {
    let printed = '';
    const { report, truth, spansWritten, mismatches } = await runDemo({
      seed: 7,
      tasks: 600,
      concurrency: 16,
      latencyScale: 0,
      out: (text) => {
        printed += text;
      },
    });

    expect(truth.totals.tasks).toBe(600);
    expect(truth.groups.length).toBe(4);
    expect(truth.totals.fallbacks).toBeGreaterThan(0);
    expect(truth.totals.failures).toBeGreaterThan(0);
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
      expect(row!.invisibleFallbacks).toBe(0);
      expect(Math.abs(row!.totalCostUsd - group.costUsd)).toBeLessThan(1e-9);
      const want = costPerSuccessfulTask(group);
      expect(want).not.toBeNull();
      expect(Math.abs(row!.costPerSuccessfulTask! - want!)).toBeLessThan(1e-9);
      const reasons = Object.fromEntries(row!.topFallbackReasons.map((r) => [r.reason, r.tasks]));
      expect(reasons).toEqual(group.fallbackReasons);
    }
    expect(mismatches).toEqual([]);
    expect(printed).toMatch(/cost\/success/);
    expect(printed).toMatch(/matches what the example service counted itself/);
  });
});
