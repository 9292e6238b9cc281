import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { BasicTracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI, { APIPromise } from 'openai';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
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
  ATTR_TASK_ID,
  instrumentAnthropic,
  instrumentOpenAI,
  readRoutewatchEnv,
  runAttempt,
  runTask,
  type OpenAICaptureOptions,
} from '../instrumentation/src/index.js';
import { useInMemoryTracing } from './otel-harness.js';
import { startMockLlm, type MockLlm } from './fixtures/mock-llm.js';

// OpenAI responses/embeddings/streams and the Anthropic SDK against a local server speaking their
// wire formats; rejections compared with what the same call gives uninstrumented.

const { exporter, spanNamed, provider } = useInMemoryTracing();
// Mutated by the content-capture tests: the patch reads its options on every call.
const captureOptions: OpenAICaptureOptions = {};

let llm: MockLlm;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  llm = await startMockLlm();
  instrumentOpenAI(await import('openai'), captureOptions);
  instrumentAnthropic(await import('@anthropic-ai/sdk'), captureOptions);
  instrumentAnthropic(await import('@anthropic-ai/sdk'), captureOptions); // idempotent
  openai = new OpenAI({ apiKey: 'test', baseURL: `${llm.url}/v1`, maxRetries: 0 });
  // Built after the provider is registered: this SDK version would emit its own spans too.
  anthropic = new Anthropic({ apiKey: 'test', baseURL: llm.url, maxRetries: 0 });
});

afterEach(() => {
  llm.requests.length = 0;
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
    const sent = llm.requests[0]!.body;
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
    expect(llm.requests[0]!.body).not.toHaveProperty('stream_options');
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
    expect(span.attributes[ATTR_ERROR_TYPE]).toBe('StreamAbortedError');
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
    expect(span.attributes[ATTR_ERROR_TYPE]).toBe('StreamAbortedError');
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
      spanNamed('routewatch.attempt large').spanContext().spanId,
    );
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
    expect(span.attributes[ATTR_ERROR_TYPE]).toBe('StreamAbortedError');
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

describe('readRoutewatchEnv', () => {
  it('parses the ROUTEWATCH_* and protocol variables, case-insensitively', () => {
    const warnings: string[] = [];
    expect(
      readRoutewatchEnv(
        {
          ROUTEWATCH_CAPTURE_CONTENT: 'TRUE',
          ROUTEWATCH_SDK_CAPTURE: 'off',
          ROUTEWATCH_STREAM_USAGE: 'on',
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        },
        (message) => warnings.push(message),
      ),
    ).toEqual({
      captureContent: true,
      sdkCapture: false,
      requestStreamUsage: true,
      protocol: 'http/protobuf',
    });
    expect(warnings).toEqual([]);
  });

  it('warns with the variable name and accepted values on a bad value, and uses the default', () => {
    const warnings: string[] = [];
    const env = readRoutewatchEnv(
      {
        ROUTEWATCH_CAPTURE_CONTENT: 'yes',
        ROUTEWATCH_SDK_CAPTURE: '',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      },
      (message) => warnings.push(message),
    );
    expect(env).toEqual({
      captureContent: undefined,
      sdkCapture: undefined,
      requestStreamUsage: undefined,
      protocol: undefined,
    });
    expect(warnings).toEqual([
      'ROUTEWATCH_CAPTURE_CONTENT="yes" is not valid (accepted: true, false); using false',
      'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="grpc" is not supported (accepted: http/json, http/protobuf); exporting with http/json',
    ]);
  });
});
