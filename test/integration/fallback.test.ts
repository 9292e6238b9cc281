import { setTimeout as sleep } from 'node:timers/promises';
import { SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  AttemptRejectedError,
  FallbackConfigError,
  FallbackExhaustedError,
  RouteTimeoutError,
  runTask,
  withFallback,
} from '../../instrumentation/src/index.js';
import {
  ATTEMPT_SPAN_PREFIX,
  ATTR_ATTEMPT,
  ATTR_COHORT,
  ATTR_CONFIDENCE,
  ATTR_ERROR_TYPE,
  ATTR_FALLBACK_REASON,
  ATTR_ROUTE,
  ATTR_TASK_ID,
  ATTR_VALIDATION,
  TASK_SPAN_PREFIX,
} from '../../instrumentation/src/semconv.js';
import { faults } from '../../examples/mock-faults.js';
import { startMockLlm, type MockLlm } from '../../examples/mock-llm.js';
import { useInMemoryTracing } from '../support/in-memory-tracing.js';

const { exporter, diagMessages } = useInMemoryTracing();

/** Finished attempt spans in attempt order. */
function attemptSpans(): ReadableSpan[] {
  return exporter
    .getFinishedSpans()
    .filter((span) => span.name.startsWith(`${ATTEMPT_SPAN_PREFIX} `))
    .sort((a, b) => Number(a.attributes[ATTR_ATTEMPT]) - Number(b.attributes[ATTR_ATTEMPT]));
}

function taskSpan(): ReadableSpan {
  const tasks = exporter
    .getFinishedSpans()
    .filter((s) => s.name.startsWith(`${TASK_SPAN_PREFIX} `));
  expect(tasks).toHaveLength(1);
  return tasks[0]!;
}

const answer = (text: string, confidence?: number) => ({ text, confidence });
const failWith = (error: unknown) => () => Promise.reject(error);

/** The FallbackExhaustedError a call rejects with (fails the test if it resolves or throws another). */
async function exhaustion(call: Promise<unknown>): Promise<FallbackExhaustedError> {
  const failure = await call.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(failure).toBeInstanceOf(FallbackExhaustedError);
  return failure as FallbackExhaustedError;
}

