import { Writable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { isLoopback } from '../cli/env.js';
import { buildRoutewatchApp } from '../cli/server.js';
import { parseJsonPreservingInt64 } from '../collector/otlp-json.js';
import { validateTraceRequest } from '../collector/otlp-request.js';
import { SpanWriter } from '../collector/span-writer.js';
import type { Store } from '../storage/store.js';
import { decodeStatus, hexId, openTempStore, otlpBody, unavailableStore } from './helpers.js';

const TOKEN = 'edge-test-token-0123456789';
const MAX_BODY_BYTES = 20 * 1024 * 1024;

let temp: Awaited<ReturnType<typeof openTempStore>>;
let writer: SpanWriter;
let app: ReturnType<typeof buildRoutewatchApp>['app'];

beforeAll(async () => {
  temp = await openTempStore();
  writer = new SpanWriter(temp.store, { maxDelayMs: 5 });
  app = buildRoutewatchApp({ store: temp.store, writer, token: TOKEN }).app;
});
afterAll(async () => {
  await app?.close();
  await temp?.dispose();
});
beforeEach(async () => {
  await temp.store.exec('TRUNCATE TABLE spans');
});

function post(payload: string | Buffer, contentType: string, authorization = `Bearer ${TOKEN}`) {
  return app.inject({
    method: 'POST',
    url: '/v1/traces',
    headers: { 'content-type': contentType, authorization },
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
  attributes: z.record(z.string(), z.string()),
});
async function storedSpan(spanId: string) {
  const rows = await temp.store.query(
    `SELECT toString(toUnixTimestamp64Nano(timestamp)) AS start_ns, confidence, cost_usd,
            cost_source, attributes
       FROM spans WHERE span_id = {spanId: String}`,
    { spanId },
    storedRow,
  );
  expect(rows).toHaveLength(1);
  return rows[0]!;
}

describe('parseJsonPreservingInt64', () => {
  it('quotes long integers outside strings, negative ones included', () => {
    expect(parseJsonPreservingInt64('{"a":1764331200000000001,"b":[-9007199254740993]}')).toEqual({
      a: '1764331200000000001',
      b: ['-9007199254740993'],
    });
  });

  it('leaves long integers inside strings untouched, escaped quotes included', () => {
    const text = '{"a":"x\\":1764331200000000001","b":"\\\\","c":1764331200000000001}';
    expect(parseJsonPreservingInt64(text)).toEqual({
      a: 'x":1764331200000000001',
      b: '\\',
      c: '1764331200000000001',
    });
  });

  it('keeps long numbers with a fraction or an exponent as numbers', () => {
    const text =
      '{"t":1764331200000000001,"v":[1234567890123456.5,1234567890123456e3,-1234567890123456E-2]}';
    expect(parseJsonPreservingInt64(text)).toEqual({
      t: '1764331200000000001',
      v: [1234567890123456.5, 1234567890123456e3, -1234567890123456e-2],
    });
  });

  it('parses an 8 MiB string next to a long integer', () => {
    const long = 'x'.repeat(8 * 1024 * 1024);
    const parsed = parseJsonPreservingInt64(`{"s":"${long}","t":1764331200000000001}`) as {
      s: string;
      t: string;
    };
    expect(parsed.s).toHaveLength(long.length);
    expect(parsed.t).toBe('1764331200000000001');
  });
});

describe('doubleValue as a string', () => {
  const request = (doubleValue: unknown) =>
    bodyWithAttributes(hexId(8), { 'app.value': { doubleValue } });
  const checked = (doubleValue: unknown) =>
    validateTraceRequest(request(doubleValue)).resourceSpans[0]!.scopeSpans[0]!.spans[0]!
      .attributes[1]!.value;

  it.each([
    ['1.5', 1.5],
    ['1e3', 1000],
    ['-2.5E-3', -0.0025],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['-Infinity', -Infinity],
  ])('accepts %s', (text, value) => {
    expect(checked(text)).toEqual({ kind: 'double', value });
  });

  it.each(['abc', '0x10', '', ' 1', '1e'])('refuses %j naming the field', (text) => {
    expect(() => checked(text)).toThrow(
      /resourceSpans\.0\.scopeSpans\.0\.spans\.0\.attributes\.1\.value\.doubleValue: expected a number/,
    );
  });

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
      'application/json',
    );
    expect(res.statusCode).toBe(200);
    const row = await storedSpan(spanId);
    expect(row.attributes).toMatchObject({ 'app.ratio': '1.5', 'app.nan': 'NaN' });
    expect(row.attributes['app.inf']).toBe('-Infinity');
    expect(row.confidence).toBeNull();
    expect(row).toMatchObject({ cost_usd: 0.0025, cost_source: 'span' });
  });

  it('answers a non-numeric string with 400 naming the field', async () => {
    const res = await post(JSON.stringify(request('lots')), 'application/json');
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/attributes\.1\.value\.doubleValue: .*"lots"/);
  });
});

