import { z } from 'zod';
import { StorageError, clickHouseErrorCode, errorMessage, storageFailure } from './errors.js';
import type { Store } from './store.js';

/**
 * What a user's SQL (`routewatch sql`, `POST /api/v1/sql`) may do beyond what `readonly = 1`
 * refuses. On the embedded engine, readonly is no sandbox: the engine is clickhouse-local,
 * where `SELECT … INTO OUTFILE '/path' TRUNCATE` writes any file the process may write, and
 * the scalar `file('/path')` reads any file it may read (its environment, with the token and
 * the webhook URLs, through /proc/self/environ). Both are refused before the query runs.
 *
 * The check reads the query as the engine parses it: ClickHouse's own `formatQuerySingleLine`
 * gives it back canonical (comments gone, identifiers unquoted where they can be, strings
 * escaped, one statement), and that text is what runs. So what is checked is what runs: no
 * comment, quoting or second statement can hide a clause from the check.
 */

/** The statements the console runs: reads, and the engine's descriptions of the schema. */
const STATEMENTS = ['SELECT', 'WITH', 'SHOW', 'DESCRIBE', 'DESC', 'EXISTS', 'EXPLAIN'];

/**
 * Functions that reach files, processes or other servers from the routewatch host (most are
 * table functions readonly refuses already; `file` is also a scalar function it lets through).
 * Compared without case; a name that starts with one of PREFIXES is refused too (the engine's
 * lake and cloud table functions come in families: icebergS3Cluster, deltaLakeAzure, …).
 */
const FUNCTIONS = new Set(
  [
    'file',
    'fileCluster',
    'url',
    'urlCluster',
    's3',
    's3Cluster',
    'gcs',
    'oss',
    'cosn',
    'hdfs',
    'hdfsCluster',
    'remote',
    'remoteSecure',
    'cluster',
    'clusterAllReplicas',
    'mysql',
    'postgresql',
    'sqlite',
    'mongodb',
    'redis',
    'jdbc',
    'odbc',
    'executable',
    'input',
    'dictionary',
    'catboostEvaluate',
  ].map((name) => name.toLowerCase()),
);
const PREFIXES = ['azureblobstorage', 'iceberg', 'deltalake', 'hudi', 'paimon', 'arrowflight'];

interface Token {
  kind: 'word' | 'punct';
  text: string;
}

/** Words (bare or quoted identifiers) and punctuation of a query, string literals left out. */
function tokens(sql: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    if (c === "'" || c === '`' || c === '"') {
      let j = i + 1;
      let text = '';
      while (j < sql.length) {
        const d = sql[j]!;
        if (d === '\\') {
          text += sql[j + 1] ?? '';
          j += 2;
        } else if (d === c && sql[j + 1] === c) {
          text += c;
          j += 2;
        } else if (d === c) {
          break;
        } else {
          text += d;
          j++;
        }
      }
      if (c !== "'") out.push({ kind: 'word', text });
      i = j + 1;
    } else if (/[A-Za-z_]/.test(c)) {
      const word = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(sql.slice(i))![0];
      out.push({ kind: 'word', text: word });
      i += word.length;
    } else if (/\s/.test(c)) {
      i++;
    } else if (/[0-9]/.test(c)) {
      i += /^[0-9A-Za-z_.]*/.exec(sql.slice(i))![0].length || 1;
    } else {
      out.push({ kind: 'punct', text: c });
      i++;
    }
  }
  return out;
}

/**
 * Why a query, as `formatQuerySingleLine` gave it back, is not run here; undefined when it may
 * run (readonly and the limits then apply as well).
 */
