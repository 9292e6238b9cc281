import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { SqlAnswer } from '../../server/sql-routes.js';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { remote } from '../client.js';
import { SQL_FORMATS, renderSql } from '../sql-output.js';
import { logOfDataDir, unstoredLogWarning } from '../unstored-log.js';
import type { SqlFormat } from '../sql-output.js';

/** A query that failed on a data directory opened here (exit code 1). */
export class SqlQueryError extends Error {
  readonly code = 'SQL_FAILED';
  constructor(message: string) {
    super(message);
    this.name = 'SqlQueryError';
  }
}

interface SqlValues {
  format: string;
  url?: string;
  'data-dir'?: string;
}

export const sqlCommand: Command<SqlValues> = {
  name: 'sql',
  summary: 'run one read-only SQL query on the data (table, JSON or CSV)',
  usage: `
Usage: routewatch sql [--format table|json|csv] [--url URL | --data-dir DIR] "<query>"
       routewatch sql [options] -        (the query from standard input)
       routewatch sql [options] -- "<query>"

Runs one ClickHouse SQL query on routewatch's data and prints the answer. It asks the running
routewatch (--url, else ROUTEWATCH_URL, else http://127.0.0.1:4318) through POST /api/v1/sql:
the way to query the embedded store while \`routewatch start\` holds its data directory. With
--data-dir it opens the data directory of a stopped routewatch itself.

Read-only: reads and descriptions of the schema only, no INTO OUTFILE and no function that
reaches files, processes or other servers (checked on ClickHouse's own parse of the query), and
ClickHouse itself refuses a write or a setting change (readonly = 1). A query may return
ROUTEWATCH_SQL_MAX_ROWS rows (10000) and ROUTEWATCH_SQL_MAX_RESULT_BYTES (64 MiB), run for
ROUTEWATCH_SQL_MAX_TIME (15s) and use ROUTEWATCH_SQL_MAX_MEMORY_BYTES (1 GiB) — the running
instance's settings, or this environment's with --data-dir. Views and examples: docs/sql-views.md.

A query may span lines and open with a \`--\` comment, as the examples in docs/sql-views.md do.
Quote it whole (a query that opens with \`-- a comment\` is read as the query, not as an
option), put it after a lone \`--\`, or give it on standard input, from a file or a here-document:

  routewatch sql - < query.sql
  routewatch sql - <<'SQL'
  -- Tasks per cohort
  SELECT cohort, count() AS tasks FROM v_tasks GROUP BY cohort
  SQL

Options:
  --format F      table (default), json (an array of objects; 64-bit integers as strings),
                  or csv (RFC 4180, with a header row)
  --url URL       the routewatch instance (ROUTEWATCH_TOKEN is sent as its bearer token)
  --data-dir DIR  query this data directory directly; no routewatch may be running on it

Exit codes: 0 the answer was printed; 1 the query failed (refused by ClickHouse, a limit crossed,
nothing listening, the directory in use); 2 a usage error.

Examples:
  routewatch sql "SELECT cohort, primary_route, tasks, success_rate FROM v_cohort_route_summary"
  routewatch sql --format csv "SELECT * FROM v_tasks WHERE cohort = 'faq' LIMIT 100" > faq.csv
`,
  options: {
    format: { type: 'string', default: 'table' },
    url: { type: 'string' },
    'data-dir': { type: 'string' },
  },
  positionals: { min: 1, max: 1, name: 'query', literal: isCommentedQuery },
  async run(values, positionals) {
    const format = values.format as SqlFormat;
    if (!SQL_FORMATS.includes(format)) {
      throw new UsageError(
        `--format must be one of ${SQL_FORMATS.join(', ')}, got ${JSON.stringify(values.format)}`,
      );
    }
    if (values.url !== undefined && values['data-dir'] !== undefined)
      throw new UsageError('give either --url or --data-dir, not both');
    const sql = positionals[0] === '-' ? await readStdin() : positionals[0]!;
    if (sql.trim() === '') throw new UsageError('the query is empty');
    const answer =
      values['data-dir'] === undefined
        ? ((await remote(values.url).post('/api/v1/sql', { sql })) as SqlAnswer)
        : await queryDataDir(values['data-dir'], sql);
    process.stdout.write(renderSql(answer, format));
  },
};

/**
 * Whether an argument that starts with \`--\` is a query opening with a comment rather than an
 * option: no option's name (up to any \`=\`) holds whitespace, and no option's value a line break.
 */
export function isCommentedQuery(arg: string): boolean {
  return arg.startsWith('--') && (/^--[^=]*\s/.test(arg) || arg.includes('\n'));
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Opens a stopped instance's data directory, runs the query with this environment's limits. */
async function queryDataDir(dataDir: string, sql: string): Promise<SqlAnswer> {
  const dir = resolve(dataDir);
  // An embedded ClickHouse directory has metadata/; opening anything else would create one.
  if (!existsSync(join(dir, 'metadata'))) {
    throw new UsageError(
      `${dir} holds no routewatch data (no metadata/ directory): give the ROUTEWATCH_DATA_DIR of a routewatch that has run`,
    );
  }
  const { parseSettings } = await import('../../server/config.js');
  const { sqlFailure, sqlLimits } = await import('../../server/sql-routes.js');
  const { EmbeddedStore, holdingProcess } = await import('../../storage/embedded-store.js');
  const limits = sqlLimits(
    parseSettings([
      'ROUTEWATCH_SQL_MAX_ROWS',
      'ROUTEWATCH_SQL_MAX_TIME',
      'ROUTEWATCH_SQL_MAX_MEMORY_BYTES',
      'ROUTEWATCH_SQL_MAX_RESULT_BYTES',
    ]),
  );
  let store;
  try {
    store = await EmbeddedStore.open(dir);
  } catch (error) {
    // Who holds it is asked only once the engine's lock refused the open: the `status` file of a
    // process that died may name a PID another process has since taken.
    const code = (error as { code?: unknown }).code;
    if (code === 'EMBEDDED_HELD') {
      const holder = holdingProcess(dir);
      throw heldError(dir, holder === undefined ? '' : ` (process ${holder})`);
    }
    if (code === 'EMBEDDED_OPEN_FAILED') throw new SqlQueryError((error as Error).message);
    throw error;
  }
  try {
    const result = await store.queryReadOnly(sql, limits);
    const warning = await unstoredLogWarning(logOfDataDir(dir), 'this answer leaves them out');
    if (warning !== undefined) process.stderr.write(warning);
    return { ...result, rowCount: result.rows.length };
  } catch (error) {
    throw new SqlQueryError(sqlFailure(error, limits).message);
  } finally {
    await store.close();
  }
}

function heldError(dir: string, holder: string): SqlQueryError {
  return new SqlQueryError(
    `${dir} is held by a running routewatch${holder}, and one process holds a data directory: ` +
      'ask that instance instead — `routewatch sql --url <its URL> "…"` or ROUTEWATCH_URL (`routewatch start` prints its URL)',
  );
}
