import { z } from 'zod';
import { StorageError } from './errors.js';
import type { ReadOnlyResult } from './store.js';

/**
 * A number read from ClickHouse: 64-bit integers arrive as JSON strings (so that no digit is
 * lost in a double), other numbers as numbers.
 */
export const chNumber = z.union([z.number(), z.string()]).transform(Number);

/** A number that may be missing: NULL, or nan (the engine writes 0/0 and a quantile of nothing as nan). */
export const chNullableNumber = z
  .union([z.number(), z.string(), z.null()])
  .transform((v) => (v === null ? null : Number(v)))
  .transform((v) => (v === null || Number.isNaN(v) ? null : v));

/** A ClickHouse Bool or UInt8 flag: 1/0, true/false, or their text. */
export const chFlag = z
  .union([z.number(), z.boolean(), z.string()])
  .transform((v) => Number(v) === 1 || v === true);

/** Parses a JSONEachRow result and checks every row: rows read back are a boundary too. */
export function parseRows<T>(text: string, row: z.ZodType<T>): T[] {
  const rows: T[] = [];
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    const line = text.slice(start, end).trim();
    start = end + 1;
    if (line === '') continue;
    const parsed = row.safeParse(JSON.parse(line));
    if (!parsed.success) {
      throw new StorageError(
        'ROW_SHAPE',
        `a row read from ClickHouse has an unexpected shape: ${parsed.error.message}`,
        { cause: parsed.error },
      );
    }
    rows.push(parsed.data);
  }
  return rows;
}

const jsonCompact = z.object({
  meta: z.array(z.object({ name: z.string(), type: z.string() })),
  data: z.array(z.array(z.unknown())),
  statistics: z
    .object({ elapsed: z.number(), rows_read: z.coerce.number(), bytes_read: z.coerce.number() })
    .optional(),
});

/**
 * Parses the engine's JSONCompact answer to a user query. An empty answer is a statement that
 * returns nothing (`USE`, an empty query). Anything else that is not one JSONCompact document
 * is a query that chose its own output (a FORMAT clause) or sent several statements, which the
 * embedded engine runs one after another (a server refuses them): both are refused here with
 * what to do instead.
 */
export function parseReadOnlyResult(text: string): ReadOnlyResult {
  if (text.trim() === '') {
    return { columns: [], rows: [], statistics: { elapsedMs: 0, rowsRead: 0, bytesRead: 0 } };
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    const several = /^\}\s*\{/m.test(text);
    throw new StorageError(
      several ? 'SEVERAL_STATEMENTS' : 'OWN_FORMAT',
      several
        ? 'the query holds several statements: send one statement at a time'
        : 'the answer is not in the format routewatch asked for: leave out the FORMAT clause (choose the output with --format)',
      { cause: error },
    );
  }
  const parsed = jsonCompact.safeParse(document);
  if (!parsed.success) {
    throw new StorageError(
      'OWN_FORMAT',
      'the answer is not in the format routewatch asked for: leave out the FORMAT clause (choose the output with --format)',
      { cause: parsed.error },
    );
  }
  const { meta, data, statistics } = parsed.data;
  return {
    columns: meta,
    rows: data,
    statistics: {
      elapsedMs: Math.round((statistics?.elapsed ?? 0) * 1e6) / 1e3,
      rowsRead: statistics?.rows_read ?? 0,
      bytesRead: statistics?.bytes_read ?? 0,
    },
  };
}
