import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { BasicTracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI, { APIPromise } from 'openai';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  instrumentAnthropic,
  instrumentOpenAI,
  runAttempt,
  runTask,
  type OpenAICaptureOptions,
} from '../../instrumentation/src/index.js';
import {
  ATTEMPT_SPAN_PREFIX,
  ATTR_ATTEMPT,
  ATTR_COHORT,
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_INPUT_MESSAGES,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_OUTPUT_MESSAGES,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MAX_TOKENS,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  ATTR_GEN_AI_RESPONSE_ID,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_SYSTEM_INSTRUCTIONS,
  ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
  ATTR_ROUTE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_TASK_ID,
  ERROR_TYPE_STREAM_ABORTED,
} from '../../instrumentation/src/semconv.js';
import { faults } from '../../examples/mock-faults.js';
import { startMockLlm, type MockLlm } from '../../examples/mock-llm.js';
import { useInMemoryTracing } from '../support/in-memory-tracing.js';
import { endOpenStreams } from '../../instrumentation/src/capture/span-lifecycle.js';

// The OpenAI (chat completions, responses, embeddings) and Anthropic SDKs against the simulated
// LLM, which answers any model with its fixed answer (`hello`, exact token counts) and fails the
// models named for a fault; rejections compared with what the same call gives uninstrumented.

const { exporter, diagMessages, spanNamed, provider } = useInMemoryTracing();
// Mutated by the content-capture tests: the patch reads its options on every call.
const captureOptions: OpenAICaptureOptions = {};

let llm: MockLlm;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  llm = await startMockLlm({
    anyModel: true,
    recordRequests: true,
    faults: [
      faults.status('fail-500', 500),
      faults.status('rate-limited', 429),
      faults.slow('slow', 3_000),
      faults.stall('stall', 3_000),
    ],
  });
  instrumentOpenAI(await import('openai'), captureOptions);
  instrumentOpenAI(await import('openai'), captureOptions); // idempotent: still one span per call
  instrumentAnthropic(await import('@anthropic-ai/sdk'), captureOptions);
  instrumentAnthropic(await import('@anthropic-ai/sdk'), captureOptions); // idempotent
  openai = new OpenAI({ apiKey: 'test', baseURL: llm.url, maxRetries: 0 });
  // Built after the provider is registered: this SDK version would emit its own spans too.
  anthropic = new Anthropic({ apiKey: 'test', baseURL: llm.origin, maxRetries: 0 });
});

afterEach(() => {
  llm.received.length = 0;
  delete captureOptions.captureContent;
  delete captureOptions.requestStreamUsage;
});

afterAll(async () => {
  await llm.close();
});

async function onlySpan(): Promise<ReadableSpan> {
  await vi.waitFor(() => expect(exporter.getFinishedSpans()).toHaveLength(1));
  return exporter.getFinishedSpans()[0]!;
}

/** Calls the SDK method as it was before we patched it. */
function uninstrumented<T>(method: unknown, self: unknown, ...args: unknown[]): T {
  const original = (method as Record<symbol, unknown>)[Symbol.for('routewatch.original')];
  expect(typeof original).toBe('function');
  return (original as (...a: unknown[]) => T).apply(self, args);
}

const ask = { messages: [{ role: 'user' as const, content: 'hi' }] };

