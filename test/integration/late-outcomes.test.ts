import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { openTempStore } from '../support/store.js';
import { hexId, otlpBody } from '../support/otlp.js';
import { testApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';
import { nsAt } from '../support/time.js';

let temp: Awaited<ReturnType<typeof openTempStore>>;
let collector: TestApp;
beforeAll(async () => {
  temp = await openTempStore();
  collector = await testApp(temp.store, { config: { ROUTEWATCH_BATCH_DELAY: '1ms' } });
});
afterAll(async () => {
  await collector?.close();
  await temp?.dispose();
});

/** A task with a task span and no outcome of its own. */
async function startTask(taskId: string): Promise<void> {
  const res = await collector.app.inject({
    method: 'POST',
    url: '/v1/traces',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(
      otlpBody([
        {
          traceId: hexId(16),
          name: 'routewatch.task faq',
          kind: 1,
          start: nsAt(0),
          end: nsAt(100),
          attributes: { 'routewatch.task.id': taskId, 'routewatch.cohort': 'faq' },
        },
      ]),
    ),
  });
  expect(res.statusCode).toBe(200);
  await collector.writer.flush();
}

async function report(payload: Record<string, unknown>): Promise<void> {
  const res = await collector.app.inject({
    method: 'POST',
    url: '/v1/outcomes',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(payload),
  });
  expect(res.statusCode).toBe(202);
}

/**
 * Waits until the clock has moved on by a millisecond: reports without observedAt are timed by
 * their arrival, and the cases below need arrivals at distinct times.
 */
async function nextMillisecond(): Promise<void> {
  const start = Date.now();
  while (Date.now() === start) await new Promise((resolve) => setImmediate(resolve));
}

const taskRow = z.object({
  outcome: z.string(),
  outcome_reason: z.string(),
  cleanup_cost_usd: z.number(),
});
async function task(taskId: string) {
  const [row] = await temp.store.query(
    'SELECT outcome, outcome_reason, cleanup_cost_usd FROM v_tasks WHERE task_id = {id:String}',
    { id: taskId },
    taskRow,
  );
  return row;
}

describe('late outcomes (POST /v1/outcomes)', () => {
  it('ignores a retried old report: failure, then success, then the failure again reads as success', async () => {
    await startTask('retried');
    const failure = {
      taskId: 'retried',
      outcome: 'failure',
      reason: 'wrong_answer',
      cleanupCostUsd: 0.25,
    };
    await report(failure);
    await nextMillisecond();
    await report({ taskId: 'retried', outcome: 'success', reason: 'human_corrected' });
    await nextMillisecond();
    await report(failure); // the client's retry of the first report
    const expected = {
      outcome: 'success',
      outcome_reason: 'human_corrected',
      cleanup_cost_usd: 0.25,
    };
    expect(await task('retried')).toEqual(expected);
    // The same once the engine has merged the report's copies into one.
    await temp.store.exec('OPTIMIZE TABLE late_outcomes FINAL');
    expect(await task('retried')).toEqual(expected);
    const [copies] = await temp.store.query(
      "SELECT count() AS n FROM late_outcomes WHERE task_id = 'retried'",
      {},
      z.object({ n: z.coerce.number() }),
    );
    expect(copies?.n).toBe(2);
  });

  it('orders reports of the same time by report id, whatever order they arrive in', async () => {
    const observedAt = new Date().toISOString();
    const first = { outcome: 'success', reportId: 'review-a', observedAt };
    const second = { outcome: 'failure', reportId: 'review-b', observedAt };
    await startTask('tie-ab');
    await startTask('tie-ba');
    await report({ taskId: 'tie-ab', ...first });
    await report({ taskId: 'tie-ab', ...second });
    await report({ taskId: 'tie-ba', ...second });
    await report({ taskId: 'tie-ba', ...first });
    expect((await task('tie-ab'))?.outcome).toBe('failure');
    expect((await task('tie-ba'))?.outcome).toBe('failure');
  });

  it('keeps a report with an older observedAt behind a newer one that arrived first', async () => {
    const hoursAgo = (hours: number) => new Date(Date.now() - hours * 3_600_000).toISOString();
    await startTask('older');
    await report({ taskId: 'older', outcome: 'success', observedAt: hoursAgo(1) });
    await report({ taskId: 'older', outcome: 'failure', observedAt: hoursAgo(2) });
    expect((await task('older'))?.outcome).toBe('success');
  });
});