export function readOnlySqlProblem(formatted: string): string | undefined {
  const words = tokens(formatted);
  const first = words[0];
  if (first !== undefined && first.text !== '(' && !STATEMENTS.includes(first.text.toUpperCase())) {
    return `${first.text.toUpperCase()} statements are not run here: only ${STATEMENTS.filter((s) => s !== 'DESC').join(', ')}`;
  }
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word.kind !== 'word') continue;
    const lower = word.text.toLowerCase();
    if (lower === 'into' && words[i + 1]?.text.toLowerCase() === 'outfile') {
      return 'INTO OUTFILE would write a file on the routewatch host: it is not run here (the rows come back in the answer; choose their format with --format)';
    }
    if (
      words[i + 1]?.text === '(' &&
      (FUNCTIONS.has(lower) || PREFIXES.some((prefix) => lower.startsWith(prefix)))
    ) {
      return `${word.text}() reaches files, processes or other servers from the routewatch host: it is not run here. Query routewatch's tables and views (docs/sql-views.md)`;
    }
  }
  return undefined;
}

/**
 * Whether the query, as `formatQuerySingleLine` gave it back, chooses its own output: the
 * keyword `FORMAT` and a format's name at its end, or before `SETTINGS`, which the formatter
 * writes after it. (A column or alias called `format` is never followed so.)
 */
export function hasFormatClause(formatted: string): boolean {
  const words = tokens(formatted);
  return words.some(
    (word, i) =>
      word.kind === 'word' &&
      word.text === 'FORMAT' &&
      words[i + 1]?.kind === 'word' &&
      (words[i + 2] === undefined || words[i + 2]!.text === 'SETTINGS'),
  );
}

const MULTI_STATEMENTS = /Multi-statements are not allowed/i;
const SYNTAX_ERROR = 62;

/**
 * The query to run for a user's SQL: the engine's canonical text of it, once checked
 * ({@link readOnlySqlProblem}). Throws a StorageError `SQL_REFUSED` for what is not run here,
 * `SEVERAL_STATEMENTS` for more than one statement, and the engine's own syntax error (without
 * the wrapping of the statement that asked for the canonical text) for text it cannot parse.
 */
export async function checkedReadOnlySql(store: Store, sql: string): Promise<string> {
  let formatted: string;
  try {
    const [row] = await store.query(
      'SELECT formatQuerySingleLine({sql:String}) AS formatted',
      { sql },
      z.object({ formatted: z.string() }),
    );
    formatted = row?.formatted ?? '';
  } catch (error) {
    // The engine's own message, innermost in the chain of whoever wrapped it.
    let innermost: unknown = error;
    for (let depth = 0; innermost instanceof Error && innermost.cause && depth < 5; depth++)
      innermost = innermost.cause;
    const message = errorMessage(innermost);
    if (MULTI_STATEMENTS.test(message)) {
      // No cause: the engine's code (62) under it would make it read as the user's syntax error.
      throw new StorageError(
        'SEVERAL_STATEMENTS',
        'the query holds several statements: send one statement at a time',
      );
    }
    if (clickHouseErrorCode(error) === SYNTAX_ERROR) {
      // The syntax error as the engine gives it for the user's text, without the scope of the
      // formatQuerySingleLine call that carried it (the whole query again, quoted).
      const own = message.replace(
        /:?\s*In scope SELECT formatQuerySingleLine\([\s\S]*\) AS formatted\.(?=\s*\([A-Z_]+\))/,
        '.',
      );
      const engine = /\bCode: \d+\. DB::Exception/.test(own)
        ? own
        : `Code: ${SYNTAX_ERROR}. DB::Exception: ${own}`;
      throw storageFailure('QUERY_FAILED', 'ClickHouse query failed', new Error(engine));
    }
    throw error;
  }
  const problem = readOnlySqlProblem(formatted);
  if (problem !== undefined) throw new StorageError('SQL_REFUSED', problem);
  // The drivers ask for JSONCompact (the server's by a FORMAT clause of their own).
  if (hasFormatClause(formatted)) {
    throw new StorageError(
      'OWN_FORMAT',
      'the answer is not in the format routewatch asked for: leave out the FORMAT clause (choose the output with --format)',
    );
  }
  return formatted;
}
