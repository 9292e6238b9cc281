import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOpenAI } from '@ai-sdk/openai';
import { embed, generateText, streamText } from 'ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMockLlm } from '../../examples/mock-llm.js';
import type { MockLlm } from '../../examples/mock-llm.js';
import { callCostUsd } from '../../examples/pricing-truth.js';
import { runAttempt, runTask } from '../../instrumentation/src/index.js';
import { QUESTION, exportTo, startCollector, startReliableLlm } from '../support/third-party.js';
import type { ExportingTracing, ListeningCollector } from '../support/third-party.js';

// The Vercel AI SDK (`ai` with `@ai-sdk/openai`, telemetry on), end to end: simulated LLM → SDK →
// OTLP/HTTP protobuf → collector → embedded ClickHouse. Its tracer is the global one.

// The mapping of docs/mapping.md: cohort from the function id, route from telemetry metadata, the
// whole call as the task when nothing wraps it.
const MAPPING = `
fields:
  cohort: [ { attribute: ai.telemetry.functionId } ]
  route:  [ { attribute: ai.telemetry.metadata.route } ]
task_spans:
  - { attribute: ai.operationId, matches: '^ai\\.(generate|stream)(Text|Object)$', root: true }
`;

let dir: string;
let llm: MockLlm;
let collector: ListeningCollector;
let tracing: ExportingTracing;
let openai: ReturnType<typeof createOpenAI>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'routewatch-vercel-'));
  writeFileSync(join(dir, 'mapping.yaml'), MAPPING);
  llm = await startReliableLlm();
  collector = await startCollector({ ROUTEWATCH_MAPPING: join(dir, 'mapping.yaml') });
  tracing = exportTo(collector.tracesUrl);
  openai = createOpenAI({ apiKey: 'test', baseURL: llm.url });
});

afterAll(async () => {
  await tracing.shutdown();
  await collector.close();
  await llm.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('Vercel AI SDK end to end', () => {
  it('counts a generateText inside runTask once, with ai.usage, cost and the task it joins', async () => {
    let taskId = '';
    const result = await runTask({ cohort: 'faq' }, (task) => {
      taskId = task.taskId;
      return runAttempt({ route: 'small' }, () =>
        generateText({
          // The chat completions API: the simulator does not speak the Responses API.
          model: openai.chat('gpt-4o-mini'),
          system: QUESTION[0]!.content,
          messages: QUESTION.slice(1),
          maxRetries: 0,
          experimental_telemetry: { isEnabled: true, functionId: 'answer' },
        }),
      );
    });
    await tracing.flush();
    const usage = {
      inputTokens: result.usage.inputTokens!,
      outputTokens: result.usage.outputTokens!,
    };
    const stored = await collector.storedSpans();
    const vercel = stored.filter((s) => s.name.startsWith('ai.'));
    // The outer span stays, but as the wrapper it is; the provider request is the one model call.
    expect(vercel.map((s) => [s.name, s.kind])).toEqual([
      ['ai.generateText', 'other'],
      ['ai.generateText.doGenerate', 'llm'],
    ]);
    const calls = stored.filter((s) => s.kind === 'llm');
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({
      task_id: taskId,
      cohort: 'faq',
      route: 'small',
      attempt: 1,
      provider: 'openai.chat',
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

  it('prices a streamText call from the usage it reports at the end of the stream', async () => {
    const result = streamText({
      model: openai.chat('gpt-4o'),
      system: QUESTION[0]!.content,
      messages: QUESTION.slice(1),
      maxRetries: 0,
      experimental_telemetry: { isEnabled: true },
    });
    for await (const _part of result.textStream) void _part;
    const usage = await result.usage;
    await tracing.flush();
    const calls = (await collector.storedSpans()).filter(
      (s) => s.kind === 'llm' && s.request_model === 'gpt-4o',
    );
    expect(calls.map((c) => c.name)).toEqual(['ai.streamText.doStream']);
    expect(calls[0]).toMatchObject({
      input_tokens: usage.inputTokens,
      output_tokens: usage.outputTokens,
      cost_source: 'price_table',
    });
    expect(calls[0]!.cost_usd).toBeCloseTo(
      callCostUsd('gpt-4o', { inputTokens: usage.inputTokens!, outputTokens: usage.outputTokens! }),
      12,
    );
  });

  it('prices an embed call from ai.usage.tokens, its one usage count', async () => {
    // The simulator answers embeddings for any model name, with its fixed answer.
    const embeddings = await startMockLlm({ seed: 13, latencyScale: 0, anyModel: true });
    const result = await embed({
      model: createOpenAI({ apiKey: 'test', baseURL: embeddings.url }).embedding(
        'text-embedding-3-small',
      ),
      value: 'how do I reset my password?',
      maxRetries: 0,
      experimental_telemetry: { isEnabled: true },
    }).finally(() => embeddings.close());
    await tracing.flush();
    const calls = (await collector.storedSpans()).filter(
      (s) => s.kind === 'llm' && s.name === 'ai.embed.doEmbed',
    );
    expect(result.usage.tokens).toBeGreaterThan(0);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({
      operation: 'embeddings',
      request_model: 'text-embedding-3-small',
      input_tokens: result.usage.tokens,
      output_tokens: 0,
      cost_source: 'price_table',
      price_ref: 'genai-prices@0.1.8:openai/text-embedding-3-small',
    });
    // $0.02 per million input tokens.
    expect(calls[0]!.cost_usd).toBeCloseTo((result.usage.tokens * 0.02) / 1e6, 12);
  });

  it('gets task, cohort and route from telemetry metadata through the mapping, without runTask', async () => {
    await generateText({
      model: openai.chat('gpt-4o-mini'),
      system: QUESTION[0]!.content,
      messages: QUESTION.slice(1),
      maxRetries: 0,
      experimental_telemetry: {
        isEnabled: true,
        functionId: 'refunds',
        metadata: { route: 'small' },
      },
    });
    await tracing.flush();
    const stored = (await collector.storedSpans()).filter((s) => s.cohort === 'refunds');
    expect(stored.map((s) => [s.name, s.kind, s.route, s.attempt])).toEqual([
      ['ai.generateText', 'task', 'small', 1],
      ['ai.generateText.doGenerate', 'llm', 'small', 1],
    ]);
    // One task: the trace, whose root is the task span.
    expect(new Set(stored.map((s) => s.task_id)).size).toBe(1);
    expect(stored[1]!.cost_source).toBe('price_table');
  });
});
