import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { buildCollectorApp } from '../collector/app.js';
import { SpanWriter } from '../collector/span-writer.js';
import { parseJsonPreservingInt64 } from '../collector/otlp-json.js';
import { hexId, openTempStore, otlpBody, unavailableStore } from './helpers.js';

let temp: Awaited<ReturnType<typeof openTempStore>>;
let writer: SpanWriter;
let app: ReturnType<typeof buildCollectorApp>['app'];

beforeAll(async () => {
  temp = await openTempStore();
  writer = new SpanWriter(temp.store, { maxDelayMs: 5 });
  app = buildCollectorApp({ writer, store: temp.store }).app;
});
afterAll(async () => {
  await app?.close();
  await temp?.dispose();
});
beforeEach(async () => {
  await temp.store.exec('TRUNCATE TABLE spans');
});

const countRow = z.object({ n: z.coerce.number() });
async function storedSpans(): Promise<number> {
  const [row] = await temp.store.query('SELECT count() AS n FROM spans', {}, countRow);
  return row?.n ?? -1;
}

function post(body: string | Buffer, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url: '/v1/traces',
    headers: { 'content-type': 'application/json', ...headers },
    payload: body,
  });
}

const llmAttributes = {
  'routewatch.task.id': 'task-1',
  'routewatch.cohort': 'faq',
  'routewatch.route': 'small',
  'routewatch.attempt': 1,
  'gen_ai.operation.name': 'chat',
  'gen_ai.provider.name': 'openai',
  'gen_ai.request.model': 'gpt-4o-mini',
  'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
  'gen_ai.usage.input_tokens': 1000,
  'gen_ai.usage.output_tokens': 200,
};

