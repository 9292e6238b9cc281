import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RULE_DEFAULTS } from '../../analyzer/rules.js';
import { REPO_ROOT } from '../support/child-process.js';
import { markdownFiles, shellBlocks } from '../support/doc-blocks.js';
import { settingDefaults } from '../support/settings-table.js';

// The docs against the code, so that they cannot go stale quietly: every setting of the schema in
// docs/operating.md with its default, every relative link resolving, every shell block saying how
// it is run (test/integration/docs-commands.test.ts runs them).

describe('docs/operating.md settings table', () => {
  const doc = readFileSync(join(REPO_ROOT, 'docs/operating.md'), 'utf8');
  const table = /<!-- settings:[^\n]*-->\n([\s\S]*?)<!-- \/settings -->/.exec(doc)?.[1] ?? '';
  const rows = table
    .split('\n')
    .map((line) => /^\| `([A-Z_]+)` \| `([^`]*)` \| (.*) \|$/.exec(line))
    .filter((match) => match !== null)
    .map((match) => ({ name: match[1]!, default: match[2]!, meaning: match[3]!.trim() }));

  it('lists every setting of server/config.ts, in its order, with its default', () => {
    expect(rows.map(({ name, default: value }) => ({ name, default: value }))).toEqual(
      settingDefaults(),
    );
  });

  it('says what each one does', () => {
    expect(rows.filter((row) => row.meaning.length < 10).map((row) => row.name)).toEqual([]);
  });
});

describe('docs/rules.md table of rules', () => {
  const doc = readFileSync(join(REPO_ROOT, 'docs/rules.md'), 'utf8');
  const rows = doc
    .split('\n')
    .map((line) => /^\| `([a-z_0-9]+)` \|.*\| ([a-z]+) \|$/.exec(line))
    .filter((match) => match !== null)
    .map((match) => [match[1]!, match[2]!]);

  it('lists every kind of rule, in its order, with its default severity', () => {
    expect(rows).toEqual(
      Object.entries(RULE_DEFAULTS).map(([kind, defaults]) => [kind, defaults.severity]),
    );
  });
});

/** Names created by `CREATE <kind> IF NOT EXISTS <name>` in the SQL text, in order. */
const createdNames = (sql: string, kind: string): string[] =>
  [...sql.matchAll(new RegExp(`CREATE ${kind} IF NOT EXISTS ([a-z_]+)`, 'g'))].map((m) => m[1]!);

describe('docs/operating.md list of tables', () => {
  const migrationsDir = join(REPO_ROOT, 'sql/migrations');
  const migrations = readdirSync(migrationsDir)
    .filter((file) => file.endsWith('.sql'))
    .sort()
    .map((file) => readFileSync(join(migrationsDir, file), 'utf8'))
    .join('\n');
  const dropped = [...migrations.matchAll(/DROP TABLE IF EXISTS ([a-z_]+)/g)].map((m) => m[1]!);
  // The runner's own tables (schema_migrations, schema_views) are made by storage/migrations.ts.
  const everTables = [
    ...createdNames(migrations, 'TABLE'),
    ...createdNames(readFileSync(join(REPO_ROOT, 'storage/migrations.ts'), 'utf8'), 'TABLE'),
  ];
  const tables = everTables.filter((name) => !dropped.includes(name));
  const materializedViews = createdNames(migrations, 'MATERIALIZED VIEW');
  const doc = readFileSync(join(REPO_ROOT, 'docs/operating.md'), 'utf8');
  const list = /<!-- tables:[^\n]*-->\n([\s\S]*?)<!-- \/tables -->/.exec(doc)?.[1] ?? '';
  const named = new Set([...list.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!));

  it('is derived from migrations the names can be read from (no table renamed)', () => {
    expect(migrations).not.toMatch(/\bRENAME TABLE\b|\bEXCHANGE TABLES\b/);
    expect(tables).toContain('spans');
    expect(tables).toContain('cohort_route_daily');
    expect(dropped).toContain('outcome_reports');
  });

  it('names every table and materialized view the migrations leave, and no dropped table', () => {
    expect([...tables, ...materializedViews].filter((name) => !named.has(name))).toEqual([]);
    expect(everTables.filter((name) => dropped.includes(name) && named.has(name))).toEqual([]);
  });
});

describe('the Markdown files', () => {
  it('link only to files that exist', () => {
    const broken: string[] = [];
    for (const path of markdownFiles()) {
      const text = readFileSync(path, 'utf8').replace(/^```[\s\S]*?^```$/gm, '');
      for (const match of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = match[1]!.split('#', 1)[0]!;
        if (target === '' || /^[a-z]+:/.test(target)) continue;
        if (!existsSync(join(dirname(path), target)))
          broken.push(`${relative(REPO_ROOT, path)} → ${match[1]}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('mark every shell block with how it is run, and give a reason for each one not run', () => {
    const blocks = shellBlocks();
    expect(blocks.length).toBeGreaterThan(10);
    expect(
      blocks.filter((b) => b.mode === 'unknown').map((b) => `${b.file}:${b.line} ${b.info}`),
    ).toEqual([]);
    expect(
      blocks
        .filter((b) => b.mode === 'skip' && (b.skipReason ?? '').length < 20)
        .map((b) => `${b.file}:${b.line}`),
    ).toEqual([]);
    // Most blocks run: a skip is the exception.
    expect(blocks.filter((b) => b.mode !== 'skip').length).toBeGreaterThan(
      blocks.filter((b) => b.mode === 'skip').length,
    );
  });
});
