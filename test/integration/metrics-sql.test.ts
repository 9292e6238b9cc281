import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReport } from '../../analyzer/report.js';
import type { Report } from '../../analyzer/report.js';
import { costPerSuccess, normalQuantile, twoProportionZ, wilson } from '../../analyzer/stats.js';
import { sendTasks, testApp } from '../support/app.js';
import { openTempStore } from '../support/store.js';
import { seeded } from '../support/tasks.js';
import type { CraftedTask } from '../support/tasks.js';

// The metric SQL (v_window_metrics, v_overall_window, v_failure_concentration) against an
// independent computation in TypeScript (analyzer/stats.ts) on the same generated tasks.

const HOUR = 3_600_000;
const FROM = Date.now() - 6 * HOUR;
const TO = Date.now() - 60_000;

/** Each task as TypeScript sees it: its group, outcome and cost (calls are $0.001 or $0.01). */
interface Truth {
  cohort: string;
  route: string;
  policy: string;
  outcome: NonNullable<CraftedTask['outcome']> | 'unknown';
  cost: number;
}

const GROUPS = [
  { cohort: 'faq', route: 'small', success: 0.93, tasks: 400 },
  { cohort: 'extraction', route: 'small', success: 0.7, tasks: 150 },
  { cohort: 'policy', route: 'large', success: 0.9, tasks: 200 },
  { cohort: 'agentic', route: 'large', success: 0.8, tasks: 60 },
];

function generate(): { tasks: CraftedTask[]; truth: Truth[] } {
  const random = seeded(42);
  const tasks: CraftedTask[] = [];
  const truth: Truth[] = [];
  for (const g of GROUPS) {
    for (let i = 0; i < g.tasks; i++) {
      const fellBack = g.route === 'small' && random() < 0.2;
      const routes = fellBack ? ['small', 'large'] : [g.route];
      const roll = random();
      const outcome =
        roll < 0.05
          ? undefined
          : random() < g.success
            ? ('success' as const)
            : random() < 0.7
              ? ('failure' as const)
              : ('escalated' as const);
      const callCost = g.route === 'large' ? 0.01 : 0.001 + Math.round(random() * 1000) / 1e6;
      const policy = i % 3 === 0 ? 'v2' : 'v1';
      tasks.push({
        cohort: g.cohort,
        routes,
        policyVersion: policy,
        reasons: fellBack ? ['validation_failed'] : [],
        startMs: FROM + random() * (TO - FROM - 60_000),
        ...(outcome ? { outcome } : {}),
        callCostUsd: callCost,
      });
      const cost = routes.reduce(
        (sum, r) => sum + (r === 'large' && g.route === 'small' ? callCost : callCost),
        0,
      );
      truth.push({ cohort: g.cohort, route: g.route, policy, outcome: outcome ?? 'unknown', cost });
    }
  }
  return { tasks, truth };
}

let temp: Awaited<ReturnType<typeof openTempStore>>;
let report: Report;
let truth: Truth[];

beforeAll(async () => {
  temp = await openTempStore();
  const rw = await testApp(temp.store);
  const generated = generate();
  truth = generated.truth;
  await sendTasks(rw, generated.tasks);
  await rw.close();
  report = await buildReport(temp.store, { from: new Date(FROM - HOUR), to: new Date(TO + HOUR) });
});
afterAll(async () => {
  await temp?.dispose();
});

function expected(tasks: Truth[]) {
  const known = tasks.filter((t) => t.outcome !== 'unknown');
  const successes = tasks.filter((t) => t.outcome === 'success');
  const failures = known.filter((t) => t.outcome !== 'success');
  const costs = tasks.map((t) => t.cost);
  return {
    tasks: tasks.length,
    known: known.length,
    successes: successes.length,
    failures: failures.length,
    wilson: wilson(successes.length, known.length)!,
    cps: costPerSuccess({
      tasks: tasks.length,
      successes: successes.length,
      cost: costs.reduce((a, b) => a + b, 0),
      costSquared: costs.reduce((a, c) => a + c * c, 0),
      successCost: successes.reduce((a, t) => a + t.cost, 0),
    })!,
  };
}

