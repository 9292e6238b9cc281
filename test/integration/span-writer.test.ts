import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { normalizeRequest } from '../../collector/normalize.js';
import type { SpanRow } from '../../collector/normalize.js';
import { validateTraceRequest } from '../../collector/otlp-json.js';
import { PriceTable } from '../../collector/pricing.js';
import { OverloadedError, prepareRows } from '../../collector/span-writer.js';
import type { PreparedRows } from '../../collector/span-writer.js';
import { testApp, testWriter } from '../support/app.js';
import { isRowDataError } from '../../storage/errors.js';
import type { Store } from '../../storage/store.js';
import { openTempStore, unavailableStore } from '../support/store.js';
import { otlpBody } from '../support/otlp.js';
import type { TestSpan } from '../support/otlp.js';

let temp: Awaited<ReturnType<typeof openTempStore>>;

beforeAll(async () => {
  temp = await openTempStore();
});
afterAll(async () => {
  await temp?.dispose();
});
beforeEach(async () => {
  await temp.store.exec('TRUNCATE TABLE spans');
});

const llm = {
  'routewatch.cohort': 'faq',
  'routewatch.route': 'small',
  'gen_ai.request.model': 'gpt-4o-mini',
  'gen_ai.usage.input_tokens': 10,
};

function spanRows(spans: TestSpan[]): SpanRow[] {
  return normalizeRequest(validateTraceRequest(otlpBody(spans)), new PriceTable()).rows;
}
const rows = (spans: TestSpan[]): PreparedRows => prepareRows(spanRows(spans));

const stored = z.object({ name: z.string(), input_tokens: z.coerce.number() });
async function storedNames(): Promise<string[]> {
  const found = await temp.store.query('SELECT name, input_tokens FROM spans FINAL', {}, stored);
  return found.map((r) => r.name).sort();
}