describe('withFallback', () => {
  it('returns the primary route result as one attempt span without a fallback reason', async () => {
    const signals: AbortSignal[] = [];
    const result = await runTask({ cohort: 'faq', taskId: 't-ok' }, () =>
      withFallback({
        routes: [
          {
            route: 'small',
            run: (ctx) => {
              signals.push(ctx.signal);
              return answer('hi', 0.9);
            },
          },
          { route: 'large', run: () => answer('never') },
        ],
        validate: (value) => value.text !== '',
        confidence: { of: (value) => value.confidence, threshold: 0.6 },
      }),
    );
    expect(result).toMatchObject({ value: { text: 'hi' }, route: 'small', attempt: 1 });
    expect(result.attempts).toEqual([
      {
        route: 'small',
        attempt: 1,
        reason: undefined,
        outcome: 'pass',
        validation: 'pass',
        confidence: 0.9,
        modelCall: true,
        durationMs: expect.any(Number),
      },
    ]);
    const spans = attemptSpans();
    expect(spans.map((s) => s.name)).toEqual([`${ATTEMPT_SPAN_PREFIX} small`]);
    expect(spans[0]!.attributes).toMatchObject({
      [ATTR_TASK_ID]: 't-ok',
      [ATTR_COHORT]: 'faq',
      [ATTR_ROUTE]: 'small',
      [ATTR_ATTEMPT]: 1,
      [ATTR_VALIDATION]: 'pass',
      [ATTR_CONFIDENCE]: 0.9,
    });
    expect(spans[0]!.attributes[ATTR_FALLBACK_REASON]).toBeUndefined();
    expect(taskSpan().attributes[ATTR_FALLBACK_REASON]).toBeUndefined();
    // An accepted result may be a stream still reading under the signal: it is left alone.
    expect(signals.map((signal) => signal.aborted)).toEqual([false]);
  });

  it('falls back on a thrown error with reason error and marks the failed attempt span', async () => {
    const boom = new Error('model exploded');
    const result = await runTask({ cohort: 'faq' }, () =>
      withFallback({
        routes: [
          { route: 'small', run: failWith(boom) },
          { route: 'large', run: () => 'large answer' },
        ],
      }),
    );
    expect(result.value).toBe('large answer');
    expect(result).toMatchObject({ route: 'large', attempt: 2 });
    expect(
      result.attempts.map((a) => [a.route, a.attempt, a.reason, a.outcome, a.trigger]),
    ).toEqual([
      ['small', 1, undefined, 'error', 'error'],
      ['large', 2, 'error', 'pass', undefined],
    ]);
    expect(result.attempts[0]!.error).toBe(boom);
    const [small, large] = attemptSpans();
    expect(small!.status).toEqual({ code: SpanStatusCode.ERROR, message: 'model exploded' });
    expect(small!.attributes[ATTR_ERROR_TYPE]).toBe('Error');
    expect(large!.attributes).toMatchObject({
      [ATTR_ROUTE]: 'large',
      [ATTR_ATTEMPT]: 2,
      [ATTR_FALLBACK_REASON]: 'error',
    });
  });

  it('treats a route that throws synchronously like one that rejects', async () => {
    const result = await withFallback({
      routes: [
        {
          route: 'small',
          run: (): string => {
            throw new TypeError('bad prompt');
          },
        },
        { route: 'large', run: () => 'ok' },
      ],
    });
    expect(result.attempts.map((a) => a.trigger ?? a.outcome)).toEqual(['error', 'pass']);
  });

  it('validates options before running any route', async () => {
    let ran = false;
    const run = () => {
      ran = true;
      return 'x';
    };
    await expect(
      withFallback({ routes: [{ route: 'small', run }], maxModelAttempts: 0 }),
    ).rejects.toThrow(/maxModelAttempts must be an integer >= 1, got 0/);
    await expect(
      withFallback({
        routes: [
          { route: 'large', run },
          { route: 'small', run },
        ],
        highRisk: { when: () => true, skipTo: 'large' },
      }),
    ).rejects.toThrow(/highRisk.skipTo must name a route after the first, got "large"/);
    await expect(
      withFallback({ routes: [{ route: 'small', run, timeoutMs: -5 }] }),
    ).rejects.toBeInstanceOf(FallbackConfigError);
    await expect(withFallback({ routes: [] })).rejects.toThrow(/routes must be a non-empty array/);
    expect(ran).toBe(false);
    // Outside a task, a bad option or a signal aborted already starts no task (review diff #5).
    await expect(
      withFallback({ routes: [{ route: 'small', run }], signal: AbortSignal.abort() }),
    ).rejects.toThrow();
    expect(exporter.getFinishedSpans()).toEqual([]);
  });
});

