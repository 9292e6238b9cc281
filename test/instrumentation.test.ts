import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import OpenAI, { APIPromise } from 'openai';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  ATTR_ATTEMPT,
  ATTR_CLEANUP_COST_USD,
  ATTR_COHORT,
  ATTR_CONFIDENCE,
  ATTR_ERROR_TYPE,
  ATTR_FALLBACK_REASON,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  ATTR_GEN_AI_RESPONSE_ID,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
  ATTR_OUTCOME,
  ATTR_OUTCOME_REASON,
  ATTR_POLICY_VERSION,
  ATTR_REASK,
  ATTR_ROUTE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_TASK_ID,
  ATTR_VALIDATION,
  DEFAULT_TRACES_ENDPOINT,
  getRoutingContext,
  instrumentOpenAI,
  recordConfidence,
  recordFallbackReason,
  recordOutcome,
  recordValidation,
  resolveTracesEndpoint,
  runAttempt,
  runTask,
} from '../instrumentation/src/index.js';
import { useInMemoryTracing } from './otel-harness.js';

const { exporter, diagMessages, spanNamed } = useInMemoryTracing();

const foreignTracer = () => trace.getTracer('foreign-llm-lib');

describe('RoutewatchSpanProcessor', () => {
  it('stamps task id, cohort, route and attempt on spans of any tracer, across await and timers', async () => {
    let taskId = '';
    await runTask({ cohort: 'faq' }, async (task) => {
      taskId = task.taskId;
      await runAttempt({ route: 'small' }, async () => {
        foreignTracer().startSpan('foreign sync').end();
        await sleep(1);
        foreignTracer().startSpan('foreign after await').end();
        await new Promise<void>((resolve) =>
          setTimeout(() => {
            foreignTracer().startSpan('foreign in timer').end();
            resolve();
          }, 1),
        );
      });
    });
    for (const name of ['foreign sync', 'foreign after await', 'foreign in timer']) {
      expect(spanNamed(name).attributes).toMatchObject({
        [ATTR_TASK_ID]: taskId,
        [ATTR_COHORT]: 'faq',
        [ATTR_ROUTE]: 'small',
        [ATTR_ATTEMPT]: 1,
      });
    }
  });

  it('stamps spans started by event listeners: emitted inside the task, or bound to it with context.bind', async () => {
    // A listener runs in the context of emit(): an emitter fired from the task's own async flow
    // needs nothing; one fired from elsewhere (a shared client, a pool) is bound to the task.
    const shared = new EventEmitter();
    let taskId = '';
    await runTask({ cohort: 'agentic' }, async (task) => {
      taskId = task.taskId;
      await runAttempt({ route: 'large' }, async () => {
        const local = new EventEmitter();
        local.on('step', () => foreignTracer().startSpan('foreign in local listener').end());
        await sleep(1);
        local.emit('step');
        const bound = context.bind(context.active(), shared);
        bound.on('done', () => foreignTracer().startSpan('foreign in bound listener').end());
      });
    });
    // Emitted after the task has ended, from outside it.
    shared.emit('done');
    for (const name of ['foreign in local listener', 'foreign in bound listener']) {
      expect(spanNamed(name).attributes).toMatchObject({
        [ATTR_TASK_ID]: taskId,
        [ATTR_COHORT]: 'agentic',
        [ATTR_ROUTE]: 'large',
        [ATTR_ATTEMPT]: 1,
      });
    }
  });

  it('stamps task id and cohort but no route on spans started in a task outside any attempt', async () => {
    await runTask({ cohort: 'extraction', taskId: 'task-7' }, () => {
      foreignTracer().startSpan('foreign in task').end();
    });
    const { attributes } = spanNamed('foreign in task');
    expect(attributes[ATTR_TASK_ID]).toBe('task-7');
    expect(attributes[ATTR_COHORT]).toBe('extraction');
    expect(attributes[ATTR_ROUTE]).toBeUndefined();
    expect(attributes[ATTR_ATTEMPT]).toBeUndefined();
  });

  it('keeps routing attributes a span already carries', async () => {
    await runTask({ cohort: 'faq' }, () =>
      runAttempt({ route: 'small' }, () => {
        foreignTracer()
          .startSpan('foreign preset', {
            attributes: { [ATTR_ROUTE]: 'vendor-route', [ATTR_COHORT]: 'vendor-cohort' },
          })
          .end();
      }),
    );
    const { attributes } = spanNamed('foreign preset');
    expect(attributes[ATTR_ROUTE]).toBe('vendor-route');
    expect(attributes[ATTR_COHORT]).toBe('vendor-cohort');
    expect(attributes[ATTR_ATTEMPT]).toBe(1);
  });

  it('leaves spans outside a task untouched', () => {
    foreignTracer().startSpan('foreign outside').end();
    const { attributes } = spanNamed('foreign outside');
    expect(Object.keys(attributes).filter((key) => key.startsWith('routewatch.'))).toEqual([]);
  });
});

