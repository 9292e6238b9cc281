import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRules } from '../../analyzer/rules.js';
import { dryRunFindings, sendTasks, testApp } from '../support/app.js';
import type { EvaluatedFinding, TestApp } from '../support/app.js';
import { openTempStore } from '../support/store.js';
import { seeded, stream } from '../support/tasks.js';
import type { CraftedTask, StreamSpec } from '../support/tasks.js';

// failure_concentration when the traffic moves between cohorts and routes, no one's rate
// changing (review scen2 N1): a routing change sends the cohort `bulk`, which fails often on the
// small route, to the large route, which it rarely fails on. The rest of the traffic of every
// other cohort × route then fails far less often than in the baseline, and against that pooled
// rate the steady cohorts `a` and `b` looked concentrated, critical, for days. Evaluated once at
// T (dry run): the trailing baseline [T − 2 d − 6 h, T − 6 h), the current window [T − 6 h, T).

const HOUR = 3_600_000;
const T = Date.now() - 60_000;
const NOW_FROM = T - 6 * HOUR;
const BASELINE_FROM = NOW_FROM - 2 * 24 * HOUR;

const RULES = parseRules(`
evaluation:
  horizon: 6h
  baselineWindow: 2d
  buckets: 24
  minTasks: 100
  minBaselineTasks: 100
`);

function tasks(): CraftedTask[] {
  const random = seeded(77);
  const out: CraftedTask[] = [];
  // Tasks an hour before and after the routing change at the start of the current window.
  const add = (
    spec: Pick<StreamSpec, 'cohort' | 'routes' | 'success'>,
    perHourBefore: number,
    perHourNow: number,
  ) => {
    for (const [from, to, perHour] of [
      [BASELINE_FROM, NOW_FROM, perHourBefore],
      [NOW_FROM, T, perHourNow],
    ] as const) {
      const count = Math.round(((to - from) / HOUR) * perHour);
      if (count > 0) out.push(...stream({ ...spec, tasks: count, fromMs: from, toMs: to }, random));
    }
  };
  // Busier now: enough tasks in the window for the false concentration to show.
  add({ cohort: 'a', routes: ['small'], success: 0.92 }, 20, 300);
  add({ cohort: 'b', routes: ['small'], success: 0.9 }, 20, 300);
  // The routing change: bulk from small (70 %) to large (99 %).
  add({ cohort: 'bulk', routes: ['small'], success: 0.7 }, 100, 20);
  add({ cohort: 'bulk', routes: ['large'], success: 0.99 }, 5, 85);
  // A control that does degrade, in the same shift: it still fires.
  add({ cohort: 'worse', routes: ['small'], success: 0.92 }, 30, 30);
  for (const task of out) {
    if (task.cohort === 'worse' && task.startMs >= NOW_FROM && task.outcome === 'success') {
      // 92 % → about 70 %.
      if (Math.round(task.startMs) % 100 < 24) task.outcome = 'failure';
    }
  }
  return out;
}

let temp: Awaited<ReturnType<typeof openTempStore>>;
let rw: TestApp;
let finding: (rule: string, cohort: string, route?: string) => EvaluatedFinding;
const concentration = (cohort: string, route = 'small') =>
  finding('failure_concentration', cohort, route);

beforeAll(async () => {
  temp = await openTempStore();
  rw = await testApp(temp.store, { rules: RULES });
  await sendTasks(rw, tasks());
  await rw.writer.flush();
  ({ finding } = await dryRunFindings(rw, T));
});
afterAll(async () => {
  await rw?.close();
  await temp?.dispose();
});

describe('failure_concentration after traffic moved between cohorts and routes', () => {
  it('does not fire on the cohort × routes whose rates did not change', () => {
    for (const [cohort, route] of [
      ['a', 'small'],
      ['b', 'small'],
      ['bulk', 'small'],
    ] as const) {
      const finding = concentration(cohort, route);
      expect(finding.status, finding.summary).toBe('ok');
    }
  });

  it('still fires on the one that degraded, and weighs the rest at its current mix', () => {
    const finding = concentration('worse');
    expect(finding.status, finding.summary).toBe('degraded');
    expect(finding.summary).toMatch(/× the rest's in the baseline, at its current mix\)/);
  });
});
