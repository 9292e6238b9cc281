import { describe, expect, it } from 'vitest';
import { mergeSpans } from '../../analyzer/evaluator.js';

// The resolved incidents left out of a route's trailing baselines: the incidents of one route's
// rules overlap (they fire together), and are merged before they go into the statement.

const span = (route: string, fromMs: number, toMs: number, cohort = 'faq') => ({
  cohort,
  route,
  fromMs,
  toMs,
});

describe('mergeSpans', () => {
  it('merges the overlapping and touching spans of one cohort × route, not of others', () => {
    expect(
      mergeSpans([
        span('small', 50, 70),
        span('small', 10, 30),
        span('small', 20, 40),
        span('small', 40, 45),
        span('large', 25, 60),
        span('small', 28, 35, 'billing'),
      ]),
    ).toEqual([
      span('small', 28, 35, 'billing'),
      span('small', 10, 45),
      span('large', 25, 60),
      span('small', 50, 70),
    ]);
  });

  it('drops empty spans and leaves its input as it was', () => {
    const input = [span('small', 10, 10), span('small', 30, 20), span('small', 1, 5)];
    const before = structuredClone(input);
    expect(mergeSpans(input)).toEqual([span('small', 1, 5)]);
    expect(input).toEqual(before);
  });

  it('keeps the latest 100 when a flapping route leaves more', () => {
    const many = Array.from({ length: 150 }, (_, i) => span('small', i * 10, i * 10 + 5));
    const merged = mergeSpans(many);
    expect(merged).toHaveLength(100);
    expect(merged[0]).toEqual(span('small', 500, 505));
    expect(merged.at(-1)).toEqual(span('small', 1490, 1495));
  });
});
