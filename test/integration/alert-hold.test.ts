import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRules } from '../../analyzer/rules.js';
import { sendTasks, testApp } from '../support/app.js';
import { openTempStore } from '../support/store.js';
import { seeded, stream } from '../support/tasks.js';
import { disableDefaultRulesBut } from '../support/rules.js';

// A firing alert whose traffic stops is held (no verdict is not a recovery), then closed without a
// verdict once held for `holdWithoutVerdict`, across a restart. Time line (T = now): healthy
// [T − 68 h, T − 20 h), degraded [T − 20 h, T − 14 h), then no traffic at all.

const HOUR = 3_600_000;
const T = Date.now() - 60_000;
const DEGRADED_FROM = T - 20 * HOUR;
const STOPPED_AT = T - 14 * HOUR;
const RULES = parseRules(`
evaluation: { horizon: 6h, baselineWindow: 2d, buckets: 24, minTasks: 100, minBaselineTasks: 100, pendingEvaluations: 2, resolveEvaluations: 2, holdWithoutVerdict: 1h }
rules:
  - { id: success_rate_drop, cohorts: [alpha] }
${disableDefaultRulesBut('success_rate_drop')}
`);

let temp: Awaited<ReturnType<typeof openTempStore>>;

beforeAll(async () => {
  temp = await openTempStore();
  const random = seeded(7);
  const spec = { cohort: 'alpha', routes: ['small', 'large'], fallback: 0.1 };
  const tasks = [
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
    ...stream(
      { ...spec, success: 0.7, tasks: 300, fromMs: DEGRADED_FROM, toMs: STOPPED_AT },
      random,
    ),
  ];
  const loader = await testApp(temp.store);
  await sendTasks(loader, tasks);
  await loader.close();
});
afterAll(async () => {
  await temp?.dispose();
});

describe('a firing alert whose traffic stopped', () => {
  it('is held without a verdict, then closed without one after holdWithoutVerdict, across a restart', async () => {
    const first = await testApp(temp.store, { rules: RULES });
    const at = (ms: number) => first.evaluator.evaluate(new Date(ms));
    await at(STOPPED_AT);
    const fired = await at(STOPPED_AT + 60_000);
    expect(fired.events.map((e) => `${e.kind} ${e.cohort} × ${e.route}`)).toEqual([
      'firing alpha × small',
    ]);

    // Six hours on, the window holds no task: held, firing, nothing said.
    const held = await at(STOPPED_AT + 6 * HOUR + 120_000);
    expect(held.events).toEqual([]);
    expect(held.firing).toBe(1);
    const [record] = (await first.evaluator.alerts.states()).filter((a) => a.state === 'firing');
    expect(record).toMatchObject({ heldSince: STOPPED_AT + 6 * HOUR + 120_000 });
    expect(record!.finding.status).toBe('insufficient_data');
    await first.close();

    // Restarted: the hold began before the restart, so it ends an hour after that, not after this.
    const second = await testApp(temp.store, { rules: RULES });
    const still = await second.evaluator.evaluate(new Date(STOPPED_AT + 7 * HOUR));
    expect(still.events).toEqual([]);
    const closed = await second.evaluator.evaluate(new Date(STOPPED_AT + 7 * HOUR + 120_000));
    expect(closed.events).toMatchObject([
      {
        kind: 'resolved',
        cohort: 'alpha',
        route: 'small',
        summary: expect.stringMatching(
          /^held 1 h with no verdict \(.+\): closed without a verdict$/,
        ),
      },
    ]);
    expect(closed.firing).toBe(0);
    const [event] = await second.evaluator.alerts.history(1);
    expect(event!.message).toMatchObject({
      resolution: 'closed_without_verdict',
      title: 'Closed without a verdict: alpha · small — success rate dropped',
    });
    await second.close();
  });
});
