import { displayWidth, padEndTo, printable, tableLayout } from './text-width.js';
import { latencyText } from './latency-text.js';
import type { CohortRouteMetrics, Report, ScoreSummary, WindowMetrics } from './report.js';
import type { Interval } from './stats.js';

const usd = (v: number | null) =>
  v === null ? '—' : v >= 0.01 ? `$${v.toFixed(4)}` : `$${v.toFixed(6)}`;
const pct = (v: number | null) => (v === null ? '—' : `${(v * 100).toFixed(1)}%`);
const ms = (v: number | null) => (v === null ? '—' : latencyText(v));

/** `90.2% (88.4–91.8)`: a rate with its 95 % interval. */
const rateWithInterval = (v: number | null, i: Interval | null) =>
  v === null
    ? '—'
    : i
      ? `${pct(v)} (${(i.lower * 100).toFixed(1)}–${(i.upper * 100).toFixed(1)})`
      : pct(v);

/** Whether no model call of the window has a known cost: any figure of cost would be made up. */
const noneKnown = (m: WindowMetrics) => m.pricedCallShare === 0;

/** A cost built on calls with no known cost: a floor (`≥`), not the cost; unknown with none known. */
function costCell(m: WindowMetrics, v: number | null, text: string): string {
  if (noneKnown(m)) return 'unknown';
  return m.costUnderstated && v !== null ? `≥${text}` : text;
}

/** `$0.000844 ±4%`: the cost per success with the half-width of its 95 % interval, relative. */
function costWithInterval(m: WindowMetrics): string {
  const v = m.costPerSuccessfulTask;
  if (v === null) return noneKnown(m) ? 'unknown' : '—';
  const i = m.costPerSuccessfulTaskInterval;
  const half = i ? (i.upper - i.lower) / 2 : null;
  const spread = half === null || v === 0 ? '' : ` ±${Math.round((half / v) * 100)}%`;
  return costCell(m, v, `${usd(v)}${spread}`);
}

function concentration(row: CohortRouteMetrics): string {
  const c = row.concentration;
  if (!c || c.ratio === null) return '—';
  const mark = c.maskedByAverage ? ' masked' : c.significantlyWorse ? ' worse' : '';
  return `${c.ratio.toFixed(2)}×${mark}`;
}

function cells(label: [string, string], m: WindowMetrics, conc: string): string[] {
  return [
    label[0],
    label[1],
    String(m.tasks),
    rateWithInterval(m.successRate, m.successRateInterval),
    costCell(m, m.totalCostUsd, usd(m.totalCostUsd)),
    costWithInterval(m),
    pct(m.fallbackRate),
    m.topFallbackReasons
      .slice(0, 3)
      .map((f) => `${f.reason} ${Math.round(f.share * 100)}%`)
      .join(', ') || '—',
    ms(m.p95LatencyMs),
    conc,
  ];
}

export interface TableOptions {
  /** Also the columns only JSON had: coverage, reask, escalation, cascades, invisible fallbacks, p50/p99, calls per task, loops, priced share, SDK retries. */
  wide?: boolean;
  /** The window before this one, for a "vs previous" column. */
  previous?: Report;
}

const WIDE_HEADER = [
  'coverage',
  'reask',
  'escalation',
  'cascades',
  'invisible',
  'p50',
  'p99',
  'calls p95',
  'loops',
  'priced',
  'retries',
];

function wideCells(m: WindowMetrics): string[] {
  return [
    pct(m.outcomeCoverage),
    pct(m.reaskRate),
    pct(m.escalationRate),
    pct(m.cascadeRate),
    String(m.invisibleFallbacks),
    ms(m.p50LatencyMs),
    ms(m.p99LatencyMs),
    m.p95CallsPerTask === null ? '—' : String(m.p95CallsPerTask),
    pct(m.loopRate),
    pct(m.pricedCallShare),
    retries(m),
  ];
}

/** `4.0% +0.06/task`: the retry rate, and the extra HTTP requests per task. */
function retries(m: WindowMetrics): string {
  if (m.retryRate === null) return '—';
  const perTask = m.retriesPerTask === null ? '' : ` +${m.retriesPerTask.toFixed(2)}/task`;
  return `${pct(m.retryRate)}${perTask}`;
}

