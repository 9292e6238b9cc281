import type { Mapping } from './mapping.js';
import { LANGFUSE_TYPE, VERCEL_OPERATION, WHOLE_REQUEST, isRelevantBy } from './normalize.js';
import type { RequestRows, SpanFields, SpanPart } from './normalize.js';
import type { RequestLimits } from './request-limits.js';

const ZERO_PARENT = '0'.repeat(16);

/**
 * OTLP/HTTP protobuf trace requests decoded straight into `spans` rows: no object tree of the
 * request, no attribute map for a span that is not stored. A span's attributes are first only
 * walked — each message counted against the request's limits and checked for its wire types, keys
 * compared as bytes with the prefixes that make a span relevant — and decoded into the span's map
 * only when the span is to be stored.
 *
 * This is the fast path of decodeTraceRequestProto + normalizeRequest and must give exactly their
 * rows and counts (test/unit/otlp-proto-rows.test.ts holds the two side by side). It takes only
 * what it understands: a body with anything else — a decoding error, a limit crossed, a field of
 * an unexpected wire type, an id of the wrong length, a group — makes it give up (returns
 * undefined), and the caller decodes the body the full way, which takes it or names what is wrong
 * with the same message as before.
 */

/** Thrown inside the decoder when the body needs the full decoder; never leaves this module. */
const GIVE_UP = new Error('the body needs the full protobuf decoder');

const VARINT = 0;
const BIT64 = 1;
const LENGTH_DELIMITED = 2;
const BIT32 = 5;

/** As the full decoder and checker: deeper nesting in AnyValue arrays/kvlists is refused. */
const MAX_DEPTH = 32;

const asciiBytes = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));
const PREFIX_ROUTEWATCH = asciiBytes('routewatch.');
const PREFIX_GEN_AI = asciiBytes('gen_ai.');
const PREFIX_LLM = asciiBytes('llm.');
const KEY_LANGFUSE_TYPE = asciiBytes(LANGFUSE_TYPE);
const KEY_VERCEL_OPERATION = asciiBytes(VERCEL_OPERATION);
/** First bytes of the keys above: any other key is passed over after one look-up. */
const MAY_MATTER = new Uint8Array(256);
for (const key of [
  PREFIX_ROUTEWATCH,
  PREFIX_GEN_AI,
  PREFIX_LLM,
  KEY_LANGFUSE_TYPE,
  KEY_VERCEL_OPERATION,
])
  MAY_MATTER[key[0]!] = 1;

// bufbuild's reader decodes non-ASCII strings with this (invalid sequences become U+FFFD).
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

const emptyMap = (): Record<string, string> => Object.create(null) as Record<string, string>;

/**
 * Buffer's own slice decoders, which `toString(encoding, start, end)` calls after checking its
 * arguments: called directly on the hot path (present in every Node version we support).
 */
interface BufferSlices {
  utf8Slice(start: number, end: number): string;
  hexSlice(start: number, end: number): string;
  base64Slice(start: number, end: number): string;
}

/**
 * Attribute keys decoded before, by a hash of their bytes: the same keys come back span after span,
 * and a key string seen before is also one the engine has already made a property name of.
 */
const KEY_CACHE = new Map<number, { bytes: Uint8Array; text: string }>();
const KEY_CACHE_SIZE = 4096;
const MAX_CACHED_KEY_BYTES = 96;

/** The JSON value of an AnyValue, as normalize.ts's toJson gives it. */
type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Where one KeyValue's key and value lie in the body (-1: absent). */
interface KeyValueAt {
  keyStart: number;
  keyEnd: number;
  valueStart: number;
  valueEnd: number;
}

class Decoder {
  readonly buf: Buffer;
  readonly slices: BufferSlices;
  readonly view: DataView;
  pos = 0;
  #entries = 0;
  #spans = 0;
  #resources = 0;
  readonly #limits: RequestLimits;
  readonly #out: RequestRows;
  readonly #mapping: Mapping | undefined;
  readonly #taskKeys: ReadonlySet<string>;
  /** The KeyValues of the span being decoded: reused from span to span. */
  readonly #kvs: KeyValueAt[] = [];
  #kvCount = 0;
  received = 0;

  readonly #part: SpanPart;

