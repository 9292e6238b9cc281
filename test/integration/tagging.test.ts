import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import {
  getRoutingContext,
  recordConfidence,
  recordFallbackReason,
  recordOutcome,
  recordScore,
  recordValidation,
  runAttempt,
  runTask,
} from '../../instrumentation/src/index.js';
import {
  ATTEMPT_SPAN_PREFIX,
  ATTR_ATTEMPT,
  ATTR_CLEANUP_COST_USD,
  ATTR_COHORT,
  ATTR_CONFIDENCE,
  ATTR_ERROR_TYPE,
  ATTR_EVAL_DATASET,
  ATTR_EVAL_RUN,
  ATTR_FALLBACK_REASON,
  ATTR_OUTCOME,
  ATTR_OUTCOME_REASON,
  ATTR_POLICY_VERSION,
  ATTR_REASK,
  ATTR_ROUTE,
  ATTR_TASK_ID,
  ATTR_VALIDATION,
  MAX_SCORES,
  ROUTEWATCH_PREFIX,
  SCORE_ATTRIBUTE_PREFIX,
  TASK_SPAN_PREFIX,
} from '../../instrumentation/src/semconv.js';
import { useInMemoryTracing } from '../support/in-memory-tracing.js';

const { diagMessages, spanNamed } = useInMemoryTracing();

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
    expect(Object.keys(attributes).filter((key) => key.startsWith(ROUTEWATCH_PREFIX))).toEqual([]);
  });
});

