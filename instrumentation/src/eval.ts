import { diag, trace } from '@opentelemetry/api';
import { checkOptions as checkFallbackOptions, withFallback } from './fallback.js';
import type { FallbackOptions, FallbackResult, FallbackRoute } from './fallback-types.js';
import { SCORE_NAME_PATTERN } from './semconv.js';
import { runTask, scoreProblem } from './tagging.js';
import type {
  EvalCase,
  EvalCaseResult,
  EvalGrade,
  EvalOptions,
  EvalScoreSummary,
  EvalSummary,
  TaskOptions,
} from './types.js';

const DEFAULT_CONCURRENCY = 4;
const DEFAULT_SCORE_NAME = 'grade';
const DEFAULT_PASS_THRESHOLD = 0.5;

/**
 * Outcome reasons of failed eval tasks. A case whose policy accepted no output gets `error`, as a
 * production task does.
 */
export const EVAL_OUTCOME_REASONS = {
  /** The grader said the output fails. */
  gradeFailed: 'grade_failed',
  /** The grader threw, or returned something that is no grade. */
  gradeError: 'grade_error',
} as const;

/** Options of `runEval` that cannot work (`code` `EVAL_CONFIG`); raised before any case runs. */
export class EvalConfigError extends Error {
  readonly code = 'EVAL_CONFIG';
  constructor(message: string) {
    super(`runEval: ${message}`);
    this.name = 'EvalConfigError';
  }
}

/** A grader's answer that is no grade (`code` `EVAL_GRADE_INVALID`): that case fails. */
export class EvalGradeError extends Error {
  readonly code = 'EVAL_GRADE_INVALID';
  readonly grade: unknown;
  constructor(message: string, grade: unknown) {
    super(message);
    this.name = 'EvalGradeError';
    this.grade = grade;
  }
}

/** A grade read into what the task records. */
export interface ReadGrade {
  readonly pass: boolean;
  readonly scores: Record<string, number>;
  /** Why named scores were left out (a bad name or value): reported, not recorded. */
  readonly ignored: string[];
}

/**
 * Runs an offline eval: each case as a task (`routewatch.eval.run`, `routewatch.eval.dataset`)
 * through the same `withFallback` policy as production, its accepted output graded, the outcome
 * (`success` / `failure`) and scores recorded on the task. At most `concurrency` cases run at once.
 * A case whose policy accepts no output, or whose grader throws, fails on its own; the run goes on.
 * Resolves to the summary once every case ended and (unless `flush: false`) the spans are flushed.
 * Rejects only for options that cannot work (`EvalConfigError`, `FallbackConfigError`).
 */
export async function runEval<C extends EvalCase, T>(
  options: EvalOptions<C, T>,
): Promise<EvalSummary> {
  const plan = checkEvalOptions(options);
  const cases = [...options.cases];
  const results: EvalCaseResult[] = new Array<EvalCaseResult>(cases.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    // One case at a time per worker: `next` is read and bumped synchronously, so no two take one.
    while (next < cases.length) {
      const index = next;
      next += 1;
      results[index] = await runCase(cases[index]!, index, options, plan);
    }
  };
  await Promise.all(Array.from({ length: Math.min(plan.concurrency, cases.length) }, worker));
  if (options.flush !== false) await flushGlobalTracing();
  return {
    run: options.run,
    dataset: options.dataset,
    cohort: options.cohort,
    ...summarizeResults(results),
    results,
  };
}

interface EvalPlan<T, I> {
  readonly concurrency: number;
  readonly scoreName: string;
  readonly passThreshold: number;
  /** The withFallback options of every case, without the input. */
  readonly policy: Omit<FallbackOptions<readonly T[], I>, 'input'>;
}

