import { describe, expect, it } from 'vitest';
import { adviseCohort, DEFAULT_ADVICE } from '../../analyzer/advice.js';
import type { AdviceReport } from '../../analyzer/advice.js';
import {
  compareCohort,
  compareConcurrent,
  DEFAULT_GATE,
  EMPTY_SIDE,
  GateRefError,
  overallVerdict,
  overlapOf,
  parseRef,
  matched,
  settleFamily,
  sharedHours,
  newcombe,
  successDifference,
} from '../../analyzer/gate.js';
import { costPerSuccess, normalQuantile } from '../../analyzer/stats.js';
import { seeded } from '../support/tasks.js';
import type { GateResult, SideStats } from '../../analyzer/gate.js';
import { renderAdvice, renderGateMarkdown, renderGateTable } from '../../analyzer/gate-table.js';

/** A side with `known` tasks, `successes` of them successful, each costing `cost`. */
function side(
  known: number,
  successes: number,
  options: { cost?: number; fallbacks?: number; tasks?: number; unpriced?: number } = {},
): SideStats {
  const cost = options.cost ?? 0.001;
  const tasks = options.tasks ?? known;
  return {
    tasks,
    known,
    successes,
    cost: cost * tasks,
    costSquared: cost * cost * tasks,
    successCost: cost * successes,
    knownCost: cost * known,
    knownCostSquared: cost * cost * known,
    fallbacks: options.fallbacks ?? 0,
    reasks: 0,
    modelCalls: tasks,
    unpricedCalls: options.unpriced ?? 0,
    p95LatencyMs: 800,
    scores: {},
  };
}

/** Hourly strata from the first hour on: `[known, successes]` each, every task costing `cost`. */
const costed = (cost: number, ...counts: [number, number][]) =>
  new Map(
    counts.map(([known, successes], i) => [
      i * 3_600_000,
      {
        known,
        successes,
        cost: { sum: cost * known, squares: cost * cost * known, successes: cost * successes },
      },
    ]),
  );

describe('parseRef', () => {
  it('reads the three kinds of reference', () => {
    expect(parseRef('eval:pr-123')).toEqual({ kind: 'eval', run: 'pr-123' });
    expect(parseRef('policy:small-first@2')).toEqual({ kind: 'policy', version: 'small-first@2' });
    expect(parseRef('window:2026-11-01/2026-11-08')).toEqual({
      kind: 'window',
      from: new Date('2026-11-01T00:00:00Z'),
      to: new Date('2026-11-08T00:00:00Z'),
    });
  });

  it('reads the ends of a window as durations before now', () => {
    const now = new Date('2026-12-02T12:00:00Z');
    expect(parseRef('window:14d/7d', now)).toEqual({
      kind: 'window',
      from: new Date('2026-11-18T12:00:00Z'),
      to: new Date('2026-11-25T12:00:00Z'),
    });
    expect(parseRef('window:2h/0s', now)).toMatchObject({ to: now });
    // A bare 0 is a duration too, as everywhere else a duration is read.
    expect(parseRef('window:7d/0', now)).toEqual({
      kind: 'window',
      from: new Date('2026-11-25T12:00:00Z'),
      to: now,
    });
  });

  it.each([
    ['v1', /invalid reference "v1": use eval:<run>/],
    ['eval:', /invalid reference/],
    ['canary:v2', /invalid reference "canary:v2"/],
    ['window:2026-11-08', /invalid window/],
    ['window:2026-11-08/2026-11-01', /from must be before to/],
    ['window:soon/2026-11-01', /invalid window "soon\/2026-11-01"/],
    [
      'window:9999999w/0s',
      /falls outside the time routewatch can store \(1970-01-01 to 2262-04-11\)/,
    ],
    ['window:100000d/0s', /falls outside the time routewatch can store/],
  ])('refuses %s with a message that says what to write', (text, message) => {
    expect(() => parseRef(text)).toThrow(GateRefError);
    expect(() => parseRef(text)).toThrow(message);
  });
});

/**
 * Newcombe's method 10 written out independently: Wilson score limits solved as the roots of
 * the quadratic (p̂ − p)² = z² p (1 − p) / n, then combined as in Newcombe (1998).
 */
function independentNewcombe(
  x1: number,
  n1: number,
  x2: number,
  n2: number,
  z = 1.959963984540054,
) {
  const limits = (x: number, n: number) => {
    // (n + z²) p² − (2x + z²) p + x²/n = 0
    const a = n + z * z;
    const b = -(2 * x + z * z);
    const c = (x * x) / n;
    const root = Math.sqrt(b * b - 4 * a * c);
    return [(-b - root) / (2 * a), (-b + root) / (2 * a)] as const;
  };
  const p1 = x1 / n1;
  const p2 = x2 / n2;
  const [l1, u1] = limits(x1, n1);
  const [l2, u2] = limits(x2, n2);
  const d = p1 - p2;
  return {
    estimate: d,
    lower: d - Math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
    upper: d + Math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2),
  };
}

/** The standard normal's upper tail from erf's Maclaurin series (exact enough for |z| < 6). */
function upperTail(z: number): number {
  const x = z / Math.SQRT2;
  let term = x;
  let erf = x;
  for (let n = 1; n < 200; n++) {
    term *= (-x * x) / n;
    erf += term / (2 * n + 1);
  }
  erf *= 2 / Math.sqrt(Math.PI);
  return (1 - erf) / 2;
}

/**
 * The one-sided p-value of H₀: p_c − p_b ≤ −margin, as the level of the Newcombe bound that
 * reaches −margin, by bisection on the independent interval.
 */
function independentPValue(xb: number, nb: number, xc: number, nc: number, margin: number) {
  // Above −margin: the level where the lower bound reaches it; below: where the upper bound does.
  const above = xc / nc - xb / nb > -margin;
  let low = 0;
  let high = 40;
  for (let i = 0; i < 200; i++) {
    const mid = (low + high) / 2;
    const interval = independentNewcombe(xc, nc, xb, nb, mid);
    if (above ? interval.lower <= -margin : interval.upper >= -margin) high = mid;
    else low = mid;
  }
  const tail = upperTail((low + high) / 2);
  return above ? tail : 1 - tail;
}

describe('successDifference: the margin test', () => {
  it("matches Newcombe's (1998) published example: 56/70 − 48/80 = 0.2000 (0.0524, 0.3339)", () => {
    const d = successDifference({ successes: 48, known: 80 }, { successes: 56, known: 70 }, 0.02)!;
    expect(d.estimate).toBeCloseTo(0.2, 12);
    expect(d.interval.lower).toBeCloseTo(0.0524, 4);
    expect(d.interval.upper).toBeCloseTo(0.3339, 4);
  });

  it.each([
    [900, 1000, 880, 1000],
    [552, 600, 480, 600],
    [40, 50, 199, 200],
    [1000, 1000, 990, 1000],
    [3, 400, 9, 400],
  ])('agrees with an independent computation for %i/%i against %i/%i', (xb, nb, xc, nc) => {
    const d = successDifference({ successes: xb, known: nb }, { successes: xc, known: nc }, 0.02)!;
    const want = independentNewcombe(xc, nc, xb, nb);
    expect(d.estimate).toBeCloseTo(want.estimate, 12);
    expect(d.interval.lower).toBeCloseTo(want.lower, 9);
    expect(d.interval.upper).toBeCloseTo(want.upper, 9);
    // The erfc approximation is good to 1.2e-7.
    expect(d.pValue).toBeCloseTo(independentPValue(xb, nb, xc, nc, 0.02), 6);
    // The p-value and the interval agree: at the level 1 − p (p for an estimate beyond the
    // margin), the one-sided bound is −margin.
    const above = d.estimate > -0.02;
    const at = newcombe(
      { successes: xb, known: nb },
      { successes: xc, known: nc },
      normalQuantile(above ? 1 - d.pValue : d.pValue),
    )!;
    expect(above ? at.lower : at.upper).toBeCloseTo(-0.02, 6);
  });

  it('keeps its p-value honest at 100 %: 300/300 against 300/300 is no proof of a 0.5-point margin', () => {
    // Both Wilson intervals touch 1, so the lower bound is −z²/(n + z²): it reaches −m at
    // z² = m·n/(1 − m). The Wald standard error is 0 there, and gave a p-value of 0.
    const d = successDifference(
      { successes: 300, known: 300 },
      { successes: 300, known: 300 },
      0.005,
    )!;
    const z = Math.sqrt((0.005 * 300) / (1 - 0.005));
    expect(d.pValue).toBeCloseTo(upperTail(z), 6);
    expect(d.pValue).toBeGreaterThan(0.1);
  });

  it('gives a p-value over one half for an estimate beyond the margin, and one half at it', () => {
    expect(
      successDifference({ successes: 900, known: 1000 }, { successes: 850, known: 1000 }, 0.02)!
        .pValue,
    ).toBeGreaterThan(0.9);
    expect(
      successDifference({ successes: 900, known: 1000 }, { successes: 880, known: 1000 }, 0.02)!
        .pValue,
    ).toBe(0.5);
    // A baseline at 0.1 % can hardly drop by 2 points.
    expect(
      successDifference({ successes: 1, known: 1000 }, { successes: 1, known: 1000 }, 0.02)!.pValue,
    ).toBeLessThan(1e-4);
  });

  it('has no answer without a case on either side', () => {
    expect(successDifference({ successes: 0, known: 0 }, { successes: 5, known: 10 }, 0.02)).toBe(
      null,
    );
  });
});