describe('POST /v1/traces', () => {
  it('stores a routewatch span with typed columns and nanosecond timestamps', async () => {
    const traceId = hexId(16);
    const res = await post(
      JSON.stringify(
        otlpBody([
          {
            traceId,
            start: '1764331200123456789',
            end: '1764331200987654321',
            attributes: llmAttributes,
          },
        ]),
      ),
    );
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({});
    const rows = await temp.store.query(
      `SELECT toString(timestamp) AS ts, toString(toUnixTimestamp64Nano(end_time)) AS end_ns, duration_ns, trace_id,
              kind, cohort, route, attempt, request_model, response_model, input_tokens, output_tokens, cost_usd, cost_source, service_name
       FROM spans`,
      {},
      z.object({
        ts: z.string(),
        end_ns: z.string(),
        duration_ns: z.string(),
        trace_id: z.string(),
        kind: z.string(),
        cohort: z.string(),
        route: z.string(),
        attempt: z.number(),
        request_model: z.string(),
        response_model: z.string(),
        input_tokens: z.coerce.number(),
        output_tokens: z.coerce.number(),
        cost_usd: z.number(),
        cost_source: z.string(),
        service_name: z.string(),
      }),
    );
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(row.ts).toBe('2025-11-28 12:00:00.123456789');
    expect(row.end_ns).toBe('1764331200987654321');
    expect(row.duration_ns).toBe('864197532');
    expect(row).toMatchObject({
      trace_id: traceId,
      kind: 'llm',
      cohort: 'faq',
      route: 'small',
      attempt: 1,
      request_model: 'gpt-4o-mini',
      response_model: 'gpt-4o-mini-2024-07-18',
      input_tokens: 1000,
      output_tokens: 200,
      cost_source: 'price_table',
      service_name: 'test-service',
    });
    // gpt-4o-mini: $0.15 / 1M input, $0.60 / 1M output.
    expect(row.cost_usd).toBeCloseTo((1000 * 0.15 + 200 * 0.6) / 1e6, 15);
  });

  it('keeps nanosecond precision when timestamps arrive as JSON numbers above 2^53', async () => {
    const body = JSON.stringify(otlpBody([{ attributes: llmAttributes }]))
      .replace(
        '"startTimeUnixNano":"1764331200000000001"',
        '"startTimeUnixNano":1764331200000000001',
      )
      .replace('"endTimeUnixNano":"1764331200250000003"', '"endTimeUnixNano":1764331200250000003');
    expect(body).toContain(':1764331200000000001');
    expect((await post(body)).statusCode).toBe(200);
    const [row] = await temp.store.query(
      'SELECT toString(toUnixTimestamp64Nano(timestamp)) AS s, toString(toUnixTimestamp64Nano(end_time)) AS e FROM spans',
      {},
      z.object({ s: z.string(), e: z.string() }),
    );
    expect(row).toEqual({ s: '1764331200000000001', e: '1764331200250000003' });
  });

  it('prefers a cost the span reports over the price table', async () => {
    await post(
      JSON.stringify(otlpBody([{ attributes: { ...llmAttributes, 'gen_ai.usage.cost': 0.125 } }])),
    );
    const [row] = await temp.store.query(
      'SELECT cost_usd, cost_source FROM spans',
      {},
      z.object({ cost_usd: z.number(), cost_source: z.string() }),
    );
    expect(row).toEqual({ cost_usd: 0.125, cost_source: 'span' });
  });

  it('counts and skips spans without routewatch or GenAI attributes', async () => {
    const res = await post(
      JSON.stringify(
        otlpBody([
          { name: 'GET /health', attributes: { 'http.method': 'GET' } },
          { attributes: llmAttributes },
        ]),
      ),
    );
    expect(res.statusCode).toBe(200);
    expect(await storedSpans()).toBe(1);
  });

  it('stores spans with a missing (0) end, an end before the start, and short timestamps', async () => {
    // Regression: bare digit strings were read by length (seconds, or refused), failing whole batches.
    const res = await post(
      JSON.stringify(
        otlpBody([
          { start: '1764331200000000000', end: '0', attributes: llmAttributes },
          { start: '1764331200000000500', end: '1764331200000000100', attributes: llmAttributes },
          { start: '1', end: '2', attributes: llmAttributes },
          // fixed64's largest end: stored at DateTime64's last instant, the duration agreeing.
          { start: '1764331200000000900', end: '18446744073709551615', attributes: llmAttributes },
        ]),
      ),
    );
    expect(res.statusCode).toBe(200);
    const rows = await temp.store.query(
      'SELECT toString(toUnixTimestamp64Nano(timestamp)) AS s, duration_ns FROM spans ORDER BY s',
      {},
      z.object({ s: z.string(), duration_ns: z.string() }),
    );
    expect(rows).toEqual([
      { s: '1', duration_ns: '1' },
      { s: '1764331200000000000', duration_ns: '0' },
      { s: '1764331200000000500', duration_ns: '0' },
      { s: '1764331200000000900', duration_ns: String(2n ** 63n - 1n - 1764331200000000900n) },
    ]);
  });

  it('rejects an exponent-form timestamp with 400, not 500', async () => {
    const body = JSON.stringify(otlpBody([{ attributes: llmAttributes }])).replace(
      '"startTimeUnixNano":"1764331200000000001"',
      '"startTimeUnixNano":1e21',
    );
    const res = await post(body);
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/startTimeUnixNano/);
  });

  it('stores a span sent twice once', async () => {
    const body = JSON.stringify(
      otlpBody([{ traceId: hexId(16), spanId: hexId(8), attributes: llmAttributes }]),
    );
    expect((await post(body)).statusCode).toBe(200);
    expect((await post(body)).statusCode).toBe(200);
    expect(await storedSpans()).toBe(1);
  });

  it('accepts gzip bodies', async () => {
    const res = await post(gzipSync(JSON.stringify(otlpBody([{ attributes: llmAttributes }]))), {
      'content-encoding': 'gzip',
    });
    expect(res.statusCode).toBe(200);
    expect(await storedSpans()).toBe(1);
  });

  it('answers an empty request with 200 and writes nothing', async () => {
    expect((await post('')).statusCode).toBe(200);
    expect((await post('{}')).statusCode).toBe(200);
    expect((await post('{"resourceSpans":[]}')).statusCode).toBe(200);
    expect(await storedSpans()).toBe(0);
  });

  it.each([
    ['malformed JSON', '{"resourceSpans": [', /not valid JSON/],
    ['a top-level array', '[1,2]', /not an OTLP ExportTraceServiceRequest/],
    [
      'a string where spans belong',
      JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: 'x' }] }] }),
      /spans/,
    ],
  ])('rejects %s with 400 and an OTLP Status body', async (_name, body, message) => {
    const res = await post(body);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 3, message: expect.stringMatching(message) });
    expect(await storedSpans()).toBe(0);
  });

  it.each([
    ['a short trace id', { traceId: 'abc123' }, /traceId/],
    ['a non-hex span id', { spanId: 'zzzzzzzzzzzzzzzz' }, /spanId/],
    ['an all-zero trace id', { traceId: '0'.repeat(32) }, /all-zero/],
    ['a timestamp that is not a number', { start: 'yesterday' }, /startTimeUnixNano/],
    ['a negative timestamp', { end: '-5' }, /endTimeUnixNano/],
  ])('rejects a request with %s and writes none of its spans', async (_name, bad, message) => {
    const body = otlpBody([{ attributes: llmAttributes }, { ...bad, attributes: llmAttributes }]);
    const res = await post(JSON.stringify(body));
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 3, message: expect.stringMatching(message) });
    expect(await storedSpans()).toBe(0);
  });

  it('rejects wrongly typed attribute values and enums', async () => {
    const body = otlpBody([{ attributes: llmAttributes }]) as {
      resourceSpans: { scopeSpans: { spans: Record<string, unknown>[] }[] }[];
    };
    const span = body.resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
    span['kind'] = 'SPAN_KIND_CLIENT';
    const res = await post(JSON.stringify(body));
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/kind/);
    span['kind'] = 3;
    span['attributes'] = [{ key: 'gen_ai.usage.input_tokens', value: { intValue: '12.5' } }];
    expect((await post(JSON.stringify(body))).statusCode).toBe(400);
    expect(await storedSpans()).toBe(0);
  });

  it('answers unsupported media types with 415 and other methods with 405', async () => {
    const text = await app.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { 'content-type': 'text/plain' },
      payload: 'x',
    });
    expect(text.statusCode).toBe(415);
    expect(text.json().message).toMatch(/application\/json or application\/x-protobuf/);
    const get = await app.inject({ method: 'GET', url: '/v1/traces' });
    expect(get.statusCode).toBe(405);
  });

  it('answers 503 with Retry-After when the store fails, so the exporter retries', async () => {
    const failing = new SpanWriter(unavailableStore('disk full'), { maxDelayMs: 1 });
    const broken = buildCollectorApp({ writer: failing }).app;
    const res = await broken.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify(otlpBody([{ attributes: llmAttributes }])),
    });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    await broken.close();
  });
});

