import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { migrate } from '../../storage/migrations.js';
import { ServerStore } from '../../storage/server-store.js';
import { testApp, type TestApp } from '../support/app.js';
import { startClickHouseHttp, type ClickHouseHttp } from '../support/clickhouse-http.js';

// Scores on late outcomes through the server driver: migration 0021 applied by @clickhouse/client
// over HTTP to a strict ClickHouse HTTP interface (an insert naming a column the table lacks is
// refused), then POST /v1/outcomes through the whole app. The embedded engine's side is
// eval-runs.test.ts.

let server: ClickHouseHttp;
let store: ServerStore;
let rw: TestApp;

beforeAll(async () => {
  server = await startClickHouseHttp({ databases: ['routewatch'], strict: true });
  store = new ServerStore({ url: server.url });
  await migrate(store);
  rw = await testApp(store);
});
afterAll(async () => {
  await rw?.close();
  await store?.close();
  await server?.close();
});

const send = (payload: unknown) =>
  rw.app.inject({
    method: 'POST',
    url: '/v1/outcomes',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(payload),
  });

const stored = () =>
  store.query(
    `SELECT task_id, scores FROM late_outcomes FINAL ORDER BY task_id`,
    {},
    z.object({ task_id: z.string(), scores: z.record(z.string(), z.number()) }),
  );

describe('late outcome scores on a ClickHouse server', () => {
  it('adds the scores column once (0021), as Map(LowCardinality(String), Float64)', async () => {
    const columns = await store.query(
      "SELECT type FROM system.columns WHERE database = currentDatabase() AND table = 'late_outcomes' AND name = 'scores'",
      {},
      z.object({ type: z.string() }),
    );
    expect(columns).toEqual([{ type: 'Map(LowCardinality(String), Float64)' }]);
    const applied = await store.query(
      'SELECT version FROM schema_migrations WHERE version = 21',
      {},
      z.object({ version: z.coerce.number() }),
    );
    expect(applied).toEqual([{ version: 21 }]);
    expect((await migrate(store)).applied).toEqual([]);
  });

  it('stores a report with scores, a retry of it once, and a report without scores as an empty map', async () => {
    const report = {
      taskId: 'task-scored',
      outcome: 'success',
      scores: { 'schema.valid': 1, groundedness: 0.625 },
    };
    expect((await send(report)).statusCode).toBe(202);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect((await send(report)).statusCode).toBe(202);
    expect((await send({ taskId: 'task-plain', outcome: 'failure' })).statusCode).toBe(202);
    expect(await stored()).toEqual([
      { task_id: 'task-plain', scores: {} },
      { task_id: 'task-scored', scores: { groundedness: 0.625, 'schema.valid': 1 } },
    ]);
  });

  it('refuses a bad score with a 400 naming it', async () => {
    const res = await send({ taskId: 'task-bad', outcome: 'success', scores: { 'no spaces': 1 } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toMatch(/scores\.no spaces: a score name is 1-64 characters/);
  });
});
