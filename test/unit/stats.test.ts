import { describe, expect, it } from 'vitest';
import {
  bernoulliCusum,
  bernoulliKl,
  costPerSuccess,
  cusumThreshold,
  gaussianCusum,
  normalCdf,
  normalQuantile,
  referenceDiscount,
  twoProportionZ,
  wilson,
} from '../../analyzer/stats.js';
import { seeded } from '../support/tasks.js';

describe('normal distribution', () => {
  it.each([
    [0.975, 1.959963984540054],
    [0.5, 0],
    [0.001, -3.090232306167813],
    [0.9999, 3.719016485455709],
  ])('has quantile(%s) = %s', (p, z) => {
    expect(normalQuantile(p)).toBeCloseTo(z, 8);
  });

  it('inverts its CDF', () => {
    for (const z of [-3, -1.5, 0, 0.7, 2.4]) expect(normalQuantile(normalCdf(z))).toBeCloseTo(z, 5);
  });
});

describe('wilson', () => {
  /** The interval as the roots of (p̂ − p)² = z²·p(1 − p)/n: an independent computation. */
  function roots(x: number, n: number, z = 1.959963984540054) {
    const p = x / n;
    const a = 1 + (z * z) / n;
    const b = -(2 * p + (z * z) / n);
    const c = p * p;
    const d = Math.sqrt(b * b - 4 * a * c);
    return { lower: (-b - d) / (2 * a), upper: (-b + d) / (2 * a) };
  }

  it.each([
    [81, 263],
    [0, 10],
    [10, 10],
    [1, 2],
    [950, 1000],
  ])('matches the quadratic roots for %i of %i', (x, n) => {
    const interval = wilson(x, n)!;
    const want = roots(x, n);
    expect(interval.lower).toBeCloseTo(Math.max(0, want.lower), 12);
    expect(interval.upper).toBeCloseTo(Math.min(1, want.upper), 12);
  });

  it('is null without trials', () => {
    expect(wilson(0, 0)).toBeNull();
  });
});

describe('costPerSuccess', () => {
  it('matches the influence-function variance computed task by task', () => {
    const random = seeded(3);
    const costs: number[] = [];
    const successes: number[] = [];
    for (let i = 0; i < 500; i++) {
      costs.push(0.001 + random() * 0.004 + (random() < 0.1 ? 0.02 : 0));
      successes.push(random() < 0.85 ? 1 : 0);
    }
    const sums = {
      tasks: costs.length,
      successes: successes.reduce((a, b) => a + b, 0),
      cost: costs.reduce((a, b) => a + b, 0),
      costSquared: costs.reduce((a, c) => a + c * c, 0),
      successCost: costs.reduce((a, c, i) => a + c * successes[i]!, 0),
    };
    const result = costPerSuccess(sums)!;
    const r = sums.cost / sums.successes;
    const meanSuccess = sums.successes / sums.tasks;
    // ψᵢ = (cᵢ − R·sᵢ) / s̄; Var(R) ≈ mean(ψ²) / n.
    const psi2 =
      costs.reduce((a, c, i) => a + ((c - r * successes[i]!) / meanSuccess) ** 2, 0) / sums.tasks;
    const half = 1.959963984540054 * Math.sqrt(psi2 / sums.tasks);
    expect(result.value).toBeCloseTo(r, 15);
    expect(result.interval!.lower).toBeCloseTo(r - half, 12);
    expect(result.interval!.upper).toBeCloseTo(r + half, 12);
  });

  it('is null without a success', () => {
    expect(
      costPerSuccess({ tasks: 3, successes: 0, cost: 1, costSquared: 1, successCost: 0 }),
    ).toBeNull();
  });
});

describe('twoProportionZ', () => {
  it('is positive when the first proportion is larger, and null when undefined', () => {
    expect(twoProportionZ(30, 100, 10, 100)).toBeCloseTo(
      (0.3 - 0.1) / Math.sqrt(0.2 * 0.8 * (2 / 100)),
      12,
    );
    expect(twoProportionZ(0, 10, 0, 10)).toBeNull();
    expect(twoProportionZ(1, 0, 1, 10)).toBeNull();
  });
});