  constructor(
    body: Uint8Array,
    limits: RequestLimits,
    out: RequestRows,
    mapping: Mapping | undefined,
    part: SpanPart,
  ) {
    this.#part = part;
    this.buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    this.slices = this.buf as unknown as BufferSlices;
    this.view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    this.#limits = limits;
    this.#out = out;
    this.#mapping = mapping?.active ? mapping : undefined;
    this.#taskKeys = new Set(this.#mapping?.taskSpanAttributes ?? []);
  }

  // --- wire primitives: stricter than bufbuild's reader, never looser ---

  /** A varint of at most 32 bits (tags, lengths, enums); anything longer gives up. */
  varint32(end: number): number {
    const buf = this.buf;
    let pos = this.pos;
    // Within `end` with room for the longest form; otherwise byte by byte with bounds checks.
    if (pos + 5 > end) return this.varint32Near(end);
    let b = buf[pos++]!;
    let result = b & 0x7f;
    if (b >= 0x80) {
      b = buf[pos++]!;
      result |= (b & 0x7f) << 7;
      if (b >= 0x80) {
        b = buf[pos++]!;
        result |= (b & 0x7f) << 14;
        if (b >= 0x80) {
          b = buf[pos++]!;
          result |= (b & 0x7f) << 21;
          if (b >= 0x80) {
            b = buf[pos++]!;
            // The fifth byte holds the top 4 bits; more would not fit in 32.
            if (b > 0x0f) throw GIVE_UP;
            result = (result >>> 0) + b * 0x10000000;
          }
        }
      }
    }
    this.pos = pos;
    return result >>> 0;
  }

