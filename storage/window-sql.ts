/**
 * The rollup views as flat queries, for the analyzer's own reads.
 *
 * v_tasks, v_window_metrics and v_timeseries_metrics (and so v_window_scores,
 * v_failure_concentration, v_cohort_route_window and v_overall_window, which read
 * v_window_metrics, and v_cohort_route_timeseries, which reads v_timeseries_metrics)
 * find the tasks changed since the last refresh themselves (scalar subqueries over
 * v_tasks_changed) and always carry the branch that computes those tasks from task_events
 * (v_tasks_live). That keeps them right for anyone who queries them, but ClickHouse plans the whole
 * nest on every read: 50–170 ms per query on a store of 300 000 tasks, most of a report's time, and
 * the same on an empty window (docs/benchmarks.md).
 *
 * The analyzer reads the changed tasks once ({@link readChanged}), then runs each view's own
 * statement (its file in sql/views, so there is one definition) with edits made between marker
 * comments in the file:
 *   - `-- routewatch:changed begin` … `end`: the scalar subqueries become bound parameters
 *     ({changed_tasks:Array(String)}, {changed_hours:Array(DateTime('UTC'))});
 *   - `-- routewatch:live begin` … `end`: the branch over v_tasks_live is dropped when no task
 *     changed (it would select nothing);
 *   - `-- routewatch:days begin` … `end` (v_window_metrics): the branch over cohort_route_daily is
 *     dropped when the window holds no whole UTC day (it would select nothing).
 * The rows are the view's: test/integration/rollups.test.ts compares them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { sqlDir, splitStatements } from './migrations.js';
import type { QueryParams, Store } from './store.js';

/** The views that can be read flat. */
export const FLAT_VIEWS = ['v_tasks', 'v_window_metrics', 'v_timeseries_metrics'] as const;
export type FlatView = (typeof FLAT_VIEWS)[number];

/** The tasks changed since the last refresh of the rollups, and the hours their spans started in. */
export interface Changed {
  /** At most MAX_BOUND_CHANGED_TASKS + 1: more than MAX_BOUND_CHANGED_TASKS means too many to bind. */
  tasks: string[];
  /** ClickHouse UTC times, `YYYY-MM-DD hh:00:00`. */
  hours: string[];
}

const changedRow = z.object({ tasks: z.array(z.string()), hours: z.array(z.string()) });

/**
 * One small query: the tasks v_tasks_changed lists (up to one more than can be bound), and every
 * hour one of their spans started in, with the hours the last refresh left for later
 * (rollup_state.pending_hours): the hours the views must read from task rows instead of the
 * rollups.
 */
export async function readChanged(store: Store): Promise<Changed> {
  const [row] = await store.query(
    `WITH
         (SELECT groupArray({limit:UInt32})(task_id) FROM v_tasks_changed) AS changed,
         (SELECT argMax(pending_hours, (clean_before, refreshed_at)) FROM rollup_state) AS pending
     SELECT
         changed AS tasks,
         arrayMap(h -> toString(h), arraySort(arrayDistinct(arrayConcat(
             -- CAST: groupUniqArrayIf drops the column's time zone, and toString would then
             -- write each hour in the server's zone (TZ of an embedded store's process).
             CAST(groupUniqArrayIf(toStartOfHour(timestamp), kind != 'late_outcome') AS Array(DateTime('UTC'))),
             pending)))) AS hours
     FROM task_events
     WHERE task_id IN (SELECT arrayJoin(changed))`,
    { limit: MAX_BOUND_CHANGED_TASKS + 1 },
    changedRow,
  );
  return row ?? { tasks: [], hours: [] };
}

const MARKER = /^\s*-- routewatch:(changed|live|days|derived) (begin|end)\b/;
type Region = 'changed' | 'live' | 'days' | 'derived';

interface Template {
  /** The statement's lines (view header removed), each with the region it lies in. */
  lines: { text: string; region: Region | null }[];
}

const templates = new Map<FlatView, Template>();

