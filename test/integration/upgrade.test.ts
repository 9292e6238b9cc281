import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { clickHouseTime, normalizeRequest } from '../../collector/normalize.js';
import { decodeTraceRequestJson } from '../../collector/otlp-json.js';
import { PriceTable } from '../../collector/pricing.js';
import { EmbeddedStore } from '../../storage/embedded-store.js';
import { buildReport } from '../../analyzer/report.js';
import { loadMigrations, loadViews, migrate } from '../../storage/migrations.js';
import { refreshRollups } from '../../storage/rollups.js';
import type { MigrationResult } from '../../storage/migrations.js';
import { hexId, otlpBody } from '../support/otlp.js';
import type { TestSpan } from '../support/otlp.js';
import { dateAt, nsAt } from '../support/time.js';

// A data directory with the history a store has today: migrated to 0004, written to (late
// outcomes in the 0002 table), migrated to 0007 (0005 copied them to outcome_reports), written
// to again. Then the current migrate: the numbered migrations since, and the views of sql/views.
// Numbered migrations never change once applied (their checksums are checked), so the current
// 0001–0007 are exactly what such a store ran.

let dir: string;
let store: EmbeddedStore;
let upgrade: MigrationResult;
const before: {
  spans: Record<string, unknown>[];
  tasks: Record<string, unknown>[];
  reports: Record<string, unknown>[];
  reportCopies: number;
} = { spans: [], tasks: [], reports: [], reportCopies: 0 };

const anyRow = z.record(z.string(), z.unknown());
const countRow = z.object({ n: z.coerce.number() });
const upTo = (version: number) => loadMigrations().filter((m) => m.version <= version);

function taskSpans(taskId: string, startMs: number, outcome?: string): TestSpan[] {
  const traceId = hexId(16);
  const common = { 'routewatch.task.id': taskId, 'routewatch.cohort': 'faq' };
  return [
    {
      traceId,
      name: 'routewatch.task faq',
      kind: 1,
      start: nsAt(startMs),
      end: nsAt(startMs + 100),
      attributes: { ...common, ...(outcome ? { 'routewatch.outcome': outcome } : {}) },
    },
    {
      traceId,
      name: 'routewatch.attempt small',
      kind: 1,
      start: nsAt(startMs + 1),
      end: nsAt(startMs + 50),
      attributes: { ...common, 'routewatch.route': 'small', 'routewatch.attempt': 1 },
    },
    {
      traceId,
      start: nsAt(startMs + 2),
      end: nsAt(startMs + 40),
      attributes: {
        ...common,
        'routewatch.route': 'small',
        'routewatch.attempt': 1,
        'gen_ai.request.model': 'gpt-4o-mini',
        'gen_ai.usage.input_tokens': 1000,
        'gen_ai.usage.output_tokens': 100,
      },
    },
  ];
}

async function insertSpans(spans: TestSpan[]): Promise<void> {
  const { rows } = normalizeRequest(
    decodeTraceRequestJson(JSON.stringify(otlpBody(spans))),
    new PriceTable(),
  );
  await store.insertJsonEachRow(
    'spans',
    Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n')),
  );
}