describe('OpenAI capture: chat completions', () => {
  it('records a CLIENT span with GenAI attributes, tagged with the routing context', async () => {
    let taskId = '';
    const response = await runTask({ cohort: 'faq' }, (task) => {
      taskId = task.taskId;
      return runAttempt({ route: 'small' }, () =>
        openai.chat.completions.create({ ...ask, model: 'gpt-small', n: 2 }),
      );
    });
    expect(response.id).toBe('chatcmpl-mock');
    const span = spanNamed('chat gpt-small');
    expect(span.kind).toBe(SpanKind.CLIENT);
    expect(span.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(span.attributes).toEqual(
      expect.objectContaining({
        [ATTR_GEN_AI_OPERATION_NAME]: 'chat',
        [ATTR_GEN_AI_PROVIDER_NAME]: 'openai',
        [ATTR_GEN_AI_REQUEST_MODEL]: 'gpt-small',
        [ATTR_GEN_AI_RESPONSE_MODEL]: 'gpt-small-served',
        [ATTR_GEN_AI_RESPONSE_ID]: 'chatcmpl-mock',
        [ATTR_GEN_AI_RESPONSE_FINISH_REASONS]: ['stop', 'stop'],
        [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 12,
        [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: 3,
        [ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS]: 4,
        [ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS]: 1,
        [ATTR_SERVER_ADDRESS]: '127.0.0.1',
        [ATTR_SERVER_PORT]: Number(new URL(llm.origin).port),
        [ATTR_TASK_ID]: taskId,
        [ATTR_COHORT]: 'faq',
        [ATTR_ROUTE]: 'small',
        [ATTR_ATTEMPT]: 1,
      }),
    );
    expect(span.parentSpanContext?.spanId).toBe(
      spanNamed(`${ATTEMPT_SPAN_PREFIX} small`).spanContext().spanId,
    );
  });

  it('returns the SDK promise so .withResponse() keeps working', async () => {
    const promise = openai.chat.completions.create({ ...ask, model: 'gpt-small' });
    expect(promise).toBeInstanceOf(APIPromise);
    const { data, response } = await promise.withResponse();
    expect(data.id).toBe('chatcmpl-mock');
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toBe('req-mock');
    await vi.waitFor(() => expect(spanNamed('chat gpt-small').ended).toBe(true));
  });

  it.each([
    ['fail-500', 500, OpenAI.InternalServerError],
    ['rate-limited', 429, OpenAI.RateLimitError],
  ] as const)(
    'ends the span with ERROR on a %s reply and hands the caller the SDK error unchanged',
    async (model, status, ErrorClass) => {
      const caught = await openai.chat.completions
        .create({ ...ask, model })
        .catch((error: unknown) => error);
      expect(caught).toBeInstanceOf(ErrorClass);
      expect(caught).toBeInstanceOf(OpenAI.APIError);
      expect((caught as InstanceType<typeof OpenAI.APIError>).status).toBe(status);
      await vi.waitFor(() => expect(exporter.getFinishedSpans()).toHaveLength(1));
      const span = spanNamed(`chat ${model}`);
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      expect(span.attributes[ATTR_ERROR_TYPE]).toBe(String(status));
    },
  );

  it('uses the error class name as error.type when there is no HTTP status', async () => {
    const unreachable = new OpenAI({
      apiKey: 'test',
      baseURL: 'http://127.0.0.1:1/v1',
      maxRetries: 0,
    });
    const caught = await unreachable.chat.completions
      .create({ ...ask, model: 'gpt-small' })
      .catch((error: unknown) => error);
    expect(caught).toBeInstanceOf(OpenAI.APIConnectionError);
    await vi.waitFor(() => expect(exporter.getFinishedSpans()).toHaveLength(1));
    expect(spanNamed('chat gpt-small').attributes[ATTR_ERROR_TYPE]).toBe('APIConnectionError');
  });

  it('captures a stream when it is consumed, keeping the SDK Stream and its tee()', async () => {
    const stream = await openai.chat.completions.create({
      ...ask,
      model: 'gpt-small',
      stream: true,
      stream_options: { include_usage: true },
    });
    const [left, right] = stream.tee();
    const text: string[] = [];
    for await (const chunk of left) text.push(chunk.choices[0]?.delta.content ?? '');
    expect(text.join('')).toBe('hello');
    let rightChunks = 0;
    for await (const _chunk of right) rightChunks += 1;
    expect(rightChunks).toBe(3);
    const span = spanNamed('chat gpt-small');
    expect(span.attributes).toMatchObject({
      [ATTR_GEN_AI_RESPONSE_ID]: 'chatcmpl-stream',
      [ATTR_GEN_AI_RESPONSE_MODEL]: 'gpt-small-served',
      [ATTR_GEN_AI_RESPONSE_FINISH_REASONS]: ['stop'],
      [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 9,
      [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: 2,
    });
  });

  it('passes a throwing params getter through to the SDK as if uninstrumented', async () => {
    const getterError = new Error('model getter exploded');
    const params = {
      ...ask,
      get model(): string {
        throw getterError;
      },
    };
    let caught: unknown;
    try {
      await openai.chat.completions.create(params);
    } catch (error) {
      caught = error;
    }
    // Whatever the SDK does with the params (it serializes them and fails), the caller sees the
    // getter's own error, not one of ours.
    expect(caught).toBe(getterError);
    await vi.waitFor(() => expect(exporter.getFinishedSpans()).toHaveLength(1));
    expect(spanNamed('chat').status.code).toBe(SpanStatusCode.ERROR);
  });

  it('survives a response whose usage getter throws and hands it back unchanged', async () => {
    const usageError = new Error('usage getter exploded');
    const response = {
      id: 'chatcmpl-odd',
      model: 'odd-model',
      choices: [{ index: 0, finish_reason: 'stop' }],
      get usage(): never {
        throw usageError;
      },
    };
    // A stand-in SDK module: the same shape our patch looks for, resolving to the odd response.
    class Completions {
      create(_body: unknown): Promise<unknown> {
        return Promise.resolve(response);
      }
    }
    class Chat {
      static Completions = Completions;
    }
    class FakeOpenAI {
      static Chat = Chat;
    }
    instrumentOpenAI({ OpenAI: FakeOpenAI, default: FakeOpenAI });
    const result = await new Completions().create({ model: 'odd-model' });
    expect(result).toBe(response);
    await vi.waitFor(() => expect(exporter.getFinishedSpans()).toHaveLength(1));
    const span = spanNamed('chat odd-model');
    expect(span.attributes[ATTR_GEN_AI_RESPONSE_ID]).toBe('chatcmpl-odd');
    expect(span.attributes[ATTR_GEN_AI_USAGE_INPUT_TOKENS]).toBeUndefined();
    expect(diagMessages.some((m) => m.level === 'error' && /OpenAI response/.test(m.message))).toBe(
      true,
    );
  });
});

describe('OpenAI capture: streams', () => {
  it('asks for usage on a chat stream, records it, and hides what that adds from the caller', async () => {
    const stream = await runTask({ cohort: 'faq' }, () =>
      runAttempt({ route: 'small' }, () =>
        openai.chat.completions.create({ ...ask, model: 'gpt-small', stream: true }),
      ),
    );
    const received: unknown[] = [];
    for await (const chunk of stream) received.push(chunk);
    // What the caller receives is what the server sends without include_usage.
    expect(received).toHaveLength(2);
    for (const chunk of received) expect(chunk).not.toHaveProperty('usage');
    const sent = llm.received[0]!.body;
    expect(sent['stream_options']).toEqual({ include_usage: true });
    const span = spanNamed('chat gpt-small');
    expect(span.attributes).toMatchObject({
      [ATTR_GEN_AI_RESPONSE_MODEL]: 'gpt-small-served',
      [ATTR_GEN_AI_RESPONSE_FINISH_REASONS]: ['stop'],
      [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 9,
      [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: 2,
      [ATTR_COHORT]: 'faq',
      [ATTR_ROUTE]: 'small',
      [ATTR_ATTEMPT]: 1,
    });
  });

  it('ends the span of a stream dropped half-read at shutdown, with what was read, at its last chunk', async () => {
    const stream = await openai.chat.completions.create({
      ...ask,
      model: 'gpt-small',
      stream: true,
    });
    const iterator = stream[Symbol.asyncIterator]();
    // A read in flight: the stream is being read (an app finishing it in its own shutdown), not
    // dropped, and is left to end as it will.
    const reading = iterator.next();
    endOpenStreams();
    await reading;
    expect(exporter.getFinishedSpans().some((s) => s.name === 'chat gpt-small')).toBe(false);
    const readAt = Date.now();
    await sleep(30);
    expect(exporter.getFinishedSpans().some((s) => s.name === 'chat gpt-small')).toBe(false);
    // Dropped: neither read to its end, nor broken out of, nor aborted.
    endOpenStreams();
    const span = spanNamed('chat gpt-small');
    expect(span.attributes[ATTR_GEN_AI_RESPONSE_MODEL]).toBe('gpt-small-served');
    // No usage seen (it comes last): the call stays, its cost unknown rather than $0.
    expect(span.attributes[ATTR_GEN_AI_USAGE_INPUT_TOKENS]).toBeUndefined();
    expect(span.status.code).not.toBe(SpanStatusCode.ERROR);
    const endMs = span.endTime[0] * 1000 + span.endTime[1] / 1e6;
    expect(endMs).toBeLessThanOrEqual(readAt + 5);
    // Once ended, never again.
    endOpenStreams();
    expect(exporter.getFinishedSpans().filter((s) => s.name === 'chat gpt-small')).toHaveLength(1);
  });

  it('leaves the caller’s params object untouched when it adds stream_options', async () => {
    const params = { ...ask, model: 'gpt-small', stream: true as const };
    const stream = await openai.chat.completions.create(params);
    for await (const _chunk of stream) void _chunk;
    expect(params).not.toHaveProperty('stream_options');
  });

  it('does not ask for usage when requestStreamUsage is off', async () => {
    captureOptions.requestStreamUsage = false;
    const stream = await openai.chat.completions.create({
      ...ask,
      model: 'gpt-small',
      stream: true,
    });
    for await (const _chunk of stream) void _chunk;
    expect(llm.received[0]!.body).not.toHaveProperty('stream_options');
    const span = spanNamed('chat gpt-small');
    expect(span.attributes[ATTR_GEN_AI_USAGE_INPUT_TOKENS]).toBeUndefined();
    expect(span.attributes[ATTR_GEN_AI_RESPONSE_FINISH_REASONS]).toEqual(['stop']);
  });

  it('keeps .tee() and .controller on the SDK stream, hiding the usage chunk on both sides', async () => {
    const stream = await openai.chat.completions.create({
      ...ask,
      model: 'gpt-small',
      stream: true,
    });
    expect(stream.controller).toBeInstanceOf(AbortController);
    const [left, right] = stream.tee();
    let leftCount = 0;
    for await (const _chunk of left) leftCount += 1;
    let rightCount = 0;
    for await (const _chunk of right) rightCount += 1;
    expect([leftCount, rightCount]).toEqual([2, 2]);
    expect(spanNamed('chat gpt-small').attributes[ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]).toBe(2);
  });

  it('ends the span of a stream aborted through its controller mid-way', async () => {
    const stream = await openai.chat.completions.create({
      ...ask,
      model: 'stall',
      stream: true,
    });
    const received: unknown[] = [];
    for await (const chunk of stream) {
      received.push(chunk);
      stream.controller.abort();
    }
    expect(received).toHaveLength(1);
    const span = await onlySpan();
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes[ATTR_ERROR_TYPE]).toBe(ERROR_TYPE_STREAM_ABORTED);
    expect(span.attributes[ATTR_GEN_AI_RESPONSE_ID]).toBe('chatcmpl-stream');
  });

  it('ends the span of a stream aborted before anyone read it', async () => {
    const stream = await openai.chat.completions.create({
      ...ask,
      model: 'gpt-small',
      stream: true,
    });
    stream.controller.abort();
    const span = await onlySpan();
    expect(span.ended).toBe(true);
    expect(span.attributes[ATTR_ERROR_TYPE]).toBe(ERROR_TYPE_STREAM_ABORTED);
  });

  it('ends the span without error when the caller breaks out of the loop', async () => {
    const stream = await openai.chat.completions.create({
      ...ask,
      model: 'gpt-small',
      stream: true,
    });
    for await (const _chunk of stream) break;
    const span = await onlySpan();
    expect(span.status.code).not.toBe(SpanStatusCode.ERROR);
  });
});

describe('OpenAI capture: responses and embeddings', () => {
  it('records responses.create with usage, cached and reasoning tokens', async () => {
    const promise = openai.responses.create({ model: 'gpt-r', input: 'hi', max_output_tokens: 50 });
    expect(promise).toBeInstanceOf(APIPromise);
    const { data, response } = await promise.withResponse();
    expect(data.output_text).toBe('hello');
    expect(response.headers.get('x-request-id')).toBe('req-mock');
    const span = await onlySpan();
    expect(span.name).toBe('chat gpt-r');
    expect(span.kind).toBe(SpanKind.CLIENT);
    expect(span.attributes).toMatchObject({
      [ATTR_GEN_AI_OPERATION_NAME]: 'chat',
      [ATTR_GEN_AI_PROVIDER_NAME]: 'openai',
      [ATTR_GEN_AI_REQUEST_MODEL]: 'gpt-r',
      [ATTR_GEN_AI_REQUEST_MAX_TOKENS]: 50,
      [ATTR_GEN_AI_RESPONSE_MODEL]: 'gpt-r-served',
      [ATTR_GEN_AI_RESPONSE_ID]: 'resp-mock',
      [ATTR_GEN_AI_RESPONSE_FINISH_REASONS]: ['stop'],
      [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 20,
      [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: 5,
      [ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS]: 8,
      [ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS]: 2,
    });
  });

  it('records a streamed responses.create from its response.completed event', async () => {
    const stream = await openai.responses.create({ model: 'gpt-r', input: 'hi', stream: true });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    expect(types).toEqual(['response.created', 'response.output_text.delta', 'response.completed']);
    expect(spanNamed('chat gpt-r').attributes).toMatchObject({
      [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 20,
      [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: 5,
      [ATTR_GEN_AI_RESPONSE_MODEL]: 'gpt-r-served',
    });
  });

  it('records embeddings.create as an embeddings span with input tokens', async () => {
    const result = await openai.embeddings.create({ model: 'text-embed', input: 'hi' });
    expect(result.data[0]?.embedding).toHaveLength(3);
    const span = await onlySpan();
    expect(span.name).toBe('embeddings text-embed');
    expect(span.attributes).toMatchObject({
      [ATTR_GEN_AI_OPERATION_NAME]: 'embeddings',
      [ATTR_GEN_AI_RESPONSE_MODEL]: 'text-embed-served',
      [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 7,
    });
  });
});

describe('OpenAI capture: rejections reach the caller unchanged', () => {
  const unreachable = () =>
    new OpenAI({ apiKey: 'test', baseURL: 'http://127.0.0.1:1/v1', maxRetries: 0 });

  it.each([
    ['429', () => ({ client: openai, model: 'rate-limited', options: {} }), '429'],
    ['500', () => ({ client: openai, model: 'fail-500', options: {} }), '500'],
    [
      'timeout',
      () => ({ client: openai, model: 'slow', options: { timeout: 200 } }),
      'APIConnectionTimeoutError',
    ],
    [
      'connection refused',
      () => ({ client: unreachable(), model: 'gpt-small', options: {} }),
      'APIConnectionError',
    ],
  ] as const)(
    '%s: span ERROR with error.type, same error class and message',
    async (_, setup, type) => {
      const { client, model, options } = setup();
      const completions = client.chat.completions;
      const baseline = await uninstrumented<Promise<unknown>>(
        completions.create,
        completions,
        { ...ask, model },
        options,
      ).catch((error: unknown) => error);
      const caught = await completions
        .create({ ...ask, model }, options)
        .catch((error: unknown) => error);
      expect(caught).toBeInstanceOf(OpenAI.APIError);
      expect((caught as Error).constructor).toBe((baseline as Error).constructor);
      expect((caught as Error).message).toBe((baseline as Error).message);
      const span = await onlySpan();
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      expect(span.attributes[ATTR_ERROR_TYPE]).toBe(type);
    },
  );
});

describe('Anthropic capture', () => {
  const request = { model: 'claude-small', max_tokens: 64, ...ask };

  it('records messages.create with provider, served model, cache tokens and input including them', async () => {
    let taskId = '';
    const message = await runTask({ cohort: 'extraction' }, (task) => {
      taskId = task.taskId;
      return runAttempt({ route: 'small' }, () => anthropic.messages.create(request));
    });
    expect(message.content[0]).toEqual({ type: 'text', text: 'hello' });
    // One LLM span per call: the SDK's own span is suppressed while ours is recorded.
    expect(
      exporter
        .getFinishedSpans()
        .filter((span) => span.attributes[ATTR_GEN_AI_PROVIDER_NAME] !== undefined),
    ).toHaveLength(1);
    const span = spanNamed('chat claude-small');
    expect(span.kind).toBe(SpanKind.CLIENT);
    expect(span.instrumentationScope.name).toBe('@routewatch/instrumentation');
    expect(span.attributes).toMatchObject({
      [ATTR_GEN_AI_OPERATION_NAME]: 'chat',
      [ATTR_GEN_AI_PROVIDER_NAME]: 'anthropic',
      [ATTR_GEN_AI_REQUEST_MODEL]: 'claude-small',
      [ATTR_GEN_AI_REQUEST_MAX_TOKENS]: 64,
      [ATTR_GEN_AI_RESPONSE_MODEL]: 'claude-small-served',
      [ATTR_GEN_AI_RESPONSE_ID]: 'msg-mock',
      [ATTR_GEN_AI_RESPONSE_FINISH_REASONS]: ['end_turn'],
      // 10 uncached + 100 read from cache + 20 written to it.
      [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 130,
      [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: 4,
      [ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS]: 100,
      [ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS]: 20,
      [ATTR_TASK_ID]: taskId,
      [ATTR_COHORT]: 'extraction',
      [ATTR_ROUTE]: 'small',
    });
  });

  it('records messages.create with stream: true and keeps .tee()', async () => {
    const stream = await anthropic.messages.create({ ...request, stream: true });
    const [left, right] = stream.tee();
    const text: string[] = [];
    for await (const event of left) {
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
        text.push(event.delta.text);
      }
    }
    let rightCount = 0;
    for await (const _event of right) rightCount += 1;
    expect(text.join('')).toBe('hello');
    expect(rightCount).toBe(7);
    expect(spanNamed('chat claude-small').attributes).toMatchObject({
      [ATTR_GEN_AI_RESPONSE_ID]: 'msg-stream',
      [ATTR_GEN_AI_RESPONSE_MODEL]: 'claude-small-served',
      [ATTR_GEN_AI_RESPONSE_FINISH_REASONS]: ['end_turn'],
      [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 130,
      [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: 4,
      [ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS]: 100,
    });
  });

  it('records messages.stream() as one span in the caller’s routing context', async () => {
    const final = await runTask({ cohort: 'faq' }, () =>
      runAttempt({ route: 'large' }, async () => {
        const stream = anthropic.messages.stream(request);
        const texts: string[] = [];
        stream.on('text', (text) => texts.push(text));
        const message = await stream.finalMessage();
        expect(texts.join('')).toBe('hello');
        return message;
      }),
    );
    expect(final.usage.output_tokens).toBe(4);
    const llmSpans = exporter
      .getFinishedSpans()
      .filter((span) => span.attributes[ATTR_GEN_AI_PROVIDER_NAME] !== undefined);
    expect(llmSpans.map((span) => span.name)).toEqual(['chat claude-small']);
    expect(llmSpans[0]!.attributes).toMatchObject({
      [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 130,
      [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: 4,
      [ATTR_COHORT]: 'faq',
      [ATTR_ROUTE]: 'large',
    });
    expect(llmSpans[0]!.parentSpanContext?.spanId).toBe(
      spanNamed(`${ATTEMPT_SPAN_PREFIX} large`).spanContext().spanId,
    );
  });

  it('records what the app does in the stream’s listeners: they run in the caller’s context', async () => {
    // review instrumentation #2: the stream's work runs with tracing suppressed (the SDK's own
    // span), and its listeners did too: an attempt and a model call started there went unrecorded.
    await runTask({ cohort: 'faq' }, async () => {
      const stream = anthropic.messages.stream(request);
      const done = new Promise<void>((resolve, reject) => {
        stream.once('finalMessage', () => {
          trace.getTracer('app').startSpan('app work in a listener').end();
          runAttempt({ route: 'small' }, () =>
            openai.chat.completions.create({ ...ask, model: 'gpt-small' }),
          ).then(() => resolve(), reject);
        });
      });
      await stream.finalMessage();
      await done;
    });
    const names = exporter.getFinishedSpans().map((span) => span.name);
    expect(names).toContain('app work in a listener');
    expect(names).toContain(`${ATTEMPT_SPAN_PREFIX} small`);
    expect(names).toContain('chat gpt-small');
    expect(spanNamed('chat gpt-small').attributes[ATTR_COHORT]).toBe('faq');
  });

  it('ends the span of an aborted stream', async () => {
    const stream = await anthropic.messages.create({ ...request, model: 'stall', stream: true });
    let events = 0;
    for await (const _event of stream) {
      events += 1;
      stream.controller.abort();
    }
    expect(events).toBe(1);
    const span = await onlySpan();
    expect(span.attributes[ATTR_ERROR_TYPE]).toBe(ERROR_TYPE_STREAM_ABORTED);
    expect(span.attributes[ATTR_GEN_AI_RESPONSE_ID]).toBe('msg-stream');
  });

  it.each([
    ['rate-limited', Anthropic.RateLimitError, '429'],
    ['fail-500', Anthropic.InternalServerError, '500'],
  ] as const)(
    '%s: span ERROR, the caller gets the SDK error unchanged',
    async (model, ErrorClass, type) => {
      const baseline = await uninstrumented<Promise<unknown>>(
        anthropic.messages.create,
        anthropic.messages,
        { ...request, model },
      ).catch((error: unknown) => error);
      // The uninstrumented call may leave the SDK's own span behind: not ours to count.
      await sleep(10);
      exporter.reset();
      const caught = await anthropic.messages
        .create({ ...request, model })
        .catch((error: unknown) => error);
      expect(caught).toBeInstanceOf(ErrorClass);
      expect((caught as Error).message).toBe((baseline as Error).message);
      const span = await onlySpan();
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      expect(span.attributes[ATTR_ERROR_TYPE]).toBe(type);
    },
  );
});

describe('content capture', () => {
  it('records no message content by default', async () => {
    await openai.chat.completions.create({ ...ask, model: 'gpt-small' });
    const span = await onlySpan();
    expect(span.attributes[ATTR_GEN_AI_INPUT_MESSAGES]).toBeUndefined();
    expect(span.attributes[ATTR_GEN_AI_OUTPUT_MESSAGES]).toBeUndefined();
  });

  it('records OpenAI chat input and output messages when on, streamed or not', async () => {
    captureOptions.captureContent = true;
    await openai.chat.completions.create({
      model: 'gpt-small',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hi' },
      ],
    });
    const stream = await openai.chat.completions.create({
      ...ask,
      model: 'gpt-stream',
      stream: true,
    });
    for await (const _chunk of stream) void _chunk;
    const plain = spanNamed('chat gpt-small').attributes;
    expect(JSON.parse(String(plain[ATTR_GEN_AI_INPUT_MESSAGES]))).toEqual([
      { role: 'system', parts: [{ type: 'text', content: 'be brief' }] },
      { role: 'user', parts: [{ type: 'text', content: 'hi' }] },
    ]);
    expect(JSON.parse(String(plain[ATTR_GEN_AI_OUTPUT_MESSAGES]))).toEqual([
      { role: 'assistant', parts: [{ type: 'text', content: 'hello' }], finish_reason: 'stop' },
    ]);
    const streamed = spanNamed('chat gpt-stream').attributes;
    expect(JSON.parse(String(streamed[ATTR_GEN_AI_OUTPUT_MESSAGES]))).toEqual([
      { role: 'assistant', parts: [{ type: 'text', content: 'hello' }], finish_reason: 'stop' },
    ]);
  });

  it('records Anthropic system instructions, input and output when on', async () => {
    captureOptions.captureContent = true;
    await anthropic.messages.create({
      model: 'claude-small',
      max_tokens: 10,
      system: 'be brief',
      ...ask,
    });
    const { attributes } = await onlySpan();
    expect(JSON.parse(String(attributes[ATTR_GEN_AI_SYSTEM_INSTRUCTIONS]))).toEqual([
      { type: 'text', content: 'be brief' },
    ]);
    expect(JSON.parse(String(attributes[ATTR_GEN_AI_INPUT_MESSAGES]))).toEqual([
      { role: 'user', parts: [{ type: 'text', content: 'hi' }] },
    ]);
    expect(JSON.parse(String(attributes[ATTR_GEN_AI_OUTPUT_MESSAGES]))).toEqual([
      { role: 'assistant', parts: [{ type: 'text', content: 'hello' }], finish_reason: 'end_turn' },
    ]);
  });
});

describe('faults inside our hooks', () => {
  it('a throwing messages getter costs the content, not the call', async () => {
    captureOptions.captureContent = true;
    const params = {
      model: 'claude-small',
      max_tokens: 10,
      get messages(): never {
        throw new Error('messages getter exploded');
      },
    };
    // The SDK itself reads `messages` when it serializes the body: the caller sees that error,
    // exactly as without us, and never one of ours.
    const baseline = await Promise.resolve()
      .then(() => uninstrumented(anthropic.messages.create, anthropic.messages, params))
      .catch((error: unknown) => error);
    const caught = await Promise.resolve()
      .then(() => anthropic.messages.create(params as never))
      .catch((error: unknown) => error);
    expect((caught as Error).message).toBe((baseline as Error).message);
  });

  it('a span processor that throws on start does not reach the caller', async () => {
    const throwing = new BasicTracerProvider({
      spanProcessors: [
        {
          onStart: () => {
            throw new Error('processor exploded');
          },
          onEnd: () => undefined,
          forceFlush: () => Promise.resolve(),
          shutdown: () => Promise.resolve(),
        },
      ],
    });
    trace.disable();
    trace.setGlobalTracerProvider(throwing);
    try {
      const result = await openai.chat.completions.create({ ...ask, model: 'gpt-small' });
      expect(result.id).toBe('chatcmpl-mock');
      const message = await anthropic.messages.create({ ...ask, model: 'claude', max_tokens: 5 });
      expect(message.id).toBe('msg-mock');
    } finally {
      trace.disable();
      trace.setGlobalTracerProvider(provider);
    }
  });
});

/** Runs `fn` with `proto[method]` restored to the SDK's own: what the caller gets without us. */
async function withoutCapture<T>(proto: object, method: string, fn: () => Promise<T>): Promise<T> {
  const holder = proto as Record<string, unknown>;
  const wrapped = holder[method];
  const original = (wrapped as Record<symbol, unknown>)[Symbol.for('routewatch.original')];
  expect(typeof original).toBe('function');
  holder[method] = original;
  try {
    return await fn();
  } finally {
    holder[method] = wrapped;
  }
}

// Regressions of A1 in the instrumentation review: parse() helpers derive a second APIPromise
// from create()'s (`_thenUnwrap`), which parses the same body again.
describe('OpenAI capture: parse helpers and raw responses behave as without us', () => {
  it('chat.completions.parse() gives the uninstrumented result and records the call', async () => {
    const completions = openai.chat.completions;
    const plain = await withoutCapture(Object.getPrototypeOf(completions) as object, 'create', () =>
      completions.parse({ ...ask, model: 'gpt-small' }),
    );
    exporter.reset();
    const parsed = await completions.parse({ ...ask, model: 'gpt-small' });
    expect(parsed).toEqual(plain);
    expect(parsed.choices[0]?.message.content).toBe('hello');
    const span = await onlySpan();
    expect(span.name).toBe('chat gpt-small');
    expect(span.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(span.attributes[ATTR_GEN_AI_RESPONSE_ID]).toBe('chatcmpl-mock');
  });

  it('responses.parse() gives the uninstrumented result and records the call', async () => {
    const responses = openai.responses;
    const plain = await withoutCapture(Object.getPrototypeOf(responses) as object, 'create', () =>
      responses.parse({ model: 'gpt-r', input: 'hi' }),
    );
    exporter.reset();
    const parsed = await responses.parse({ model: 'gpt-r', input: 'hi' });
    expect(parsed).toEqual(plain);
    expect(parsed.output_text).toBe('hello');
    const span = await onlySpan();
    expect(span.name).toBe('chat gpt-r');
    expect(span.attributes[ATTR_GEN_AI_USAGE_INPUT_TOKENS]).toBe(20);
  });

  it('leaves the body to a caller that reads it raw through .asResponse()', async () => {
    const completions = openai.chat.completions;
    const plainResponse = await withoutCapture(
      Object.getPrototypeOf(completions) as object,
      'create',
      () => completions.create({ ...ask, model: 'gpt-small' }).asResponse(),
    );
    const plainBody: unknown = await plainResponse.json();
    const response = await completions.create({ ...ask, model: 'gpt-small' }).asResponse();
    expect(response.bodyUsed).toBe(false);
    expect(await response.json()).toEqual(plainBody);
    const span = await onlySpan();
    expect(span.name).toBe('chat gpt-small');
    expect(span.status.code).not.toBe(SpanStatusCode.ERROR);
  });

  it('records a call awaited only after its response arrived, handing the caller its result', async () => {
    const promise = openai.chat.completions.create({ ...ask, model: 'gpt-small' });
    const span = await onlySpan();
    expect(span.attributes[ATTR_GEN_AI_RESPONSE_ID]).toBe('chatcmpl-mock');
    const completion = await promise;
    expect(completion.id).toBe('chatcmpl-mock');
    expect((await promise.withResponse()).data).toBe(completion);
  });

  it('leaves the raw body unread to a caller that takes it after the response arrived', async () => {
    // review instrumentation #1: our own parse of a response nobody had asked for yet read its
    // body, and a later .asResponse().text() threw "Body is unusable: Body has already been read".
    const promise = openai.chat.completions.create({ ...ask, model: 'gpt-small' });
    const span = await onlySpan();
    expect(span.attributes[ATTR_GEN_AI_RESPONSE_ID]).toBe('chatcmpl-mock');
    const response = await promise.asResponse();
    expect(response.bodyUsed).toBe(false);
    expect((JSON.parse(await response.text()) as { id: string }).id).toBe('chatcmpl-mock');
    // The parsed result is still there for an await after it.
    expect((await promise).id).toBe('chatcmpl-mock');
  });
});

/**
 * A `fetch` that lets the first server-sent event of a streamed answer through, then breaks the
 * stream: `cut` errors the body as a dropped connection does (undici's `terminated`), an SSE
 * text is sent as the next event and the body ends.
 */
function breakingStreamFetch(breakWith: 'cut' | string): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    if (response.body === null || !response.headers.get('content-type')?.includes('event-stream')) {
      return response;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    let firstEventSent = false;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (firstEventSent) {
          void reader.cancel();
          if (breakWith === 'cut') controller.error(new TypeError('terminated'));
          else {
            controller.enqueue(encoder.encode(breakWith));
            controller.close();
          }
          return;
        }
        let text = '';
        while (!text.includes('\n\n')) {
          const { done, value } = await reader.read();
          if (done) break;
          text += decoder.decode(value, { stream: true });
        }
        controller.enqueue(encoder.encode(text.slice(0, text.indexOf('\n\n') + 2)));
        firstEventSent = true;
      },
    });
    return new Response(body, { status: response.status, headers: response.headers });
  };
}

async function drain(stream: AsyncIterable<unknown>): Promise<unknown> {
  try {
    for await (const _event of stream);
    return undefined;
  } catch (error) {
    return error;
  }
}

// Regressions of B2 in the instrumentation review: the SDK aborts its controller when a stream
// fails, and that abort used to be recorded instead of the error.
describe('stream errors mid-way are recorded as themselves, not as an abort', () => {
  it.each([
    ['a cut connection', 'cut', 'TypeError'],
    [
      'an error event',
      `data: ${JSON.stringify({ error: { message: 'server overloaded' } })}\n\n`,
      'APIError',
    ],
  ] as const)('OpenAI chat stream: %s', async (_, breakWith, type) => {
    const client = new OpenAI({
      apiKey: 'test',
      baseURL: llm.url,
      maxRetries: 0,
      fetch: breakingStreamFetch(breakWith),
    });
    const caught = await drain(
      await client.chat.completions.create({ ...ask, model: 'gpt-small', stream: true }),
    );
    expect((caught as Error).constructor.name).toBe(type);
    const span = await onlySpan();
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes[ATTR_ERROR_TYPE]).toBe(type);
    expect(span.attributes[ATTR_GEN_AI_RESPONSE_ID]).toBe('chatcmpl-stream');
  });

  it('Anthropic stream: an overloaded_error event', async () => {
    const overloaded = {
      type: 'error',
      error: { type: 'overloaded_error', message: 'Overloaded' },
    };
    const client = new Anthropic({
      apiKey: 'test',
      baseURL: llm.origin,
      maxRetries: 0,
      fetch: breakingStreamFetch(`event: error\ndata: ${JSON.stringify(overloaded)}\n\n`),
    });
    const caught = await drain(
      await client.messages.create({ model: 'claude-small', max_tokens: 64, ...ask, stream: true }),
    );
    expect(caught).toBeInstanceOf(Anthropic.APIError);
    const span = await onlySpan();
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes[ATTR_ERROR_TYPE]).toBe('APIError');
  });
});
