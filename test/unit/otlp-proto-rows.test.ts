import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { describe, expect, it } from 'vitest';
import { createIngest } from '../../collector/ingest.js';
import type { IngestResult, IngestSettings } from '../../collector/ingest.js';
import { NO_MAPPING, compileMapping } from '../../collector/mapping.js';
import type { MappingRules } from '../../collector/mapping.js';
import { ANY_TIME, RequestRows } from '../../collector/normalize.js';
import { decodeProtoRows } from '../../collector/otlp-proto-rows.js';
import { SPAN_COLUMNS, preparedLines } from '../../collector/span-lines.js';
import { DEFAULT_PRICE_SETTINGS, PriceTable } from '../../collector/pricing.js';
import type { RequestLimits } from '../../collector/request-limits.js';
import { encodeRequestProto } from '../support/otlp-proto-encode.js';
import { hexId, otlpBody } from '../support/otlp.js';
import type { TestSpan } from '../support/otlp.js';

// The protobuf fast path (straight into rows, spans skipped before their attributes are decoded)
// against the full path (decode into the OTLP/JSON shape, check, normalize) on the same bodies:
// the same rows, counts and errors, byte for byte (issue 13, line rate).

const LIMITS: RequestLimits = { maxSpans: 10_000, maxEntries: 1_000_000, maxResources: 1_000 };
const DAY_MS = 86_400_000;

function settings(mapping: MappingRules = NO_MAPPING, limits = LIMITS): IngestSettings {
  return {
    limits,
    prices: DEFAULT_PRICE_SETTINGS,
    mapping,
    maxAgeMs: 30 * DAY_MS,
    maxAheadMs: DAY_MS,
  };
}

type Outcome = { result: ReturnType<ReturnType<typeof createIngest>> } | { error: string };

/** Both paths on one body: what each returns, or the error each throws. */
function bothPaths(body: Uint8Array, ingestSettings: IngestSettings) {
  const now = Date.now();
  const run = (fastPath: boolean): Outcome => {
    try {
      return { result: createIngest(ingestSettings, { fastPath })(body, 'protobuf', now) };
    } catch (error) {
      const e = error as Error & { code?: string };
      return { error: `${e.name} ${e.code ?? ''}: ${e.message}` };
    }
  };
  return { fast: run(true), full: run(false) };
}

/** Whether the fast path took the body itself (rather than handing it to the full path). */
function fastPathTakes(body: Uint8Array, rules = NO_MAPPING, limits = LIMITS): boolean {
  const out = new RequestRows(new PriceTable(), ANY_TIME, compileMapping(rules));
  return decodeProtoRows(body, limits, out, compileMapping(rules)) !== undefined;
}

function expectSameRows(body: Uint8Array, rules = NO_MAPPING): void {
  const { fast, full } = bothPaths(body, settings(rules));
  expect('result' in full, JSON.stringify(full).slice(0, 300)).toBe(true);
  expect(fast).toEqual(full);
  expect(fastPathTakes(body, rules)).toBe(true);
}

const protoOf = (spans: TestSpan[], service?: string) =>
  encodeRequestProto(otlpBody(spans, service));

