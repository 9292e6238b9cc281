import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createChdbConnection } from 'chdb/connection';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { buildReport } from '../analyzer/report.js';
import { normalizeRequest } from '../collector/normalize.js';
import { decodeTraceRequestJson } from '../collector/otlp-json.js';
import { PriceTable } from '../collector/pricing.js';
import { migrate } from '../storage/migrations.js';
import { ServerStore } from '../storage/server-store.js';
import type { ServerStoreOptions } from '../storage/server-store.js';
import { otlpBody } from './helpers.js';
import { BASE_MS } from './support/time.js';

// The server driver's code (command, query with bound parameters) runs through
// @clickhouse/client, with chDB's implementation of the client's connection contract standing in
// for HTTP: no ClickHouse server is needed, and the same engine executes the SQL.
let dir: string;
let store: ServerStore;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'routewatch-server-store-'));
  store = new ServerStore({
    url: 'http://localhost:8123',
    // chDB types its connection against @clickhouse/client-common, the client against its own copy.
    connection: createChdbConnection({ path: dir }) as unknown as ServerStoreOptions['connection'],
  });
});
afterAll(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

const countRow = z.object({ n: z.coerce.number() });

describe('server store (through @clickhouse/client)', () => {
  it('applies the migrations once', async () => {
    const first = await migrate(store);
    expect(first.applied.length).toBeGreaterThan(0);
    const second = await migrate(store);
    expect(second.applied).toEqual([]);
    expect(second.alreadyApplied).toBe(first.applied.length);
  });

  it('binds parameters with quotes, backslashes and unicode intact', async () => {
    const cohort = `it's "q" \\ ünï 🚀`;
    const rows = await store.query(
      'SELECT {c:String} AS c',
      { c: cohort },
      z.object({ c: z.string() }),
    );
    expect(rows).toEqual([{ c: cohort }]);
  });

  it('stores spans and reports them like the embedded driver', async () => {
    const attributes = {
      'routewatch.cohort': 'faq',
      'routewatch.route': 'small',
      'routewatch.attempt': 1,
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.usage.input_tokens': 1000,
      'gen_ai.usage.output_tokens': 100,
    };
    const body = otlpBody([
      {
        name: 'routewatch.task faq',
        kind: 1,
        attributes: { 'routewatch.cohort': 'faq', 'routewatch.outcome': 'success' },
        traceId: 'ab'.repeat(16),
      },
      { name: 'routewatch.attempt small', kind: 1, attributes, traceId: 'ab'.repeat(16) },
      { attributes, traceId: 'ab'.repeat(16) },
    ]);
    const { rows } = normalizeRequest(
      decodeTraceRequestJson(JSON.stringify(body)),
      new PriceTable(),
    );
    // chDB's stand-in connection appends client settings after an insert's body, which garbles a
    // streamed JSONEachRow insert; the rows go in as an inline INSERT statement here instead.
    await store.exec(
      `INSERT INTO spans FORMAT JSONEachRow ${rows.map((r) => JSON.stringify(r)).join('\n')}`,
    );
    const [stored] = await store.query('SELECT count() AS n FROM spans', {}, countRow);
    expect(stored?.n).toBe(3);
    const report = await buildReport(store, {
      from: new Date(BASE_MS - 12 * 3_600_000),
      to: new Date(BASE_MS + 12 * 3_600_000),
    });
    expect(report.rows).toHaveLength(1);
    expect(report.rows[0]).toMatchObject({
      cohort: 'faq',
      primaryRoute: 'small',
      tasks: 1,
      successes: 1,
    });
    expect(report.rows[0]!.costPerSuccessfulTask).toBeCloseTo((1000 * 0.15 + 100 * 0.6) / 1e6, 15);
  });
});
