import { metrics } from '@opentelemetry/api';
import { OpenAIInstrumentation } from '@opentelemetry/instrumentation-openai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callCostUsd } from '../../examples/pricing-truth.js';
import type { MockLlm } from '../../examples/mock-llm.js';
import { runAttempt, runTask } from '../../instrumentation/src/index.js';
import { QUESTION, exportTo, startCollector, startReliableLlm } from '../support/third-party.js';
import type { ExportingTracing, ListeningCollector } from '../support/third-party.js';

// The official OpenTelemetry OpenAI instrumentation (@opentelemetry/instrumentation-openai),
// end to end: simulated LLM → SDK → OTLP/HTTP protobuf → collector → embedded ClickHouse.

let llm: MockLlm;
let collector: ListeningCollector;
let tracing: ExportingTracing;
let client: OpenAI;

beforeAll(async () => {
  llm = await startReliableLlm();
  collector = await startCollector();
  tracing = exportTo(collector.tracesUrl);
  const official = new OpenAIInstrumentation();
  official.setTracerProvider(tracing.provider);
  // As registerInstrumentations does: the stream path records metrics with instruments that only
  // setMeterProvider creates (the constructor's are reset by the subclass's field initializers).
  official.setMeterProvider(metrics.getMeterProvider());
  // No require hook sees vitest's import: apply the patch to the loaded module directly.
  const openaiModule: unknown = await import('openai');
  for (const definition of official.getModuleDefinitions())
    definition.patch?.(openaiModule, '6.30.1');
  client = new OpenAI({ apiKey: 'test', baseURL: llm.url, maxRetries: 0 });
});

afterAll(async () => {
  await tracing.shutdown();
  await collector.close();
  await llm.close();
});

describe('@opentelemetry/instrumentation-openai end to end', () => {
  it('stores a call inside runTask with its model, tokens, price-table cost and task', async () => {
    let taskId = '';
    const response = await runTask({ cohort: 'faq' }, (task) => {
      taskId = task.taskId;
      return runAttempt({ route: 'small' }, () =>
        client.chat.completions.create({ model: 'gpt-4o-mini', messages: QUESTION }),
      );
    });
    await tracing.flush();
    const usage = {
      inputTokens: response.usage!.prompt_tokens,
      outputTokens: response.usage!.completion_tokens,
    };
    const calls = (await collector.storedSpans()).filter((s) => s.kind === 'llm');
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({
      task_id: taskId,
      cohort: 'faq',
      route: 'small',
      attempt: 1,
      provider: 'openai',
      operation: 'chat',
      request_model: 'gpt-4o-mini',
      response_model: 'gpt-4o-mini-2024-07-18',
      input_tokens: usage.inputTokens,
      output_tokens: usage.outputTokens,
      cost_source: 'price_table',
      price_ref: 'genai-prices@0.1.8:openai/gpt-4o-mini',
    });
    expect(calls[0]!.cost_usd).toBeCloseTo(callCostUsd('gpt-4o-mini', usage), 12);
  });

  it('stores a stream that carried no usage as unpriced, and one that did as priced', async () => {
    for (const includeUsage of [false, true]) {
      const stream = await client.chat.completions.create({
        model: 'gpt-4o',
        messages: QUESTION,
        stream: true,
        ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
      });
      for await (const _chunk of stream) void _chunk;
    }
    await tracing.flush();
    const streams = (await collector.storedSpans()).filter(
      (s) => s.kind === 'llm' && s.request_model === 'gpt-4o',
    );
    expect(streams.map((s) => [s.cost_source, s.cost_note])).toEqual([
      ['unpriced', 'no_usage'],
      ['price_table', ''],
    ]);
    expect(streams[0]!.cost_usd).toBe(0);
    expect(streams[1]!.cost_usd).toBeGreaterThan(0);
    const metrics = await collector.metrics();
    expect(metrics).toMatch(/routewatch_llm_calls_total\{cost_source="price_table"\} 2\n/);
    expect(metrics).toMatch(/routewatch_llm_calls_total\{cost_source="unpriced"\} 1\n/);
  });
});
