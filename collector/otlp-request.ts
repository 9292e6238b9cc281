/**
 * The checked shape of an OTLP ExportTraceServiceRequest, and the checker both encodings go through
 * (protobuf bodies are decoded into the OTLP/JSON object shape first).
 *
 * Hand-written rather than a zod schema: this runs for every span and every attribute, and a
 * recursive zod schema (lazy AnyValue with transforms) cost ~130 µs per span here, a tenth of the
 * collector's budget at the embedded engine's ingest rate. Messages name the field as zod would
 * (`resourceSpans.0.scopeSpans.0.spans.3.traceId: …`). Unknown fields are ignored; `null` counts
 * as absent (proto3 JSON mapping).
 */

import { OtlpDecodeError, limitExceeded } from './otlp-errors.js';
import type { RequestLimits } from './otlp-errors.js';

export { OtlpDecodeError };

export type AnyValue =
  | { kind: 'string'; value: string }
  | { kind: 'bool'; value: boolean }
  | { kind: 'int'; value: string }
  | { kind: 'double'; value: number }
  | { kind: 'array'; value: AnyValue[] }
  | { kind: 'kvlist'; value: KeyValue[] }
  | { kind: 'bytes'; value: string }
  | { kind: 'empty' };

export interface KeyValue {
  key: string;
  value: AnyValue;
}

export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: KeyValue[];
  status: { code: number; message: string };
  /**
   * Why the span is refused on its own (a trace or span id that is not one): the rest of the
   * request is stored, and the answer counts it as a partial success. Its other fields are empty.
   */
  invalid?: string;
}

export interface ExportTraceRequest {
  resourceSpans: {
    resource?: { attributes: KeyValue[] };
    scopeSpans: { scope?: { name?: string; version?: string }; spans: OtlpSpan[] }[];
  }[];
  /**
   * Why the first span refused alone was (`OtlpSpan.invalid`): the reason an answer gives, the
   * same whichever pass over a split request counts that span.
   */
  firstInvalid?: string;
}

/** Attribute values nested deeper than this (arrays in kvlists in arrays …) are refused. */
const MAX_DEPTH = 32;
const TRACE_ID = /^[0-9a-fA-F]{32}$/;
const SPAN_ID = /^[0-9a-fA-F]{16}$/;
const INT = /^-?\d+$/;
const UINT = /^\d+$/;
// Decimal only: Number() would also take "0x1f", "" and " 1 ", which no encoder sends.
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const NON_FINITE = new Set(['NaN', 'Infinity', '-Infinity']);
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);

type Json = Record<string, unknown>;

/**
 * Proto3's JSON mapping has parsers accept a field's original name as well as its lowerCamelCase
 * one: OTLP exporters send `traceId`, but a hand-written or converted payload may say `trace_id`
 * (the OpenTelemetry Collector takes both). The names of more than one word, by their JSON name.
 */
const PROTO_NAMES: Readonly<Record<string, string>> = {
  stringValue: 'string_value',
  boolValue: 'bool_value',
  intValue: 'int_value',
  doubleValue: 'double_value',
  arrayValue: 'array_value',
  kvlistValue: 'kvlist_value',
  bytesValue: 'bytes_value',
  parentSpanId: 'parent_span_id',
  traceId: 'trace_id',
  spanId: 'span_id',
  startTimeUnixNano: 'start_time_unix_nano',
  endTimeUnixNano: 'end_time_unix_nano',
  resourceSpans: 'resource_spans',
  scopeSpans: 'scope_spans',
};

/** A field by its JSON name, else by its proto name. */
function field(value: Json, name: string): unknown {
  const found = value[name];
  if (found !== undefined && found !== null) return found;
  const proto = PROTO_NAMES[name];
  return proto === undefined ? found : value[proto];
}

/**
 * A span's id that is not one (wrong length, not hex, all zero): that span is refused alone. An
 * instrumentation gets one span's ids wrong, and an exporter does not retry a 400: failing the
 * whole request would lose every other span of the batch with it.
 */
class InvalidIdError extends OtlpDecodeError {}

function invalid(path: string, message: string): never {
  throw new OtlpDecodeError(
    `the body is not an OTLP ExportTraceServiceRequest: ${path ? `${path}: ` : ''}${message}`,
  );
}

const isAbsent = (value: unknown): value is null | undefined =>
  value === undefined || value === null;

function object(value: unknown, path: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    invalid(path, `expected an object, got ${describe(value)}`);
  }
  return value as Json;
}

function array(value: unknown, path: string): unknown[] {
  if (isAbsent(value)) return [];
  if (!Array.isArray(value)) invalid(path, `expected an array, got ${describe(value)}`);
  return value;
}