describe('parseJsonPreservingInt64', () => {
  it('quotes long integers outside strings and leaves strings and decimals alone', () => {
    const parsed = parseJsonPreservingInt64(
      '{"a":12345678901234567890,"b":"x 12345678901234567890 \\" 98765432109876543210","c":1.12345678901234567,"d":[-9223372036854775808],"e":42}',
    );
    expect(parsed).toEqual({
      a: '12345678901234567890',
      b: 'x 12345678901234567890 " 98765432109876543210',
      c: Number('1.12345678901234567'),
      d: ['-9223372036854775808'],
      e: 42,
    });
  });
});

describe('POST /v1/outcomes', () => {
  const send = (payload: unknown) =>
    app.inject({
      method: 'POST',
      url: '/v1/outcomes',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify(payload),
    });
  const outcomeRow = z.object({
    task_id: z.string(),
    outcome: z.string(),
    outcome_reason: z.string(),
    reask: z.number(),
    cleanup_cost_usd: z.number(),
    observed: z.string(),
  });
  const stored = () =>
    temp.store.query(
      `SELECT task_id, outcome, outcome_reason, reask, cleanup_cost_usd, toString(observed_at) AS observed
       FROM late_outcomes FINAL ORDER BY task_id, observed_at`,
      {},
      outcomeRow,
    );

  it('stores one report or a batch, and a report sent twice once', async () => {
    const one = {
      taskId: 'task-late-1',
      outcome: 'failure',
      reason: 'human_corrected',
      reask: true,
      cleanupCostUsd: 0.4,
      observedAt: '2026-11-28T10:00:00.000Z',
    };
    expect((await send(one)).statusCode).toBe(202);
    expect((await send(one)).statusCode).toBe(202);
    const batch = await send({
      outcomes: [{ taskId: 'task-late-2', outcome: 'success', observedAt: '2026-11-28T11:00:00Z' }],
    });
    expect(batch.statusCode).toBe(202);
    expect(batch.json()).toEqual({ accepted: 1 });
    expect(await stored()).toEqual([
      {
        task_id: 'task-late-1',
        outcome: 'failure',
        outcome_reason: 'human_corrected',
        reask: 1,
        cleanup_cost_usd: 0.4,
        observed: '2026-11-28 10:00:00.000000000',
      },
      {
        task_id: 'task-late-2',
        outcome: 'success',
        outcome_reason: '',
        reask: 0,
        cleanup_cost_usd: 0,
        observed: '2026-11-28 11:00:00.000000000',
      },
    ]);
  });

  it.each([
    ['an unknown outcome', { taskId: 't', outcome: 'great' }, /outcome/],
    ['a missing task id', { outcome: 'success' }, /taskId/],
    [
      'a negative cleanup cost',
      { taskId: 't', outcome: 'success', cleanupCostUsd: -1 },
      /cleanupCostUsd/,
    ],
    ['an unknown field', { taskId: 't', outcome: 'success', color: 'red' }, /color|unrecognized/i],
  ])('rejects %s with 400 naming the field', async (_name, payload, message) => {
    await temp.store.exec('TRUNCATE TABLE late_outcomes');
    const res = await app.inject({
      method: 'POST',
      url: '/v1/outcomes',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify(payload),
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(message);
    expect(await stored()).toEqual([]);
  });

  it('joins a report naming the trace id in upper case to the task', async () => {
    await temp.store.exec('TRUNCATE TABLE late_outcomes');
    const traceId = hexId(16);
    const spans = otlpBody([
      { traceId, name: 'routewatch.task faq', attributes: { 'routewatch.cohort': 'faq' } },
    ]);
    expect((await post(JSON.stringify(spans))).statusCode).toBe(200);
    await writer.flush();
    const res = await app.inject({
      method: 'POST',
      url: '/v1/outcomes',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ taskId: traceId.toUpperCase(), outcome: 'escalated' }),
    });
    expect(res.statusCode).toBe(202);
    const [task] = await temp.store.query(
      'SELECT outcome FROM v_tasks WHERE task_id = {id:String}',
      { id: traceId },
      z.object({ outcome: z.string() }),
    );
    expect(task?.outcome).toBe('escalated');
  });

  it('counts a retried report once, and two different reports in one instant both', async () => {
    await temp.store.exec('TRUNCATE TABLE late_outcomes');
    // No observedAt: each arrival gets its own receive time, the report stays the same one.
    const cleanup = { taskId: 'task-retry', outcome: 'failure', cleanupCostUsd: 0.25 };
    expect((await send(cleanup)).statusCode).toBe(202);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect((await send(cleanup)).statusCode).toBe(202);
    // Two cleanups of one task in one batch (same receive time), told apart by content or id.
    const batch = {
      outcomes: [
        { taskId: 'task-two', outcome: 'failure', cleanupCostUsd: 0.1 },
        { taskId: 'task-two', outcome: 'failure', cleanupCostUsd: 0.2 },
        { taskId: 'task-two', outcome: 'failure', cleanupCostUsd: 0.2, reportId: 'ticket-9' },
        { taskId: 'task-two', outcome: 'failure', cleanupCostUsd: 0.2, reportId: 'ticket-9' },
      ],
    };
    expect((await send(batch)).statusCode).toBe(202);
    const sums = await temp.store.query(
      'SELECT task_id, count() AS reports, sum(cleanup_cost_usd) AS cost FROM late_outcomes FINAL GROUP BY task_id ORDER BY task_id',
      {},
      z.object({ task_id: z.string(), reports: z.coerce.number(), cost: z.number() }),
    );
    expect(sums).toEqual([
      { task_id: 'task-retry', reports: 1, cost: 0.25 },
      { task_id: 'task-two', reports: 3, cost: expect.closeTo(0.5, 12) },
    ]);
  });

  it('rejects malformed JSON with 400', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/outcomes',
      headers: { 'content-type': 'application/json' },
      payload: '{"taskId":',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/not valid JSON/);
  });
});
