import { describe, expect, it } from 'vitest';
import { compileMapping } from '../../collector/mapping.js';
import type { Mapping } from '../../collector/mapping.js';
import { normalizeRequest } from '../../collector/normalize.js';
import type { SpanRow } from '../../collector/normalize.js';
import { validateTraceRequest } from '../../collector/otlp-request.js';
import { PriceTable } from '../../collector/pricing.js';
import { hexId, otlpBody } from '../support/otlp.js';
import type { TestSpan } from '../support/otlp.js';

// Regression tests for the conventions of other tools, with payloads shaped as each tool's
// installed source writes them (issue 13). The packages themselves run end to end in
// test/integration/instrumentation-*.test.ts.

const prices = new PriceTable();

function normalize(spans: TestSpan[], mapping?: Mapping) {
  return normalizeRequest(validateTraceRequest(otlpBody(spans)), prices, undefined, mapping);
}
const only = (spans: TestSpan[], mapping?: Mapping): SpanRow => {
  const { rows } = normalize(spans, mapping);
  expect(rows).toHaveLength(1);
  return rows[0]!;
};
/** gpt-4o-mini: 0.15 input, 0.6 output per MTok. */
const miniCost = (input: number, output: number) => (input * 0.15 + output * 0.6) / 1e6;

describe('honest cost', () => {
  it('marks a streamed call without usage as unpriced, not $0 priced', () => {
    const row = only([
      { attributes: { 'gen_ai.request.model': 'gpt-4o-mini', 'gen_ai.system': 'openai' } },
    ]);
    expect(row).toMatchObject({
      kind: 'llm',
      cost_usd: 0,
      cost_source: 'unpriced',
      cost_note: 'no_usage',
    });
  });

  it('marks a call of a model without a price as unpriced', () => {
    const row = only([
      { attributes: { 'gen_ai.request.model': 'house-model-7b', 'gen_ai.usage.input_tokens': 10 } },
    ]);
    expect(row).toMatchObject({
      cost_source: 'unpriced',
      cost_note: 'unknown_model',
      price_ref: '',
    });
  });

  it('marks a call with tokens but no model name as unpriced', () => {
    const row = only([
      { attributes: { 'gen_ai.system': 'openai', 'gen_ai.usage.input_tokens': 10 } },
    ]);
    expect(row).toMatchObject({ cost_source: 'unpriced', cost_note: 'no_model' });
  });

  it('prices nothing for a failed call that reported no usage', () => {
    const row = only([
      {
        attributes: { 'gen_ai.request.model': 'gpt-4o-mini' },
        status: { code: 2, message: '429' },
      },
    ]);
    expect(row).toMatchObject({ cost_source: 'none', cost_note: 'failed_no_usage', cost_usd: 0 });
  });

  it.each(['APIUserAbortError', 'APIConnectionTimeoutError', 'TimeoutError', 'StreamAbortedError'])(
    'leaves unpriced a call its caller gave up on (%s): the provider may have served it',
    (errorType) => {
      const row = only([
        {
          attributes: { 'gen_ai.request.model': 'gpt-4o-mini', 'error.type': errorType },
          status: { code: 2, message: 'Request was aborted.' },
        },
      ]);
      expect(row).toMatchObject({ cost_source: 'unpriced', cost_note: 'aborted_no_usage' });
    },
  );

  it.each(['429', '503', 'RateLimitError', 'APIConnectionError'])(
    'still prices a refused call (%s) at nothing',
    (errorType) => {
      const row = only([
        {
          attributes: { 'gen_ai.request.model': 'gpt-4o-mini', 'error.type': errorType },
          status: { code: 2 },
        },
      ]);
      expect(row).toMatchObject({ cost_source: 'none', cost_note: 'failed_no_usage' });
    },
  );

  it('records which price entry priced a call', () => {
    const row = only([
      {
        attributes: {
          'gen_ai.system': 'openai',
          'gen_ai.request.model': 'gpt-4o-mini',
          'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
          'gen_ai.usage.input_tokens': 1000,
          'gen_ai.usage.output_tokens': 100,
        },
      },
    ]);
    expect(row.cost_source).toBe('price_table');
    expect(row.price_ref).toBe('genai-prices@0.1.8:openai/gpt-4o-mini');
    expect(row.cost_usd).toBeCloseTo(miniCost(1000, 100), 12);
  });

  it('keeps a positive cost the span reports', () => {
    const row = only([
      {
        attributes: {
          'gen_ai.request.model': 'gpt-4o-mini',
          'gen_ai.usage.input_tokens': 1000,
          'gen_ai.usage.cost': 0.5,
        },
      },
    ]);
    expect(row).toMatchObject({ cost_usd: 0.5, cost_source: 'span', cost_note: '' });
  });

  it('sets aside an OpenLIT cost of 0 for a model it cannot price, and prices the tokens', () => {
    // OpenLIT's getChatModelCost returns 0 for a model missing from its pricing JSON.
    const row = only([
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
    ]);
    expect(row).toMatchObject({ cost_source: 'price_table', cost_note: 'reported_zero_ignored' });
    expect(row.cost_usd).toBeCloseTo(miniCost(2000, 50), 12);
  });

  it('keeps a reported 0 from counting as priced when the model has no price either', () => {
    const row = only([
      {
        attributes: {
          'gen_ai.request.model': 'house-model-7b',
          'gen_ai.usage.input_tokens': 10,
          'gen_ai.usage.cost': 0,
        },
      },
    ]);
    expect(row).toMatchObject({ cost_source: 'unpriced', cost_note: 'unknown_model' });
  });

  it('counts LLM calls by cost source', () => {
    const result = normalize([
      { attributes: { 'gen_ai.request.model': 'gpt-4o-mini', 'gen_ai.usage.input_tokens': 1 } },
      { attributes: { 'gen_ai.request.model': 'gpt-4o-mini', 'gen_ai.usage.cost': 0.1 } },
      { attributes: { 'gen_ai.request.model': 'gpt-4o-mini' } },
      { attributes: { 'gen_ai.request.model': 'nope', 'gen_ai.usage.input_tokens': 1 } },
      { name: 'routewatch.task faq', attributes: { 'routewatch.cohort': 'faq' } },
    ]);
    expect(result.costSources).toEqual({ span: 1, price_table: 1, unpriced: 2 });
  });
});

