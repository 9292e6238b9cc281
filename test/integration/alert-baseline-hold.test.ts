import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRules } from '../../analyzer/rules.js';
import type { EvaluationResult } from '../../analyzer/evaluator.js';
import { sendTasks, testApp } from '../support/app.js';
import { openTempStore } from '../support/store.js';
import type { Store } from '../../storage/store.js';
import { seeded, stream } from '../support/tasks.js';
import { disableDefaultRulesBut } from '../support/rules.js';

// An open incident holds its monitor's trailing baseline at the incident's start: a degradation
// that persists keeps firing, however long the replay, and one that ends still resolves. Time
// line (T = now): both cohorts at 95 % over [D − 2 d, D), D = T − 5.5 d; then `persist` at 80 %
// until T, and `recovers` at 80 % over [D, D + 12 h) and at 95 % again after; `slow` twice as
// slow from D to T (the p95 rule counts the tasks slower than the held baseline's p95). Evaluated every
// 3 h from D + 1 h to T, as the periodic job would; each evaluation reads the alerts back from
// the store.

const HOUR = 3_600_000;
const T = Date.now() - 60_000;
const D = T - 132 * HOUR;
const RULES = parseRules(`
evaluation: { horizon: 6h, baselineWindow: 2d, buckets: 24, minTasks: 100, minBaselineTasks: 100, pendingEvaluations: 2, resolveEvaluations: 2 }
rules:
  - { id: success_rate_drop, cohorts: [persist, recovers] }
  - { id: p95_regression, cohorts: [slow] }
${disableDefaultRulesBut('success_rate_drop', 'p95_regression')}
`);

let temp: Awaited<ReturnType<typeof openTempStore>>;

beforeAll(async () => {
  temp = await openTempStore();
  const random = seeded(11);
  // 40 tasks an hour.
  const part = (cohort: string, success: number, fromMs: number, toMs: number, slow = 1) =>
    stream(
      {
        cohort,
        routes: ['small'],
        success,
        tasks: ((toMs - fromMs) / HOUR) * 40,
        fromMs,
        toMs,
        extra: (_i, r) => ({ latencyMs: slow * (300 + 200 * r()) }),
      },
      random,
    );
  const tasks = [
    ...part('persist', 0.95, D - 48 * HOUR, D),
    ...part('persist', 0.8, D, T),
    ...part('recovers', 0.95, D - 48 * HOUR, D),
    ...part('recovers', 0.8, D, D + 12 * HOUR),
    ...part('recovers', 0.95, D + 12 * HOUR, T),
    ...part('slow', 0.95, D - 48 * HOUR, D),
    ...part('slow', 0.95, D, T, 2),
  ];
  const loader = await testApp(temp.store);
  await sendTasks(loader, tasks);
  await loader.close();
}, 120_000);
afterAll(async () => {
  await temp?.dispose();
});

describe('an open incident holds its trailing baseline at its start', () => {
  it('keeps a persistent drop firing for 5 days, and resolves one that recovers', async () => {
    const app = await testApp(temp.store, { rules: RULES });
    const events: { hours: number; line: string }[] = [];
    let last: EvaluationResult | undefined;
    for (let at = D + HOUR; at <= T; at += 3 * HOUR) {
      last = await app.evaluator.evaluate(new Date(at));
      for (const e of last.events)
        events.push({ hours: (at - D) / HOUR, line: `${e.kind} ${e.cohort}` });
    }
    const of = (cohort: string) =>
      events.filter((e) => e.line.endsWith(` ${cohort}`)).map((e) => e.line.split(' ')[0]);

    // The trailing baseline would hold only 80 % two days in, and call the drop recovered.
    const persist = of('persist');
    expect(persist.slice(0, 2)).toEqual(['pending', 'firing']);
    expect(persist).not.toContain('resolved');
    // Repeated to the end: every other evaluation (repeatInterval 4 h), over 5 days.
    expect(persist.filter((kind) => kind === 'repeat').length).toBeGreaterThanOrEqual(19);
    const [record] = (await app.evaluator.alerts.states()).filter((a) => a.cohort === 'persist');
    expect(record).toMatchObject({ state: 'firing' });
    const finding = last!.findings.find((f) => f.cohort === 'persist')!;
    expect(finding.status).toBe('degraded');
    expect(finding.baseline.value).toBeGreaterThan(0.93);
    expect(finding.baseline.description).toMatch(
      /^trailing 2 d before \d{4}-\d\d-\d\d \d\d:\d\d UTC, held at the incident's start while it is open$/,
    );
    // The change point was estimated within a bucket of D (15 min), and the baseline ends there.
    expect(Math.abs(record!.changedAt! - D)).toBeLessThanOrEqual(HOUR);

    // The p95 rule too: trailing on, the baseline's p95 would soon be the slow one.
    expect(of('slow').slice(0, 2)).toEqual(['pending', 'firing']);
    expect(of('slow')).not.toContain('resolved');
    expect(last!.findings.find((f) => f.cohort === 'slow')!.status).toBe('degraded');

    // Held at its start too, an incident that ends resolves as a recovery, once.
    const recovers = events.filter(
      (e) => e.line.endsWith(' recovers') && !e.line.startsWith('repeat'),
    );
    expect(recovers.map((e) => e.line.split(' ')[0])).toEqual(['pending', 'firing', 'resolved']);
    expect(recovers[2]!.hours).toBeLessThan(24);
    const [resolved] = (await app.evaluator.alerts.history(100)).filter(
      (e) => e.cohort === 'recovers' && e.kind === 'resolved',
    );
    expect(resolved!.message.resolution).toBe('recovered');

    // The held baseline's range lies in the past: its read is kept, not repeated each evaluation.
    const queries: string[] = [];
    const store = temp.store;
    const counting: Store = {
      driver: store.driver,
      location: store.location,
      exec: (...args) => store.exec(...args),
      insertJsonEachRow: (...args) => store.insertJsonEachRow(...args),
      query: (...args) => {
        // The reads of whole ranges (baselines, held or not): one per range and evaluation.
        if (args[0].includes('quantileExact(0.95)(latency_ms) AS p95_latency_ms'))
          queries.push(args[0]);
        return store.query(...args);
      },
      queryReadOnly: (...args) => store.queryReadOnly(...args),
      ping: () => store.ping(),
      // Closed by the test's own teardown.
      close: async () => undefined,
    };
    const watching = await testApp(counting, { rules: RULES });
    const count = async () => {
      queries.length = 0;
      await watching.evaluator.evaluate(new Date(T));
      return queries.length;
    };
    const first = await count();
    const second = await count();
    expect(second).toBeLessThan(first);
    await watching.close();

    // A replay of a time when `recovers` was firing sees the incident as it was: its resolution,
    // later than that time, has not spent the evidence yet.
    const firingAt = D + (recovers[1]!.hours + 3) * HOUR;
    const replay = await app.evaluator.evaluate(new Date(firingAt), RULES, { dryRun: true });
    expect(replay.findings.find((f) => f.cohort === 'recovers')!.status).toBe('degraded');
    await app.close();
  }, 300_000);
});
