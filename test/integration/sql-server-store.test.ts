import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { migrate } from '../../storage/migrations.js';
import { ServerStore } from '../../storage/server-store.js';
import { clickHouseErrorCode } from '../../storage/errors.js';
import { testApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';
import { startClickHouseHttp } from '../support/clickhouse-http.js';
import type { ClickHouseHttp } from '../support/clickhouse-http.js';

// POST /api/v1/sql on the server driver: the limits and readonly travel as settings of the
// request (@clickhouse/client over real HTTP into test/support/clickhouse-http.ts, on the real
// engine), and the route answers as it does on the embedded store.
const LIMITS = {
  maxRows: 5,
  maxExecutionMs: 10_000,
  maxMemoryBytes: 256 * 1024 * 1024,
  maxResultBytes: 1024 * 1024,
};
let server: ClickHouseHttp;
let store: ServerStore;
let rw: TestApp;

beforeAll(async () => {
  server = await startClickHouseHttp({ databases: ['routewatch'] });
  store = new ServerStore({ url: server.url });
  await migrate(store);
  rw = await testApp(store, { config: { ROUTEWATCH_SQL_MAX_ROWS: '5' } });
});
afterAll(async () => {
  await rw?.close();
  await store?.close();
  await server?.close();
});

const post = (body: unknown) =>
  rw.app.inject({
    method: 'POST',
    url: '/api/v1/sql',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(body),
  });

describe('Store.queryReadOnly on a ClickHouse server', () => {
  it('sends readonly = 1 and the limits as settings of the request, and reads columns and rows', async () => {
    const ok = await store.queryReadOnly(
      'SELECT number, toString(number) AS text FROM numbers(3)',
      LIMITS,
    );
    expect(ok.columns).toEqual([
      { name: 'number', type: 'UInt64' },
      { name: 'text', type: 'String' },
    ]);
    expect(ok.rows).toEqual([
      ['0', '0'],
      ['1', '1'],
      ['2', '2'],
    ]);
    const sent = server.requests.at(-1)!;
    expect(sent.settings).toMatchObject({
      readonly: '1',
      max_result_rows: '5',
      result_overflow_mode: 'throw',
      max_execution_time: '10',
      max_memory_usage: String(256 * 1024 * 1024),
    });
    expect(sent.database).toBe('routewatch');
  });

  it('gives up an answer past the size limit as it arrives, one value in one block too', async () => {
    // 2 MiB in one row: the engine's max_result_bytes counts from the second block on.
    const refused = await store
      .queryReadOnly("SELECT repeat('a', 1000000) || repeat('b', 1000000) AS x", LIMITS)
      .catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 'RESULT_TOO_LARGE' });
    expect(server.requests.at(-1)!.settings).toMatchObject({
      max_result_bytes: String(1024 * 1024),
    });
    // The statement went in the body, its own FORMAT after the user's text.
    expect(server.requests.at(-1)!.query).toMatch(/\nFORMAT JSONCompact$/);
    const fits = await store.queryReadOnly("SELECT repeat('a', 1000) AS x", LIMITS);
    expect(fits.rows).toEqual([['a'.repeat(1000)]]);
    const own = await store
      .queryReadOnly('SELECT 1 FORMAT CSV', LIMITS)
      .catch((error: unknown) => error);
    expect(own).toMatchObject({ code: 'OWN_FORMAT' });
  });

  it('refuses a write, has the engine refuse a setting change, and serves the next request as before', async () => {
    // A write is not sent (storage/read-only-sql.ts); what passes that check, readonly refuses.
    const write = await store
      .queryReadOnly("INSERT INTO spans (span_id) VALUES ('x')", LIMITS)
      .catch((error: unknown) => error);
    expect(write).toMatchObject({ code: 'SQL_REFUSED' });
    const refused = await store
      .queryReadOnly('SELECT count() FROM spans SETTINGS readonly = 0', LIMITS)
      .catch((error: unknown) => error);
    expect(clickHouseErrorCode(refused)).toBe(164);
    const count = await store.query(
      'SELECT count() AS n FROM spans',
      {},
      z.object({ n: z.coerce.number() }),
    );
    expect(count).toEqual([{ n: 0 }]);
    // The readonly request had a connection of its own: the server's session still writes.
    await store.exec('CREATE TABLE scratch (x UInt8) ENGINE = Memory');
    await store.exec('DROP TABLE scratch');
  });
});

describe('POST /api/v1/sql on the server driver', () => {
  it('answers rows, and errors naming the row limit and readonly', async () => {
    const tables = await post({
      sql: "SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE 'v\\\\_%' ORDER BY name LIMIT 3",
    });
    expect(tables.statusCode).toBe(200);
    expect(tables.json()).toMatchObject({
      columns: [{ name: 'name', type: 'String' }],
      rowCount: 3,
    });
    const tooMany = await post({ sql: 'SELECT number FROM numbers(6)' });
    expect(tooMany.statusCode).toBe(400);
    expect(tooMany.json().error.message).toMatch(
      /more than 5 rows, the limit ROUTEWATCH_SQL_MAX_ROWS/,
    );
    const write = await post({ sql: 'DROP TABLE spans' });
    expect(write.statusCode).toBe(403);
    expect(write.json().error.code).toBe('PERMISSION_DENIED');
  });

  it.each([
    [{}, /invalid body: sql/],
    [{ sql: '   ' }, /invalid body: sql is empty/],
    [{ sql: 'SELECT 1', format: 'csv' }, /invalid body/],
  ])('answers 400 to the body %j, saying what to send', async (body, message) => {
    const answer = await post(body);
    expect(answer.statusCode).toBe(400);
    expect(answer.json().error.message).toMatch(message);
    expect(answer.json().error.message).toMatch(/Send \{"sql": "SELECT …"\}/);
  });
});
