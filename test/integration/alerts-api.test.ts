import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertsAnswer } from '../../analyzer/api-routes.js';
import { craftAlertEndings } from '../support/alert-endings.js';
import type { AlertEndings } from '../support/alert-endings.js';
import { sendTasks, testApp } from '../support/app.js';
import { seeded, stream } from '../support/tasks.js';
import type { TestApp } from '../support/app.js';
import { openTempStore } from '../support/store.js';

// GET /api/v1/alerts on alerts that stand or ended each way (test/support/alert-endings.ts): held
// without a verdict, closed without one (held too long; its rule removed), recovered.

let temp: Awaited<ReturnType<typeof openTempStore>>;
let rw: TestApp;
let endings: AlertEndings;

beforeAll(async () => {
  temp = await openTempStore();
  rw = await testApp(temp.store);
  endings = await craftAlertEndings(rw, Date.now() - 60_000);
}, 120_000);
afterAll(async () => {
  await rw?.close();
  await temp?.dispose();
});

async function alertsAnswer(query = ''): Promise<AlertsAnswer> {
  const res = await rw.app.inject({ method: 'GET', url: `/api/v1/alerts${query}` });
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
}

const byCohort = (answer: AlertsAnswer) =>
  Object.fromEntries(
    answer.alerts.map((a) => [
      a.cohort,
      {
        state: a.state,
        heldSince: a.heldSince,
        resolution: a.resolution,
        status: a.finding.status,
      },
    ]),
  );