function checkEvalOptions<C extends EvalCase, T>(
  options: EvalOptions<C, T>,
): EvalPlan<T, C['input']> {
  if (typeof options !== 'object' || options === null) {
    throw new EvalConfigError('options must be an object');
  }
  for (const key of ['run', 'dataset', 'cohort'] as const) {
    if (typeof options[key] !== 'string' || options[key] === '') {
      throw new EvalConfigError(`${key} must be a non-empty string, got ${String(options[key])}`);
    }
  }
  if (options.policyVersion !== undefined && typeof options.policyVersion !== 'string') {
    throw new EvalConfigError('policyVersion must be a string');
  }
  const cases: unknown = options.cases;
  if (
    typeof cases !== 'object' ||
    cases === null ||
    typeof (cases as Iterable<unknown>)[Symbol.iterator] !== 'function'
  ) {
    throw new EvalConfigError('cases must be an iterable (an array) of { input, id? }');
  }
  if (typeof options.grade !== 'function') {
    throw new EvalConfigError('grade must be a function (case, output) => grade');
  }
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new EvalConfigError(`concurrency must be an integer >= 1, got ${String(concurrency)}`);
  }
  const scoreName = options.scoreName ?? DEFAULT_SCORE_NAME;
  if (typeof scoreName !== 'string' || !SCORE_NAME_PATTERN.test(scoreName)) {
    throw new EvalConfigError(
      `scoreName must be 1-64 characters of [a-z0-9_.-], got ${JSON.stringify(scoreName)}`,
    );
  }
  const passThreshold = options.passThreshold ?? DEFAULT_PASS_THRESHOLD;
  if (typeof passThreshold !== 'number' || !(passThreshold >= 0 && passThreshold <= 1)) {
    throw new EvalConfigError(
      `passThreshold must be a number in 0..1, got ${String(passThreshold)}`,
    );
  }
  if ((options.route === undefined) === (options.routes === undefined)) {
    throw new EvalConfigError('give exactly one of route (one route) or routes (a fallback chain)');
  }
  const routes: readonly FallbackRoute<T, C['input']>[] =
    options.route !== undefined ? [options.route] : options.routes!;
  const policy: EvalPlan<T, C['input']>['policy'] = {
    routes,
    ...defined('validate', options.validate),
    ...defined('confidence', options.confidence),
    ...defined('highRisk', options.highRisk),
    ...defined('maxModelAttempts', options.maxModelAttempts),
  };
  // A policy withFallback would refuse fails the run now, not every case one by one.
  checkFallbackOptions(policy);
  return { concurrency, scoreName, passThreshold, policy };
}

async function runCase<C extends EvalCase, T>(
  evalCase: C,
  index: number,
  options: EvalOptions<C, T>,
  plan: EvalPlan<T, C['input']>,
): Promise<EvalCaseResult> {
  const id = caseId(evalCase);
  const taskOptions: TaskOptions = {
    cohort: options.cohort,
    evalRun: options.run,
    evalDataset: options.dataset,
    ...defined('policyVersion', options.policyVersion),
    ...defined('name', id),
  };
  let taskId = '';
  let route: string | undefined;
  try {
    return await runTask(taskOptions, async (task) => {
      taskId = task.taskId;
      // No accepted output: the task fails as it would in production (runTask records it).
      // withFallback types its value Awaited<T>; the routes' T is already what they resolve to.
      const result = (await withFallback({
        ...plan.policy,
        input: evalCase.input,
      })) as FallbackResult<T>;
      route = result.route;
      let grade: ReadGrade;
      try {
        grade = readGrade(
          await options.grade(evalCase, result.value, result),
          plan.scoreName,
          plan.passThreshold,
        );
      } catch (error) {
        task.setOutcome('failure', { reason: EVAL_OUTCOME_REASONS.gradeError });
        throw error;
      }
      for (const problem of grade.ignored) {
        diag.warn(`routewatch: runEval ignores a score of case ${id ?? index}: ${problem}`);
      }
      for (const [name, value] of Object.entries(grade.scores)) task.setScore(name, value);
      if (grade.pass) task.setOutcome('success');
      else task.setOutcome('failure', { reason: EVAL_OUTCOME_REASONS.gradeFailed });
      return { index, id, taskId, passed: grade.pass, scores: grade.scores, route };
    });
  } catch (error) {
    return { index, id, taskId, passed: false, scores: {}, route, error };
  }
}

