import { BinaryReader } from '@bufbuild/protobuf/wire';
import { nsAfter } from './time.js';

let counter = 0;
/** A random-looking, valid hex id of `bytes` bytes, unique within the process. */
export function hexId(bytes: 16 | 8, seed = ++counter): string {
  return (seed.toString(16).padStart(8, '0') + 'a1b2c3d4e5f60718293a4b5c6d7e8f90').slice(
    0,
    bytes * 2,
  );
}

export interface TestSpan {
  traceId?: string;
  spanId?: string;
  parentSpanId?: string;
  name?: string;
  kind?: number;
  start?: string;
  end?: string;
  attributes?: Record<string, string | number | boolean>;
  status?: { code: number; message?: string };
}

/** The attributes of a small routed LLM call: enough for the collector to store the span. */
export const LLM_ATTRIBUTES: Readonly<Record<string, string | number>> = Object.freeze({
  'routewatch.cohort': 'faq',
  'routewatch.route': 'small',
  'routewatch.attempt': 1,
  'gen_ai.request.model': 'gpt-4o-mini',
  'gen_ai.usage.input_tokens': 100,
});

/** An OTLP/HTTP JSON body, shaped as @opentelemetry/exporter-trace-otlp-http sends it. */
export function otlpBody(spans: TestSpan[], service = 'test-service'): Record<string, unknown> {
  const value = (v: string | number | boolean) =>
    typeof v === 'string'
      ? { stringValue: v }
      : typeof v === 'boolean'
        ? { boolValue: v }
        : Number.isInteger(v)
          ? { intValue: String(v) }
          : { doubleValue: v };
  return {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeSpans: [
          {
            scope: { name: 'test' },
            spans: spans.map((s) => ({
              traceId: s.traceId ?? hexId(16),
              spanId: s.spanId ?? hexId(8),
              ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
              name: s.name ?? 'chat gpt-4o-mini',
              kind: s.kind ?? 3,
              startTimeUnixNano: s.start ?? nsAfter(0, 1n),
              endTimeUnixNano: s.end ?? nsAfter(250, 3n),
              attributes: Object.entries(s.attributes ?? {}).map(([key, v]) => ({
                key,
                value: value(v),
              })),
              status: s.status ?? { code: 0 },
            })),
          },
        ],
      },
    ],
  };
}

/** A google.rpc.Status decoded from protobuf bytes (an OTLP/HTTP error body). */
export function decodeStatus(bytes: Uint8Array): { code: number; message: string } {
  const reader = new BinaryReader(bytes);
  const status = { code: 0, message: '' };
  while (reader.pos < reader.len) {
    const [field, wire] = reader.tag();
    if (field === 1) status.code = reader.int32();
    else if (field === 2) status.message = reader.string();
    else reader.skip(wire);
  }
  return status;
}
