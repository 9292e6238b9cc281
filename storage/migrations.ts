import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { clusterStatements } from './cluster-ddl.js';
import { MigrationError, errorMessage } from './errors.js';
import type { Store } from './store.js';

export interface MigrateOptions {
  /**
   * A ClickHouse cluster (ROUTEWATCH_CLICKHOUSE_CLUSTER): every DDL statement runs ON CLUSTER,
   * tables become Replicated with Distributed tables over them (storage/cluster-ddl.ts).
   */
  cluster?: string | undefined;
}

/** Runs a DDL statement as it is, or in its cluster form. */
async function execDdl(
  store: Store,
  statement: string,
  cluster: string | undefined,
): Promise<void> {
  for (const each of cluster ? clusterStatements(statement, cluster) : [statement]) {
    await store.exec(each);
  }
}

export interface Migration {
  version: number;
  name: string;
  statements: string[];
  checksum: string;
}

/** One view, from `sql/views/<name>.sql`: a single `CREATE OR REPLACE VIEW <name>` statement. */
export interface View {
  name: string;
  statement: string;
  checksum: string;
  /** The other views its statement reads. */
  reads: string[];
}

export interface MigrationResult {
  applied: Migration[];
  alreadyApplied: number;
  /** Views (re)created by this run, in the order they were applied. */
  viewsApplied: string[];
  /**
   * Migrations recorded as applied that this version does not have (`0036_name`): a newer
   * routewatch migrated the store. Its views are then left as they are: this version's older
   * views could be wrong over the newer tables, and a newer instance sharing the store would
   * re-create them at its next start, and this one again at its own.
   */
  newer: string[];
}

const FILE_NAME = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/** A folder of sql/, found from this module whether it runs from source or dist/. */
export function sqlDir(folder: 'migrations' | 'views' | 'rollups'): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = join(dir, 'sql', folder);
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new MigrationError(
    '*',
    `could not find the sql/${folder} folder next to the routewatch code`,
  );
}

/** The folder of numbered table migrations. */
export function defaultMigrationsDir(): string {
  return sqlDir('migrations');
}

/** The folder of repeatable view files. */
export function defaultViewsDir(): string {
  return sqlDir('views');
}

/**
 * Splits a migration file into statements. A statement ends with `;` at the end of a line;
 * `--` comment lines are dropped. Our migrations are written to that rule (see sql/README.md).
 */
export function splitStatements(sql: string): string[] {
  const statements: string[] = [];
  let current: string[] = [];
  for (const line of sql.split('\n')) {
    if (line.trim().startsWith('--')) continue;
    current.push(line);
    if (line.trimEnd().endsWith(';')) {
      const statement = current.join('\n').trim().replace(/;$/, '').trim();
      if (statement) statements.push(statement);
      current = [];
    }
  }
  const rest = current.join('\n').trim();
  if (rest) statements.push(rest);
  return statements;
}

export function loadMigrations(dir: string = defaultMigrationsDir()): Migration[] {
  const migrations: Migration[] = [];
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith('.sql')) continue;
    const match = FILE_NAME.exec(file);
    if (!match) {
      throw new MigrationError(file, `migration file ${file} is not named NNNN_name.sql`);
    }
    const text = readFileSync(join(dir, file), 'utf8');
    const version = Number(match[1]);
    if (migrations.some((m) => m.version === version)) {
      throw new MigrationError(file, `two migrations share the number ${match[1]}`);
    }
    migrations.push({
      version,
      name: match[2] ?? file,
      statements: splitStatements(text),
      checksum: createHash('sha256').update(text).digest('hex'),
    });
  }
  return migrations;
}

const VIEW_FILE_NAME = /^([a-z][a-z0-9_]*)\.sql$/;

/**
 * Loads `sql/views/*.sql` in the order they must be applied: a view after every view it reads.
 * The order is derived from the statements (a view reads another when it names it), so a new
 * view file needs no list to be kept up to date.
 */
export function loadViews(dir: string = defaultViewsDir()): View[] {
  const views: View[] = [];
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith('.sql')) continue;
    const match = VIEW_FILE_NAME.exec(file);
    if (!match) throw new MigrationError(file, `view file ${file} is not named <view>.sql`);
    const name = match[1]!;
    const text = readFileSync(join(dir, file), 'utf8');
    const statements = splitStatements(text);
    const creates = new RegExp(`^CREATE OR REPLACE VIEW ${name}\\b`);
    if (statements.length !== 1 || !creates.test(statements[0]!)) {
      throw new MigrationError(
        file,
        `view file ${file} must hold one statement, CREATE OR REPLACE VIEW ${name} AS …`,
      );
    }
    views.push({
      name,
      statement: statements[0]!,
      checksum: createHash('sha256').update(text).digest('hex'),
      reads: [],
    });
  }
  for (const view of views) {
    const body = view.statement.replace(/^CREATE OR REPLACE VIEW \w+/, '');
    view.reads = views
      .filter((other) => other !== view && new RegExp(`\\b${other.name}\\b`).test(body))
      .map((other) => other.name);
  }
  return inDependencyOrder(views);
}

