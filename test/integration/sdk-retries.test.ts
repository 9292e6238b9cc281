import { once } from 'node:events';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  context,
  diag,
  DiagLogLevel,
  trace,
  type Span,
  type SpanContext,
  TraceFlags,
} from '@opentelemetry/api';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { suppressTracing } from '@opentelemetry/core';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Report } from '../../analyzer/report.js';
import { renderReportTable } from '../../analyzer/report-table.js';
import { FIXED_CONTENT } from '../../examples/mock-answers.js';
import { faults } from '../../examples/mock-faults.js';
import { startMockLlm, type MockLlm } from '../../examples/mock-llm.js';
import {
  ATTR_HTTP_ATTEMPTS,
  ATTR_HTTP_RETRY_WAIT_MS,
  instrumentAnthropic,
  instrumentOpenAI,
  runAttempt,
  runTask,
  withFallback,
} from '../../instrumentation/src/index.js';
import { exportTo, startCollector } from '../support/third-party.js';
import type { ExportingTracing, ListeningCollector } from '../support/third-party.js';

// Issue 13, "hidden retries seen": the real OpenAI and Anthropic SDKs, with their own retries on,
// against the simulated LLM failing chosen requests; the real OpenTelemetry SDK exporting over
// OTLP/HTTP to the collector, stored in the embedded ClickHouse, read back through the views and
// the report API. Waits between retries are the SDKs' own, set short by `retry-after`.

let llm: MockLlm;
let collector: ListeningCollector;
let tracing: ExportingTracing;
let openai: OpenAI;
let anthropic: Anthropic;
const memory = new InMemorySpanExporter();
const diagErrors: string[] = [];
const uncaught: unknown[] = [];
const onUncaught = (error: unknown) => void uncaught.push(error);

/** Both processors: every span to the collector and to memory. */
function both(...processors: SpanProcessor[]): SpanProcessor {
  return {
    onStart: (span, parent) => processors.forEach((p) => p.onStart(span, parent)),
    onEnd: (span) => processors.forEach((p) => p.onEnd(span)),
    forceFlush: async () => void (await Promise.all(processors.map((p) => p.forceFlush()))),
    shutdown: async () => void (await Promise.all(processors.map((p) => p.shutdown()))),
  };
}

beforeAll(async () => {
  llm = await startMockLlm({ anyModel: true });
  collector = await startCollector();
  tracing = exportTo(collector.tracesUrl, {
    exporting: (otlp) => both(new SimpleSpanProcessor(otlp), new SimpleSpanProcessor(memory)),
  });
  diag.setLogger(
    {
      error: (message) => void diagErrors.push(message),
      warn: () => undefined,
      info: () => undefined,
      debug: () => undefined,
      verbose: () => undefined,
    },
    { logLevel: DiagLogLevel.ERROR, suppressOverrideMessage: true },
  );
  process.on('uncaughtException', onUncaught);
  instrumentOpenAI(await import('openai'));
  instrumentAnthropic(await import('@anthropic-ai/sdk'));
  // The SDK defaults: two retries of a 429, a 5xx or a connection error.
  openai = new OpenAI({ apiKey: 'test', baseURL: llm.url });
  // Built after the provider is registered: its own tracing is on (our capture replaces it).
  anthropic = new Anthropic({ apiKey: 'test', baseURL: llm.origin });
});

afterEach(() => {
  memory.reset();
  diagErrors.length = 0;
  llm.setFaults([]);
});

afterAll(async () => {
  process.off('uncaughtException', onUncaught);
  diag.disable();
  await tracing?.shutdown();
  await collector?.close();
  await llm?.close();
});

const ask = [{ role: 'user' as const, content: 'hi' }];

/** Rows of a query through POST /api/v1/sql (the read-only path), as objects. */
async function sql(query: string): Promise<Record<string, unknown>[]> {
  await tracing.flush();
  return collector.sqlRows(query);
}

/** The stored model call of a requested model: its HTTP requests, wait and status. */
async function storedCall(model: string) {
  const rows = await sql(
    `SELECT http_attempts, http_retry_wait_ms, status_code, error_type, scope_name, task_id
     FROM spans FINAL WHERE kind = 'llm' AND request_model = '${model}'`,
  );
  expect(rows).toHaveLength(1);
  const row = rows[0]!;
  return {
    attempts: Number(row['http_attempts']),
    waitMs: Number(row['http_retry_wait_ms']),
    status: row['status_code'],
    errorType: row['error_type'],
    scope: row['scope_name'],
    taskId: String(row['task_id']),
  };
}

