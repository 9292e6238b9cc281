import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { runDemo } from '../../cli/demo.js';
import { configWith } from '../../server/config.js';
import { sqlLimits } from '../../server/sql-routes.js';
import { EmbeddedStore } from '../../storage/embedded-store.js';
import { testApp } from '../support/app.js';
import { REPO_ROOT } from '../support/child-process.js';

// Every ```sql block of docs/sql-views.md, run as written through the read-only path of
// `routewatch sql` (Store.queryReadOnly with the default limits) on the demo's data, plus one late
// outcome report sent through POST /v1/outcomes. An example that looks for anomalies may return no
// rows on healthy data, but every view has one that shows rows.
const doc = readFileSync(join(REPO_ROOT, 'docs/sql-views.md'), 'utf8');
const examples = [...doc.matchAll(/^```sql\n([\s\S]*?)^```$/gm)].map((m) => m[1]!.trim());
const views = readdirSync(join(REPO_ROOT, 'sql/views'))
  .filter((f) => f.endsWith('.sql'))
  .map((f) => f.replace(/\.sql$/, ''));

const dataDir = mkdtempSync(join(tmpdir(), 'routewatch-sql-docs-'));
let store: EmbeddedStore;

beforeAll(async () => {
  const demo = await runDemo({
    seed: 7,
    tasks: 200,
    concurrency: 32,
    latencyScale: 0,
    dataDir,
    out: () => undefined,
  });
  expect(demo.mismatches).toEqual([]);
  store = await EmbeddedStore.open(dataDir);
  const [task] = await store.query(
    "SELECT task_id FROM v_tasks WHERE outcome = 'success' ORDER BY task_id LIMIT 1",
    {},
    z.object({ task_id: z.string() }),
  );
  const rw = await testApp(store);
  try {
    const late = await rw.app.inject({
      method: 'POST',
      url: '/v1/outcomes',
      headers: { 'content-type': 'application/json' },
      payload: { taskId: task!.task_id, outcome: 'failure', reason: 'human_corrected' },
    });
    expect(late.statusCode).toBe(202);
  } finally {
    await rw.close();
  }
}, 120_000);

afterAll(async () => {
  await store?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('docs/sql-views.md', () => {
  /** Rows each example returned, by example. */
  const returned = new Map<string, number>();

  it.each(examples.map((sql) => [sql.split('\n')[0], sql]))(
    'runs the example as written, read-only: %s',
    async (_title, sql) => {
      const result = await store.queryReadOnly(sql, sqlLimits(configWith()));
      expect(result.columns.length).toBeGreaterThan(0);
      returned.set(sql, result.rows.length);
    },
  );

  it('has an example for every view in sql/views that shows rows of the demo', () => {
    expect(views.length).toBeGreaterThan(0);
    expect(returned.size).toBe(examples.length);
    const without = views.filter(
      (view) =>
        ![...returned].some(
          ([sql, rows]) => rows > 0 && new RegExp(`\\bFROM ${view}\\b`).test(sql),
        ),
    );
    expect(without).toEqual([]);
  });
});
