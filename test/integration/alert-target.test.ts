import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRules } from '../../analyzer/rules.js';
import { sendTasks, testApp } from '../support/app.js';
import { openTempStore } from '../support/store.js';
import { seeded, stream } from '../support/tasks.js';
import { disableDefaultRulesBut } from '../support/rules.js';

// A cohort born bad: routed to the small model from its first day, half its tasks fail. A
// measured baseline has nothing to compare with (and would later take the bad rate as normal);
// a target baseline, an SLO, alerts on it. `steady` meets the target and stays quiet.

const HOUR = 3_600_000;
const T = Date.now() - 60_000;
const RULES = parseRules(`
evaluation: { horizon: 24h, minTasks: 100, minBaselineTasks: 100, pendingEvaluations: 2 }
rules:
  - { id: success_rate_drop, cohorts: [fresh, steady] }
  - { id: small-slo, kind: success_rate_drop, baseline: "target:0.9", cohorts: [fresh, steady] }
${disableDefaultRulesBut('success_rate_drop')}
`);

let temp: Awaited<ReturnType<typeof openTempStore>>;

beforeAll(async () => {
  temp = await openTempStore();
  const random = seeded(23);
  const tasks = [
    ...stream(
      {
        cohort: 'fresh',
        routes: ['small'],
        success: 0.5,
        tasks: 600,
        fromMs: T - 20 * HOUR,
        toMs: T,
      },
      random,
    ),
    ...stream(
      {
        cohort: 'steady',
        routes: ['small'],
        success: 0.97,
        tasks: 2_400,
        fromMs: T - 72 * HOUR,
        toMs: T,
      },
      random,
    ),
  ];
  const loader = await testApp(temp.store);
  await sendTasks(loader, tasks);
  await loader.close();
}, 120_000);
afterAll(async () => {
  await temp?.dispose();
});

describe('a target baseline', () => {
  it('alerts on a cohort that starts out bad, where the trailing baseline has nothing to compare with', async () => {
    const app = await testApp(temp.store, { rules: RULES });
    await app.evaluator.evaluate(new Date(T));
    const result = await app.evaluator.evaluate(new Date(T + 60_000));
    await app.close();
    const finding = (rule: string, cohort: string) =>
      result.findings.find((f) => f.ruleId === rule && f.cohort === cohort)!;

    expect(finding('success_rate_drop', 'fresh').status).toBe('insufficient_data');
    const slo = finding('small-slo', 'fresh');
    expect(slo.status).toBe('degraded');
    expect(slo.summary).toMatch(
      /^fresh × small: success rate (4\d|5\d)\.\d% \(n \d+\) against the target 90\.0%$/,
    );
    expect(slo.baseline).toMatchObject({
      n: 0,
      value: 0.9,
      target: true,
      description: 'the target success rate 90 %',
    });
    expect(result.events.map((e) => `${e.kind} ${e.ruleId} ${e.cohort}`)).toContain(
      'firing small-slo fresh',
    );
    // Meeting the target is quiet, whatever the trailing baseline says.
    expect(finding('small-slo', 'steady').status).toBe('ok');
  }, 120_000);
});
