import { randomUUID } from 'node:crypto';
import {
  context,
  diag,
  INVALID_SPAN_CONTEXT,
  isSpanContextValid,
  SpanKind,
  trace,
  type Attributes,
  type Context,
  type Span,
} from '@opentelemetry/api';
import {
  type AttemptState,
  getRoutingState,
  setRoutingState,
  type TaskState,
  toRoutingContext,
} from './context.js';
import { guard, markSpanFailed } from './errors.js';
import {
  ATTEMPT_SPAN_PREFIX,
  ATTR_ATTEMPT,
  ATTR_CLEANUP_COST_USD,
  ATTR_COHORT,
  ATTR_CONFIDENCE,
  ATTR_EVAL_DATASET,
  ATTR_EVAL_RUN,
  ATTR_FALLBACK_REASON,
  ATTR_OUTCOME,
  ATTR_OUTCOME_REASON,
  ATTR_POLICY_VERSION,
  ATTR_REASK,
  ATTR_ROUTE,
  ATTR_TASK_ID,
  ATTR_TASK_NAME,
  ATTR_VALIDATION,
  MAX_SCORES,
  OUTCOMES,
  type Outcome,
  SCORE_ATTRIBUTE_PREFIX,
  SCORE_NAME_PATTERN,
  TASK_SPAN_PREFIX,
  type ValidationResult,
} from './semconv.js';
import type {
  AttemptHandle,
  AttemptOptions,
  OutcomeOptions,
  RoutingContext,
  TaskHandle,
  TaskOptions,
} from './types.js';
import { PACKAGE_NAME, PACKAGE_VERSION } from './version.js';

// Looked up per call: the global provider may be registered after this module is loaded.
function tracer() {
  return trace.getTracer(PACKAGE_NAME, PACKAGE_VERSION);
}

/**
 * Runs `fn` as one task: a `routewatch.task <cohort>` span whose routing context every span
 * started inside it (across awaits and timers) inherits. A throwing `fn` marks the task failed
 * (unless an outcome was set) and the same error is rethrown.
 */
export async function runTask<T>(
  opts: TaskOptions,
  fn: (task: TaskHandle) => T | Promise<T>,
): Promise<T> {
  const started = guard('starting a task', () => startTask(opts));
  if (started === undefined) return fn(detachedTaskHandle(opts));
  const { ctx, state, handle } = started;
  try {
    return await context.with(ctx, fn, undefined, handle);
  } catch (error) {
    guard('recording a task failure', () => {
      if (!state.outcomeSet) {
        state.span.setAttribute(ATTR_OUTCOME, 'failure');
        state.span.setAttribute(ATTR_OUTCOME_REASON, 'error');
      }
    });
    markSpanFailed(state.span, error);
    throw error;
  } finally {
    guard('ending a task span', () => state.span.end());
  }
}

function startTask(given: TaskOptions | undefined): {
  ctx: Context;
  state: TaskState;
  handle: TaskHandle;
} {
  const opts: Partial<TaskOptions> = given ?? {};
  const parent = context.active();
  const cohort = textOf('cohort', () => opts.cohort);
  const attributes: Attributes = { ...opts.attributes, [ATTR_COHORT]: cohort };
  if (opts.policyVersion !== undefined) attributes[ATTR_POLICY_VERSION] = opts.policyVersion;
  if (opts.name !== undefined) attributes[ATTR_TASK_NAME] = opts.name;
  let taskId = opts.taskId === undefined ? undefined : textOf('taskId', () => opts.taskId);
  if (taskId === '') taskId = undefined;
  if (taskId !== undefined) attributes[ATTR_TASK_ID] = taskId;
  // Only the task span carries the eval tags (the processor stamps them nowhere else): an eval
  // run is a property of the task, and the views read it from there.
  const evalRun = evalTag('evalRun', opts.evalRun);
  if (evalRun !== undefined) attributes[ATTR_EVAL_RUN] = evalRun;
  const evalDataset = evalTag('evalDataset', opts.evalDataset);
  if (evalDataset !== undefined) attributes[ATTR_EVAL_DATASET] = evalDataset;
  const span = tracer().startSpan(
    `${TASK_SPAN_PREFIX} ${cohort}`,
    { kind: SpanKind.INTERNAL, attributes },
    parent,
  );
  if (taskId === undefined) {
    taskId = defaultTaskId(span, parent);
    span.setAttribute(ATTR_TASK_ID, taskId);
  }
  const state: TaskState = {
    taskId,
    cohort,
    policyVersion: opts.policyVersion,
    span,
    lastAttempt: 0,
    outcomeSet: false,
    scoreNames: new Set(),
  };
  const ctx = setRoutingState(trace.setSpan(parent, span), { task: state, attempt: undefined });
  const handle: TaskHandle = {
    taskId,
    cohort,
    span,
    setOutcome: (outcome, outcomeOpts) => setTaskOutcome(state, outcome, outcomeOpts),
    setFallbackReason: (reason) =>
      guard('setting a fallback reason', () => span.setAttribute(ATTR_FALLBACK_REASON, reason)),
    setScore: (name, value) => setTaskScore(state, name, value),
  };
  return { ctx, state, handle };
}

