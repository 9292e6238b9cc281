import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import {
  EvalConfigError,
  EvalGradeError,
  FallbackConfigError,
  FallbackExhaustedError,
  runEval,
  type EvalCase,
  type FallbackRoute,
} from '../../instrumentation/src/index.js';
import {
  ATTEMPT_SPAN_PREFIX,
  ATTR_COHORT,
  ATTR_EVAL_DATASET,
  ATTR_EVAL_RUN,
  ATTR_FALLBACK_REASON,
  ATTR_OUTCOME,
  ATTR_OUTCOME_REASON,
  ATTR_POLICY_VERSION,
  ATTR_ROUTE,
  ATTR_TASK_ID,
  ATTR_TASK_NAME,
  TASK_SPAN_PREFIX,
} from '../../instrumentation/src/semconv.js';
import { useInMemoryTracing } from '../support/in-memory-tracing.js';

// runEval on the real OpenTelemetry SDK (spans kept in memory): what each case's task records and
// what the summary says. The export to a real collector is in eval-runs.test.ts.

const tracing = useInMemoryTracing();
const { exporter, diagMessages } = tracing;

interface Question extends EvalCase<string> {
  readonly expected: string;
}

const questions: Question[] = [
  { id: 'q1', input: 'one', expected: 'ONE' },
  { id: 'q2', input: 'two', expected: 'TWO' },
  { id: 'q3', input: 'three', expected: 'wrong' },
];

/** A production-style route: typed on the input alone, knowing nothing of evals. */
const upper: FallbackRoute<string, string> = {
  route: 'small',
  run: async (ctx) => {
    await nextTurn();
    return ctx.input.toUpperCase();
  },
};

const taskSpans = () =>
  exporter.getFinishedSpans().filter((span) => span.name.startsWith(TASK_SPAN_PREFIX));
const taskSpanOf = (taskId: string) => {
  const span = taskSpans().find((s) => s.attributes[ATTR_TASK_ID] === taskId);
  expect(span, `the task span of ${taskId}`).toBeDefined();
  return span!;
};