describe('Anthropic cache counts under the underscore names', () => {
  it('reads gen_ai.usage.cache_read_input_tokens and cache_creation_input_tokens', () => {
    const row = only([
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
    ]);
    expect(row).toMatchObject({ cache_read_tokens: 8_000, cache_creation_tokens: 1_000 });
    // 1k uncached at 3, 8k read at 0.3, 1k written at 3.75, 100 out at 15: not 10k at 3.
    expect(row.cost_usd).toBeCloseTo((1_000 * 3 + 8_000 * 0.3 + 1_000 * 3.75 + 100 * 15) / 1e6, 12);
  });

  it('adds the cache back to an input count that left it out (the Anthropic API own counts)', () => {
    const row = only([
      {
        attributes: {
          'gen_ai.system': 'anthropic',
          'gen_ai.request.model': 'claude-sonnet-4',
          'gen_ai.usage.input_tokens': 50,
          'gen_ai.usage.cache_read_input_tokens': 8_000,
        },
      },
    ]);
    expect(row.input_tokens).toBe(8_050);
  });
});

describe('OpenInference', () => {
  it('reads the request model from the invocation parameters and the operation from the span kind', () => {
    // @arizeai/openinference-instrumentation-openai overwrites llm.model_name with the served model.
    const row = only([
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
    ]);
    expect(row).toMatchObject({
      kind: 'llm',
      operation: 'chat',
      request_model: 'gpt-4o-mini',
      response_model: 'gpt-4o-mini-2024-07-18',
      cost_source: 'price_table',
    });
  });

  it('names embeddings, and keeps chain and tool spans out of the model calls', () => {
    const rows = normalize([
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
    ]).rows;
    expect(rows.map((r) => [r.kind, r.operation, r.request_model])).toEqual([
      ['llm', 'embeddings', 'text-embedding-3-small'],
      ['other', '', ''],
    ]);
    expect(rows[0]!.cost_usd).toBeCloseTo((1000 * 0.02) / 1e6, 12);
  });
});

