import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { OtlpDecodeError, validateTraceRequest } from './otlp-json.js';
import type { ExportTraceRequest } from './otlp-json.js';
import { EntryBudget } from './request-limits.js';
import type { RequestLimits } from './request-limits.js';

/**
 * OTLP/HTTP protobuf trace requests. The wire format is read field by field (field numbers from
 * opentelemetry-proto, trace subset) into the OTLP/JSON object shape — hex ids, 64-bit integers as
 * decimal strings — and then checked by the same rules as JSON bodies. Unknown fields are skipped.
 * Every message decoded is counted against the request's limits, so no body shape can make the
 * decoder build more than a bounded number of objects.
 */

type Json = Record<string, unknown>;

/** Deeper nesting than this in AnyValue arrays/kvlists is refused rather than recursed into. */
const MAX_DEPTH = 32;

/** No limits: for callers that bound the body some other way (tests, tools). */
const UNLIMITED: RequestLimits = {
  maxSpans: Number.POSITIVE_INFINITY,
  maxEntries: Number.POSITIVE_INFINITY,
  maxResources: Number.POSITIVE_INFINITY,
};

const toHex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

/**
 * bufbuild's reader, with every length prefix held to 32 bits. Its `uint32()` drops the bits
 * above, so a length of 2^32 would read as 0: an unknown field, a string or a message would be
 * taken as empty and the rest of the body read from the wrong place, instead of refused.
 */
class OtlpReader extends BinaryReader {
  readonly #body: Uint8Array;

  constructor(body: Uint8Array) {
    super(body);
    this.#body = body;
  }