/** `success −3.2 pts, cost/success +41 %, fallback +9.0 pts` against the previous window. */
function change(now: WindowMetrics, before: WindowMetrics | undefined): string {
  if (!before) return 'new';
  const parts: string[] = [];
  if (now.successRate !== null && before.successRate !== null) {
    const d = (now.successRate - before.successRate) * 100;
    parts.push(`success ${d >= 0 ? '+' : '−'}${Math.abs(d).toFixed(1)} pts`);
  }
  if (now.costPerSuccessfulTask !== null && before.costPerSuccessfulTask) {
    const d = (now.costPerSuccessfulTask / before.costPerSuccessfulTask - 1) * 100;
    parts.push(`cost/success ${d >= 0 ? '+' : '−'}${Math.abs(d).toFixed(0)}%`);
  }
  const f = (now.fallbackRate - before.fallbackRate) * 100;
  parts.push(`fallback ${f >= 0 ? '+' : '−'}${Math.abs(f).toFixed(1)} pts`);
  return parts.join(', ');
}

/** Renders a report as a plain-text table for the terminal. Pure: tested directly. */
export function renderReportTable(report: Report, options: TableOptions = {}): string {
  const header = [
    'cohort',
    'route',
    'tasks',
    'success (95% CI)',
    'total cost',
    'cost/success',
    'fallback',
    'top fallback reasons',
    'p95',
    'failure conc.',
  ];
  const extra = (m: WindowMetrics, before: WindowMetrics | undefined) => [
    ...(options.wide ? wideCells(m) : []),
    ...(options.previous ? [change(m, before)] : []),
  ];
  if (options.wide) header.push(...WIDE_HEADER);
  if (options.previous) header.push('vs previous window');
  const previousRow = (r: CohortRouteMetrics) =>
    options.previous?.rows.find((p) => p.cohort === r.cohort && p.primaryRoute === r.primaryRoute);
  const body = report.rows.map((r) => [
    ...cells([r.cohort || '(none)', r.primaryRoute || '(none)'], r, concentration(r)),
    ...extra(r, previousRow(r)),
  ]);
  const overall = report.overall
    ? [
        ...cells(['overall', ''], report.overall, '1.00×'),
        ...extra(report.overall, options.previous?.overall ?? undefined),
      ]
    : undefined;
  const rows = overall ? [...body, overall] : body;
  const numeric = new Set([
    2,
    3,
    4,
    5,
    6,
    8,
    9,
    ...(options.wide ? WIDE_HEADER.map((_, i) => 10 + i) : []),
  ]);
  const { line, rule } = tableLayout(header, rows, numeric);
  const filters = Object.entries(report.filter ?? {})
    .filter(([, values]) => values.length > 0)
    .map(([name, values]) => `${name} ${values.join(', ')}`);
  const lines = [
    `routewatch report  ${report.from} → ${report.to}${filters.length ? `  (${filters.join('; ')})` : ''}`,
    ...(options.previous
      ? [`compared with ${options.previous.from} → ${options.previous.to}`]
      : []),
    '',
    line(header),
    rule,
    ...body.map(line),
  ];
  if (overall) lines.push(rule, line(overall));
  if (report.rows.length === 0) lines.push('(no tasks in this window)');
  // A typo in a filter reads as "no traffic" otherwise.
  for (const u of report.unmatched ?? []) {
    lines.push(
      `No task in this window has ${u.filter} "${printable(u.name)}"` +
        (u.suggestion === null ? '.' : `: did you mean "${printable(u.suggestion)}"?`),
    );
  }
  const masked = report.rows.filter((r) => r.concentration?.maskedByAverage);
  if (masked.length > 0) {
    lines.push(
      '',
      `Masked by the average: ${masked.map(cohortRoute).join(', ')} ` +
        'fail significantly more often than the rest while the overall success rate looks healthy. ' +
        "Pooled over the window's hours: a route that took more of an incident's hours reads worse " +
        "for them alone (the advice weighs a cohort's routes hour by hour, and the " +
        'failure_concentration alert bucket by bucket).',
    );
  }
  const understated = report.rows.filter((r) => r.costUnderstated);
  if (understated.length > 0) {
    lines.push(
      '',
      '≥ cost built on model calls with no known price: the true cost is higher ' +
        '(unknown: no call priced). Model calls with no known price: ' +
        `${listed(understated, (r) => `${r.unpricedCalls} of ${r.modelCalls}`)}. See docs/pricing.md.`,
    );
  }
  lines.push(...joinNotes(report));
  // Hidden retries cost time and money but no span of their own: named wherever there are any.
  const retried = report.rows
    .filter((r) => (r.retryRate ?? 0) > 0)
    .sort((a, b) => b.retryRate! - a.retryRate!);
  if (retried.length > 0) {
    lines.push(
      '',
      `SDK retries (model calls that needed more than one HTTP request): ${listed(retried, retries)}.`,
    );
  }
  lines.push(...scoreLines(report));
  return lines.join('\n') + '\n';
}

