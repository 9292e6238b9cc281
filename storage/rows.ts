import type { z } from 'zod';
import { StorageError } from './errors.js';

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