describe('runTask and runAttempt', () => {
  it('starts an INTERNAL task span whose task id defaults to its trace id', async () => {
    const result = await runTask({ cohort: 'faq', policyVersion: 'v3' }, (task) => {
      expect(task.cohort).toBe('faq');
      return 42;
    });
    expect(result).toBe(42);
    const span = spanNamed('routewatch.task faq');
    expect(span.kind).toBe(SpanKind.INTERNAL);
    expect(span.attributes).toMatchObject({
      [ATTR_TASK_ID]: span.spanContext().traceId,
      [ATTR_COHORT]: 'faq',
      [ATTR_POLICY_VERSION]: 'v3',
    });
    expect(span.attributes[ATTR_OUTCOME]).toBeUndefined();
  });

  it('numbers attempts from 1 and records a fallback reason from attempt 2 on only', async () => {
    const seen: number[] = [];
    await runTask({ cohort: 'policy', taskId: 't-1' }, async () => {
      for (const route of ['small', 'medium', 'large']) {
        await runAttempt({ route, fallbackReason: 'validation_failed' }, (attempt) => {
          seen.push(attempt.attempt);
          expect(getRoutingContext()).toEqual({
            taskId: 't-1',
            cohort: 'policy',
            route,
            attempt: attempt.attempt,
          });
        });
      }
    });
    expect(seen).toEqual([1, 2, 3]);
    const small = spanNamed('routewatch.attempt small');
    const large = spanNamed('routewatch.attempt large');
    expect(small.attributes).toMatchObject({
      [ATTR_TASK_ID]: 't-1',
      [ATTR_COHORT]: 'policy',
      [ATTR_ROUTE]: 'small',
      [ATTR_ATTEMPT]: 1,
    });
    expect(small.attributes[ATTR_FALLBACK_REASON]).toBeUndefined();
    expect(large.attributes).toMatchObject({
      [ATTR_ATTEMPT]: 3,
      [ATTR_FALLBACK_REASON]: 'validation_failed',
    });
    expect(large.parentSpanContext?.spanId).toBe(
      spanNamed('routewatch.task policy').spanContext().spanId,
    );
  });

  it('continues auto-numbering after an explicit attempt index', async () => {
    const seen: number[] = [];
    await runTask({ cohort: 'faq' }, async () => {
      await runAttempt({ route: 'small', attempt: 2 }, (a) => void seen.push(a.attempt));
      await runAttempt({ route: 'large' }, (a) => void seen.push(a.attempt));
    });
    expect(seen).toEqual([2, 3]);
  });

  it('records outcome, reason, reask, cleanup cost and a task-level fallback reason', async () => {
    await runTask({ cohort: 'faq' }, (task) => {
      task.setOutcome('success');
      task.setFallbackReason('low_confidence');
      recordOutcome('escalated', { reason: 'human_review', reask: true, cleanupCostUsd: 0.25 });
    });
    expect(spanNamed('routewatch.task faq').attributes).toMatchObject({
      [ATTR_OUTCOME]: 'escalated',
      [ATTR_OUTCOME_REASON]: 'human_review',
      [ATTR_REASK]: true,
      [ATTR_CLEANUP_COST_USD]: 0.25,
      [ATTR_FALLBACK_REASON]: 'low_confidence',
    });
  });

  it('records validation, confidence and fallback reason on the active attempt', async () => {
    await runTask({ cohort: 'faq' }, async () => {
      await runAttempt({ route: 'small' }, (attempt) => {
        attempt.setValidation('fail');
        recordConfidence(0.4);
        recordFallbackReason('ignored-on-attempt-1');
      });
      await runAttempt({ route: 'large' }, async () => {
        await sleep(1);
        recordValidation('pass');
        recordFallbackReason('validation_failed');
      });
    });
    const small = spanNamed('routewatch.attempt small').attributes;
    expect(small[ATTR_VALIDATION]).toBe('fail');
    expect(small[ATTR_CONFIDENCE]).toBe(0.4);
    expect(small[ATTR_FALLBACK_REASON]).toBeUndefined();
    const large = spanNamed('routewatch.attempt large').attributes;
    expect(large[ATTR_VALIDATION]).toBe('pass');
    expect(large[ATTR_FALLBACK_REASON]).toBe('validation_failed');
  });

  it('marks a throwing task failed with status ERROR and rethrows the same error', async () => {
    class ValidationGateError extends Error {}
    const thrown = new ValidationGateError('nope');
    const caught = await runTask({ cohort: 'faq' }, () =>
      runAttempt({ route: 'small' }, () => {
        throw thrown;
      }),
    ).catch((error: unknown) => error);
    expect(caught).toBe(thrown);
    const task = spanNamed('routewatch.task faq');
    expect(task.status.code).toBe(SpanStatusCode.ERROR);
    expect(task.attributes).toMatchObject({
      [ATTR_OUTCOME]: 'failure',
      [ATTR_OUTCOME_REASON]: 'error',
      [ATTR_ERROR_TYPE]: 'ValidationGateError',
    });
    const attempt = spanNamed('routewatch.attempt small');
    expect(attempt.status.code).toBe(SpanStatusCode.ERROR);
    expect(attempt.attributes[ATTR_ERROR_TYPE]).toBe('ValidationGateError');
  });

  it('keeps an outcome set before the task threw', async () => {
    await expect(
      runTask({ cohort: 'faq' }, async (task) => {
        task.setOutcome('escalated', { reason: 'handed_off' });
        await sleep(1);
        throw new Error('after hand-off');
      }),
    ).rejects.toThrow('after hand-off');
    const task = spanNamed('routewatch.task faq');
    expect(task.status.code).toBe(SpanStatusCode.ERROR);
    expect(task.attributes[ATTR_OUTCOME]).toBe('escalated');
    expect(task.attributes[ATTR_OUTCOME_REASON]).toBe('handed_off');
  });

  it('runs an attempt outside a task without task id or cohort, and warns on a stray outcome', async () => {
    const value = await runAttempt({ route: 'small' }, (attempt) => {
      recordOutcome('success');
      return attempt.attempt;
    });
    expect(value).toBe(1);
    expect(getRoutingContext()).toBeUndefined();
    const { attributes } = spanNamed('routewatch.attempt small');
    expect(attributes[ATTR_ROUTE]).toBe('small');
    expect(attributes[ATTR_TASK_ID]).toBeUndefined();
    expect(attributes[ATTR_COHORT]).toBeUndefined();
    expect(diagMessages.some((m) => m.level === 'warn' && /recordOutcome/.test(m.message))).toBe(
      true,
    );
  });

  it('ignores an outcome outside the contract', async () => {
    await runTask({ cohort: 'faq' }, (task) => {
      task.setOutcome('great' as never);
    });
    expect(spanNamed('routewatch.task faq').attributes[ATTR_OUTCOME]).toBeUndefined();
    expect(diagMessages.some((m) => m.level === 'warn')).toBe(true);
  });
});