async function storedTask(taskId: string) {
  const [row] = await sql(
    `SELECT model_calls, http_counted_calls, retried_calls, http_retries, retry_wait_ms
     FROM v_tasks WHERE task_id = '${taskId}'`,
  );
  expect(row).toBeDefined();
  return Object.fromEntries(Object.entries(row!).map(([k, v]) => [k, Number(v)]));
}

/** Runs `call` inside a task and an attempt on route small; returns the task id and HTTP requests. */
async function inTask<T>(cohort: string, call: () => Promise<T>) {
  const before = llm.requests;
  let taskId = '';
  const result = await runTask({ cohort }, (task) => {
    taskId = task.taskId;
    return runAttempt({ route: 'small' }, call);
  });
  return { taskId, result, requests: llm.requests - before };
}

describe('the cost of a call that ended without usage', () => {
  it('is unknown when the route timeout cut the call off, and nothing when the provider refused it', async () => {
    // review data-edges #F1: a call given up on was stored as a known $0, and a route whose
    // timeouts drove its fallbacks showed a clean cost per success, with no call unpriced.
    llm.setFaults([
      faults.hang('gpt-hangs'),
      faults.status('gpt-refused', 429, { retryAfterSeconds: 0.01 }),
    ]);
    let taskId = '';
    await runTask({ cohort: 'cut-off' }, (task) => {
      taskId = task.taskId;
      return withFallback({
        routes: [
          {
            route: 'small',
            timeoutMs: 100,
            run: (ctx) =>
              openai.chat.completions.create(
                { model: 'gpt-hangs', messages: ask },
                { signal: ctx.signal },
              ),
          },
          {
            route: 'large',
            run: () => openai.chat.completions.create({ model: 'gpt-4o', messages: ask }),
          },
        ],
      });
    });
    const refused = await inTask('cut-off', () =>
      openai.chat.completions.create({ model: 'gpt-refused', messages: ask }),
    ).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    const rows = await sql(
      `SELECT request_model, cost_source, cost_note, error_type FROM spans FINAL
       WHERE kind = 'llm' AND cohort = 'cut-off' ORDER BY request_model`,
    );
    expect(rows).toEqual([
      { request_model: 'gpt-4o', cost_source: 'price_table', cost_note: '', error_type: '' },
      {
        request_model: 'gpt-hangs',
        cost_source: 'unpriced',
        cost_note: 'aborted_no_usage',
        error_type: 'APIUserAbortError',
      },
      {
        request_model: 'gpt-refused',
        cost_source: 'none',
        cost_note: 'failed_no_usage',
        error_type: '429',
      },
    ]);
    const [task] = await sql(`SELECT unpriced_calls FROM v_tasks WHERE task_id = '${taskId}'`);
    expect(Number(task!['unpriced_calls'])).toBe(1);
  });
});

