import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OpenAIInstrumentation as OfficialOpenAIInstrumentation } from '@opentelemetry/instrumentation-openai';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RoutewatchSpanProcessor, runAttempt, runTask } from '../../instrumentation/src/index.js';
import {
  ATTR_ATTEMPT,
  ATTR_COHORT,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_ROUTE,
  ATTR_TASK_ID,
} from '../../instrumentation/src/semconv.js';
import { startMockLlm, type MockLlm } from '../../examples/mock-llm.js';

// The stamping processor tags the spans of another LLM instrumentation: here the official
// OpenTelemetry one, with our own OpenAI capture left off (its own process: vitest forks).

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({
  spanProcessors: [new RoutewatchSpanProcessor(), new SimpleSpanProcessor(exporter)],
});
const official = new OfficialOpenAIInstrumentation();
let llm: MockLlm;

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
  official.setTracerProvider(provider);
  // No require hook sees vitest's import: apply the official patch to the loaded module directly.
  const openaiModule: unknown = await import('openai');
  for (const definition of official.getModuleDefinitions()) {
    definition.patch?.(openaiModule, '6.30.1');
  }
  llm = await startMockLlm({ anyModel: true });
});

afterAll(async () => {
  await llm.close();
  await provider.shutdown();
  trace.disable();
  context.disable();
});

describe('stamping onto spans of @opentelemetry/instrumentation-openai', () => {
  it('tags its chat span with task id, cohort, route and attempt', async () => {
    const client = new OpenAI({ apiKey: 'test', baseURL: llm.url, maxRetries: 0 });
    let taskId = '';
    await runTask({ cohort: 'policy' }, async (task) => {
      taskId = task.taskId;
      await runAttempt({ route: 'small' }, () => undefined);
      await runAttempt({ route: 'large', fallbackReason: 'validation_failed' }, () =>
        client.chat.completions.create({
          model: 'gpt-large',
          messages: [{ role: 'user', content: 'hi' }],
        }),
      );
    });
    const officialSpans = () =>
      exporter
        .getFinishedSpans()
        .filter((span) => span.instrumentationScope.name.includes('instrumentation-openai'));
    await vi.waitFor(() => expect(officialSpans()).toHaveLength(1));
    const [span] = officialSpans();
    expect(span!.name).toBe('chat gpt-large');
    expect(span!.attributes).toMatchObject({
      [ATTR_TASK_ID]: taskId,
      [ATTR_COHORT]: 'policy',
      [ATTR_ROUTE]: 'large',
      [ATTR_ATTEMPT]: 2,
      [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 12,
    });
  });
});
