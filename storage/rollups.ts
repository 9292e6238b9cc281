import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { clusterStatements, localTableName } from './cluster-ddl.js';
import { StorageError } from './errors.js';
import { sqlDir, splitStatements } from './migrations.js';
import type { QueryParams, Store } from './store.js';

/**
 * The rollups behind v_tasks and the window views (sql/migrations/0032, design in
 * docs/scaling.md). Materialized views copy every span and late outcome report into
 * `task_events`, keyed by task; a refresh brings `task_snapshot` (one row per task, keyed by the
 * hour it started) and `cohort_route_hourly` up to date with it, then moves
 * `rollup_state.clean_before` forward. The views are exact whether or not a refresh ran: the tasks
 * changed after `clean_before` they compute from `task_events` (v_tasks_live). A refresh only
 * makes them faster.
 */

/** The statements of sql/rollups, in the order a refresh runs them. */
const STATEMENTS = [
  'snapshot_tasks',
  'retire_moved_tasks',
  'rebuild_hours',
  'retire_empty_groups',
  'rebuild_days',
  'retire_empty_days',
] as const;
type StatementName = (typeof STATEMENTS)[number];

let loaded: Map<StatementName, string> | undefined;

function statement(name: StatementName): string {
  if (!loaded) {
    const dir = sqlDir('rollups');
    loaded = new Map(
      STATEMENTS.map((n) => {
        const statements = splitStatements(readFileSync(join(dir, `${n}.sql`), 'utf8'));
        if (statements.length !== 1) {
          throw new StorageError('ROLLUP_SQL', `sql/rollups/${n}.sql must hold one statement`);
        }
        return [n, statements[0]!];
      }),
    );
  }
  return loaded.get(name)!;
}

export interface RefreshOptions {
  /**
   * A change is stamped (`task_events.inserted_at`) as its block is written, a moment before the
   * insert completes; a refresh reading just then could miss it. A refresh processes only changes
   * stamped at least this long before it began; the later ones stay "changed" for the views and go
   * to the next refresh. 10 s by default, far above the time one insert block takes. On the
   * embedded store queries run one at a time, which makes 0 safe there; on a server a row seen
   * later than this (replication lag, a clock stepped back) is found by repairRollups.
   */
  marginMs?: number;
  /** A refresh of more changed tasks than this works in slices of about this many. */
  tasksPerSlice?: number;
  /** Stops the refresh between two statements (at shutdown); what it wrote stays valid. */
  signal?: AbortSignal;
  /**
   * Hours from this one on (a ClickHouse UTC time, `YYYY-MM-DD hh:00:00`) are still going on: a
   * refresh leaves their rollup rows, and their days', for the first refresh after they end
   * (`rollup_state.pending_hours`). The start of the current hour on the store's clock by default.
   */
  openFrom?: string;
}

export interface RefreshResult {
  /** The refresh's version: the ClickHouse time it began. */
  refreshedAt: string;
  /** Tasks changed after this are still computed from task_events by the views. */
  cleanBefore: string;
  /** Tasks changed since the previous refresh (or all, on the first). */
  tasks: number;
  /** Hours rebuilt. */
  hours: number;
  /** Hours left for a later refresh (still going on), with their days: read from task rows until then. */
  pendingHours: string[];
  slices: number;
  durationMs: number;
}

const DEFAULT_MARGIN_MS = 10_000;
const DEFAULT_TASKS_PER_SLICE = 500_000;

const clockRow = z.object({
  version: z.string(),
  clean_before: z.string(),
  since: z.string(),
  open_from: z.string(),
  pending: z.array(z.string()),
});
const changesRow = z.object({ tasks: z.coerce.number(), hours: z.array(z.string()) });

/**
 * Brings the rollups up to date with task_events. Safe to run while spans arrive, and safe (if
 * wasteful) to run from two processes at once: every row written carries the refresh's version and
 * the newest version wins.
 */
