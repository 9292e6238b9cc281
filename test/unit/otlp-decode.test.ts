import { describe, expect, it } from 'vitest';
import { RequestLimitError } from '../../collector/otlp-errors.js';
import { decodeTraceRequestJson, parseJsonPreservingInt64 } from '../../collector/otlp-json.js';
import { validateTraceRequest } from '../../collector/otlp-request.js';
import { decodeTraceRequestProto } from '../../collector/otlp-proto.js';
import { checkJsonEntries } from '../../collector/request-limits.js';
import { hexId, otlpBody } from '../support/otlp.js';

const LIMITS = { maxSpans: 50_000, maxEntries: 2_000_000, maxResources: 10_000 };

describe('parseJsonPreservingInt64', () => {
  it('quotes long integers outside strings and leaves strings and decimals alone', () => {
    const parsed = parseJsonPreservingInt64(
      '{"a":12345678901234567890,"b":"x 12345678901234567890 \\" 98765432109876543210","c":1.12345678901234567,"d":[-9223372036854775808],"e":42}',
    );
    expect(parsed).toEqual({
      a: '12345678901234567890',
      b: 'x 12345678901234567890 " 98765432109876543210',
      c: Number('1.12345678901234567'),
      d: ['-9223372036854775808'],
      e: 42,
    });
  });

  it('quotes long integers outside strings, negative ones included', () => {
    expect(parseJsonPreservingInt64('{"a":1764331200000000001,"b":[-9007199254740993]}')).toEqual({
      a: '1764331200000000001',
      b: ['-9007199254740993'],
    });
  });

  it('leaves long integers inside strings untouched, escaped quotes included', () => {
    const text = '{"a":"x\\":1764331200000000001","b":"\\\\","c":1764331200000000001}';
    expect(parseJsonPreservingInt64(text)).toEqual({
      a: 'x":1764331200000000001',
      b: '\\',
      c: '1764331200000000001',
    });
  });

  it('keeps long numbers with a fraction or an exponent as numbers', () => {
    const text =
      '{"t":1764331200000000001,"v":[1234567890123456.5,1234567890123456e3,-1234567890123456E-2]}';
    expect(parseJsonPreservingInt64(text)).toEqual({
      t: '1764331200000000001',
      v: [1234567890123456.5, 1234567890123456e3, -1234567890123456e-2],
    });
  });

  it('parses an 8 MiB string next to a long integer', () => {
    const long = 'x'.repeat(8 * 1024 * 1024);
    const parsed = parseJsonPreservingInt64(`{"s":"${long}","t":1764331200000000001}`) as {
      s: string;
      t: string;
    };
    expect(parsed.s).toHaveLength(long.length);
    expect(parsed.t).toBe('1764331200000000001');
  });
});

interface JsonBody {
  resourceSpans: { scopeSpans: { spans: { attributes: unknown[] }[] }[] }[];
}

describe('doubleValue as a string', () => {
  const checked = (doubleValue: unknown) => {
    const body = otlpBody([
      { spanId: hexId(8), attributes: { 'gen_ai.request.model': 'gpt-4o-mini' } },
    ]) as unknown as JsonBody;
    body.resourceSpans[0]!.scopeSpans[0]!.spans[0]!.attributes.push({
      key: 'app.value',
      value: { doubleValue },
    });
    return validateTraceRequest(body).resourceSpans[0]!.scopeSpans[0]!.spans[0]!.attributes[1]!
      .value;
  };

  it.each([
    ['1.5', 1.5],
    ['1e3', 1000],
    ['-2.5E-3', -0.0025],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['-Infinity', -Infinity],
  ])('accepts %s', (text, value) => {
    expect(checked(text)).toEqual({ kind: 'double', value });
  });

  it.each(['abc', '0x10', '', ' 1', '1e'])('refuses %j naming the field', (text) => {
    expect(() => checked(text)).toThrow(
      /resourceSpans\.0\.scopeSpans\.0\.spans\.0\.attributes\.1\.value\.doubleValue: expected a number/,
    );
  });
});

/** `count` copies of a protobuf field with an empty length-delimited value. */
const emptyFields = (tag: number, count: number) => Buffer.alloc(count * 2, Buffer.from([tag, 0]));

describe('request limits', () => {
  it('stops decoding ten million empty resource_spans at the resource limit', () => {
    // The probe's body: 19 MB of `0a 00`. It used to build 10 M objects and exhaust the heap.
    const body = emptyFields(0x0a, 10_000_000);
    const decode = () => decodeTraceRequestProto(body, LIMITS);
    expect(decode).toThrow(RequestLimitError);
    expect(decode).toThrow(/more than 10000 resource_spans.*ROUTEWATCH_MAX_RESOURCES_PER_REQUEST/);
  });

  it('stops decoding ten million empty scope_spans at the entry limit', () => {
    const scopes = emptyFields(0x12, 10_000_000);
    // One ResourceSpans (field 1) whose length prefix is a varint of the scopes' size.
    const length: number[] = [];
    for (let n = scopes.length; ; n >>>= 7) {
      if (n < 0x80) {
        length.push(n);
        break;
      }
      length.push((n & 0x7f) | 0x80);
    }
    const body = Buffer.concat([Buffer.from([0x0a, ...length]), scopes]);
    expect(() => decodeTraceRequestProto(body, LIMITS)).toThrow(
      /more than 2000000 entries.*ROUTEWATCH_MAX_ENTRIES_PER_REQUEST/,
    );
  });

  it('refuses seven million JSON objects before parsing them', () => {
    const body = Buffer.from(`{"resourceSpans":[${'{},'.repeat(6_900_000)}{}]}`);
    expect(() => decodeTraceRequestJson(body, LIMITS)).toThrow(
      /ROUTEWATCH_MAX_ENTRIES_PER_REQUEST/,
    );
  });

  it('counts braces inside strings only when the raw count is over the limit', () => {
    const inString = Buffer.from(`{"a":"${'{'.repeat(100)}"}`);
    expect(() => checkJsonEntries(inString, 10)).not.toThrow();
    expect(() => checkJsonEntries(Buffer.from('[[[[[[[[[[[[]]]]]]]]]]]]'), 10)).toThrow(
      RequestLimitError,
    );
  });

  it('names the span limit when a request holds too many spans, in both encodings', () => {
    const body = otlpBody(
      Array.from({ length: 5 }, () => ({ attributes: { 'gen_ai.system': 'x' } })),
    );
    const limits = { ...LIMITS, maxSpans: 4 };
    expect(() => decodeTraceRequestJson(Buffer.from(JSON.stringify(body)), limits)).toThrow(
      /more than 4 spans.*ROUTEWATCH_MAX_SPANS_PER_REQUEST/,
    );
  });
});