/** The span shapes of test/unit/conventions.test.ts and of the third-party packages' exports. */
const CONVENTIONS: TestSpan[][] = [
  [{ attributes: { 'gen_ai.request.model': 'gpt-4o-mini', 'gen_ai.system': 'openai' } }],
  [{ attributes: { 'gen_ai.request.model': 'house-model-7b', 'gen_ai.usage.input_tokens': 10 } }],
  [{ attributes: { 'gen_ai.system': 'openai', 'gen_ai.usage.input_tokens': 10 } }],
  [{ attributes: { 'gen_ai.request.model': 'gpt-4o-mini' }, status: { code: 2, message: '429' } }],
  [
    {
      attributes: {
        'gen_ai.system': 'openai',
        'gen_ai.request.model': 'gpt-4o-mini',
        'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
        'gen_ai.usage.input_tokens': 1000,
        'gen_ai.usage.output_tokens': 100,
      },
    },
  ],
  [
    {
      attributes: {
        'gen_ai.request.model': 'gpt-4o-mini',
        'gen_ai.usage.input_tokens': 1000,
        'gen_ai.usage.cost': 0.5,
      },
    },
  ],
  [
    {
      name: 'chat gpt-4o-mini',
      attributes: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.system': 'openai',
        'gen_ai.request.model': 'gpt-4o-mini',
        'gen_ai.usage.input_tokens': 2000,
        'gen_ai.usage.output_tokens': 50,
        'gen_ai.usage.cost': 0,
      },
    },
  ],
  [
    { attributes: { 'gen_ai.request.model': 'gpt-4o-mini', 'gen_ai.usage.input_tokens': 1 } },
    { attributes: { 'gen_ai.request.model': 'gpt-4o-mini', 'gen_ai.usage.cost': 0.1 } },
    { attributes: { 'gen_ai.request.model': 'gpt-4o-mini' } },
    { attributes: { 'gen_ai.request.model': 'nope', 'gen_ai.usage.input_tokens': 1 } },
    { name: 'routewatch.task faq', attributes: { 'routewatch.cohort': 'faq' } },
  ],
  [
    {
      attributes: {
        'gen_ai.system': 'anthropic',
        'gen_ai.request.model': 'claude-sonnet-4-20250514',
        'gen_ai.usage.input_tokens': 10_000,
        'gen_ai.usage.output_tokens': 100,
        'gen_ai.usage.cache_read_input_tokens': 8_000,
        'gen_ai.usage.cache_creation_input_tokens': 1_000,
      },
    },
  ],
  [
    {
      name: 'OpenAI Chat Completions',
      kind: 1,
      attributes: {
        'openinference.span.kind': 'LLM',
        'llm.model_name': 'gpt-4o-mini-2024-07-18',
        'llm.invocation_parameters': '{"model":"gpt-4o-mini","temperature":0}',
        'llm.system': 'openai',
        'llm.provider': 'openai',
        'llm.token_count.prompt': 100,
        'llm.token_count.completion': 10,
      },
    },
    {
      attributes: {
        'openinference.span.kind': 'EMBEDDING',
        'embedding.model_name': 'text-embedding-3-small',
        'llm.system': 'openai',
        'llm.token_count.prompt': 1000,
      },
    },
    {
      attributes: {
        'openinference.span.kind': 'CHAIN',
        'llm.system': 'openai',
        'routewatch.cohort': 'x',
      },
    },
  ],
  [
    {
      name: 'ai.generateText',
      kind: 1,
      attributes: {
        'ai.model.id': 'gpt-4o-mini',
        'ai.model.provider': 'openai.chat',
        'ai.operationId': 'ai.generateText',
        'ai.usage.inputTokens': 1000,
        'ai.usage.outputTokens': 100,
      },
    },
    {
      name: 'ai.generateText.doGenerate',
      kind: 3,
      attributes: {
        'ai.model.id': 'gpt-4o-mini',
        'ai.model.provider': 'openai.chat',
        'ai.operationId': 'ai.generateText.doGenerate',
        'ai.usage.promptTokens': 1000,
        'ai.usage.completionTokens': 100,
        'ai.response.model': 'gpt-4o-mini-2024-07-18',
      },
    },
    {
      attributes: {
        'ai.operationId': 'ai.streamText.doStream',
        'ai.model.id': 'gpt-4o-mini',
        'ai.model.provider': 'openai.responses',
        'ai.usage.inputTokens': 1000,
        'ai.usage.outputTokens': 300,
        'ai.usage.inputTokenDetails.cacheReadTokens': 600,
        'ai.usage.outputTokenDetails.reasoningTokens': 200,
      },
    },
    {
      attributes: { 'ai.operationId': 'ai.embed.doEmbed', 'ai.model.id': 'text-embedding-3-small' },
    },
  ],
  [
    {
      name: 'answer',
      kind: 1,
      attributes: {
        'langfuse.observation.type': 'generation',
        'langfuse.observation.model.name': 'gpt-4o-mini',
        'langfuse.observation.usage_details': '{"input":800,"output":50,"input_cached_tokens":200}',
        'langfuse.observation.cost_details': '{"input":0.1,"output":0.2,"total":0.25}',
      },
    },
    {
      attributes: {
        'langfuse.observation.type': 'embedding',
        'langfuse.observation.cost_details': '{"input":0.1,"output":0.2}',
      },
    },
    { attributes: { 'langfuse.observation.type': 'span' } },
    { attributes: { 'langfuse.observation.type': 'span', 'routewatch.cohort': 'faq' } },
  ],
  // OpenLLMetry, the official OTel OpenAI instrumentation, OpenLIT: GenAI names, older ones too.
  [
    {
      name: 'openai.chat',
      attributes: {
        'llm.request.type': 'chat',
        'gen_ai.system': 'openai',
        'gen_ai.request.model': 'gpt-4o',
        'gen_ai.response.model': 'gpt-4o-2024-08-06',
        'gen_ai.usage.prompt_tokens': 12,
        'gen_ai.usage.completion_tokens': 40,
        'llm.usage.total_tokens': 52,
        'gen_ai.prompt.0.role': 'user',
        'gen_ai.prompt.0.content': 'What is the refund policy? ✓',
        'gen_ai.completion.0.finish_reason': 'stop',
        'llm.is_streaming': false,
      },
    },
    {
      attributes: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'gpt-4o-mini',
        'gen_ai.usage.input_tokens': 30,
        'gen_ai.usage.output_tokens': 7,
        'gen_ai.usage.reasoning.output_tokens': 3,
        'server.address': 'localhost',
        'server.port': 43_123,
        'routewatch.http.attempts': 3,
      },
    },
  ],
  // Our own task, attempt and call spans.
  [
    {
      name: 'routewatch.task extraction',
      attributes: {
        'routewatch.task.id': 'AbCdEf0123456789AbCdEf0123456789',
        'routewatch.cohort': 'extraction',
        'routewatch.outcome': 'escalated',
        'routewatch.outcome.reason': 'human',
        'routewatch.reask': true,
        'routewatch.cleanup.cost_usd': 0.25,
        'routewatch.policy.version': 'v3',
        'routewatch.score.groundedness': 0.9,
      },
    },
    {
      name: 'routewatch.attempt small',
      attributes: {
        'routewatch.route': 'small',
        'routewatch.attempt': 2,
        'routewatch.fallback.reason': 'timeout',
        'routewatch.validation': 'fail',
        'routewatch.confidence': 0.42,
      },
    },
    { name: 'unrelated', attributes: { 'http.request.method': 'GET', 'url.path': '/healthz' } },
    { name: 'no attributes' },
  ],
];

