import { OtlpDecodeError, validateTraceRequest } from './otlp-request.js';
import type { ExportTraceRequest } from './otlp-request.js';
import { checkJsonEntries } from './request-limits.js';
import type { RequestLimits } from './request-limits.js';

/**
 * OTLP/HTTP JSON trace requests (ExportTraceServiceRequest), as sent by
 * @opentelemetry/exporter-trace-otlp-http and other SDKs: lowerCamelCase keys (the proto names,
 * `trace_id`, are read too), hex ids, integer enums, 64-bit integers as decimal strings or JSON
 * numbers. Unknown fields are ignored.
 */

export { OtlpDecodeError, validateTraceRequest };
export type { AnyValue, ExportTraceRequest, KeyValue, OtlpSpan } from './otlp-request.js';

/**
 * JSON numbers above 2^53 lose precision in JSON.parse. Before parsing, every integer literal of
 * 16 or more digits that stands outside a string is wrapped in quotes, so nanosecond timestamps
 * and int64 attribute values survive exactly. A scan rather than a regex: a regex alternation
 * over string contents recurses per character and overflows the stack on a multi-megabyte string.
 */
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
const PLUS = 0x2b;
const MIN_QUOTED_DIGITS = 16;
// Cheap pre-check: a number literal follows `:`, `[` or `,`. SDKs that quote their int64s (the
// OpenTelemetry JS exporter does) never pay for the scan; a string that merely looks like one
// only costs that scan, never correctness.
const HAS_LONG_INTEGER = /[:[,]\s*-?\d{16}/;

const isDigit = (code: number): boolean => code >= ZERO && code <= NINE;

/** The index just past the string whose opening quote is at `open` (or the text's length). */
function stringEnd(text: string, open: number): number {
  let close = text.indexOf('"', open + 1);
  while (close !== -1) {
    let backslashes = 0;
    while (text.charCodeAt(close - 1 - backslashes) === BACKSLASH) backslashes++;
    // An even run of backslashes escapes itself, not the quote.
    if (backslashes % 2 === 0) return close + 1;
    close = text.indexOf('"', close + 1);
  }
  return text.length;
}

function digitsEnd(text: string, from: number): number {
  let i = from;
  while (isDigit(text.charCodeAt(i))) i++;
  return i;
}

/** The index just past a fraction and exponent (`.5e-3`) starting at `from`, if any. */
function fractionAndExponentEnd(text: string, from: number): number {
  let i = from;
  if (text.charCodeAt(i) === DOT) i = digitsEnd(text, i + 1);
  const code = text.charCodeAt(i);
  if (code === LOWER_E || code === UPPER_E) {
    const sign = text.charCodeAt(i + 1);
    i = digitsEnd(text, sign === PLUS || sign === MINUS ? i + 2 : i + 1);
  }
  return i;
}

function quoteLongIntegers(text: string): string {
  let quoted = '';
  let copiedUpTo = 0;
  let i = 0;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    if (code === QUOTE) {
      i = stringEnd(text, i);
    } else if (code === MINUS || isDigit(code)) {
      const start = i;
      const firstDigit = code === MINUS ? i + 1 : i;
      const end = digitsEnd(text, firstDigit);
      i = fractionAndExponentEnd(text, end);
      // A leading zero makes the literal invalid JSON: left as it is, so JSON.parse refuses it.
      const isLongInteger =
        i === end && end - firstDigit >= MIN_QUOTED_DIGITS && text.charCodeAt(firstDigit) !== ZERO;
      if (isLongInteger) {
        quoted += `${text.slice(copiedUpTo, start)}"${text.slice(start, end)}"`;
        copiedUpTo = end;
      }
    } else {
      i++;
    }
  }
  return copiedUpTo === 0 ? text : quoted + text.slice(copiedUpTo);
}

export function parseJsonPreservingInt64(text: string): unknown {
  return JSON.parse(HAS_LONG_INTEGER.test(text) ? quoteLongIntegers(text) : text);
}

/**
 * Decodes an OTLP/HTTP JSON body. Throws OtlpDecodeError with a message naming the bad field, or
 * RequestLimitError naming the limit the request crosses (checked before parsing, on the bytes).
 */
export function decodeTraceRequestJson(
  body: string | Uint8Array,
  limits?: RequestLimits,
): ExportTraceRequest {
  if (limits)
    checkJsonEntries(typeof body === 'string' ? Buffer.from(body) : body, limits.maxEntries);
  const raw =
    typeof body === 'string'
      ? body
      : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  // A byte order mark is allowed before JSON text (RFC 8259, 8.1) and is not part of it.
  const text = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
  let json: unknown;
  try {
    json = parseJsonPreservingInt64(text);
  } catch (error) {
    throw new OtlpDecodeError(`the body is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return validateTraceRequest(json, limits);
}