/** Orders views so that each comes after the views it reads; a cycle is an error. */
function inDependencyOrder(views: View[]): View[] {
  const byName = new Map(views.map((v) => [v.name, v]));
  const ordered: View[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (view: View, path: string[]): void => {
    const seen = state.get(view.name);
    if (seen === 'done') return;
    if (seen === 'visiting') {
      throw new MigrationError(
        view.name,
        `views read each other in a cycle: ${[...path, view.name].join(' → ')}`,
      );
    }
    state.set(view.name, 'visiting');
    for (const name of view.reads) visit(byName.get(name)!, [...path, view.name]);
    state.set(view.name, 'done');
    ordered.push(view);
  };
  for (const view of views) visit(view, []);
  return ordered;
}

/** The runner's own tables, which the cluster form also replicates. */
const SCHEMA_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations
(version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
ENGINE = ReplacingMergeTree ORDER BY version`;
const SCHEMA_VIEWS_TABLE = `CREATE TABLE IF NOT EXISTS schema_views
(name String, checksum String, applied_at DateTime64(9, 'UTC') DEFAULT now64(9))
ENGINE = ReplacingMergeTree(applied_at) ORDER BY name`;

/**
 * Every DDL statement a migration of an empty database runs, in order, in the cluster form for
 * `cluster`: the runner's tables, the numbered migrations, the views. For review before running
 * `routewatch migrate` against a cluster, and for the tests of the cluster form.
 */
export function clusterDdl(
  cluster: string,
  migrations: Migration[] = loadMigrations(),
  views: View[] = loadViews(),
): string[] {
  return [
    SCHEMA_MIGRATIONS_TABLE,
    ...[...migrations].sort((a, b) => a.version - b.version).flatMap((m) => m.statements),
    SCHEMA_VIEWS_TABLE,
    ...views.map((v) => v.statement),
  ].flatMap((statement) => clusterStatements(statement, cluster));
}

/** What to say when a newer routewatch migrated the store (MigrationResult.newer); undefined if none did. */
export function newerSchemaNotice(newer: readonly string[]): string | undefined {
  if (newer.length === 0) return undefined;
  return (
    `the store was migrated by a newer routewatch (${newer.join(', ')} applied, which this version does not have): ` +
    'this version runs on it as it is and leaves its views and retention as the newer one made them; run the newer version again, ' +
    'or restore the backup taken before the upgrade to run this one on a schema of its own (docs/operating.md, Upgrades)'
  );
}

const appliedRow = z.object({
  version: z.coerce.number(),
  name: z.string(),
  checksum: z.string(),
});

/** The oldest ClickHouse server routewatch runs on: see {@link serverSupportProblem}. */
export const MIN_SERVER_VERSION = [24, 8] as const;

/**
 * Why a ClickHouse server cannot hold routewatch's schema, or undefined when it can. The views
 * pass their parameters on to other parameterized views (`v_cohort_route_window` reads
 * `v_window_metrics(from = {from:…}, …)`), which servers before 24.2 refuse ("Substitution … is
 * not set", ClickHouse issue #54916) and which work only under the new query analyzer: with it
 * off in the user's profile, the views fail to be created ("Cannot parse DateTime: value '0' …
 * for query parameter 'from'"). 24.8 is the oldest supported line with both (and `enable_analyzer`
 * is its setting's name from 24.8).
 */
export function serverSupportProblem(
  version: string,
  analyzer: number,
  user = '<user>',
): string | undefined {
  const [major = 0, minor = 0] = version.split('.').map((part) => Number.parseInt(part, 10));
  const [minMajor, minMinor] = MIN_SERVER_VERSION;
  // A version string of another shape (a fork's) is not refused for it: the views would say.
  if (Number.isNaN(major) || Number.isNaN(minor)) return analyzerProblem(version, analyzer, user);
  if (major < minMajor || (major === minMajor && minor < minMinor)) {
    return (
      `routewatch needs ClickHouse ${minMajor}.${minMinor} or newer, and this server is ${version}: ` +
      'its views pass parameters on to other parameterized views, which older servers refuse. ' +
      `Upgrade the server (docker-compose.yml pins a supported image), or leave CLICKHOUSE_URL unset to use the embedded engine`
    );
  }
  return analyzerProblem(version, analyzer, user);
}

function analyzerProblem(version: string, analyzer: number, user: string): string | undefined {
  if (analyzer !== 0) return undefined;
  const name = /^[A-Za-z_][A-Za-z0-9_]*$/.test(user) ? user : `\`${user.replaceAll('`', '``')}\``;
  return (
    `the new query analyzer is off for this ClickHouse user (enable_analyzer = 0 in its profile; ClickHouse ${version}), ` +
    "and routewatch's views need it. Turn it on for routewatch's user alone: " +
    `ALTER USER ${name} SETTINGS enable_analyzer = 1 (or enable_analyzer = 1 in its profile), then start again`
  );
}

const serverRow = z.object({
  version: z.string(),
  analyzer: z.coerce.number(),
  user: z.string(),
});

/** Refuses a server that cannot hold the schema, before a statement of it runs (see {@link serverSupportProblem}). */
async function checkServer(store: Store): Promise<void> {
  // The version first and alone: a server older than the analyzer's setting would fail the
  // second query with its own words instead of ours.
  const [server] = await store.query(
    'SELECT version() AS version, currentUser() AS user',
    {},
    serverRow.omit({ analyzer: true }),
  );
  if (server === undefined) return;
  const old = serverSupportProblem(server.version, 1, server.user);
  if (old !== undefined) throw new MigrationError('server', old);
  const [setting] = await store.query(
    "SELECT toUInt8(getSetting('allow_experimental_analyzer')) AS analyzer",
    {},
    serverRow.pick({ analyzer: true }),
  );
  const problem = serverSupportProblem(server.version, setting?.analyzer ?? 1, server.user);
  if (problem !== undefined) throw new MigrationError('server', problem);
}

/**
 * Applies the migrations not yet recorded in `schema_migrations`, in order, each exactly once.
 * An applied migration whose file has changed since is an error: schema history is append-only.
 * Then brings the views up to date (see {@link applyViews}).
 */
export async function migrate(
  store: Store,
  migrations: Migration[] = loadMigrations(),
  views: View[] = loadViews(),
  options: MigrateOptions = {},
): Promise<MigrationResult> {
  if (store.driver === 'server') await checkServer(store);
  await execDdl(store, SCHEMA_MIGRATIONS_TABLE, options.cluster);
  const applied = new Map(
    (
      await store.query(
        'SELECT version, name, checksum FROM schema_migrations FINAL',
        {},
        appliedRow,
      )
    ).map((row) => [row.version, row]),
  );
  const known = new Set(migrations.map((m) => m.version));
  const newer = [...applied.values()]
    .filter((row) => !known.has(row.version))
    .sort((a, b) => a.version - b.version)
    .map((row) => `${String(row.version).padStart(4, '0')}_${row.name}`);
  const result: MigrationResult = { applied: [], alreadyApplied: 0, viewsApplied: [], newer };
  for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
    const label = `${String(migration.version).padStart(4, '0')}_${migration.name}`;
    const done = applied.get(migration.version);
    if (done) {
      if (done.checksum !== migration.checksum) {
        throw new MigrationError(
          label,
          `migration ${label} was applied with different contents (checksum ${done.checksum.slice(0, 12)}, ` +
            `file now ${migration.checksum.slice(0, 12)}); add a new migration instead of editing an applied one`,
        );
      }
      result.alreadyApplied++;
      continue;
    }
    for (const statement of migration.statements) {
      try {
        await execDdl(store, statement, options.cluster);
      } catch (error) {
        throw new MigrationError(label, `migration ${label} failed: ${errorMessage(error)}`, {
          cause: error,
        });
      }
    }
    await store.exec(
      'INSERT INTO schema_migrations (version, name, checksum) VALUES ({version:UInt32}, {name:String}, {checksum:String})',
      { version: migration.version, name: migration.name, checksum: migration.checksum },
    );
    result.applied.push(migration);
  }
  if (newer.length > 0) return result;
  result.viewsApplied = await applyViews(store, views, {
    // A table a view reads may have changed under it.
    reapplyAll: result.applied.length > 0,
    cluster: options.cluster,
  });
  return result;
}

