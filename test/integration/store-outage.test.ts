import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { migrate } from '../../storage/migrations.js';
import { ServerStore } from '../../storage/server-store.js';
import { testApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';
import { REPO_ROOT } from '../support/child-process.js';
import { startClickHouseHttp } from '../support/clickhouse-http.js';
import type { ClickHouseHttp } from '../support/clickhouse-http.js';
import { hexId, otlpBody } from '../support/otlp.js';
import type { TestSpan } from '../support/otlp.js';
import { startClickHouseProxy } from '../support/outage.js';
import type { ClickHouseProxy } from '../support/outage.js';

// Issue 13, item 5: a ClickHouse server that is down — a closed port, then a server answering
// 500, losing answers, hanging — while the collector accepts spans into its write-ahead log and
// is killed with SIGKILL. After the store returns and the collector restarts, every
// acknowledged span is stored exactly once. And past the log's disk budget: 503 with
// Retry-After, /readyz says why, nothing acknowledged is lost.
//
// The server is test/support/clickhouse-http.ts (the real engine behind ClickHouse's HTTP
// interface), reached through a proxy that fails on command. Merges are stopped on `spans`, so a
// row inserted twice would show in a raw count: the counts below are by span id, without FINAL.

const CLI = join(REPO_ROOT, 'dist/cli/main.js');
let server: ClickHouseHttp;
let proxy: ClickHouseProxy;
/** The server reached directly, for the test's own queries. */
let direct: ServerStore;
const dirs: string[] = [];
/** Every `routewatch start` of this file: a failed test must not leave one running. */
const children: ChildProcess[] = [];

beforeAll(async () => {
  server = await startClickHouseHttp({
    user: 'routewatch',
    password: 'routewatch',
    databases: ['routewatch'],
    strict: true,
  });
  direct = new ServerStore({ url: server.url });
  await migrate(direct);
  await direct.exec('SYSTEM STOP MERGES spans');
  proxy = await startClickHouseProxy(server.url);
});
afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  await proxy?.close();
  await direct?.close();
  await server?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await direct.exec('TRUNCATE TABLE spans');
  await proxy.setMode('closed');
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'routewatch-outage-'));
  dirs.push(dir);
  return dir;
}

/** `tasks` tasks of one task span and one LLM call each; their span ids. */
function taskBatch(prefix: string, tasks: number): { body: string; spanIds: string[] } {
  const spans: TestSpan[] = [];
  for (let t = 0; t < tasks; t++) {
    const traceId = hexId(16);
    const common = { 'routewatch.task.id': `${prefix}-${t}`, 'routewatch.cohort': 'faq' };
    spans.push(
      {
        traceId,
        spanId: hexId(8),
        name: 'routewatch.task faq',
        kind: 1,
        attributes: { ...common, 'routewatch.outcome': 'success' },
      },
      {
        traceId,
        spanId: hexId(8),
        attributes: {
          ...common,
          'routewatch.route': 'small',
          'routewatch.attempt': 1,
          'gen_ai.request.model': 'gpt-4o-mini',
          'gen_ai.usage.input_tokens': 100,
          'gen_ai.usage.output_tokens': 10,
        },
      },
    );
  }
  return { body: JSON.stringify(otlpBody(spans)), spanIds: spans.map((s) => s.spanId!) };
}

const copies = z.object({ span_id: z.string(), n: z.coerce.number() });
/** Raw rows per span id, as stored (no FINAL). */
async function storedCopies(): Promise<Map<string, number>> {
  const rows = await direct.query(
    'SELECT span_id, count() AS n FROM spans GROUP BY span_id',
    {},
    copies,
  );
  return new Map(rows.map((r) => [r.span_id, r.n]));
}

const taskTotals = z.object({
  tasks: z.coerce.number(),
  successes: z.coerce.number(),
  model_calls: z.coerce.number(),
  input_tokens: z.coerce.number(),
});
async function viewTotals(prefix: string) {
  const [row] = await direct.query(
    `SELECT count() AS tasks, countIf(outcome = 'success') AS successes,
            sum(model_calls) AS model_calls, sum(input_tokens) AS input_tokens
     FROM v_tasks WHERE startsWith(task_id, {prefix:String})`,
    { prefix },
    taskTotals,
  );
  return row!;
}

