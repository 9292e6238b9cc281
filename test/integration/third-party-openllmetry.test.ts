import { OpenAIInstrumentation } from '@traceloop/instrumentation-openai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MockLlm } from '../../examples/mock-llm.js';
import { callCostUsd } from '../../examples/pricing-truth.js';
import { runAttempt, runTask } from '../../instrumentation/src/index.js';
import { QUESTION, exportTo, startCollector, startReliableLlm } from '../support/third-party.js';
import type { ExportingTracing, ListeningCollector } from '../support/third-party.js';

// OpenLLMetry's OpenAI instrumentation (@traceloop/instrumentation-openai), end to end: simulated
// LLM → SDK → OTLP/HTTP protobuf → collector → embedded ClickHouse.

let llm: MockLlm;
let collector: ListeningCollector;
let tracing: ExportingTracing;
let client: OpenAI;

beforeAll(async () => {
  llm = await startReliableLlm();
  collector = await startCollector();
  tracing = exportTo(collector.tracesUrl);
  // Token estimates for streams off (the default of the instrumentation alone): a stream then
  // carries no usage, the case issue 13 found counted as $0.
  const openllmetry = new OpenAIInstrumentation({ enrichTokens: false });
  openllmetry.setTracerProvider(tracing.provider);
  openllmetry.manuallyInstrument(OpenAI);
  client = new OpenAI({ apiKey: 'test', baseURL: llm.url, maxRetries: 0 });
});

afterAll(async () => {
  await tracing.shutdown();
  await collector.close();
  await llm.close();
});

describe('@traceloop/instrumentation-openai end to end', () => {
  it('stores a call inside runTask with its model, tokens, price-table cost and task', async () => {
    let taskId = '';
    const response = await runTask({ cohort: 'policy' }, (task) => {
      taskId = task.taskId;
      return runAttempt({ route: 'large' }, () =>
        client.chat.completions.create({ model: 'gpt-4o', messages: QUESTION }),
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
      cohort: 'policy',
      route: 'large',
      attempt: 1,
      provider: 'openai',
      operation: 'chat',
      request_model: 'gpt-4o',
      response_model: 'gpt-4o-2024-08-06',
      input_tokens: usage.inputTokens,
      output_tokens: usage.outputTokens,
      cost_source: 'price_table',
      price_ref: 'genai-prices@0.1.8:openai/gpt-4o',
    });
    expect(calls[0]!.cost_usd).toBeCloseTo(callCostUsd('gpt-4o', usage), 12);
  });

  it('stores a stream without usage as unpriced, never as $0 priced', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: QUESTION,
      stream: true,
    });
    for await (const _chunk of stream) void _chunk;
    await tracing.flush();
    const streamed = (await collector.storedSpans()).filter(
      (s) => s.kind === 'llm' && s.request_model === 'gpt-4o-mini',
    );
    expect(streamed).toHaveLength(1);
    expect(streamed[0]).toMatchObject({
      cost_usd: 0,
      cost_source: 'unpriced',
      cost_note: 'no_usage',
      input_tokens: 0,
    });
  });
});