/**
 * The two ways a task and its model calls come apart, each with its row's own figure: a row with
 * a cohort or route but no model call (its $0 is what was seen: right for a route that calls no
 * model, a gap otherwise), and untagged tasks with calls (a call outside any task counts its trace as one).
 */
function joinNotes(report: Report): string[] {
  const lines: string[] = [];
  const untagged = report.rows.filter((r) => !r.cohort && !r.primaryRoute && r.modelCalls > 0);
  if (untagged.length > 0) {
    const tasks = untagged.reduce((sum, r) => sum + r.tasks, 0);
    const calls = untagged.reduce((sum, r) => sum + r.modelCalls, 0);
    lines.push(
      '',
      `(none) × (none): ${tasks} task${tasks === 1 ? '' : 's'} with neither cohort nor route, ` +
        `${calls} model call${calls === 1 ? '' : 's'}. A call made outside runTask counts its ` +
        'trace as a task of its own: tag the task (runTask) or map it (docs/mapping.md).',
    );
  }
  // Tagged (a cohort, a route or both) but without a call: untagged ones are the note above's.
  const callless = report.rows.filter(
    (r) => (r.cohort || r.primaryRoute) && r.tasks > 0 && r.modelCalls === 0,
  );
  if (callless.length > 0) {
    lines.push(
      '',
      `No model call joined the tasks of ${listed(callless, (r) => `(${r.tasks} task${r.tasks === 1 ? '' : 's'})`)}: ` +
        'their cost reads $0. Right for a route that calls no model; otherwise the calls ' +
        "do not carry their task's id (docs/mapping.md).",
    );
  }
  return lines;
}

/** `faq × small`, as a note under the table names a row (control characters as escapes). */
function cohortRoute(r: CohortRouteMetrics): string {
  return `${printable(r.cohort || '(none)')} × ${printable(r.primaryRoute || '(none)')}`;
}

/** `faq × small 75.0%, …`: up to five rows with a figure each, and how many more. */
function listed(rows: CohortRouteMetrics[], figure: (r: CohortRouteMetrics) => string): string {
  const shown = rows.slice(0, 5).map((r) => `${cohortRoute(r)} ${figure(r)}`);
  return rows.length > 5
    ? `${shown.join(', ')} and ${rows.length - 5} more (--wide)`
    : shown.join(', ');
}

/** Quality scores, one line per cohort × route that has any: `name mean [lower–upper] (n)`. */
function scoreLines(report: Report): string[] {
  const groups: [string, ScoreSummary[]][] = report.rows
    .filter((r) => r.scores.length > 0)
    .map((r) => [cohortRoute(r), r.scores]);
  if (report.overall && report.overall.scores.length > 0)
    groups.push(['overall', report.overall.scores]);
  if (groups.length === 0) return [];
  const width = Math.max(...groups.map(([label]) => displayWidth(label)));
  const score = (s: ScoreSummary) =>
    `${s.name} ${s.mean.toFixed(3)}` +
    (s.interval ? ` [${s.interval.lower.toFixed(3)}–${s.interval.upper.toFixed(3)}]` : '') +
    ` (n=${s.n})`;
  return [
    '',
    'Quality scores (mean, 95% CI, tasks scored):',
    ...groups.map(
      ([label, scores]) => `  ${padEndTo(label, width)}  ${scores.map(score).join('; ')}`,
    ),
  ];
}
