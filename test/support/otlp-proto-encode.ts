import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { WireType } from '@bufbuild/protobuf/wire';

/**
 * An OTLP/JSON-shaped request (as otlpBody makes it) encoded as OTLP protobuf, every AnyValue kind
 * included (kvlists and bytes, which the SDK's own serializer never writes from span attributes),
 * so that tests can send the same request both ways. Hex ids become bytes; int64 strings varints.
 */

type Json = Record<string, unknown>;

const bytesOf = (hex: unknown) => Buffer.from(typeof hex === 'string' ? hex : '', 'hex');

/**
 * The fields of an AnyValue in the key order of its object, so that a test can put two of the
 * oneof's fields on the wire in either order.
 */
function anyValue(w: BinaryWriter, value: Json): void {
  for (const [field, v] of Object.entries(value)) {
    if (v === undefined) continue;
    switch (field) {
      case 'stringValue':
        w.tag(1, WireType.LengthDelimited).string(v as string);
        break;
      case 'boolValue':
        w.tag(2, WireType.Varint).bool(v as boolean);
        break;
      case 'intValue':
        w.tag(3, WireType.Varint).int64(BigInt(v as string | number));
        break;
      case 'doubleValue':
        w.tag(4, WireType.Bit64).double(Number(v));
        break;
      case 'arrayValue':
        valueList(w, 5, v as Json, anyValue);
        break;
      case 'kvlistValue':
        valueList(w, 6, v as Json, keyValue);
        break;
      case 'bytesValue':
        w.tag(7, WireType.LengthDelimited).bytes(Buffer.from(v as string, 'base64'));
        break;
    }
  }
}

/** An ArrayValue or KeyValueList: its `values`, each a message of field 1. */
function valueList(
  w: BinaryWriter,
  field: number,
  list: Json,
  write: (w: BinaryWriter, item: Json) => void,
): void {
  w.tag(field, WireType.LengthDelimited).fork();
  for (const item of (list['values'] ?? []) as Json[]) {
    w.tag(1, WireType.LengthDelimited).fork();
    write(w, item);
    w.join();
  }
  w.join();
}

function keyValue(w: BinaryWriter, kv: Json): void {
  w.tag(1, WireType.LengthDelimited).string(kv['key'] as string);
  if (kv['value'] !== undefined) {
    w.tag(2, WireType.LengthDelimited).fork();
    anyValue(w, kv['value'] as Json);
    w.join();
  }
}

function attributes(w: BinaryWriter, field: number, list: unknown): void {
  for (const kv of (list ?? []) as Json[]) {
    w.tag(field, WireType.LengthDelimited).fork();
    keyValue(w, kv);
    w.join();
  }
}

function span(w: BinaryWriter, s: Json): void {
  w.tag(1, WireType.LengthDelimited).bytes(bytesOf(s['traceId']));
  w.tag(2, WireType.LengthDelimited).bytes(bytesOf(s['spanId']));
  if (s['parentSpanId']) w.tag(4, WireType.LengthDelimited).bytes(bytesOf(s['parentSpanId']));
  if (s['name'] !== undefined) w.tag(5, WireType.LengthDelimited).string(s['name'] as string);
  if (s['kind'] !== undefined) w.tag(6, WireType.Varint).int32(s['kind'] as number);
  w.tag(7, WireType.Bit64).fixed64(BigInt(s['startTimeUnixNano'] as string));
  w.tag(8, WireType.Bit64).fixed64(BigInt(s['endTimeUnixNano'] as string));
  attributes(w, 9, s['attributes']);
  const status = s['status'] as Json | undefined;
  if (status) {
    w.tag(15, WireType.LengthDelimited).fork();
    if (status['message'] !== undefined)
      w.tag(2, WireType.LengthDelimited).string(status['message'] as string);
    if (status['code'] !== undefined) w.tag(3, WireType.Varint).int32(status['code'] as number);
    w.join();
  }
}

export function encodeRequestProto(request: unknown): Uint8Array {
  const w = new BinaryWriter();
  for (const rs of ((request as Json)['resourceSpans'] ?? []) as Json[]) {
    w.tag(1, WireType.LengthDelimited).fork();
    const resource = rs['resource'] as Json | undefined;
    if (resource) {
      w.tag(1, WireType.LengthDelimited).fork();
      attributes(w, 1, resource['attributes']);
      w.join();
    }
    for (const ss of (rs['scopeSpans'] ?? []) as Json[]) {
      w.tag(2, WireType.LengthDelimited).fork();
      const scope = ss['scope'] as Json | undefined;
      if (scope) {
        w.tag(1, WireType.LengthDelimited).fork();
        if (scope['name'] !== undefined)
          w.tag(1, WireType.LengthDelimited).string(scope['name'] as string);
        if (scope['version'] !== undefined)
          w.tag(2, WireType.LengthDelimited).string(scope['version'] as string);
        w.join();
      }
      for (const s of (ss['spans'] ?? []) as Json[]) {
        w.tag(2, WireType.LengthDelimited).fork();
        span(w, s);
        w.join();
      }
      w.join();
    }
    w.join();
  }
  return w.finish();
}