describe('runEval', () => {
  it('runs each case as an eval task, records outcome and scores, and summarizes the run', async () => {
    const summary = await runEval({
      run: 'ci-101',
      dataset: 'faq-golden',
      cohort: 'faq',
      policyVersion: 'small-first@4',
      cases: questions,
      route: upper,
      grade: (question, output) => ({
        pass: output === question.expected,
        scores: { exact: output === question.expected ? 1 : 0, length: output.length / 10 },
      }),
    });

    expect(summary).toMatchObject({
      run: 'ci-101',
      dataset: 'faq-golden',
      cohort: 'faq',
      cases: 3,
      passed: 2,
      failed: 1,
      errors: 0,
      scores: {
        exact: { n: 3, mean: expect.closeTo(2 / 3, 12) },
        length: { n: 3, mean: expect.closeTo((3 + 3 + 5) / 30, 12) },
      },
    });
    expect(summary.results.map((r) => [r.index, r.id, r.passed, r.route])).toEqual([
      [0, 'q1', true, 'small'],
      [1, 'q2', true, 'small'],
      [2, 'q3', false, 'small'],
    ]);
    expect(taskSpans()).toHaveLength(3);
    for (const result of summary.results) {
      const { attributes } = taskSpanOf(result.taskId);
      expect(attributes).toMatchObject({
        [ATTR_EVAL_RUN]: 'ci-101',
        [ATTR_EVAL_DATASET]: 'faq-golden',
        [ATTR_COHORT]: 'faq',
        [ATTR_POLICY_VERSION]: 'small-first@4',
        [ATTR_TASK_NAME]: result.id,
        [ATTR_OUTCOME]: result.passed ? 'success' : 'failure',
        'routewatch.score.exact': result.passed ? 1 : 0,
      });
      expect(attributes[ATTR_OUTCOME_REASON]).toBe(result.passed ? undefined : 'grade_failed');
    }
    // The attempts are ordinary attempt spans, without the eval tags.
    const attempts = exporter
      .getFinishedSpans()
      .filter((span) => span.name === `${ATTEMPT_SPAN_PREFIX} small`);
    expect(attempts).toHaveLength(3);
    for (const attempt of attempts) expect(attempt.attributes[ATTR_EVAL_RUN]).toBeUndefined();
  });

  it('records a numeric grade as a score and passes it at passThreshold and above', async () => {
    const grades = [0.2, 0.6, 0.59];
    const summary = await runEval({
      run: 'ci-102',
      dataset: 'd',
      cohort: 'faq',
      cases: grades.map((grade, i) => ({ input: String(i), grade })),
      route: upper,
      passThreshold: 0.6,
      scoreName: 'rubric',
      grade: (evalCase) => evalCase.grade,
    });
    expect(summary).toMatchObject({ passed: 1, failed: 2, scores: { rubric: { n: 3 } } });
    expect(summary.scores.rubric?.mean).toBeCloseTo((0.2 + 0.6 + 0.59) / 3, 12);
    expect(summary.results.map((r) => [r.passed, r.scores])).toEqual([
      [false, { rubric: 0.2 }],
      [true, { rubric: 0.6 }],
      [false, { rubric: 0.59 }],
    ]);
    expect(taskSpanOf(summary.results[1]!.taskId).attributes['routewatch.score.rubric']).toBe(0.6);
  });

  it('goes through the whole fallback policy and grades what it accepted', async () => {
    const summary = await runEval({
      run: 'ci-103',
      dataset: 'd',
      cohort: 'extraction',
      cases: [{ input: 'invoice' }],
      routes: [
        { route: 'small', run: () => 'garbage' },
        { route: 'large', run: (ctx) => `{"doc":"${ctx.input}"}` },
      ],
      validate: (output) => output.startsWith('{'),
      grade: (_case, output, result) => ({
        pass: true,
        scores: {
          fell_back: result.attempts.length > 1 ? 1 : 0,
          json: output.startsWith('{') ? 1 : 0,
        },
      }),
    });
    expect(summary.results[0]).toMatchObject({ passed: true, route: 'large' });
    expect(summary.scores).toEqual({ fell_back: { n: 1, mean: 1 }, json: { n: 1, mean: 1 } });
    const large = tracing.spanNamed(`${ATTEMPT_SPAN_PREFIX} large`);
    expect(large.attributes).toMatchObject({
      [ATTR_ROUTE]: 'large',
      [ATTR_FALLBACK_REASON]: 'validation_failed',
      [ATTR_TASK_ID]: summary.results[0]!.taskId,
    });
  });

  it('fails only the case whose policy gives no answer, as production records it, and goes on', async () => {
    const summary = await runEval({
      run: 'ci-104',
      dataset: 'd',
      cohort: 'faq',
      cases: questions,
      route: {
        route: 'small',
        run: (ctx) => {
          if (ctx.input === 'two') throw Object.assign(new Error('overloaded'), { status: 503 });
          return ctx.input.toUpperCase();
        },
      },
      grade: (question, output) => output === question.expected,
    });
    expect(summary).toMatchObject({ cases: 3, passed: 1, failed: 2, errors: 1, scores: {} });
    const failed = summary.results[1]!;
    expect(failed).toMatchObject({ id: 'q2', passed: false, route: undefined });
    expect(failed.error).toBeInstanceOf(FallbackExhaustedError);
    expect(taskSpanOf(failed.taskId).attributes).toMatchObject({
      [ATTR_OUTCOME]: 'failure',
      [ATTR_OUTCOME_REASON]: 'error',
      [ATTR_EVAL_RUN]: 'ci-104',
    });
  });

  it('fails a case whose grader throws or returns no grade, with reason grade_error', async () => {
    const summary = await runEval({
      run: 'ci-105',
      dataset: 'd',
      cohort: 'faq',
      cases: questions,
      route: upper,
      grade: (question) => {
        if (question.id === 'q1') throw new Error('judge unavailable');
        if (question.id === 'q2') return 7;
        return true;
      },
    });
    expect(summary).toMatchObject({ passed: 1, failed: 2, errors: 2 });
    expect(summary.results[0]!.error).toMatchObject({ message: 'judge unavailable' });
    expect(summary.results[1]!.error).toBeInstanceOf(EvalGradeError);
    for (const result of summary.results.slice(0, 2)) {
      expect(taskSpanOf(result.taskId).attributes).toMatchObject({
        [ATTR_OUTCOME]: 'failure',
        [ATTR_OUTCOME_REASON]: 'grade_error',
      });
    }
  });

  it('records the valid scores of a verdict and leaves out a bad one with a diag warning', async () => {
    const summary = await runEval({
      run: 'ci-106',
      dataset: 'd',
      cohort: 'faq',
      cases: [{ id: 'only', input: 'x' }],
      route: upper,
      grade: () => ({ pass: true, scores: { groundedness: 0.5, 'Bad Name': 1 } }),
    });
    expect(summary.results[0]!.scores).toEqual({ groundedness: 0.5 });
    const { attributes } = taskSpanOf(summary.results[0]!.taskId);
    expect(attributes['routewatch.score.groundedness']).toBe(0.5);
    expect(Object.keys(attributes).filter((k) => k.includes('Bad'))).toEqual([]);
    expect(diagMessages.map((m) => m.message)).toEqual([
      expect.stringMatching(/runEval ignores a score of case only: score name "Bad Name"/),
    ]);
  });

  it.each([
    [undefined, 4],
    [2, 2],
  ])('runs at most concurrency cases at once (concurrency %s → %i)', async (concurrency, bound) => {
    let running = 0;
    let most = 0;
    const summary = await runEval({
      run: 'ci-107',
      dataset: 'd',
      cohort: 'faq',
      cases: Array.from({ length: 10 }, (_, i) => ({ input: i })),
      ...(concurrency === undefined ? {} : { concurrency }),
      route: {
        route: 'small',
        run: async (ctx) => {
          running += 1;
          most = Math.max(most, running);
          for (let turn = 0; turn < 5; turn += 1) await nextTurn();
          running -= 1;
          return ctx.input * 2;
        },
      },
      grade: (evalCase, output) => output === evalCase.input * 2,
    });
    expect(summary.passed).toBe(10);
    expect(most).toBe(bound);
    expect(summary.results.map((r) => r.index)).toEqual([...Array(10).keys()]);
  });

  it('flushes the global tracer provider before resolving, unless told not to', async () => {
    const flush = vi.spyOn(tracing.provider, 'forceFlush');
    try {
      const options = {
        run: 'ci-108',
        dataset: 'd',
        cohort: 'faq',
        cases: [{ input: 'a' }],
        route: upper,
        grade: () => true,
      };
      await runEval(options);
      expect(flush).toHaveBeenCalledTimes(1);
      await runEval({ ...options, flush: false });
      expect(flush).toHaveBeenCalledTimes(1);
    } finally {
      flush.mockRestore();
    }
  });

  it.each([
    [
      'both route and routes',
      { route: upper, routes: [upper] },
      EvalConfigError,
      /exactly one of route/,
    ],
    ['neither route nor routes', {}, EvalConfigError, /exactly one of route/],
    ['concurrency 0', { route: upper, concurrency: 0 }, EvalConfigError, /concurrency/],
    ['an empty run name', { route: upper, run: '' }, EvalConfigError, /run must be/],
    ['a bad scoreName', { route: upper, scoreName: 'Grade' }, EvalConfigError, /scoreName/],
    [
      'a pass threshold above 1',
      { route: upper, passThreshold: 2 },
      EvalConfigError,
      /passThreshold/,
    ],
    [
      'a policy withFallback refuses',
      { route: upper, maxModelAttempts: 0 },
      FallbackConfigError,
      /maxModelAttempts/,
    ],
  ])('refuses %s before any case runs', async (_name, overrides, errorClass, message) => {
    const run = vi.fn(upper.run);
    const options = {
      run: 'ci-109',
      dataset: 'd',
      cohort: 'faq',
      cases: questions,
      grade: () => true,
      ...overrides,
    };
    const withCountedRoutes = {
      ...options,
      ...('route' in options && options.route ? { route: { ...options.route, run } } : {}),
    };
    const rejected = runEval(withCountedRoutes as Parameters<typeof runEval<Question, string>>[0]);
    await expect(rejected).rejects.toThrow(errorClass);
    await expect(rejected).rejects.toThrow(message);
    expect(run).not.toHaveBeenCalled();
    expect(exporter.getFinishedSpans()).toEqual([]);
  });

  it('summarizes an empty dataset as zeros', async () => {
    const summary = await runEval({
      run: 'ci-110',
      dataset: 'empty',
      cohort: 'faq',
      cases: [] as Question[],
      route: upper,
      grade: () => true,
    });
    expect(summary).toMatchObject({
      cases: 0,
      passed: 0,
      failed: 0,
      errors: 0,
      scores: {},
      results: [],
    });
  });
});