/**
 * The identity of a task given none: the trace id when the task span starts the trace, else
 * `<trace id>-<task span id>` — a trace can hold many tasks (the requests of a server span, the
 * cases of an eval run, a task nested in another), and each must stay its own.
 */
function defaultTaskId(span: Span, parent: Context): string {
  const spanContext = span.spanContext();
  // Without an SDK the span is a no-op with an invalid trace id: still give the task an identity.
  if (!isSpanContextValid(spanContext)) return randomUUID();
  const parentSpanContext = trace.getSpanContext(parent);
  if (parentSpanContext === undefined || !isSpanContextValid(parentSpanContext)) {
    return spanContext.traceId;
  }
  return `${spanContext.traceId}-${spanContext.spanId}`;
}

/** An eval tag's value, or undefined (with a warning) when it is not a non-empty string. */
function evalTag(option: 'evalRun' | 'evalDataset', value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && value !== '') return value;
  diag.warn(`routewatch: ignoring ${option} ${JSON.stringify(value)}: expected a non-empty string`);
  return undefined;
}

/**
 * An option as text: a string as it is, anything else through `String()`, and '' (with a `diag`
 * warning) for what cannot be read or turned into text — a missing `opts`, `Object.create(null)`,
 * a throwing `toString`. The caller's `fn` runs whatever its options hold.
 */
function textOf(option: string, read: () => unknown): string {
  try {
    const value = read();
    if (typeof value === 'string') return value;
    if (value === undefined) return '';
    return String(value);
  } catch (error) {
    diag.warn(`routewatch: the ${option} option cannot be turned into text; using ''`, error);
    return '';
  }
}

/** A handle that records nothing, for when starting the task itself failed. */
function detachedTaskHandle(opts: TaskOptions | undefined): TaskHandle {
  return {
    taskId: textOf('taskId', () => opts?.taskId),
    cohort: textOf('cohort', () => opts?.cohort),
    span: trace.wrapSpanContext(INVALID_SPAN_CONTEXT),
    setOutcome: () => undefined,
    setFallbackReason: () => undefined,
    setScore: () => undefined,
  };
}

/**
 * What is wrong with a score, or undefined when it can be recorded: `name` must match
 * `SCORE_NAME_PATTERN` and `value` be a number in 0..1. The collector checks late outcome
 * reports against the same rule.
 */
export function scoreProblem(name: unknown, value: unknown): string | undefined {
  if (typeof name !== 'string' || !SCORE_NAME_PATTERN.test(name)) {
    return `score name ${JSON.stringify(name)} is not 1-64 characters of [a-z0-9_.-]`;
  }
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
    return `score ${name} = ${String(value)} is not a number in 0..1`;
  }
  return undefined;
}

function setTaskScore(state: TaskState, name: string, value: number): void {
  guard('setting a score', () => {
    const problem = scoreProblem(name, value);
    if (problem !== undefined) {
      diag.warn(`routewatch: ignoring a score: ${problem}`);
      return;
    }
    if (!state.scoreNames.has(name)) {
      if (state.scoreNames.size >= MAX_SCORES) {
        diag.warn(`routewatch: ignoring score ${name}: a task keeps at most ${MAX_SCORES} scores`);
        return;
      }
      state.scoreNames.add(name);
    }
    state.span.setAttribute(`${SCORE_ATTRIBUTE_PREFIX}${name}`, value);
  });
}