function caseId(evalCase: EvalCase): string | undefined {
  const id: unknown = (evalCase as { id?: unknown } | null)?.id;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

/**
 * What a grader's answer means: pass or fail, and the scores to record. Throws an
 * `EvalGradeError` for an answer that is no grade (a number outside 0..1, `{ pass: 'yes' }`, …);
 * a bad entry of `scores` is only left out, as `setScore` would.
 */
export function readGrade(grade: unknown, scoreName: string, passThreshold: number): ReadGrade {
  if (typeof grade === 'boolean') return { pass: grade, scores: {}, ignored: [] };
  if (typeof grade === 'number') {
    if (!(Number.isFinite(grade) && grade >= 0 && grade <= 1)) {
      throw new EvalGradeError(`a numeric grade must be in 0..1, got ${String(grade)}`, grade);
    }
    return { pass: grade >= passThreshold, scores: { [scoreName]: grade }, ignored: [] };
  }
  if (
    typeof grade !== 'object' ||
    grade === null ||
    typeof (grade as EvalGrade & object).pass !== 'boolean'
  ) {
    throw new EvalGradeError(
      `a grade is a boolean, a number in 0..1 or { pass: boolean, scores? }, got ${preview(grade)}`,
      grade,
    );
  }
  const verdict = grade as { pass: boolean; scores?: unknown };
  const scores: Record<string, number> = {};
  const ignored: string[] = [];
  if (verdict.scores !== undefined) {
    if (typeof verdict.scores !== 'object' || verdict.scores === null) {
      throw new EvalGradeError(
        `scores must be an object of name: number, got ${preview(verdict.scores)}`,
        grade,
      );
    }
    for (const [name, value] of Object.entries(verdict.scores)) {
      const problem = scoreProblem(name, value);
      if (problem === undefined) scores[name] = value as number;
      else ignored.push(problem);
    }
  }
  return { pass: verdict.pass, scores, ignored };
}

/** Counts and per-score means of a run's case results. */
export function summarizeResults(
  results: readonly EvalCaseResult[],
): Pick<EvalSummary, 'cases' | 'passed' | 'failed' | 'errors' | 'scores'> {
  const totals = new Map<string, { n: number; sum: number }>();
  let passed = 0;
  let errors = 0;
  for (const result of results) {
    if (result.passed) passed += 1;
    if (result.error !== undefined) errors += 1;
    for (const [name, value] of Object.entries(result.scores)) {
      const total = totals.get(name) ?? { n: 0, sum: 0 };
      total.n += 1;
      total.sum += value;
      totals.set(name, total);
    }
  }
  const scores: Record<string, EvalScoreSummary> = {};
  for (const name of [...totals.keys()].sort()) {
    const { n, sum } = totals.get(name)!;
    scores[name] = { n, mean: sum / n };
  }
  return { cases: results.length, passed, failed: results.length - passed, errors, scores };
}

/**
 * Exports every span ended so far through the global tracer provider, when it can flush (the
 * SDK's providers can; the no-op one cannot). A failure is reported through `diag`: the summary
 * is still the caller's.
 */
async function flushGlobalTracing(): Promise<void> {
  try {
    const global = trace.getTracerProvider() as { getDelegate?: () => unknown };
    const provider = typeof global.getDelegate === 'function' ? global.getDelegate() : global;
    const { forceFlush } = provider as { forceFlush?: () => Promise<void> };
    if (typeof forceFlush === 'function') await forceFlush.call(provider);
  } catch (error) {
    diag.error('routewatch: runEval could not flush the tracer provider', error);
  }
}

function preview(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** `{ [key]: value }`, or `{}` when value is undefined (exactOptionalPropertyTypes). */
function defined<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return value === undefined ? {} : ({ [key]: value } as { [P in K]?: V });
}