describe('SpanWriter when the store refuses a row', () => {
  it('stores every other request and every other row, and says how many it refused', async () => {
    const writer = testWriter(temp.store, { ROUTEWATCH_BATCH_DELAY: '50ms' });
    const clean = rows([1, 2, 3].map((i) => ({ name: `clean ${i}`, attributes: llm })));
    const mixedRows = spanRows(
      [1, 2, 3, 4, 5].map((i) => ({ name: `mixed ${i}`, attributes: llm })),
    );
    // A lone surrogate written past normalization: ClickHouse refuses the escape sequence.
    mixedRows[3]!.name = 'cut \ud83d';
    const mixed = prepareRows(mixedRows);
    const other = rows([{ name: 'other', attributes: llm }]);

    const results = await Promise.all([
      writer.write(clean),
      writer.write(mixed),
      writer.write(other),
    ]);

    expect(results[0]).toEqual({ rejected: 0, errorMessage: '' });
    expect(results[2]).toEqual({ rejected: 0, errorMessage: '' });
    expect(results[1]!.rejected).toBe(1);
    expect(results[1]!.errorMessage).toMatch(/surrogate/);
    expect(await storedNames()).toEqual([
      'clean 1',
      'clean 2',
      'clean 3',
      'mixed 1',
      'mixed 2',
      'mixed 3',
      'mixed 5',
      'other',
    ]);
    expect(writer.stats).toMatchObject({ rowsWritten: 8, rowsRejected: 1, pendingRows: 0 });
  });

  it('stores only the new rows of a write that repeats spans: of its own, of its batch, or stored before', async () => {
    const writer = testWriter(temp.store, { ROUTEWATCH_BATCH_DELAY: '50ms' });
    const name = (prefix: string) => (i: number) => ({ name: `${prefix} ${i}`, attributes: llm });
    const [taken, fresh] = [
      spanRows([1, 2, 3].map(name('taken'))),
      spanRows([1, 2, 3, 4].map(name('fresh'))),
    ];
    await writer.write(prepareRows(taken));
    const results = await Promise.all([
      writer.write(prepareRows([fresh[0]!, taken[0]!, taken[2]!, fresh[1]!, fresh[1]!, fresh[2]!])),
      writer.write(prepareRows([fresh[2]!, fresh[3]!])),
    ]);
    expect(results.map(({ rejected, errorMessage }) => ({ rejected, errorMessage }))).toEqual([
      { rejected: 0, errorMessage: '' },
      { rejected: 0, errorMessage: '' },
    ]);
    // Each write says how many of its LLM calls were duplicates, so they are not counted again.
    const calls = (counts: Record<string, number> | undefined) =>
      Object.values(counts ?? {}).reduce((sum, n) => sum + n, 0);
    expect(results.map((result) => calls(result.duplicateCalls))).toEqual([3, 1]);
    expect(writer.stats).toMatchObject({ duplicatesDropped: 4, rowsWritten: 7, pendingRows: 0 });
    const raw = await temp.store.query('SELECT name, input_tokens FROM spans', {}, stored);
    expect(raw.map((r) => r.name).sort()).toEqual([
      'fresh 1',
      'fresh 2',
      'fresh 3',
      'fresh 4',
      'taken 1',
      'taken 2',
      'taken 3',
    ]);
  });

  it('fails every request of the batch, for a retry, when the store is down', async () => {
    const down = unavailableStore('Code: 210. DB::Exception: Connection refused (NETWORK_ERROR)');
    const writer = testWriter(down, { ROUTEWATCH_BATCH_DELAY: '1ms' });
    const settled = await Promise.allSettled([
      writer.write(rows([{ attributes: llm }])),
      writer.write(rows([{ attributes: llm }])),
    ]);
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected']);
    expect(writer.stats.rowsRejected).toBe(0);
  });

  it('stores a backlog whose spans fall on more than 100 days, with the batch it shares', async () => {
    // spans is partitioned by day; the engine's default refuses an insert touching over 100.
    const day = 86_400_000_000_000n;
    const backlog = rows(
      Array.from({ length: 120 }, (_, i) => {
        const start = 1_754_000_000_000_000_000n + BigInt(i) * day;
        return {
          name: `day ${String(i).padStart(3, '0')}`,
          start: String(start),
          end: String(start + 1_000_000n),
          attributes: llm,
        };
      }),
    );
    const writer = testWriter(temp.store, { ROUTEWATCH_BATCH_DELAY: '50ms' });
    const results = await Promise.all([
      writer.write(backlog),
      writer.write(rows([{ name: 'today', attributes: llm }])),
    ]);
    expect(results).toEqual([
      { rejected: 0, errorMessage: '' },
      { rejected: 0, errorMessage: '' },
    ]);
    const names = await storedNames();
    expect(names).toHaveLength(121);
    expect(names).toContain('today');
    expect(names).toContain('day 119');
  });

  it('refuses new rows once the waiting ones exceed the byte bound', async () => {
    const writer = testWriter(temp.store, {
      ROUTEWATCH_BATCH_DELAY: '60s',
      ROUTEWATCH_MAX_PENDING_BYTES: String(1024 * 1024),
    });
    const first = writer.write(
      rows([{ attributes: { ...llm, 'app.big': 'x'.repeat(1_100_000) } }]),
    );
    expect(writer.stats.pendingBytes).toBeGreaterThan(1024 * 1024);
    await expect(writer.write(rows([{ attributes: llm }]))).rejects.toBeInstanceOf(OverloadedError);
    await writer.flush();
    await expect(first).resolves.toEqual({ rejected: 0, errorMessage: '' });
    expect(writer.stats.pendingBytes).toBe(0);
  });
});

