import { describe, expect, it } from 'vitest';
import { latencyText } from '../../analyzer/latency-text.js';

describe('latencyText', () => {
  it.each([
    [0.4, '0 ms'],
    [1732.4, '1732 ms'],
    [9_999, '9999 ms'],
    [10_000, '10.0 s'],
    [95_250, '95.3 s'],
    [120_000, '2.0 min'],
    [5_400_000, '90.0 min'],
    [7_200_000, '2.0 h'],
    // Review audit-B: a 3-hour p95 read "10800000 ms" in the report.
    [10_800_000, '3.0 h'],
    // At the boundaries the rounded figure chooses the unit (diff-review-10).
    [9_999.6, '10.0 s'],
    [119_960, '2.0 min'],
    [7_199_000, '2.0 h'],
  ])('writes %d ms as %s', (ms, text) => {
    expect(latencyText(ms)).toBe(text);
  });
});