export async function refreshRollups(
  store: Store,
  options: RefreshOptions = {},
): Promise<RefreshResult> {
  options.signal?.throwIfAborted();
  const started = performance.now();
  const marginMs = options.marginMs ?? DEFAULT_MARGIN_MS;
  // Times in UTC, whatever the server's time zone: they are bound back as UTC parameters.
  const [clock] = await store.query(
    `SELECT
       toString(now64(9, 'UTC')) AS version,
       toString(now64(3, 'UTC') - toIntervalMillisecond({margin:UInt64})) AS clean_before,
       toString((SELECT max(clean_before) FROM rollup_state)) AS since,
       toString(toStartOfHour(now('UTC'))) AS open_from,
       (SELECT arrayMap(h -> toString(h), argMax(pending_hours, (clean_before, refreshed_at))) FROM rollup_state) AS pending`,
    { margin: marginMs },
    clockRow,
  );
  const { version, since } = clock!;
  // Changes stamped in (since, until] are processed now; later ones by the next refresh, and by
  // the views until then. Never backwards: a refresh that began before the last one (in another
  // process), or a larger margin than before, leaves clean_before where it is.
  const until = clock!.clean_before > since ? clock!.clean_before : since;
  const [changes] = await store.query(
    `WITH changed AS
     (
         SELECT task_id FROM task_events
         WHERE inserted_at > {since:DateTime64(3, 'UTC')} AND inserted_at <= {until:DateTime64(3, 'UTC')}
     )
     SELECT
       (SELECT uniqExact(task_id) FROM changed) AS tasks,
       (SELECT arraySort(groupUniqArray(toString(toStartOfHour(timestamp)))) FROM task_events
        WHERE kind != 'late_outcome' AND task_id GLOBAL IN (SELECT task_id FROM changed)) AS hours`,
    { since, until },
    changesRow,
  );
  const { tasks, hours } = changes!;
  // The hours to bring up to date: those of the changed tasks and those the last refresh left.
  // The ones still going on are left again (their rows would be rebuilt whole again and again as
  // their tasks arrive), and so are their days.
  const openFrom = hourTime(options.openFrom ?? clock!.open_from);
  const touched = [...new Set([...hours, ...clock!.pending])].sort();
  const pendingHours = touched.filter((hour) => hourTime(hour) >= openFrom);
  const closedHours = touched.filter((hour) => hourTime(hour) < openFrom);
  const pendingDays = new Set(pendingHours.map(dayOf));
  const dayHours = closedHours.filter((hour) => !pendingDays.has(dayOf(hour)));
  const slices = Math.max(1, Math.ceil(tasks / (options.tasksPerSlice ?? DEFAULT_TASKS_PER_SLICE)));
  // Rows written with this version before an abort are current rows of their tasks and hours;
  // clean_before does not move, so the views keep computing those tasks from task_events.
  const run = async (name: StatementName, params: QueryParams) => {
    options.signal?.throwIfAborted();
    await store.exec(statement(name), params);
  };
  if (tasks > 0) {
    for (let slice = 0; slice < slices; slice++) {
      const params = { version, since, until, hours, slices, slice };
      await run('snapshot_tasks', params);
      await run('retire_moved_tasks', params);
    }
  }
  if (closedHours.length > 0) {
    await run('rebuild_hours', { version, hours: closedHours });
    await run('retire_empty_groups', { version, hours: closedHours });
  }
  if (dayHours.length > 0) {
    await run('rebuild_days', { version, hours: dayHours });
    await run('retire_empty_days', { version, hours: dayHours });
  }
  options.signal?.throwIfAborted();
  const durationMs = Math.round(performance.now() - started);
  await store.exec(
    `INSERT INTO rollup_state (refreshed_at, clean_before, tasks, hours, duration_ms, pending_hours)
     VALUES ({version:DateTime64(9, 'UTC')}, {clean_before:DateTime64(3, 'UTC')}, {tasks:UInt64}, {hours:UInt64}, {duration:UInt64}, {pending:Array(DateTime('UTC'))})`,
    {
      version,
      clean_before: until,
      tasks,
      hours: closedHours.length,
      duration: durationMs,
      pending: pendingHours,
    },
  );
  return {
    refreshedAt: version,
    cleanBefore: until,
    tasks,
    hours: closedHours.length,
    pendingHours,
    slices,
    durationMs,
  };
}