function setTaskOutcome(
  state: TaskState,
  outcome: Outcome,
  opts: OutcomeOptions | undefined,
): void {
  guard('setting a task outcome', () => {
    if (!(OUTCOMES as readonly string[]).includes(outcome)) {
      diag.warn(`routewatch: ignoring unknown outcome ${JSON.stringify(outcome)}`);
      return;
    }
    const { span } = state;
    span.setAttribute(ATTR_OUTCOME, outcome);
    state.outcomeSet = true;
    if (opts?.reason !== undefined) span.setAttribute(ATTR_OUTCOME_REASON, opts.reason);
    if (typeof opts?.reask === 'boolean') span.setAttribute(ATTR_REASK, opts.reask);
    const cleanup = opts?.cleanupCostUsd;
    if (cleanup !== undefined) {
      if (Number.isFinite(cleanup) && cleanup >= 0)
        span.setAttribute(ATTR_CLEANUP_COST_USD, cleanup);
      else diag.warn(`routewatch: ignoring cleanupCostUsd ${String(cleanup)}`);
    }
  });
}

/**
 * Runs `fn` as one attempt of the current task on `opts.route`: a `routewatch.attempt <route>`
 * span. Outside a task it still runs, without task id or cohort.
 */
export async function runAttempt<T>(
  opts: AttemptOptions,
  fn: (attempt: AttemptHandle) => T | Promise<T>,
): Promise<T> {
  const started = guard('starting an attempt', () => startAttempt(opts));
  if (started === undefined) return fn(detachedAttemptHandle(opts));
  const { ctx, span, handle } = started;
  try {
    return await context.with(ctx, fn, undefined, handle);
  } catch (error) {
    markSpanFailed(span, error);
    throw error;
  } finally {
    guard('ending an attempt span', () => span.end());
  }
}

/** Whether the warning of a fallback written outside a task was given (once a process). */
let warnedDetachedFallback = false;

function startAttempt(given: AttemptOptions | undefined): {
  ctx: Context;
  span: Span;
  handle: AttemptHandle;
} {
  const opts: Partial<AttemptOptions> = given ?? {};
  const parent = context.active();
  const task = getRoutingState(parent)?.task;
  const route = textOf('route', () => opts.route);
  let attempt = opts.attempt;
  // 1 to 65 535: the store's attempt column (UInt16) holds no more.
  if (attempt === undefined || !Number.isInteger(attempt) || attempt < 1 || attempt > 65_535) {
    if (attempt !== undefined) {
      diag.warn(`routewatch: ignoring attempt ${String(attempt)} (a whole number from 1 to 65535)`);
    }
    attempt = (task?.lastAttempt ?? 0) + 1;
  }
  if (task !== undefined) task.lastAttempt = Math.max(task.lastAttempt, attempt);

  const attributes: Attributes = { [ATTR_ROUTE]: route, [ATTR_ATTEMPT]: attempt };
  if (task !== undefined) {
    attributes[ATTR_TASK_ID] = task.taskId;
    attributes[ATTR_COHORT] = task.cohort;
  }
  if (opts.fallbackReason !== undefined && attempt >= 2) {
    attributes[ATTR_FALLBACK_REASON] = opts.fallbackReason;
  } else if (opts.fallbackReason !== undefined && task === undefined && !warnedDetachedFallback) {
    // A fallback written as runAttempt calls with no runTask around them: each is a task of its
    // own, numbered 1, and the reason has no attempt 2 to go on. Said once.
    warnedDetachedFallback = true;
    diag.warn(
      `routewatch: runAttempt({ route: ${JSON.stringify(route)}, fallbackReason }) outside a task: ` +
        'each attempt outside runTask is a task of its own, so this fallback and its reason are not ' +
        'recorded; wrap the attempts in runTask (or use withFallback)',
    );
  }
  const span = tracer().startSpan(
    `${ATTEMPT_SPAN_PREFIX} ${route}`,
    { kind: SpanKind.INTERNAL, attributes },
    parent,
  );
  const state: AttemptState = { route, attempt, span };
  const ctx = setRoutingState(trace.setSpan(parent, span), { task, attempt: state });
  const handle: AttemptHandle = {
    route,
    attempt,
    span,
    setValidation: (result) => setAttemptValidation(state, result),
    setConfidence: (value) => setAttemptConfidence(state, value),
    setFallbackReason: (reason) => setAttemptFallbackReason(state, reason),
  };
  return { ctx, span, handle };
}