describe('POST /v1/traces with a very long string', () => {
  it('stores an 8 MiB string attribute sent with numeric timestamps', async () => {
    const spanId = hexId(8);
    const long = 'y'.repeat(8 * 1024 * 1024);
    // Unquoted timestamps make the collector run its long-integer pass over the whole body.
    const text = JSON.stringify(
      bodyWithAttributes(spanId, { 'app.document': { stringValue: long } }),
    ).replace(/"(startTimeUnixNano|endTimeUnixNano)":"(\d+)"/g, '"$1":$2');
    expect(text).toContain('"startTimeUnixNano":1764331200000000001');
    const res = await post(text, 'application/json');
    expect(res.statusCode).toBe(200);
    const row = await storedSpan(spanId);
    expect(row.start_ns).toBe('1764331200000000001');
    expect(row.attributes['app.document']).toHaveLength(long.length);
  });
});

describe('isLoopback', () => {
  it.each(['localhost', 'LOCALHOST', '::1', '[::1]', '127.0.0.1', '127.1.2.3', '127.255.255.255'])(
    'accepts %s',
    (host) => {
      expect(isLoopback(host)).toBe(true);
    },
  );

  it.each([
    '127.example.com',
    '127.0.0.1.nip.io',
    '127.256.0.1',
    '127.0.0',
    '127.0.0.01',
    '128.0.0.1',
    '0.0.0.0',
    '::',
    'example.com',
    '',
  ])('refuses %j', (host) => {
    expect(isLoopback(host)).toBe(false);
  });
});

describe('routewatch error answers', () => {
  it('answers a protobuf request with a wrong token with a protobuf Status', async () => {
    const res = await post(Buffer.alloc(0), 'application/x-protobuf', 'Bearer wrong');
    expect(res.statusCode).toBe(401);
    expect(res.headers['content-type']).toBe('application/x-protobuf');
    const status = decodeStatus(res.rawPayload);
    expect(status.code).toBe(16);
    expect(status.message).toMatch(/token/);
  });

  it('answers a JSON request with a wrong token with a JSON Status', async () => {
    const res = await post('{}', 'application/json', 'Bearer wrong');
    expect(res.statusCode).toBe(401);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json()).toMatchObject({ code: 16, message: expect.stringMatching(/token/) });
  });

  it('answers a protobuf body over the limit with 413 and a protobuf Status', async () => {
    const res = await post(Buffer.alloc(MAX_BODY_BYTES + 1), 'application/x-protobuf');
    expect(res.statusCode).toBe(413);
    expect(res.headers['content-type']).toBe('application/x-protobuf');
    expect(decodeStatus(res.rawPayload).code).toBe(8);
  });

  it('answers a JSON body over the limit with 413 and a JSON Status', async () => {
    const res = await post(Buffer.alloc(MAX_BODY_BYTES + 1, 0x20), 'application/json');
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ code: 8 });
  });
});

describe('routewatch internal failures', () => {
  it('answer 500 with an INTERNAL status (13), not INVALID_ARGUMENT', async () => {
    const broken: Store = {
      ...unavailableStore(),
      query: async () => {
        throw new Error('Code: 210. DB::Exception: Connection refused');
      },
    };
    const failing = buildRoutewatchApp({ store: broken, writer, token: TOKEN }).app;
    const res = await failing.inject({
      method: 'GET',
      url: '/api/v1/report?window=1h',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    await failing.close();
    expect(res.statusCode).toBe(500);
    expect(res.json()).toMatchObject({
      code: 13,
      message: expect.stringMatching(/Connection refused/),
    });
  });
});

describe('buildRoutewatchApp logging', () => {
  it('logs no line per request and raises no deprecation warning', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error & { code?: string }) => warnings.push(warning.code ?? '');
    process.on('warning', onWarning);
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logged = buildRoutewatchApp({
      store: temp.store,
      writer,
      logger: { level: 'info', stream },
    }).app;
    try {
      expect((await logged.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      // process.emitWarning delivers on a later tick.
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).not.toContain('FSTDEP023');
      expect(lines.filter((line) => /incoming request|request completed/.test(line))).toEqual([]);
    } finally {
      process.off('warning', onWarning);
      await logged.close();
    }
  });
});
