import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { buildReport, toClickHouseTime } from '../../analyzer/report.js';
import {
  generateParams,
  insertLateOutcomesSql,
  insertSpansSql,
} from '../../bench/analyzer/generate.js';
import { runDemo } from '../../cli/demo.js';
import { migrate } from '../../storage/migrations.js';
import { refreshRollups } from '../../storage/rollups.js';
import { ServerStore } from '../../storage/server-store.js';
import { MAX_BOUND_CHANGED_TASKS, readChanged } from '../../storage/window-sql.js';
import { dateAt } from '../support/time.js';
import { startClickHouseHttp } from '../support/clickhouse-http.js';
import { DEMO, expectReportMatchesTruth } from '../support/demo-truth.js';

// test/integration/e2e.test.ts on the server driver: routewatch with CLICKHOUSE_URL pointing at a
// ClickHouse HTTP interface (the real engine behind it), strict about unknown fields.
describe('end to end on a ClickHouse server: … → collector → @clickhouse/client over HTTP → views → report', () => {
  it('reproduces the ground truth the simulator computed itself', async () => {
    const server = await startClickHouseHttp({
      user: 'routewatch',
      password: 'routewatch',
      databases: ['routewatch'],
      strict: true,
    });
    try {
      let printed = '';
      const result = await runDemo({
        ...DEMO,
        clickhouseUrl: server.url,
        out: (text) => (printed += text),
      });
      expect(printed).toMatch(/server ClickHouse/);
      const inserts = server.requests.filter((r) => r.query.startsWith('INSERT INTO spans'));
      expect(inserts.length).toBeGreaterThan(0);
      expect(inserts.every((r) => r.database === 'routewatch' && r.exceptionCode === 0)).toBe(true);
      expectReportMatchesTruth(result, printed);
    } finally {
      await server.close();
    }
  });

  it('binds as many changed tasks as the analyzer sends as parameters, and reads the views beyond that', async () => {
    const server = await startClickHouseHttp({ strict: true });
    const store = new ServerStore({ url: server.url });
    try {
      await migrate(store);
      const tasks = 1200;
      const params = generateParams({
        seed: 5,
        tasks,
        first: 0,
        count: tasks,
        base: toClickHouseTime(dateAt(-24 * 3_600_000)),
        periodDays: 1,
      });
      await store.exec(insertSpansSql('main'), params);
      await store.exec(insertLateOutcomesSql(), params);
      const window = { from: dateAt(-25 * 3_600_000), to: dateAt(3_600_000) };
      // The view's own answer, read by name: the reference for the report's flat reads.
      const fromView = () =>
        store.query(
          `SELECT cohort, primary_route, tasks, failures FROM v_window_metrics(
             from = {from:DateTime64(9, 'UTC')}, to = {to:DateTime64(9, 'UTC')},
             cohorts = [], routes = [], services = [], policies = [])
           WHERE NOT is_overall ORDER BY cohort, primary_route`,
          { from: toClickHouseTime(window.from), to: toClickHouseTime(window.to) },
          z.object({
            cohort: z.string(),
            primary_route: z.string(),
            tasks: z.coerce.number(),
            failures: z.coerce.number(),
          }),
        );
      const expected = await fromView();
      const counts = async () =>
        (await buildReport(store, window)).rows.map((r) => ({
          cohort: r.cohort,
          primary_route: r.primaryRoute,
          tasks: r.tasks,
          failures: r.failures,
        }));
      // Before any refresh every task changed: more than can be bound.
      expect((await readChanged(store)).tasks.length).toBe(MAX_BOUND_CHANGED_TASKS + 1);
      expect(await counts()).toEqual(expected);
      // After a refresh, exactly as many late outcomes as can be bound: ids in the URL.
      await refreshRollups(store, { marginMs: 0 });
      await store.exec(
        `INSERT INTO late_outcomes (task_id, report_id, observed_at, outcome, source)
         SELECT task_id, 'bound', now64(9), 'success', 'test' FROM task_snapshot FINAL
         ORDER BY task_id LIMIT {n:UInt32}`,
        { n: MAX_BOUND_CHANGED_TASKS },
      );
      expect((await readChanged(store)).tasks.length).toBe(MAX_BOUND_CHANGED_TASKS);
      const after = await fromView();
      expect(after).not.toEqual(expected);
      expect(await counts()).toEqual(after);
    } finally {
      await store.close();
      await server.close();
    }
  });
});