describe('Vercel AI SDK', () => {
  const traceId = hexId(16);
  const outerId = hexId(8);
  const common = {
    'ai.model.id': 'gpt-4o-mini',
    'ai.model.provider': 'openai.chat',
    'ai.telemetry.functionId': 'answer',
    'routewatch.task.id': 'task-v',
    'routewatch.cohort': 'faq',
  };
  const spans: TestSpan[] = [
    {
      traceId,
      spanId: outerId,
      name: 'ai.generateText',
      kind: 1,
      attributes: {
        ...common,
        'ai.operationId': 'ai.generateText',
        'operation.name': 'ai.generateText answer',
        'ai.usage.inputTokens': 1000,
        'ai.usage.outputTokens': 100,
      },
    },
    {
      traceId,
      name: 'ai.generateText.doGenerate',
      kind: 3,
      attributes: {
        ...common,
        'ai.operationId': 'ai.generateText.doGenerate',
        'operation.name': 'ai.generateText.doGenerate answer',
        // Older versions: usage under ai.usage.* only, with the old names.
        'ai.usage.promptTokens': 1000,
        'ai.usage.completionTokens': 100,
        'ai.response.model': 'gpt-4o-mini-2024-07-18',
      },
    },
  ];

  it('counts a call inside a task once: only the provider request span is a model call', () => {
    const { rows, costSources } = normalize(spans);
    expect(rows.map((r) => r.kind)).toEqual(['other', 'llm']);
    expect(costSources).toEqual({ span: 0, price_table: 1, unpriced: 0 });
  });

  it('reads ai.usage.*, the model and the provider of the inner span', () => {
    const call = normalize(spans).rows[1]!;
    expect(call).toMatchObject({
      operation: 'chat',
      provider: 'openai.chat',
      request_model: 'gpt-4o-mini',
      response_model: 'gpt-4o-mini-2024-07-18',
      input_tokens: 1000,
      output_tokens: 100,
      cost_source: 'price_table',
    });
    expect(call.cost_usd).toBeCloseTo(miniCost(1000, 100), 12);
  });

  it('reads the newer cache and reasoning details', () => {
    const call = only([
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
    ]);
    expect(call).toMatchObject({ kind: 'llm', cache_read_tokens: 600, reasoning_tokens: 200 });
    expect(call.cost_usd).toBeCloseTo((400 * 0.15 + 600 * 0.075 + 300 * 0.6) / 1e6, 12);
  });

  it('prices an embed call from ai.usage.tokens, its one count', () => {
    const call = only([
      {
        attributes: {
          'ai.operationId': 'ai.embed.doEmbed',
          'ai.model.id': 'text-embedding-3-small',
          'ai.model.provider': 'openai.embedding',
          'ai.usage.tokens': 1000,
        },
      },
    ]);
    expect(call).toMatchObject({
      kind: 'llm',
      operation: 'embeddings',
      input_tokens: 1000,
      output_tokens: 0,
      cost_source: 'price_table',
    });
    expect(call.cost_usd).toBeCloseTo((1000 * 0.02) / 1e6, 12);
  });
});

