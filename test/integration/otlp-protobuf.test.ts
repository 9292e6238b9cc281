import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { configWith } from '../../server/config.js';
import { startRoutewatch } from '../../server/start.js';
import type { RunningRoutewatch } from '../../server/start.js';
import { normalizeRequest } from '../../collector/normalize.js';
import { decodeTraceRequestJson } from '../../collector/otlp-json.js';
import { decodeTraceRequestProto } from '../../collector/otlp-proto.js';
import { PriceTable } from '../../collector/pricing.js';
import { decodeStatus } from '../support/otlp.js';

let dir: string;
let routewatch: RunningRoutewatch;
let finished: ReadableSpan[];

/** Spans made by the real SDK, with every attribute type the collector reads. */
function makeSpans(): ReadableSpan[] {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'proto-service' }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer('proto-test');
  const task = tracer.startSpan('routewatch.task faq', {
    kind: SpanKind.INTERNAL,
    attributes: {
      'routewatch.task.id': 'task-proto',
      'routewatch.cohort': 'faq',
      'routewatch.outcome': 'success',
    },
  });
  task.end();
  const call = tracer.startSpan('chat gpt-4o-mini', {
    kind: SpanKind.CLIENT,
    attributes: {
      'routewatch.task.id': 'task-proto',
      'routewatch.cohort': 'faq',
      'routewatch.route': 'small',
      'routewatch.attempt': 1,
      'routewatch.confidence': 0.75,
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.usage.input_tokens': 1200,
      'gen_ai.usage.output_tokens': 80,
      'gen_ai.response.finish_reasons': ['stop'],
      'routewatch.reask': false,
      'app.big': 9_007_199_254_740_993n as unknown as number,
    },
  });
  call.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
  call.end();
  return memory.getFinishedSpans();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'routewatch-proto-'));
  routewatch = await startRoutewatch(
    configWith({ ROUTEWATCH_PORT: '0', ROUTEWATCH_DATA_DIR: dir, ROUTEWATCH_BATCH_DELAY: '5ms' }),
  );
  finished = makeSpans();
});
afterAll(async () => {
  await routewatch?.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await routewatch.store.exec('TRUNCATE TABLE spans');
});

async function send(body: Uint8Array, headers: Record<string, string>) {
  return fetch(routewatch.tracesUrl, { method: 'POST', headers, body });
}

const rowShape = z.record(z.string(), z.unknown());
async function rows(): Promise<Record<string, unknown>[]> {
  // Acknowledged once in the write-ahead log: stored once it is drained.
  await routewatch.writer.flush();
  return routewatch.store.query(
    'SELECT * EXCEPT inserted_at FROM spans ORDER BY span_id',
    {},
    rowShape,
  );
}

