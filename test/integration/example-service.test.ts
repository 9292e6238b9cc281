import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { costPerSuccessfulTask, stableTruth } from '../../examples/ground-truth.js';
import type { GroundTruth } from '../../examples/ground-truth.js';
import { faults } from '../../examples/mock-faults.js';
import { startMockLlm } from '../../examples/mock-llm.js';
import type { MockLlm } from '../../examples/mock-llm.js';
import { MAX_MODEL_ATTEMPTS, runExampleService } from '../../examples/support-service.js';
import { promptFor } from '../../examples/support-tasks.js';
import {
  ATTEMPT_SPAN_PREFIX,
  ATTR_CONFIDENCE,
  ATTR_FALLBACK_REASON,
  ATTR_OUTCOME,
  ATTR_OUTCOME_REASON,
  ATTR_POLICY_VERSION,
  ATTR_TASK_ID,
  ATTR_VALIDATION,
  TASK_SPAN_PREFIX,
} from '../../instrumentation/src/semconv.js';
import { useInMemoryTracing } from '../support/in-memory-tracing.js';

// The example service against the simulated LLM, with the real instrumentation and the real
// OpenTelemetry SDK keeping its spans in memory: what it counts and what its spans say must agree.

const SEED = 42;
const { exporter, provider } = useInMemoryTracing();

const count = (items: Array<string | number | boolean | undefined>): Record<string, number> =>
  items.reduce<Record<string, number>>((acc, item) => {
    const key = String(item ?? '-');
    return { ...acc, [key]: (acc[key] ?? 0) + 1 };
  }, {});

