import { describe, expect, it } from 'vitest';
import { renderSqlCsv, renderSqlJson, renderSqlTable } from '../../cli/sql-output.js';
import { sqlFailure } from '../../server/sql-routes.js';
import { HttpError } from '../../server/http-error.js';
import { StorageError, storageFailure } from '../../storage/errors.js';
import { parseReadOnlyResult } from '../../storage/rows.js';
import { readOnlySettings } from '../../storage/store.js';

const answer = {
  columns: [
    { name: 'cohort', type: 'LowCardinality(String)' },
    { name: 'tasks', type: 'UInt64' },
    { name: 'rate', type: 'Nullable(Float64)' },
    { name: 'reasons', type: 'Array(Tuple(String, UInt64))' },
  ],
  rows: [
    ['faq', '1217', 0.902, [['low_confidence', '3']]],
    ['line\nbreak, "quoted"', '5', null, []],
  ],
  statistics: { elapsedMs: 3.25 },
};

describe('renderSqlTable', () => {
  it('pads columns, right-aligns numbers, escapes line breaks, writes NULL and ends with the count', () => {
    expect(renderSqlTable(answer)).toBe(
      [
        'cohort                 tasks   rate  reasons',
        '─────────────────────  ─────  ─────  ────────────────────────',
        'faq                     1217  0.902  [["low_confidence","3"]]',
        'line\\nbreak, "quoted"      5   NULL  []',
        '',
        '2 rows · 3.3 ms',
        '',
      ].join('\n'),
    );
  });

  it('writes the escape sequences of span data as escapes, never for the terminal to run', () => {
    const table = renderSqlTable({
      columns: [{ name: 'cohort', type: 'String' }],
      rows: [['\u001b[2J\u001b]8;;http://evil.example\u0007click\u009b']],
    });
    // No control character but the line breaks of the output itself.
    const controls = [...table].filter((c) => {
      const code = c.codePointAt(0)!;
      return (code < 0x20 && code !== 0x0a) || (code >= 0x7f && code < 0xa0);
    });
    expect(controls).toEqual([]);
    expect(table).toContain('\\u001b[2J\\u001b]8;;http://evil.example\\u0007click\\u009b');
  });

  it('cuts a long value, and prints only the count for a statement without columns', () => {
    const long = renderSqlTable({
      columns: [{ name: 's', type: 'String' }],
      rows: [['x'.repeat(200)]],
    });
    expect(long.split('\n')[2]).toBe(`${'x'.repeat(79)}…`);
    expect(renderSqlTable({ columns: [], rows: [] })).toBe('0 rows\n');
  });
});

describe('renderSqlJson and renderSqlCsv', () => {
  it('gives one object per row, keyed by column, values as the engine sent them', () => {
    expect(JSON.parse(renderSqlJson(answer))).toEqual([
      { cohort: 'faq', tasks: '1217', rate: 0.902, reasons: [['low_confidence', '3']] },
      { cohort: 'line\nbreak, "quoted"', tasks: '5', rate: null, reasons: [] },
    ]);
  });

  it('writes RFC 4180 CSV: a header, quoted fields where needed, NULL empty, composites as JSON', () => {
    expect(renderSqlCsv(answer)).toBe(
      'cohort,tasks,rate,reasons\r\n' +
        'faq,1217,0.902,"[[""low_confidence"",""3""]]"\r\n' +
        '"line\nbreak, ""quoted""",5,,[]\r\n',
    );
  });
});

describe('parseReadOnlyResult', () => {
  it('reads the JSONCompact document of the engine', () => {
    const text = JSON.stringify({
      meta: [{ name: 'n', type: 'UInt64' }],
      data: [['1'], ['2']],
      rows: 2,
      statistics: { elapsed: 0.0012345, rows_read: 2, bytes_read: 16 },
    });
    expect(parseReadOnlyResult(text)).toEqual({
      columns: [{ name: 'n', type: 'UInt64' }],
      rows: [['1'], ['2']],
      statistics: { elapsedMs: 1.235, rowsRead: 2, bytesRead: 16 },
    });
    expect(parseReadOnlyResult('').rows).toEqual([]);
  });

  it('refuses several documents (several statements) and output of another format, saying what to do', () => {
    const one = JSON.stringify({ meta: [], data: [] }, null, '\t');
    expect(() => parseReadOnlyResult(`${one}\n${one}\n`)).toThrow(
      expect.objectContaining({ code: 'SEVERAL_STATEMENTS' }),
    );
    expect(() => parseReadOnlyResult('1\n')).toThrow(/leave out the FORMAT clause/);
    expect(() => parseReadOnlyResult('a,b\n1,2\n')).toThrow(
      expect.objectContaining({ code: 'OWN_FORMAT' }),
    );
  });
});