async function until(check: () => Promise<boolean> | boolean, what: string, ms = 60_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `routewatch start`, the built CLI in a child process, as a user runs it. */
async function startCli(env: Record<string, string>) {
  const child = spawn(process.execPath, [CLI, 'start'], {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  let gone = false;
  void exited.then(() => (gone = true));
  await until(() => {
    if (gone) throw new Error(`routewatch start exited: ${stderr}${stdout}`);
    return /listening on http:\/\/127\.0\.0\.1:\d+/.test(stdout);
  }, 'the start banner');
  const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)![1]!;
  return { child, url, exited, out: () => stdout, err: () => stderr };
}

async function post(url: string, body: string): Promise<Response> {
  return fetch(`${url}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!match) throw new Error(`no metric ${name}`);
  return Number(match[1]);
}

describe('a ClickHouse server outage, with the collector killed during it', () => {
  it('stores every acknowledged span exactly once after the store returns and the collector restarts', async () => {
    const dataDir = tempDir();
    const env = {
      ROUTEWATCH_PORT: '0',
      ROUTEWATCH_DATA_DIR: dataDir,
      CLICKHOUSE_URL: proxy.url,
      ROUTEWATCH_LOG_LEVEL: 'warn',
      ROUTEWATCH_BATCH_DELAY: '20ms',
      ROUTEWATCH_EVALUATE_EVERY: '0s',
    };
    const acknowledged: string[] = [];
    const send = async (url: string, prefix: string) => {
      const batch = taskBatch(prefix, 10);
      const res = await post(url, batch.body);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({});
      acknowledged.push(...batch.spanIds);
    };

    // A closed port: the collector starts anyway, accepts into its log, and is ready.
    const first = await startCli(env);
    expect(first.out()).toContain(`Write-ahead log: ${join(dataDir, 'wal')}`);
    expect(existsSync(join(dataDir, 'wal'))).toBe(true);
    const ready = await fetch(`${first.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({
      status: 'ready',
      store: expect.stringMatching(/unavailable/),
    });
    await send(first.url, 'outage-closed');

    // The server answers 500.
    await proxy.setMode('error');
    await send(first.url, 'outage-500');
    expect(await metric(first.url, 'routewatch_wal_spans')).toBe(40);
    expect(await metric(first.url, 'routewatch_spans_written_total')).toBe(0);

    // The server executes the inserts, and their answers are lost: the collector retries.
    await proxy.setMode('lose-answer');
    await until(
      () => proxy.forwarded.filter((q) => q.startsWith('INSERT INTO spans')).length >= 2,
      'an insert executed twice',
    );
    expect(await metric(first.url, 'routewatch_spans_written_total')).toBe(0);

    // The server hangs; more spans; the collector is killed.
    await proxy.setMode('hang');
    await send(first.url, 'outage-hang');
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');

    // Restarted while the server still hangs: it starts, takes spans, and is ready.
    const second = await startCli(env);
    await send(second.url, 'outage-restart');
    expect((await fetch(`${second.url}/readyz`)).status).toBe(200);

    // The server is back.
    await proxy.setMode('pass');
    await until(
      async () => (await metric(second.url, 'routewatch_wal_spans')) === 0,
      'the log drained',
    );
    expect(await metric(second.url, 'routewatch_wal_replayed_records_total')).toBeGreaterThan(0);

    const stored = await storedCopies();
    expect(acknowledged).toHaveLength(80);
    expect([...stored.keys()].sort()).toEqual([...acknowledged].sort());
    expect([...stored.entries()].filter(([, n]) => n !== 1)).toEqual([]);
    expect(await viewTotals('outage-')).toEqual({
      tasks: 40,
      successes: 40,
      model_calls: 40,
      input_tokens: 4_000,
    });

    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  });
});

describe('the write-ahead log at its disk budget', () => {
  let rw: TestApp;
  let store: ServerStore;
  afterAll(async () => {
    await rw?.close();
    await store?.close();
  });

  it('answers 503 with Retry-After past it, /readyz says why, and nothing acknowledged is lost', async () => {
    store = new ServerStore({ url: proxy.url });
    rw = await testApp(store, {
      config: {
        ROUTEWATCH_WAL: 'on',
        ROUTEWATCH_WAL_DIR: join(tempDir(), 'wal'),
        ROUTEWATCH_WAL_MAX_BYTES: String(64 * 1024),
      },
    });
    let sent = 0;
    const inject = (body: string) => {
      sent++;
      return rw.app.inject({
        method: 'POST',
        url: '/v1/traces',
        headers: { 'content-type': 'application/json' },
        payload: body,
      });
    };

    const acknowledged: string[] = [];
    let refused: Awaited<ReturnType<typeof inject>> | undefined;
    for (let i = 0; i < 200 && !refused; i++) {
      const batch = taskBatch(`budget-${i}`, 5);
      const res = await inject(batch.body);
      if (res.statusCode === 200) acknowledged.push(...batch.spanIds);
      else refused = res;
    }
    expect(acknowledged.length).toBeGreaterThan(0);
    expect(refused?.statusCode).toBe(503);
    expect(Number(refused?.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(refused?.json()).toMatchObject({
      message: expect.stringMatching(/write-ahead log is full/),
    });

    // Refused from now on before the body is read, and /readyz says why.
    const next = await inject(taskBatch('budget-next', 5).body);
    expect(next.statusCode).toBe(503);
    expect(next.headers['retry-after']).toBeDefined();
    const ready = await rw.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.headers['retry-after']).toBeDefined();
    expect(ready.json()).toEqual({ status: 'unavailable', reason: 'write-ahead log full' });
    const metrics = (await rw.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(Number(/^routewatch_wal_full_refusals_total (\d+)$/m.exec(metrics)![1])).toBe(2);
    // The refused requests were received as well: every request sent counts.
    expect(Number(/^routewatch_otlp_requests_total (\d+)$/m.exec(metrics)![1])).toBe(sent);
    expect(Number(/^routewatch_wal_bytes (\d+)$/m.exec(metrics)![1])).toBeLessThanOrEqual(
      64 * 1024,
    );

    await proxy.setMode('pass');
    await rw.writer.flush();
    const stored = await storedCopies();
    expect([...stored.keys()].sort()).toEqual([...acknowledged].sort());
    expect([...stored.values()].every((n) => n === 1)).toBe(true);
    expect((await rw.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    expect((await inject(taskBatch('budget-after', 5).body)).statusCode).toBe(200);
  });
});