describe('Langfuse generations', () => {
  const generation = (attributes: Record<string, string | number | boolean>): TestSpan => ({
    name: 'answer',
    kind: 1,
    attributes: {
      'langfuse.observation.type': 'generation',
      'langfuse.observation.model.name': 'gpt-4o-mini',
      ...attributes,
    },
  });

  it('stores a generation outside any task, reading model and usage_details', () => {
    const row = only([
      generation({
        'langfuse.observation.usage_details': '{"input":800,"output":50,"input_cached_tokens":200}',
      }),
    ]);
    expect(row).toMatchObject({
      kind: 'llm',
      operation: 'chat',
      request_model: 'gpt-4o-mini',
      // Langfuse's buckets are disjoint: the cached tokens are part of the input here.
      input_tokens: 1000,
      cache_read_tokens: 200,
      output_tokens: 50,
      cost_source: 'price_table',
    });
    expect(row.cost_usd).toBeCloseTo((800 * 0.15 + 200 * 0.075 + 50 * 0.6) / 1e6, 12);
  });

  it('takes cost_details as the reported cost: its total, else the sum of its parts', () => {
    const total = only([
      generation({
        'langfuse.observation.cost_details': '{"input":0.1,"output":0.2,"total":0.25}',
      }),
    ]);
    expect(total).toMatchObject({ cost_usd: 0.25, cost_source: 'span' });
    const parts = only([
      generation({ 'langfuse.observation.cost_details': '{"input":0.1,"output":0.2}' }),
    ]);
    expect(parts.cost_usd).toBeCloseTo(0.3, 12);
  });

  it('keeps other observations out of the model calls, and unrelated ones out of the store', () => {
    const { rows, skipped } = normalize([
      { attributes: { 'langfuse.observation.type': 'span' } },
      { attributes: { 'langfuse.observation.type': 'span', 'routewatch.cohort': 'faq' } },
    ]);
    expect(skipped).toBe(1);
    expect(rows.map((r) => r.kind)).toEqual(['other']);
  });
});

describe('mapping foreign attributes', () => {
  const mapping = compileMapping({
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
    task_spans: [{ attribute: 'langfuse.trace.name', root: true }],
  });

  it('derives cohort, route and task id, and makes the derived route the primary attempt', () => {
    const row = only(
      [
        {
          attributes: {
            'gen_ai.request.model': 'gpt-4o-mini',
            'ai.telemetry.metadata.route': 'small',
            metadata: '{"cohort":"billing"}',
            'session.id': 'ticket-42',
          },
        },
      ],
      mapping,
    );
    expect(row).toMatchObject({ cohort: 'billing', route: 'small', attempt: 1, task_id: '42' });
  });

  it('reads resource attributes, and never overrides the span own routewatch attributes', () => {
    const body = otlpBody([
      {
        attributes: {
          'gen_ai.request.model': 'gpt-4o-mini',
          'routewatch.cohort': 'faq',
          'routewatch.route': 'large',
          'routewatch.attempt': 2,
          'ai.telemetry.metadata.route': 'small',
        },
      },
      { attributes: { 'gen_ai.request.model': 'gpt-4o-mini' } },
    ]) as { resourceSpans: { resource: { attributes: unknown[] } }[] };
    body.resourceSpans[0]!.resource.attributes.push(
      { key: 'service.namespace', value: { stringValue: 'support' } },
      { key: 'service.version', value: { stringValue: 'v7' } },
    );
    const { rows } = normalizeRequest(validateTraceRequest(body), prices, undefined, mapping);
    expect(rows.map((r) => [r.cohort, r.route, r.attempt, r.policy_version])).toEqual([
      ['faq', 'large', 2, 'v7'],
      ['support', '', 0, 'v7'],
    ]);
  });

  it('makes a matching root span the task span, stored with its mapped outcome', () => {
    const root = hexId(8);
    const { rows, skipped } = normalize(
      [
        {
          spanId: root,
          name: 'support-answer',
          kind: 1,
          attributes: {
            'langfuse.trace.name': 'support-answer',
            'langfuse.trace.metadata.cohort': 'refunds',
            'langfuse.trace.metadata.result': 'resolved',
          },
        },
        // Not a root: the condition does not hold, and nothing else makes it relevant.
        { parentSpanId: root, name: 'child', kind: 1, attributes: { 'langfuse.trace.name': 'x' } },
      ],
      mapping,
    );
    expect(skipped).toBe(1);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ kind: 'task', cohort: 'refunds', outcome: 'success' });
  });

  it('leaves spans alone without a mapping', () => {
    const { skipped } = normalize([{ name: 'x', attributes: { 'langfuse.trace.name': 'x' } }]);
    expect(skipped).toBe(1);
  });
});
