import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { parseRules } from '../../analyzer/rules.js';
import { evaluateCommand } from '../../cli/commands/evaluate.js';
import { chNumber } from '../../storage/rows.js';
import { sendTasks, testApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';
import { openTempStore } from '../support/store.js';
import { seeded, stream } from '../support/tasks.js';
import { disableDefaultRulesBut } from '../support/rules.js';

// A dry run of a past time steps the alerts from their state as of then, read back from the
// alert history, not from today's: an incident that fired before that time and resolved after it
// was firing then (audit finding #5: a replay of 20:10 said "0 alert(s) firing" and listed as
// `pending` two alerts that fired at 20:08 and resolved at 20:14, because they were resolved
// now). Time line (T = now): 95 % success over [T − 12 h − 2 d, T − 12 h), 75 % over
// [T − 12 h, T − 6 h), 95 % since. Evaluated live: pending at T − 6 h, firing a minute later
// (T0), resolved at T (T2); replayed in between (T1).

const HOUR = 3_600_000;
const T = Date.now() - 60_000;
const DEGRADED_FROM = T - 12 * HOUR;
const HEALTHY_FROM = T - 6 * HOUR;
const T0 = HEALTHY_FROM + 60_000;
const T1 = HEALTHY_FROM + 2 * HOUR;
const RULES = parseRules(`
evaluation: { horizon: 6h, baselineWindow: 2d, buckets: 24, minTasks: 100, minBaselineTasks: 100, pendingEvaluations: 2, resolveEvaluations: 2 }
rules:
  - { id: success_rate_drop, cohorts: [kyc] }
  - { id: fallback_rate_spike, cohorts: [kyc] }
${disableDefaultRulesBut('success_rate_drop', 'fallback_rate_spike')}
`);

let temp: Awaited<ReturnType<typeof openTempStore>>;
let app: TestApp;

/** Rows in the alert tables, every version: a dry run adds none. */
async function rowCounts(): Promise<number[]> {
  const counts: number[] = [];
  for (const table of ['alert_states', 'alert_events']) {
    const [row] = await temp.store.query(
      `SELECT count() AS n FROM ${table}`,
      {},
      z.object({ n: chNumber }),
    );
    counts.push(row!.n);
  }
  return counts;
}

beforeAll(async () => {
  temp = await openTempStore();
  const random = seeded(11);
  const part = (success: number, fromMs: number, toMs: number) =>
    stream(
      {
        cohort: 'kyc',
        routes: ['tiny'],
        success,
        tasks: ((toMs - fromMs) / HOUR) * 100,
        fromMs,
        toMs,
      },
      random,
    );
  app = await testApp(temp.store, { rules: RULES });
  await sendTasks(app, [
    ...part(0.95, DEGRADED_FROM - 48 * HOUR, DEGRADED_FROM),
    ...part(0.75, DEGRADED_FROM, HEALTHY_FROM),
    ...part(0.95, HEALTHY_FROM, T),
  ]);
  await app.writer.flush();
  // Live: raised, fired, then resolved once the window is healthy again.
  for (const at of [HEALTHY_FROM, T0, T - 60_000, T]) await app.evaluator.evaluate(new Date(at));
}, 180_000);
afterAll(async () => {
  await app?.close();
  await temp?.dispose();
});

it('replays a time inside a resolved incident with the incident firing', async () => {
  const [record] = await app.evaluator.alerts.states();
  expect(record).toMatchObject({ state: 'resolved', resolvedAt: T });
  const last = app.evaluator.lastResult;
  const before = await rowCounts();

  const result = await app.evaluator.evaluate(new Date(T1), undefined, { dryRun: true });
  // Firing then (since T0), and still degraded: held firing, no new incident opened.
  expect(result.firing).toBe(1);
  const drop = result.findings.find((f) => f.ruleId === 'success_rate_drop')!;
  expect(drop.status).toBe('degraded');
  // The incident open then holds the route's other rules at its start, as the live run did.
  const fallbacks = result.findings.find((f) => f.ruleId === 'fallback_rate_spike')!;
  expect(fallbacks.baseline.description).toMatch(
    /held at the start of the success_rate_drop incident open on this cohort × route$/,
  );
  expect(result.events.map((e) => e.kind)).not.toContain('pending');
  expect(result.events.map((e) => e.kind)).not.toContain('firing');
  // Said to be rebuilt from the history, with what the history does not keep.
  expect(result.replayedState).toMatch(/reconstructed from the alert history/);
  expect(result.replayedState).toMatch(/not stored/);

  // Nothing stored, nothing changed in the live state.
  expect(await rowCounts()).toEqual(before);
  expect(app.evaluator.lastResult).toBe(last);
  expect(await app.evaluator.alerts.states()).toEqual([record]);
}, 120_000);

const minute = (ms: number) => `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;

it('says the same through the API and the CLI, the rebuilt state under the count', async () => {
  const res = await app.app.inject({
    method: 'POST',
    url: `/api/v1/evaluate?at=${new Date(T1).toISOString()}&dryRun=true`,
  });
  expect(res.statusCode, res.body).toBe(200);
  const answer = res.json() as {
    firing: number;
    firingAlerts: { ruleId: string; cohort: string; route: string; since: string }[];
    replayedState: string | null;
  };
  expect(answer.firing).toBe(1);
  const firedAt = (await app.evaluator.alerts.history(100)).find(
    (e) => e.kind === 'firing' && e.ruleId === 'success_rate_drop',
  )!.at;
  expect(answer.firingAlerts).toEqual([
    {
      ruleId: 'success_rate_drop',
      cohort: 'kyc',
      route: 'tiny',
      detail: '',
      since: new Date(firedAt).toISOString(),
    },
  ]);
  expect(answer.replayedState).toMatch(/reconstructed from the alert history/);

  await app.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.app.server.address() as AddressInfo;
  const out: string[] = [];
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out.push(String(chunk));
    return true;
  });
  try {
    await evaluateCommand.run(
      { at: new Date(T1).toISOString(), 'dry-run': true, url: `http://127.0.0.1:${port}` },
      [],
    );
  } finally {
    write.mockRestore();
  }
  const [summary, note, firing] = out.join('').split('\n');
  expect(summary).toMatch(
    /^dry run \(nothing stored or notified\), evaluated at .*, 1 alert\(s\) firing$/,
  );
  expect(note).toMatch(/^note: alert state as of .* reconstructed from the alert history/);
  // Which alert, where, since when: the firing one is no transition of this evaluation.
  expect(firing).toBe(`firing: success_rate_drop on kyc × tiny since ${minute(firedAt)}`);
}, 120_000);

it('replays a time before the incident with nothing open, and one after it from the live state', async () => {
  const early = await app.evaluator.evaluate(new Date(HEALTHY_FROM - HOUR), undefined, {
    dryRun: true,
  });
  expect(early.firing).toBe(0);
  // The incident had not begun: it opens (pending) as it did live an hour later, number 1.
  expect(early.events.map((e) => e.kind)).toEqual(['pending']);
  expect(early.replayedState).toMatch(/reconstructed from the alert history/);
  // After the last evaluation: the live state is the state of then, nothing to rebuild.
  const later = await app.evaluator.evaluate(new Date(T + 30_000), undefined, { dryRun: true });
  expect(later.firing).toBe(0);
  expect(later.replayedState).toBeNull();
}, 120_000);