  /** varint32 near the end of a message: each byte checked against `end`. */
  varint32Near(end: number): number {
    const buf = this.buf;
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (this.pos >= end) throw GIVE_UP;
      const b = buf[this.pos++]!;
      if (shift === 28 && b > 0x0f) throw GIVE_UP;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
    }
    throw GIVE_UP;
  }

  /** Skips a varint of at most 10 bytes. */
  skipVarint(end: number): void {
    const buf = this.buf;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= end) throw GIVE_UP;
      if ((buf[this.pos++]! & 0x80) === 0) return;
    }
    throw GIVE_UP;
  }

  /** The end of a length-delimited field starting at `pos`, within `end`. */
  lengthEnd(end: number): number {
    const length = this.varint32(end);
    const fieldEnd = this.pos + length;
    if (fieldEnd > end) throw GIVE_UP;
    return fieldEnd;
  }

  skip(wireType: number, end: number): void {
    switch (wireType) {
      case VARINT:
        this.skipVarint(end);
        return;
      case BIT64:
        this.pos += 8;
        break;
      case LENGTH_DELIMITED:
        this.pos = this.lengthEnd(end);
        return;
      case BIT32:
        this.pos += 4;
        break;
      default:
        // Groups (3, 4) and wire types 6 and 7: left to the full decoder.
        throw GIVE_UP;
    }
    if (this.pos > end) throw GIVE_UP;
  }

  /** A tag: field number × 8 + wire type; gives up on field 0 and wire types above 5. */
  tag(end: number): number {
    const tag = this.varint32(end);
    if (tag < 8 || (tag & 7) > 5) throw GIVE_UP;
    return tag;
  }

  entry(): void {
    if (++this.#entries > this.#limits.maxEntries) throw GIVE_UP;
  }

  // --- strings and values, decoded only for spans that are stored ---

  string(start: number, end: number): string {
    if (start >= end) return '';
    const text = this.slices.utf8Slice(start, end);
    // Node and TextDecoder agree on valid UTF-8; for invalid bytes, decode exactly as bufbuild does.
    return text.includes('\uFFFD') ? utf8.decode(this.buf.subarray(start, end)) : text;
  }

  /** An attribute key: decoded as a string, or the same string as the last time these bytes came. */
  key(start: number, end: number): string {
    const length = end - start;
    if (start < 0 || length === 0) return '';
    if (length > MAX_CACHED_KEY_BYTES) return this.string(start, end);
    const buf = this.buf;
    let hash = length;
    for (let i = start; i < end; i++) hash = (Math.imul(hash, 31) + buf[i]!) | 0;
    const known = KEY_CACHE.get(hash);
    if (known !== undefined && this.bytesEqual(start, end, known.bytes)) return known.text;
    const text = this.string(start, end);
    if (KEY_CACHE.size >= KEY_CACHE_SIZE) KEY_CACHE.clear();
    KEY_CACHE.set(hash, { bytes: new Uint8Array(buf.subarray(start, end)), text });
    return text;
  }

  bytesEqual(start: number, end: number, expected: Uint8Array): boolean {
    if (end - start !== expected.length) return false;
    for (let i = 0; i < expected.length; i++) if (this.buf[start + i] !== expected[i]) return false;
    return true;
  }

  startsWith(start: number, end: number, prefix: Uint8Array): boolean {
    if (end - start < prefix.length) return false;
    for (let i = 0; i < prefix.length; i++) if (this.buf[start + i] !== prefix[i]) return false;
    return true;
  }

  /** An int64 varint (already checked) as a signed decimal, as bufbuild's reader gives it. */
  int64Text(start: number): string {
    const buf = this.buf;
    let value = 0;
    let i = start;
    // Up to 7 bytes (49 bits) a double holds it exactly.
    for (let shift = 0; shift < 49; shift += 7) {
      const b = buf[i++]!;
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return String(value);
    }
    let big = 0n;
    for (let j = 0, k = start; j < 10; j++, k++) {
      const b = buf[k]!;
      big |= BigInt(b & 0x7f) << BigInt(7 * j);
      if ((b & 0x80) === 0) break;
    }
    return String(BigInt.asIntN(64, big));
  }

  /** A bool varint (already checked): true when any of its bits is set. */
  boolAt(start: number): boolean {
    for (let i = start; ; i++) {
      const b = this.buf[i]!;
      if ((b & 0x7f) !== 0) return true;
      if ((b & 0x80) === 0) return false;
    }
  }

  /** The field valueField found (0: none), where its content starts and ends. */
  vField = 0;
  vAt = -1;
  vEnd = -1;

  /**
   * Finds the field of a checked AnyValue message that the checker would take. Its fields are a
   * oneof, so the last of them on the wire wins (1 string … 7 bytes; other field numbers are not
   * values). Leaves it in vField, vAt, vEnd.
   */
  valueField(start: number, end: number): void {
    let last = 0;
    let lastAt = -1;
    let lastEnd = -1;
    this.pos = start;
    while (this.pos < end) {
      const tag = this.tag(end);
      const field = tag >>> 3;
      const wireType = tag & 7;
      const fieldEnd = wireType === LENGTH_DELIMITED ? this.lengthEnd(end) : -1;
      const contentStart = this.pos;
      if (fieldEnd >= 0) this.pos = fieldEnd;
      else this.skip(wireType, end);
      if (field >= 1 && field <= 7) {
        last = field;
        lastAt = contentStart;
        lastEnd = this.pos;
      }
    }
    this.vField = last;
    this.vAt = lastAt;
    this.vEnd = lastEnd;
  }

  /** An attribute value flattened to the text stored in a map, as normalize.ts's flatten does. */
  flatten(start: number, end: number): string {
    if (start < 0) return '';
    this.valueField(start, end);
    const at = this.vAt;
    const fieldEnd = this.vEnd;
    switch (this.vField) {
      case 1:
        return this.string(at, fieldEnd);
      case 2:
        return this.boolAt(at) ? 'true' : 'false';
      case 3:
        return this.int64Text(at);
      case 4:
        return String(this.view.getFloat64(at, true));
      case 5:
        return JSON.stringify(this.arrayJson(at, fieldEnd));
      case 6:
        return JSON.stringify(this.kvlistJson(at, fieldEnd));
      case 7:
        return this.slices.base64Slice(at, fieldEnd);
      default:
        return '';
    }
  }

  valueJson(start: number, end: number): JsonValue {
    if (start < 0) return null;
    this.valueField(start, end);
    const at = this.vAt;
    const fieldEnd = this.vEnd;
    switch (this.vField) {
      case 1:
        return this.string(at, fieldEnd);
      case 2:
        return this.boolAt(at);
      case 3:
        return this.int64Text(at);
      case 4:
        return this.view.getFloat64(at, true);
      case 5:
        return this.arrayJson(at, fieldEnd);
      case 6:
        return this.kvlistJson(at, fieldEnd);
      case 7:
        return this.slices.base64Slice(at, fieldEnd);
      default:
        return null;
    }
  }

  arrayJson(start: number, end: number): JsonValue[] {
    const items: Array<[number, number]> = [];
    this.pos = start;
    while (this.pos < end) {
      const tag = this.tag(end);
      if (tag === ((1 << 3) | LENGTH_DELIMITED)) {
        const itemEnd = this.lengthEnd(end);
        items.push([this.pos, itemEnd]);
        this.pos = itemEnd;
      } else this.skip(tag & 7, end);
    }
    return items.map(([s, e]) => this.valueJson(s, e));
  }

  kvlistJson(start: number, end: number): { [key: string]: JsonValue } {
    const pairs: KeyValueAt[] = [];
    this.pos = start;
    while (this.pos < end) {
      const tag = this.tag(end);
      if (tag === ((1 << 3) | LENGTH_DELIMITED)) {
        const kvEnd = this.lengthEnd(end);
        pairs.push(this.keyValueAt(this.pos, kvEnd));
        this.pos = kvEnd;
      } else this.skip(tag & 7, end);
    }
    return Object.fromEntries(
      pairs.map((kv) => [
        this.key(kv.keyStart, kv.keyEnd),
        this.valueJson(kv.valueStart, kv.valueEnd),
      ]),
    );
  }

  /** Where a checked KeyValue's key and value lie (the last of each, as the full decoder keeps). */
  keyValueAt(start: number, end: number, into?: KeyValueAt): KeyValueAt {
    const kv = into ?? { keyStart: -1, keyEnd: -1, valueStart: -1, valueEnd: -1 };
    kv.keyStart = kv.keyEnd = kv.valueStart = kv.valueEnd = -1;
    this.pos = start;
    while (this.pos < end) {
      const tag = this.tag(end);
      if (tag === ((1 << 3) | LENGTH_DELIMITED) || tag === ((2 << 3) | LENGTH_DELIMITED)) {
        const fieldEnd = this.lengthEnd(end);
        if (tag >>> 3 === 1) {
          kv.keyStart = this.pos;
          kv.keyEnd = fieldEnd;
        } else {
          kv.valueStart = this.pos;
          kv.valueEnd = fieldEnd;
        }
        this.pos = fieldEnd;
      } else this.skip(tag & 7, end);
    }
    return kv;
  }

  // --- the walk: every message counted and checked, nothing decoded ---

  /** Walks one KeyValue (counted) and its value, recording where they lie in `kv`. */
  walkKeyValue(end: number, depth: number, kv: KeyValueAt | undefined): void {
    this.entry();
    while (this.pos < end) {
      const tag = this.tag(end);
      const field = tag >>> 3;
      if (field === 1) {
        if ((tag & 7) !== LENGTH_DELIMITED) throw GIVE_UP;
        const keyEnd = this.lengthEnd(end);
        if (kv) {
          kv.keyStart = this.pos;
          kv.keyEnd = keyEnd;
        }
        this.pos = keyEnd;
      } else if (field === 2) {
        if ((tag & 7) !== LENGTH_DELIMITED) throw GIVE_UP;
        const valueEnd = this.lengthEnd(end);
        if (kv) {
          kv.valueStart = this.pos;
          kv.valueEnd = valueEnd;
        }
        this.walkValue(valueEnd, depth);
      } else this.skip(tag & 7, end);
    }
    if (this.pos !== end) throw GIVE_UP;
  }

  /** Walks one AnyValue (counted), checking the wire type of each field it knows. */
  walkValue(end: number, depth: number): void {
    this.entry();
    if (depth > MAX_DEPTH) throw GIVE_UP;
    while (this.pos < end) {
      const tag = this.tag(end);
      const wireType = tag & 7;
      switch (tag >>> 3) {
        case 1:
        case 7:
          if (wireType !== LENGTH_DELIMITED) throw GIVE_UP;
          this.pos = this.lengthEnd(end);
          break;
        case 2:
        case 3:
          if (wireType !== VARINT) throw GIVE_UP;
          this.skipVarint(end);
          break;
        case 4:
          if (wireType !== BIT64) throw GIVE_UP;
          this.skip(BIT64, end);
          break;
        case 5:
        case 6: {
          if (wireType !== LENGTH_DELIMITED) throw GIVE_UP;
          const listEnd = this.lengthEnd(end);
          const isArray = tag >>> 3 === 5;
          while (this.pos < listEnd) {
            const itemTag = this.tag(listEnd);
            if (itemTag >>> 3 !== 1) {
              this.skip(itemTag & 7, listEnd);
              continue;
            }
            if ((itemTag & 7) !== LENGTH_DELIMITED) throw GIVE_UP;
            const itemEnd = this.lengthEnd(listEnd);
            if (isArray) this.walkValue(itemEnd, depth + 1);
            else this.walkKeyValue(itemEnd, depth + 1, undefined);
          }
          if (this.pos !== listEnd) throw GIVE_UP;
          break;
        }
        default:
          this.skip(wireType, end);
      }
    }
    if (this.pos !== end) throw GIVE_UP;
  }

  // --- the request ---

  request(): void {
    const end = this.buf.length;
    while (this.pos < end) {
      const tag = this.tag(end);
      if (tag >>> 3 !== 1) {
        this.skip(tag & 7, end);
        continue;
      }
      if ((tag & 7) !== LENGTH_DELIMITED) throw GIVE_UP;
      const resourceEnd = this.lengthEnd(end);
      this.resourceSpans(resourceEnd);
      this.pos = resourceEnd;
    }
  }

  resourceSpans(end: number): void {
    this.entry();
    if (++this.#resources > this.#limits.maxResources) throw GIVE_UP;
    // The resource may follow its spans, and may come twice (its attributes then add up): all of
    // it is read before any span.
    const resource = emptyMap();
    const scopeSpans: number[] = [];
    while (this.pos < end) {
      const tag = this.tag(end);
      const field = tag >>> 3;
      if (field === 1 || field === 2) {
        if ((tag & 7) !== LENGTH_DELIMITED) throw GIVE_UP;
        const fieldEnd = this.lengthEnd(end);
        if (field === 1) this.resource(fieldEnd, resource);
        else scopeSpans.push(this.pos, fieldEnd);
        this.pos = fieldEnd;
      } else this.skip(tag & 7, end);
    }
    for (let i = 0; i < scopeSpans.length; i += 2) {
      this.pos = scopeSpans[i]!;
      this.scopeSpans(scopeSpans[i + 1]!, resource);
    }
  }

  resource(end: number, into: Record<string, string>): void {
    const kv: KeyValueAt = { keyStart: -1, keyEnd: -1, valueStart: -1, valueEnd: -1 };
    while (this.pos < end) {
      const tag = this.tag(end);
      if (tag >>> 3 !== 1) {
        this.skip(tag & 7, end);
        continue;
      }
      if ((tag & 7) !== LENGTH_DELIMITED) throw GIVE_UP;
      const kvEnd = this.lengthEnd(end);
      kv.keyStart = kv.keyEnd = kv.valueStart = kv.valueEnd = -1;
      this.walkKeyValue(kvEnd, 0, kv);
      const key = this.key(kv.keyStart, kv.keyEnd);
      into[key] = this.flatten(kv.valueStart, kv.valueEnd);
      this.pos = kvEnd;
    }
    if (this.pos !== end) throw GIVE_UP;
  }

  scopeSpans(end: number, resource: Record<string, string>): void {
    this.entry();
    let nameStart = -1;
    let nameEnd = -1;
    const spans: number[] = [];
    while (this.pos < end) {
      const tag = this.tag(end);
      const field = tag >>> 3;
      if (field === 1) {
        if ((tag & 7) !== LENGTH_DELIMITED) throw GIVE_UP;
        const scopeEnd = this.lengthEnd(end);
        while (this.pos < scopeEnd) {
          const scopeTag = this.tag(scopeEnd);
          const scopeField = scopeTag >>> 3;
          if (scopeField !== 1 && scopeField !== 2) {
            this.skip(scopeTag & 7, scopeEnd);
            continue;
          }
          if ((scopeTag & 7) !== LENGTH_DELIMITED) throw GIVE_UP;
          const stringEnd = this.lengthEnd(scopeEnd);
          if (scopeField === 1) {
            nameStart = this.pos;
            nameEnd = stringEnd;
          }
          this.pos = stringEnd;
        }
        if (this.pos !== scopeEnd) throw GIVE_UP;
      } else if (field === 2) {
        if ((tag & 7) !== LENGTH_DELIMITED) throw GIVE_UP;
        const spanEnd = this.lengthEnd(end);
        spans.push(this.pos, spanEnd);
        this.pos = spanEnd;
      } else this.skip(tag & 7, end);
    }
    // The scope may follow its spans too.
    const scopeName = nameStart < 0 ? '' : this.string(nameStart, nameEnd);
    for (let i = 0; i < spans.length; i += 2) {
      this.pos = spans[i]!;
      this.span(spans[i + 1]!, resource, scopeName);
    }
  }

  span(end: number, resource: Record<string, string>, scopeName: string): void {
    this.entry();
    if (++this.#spans > this.#limits.maxSpans) throw GIVE_UP;
    this.received++;
    let traceStart = -1;
    let traceEnd = -1;
    let spanStart = -1;
    let spanEnd = -1;
    let parentStart = -1;
    let parentEnd = -1;
    let nameStart = -1;
    let nameEnd = -1;
    let kind = 0;
    let startNs = 0n;
    let endNs = 0n;
    let statusCode = 0;
    let messageStart = -1;
    let messageEnd = -1;
    let hasRelevantKey = false;
    let langfuseType = -1;
    let vercelOperation = -1;
    this.#kvCount = 0;
    while (this.pos < end) {
      const tag = this.tag(end);
      const field = tag >>> 3;
      const wireType = tag & 7;
      switch (field) {
        case 1:
        case 2:
        case 4:
        case 5: {
          if (wireType !== LENGTH_DELIMITED) throw GIVE_UP;
          const fieldEnd = this.lengthEnd(end);
          if (field === 1) {
            traceStart = this.pos;
            traceEnd = fieldEnd;
          } else if (field === 2) {
            spanStart = this.pos;
            spanEnd = fieldEnd;
          } else if (field === 4) {
            parentStart = this.pos;
            parentEnd = fieldEnd;
          } else {
            nameStart = this.pos;
            nameEnd = fieldEnd;
          }
          this.pos = fieldEnd;
          break;
        }
        case 6:
          if (wireType !== VARINT) throw GIVE_UP;
          kind = this.varint32(end);
          break;
        case 7:
        case 8: {
          if (wireType !== BIT64 || this.pos + 8 > end) throw GIVE_UP;
          const ns = this.view.getBigUint64(this.pos, true);
          if (field === 7) startNs = ns;
          else endNs = ns;
          this.pos += 8;
          break;
        }
        case 9: {
          if (wireType !== LENGTH_DELIMITED) throw GIVE_UP;
          const kvEnd = this.lengthEnd(end);
          let kv = this.#kvs[this.#kvCount];
          if (kv === undefined) {
            kv = { keyStart: -1, keyEnd: -1, valueStart: -1, valueEnd: -1 };
            this.#kvs.push(kv);
          } else kv.keyStart = kv.keyEnd = kv.valueStart = kv.valueEnd = -1;
          this.walkKeyValue(kvEnd, 0, kv);
          const { keyStart, keyEnd } = kv;
          // Until a relevant key is seen: past it, the markers no longer matter.
          if (keyStart >= 0 && !hasRelevantKey && MAY_MATTER[this.buf[keyStart]!] === 1) {
            // Keys compared as bytes: an ASCII prefix decodes to itself whatever follows it.
            hasRelevantKey =
              this.startsWith(keyStart, keyEnd, PREFIX_ROUTEWATCH) ||
              this.startsWith(keyStart, keyEnd, PREFIX_GEN_AI) ||
              this.startsWith(keyStart, keyEnd, PREFIX_LLM);
            if (this.bytesEqual(keyStart, keyEnd, KEY_LANGFUSE_TYPE)) langfuseType = this.#kvCount;
            else if (this.bytesEqual(keyStart, keyEnd, KEY_VERCEL_OPERATION))
              vercelOperation = this.#kvCount;
          }
          this.#kvCount++;
          break;
        }
        case 15: {
          if (wireType !== LENGTH_DELIMITED) throw GIVE_UP;
          const statusEnd = this.lengthEnd(end);
          // A second status replaces the first entirely, as in the full decoder.
          statusCode = 0;
          messageStart = messageEnd = -1;
          while (this.pos < statusEnd) {
            const statusTag = this.tag(statusEnd);
            if (statusTag >>> 3 === 2) {
              if ((statusTag & 7) !== LENGTH_DELIMITED) throw GIVE_UP;
              const stringEnd = this.lengthEnd(statusEnd);
              messageStart = this.pos;
              messageEnd = stringEnd;
              this.pos = stringEnd;
            } else if (statusTag >>> 3 === 3) {
              if ((statusTag & 7) !== VARINT) throw GIVE_UP;
              statusCode = this.varint32(statusEnd);
            } else this.skip(statusTag & 7, statusEnd);
          }
          if (this.pos !== statusEnd) throw GIVE_UP;
          break;
        }
        default:
          this.skip(wireType, end);
      }
    }
    if (this.pos !== end) throw GIVE_UP;
    // The checks of otlp-request.ts; the full decoder names what failed.
    if (
      traceEnd - traceStart !== 16 ||
      this.isZero(traceStart, traceEnd) ||
      spanEnd - spanStart !== 8 ||
      this.isZero(spanStart, spanEnd) ||
      (parentEnd - parentStart !== 0 && parentEnd - parentStart !== 8)
    ) {
      throw GIVE_UP;
    }
    // Another pass keeps this span; it was still walked and checked above, as a whole request is.
    if ((this.#spans - 1) % this.#part.count !== this.#part.index) return;

    const kvs = this.#kvs;
    const count = this.#kvCount;
    // A duplicated marker key counts by its last value, as in a map.
    let relevant = hasRelevantKey;
    if (!relevant && (langfuseType >= 0 || vercelOperation >= 0)) {
      relevant = isRelevantBy(false, this.valueOf(langfuseType), this.valueOf(vercelOperation));
    }
    if (!relevant && this.#mapping === undefined) {
      this.#out.skipped++;
      return;
    }
    let parentSpanId = parentEnd > parentStart ? this.slices.hexSlice(parentStart, parentEnd) : '';
    // Some exporters write an all-zero parent for a root span: it has no parent.
    if (parentSpanId === ZERO_PARENT) parentSpanId = '';
    const name = nameStart < 0 ? '' : this.string(nameStart, nameEnd);
    if (!relevant) {
      const mapping = this.#mapping!;
      // Task span conditions read a few keys: only those are decoded.
      const partial = emptyMap();
      for (let i = 0; i < count; i++) {
        const kv = kvs[i]!;
        const key = this.key(kv.keyStart, kv.keyEnd);
        if (this.#taskKeys.has(key)) partial[key] = this.flatten(kv.valueStart, kv.valueEnd);
      }
      if (!mapping.isTaskSpan({ name, parentSpanId, attributes: partial, resource })) {
        this.#out.skipped++;
        return;
      }
    }
    const map = emptyMap();
    for (let i = 0; i < count; i++) {
      const kv = kvs[i]!;
      const key = this.key(kv.keyStart, kv.keyEnd);
      map[key] = this.flatten(kv.valueStart, kv.valueEnd);
    }
    const fields: SpanFields = {
      traceId: this.slices.hexSlice(traceStart, traceEnd),
      spanId: this.slices.hexSlice(spanStart, spanEnd),
      parentSpanId,
      name,
      kind,
      startNs,
      endNs,
      statusCode,
      statusMessage: messageStart < 0 ? '' : this.string(messageStart, messageEnd),
      // Decoded from UTF-8: never a lone surrogate.
      wellFormed: true,
    };
    this.#out.add(fields, map, resource, scopeName);
  }

  isZero(start: number, end: number): boolean {
    for (let i = start; i < end; i++) if (this.buf[i] !== 0) return false;
    return true;
  }

  /** The flattened value of the span's KeyValue at `index`; undefined for -1. */
  valueOf(index: number): string | undefined {
    if (index < 0) return undefined;
    const kv = this.#kvs[index]!;
    return this.flatten(kv.valueStart, kv.valueEnd);
  }
}

/**
 * Decodes a protobuf body into `out` (the spans of `part` only), returning the number of spans
 * the whole body held; or returns undefined when the body needs the full decoder (see above),
 * having then added nothing to `out` that the caller keeps: on undefined, discard `out`.
 */
export function decodeProtoRows(
  body: Uint8Array,
  limits: RequestLimits,
  out: RequestRows,
  mapping?: Mapping,
  part: SpanPart = WHOLE_REQUEST,
): number | undefined {
  const decoder = new Decoder(body, limits, out, mapping, part);
  try {
    decoder.request();
  } catch {
    // GIVE_UP, or anything else: the full path then decides, so that a body fails (or not) with
    // exactly the error it always did.
    return undefined;
  }
  return decoder.received;
}