describe('GET /api/v1/alerts', () => {
  it('says since when a firing alert has been held, and how each resolved alert ended', async () => {
    expect(byCohort(await alertsAnswer())).toEqual({
      held: {
        state: 'firing',
        heldSince: new Date(endings.heldSince).toISOString(),
        resolution: null,
        status: 'insufficient_data',
      },
      'held-too-long': {
        state: 'resolved',
        heldSince: null,
        resolution: 'closed_without_verdict',
        status: 'insufficient_data',
      },
      'rule-removed': {
        state: 'resolved',
        heldSince: null,
        resolution: 'closed_without_verdict',
        status: 'insufficient_data',
      },
      // Regression: its monitor has no verdict since it recovered (the evidence before the
      // resolution is spent), which is not how its incident ended.
      recovered: {
        state: 'resolved',
        heldSince: null,
        resolution: 'recovered',
        status: 'insufficient_data',
      },
    });
  });

  it('reads how an alert ended from its closing transition, however little history is asked for', async () => {
    const all = byCohort(await alertsAnswer());
    expect(byCohort(await alertsAnswer('?history=0'))).toEqual(all);
    expect(byCohort(await alertsAnswer('?state=resolved&history=1'))).toEqual(
      Object.fromEntries(Object.entries(all).filter(([, a]) => a.state === 'resolved')),
    );
  });

  it('filters the history by cohort and route before its limit, so that busier cohorts do not push one out', async () => {
    const { history } = await alertsAnswer('?history=1000');
    // The cohort whose latest transition is the oldest: the first pushed out by a small limit.
    const quietest = [...new Set(history.map((e) => e.cohort))].at(-1)!;
    const its = history.filter((e) => e.cohort === quietest);
    expect(history.findIndex((e) => e.cohort === quietest)).toBeGreaterThanOrEqual(its.length);
    // Unfiltered, the latest `its.length` transitions are all other cohorts'.
    const latest = await alertsAnswer(`?history=${its.length}`);
    expect(latest.history.filter((e) => e.cohort === quietest)).toEqual([]);
    const filtered = await alertsAnswer(
      `?history=${its.length}&cohort=${encodeURIComponent(quietest)}`,
    );
    expect(filtered.history).toEqual(its);
    expect(new Set(filtered.alerts.map((a) => a.cohort))).toEqual(new Set([quietest]));
    const route = its[0]!.route;
    const byRoute = await alertsAnswer(`?route=${encodeURIComponent(route)}&history=1000`);
    expect(byRoute.history).toEqual(history.filter((e) => e.route === route));
    expect(byRoute.alerts.every((a) => a.route === route)).toBe(true);
  });

  it('keeps what a held alert fired on beside why it cannot be judged now', async () => {
    const answer = await alertsAnswer('?history=1000');
    const held = answer.alerts.find((a) => a.cohort === 'held')!;
    const fired = answer.history.find((e) => e.cohort === 'held' && e.kind === 'firing')!;
    expect(held.heldSince).not.toBeNull();
    expect(held.firedSummary).toBe(fired.summary);
    expect(held.firedSummary).not.toBe(held.summary);
    expect(answer.alerts.filter((a) => a.state !== 'firing').map((a) => a.firedSummary)).toEqual(
      answer.alerts.filter((a) => a.state !== 'firing').map(() => null),
    );
  });

  it('gives each resolved transition its resolution, and the others none', async () => {
    const { history } = await alertsAnswer();
    const resolutions = history.map((e) => `${e.kind} ${e.cohort}: ${e.resolution}`);
    expect(resolutions.filter((r) => r.startsWith('resolved')).sort()).toEqual([
      'resolved held-too-long: closed_without_verdict',
      'resolved recovered: recovered',
      'resolved rule-removed: closed_without_verdict',
    ]);
    expect(history.filter((e) => e.kind !== 'resolved').map((e) => e.resolution)).toEqual(
      history.filter((e) => e.kind !== 'resolved').map(() => null),
    );
    expect(history.filter((e) => e.kind === 'firing')).toHaveLength(4);
  });

  it('summarises a resolved alert by how it ended, not by the evaluations since', async () => {
    const { alerts, history } = await alertsAnswer();
    const closing = (cohort: string) =>
      history.find((e) => e.kind === 'resolved' && e.cohort === cohort)?.summary;
    const recovered = alerts.find((a) => a.cohort === 'recovered')!;
    // Evaluated twice since its recovery, with no verdict: its latest finding says so…
    expect(recovered.finding.status).toBe('insufficient_data');
    expect(recovered.finding.summary).not.toBe(closing('recovered'));
    // …its summary still says how the incident ended.
    expect(recovered.summary).toBe(closing('recovered'));
    for (const a of alerts.filter((a) => a.state === 'resolved'))
      expect(a.summary, a.cohort).toBe(closing(a.cohort));
    expect(alerts.find((a) => a.cohort === 'held')!.summary).toBe(
      alerts.find((a) => a.cohort === 'held')!.finding.summary,
    );
  });

  // Last: it rewrites the stored events.
  it('tells how an alert ended from events stored before they carried a resolution', async () => {
    const before = await alertsAnswer();
    await temp.store.exec(
      `ALTER TABLE alert_events UPDATE message = replaceRegexpOne(message, '"resolution":"[a-z_]+",?', '')
       WHERE kind = 'resolved' SETTINGS mutations_sync = 2`,
    );
    const stripped = await rw.evaluator.alerts.history(100);
    const resolvedEvents = stripped.filter((e) => e.kind === 'resolved');
    expect(resolvedEvents).toHaveLength(3);
    expect(resolvedEvents.every((e) => e.message.resolution === undefined)).toBe(true);
    const after = await alertsAnswer();
    expect(byCohort(after)).toEqual(byCohort(before));
    expect(after.history.map((e) => e.resolution)).toEqual(before.history.map((e) => e.resolution));
  });
});

describe('what no rule could judge', () => {
  it('lists a cohort too small for any rule, with why, and not one that is watched', async () => {
    const now = Date.now() - 60_000;
    const random = seeded(3);
    await sendTasks(rw, [
      ...stream(
        {
          cohort: 'tiny',
          routes: ['small'],
          tasks: 20,
          success: 0.5,
          fromMs: now - 3_600_000,
          toMs: now,
        },
        random,
      ),
    ]);
    await rw.writer.flush();
    await rw.evaluator.evaluate(new Date(now));
    const answer = await alertsAnswer();
    const tiny = answer.unjudged.find((u) => u.cohort === 'tiny');
    expect(tiny).toMatchObject({
      route: 'small',
      reason: expect.stringMatching(/^20 in the current window, fewer than the minimum \d+$/),
    });
    // An alert open on a cohort × route is listed as an alert, not here.
    const open = answer.alerts.filter((a) => a.state === 'firing' || a.state === 'pending');
    for (const a of open)
      expect(answer.unjudged).not.toContainEqual(
        expect.objectContaining({ cohort: a.cohort, route: a.route }),
      );
  });
});
