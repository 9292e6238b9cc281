import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ClickHouseLogLevel, createClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { buildReport } from '../../analyzer/report.js';
import { normalizeRequest } from '../../collector/normalize.js';
import { decodeTraceRequestJson } from '../../collector/otlp-json.js';
import { PriceTable } from '../../collector/pricing.js';
import { testApp } from '../support/app.js';
import { EmbeddedStore } from '../../storage/embedded-store.js';
import {
  StorageError,
  clickHouseErrorCode,
  isRowDataError,
  isStoreUnavailable,
} from '../../storage/errors.js';
import { migrate } from '../../storage/migrations.js';
import { loadViews } from '../../storage/migrations.js';
import { ServerStore } from '../../storage/server-store.js';
import { INSERT_SETTINGS } from '../../storage/store.js';
import type { Store } from '../../storage/store.js';
import { hexId, otlpBody } from '../support/otlp.js';
import type { TestSpan } from '../support/otlp.js';
import { startClickHouseHttp } from '../support/clickhouse-http.js';
import type { ClickHouseHttp } from '../support/clickhouse-http.js';
import { dateAt, nsAt } from '../support/time.js';

// The server driver runs through @clickhouse/client over real HTTP into a ClickHouse HTTP
// interface backed by the real engine (test/support/clickhouse-http.ts). The server is strict, as
// the one the reliability probe used: an insert whose rows do not fit the table is refused.

const anyRow = z.record(z.string(), z.unknown());
const countRow = z.object({ n: z.coerce.number() });
const readSpans = (store: Store) =>
  store.query('SELECT * EXCEPT (inserted_at) FROM spans ORDER BY trace_id, span_id', {}, anyRow);

/** Spans covering every column type of the table, with strings a driver could mangle. */
function mixedSpans(): TestSpan[] {
  const hostile = `it's "q" \\ \t tab\nline ünï 🚀 路由 '; DROP TABLE spans; --`;
  const traceId = hexId(16);
  return [
    {
      traceId,
      name: 'routewatch.task faq',
      kind: 1,
      start: nsAt(0),
      end: nsAt(900),
      attributes: {
        'routewatch.task.id': 'Task-A',
        'routewatch.cohort': 'faq',
        'routewatch.policy.version': 'v7',
        'routewatch.outcome': 'failure',
        'routewatch.outcome.reason': hostile,
        'routewatch.reask': true,
        'routewatch.cleanup.cost_usd': 0.125,
        'custom.key': hostile,
      },
    },
    {
      traceId,
      name: 'routewatch.attempt small',
      kind: 1,
      start: nsAt(1),
      end: nsAt(400),
      attributes: {
        'routewatch.task.id': 'Task-A',
        'routewatch.route': 'small',
        'routewatch.attempt': 1,
        'routewatch.validation': 'fail',
        'routewatch.confidence': 0.3,
      },
    },
    {
      traceId,
      name: 'chat gpt-4o-mini',
      start: nsAt(2),
      end: nsAt(350),
      status: { code: 2, message: hostile },
      attributes: {
        'routewatch.task.id': 'Task-A',
        'routewatch.route': 'small',
        'routewatch.attempt': 1,
        'gen_ai.operation.name': 'chat',
        'gen_ai.request.model': 'gpt-4o-mini',
        'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
        'gen_ai.usage.input_tokens': 123_456_789,
        'gen_ai.usage.output_tokens': 42,
        'gen_ai.usage.cache_read.input_tokens': 1000,
        'error.type': 'timeout',
      },
    },
    {
      traceId,
      name: 'chat gpt-4o',
      start: nsAt(500),
      end: nsAt(800),
      attributes: {
        'routewatch.task.id': 'Task-A',
        'routewatch.route': 'large',
        'routewatch.attempt': 2,
        'routewatch.fallback.reason': 'timeout',
        'gen_ai.request.model': 'gpt-4o',
        'gen_ai.usage.input_tokens': 10,
        'gen_ai.usage.output_tokens': 20,
        'gen_ai.usage.cost': 0.000123456789,
      },
    },
  ];
}