describe('readOnlySettings', () => {
  it('sets readonly = 1 last, with the limits the engine enforces', () => {
    const settings = readOnlySettings({
      maxRows: 10,
      maxExecutionMs: 1500,
      maxMemoryBytes: 1024,
      maxResultBytes: 2048,
    });
    expect(settings).toEqual({
      max_result_rows: '10',
      result_overflow_mode: 'throw',
      max_execution_time: '1.5',
      timeout_overflow_mode: 'throw',
      max_memory_usage: '1024',
      max_result_bytes: '2048',
      readonly: '1',
    });
    expect(Object.keys(settings).at(-1)).toBe('readonly');
  });
});

describe('sqlFailure', () => {
  const limits = {
    maxRows: 10_000,
    maxExecutionMs: 15_000,
    maxMemoryBytes: 1024 ** 3,
    maxResultBytes: 64 * 1024 ** 2,
  };
  const engine = (text: string) =>
    storageFailure('QUERY_FAILED', 'ClickHouse query failed', new Error(text));

  it.each([
    [
      'Code: 164. DB::Exception: default: Cannot execute query in readonly mode. (READONLY)',
      403,
      'PERMISSION_DENIED',
      /read-only.*readonly = 1/,
    ],
    [
      'Code: 396. DB::Exception: Limit for result exceeded, max rows: 10.00 thousand. (TOO_MANY_ROWS_OR_BYTES)',
      400,
      'RESOURCE_EXHAUSTED',
      /more than 10000 rows, the limit ROUTEWATCH_SQL_MAX_ROWS \(ClickHouse setting max_result_rows\)/,
    ],
    [
      'Code: 396. DB::Exception: Limit for result exceeded, max bytes: 64.00 MiB, current bytes: 64.02 MiB. (TOO_MANY_ROWS_OR_BYTES)',
      400,
      'RESOURCE_EXHAUSTED',
      /larger than 64 MiB, the limit ROUTEWATCH_SQL_MAX_RESULT_BYTES \(ClickHouse setting max_result_bytes\)/,
    ],
    [
      'Code: 159. DB::Exception: Timeout exceeded: elapsed 15001 ms, maximum: 15000 ms. (TIMEOUT_EXCEEDED)',
      400,
      'DEADLINE_EXCEEDED',
      /longer than 15 s, the limit ROUTEWATCH_SQL_MAX_TIME \(ClickHouse setting max_execution_time\)/,
    ],
    [
      'Code: 241. DB::Exception: Query memory limit exceeded: would use 1.00 GiB. (MEMORY_LIMIT_EXCEEDED)',
      400,
      'RESOURCE_EXHAUSTED',
      /more than 1 GiB of memory, the limit ROUTEWATCH_SQL_MAX_MEMORY_BYTES \(ClickHouse setting max_memory_usage\)/,
    ],
    [
      'Code: 241. DB::Exception: Memory limit (total) exceeded: would use 30 GiB. (MEMORY_LIMIT_EXCEEDED)',
      503,
      'UNAVAILABLE',
      /store is unavailable/,
    ],
    [
      'Code: 62. DB::Exception: Syntax error: failed at position 1. (SYNTAX_ERROR)',
      400,
      'INVALID_ARGUMENT',
      /^ClickHouse refused the query: Code: 62\. DB::Exception: Syntax error/,
    ],
  ])('answers %s with %i %s', (text, status, code, message) => {
    const error = sqlFailure(engine(text), limits);
    expect(error).toBeInstanceOf(HttpError);
    expect([error.status, error.code]).toEqual([status, code]);
    expect(error.message).toMatch(message);
  });

  it('passes our own refusals as 400s and rethrows what it does not know (a 500)', () => {
    const several = new StorageError('SEVERAL_STATEMENTS', 'send one statement at a time');
    expect(sqlFailure(several, limits).status).toBe(400);
    const bug = new TypeError('undefined is not a function');
    expect(() => sqlFailure(bug, limits)).toThrow(bug);
  });
});
