/**
 * The analyzer on a large embedded store, in one run: N spans generated into it (default 10 M,
 * about 3 M tasks over 30 days in 50 cohorts, with fallbacks, late outcomes, duplicated exports
 * and primary-route spans arriving late; see generate.ts), the rollups built, then timed:
 *   - the full report (every task, 30 days) from the rollups, as GET /api/v1/report builds it;
 *   - a 24 h window ending now;
 *   - a 30-day time series, 1-day buckets (GET /api/v1/timeseries);
 *   - the same full report computed by raw-scan SQL over spans (v_cohort_route_window_from_spans);
 *   - the full report and the 24 h window again with 50 tasks changed since the last refresh (new
 *     tasks and late outcomes: a refresh interval's worth), then with 1 000 tasks across the 30
 *     days changed at once (late outcomes), which the views compute from task_events; and the
 *     refreshes that follow;
 * and checks that the report from the rollups equals the raw scan (counts and sums exactly; the
 * latency quantiles are t-digests). Then, in a child process, collector ingest with and without
 * the rollups (ingest.ts). Not a test: figures go to docs/benchmarks.md.
 * Usage: npm run bench:analyzer -- [--spans 10000000] [--rounds 5] [--ingest-spans 100000]
 *        [--ingest-rounds 3] [--no-ingest]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { buildReport, cohortRouteRow, toClickHouseTime, toMetrics } from '../../analyzer/report.js';
import type { CohortRouteMetrics } from '../../analyzer/report.js';
import { buildTimeseries } from '../../analyzer/timeseries.js';
import { EmbeddedStore } from '../../storage/embedded-store.js';
import { migrate } from '../../storage/migrations.js';
import { applyRetention, refreshRollups } from '../../storage/rollups.js';
import { describeMachine, loadAverage } from '../instrumentation/machine.js';
import { median } from '../instrumentation/stats.js';
import {
  SPANS_PER_TASK,
  generateParams,
  insertLateOutcomesSql,
  insertSpansSql,
} from './generate.js';
import type { IngestFigures } from './ingest.js';
import { benchArgs } from '../cli-args.js';
import { progressReporter } from '../../cli/progress.js';

const USAGE = `Usage: npm run bench:analyzer -- [--spans 10000000] [--rounds 5] [--ingest-spans 100000]
       [--ingest-rounds 3] [--no-ingest]`;
const { values } = benchArgs(
  {
    options: {
      spans: { type: 'string', default: '10000000' },
      days: { type: 'string', default: '30' },
      rounds: { type: 'string', default: '5' },
      'ingest-spans': { type: 'string', default: '100000' },
      'ingest-rounds': { type: 'string', default: '3' },
      'no-ingest': { type: 'boolean', default: false },
    },
  },
  USAGE,
);
const SPANS = Number(values.spans);
const DAYS = Number(values.days);
const ROUNDS = Number(values.rounds);
const TASKS = Math.round(SPANS / SPANS_PER_TASK);
const TASKS_PER_INSERT = 250_000;
const SEED = 12;

const ms = (value: number) =>
  `${value < 10 ? value.toFixed(1) : Math.round(value).toLocaleString('en')} ms`;
const count = (value: number) => Math.round(value).toLocaleString('en');

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

/**
 * One warm-up, then `rounds` timed runs: median and fastest wall time, and the median process CPU
 * (the engine's threads included), which a busy machine changes much less than the wall time.
 */
async function repeat<T>(
  rounds: number,
  fn: () => Promise<T>,
): Promise<{ median: number; min: number; cpu: number; value: T }> {
  let { value } = await timed(fn);
  const times: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const before = process.cpuUsage();
    const run = await timed(fn);
    const used = process.cpuUsage(before);
    times.push(run.ms);
    cpu.push((used.user + used.system) / 1000);
    value = run.value;
  }
  return { median: median(times), min: Math.min(...times), cpu: median(cpu), value };
}

/** The report as v_cohort_route_window_from_spans computes it: a raw scan of spans. */
async function rawReport(
  store: EmbeddedStore,
  window: { from: Date; to: Date },
): Promise<CohortRouteMetrics[]> {
  const rows = await store.query(
    `SELECT * FROM v_cohort_route_window_from_spans(from = {from:DateTime64(9, 'UTC')}, to = {to:DateTime64(9, 'UTC')})
     ORDER BY cohort, primary_route`,
    { from: toClickHouseTime(window.from), to: toClickHouseTime(window.to) },
    cohortRouteRow,
  );
  return rows.map((row) => toMetrics(row));
}

