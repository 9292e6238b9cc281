import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseRules } from '../../analyzer/rules.js';
import { sendTasks, testApp } from '../support/app.js';
import { openTempStore } from '../support/store.js';
import { seeded, stream } from '../support/tasks.js';
import { disableDefaultRulesBut } from '../support/rules.js';

// A dry run of a past time judges as things stood then: an alert firing now was not open before
// it fired, so neither its hysteresis (held until half the threshold) nor its recovery applies
// to that time. Time line (T = now): 95 % success over [D − 2 d, D), 90 % since, D = T − 10 h;
// evaluated live every 15 minutes, then replayed.

const HOUR = 3_600_000;
const T = Date.now() - 60_000;
const D = T - 10 * HOUR;
const RULES = parseRules(`
evaluation: { horizon: 12h, baselineWindow: 2d, buckets: 48, minTasks: 100, minBaselineTasks: 100, pendingEvaluations: 2, resolveEvaluations: 2 }
rules:
  - { id: success_rate_drop, cohorts: [slow] }
${disableDefaultRulesBut('success_rate_drop')}
`);

let temp: Awaited<ReturnType<typeof openTempStore>>;

beforeAll(async () => {
  temp = await openTempStore();
  const random = seeded(5);
  const part = (success: number, fromMs: number, toMs: number) =>
    stream(
      {
        cohort: 'slow',
        routes: ['small'],
        success,
        tasks: ((toMs - fromMs) / HOUR) * 100,
        fromMs,
        toMs,
      },
      random,
    );
  const loader = await testApp(temp.store);
  await sendTasks(loader, [...part(0.95, D - 48 * HOUR, D), ...part(0.9, D, T)]);
  await loader.close();
}, 180_000);
afterAll(async () => {
  await temp?.dispose();
});

it('replays a past time with the alert state of that time', async () => {
  const app = await testApp(temp.store, { rules: RULES });
  const times: number[] = [];
  for (let at = D; at <= T; at += HOUR / 4) times.push(at);
  const live: string[] = [];
  for (const at of times) {
    const finding = (await app.evaluator.evaluate(new Date(at))).findings[0]!;
    live.push(`${new Date(at).toISOString()} ${finding.status}`);
  }
  // The alert fired, and is firing now.
  const [record] = await app.evaluator.alerts.states();
  expect(record).toMatchObject({ state: 'firing' });
  expect(live.filter((line) => line.endsWith(' ok')).length).toBeGreaterThan(2);
  const replayed: string[] = [];
  for (const at of times) {
    const result = await app.evaluator.evaluate(new Date(at), undefined, { dryRun: true });
    replayed.push(`${new Date(at).toISOString()} ${result.findings[0]!.status}`);
    // Firing as of then: not before the alert fired (review newcomer #6: a replay of a day
    // before any data said "2 alert(s) firing", the count of now).
    expect(result.firing, new Date(at).toISOString()).toBe(at >= record!.since ? 1 : 0);
  }
  await app.close();
  expect(replayed).toEqual(live);
}, 300_000);