describe('withFallback triggers', () => {
  // The simulated LLM answers 429 for `rate-limited` and never answers for `hang`.
  let llm: MockLlm;
  const hangs = () => llm.received.filter((request) => request.model === 'hang').length;

  beforeAll(async () => {
    llm = await startMockLlm({
      anyModel: true,
      recordRequests: true,
      faults: [faults.status('rate-limited', 429, { retryAfterSeconds: 1 }), faults.hang('hang')],
    });
  });

  afterAll(async () => {
    await llm.close();
  });

  const client = (options: { timeout?: number } = {}) =>
    new OpenAI({ apiKey: 'test', baseURL: llm.url, maxRetries: 0, ...options });
  const chat = (openai: OpenAI, model: string, signal: AbortSignal) =>
    openai.chat.completions.create(
      { model, messages: [{ role: 'user', content: 'hi' }] },
      { signal },
    );

  it('tells a 429 from the OpenAI SDK apart as rate_limited', async () => {
    const result = await runTask({ cohort: 'faq' }, () =>
      withFallback({
        routes: [
          { route: 'small', run: (ctx) => chat(client(), 'rate-limited', ctx.signal) },
          { route: 'large', run: () => 'fallback answer' },
        ],
      }),
    );
    expect(result.value).toBe('fallback answer');
    expect(result.attempts[0]).toMatchObject({ outcome: 'error', trigger: 'rate_limited' });
    expect(result.attempts[0]!.error).toBeInstanceOf(OpenAI.RateLimitError);
    const [small, large] = attemptSpans();
    expect(small!.attributes[ATTR_ERROR_TYPE]).toBe('429');
    expect(large!.attributes[ATTR_FALLBACK_REASON]).toBe('rate_limited');
  });

  it('tells an SDK timeout apart as timeout', async () => {
    const result = await withFallback({
      routes: [
        { route: 'small', run: (ctx) => chat(client({ timeout: 100 }), 'hang', ctx.signal) },
        { route: 'large', run: () => 'fallback answer' },
      ],
    });
    expect(hangs()).toBeGreaterThan(0);
    expect(result.attempts[0]).toMatchObject({ outcome: 'timeout', trigger: 'timeout' });
    expect(result.attempts[0]!.error).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    expect(attemptSpans()[1]!.attributes[ATTR_FALLBACK_REASON]).toBe('timeout');
  });

  it('aborts ctx.signal at the route timeout and stops waiting for a route that ignores it', async () => {
    let seenSignal: AbortSignal | undefined;
    const started = performance.now();
    const result = await runTask({ cohort: 'faq' }, () =>
      withFallback({
        routes: [
          {
            route: 'small',
            timeoutMs: 50,
            run: async (ctx) => {
              seenSignal = ctx.signal;
              await sleep(5_000); // ignores the signal
              return 'too late';
            },
          },
          { route: 'large', run: () => 'in time' },
        ],
      }),
    );
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(result.value).toBe('in time');
    expect(seenSignal?.aborted).toBe(true);
    expect(seenSignal?.reason).toBeInstanceOf(RouteTimeoutError);
    expect(result.attempts[0]).toMatchObject({ outcome: 'timeout', trigger: 'timeout' });
    expect(result.attempts[0]!.error).toBe(seenSignal?.reason);
    const [small, large] = attemptSpans();
    expect(small!.attributes[ATTR_ERROR_TYPE]).toBe('RouteTimeoutError');
    expect(large!.attributes[ATTR_FALLBACK_REASON]).toBe('timeout');
  });

  it('passes the route timeout to an SDK call through ctx.signal', async () => {
    const result = await withFallback({
      routes: [
        { route: 'small', timeoutMs: 50, run: (ctx) => chat(client(), 'hang', ctx.signal) },
        { route: 'large', run: () => 'fallback answer' },
      ],
    });
    expect(result.attempts[0]).toMatchObject({ outcome: 'timeout', trigger: 'timeout' });
    expect(result.attempts[0]!.error).toBeInstanceOf(RouteTimeoutError);
  });

  it('validates with a zod schema that has an async refinement', async () => {
    // review instrumentation #6: safeParse throws on an async check, which rejected valid values.
    const Reply = z.object({ text: z.string() }).refine(async (r) => r.text !== 'bad');
    const good = await withFallback({
      routes: [
        { route: 'small', run: () => ({ text: 'fine' }) },
        { route: 'large', run: () => ({ text: 'large' }) },
      ],
      validate: Reply,
    });
    expect(good.value).toEqual({ text: 'fine' });
    expect(good.attempts).toHaveLength(1);
    const bad = await withFallback({
      routes: [
        { route: 'small', run: () => ({ text: 'bad' }) },
        { route: 'large', run: () => ({ text: 'large' }) },
      ],
      validate: Reply,
    });
    expect(bad.value).toEqual({ text: 'large' });
    expect(bad.attempts[0]).toMatchObject({ trigger: 'validation_failed' });
    expect((bad.attempts[0]!.error as AttemptRejectedError).cause).toBeInstanceOf(z.ZodError);
  });

  it('falls back with validation_failed when a zod schema rejects the result', async () => {
    const Reply = z.object({ text: z.string().min(1) });
    const result = await runTask({ cohort: 'extraction' }, () =>
      withFallback({
        routes: [
          { route: 'small', run: () => ({ text: '' }) },
          { route: 'large', run: () => ({ text: 'extracted' }) },
        ],
        validate: Reply,
      }),
    );
    expect(result.value).toEqual({ text: 'extracted' });
    const [small] = result.attempts;
    expect(small).toMatchObject({
      outcome: 'fail',
      trigger: 'validation_failed',
      validation: 'fail',
    });
    expect(small!.error).toBeInstanceOf(AttemptRejectedError);
    expect((small!.error as AttemptRejectedError).cause).toBeInstanceOf(z.ZodError);
    expect((small!.error as AttemptRejectedError).value).toEqual({ text: '' });
    const [smallSpan, largeSpan] = attemptSpans();
    expect(smallSpan!.attributes[ATTR_VALIDATION]).toBe('fail');
    expect(smallSpan!.status.code).toBe(SpanStatusCode.UNSET);
    expect(largeSpan!.attributes).toMatchObject({
      [ATTR_VALIDATION]: 'pass',
      [ATTR_FALLBACK_REASON]: 'validation_failed',
    });
  });

  it('falls back with validation_failed when a predicate returns false, or with its own reason', async () => {
    const result = await runTask({ cohort: 'policy' }, () =>
      withFallback({
        routes: [
          { route: 'small', run: () => 'no' },
          { route: 'medium', run: () => 'I cannot cite the policy' },
          { route: 'large', run: () => 'Per policy 4.2, yes.' },
        ],
        validate: (reply) =>
          reply === 'no' ? false : reply.includes('policy 4.2') || 'no_citation',
        maxModelAttempts: 3,
      }),
    );
    expect(result.value).toBe('Per policy 4.2, yes.');
    expect(result.attempts.map((a) => [a.reason, a.trigger, a.validation])).toEqual([
      [undefined, 'validation_failed', 'fail'],
      ['validation_failed', 'no_citation', 'fail'],
      ['no_citation', undefined, 'pass'],
    ]);
    expect(attemptSpans().map((s) => s.attributes[ATTR_FALLBACK_REASON])).toEqual([
      undefined,
      'validation_failed',
      'no_citation',
    ]);
  });

  it('accepts a Standard Schema as the validation gate', async () => {
    const text = {
      '~standard': {
        validate: async (value: unknown) =>
          typeof value === 'string' ? { value } : { issues: [{ message: 'expected a string' }] },
      },
    };
    const result = await withFallback({
      routes: [
        { route: 'small', run: () => 42 },
        { route: 'large', run: () => 'forty-two' },
      ],
      validate: text,
    });
    expect(result.value).toBe('forty-two');
    const rejection = result.attempts[0]!.error as AttemptRejectedError;
    expect(rejection.message).toBe(
      'route small result rejected (validation_failed): expected a string',
    );
  });

  it('counts a throwing validate predicate as a failed validation, error kept', async () => {
    const result = await withFallback({
      routes: [
        { route: 'small', run: () => ({ choices: [] as string[] }) },
        { route: 'large', run: () => ({ choices: ['yes'] }) },
      ],
      validate: (reply) => reply.choices[0]!.length > 0,
    });
    const rejection = result.attempts[0]!.error as AttemptRejectedError;
    expect(rejection.reason).toBe('validation_failed');
    expect(rejection.cause).toBeInstanceOf(TypeError);
  });

  it('falls back with low_confidence below the threshold and records the confidence', async () => {
    const result = await runTask({ cohort: 'faq' }, () =>
      withFallback({
        routes: [
          { route: 'small', run: () => answer('maybe', 0.3) },
          { route: 'large', run: () => answer('surely', 0.95) },
        ],
        validate: (value) => value.text.length > 0,
        confidence: { of: (value) => value.confidence, threshold: 0.6 },
      }),
    );
    expect(result.value.text).toBe('surely');
    expect(result.attempts[0]).toMatchObject({
      outcome: 'fail',
      trigger: 'low_confidence',
      validation: 'pass',
      confidence: 0.3,
    });
    expect((result.attempts[0]!.error as AttemptRejectedError).confidence).toBe(0.3);
    const [small, large] = attemptSpans();
    expect(small!.attributes).toMatchObject({ [ATTR_CONFIDENCE]: 0.3, [ATTR_VALIDATION]: 'pass' });
    expect(large!.attributes).toMatchObject({
      [ATTR_CONFIDENCE]: 0.95,
      [ATTR_FALLBACK_REASON]: 'low_confidence',
    });
  });

  it('lets a result without a confidence pass the confidence gate', async () => {
    const result = await withFallback({
      routes: [{ route: 'small', run: () => answer('no score') }],
      confidence: { of: (value) => value.confidence, threshold: 0.6 },
    });
    expect(result.attempts[0]).toMatchObject({ outcome: 'pass' });
    expect(attemptSpans()[0]!.attributes[ATTR_CONFIDENCE]).toBeUndefined();
  });

  it('skips straight to the named route for a high-risk input, reason high_risk', async () => {
    const ran: string[] = [];
    const route = (name: string) => ({
      route: name,
      run: (ctx: { input: { amount: number } }) => {
        ran.push(name);
        return `${name} handled ${ctx.input.amount}`;
      },
    });
    const result = await runTask({ cohort: 'refunds' }, () =>
      withFallback({
        input: { amount: 5_000 },
        routes: [route('small'), route('medium'), route('large')],
        highRisk: { when: (input) => input.amount > 1_000, skipTo: 'large' },
      }),
    );
    expect(ran).toEqual(['large']);
    expect(result).toMatchObject({ value: 'large handled 5000', route: 'large', attempt: 1 });
    expect(result.attempts).toHaveLength(1);
    expect(result.attempts[0]).toMatchObject({ reason: 'high_risk', outcome: 'pass' });
    const spans = attemptSpans();
    expect(spans.map((s) => s.name)).toEqual([`${ATTEMPT_SPAN_PREFIX} large`]);
    expect(spans[0]!.attributes[ATTR_ATTEMPT]).toBe(1);
    // Attempt 1 is the routing decision, so the reason sits on the task span (contract: task).
    expect(taskSpan().attributes[ATTR_FALLBACK_REASON]).toBe('high_risk');
  });

  it('runs the primary route when the high-risk predicate is false', async () => {
    const result = await withFallback({
      input: { amount: 10 },
      routes: [
        { route: 'small', run: () => 'small' },
        { route: 'large', run: () => 'large' },
      ],
      highRisk: { when: (input) => input.amount > 1_000, skipTo: 'large' },
    });
    expect(result.attempts.map((a) => [a.route, a.reason])).toEqual([['small', undefined]]);
  });
});

