import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { openTempStore } from '../support/store.js';
import { decodeStatus, hexId, otlpBody } from '../support/otlp.js';
import { testApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';
import { BASE_MS, nsAfter } from '../support/time.js';
import { encodeRequestProto } from '../support/otlp-proto-encode.js';

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

function post(payload: string | Buffer, contentType = 'application/json') {
  return rw.app.inject({
    method: 'POST',
    url: '/v1/traces',
    headers: { 'content-type': contentType },
    payload,
  });
}

interface JsonBody {
  resourceSpans: { scopeSpans: { spans: { attributes: unknown[] }[] }[] }[];
}

/** One LLM span whose attributes after the first are the given raw OTLP AnyValue objects. */
function bodyWithAttributes(spanId: string, values: Record<string, unknown>): JsonBody {
  const body = otlpBody([
    { spanId, attributes: { 'gen_ai.request.model': 'gpt-4o-mini' } },
  ]) as unknown as JsonBody;
  const span = body.resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
  for (const [key, value] of Object.entries(values)) span.attributes.push({ key, value });
  return body;
}

const storedRow = z.object({
  start_ns: z.string(),
  confidence: z.number().nullable(),
  cost_usd: z.number(),
  cost_source: z.string(),
  cleanup_cost_usd: z.number(),
  attributes: z.record(z.string(), z.string()),
});
async function storedSpan(spanId: string) {
  const rows = await temp.store.query(
    `SELECT toString(toUnixTimestamp64Nano(timestamp)) AS start_ns, confidence, cost_usd,
            cost_source, cleanup_cost_usd, attributes
       FROM spans WHERE span_id = {spanId: String}`,
    { spanId },
    storedRow,
  );
  expect(rows).toHaveLength(1);
  return rows[0]!;
}

const countRow = z.object({ n: z.coerce.number() });
const storedCount = async () =>
  (await temp.store.query('SELECT count() AS n FROM spans', {}, countRow))[0]!.n;

describe('attribute values', () => {
  it('stores a span whose doubles are numeric and non-finite strings', async () => {
    const spanId = hexId(8);
    const res = await post(
      JSON.stringify(
        bodyWithAttributes(spanId, {
          'app.ratio': { doubleValue: '1.5' },
          'app.nan': { doubleValue: 'NaN' },
          'app.inf': { doubleValue: '-Infinity' },
          'routewatch.confidence': { doubleValue: 'Infinity' },
          'gen_ai.usage.cost': { doubleValue: '2.5e-3' },
        }),
      ),
    );
    expect(res.statusCode).toBe(200);
    const row = await storedSpan(spanId);
    expect(row.attributes).toMatchObject({ 'app.ratio': '1.5', 'app.nan': 'NaN' });
    expect(row.attributes['app.inf']).toBe('-Infinity');
    expect(row.confidence).toBeNull();
    expect(row).toMatchObject({ cost_usd: 0.0025, cost_source: 'span' });
  });

  it('answers a non-numeric double with 400 naming the field', async () => {
    const res = await post(
      JSON.stringify(bodyWithAttributes(hexId(8), { 'app.value': { doubleValue: 'lots' } })),
    );
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/attributes\.1\.value\.doubleValue: .*"lots"/);
  });

  it('stores an attribute keyed __proto__', async () => {
    const spanId = hexId(8);
    // JSON.parse makes `__proto__` an own key, as it is in a decoded body.
    const values = JSON.parse('{"__proto__": {"stringValue": "kept"}}') as Record<string, unknown>;
    const res = await post(JSON.stringify(bodyWithAttributes(spanId, values)));
    expect(res.statusCode).toBe(200);
    const rows = await temp.store.query(
      "SELECT attributes['__proto__'] AS proto FROM spans WHERE span_id = {spanId: String}",
      { spanId },
      z.object({ proto: z.string() }),
    );
    expect(rows).toEqual([{ proto: 'kept' }]);
  });

  it('prices a call whose reported cost is absurd from the table, so no total turns infinite', async () => {
    const spanId = hexId(8);
    const res = await post(
      JSON.stringify(
        bodyWithAttributes(spanId, {
          'gen_ai.usage.input_tokens': { intValue: '1000' },
          'gen_ai.usage.cost': { doubleValue: 1e308 },
          'routewatch.cleanup.cost_usd': { doubleValue: 1e308 },
        }),
      ),
    );
    expect(res.statusCode).toBe(200);
    const row = await storedSpan(spanId);
    expect(row.cost_source).toBe('price_table');
    expect(row.cleanup_cost_usd).toBe(0);
  });

  it('stores an 8 MiB string attribute sent with numeric timestamps', async () => {
    const spanId = hexId(8);
    const long = 'y'.repeat(8 * 1024 * 1024);
    // Unquoted timestamps make the collector run its long-integer pass over the whole body.
    const text = JSON.stringify(
      bodyWithAttributes(spanId, { 'app.document': { stringValue: long } }),
    ).replace(/"(startTimeUnixNano|endTimeUnixNano)":"(\d+)"/g, '"$1":$2');
    expect(text).toContain(`"startTimeUnixNano":${nsAfter(0, 1n)}`);
    const res = await post(text);
    expect(res.statusCode).toBe(200);
    const row = await storedSpan(spanId);
    expect(row.start_ns).toBe(nsAfter(0, 1n));
    expect(row.attributes['app.document']).toHaveLength(long.length);
  });
});