/** A span in the OTLP/JSON shape with any AnyValue, for values TestSpan cannot say. */
function rawSpan(attributes: unknown[], extra: Record<string, unknown> = {}) {
  return {
    traceId: hexId(16),
    spanId: hexId(8),
    name: 'raw',
    kind: 3,
    startTimeUnixNano: String(BigInt(Date.now()) * 1_000_000n),
    endTimeUnixNano: String(BigInt(Date.now() + 5) * 1_000_000n),
    attributes,
    status: { code: 0 },
    ...extra,
  };
}
const requestOf = (spans: unknown[], resource: unknown[] = []) => ({
  resourceSpans: [
    { resource: { attributes: resource }, scopeSpans: [{ scope: { name: 's' }, spans }] },
  ],
});
const kv = (key: string, value: unknown) => ({ key, value });

describe('the protobuf fast path', () => {
  it('gives the rows of the full path for every convention of other tools', () => {
    for (const spans of CONVENTIONS) expectSameRows(protoOf(spans));
    expectSameRows(protoOf(CONVENTIONS.flat(), 'many'));
  });

  it('gives the rows of the full path with a mapping file, task spans included', () => {
    const rules: MappingRules = {
      fields: {
        cohort: [
          { attribute: 'routewatch.cohort.hint' },
          { attribute: 'langfuse.trace.metadata.cohort' },
          { attribute: 'metadata', json: 'cohort' },
          { resource: 'service.namespace' },
        ],
        route: [{ attribute: 'ai.telemetry.metadata.route' }],
        outcome: [{ attribute: 'langfuse.trace.metadata.result', values: { resolved: 'success' } }],
        task_id: [{ attribute: 'session.id', pattern: '^ticket-(\\d+)$' }],
        policy_version: [{ resource: 'service.version' }],
      },
      task_spans: [
        { attribute: 'langfuse.trace.name', root: true },
        { attribute: 'job.kind', equals: 'answer' },
        { span_name: 'handle ticket' },
      ],
    };
    const body = otlpBody([
      ...CONVENTIONS.flat(),
      { attributes: { 'gen_ai.request.model': 'gpt-4o-mini', 'session.id': 'ticket-42' } },
      {
        attributes: {
          'langfuse.trace.name': 'support',
          'langfuse.trace.metadata.result': 'resolved',
        },
      },
      { parentSpanId: hexId(8), attributes: { 'langfuse.trace.name': 'not a root' } },
      { attributes: { 'job.kind': 'answer', 'job.kind.x': 'y' } },
      { attributes: { 'job.kind': 'other' } },
      { name: 'handle ticket', attributes: { 'http.route': '/t' } },
    ]) as { resourceSpans: { resource: { attributes: unknown[] } }[] };
    body.resourceSpans[0]!.resource.attributes.push(
      kv('service.namespace', { stringValue: 'support' }),
      kv('service.version', { stringValue: 'v7' }),
    );
    const proto = encodeRequestProto(body);
    expectSameRows(proto, rules);
    const { fast } = bothPaths(proto, settings(rules));
    expect('result' in fast && fast.result.rows).toBe(30);
  });

  it('reads every kind of attribute value as the full path does', () => {
    const values = [
      kv('gen_ai.request.model', { stringValue: 'gpt-4o-mini' }),
      kv('a.bool', { boolValue: true }),
      kv('a.false', { boolValue: false }),
      kv('a.int', { intValue: '-9223372036854775808' }),
      kv('a.big', { intValue: '9223372036854775807' }),
      kv('a.small', { intValue: '-1' }),
      kv('a.double', { doubleValue: 0.1 }),
      kv('a.nan', { doubleValue: 'NaN' }),
      kv('a.inf', { doubleValue: '-Infinity' }),
      kv('a.bytes', { bytesValue: Buffer.from([0, 1, 2, 250]).toString('base64') }),
      kv('a.empty', {}),
      { key: 'a.novalue' },
      kv('a.array', {
        arrayValue: {
          values: [
            { stringValue: 'x' },
            { intValue: '7' },
            { doubleValue: 1.5 },
            { boolValue: false },
            {},
            { arrayValue: { values: [{ stringValue: 'nested' }] } },
            { kvlistValue: { values: [kv('k', { stringValue: 'v' })] } },
          ],
        },
      }),
      kv('a.kvlist', {
        kvlistValue: {
          values: [
            kv('b', { intValue: '1' }),
            kv('1', { stringValue: 'integer-like key first' }),
            kv('b', { stringValue: 'last wins' }),
            kv('__proto__', { stringValue: 'own key' }),
            { key: 'none' },
          ],
        },
      }),
      kv('__proto__', { stringValue: 'a key like any other' }),
      kv('10', { stringValue: 'integer-like' }),
      kv('2', { stringValue: 'ordered first' }),
      kv('a.dup', { stringValue: 'first' }),
      kv('a.dup', { stringValue: 'second' }),
      kv('ünïcödé ✓', { stringValue: '日本語 🎉' }),
      kv('gen_ai.usage.input_tokens', { stringValue: '12' }),
      kv('gen_ai.usage.output_tokens', { doubleValue: 3.7 }),
      kv('two.kinds', { stringValue: 's', intValue: '5' }),
      kv('a.long', { stringValue: 'x'.repeat(300) }),
      kv('a.longer', { stringValue: 'y'.repeat(70_000) }),
      kv('k'.repeat(200), { stringValue: 'a long key' }),
      kv('', { stringValue: 'no key' }),
    ];
    expectSameRows(
      encodeRequestProto(
        requestOf(
          [rawSpan(values), rawSpan(values.slice(1))],
          [
            kv('service.name', { stringValue: 'svc' }),
            kv('r.list', { arrayValue: { values: [{ intValue: '1' }] } }),
          ],
        ),
      ),
    );
  });

  it('decides relevance by the last value of a duplicated marker key, as a map does', () => {
    const span = (...attrs: unknown[]) => rawSpan(attrs);
    const t = 'langfuse.observation.type';
    const v = 'ai.operationId';
    const body = encodeRequestProto(
      requestOf([
        span(kv(t, { stringValue: 'generation' }), kv(t, { stringValue: 'span' })),
        span(kv(t, { stringValue: 'span' }), kv(t, { stringValue: 'generation' })),
        span(kv(t, {}), kv(v, { stringValue: 'ai.generateText.doGenerate' })),
        span(kv(t, { intValue: '1' })),
        span(
          kv(v, { stringValue: 'ai.generateText.doGenerate' }),
          kv(v, { stringValue: 'ai.generateText' }),
        ),
        span(
          kv(v, { stringValue: 'ai.generateText' }),
          kv(v, { stringValue: 'ai.streamText.doStream' }),
        ),
        span(kv('langfuse.observation.typeX', { stringValue: 'generation' })),
        span(kv('routewatch', { stringValue: 'no dot' }), kv('gen_ai', { stringValue: 'x' })),
        span(kv('llm.', { stringValue: 'prefix alone' })),
      ]),
    );
    expectSameRows(body);
    const { fast } = bothPaths(body, settings());
    expect('result' in fast && [fast.result.rows, fast.result.skipped]).toEqual([3, 6]);
  });

  it('takes the last field of an attribute value on the wire, as protobuf does for a oneof', () => {
    const model = 'gen_ai.request.model';
    const body = encodeRequestProto(
      requestOf([
        rawSpan([kv(model, { intValue: '5', stringValue: 'gpt-4o-mini' })]),
        rawSpan([kv(model, { stringValue: 'gpt-4o-mini', intValue: '5' })]),
        rawSpan([kv(model, { stringValue: 'a', boolValue: true })]),
        rawSpan([
          kv(model, { arrayValue: { values: [{ stringValue: 'x' }] }, stringValue: 'gpt-4o' }),
        ]),
      ]),
    );
    expectSameRows(body);
    const { fast } = bothPaths(body, settings());
    const lines = 'result' in fast ? preparedLines(fast.result) : [];
    const at = SPAN_COLUMNS.indexOf('request_model');
    const models = lines.map((line) => (JSON.parse(line) as unknown[])[at]);
    expect(models).toEqual(['gpt-4o-mini', '5', 'true', 'gpt-4o']);
  });

  it('refuses spans outside the time window as the full path does', () => {
    const old = String(BigInt(Date.now() - 400 * DAY_MS) * 1_000_000n);
    const ahead = String(BigInt(Date.now() + 3 * DAY_MS) * 1_000_000n);
    expectSameRows(
      protoOf([
        { start: old, attributes: { 'gen_ai.request.model': 'a' } },
        { start: ahead, attributes: { 'gen_ai.request.model': 'b' } },
        { start: old, attributes: { 'http.method': 'GET' } },
        { attributes: { 'gen_ai.request.model': 'c' } },
        { start: '0', end: '0', attributes: { 'gen_ai.request.model': 'd' } },
      ]),
    );
  });

  it('takes fields in any order, repeated messages and fields it does not know', () => {
    const attr = (w: BinaryWriter, field: number, key: string, value: string) =>
      w
        .tag(field, WireType.LengthDelimited)
        .fork()
        .tag(1, WireType.LengthDelimited)
        .string(key)
        .tag(2, WireType.LengthDelimited)
        .fork()
        .tag(1, WireType.LengthDelimited)
        .string(value)
        .join()
        .join();
    const spanBytes = (name: string, model: string, invalidUtf8 = false) => {
      const w = new BinaryWriter();
      w.tag(3, WireType.LengthDelimited).string('trace-state=1');
      attr(w, 9, 'gen_ai.request.model', model);
      w.tag(15, WireType.LengthDelimited)
        .fork()
        .tag(3, WireType.Varint)
        .int32(2)
        .tag(2, WireType.LengthDelimited)
        .string('first')
        .join();
      w.tag(16, WireType.Bit32).fixed32(1);
      w.tag(11, WireType.LengthDelimited)
        .fork()
        .tag(2, WireType.LengthDelimited)
        .string('event')
        .join();
      w.tag(5, WireType.LengthDelimited).string(name);
      if (invalidUtf8)
        w.tag(5, WireType.LengthDelimited).bytes(Uint8Array.of(0x41, 0xf0, 0x9f, 0x41, 0xc3));
      w.tag(1, WireType.LengthDelimited).bytes(Buffer.from(hexId(16), 'hex'));
      w.tag(2, WireType.LengthDelimited).bytes(Buffer.from(hexId(8), 'hex'));
      w.tag(4, WireType.LengthDelimited).bytes(new Uint8Array(8));
      w.tag(7, WireType.Bit64).fixed64(BigInt(Date.now()) * 1_000_000n);
      w.tag(99, WireType.Varint).uint64(123456789012345n);
      w.tag(15, WireType.LengthDelimited)
        .fork()
        .tag(2, WireType.LengthDelimited)
        .string('second wins')
        .join();
      attr(w, 9, 'gen_ai.request.model', `${model}-dup`);
      return w.finish();
    };
    const w = new BinaryWriter();
    w.tag(1, WireType.LengthDelimited).fork();
    // Spans first, resource after, twice; scope after its spans.
    w.tag(2, WireType.LengthDelimited).fork();
    w.tag(2, WireType.LengthDelimited).bytes(spanBytes('one', 'gpt-4o'));
    w.tag(2, WireType.LengthDelimited).bytes(spanBytes('two', 'gpt-4o-mini', true));
    w.tag(1, WireType.LengthDelimited)
      .fork()
      .tag(1, WireType.LengthDelimited)
      .string('late scope')
      .tag(3, WireType.LengthDelimited)
      .bytes(new Uint8Array(0))
      .join();
    w.tag(3, WireType.LengthDelimited).string('schema');
    w.join();
    w.tag(1, WireType.LengthDelimited).fork();
    attr(w, 1, 'service.name', 'first');
    w.join();
    w.tag(1, WireType.LengthDelimited).fork();
    attr(w, 1, 'service.name', 'second');
    attr(w, 1, 'host.name', '\u00e9t\u00e9');
    w.tag(2, WireType.Varint).uint32(3);
    w.join();
    w.join();
    w.tag(7, WireType.Bit64).fixed64(1n);
    expectSameRows(w.finish());
  });

  it('fails as the full path does on every truncation and on corrupted bytes', () => {
    const body = encodeRequestProto(
      requestOf(
        [
          rawSpan([
            kv('gen_ai.request.model', { stringValue: 'gpt-4o-mini' }),
            kv('n', {
              arrayValue: { values: [{ kvlistValue: { values: [kv('x', { intValue: '3' })] } }] },
            }),
          ]),
          rawSpan([kv('http.route', { stringValue: '/x' })], { parentSpanId: hexId(8) }),
        ],
        [kv('service.name', { stringValue: 'svc' })],
      ),
    );
    let seen = 0;
    for (let end = 0; end < body.length; end++) {
      const { fast, full } = bothPaths(body.subarray(0, end), settings());
      expect(fast, `truncated at ${end}`).toEqual(full);
      if ('error' in full) seen++;
    }
    expect(seen).toBeGreaterThan(body.length / 2);
    let state = 13;
    const random = () => (state = (state * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 600; i++) {
      const corrupted = Uint8Array.from(body);
      for (let flips = 1 + Math.floor(random() * 3); flips > 0; flips--)
        corrupted[Math.floor(random() * corrupted.length)] = Math.floor(random() * 256);
      const { fast, full } = bothPaths(corrupted, settings());
      expect(fast, `corruption ${i}`).toEqual(full);
    }
  });

  it('refuses a span with a bad id alone, as the full path does', () => {
    const bad = [
      { traceId: '0'.repeat(32) },
      { spanId: '0'.repeat(16) },
      { traceId: 'ab' },
      { spanId: 'abcd' },
      { parentSpanId: 'abcd' },
    ];
    for (const extra of bad) {
      const body = encodeRequestProto(
        requestOf([
          rawSpan([kv('gen_ai.request.model', { stringValue: 'gpt-4o-mini' })]),
          rawSpan([kv('gen_ai.request.model', { stringValue: 'gpt-4o-mini' })], extra),
        ]),
      );
      const { fast, full } = bothPaths(body, settings());
      expect('result' in full, JSON.stringify(extra)).toBe(true);
      const result = (full as { result: IngestResult }).result;
      expect(result).toMatchObject({ received: 2, rows: 1, invalid: 1 });
      expect(result.invalidMessage).toMatch(/Id: (expected|an all-zero id)/);
      expect(fast).toEqual(full);
    }
  });

  it('keeps a span whose kind or status code this version does not know, as unspecified or unset', () => {
    // Proto3 enums are open: a value added to the spec later must not cost the request.
    const unknown = [{ kind: 6 }, { kind: -1 }, { status: { code: 3 } }, { status: { code: -2 } }];
    for (const extra of unknown) {
      const body = encodeRequestProto(
        requestOf([rawSpan([kv('gen_ai.request.model', { stringValue: 'gpt-4o' })], extra)]),
      );
      const { fast, full } = bothPaths(body, settings());
      expect('result' in full, JSON.stringify(full).slice(0, 300)).toBe(true);
      expect(fast).toEqual(full);
      if (!('result' in full)) continue;
      expect(full.result.rows).toBe(1);
      const line = Buffer.concat(full.result.records).toString('latin1');
      expect(line).toContain('kind' in extra ? '"unspecified"' : '"unset"');
    }
  });

  it('stops at the same request limits with the same messages', () => {
    const body = encodeRequestProto({
      resourceSpans: [0, 1].map(() => ({
        resource: { attributes: [kv('service.name', { stringValue: 'svc' })] },
        scopeSpans: [
          {
            spans: [0, 1, 2].map(() =>
              rawSpan([
                kv('http.route', {
                  arrayValue: { values: [{ stringValue: 'a' }, { stringValue: 'b' }] },
                }),
              ]),
            ),
          },
        ],
      })),
    });
    // 2 resources (2 entries each with their attribute), 2 scopes, 6 spans of 4 entries.
    const entries = 2 * (1 + 2) + 2 + 6 * (1 + 4);
    for (const limits of [
      { ...LIMITS, maxEntries: entries },
      { ...LIMITS, maxEntries: entries - 1 },
      { ...LIMITS, maxSpans: 6 },
      { ...LIMITS, maxSpans: 5 },
      { ...LIMITS, maxResources: 1 },
    ]) {
      const { fast, full } = bothPaths(body, settings(NO_MAPPING, limits));
      expect(fast, JSON.stringify(limits)).toEqual(full);
    }
    expect(fastPathTakes(body, NO_MAPPING, { ...LIMITS, maxEntries: entries })).toBe(true);
    expect(fastPathTakes(body, NO_MAPPING, { ...LIMITS, maxEntries: entries - 1 })).toBe(false);
  });

  it('skips a service export of HTTP, database and queue spans without storing any', () => {
    const spans: TestSpan[] = [];
    for (let i = 0; i < 50; i++) {
      spans.push(
        {
          name: 'GET /v1/tickets/:id',
          kind: 2,
          attributes: {
            'http.request.method': 'GET',
            'http.route': '/v1/tickets/:id',
            'http.response.status_code': 200,
          },
        },
        {
          name: 'SELECT tickets',
          attributes: {
            'db.system.name': 'postgresql',
            'db.query.text': 'SELECT 1',
            'server.port': 5432,
          },
        },
        {
          name: 'publish',
          kind: 4,
          attributes: { 'messaging.system': 'kafka', 'messaging.destination.name': 'events' },
        },
        { attributes: { 'gen_ai.request.model': 'gpt-4o-mini', 'gen_ai.usage.input_tokens': i } },
      );
    }
    const body = protoOf(spans);
    expectSameRows(body);
    const { fast } = bothPaths(body, settings());
    expect(
      'result' in fast && [fast.result.received, fast.result.skipped, fast.result.rows],
    ).toEqual([200, 150, 50]);
  });

  it('keeps the same share of spans in each part on both paths, and the parts make the whole', () => {
    const spans: TestSpan[] = [];
    for (let i = 0; i < 30; i++) {
      spans.push(
        i % 3 === 2
          ? { name: 'GET /health', attributes: { 'http.route': '/health' } }
          : {
              attributes: {
                'routewatch.task.id': `task-${i}`,
                'gen_ai.request.model': 'gpt-4o-mini',
                'gen_ai.usage.input_tokens': 10 + i,
              },
            },
      );
    }
    const body = protoOf(spans);
    const now = Date.now();
    const whole = createIngest(settings())(body, 'protobuf', now);
    const lines: string[] = [];
    let skipped = 0;
    for (const count of [2, 3]) {
      lines.length = 0;
      skipped = 0;
      for (let index = 0; index < count; index++) {
        const part = { index, count };
        const fast = createIngest(settings())(body, 'protobuf', now, part);
        const full = createIngest(settings(), { fastPath: false })(body, 'protobuf', now, part);
        expect(fast).toEqual(full);
        expect(fast.received).toBe(30);
        lines.push(...preparedLines(fast));
        skipped += fast.skipped;
      }
      expect(skipped).toBe(whole.skipped);
      expect([...lines].sort()).toEqual(preparedLines(whole).sort());
    }
  });
});
