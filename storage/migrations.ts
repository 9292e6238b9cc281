import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { MigrationError, errorMessage } from './errors.js';
import type { Store } from './store.js';

export interface Migration {
  version: number;
  name: string;
  statements: string[];
  checksum: string;
}

export interface MigrationResult {
  applied: Migration[];
  alreadyApplied: number;
}

const FILE_NAME = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/** The folder of numbered migrations, found from this module whether it runs from source or dist/. */
export function defaultMigrationsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = join(dir, 'sql', 'migrations');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new MigrationError(
    '*',
    'could not find the sql/migrations folder next to the routewatch code',
  );
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

const appliedRow = z.object({
  version: z.coerce.number(),
  name: z.string(),
  checksum: z.string(),
});

/**
 * Applies the migrations not yet recorded in `schema_migrations`, in order, each exactly once.
 * An applied migration whose file has changed since is an error: schema history is append-only.
 */
export async function migrate(
  store: Store,
  migrations: Migration[] = loadMigrations(),
): Promise<MigrationResult> {
  await store.exec(
    `CREATE TABLE IF NOT EXISTS schema_migrations
     (version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
     ENGINE = ReplacingMergeTree ORDER BY version`,
  );
  const applied = new Map(
    (
      await store.query(
        'SELECT version, name, checksum FROM schema_migrations FINAL',
        {},
        appliedRow,
      )
    ).map((row) => [row.version, row]),
  );
  const result: MigrationResult = { applied: [], alreadyApplied: 0 };
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
        await store.exec(statement);
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
  return result;
}