describe('a resource every row carries', () => {
  it.each(['json', 'protobuf'] as const)(
    'cuts the long values of a resource over 16 Ki characters, keeping its short ones, in %s',
    async (encoding) => {
      // 100 KB of command line on a resource of 200 spans: whole, every row would carry it.
      const body = otlpBody(
        Array.from({ length: 200 }, (_, i) => ({
          spanId: hexId(8),
          name: `span ${i}`,
          attributes: { 'gen_ai.request.model': 'gpt-4o-mini' },
        })),
      ) as unknown as { resourceSpans: { resource: { attributes: unknown[] } }[] };
      const line = 'x'.repeat(100_000);
      body.resourceSpans[0]!.resource.attributes.push(
        { key: 'process.command_line', value: { stringValue: line } },
        { key: 'k8s.pod.name', value: { stringValue: 'api-7f9c' } },
      );
      const res =
        encoding === 'json'
          ? await post(JSON.stringify(body))
          : await post(Buffer.from(encodeRequestProto(body)), 'application/x-protobuf');
      expect(res.statusCode).toBe(200);
      const rows = await temp.store.query(
        `SELECT resource, length(toString(resource)) AS bytes FROM spans`,
        {},
        z.object({ resource: z.record(z.string(), z.string()), bytes: z.coerce.number() }),
      );
      expect(rows).toHaveLength(200);
      for (const row of rows) {
        expect(row.resource['k8s.pod.name']).toBe('api-7f9c');
        expect(row.resource['service.name']).toBeTruthy();
        expect(row.resource['process.command_line']).toBe(
          `${'x'.repeat(1024)}…(cut from 100000 characters: a resource over 16384 in all)`,
        );
        expect(row.bytes).toBeLessThan(2_000);
      }
    },
  );

  it('bounds a resource of many values just under the cap, and keeps service.name whole in it', async () => {
    const body = otlpBody([
      { spanId: hexId(8), attributes: { 'gen_ai.request.model': 'gpt-4o-mini' } },
    ]) as unknown as {
      resourceSpans: { resource: { attributes: { key: string; value: unknown }[] } }[];
    };
    const attributes = body.resourceSpans[0]!.resource.attributes;
    attributes[0] = { key: 'service.name', value: { stringValue: 's'.repeat(1_500) } };
    for (let i = 0; i < 200; i++)
      attributes.push({ key: `label.${i}`, value: { stringValue: 'v'.repeat(1_000) } });
    expect((await post(JSON.stringify(body))).statusCode).toBe(200);
    const [row] = await temp.store.query(
      'SELECT resource, service_name, length(toString(resource)) AS bytes FROM spans',
      {},
      z.object({
        resource: z.record(z.string(), z.string()),
        service_name: z.string(),
        bytes: z.coerce.number(),
      }),
    );
    // The column the reports filter and group by is bounded as every name is (its start and a
    // hash: the same for every span of the service); the resource keeps the name whole.
    expect(row!.service_name).toMatch(/^s{200}…[0-9a-f]{16}$/);
    expect(row!.resource['service.name']).toBe('s'.repeat(1_500));
    expect(row!.resource['label.0']).toMatch(/^v{64}…\(cut from 1000 characters/);
    expect(row!.bytes).toBeLessThan(40_000);
  });

  it('derives a cohort from a resource value past its first Ki characters, before the stored copy is cut', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'routewatch-resource-'));
    const mapping = join(dir, 'mapping.yaml');
    writeFileSync(
      mapping,
      'fields:\n  cohort:\n    - resource: process.command_line\n      pattern: "--queue[= ](\\\\w+)"\n',
    );
    const mapped = await testApp(temp.store, { config: { ROUTEWATCH_MAPPING: mapping } });
    try {
      const spanId = hexId(8);
      const body = otlpBody([
        { spanId, attributes: { 'gen_ai.request.model': 'gpt-4o-mini' } },
      ]) as unknown as { resourceSpans: { resource: { attributes: unknown[] } }[] };
      body.resourceSpans[0]!.resource.attributes.push({
        key: 'process.command_line',
        value: { stringValue: `java -cp ${'x'.repeat(22_000)} Main --queue billing` },
      });
      const res = await mapped.app.inject({
        method: 'POST',
        url: '/v1/traces',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify(body),
      });
      expect(res.statusCode).toBe(200);
      const [row] = await temp.store.query(
        'SELECT cohort, resource FROM spans WHERE span_id = {spanId: String}',
        { spanId },
        z.object({ cohort: z.string(), resource: z.record(z.string(), z.string()) }),
      );
      expect(row!.cohort).toBe('billing');
      expect(row!.resource['process.command_line']).toMatch(/…\(cut from 22030 characters/);
    } finally {
      await mapped.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps a resource of 16 Ki characters or fewer whole', async () => {
    const body = otlpBody([
      { spanId: hexId(8), attributes: { 'gen_ai.request.model': 'gpt-4o-mini' } },
    ]) as unknown as {
      resourceSpans: { resource: { attributes: unknown[] } }[];
    };
    const line = 'y'.repeat(12_000);
    body.resourceSpans[0]!.resource.attributes.push({
      key: 'process.command_line',
      value: { stringValue: line },
    });
    expect((await post(JSON.stringify(body))).statusCode).toBe(200);
    const [row] = await temp.store.query(
      'SELECT resource FROM spans',
      {},
      z.object({ resource: z.record(z.string(), z.string()) }),
    );
    expect(row!.resource['process.command_line']).toBe(line);
  });
});