describe('runExampleService', () => {
  let mock: MockLlm;
  let truth: GroundTruth;
  let spans: ReadableSpan[];
  beforeAll(async () => {
    mock = await startMockLlm({ seed: SEED, latencyScale: 0 });
    truth = await runExampleService({
      seed: SEED,
      tasks: 1000,
      openaiBaseURL: mock.url,
      policyVersion: 'p1',
    });
    spans = [...exporter.getFinishedSpans()];
  });
  afterAll(async () => {
    await mock.close();
  });

  it('gives the same ground truth at any concurrency', async () => {
    const serial = await runExampleService({
      seed: SEED,
      tasks: 1000,
      concurrency: 1,
      openaiBaseURL: mock.url,
      policyVersion: 'p1',
    });
    expect(stableTruth(serial)).toEqual(stableTruth(truth));
    expect(serial.totals.costUsd).toBe(truth.totals.costUsd);
  });

  it('gives another ground truth under another seed', async () => {
    const other = await startMockLlm({ seed: SEED + 1, latencyScale: 0 });
    try {
      const truthOther = await runExampleService({
        seed: SEED + 1,
        tasks: 200,
        openaiBaseURL: other.url,
      });
      const mine = truth.tasks
        .slice(0, 200)
        .map((task) => [task.cohort, task.outcome, task.attempts.length]);
      const theirs = truthOther.tasks.map((task) => [
        task.cohort,
        task.outcome,
        task.attempts.length,
      ]);
      expect(theirs).not.toEqual(mine);
    } finally {
      await other.close();
    }
  });

  it('routes faq and extraction small-first, policy and agentic large-first', () => {
    expect(truth.groups.map((group) => [group.cohort, group.primaryRoute])).toEqual([
      ['faq', 'small'],
      ['extraction', 'small'],
      ['policy', 'large'],
      ['agentic', 'large'],
    ]);
    expect(truth.totals.tasks).toBe(1000);
    for (const group of truth.groups) expect(group.tasks).toBeGreaterThan(100);
  });

  it('makes at most two model attempts and falls back only from the small route', () => {
    for (const task of truth.tasks) {
      expect(task.attempts.length).toBeLessThanOrEqual(MAX_MODEL_ATTEMPTS);
      expect(task.attempts[0]?.route).toBe(task.primaryRoute);
      expect(task.attempts[0]?.fallbackReason).toBeUndefined();
      if (task.primaryRoute === 'large') expect(task.attempts).toHaveLength(1);
      const fallback = task.attempts[1];
      if (fallback !== undefined) {
        expect(fallback.route).toBe('large');
        expect(fallback.fallbackReason).toBeDefined();
      }
    }
    const fallbacks = truth.tasks.filter((task) => task.attempts.length === 2).length;
    expect(fallbacks).toBe(truth.totals.fallbacks);
    expect(fallbacks).toBeGreaterThan(0);
  });

  it('records every task, attempt, fallback reason, validation and outcome it counted on spans', () => {
    const taskSpans = spans.filter((span) => span.name.startsWith(`${TASK_SPAN_PREFIX} `));
    expect(taskSpans).toHaveLength(1000);
    const byTaskId = new Map(truth.tasks.map((task) => [task.taskId, task]));
    for (const span of taskSpans) {
      const task = byTaskId.get(String(span.attributes[ATTR_TASK_ID]));
      expect(span.name).toBe(`${TASK_SPAN_PREFIX} ${task?.cohort}`);
      expect(span.attributes[ATTR_POLICY_VERSION]).toBe('p1');
      expect(span.attributes[ATTR_OUTCOME]).toBe(task?.outcome);
      expect(span.attributes[ATTR_OUTCOME_REASON]).toBe(task?.outcomeReason);
      expect(span.attributes[ATTR_FALLBACK_REASON]).toBe(task?.attempts[1]?.fallbackReason);
    }
    const attempts = truth.tasks.flatMap((task) => task.attempts);
    const attemptSpans = spans.filter((span) => span.name.startsWith(`${ATTEMPT_SPAN_PREFIX} `));
    expect(attemptSpans).toHaveLength(attempts.length);
    const attribute = (name: string) =>
      attemptSpans.map((span) => span.attributes[name] as string | number | undefined);
    expect(count(attribute(ATTR_FALLBACK_REASON))).toEqual(
      count(attempts.map((a) => a.fallbackReason)),
    );
    expect(count(attribute(ATTR_VALIDATION))).toEqual(
      count(attempts.map((a) => (a.result === 'error' ? undefined : a.result))),
    );
    expect(count(attribute(ATTR_CONFIDENCE))).toEqual(count(attempts.map((a) => a.confidence)));
    expect(attemptSpans.filter((span) => span.status.code === SpanStatusCode.ERROR).length).toBe(
      attempts.filter((a) => a.result === 'error').length,
    );
  });

  it('shows extraction failing validation on the small route far more often than faq', () => {
    const [faq, extraction] = truth.groups;
    const validationShare = (group: typeof faq): number =>
      (group?.fallbackReasons['validation_failed'] ?? 0) / (group?.tasks ?? 1);
    expect(validationShare(extraction)).toBeGreaterThan(0.12);
    expect(validationShare(extraction)).toBeGreaterThan(4 * validationShare(faq));
    expect(faq?.fallbackReasons['low_confidence']).toBeGreaterThan(0);
    for (const group of truth.groups) {
      expect(group.successes + group.failures).toBe(group.tasks);
      expect(group.successes / group.tasks).toBeGreaterThan(0.7);
    }
  });

  it('costs every call that returned usage at the simulator prices and failed calls nothing', async () => {
    const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);
    expect(truth.totals.costUsd).toBeCloseTo(sum(truth.groups.map((g) => g.costUsd)), 9);
    for (const task of truth.tasks) {
      expect(task.costUsd).toBeCloseTo(sum(task.attempts.map((a) => a.costUsd)), 12);
      if (task.attempts.every((a) => a.result === 'error' && a.llmCalls === 1))
        expect(task.costUsd).toBe(0);
    }
    // Replay one single-call task with the SDK and price it by hand.
    const single = truth.tasks.find((task) => task.cohort === 'faq' && task.attempts.length === 1);
    if (single === undefined) throw new Error('no single-attempt faq task');
    const client = new OpenAI({ baseURL: mock.url, apiKey: 'test', maxRetries: 0 });
    const replay = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: promptFor(SEED, single.index, 'faq'),
    });
    const usage = replay.usage ?? { prompt_tokens: 0, completion_tokens: 0 };
    expect(single.costUsd).toBeCloseTo(
      (usage.prompt_tokens * 0.15 + usage.completion_tokens * 0.6) / 1e6,
      12,
    );
    expect(costPerSuccessfulTask(truth.totals)).toBeCloseTo(
      truth.totals.costUsd / truth.totals.successes,
      12,
    );
    expect(costPerSuccessfulTask({ costUsd: 1, successes: 0 })).toBeNull();
  });

  it('falls back with rate_limited on a 429 and error on a 500', async () => {
    const run = async (profile: { rateLimitedRate?: number; serverErrorRate?: number }) => {
      const failing = await startMockLlm({
        seed: SEED,
        latencyScale: 0,
        profiles: { small: { faq: profile } },
      });
      try {
        return await runExampleService({ seed: SEED, tasks: 100, openaiBaseURL: failing.url });
      } finally {
        await failing.close();
      }
    };
    const rateLimited = await run({ rateLimitedRate: 1 });
    const faq = rateLimited.groups.find((group) => group.cohort === 'faq');
    expect(faq?.fallbacks).toBe(faq?.tasks);
    expect(faq?.fallbackReasons).toEqual({ rate_limited: faq?.tasks });
    const serverError = await run({ rateLimitedRate: 0, serverErrorRate: 1 });
    expect(serverError.groups.find((group) => group.cohort === 'faq')?.fallbackReasons).toEqual({
      error: faq?.tasks,
    });
  });

  it('falls back with timeout when the small route runs past its timeoutMs', async () => {
    const slow = await startMockLlm({
      seed: SEED,
      latencyScale: 0,
      faults: [faults.slow('gpt-4o-mini', 60_000)],
    });
    try {
      const timedOut = await runExampleService({
        seed: SEED,
        tasks: 40,
        openaiBaseURL: slow.url,
        routeTimeoutMs: 50,
      });
      for (const task of timedOut.tasks.filter((t) => t.primaryRoute === 'small')) {
        expect(task.attempts[0]).toMatchObject({ result: 'error', errorReason: 'timeout' });
        expect(task.attempts[0]?.costUsd).toBe(0);
        expect(task.attempts[1]).toMatchObject({ route: 'large', fallbackReason: 'timeout' });
      }
      expect(timedOut.groups.find((g) => g.cohort === 'faq')?.fallbackReasons).toEqual({
        timeout: timedOut.groups.find((g) => g.cohort === 'faq')?.tasks,
      });
    } finally {
      await slow.close();
    }
  });

  it('gives the same truth with no OpenTelemetry set up', async () => {
    trace.disable();
    let untraced: GroundTruth;
    try {
      untraced = await runExampleService({ seed: SEED, tasks: 50, openaiBaseURL: mock.url });
    } finally {
      trace.setGlobalTracerProvider(provider);
    }
    expect(exporter.getFinishedSpans()).toEqual([]);
    const traced = await runExampleService({ seed: SEED, tasks: 50, openaiBaseURL: mock.url });
    expect(stableTruth(untraced)).toEqual(stableTruth(traced));
    // Without an SDK the task ids are random UUIDs, not trace ids: still one per task.
    expect(new Set(untraced.tasks.map((task) => task.taskId)).size).toBe(50);
  });

  it('rejects a task count or concurrency that is not a positive integer', async () => {
    await expect(
      runExampleService({ seed: SEED, tasks: 1.5, openaiBaseURL: mock.url }),
    ).rejects.toThrow(/tasks must be an integer/);
    await expect(
      runExampleService({ seed: SEED, tasks: 1, concurrency: 0, openaiBaseURL: mock.url }),
    ).rejects.toThrow(/concurrency/);
  });
});
