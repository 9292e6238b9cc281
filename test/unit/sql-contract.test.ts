import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { OUTCOMES, SPAN_KINDS } from '@routewatch/instrumentation/semconv';
import { describe, expect, it } from 'vitest';

// SQL cannot import the contract module, so the values the views spell out are checked against
// it here: a rename in semconv.ts fails this test instead of silently emptying a view.
const VIEWS = join(import.meta.dirname, '../../sql/views');
const sources = readdirSync(VIEWS)
  .filter((f) => f.endsWith('.sql'))
  .map((file) => ({ file, sql: readFileSync(join(VIEWS, file), 'utf8') }));

/** Every string literal compared with `column` (`column = 'x'`, `column IN ('x', 'y')`). */
function literalsOf(column: string): Set<string> {
  const found = new Set<string>();
  for (const { sql } of sources) {
    const equals = new RegExp(`\\b${column}\\s*!?=\\s*'([^']*)'`, 'g');
    for (const match of sql.matchAll(equals)) found.add(match[1]!);
    const inList = new RegExp(`\\b${column}\\s+(?:NOT\\s+)?IN\\s*\\(([^)]*)\\)`, 'g');
    for (const match of sql.matchAll(inList)) {
      for (const item of match[1]!.matchAll(/'([^']*)'/g)) found.add(item[1]!);
    }
  }
  found.delete('');
  return found;
}

describe('the SQL views spell the contract', () => {
  it('compare outcomes only with values of OUTCOMES', () => {
    const used = literalsOf('outcome');
    expect(used.size).toBeGreaterThan(0);
    for (const value of used) expect(OUTCOMES as readonly string[]).toContain(value);
  });

  it('compare span kinds only with values of SPAN_KINDS', () => {
    const used = literalsOf('kind');
    expect(used.size).toBeGreaterThan(0);
    // task_events (sql/migrations/0032) holds late outcome reports beside spans, under a kind of
    // their own: the one value that is not a span kind.
    const kinds = [...SPAN_KINDS, 'late_outcome'];
    for (const value of used) expect(kinds).toContain(value);
  });
});
