import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { openTempStore, unavailableStore } from '../support/store.js';
import { hexId, otlpBody } from '../support/otlp.js';
import { testApp, testWriter } from '../support/app.js';
import type { TestApp } from '../support/app.js';
import { BASE_NS, nsAfter, storedTime } from '../support/time.js';

let temp: Awaited<ReturnType<typeof openTempStore>>;
let rw: TestApp;

beforeAll(async () => {
  temp = await openTempStore();
  rw = await testApp(temp.store);
});
afterAll(async () => {
  await rw?.close();
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
  return rw.app.inject({
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
            start: nsAfter(0, 123456789n),
            end: nsAfter(0, 987654321n),
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
    expect(row.ts).toBe(storedTime(nsAfter(0, 123456789n)));
    expect(row.end_ns).toBe(nsAfter(0, 987654321n));
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
    const start = nsAfter(0, 1n);
    const end = nsAfter(250, 3n);
    const body = JSON.stringify(otlpBody([{ start, end, attributes: llmAttributes }]))
      .replace(`"startTimeUnixNano":"${start}"`, `"startTimeUnixNano":${start}`)
      .replace(`"endTimeUnixNano":"${end}"`, `"endTimeUnixNano":${end}`);
    expect(body).toContain(`:${start}`);
    expect((await post(body)).statusCode).toBe(200);
    const [row] = await temp.store.query(
      'SELECT toString(toUnixTimestamp64Nano(timestamp)) AS s, toString(toUnixTimestamp64Nano(end_time)) AS e FROM spans',
      {},
      z.object({ s: z.string(), e: z.string() }),
    );
    expect(row).toEqual({ s: start, e: end });
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

  it('stores spans with a missing (0) end, an end before the start, and the largest end', async () => {
    const sentAt = BigInt(Date.now()) * 1_000_000n;
    // Regression: bare digit strings were read by length (seconds, or refused), failing whole batches.
    const res = await post(
      JSON.stringify(
        otlpBody([
          { start: nsAfter(0), end: '0', attributes: llmAttributes },
          { start: nsAfter(0, 500n), end: nsAfter(0, 100n), attributes: llmAttributes },
          // fixed64's largest end: taken as the latest a start may be (now + the clock skew).
          { start: nsAfter(0, 900n), end: '18446744073709551615', attributes: llmAttributes },
        ]),
      ),
    );
    expect(res.statusCode).toBe(200);
    const rows = await temp.store.query(
      'SELECT toString(toUnixTimestamp64Nano(timestamp)) AS s, duration_ns FROM spans ORDER BY s',
      {},
      z.object({ s: z.string(), duration_ns: z.string() }),
    );
    expect(rows.slice(0, 2)).toEqual([
      { s: nsAfter(0), duration_ns: '0' },
      { s: nsAfter(0, 500n), duration_ns: '0' },
    ]);
    expect(rows[2]!.s).toBe(nsAfter(0, 900n));
    const end = BASE_NS + 900n + BigInt(rows[2]!.duration_ns);
    const skew = 3_600_000_000_000n; // ROUTEWATCH_MAX_CLOCK_SKEW's default, 1 h
    expect(end >= sentAt + skew && end <= BigInt(Date.now()) * 1_000_000n + skew).toBe(true);
  });

  it('reads the proto field names too (trace_id, int_value), as proto3 JSON parsers must', async () => {
    const camel = JSON.stringify(
      otlpBody([{ attributes: { ...llmAttributes, 'gen_ai.usage.input_tokens': 123 } }]),
    );
    const snake = camel.replace(
      /"([a-z]+[A-Z][A-Za-z]*)":/g,
      (_match, name: string) => `"${name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}":`,
    );
    expect(snake).toContain('"resource_spans":');
    expect(snake).toContain('"int_value":');
    const res = await post(snake);
    expect(res.statusCode).toBe(200);
    const rows = await temp.store.query(
      'SELECT trace_id, input_tokens FROM spans',
      {},
      z.object({ trace_id: z.string(), input_tokens: z.coerce.number() }),
    );
    const sent = (
      JSON.parse(camel) as {
        resourceSpans: { scopeSpans: { spans: { traceId: string }[] }[] }[];
      }
    ).resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
    expect(rows).toEqual([{ trace_id: sent.traceId, input_tokens: 123 }]);
  });

  it('takes a byte order mark before JSON, x-gzip, and an empty gzip body', async () => {
    const body = JSON.stringify(otlpBody([{ attributes: llmAttributes }]));
    expect((await post(`\uFEFF${body}`)).statusCode).toBe(200);
    const zipped = await post(gzipSync(JSON.stringify(otlpBody([{ attributes: llmAttributes }]))), {
      'content-encoding': 'x-gzip',
    });
    expect(zipped.statusCode).toBe(200);
    expect((await post(Buffer.alloc(0), { 'content-encoding': 'gzip' })).statusCode).toBe(200);
    expect(await storedSpans()).toBe(2);
  });

  it('refuses JSON declared in a charset other than UTF-8 with 415', async () => {
    const body = JSON.stringify(otlpBody([{ attributes: llmAttributes }]));
    const latin = await post(body, { 'content-type': 'application/json; charset=ISO-8859-1' });
    expect(latin.statusCode).toBe(415);
    expect(latin.json().message).toMatch(/charset iso-8859-1: send JSON as UTF-8/);
    const utf8 = await post(body, { 'content-type': 'application/json; charset="UTF-8"' });
    expect(utf8.statusCode).toBe(200);
  });

  it('rejects an exponent-form timestamp with 400, not 500', async () => {
    const body = JSON.stringify(
      otlpBody([{ start: nsAfter(0), attributes: llmAttributes }]),
    ).replace(`"startTimeUnixNano":"${nsAfter(0)}"`, '"startTimeUnixNano":1e21');
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

  it.each(['off', 'on'])(
    'counts an exporter’s retry of LLM calls once on /metrics (write-ahead log %s)',
    async (wal) => {
      const app =
        wal === 'off'
          ? rw
          : await testApp(temp.store, {
              config: {
                ROUTEWATCH_WAL: 'on',
                ROUTEWATCH_WAL_DIR: mkdtempSync(join(tmpdir(), 'routewatch-llm-calls-')),
              },
            });
      const calls = async () => {
        const text = (await app.app.inject({ method: 'GET', url: '/metrics' })).body;
        const counts: Record<string, number> = {};
        for (const [, source, n] of text.matchAll(
          /^routewatch_llm_calls_total\{cost_source="(\w+)"\} (\d+)$/gm,
        ))
          counts[source!] = Number(n);
        return counts;
      };
      try {
        const before = await calls();
        const priced = { traceId: hexId(16), spanId: hexId(8), attributes: llmAttributes };
        const unpriced = {
          traceId: hexId(16),
          spanId: hexId(8),
          attributes: {
            ...llmAttributes,
            'gen_ai.request.model': 'no-such-model',
            'gen_ai.response.model': 'no-such-model',
          },
        };
        const fresh = { traceId: hexId(16), spanId: hexId(8), attributes: llmAttributes };
        const send = (spans: (typeof priced)[]) =>
          app.app.inject({
            method: 'POST',
            url: '/v1/traces',
            headers: { 'content-type': 'application/json' },
            payload: JSON.stringify(otlpBody(spans)),
          });
        expect((await send([priced, unpriced])).statusCode).toBe(200);
        // The retry, then a request repeating one call beside a new one.
        expect((await send([priced, unpriced])).statusCode).toBe(200);
        expect((await send([unpriced, fresh])).statusCode).toBe(200);
        const after = await calls();
        expect(after.price_table! - before.price_table!).toBe(2);
        expect(after.unpriced! - before.unpriced!).toBe(1);
      } finally {
        if (app !== rw) await app.close();
      }
    },
  );

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
    ['a short trace id', { traceId: 'abc123' }, /spans\.1\.traceId: expected 32 hex characters/],
    ['a non-hex span id', { spanId: 'zzzzzzzzzzzzzzzz' }, /spans\.1\.spanId: expected 16 hex/],
    ['an all-zero trace id', { traceId: '0'.repeat(32) }, /traceId: an all-zero id is invalid/],
    ['an all-zero span id', { spanId: '0'.repeat(16) }, /spanId: an all-zero id is invalid/],
    ['a parent id of the wrong length', { parentSpanId: 'abcd' }, /parentSpanId: expected 16/],
  ])(
    'refuses a span with %s alone, as a partial success, and stores the others',
    async (_name, bad, message) => {
      const body = otlpBody([
        { attributes: llmAttributes },
        { ...bad, attributes: llmAttributes },
        { attributes: llmAttributes },
      ]);
      const res = await post(JSON.stringify(body));
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({
        partialSuccess: {
          rejectedSpans: '1',
          errorMessage: expect.stringMatching(message),
        },
      });
      expect(res.json().partialSuccess.errorMessage).toMatch(
        /^1 of 3 spans were not stored, the rest were: 1 with an invalid id/,
      );
      expect(await storedSpans()).toBe(2);
    },
  );

  it.each([
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
    const text = await rw.app.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { 'content-type': 'text/plain' },
      payload: 'x',
    });
    expect(text.statusCode).toBe(415);
    expect(text.json()).toMatchObject({
      code: 3,
      message: expect.stringMatching(/application\/x-protobuf/),
    });
    const get = await rw.app.inject({ method: 'GET', url: '/v1/traces' });
    expect(get.statusCode).toBe(405);
    expect(get.headers['allow']).toBe('POST');
    expect(get.json()).toMatchObject({ code: 12 });
  });

  it('answers 503 with Retry-After when the store fails, so the exporter retries', async () => {
    const down = unavailableStore('disk full');
    const broken = await testApp(down, { writer: testWriter(down) });
    const res = await broken.app.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify(otlpBody([{ attributes: llmAttributes }])),
    });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    // What to do, and where the details are; the store's own text stays in the log.
    expect(res.json().code).toBe(14);
    expect(res.json().message).toMatch(/retry/);
    expect(res.json().message).toMatch(/request id [0-9a-f]{16}/);
    expect(res.json().message).not.toMatch(/disk full/);
    await broken.close();
  });
});