async function insertRows(table: string, rows: Record<string, unknown>[]): Promise<void> {
  await store.insertJsonEachRow(table, Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n')));
}

const readSpans = () => store.query('SELECT * FROM spans ORDER BY trace_id, span_id', {}, anyRow);
// Costs to 12 decimals: before 0032 they were summed as Float64 in the order rows were read
// (0.1 + 0.2 gave 0.30000000000000004), since 0032 exactly, as Decimal(38, 18).
const readTasks = (view: 'v_tasks' | 'v_tasks_from_spans' = 'v_tasks') =>
  store.query(
    `SELECT task_id, outcome, outcome_reason, reask, round(cleanup_cost_usd, 12) AS cleanup_cost_usd, round(cost_usd, 12) AS cost_usd, late_wins FROM ${view} ORDER BY task_id`,
    {},
    anyRow,
  );
const REPORT_COLUMNS =
  'task_id, report_id, toString(observed_at) AS observed, outcome, outcome_reason, reask, cleanup_cost_usd, source';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'routewatch-upgrade-'));
  store = await EmbeddedStore.open(dir);

  await migrate(store, upTo(4), []);
  await insertSpans([
    ...taskSpans('carried', 0, 'failure'),
    ...taskSpans('plain', 1000, 'success'),
  ]);
  // Late outcomes as the collector wrote them before 0005.
  await insertRows('outcomes', [
    {
      task_id: 'carried',
      observed_at: nsAt(60_000),
      outcome: 'failure',
      outcome_reason: 'wrong_answer',
      cleanup_cost_usd: 0.1,
      source: 'api',
    },
    {
      task_id: 'carried',
      observed_at: nsAt(120_000),
      outcome: 'success',
      outcome_reason: 'human_corrected',
      reask: 1,
      cleanup_cost_usd: 0.2,
      source: 'api',
    },
  ]);

  await migrate(store, upTo(7), []);
  await insertSpans([...taskSpans('retried', 2000), ...taskSpans('costs', 3000, 'success')]);
  // As today's collector wrote them: a report without observedAt got its arrival time, and its
  // retry a later one under the same report id (and a later inserted_at, which today's table
  // keeps).
  const report = (r: Record<string, unknown>) => ({
    outcome_reason: '',
    reask: 0,
    cleanup_cost_usd: 0,
    source: 'api',
    ...r,
  });
  // Copies of one report that today's table has not merged yet (merges stopped so that the test
  // does not depend on when the engine would merge them).
  await store.exec('SYSTEM STOP MERGES outcome_reports');
  const first = report({
    task_id: 'retried',
    report_id: 'sha256:first',
    observed_at: nsAt(60_000),
    outcome: 'failure',
    cleanup_cost_usd: 0.25,
    inserted_at: '2026-01-01 00:00:01.000',
  });
  await insertRows('outcome_reports', [first]);
  await insertRows('outcome_reports', [
    report({
      task_id: 'retried',
      report_id: 'sha256:second',
      observed_at: nsAt(120_000),
      outcome: 'success',
      inserted_at: '2026-01-01 00:00:02.000',
    }),
    report({
      task_id: 'costs',
      report_id: 'ticket-1',
      observed_at: nsAt(60_000),
      outcome: 'success',
      cleanup_cost_usd: 0.5,
    }),
    report({
      task_id: 'costs',
      report_id: 'ticket-2',
      observed_at: nsAt(60_000),
      outcome: 'success',
      cleanup_cost_usd: 0.5,
    }),
  ]);
  await insertRows('outcome_reports', [
    { ...first, observed_at: nsAt(180_000), inserted_at: '2026-01-01 00:00:03.000' },
  ]);

  before.spans = await readSpans();
  before.tasks = await readTasks();
  before.reports = await store.query(
    `SELECT ${REPORT_COLUMNS} FROM outcome_reports FINAL ORDER BY task_id, report_id`,
    {},
    anyRow,
  );
  const [copies] = await store.query('SELECT count() AS n FROM outcome_reports', {}, countRow);
  before.reportCopies = copies!.n;

  upgrade = await migrate(store);
});
afterAll(async () => {
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('upgrading a store migrated by 0001–0007 to the repeatable views', () => {
  it('starts from the store as today has it', () => {
    expect(before.spans).toHaveLength(12);
    expect(before.reportCopies).toBe(7);
    // Today's defect, in place before the upgrade: the retry of the first report overtook the second.
    expect(before.tasks.find((t) => t['task_id'] === 'retried')?.['outcome']).toBe('failure');
  });

  it('applies the numbered migrations since 0007, then every view', () => {
    expect(upgrade.alreadyApplied).toBe(7);
    expect(upgrade.applied.map((m) => m.version)).toEqual(
      loadMigrations()
        .map((m) => m.version)
        .filter((v) => v > 7),
    );
    expect(upgrade.viewsApplied).toEqual(loadViews().map((v) => v.name));
  });

  it('keeps every span row as it was', async () => {
    const after = await readSpans();
    // Columns added since (0010: cost_note, price_ref) read their defaults on the old rows.
    expect(
      after.map((row) => Object.fromEntries(Object.keys(before.spans[0]!).map((k) => [k, row[k]]))),
    ).toEqual(before.spans);
    expect(after.every((row) => row['cost_note'] === '' && row['price_ref'] === '')).toBe(true);
  });

  it('keeps every stored late outcome report, and each report at its first arrival', async () => {
    // Copies of one report collapse to the first one; no report is lost.
    const [stored] = await store.query(
      'SELECT uniqExact(task_id, report_id) AS n FROM late_outcomes',
      {},
      countRow,
    );
    expect(stored?.n).toBe(before.reports.length);
    const after = await store.query(
      `SELECT ${REPORT_COLUMNS} FROM late_outcomes FINAL ORDER BY task_id, report_id`,
      {},
      anyRow,
    );
    // The same reports as before; the retried one at its first arrival, not at its retry.
    const expected = before.reports.map((r) =>
      r['report_id'] === 'sha256:first'
        ? { ...r, observed: clickHouseTime(BigInt(nsAt(60_000))) }
        : r,
    );
    expect(before.reports.find((r) => r['report_id'] === 'sha256:first')?.['observed']).toBe(
      clickHouseTime(BigInt(nsAt(180_000))),
    );
    expect(after).toEqual(expected);
    const carried = after.filter((r) => r['task_id'] === 'carried').map((r) => r['outcome']);
    expect(carried).toEqual(['failure', 'success']);
  });

  it('drops the superseded tables', async () => {
    const [left] = await store.query(
      "SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name IN ('outcomes', 'outcome_reports')",
      {},
      countRow,
    );
    expect(left?.n).toBe(0);
  });

  it('ends with the views of sql/views: the same task figures, and the retried report no longer overtakes', async () => {
    const after = await readTasks();
    const others = (rows: Record<string, unknown>[]) =>
      rows.filter((t) => t['task_id'] !== 'retried');
    expect(others(after)).toEqual(others(before.tasks));
    expect(after.find((t) => t['task_id'] === 'retried')).toMatchObject({
      outcome: 'success',
      cleanup_cost_usd: 0.25,
    });
    expect(after.map((t) => t['task_id'])).toEqual(['carried', 'costs', 'plain', 'retried']);
    const definitions = await store.query(
      "SELECT name, as_select FROM system.tables WHERE database = currentDatabase() AND engine = 'View' ORDER BY name",
      {},
      z.object({ name: z.string(), as_select: z.string() }),
    );
    expect(definitions.map((d) => d.name)).toEqual(
      loadViews()
        .map((v) => v.name)
        .sort(),
    );
    // v_tasks reads the rollups; the computation from raw spans it replaced reads late_outcomes.
    expect(definitions.find((d) => d.name === 'v_tasks')?.as_select).toMatch(/task_snapshot/);
    expect(definitions.find((d) => d.name === 'v_tasks_from_spans')?.as_select).toMatch(
      /late_outcomes/,
    );
  });

  it('backfills the task state from the stored spans and reports, and builds the rollups from it', async () => {
    // Before any refresh, v_tasks answers from the backfilled task_events alone.
    const [state] = await store.query(
      'SELECT uniqExact(task_id) AS n FROM task_events',
      {},
      countRow,
    );
    expect(state?.n).toBe(4);
    expect(await readTasks()).toEqual(await readTasks('v_tasks_from_spans'));

    const refreshed = await refreshRollups(store, { marginMs: 0 });
    expect(refreshed).toMatchObject({ tasks: 4, hours: 1 });
    const [snapshot] = await store.query(
      'SELECT count() AS n FROM task_snapshot FINAL',
      {},
      countRow,
    );
    expect(snapshot?.n).toBe(4);
    const [hourly] = await store.query(
      'SELECT sum(tasks) AS n FROM cohort_route_hourly FINAL',
      {},
      countRow,
    );
    expect(hourly?.n).toBe(4);
    // After the refresh v_tasks reads task_snapshot: the same rows.
    expect(await readTasks()).toEqual(await readTasks('v_tasks_from_spans'));
    const window = { from: dateAt(-3_600_000), to: dateAt(3_600_000) };
    const report = await buildReport(store, window);
    expect(report.rows).toMatchObject([
      { cohort: 'faq', primaryRoute: 'small', tasks: 4, successes: 4, knownOutcomes: 4 },
    ]);
  });

  it('changes nothing when run again', async () => {
    const again = await migrate(store);
    expect(again.applied).toEqual([]);
    expect(again.viewsApplied).toEqual([]);
  });
});
