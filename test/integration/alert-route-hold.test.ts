import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRules } from '../../analyzer/rules.js';
import type { EvaluationResult } from '../../analyzer/evaluator.js';
import { sendTasks, testApp } from '../support/app.js';
import { openTempStore } from '../support/store.js';
import { hourlyParts, seeded } from '../support/tasks.js';
import { disableDefaultRulesBut } from '../support/rules.js';

// An incident on a cohort × route holds the trailing baselines of the route's other rules while it
// fires, and is left out of them once it has resolved. Found by a soak test: while fallbacks to the
// large model rescued a degraded small route, its success rate rose; the success-rate monitor took
// that into its trailing baseline, and the route's return to normal paged as a drop.
//
// Time line (T = now): both cohorts at 85 % success and 10 % fallbacks over [D − 8 h, D); a
// fallback storm over [D, D + 2 h): 50 % fallbacks, and 99 % success since the large model answers;
// then as before. `relapse` then drops to 70 % from D + 5 h: a real drop, which must still page.
// `accepted` keeps the storm's rates for good, under a silence, and drops to 90 % from D + 5 h.
// Evaluated every 15 minutes from D − 1 h to T = D + 9 h, as the periodic job would.

const HOUR = 3_600_000;
const T = Date.now() - 60_000;
const D = T - 9 * HOUR;
const RULES = parseRules(`
evaluation: { horizon: 2h, baselineWindow: 6h, buckets: 24, minTasks: 100, minBaselineTasks: 100, pendingEvaluations: 2, resolveEvaluations: 2 }
rules:
  - { id: success_rate_drop, cohorts: [steady, relapse, accepted, stedy] }
  - { id: fallback_rate_spike, cohorts: [steady, relapse, accepted] }
${disableDefaultRulesBut('success_rate_drop', 'fallback_rate_spike')}
`);

let temp: Awaited<ReturnType<typeof openTempStore>>;

beforeAll(async () => {
  temp = await openTempStore();
  const random = seeded(7);
  // 400 tasks an hour.
  const part = hourlyParts(D, 400, random);
  const tasks = [
    ...part('steady', 0.85, 0.1, -8, 0),
    ...part('steady', 0.99, 0.5, 0, 2),
    ...part('steady', 0.85, 0.1, 2, 9),
    ...part('relapse', 0.85, 0.1, -8, 0),
    ...part('relapse', 0.99, 0.5, 0, 2),
    ...part('relapse', 0.85, 0.1, 2, 5),
    ...part('relapse', 0.7, 0.1, 5, 9),
    // A lasting change the team takes as the route's new state (silenced): half the tasks fall
    // back for good, and the large model lifts success to 99 %; then success drops to 90 %.
    ...part('accepted', 0.85, 0.1, -8, 0),
    ...part('accepted', 0.99, 0.5, 0, 5),
    ...part('accepted', 0.9, 0.5, 5, 9),
  ];
  const loader = await testApp(temp.store);
  await sendTasks(loader, tasks);
  await loader.close();
}, 120_000);
afterAll(async () => {
  await temp?.dispose();
});