describe('resolveTracesEndpoint', () => {
  it('prefers the option, then the traces variable as given, then the base variable + /v1/traces', () => {
    const env = {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces:1/custom',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:2/',
    };
    expect(resolveTracesEndpoint('http://opt:3/v1/traces', env)).toBe('http://opt:3/v1/traces');
    expect(resolveTracesEndpoint(undefined, env)).toBe('http://traces:1/custom');
    expect(
      resolveTracesEndpoint(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:2/' }),
    ).toBe('http://base:2/v1/traces');
    expect(resolveTracesEndpoint(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: '' })).toBe(
      DEFAULT_TRACES_ENDPOINT,
    );
  });
});

// --- OpenAI capture against a local server speaking the chat completions wire format ----------

interface ChatRequest {
  model: string;
  stream?: boolean;
}

async function readJson(req: IncomingMessage): Promise<ChatRequest> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as ChatRequest;
}

function completion(model: string) {
  return {
    id: 'chatcmpl-123',
    object: 'chat.completion',
    created: 1_700_000_000,
    model: `${model}-2025-01-01`,
    choices: [
      { index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' },
      { index: 1, message: { role: 'assistant', content: 'hello' }, finish_reason: 'length' },
    ],
    usage: {
      prompt_tokens: 120,
      completion_tokens: 30,
      total_tokens: 150,
      prompt_tokens_details: { cached_tokens: 100 },
      completion_tokens_details: { reasoning_tokens: 12 },
    },
  };
}

function streamCompletion(res: ServerResponse, model: string): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const base = { id: 'chatcmpl-s1', object: 'chat.completion.chunk', created: 1, model };
  const chunks = [
    { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: 'he' } }] },
    { ...base, choices: [{ index: 0, delta: { content: 'llo' }, finish_reason: 'stop' }] },
    { ...base, choices: [], usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 } },
  ];
  for (const chunk of chunks) res.write(`data: ${JSON.stringify(chunk)}\n\n`);
  res.end('data: [DONE]\n\n');
}