function jsonEachRow(spans: TestSpan[]): Buffer {
  const { rows } = normalizeRequest(
    decodeTraceRequestJson(JSON.stringify(otlpBody(spans, 'svc ünï'))),
    new PriceTable(),
  );
  return Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

const spanBytes = jsonEachRow(mixedSpans());
let embeddedRows: Record<string, unknown>[];
let server: ClickHouseHttp;
let store: ServerStore;

beforeAll(async () => {
  // The embedded engine's rows first: chDB holds one data directory per process at a time, and
  // the test server opens its own afterwards.
  const dir = mkdtempSync(join(tmpdir(), 'routewatch-embedded-reference-'));
  const embedded = await EmbeddedStore.open(dir);
  try {
    await migrate(embedded);
    await embedded.insertJsonEachRow('spans', spanBytes);
    embeddedRows = await readSpans(embedded);
  } finally {
    await embedded.close();
    rmSync(dir, { recursive: true, force: true });
  }
  server = await startClickHouseHttp({
    user: 'routewatch',
    password: 's3cret pass',
    databases: ['routewatch'],
    strict: true,
  });
  store = new ServerStore({ url: server.url });
  await migrate(store);
});
afterAll(async () => {
  await store?.close();
  await server?.close();
});

const lastInsert = () => server.requests.filter((r) => r.query.startsWith('INSERT INTO')).at(-1);

describe('server store (through @clickhouse/client over HTTP)', () => {
  it('sends the JSONEachRow bytes as they are, and the rows land as the embedded engine stores them', async () => {
    await store.insertJsonEachRow('spans', spanBytes);
    const sent = lastInsert();
    expect(sent?.body.equals(spanBytes)).toBe(true);
    expect(sent?.database).toBe('routewatch');
    const serverRows = await readSpans(store);
    expect(embeddedRows).toHaveLength(4);
    expect(serverRows).toHaveLength(embeddedRows.length);
    serverRows.forEach((row, i) => {
      expect(Object.keys(row)).toEqual(Object.keys(embeddedRows[i]!));
      for (const [column, value] of Object.entries(embeddedRows[i]!)) {
        expect(row[column], `spans.${column}, row ${i}`).toEqual(value);
      }
    });
    await store.exec('TRUNCATE TABLE spans');
    // The task state folded from those spans, which the next test's task would otherwise share.
    await store.exec('TRUNCATE TABLE task_events');
  });

  it('fills v_tasks from a valid OTLP export and stores late outcome reports', async () => {
    const { app, writer, close } = await testApp(store, {
      config: { ROUTEWATCH_BATCH_DELAY: '1ms' },
    });
    try {
      const traceId = hexId(16);
      const exported = await app.inject({
        method: 'POST',
        url: '/v1/traces',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify(
          otlpBody(mixedSpans().map((span) => ({ ...span, traceId, spanId: hexId(8) }))),
        ),
      });
      expect(exported.statusCode).toBe(200);
      expect(exported.json()).toEqual({});
      await writer.flush();
      const task = z.object({ task_id: z.string(), outcome: z.string(), attempts: z.number() });
      const before = await store.query('SELECT task_id, outcome, attempts FROM v_tasks', {}, task);
      expect(before).toEqual([{ task_id: 'Task-A', outcome: 'failure', attempts: 2 }]);

      const reported = await app.inject({
        method: 'POST',
        url: '/v1/outcomes',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ taskId: 'Task-A', outcome: 'success', cleanupCostUsd: 0.5 }),
      });
      expect(reported.statusCode).toBe(202);
      const [after] = await store.query(
        'SELECT task_id, outcome, cleanup_cost_usd FROM v_tasks',
        {},
        z.object({ task_id: z.string(), outcome: z.string(), cleanup_cost_usd: z.number() }),
      );
      expect(after).toEqual({ task_id: 'Task-A', outcome: 'success', cleanup_cost_usd: 0.625 });

      const report = await buildReport(store, { from: dateAt(-60_000), to: dateAt(60_000) });
      expect(report.rows).toMatchObject([
        { cohort: 'faq', primaryRoute: 'small', tasks: 1, successes: 1, fallbacks: 1 },
      ]);
    } finally {
      await close();
      await store.exec('TRUNCATE TABLE spans');
      await store.exec('TRUNCATE TABLE task_events');
    }
  });

  it('applies the migrations and views once', async () => {
    const again = await migrate(store);
    expect(again.applied).toEqual([]);
    expect(again.viewsApplied).toEqual([]);
    const tables = await store.query(
      "SELECT name FROM system.tables WHERE database = 'routewatch' AND name LIKE 'v\\_%' ORDER BY name",
      {},
      z.object({ name: z.string() }),
    );
    expect(tables.map((t) => t.name)).toEqual(
      loadViews()
        .map((v) => v.name)
        .sort(),
    );
  });

  it('sends insert_deduplication_token: a retried batch with the same token is stored once', async () => {
    await store.exec(
      'CREATE TABLE dedup_probe (x UInt32) ENGINE = MergeTree ORDER BY x SETTINGS non_replicated_deduplication_window = 100',
    );
    await store.insertJsonEachRow('dedup_probe', Buffer.from('{"x":1}\n'), {
      deduplicationToken: 'batch-1',
    });
    expect(lastInsert()?.settings['insert_deduplication_token']).toBe('batch-1');
    // Synchronous whatever the server's profile: an asynchronous insert ignores the token.
    expect(lastInsert()?.settings['async_insert']).toBe('0');
    // Different bytes under the same token: the engine knows the batch by its token alone.
    await store.insertJsonEachRow('dedup_probe', Buffer.from('{"x":2}\n'), {
      deduplicationToken: 'batch-1',
    });
    await store.insertJsonEachRow('dedup_probe', Buffer.from('{"x":2}\n'), {
      deduplicationToken: 'batch-2',
    });
    const rows = await store.query(
      'SELECT x FROM dedup_probe ORDER BY x',
      {},
      z.object({ x: z.number() }),
    );
    expect(rows).toEqual([{ x: 1 }, { x: 2 }]);
  });

  it('sends async_insert = 0 on every request, and a Distributed insert waits for its shards', async () => {
    // An `INSERT … VALUES` statement (rollup state, migrations) as well as the span inserts:
    // servers from 26.2, and ClickHouse Cloud, make inserts asynchronous by default.
    await store.exec('CREATE TABLE async_probe (x UInt32) ENGINE = MergeTree ORDER BY x');
    await store.exec('INSERT INTO async_probe VALUES ({x:UInt32})', { x: 7 });
    expect(lastInsert()?.settings).toMatchObject({
      async_insert: '0',
      distributed_foreground_insert: '1',
    });
    await store.insertJsonEachRow('async_probe', Buffer.from('{"x":8}\n'));
    expect(lastInsert()?.settings).toMatchObject({
      async_insert: '0',
      distributed_foreground_insert: '1',
    });
    const [row] = await store.query('SELECT count() AS n FROM async_probe', {}, countRow);
    expect(row?.n).toBe(2);
  });

  it('applies the insert settings: one insert may span as many partitions as INSERT_SETTINGS allows', async () => {
    const cap = Number(INSERT_SETTINGS.max_partitions_per_insert_block);
    const days = cap === 0 ? 101 : cap; // the engine's own default cap is 100
    await store.exec(
      'CREATE TABLE partition_probe (d Date) ENGINE = MergeTree PARTITION BY d ORDER BY d',
    );
    const body = Array.from({ length: days }, (_, i) =>
      JSON.stringify({
        d: new Date(Date.UTC(2026, 0, 1) + i * 86_400_000).toISOString().slice(0, 10),
      }),
    ).join('\n');
    await store.insertJsonEachRow('partition_probe', Buffer.from(body));
    expect(lastInsert()?.settings['max_partitions_per_insert_block']).toBe(String(cap));
    const [row] = await store.query('SELECT count() AS n FROM partition_probe', {}, countRow);
    expect(row?.n).toBe(days);
  });

  it('binds parameters with quotes, backslashes, control characters, unicode and NULL intact', async () => {
    const values = [`it's "q"`, 'back\\slash\\', 'tab\tnew\nline\rcr', 'ünï 🚀 路由', '\\N', ''];
    for (const value of values) {
      const rows = await store.query(
        'SELECT {v:String} AS v, length({v:String}) AS bytes',
        { v: value },
        z.object({ v: z.string(), bytes: z.coerce.number() }),
      );
      expect(rows).toEqual([{ v: value, bytes: Buffer.byteLength(value) }]);
    }
    const [nullRow] = await store.query(
      'SELECT isNull({v:Nullable(String)}) AS missing',
      { v: null },
      z.object({ missing: z.union([z.boolean(), z.number()]).transform(Boolean) }),
    );
    expect(nullRow?.missing).toBe(true);
  });

  it('reports a failing statement as a StorageError carrying the ClickHouse code', async () => {
    const unknownTable = await store
      .query('SELECT * FROM no_such_table', {}, countRow)
      .catch((e: unknown) => e);
    expect(unknownTable).toBeInstanceOf(StorageError);
    expect((unknownTable as StorageError).code).toBe('QUERY_FAILED');
    expect(clickHouseErrorCode(unknownTable)).toBe(60);
    expect(isRowDataError(unknownTable)).toBe(false);
    expect(isStoreUnavailable(unknownTable)).toBe(false);

    const badTime = await store
      .insertJsonEachRow('spans', Buffer.from('{"timestamp":"the day before yesterday"}\n'))
      .catch((e: unknown) => e);
    expect(badTime).toBeInstanceOf(StorageError);
    expect((badTime as StorageError).code).toBe('INSERT_FAILED');
    expect(isRowDataError(badTime)).toBe(true);

    const unknownField = await store
      .insertJsonEachRow('spans', Buffer.from('{"no_such_column":1}\n'))
      .catch((e: unknown) => e);
    expect(clickHouseErrorCode(unknownField)).toBe(117); // INCORRECT_DATA on a strict server
    expect(isRowDataError(unknownField)).toBe(true);
    const [spans] = await store.query('SELECT count() AS n FROM spans', {}, countRow);
    expect(spans?.n).toBe(0);
  });

  it('answers ping, and refuses wrong credentials with the server code', async () => {
    await expect(store.ping()).resolves.toBeUndefined();
    const intruder = new ServerStore({
      url: server.url.replace('s3cret%20pass', 'guess'),
    });
    try {
      await expect(intruder.ping()).rejects.toThrow(StorageError);
      const refused = await intruder.query('SELECT 1 AS n', {}, countRow).catch((e: unknown) => e);
      expect(clickHouseErrorCode(refused)).toBe(516);
      expect(isStoreUnavailable(refused)).toBe(false);
    } finally {
      await intruder.close();
    }
  });

  it('fails with a StorageError that says "unavailable" when no server listens', async () => {
    const port = await freePort();
    const nowhere = new ServerStore({ url: `http://127.0.0.1:${port}/routewatch` });
    try {
      const failures = await Promise.all([
        nowhere.exec('SELECT 1').catch((e: unknown) => e),
        nowhere.query('SELECT 1 AS n', {}, countRow).catch((e: unknown) => e),
        nowhere.insertJsonEachRow('spans', Buffer.from('{}\n')).catch((e: unknown) => e),
        nowhere.ping().catch((e: unknown) => e),
      ]);
      for (const failure of failures) {
        expect(failure).toBeInstanceOf(StorageError);
        expect(isStoreUnavailable(failure)).toBe(true);
        expect(isRowDataError(failure)).toBe(false);
      }
    } finally {
      await nowhere.close();
    }
  });
});