const appliedViewRow = z.object({ name: z.string(), checksum: z.string() });

/**
 * Re-creates, in dependency order, every view whose file changed since it was last applied
 * (checksums in `schema_views`), that is missing from the database, or that reads a view
 * re-created in this run (a view keeps the columns its query had when it was created). With
 * `reapplyAll`, after table migrations, every view is re-created.
 */
export async function applyViews(
  store: Store,
  views: View[],
  options: { reapplyAll?: boolean; cluster?: string | undefined } = {},
): Promise<string[]> {
  if (views.length === 0) return [];
  await execDdl(store, SCHEMA_VIEWS_TABLE, options.cluster);
  const recorded = new Map(
    (
      await store.query(
        'SELECT name, argMax(checksum, applied_at) AS checksum FROM schema_views GROUP BY name',
        {},
        appliedViewRow,
      )
    ).map((row) => [row.name, row.checksum]),
  );
  const existing = new Set(
    (
      await store.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine = 'View'",
        {},
        z.object({ name: z.string() }),
      )
    ).map((row) => row.name),
  );
  const applied: string[] = [];
  for (const view of views) {
    const due =
      options.reapplyAll === true ||
      recorded.get(view.name) !== view.checksum ||
      !existing.has(view.name) ||
      view.reads.some((name) => applied.includes(name));
    if (!due) continue;
    try {
      await execDdl(store, view.statement, options.cluster);
    } catch (error) {
      throw new MigrationError(
        `views/${view.name}.sql`,
        `view ${view.name} failed: ${errorMessage(error)}`,
        { cause: error },
      );
    }
    await store.exec(
      'INSERT INTO schema_views (name, checksum) VALUES ({name:String}, {checksum:String})',
      { name: view.name, checksum: view.checksum },
    );
    applied.push(view.name);
  }
  return applied;
}
