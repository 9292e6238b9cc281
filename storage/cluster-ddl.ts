import { MigrationError } from './errors.js';

/**
 * The cluster form of our DDL (ROUTEWATCH_CLICKHOUSE_CLUSTER): the same migration files, each
 * statement rewritten so that it runs ON CLUSTER, every table becomes a Replicated table
 * `<name>_local` on each node with a Distributed table `<name>` over it, and the materialized views
 * fold each node's local inserts into its local tables. Queries and inserts keep using the plain
 * names, which are now the Distributed tables. Pure: tested by generating the DDL and checking it
 * (test/unit/cluster-ddl.test.ts); there is no ClickHouse cluster on the machine this was built on.
 *
 * Rows are sharded so that every copy of a row that a Replacing engine must collapse (a span
 * stored twice, a report retried, a task's snapshot rewritten) lands on the same shard, where
 * merges and FINAL meet it: by task id in tables that have one — all of a task's spans, reports,
 * events and snapshot rows then live on one shard, and the materialized views, which write where
 * the span landed, keep them there — and by a hash of the sorting key in the others.
 */

/** The local (Replicated) table under the Distributed table `name`. */
export function localTableName(name: string): string {
  return `${name}_local`;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A cluster name as ClickHouse takes it unquoted; anything else is refused. */
export function assertClusterName(cluster: string): string {
  if (!IDENTIFIER.test(cluster)) {
    throw new MigrationError(
      '*',
      `cluster name ${JSON.stringify(cluster)} is not an identifier (letters, digits, _)`,
    );
  }
  return cluster;
}

/** The text between the parenthesis at `open` and its match. */
function balanced(text: string, open: number): { inner: string; end: number } {
  let depth = 0;
  let quote: string | undefined;
  for (let i = open; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
      continue;
    }
    if (c === "'" || c === '"' || c === '`') quote = c;
    else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return { inner: text.slice(open + 1, i), end: i + 1 };
  }
  throw new Error('unbalanced parentheses');
}

/** Splits `a, f(b, c), d` at its top-level commas. */
function topLevelList(text: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      items.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  const last = text.slice(start).trim();
  if (last) items.push(last);
  return items;
}

const CLAUSE = /\b(PARTITION BY|PRIMARY KEY|ORDER BY|SAMPLE BY|TTL|SETTINGS)\b/g;

/** The ORDER BY expressions of a MergeTree definition (what follows `ENGINE = …`). */
function sortingKey(tail: string): string[] {
  const clauses = [...tail.matchAll(CLAUSE)];
  const at = clauses.findIndex((m) => m[1] === 'ORDER BY');
  if (at === -1) throw new Error('no ORDER BY');
  const from = clauses[at]!.index! + 'ORDER BY'.length;
  const to = clauses[at + 1]?.index ?? tail.length;
  const key = tail.slice(from, to).trim();
  if (key === 'tuple()') return [];
  if (key.startsWith('(') && balanced(key, 0).end === key.length) {
    return topLevelList(balanced(key, 0).inner);
  }
  return [key];
}

