import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRules } from '../../analyzer/rules.js';
import { sendTasks, testApp } from '../support/app.js';
import { openTempStore } from '../support/store.js';
import { seeded, stream } from '../support/tasks.js';
import { disableDefaultRulesBut } from '../support/rules.js';

// One degraded route, three rules firing on it: each message lists the others, and the route
// repeats once per repeatInterval, not once per rule. Another cohort's alert keeps its own
// reminder. Time line (T = now): healthy [T − 68 h, T − 20 h), degraded from T − 20 h on.

const HOUR = 3_600_000;
const MINUTE = 60_000;
const T = Date.now() - MINUTE;
const DEGRADED_FROM = T - 20 * HOUR;
const RULES = parseRules(`
evaluation: { horizon: 6h, baselineWindow: 2d, buckets: 24, minTasks: 100, minBaselineTasks: 100, pendingEvaluations: 2, resolveEvaluations: 2, repeatInterval: 1h }
rules:
  - { id: success_rate_drop, cohorts: [alpha, beta] }
  - { id: cost_per_success_rise, cohorts: [alpha] }
  - { id: alpha-slo, kind: success_rate_drop, baseline: "target:0.9", cohorts: [alpha], severity: critical }
${disableDefaultRulesBut('success_rate_drop', 'cost_per_success_rise')}
`);

let temp: Awaited<ReturnType<typeof openTempStore>>;

beforeAll(async () => {
  temp = await openTempStore();
  const random = seeded(11);
  const tasks = ['alpha', 'beta'].flatMap((cohort) => {
    const spec = { cohort, routes: ['small', 'large'], fallback: 0.1 };
    return [
      ...stream(
        {
          ...spec,
          success: 0.95,
          tasks: 1_600,
          fromMs: DEGRADED_FROM - 48 * HOUR,
          toMs: DEGRADED_FROM,
        },
        random,
      ),
      ...stream({ ...spec, success: 0.6, tasks: 1_000, fromMs: DEGRADED_FROM, toMs: T }, random),
    ];
  });
  const loader = await testApp(temp.store);
  await sendTasks(loader, tasks);
  await loader.close();
});
afterAll(async () => {
  await temp?.dispose();
});

describe('the alerts of one cohort × route', () => {
  it('share one repeat, and each message lists the others firing there', async () => {
    const app = await testApp(temp.store, { rules: RULES });
    const start = DEGRADED_FROM + 8 * HOUR;
    const sent: { at: number; kind: string; ruleId: string; cohort: string; others: string[] }[] =
      [];
    for (let at = start; at <= start + 3 * HOUR; at += 10 * MINUTE) {
      await app.evaluator.evaluate(new Date(at));
    }
    const history = await app.evaluator.alerts.history(500);
    for (const e of history.reverse()) {
      if (!e.notify || e.route !== 'small') continue;
      sent.push({
        at: e.at,
        kind: e.kind,
        ruleId: e.ruleId,
        cohort: e.cohort,
        others: (e.message.alsoFiring ?? []).map((o) => o.ruleId).sort(),
      });
    }
    await app.close();

    const alpha = sent.filter((s) => s.cohort === 'alpha');
    const fired = alpha.filter((s) => s.kind === 'firing');
    expect(fired.map((s) => s.ruleId).sort()).toEqual([
      'alpha-slo',
      'cost_per_success_rise',
      'success_rate_drop',
    ]);
    // The last to fire lists the two before it.
    const lastFired = fired.reduce((a, b) => (b.at > a.at ? b : a));
    expect(lastFired.others).toHaveLength(2);
    expect(lastFired.others).not.toContain(lastFired.ruleId);

    // Three hours of firing at a 1-h repeat: alone, each rule would repeat about 3 times (9 in
    // all). Shared, no two messages on the route are within the hour unless one is a firing.
    const repeats = alpha.filter((s) => s.kind === 'repeat');
    expect(repeats.length).toBeGreaterThanOrEqual(2);
    expect(repeats.length).toBeLessThanOrEqual(3);
    for (const repeat of repeats) {
      const before = alpha.filter((s) => s.at < repeat.at).map((s) => s.at);
      expect(repeat.at - Math.max(...before)).toBeGreaterThanOrEqual(HOUR);
      // The repeat stands for the other two: it names them.
      expect([...repeat.others, repeat.ruleId].sort()).toEqual([
        'alpha-slo',
        'cost_per_success_rise',
        'success_rate_drop',
      ]);
    }
    // beta has one rule firing: its reminder is its own, on its own clock, and lists nothing.
    const beta = sent.filter((s) => s.cohort === 'beta');
    expect(beta.map((s) => s.kind)).toEqual(['firing', 'repeat', 'repeat']);
    expect(beta.every((s) => s.others.length === 0)).toBe(true);
  });
});