/** Differences between two reports beyond the latency quantiles; and the largest quantile gap. */
function compare(
  rollup: CohortRouteMetrics[],
  raw: CohortRouteMetrics[],
): { mismatches: string[]; p95Gap: number } {
  const mismatches: string[] = [];
  let p95Gap = 0;
  if (rollup.length !== raw.length) mismatches.push(`${rollup.length} rows, raw ${raw.length}`);
  // Everything but the latency quantiles, which are t-digests on both sides, the interval of
  // cost per success, whose Σ cost² is a Float64 sum in another order on each side, and the
  // failure concentration and the scores, which the report adds (v_failure_concentration,
  // v_window_scores) and the raw window view does not have; test/integration/rollups.test.ts
  // compares the concentration with the raw computation.
  const skipped = new Set(['costPerSuccessfulTaskInterval', 'concentration', 'scores']);
  const exactPart = (row: CohortRouteMetrics) =>
    JSON.stringify(row, (key, value: unknown) =>
      key.endsWith('LatencyMs') || skipped.has(key) ? undefined : value,
    );
  rollup.forEach((row, i) => {
    const other = raw[i];
    if (!other) return;
    if (exactPart(row) !== exactPart(other)) mismatches.push(`${row.cohort}/${row.primaryRoute}`);
    if (row.p95LatencyMs !== null && other.p95LatencyMs !== null) {
      p95Gap = Math.max(
        p95Gap,
        Math.abs(row.p95LatencyMs - other.p95LatencyMs) / other.p95LatencyMs,
      );
    }
  });
  return { mismatches, p95Gap };
}

/** Waits until no merge runs (true), or `timeoutMs` (false). */
async function mergesSettled(store: EmbeddedStore, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [running] = await store.query(
      'SELECT count() AS n FROM system.merges',
      {},
      z.object({ n: z.coerce.number() }),
    );
    if (running!.n === 0) return true;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return false;
}

