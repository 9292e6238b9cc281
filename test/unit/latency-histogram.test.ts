import { describe, expect, it } from 'vitest';
import {
  EXPORT_STAGES,
  LatencyHistogram,
  newStageHistograms,
  readStageHistograms,
  stageHistogramLines,
} from '../../collector/latency-histogram.js';

describe('LatencyHistogram', () => {
  it('puts a value on a bound into that bound’s bucket (Prometheus `le`), and one past every bound into the last', () => {
    const h = new LatencyHistogram([1, 5, 10]);
    for (const ms of [0.2, 1, 1.01, 5, 9.99, 10, 10.5, 400]) h.observe(ms);
    expect(h.counts).toEqual([2, 2, 2, 2]);
    expect(h.count).toBe(8);
    expect(h.sumMs).toBeCloseTo(0.2 + 1 + 1.01 + 5 + 9.99 + 10 + 10.5 + 400, 9);
  });

  it('counts a negative or non-finite duration as 0, never drops it', () => {
    const h = new LatencyHistogram([1, 5]);
    h.observe(-0.3);
    h.observe(Number.NaN);
    expect(h.counts).toEqual([2, 0, 0]);
    expect(h.sumMs).toBe(0);
  });

  it('interpolates a quantile inside its bucket and caps it at the highest bound', () => {
    const h = new LatencyHistogram([10, 20, 40]);
    for (let i = 0; i < 50; i++) h.observe(5);
    for (let i = 0; i < 50; i++) h.observe(15);
    expect(h.quantile(0.5)).toBe(10);
    // Rank 75 of 100: half-way through the (10, 20] bucket.
    expect(h.quantile(0.75)).toBe(15);
    expect(h.quantile(0.25)).toBe(5);
    h.observe(1_000);
    expect(h.quantile(1)).toBe(40);
    expect(new LatencyHistogram().quantile(0.5)).toBeNaN();
  });

  it('gives the observations between two snapshots', () => {
    const h = new LatencyHistogram([10, 20]);
    h.observe(5);
    const before = h.snapshot();
    h.observe(15);
    h.observe(25);
    const delta = h.since(before);
    expect(delta.counts).toEqual([0, 1, 1]);
    expect(delta.count).toBe(2);
    expect(delta.sumMs).toBe(40);
    // The snapshot did not move with the histogram.
    expect(before.counts).toEqual([1, 0, 0]);
  });
});

describe('the stage histograms in the Prometheus text format', () => {
  it('are cumulative per stage, in seconds, and read back to the same counts', () => {
    const stages = newStageHistograms();
    stages.ingest.observe(7);
    stages.ingest.observe(30);
    stages.write.observe(0.5);
    stages.total.observe(42);
    const text = stageHistogramLines('rw_stage_seconds', stages);
    expect(text).toContain('# TYPE rw_stage_seconds histogram\n');
    expect(text).toContain('rw_stage_seconds_bucket{stage="ingest",le="0.008"} 1\n');
    expect(text).toContain('rw_stage_seconds_bucket{stage="ingest",le="0.025"} 1\n');
    expect(text).toContain('rw_stage_seconds_bucket{stage="ingest",le="0.03"} 2\n');
    expect(text).toContain('rw_stage_seconds_bucket{stage="ingest",le="+Inf"} 2\n');
    expect(text).toContain('rw_stage_seconds_sum{stage="ingest"} 0.037\n');
    expect(text).toContain('rw_stage_seconds_count{stage="receive"} 0\n');
    const back = readStageHistograms(text, 'rw_stage_seconds');
    for (const stage of EXPORT_STAGES) {
      expect(back[stage]!.counts, stage).toEqual(stages[stage].counts);
      expect(back[stage]!.count, stage).toBe(stages[stage].count);
    }
    expect(back.ingest!.sumMs).toBeCloseTo(37, 9);
  });

  it('leave out a stage nobody measures, and ignore other series when read', () => {
    const text = stageHistogramLines('rw_stage_seconds', { total: new LatencyHistogram() });
    expect(text).not.toContain('stage="ingest"');
    const back = readStageHistograms(
      `${text}other_bucket{stage="total",le="0.001"} 9\nrw_stage_seconds_bucket{stage="bogus",le="0.001"} 3\n`,
      'rw_stage_seconds',
    );
    expect(Object.keys(back)).toEqual(['total']);
    expect(back.total!.count).toBe(0);
  });
});