describe('metric SQL against TypeScript', () => {
  it.each(GROUPS.map((g) => [g.cohort, g.route] as const))(
    'gives %s × %s the same counts, Wilson interval and delta-method interval',
    (cohort, route) => {
      const row = report.rows.find((r) => r.cohort === cohort && r.primaryRoute === route)!;
      const want = expected(truth.filter((t) => t.cohort === cohort && t.route === route));
      expect(row.tasks).toBe(want.tasks);
      expect(row.knownOutcomes).toBe(want.known);
      expect(row.successes).toBe(want.successes);
      expect(row.successRateInterval!.lower).toBeCloseTo(want.wilson.lower, 12);
      expect(row.successRateInterval!.upper).toBeCloseTo(want.wilson.upper, 12);
      expect(row.costPerSuccessfulTask).toBeCloseTo(want.cps.value, 12);
      expect(row.costPerSuccessfulTaskInterval!.lower).toBeCloseTo(want.cps.interval!.lower, 10);
      expect(row.costPerSuccessfulTaskInterval!.upper).toBeCloseTo(want.cps.interval!.upper, 10);
    },
  );

  it('gives the overall row over every task', () => {
    const want = expected(truth);
    expect(report.overall!.tasks).toBe(want.tasks);
    expect(report.overall!.successRateInterval!.lower).toBeCloseTo(want.wilson.lower, 12);
    expect(report.overall!.costPerSuccessfulTask).toBeCloseTo(want.cps.value, 12);
    expect(report.overall!.costPerSuccessfulTaskInterval!.upper).toBeCloseTo(
      want.cps.interval!.upper,
      10,
    );
  });

  it('gives the rows and the overall row of a filtered report over the filtered tasks only', async () => {
    const filtered = await buildReport(
      temp.store,
      { from: new Date(FROM - HOUR), to: new Date(TO + HOUR) },
      new Date(),
      { cohorts: ['faq', 'extraction'], routes: ['small'] },
    );
    expect(filtered.rows.map((r) => r.cohort).sort()).toEqual(['extraction', 'faq']);
    const want = expected(truth.filter((t) => t.cohort === 'faq' || t.cohort === 'extraction'));
    expect(filtered.overall!.tasks).toBe(want.tasks);
    expect(filtered.overall!.successRateInterval!.upper).toBeCloseTo(want.wilson.upper, 12);
    expect(filtered.overall!.costPerSuccessfulTask).toBeCloseTo(want.cps.value, 12);
    // Failure concentration still compares each group with all the rest of the traffic.
    for (const row of filtered.rows) {
      const whole = report.rows.find(
        (r) => r.cohort === row.cohort && r.primaryRoute === row.primaryRoute,
      )!;
      expect(row.concentration).toEqual(whole.concentration);
    }
  });

  it('judges the failure concentration of a row filtered by policy on its own tasks, against all the rest', async () => {
    const filtered = await buildReport(
      temp.store,
      { from: new Date(FROM - HOUR), to: new Date(TO + HOUR) },
      new Date(),
      { policies: ['v2'] },
    );
    const all = expected(truth);
    expect(filtered.rows).toHaveLength(GROUPS.length);
    for (const row of filtered.rows) {
      const mine = expected(
        truth.filter(
          (t) => t.cohort === row.cohort && t.route === row.primaryRoute && t.policy === 'v2',
        ),
      );
      expect(row.tasks).toBe(mine.tasks);
      const ratio = mine.failures / all.failures / (mine.known / all.known);
      const z = twoProportionZ(
        mine.failures,
        mine.known,
        all.failures - mine.failures,
        all.known - mine.known,
      )!;
      expect(row.concentration!.ratio).toBeCloseTo(ratio, 12);
      expect(row.concentration!.z).toBeCloseTo(z, 10);
    }
  });

  it('gives each group its failure concentration and z against the rest, and flags the one masked by the average', () => {
    const all = expected(truth);
    for (const g of GROUPS) {
      const row = report.rows.find((r) => r.cohort === g.cohort && r.primaryRoute === g.route)!;
      const mine = expected(truth.filter((t) => t.cohort === g.cohort && t.route === g.route));
      const restFailures = all.failures - mine.failures;
      const restKnown = all.known - mine.known;
      const ratio = mine.failures / all.failures / (mine.known / all.known);
      const z = twoProportionZ(mine.failures, mine.known, restFailures, restKnown)!;
      expect(row.concentration!.ratio).toBeCloseTo(ratio, 12);
      expect(row.concentration!.z).toBeCloseTo(z, 10);
      // At 1 % over the groups (Bonferroni), never below 3; and the Freeman–Tukey statistic of
      // its failures against the rest's rate too, whose tail holds at few expected failures.
      const needed = Math.max(3, normalQuantile(1 - 0.01 / GROUPS.length));
      const expectedFailures = mine.known * (restFailures / restKnown);
      const freemanTukey =
        Math.sqrt(mine.failures) +
        Math.sqrt(mine.failures + 1) -
        Math.sqrt(4 * expectedFailures + 1);
      const worse =
        z >= needed &&
        freemanTukey >= needed &&
        mine.failures / mine.known >= 1.5 * (restFailures / restKnown);
      expect(row.concentration!.significantlyWorse).toBe(worse);
      const masked = worse && 1 - restFailures / restKnown - (1 - all.failures / all.known) < 0.05;
      expect(row.concentration!.maskedByAverage).toBe(masked);
    }
    // extraction (70 % success, a sixth of the traffic) stands out while the whole stays near 87 %.
    expect(report.rows.find((r) => r.cohort === 'extraction')!.concentration!.maskedByAverage).toBe(
      true,
    );
  });
});