function detachedAttemptHandle(opts: AttemptOptions | undefined): AttemptHandle {
  const attempt = guard('reading the attempt option', () => opts?.attempt);
  return {
    route: textOf('route', () => opts?.route),
    attempt: typeof attempt === 'number' && Number.isSafeInteger(attempt) ? attempt : 1,
    span: trace.wrapSpanContext(INVALID_SPAN_CONTEXT),
    setValidation: () => undefined,
    setConfidence: () => undefined,
    setFallbackReason: () => undefined,
  };
}

function setAttemptValidation(state: AttemptState, result: ValidationResult): void {
  guard('setting a validation result', () => {
    if (result !== 'pass' && result !== 'fail') {
      diag.warn(`routewatch: ignoring validation result ${JSON.stringify(result)}`);
      return;
    }
    state.span.setAttribute(ATTR_VALIDATION, result);
  });
}

function setAttemptConfidence(state: AttemptState, value: number): void {
  guard('setting a confidence', () => {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      diag.warn(`routewatch: ignoring confidence ${String(value)}`);
      return;
    }
    state.span.setAttribute(ATTR_CONFIDENCE, value);
  });
}

function setAttemptFallbackReason(state: AttemptState, reason: string): void {
  guard('setting a fallback reason', () => {
    // Attempt 1 is the routing decision itself, not a fallback.
    if (state.attempt < 2) {
      diag.warn('routewatch: a fallback reason on attempt 1 is ignored');
      return;
    }
    state.span.setAttribute(ATTR_FALLBACK_REASON, reason);
  });
}

/** Sets the outcome of the active task; a no-op (diag.warn) outside a task. */
export function recordOutcome(outcome: Outcome, opts?: OutcomeOptions): void {
  const task = getRoutingState(context.active())?.task;
  if (task === undefined) {
    diag.warn('routewatch: recordOutcome called outside a task');
    return;
  }
  setTaskOutcome(task, outcome, opts);
}

/** Records a quality score on the active task (see `TaskHandle.setScore`); a no-op (diag.warn) outside a task. */
export function recordScore(name: string, value: number): void {
  const task = getRoutingState(context.active())?.task;
  if (task === undefined) {
    diag.warn('routewatch: recordScore called outside a task');
    return;
  }
  setTaskScore(task, name, value);
}

function activeAttempt(caller: string): AttemptState | undefined {
  const attempt = getRoutingState(context.active())?.attempt;
  if (attempt === undefined) diag.warn(`routewatch: ${caller} called outside an attempt`);
  return attempt;
}

/** Sets the fallback reason of the active attempt (from attempt 2 on). */
export function recordFallbackReason(reason: string): void {
  const attempt = activeAttempt('recordFallbackReason');
  if (attempt !== undefined) setAttemptFallbackReason(attempt, reason);
}

/** Sets the validation result of the active attempt. */
export function recordValidation(result: ValidationResult): void {
  const attempt = activeAttempt('recordValidation');
  if (attempt !== undefined) setAttemptValidation(attempt, result);
}

/** Sets the confidence of the active attempt. */
export function recordConfidence(value: number): void {
  const attempt = activeAttempt('recordConfidence');
  if (attempt !== undefined) setAttemptConfidence(attempt, value);
}

/** The routing context of `ctx` (default: the active context), or undefined outside a task. */
export function getRoutingContext(ctx: Context = context.active()): RoutingContext | undefined {
  return toRoutingContext(getRoutingState(ctx));
}