function template(view: FlatView): Template {
  const cached = templates.get(view);
  if (cached) return cached;
  const file = join(sqlDir('views'), `${view}.sql`);
  const text = readFileSync(file, 'utf8');
  const lines: Template['lines'] = [];
  let region: Region | null = null;
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    const marker = MARKER.exec(line);
    if (marker) {
      const [, name, edge] = marker as unknown as [string, Region, string];
      if (edge === 'begin') {
        if (region) throw new Error(`${file}: routewatch:${name} begins inside ${region}`);
        region = name;
        seen.add(name);
      } else {
        if (region !== name) throw new Error(`${file}: routewatch:${name} ends outside it`);
        region = null;
      }
      continue;
    }
    lines.push({ text: line, region });
  }
  if (region) throw new Error(`${file}: routewatch:${region} never ends`);
  if (!seen.has('changed') || !seen.has('live')) {
    throw new Error(
      `${file}: the routewatch:changed and routewatch:live regions must both be marked`,
    );
  }
  const built = { lines };
  templates.set(view, built);
  return built;
}

/** Which optional branches of a view's statement a read needs. */
export interface Branches {
  /** The branch over v_tasks_live (`routewatch:live`): needed when a task changed. */
  live: boolean;
  /**
   * The branch over cohort_route_daily (`routewatch:days`, v_window_metrics only): needed when the
   * window holds a whole UTC day ({@link holdsWholeDay}).
   */
  days: boolean;
  /**
   * The derived columns (`routewatch:derived`, v_window_metrics only: rates, intervals, top
   * reasons), computed over the sums. False: the rows are the sums (is_overall, cohort,
   * primary_route, tasks, …, latency_quantiles, calls_tasks, reason_tasks), which
   * analyzer/window-derive.ts turns into the view's rows. The derived columns are about a third of
   * the time ClickHouse spends analysing the statement. True when not given.
   */
  derived?: boolean;
}

/**
 * The view's statement as a SELECT with the changed tasks bound as parameters, and without the
 * branches `branches` says are not needed. Bind `changed_tasks` and `changed_hours` (see
 * {@link changedParams}) besides the view's own parameters.
 */
export function flatQuery(view: FlatView, branches: Branches): string {
  return render(view, { bind: true, ...branches });
}

/**
 * The view's statement as a SELECT: the changed tasks bound (`bind`) or found by the view's own
 * subqueries, and the optional branches kept or dropped.
 */
function render(view: FlatView, options: Branches & { bind: boolean }): string {
  const { live, bind } = options;
  const out: string[] = [];
  let inChanged = false;
  let changedText: string[] = [];
  const flushChanged = () => {
    const body = changedText.join('\n');
    const definitions: string[] = [];
    if (/\bAS changed_tasks\b/.test(body)) {
      definitions.push('    {changed_tasks:Array(String)} AS changed_tasks');
    }
    if (/\bAS changed_hours\b/.test(body)) {
      definitions.push("    {changed_hours:Array(DateTime('UTC'))} AS changed_hours");
    }
    const trailing = /,\s*$/.test(body.trimEnd()) ? ',' : '';
    out.push(definitions.join(',\n') + trailing);
    changedText = [];
  };
  for (const { text, region } of template(view).lines) {
    if (inChanged && region !== 'changed') {
      flushChanged();
      inChanged = false;
    }
    if (region === 'changed' && bind) {
      inChanged = true;
      if (!text.trim().startsWith('--')) changedText.push(text);
      continue;
    }
    if (region === 'live' && !live) continue;
    if (region === 'days' && !options.days) continue;
    if (region === 'derived' && options.derived === false) continue;
    out.push(text);
  }
  if (inChanged) flushChanged();
  const [statement] = splitStatements(out.join('\n'));
  const body = statement!.replace(new RegExp(`^CREATE OR REPLACE VIEW ${view} AS\\s*`), '');
  return live && bind ? body.replaceAll('FROM v_tasks_live', `FROM (${liveTasks()})`) : body;
}

let liveTasksQuery: string | undefined;

/**
 * v_tasks_live's statement, reading only the changed tasks' events: `PREWHERE task_id IN` them.
 * ClickHouse does not move a filter to PREWHERE under FINAL by itself, so the view, filtered by an
 * outer WHERE, read every column of every granule the ids fall in and merged them before
 * filtering: 150–190 ms for 50 tasks among 3 M, against 40 ms with PREWHERE. task_id is
 * task_events' sorting key, so filtering before FINAL's merge keeps the same rows.
 */