describe('SpanWriter without the log: group commit, no fixed delay', () => {
  it('inserts a request to an idle writer at once, whatever the batch delay', async () => {
    // Each answer waits for its insert: an hour's window would time the test out if it applied.
    const writer = testWriter(temp.store, { ROUTEWATCH_WAL: 'off', ROUTEWATCH_BATCH_DELAY: '1h' });
    expect(await writer.write(rows([{ name: 'alone', attributes: llm }]))).toEqual({
      rejected: 0,
      errorMessage: '',
    });
    expect(await storedNames()).toEqual(['alone']);
    await writer.write(rows([{ name: 'later', attributes: llm }]));
    expect(await storedNames()).toEqual(['alone', 'later']);
    expect(writer.stats.batches).toBe(2);
  });

  it('puts the requests that arrive during an insert into the next one, together', async () => {
    const held = heldStore();
    // ROUTEWATCH_BATCH_DELAY unset: the default without the log.
    const writer = testWriter(held.store, { ROUTEWATCH_WAL: 'off', ROUTEWATCH_BATCH_DELAY: '' });
    const first = writer.write(rows([{ name: 'first', attributes: llm }]));
    await held.firstStarted;
    const during = ['second', 'third', 'fourth'].map((name) =>
      writer.write(rows([{ name, attributes: llm }])),
    );
    expect(writer.stats.pendingRows).toBe(3);
    held.release();
    await Promise.all([first, ...during]);
    expect(held.inserts()).toBe(2);
    expect(writer.stats).toMatchObject({ batches: 2, rowsWritten: 4, pendingRows: 0 });
    expect(await storedNames()).toEqual(['first', 'fourth', 'second', 'third']);
  });

  it('with a delay set, lets those fill the next insert; a flush waits only for earlier writes', async () => {
    const held = heldStore();
    const writer = testWriter(held.store, { ROUTEWATCH_WAL: 'off', ROUTEWATCH_BATCH_DELAY: '1h' });
    const first = writer.write(rows([{ name: 'first', attributes: llm }]));
    await held.firstStarted;
    const flushed = writer.flush();
    let secondDone = false;
    const second = writer
      .write(rows([{ name: 'second', attributes: llm }]))
      .finally(() => (secondDone = true));
    held.release();
    await flushed;
    await first;
    // The flush did not wait for the write made after it, which waits for the hour's window.
    expect(await storedNames()).toEqual(['first']);
    expect(secondDone).toBe(false);
    await writer.flush();
    await second;
    expect(await storedNames()).toEqual(['first', 'second']);
  });
});

/** The real store, holding its first insert until released. */
function heldStore(): {
  store: Store;
  firstStarted: Promise<void>;
  release: () => void;
  inserts: () => number;
} {
  let inserts = 0;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let started!: () => void;
  const firstStarted = new Promise<void>((resolve) => (started = resolve));
  const store: Store = {
    driver: 'embedded',
    location: 'held',
    exec: (sql, params) => temp.store.exec(sql, params),
    query: (sql, params, row) => temp.store.query(sql, params, row),
    queryReadOnly: (sql, limits) => temp.store.queryReadOnly(sql, limits),
    ping: () => temp.store.ping(),
    close: async () => undefined,
    insertJsonEachRow: async (table, body, options) => {
      if (++inserts === 1) {
        started();
        await gate;
      }
      await temp.store.insertJsonEachRow(table, body, options);
    },
  };
  return { store, firstStarted, release, inserts: () => inserts };
}

describe('isRowDataError', () => {
  it('tells refused content from an unavailable store, through the cause chain', () => {
    const parse = new Error('Code: 27. DB::Exception: Cannot parse input: expected , (at row 1)');
    expect(isRowDataError(new Error('insert failed', { cause: parse }))).toBe(true);
    expect(isRowDataError(Object.assign(new Error('x'), { code: '117' }))).toBe(true);
    expect(isRowDataError(new Error('Code: 241. DB::Exception: Memory limit exceeded'))).toBe(
      false,
    );
    expect(isRowDataError(new Error('socket hang up'))).toBe(false);
  });
});

