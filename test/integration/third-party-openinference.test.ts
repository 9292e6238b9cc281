import { OpenAIInstrumentation } from '@arizeai/openinference-instrumentation-openai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faults } from '../../examples/mock-faults.js';
import type { MockLlm } from '../../examples/mock-llm.js';
import { callCostUsd } from '../../examples/pricing-truth.js';
import { runAttempt, runTask } from '../../instrumentation/src/index.js';
import { QUESTION, exportTo, startCollector, startReliableLlm } from '../support/third-party.js';
import type { ExportingTracing, ListeningCollector } from '../support/third-party.js';

// OpenInference's OpenAI instrumentation (@arizeai/openinference-instrumentation-openai), end to
// end: simulated LLM → SDK → OTLP/HTTP protobuf → collector → embedded ClickHouse.

let llm: MockLlm;
let collector: ListeningCollector;
let tracing: ExportingTracing;
let client: OpenAI;

beforeAll(async () => {
  llm = await startReliableLlm();
  collector = await startCollector();
  tracing = exportTo(collector.tracesUrl);
  const openinference = new OpenAIInstrumentation({ tracerProvider: tracing.provider });
  // A copy of the module record: the patch marks the object it is given.
  openinference.manuallyInstrument({ ...(await import('openai')) } as never);
  client = new OpenAI({ apiKey: 'test', baseURL: llm.url, maxRetries: 0 });
});

afterAll(async () => {
  await tracing.shutdown();
  await collector.close();
  await llm.close();
});

describe('@arizeai/openinference-instrumentation-openai end to end', () => {
  it('stores a call inside runTask with request model, operation, tokens, cost and task', async () => {
    let taskId = '';
    const response = await runTask({ cohort: 'extraction' }, (task) => {
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
      name: 'OpenAI Chat Completions',
      task_id: taskId,
      cohort: 'extraction',
      route: 'small',
      attempt: 1,
      provider: 'openai',
      // Issue 13: both were empty; OpenInference keeps the asked model in its invocation parameters.
      operation: 'chat',
      request_model: 'gpt-4o-mini',
      response_model: 'gpt-4o-mini-2024-07-18',
      input_tokens: usage.inputTokens,
      output_tokens: usage.outputTokens,
      cost_source: 'price_table',
    });
    expect(calls[0]!.cost_usd).toBeCloseTo(callCostUsd('gpt-4o-mini', usage), 12);
  });

  it('stores a stream without usage as unpriced', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: QUESTION,
      stream: true,
    });
    for await (const _chunk of stream) void _chunk;
    await tracing.flush();
    const streamed = (await collector.storedSpans()).filter(
      (s) => s.kind === 'llm' && s.request_model === 'gpt-4o',
    );
    expect(streamed).toHaveLength(1);
    expect(streamed[0]).toMatchObject({
      cost_source: 'unpriced',
      cost_note: 'no_usage',
      cost_usd: 0,
    });
  });
  it('counts the SDK’s own retries of a call on its span, through the span OpenInference wraps', async () => {
    // Review audit-C: OpenInference's active span is an OISpan wrapping the SDK's span, whose
    // attributes the counting could not read: 4 requests made, http_attempts 0.
    const retrying = new OpenAI({ apiKey: 'test', baseURL: llm.url }); // the default maxRetries
    llm.setFaults([faults.status('gpt-4o', 429, { times: 2, retryAfterSeconds: 0.02 })]);
    const before = llm.requests;
    try {
      await retrying.chat.completions.create({ model: 'gpt-4o', messages: QUESTION });
    } finally {
      llm.setFaults([]);
    }
    expect(llm.requests - before).toBe(3);
    await tracing.flush();
    const rows = (
      await collector.sqlRows(
        `SELECT http_attempts, http_retry_wait_ms FROM spans FINAL
         WHERE kind = 'llm' AND request_model = 'gpt-4o' AND cost_source = 'price_table'`,
      )
    ).map((row) => [Number(row['http_attempts']), Number(row['http_retry_wait_ms'])]);
    expect(rows).toHaveLength(1);
    expect(rows[0]![0]).toBe(3);
    expect(rows[0]![1]).toBeGreaterThanOrEqual(40);
  });
});