function liveTasks(): string {
  if (liveTasksQuery) return liveTasksQuery;
  const file = join(sqlDir('views'), 'v_tasks_live.sql');
  const [statement] = splitStatements(readFileSync(file, 'utf8'));
  const source = 'FROM task_events FINAL)';
  if (statement?.split(source).length !== 2) {
    throw new Error(`${file}: expected one "${source}" to filter by the changed tasks`);
  }
  liveTasksQuery = statement
    .replace(/^CREATE OR REPLACE VIEW v_tasks_live AS\s*/, '')
    .replace(source, 'FROM task_events FINAL PREWHERE task_id IN {changed_tasks:Array(String)})');
  return liveTasksQuery;
}

/** The parameters flatQuery's statements take for the changed tasks. */
function changedParams(changed: Changed): QueryParams {
  return { changed_tasks: changed.tasks, changed_hours: changed.hours };
}

/**
 * `SELECT … FROM (view) …`: `sql` names the view as `{view}` where a query would write
 * `v_window_metrics(from = …, …)`; the view's parameters are bound by name from `params`.
 */
export async function queryFlat<T>(
  store: Store,
  view: FlatView,
  changed: Changed,
  sql: string,
  params: QueryParams,
  row: z.ZodType<T>,
  options: { derived?: boolean } = {},
): Promise<T[]> {
  if (changed.tasks.length > MAX_BOUND_CHANGED_TASKS) {
    // Too many to send as a parameter (a server takes parameters in the URL): the view's own
    // statement finds them itself.
    const own = render(view, { bind: false, live: true, days: true, ...options });
    return store.query(sql.replaceAll('{view}', `(${own})`), params, row);
  }
  const branches = { live: changed.tasks.length > 0, days: holdsWholeDay(params), ...options };
  const source = `(${flatQuery(view, branches)})`;
  return store.query(
    sql.replaceAll('{view}', source),
    { ...params, ...changedParams(changed) },
    row,
  );
}

/**
 * Above this many changed tasks (a burst of late outcomes, a first refresh not yet run) the
 * analyzer reads the views' own statements, which find the changed tasks themselves: a ClickHouse
 * server takes query parameters in the URL (about 40 bytes per task id), and Node's HTTP servers,
 * proxies in front of ClickHouse among them, refuse headers over 16 KiB.
 */
export const MAX_BOUND_CHANGED_TASKS = 200;

/**
 * Whether the window `params.from`…`params.to` (ClickHouse UTC times) may hold a whole UTC day,
 * which v_window_metrics reads from cohort_route_daily: its whole hours are [from rounded up to
 * the hour, to rounded down), its whole days those hours' whole days. A 24 h window not aligned
 * on midnight holds none, and its statement goes without that branch: ClickHouse spends a good
 * part of a short window's time analysing the statement (docs/benchmarks.md).
 *
 * Times are read to the millisecond, so `from` may read a little early, never late: the days
 * found can only be more than the view's own, and the branch is dropped only when there are none.
 * True when either bound is missing or unreadable.
 */
export function holdsWholeDay(params: QueryParams): boolean {
  const time = (value: unknown) =>
    typeof value === 'string'
      ? Date.parse(
          `${value
            .trim()
            .replace(' ', 'T')
            .replace(/(\.\d{3})\d+$/, '$1')}Z`,
        )
      : Number.NaN;
  const from = time(params.from);
  const to = time(params.to);
  if (!Number.isFinite(from) || !Number.isFinite(to)) return true;
  const HOUR = 3_600_000;
  const DAY = 86_400_000;
  const wholeFrom = Math.ceil(from / HOUR) * HOUR;
  const wholeTo = Math.floor(to / HOUR) * HOUR;
  const daysFrom = Math.ceil(wholeFrom / DAY) * DAY;
  const daysTo = Math.floor(wholeTo / DAY) * DAY;
  return daysFrom < daysTo;
}

/**
 * A query over v_tasks, read flat: `{view}` in `sql` stands for it (`SELECT … FROM {view} WHERE …`).
 * For the alert evaluator, the gate and advice, which need one row per task.
 */
export async function queryTasks<T>(
  store: Store,
  sql: string,
  params: QueryParams,
  row: z.ZodType<T>,
): Promise<T[]> {
  return queryFlat(store, 'v_tasks', await readChanged(store), sql, params, row);
}