describe('OTLP/HTTP protobuf', () => {
  it('decodes to exactly the rows the same spans give as JSON', async () => {
    const proto = ProtobufTraceSerializer.serializeRequest(finished)!;
    const json = new TextDecoder().decode(JsonTraceSerializer.serializeRequest(finished)!);
    const prices = new PriceTable();
    const viaProto = normalizeRequest(decodeTraceRequestProto(proto), prices);
    expect(viaProto.rows).toHaveLength(2);
    expect(viaProto).toEqual(normalizeRequest(decodeTraceRequestJson(json), prices));

    const res = await send(proto, { 'content-type': 'application/x-protobuf' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-protobuf');
    expect((await res.arrayBuffer()).byteLength).toBe(0);
    const fromProto = await rows();
    expect(fromProto).toHaveLength(2);
    const call = fromProto.find((r) => r['name'] === 'chat gpt-4o-mini')!;
    expect(call).toMatchObject({
      kind: 'llm',
      cohort: 'faq',
      route: 'small',
      attempt: 1,
      confidence: 0.75,
      input_tokens: '1200',
      status_code: 'error',
      status_message: 'boom',
      service_name: 'proto-service',
      span_kind: 'client',
    });
  });

  it('accepts what the real OTLP/HTTP protobuf exporter sends, gzip included', async () => {
    for (const compression of ['none', 'gzip'] as const) {
      await routewatch.store.exec('TRUNCATE TABLE spans');
      const spans = makeSpans();
      const exporter = new OTLPTraceExporter({
        url: routewatch.tracesUrl,
        compression: compression as never,
      });
      const result = await new Promise<{ code: number; error?: Error }>((resolve) =>
        exporter.export(spans, resolve),
      );
      expect(result.error).toBeUndefined();
      expect(result.code).toBe(0);
      expect(await rows()).toHaveLength(2);
      await exporter.shutdown();
    }
  });

  it('skips unknown fields', async () => {
    const proto = ProtobufTraceSerializer.serializeRequest(makeSpans())!;
    // Field 99 (a string) appended at the top level: unknown to this receiver.
    const unknown = new BinaryWriter()
      .tag(99, WireType.LengthDelimited)
      .string('from the future')
      .finish();
    const res = await send(Buffer.concat([proto, unknown]), {
      'content-type': 'application/x-protobuf',
    });
    expect(res.status).toBe(200);
    expect(await rows()).toHaveLength(2);
  });

  it.each([
    ['garbage bytes', Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])],
    ['a truncated request', ProtobufTraceSerializer.serializeRequest(makeSpans())!.subarray(0, 40)],
    // Length 2^32: a reader that keeps 32 bits reads it as 0, an empty request answered 200.
    ['a length beyond 32 bits', Buffer.from([0x0a, 0x80, 0x80, 0x80, 0x80, 0x10])],
    ['an unknown field of length 2^32', Buffer.from([0x12, 0x80, 0x80, 0x80, 0x80, 0x10])],
    [
      'a string of length 2^32 + 1',
      // ResourceSpans { ScopeSpans { Span { name (field 5): length 2^32 + 1, "A" } } }
      Buffer.from([0x0a, 0x0b, 0x12, 0x09, 0x12, 0x07, 0x2a, 0x81, 0x80, 0x80, 0x80, 0x10, 0x41]),
    ],
    [
      'a string where a message belongs',
      new BinaryWriter().tag(1, WireType.Varint).int32(7).finish(),
    ],
  ])('rejects %s with 400 and a protobuf Status', async (_name, body) => {
    const res = await send(body, { 'content-type': 'application/x-protobuf' });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/x-protobuf');
    const status = decodeStatus(new Uint8Array(await res.arrayBuffer()));
    expect(status.code).toBe(3);
    expect(status.message).toMatch(/protobuf|wire type|truncated|overruns/);
    expect(await rows()).toHaveLength(0);
  });

  it('refuses a span with a bad id alone, by the same rules as JSON, and stores the others', async () => {
    const [first, second] = makeSpans();
    const broken = {
      ...first!,
      spanContext: () => ({ ...first!.spanContext(), traceId: '0'.repeat(32) }),
    } as ReadableSpan;
    const res = await send(ProtobufTraceSerializer.serializeRequest([broken, second!])!, {
      'content-type': 'application/x-protobuf',
    });
    expect(res.status).toBe(200);
    const answer = ProtobufTraceSerializer.deserializeResponse(
      new Uint8Array(await res.arrayBuffer()),
    );
    expect(Number(answer.partialSuccess?.rejectedSpans)).toBe(1);
    expect(answer.partialSuccess?.errorMessage).toMatch(/traceId: an all-zero id is invalid/);
    expect(await rows()).toHaveLength(1);
  });

  it('answers gzip bombs beyond the size cap with 413', async () => {
    const bomb = gzipSync(Buffer.alloc(25 * 1024 * 1024));
    const res = await send(bomb, {
      'content-type': 'application/x-protobuf',
      'content-encoding': 'gzip',
    });
    expect(res.status).toBe(413);
  });
});