const CREATE_TABLE = /^CREATE TABLE IF NOT EXISTS ([A-Za-z_][A-Za-z0-9_]*)\s*\(/;
const ENGINE = /^\s*ENGINE\s*=\s*([A-Za-z]*MergeTree)\b/;

function createTable(statement: string, cluster: string): string[] {
  const head = CREATE_TABLE.exec(statement)!;
  const name = head[1]!;
  const local = localTableName(name);
  const columns = balanced(statement, head[0].length - 1);
  const rest = statement.slice(columns.end);
  const engine = ENGINE.exec(rest);
  if (!engine) throw new Error(`table ${name} is not a MergeTree table`);
  let args = '';
  let tail = rest.slice(engine[0].length);
  if (tail.startsWith('(')) {
    const parsed = balanced(tail, 0);
    args = parsed.inner.trim();
    tail = tail.slice(parsed.end);
  }
  const replication = `'/clickhouse/tables/{shard}/{database}/${local}', '{replica}'`;
  const key = sortingKey(tail);
  const hasTaskId = /(^|\n|\()\s*task_id\s+String\b/.test(columns.inner);
  // A table keyed by nothing (one row of state) lives on one shard.
  const shardingKey = hasTaskId
    ? 'cityHash64(task_id)'
    : key.length === 0
      ? '0'
      : `cityHash64(${key.join(', ')})`;
  return [
    `CREATE TABLE IF NOT EXISTS ${local} ON CLUSTER ${cluster}\n(${columns.inner})\n` +
      `ENGINE = Replicated${engine[1]}(${replication}${args ? `, ${args}` : ''})${tail}`,
    `CREATE TABLE IF NOT EXISTS ${name} ON CLUSTER ${cluster} AS ${local}\n` +
      `ENGINE = Distributed(${cluster}, currentDatabase(), ${local}, ${shardingKey})`,
  ];
}

const MATERIALIZED_VIEW =
  /^CREATE MATERIALIZED VIEW IF NOT EXISTS ([A-Za-z_][A-Za-z0-9_]*) TO ([A-Za-z_][A-Za-z0-9_]*) AS\b/;

function materializedView(statement: string, cluster: string): string {
  const head = MATERIALIZED_VIEW.exec(statement)!;
  // On each node the view reads the local inserts and writes the local table: a block inserted
  // through the Distributed table reaches the node its shard lives on, and is folded there.
  const select = statement
    .slice(head[0].length)
    .replace(
      /\b(FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_]*)\b/g,
      (_m, word: string, table: string) => `${word} ${localTableName(table)}`,
    );
  return (
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${head[1]} ON CLUSTER ${cluster} ` +
    `TO ${localTableName(head[2]!)} AS${select}`
  );
}

/**
 * The statements that do on `cluster` what `statement` does on one server. DDL runs ON CLUSTER;
 * an INSERT … SELECT runs once, as it is, through the Distributed tables.
 */
export function clusterStatements(statement: string, cluster: string): string[] {
  assertClusterName(cluster);
  const text = statement.trim();
  try {
    if (CREATE_TABLE.test(text)) return createTable(text, cluster);
    if (MATERIALIZED_VIEW.test(text)) return [materializedView(text, cluster)];
    const view = /^CREATE OR REPLACE VIEW ([A-Za-z_][A-Za-z0-9_]*) AS\b/.exec(text);
    if (view) {
      // Views read the Distributed tables.
      return [
        `CREATE OR REPLACE VIEW ${view[1]} ON CLUSTER ${cluster} AS${text.slice(view[0].length)}`,
      ];
    }
    const drop = /^DROP TABLE IF EXISTS ([A-Za-z_][A-Za-z0-9_]*)$/.exec(text);
    if (drop) {
      return [
        `DROP TABLE IF EXISTS ${drop[1]} ON CLUSTER ${cluster} SYNC`,
        `DROP TABLE IF EXISTS ${localTableName(drop[1]!)} ON CLUSTER ${cluster} SYNC`,
      ];
    }
    const alter = /^ALTER TABLE ([A-Za-z_][A-Za-z0-9_]*)\s+/.exec(text);
    if (alter) {
      const change = text.slice(alter[0].length);
      const local = `ALTER TABLE ${localTableName(alter[1]!)} ON CLUSTER ${cluster} ${change}`;
      // A Distributed table has its own copy of the columns, taken when it was created: a column
      // added to (or dropped from, or changed in) the local table must change there too, or
      // inserts and reads through it do not see the column. Settings, TTLs and indexes belong to
      // the local table only.
      if (/^(ADD|DROP|MODIFY|RENAME) COLUMN\b/.test(change)) {
        return [local, `ALTER TABLE ${alter[1]} ON CLUSTER ${cluster} ${change}`];
      }
      return [local];
    }
    if (/^INSERT INTO\b/.test(text)) return [text];
  } catch (error) {
    throw new MigrationError('*', `no cluster form for: ${text.slice(0, 80)}…: ${String(error)}`, {
      cause: error,
    });
  }
  throw new MigrationError('*', `no cluster form for this statement: ${text.slice(0, 80)}…`);
}