const sizeRow = z.object({ table: z.string(), rows: z.coerce.number(), bytes: z.coerce.number() });

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'routewatch-bench-analyzer-'));
  const store = await EmbeddedStore.open(dir);
  try {
    console.log(
      'routewatch bench: the analyzer on rollups, against a raw scan of spans (embedded store)',
    );
    for (const line of describeMachine()) console.log(line);
    console.log(
      `${count(SPANS)} spans requested: ${count(TASKS)} tasks, ${DAYS} days, 50 cohorts · ${ROUNDS} timed runs per query after one warm-up · load average before: ${loadAverage()}\n`,
    );

    await migrate(store);
    // Raw spans kept past the generated period, so the raw scan sees every task it is compared on.
    await applyRetention(store, { rawDays: DAYS + 5, rollupDays: 400 });
    const now = new Date();
    const base = new Date(now.getTime() - DAYS * 86_400_000);
    const params = (first: number, taskCount: number) =>
      generateParams({
        seed: SEED,
        tasks: TASKS,
        first,
        count: taskCount,
        base: toClickHouseTime(base),
        periodDays: DAYS,
      });

    // Minutes at the large sizes: a progress line on stderr (the figures go to stdout).
    const batches = Math.ceil(TASKS / TASKS_PER_INSERT);
    const progress = progressReporter(process.stderr, 'insert batches', 2 * batches);
    let inserted = 0;
    const load = await timed(async () => {
      for (let first = 0; first < TASKS; first += TASKS_PER_INSERT) {
        const taskCount = Math.min(TASKS_PER_INSERT, TASKS - first);
        await store.exec(insertSpansSql('main'), params(first, taskCount));
        await store.exec(insertLateOutcomesSql(), params(first, taskCount));
        progress.update(++inserted);
      }
      // Later: retried exports of 1 % of tasks, and the primary-route spans of another 1 %.
      for (let first = 0; first < TASKS; first += TASKS_PER_INSERT) {
        const taskCount = Math.min(TASKS_PER_INSERT, TASKS - first);
        await store.exec(insertSpansSql('duplicated'), params(first, taskCount));
        await store.exec(insertSpansSql('withheld'), params(first, taskCount));
        progress.update(++inserted);
      }
    });
    progress.finish();
    const [stored] = await store.query(
      'SELECT count() AS spans, (SELECT count() FROM late_outcomes) AS reports FROM spans',
      {},
      z.object({ spans: z.coerce.number(), reports: z.coerce.number() }),
    );
    console.log(
      `load: ${count(stored!.spans)} span rows (duplicates included) and ${count(stored!.reports)} late outcome rows in ${ms(load.ms)} (${count(stored!.spans / (load.ms / 1000))} rows/s, generated in ClickHouse, through the materialized views)`,
    );
    // No insert runs from here on: a margin of 0 is right.
    const build = await timed(() => refreshRollups(store, { marginMs: 0 }));
    console.log(
      `first refresh (builds task_snapshot and cohort_route_hourly from task_events): ${count(build.value.tasks)} tasks, ${count(build.value.hours)} hours, ${build.value.slices} slices in ${ms(build.ms)}`,
    );

    // A store that has been running has merged its parts: let the merges the load and the first
    // refresh started finish (up to a minute) before timing, as they would in production.
    const settled = await timed(() => mergesSettled(store, 60_000));
    console.log(
      `merges settled in ${ms(settled.ms)}${settled.value ? '' : ' (still merging after a minute)'}\n`,
    );

    const fullWindow = { from: new Date(base.getTime() - 3_600_000), to: now };
    const dayWindow = { from: new Date(now.getTime() - 86_400_000), to: now };
    const full = await repeat(ROUNDS, () => buildReport(store, fullWindow, now));
    const day = await repeat(ROUNDS, () => buildReport(store, dayWindow, now));
    const series = await repeat(ROUNDS, () =>
      buildTimeseries(store, { from: base, to: now }, { bucketSeconds: 86_400 }, now),
    );
    const rawRounds = Math.max(1, Math.min(ROUNDS, 3));
    const raw = await repeat(rawRounds, () => rawReport(store, fullWindow));
    const check = compare(full.value.rows, raw.value);

    // Steady state: what one refresh interval brings: 40 new tasks in the last minutes and 10 late
    // outcomes for tasks of the last 24 h, computed by the views from task_events until a refresh.
    await store.exec(
      insertSpansSql('main'),
      generateParams({
        seed: SEED + 1,
        tasks: 40,
        first: 0,
        count: 40,
        base: toClickHouseTime(new Date(now.getTime() - 600_000)),
        periodDays: 0.005,
      }),
    );
    const recentLateOutcomes = `INSERT INTO late_outcomes (task_id, report_id, observed_at, outcome, source)
       SELECT task_id, {report:String}, now64(9), 'failure', 'bench'
       FROM task_snapshot FINAL WHERE started_at >= {from:DateTime64(9, 'UTC')} AND cityHash64(task_id) % {every:UInt64} = 0 LIMIT {n:UInt64}`;
    await store.exec(recentLateOutcomes, {
      report: 'bench-steady',
      from: toClickHouseTime(dayWindow.from),
      every: 97,
      n: 10,
    });
    const fullSteady = await repeat(ROUNDS, () => buildReport(store, fullWindow, now));
    const daySteady = await repeat(ROUNDS, () => buildReport(store, dayWindow, now));
    const steadyRefresh = await timed(() => refreshRollups(store, { marginMs: 0 }));

    // A burst: 1 000 tasks spread over the 30 days get a late outcome at once.
    await store.exec(recentLateOutcomes, {
      report: 'bench-burst',
      from: toClickHouseTime(base),
      every: Math.max(1, Math.floor(TASKS / 1000)),
      n: 1000,
    });
    const fullChanged = await repeat(ROUNDS, () => buildReport(store, fullWindow, now));
    const dayChanged = await repeat(ROUNDS, () => buildReport(store, dayWindow, now));
    const rawChanged = await rawReport(store, fullWindow);
    const checkChanged = compare(fullChanged.value.rows, rawChanged);
    const incremental = await timed(() => refreshRollups(store, { marginMs: 0 }));

    const sizes = await store.query(
      `SELECT table, sum(rows) AS rows, sum(bytes_on_disk) AS bytes FROM system.parts
       WHERE active AND database = currentDatabase() AND table IN ('spans', 'late_outcomes', 'task_events', 'task_snapshot', 'cohort_route_hourly', 'cohort_route_daily')
       GROUP BY table ORDER BY bytes DESC`,
      {},
      sizeRow,
    );

    const line = (name: string, r: { median: number; min: number; cpu: number }, note = '') =>
      console.log(
        `${name.padEnd(58)} ${ms(r.median).padStart(10)} ${ms(r.min).padStart(10)} ${ms(r.cpu).padStart(10)}  ${note}`,
      );
    console.log(
      `${'query'.padEnd(58)} ${'median'.padStart(10)} ${'fastest'.padStart(10)} ${'CPU'.padStart(10)}`,
    );
    line('full report (30 days, rollups)', full, `${full.value.rows.length} cohort × route rows`);
    line('24 h window (rollups)', day);
    line(
      '30-day time series, 1-day buckets (rollups)',
      series,
      `${series.value.series.length} series`,
    );
    line('full report by raw scan of spans', raw, `${rawRounds} timed runs`);
    line('full report, 50 tasks changed since the refresh', fullSteady);
    line('24 h window, 50 tasks changed since the refresh', daySteady);
    line('full report, 1 000 tasks of 30 days changed at once', fullChanged);
    line('24 h window, 1 000 tasks of 30 days changed at once', dayChanged);
    console.log(
      `\nfull report: ${(raw.median / full.median).toFixed(1)}× faster from the rollups than by raw scan (medians)`,
    );
    console.log(
      `refresh after the 50 changes: ${count(steadyRefresh.value.tasks)} tasks, ${count(steadyRefresh.value.hours)} hours in ${ms(steadyRefresh.ms)}; ` +
        `after the 1 000: ${count(incremental.value.tasks)} tasks, ${count(incremental.value.hours)} hours in ${ms(incremental.ms)}`,
    );
    const exact = check.mismatches.length === 0 && checkChanged.mismatches.length === 0;
    console.log(
      `rollups against the raw scan: counts, sums and rates ${exact ? 'equal' : `DIFFER (${[...check.mismatches, ...checkChanged.mismatches].slice(0, 5).join(', ')})`}; ` +
        `largest p95 gap ${(Math.max(check.p95Gap, checkChanged.p95Gap) * 100).toFixed(2)} % (t-digests merged per hour against one t-digest)`,
    );
    console.log('\nstorage (active parts):');
    for (const s of sizes)
      console.log(
        `  ${s.table.padEnd(22)} ${count(s.rows).padStart(14)} rows ${(s.bytes / 2 ** 20).toFixed(1).padStart(10)} MiB`,
      );
    console.log(`load average after the queries: ${loadAverage()}`);
    if (!exact) process.exitCode = 1;
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }

  if (!values['no-ingest']) {
    console.log(
      `\ncollector ingest (OTLP/HTTP protobuf, 500 spans a request, 16 in flight; child process) · load average before: ${loadAverage()}`,
    );
    const script = join(dirname(fileURLToPath(import.meta.url)), 'ingest.js');
    const output = execFileSync(
      process.execPath,
      [script, '--spans', values['ingest-spans'], '--rounds', values['ingest-rounds']],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 },
    );
    const figures = JSON.parse(output.trim().split('\n').at(-1)!) as IngestFigures;
    console.log(
      `${count(figures.spans)} spans per variant and round, ${figures.rounds} rounds, order rotating; refresher every 5 s (${figures.refreshes} refreshes); ${figures.retries} requests retried`,
    );
    const head = ['variant'.padEnd(20), 'collector spans/s'.padStart(18), 'slower'.padStart(8)];
    head.push('CPU ms/1k'.padStart(10), 'more'.padStart(8), 'engine rows/s'.padStart(14));
    head.push('slower'.padStart(8), 'CPU ms/1k'.padStart(10), 'more'.padStart(8));
    console.log(head.join(' '));
    for (const variant of ['off', 'views', 'views + refresher'] as const) {
      // Throughput below, and process CPU per 1 000 spans above, the variant without rollups.
      const slower = (rate: Record<string, number>) =>
        variant === 'off'
          ? ''
          : `${(((rate['off']! - rate[variant]!) / rate['off']!) * 100).toFixed(1)} %`;
      const more = (cpu: Record<string, number>) =>
        variant === 'off'
          ? ''
          : `${(((cpu[variant]! - cpu['off']!) / cpu['off']!) * 100).toFixed(1)} %`;
      const cells = [variant.padEnd(20), count(figures.collector[variant]).padStart(18)];
      cells.push(slower(figures.collector).padStart(8));
      cells.push(
        figures.collectorCpuMs[variant].toFixed(1).padStart(10),
        more(figures.collectorCpuMs).padStart(8),
      );
      cells.push(count(figures.engine[variant]).padStart(14), slower(figures.engine).padStart(8));
      cells.push(
        figures.engineCpuMs[variant].toFixed(1).padStart(10),
        more(figures.engineCpuMs).padStart(8),
      );
      console.log(cells.join(' '));
    }
    console.log(
      `(slower: spans/s below off; more: process CPU per 1 000 spans above off) · load average after: ${loadAverage()}`,
    );
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
