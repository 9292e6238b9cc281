import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { openTempStore } from '../support/store.js';
import { hexId, otlpBody } from '../support/otlp.js';
import { testApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';

let temp: Awaited<ReturnType<typeof openTempStore>>;
let rw: TestApp;

beforeAll(async () => {
  temp = await openTempStore();
  rw = await testApp(temp.store);
});
afterAll(async () => {
  await rw?.close();
  await temp?.dispose();
});

const post = (body: string) =>
  rw.app.inject({
    method: 'POST',
    url: '/v1/traces',
    headers: { 'content-type': 'application/json' },
    payload: body,
  });

describe('POST /v1/outcomes', () => {
  const send = (payload: unknown) =>
    rw.app.inject({
      method: 'POST',
      url: '/v1/outcomes',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify(payload),
    });
  const outcomeRow = z.object({
    task_id: z.string(),
    outcome: z.string(),
    outcome_reason: z.string(),
    reask: z.number(),
    cleanup_cost_usd: z.number(),
    observed: z.string(),
  });
  const stored = () =>
    temp.store.query(
      `SELECT task_id, outcome, outcome_reason, reask, cleanup_cost_usd, toString(observed_at) AS observed
       FROM late_outcomes FINAL ORDER BY task_id, observed_at`,
      {},
      outcomeRow,
    );

  it('stores one report or a batch, and a report sent twice once', async () => {
    // Yesterday: an observedAt must be within retention, which moves with the clock.
    const day = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    const one = {
      taskId: 'task-late-1',
      outcome: 'failure',
      reason: 'human_corrected',
      reask: true,
      cleanupCostUsd: 0.4,
      observedAt: `${day}T10:00:00.000Z`,
    };
    expect((await send(one)).statusCode).toBe(202);
    expect((await send(one)).statusCode).toBe(202);
    const batch = await send({
      outcomes: [{ taskId: 'task-late-2', outcome: 'success', observedAt: `${day}T11:00:00Z` }],
    });
    expect(batch.statusCode).toBe(202);
    expect(batch.json()).toEqual({ accepted: 1 });
    expect(await stored()).toEqual([
      {
        task_id: 'task-late-1',
        outcome: 'failure',
        outcome_reason: 'human_corrected',
        reask: 1,
        cleanup_cost_usd: 0.4,
        observed: `${day} 10:00:00.000000000`,
      },
      {
        task_id: 'task-late-2',
        outcome: 'success',
        outcome_reason: '',
        reask: 0,
        cleanup_cost_usd: 0,
        observed: `${day} 11:00:00.000000000`,
      },
    ]);
  });

  it.each([
    ['an unknown outcome', { taskId: 't', outcome: 'great' }, /outcome/],
    ['a missing task id', { outcome: 'success' }, /taskId/],
    [
      'a negative cleanup cost',
      { taskId: 't', outcome: 'success', cleanupCostUsd: -1 },
      /cleanupCostUsd/,
    ],
    ['an unknown field', { taskId: 't', outcome: 'success', color: 'red' }, /color|unrecognized/i],
  ])('rejects %s with 400 naming the field', async (_name, payload, message) => {
    await temp.store.exec('TRUNCATE TABLE late_outcomes');
    const res = await rw.app.inject({
      method: 'POST',
      url: '/v1/outcomes',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify(payload),
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(res.json().error.message).toMatch(message);
    expect(await stored()).toEqual([]);
  });

  it.each([
    [
      'further ahead than the clock skew',
      { taskId: 't-ahead', outcome: 'success', observedAt: '9999-12-31T23:59:59Z' },
      /^invalid outcome report: observedAt: 9999-12-31T23:59:59\.000Z is after .*ROUTEWATCH_MAX_CLOCK_SKEW/,
    ],
    [
      'older than retention',
      { taskId: 't-old', outcome: 'success', observedAt: '0001-01-01T00:00:00Z' },
      /^invalid outcome report: observedAt: 0001-01-01T00:00:00\.000Z is before .*ROUTEWATCH_RETENTION_DAYS/,
    ],
    [
      'in a batch where every report has one, naming the first',
      {
        outcomes: [
          { taskId: 't-ahead', outcome: 'success', observedAt: '2062-01-01T00:00:00Z' },
          { taskId: 't-old', outcome: 'success', observedAt: '0001-01-01T00:00:00Z' },
        ],
      },
      /^invalid outcome report: outcomes\.0\.observedAt: 2062-01-01T00:00:00\.000Z is after/,
    ],
  ])('refuses an observedAt %s with 400, storing nothing', async (_name, payload, message) => {
    await temp.store.exec('TRUNCATE TABLE late_outcomes');
    const res = await send(payload);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toMatch(message);
    expect(await stored()).toEqual([]);
  });

  it('takes the rest of a batch when some reports are out of the window, naming those left out', async () => {
    await temp.store.exec('TRUNCATE TABLE late_outcomes');
    const far = (i: number) => `20${62 + i}-01-01T00:00:00Z`;
    const res = await send({
      outcomes: [
        { taskId: 't-ok-1', outcome: 'success' },
        { taskId: 't-old', outcome: 'failure', observedAt: '0001-01-01T00:00:00Z' },
        { taskId: 't-ok-2', outcome: 'failure' },
        ...[0, 1, 2].map((i) => ({
          taskId: `t-ahead-${i}`,
          outcome: 'success',
          observedAt: far(i),
        })),
      ],
    });
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(body).toMatchObject({ accepted: 2, rejected: 4 });
    expect(body.errorMessage).toMatch(
      /^4 of 6 reports were not stored, the rest were: outcomes\.1\.observedAt: 0001-01-01T00:00:00\.000Z is before .*ROUTEWATCH_RETENTION_DAYS.*; outcomes\.3\.observedAt: 2062-01-01T00:00:00\.000Z is after .*; outcomes\.4\.observedAt: .*; and 1 more$/,
    );
    expect((await stored()).map((row) => [row.task_id, row.outcome])).toEqual([
      ['t-ok-1', 'success'],
      ['t-ok-2', 'failure'],
    ]);
  });

  it('takes an observedAt within the clock skew ahead', async () => {
    await temp.store.exec('TRUNCATE TABLE late_outcomes');
    const soon = new Date(Date.now() + 10 * 60_000).toISOString();
    expect(
      (await send({ taskId: 't-soon', outcome: 'success', observedAt: soon })).statusCode,
    ).toBe(202);
    expect(await stored()).toHaveLength(1);
  });

  it('joins a report naming the trace id in upper case to the task', async () => {
    await temp.store.exec('TRUNCATE TABLE late_outcomes');
    const traceId = hexId(16);
    const spans = otlpBody([
      { traceId, name: 'routewatch.task faq', attributes: { 'routewatch.cohort': 'faq' } },
    ]);
    expect((await post(JSON.stringify(spans))).statusCode).toBe(200);
    await rw.writer.flush();
    const res = await rw.app.inject({
      method: 'POST',
      url: '/v1/outcomes',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ taskId: traceId.toUpperCase(), outcome: 'escalated' }),
    });
    expect(res.statusCode).toBe(202);
    const [task] = await temp.store.query(
      'SELECT outcome FROM v_tasks WHERE task_id = {id:String}',
      { id: traceId },
      z.object({ outcome: z.string() }),
    );
    expect(task?.outcome).toBe('escalated');
  });

  it('counts a retried report once, and two different reports in one instant both', async () => {
    await temp.store.exec('TRUNCATE TABLE late_outcomes');
    // No observedAt: each arrival gets its own receive time, the report stays the same one.
    const cleanup = { taskId: 'task-retry', outcome: 'failure', cleanupCostUsd: 0.25 };
    expect((await send(cleanup)).statusCode).toBe(202);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect((await send(cleanup)).statusCode).toBe(202);
    // Two cleanups of one task in one batch (same receive time), told apart by content or id.
    const batch = {
      outcomes: [
        { taskId: 'task-two', outcome: 'failure', cleanupCostUsd: 0.1 },
        { taskId: 'task-two', outcome: 'failure', cleanupCostUsd: 0.2 },
        { taskId: 'task-two', outcome: 'failure', cleanupCostUsd: 0.2, reportId: 'ticket-9' },
        { taskId: 'task-two', outcome: 'failure', cleanupCostUsd: 0.2, reportId: 'ticket-9' },
      ],
    };
    expect((await send(batch)).statusCode).toBe(202);
    const sums = await temp.store.query(
      'SELECT task_id, count() AS reports, sum(cleanup_cost_usd) AS cost FROM late_outcomes FINAL GROUP BY task_id ORDER BY task_id',
      {},
      z.object({ task_id: z.string(), reports: z.coerce.number(), cost: z.number() }),
    );
    expect(sums).toEqual([
      { task_id: 'task-retry', reports: 1, cost: 0.25 },
      { task_id: 'task-two', reports: 3, cost: expect.closeTo(0.5, 12) },
    ]);
  });

  it('stores a report whose strings hold a lone surrogate, with the batch around it', async () => {
    const response = await send({
      outcomes: [
        { taskId: 'task-surrogate-\ud800', outcome: 'failure', reason: 'cut \udc00 off' },
        { taskId: 'task-surrogate-ok', outcome: 'success' },
      ],
    });
    expect(response.statusCode).toBe(202);
    const rows = (await stored()).filter((r) => r.task_id.startsWith('task-surrogate-'));
    expect(rows.map((r) => [r.task_id, r.outcome_reason])).toEqual([
      ['task-surrogate-ok', ''],
      ['task-surrogate-\ufffd', 'cut \ufffd off'],
    ]);
  });

  it('rejects malformed JSON with 400', async () => {
    const res = await rw.app.inject({
      method: 'POST',
      url: '/v1/outcomes',
      headers: { 'content-type': 'application/json' },
      payload: '{"taskId":',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toMatch(/not valid JSON/);
  });

  it('reads a gzip body', async () => {
    await temp.store.exec('TRUNCATE TABLE late_outcomes');
    const res = await rw.app.inject({
      method: 'POST',
      url: '/v1/outcomes',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      payload: gzipSync(JSON.stringify({ taskId: 'task-gz', outcome: 'success' })),
    });
    expect(res.statusCode).toBe(202);
    expect((await stored()).map((r) => r.task_id)).toEqual(['task-gz']);
  });

  it('refuses a cleanup cost no human review could cost, so no total becomes infinite', async () => {
    await temp.store.exec('TRUNCATE TABLE late_outcomes');
    const res = await send({ taskId: 'task-big', outcome: 'failure', cleanupCostUsd: 1e308 });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toMatch(/cleanupCostUsd/);
    expect(await stored()).toEqual([]);
  });
});

describe('POST /v1/outcomes against a store that does not answer', () => {
  it('answers 503 with Retry-After within ROUTEWATCH_MAX_QUEUE_WAIT, and the late write plus a retry count once', async () => {
    await temp.store.exec('TRUNCATE TABLE late_outcomes');
    // Inserts into late_outcomes held for 1.5 s: a ClickHouse server that hangs.
    let held = 0;
    const hanging: typeof temp.store = Object.create(temp.store, {
      insertJsonEachRow: {
        value: async (...args: Parameters<typeof temp.store.insertJsonEachRow>) => {
          if (args[0] === 'late_outcomes') {
            held++;
            await new Promise((r) => setTimeout(r, 1_500));
          }
          return temp.store.insertJsonEachRow(...args);
        },
      },
    });
    const slow = await testApp(hanging, { config: { ROUTEWATCH_MAX_QUEUE_WAIT: '200ms' } });
    try {
      const report = { taskId: 'task-hung', outcome: 'failure', reportId: 'r-hung' };
      const send = () =>
        slow.app.inject({
          method: 'POST',
          url: '/v1/outcomes',
          headers: { 'content-type': 'application/json' },
          payload: JSON.stringify(report),
        });
      const first = await send();
      expect(first.statusCode).toBe(503);
      expect(first.headers['retry-after']).toBe('5');
      expect(first.json().error.message).toMatch(
        /^the store did not answer within 0\.2 s: retry the same reports later \(a retry counts once, also if this write lands after all\)/,
      );
      expect(held).toBe(1);
      // Three more held past their answer; the next is refused without a write.
      for (let i = 0; i < 3; i++) expect((await send()).statusCode).toBe(503);
      const refused = await send();
      expect(refused.statusCode).toBe(503);
      expect(refused.json().error.message).toMatch(
        /^the store has not answered 4 earlier writes of outcomes: retry the same reports later/,
      );
      expect(held).toBe(4);
      // The held writes land; the client's retry of the same report changes nothing.
      await new Promise((r) => setTimeout(r, 1_700));
      const retry = await send();
      expect(retry.statusCode).toBe(503);
      await new Promise((r) => setTimeout(r, 1_700));
      const rows = await temp.store.query(
        "SELECT task_id FROM late_outcomes FINAL WHERE task_id = 'task-hung'",
        {},
        z.object({ task_id: z.string() }),
      );
      expect(rows).toEqual([{ task_id: 'task-hung' }]);
    } finally {
      await slow.close();
    }
  });
});