describe('the probe’s bodies: bounded work, a 400 naming the limit, and the collector keeps serving', () => {
  const repeat = (pair: [number, number], times: number) =>
    Buffer.alloc(times * 2, Buffer.from(pair));

  it('ten million empty ResourceSpans in protobuf', async () => {
    const res = await post(repeat([0x0a, 0x00], 10_000_000), 'application/x-protobuf');
    expect(res.statusCode).toBe(400);
    expect(decodeStatus(res.rawPayload)).toMatchObject({
      code: 3,
      message: expect.stringMatching(/ROUTEWATCH_MAX_RESOURCES_PER_REQUEST/),
    });
    expect((await rw.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  it('seven million {} in JSON', async () => {
    const res = await post(`{"resourceSpans":[${'{},'.repeat(6_900_000)}{}]}`);
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/ROUTEWATCH_MAX_ENTRIES_PER_REQUEST/);
    expect((await rw.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });
});

describe('spans outside the accepted time window', () => {
  const DAY_MS = 86_400_000;
  const llm = { 'gen_ai.request.model': 'gpt-4o-mini', 'gen_ai.usage.input_tokens': 10 };
  const at = (ms: number) => String(BigInt(ms) * 1_000_000n);

  it('are refused as a partial success with the reason; the others are stored', async () => {
    const res = await post(
      JSON.stringify(
        otlpBody([
          { start: at(BASE_MS), attributes: llm },
          { start: at(BASE_MS - 400 * DAY_MS), attributes: llm },
          { start: at(Date.now() + 7 * DAY_MS), attributes: llm },
        ]),
      ),
    );
    expect(res.statusCode).toBe(200);
    const partial = res.json().partialSuccess;
    expect(partial.rejectedSpans).toBe('2');
    expect(partial.errorMessage).toMatch(/2 of 3 spans were not stored/);
    expect(partial.errorMessage).toMatch(/ROUTEWATCH_RETENTION_DAYS/);
    expect(await storedCount()).toBe(1);
  });

  it('take in a span without a start time as protobuf does: time zero, refused alone', async () => {
    const body = otlpBody([
      { start: at(BASE_MS), attributes: llm },
      { start: at(BASE_MS), attributes: llm },
    ]) as { resourceSpans: { scopeSpans: { spans: Record<string, unknown>[] }[] }[] };
    const before = await storedCount();
    delete body.resourceSpans[0]!.scopeSpans[0]!.spans[1]!['startTimeUnixNano'];
    const res = await post(JSON.stringify(body));
    expect(res.statusCode).toBe(200);
    expect(res.json().partialSuccess.rejectedSpans).toBe('1');
    expect(await storedCount()).toBe(before + 1);
  });

  it('never turn one request into thousands of partitions', async () => {
    // The probe's request: spans over 10 000 different days.
    const spans = Array.from({ length: 10_000 }, (_, i) => ({
      start: at(BASE_MS - i * DAY_MS),
      attributes: llm,
    }));
    const res = await post(JSON.stringify(otlpBody(spans)));
    expect(res.statusCode).toBe(200);
    expect(Number(res.json().partialSuccess.rejectedSpans)).toBeGreaterThan(9_900);
    await temp.store.exec('SYSTEM FLUSH LOGS');
    const [parts] = await temp.store.query(
      "SELECT uniqExact(partition) AS n FROM system.parts WHERE database = currentDatabase() AND table = 'spans' AND active",
      {},
      countRow,
    );
    expect(parts!.n).toBeLessThanOrEqual(32);
  });
});

describe('a root span sent with an all-zero parent id', () => {
  it('is stored as a root (no parent), from JSON and from protobuf', async () => {
    const zero = '0'.repeat(16);
    const fromJson = hexId(8);
    const fromProto = hexId(8);
    const llm = { 'gen_ai.request.model': 'gpt-4o-mini' };
    expect(
      (
        await post(
          JSON.stringify(otlpBody([{ spanId: fromJson, parentSpanId: zero, attributes: llm }])),
        )
      ).statusCode,
    ).toBe(200);
    const proto = encodeRequestProto(
      otlpBody([{ spanId: fromProto, parentSpanId: zero, attributes: llm }]),
    );
    expect((await post(Buffer.from(proto), 'application/x-protobuf')).statusCode).toBe(200);
    await rw.writer.flush();
    const rows = await temp.store.query(
      'SELECT span_id, parent_span_id FROM spans WHERE span_id IN {ids:Array(String)} ORDER BY span_id',
      { ids: [fromJson, fromProto] },
      z.object({ span_id: z.string(), parent_span_id: z.string() }),
    );
    expect(rows.map((r) => r.parent_span_id)).toEqual(['', '']);
  });
});