  /** A length prefix, whole; throws when it does not fit in 32 bits or overruns the body. */
  length(field: string): number {
    const start = this.pos;
    const length = this.uint32();
    const size = this.pos - start;
    if (size > 5 || (size === 5 && this.#body[start + 4]! > 0x0f))
      throw new OtlpDecodeError(`protobuf field ${field} has a length beyond 32 bits`);
    if (this.pos + length > this.len)
      throw new OtlpDecodeError(`protobuf field ${field} is truncated`);
    return length;
  }

  /** Checks the prefix, then lets the base class read from where it started. */
  #checked(field: string): void {
    const start = this.pos;
    this.length(field);
    this.pos = start;
  }

  // The recursion limit passed on as given: groups nested in groups come back through here.
  override skip(wireType: WireType, fieldNo?: number, recursionLimit?: number): Uint8Array {
    if (wireType === WireType.LengthDelimited) this.#checked(`${fieldNo ?? '?'} (unknown)`);
    return super.skip(wireType, fieldNo, recursionLimit);
  }

  override string(): string {
    this.#checked('of type string');
    return super.string();
  }

  override bytes(): Uint8Array {
    this.#checked('of type bytes');
    return super.bytes();
  }
}

function expect(wireType: WireType, wanted: WireType, field: string): void {
  if (wireType !== wanted) {
    throw new OtlpDecodeError(
      `protobuf field ${field} has wire type ${wireType}, expected ${wanted}`,
    );
  }
}

/** Reads the fields of one length-delimited message, calling `onField` for each. */
function readMessage(
  reader: OtlpReader,
  end: number,
  onField: (fieldNo: number, wireType: WireType) => boolean,
): void {
  while (reader.pos < end) {
    const [fieldNo, wireType] = reader.tag();
    if (!onField(fieldNo, wireType)) reader.skip(wireType, fieldNo);
  }
  if (reader.pos !== end)
    throw new OtlpDecodeError('a protobuf message overruns its declared length');
}

function nested(reader: OtlpReader, wireType: WireType, field: string): number {
  expect(wireType, WireType.LengthDelimited, field);
  const length = reader.length(field);
  return reader.pos + length;
}

function anyValue(reader: OtlpReader, end: number, depth: number, budget: EntryBudget): Json {
  budget.entry();
  if (depth > MAX_DEPTH)
    throw new OtlpDecodeError(`attribute values nest deeper than ${MAX_DEPTH} levels`);
  // The fields are a oneof: the last one on the wire wins, as protobuf's own parsers have it.
  let value: Json = {};
  readMessage(reader, end, (fieldNo, wireType) => {
    switch (fieldNo) {
      case 1:
        expect(wireType, WireType.LengthDelimited, 'AnyValue.string_value');
        value = { stringValue: reader.string() };
        return true;
      case 2:
        expect(wireType, WireType.Varint, 'AnyValue.bool_value');
        value = { boolValue: reader.bool() };
        return true;
      case 3:
        expect(wireType, WireType.Varint, 'AnyValue.int_value');
        value = { intValue: String(reader.int64()) };
        return true;
      case 4:
        expect(wireType, WireType.Bit64, 'AnyValue.double_value');
        value = { doubleValue: reader.double() };
        return true;
      case 5: {
        const arrayEnd = nested(reader, wireType, 'AnyValue.array_value');
        const values: Json[] = [];
        readMessage(reader, arrayEnd, (f, w) => {
          if (f !== 1) return false;
          values.push(anyValue(reader, nested(reader, w, 'ArrayValue.values'), depth + 1, budget));
          return true;
        });
        value = { arrayValue: { values } };
        return true;
      }
      case 6: {
        const listEnd = nested(reader, wireType, 'AnyValue.kvlist_value');
        const values: Json[] = [];
        readMessage(reader, listEnd, (f, w) => {
          if (f !== 1) return false;
          values.push(
            keyValue(reader, nested(reader, w, 'KeyValueList.values'), budget, depth + 1),
          );
          return true;
        });
        value = { kvlistValue: { values } };
        return true;
      }
      case 7:
        expect(wireType, WireType.LengthDelimited, 'AnyValue.bytes_value');
        value = { bytesValue: Buffer.from(reader.bytes()).toString('base64') };
        return true;
      default:
        return false;
    }
  });
  return value;
}

function keyValue(reader: OtlpReader, end: number, budget: EntryBudget, depth = 0): Json {
  budget.entry();
  const kv: Json = { key: '' };
  readMessage(reader, end, (fieldNo, wireType) => {
    if (fieldNo === 1) {
      expect(wireType, WireType.LengthDelimited, 'KeyValue.key');
      kv['key'] = reader.string();
      return true;
    }
    if (fieldNo === 2) {
      kv['value'] = anyValue(reader, nested(reader, wireType, 'KeyValue.value'), depth, budget);
      return true;
    }
    return false;
  });
  return kv;
}

function attributesInto(
  target: Json[],
  reader: OtlpReader,
  wireType: WireType,
  field: string,
  budget: EntryBudget,
): void {
  target.push(keyValue(reader, nested(reader, wireType, field), budget));
}

function span(reader: OtlpReader, end: number, budget: EntryBudget): Json {
  budget.span();
  const attributes: Json[] = [];
  const out: Json = { traceId: '', spanId: '', attributes };
  readMessage(reader, end, (fieldNo, wireType) => {
    switch (fieldNo) {
      case 1:
        expect(wireType, WireType.LengthDelimited, 'Span.trace_id');
        out['traceId'] = toHex(reader.bytes());
        return true;
      case 2:
        expect(wireType, WireType.LengthDelimited, 'Span.span_id');
        out['spanId'] = toHex(reader.bytes());
        return true;
      case 4:
        expect(wireType, WireType.LengthDelimited, 'Span.parent_span_id');
        out['parentSpanId'] = toHex(reader.bytes());
        return true;
      case 5:
        expect(wireType, WireType.LengthDelimited, 'Span.name');
        out['name'] = reader.string();
        return true;
      case 6:
        expect(wireType, WireType.Varint, 'Span.kind');
        out['kind'] = reader.int32();
        return true;
      case 7:
        expect(wireType, WireType.Bit64, 'Span.start_time_unix_nano');
        out['startTimeUnixNano'] = String(reader.fixed64());
        return true;
      case 8:
        expect(wireType, WireType.Bit64, 'Span.end_time_unix_nano');
        out['endTimeUnixNano'] = String(reader.fixed64());
        return true;
      case 9:
        attributesInto(attributes, reader, wireType, 'Span.attributes', budget);
        return true;
      case 15: {
        const status: Json = {};
        readMessage(reader, nested(reader, wireType, 'Span.status'), (f, w) => {
          if (f === 2) {
            expect(w, WireType.LengthDelimited, 'Status.message');
            status['message'] = reader.string();
            return true;
          }
          if (f === 3) {
            expect(w, WireType.Varint, 'Status.code');
            status['code'] = reader.int32();
            return true;
          }
          return false;
        });
        out['status'] = status;
        return true;
      }
      default:
        return false;
    }
  });
  // A timestamp that never arrived is 0 on the wire (proto3 default), which the rules accept.
  out['startTimeUnixNano'] ??= '0';
  out['endTimeUnixNano'] ??= '0';
  return out;
}

/**
 * Decodes an OTLP/HTTP protobuf body. Throws OtlpDecodeError naming what is wrong, or
 * RequestLimitError naming the limit a request crosses.
 */
export function decodeTraceRequestProto(
  body: Uint8Array,
  limits: RequestLimits = UNLIMITED,
): ExportTraceRequest {
  const resourceSpans: Json[] = [];
  const budget = new EntryBudget(limits);
  try {
    const reader = new OtlpReader(body);
    readMessage(reader, reader.len, (fieldNo, wireType) => {
      if (fieldNo !== 1) return false;
      budget.resource();
      const resourceAttributes: Json[] = [];
      const scopeSpans: Json[] = [];
      readMessage(
        reader,
        nested(reader, wireType, 'ExportTraceServiceRequest.resource_spans'),
        (f, w) => {
          if (f === 1) {
            readMessage(reader, nested(reader, w, 'ResourceSpans.resource'), (rf, rw) => {
              if (rf !== 1) return false;
              attributesInto(resourceAttributes, reader, rw, 'Resource.attributes', budget);
              return true;
            });
            return true;
          }
          if (f !== 2) return false;
          budget.entry();
          const spans: Json[] = [];
          const scope: Json = {};
          readMessage(reader, nested(reader, w, 'ResourceSpans.scope_spans'), (sf, sw) => {
            if (sf === 1) {
              readMessage(reader, nested(reader, sw, 'ScopeSpans.scope'), (cf, cw) => {
                if (cf !== 1 && cf !== 2) return false;
                expect(cw, WireType.LengthDelimited, 'InstrumentationScope.name');
                scope[cf === 1 ? 'name' : 'version'] = reader.string();
                return true;
              });
              return true;
            }
            if (sf !== 2) return false;
            spans.push(span(reader, nested(reader, sw, 'ScopeSpans.spans'), budget));
            return true;
          });
          scopeSpans.push({ scope, spans });
          return true;
        },
      );
      resourceSpans.push({ resource: { attributes: resourceAttributes }, scopeSpans });
      return true;
    });
  } catch (error) {
    if (error instanceof OtlpDecodeError) throw error;
    throw new OtlpDecodeError(
      `the body is not a valid protobuf ExportTraceServiceRequest: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  return validateTraceRequest({ resourceSpans }, limits);
}

/** google.rpc.Status { code = 1, message = 2 } as protobuf bytes. */
export function encodeStatusProto(code: number, message: string): Uint8Array {
  return new BinaryWriter()
    .tag(1, WireType.Varint)
    .int32(code)
    .tag(2, WireType.LengthDelimited)
    .string(message)
    .finish();
}

/**
 * An ExportTraceServiceResponse: empty when everything was accepted, else its partial_success
 * (field 1) with rejected_spans (1) and error_message (2).
 */
export function encodeTraceResponseProto(rejectedSpans: number, errorMessage: string): Uint8Array {
  if (rejectedSpans === 0) return new Uint8Array(0);
  const partial = new BinaryWriter()
    .tag(1, WireType.Varint)
    .int64(rejectedSpans)
    .tag(2, WireType.LengthDelimited)
    .string(errorMessage)
    .finish();
  return new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(partial).finish();
}