describe('withFallback bound and exhaustion', () => {
  it('makes at most 2 model attempts by default: the third model route never runs', async () => {
    const errors = [new Error('small down'), new Error('medium down'), new Error('large down')];
    const ran: string[] = [];
    const route = (name: string, error: Error) => ({
      route: name,
      run: () => {
        ran.push(name);
        return Promise.reject(error);
      },
    });
    const exhausted = await exhaustion(
      runTask({ cohort: 'faq' }, () =>
        withFallback({
          routes: [
            route('small', errors[0]!),
            route('medium', errors[1]!),
            route('large', errors[2]!),
          ],
        }),
      ),
    );
    expect(ran).toEqual(['small', 'medium']);
    expect(exhausted).toBeInstanceOf(AggregateError);
    expect(exhausted.code).toBe('FALLBACK_EXHAUSTED');
    expect(exhausted.errors).toEqual([errors[0], errors[1]]);
    expect(exhausted.errors[0]).toBe(errors[0]);
    expect(exhausted.cause).toBe(errors[1]);
    expect(exhausted.skippedRoutes).toEqual(['large']);
    expect(exhausted.message).toBe(
      'all 2 attempts failed (small: error, medium: error); skipped at the model attempt bound: large',
    );
    expect(exhausted.attempts.map((a) => [a.route, a.attempt, a.reason, a.outcome])).toEqual([
      ['small', 1, undefined, 'error'],
      ['medium', 2, 'error', 'error'],
    ]);
    expect(attemptSpans().map((s) => s.name)).toEqual([
      `${ATTEMPT_SPAN_PREFIX} small`,
      `${ATTEMPT_SPAN_PREFIX} medium`,
    ]);
    // The task span records the failure the error escaped with.
    expect(taskSpan().status.code).toBe(SpanStatusCode.ERROR);
  });

  it('still runs a non-model route past the bound, ungated, with the last trigger as its reason', async () => {
    const ran: string[] = [];
    const result = await runTask({ cohort: 'faq' }, () =>
      withFallback({
        routes: [
          { route: 'small', run: () => (ran.push('small'), 'bad') },
          { route: 'medium', run: () => (ran.push('medium'), Promise.reject(new Error('down'))) },
          { route: 'large', run: () => (ran.push('large'), 'good') },
          {
            route: 'human',
            modelCall: false,
            run: (ctx) => {
              ran.push('human');
              return `ticket for ${ctx.previousAttempts.map((a) => a.route).join('+')}`;
            },
          },
        ],
        validate: (reply) => reply === 'good',
      }),
    );
    expect(ran).toEqual(['small', 'medium', 'human']);
    expect(result).toMatchObject({ value: 'ticket for small+medium', route: 'human', attempt: 3 });
    expect(result.attempts.map((a) => [a.route, a.attempt, a.reason, a.outcome])).toEqual([
      ['small', 1, undefined, 'fail'],
      ['medium', 2, 'validation_failed', 'error'],
      ['human', 3, 'error', 'pass'],
    ]);
    expect(result.attempts[2]).toMatchObject({ modelCall: false });
    expect(result.attempts[2]!.validation).toBeUndefined();
    const human = attemptSpans()[2]!;
    expect(human.attributes).toMatchObject({ [ATTR_ATTEMPT]: 3, [ATTR_FALLBACK_REASON]: 'error' });
    expect(human.attributes[ATTR_VALIDATION]).toBeUndefined();
  });

  it('carries every attempt error, gate rejections included, in the final error', async () => {
    const down = Object.assign(new Error('overloaded'), { status: 529 });
    const failure = await exhaustion(
      withFallback({
        routes: [
          { route: 'small', run: () => 'unparseable' },
          { route: 'large', run: failWith(down) },
          { route: 'human', modelCall: false, run: failWith(new Error('queue full')) },
        ],
        validate: z.object({ answer: z.string() }),
      }),
    );
    expect(failure.errors).toHaveLength(3);
    expect(failure.errors[0]).toBeInstanceOf(AttemptRejectedError);
    expect(failure.errors[1]).toBe(down);
    expect((failure.errors[2] as Error).message).toBe('queue full');
    expect(failure.attempts.map((a) => a.error)).toEqual(failure.errors);
    expect(failure.attempts.map((a) => a.trigger)).toEqual(['validation_failed', 'error', 'error']);
  });

  it('works outside a task, in a task of its own: one trace, consecutive attempts, reasons', async () => {
    const result = await withFallback({
      routes: [
        { route: 'small', run: failWith(Object.assign(new Error('slow down'), { status: 429 })) },
        { route: 'large', run: () => 'ok' },
      ],
    });
    expect(result.attempt).toBe(2);
    const spans = attemptSpans();
    expect(
      spans.map((s) => [s.attributes[ATTR_ATTEMPT], s.attributes[ATTR_FALLBACK_REASON]]),
    ).toEqual([
      [1, undefined],
      [2, 'rate_limited'],
    ]);
    // review instrumentation #3: each attempt started a trace of its own, and the store counted
    // two tasks, the second one of route large with no fallback before it.
    const task = taskSpan();
    expect(task.attributes[ATTR_TASK_ID]).toBe(task.spanContext().traceId);
    for (const span of spans) {
      expect(span.attributes[ATTR_TASK_ID]).toBe(task.attributes[ATTR_TASK_ID]);
      expect(span.spanContext().traceId).toBe(task.spanContext().traceId);
    }
  });

  it('stops the chain when the caller signal aborts, rethrowing its reason', async () => {
    const controller = new AbortController();
    const ran: string[] = [];
    const failure = withFallback({
      signal: controller.signal,
      routes: [
        {
          route: 'small',
          run: async (ctx) => {
            ran.push('small');
            setTimeout(() => controller.abort(new Error('client went away')), 10);
            await sleep(5_000);
            return ctx.signal.aborted;
          },
        },
        { route: 'large', run: () => (ran.push('large'), true) },
      ],
    });
    await expect(failure).rejects.toThrow('client went away');
    expect(ran).toEqual(['small']);
  });

  it('keeps falling back when classifying a hostile error fails inside routewatch', async () => {
    const hostile = new Error('hostile');
    Object.defineProperty(hostile, 'status', {
      get() {
        throw new Error('getter trap');
      },
    });
    const result = await withFallback({
      routes: [
        { route: 'small', run: failWith(hostile) },
        { route: 'large', run: () => 'ok' },
      ],
    });
    expect(result.value).toBe('ok');
    expect(result.attempts[0]).toMatchObject({ outcome: 'error', trigger: 'error' });
    expect(result.attempts[0]!.error).toBe(hostile);
    expect(
      diagMessages.some(
        (m) => m.level === 'error' && m.message.includes('classifying an attempt error'),
      ),
    ).toBe(true);
  });
});