describe('runTask and runAttempt', () => {
  it('starts an INTERNAL task span whose task id defaults to its trace id', async () => {
    const result = await runTask({ cohort: 'faq', policyVersion: 'v3' }, (task) => {
      expect(task.cohort).toBe('faq');
      return 42;
    });
    expect(result).toBe(42);
    const span = spanNamed(`${TASK_SPAN_PREFIX} faq`);
    expect(span.kind).toBe(SpanKind.INTERNAL);
    expect(span.attributes).toMatchObject({
      [ATTR_TASK_ID]: span.spanContext().traceId,
      [ATTR_COHORT]: 'faq',
      [ATTR_POLICY_VERSION]: 'v3',
    });
    expect(span.attributes[ATTR_OUTCOME]).toBeUndefined();
  });

  // Regression of B1 in the instrumentation review: every task of a trace got the trace id.
  it('gives each task inside another span its own id, and only a root task the trace id', async () => {
    const ids = await foreignTracer().startActiveSpan('GET /answer', async (request) => {
      const first = await runTask({ cohort: 'first' }, (task) => task.taskId);
      const second = await runTask({ cohort: 'second' }, (task) => task.taskId);
      const [outer, inner] = await runTask({ cohort: 'outer' }, async (outerTask) => [
        outerTask.taskId,
        await runTask({ cohort: 'inner' }, (innerTask) => innerTask.taskId),
      ]);
      request.end();
      return [first, second, outer, inner];
    });
    expect(new Set(ids).size).toBe(4);
    for (const [cohort, id] of ['first', 'second', 'outer', 'inner'].map((c, i) => [c, ids[i]])) {
      const span = spanNamed(`${TASK_SPAN_PREFIX} ${cohort}`);
      expect(span.attributes[ATTR_TASK_ID]).toBe(id);
      expect(id).toBe(`${span.spanContext().traceId}-${span.spanContext().spanId}`);
    }
    const root = await runTask({ cohort: 'root' }, (task) => task.taskId);
    expect(root).toBe(spanNamed(`${TASK_SPAN_PREFIX} root`).spanContext().traceId);
  });

  it('stamps a nested task’s own id on the spans inside it', async () => {
    await runTask({ cohort: 'outer' }, () =>
      runTask({ cohort: 'inner' }, () => foreignTracer().startSpan('inside inner').end()),
    );
    expect(spanNamed('inside inner').attributes[ATTR_TASK_ID]).toBe(
      spanNamed(`${TASK_SPAN_PREFIX} inner`).attributes[ATTR_TASK_ID],
    );
    expect(spanNamed(`${TASK_SPAN_PREFIX} inner`).attributes[ATTR_TASK_ID]).not.toBe(
      spanNamed(`${TASK_SPAN_PREFIX} outer`).attributes[ATTR_TASK_ID],
    );
  });

  it('warns once of a fallback written as runAttempt calls outside a task', async () => {
    // review instrumentation #4: the second attempt got number 1 and lost its reason, silently.
    for (let i = 0; i < 2; i++) {
      await runAttempt({ route: 'small' }, () => undefined);
      await runAttempt({ route: 'large', fallbackReason: 'validation_failed' }, () => undefined);
    }
    const warnings = diagMessages.filter((m) =>
      /fallbackReason \}\) outside a task/.test(m.message),
    );
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toMatch(/wrap the attempts in runTask/);
  });

  it('leaves the route of the attempt a task is nested in off the nested task’s own span', async () => {
    // review instrumentation #5: the outer attempt's route and attempt were stamped on the inner
    // task span, and v_tasks read the inner task as a task of route large.
    await runTask({ cohort: 'outer' }, () =>
      runAttempt({ route: 'large' }, () => runTask({ cohort: 'inner' }, () => undefined)),
    );
    const inner = spanNamed(`${TASK_SPAN_PREFIX} inner`).attributes;
    expect(inner[ATTR_ROUTE]).toBeUndefined();
    expect(inner[ATTR_ATTEMPT]).toBeUndefined();
    expect(inner[ATTR_COHORT]).toBe('inner');
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
    const small = spanNamed(`${ATTEMPT_SPAN_PREFIX} small`);
    const large = spanNamed(`${ATTEMPT_SPAN_PREFIX} large`);
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
      spanNamed(`${TASK_SPAN_PREFIX} policy`).spanContext().spanId,
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

  it('ignores an attempt index the store cannot hold, with a warning, and numbers it itself', async () => {
    const seen: number[] = [];
    await runTask({ cohort: 'faq' }, async () => {
      for (const attempt of [1e308, 65_536, 0, 1.5]) {
        await runAttempt({ route: 'small', attempt }, (a) => void seen.push(a.attempt));
      }
      await runAttempt({ route: 'small', attempt: 65_535 }, (a) => void seen.push(a.attempt));
    });
    expect(seen).toEqual([1, 2, 3, 4, 65_535]);
    expect(diagMessages.filter((m) => /ignoring attempt/.test(m.message))).toHaveLength(4);
  });

  it('records outcome, reason, reask, cleanup cost and a task-level fallback reason', async () => {
    await runTask({ cohort: 'faq' }, (task) => {
      task.setOutcome('success');
      task.setFallbackReason('low_confidence');
      recordOutcome('escalated', { reason: 'human_review', reask: true, cleanupCostUsd: 0.25 });
    });
    expect(spanNamed(`${TASK_SPAN_PREFIX} faq`).attributes).toMatchObject({
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
    const small = spanNamed(`${ATTEMPT_SPAN_PREFIX} small`).attributes;
    expect(small[ATTR_VALIDATION]).toBe('fail');
    expect(small[ATTR_CONFIDENCE]).toBe(0.4);
    expect(small[ATTR_FALLBACK_REASON]).toBeUndefined();
    const large = spanNamed(`${ATTEMPT_SPAN_PREFIX} large`).attributes;
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
    const task = spanNamed(`${TASK_SPAN_PREFIX} faq`);
    expect(task.status.code).toBe(SpanStatusCode.ERROR);
    expect(task.attributes).toMatchObject({
      [ATTR_OUTCOME]: 'failure',
      [ATTR_OUTCOME_REASON]: 'error',
      [ATTR_ERROR_TYPE]: 'ValidationGateError',
    });
    const attempt = spanNamed(`${ATTEMPT_SPAN_PREFIX} small`);
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
    const task = spanNamed(`${TASK_SPAN_PREFIX} faq`);
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
    const { attributes } = spanNamed(`${ATTEMPT_SPAN_PREFIX} small`);
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
    expect(spanNamed(`${TASK_SPAN_PREFIX} faq`).attributes[ATTR_OUTCOME]).toBeUndefined();
    expect(diagMessages.some((m) => m.level === 'warn')).toBe(true);
  });
});

describe('eval tags and scores', () => {
  const scoreKeys = (attributes: Record<string, unknown>) =>
    Object.keys(attributes).filter((key) => key.startsWith(SCORE_ATTRIBUTE_PREFIX));

  it('tags the task span, and only it, with the eval run and dataset', async () => {
    await runTask({ cohort: 'faq', evalRun: 'ci-812', evalDataset: 'faq-golden@3' }, () =>
      runAttempt({ route: 'small' }, () => foreignTracer().startSpan('llm in eval').end()),
    );
    expect(spanNamed(`${TASK_SPAN_PREFIX} faq`).attributes).toMatchObject({
      [ATTR_EVAL_RUN]: 'ci-812',
      [ATTR_EVAL_DATASET]: 'faq-golden@3',
    });
    for (const name of [`${ATTEMPT_SPAN_PREFIX} small`, 'llm in eval']) {
      expect(spanNamed(name).attributes[ATTR_EVAL_RUN]).toBeUndefined();
      expect(spanNamed(name).attributes[ATTR_EVAL_DATASET]).toBeUndefined();
    }
  });

  it('ignores an empty or non-string eval tag with a warning, and runs the task', async () => {
    const value = await runTask(
      { cohort: 'faq', evalRun: '', evalDataset: 7 as unknown as string },
      () => 'ran',
    );
    expect(value).toBe('ran');
    const { attributes } = spanNamed(`${TASK_SPAN_PREFIX} faq`);
    expect(attributes[ATTR_EVAL_RUN]).toBeUndefined();
    expect(attributes[ATTR_EVAL_DATASET]).toBeUndefined();
    expect(diagMessages.map((m) => m.message)).toEqual([
      expect.stringMatching(/evalRun ""/),
      expect.stringMatching(/evalDataset 7/),
    ]);
  });

  it('records scores on the task span from the handle and from recordScore; the latest value of a name wins', async () => {
    await runTask({ cohort: 'faq' }, async (task) => {
      task.setScore('groundedness', 0.25);
      await runAttempt({ route: 'small' }, () => recordScore('schema_valid', 1));
      task.setScore('groundedness', 0.75);
      recordScore('refusal.correct-v2', 0);
    });
    const { attributes } = spanNamed(`${TASK_SPAN_PREFIX} faq`);
    expect(attributes).toMatchObject({
      'routewatch.score.groundedness': 0.75,
      'routewatch.score.schema_valid': 1,
      'routewatch.score.refusal.correct-v2': 0,
    });
    expect(scoreKeys(spanNamed(`${ATTEMPT_SPAN_PREFIX} small`).attributes)).toEqual([]);
    expect(diagMessages).toEqual([]);
  });

  it.each([
    ['an upper-case name', 'Groundedness', 0.5, /score name "Groundedness"/],
    ['a name with a space', 'tone ok', 0.5, /score name "tone ok"/],
    ['an empty name', '', 0.5, /score name ""/],
    ['a name longer than 64 characters', 'x'.repeat(65), 0.5, /score name "x{65}"/],
    ['a value above 1', 'tone', 1.5, /tone = 1.5 is not a number in 0..1/],
    ['a negative value', 'tone', -0.1, /tone = -0.1/],
    ['NaN', 'tone', Number.NaN, /tone = NaN/],
    ['a string value', 'tone', '0.5' as unknown as number, /tone = 0.5 is not a number/],
  ])('ignores %s with a diag warning, without throwing', async (_case, name, value, message) => {
    await runTask({ cohort: 'faq' }, (task) => {
      task.setScore(name, value);
      recordScore(name, value);
    });
    expect(scoreKeys(spanNamed(`${TASK_SPAN_PREFIX} faq`).attributes)).toEqual([]);
    expect(diagMessages).toHaveLength(2);
    for (const m of diagMessages) {
      expect(m.level).toBe('warn');
      expect(m.message).toMatch(message);
    }
  });

  it('keeps at most MAX_SCORES names per task, and still updates those it has', async () => {
    await runTask({ cohort: 'faq' }, (task) => {
      for (let i = 0; i <= MAX_SCORES; i += 1) task.setScore(`s${i}`, 0.5);
      task.setScore('s0', 0.9);
    });
    const { attributes } = spanNamed(`${TASK_SPAN_PREFIX} faq`);
    expect(scoreKeys(attributes)).toHaveLength(MAX_SCORES);
    expect(attributes[`${SCORE_ATTRIBUTE_PREFIX}s${MAX_SCORES}`]).toBeUndefined();
    expect(attributes[`${SCORE_ATTRIBUTE_PREFIX}s0`]).toBe(0.9);
    expect(diagMessages.map((m) => m.message)).toEqual([
      expect.stringMatching(new RegExp(`s${MAX_SCORES}: a task keeps at most ${MAX_SCORES}`)),
    ]);
  });

  it('warns on recordScore outside a task', () => {
    recordScore('groundedness', 0.5);
    expect(diagMessages.map((m) => m.message)).toEqual([
      expect.stringMatching(/recordScore called outside a task/),
    ]);
  });
});

// Regressions of A6 in the instrumentation review: options that cannot be turned into text made
// runTask and runAttempt reject without running fn.
describe('hostile options never keep fn from running', () => {
  const throwingToString = {
    toString() {
      throw new Error('no text for you');
    },
  };
  const hostile: [string, unknown][] = [
    ['an object without a prototype', Object.create(null)],
    ['an object whose toString throws', throwingToString],
    ['a symbol', Symbol('cohort')],
  ];

  it.each(hostile)('runTask runs fn with a cohort that is %s', async (_, cohort) => {
    const result = await runTask({ cohort: cohort as string }, (task) => {
      expect(typeof task.cohort).toBe('string');
      expect(typeof task.taskId).toBe('string');
      task.setOutcome('success');
      return 'ran';
    });
    expect(result).toBe('ran');
  });

  it.each(hostile)('runTask runs fn with a taskId that is %s', async (_, taskId) => {
    const result = await runTask({ cohort: 'faq', taskId: taskId as string }, (task) => {
      expect(typeof task.taskId).toBe('string');
      return 'ran';
    });
    expect(result).toBe('ran');
  });

  it.each(hostile)('runAttempt runs fn with a route that is %s', async (_, route) => {
    const result = await runTask({ cohort: 'faq' }, () =>
      runAttempt({ route: route as string }, (attempt) => {
        expect(typeof attempt.route).toBe('string');
        return 'ran';
      }),
    );
    expect(result).toBe('ran');
  });

  it('runs fn when the options themselves are missing', async () => {
    expect(await runTask(undefined as never, (task) => typeof task.cohort)).toBe('string');
    expect(await runAttempt(undefined as never, (attempt) => typeof attempt.route)).toBe('string');
    expect(await runTask(null as never, () => 'ran')).toBe('ran');
  });
});