/** The same three spans as `body()`, made by the real SDK for a protobuf request. */
function sdkSpans(): ReadableSpan[] {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] });
  const tracer = provider.getTracer('span-writer-test');
  for (const name of ['good 1', 'poison', 'good 2'])
    tracer.startSpan(name, { attributes: llm }).end();
  return memory.getFinishedSpans();
}

describe('POST /v1/traces answers refused spans as an OTLP partial success', () => {
  /** The real store, refusing rows that mention "poison" with ClickHouse's own parse error. */
  const picky: Store = {
    driver: 'embedded',
    location: 'picky',
    exec: (sql, params) => temp.store.exec(sql, params),
    query: (sql, params, row) => temp.store.query(sql, params, row),
    queryReadOnly: (sql, limits) => temp.store.queryReadOnly(sql, limits),
    ping: () => temp.store.ping(),
    close: async () => undefined,
    insertJsonEachRow: async (table, body, options) => {
      if (Buffer.from(body).includes('poison')) {
        throw new Error(
          "insert into spans failed: Code: 27. DB::Exception: Cannot parse input: expected '\"' (at row 1)",
        );
      }
      await temp.store.insertJsonEachRow(table, body, options);
    },
  };

  const body = () =>
    otlpBody([
      { name: 'good 1', attributes: llm },
      { name: 'poison', attributes: llm },
      { name: 'good 2', attributes: llm },
    ]);

  it('in JSON', async () => {
    const { app, close } = await testApp(picky);
    const res = await app.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify(body()),
    });
    expect(res.statusCode).toBe(200);
    const response = JsonTraceSerializer.deserializeResponse(res.rawPayload);
    expect(Number(response.partialSuccess?.rejectedSpans)).toBe(1);
    expect(response.partialSuccess?.errorMessage).toMatch(
      /^1 of 3 spans were not stored, the rest were: 1 refused by the span store \(.*Code: 27/,
    );
    expect(await storedNames()).toEqual(['good 1', 'good 2']);
    await close();
  });

  it('in protobuf', async () => {
    const { app, close } = await testApp(picky);
    const res = await app.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { 'content-type': 'application/x-protobuf' },
      payload: Buffer.from(ProtobufTraceSerializer.serializeRequest(sdkSpans())!),
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/application\/x-protobuf/);
    const response = ProtobufTraceSerializer.deserializeResponse(res.rawPayload);
    expect(Number(response.partialSuccess?.rejectedSpans)).toBe(1);
    expect(response.partialSuccess?.errorMessage).toMatch(/refused by the span store/);
    expect(await storedNames()).toEqual(['good 1', 'good 2']);
    await close();
  });
});

interface TestSpanJson {
  attributes: Array<{ key: string; value: unknown }>;
}

describe('POST /v1/traces repairs what the engine would refuse as sent', () => {
  it('replaces lone surrogates and caps absurd token counts instead of failing the batch', async () => {
    const { app, close } = await testApp(temp.store);
    const request = otlpBody([
      {
        name: 'chat \ud83d',
        attributes: { ...llm, 'app.note': 'half \udc00' },
      },
    ]);
    // A token count sent as a double, as some SDKs do: 1e21 serializes as "1e+21", not an integer.
    const span = (request as { resourceSpans: [{ scopeSpans: [{ spans: [TestSpanJson] }] }] })
      .resourceSpans[0].scopeSpans[0].spans[0];
    span.attributes.push({ key: 'gen_ai.usage.input_tokens', value: { doubleValue: 1e21 } });
    const res = await app.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify(request),
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({});
    const [row] = await temp.store.query(
      "SELECT name, input_tokens, attributes['app.note'] AS note FROM spans FINAL",
      {},
      stored.extend({ note: z.string() }),
    );
    expect(row).toEqual({
      name: 'chat \ufffd',
      input_tokens: Number.MAX_SAFE_INTEGER,
      note: 'half \ufffd',
    });
    await close();
  });
});
