// A task_events row stamped at or before a refresh's cut-off that becomes visible only after the
// refresh read the table (a replica fetching a part late, a slow commit, a clock stepped back)
// was never read again: its task's row stayed stale in v_tasks and the window views, or a new
// task stayed out. The repair (repairRollups) finds such tasks and has their rows read again.
// (After /work/review/rollup.md; its regression test, extended.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { refreshRollups, repairRollups } from '../../storage/rollups.js';
import { openTempStore } from '../support/store.js';

const HOUR = 3_600_000;
const hourStart = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;
const ch = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
const any = z.record(z.string(), z.unknown());
let temp: Awaited<ReturnType<typeof openTempStore>>;

const spansSql = (task: string, offsetMs: number, outcome: string) => `INSERT INTO spans
  (timestamp, end_time, duration_ns, trace_id, span_id, name, kind, service_name, task_id, cohort, route, attempt,
   request_model, input_tokens, output_tokens, cost_usd, cost_source, status_code, outcome)
  SELECT toDateTime64('${ch(hourStart + offsetMs)}', 9, 'UTC') + toIntervalMillisecond(number),
    toDateTime64('${ch(hourStart + offsetMs)}', 9, 'UTC') + toIntervalMillisecond(400), 400000000,
    'trace-${task}', concat('${task}-', toString(number)), 'x', ['task','attempt','llm'][number + 1], 'svc',
    '${task}', 'c1', if(number = 0, '', 'small'), if(number = 0, 0, 1), if(number = 2, 'gpt-4o-mini', ''),
    if(number = 2, 1000, 0), if(number = 2, 200, 0), if(number = 2, 0.01, 0),
    if(number = 2, 'price_table', 'none'), 'ok', if(number = 0, '${outcome}', '')
  FROM numbers(3)`;

async function expectViewsEqualRaw(): Promise<void> {
  const cols = 'task_id, outcome, cost_usd, model_calls';
  const q = (sql: string, p = {}) => temp.store.query(sql, p, any);
  expect(await q(`SELECT ${cols} FROM v_tasks ORDER BY task_id`)).toEqual(
    await q(`SELECT ${cols} FROM v_tasks_from_spans ORDER BY task_id`),
  );
  const w = { from: ch(hourStart), to: ch(hourStart + HOUR) };
  const W = (v: string) =>
    `SELECT tasks, successes, failures FROM ${v}(from = {from:DateTime64(9,'UTC')}, to = {to:DateTime64(9,'UTC')}, cohorts = [], routes = [], services = [], policies = []) WHERE is_overall`;
  expect(await q(W('v_window_metrics'), w)).toEqual(await q(W('v_window_metrics_from_spans'), w));
}

describe('rows visible after the refresh that their stamp falls before', () => {
  beforeAll(async () => {
    temp = await openTempStore();
    await temp.store.exec('SYSTEM STOP MERGES task_events');
    await temp.store.exec(spansSql('t1', 60_000, 'success'));
    await refreshRollups(temp.store, { marginMs: 0 });
  });
  afterAll(async () => temp?.dispose());

  it('a part committed late (replica fetch, slow commit): a late outcome and a new task', async () => {
    await temp.store
      .exec(`INSERT INTO late_outcomes (task_id, report_id, observed_at, outcome, source)
      VALUES ('t1', 'r1', toDateTime64('${ch(hourStart + 50 * 60_000)}', 9, 'UTC'), 'failure', 'api')`);
    await temp.store.exec(spansSql('t2', 120_000, 'success'));
    const parts = await temp.store.query(
      `SELECT DISTINCT _part AS part FROM task_events WHERE inserted_at > (SELECT max(clean_before) FROM rollup_state)`,
      {},
      z.object({ part: z.string() }),
    );
    for (const { part } of parts)
      await temp.store.exec(`ALTER TABLE task_events DETACH PART '${part}'`);
    await new Promise((r) => setTimeout(r, 5)); // the refresh's cut-off (margin 0) is after the stamps
    await refreshRollups(temp.store, { marginMs: 0 });
    for (const { part } of parts)
      await temp.store.exec(`ALTER TABLE task_events ATTACH PART '${part}'`);
    await refreshRollups(temp.store, { marginMs: 0 });
    // Without the repair the views read t1's stale snapshot (success) and leave t2 out.
    await expect(expectViewsEqualRaw()).rejects.toThrow();
    expect(await repairRollups(temp.store)).toEqual({ tasks: 2 });
    await expectViewsEqualRaw();
    // And after the next refresh, from the rollups; a second repair finds nothing.
    await refreshRollups(temp.store, { marginMs: 0 });
    await expectViewsEqualRaw();
    expect(await repairRollups(temp.store)).toEqual({ tasks: 0 });
  });

  it('a row stamped before clean_before (the server clock stepped back)', async () => {
    await temp.store.exec('SYSTEM START MERGES task_events');
    await temp.store.exec(spansSql('t3', 180_000, 'success'));
    await temp.store
      .exec(`ALTER TABLE task_events UPDATE inserted_at = (SELECT max(clean_before) FROM rollup_state) - toIntervalSecond(5)
      WHERE task_id = 't3' SETTINGS mutations_sync = 2`);
    await refreshRollups(temp.store, { marginMs: 0 });
    await expect(expectViewsEqualRaw()).rejects.toThrow();
    expect(await repairRollups(temp.store)).toEqual({ tasks: 1 });
    await expectViewsEqualRaw();
    await refreshRollups(temp.store, { marginMs: 0 });
    await expectViewsEqualRaw();
  });

  it('finds a new task seen late whatever join_use_nulls the server profile sets', async () => {
    await temp.store.exec(spansSql('t5', 300_000, 'success'));
    await temp.store
      .exec(`ALTER TABLE task_events UPDATE inserted_at = (SELECT max(clean_before) FROM rollup_state) - toIntervalSecond(5)
      WHERE task_id = 't5' SETTINGS mutations_sync = 2`);
    await temp.store.exec('SET join_use_nulls = 1');
    try {
      expect(await repairRollups(temp.store)).toEqual({ tasks: 1 });
    } finally {
      await temp.store.exec('SET join_use_nulls = 0');
    }
    await expectViewsEqualRaw();
  });

  it('leaves tasks whose snapshot is right alone', async () => {
    await temp.store.exec(spansSql('t4', 240_000, 'failure'));
    await refreshRollups(temp.store, { marginMs: 0 });
    expect(await repairRollups(temp.store)).toEqual({ tasks: 0 });
    await expectViewsEqualRaw();
  });
});