/**
 * The columns of a task's row compared between task_snapshot and v_tasks_live by repairRollups:
 * all of v_tasks' own.
 */
const COMPARED_COLUMNS = [
  'cohort',
  'service_name',
  'policy_version',
  'eval_run',
  'eval_dataset',
  'started_at',
  'ended_at',
  'latency_ms',
  'primary_route',
  'attempts',
  'model_calls',
  'failed_model_calls',
  'fallback_reasons',
  'invisible_fallbacks',
  'input_tokens',
  'output_tokens',
  'late_wins',
  'outcome',
  'outcome_reason',
  'reask',
  'llm_cost',
  'cleanup_cost',
  'unpriced_calls',
  'scores',
  'http_counted_calls',
  'retried_calls',
  'http_retries',
  'retry_wait_ms',
] as const;

export interface RepairOptions {
  /** How far before `clean_before` to look for rows seen late: 1 h by default. */
  horizonMs?: number;
  signal?: AbortSignal;
}

export interface RepairResult {
  /** Tasks whose snapshot row did not equal their events, their events stamped again. */
  tasks: number;
}

/**
 * A refresh processes the changes stamped (`task_events.inserted_at`, the server's clock when the
 * block is written) up to its cut-off, and the views take a task stamped before `clean_before`
 * from its snapshot. A row stamped before a cut-off but visible only after the refresh read the
 * table — a replica fetching a part late, a block committed long after its stamp, a server clock
 * stepped back — would then never be read: its task's row stays as it was, or a new task stays out
 * of every view. (On the embedded store queries run one at a time, so only a clock stepped back
 * can do it.)
 *
 * This finds the tasks with events stamped within `horizonMs` before `clean_before` whose snapshot
 * row (task_snapshot FINAL) differs from their row computed from all their events (v_tasks_live),
 * or is missing, and inserts their events again stamped after `clean_before`: equal copies under
 * the same key and version, which collapse with the originals, so nothing counts twice. The views
 * compute those tasks from their events at once, and the next refresh snapshots them and rebuilds
 * their hours and days. Run now and then by the refresher.
 */
export async function repairRollups(
  store: Store,
  options: RepairOptions = {},
): Promise<RepairResult> {
  options.signal?.throwIfAborted();
  // A map's or an array's order may differ between two equal rows computed apart: compared sorted.
  const text = (column: string) =>
    column === 'scores'
      ? 'toString(mapSort(scores))'
      : column === 'fallback_reasons'
        ? 'toString(arraySort(fallback_reasons))'
        : `toString(${column})`;
  const hash = (source: string) =>
    `SELECT task_id, cityHash64(${COMPARED_COLUMNS.map(text).join(', ')}) AS h FROM ${source}`;
  // Tasks with a change since clean_before are computed from their events by the views already
  // (v_tasks_changed), and their snapshot is not yet meant to match: left out.
  const recent = `SELECT DISTINCT task_id FROM task_events
    WHERE inserted_at > (SELECT max(clean_before) FROM rollup_state) - toIntervalMillisecond({horizon:UInt64})
      AND inserted_at <= (SELECT max(clean_before) FROM rollup_state)
      AND task_id GLOBAL NOT IN (SELECT task_id FROM v_tasks_changed)`;
  const stale = await store.query(
    `SELECT live.task_id AS task_id
     FROM (${hash('v_tasks_live')} WHERE task_id GLOBAL IN (${recent})) AS live
     LEFT JOIN (${hash('task_snapshot FINAL')} WHERE task_id GLOBAL IN (${recent})) AS snap USING (task_id)
     WHERE ifNull(snap.h, 0) != live.h`,
    { horizon: options.horizonMs ?? DEFAULT_REPAIR_HORIZON_MS },
    z.object({ task_id: z.string() }),
  );
  // A missing snapshot row joins with h = 0 (NULL under join_use_nulls), a hash no row has (to
  // one chance in 2⁶⁴).
  const tasks = stale.map((r) => r.task_id);
  if (tasks.length === 0) return { tasks: 0 };
  options.signal?.throwIfAborted();
  await store.exec(
    `INSERT INTO task_events
     SELECT * REPLACE (greatest(now64(3, 'UTC'), (SELECT max(clean_before) FROM rollup_state) + toIntervalMillisecond(1)) AS inserted_at)
     FROM task_events WHERE task_id IN {tasks:Array(String)}`,
    { tasks },
  );
  return { tasks: tasks.length };
}

