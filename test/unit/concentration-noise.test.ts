import { describe, expect, it } from 'vitest';
import { bonferroniZ, concentrationOf } from '../../analyzer/report.js';
import { normalQuantile } from '../../analyzer/stats.js';
import { seeded } from '../support/tasks.js';

// "Significantly worse" / "masked by the average" in the report and v_failure_concentration: a
// review found pure noise flagged in 45 % of reports over 100 cohorts of 100 tasks at 2 %
// failures, as z ≥ 3 neither grew with the number of groups nor held at a few expected failures.

const groupsOf = (sizes: readonly number[], rates: readonly number[], seed: number) => {
  const random = seeded(seed);
  return sizes.map((known, i) => {
    let failures = 0;
    for (let k = 0; k < known; k++) if (random() < rates[i]!) failures++;
    return { cohort: `c${i}`, primary_route: 'small', known_outcomes: known, failures };
  });
};

describe('significantly worse than the rest', () => {
  it('asks more of each group the more groups are judged at once, and never less than z 3', () => {
    expect(bonferroniZ(1)).toBe(3);
    expect(bonferroniZ(7)).toBe(3);
    for (const groups of [20, 100, 300, 10_000]) {
      expect(bonferroniZ(groups)).toBeCloseTo(normalQuantile(1 - 0.01 / groups), 3);
    }
  });

  it.each([
    [100, 100, 0.02],
    [300, 100, 0.02],
    [50, 200, 0.03],
    [20, 300, 0.05],
  ])(
    'flags at most about 1 %% of reports over %i identical groups of %i tasks at %f failures',
    (count, size, rate) => {
      let flagged = 0;
      const reports = 300;
      for (let seed = 1; seed <= reports; seed++) {
        const rows = concentrationOf(
          groupsOf(Array(count).fill(size), Array(count).fill(rate), seed),
        );
        if (rows.some((r) => r.significantly_worse)) flagged++;
      }
      expect(flagged / reports).toBeLessThanOrEqual(0.03);
    },
  );

  it('still flags a small cohort that truly fails far more than the rest, among 100', () => {
    const sizes = Array(100).fill(100);
    const rates = Array(100).fill(0.02);
    rates[7] = 0.25;
    let caught = 0;
    for (let seed = 1; seed <= 50; seed++) {
      const rows = concentrationOf(groupsOf(sizes, rates, seed));
      if (rows.find((r) => r.cohort === 'c7')!.masked_by_average) caught++;
      expect(rows.filter((r) => r.cohort !== 'c7' && r.significantly_worse)).toHaveLength(0);
    }
    expect(caught).toBeGreaterThanOrEqual(48);
  });
});
