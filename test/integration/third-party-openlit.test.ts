import { trace } from '@opentelemetry/api';
import type { ProxyTracerProvider } from '@opentelemetry/api';
import { Openlit } from 'openlit';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MockLlm } from '../../examples/mock-llm.js';
import { callCostUsd } from '../../examples/pricing-truth.js';
import { runAttempt, runTask } from '../../instrumentation/src/index.js';
import { QUESTION, startCollector, startReliableLlm } from '../support/third-party.js';
import type { ListeningCollector } from '../support/third-party.js';

// OpenLIT's JS SDK (openlit 1.15, runs on Node 20), end to end: `openlit.init` sets up its own
// tracer provider and OTLP/HTTP JSON exporter, pointed at the collector. OpenLIT prices calls from
// a pricing JSON (fetched from the network by default; given inline here) and sends a cost of 0
// for a model it has no price for.

/** OpenLIT's pricing JSON: USD per 1,000 tokens. gpt-4o only, at a price of our own. */
const OPENLIT_PRICES = { chat: { 'gpt-4o': { promptPrice: 0.01, completionPrice: 0.03 } } };

let llm: MockLlm;
let collector: ListeningCollector;
let client: OpenAI;

/** Waits until OpenLIT's exporter has delivered every ended span. */
const flush = () =>
  (
    (trace.getTracerProvider() as ProxyTracerProvider).getDelegate() as unknown as {
      forceFlush(): Promise<void>;
    }
  ).forceFlush();

beforeAll(async () => {
  llm = await startReliableLlm();
  collector = await startCollector();
  Openlit.init({
    applicationName: 'openlit-test',
    otlpEndpoint: collector.tracesUrl.replace(/\/v1\/traces$/, ''),
    disableBatch: true,
    disableMetrics: true,
    disableEvents: true,
    pricingJson: OPENLIT_PRICES,
    // A copy of the module record: the patch wraps the prototypes it reaches through it.
    instrumentations: { openai: { ...(await import('openai')) } },
  });
  client = new OpenAI({ apiKey: 'test', baseURL: llm.url, maxRetries: 0 });
});

afterAll(async () => {
  await collector.close();
  await llm.close();
});

describe('OpenLIT JS SDK end to end', () => {
  it('keeps the cost OpenLIT computed, and the call joins the task of its trace', async () => {
    let taskId = '';
    const response = await runTask({ cohort: 'faq' }, (task) => {
      taskId = task.taskId;
      return runAttempt({ route: 'large' }, () =>
        client.chat.completions.create({ model: 'gpt-4o', messages: QUESTION }),
      );
    });
    await flush();
    const calls = (await collector.storedSpans()).filter(
      (s) => s.kind === 'llm' && s.request_model === 'gpt-4o',
    );
    expect(calls).toHaveLength(1);
    const usage = response.usage!;
    expect(calls[0]).toMatchObject({
      // OpenLIT's own provider has no stamping processor: the call joins the task by its trace
      // (runTask's default task id), without a cohort or route of its own.
      task_id: taskId,
      provider: 'openai',
      operation: 'chat',
      response_model: 'gpt-4o-2024-08-06',
      input_tokens: usage.prompt_tokens,
      output_tokens: usage.completion_tokens,
      cost_source: 'span',
    });
    expect(calls[0]!.cost_usd).toBeCloseTo(
      (usage.prompt_tokens * 0.01 + usage.completion_tokens * 0.03) / 1000,
      12,
    );
    const stored = await collector.storedSpans();
    expect(stored.find((s) => s.kind === 'task')).toMatchObject({ task_id: taskId, cohort: 'faq' });
  });

  it('sets aside the 0 OpenLIT sends for a model it cannot price, and prices the tokens', async () => {
    const response = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: QUESTION,
    });
    await flush();
    const calls = (await collector.storedSpans()).filter(
      (s) => s.kind === 'llm' && s.request_model === 'gpt-4o-mini',
    );
    expect(calls).toHaveLength(1);
    const usage = {
      inputTokens: response.usage!.prompt_tokens,
      outputTokens: response.usage!.completion_tokens,
    };
    expect(calls[0]).toMatchObject({
      cost_source: 'price_table',
      cost_note: 'reported_zero_ignored',
    });
    expect(calls[0]!.cost_usd).toBeCloseTo(callCostUsd('gpt-4o-mini', usage), 12);
  });
});
