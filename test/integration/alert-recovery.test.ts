import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRules } from '../../analyzer/rules.js';
import { sendTasks, testApp } from '../support/app.js';
import { openTempStore } from '../support/store.js';
import { seeded, stream } from '../support/tasks.js';
import { disableDefaultRulesBut } from '../support/rules.js';

// At high volume a short incident's own tasks carry its evidence for as long as they stay in the
// current window: the best window ending now holds the incident and the good tail after it, and
// its effect stays over the minimum long after the route is well again. The recovery is read
// from the latest data instead (detectors.ts, alertState). Time line (T = now): `brief` at 95 %
// over [D − 2 d, D), 80 % over [D, D + 3 h), 95 % again since; 200 tasks an hour. `lasting` the
// same, but at 80 % from D on. The current window is 12 h: the incident leaves it at D + 15 h.

const HOUR = 3_600_000;
const T = Date.now() - 60_000;
const D = T - 16 * HOUR;
const RULES = parseRules(`
evaluation: { horizon: 12h, baselineWindow: 2d, buckets: 48, minTasks: 100, minBaselineTasks: 100, pendingEvaluations: 2, resolveEvaluations: 2 }
rules:
  - { id: success_rate_drop, cohorts: [brief, lasting] }
${disableDefaultRulesBut('success_rate_drop')}
`);

let temp: Awaited<ReturnType<typeof openTempStore>>;

beforeAll(async () => {
  temp = await openTempStore();
  const random = seeded(17);
  const part = (cohort: string, success: number, fromMs: number, toMs: number) =>
    stream(
      { cohort, routes: ['small'], success, tasks: ((toMs - fromMs) / HOUR) * 200, fromMs, toMs },
      random,
    );
  const tasks = [
    ...part('brief', 0.95, D - 48 * HOUR, D),
    ...part('brief', 0.8, D, D + 3 * HOUR),
    ...part('brief', 0.95, D + 3 * HOUR, T),
    ...part('lasting', 0.95, D - 48 * HOUR, D),
    ...part('lasting', 0.8, D, T),
  ];
  const loader = await testApp(temp.store);
  await sendTasks(loader, tasks);
  await loader.close();
}, 180_000);
afterAll(async () => {
  await temp?.dispose();
});

describe('a short incident at high volume', () => {
  it('resolves a few hours after the route recovers, not when the incident leaves the window', async () => {
    const app = await testApp(temp.store, { rules: RULES });
    const events: { hours: number; kind: string; cohort: string; summary: string }[] = [];
    for (let at = D + HOUR / 2; at <= T; at += HOUR / 2) {
      const result = await app.evaluator.evaluate(new Date(at));
      for (const e of result.events) {
        const finding = result.findings.find((f) => f.cohort === e.cohort)!;
        events.push({
          hours: (at - D) / HOUR,
          kind: e.kind,
          cohort: e.cohort,
          summary: finding.summary,
        });
      }
    }
    const history = () => app.evaluator.alerts.history(100);
    const of = (cohort: string) => events.filter((e) => e.cohort === cohort && e.kind !== 'repeat');

    const brief = of('brief');
    expect(brief.map((e) => e.kind)).toEqual(['pending', 'firing', 'resolved']);
    const resolved = brief[2]!;
    // Recovered at D + 3 h; the incident stays in the 12-h window until D + 15 h, with an effect
    // of over 2 points (the minimum) until then.
    expect(resolved.hours).toBeGreaterThan(3);
    expect(resolved.hours).toBeLessThan(9);
    expect(resolved.summary).toMatch(/^recovered: brief × small: success rate 9\d\.\d% → 9\d\.\d%/);

    // The firing message shows one window: its cost line counts the tasks of its "Now" line,
    // which starts at the incident, hours after the current window does.
    const [fired] = (await history()).filter((e) => e.cohort === 'brief' && e.kind === 'firing');
    const message = fired!.message;
    expect(Date.parse(message.finding.current.since!)).toBeGreaterThan(D - HOUR);
    expect(message.costs[0]!.tasks).toBe(message.finding.current.n);

    // The same incident, lasting: never judged recovered.
    const lasting = of('lasting');
    expect(lasting.map((e) => e.kind)).toEqual(['pending', 'firing']);
    await app.close();
  }, 180_000);
});
