import { printable } from '../analyzer/text-width.js';
import type { ReadOnlyColumn } from '../storage/store.js';

/**
 * The answer of `routewatch sql` as a terminal table, JSON or CSV. Pure: the command prints what
 * these return. Values come as the engine's JSONCompact gives them: 64-bit integers and
 * denormals (inf, nan) as strings, arrays and tuples as arrays, maps as objects, NULL as null.
 */
export const SQL_FORMATS = ['table', 'json', 'csv'] as const;
export type SqlFormat = (typeof SQL_FORMATS)[number];

export interface SqlAnswerView {
  columns: ReadOnlyColumn[];
  rows: unknown[][];
  statistics?: { elapsedMs: number };
}

/** A value as text: strings as they are, composites as JSON, NULL as the given word. */
function text(value: unknown, nullAs: string): string {
  if (value === null || value === undefined) return nullAs;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

const NUMERIC = /^(?:Nullable\()?(?:U?Int\d+|Float\d+|Decimal)/;
const MAX_CELL = 80;

/**
 * A table cell: one line, its control characters escaped (a newline as `\n`, an escape sequence
 * from span data as `\u001b`: never run by the terminal), cut at a readable width.
 */
function cell(value: unknown): string {
  const escaped = printable(text(value, 'NULL'));
  const chars = [...escaped];
  return chars.length > MAX_CELL ? `${chars.slice(0, MAX_CELL - 1).join('')}…` : escaped;
}

const width = (s: string) => [...s].length;

/** Columns padded to their widest cell, numbers right-aligned, and a closing count line. */
export function renderSqlTable(answer: SqlAnswerView): string {
  const { columns, rows } = answer;
  const elapsed =
    answer.statistics === undefined ? '' : ` · ${answer.statistics.elapsedMs.toFixed(1)} ms`;
  const count = `${rows.length} row${rows.length === 1 ? '' : 's'}${elapsed}\n`;
  if (columns.length === 0) return count;
  const body = rows.map((row) => columns.map((_, i) => cell(row[i])));
  const widths = columns.map((c, i) =>
    Math.max(width(c.name), ...body.map((cells) => width(cells[i]!))),
  );
  const numeric = columns.map((c) => NUMERIC.test(c.type));
  const line = (cells: string[]) =>
    cells
      .map((value, i) => {
        const pad = ' '.repeat(widths[i]! - width(value));
        return numeric[i] ? pad + value : value + pad;
      })
      .join('  ')
      .trimEnd();
  return [
    line(columns.map((c) => c.name)),
    line(widths.map((w) => '─'.repeat(w))),
    ...body.map(line),
    '',
  ]
    .join('\n')
    .concat(`\n${count}`);
}

/** One JSON object per row, keyed by column name, in an array. */
export function renderSqlJson(answer: SqlAnswerView): string {
  const objects = answer.rows.map((row) =>
    Object.fromEntries(answer.columns.map((c, i) => [c.name, row[i] ?? null])),
  );
  return `${JSON.stringify(objects, null, 2)}\n`;
}

function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** RFC 4180 CSV with a header row; NULL is an empty field, composites are JSON text. */
export function renderSqlCsv(answer: SqlAnswerView): string {
  const lines = [
    answer.columns.map((c) => csvField(c.name)).join(','),
    ...answer.rows.map((row) => answer.columns.map((_, i) => csvField(text(row[i], ''))).join(',')),
  ];
  return `${lines.join('\r\n')}\r\n`;
}

export function renderSql(answer: SqlAnswerView, format: SqlFormat): string {
  switch (format) {
    case 'table':
      return renderSqlTable(answer);
    case 'json':
      return renderSqlJson(answer);
    case 'csv':
      return renderSqlCsv(answer);
  }
}