describe("an incident holds its route's other baselines, and is left out of them once resolved", () => {
  it('does not page a drop when a route returns to normal after a fallback storm, and still pages a real one', async () => {
    const app = await testApp(temp.store, { rules: RULES });
    await app.evaluator.alerts.saveSilence({
      id: 'accepted-fallbacks',
      cohort: 'accepted',
      route: 'small',
      ruleId: 'fallback_rate_spike',
      startsAt: D - 2 * HOUR,
      endsAt: T + HOUR,
      comment: 'the large model takes half of accepted for good: known and agreed',
      createdAt: D - 2 * HOUR,
    });
    const events: { hours: number; rule: string; kind: string; cohort: string }[] = [];
    const descriptions: { hours: number; cohort: string; description: string }[] = [];
    let last: EvaluationResult | undefined;
    for (let at = D - HOUR; at <= T; at += HOUR / 4) {
      last = await app.evaluator.evaluate(new Date(at));
      const hours = (at - D) / HOUR;
      for (const e of last.events)
        events.push({ hours, rule: e.ruleId, kind: e.kind, cohort: e.cohort });
      for (const f of last.findings)
        if (f.ruleId === 'success_rate_drop')
          descriptions.push({ hours, cohort: f.cohort, description: f.baseline.description });
    }
    const of = (cohort: string, rule: string) =>
      events
        .filter((e) => e.cohort === cohort && e.rule === rule && e.kind !== 'repeat')
        .map((e) => e.kind);

    // The storm pages once on each cohort, and resolves after it.
    for (const cohort of ['steady', 'relapse']) {
      expect(of(cohort, 'fallback_rate_spike')).toEqual(['pending', 'firing', 'resolved']);
    }
    const resolvedAt = events.find(
      (e) => e.cohort === 'steady' && e.rule === 'fallback_rate_spike' && e.kind === 'resolved',
    )!.hours;
    expect(resolvedAt).toBeGreaterThan(2);

    // Back to its usual 85 %, `steady` never reads as a drop: its success-rate baseline was held
    // at the storm's start while the storm's alert fired, and leaves the storm out after.
    expect(of('steady', 'success_rate_drop')).toEqual([]);
    expect(
      last!.findings.find((f) => f.cohort === 'steady' && f.ruleId === 'success_rate_drop'),
    ).toMatchObject({
      status: 'ok',
    });
    const said = (cohort: string, from: number, to: number) =>
      descriptions.filter((d) => d.cohort === cohort && d.hours > from && d.hours < to);
    // Held by the other rule's incident once the current window has moved past its start.
    expect(said('steady', 2.5, resolvedAt).map((d) => d.description)).toContainEqual(
      expect.stringMatching(
        /^trailing 6 h before \d{4}-\d\d-\d\d \d\d:\d\d UTC, held at the start of the fallback_rate_spike incident open on this cohort × route$/,
      ),
    );
    // After it resolved, the trailing baseline without the storm, and reaching back before the
    // window by the time it took (alert-reach-back.test.ts), said so.
    expect(said('steady', resolvedAt, 9).at(-1)!.description).toMatch(
      /^trailing 6 h before the current window, without the resolved incident of \d{4}-\d\d-\d\d \d\d:\d\d → \d{4}-\d\d-\d\d \d\d:\d\d UTC on this cohort × route, reaching back to \d{4}-\d\d-\d\d \d\d:\d\d UTC for the time left out$/,
    );

    // A real drop after the storm still pages, judged against the 85 % from before it.
    const relapse = of('relapse', 'success_rate_drop');
    expect(relapse.slice(0, 2)).toEqual(['pending', 'firing']);
    const fired = events.find(
      (e) => e.cohort === 'relapse' && e.rule === 'success_rate_drop' && e.kind === 'firing',
    )!;
    expect(fired.hours).toBeGreaterThan(5);
    const finding = last!.findings.find(
      (f) => f.cohort === 'relapse' && f.ruleId === 'success_rate_drop',
    )!;
    expect(finding.status).toBe('degraded');
    expect(finding.baseline.value).toBeGreaterThan(0.8);
    expect(finding.baseline.value).toBeLessThan(0.9);

    // A silenced alert holds only its own baseline: the team took the change as the route's new
    // state, so the success-rate rule trails into it, and the drop from 99 % to 90 % pages. Held
    // at the start of the change, 90 % would read as no drop against the 85 % before it.
    expect(of('accepted', 'fallback_rate_spike').slice(0, 2)).toEqual(['pending', 'firing']);
    expect(of('accepted', 'fallback_rate_spike')).not.toContain('resolved');
    expect(of('accepted', 'success_rate_drop').slice(0, 2)).toEqual(['pending', 'firing']);
    const accepted = events.find(
      (e) => e.cohort === 'accepted' && e.rule === 'success_rate_drop' && e.kind === 'firing',
    )!;
    expect(accepted.hours).toBeGreaterThan(5);
    expect(
      said('accepted', 0, 9).some((d) => d.description.includes('held at the start of the')),
    ).toBe(false);

    // The API's evaluation answer says what each monitor was judged against.
    const res = await app.app.inject({ method: 'POST', url: '/api/v1/evaluate?dryRun=true' });
    expect(res.statusCode).toBe(200);
    const answer = res.json() as {
      findings: { rule: string; cohort: string; baseline: string }[];
      warnings: string[];
    };
    // A cohort the rules name that no task has (a typo, `stedy`) watches nothing: said.
    expect(answer.warnings).toEqual([
      'rule success_rate_drop: no task of the current window has the cohort "stedy" its cohorts name (did you mean "steady"?): it watches nothing there until one does',
    ]);
    expect(
      answer.findings.find((f) => f.cohort === 'steady' && f.rule === 'success_rate_drop')!
        .baseline,
    ).toMatch(/^trailing 6 h before the current window, without the resolved incident of /);
    await app.close();
  }, 300_000);
});