function optionalString(value: unknown, path: string, fallback = ''): string {
  if (isAbsent(value)) return fallback;
  if (typeof value !== 'string') invalid(path, `expected a string, got ${describe(value)}`);
  return value;
}

/**
 * An enum field: an int32. Proto3 enums are open, so a value this version does not know (a span
 * kind or status code added later) is kept, and read as unspecified or unset (normalize.ts).
 */
function enumValue(value: unknown, path: string): number {
  if (isAbsent(value)) return 0;
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    value < -(2 ** 31) ||
    value >= 2 ** 31
  ) {
    invalid(path, `expected an integer (an enum value), got ${describe(value)}`);
  }
  return value;
}

/** A 64-bit integer: a decimal string, or a JSON number (exact when it was quoted before parsing). */
function int64(value: unknown, path: string, unsigned: boolean): string {
  // An absent field is its default, as in protobuf (a span without a start is then out of window).
  if (isAbsent(value)) return '0';
  if (typeof value === 'string' && (unsigned ? UINT : INT).test(value)) return value;
  // Long integers arrive quoted (parseJsonPreservingInt64); a number here must be exact.
  if (typeof value === 'number' && Number.isSafeInteger(value) && (!unsigned || value >= 0)) {
    return String(value);
  }
  return invalid(
    path,
    `expected a ${unsigned ? 'non-negative ' : ''}decimal integer, got ${describe(value)}`,
  );
}

/** A double: a JSON number, or a string as the proto3 JSON mapping allows ("1.5", "1e3", "NaN"). */
function double(value: unknown, path: string): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && (DECIMAL.test(value) || NON_FINITE.has(value))) {
    return Number(value);
  }
  return invalid(path, `expected a number or a numeric string, got ${describe(value)}`);
}

function id(value: unknown, path: string, pattern: RegExp, zero: string, bytes: number): string {
  if (typeof value !== 'string' || !pattern.test(value)) {
    throw new InvalidIdError(
      `${path}: expected ${bytes * 2} hex characters (${bytes} bytes), got ${describe(value)}`,
    );
  }
  const lower = value.toLowerCase();
  if (lower === zero) throw new InvalidIdError(`${path}: an all-zero id is invalid`);
  return lower;
}

function anyValue(value: unknown, path: string, depth: number): AnyValue {
  if (isAbsent(value)) return { kind: 'empty' };
  if (depth > MAX_DEPTH) invalid(path, `attribute values nest deeper than ${MAX_DEPTH} levels`);
  const v = object(value, path);
  const text = field(v, 'stringValue');
  if (!isAbsent(text))
    return { kind: 'string', value: optionalString(text, `${path}.stringValue`) };
  const bool = field(v, 'boolValue');
  if (!isAbsent(bool)) {
    if (typeof bool !== 'boolean')
      invalid(`${path}.boolValue`, `expected a boolean, got ${describe(bool)}`);
    return { kind: 'bool', value: bool };
  }
  const int = field(v, 'intValue');
  if (!isAbsent(int)) return { kind: 'int', value: int64(int, `${path}.intValue`, false) };
  const dbl = field(v, 'doubleValue');
  if (!isAbsent(dbl)) return { kind: 'double', value: double(dbl, `${path}.doubleValue`) };
  const arrayValue = field(v, 'arrayValue');
  if (!isAbsent(arrayValue)) {
    const list = object(arrayValue, `${path}.arrayValue`);
    const items = array(list['values'], `${path}.arrayValue.values`);
    return {
      kind: 'array',
      value: items.map((item, i) => anyValue(item, `${path}.arrayValue.values.${i}`, depth + 1)),
    };
  }
  const kvlistValue = field(v, 'kvlistValue');
  if (!isAbsent(kvlistValue)) {
    const list = object(kvlistValue, `${path}.kvlistValue`);
    const items = array(list['values'], `${path}.kvlistValue.values`);
    return {
      kind: 'kvlist',
      value: items.map((item, i) => keyValue(item, `${path}.kvlistValue.values.${i}`, depth + 1)),
    };
  }
  const bytes = field(v, 'bytesValue');
  if (!isAbsent(bytes))
    return { kind: 'bytes', value: optionalString(bytes, `${path}.bytesValue`) };
  return { kind: 'empty' };
}

function keyValue(value: unknown, path: string, depth: number): KeyValue {
  const kv = object(value, path);
  if (typeof kv['key'] !== 'string')
    invalid(`${path}.key`, `expected a string, got ${describe(kv['key'])}`);
  return { key: kv['key'], value: anyValue(kv['value'], `${path}.value`, depth) };
}