describe('compareCohort', () => {
  it('fails a clear regression, with the numbers in its reason', () => {
    const c = compareCohort('faq', side(1000, 920), side(1000, 850), DEFAULT_GATE);
    expect(c.verdict).toBe('fail');
    expect(c.reason).toMatch(
      /^success rate -7\.0 pts \(95 % CI -9\.\d pts to -4\.\d pts\), a larger drop than the 2\.0 pts allowed$/,
    );
  });

  it('passes an equal candidate, and one within the margin', () => {
    expect(compareCohort('faq', side(1000, 920), side(1000, 920), DEFAULT_GATE).verdict).toBe(
      'pass',
    );
    expect(compareCohort('faq', side(1000, 920), side(1000, 905), DEFAULT_GATE).verdict).toBe(
      'pass',
    );
  });

  it('passes a drop of exactly the margin, which floating point puts a hair above it', () => {
    // 222/250 − 217/250 = 0.020000000000000018 in doubles.
    expect(compareCohort('faq', side(250, 222), side(250, 217), DEFAULT_GATE).verdict).toBe('pass');
    // A hair beyond it is beyond the margin, but a 2.4-point drop on 250 cases is not beyond chance.
    expect(compareCohort('faq', side(250, 222), side(250, 216), DEFAULT_GATE).verdict).toBe(
      'insufficient_data',
    );
  });

  it('fails a drop beyond the margin only when it is beyond chance too, else says how many more cases would tell', () => {
    // 90 % → 87 % on 200 cases a side: one-sided p of "no drop" about 0.17.
    const noise = compareCohort('faq', side(200, 180), side(200, 174), DEFAULT_GATE);
    expect(noise.verdict).toBe('insufficient_data');
    expect(noise.successChange.dropPValue).toBeGreaterThan(0.1);
    expect(noise.reason).toMatch(
      /^success rate -3\.0 pts \(95 % CI -9\.\d pts to 3\.\d pts\), a larger drop than the 2\.0 pts allowed on the estimate, but not beyond chance \(one-sided p 0\.1\d, above 0\.05\): about \d+ more cases per side would tell a drop this large$/,
    );
    // The same drop on 2 000 cases a side is.
    const real = compareCohort('faq', side(2000, 1800), side(2000, 1740), DEFAULT_GATE);
    expect(real.verdict).toBe('fail');
    expect(real.successChange.dropPValue).toBeLessThan(0.01);
  });

  it('answers insufficient_data below the minimum on either side, with how many more', () => {
    const c = compareCohort('faq', side(1000, 920), side(150, 133), DEFAULT_GATE);
    expect(c.verdict).toBe('insufficient_data');
    expect(c.reason).toBe(
      '150 cases with an outcome on the smaller side, fewer than 200: 50 more needed',
    );
  });

  it('weighs a canary hour by hour: the pooled comparison with one hour or the same share every hour, not with a ramp', () => {
    const hours = (...counts: [number, number][]) =>
      new Map(counts.map(([known, successes], i) => [i * 3_600_000, { known, successes }]));
    // One hour: the pooled counts.
    const one = matched(hours([300, 270]), hours([250, 220]))!;
    expect([one.baseline.known, one.baseline.successes]).toEqual([
      expect.closeTo(300, 9),
      expect.closeTo(270, 9),
    ]);
    expect([one.candidate.known, one.candidate.successes]).toEqual([
      expect.closeTo(250, 9),
      expect.closeTo(220, 9),
    ]);
    // The same share every hour: the pooled rates.
    const same = matched(hours([200, 190], [200, 160]), hours([100, 95], [100, 80]))!;
    expect(same.baseline.successes / same.baseline.known).toBeCloseTo(350 / 400, 12);
    expect(same.candidate.successes / same.candidate.known).toBeCloseTo(175 / 200, 12);
    // A ramp into a good hour: 5 points worse in each hour, better pooled; and an hour only one
    // side has outcomes in weighs nothing.
    const ramp = matched(
      hours([300, 240], [300, 285], [50, 50]),
      hours([40, 30], [300, 270], [0, 0]),
    )!;
    const c = compareCohort('ramp', side(650, 575), side(340, 300), DEFAULT_GATE, ramp);
    expect(c.successChange.estimate).toBeCloseTo(-0.05, 12);
    expect(c.successChange.matchedBy).toBe('hour');
    expect(compareCohort('ramp', side(650, 575), side(340, 300), DEFAULT_GATE).verdict).toBe(
      'pass',
    );
    expect(matched(hours([10, 9]), new Map())).toBeNull();
  });

  it('weighs the cost per success over the same hours as the success rate: a canary with the opposite hour mix costs the same', () => {
    // Every task $0.001; hour A 95 % on both versions, hour B 70 % on both; the baseline ran
    // 900/100 tasks in A/B, the candidate 100/900 (audit 47, #4). Pooled, the candidate costs 27 %
    // more per success for hour B's failures alone.
    const b = side(1000, 925);
    const c = side(1000, 725);
    const pooled = compareCohort('ramp', b, c, DEFAULT_GATE);
    expect(pooled.costPerSuccessfulTask.relativeChange).toBeCloseTo(925 / 725 - 1, 12);
    expect(pooled.costPerSuccessfulTask.matched).toBeNull();
    const byHour = matched(
      costed(0.001, [900, 855], [100, 70]),
      costed(0.001, [100, 95], [900, 630]),
    )!;
    const weighed = compareCohort('ramp', b, c, DEFAULT_GATE, byHour);
    expect(weighed.verdict).toBe('pass');
    expect(weighed.costPerSuccessfulTask.relativeChange).toBeCloseTo(0, 12);
    // Each side's own figure stays what it paid per success, pooled.
    expect(weighed.costPerSuccessfulTask.candidate.value).toBeCloseTo(1 / 725, 12);
    expect(weighed.costPerSuccessfulTask.matched?.by).toBe('hour');
    const gate = (cohort: GateResult['cohorts'][number]): GateResult => ({
      baseline: 'policy:old',
      candidate: 'policy:new',
      canary: true,
      notCovered: [],
      empty: null,
      options: DEFAULT_GATE,
      verdict: cohort.verdict,
      cohorts: [cohort],
    });
    // The hours without their costs (as before): the success verdict matched, the cost pooled.
    const strip = (hours: ReadonlyMap<number, { known: number; successes: number }>) =>
      new Map([...hours].map(([h, { known, successes }]) => [h, { known, successes }]));
    const successOnly = compareCohort(
      'ramp',
      b,
      c,
      DEFAULT_GATE,
      matched(
        strip(costed(0.001, [900, 855], [100, 70])),
        strip(costed(0.001, [100, 95], [900, 630])),
      )!,
    );
    expect(successOnly.verdict).toBe('pass');
    expect(renderGateTable(gate({ ...successOnly, concurrent: null }))).toMatch(
      /may cost more — ramp: cost per success \+28 % \(\$0\.00108 → \$0\.00138, the intervals apart\)/,
    );
    expect(renderGateTable(gate({ ...weighed, concurrent: null }))).not.toMatch(/may cost more/);
    // One hour, with costs that vary and move with success: the pooled figure, and its interval
    // (costPerSuccess's) but for the degree of freedom the stratum spends, √(n / (n − 1)) wider.
    // 400 tasks: 200 successes at $0.002, 180 at $0.003, 20 failures at $0.005.
    const varied = {
      known: 400,
      successes: 380,
      cost: { sum: 1.04, squares: 0.00292, successes: 0.94 },
    };
    const one = matched(new Map([[0, varied]]), costed(0.001, [300, 270]))!;
    const pooledCost = costPerSuccess({
      tasks: 400,
      successes: 380,
      cost: 1.04,
      costSquared: 0.00292,
      successCost: 0.94,
    })!;
    expect(one.cost!.baseline.value).toBeCloseTo(pooledCost.value, 15);
    const half = (i: { lower: number; upper: number }) => (i.upper - i.lower) / 2;
    expect(half(one.cost!.baseline.interval!) / half(pooledCost.interval!)).toBeCloseTo(
      Math.sqrt(400 / 399),
      12,
    );
    // A candidate 40 % dearer per task in every hour still warns, saying how it was weighed.
    const dearer = compareCohort(
      'ramp',
      b,
      side(1000, 725, { cost: 0.0014 }),
      DEFAULT_GATE,
      matched(costed(0.001, [900, 855], [100, 70]), costed(0.0014, [100, 95], [900, 630]))!,
    );
    expect(dearer.costPerSuccessfulTask.relativeChange).toBeCloseTo(0.4, 12);
    expect(renderGateTable(gate({ ...dearer, concurrent: null }))).toMatch(
      /may cost more — ramp: cost per success \+40 % \(\$0\.00121 → \$0\.00170, weighed hour by hour, the intervals apart\)/,
    );
    // Hours read without their costs (an older caller): the pooled comparison, as before.
    const uncosted = matched(
      new Map([[0, { known: 900, successes: 855 }]]),
      new Map([[0, { known: 100, successes: 95 }]]),
    )!;
    expect(uncosted.cost).toBeUndefined();
    // A side with no success in the hours both served: nothing to weigh its cost by, pooled.
    const none = matched(costed(0.001, [300, 0]), costed(0.001, [300, 270]))!;
    expect(none.cost!.baseline.value).toBeNull();
    const pooledAgain = compareCohort('ramp', b, c, DEFAULT_GATE, none).costPerSuccessfulTask;
    expect(pooledAgain.matched).toBeNull();
    expect(pooledAgain.relativeChange).toBeCloseTo(925 / 725 - 1, 12);
    expect(
      compareCohort('ramp', b, c, DEFAULT_GATE, uncosted).costPerSuccessfulTask.matched,
    ).toBeNull();
  });

  it('keeps the weighed cost interval honest on thin hours: it holds the truth as often as the pooled one', () => {
    // Two identical versions, 90 % success, costs log-normal (σ = 1.2) whatever the outcome: the
    // baseline 18 tasks an hour, the candidate 2, over 110 hours; 400 runs. Equal shares in every
    // hour, so the weighed figure is the pooled one, and its interval should hold the truth as
    // often as costPerSuccess's over the candidate's 220 tasks. Each hour's own plug-in variance
    // held it 81 % of the time against the pooled 91 %, and "the intervals apart" warned on noise.
    const random = seeded(48);
    const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    const hour = (n: number) => {
      const stratum = { known: n, successes: 0, cost: { sum: 0, squares: 0, successes: 0 } };
      for (let i = 0; i < n; i++) {
        const cost = 0.001 * Math.exp(1.2 * normal());
        const success = random() < 0.9;
        stratum.cost.sum += cost;
        stratum.cost.squares += cost * cost;
        if (success) {
          stratum.successes += 1;
          stratum.cost.successes += cost;
        }
      }
      return stratum;
    };
    const truth = (0.001 * Math.exp(1.2 ** 2 / 2)) / 0.9;
    const holds = (i: { lower: number; upper: number }) => i.lower <= truth && truth <= i.upper;
    let held = 0;
    let heldPooled = 0;
    let apart = 0;
    let apartPooled = 0;
    const runs = 400;
    const hours = Array.from({ length: 110 }, (_, h) => h * 3_600_000);
    for (let run = 0; run < runs; run++) {
      const candidate = new Map(hours.map((h) => [h, hour(2)]));
      const m = matched(new Map(hours.map((h) => [h, hour(18)])), candidate)!;
      const c = m.cost!.candidate.interval!;
      const b = m.cost!.baseline.interval!;
      if (holds(c)) held++;
      if (c.lower > b.upper) apart++;
      const all = [...candidate.values()];
      const total = (f: (s: (typeof all)[number]) => number) => all.reduce((t, s) => t + f(s), 0);
      const pooled = costPerSuccess({
        tasks: total((s) => s.known),
        successes: total((s) => s.successes),
        cost: total((s) => s.cost.sum),
        costSquared: total((s) => s.cost.squares),
        successCost: total((s) => s.cost.successes),
      })!;
      if (holds(pooled.interval!)) heldPooled++;
      if (pooled.interval!.lower > b.upper) apartPooled++;
    }
    expect(held / runs).toBeGreaterThan(heldPooled / runs - 0.03);
    expect(held / runs).toBeGreaterThan(0.85);
    // The candidate read as dearer, the intervals apart, no more often than pooled: 0 and 0 here.
    expect(apart).toBeLessThanOrEqual(apartPooled + 2);
    // An hour of one task each holds nothing on its spread: no interval, no warning drawn from it.
    const lone = matched(costed(0.001, [1, 1], [1, 1]), costed(0.002, [1, 1], [1, 0]))!;
    expect(lone.cost!.baseline.interval).toBeNull();
  });

  it('says how many more cases strict mode needs, and that many do clear the margin at the same rates', () => {
    const strict = { ...DEFAULT_GATE, confidence: 0.95 };
    for (const n of [300, 1000]) {
      const c = compareCohort('faq', side(n, 0.93 * n), side(n, 0.92 * n), strict);
      expect(c.verdict).toBe('insufficient_data');
      const more = Number(/about (\d+) more on the smaller side/.exec(c.reason)?.[1]);
      expect(more).toBeGreaterThan(0);
      const at = (m: number) =>
        compareCohort('faq', side(m, 0.93 * m), side(m, 0.92 * m), strict).verdict;
      expect(at(n + more)).toBe('pass');
      expect(at(n + Math.round(more * 0.9))).toBe('insufficient_data');
    }
    // At the margin itself no number of cases would do.
    expect(compareCohort('faq', side(500, 465), side(500, 455), strict).reason).toMatch(
      /more cases needed \(at this estimate, many times as many\)$/,
    );
  });

  it('fails an unchanged policy with 20 cohorts at most one time in 20, where each cohort alone fails it often', () => {
    // Every cohort at 90 % on both sides, 200 cases a side, 200 gates: before, a drop beyond 2
    // points on the estimate failed a cohort about one time in four, so nearly every gate.
    const random = seeded(11);
    const draw = (n: number) => {
      let successes = 0;
      for (let i = 0; i < n; i++) if (random() < 0.9) successes++;
      return side(n, successes);
    };
    let failedGates = 0;
    let beyondOnEstimate = 0;
    for (let gate = 0; gate < 200; gate++) {
      const cohorts = Array.from({ length: 20 }, (_, i) =>
        compareCohort(`c${i}`, draw(200), draw(200), DEFAULT_GATE),
      );
      beyondOnEstimate += cohorts.filter((c) => c.successChange.estimate! < -0.02).length;
      const settled = settleFamily(cohorts, DEFAULT_GATE);
      if (overallVerdict(settled) === 'fail') failedGates++;
      expect(settled.every((c) => c.successChange.familySize === 20)).toBe(true);
    }
    expect(beyondOnEstimate / 4000).toBeGreaterThan(0.15);
    expect(failedGates / 200).toBeLessThanOrEqual(0.08);
  });

  it('keeps a clear drop failing among 20 cohorts, and says why a weaker one no longer does', () => {
    const steady = Array.from({ length: 18 }, (_, i) =>
      compareCohort(`c${i}`, side(400, 360), side(400, 360), DEFAULT_GATE),
    );
    const clear = compareCohort('clear', side(400, 360), side(400, 300), DEFAULT_GATE);
    const weak = compareCohort('weak', side(400, 360), side(400, 344), DEFAULT_GATE);
    expect([clear.verdict, weak.verdict]).toEqual(['fail', 'fail']);
    const settled = settleFamily([...steady, clear, weak], DEFAULT_GATE);
    const by = (name: string) => settled.find((c) => c.cohort === name)!;
    expect(by('clear').verdict).toBe('fail');
    expect(by('weak').verdict).toBe('insufficient_data');
    expect(by('weak').reason).toMatch(
      /^success rate -4\.0 pts .*, a larger drop than the 2\.0 pts allowed on the estimate, but not beyond chance \(one-sided p 0\.041, Holm-adjusted 0\.78 among the 20 cohorts that could fail, above 0\.05\): about \d+ more cases per side would tell a drop this large$/,
    );
    expect(overallVerdict(settled)).toBe('fail');
  });

  it('leaves cohorts no result could fail out of the family (Tarone), so they do not dilute a real drop', () => {
    // A 3-point drop at 1 000 cases a side, beside 40 cohorts of 1 or 2 cases: none of those
    // could fail whatever their outcomes, and the drop stands as it would alone.
    const drop = compareCohort('real', side(1000, 900), side(1000, 870), DEFAULT_GATE);
    const tiny = Array.from({ length: 40 }, (_, i) =>
      compareCohort(`t${i}`, side(2, 2), side(1, 0), DEFAULT_GATE),
    );
    const settled = settleFamily([drop, ...tiny], DEFAULT_GATE);
    expect(settled[0]!.verdict).toBe('fail');
    // Tarone's m: the smallest m with at most m cohorts able to reach 0.05 / m.
    expect(settled[0]!.successChange.familySize).toBe(2);
    // Counted as 41, the drop would need p ≤ 0.05 / 41.
    expect(settled[0]!.successChange.dropPValue!).toBeGreaterThan(0.05 / 41);
  });

  it('says so when a drop meets its own level but waits on a weaker one ranked before it', () => {
    // Holm's method stops at the first p above its level: one cohort at p ≈ 0.03 (level 0.025),
    // then one at p ≈ 0.04 whose own level (0.05) it meets.
    const first = compareCohort('a', side(400, 360), side(400, 343), DEFAULT_GATE);
    const second = compareCohort('b', side(400, 360), side(400, 344), DEFAULT_GATE);
    const [a, b] = settleFamily([first, second], DEFAULT_GATE);
    expect(a!.successChange.dropPValue!).toBeGreaterThan(0.025);
    expect(b!.successChange.dropPValue!).toBeLessThan(0.05);
    expect([a!.verdict, b!.verdict]).toEqual(['insufficient_data', 'insufficient_data']);
    expect(b!.reason).toMatch(
      /Holm-adjusted 0\.0\d+ among the 2 cohorts that could fail, above 0\.05: Holm's method stopped at a cohort ranked before it, by a smaller p-value, whose drop did not stand\)$/,
    );
  });

  it('holds back a canary cohort on its effective cases, not its raw ones, when its drop does not stand', () => {
    // 1 000 tasks a side, but the versions swapped the traffic between two hours: about 39
    // effective cases. A 15-point drop there fails alone (beyond the margin beyond chance on
    // few cases) and not among 4 cohorts; the reason counts the effective cases, as the
    // comparison did (a review saw "about 186 more cases per side", from the raw 1 000).
    const hb = new Map([
      [0, { known: 990, successes: 940 }],
      [1, { known: 10, successes: 10 }],
    ]);
    const hc = new Map([
      [0, { known: 10, successes: 7 }],
      [1, { known: 990, successes: 940 }],
    ]);
    const moved = compareCohort(
      'moved',
      side(1000, 950),
      side(1000, 947),
      DEFAULT_GATE,
      matched(hb, hc, 'hour')!,
    );
    expect(moved.verdict).toBe('fail');
    expect(moved.successChange.cases).toBeCloseTo(39.6, 1);
    const steady = Array.from({ length: 3 }, (_, i) =>
      compareCohort(`c${i}`, side(400, 360), side(400, 352), DEFAULT_GATE),
    );
    const [settled] = settleFamily([moved, ...steady], DEFAULT_GATE);
    expect(settled!.verdict).toBe('insufficient_data');
    expect(settled!.reason).toMatch(
      /^39 effective cases with an outcome on the smaller side, in the hours both served, fewer than 200: 161 more needed \(its drop of 15\.0 pts is beyond the 2\.0 pts allowed on fewer, but not beyond chance among the 4 cohorts that could fail\)/,
    );
  });

  it('judges a matched comparison on its effective cases: a thin overlap is not enough', () => {
    // 100 002 baseline and 200 001 candidate cases, but in the one hour both served, 2 and 1.
    const thin = matched(
      new Map([
        [0, { known: 100_000, successes: 50_000 }],
        [3_600_000, { known: 2, successes: 2 }],
      ]),
      new Map([
        [3_600_000, { known: 1, successes: 1 }],
        [7_200_000, { known: 200_000, successes: 200_000 }],
      ]),
    )!;
    const c = compareCohort(
      'thin',
      side(100_002, 50_002),
      side(200_001, 200_001),
      DEFAULT_GATE,
      thin,
    );
    expect(c.verdict).toBe('insufficient_data');
    expect(c.reason).toMatch(
      /^1 effective cases in the hours both served with outcomes on the smaller side, fewer than 200: 199 more needed/,
    );
  });

  it('fails a collapse below the minimum of cases when even its drop beyond the margin is beyond chance', () => {
    // 96.7 % → 50.0 % on 150 cases a side.
    const c = compareCohort('faq', side(150, 145), side(150, 75), DEFAULT_GATE);
    expect(c.verdict).toBe('fail');
    expect(c.reason).toMatch(
      /^success rate -46\.7 pts \(95 % CI -5\d\.\d pts to -3\d\.\d pts\) on 150 cases with an outcome, fewer than 200, but already a larger drop than the 2\.0 pts allowed beyond chance \(one-sided p < 0\.0001\)$/,
    );
  });

  it('in strict mode passes only once the lower bound clears the margin', () => {
    const strict = { ...DEFAULT_GATE, confidence: 0.95 };
    // Equal at 1 000 cases a side: the 95 % lower bound (−2.0 pts) does not clear −2 pts.
    expect(compareCohort('faq', side(1000, 900), side(1000, 900), strict).verdict).toBe(
      'insufficient_data',
    );
    // Equal at 10 000: it does.
    expect(compareCohort('faq', side(10000, 9000), side(10000, 9000), strict).verdict).toBe('pass');
    // A drop beyond the margin still fails.
    expect(compareCohort('faq', side(1000, 900), side(1000, 850), strict).verdict).toBe('fail');
    // At 100 % on both sides a Wald bound has no width and passed 300 against 300 at a 0.5-point
    // margin (a true 99 % is as likely); Newcombe's one-sided 95 % bound, −z²/(n + z²) = −0.89 pts,
    // does not clear it.
    const tight = { ...strict, maxSuccessDrop: 0.005 };
    const perfect = compareCohort('safety', side(300, 300), side(300, 300), tight);
    expect(perfect.verdict).toBe('insufficient_data');
    expect(perfect.reason).toMatch(
      /95 % lower bound -0\.9 pts does not clear the 0\.5 pts allowed/,
    );
    expect(compareCohort('safety', side(3000, 3000), side(3000, 3000), tight).verdict).toBe('pass');
  });

  it.each([
    // true baseline rate, margin, cases per side: the Wald bound passed 12.8 %, 7.5 % and 5.0 %.
    [0.998, 0.01, 300],
    [0.995, 0.01, 400],
    [0.884, 0.02, 1000],
  ])(
    'in strict mode passes a candidate that truly dropped by the margin about one time in 20 at most (%f, margin %f, %i a side)',
    (pb, margin, n) => {
      // Exact: every pair of outcomes, weighted by its binomial probability.
      const logFactorial = [0];
      for (let k = 1; k <= n; k++) logFactorial.push(logFactorial[k - 1]! + Math.log(k));
      const pmf = (p: number) =>
        Array.from({ length: n + 1 }, (_, k) =>
          Math.exp(
            logFactorial[n]! -
              logFactorial[k]! -
              logFactorial[n - k]! +
              k * Math.log(p) +
              (n - k) * Math.log(1 - p),
          ),
        );
      const base = pmf(pb);
      const cand = pmf(pb - margin);
      const strict = { ...DEFAULT_GATE, maxSuccessDrop: margin, minCases: 1, confidence: 0.95 };
      let passed = 0;
      for (let xb = 0; xb <= n; xb++) {
        if (base[xb]! < 1e-12) continue;
        for (let xc = 0; xc <= n; xc++) {
          if (cand[xc]! < 1e-12) continue;
          if (compareCohort('c', side(n, xb), side(n, xc), strict).verdict === 'pass')
            passed += base[xb]! * cand[xc]!;
        }
      }
      // Its level, 5 %, give or take what discrete counts allow.
      expect(passed).toBeLessThanOrEqual(0.052);
      expect(passed).toBeGreaterThan(0.02);
    },
  );

  it('marks a side with unpriced model calls as a floor, unknown when none was priced, and compares no cost', () => {
    const b = side(400, 360, { cost: 0.01 });
    const some = compareCohort(
      'faq',
      b,
      side(400, 360, { cost: 0.002, unpriced: 100 }),
      DEFAULT_GATE,
    );
    expect(some.costPerSuccessfulTask.understated).toEqual({ baseline: false, candidate: true });
    expect(some.costPerSuccessfulTask.candidate.value).toBeCloseTo(0.002 / 0.9, 12);
    expect(some.costPerSuccessfulTask.relativeChange).toBeNull();
    const none = compareCohort('faq', b, side(400, 360, { cost: 0, unpriced: 400 }), DEFAULT_GATE);
    expect(none.costPerSuccessfulTask.candidate).toEqual({ value: null, interval: null });
    expect(none.costPerSuccessfulTask.relativeChange).toBeNull();
    // The verdict is the success rate's: pricing does not change it.
    expect(none.verdict).toBe(compareCohort('faq', b, side(400, 360), DEFAULT_GATE).verdict);
  });

  it('reports cost per success, its change, and each score with its mean', () => {
    const b = side(400, 360, { cost: 0.01 });
    const c = {
      ...side(400, 360, { cost: 0.002 }),
      scores: { groundedness: { n: 4, sum: 3.2, sumSquared: 2.6 } },
    };
    const out = compareCohort('faq', b, c, DEFAULT_GATE);
    expect(out.costPerSuccessfulTask.relativeChange).toBeCloseTo(-0.8, 12);
    expect(out.scores).toEqual([
      {
        name: 'groundedness',
        baseline: { n: 0, value: null, interval: null },
        candidate: expect.objectContaining({ n: 4, value: 0.8 }),
      },
    ]);
  });

  it('says how many tasks of each side still wait for their outcome, and that they are not judged', () => {
    // 270 of the candidate's failures still in a review queue: on the outcomes so far it passes.
    const c = compareCohort('late', side(600, 540), side(510, 480, { tasks: 600 }), DEFAULT_GATE);
    expect(c.verdict).toBe('pass');
    expect(c.reason).toMatch(
      /within the 2\.0 pts allowed; not judged, their outcome still to come: 90 of the candidate's 600 tasks$/,
    );
    expect(compareCohort('late', side(600, 540), side(600, 540), DEFAULT_GATE).reason).not.toMatch(
      /still to come/,
    );
  });

  it('names a side with no task in the cohort instead of asking for more cases', () => {
    const absent = { ...side(0, 0), tasks: 0, modelCalls: 0 };
    expect(compareCohort('new', side(600, 540), absent, DEFAULT_GATE).reason).toBe(
      'the candidate has no task in this cohort: nothing to compare with',
    );
    expect(compareCohort('new', absent, side(600, 540), DEFAULT_GATE).reason).toBe(
      'the baseline has no task in this cohort: nothing to compare with',
    );
  });

  it('makes the overall verdict fail > insufficient_data > pass', () => {
    const pass = compareCohort('a', side(500, 450), side(500, 450), DEFAULT_GATE);
    const fail = compareCohort('b', side(500, 450), side(500, 350), DEFAULT_GATE);
    const thin = compareCohort('c', side(500, 450), side(50, 45), DEFAULT_GATE);
    expect(overallVerdict([pass])).toBe('pass');
    expect(overallVerdict([pass, thin])).toBe('insufficient_data');
    expect(overallVerdict([pass, thin, fail])).toBe('fail');
    expect(overallVerdict([])).toBe('insufficient_data');
  });
});