describe('the ClickHouse HTTP test server', () => {
  // The expected failures below would each be logged by the client too.
  const quiet = { level: ClickHouseLogLevel.OFF };

  it('refuses what the old driver sent (a Buffer JSON-encoded by client.insert), as the probe saw', async () => {
    const client = createClient({ url: server.url, log: quiet });
    try {
      const refused = await client
        .insert({ table: 'spans', values: Readable.from([spanBytes]), format: 'JSONEachRow' })
        .catch((e: unknown) => e);
      expect(clickHouseErrorCode(refused)).toBe(117);
      expect(lastInsert()?.body.toString('utf8')).toMatch(/^\{"type":"Buffer","data":\[/);
    } finally {
      await client.close();
    }
  });

  it('takes gzip request bodies and answers gzip when asked', async () => {
    const client = createClient({
      url: server.url,
      compression: { request: true, response: true },
      log: quiet,
    });
    try {
      await client.command({ query: 'CREATE TABLE gzip_probe (s String) ENGINE = Memory' });
      await client.insert({ table: 'gzip_probe', values: [{ s: 'ünï' }], format: 'JSONEachRow' });
      const result = await client.query({
        query: 'SELECT s FROM gzip_probe',
        format: 'JSONEachRow',
      });
      expect(await result.json()).toEqual([{ s: 'ünï' }]);
      expect(lastInsert()?.contentEncoding).toBe('gzip');
      expect(server.requests.at(-1)?.settings['enable_http_compression']).toBe('1');
    } finally {
      await client.close();
    }
  });
  it('authenticates by X-ClickHouse-User/Key, refuses unknown settings and writes over GET, as a server does', async () => {
    const client = createClient({
      url: `${server.origin}/routewatch`,
      set_basic_auth_header: false,
      log: quiet,
      http_headers: { 'X-ClickHouse-User': 'routewatch', 'X-ClickHouse-Key': 's3cret pass' },
    });
    try {
      const result = await client.query({
        query: 'SELECT currentDatabase() AS db',
        format: 'JSONEachRow',
      });
      expect(await result.json()).toEqual([{ db: 'routewatch' }]);
      const unknown = await client
        .command({ query: 'SELECT 1', clickhouse_settings: { no_such_setting: 1 } as never })
        .catch((e: unknown) => e);
      expect(clickHouseErrorCode(unknown)).toBe(115); // UNKNOWN_SETTING
    } finally {
      await client.close();
    }
    const auth = {
      authorization: `Basic ${Buffer.from('routewatch:s3cret pass').toString('base64')}`,
    };
    const write = await fetch(
      `${server.origin}/?query=${encodeURIComponent('CREATE TABLE get_probe (x UInt8) ENGINE = Memory')}`,
      { headers: auth },
    );
    expect(write.status).not.toBe(200);
    expect(write.headers.get('x-clickhouse-exception-code')).toBe('164'); // READONLY
    const read = await fetch(`${server.origin}/?query=${encodeURIComponent('SELECT 41 + 1')}`, {
      headers: auth,
    });
    expect(await read.text()).toBe('42\n');
  });
});

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