describe('bernoulliCusum', () => {
  const llr = (n: number, x: number, p0: number, p1: number) =>
    x * Math.log(p1 / p0) + (n - x) * Math.log((1 - p1) / (1 - p0));

  it('finds the window ending now with the largest log-likelihood ratio (brute force)', () => {
    const random = seeded(11);
    for (let round = 0; round < 50; round++) {
      const buckets = Array.from({ length: 24 }, () => {
        const n = Math.floor(random() * 40);
        const p = round % 2 === 0 ? 0.05 : random() < 0.5 ? 0.05 : 0.2;
        let x = 0;
        for (let i = 0; i < n; i++) if (random() < p) x++;
        return { n, x };
      });
      const minN = 30;
      let best: { statistic: number; start: number } | null = null;
      for (let start = 0; start < buckets.length; start++) {
        const window = buckets.slice(start);
        const n = window.reduce((a, b) => a + b.n, 0);
        const x = window.reduce((a, b) => a + b.x, 0);
        if (n < minN) continue;
        const value = llr(n, x, 0.05, 0.1);
        if (!best || value > best.statistic + 1e-12) best = { statistic: value, start };
      }
      const got = bernoulliCusum(buckets, 0.05, 0.1, minN);
      if (!best) expect(got).toBeNull();
      else expect(got!.statistic).toBeCloseTo(best.statistic, 9);
    }
  });

  it('finds the recovery window: the strongest evidence for p0 after the alarm window (brute force)', () => {
    const random = seeded(13);
    let recoveries = 0;
    for (let round = 0; round < 200; round++) {
      // A rise in some early buckets, then the rate of p0 or a rate between.
      const until = Math.floor(random() * 24);
      const after = round % 3 === 0 ? 0.08 : 0.05;
      const buckets = Array.from({ length: 24 }, (_, i) => {
        const n = Math.floor(random() * 80);
        const p = i < until ? 0.2 : after;
        let x = 0;
        for (let t = 0; t < n; t++) if (random() < p) x++;
        return { n, x };
      });
      const minN = 40;
      const reference = round % 2 === 0 ? Infinity : 2_000;
      const got = bernoulliCusum(buckets, 0.05, 0.1, minN, reference);
      if (!got) continue;
      let best: { statistic: number; start: number } | null = null;
      // Latest start first: a tie (an empty bucket) goes to the shorter window, as in the CUSUM.
      for (let start = buckets.length - 1; start > got.start; start--) {
        const window = buckets.slice(start);
        const n = window.reduce((a, b) => a + b.n, 0);
        const x = window.reduce((a, b) => a + b.x, 0);
        if (n < minN) continue;
        const value = -llr(n, x, 0.05, 0.1) / (1 + n / reference);
        if (!best || value > best.statistic + 1e-12) best = { statistic: value, start };
      }
      if (!best) expect(got.recovery).toBeNull();
      else {
        recoveries++;
        expect(got.recovery!.statistic).toBeCloseTo(best.statistic, 9);
        expect(got.recovery!.start).toBe(best.start);
        expect(got.recovery!.start).toBeGreaterThan(got.start);
        // Its relapse: the largest ratio of a window starting inside it.
        let relapse = -Infinity;
        for (let start = best.start; start < buckets.length; start++) {
          const window = buckets.slice(start);
          const n = window.reduce((a, b) => a + b.n, 0);
          const x = window.reduce((a, b) => a + b.x, 0);
          if (n >= minN) relapse = Math.max(relapse, llr(n, x, 0.05, 0.1) / (1 + n / reference));
        }
        expect(got.recovery!.relapse).toBeCloseTo(relapse, 9);
      }
    }
    expect(recoveries).toBeGreaterThan(50);
  });

  it('is null below the minimum sample, whatever the events', () => {
    expect(
      bernoulliCusum(
        [
          { n: 20, x: 20 },
          { n: 20, x: 20 },
        ],
        0.05,
        0.1,
        50,
      ),
    ).toBeNull();
  });

  it('alarms about as rarely as the threshold promises on unchanged streams', () => {
    // ARL₀ = 5 000 observations, streams of 500: expect about 500 / 5 000 = 10 % to alarm.
    const p0 = 0.05;
    const p1 = 0.1;
    const h = cusumThreshold(5_000, bernoulliKl(p0, p1));
    const random = seeded(7);
    let alarms = 0;
    const streams = 2_000;
    for (let s = 0; s < streams; s++) {
      let statistic = 0;
      for (let i = 0; i < 500; i++) {
        const event = random() < p0;
        statistic = Math.max(
          0,
          statistic + (event ? Math.log(p1 / p0) : Math.log((1 - p1) / (1 - p0))),
        );
        if (statistic >= h) {
          alarms++;
          break;
        }
      }
    }
    expect(alarms / streams).toBeLessThan(0.15);
    expect(alarms / streams).toBeGreaterThan(0.02);
  });
});

describe('referenceDiscount', () => {
  it('is 1 with an infinite reference, 2 for a window as large as the reference', () => {
    expect(referenceDiscount(1_000, Infinity)).toBe(1);
    expect(referenceDiscount(500, 500)).toBe(2);
    expect(referenceDiscount(100, 10_000)).toBeCloseTo(1.01, 12);
  });

  it('leaves no evidence without a reference', () => {
    expect(referenceDiscount(100, 0)).toBe(Infinity);
  });
});