const DEFAULT_REPAIR_HORIZON_MS = 3_600_000;

/** A ClickHouse UTC time (`YYYY-MM-DD hh:mm:ss[.fff]`) in milliseconds. */
function hourTime(time: string): number {
  const ms = Date.parse(`${time.trim().replace(' ', 'T')}Z`);
  if (!Number.isFinite(ms)) throw new StorageError('ROLLUP_TIME', `not a time: ${time}`);
  return ms;
}

/** The UTC day of a ClickHouse time. */
const dayOf = (time: string): string => time.slice(0, 10);

/** How long raw spans and the rollups are kept (ROUTEWATCH_RETENTION_DAYS, ROUTEWATCH_ROLLUP_RETENTION_DAYS). */
export interface RetentionSettings {
  rawDays: number;
  rollupDays: number;
}

/** The TTL of each table retention applies to, for these settings. */
export function retentionTtls(settings: RetentionSettings): { table: string; ttl: string }[] {
  const days = (n: number) => {
    if (!Number.isInteger(n) || n < 1)
      throw new RangeError(`retention must be whole days ≥ 1, not ${n}`);
    return n;
  };
  const raw = days(settings.rawDays);
  const rollup = days(settings.rollupDays);
  return [
    { table: 'spans', ttl: `toDateTime(timestamp) + toIntervalDay(${raw})` },
    // A task's events live as long as the rollups: its row is recomputed from them when a late
    // outcome or a late span arrives, and the hours it touches are rebuilt.
    { table: 'task_events', ttl: `toDateTime(timestamp) + toIntervalDay(${rollup})` },
    { table: 'task_snapshot', ttl: `toDateTime(started_at) + toIntervalDay(${rollup})` },
    { table: 'cohort_route_hourly', ttl: `hour + toIntervalDay(${rollup})` },
    // A day outlives its last hour: a window at the horizon reads the whole day or none of it.
    { table: 'cohort_route_daily', ttl: `day + toIntervalDay(${rollup + 1})` },
  ];
}

const tableRow = z.object({ name: z.string(), create_table_query: z.string() });

/**
 * Sets each table's TTL from the settings where it differs from what the table has, and returns
 * the tables changed. `ALTER TABLE … MODIFY TTL` also applies the new TTL to the parts stored.
 * With `cluster`, the statements run ON CLUSTER against the local (Replicated) tables.
 */
export async function applyRetention(
  store: Store,
  settings: RetentionSettings,
  options: { cluster?: string | undefined } = {},
): Promise<string[]> {
  const ttls = retentionTtls(settings);
  const local = (table: string) => (options.cluster ? localTableName(table) : table);
  const rows = await store.query(
    `SELECT name, create_table_query FROM system.tables
     WHERE database = currentDatabase() AND name IN {names:Array(String)}`,
    { names: ttls.map((t) => local(t.table)) },
    tableRow,
  );
  const current = new Map(rows.map((r) => [r.name, r.create_table_query]));
  const changed: string[] = [];
  for (const { table, ttl } of ttls) {
    const query = current.get(local(table));
    if (query === undefined) continue;
    if (new RegExp(`\\bTTL ${escapeRegExp(ttl)}(\\s|$)`).test(query)) continue;
    const alter = `ALTER TABLE ${table} MODIFY TTL ${ttl}`;
    for (const each of options.cluster ? clusterStatements(alter, options.cluster) : [alter]) {
      await store.exec(each);
    }
    changed.push(table);
  }
  return changed;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