async function handleChat(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readJson(req);
  const error = (status: number, message: string) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message, type: 'server_error', code: null } }));
  };
  if (body.model === 'fail-500') return error(500, 'boom');
  if (body.model === 'rate-limited') return error(429, 'slow down');
  if (body.stream === true) return streamCompletion(res, body.model);
  res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': 'req-1' });
  res.end(JSON.stringify(completion(body.model)));
}

describe('OpenAI capture', () => {
  let server: Server;
  let port = 0;
  let client: OpenAI;

  beforeAll(async () => {
    server = createServer((req, res) => {
      handleChat(req, res).catch(() => res.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    client = new OpenAI({ apiKey: 'test', baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
    instrumentOpenAI(await import('openai'));
    instrumentOpenAI(await import('openai')); // idempotent: still one span per call
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const ask = { messages: [{ role: 'user' as const, content: 'hi' }] };

  it('records a CLIENT span with GenAI attributes, tagged with the routing context', async () => {
    let taskId = '';
    const response = await runTask({ cohort: 'faq' }, (task) => {
      taskId = task.taskId;
      return runAttempt({ route: 'small' }, () =>
        client.chat.completions.create({ ...ask, model: 'gpt-small' }),
      );
    });
    expect(response.id).toBe('chatcmpl-123');
    const span = spanNamed('chat gpt-small');
    expect(span.kind).toBe(SpanKind.CLIENT);
    expect(span.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(span.attributes).toEqual(
      expect.objectContaining({
        [ATTR_GEN_AI_OPERATION_NAME]: 'chat',
        [ATTR_GEN_AI_PROVIDER_NAME]: 'openai',
        [ATTR_GEN_AI_REQUEST_MODEL]: 'gpt-small',
        [ATTR_GEN_AI_RESPONSE_MODEL]: 'gpt-small-2025-01-01',
        [ATTR_GEN_AI_RESPONSE_ID]: 'chatcmpl-123',
        [ATTR_GEN_AI_RESPONSE_FINISH_REASONS]: ['stop', 'length'],
        [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 120,
        [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: 30,
        [ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS]: 100,
        [ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS]: 12,
        [ATTR_SERVER_ADDRESS]: '127.0.0.1',
        [ATTR_SERVER_PORT]: port,
        [ATTR_TASK_ID]: taskId,
        [ATTR_COHORT]: 'faq',
        [ATTR_ROUTE]: 'small',
        [ATTR_ATTEMPT]: 1,
      }),
    );
    expect(span.parentSpanContext?.spanId).toBe(
      spanNamed('routewatch.attempt small').spanContext().spanId,
    );
  });

  it('returns the SDK promise so .withResponse() keeps working', async () => {
    const promise = client.chat.completions.create({ ...ask, model: 'gpt-small' });
    expect(promise).toBeInstanceOf(APIPromise);
    const { data, response } = await promise.withResponse();
    expect(data.id).toBe('chatcmpl-123');
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toBe('req-1');
    await vi.waitFor(() => expect(spanNamed('chat gpt-small').ended).toBe(true));
  });

  it.each([
    ['fail-500', 500, OpenAI.InternalServerError],
    ['rate-limited', 429, OpenAI.RateLimitError],
  ] as const)(
    'ends the span with ERROR on a %s reply and hands the caller the SDK error unchanged',
    async (model, status, ErrorClass) => {
      const caught = await client.chat.completions
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
    const stream = await client.chat.completions.create({
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
      [ATTR_GEN_AI_RESPONSE_ID]: 'chatcmpl-s1',
      [ATTR_GEN_AI_RESPONSE_MODEL]: 'gpt-small',
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
      await client.chat.completions.create(params);
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