describe('compareConcurrent: a canary, cohort by cohort', () => {
  const at = (iso: string) => Date.parse(iso);
  const v3 = { firstMs: at('2026-12-01T00:00:00Z'), lastMs: at('2026-12-01T10:00:00Z') };

  it('takes the time both versions served the cohort, its last task included', () => {
    const v4 = { firstMs: at('2026-12-01T08:00:00Z'), lastMs: at('2026-12-01T12:00:00Z') };
    expect(overlapOf(v3, v4)).toEqual({ fromMs: v4.firstMs, toMs: v3.lastMs + 1 });
    expect(overlapOf(v3, { firstMs: v3.lastMs, lastMs: v3.lastMs })).toEqual({
      fromMs: v3.lastMs,
      toMs: v3.lastMs + 1,
    });
    expect(overlapOf(v3, { firstMs: v3.lastMs + 1, lastMs: v3.lastMs + 2 })).toBeNull();
  });

  it("shares the clock hours both versions served within the overlap, but for a straggling task beside the other version's traffic", () => {
    const h = (n: number) => at('2026-12-01T00:00:00Z') + n * 3_600_000;
    const baseline = new Map([
      [h(0), 50],
      [h(1), 40],
      [h(2), 1], // a straggler
      [h(3), 30],
      [h(5), 30],
    ]);
    const candidate = new Map([
      [h(1), 10],
      [h(2), 60],
      [h(3), 1],
      [h(4), 60],
      [h(5), 60],
    ]);
    expect(sharedHours(baseline, candidate, { fromMs: h(1) + 600_000, toMs: h(6) })).toEqual([
      h(1),
      h(5),
    ]);
    // Hours outside the overlap are not shared, whatever both served in them.
    expect(sharedHours(baseline, candidate, { fromMs: h(2), toMs: h(5) })).toEqual([]);
    expect(sharedHours(baseline, candidate, { fromMs: h(0), toMs: h(5) + 1 })).toEqual([
      h(1),
      h(5),
    ]);
    // One task each, as in the last minutes of a canary that ends just past an hour: shared (the
    // integration test's canary lost its last task to the hour's edge when it ran at hh:00:35).
    expect(
      sharedHours(new Map([[h(6), 1]]), new Map([[h(6), 1]]), { fromMs: h(5), toMs: h(7) }),
    ).toEqual([h(6)]);
  });

  it('does not compare a cohort the versions served at once but never in the same clock hour', () => {
    const v4 = { firstMs: at('2026-12-01T08:00:00Z'), lastMs: at('2026-12-01T12:00:00Z') };
    const none = compareConcurrent(
      'search',
      { baseline: v3, candidate: v4 },
      { baseline: EMPTY_SIDE, candidate: EMPTY_SIDE },
      DEFAULT_GATE,
      0,
    );
    expect(none.verdict).toBe('insufficient_data');
    expect(none.concurrent?.overlap).toBeNull();
    expect(none.reason).toMatch(
      /^no hour both served: between 2026-12-01T08:00:00\.000Z and 2026-12-01T10:00:00\.001Z the versions never served it in the same clock hour \(a straggling task beside the other's traffic does not count\)/,
    );
    const two = compareConcurrent(
      'search',
      { baseline: v3, candidate: v4 },
      { baseline: side(400, 368), candidate: side(400, 364) },
      DEFAULT_GATE,
      2,
    );
    expect(two.concurrent?.overlap?.hours).toBe(2);
    expect(two.verdict).toBe('pass');
  });

  it('judges a cohort on the sides as read over its overlap', () => {
    const v4 = { firstMs: at('2026-12-01T08:00:00Z'), lastMs: at('2026-12-01T12:00:00Z') };
    const c = compareConcurrent(
      'search',
      { baseline: v3, candidate: v4 },
      { baseline: side(400, 368), candidate: side(400, 364) },
      DEFAULT_GATE,
    );
    expect(c.verdict).toBe('pass');
    expect(c.successChange.estimate).toBeCloseTo(-0.01, 12);
    expect(c.concurrent).toEqual({
      overlap: { from: '2026-12-01T08:00:00.000Z', to: '2026-12-01T10:00:00.001Z' },
      baseline: { first: '2026-12-01T00:00:00.000Z', last: '2026-12-01T10:00:00.000Z' },
      candidate: { first: '2026-12-01T08:00:00.000Z', last: '2026-12-01T12:00:00.000Z' },
    });
  });

  it('does not pass a cohort the versions never served at once: insufficient_data, with both times', () => {
    // Regression: the baseline's traffic ended before the candidate's began; whatever its
    // numbers, there is nothing like-for-like to compare.
    const v4 = { firstMs: at('2026-12-01T11:00:00Z'), lastMs: at('2026-12-01T12:00:00Z') };
    const c = compareConcurrent(
      'refunds',
      { baseline: v3, candidate: v4 },
      { baseline: side(400, 372), candidate: side(400, 372) },
      DEFAULT_GATE,
    );
    expect(c.verdict).toBe('insufficient_data');
    expect(c.reason).toBe(
      "no overlap: baseline's last task at 2026-12-01T10:00:00.000Z, candidate's first at 2026-12-01T11:00:00.000Z; two policy versions are compared only on the time both served a cohort. " +
        'For a straight cutover, compare the time each served it (a before/after comparison: the traffic may have changed too): ' +
        '--baseline window:2026-12-01T00:00:00.000Z/2026-12-01T10:00:00.001Z --candidate window:2026-12-01T11:00:00.000Z/2026-12-01T12:00:00.001Z --cohort refunds',
    );
    expect(c.baseline.known).toBe(0);
    expect(c.successChange.estimate).toBeNull();
    expect(c.concurrent?.overlap).toBeNull();
    // The candidate first: the reason names it first.
    const reversed = compareConcurrent(
      'refunds',
      { baseline: v4, candidate: v3 },
      { baseline: side(400, 372), candidate: side(400, 372) },
      DEFAULT_GATE,
    );
    expect(reversed.reason).toMatch(
      /^no overlap: candidate's last task at 2026-12-01T10:00:00\.000Z, baseline's first at 2026-12-01T11:00:00\.000Z;/,
    );
    const passing = compareConcurrent(
      'search',
      { baseline: v3, candidate: { ...v4, firstMs: v3.firstMs } },
      { baseline: side(400, 368), candidate: side(400, 364) },
      DEFAULT_GATE,
    );
    expect(overallVerdict([passing, c])).toBe('insufficient_data');
  });
});

describe('adviseCohort: each verdict from data crafted for it', () => {
  const advise = (
    small: SideStats | undefined,
    large: SideStats | undefined,
    smallEval?: SideStats,
  ) => adviseCohort('faq', small, large, smallEval, DEFAULT_ADVICE);

  it('revert to large: a thin large control can already show harm, the whole interval beyond the margin', () => {
    // 150 large cases, under the 200 the comparison needs, at 95 %; small at 60 % over 1 000.
    const a = advise(side(1000, 600, { fallbacks: 10 }), side(150, 143));
    expect(a.verdict).toBe('revert to large');
    expect(a.reason).toMatch(
      /^the small route's success rate is 35\.3 pts below large's, more than the 2\.0 pts allowed, even on large's 150 cases \(60\.0 % against 95\.3 %; 95 % CI of the change −\d\d\.\d pts to −\d\d\.\d pts, all of it beyond the margin\)$/,
    );
    // A thin control that does not rule small out: keep, as before.
    expect(advise(side(1000, 900, { fallbacks: 10 }), side(150, 138)).verdict).toBe('keep');
  });

  it('keep, not revert: the same harm on a cohort already moved to large, its outcomes still coming', () => {
    // 1 500 large-first tasks, 150 of them with an outcome so far: under the comparison's 200.
    const a = advise(side(1000, 600, { fallbacks: 10 }), side(150, 143, { tasks: 1_500 }));
    expect(a.currentRoute).toBe('large');
    expect(a.verdict).toBe('keep');
    expect(a.reason).toMatch(
      /^stay on large: the small route's success rate is 35\.3 pts below large's, more than the 2\.0 pts allowed, even on large's 150 cases/,
    );
  });

  it('keep on large: a few production tasks on small are evidence, for or against it', () => {
    const against = advise(side(150, 82), side(1000, 900));
    expect(against.verdict).toBe('keep');
    expect(against.reason).toMatch(
      /; stay on it: the small route's 150 production tasks already fall 35\.3 pts short of it \(54\.7 %; 95 % CI of the change/,
    );
    const unclear = advise(side(150, 133), side(1000, 900));
    expect(unclear.reason).toMatch(
      /; too little evidence on small yet \(150 production tasks on small so far: 88\.7 %\) — an eval of 200 more cases on small would tell/,
    );
    expect(unclear.reason).not.toMatch(/no evidence/);
  });

  it('names the eval run it judged the small route on', () => {
    const a = adviseCohort(
      'faq',
      undefined,
      side(1000, 900),
      side(300, 240),
      DEFAULT_ADVICE,
      'pr-81',
    );
    expect(a.smallEvalRun).toBe('pr-81');
    expect(a.reason).toMatch(/^stay on large: in eval run pr-81 the small route does not hold/);
  });

  it('keep: nothing compares the small route yet, and it says so rather than that it holds', () => {
    const a = advise(side(500, 460, { fallbacks: 40 }), undefined);
    expect(a.verdict).toBe('keep');
    expect(a.currentRoute).toBe('small');
    expect(a.reason).toMatch(
      /^no large traffic to compare the small route with \(92\.0 % success at \$0\.00109 per success, 8\.0 % fallbacks\): keep a share on large as a control/,
    );
    // A route that never succeeds is not said to hold.
    expect(advise(side(300, 0), undefined).reason).not.toMatch(/holds/);
    // Some large traffic, too little to compare with, is said to be too little, not none.
    const thin = advise(side(500, 460, { fallbacks: 40 }), side(120, 110));
    expect(thin.verdict).toBe('keep');
    expect(thin.reason).toMatch(
      /^too little large traffic to compare the small route with \(120 tasks, 120 with an outcome, \d+ needed\) \(92\.0 % success/,
    );
    // Large traffic whose outcomes are still to come is traffic too.
    const pending = advise(side(500, 460, { fallbacks: 40 }), side(0, 0, { tasks: 150 }));
    expect(pending.reason).toMatch(
      /^too little large traffic to compare the small route with \(150 tasks, 0 with an outcome, \d+ needed\)/,
    );
  });

  it('expand small: shown non-inferior to large (its one-sided 95 % bound clears the margin) and cheaper per success', () => {
    const a = advise(
      side(4000, 3680, { cost: 0.001, fallbacks: 400 }),
      side(3000, 2760, { cost: 0.01 }),
    );
    expect(a.verdict).toBe('expand small');
    expect(a.comparison?.verdict).toBe('pass');
    expect(a.reason).toMatch(/costs 90\.0 % less per success/);
    expect(a.reason).toMatch(/3000 tasks still go to large first/);
  });

  it('keep: a small route within the margin on the estimate only is not expanded', () => {
    // 92 % against 93 % on 800 and 300 tasks: the one-sided 95 % bound of the change is −3.9 pts.
    const a = advise(
      side(800, 736, { cost: 0.001, fallbacks: 80 }),
      side(300, 279, { cost: 0.01 }),
    );
    expect(a.verdict).toBe('keep');
    expect(a.comparison?.verdict).toBe('insufficient_data');
    expect(a.reason).toMatch(
      /^not shown yet that the small route holds against large: success rate -1\.0 pts, but its 95 % lower bound -3\.\d pts does not clear the 2\.0 pts allowed: more cases needed: about 1870 more on the smaller side, the other in proportion, if the change holds at -1\.0 pts \(small 92\.0 % success .*\): keep the split and watch the alerts$/,
    );
    // A route truly 4 points worse at 200 tasks a side was called within the margin 29 % of the
    // time on the estimate; shown at 95 %, it is expanded at most one time in 20.
    const random = seeded(5);
    const draw = (n: number, p: number) => {
      let successes = 0;
      for (let i = 0; i < n; i++) if (random() < p) successes++;
      return successes;
    };
    let expanded = 0;
    for (let i = 0; i < 400; i++) {
      const verdict = advise(
        side(200, draw(200, 0.88), { cost: 0.002, fallbacks: 20 }),
        side(200, draw(200, 0.92), { cost: 0.01 }),
      ).verdict;
      if (verdict === 'expand small') expanded++;
    }
    expect(expanded / 400).toBeLessThanOrEqual(0.05);
  });

  it('compares cost per success on the tasks with an outcome: pending ones are not failures', () => {
    // Small: 800 tasks with outcomes (92 % success) and 800 more whose outcomes are still to
    // come, at $0.006 a task; large: $0.0065 a task, all outcomes in. Counting the pending tasks'
    // cost against the successes so far would make small look twice as dear, and "revert".
    const a = advise(
      side(4000, 3680, { cost: 0.006, tasks: 8_000 }),
      side(3000, 2760, { cost: 0.0065 }),
    );
    expect(a.verdict).toBe('expand small');
    expect(a.comparison!.costPerSuccessfulTask.candidate.value!).toBeCloseTo(0.006 / 0.92, 9);
  });

  it('keep: a small route that looks cheaper on calls with no known price is not expanded', () => {
    const a = advise(
      side(800, 736, { cost: 0.001, fallbacks: 80, unpriced: 200 }),
      side(300, 279, { cost: 0.01 }),
    );
    expect(a.verdict).toBe('keep');
    expect(a.reason).toMatch(
      /^the cost per success is not known: 200 of the small route's 800 model calls have no known price \(small 92\.0 % success at ≥\$0\.00109 per success, large 93\.0 % at \$0\.0108\): price them/,
    );
    // A floor already above large's known cost: small is no cheaper, whatever it hides.
    const dear = advise(
      side(800, 736, { cost: 0.012, unpriced: 200 }),
      side(300, 279, { cost: 0.01 }),
    );
    expect(dear.verdict).toBe('revert to large');
    // Small's known cost under a floor on large's: small is cheaper, whatever large hides.
    const cheaper = advise(
      side(4000, 3680, { cost: 0.001, fallbacks: 400 }),
      side(3000, 2760, { cost: 0.01, unpriced: 300 }),
    );
    expect(cheaper.verdict).toBe('expand small');
    expect(cheaper.reason).toMatch(
      /costs at least 90\.0 % less per success \(.* large 92\.0 % at ≥\$0\.0109;/,
    );
    // A route alone: its cost as the report shows it.
    expect(advise(side(500, 460, { unpriced: 50 }), undefined).reason).toMatch(
      /success at ≥\$0\.00109 per success/,
    );
    expect(advise(side(500, 460, { cost: 0, unpriced: 500 }), undefined).reason).toMatch(
      /success at unknown per success/,
    );
    // Large's cost unknown: no claim either way.
    const largeUnknown = advise(
      side(800, 736, { cost: 0.012 }),
      side(300, 279, { cost: 0, unpriced: 300 }),
    );
    expect(largeUnknown.verdict).toBe('keep');
    expect(largeUnknown.reason).toMatch(
      /300 of the large route's 300 model calls have no known price \(.* large 93\.0 % at unknown\)/,
    );
  });

  it('keep: an eval that holds is not called cheaper on unpriced calls', () => {
    const a = advise(
      undefined,
      side(4000, 3720, { cost: 0.01 }),
      side(4000, 3720, { cost: 0, unpriced: 4000 }),
    );
    expect(a.verdict).toBe('keep');
    expect(a.reason).toMatch(
      /^in eval, the small route holds within 2\.0 pts of large, but the cost per success is not known: 4000 of the small route's 4000 model calls/,
    );
  });

  it('compares the two routes hour by hour: a move to small during an incident is not read as small doing better', () => {
    // Three incident hours with most traffic on large (320 at 80 %, small 80 at 75 %), then
    // three good ones with most on small (80 at 95 %, small 320 at 90 %): small is 5 points
    // worse in every hour, yet 87 % against 83 % pooled.
    const hours = (...counts: [number, number][]) =>
      new Map(counts.map(([known, successes], i) => [i * 3_600_000, { known, successes }]));
    const large = hours([320, 256], [320, 256], [320, 256], [80, 76], [80, 76], [80, 76]);
    const small = hours([80, 60], [80, 60], [80, 60], [320, 288], [320, 288], [320, 288]);
    const pooled = advise(side(1200, 1044, { cost: 0.002 }), side(1200, 996, { cost: 0.01 }));
    expect(pooled.verdict).toBe('expand small');
    const a = adviseCohort(
      'faq',
      side(1200, 1044, { cost: 0.002 }),
      side(1200, 996, { cost: 0.01 }),
      undefined,
      DEFAULT_ADVICE,
      null,
      matched(large, small, 'hour'),
    );
    expect(a.verdict).toBe('revert to large');
    expect(a.reason).toMatch(
      /^the small route's success rate is 5\.0 pts below large's, more than the 2\.0 pts allowed; weighed hour by hour: pooled over the hours it would read 4\.0 pts, as the two sides' shares of the traffic differ from hour to hour \(small 87\.0 % success/,
    );
  });

  it("weighs the routes' costs per success hour by hour too: small serving an incident's hours is not read as dearer", () => {
    // Small $0.0015 a task, large $0.002, both 50 % in the incident hour and 95 % in the good
    // one; small took 9 000 of its tasks in the incident hour, large 1 000. Pooled, small costs
    // $0.00275 per success against large's $0.00221 and reads as "no longer costs less"; hour by
    // hour it costs 25 % less, and holds.
    const small = side(10_000, 5_450, { cost: 0.0015 });
    const large = side(10_000, 9_050, { cost: 0.002 });
    const byHour = matched(
      costed(0.002, [1_000, 500], [9_000, 8_550]),
      costed(0.0015, [9_000, 4_500], [1_000, 950]),
      'hour',
    );
    const a = adviseCohort('faq', small, large, undefined, DEFAULT_ADVICE, null, byHour);
    expect(a.verdict).toBe('expand small');
    expect(a.reason).toMatch(
      /small 72\.5 % success at \$0\.00207 per success, large 72\.5 % at \$0\.00276, weighed hour by hour; pooled over the hours, small 54\.5 % at \$0\.00275, large 90\.5 % at \$0\.00221;/,
    );
    // With an unpriced call on large the weighed costs stay: small's known cost under large's
    // floor is cheaper still.
    const floored = adviseCohort(
      'faq',
      small,
      { ...large, unpricedCalls: 10 },
      undefined,
      DEFAULT_ADVICE,
      null,
      byHour,
    );
    expect(floored.comparison!.costPerSuccessfulTask.matched).not.toBeNull();
    expect(floored.comparison!.costPerSuccessfulTask.relativeChange).toBeNull();
    expect(floored.verdict).toBe('expand small');
    // The same hours without their costs: pooled costs, and the advice reverts.
    const uncosted = matched(
      new Map(
        [...costed(0.002, [1_000, 500], [9_000, 8_550])].map(([h, { cost: _, ...p }]) => [h, p]),
      ),
      new Map(
        [...costed(0.0015, [9_000, 4_500], [1_000, 950])].map(([h, { cost: _, ...p }]) => [h, p]),
      ),
      'hour',
    );
    const pooled = adviseCohort('faq', small, large, undefined, DEFAULT_ADVICE, null, uncosted);
    expect(pooled.verdict).toBe('revert to large');
    expect(pooled.reason).toMatch(/^the small route no longer costs less per successful task/);
  });

  it('keep: routes that never served the cohort in the same hours, or barely, are not compared', () => {
    const hourly = (from: number, counts: [number, number][]) =>
      new Map(
        counts.map(([known, successes], i) => [(from + i) * 3_600_000, { known, successes }]),
      );
    // Large for 99 hours at 98 %, then one large task (failed) in the hour of the move to small.
    const large = hourly(0, [
      ...Array.from({ length: 99 }, (): [number, number] => [20, 19.6]),
      [1, 0],
    ]);
    const small = hourly(99, [
      [20, 19],
      ...Array.from({ length: 99 }, (): [number, number] => [20, 18]),
    ]);
    const advise = (byHour: Parameters<typeof adviseCohort>[6]) =>
      adviseCohort(
        'moved',
        side(1_000 * 1.99, 1_791, { cost: 0.001 }),
        side(1_981, 1_940, { cost: 0.01 }),
        undefined,
        DEFAULT_ADVICE,
        null,
        byHour,
      );
    const straggler = advise(matched(large, small, 'hour'));
    expect(straggler.verdict).toBe('keep');
    expect(straggler.reason).toMatch(
      /^not shown yet that the small route holds against large: 1 effective cases in the hours both served with outcomes on the smaller side, fewer than 200/,
    );
    const cutover = advise({
      baseline: { successes: 0, known: 0 },
      candidate: { successes: 0, known: 0 },
      by: 'hour',
    });
    expect(cutover.verdict).toBe('keep');
    expect(cutover.reason).toMatch(
      /^not shown yet that the small route holds against large: no hour in which both served it with outcomes: nothing compares them at the same time/,
    );
  });

  it('revert to large: the small route fails the margin', () => {
    const a = advise(side(800, 640, { cost: 0.001 }), side(300, 279, { cost: 0.01 }));
    expect(a.verdict).toBe('revert to large');
    expect(a.reason).toMatch(
      /success rate is 13\.0 pts below large's, more than the 2\.0 pts allowed/,
    );
  });

  it('keep, not revert: a cohort already on large whose small route fails the margin stays there', () => {
    // Moved to large: 6 720 large-first tasks against 722 small-first ones.
    const a = advise(side(722, 636, { cost: 0.001 }), side(6_720, 6_518, { cost: 0.01 }));
    expect(a.currentRoute).toBe('large');
    expect(a.verdict).toBe('keep');
    expect(a.reason).toMatch(
      /^stay on large: the small route's success rate is \d+\.\d pts below large's/,
    );
  });

  it('revert to large: the small route no longer costs less per success', () => {
    const a = advise(side(800, 736, { cost: 0.012 }), side(300, 279, { cost: 0.01 }));
    expect(a.verdict).toBe('revert to large');
    expect(a.reason).toMatch(/no longer costs less per successful task/);
  });

  it('try small: a large-first cohort whose eval shows the small route holding', () => {
    const a = advise(
      undefined,
      side(4000, 3680, { cost: 0.01 }),
      side(3000, 2760, { cost: 0.001 }),
    );
    expect(a.verdict).toBe('try small');
    expect(a.currentRoute).toBe('large');
    expect(a.reason).toMatch(/route a canary share to small/);
  });

  it('keep (large): the eval shows the small route does not hold', () => {
    const a = advise(undefined, side(600, 552, { cost: 0.01 }), side(400, 300, { cost: 0.001 }));
    expect(a.verdict).toBe('keep');
    expect(a.reason).toMatch(/^stay on large: in eval the small route does not hold against it/);
  });

  it('review fallback: the cheap route pays twice too often', () => {
    const a = advise(side(800, 736, { fallbacks: 240 }), side(300, 279, { cost: 0.01 }));
    expect(a.verdict).toBe('review fallback');
    expect(a.reason).toMatch(/^30\.0 % of the small route's tasks fall back/);
  });

  it('insufficient data: with how many more tasks are needed', () => {
    const a = advise(side(120, 110), side(30, 28));
    expect(a.verdict).toBe('insufficient data');
    expect(a.tasksNeeded).toBe(80);
    expect(a.reason).toBe('120 tasks with an outcome, fewer than 200: 80 more needed');
  });
});

describe('rendering', () => {
  const result: GateResult = {
    baseline: 'policy:v1',
    candidate: 'eval:pr-7',
    canary: false,
    notCovered: [],
    empty: null,
    options: DEFAULT_GATE,
    verdict: 'fail' as const,
    cohorts: [
      {
        ...compareCohort('extraction', side(600, 540), side(600, 480), DEFAULT_GATE),
        concurrent: null,
      },
      { ...compareCohort('faq', side(600, 552), side(600, 552), DEFAULT_GATE), concurrent: null },
    ],
  };

  it('renders the gate as a table with each reason and the verdict', () => {
    const text = renderGateTable(result);
    expect(text).toMatch(/^routewatch gate {2}baseline policy:v1 {2}→ {2}candidate eval:pr-7$/m);
    expect(text).toMatch(/^extraction\s+FAIL\s+600\/600\s+90\.0% \(87\.\d–92\.\d\)\s+80\.0% /m);
    expect(text).toMatch(/^faq\s+PASS\s/m);
    expect(text).toMatch(/^verdict: FAIL$/m);
  });

  it('warns when a side recorded no cost at all: an eval run without the instrumentation loaded', () => {
    expect(renderGateTable(result)).not.toMatch(/warning/);
    const costless: GateResult = {
      ...result,
      cohorts: ['extraction', 'faq'].map((cohort) => ({
        ...compareCohort(cohort, side(600, 540), side(600, 540, { cost: 0 }), DEFAULT_GATE),
        concurrent: null,
      })),
    };
    expect(renderGateTable(costless)).toMatch(
      /^warning: no cost recorded on the candidate side: its tasks carry no priced model call, so cost per successful task reads \$0; is the instrumentation loaded where they ran \(node --import @routewatch\/instrumentation\/register\)\?$/m,
    );
    expect(renderGateMarkdown(costless)).toMatch(/^> ⚠️ no cost recorded on the candidate side/m);
  });

  it('warns when the candidate costs clearly more per success, or falls back far more, whatever its verdict', () => {
    expect(renderGateTable(result)).not.toMatch(/costs more/);
    // Cheaper per call, but 90 % of its tasks fall back to large: 30 % more per success.
    const dearer: GateResult = {
      ...result,
      verdict: 'pass',
      cohorts: [
        {
          ...compareCohort(
            'refunds',
            side(400, 360, { cost: 0.01 }),
            side(400, 360, { cost: 0.013, fallbacks: 360 }),
            DEFAULT_GATE,
          ),
          concurrent: null,
        },
      ],
    };
    expect(dearer.cohorts[0]!.verdict).toBe('pass');
    expect(renderGateTable(dearer)).toMatch(
      /^warning: the candidate may cost more — refunds: cost per success \+30 % \(\$0\.0111 → \$0\.0144, the intervals apart\), fallback rate 0\.0% → 90\.0%\. The verdict is on success rate only: weigh the cost before rolling out$/m,
    );
    expect(renderGateMarkdown(dearer)).toMatch(/^> ⚠️ the candidate may cost more — refunds: /m);
    // Four tasks a side are noise, not a warning.
    const few: GateResult = {
      ...dearer,
      cohorts: [
        {
          ...compareCohort(
            'refunds',
            side(4, 4, { cost: 0.01 }),
            side(4, 4, { cost: 0.013, fallbacks: 4 }),
            DEFAULT_GATE,
          ),
          concurrent: null,
        },
      ],
    };
    expect(renderGateTable(few)).not.toMatch(/may cost more/);
  });

  it('warns of outcomes still to come, and names the cohorts an eval run does not cover', () => {
    expect(renderGateTable(result)).not.toMatch(/still to come|not compared/);
    const late: GateResult = {
      ...result,
      notCovered: ['billing', 'refunds'],
      cohorts: [
        {
          ...compareCohort('faq', side(600, 540), side(510, 480, { tasks: 600 }), DEFAULT_GATE),
          concurrent: null,
        },
      ],
    };
    const text = renderGateTable(late);
    expect(text).toMatch(
      /^warning: outcomes still to come on the candidate side \(90 of 600 tasks\): the verdict is on the tasks whose outcome has arrived; if failures are reported later than successes \(a review queue\), gate again once they are in$/m,
    );
    expect(text).toMatch(/^not compared, as eval:pr-7 has no task in them: billing, refunds$/m);
    const markdown = renderGateMarkdown(late);
    expect(markdown).toMatch(/^> ⚠️ outcomes still to come on the candidate side/m);
    expect(markdown).toMatch(/^not compared, as eval:pr-7 has no task in them: billing, refunds$/m);
  });

  it('shows a floor and an unknown cost as such, and warns that no cost is compared', () => {
    const unpriced: GateResult = {
      ...result,
      cohorts: [
        {
          ...compareCohort(
            'extraction',
            side(600, 540),
            side(600, 540, { unpriced: 60 }),
            DEFAULT_GATE,
          ),
          concurrent: null,
        },
        {
          ...compareCohort(
            'faq',
            side(600, 540),
            side(600, 540, { cost: 0, unpriced: 600 }),
            DEFAULT_GATE,
          ),
          concurrent: null,
        },
      ],
    };
    const text = renderGateTable(unpriced);
    expect(text).toMatch(/^extraction\s.*\$0\.00111 ±\d+% → ≥\$0\.00111 ±\d+%/m);
    expect(text).toMatch(/^faq\s.*\$0\.00111 ±\d+% → unknown\s/m);
    expect(text).toMatch(
      /^warning: the candidate side has model calls with no known price: cost per success is a floor there/m,
    );
    expect(text).not.toMatch(/no cost recorded/);
    expect(renderGateMarkdown(unpriced)).toMatch(/^> ⚠️ the candidate side has model calls/m);
  });

  it('gives a canary cohort its overlap, and says in the verdict how one without was counted', () => {
    const spans = (candidateFirst: string) => ({
      baseline: {
        firstMs: Date.parse('2026-12-01T00:00:00Z'),
        lastMs: Date.parse('2026-12-01T10:00:00Z'),
      },
      candidate: {
        firstMs: Date.parse(candidateFirst),
        lastMs: Date.parse('2026-12-01T12:00:00Z'),
      },
    });
    const within = { baseline: side(400, 368), candidate: side(400, 364) };
    const canary: GateResult = {
      ...result,
      baseline: 'policy:v3',
      candidate: 'policy:v4',
      canary: true,
      verdict: 'insufficient_data',
      cohorts: [
        compareConcurrent('refunds', spans('2026-12-01T11:00:00Z'), within, DEFAULT_GATE),
        compareConcurrent('search', spans('2026-12-01T08:00:00Z'), within, DEFAULT_GATE),
      ],
    };
    const text = renderGateTable(canary);
    expect(text).toMatch(
      /^two policy versions: each cohort compared on the time both served it only$/m,
    );
    expect(text).toMatch(/^refunds\s+INSUFFICIENT DATA\s+0\/0\s/m);
    expect(text).toMatch(
      /^search: success rate -1\.0 pts .* \(over 2026-12-01T08:00:00\.000Z → 2026-12-01T10:00:00\.001Z\)$/m,
    );
    expect(text).toMatch(
      /^verdict: INSUFFICIENT DATA; refunds not compared \(the versions never served it at the same time\): counted as insufficient data$/m,
    );
    expect(renderGateMarkdown(canary)).toMatch(
      /^refunds not compared \(the versions never served it at the same time\): counted as insufficient data$/m,
    );
    // Without such a cohort the verdict line stands alone.
    expect(renderGateTable(result)).toMatch(/^verdict: FAIL$/m);
  });

  it('renders Markdown for a pull-request comment, escaping pipes', () => {
    const md = renderGateMarkdown({
      ...result,
      cohorts: [{ ...result.cohorts[0]!, cohort: 'a|b' }],
    });
    expect(md).toMatch(/^### ❌ routewatch gate: FAIL$/m);
    expect(md).toMatch(/^\| cohort \| verdict \|/m);
    expect(md).toMatch(/^\| a\\\|b \| ❌ FAIL \| 600\/600 \|/m);
    // No cohort on either side: said, not a table of headers alone, as the text table says it.
    const empty = renderGateMarkdown({ ...result, verdict: 'insufficient_data', cohorts: [] });
    expect(empty).toMatch(/^_\(no tasks on either side\)_$/m);
    expect(empty).not.toMatch(/^\| cohort \|/m);
    expect(renderGateTable({ ...result, verdict: 'insufficient_data', cohorts: [] })).toMatch(
      /^\(no tasks on either side\)$/m,
    );
    // With what the store holds instead, in both.
    const said = {
      ...result,
      verdict: 'insufficient_data' as const,
      cohorts: [],
      empty: 'the baseline eval:a selects no task | x',
    };
    expect(renderGateTable(said)).toMatch(/^the baseline eval:a selects no task \| x$/m);
    expect(renderGateMarkdown(said)).toMatch(/^the baseline eval:a selects no task \\\| x$/m);
  });

  it('escapes the Markdown in names: no HTML, links or formatting from a cohort, no broken code span', () => {
    const md = renderGateMarkdown({
      ...result,
      baseline: 'eval:run`1',
      cohorts: [{ ...result.cohorts[0]!, cohort: '<!channel> *x* `y` [z](u) a_b\nc' }],
    });
    const escaped = '\\<!channel\\> \\*x\\* \\`y\\` \\[z\\](u) a\\_b c';
    expect(md).toContain(`| ${escaped} | ❌ FAIL |`);
    expect(md).toContain(`- **${escaped}**: `);
    expect(md).toMatch(/^- baseline `` eval:run`1 ``, candidate `/m);
  });

  it('writes the control characters of names as escapes: a CI log runs no escape sequence from a cohort', () => {
    const md = renderGateMarkdown({
      ...result,
      baseline: 'eval:\u001b[31mred',
      cohorts: [{ ...result.cohorts[0]!, cohort: 'faq\u001b[2J\u0007' }],
    });
    // No control character but the line breaks of the output itself.
    const controls = [...md].filter((c) => {
      const code = c.codePointAt(0)!;
      return (code < 0x20 && code !== 0x0a) || (code >= 0x7f && code < 0xa0);
    });
    expect(controls).toEqual([]);
    expect(md).toContain('| faq\\\\u001b\\[2J\\\\u0007 | ❌ FAIL |');
    expect(md).toMatch(/^- baseline `eval:\\u001b\[31mred`/m);
  });

  it('quotes a name with a space at either end: bold and the table cell would lose it', () => {
    const md = renderGateMarkdown({
      ...result,
      cohorts: [
        { ...result.cohorts[0]!, cohort: ' lead space' },
        { ...result.cohorts[0]!, cohort: 'tail\t' },
        { ...result.cohorts[0]!, cohort: 'in between' },
      ],
    });
    expect(md).toContain('| " lead space" | ❌ FAIL |');
    expect(md).toContain('- **" lead space"**: ');
    expect(md).toContain('- **"tail\\\\t"**: ');
    expect(md).toContain('- **in between**: ');
    expect(md).not.toMatch(/\*\* /);
  });

  it('mentions nobody: an @ before a name in a cohort gets a zero-width space', () => {
    const md = renderGateMarkdown({
      ...result,
      cohorts: [{ ...result.cohorts[0]!, cohort: '@acme/payments' }],
    });
    expect(md).toContain('| @\u200bacme/payments | ❌ FAIL |');
    expect(md).toContain('- **@\u200bacme/payments**: ');
    expect(md).not.toMatch(/@acme/);
  });

  it('renders advice one cohort a line, and says when there is none', () => {
    const advice: AdviceReport = {
      from: '2026-11-25T00:00:00.000Z',
      to: '2026-12-02T00:00:00.000Z',
      options: DEFAULT_ADVICE,
      cohorts: [adviseCohort('faq', side(120, 110), side(30, 28), undefined, DEFAULT_ADVICE)],
    };
    expect(renderAdvice(advice)).toMatch(
      /^ {2}faq\s+insufficient data\s+on small\s+120 tasks with an outcome/m,
    );
    expect(renderAdvice({ ...advice, cohorts: [] })).toMatch(/no production tasks in this window/);
  });
});