describe('CUSUM against an estimated reference', () => {
  const p0 = 0.05;
  const p1 = 0.1;
  const llr = (n: number, x: number) =>
    x * Math.log(p1 / p0) + (n - x) * Math.log((1 - p1) / (1 - p0));

  it('halves the statistic of a window as large as the reference', () => {
    // A steady 10 %: every bucket adds evidence, so the best window is the whole series either way.
    const buckets = Array.from({ length: 10 }, () => ({ n: 50, x: 5 }));
    const plain = bernoulliCusum(buckets, p0, p1, 100)!;
    const halved = bernoulliCusum(buckets, p0, p1, 100, 500)!;
    expect(plain.start).toBe(0);
    expect(halved.start).toBe(0);
    expect(plain.statistic).toBeCloseTo(llr(500, 50), 9);
    expect(halved.statistic).toBeCloseTo(plain.statistic / 2, 9);
    expect(bernoulliCusum(buckets, p0, p1, 100, Infinity)).toEqual(plain);
  });

  it('picks the window with the largest discounted ratio (brute force)', () => {
    const random = seeded(5);
    for (let round = 0; round < 50; round++) {
      const buckets = Array.from({ length: 24 }, () => {
        const n = Math.floor(random() * 40);
        const p = random() < 0.5 ? 0.05 : 0.12;
        let x = 0;
        for (let i = 0; i < n; i++) if (random() < p) x++;
        return { n, x };
      });
      const reference = 200 + Math.floor(random() * 2_000);
      let best: { statistic: number; start: number } | null = null;
      for (let start = 0; start < buckets.length; start++) {
        const window = buckets.slice(start);
        const n = window.reduce((a, b) => a + b.n, 0);
        const x = window.reduce((a, b) => a + b.x, 0);
        if (n < 30) continue;
        const value = llr(n, x) / (1 + n / reference);
        if (!best || value > best.statistic + 1e-12) best = { statistic: value, start };
      }
      const got = bernoulliCusum(buckets, p0, p1, 30, reference);
      if (!best) expect(got).toBeNull();
      else {
        expect(got!.statistic).toBeCloseTo(best.statistic, 9);
        expect(got!.start).toBe(best.start);
      }
    }
  });

  it('discounts the Gaussian CUSUM the same way', () => {
    const buckets = Array.from({ length: 4 }, () => ({ n: 25, sum: 25 }));
    const plain = gaussianCusum(buckets, 0.5, 1, 1)!;
    // 0.5·(100 − 100·0.25) = 37.5 over the whole series; a reference of 100 tasks halves it.
    expect(plain.statistic).toBeCloseTo(37.5, 12);
    expect(gaussianCusum(buckets, 0.5, 1, 1, 100)!.statistic).toBeCloseTo(18.75, 12);
  });

  it('keeps the promised false-alarm rate when p₀ is estimated; the plug-in does not', () => {
    // Each stream: p₀ estimated from 1 000 trials of the true 2 %, then 20 buckets of 50 trials
    // of the same 2 %, tested after every bucket for a rise to p̂₀ + 3 %. A plug-in p̂₀ that sits
    // low by chance alarms far more often than a known p₀; the discounted one about as often.
    const truth = 0.02;
    const reference = 1_000;
    const random = seeded(3);
    const alarms = { known: 0, plugIn: 0, discounted: 0 };
    const streams = 1_500;
    for (let s = 0; s < streams; s++) {
      let events = 0;
      for (let i = 0; i < reference; i++) if (random() < truth) events++;
      const estimate = (events + 0.5) / (reference + 1);
      const buckets: { n: number; x: number }[] = [];
      const fired = { known: false, plugIn: false, discounted: false };
      const test = (name: keyof typeof fired, base: number, trials: number) => {
        const h = cusumThreshold(10_000, bernoulliKl(base, base + 0.03));
        const result = bernoulliCusum(buckets, base, base + 0.03, 100, trials);
        if (result && result.statistic >= h) fired[name] = true;
      };
      for (let b = 0; b < 20; b++) {
        let x = 0;
        for (let i = 0; i < 50; i++) if (random() < truth) x++;
        buckets.push({ n: 50, x });
        test('known', truth, Infinity);
        test('plugIn', estimate, Infinity);
        test('discounted', estimate, reference);
      }
      for (const name of ['known', 'plugIn', 'discounted'] as const)
        if (fired[name]) alarms[name]++;
    }
    expect(alarms.known).toBeGreaterThan(10);
    expect(alarms.plugIn).toBeGreaterThan(1.8 * alarms.known);
    expect(alarms.discounted).toBeLessThan(1.3 * alarms.known);
  });
});

describe('gaussianCusum', () => {
  it('accumulates (shift/σ²)·(z − shift/2) over the best window ending now', () => {
    const buckets = [
      { n: 10, sum: 0 },
      { n: 10, sum: 5 },
      { n: 10, sum: 5 },
    ];
    const result = gaussianCusum(buckets, 0.5, 1, 1)!;
    // Last two buckets: 0.5·(10 − 20·0.25) = 2.5; all three: 0.5·(10 − 30·0.25) = 1.25.
    expect(result.statistic).toBeCloseTo(2.5, 12);
    expect(result.start).toBe(1);
  });
});

describe('cusumThreshold', () => {
  it('solves Siegmund’s approximation for the threshold', () => {
    const drift = bernoulliKl(0.05, 0.1);
    const h = cusumThreshold(100_000, drift);
    expect(Math.exp(h) - h - 1).toBeCloseTo(100_000 * drift, 3);
  });

  it('grows with the run length asked for', () => {
    expect(cusumThreshold(1e6, 0.02)).toBeGreaterThan(cusumThreshold(1e4, 0.02));
  });
});
