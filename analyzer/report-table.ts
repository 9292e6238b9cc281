import type { Report } from './report.js';

const usd = (v: number | null) =>
  v === null ? '—' : v >= 0.01 ? `$${v.toFixed(4)}` : `$${v.toFixed(6)}`;
const pct = (v: number | null) => (v === null ? '—' : `${(v * 100).toFixed(1)}%`);
const ms = (v: number | null) => (v === null ? '—' : `${Math.round(v)} ms`);

/** Renders a report as a plain-text table for the terminal. Pure: tested directly. */
export function renderReportTable(report: Report): string {
  const header = [
    'cohort',
    'route',
    'tasks',
    'successes',
    'success',
    'total cost',
    'cost/success',
    'fallback',
    'top fallback reasons',
    'p95',
  ];
  const body = report.rows.map((r) => [
    r.cohort || '(none)',
    r.primaryRoute || '(none)',
    String(r.tasks),
    String(r.successes),
    pct(r.successRate),
    usd(r.totalCostUsd),
    usd(r.costPerSuccessfulTask),
    pct(r.fallbackRate),
    r.topFallbackReasons
      .slice(0, 3)
      .map((f) => `${f.reason} ${Math.round(f.share * 100)}%`)
      .join(', ') || '—',
    ms(r.p95LatencyMs),
  ]);
  const widths = header.map((h, i) =>
    Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)),
  );
  const numeric = new Set([2, 3, 4, 5, 6, 7, 9]);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const lines = [
    `routewatch report  ${report.from} → ${report.to}`,
    '',
    line(header),
    line(widths.map((w) => '─'.repeat(w))),
    ...body.map(line),
  ];
  if (report.rows.length === 0) lines.push('(no tasks in this window)');
  return lines.join('\n') + '\n';
}
