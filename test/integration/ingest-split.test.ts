import { afterAll, describe, expect, it } from 'vitest';
import { SPLIT_MIN_BYTES, createIngestRunner } from '../../collector/ingest-pool.js';
import { RequestLimitError } from '../../collector/otlp-errors.js';
import { preparedLines } from '../../collector/span-lines.js';
import { configWith } from '../../server/config.js';
import { ingestSettings } from '../../server/start.js';
import { encodeRequestProto } from '../support/otlp-proto-encode.js';
import { LLM_ATTRIBUTES, hexId, otlpBody } from '../support/otlp.js';
import type { TestSpan } from '../support/otlp.js';

// A large protobuf body that finds two ingest threads idle is split between them: each decodes
// and checks the whole body and keeps every other span. The merged result must be the one a
// single pass gives (the same rows, counts and cost sources), and a body that fails must fail
// with the same error as when it is not split.

const settings = ingestSettings(configWith());
const split = createIngestRunner(settings, { workers: 2, heapMb: 64 });
const inline = createIngestRunner(settings, { workers: 0, heapMb: 64 });
afterAll(() => split.close());

const DAY_NS = 86_400_000_000_000n;

/** 600 spans, a third of them not LLM calls, a few priced from the table, a few too old. */
function serviceExport(): TestSpan[] {
  const spans: TestSpan[] = [];
  const old = String(BigInt(Date.now()) * 1_000_000n - 400n * DAY_NS);
  for (let i = 0; i < 600; i++) {
    if (i % 3 === 0) {
      spans.push({ name: `GET /orders/${i}`, attributes: { 'http.route': '/orders/:id' } });
    } else {
      spans.push({
        ...(i % 50 === 1 ? { start: old, end: old } : {}),
        attributes: {
          ...LLM_ATTRIBUTES,
          'routewatch.task.id': `task-${i}`,
          'gen_ai.usage.output_tokens': i,
          ...(i % 7 === 0 ? { 'gen_ai.usage.cost': 0.001 * i } : {}),
        },
      });
    }
  }
  return spans;
}

const body = () => encodeRequestProto(otlpBody(serviceExport()));

describe('a large protobuf body split across idle ingest threads', () => {
  it('gives the rows and counts of a single pass', async () => {
    const bytes = body();
    expect(bytes.byteLength).toBeGreaterThanOrEqual(SPLIT_MIN_BYTES);
    const whole = await inline.run(bytes, 'protobuf');
    const parts = await split.run(bytes, 'protobuf');
    // Split: one record from each thread.
    expect(whole.records).toHaveLength(1);
    expect(parts.records).toHaveLength(2);
    expect(parts).toMatchObject({
      received: 600,
      rows: whole.rows,
      skipped: 200,
      outOfWindow: whole.outOfWindow,
      costSources: whole.costSources,
    });
    expect(whole.outOfWindow).toBe(8);
    expect(parts.outOfWindowMessage).toMatch(/older than the retention/);
    expect(whole.costSources.span).toBeGreaterThan(0);
    expect(whole.costSources.price_table).toBeGreaterThan(0);
    // Only the write time differs between two passes: the lines are the same, in another order.
    expect(preparedLines(parts).sort()).toEqual(preparedLines(whole).sort());
    expect(split.stats.workMs.count).toBe(1);
  });

  it('is not split when it is small, when it is JSON, or when a request is waiting', async () => {
    const small = encodeRequestProto(otlpBody(serviceExport().slice(0, 30)));
    expect((await split.run(small, 'protobuf')).records).toHaveLength(1);
    const json = Buffer.from(JSON.stringify(otlpBody(serviceExport())));
    expect((await split.run(json, 'json')).records).toHaveLength(1);
    // Two at once: the first takes both threads, the second waits and then runs whole.
    const [first, second] = await Promise.all([
      split.run(body(), 'protobuf'),
      split.run(body(), 'protobuf'),
    ]);
    expect(first.records).toHaveLength(2);
    expect(second.records).toHaveLength(1);
    expect(second.rows).toBe(first.rows);
  });

  it('is not split while most spans of recent requests are not stored', async () => {
    const pool = createIngestRunner(settings, { workers: 2, heapMb: 64 });
    try {
      const http: TestSpan[] = [];
      for (let i = 0; i < 1000; i++) {
        http.push({ name: `GET /orders/${i}`, attributes: { 'http.route': '/orders/:id' } });
      }
      const httpOnly = encodeRequestProto(otlpBody(http));
      expect(httpOnly.byteLength).toBeGreaterThanOrEqual(SPLIT_MIN_BYTES);
      // After requests of which nothing was stored, a large body is not split.
      expect((await pool.run(httpOnly, 'protobuf')).records).toHaveLength(0);
      for (let i = 0; i < 4; i++) await pool.run(httpOnly, 'protobuf');
      const records: number[] = [];
      for (let i = 0; i < 10 && records.at(-1) !== 2; i++) {
        records.push((await pool.run(body(), 'protobuf')).records.length);
      }
      // Once LLM calls are most of what comes, it splits again.
      expect(records[0]).toBe(1);
      expect(records.at(-1)).toBe(2);
    } finally {
      await pool.close();
    }
  });

  it('refuses a span with a bad id once, as a single pass does, whichever thread keeps it', async () => {
    const spans = serviceExport();
    spans[301] = { ...spans[301]!, traceId: hexId(8) };
    spans[302] = { ...spans[302]!, spanId: '0'.repeat(16) };
    const bytes = encodeRequestProto(otlpBody(spans));
    const whole = await inline.run(bytes, 'protobuf');
    const parts = await split.run(bytes, 'protobuf');
    expect(whole.invalid).toBe(2);
    expect(whole.invalidMessage).toMatch(/spans\.301\.traceId: expected 32 hex characters/);
    expect({ rows: parts.rows, invalid: parts.invalid, message: parts.invalidMessage }).toEqual({
      rows: whole.rows,
      invalid: 2,
      message: whole.invalidMessage,
    });
    expect(parts.records).toHaveLength(2);
  });

  it('stops at the request limits as a single pass does, counting every span', async () => {
    const limited = ingestSettings(configWith({ ROUTEWATCH_MAX_SPANS_PER_REQUEST: '500' }));
    const limitedSplit = createIngestRunner(limited, { workers: 2, heapMb: 64 });
    try {
      const error = await limitedSplit.run(body(), 'protobuf').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RequestLimitError);
      expect((error as Error).message).toMatch(/ROUTEWATCH_MAX_SPANS_PER_REQUEST/);
    } finally {
      await limitedSplit.close();
    }
  });

  it('moves a handed-over body to one thread and copies it for the other', async () => {
    const bytes = body();
    const owned = new Uint8Array(bytes.byteLength);
    owned.set(bytes);
    const result = await split.run(owned, 'protobuf', true);
    expect(owned.byteLength).toBe(0);
    expect(result.records).toHaveLength(2);
    expect(result.received).toBe(600);
  });
});
