import { OtlpDecodeError, validateTraceRequest } from './otlp-request.js';
import type { ExportTraceRequest } from './otlp-request.js';

/**
 * OTLP/HTTP JSON trace requests (ExportTraceServiceRequest), as sent by
 * @opentelemetry/exporter-trace-otlp-http and other SDKs: lowerCamelCase keys, hex ids, integer
 * enums, 64-bit integers as decimal strings or JSON numbers. Unknown fields are ignored.
 */

export { OtlpDecodeError, validateTraceRequest };
export type { AnyValue, ExportTraceRequest, KeyValue, OtlpSpan } from './otlp-request.js';

/**
 * JSON numbers above 2^53 lose precision in JSON.parse. Before parsing, wrap every integer
 * literal of 16 or more digits that stands outside a string in quotes, so nanosecond timestamps
 * and int64 attribute values survive exactly. Strings are matched first so their contents are
 * never touched.
 */
const LONG_INTEGER_OR_STRING = /"(?:[^"\\]|\\.)*"|(?<![\d.eE+-])-?\d{16,}(?![\d.eE])/g;
// Cheap pre-check: a number literal follows `:`, `[` or `,`. SDKs that quote their int64s (the
// OpenTelemetry JS exporter does) never pay for the full pass; a string that merely looks like
// one only costs that pass, never correctness.
const HAS_LONG_INTEGER = /[:[,]\s*-?\d{16}/;

export function parseJsonPreservingInt64(text: string): unknown {
  const safe = HAS_LONG_INTEGER.test(text)
    ? text.replace(LONG_INTEGER_OR_STRING, (match) =>
        match.charCodeAt(0) === 34 ? match : `"${match}"`,
      )
    : text;
  return JSON.parse(safe);
}

/** Decodes an OTLP/HTTP JSON body. Throws OtlpDecodeError with a message naming the bad field. */
export function decodeTraceRequestJson(text: string): ExportTraceRequest {
  let json: unknown;
  try {
    json = parseJsonPreservingInt64(text);
  } catch (error) {
    throw new OtlpDecodeError(`the body is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return validateTraceRequest(json);
}