describe('SDK retries, counted by the instrumentation', () => {
  it('OpenAI: a call rate-limited twice then answered records 3 requests and the wait; stored as 2 retries', async () => {
    llm.setFaults([faults.status('gpt-twice', 429, { times: 2, retryAfterSeconds: 0.02 })]);
    const { taskId, result, requests } = await inTask('retries', () =>
      openai.chat.completions.create({ model: 'gpt-twice', messages: ask }),
    );
    expect(result.choices[0]?.message.content).toBe(FIXED_CONTENT);
    expect(requests).toBe(3);
    const span = memory.getFinishedSpans().find((s) => s.name === 'chat gpt-twice')!;
    expect(span.attributes[ATTR_HTTP_ATTEMPTS]).toBe(3);
    // Two waits of at least 20 ms each (the SDK honours retry-after).
    expect(span.attributes[ATTR_HTTP_RETRY_WAIT_MS]).toBeGreaterThanOrEqual(40);

    const call = await storedCall('gpt-twice');
    expect(call).toMatchObject({ attempts: 3, status: 'unset', taskId });
    expect(call.waitMs).toBe(span.attributes[ATTR_HTTP_RETRY_WAIT_MS]);
    expect(await storedTask(taskId)).toEqual({
      model_calls: 1,
      http_counted_calls: 1,
      retried_calls: 1,
      http_retries: 2,
      retry_wait_ms: call.waitMs,
    });
  });

  it('Anthropic: a call overloaded twice then answered records 3 requests and the wait', async () => {
    llm.setFaults([faults.status('claude-twice', 529, { times: 2, retryAfterSeconds: 0.02 })]);
    const { taskId, result, requests } = await inTask('retries', () =>
      anthropic.messages.create({ model: 'claude-twice', max_tokens: 16, messages: ask }),
    );
    expect(result.content[0]).toEqual({ type: 'text', text: FIXED_CONTENT });
    expect(requests).toBe(3);
    const call = await storedCall('claude-twice');
    expect(call).toMatchObject({ attempts: 3, status: 'unset', taskId });
    expect(call.scope).toBe('@routewatch/instrumentation');
    expect(call.waitMs).toBeGreaterThanOrEqual(40);
    expect(await storedTask(taskId)).toMatchObject({ retried_calls: 1, http_retries: 2 });
  });

  it('records 1 request and no wait on a call answered at once', async () => {
    const { taskId, requests } = await inTask('retries', () =>
      openai.chat.completions.create({ model: 'gpt-once', messages: ask }),
    );
    expect(requests).toBe(1);
    const span = memory.getFinishedSpans().find((s) => s.name === 'chat gpt-once')!;
    expect(span.attributes[ATTR_HTTP_ATTEMPTS]).toBe(1);
    expect(span.attributes).not.toHaveProperty(ATTR_HTTP_RETRY_WAIT_MS);
    expect(await storedCall('gpt-once')).toMatchObject({ attempts: 1, waitMs: 0, status: 'unset' });
    expect(await storedTask(taskId)).toEqual({
      model_calls: 1,
      http_counted_calls: 1,
      retried_calls: 0,
      http_retries: 0,
      retry_wait_ms: 0,
    });
  });

  it('records 1 request and an error span with maxRetries: 0', async () => {
    llm.setFaults([faults.status('gpt-no-retry', 429, { times: 1, retryAfterSeconds: 0.02 })]);
    const before = llm.requests;
    const error = await openai.chat.completions
      .create({ model: 'gpt-no-retry', messages: ask }, { maxRetries: 0 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(llm.requests - before).toBe(1);
    expect(await storedCall('gpt-no-retry')).toMatchObject({
      attempts: 1,
      waitMs: 0,
      status: 'error',
      errorType: '429',
    });
  });

  it('counts the requests of a client whose fetch goes through node:http', async () => {
    llm.setFaults([faults.status('gpt-over-http', 500, { times: 1, retryAfterSeconds: 0.02 })]);
    const overHttp = new OpenAI({ apiKey: 'test', baseURL: llm.url, fetch: httpFetch });
    const { requests } = await inTask('retries', () =>
      overHttp.chat.completions.create({ model: 'gpt-over-http', messages: ask }),
    );
    expect(requests).toBe(2);
    const call = await storedCall('gpt-over-http');
    expect(call).toMatchObject({ attempts: 2, status: 'unset' });
    expect(call.waitMs).toBeGreaterThanOrEqual(20);
  });

  it('counts the requests on a span a third-party instrumentation made: the Anthropic SDK’s own', async () => {
    llm.setFaults([faults.status('claude-own-span', 429, { times: 2, retryAfterSeconds: 0.02 })]);
    // The SDK's method without our capture: its built-in tracing starts the call span.
    const { requests } = await inTask('retries', () =>
      uncaptured(
        anthropic.messages.create,
        anthropic.messages,
      )({
        model: 'claude-own-span',
        max_tokens: 16,
        messages: ask,
      }),
    );
    expect(requests).toBe(3);
    const call = await storedCall('claude-own-span');
    expect(call.attempts).toBe(3);
    expect(call.scope).toMatch(/^com\.anthropic\.sdk/);
    expect(call.waitMs).toBeGreaterThanOrEqual(40);
  });

  it('counts only requests to the model’s server: a token fetched first is no retry', async () => {
    const tokens = createServer((_req, res) => res.end('token')).listen(0, '127.0.0.1');
    await once(tokens, 'listening');
    const tokenUrl = `http://127.0.0.1:${(tokens.address() as AddressInfo).port}/token`;
    try {
      const signingIn = new OpenAI({
        apiKey: 'test',
        baseURL: llm.url,
        fetch: async (url, init) => {
          await fetch(tokenUrl).then((res) => res.text());
          return fetch(url, init);
        },
      });
      const asyncKey = new OpenAI({
        apiKey: () => fetch(tokenUrl).then((res) => res.text()),
        baseURL: llm.url,
      });
      await inTask('retries', () =>
        signingIn.chat.completions.create({ model: 'gpt-signing-in', messages: ask }),
      );
      await inTask('retries', () =>
        asyncKey.chat.completions.create({ model: 'gpt-async-key', messages: ask }),
      );
      expect(await storedCall('gpt-signing-in')).toMatchObject({ attempts: 1, waitMs: 0 });
      expect(await storedCall('gpt-async-key')).toMatchObject({ attempts: 1, waitMs: 0 });
      // A retry of the model's own request still counts, after the token.
      llm.setFaults([faults.status('gpt-token-retry', 500, { times: 1, retryAfterSeconds: 0.02 })]);
      await inTask('retries', () =>
        signingIn.chat.completions.create({ model: 'gpt-token-retry', messages: ask }),
      );
      expect(await storedCall('gpt-token-retry')).toMatchObject({ attempts: 2 });
    } finally {
      tokens.close();
    }
  });

  it('counts nothing on a span that is no model call', async () => {
    const tracer = trace.getTracer('test');
    await tracer.startActiveSpan('GET /orders', async (span) => {
      // The app's own request, not to a model, inside a server span: not counted on it.
      await fetch(`${llm.url}/models`).then((res) => res.text());
      span.end();
    });
    const orders = memory.getFinishedSpans().find((s) => s.name === 'GET /orders')!;
    expect(orders.attributes).not.toHaveProperty(ATTR_HTTP_ATTEMPTS);
  });

  it('leaves out what an exporter sends over http with tracing suppressed, under a call’s span', async () => {
    const tracer = trace.getTracer('test');
    await tracer.startActiveSpan(
      'chat by-hand',
      { attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'gpt-by-hand' } },
      async (span) => {
        // As the OTLP exporter sends a batch: over node:http, tracing suppressed.
        await context.with(suppressTracing(context.active()), () =>
          httpFetch(`${llm.url}/models`).then((res) => res.text()),
        );
        // The call's own request.
        await fetch(`${llm.url}/models`).then((res) => res.text());
        span.end();
      },
    );
    const call = memory.getFinishedSpans().find((s) => s.name === 'chat by-hand')!;
    expect(call.attributes[ATTR_HTTP_ATTEMPTS]).toBe(1);
  });

  it('counts the suppressed requests of our Anthropic capture over node:http, not an exporter’s', async () => {
    llm.setFaults([faults.status('claude-over-http', 529, { times: 1, retryAfterSeconds: 0.02 })]);
    const overHttp = new Anthropic({ apiKey: 'test', baseURL: llm.origin, fetch: httpFetch });
    const { requests } = await inTask('retries', () =>
      overHttp.messages.create({ model: 'claude-over-http', max_tokens: 16, messages: ask }),
    );
    expect(requests).toBe(2);
    expect(await storedCall('claude-over-http')).toMatchObject({ attempts: 2 });

    // A span naming its server: a suppressed request elsewhere (the collector) is not counted.
    const server = new URL(llm.url);
    const tracer = trace.getTracer('test');
    await tracer.startActiveSpan(
      'chat named-server',
      {
        attributes: {
          'gen_ai.operation.name': 'chat',
          'server.address': server.hostname,
          'server.port': Number(server.port),
        },
      },
      async (span) => {
        await context.with(suppressTracing(context.active()), () =>
          httpFetch(collector.tracesUrl.replace('/v1/traces', '/readyz')).then((res) => res.text()),
        );
        await fetch(`${llm.url}/models`).then((res) => res.text());
        span.end();
      },
    );
    const call = memory.getFinishedSpans().find((s) => s.name === 'chat named-server')!;
    expect(call.attributes[ATTR_HTTP_ATTEMPTS]).toBe(1);
  });

  it('never breaks the call: a span that throws when read costs the count, not the call', async () => {
    const hostile = throwingSpan();
    const before = llm.requests;
    const completion = (await context.with(trace.setSpan(context.active(), hostile), () =>
      uncaptured(
        openai.chat.completions.create,
        openai.chat.completions,
      )({
        model: 'gpt-hostile',
        messages: ask,
      }),
    )) as OpenAI.ChatCompletion;
    expect(completion.choices[0]?.message.content).toBe(FIXED_CONTENT);
    expect(llm.requests - before).toBe(1);
    expect(diagErrors).toContain('routewatch: counting an HTTP request failed');
    // A diagnostics subscriber that throws would surface here, in the host.
    await new Promise((resolve) => setImmediate(resolve));
    expect(uncaught).toEqual([]);
  });
});

describe('the retry rate in the report', () => {
  it('equals what the test counted, per cohort × route, in JSON and in the wide table', async () => {
    // The first call fails twice, the second once, then every call is answered at once.
    const failuresOfCall = [2, 1];
    const perCall: number[] = [];
    for (let i = 0; i < 10; i++) {
      const times = failuresOfCall[i];
      llm.setFaults(
        times ? [faults.status('gpt-flaky', 503, { times, retryAfterSeconds: 0.01 })] : [],
      );
      const { requests } = await inTask('retry-report', () =>
        openai.chat.completions.create({ model: 'gpt-flaky', messages: ask }),
      );
      perCall.push(requests);
    }
    const retried = perCall.filter((n) => n > 1).length;
    const extra = perCall.reduce((sum, n) => sum + n - 1, 0);
    expect([retried, extra]).toEqual([2, 3]);

    await sql('SELECT 1');
    const res = await collector.app.app.inject({
      method: 'GET',
      url: '/api/v1/report?window=1h&cohort=retry-report',
    });
    expect(res.statusCode, res.body).toBe(200);
    const report = res.json() as Report;
    expect(report.rows).toHaveLength(1);
    expect(report.rows[0]).toMatchObject({
      cohort: 'retry-report',
      primaryRoute: 'small',
      tasks: 10,
      modelCalls: 10,
      httpCountedCalls: 10,
      retriedCalls: retried,
      httpRetries: extra,
      retryRate: retried / 10,
      retriesPerTask: extra / 10,
    });
    expect(report.rows[0]!.retryWaitMs).toBeGreaterThanOrEqual(30);
    expect(renderReportTable(report, { wide: true })).toMatch(
      /^retry-report\s+small\s.*\s20\.0% \+0\.30\/task$/m,
    );
  });
});

/** The SDK method as it was before our capture patched it, bound to its resource. */
function uncaptured<A extends unknown[], R>(method: (...args: A) => R, self: unknown) {
  const original = (method as unknown as Record<symbol, unknown>)[
    Symbol.for('routewatch.original')
  ] as ((...args: A) => R) | undefined;
  expect(typeof original).toBe('function');
  return (...args: A): R => original!.apply(self, args);
}

/** A recording span whose every method throws: what a broken foreign tracer might hand out. */
function throwingSpan(): Span {
  const spanContext: SpanContext = {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    traceFlags: TraceFlags.SAMPLED,
  };
  const fail = () => {
    throw new Error('a broken span');
  };
  return {
    spanContext: () => spanContext,
    isRecording: fail,
    setAttribute: fail,
    setAttributes: fail,
    addEvent: fail,
    addLink: fail,
    addLinks: fail,
    setStatus: fail,
    updateName: fail,
    end: () => undefined,
    recordException: fail,
  } as unknown as Span;
}

/** A `fetch` over node:http, as node-fetch and older SDK versions make their requests. */
const httpFetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> =>
  new Promise((resolve, reject) => {
    const url = new URL(input instanceof Request ? input.url : input);
    const headers = Object.fromEntries(new Headers(init?.headers).entries());
    const req = httpRequest(url, { method: init?.method ?? 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          if (typeof value === 'string') responseHeaders.set(name, value);
        }
        resolve(
          new Response(Buffer.concat(chunks), {
            status: res.statusCode ?? 500,
            headers: responseHeaders,
          }),
        );
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(typeof init?.body === 'string' ? init.body : undefined);
  });
