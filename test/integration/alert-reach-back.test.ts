import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRules } from '../../analyzer/rules.js';
import type { EvaluationResult } from '../../analyzer/evaluator.js';
import { sendTasks, testApp } from '../support/app.js';
import { openTempStore } from '../support/store.js';
import { hourlyParts, seeded } from '../support/tasks.js';
import { disableDefaultRulesBut } from '../support/rules.js';

// A resolved incident is left out of its route's trailing baselines; one that took most of the
// baseline window would leave too little to judge the route by, for about a window after it
// resolved, and a relapse then would go unseen. The baseline reaches back by the time left out
// (at most one more window), to the healthy history before the incident.
//
// Time line (T = now): both cohorts at 85 % success and 10 % fallbacks over [D − 8 h, D); a
// fallback storm over [D, D + 7 h), longer than the 6-hour baseline window: 50 % fallbacks, and
// 99 % success since the large model answers; then as before. `relapse` drops to 65 % from
// D + 9 h, after the storm's alert has resolved: a real drop, which must page. Evaluated every
// 30 minutes from D − 1 h to T = D + 12 h, as the periodic job would.

const HOUR = 3_600_000;
const T = Date.now() - 60_000;
const D = T - 12 * HOUR;
const RULES = parseRules(`
evaluation: { horizon: 2h, baselineWindow: 6h, buckets: 24, minTasks: 100, minBaselineTasks: 100, pendingEvaluations: 2, resolveEvaluations: 2 }
rules:
  - { id: success_rate_drop, cohorts: [long, relapse] }
  - { id: fallback_rate_spike, cohorts: [long, relapse] }
${disableDefaultRulesBut('success_rate_drop', 'fallback_rate_spike')}
`);

let temp: Awaited<ReturnType<typeof openTempStore>>;

beforeAll(async () => {
  temp = await openTempStore();
  const random = seeded(11);
  // 200 tasks an hour.
  const part = hourlyParts(D, 200, random);
  const tasks = [
    ...part('long', 0.85, 0.1, -8, 0),
    ...part('long', 0.99, 0.5, 0, 7),
    ...part('long', 0.85, 0.1, 7, 12),
    ...part('relapse', 0.85, 0.1, -8, 0),
    ...part('relapse', 0.99, 0.5, 0, 7),
    ...part('relapse', 0.85, 0.1, 7, 9),
    ...part('relapse', 0.65, 0.1, 9, 12),
  ];
  const loader = await testApp(temp.store);
  await sendTasks(loader, tasks);
  await loader.close();
}, 120_000);
afterAll(async () => {
  await temp?.dispose();
});

describe('a baseline reaches back past a resolved incident that took most of its window', () => {
  it('judges the route against the history before the incident, and pages a relapse', async () => {
    const app = await testApp(temp.store, { rules: RULES });
    const events: { hours: number; rule: string; kind: string; cohort: string }[] = [];
    const drops: { hours: number; cohort: string; status: string; description: string }[] = [];
    let last: EvaluationResult | undefined;
    for (let at = D - HOUR; at <= T; at += HOUR / 2) {
      last = await app.evaluator.evaluate(new Date(at));
      const hours = (at - D) / HOUR;
      for (const e of last.events)
        events.push({ hours, rule: e.ruleId, kind: e.kind, cohort: e.cohort });
      for (const f of last.findings)
        if (f.ruleId === 'success_rate_drop' && f.route === 'small')
          drops.push({
            hours,
            cohort: f.cohort,
            status: f.status,
            description: f.baseline.description,
          });
    }
    await app.close();
    const of = (cohort: string, rule: string) =>
      events
        .filter((e) => e.cohort === cohort && e.rule === rule && e.kind !== 'repeat')
        .map((e) => e.kind);

    // The storm pages once on each cohort, and resolves after it ended.
    for (const cohort of ['long', 'relapse'])
      expect(of(cohort, 'fallback_rate_spike')).toEqual(['pending', 'firing', 'resolved']);
    const resolvedAt = events.find(
      (e) => e.cohort === 'long' && e.rule === 'fallback_rate_spike' && e.kind === 'resolved',
    )!.hours;
    expect(resolvedAt).toBeGreaterThan(7);
    expect(resolvedAt).toBeLessThan(9.5);

    // After it resolved, `long` is judged at every evaluation, against the 85 % before the storm:
    // the 6 hours before the current window are nearly all storm, left out, and the incident
    // (about 9 hours from its firing to its resolution) took more than the one window further the
    // read may reach, which the description says.
    const after = drops.filter((d) => d.cohort === 'long' && d.hours > resolvedAt);
    expect(after.length).toBeGreaterThan(4);
    expect(after.map((d) => d.status)).toEqual(after.map(() => 'ok'));
    expect(after[0]!.description).toMatch(
      /^trailing 6 h before the current window, without the resolved incident of \d{4}-\d\d-\d\d \d\d:\d\d → \d{4}-\d\d-\d\d \d\d:\d\d UTC on this cohort × route, reaching back to \d{4}-\d\d-\d\d \d\d:\d\d UTC for the time left out \([\d.]+ h of history outside incidents, not 6 h: it reaches at most one window further\)$/,
    );
    expect(of('long', 'success_rate_drop')).toEqual([]);

    // The relapse pages, judged against the 85 % from before the storm.
    expect(of('relapse', 'success_rate_drop').slice(0, 2)).toEqual(['pending', 'firing']);
    const fired = events.find(
      (e) => e.cohort === 'relapse' && e.rule === 'success_rate_drop' && e.kind === 'firing',
    )!;
    expect(fired.hours).toBeGreaterThan(9);
    const finding = last!.findings.find(
      (f) => f.cohort === 'relapse' && f.ruleId === 'success_rate_drop' && f.route === 'small',
    )!;
    expect(finding.status).toBe('degraded');
    expect(finding.baseline.value).toBeGreaterThan(0.8);
    expect(finding.baseline.value).toBeLessThan(0.9);
  }, 300_000);
});