function attributes(value: unknown, path: string): KeyValue[] {
  const items = array(value, path);
  const out = new Array<KeyValue>(items.length);
  for (let i = 0; i < items.length; i++) out[i] = keyValue(items[i], `${path}.${i}`, 0);
  return out;
}

function span(value: unknown, path: string): OtlpSpan {
  const s = object(value, path);
  const parent = field(s, 'parentSpanId');
  let parentSpanId = '';
  if (!isAbsent(parent) && parent !== '') {
    parentSpanId = id(parent, `${path}.parentSpanId`, SPAN_ID, '', 8);
    // Some exporters write an all-zero parent for a root span: it has no parent.
    if (parentSpanId === ZERO_SPAN_ID) parentSpanId = '';
  }
  const status = isAbsent(s['status']) ? {} : object(s['status'], `${path}.status`);
  return {
    traceId: id(field(s, 'traceId'), `${path}.traceId`, TRACE_ID, ZERO_TRACE_ID, 16),
    spanId: id(field(s, 'spanId'), `${path}.spanId`, SPAN_ID, ZERO_SPAN_ID, 8),
    parentSpanId,
    name: optionalString(s['name'], `${path}.name`),
    kind: enumValue(s['kind'], `${path}.kind`),
    startTimeUnixNano: int64(field(s, 'startTimeUnixNano'), `${path}.startTimeUnixNano`, true),
    endTimeUnixNano: int64(field(s, 'endTimeUnixNano'), `${path}.endTimeUnixNano`, true),
    attributes: attributes(s['attributes'], `${path}.attributes`),
    status: {
      code: enumValue(status['code'], `${path}.status.code`),
      message: optionalString(status['message'], `${path}.status.message`),
    },
  };
}

/**
 * Checks a request in the OTLP/JSON object shape; throws OtlpDecodeError naming the bad field,
 * or RequestLimitError when it holds more spans or resources than `limits` allow (the entry
 * count is checked before parsing, see checkJsonEntries).
 */
export function validateTraceRequest(
  json: unknown,
  limits?: Pick<RequestLimits, 'maxSpans' | 'maxResources'>,
): ExportTraceRequest {
  const request = object(json, '');
  const resources = array(field(request, 'resourceSpans'), 'resourceSpans');
  if (limits && resources.length > limits.maxResources) {
    throw limitExceeded('maxResources', limits.maxResources);
  }
  let spanCount = 0;
  let firstInvalid: string | undefined;
  const resourceSpans = resources.map((rsValue, r) => {
    const rPath = `resourceSpans.${r}`;
    const rs = object(rsValue, rPath);
    const resource = isAbsent(rs['resource'])
      ? undefined
      : {
          attributes: attributes(
            object(rs['resource'], `${rPath}.resource`)['attributes'],
            `${rPath}.resource.attributes`,
          ),
        };
    return {
      ...(resource ? { resource } : {}),
      scopeSpans: array(field(rs, 'scopeSpans'), `${rPath}.scopeSpans`).map((ssValue, s) => {
        const sPath = `${rPath}.scopeSpans.${s}`;
        const ss = object(ssValue, sPath);
        let scope: { name?: string; version?: string } | undefined;
        if (!isAbsent(ss['scope'])) {
          const sc = object(ss['scope'], `${sPath}.scope`);
          scope = {};
          if (!isAbsent(sc['name'])) scope.name = optionalString(sc['name'], `${sPath}.scope.name`);
          if (!isAbsent(sc['version']))
            scope.version = optionalString(sc['version'], `${sPath}.scope.version`);
        }
        const spans = array(ss['spans'], `${sPath}.spans`);
        spanCount += spans.length;
        if (limits && spanCount > limits.maxSpans) {
          throw limitExceeded('maxSpans', limits.maxSpans);
        }
        const checked = new Array<OtlpSpan>(spans.length);
        for (let i = 0; i < spans.length; i++) {
          try {
            checked[i] = span(spans[i], `${sPath}.spans.${i}`);
          } catch (error) {
            if (!(error instanceof InvalidIdError)) throw error;
            checked[i] = refusedSpan(error.message);
            firstInvalid ??= error.message;
          }
        }
        return { ...(scope ? { scope } : {}), spans: checked };
      }),
    };
  });
  return { resourceSpans, ...(firstInvalid !== undefined ? { firstInvalid } : {}) };
}

/** A placeholder for a span refused alone: only its position and the reason are kept. */
function refusedSpan(reason: string): OtlpSpan {
  return {
    traceId: '',
    spanId: '',
    parentSpanId: '',
    name: '',
    kind: 0,
    startTimeUnixNano: '0',
    endTimeUnixNano: '0',
    attributes: [],
    status: { code: 0, message: '' },
    invalid: reason,
  };
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value);
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}
