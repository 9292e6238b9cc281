import { performance } from 'node:perf_hooks';
import { context, diag } from '@opentelemetry/api';
import { getRoutingState } from './context.js';
import { guard } from './errors.js';
import {
  AttemptRejectedError,
  FallbackConfigError,
  FallbackExhaustedError,
  RouteTimeoutError,
} from './fallback-errors.js';
import {
  type AttemptOutcome,
  type AttemptRecord,
  type ConfidenceGate,
  type FallbackOptions,
  type FallbackResult,
  type FallbackRoute,
  type RouteContext,
  type Validator,
} from './fallback-types.js';
import {
  ATTR_FALLBACK_REASON,
  FALLBACK_REASONS,
  type FallbackReason,
  type ValidationResult,
} from './semconv.js';
import { runAttempt, runTask } from './tagging.js';
import type { AttemptHandle } from './types.js';

const DEFAULT_MAX_MODEL_ATTEMPTS = 2;
// setTimeout fires at once for delays above 2^31 - 1 ms.
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
// How deep `fallbackReasonOf` looks through `cause` chains (fetch wraps its timeouts).
const MAX_CAUSE_DEPTH = 4;

/**
 * Runs `routes` in order until one's result is accepted: the routing policy made explicit. Each
 * attempt is a `routewatch.attempt <route>` span (via `runAttempt`) carrying its route, index,
 * validation result, confidence and, from attempt 2 on, the reason it happened. A route that throws,
 * times out or whose result fails the validation or confidence gate hands over to the next one;
 * `maxModelAttempts` bounds the model calls. Resolves to the accepted value with the attempt trail;
 * rejects with a `FallbackExhaustedError` carrying every attempt's error when none is accepted.
 */
export async function withFallback<V extends readonly unknown[], I = undefined>(
  options: FallbackOptions<V, I>,
): Promise<FallbackResult<Awaited<V[number]>>> {
  // Outside a task the attempts had nothing to hold them together: each started a trace of its
  // own, and one call read as two tasks, the fallback as a task of the large route with no
  // reason. They run in a task of their own then, with no cohort (runTask around the call names
  // one).
  // Checked first: a bad option or a signal aborted already is no task that failed.
  const maxModelAttempts = checkOptions(options);
  options.signal?.throwIfAborted();
  const inTask = guard('reading the routing context', () => {
    return getRoutingState(context.active())?.task !== undefined;
  });
  if (inTask === false)
    return runTask({ cohort: '' }, () => fallbackInTask(options, maxModelAttempts));
  return fallbackInTask(options, maxModelAttempts);
}

async function fallbackInTask<V extends readonly unknown[], I = undefined>(
  options: FallbackOptions<V, I>,
  maxModelAttempts: number,
): Promise<FallbackResult<Awaited<V[number]>>> {
  type T = Awaited<V[number]>;
  const routes = options.routes as readonly FallbackRoute<T, I>[];
  const chain: Chain<T, I> = {
    input: options.input as I,
    callerSignal: options.signal,
    validate: options.validate,
    confidence: options.confidence,
  };
  const { callerSignal } = chain;
  callerSignal?.throwIfAborted();

  let first = 0;
  let reason: FallbackReason | undefined;
  if (options.highRisk !== undefined && (await options.highRisk.when(chain.input))) {
    const { skipTo } = options.highRisk;
    first = routes.findIndex((route, index) => index > 0 && route.route === skipTo);
    reason = FALLBACK_REASONS.highRisk;
    // Attempt 1 carries no fallback reason (it is the routing decision): record it on the task.
    guard('recording a high-risk skip', () =>
      getRoutingState(context.active())?.task?.span.setAttribute(
        ATTR_FALLBACK_REASON,
        FALLBACK_REASONS.highRisk,
      ),
    );
  }

  const attempts: AttemptRecord[] = [];
  const skippedRoutes: string[] = [];
  let modelAttempts = 0;
  for (const route of routes.slice(first)) {
    const modelCall = route.modelCall !== false;
    if (modelCall && modelAttempts >= maxModelAttempts) {
      skippedRoutes.push(route.route);
      continue;
    }
    if (modelCall) modelAttempts += 1;
    const ended = await attemptRoute(route, chain, {
      attempt: attempts.length + 1,
      reason,
      previousAttempts: [...attempts],
      modelCall,
    });
    attempts.push(ended.record);
    if (ended.accepted) {
      return { value: ended.value, route: route.route, attempt: ended.record.attempt, attempts };
    }
    // The caller gave up: that is no reason to fall back.
    callerSignal?.throwIfAborted();
    reason = ended.record.trigger;
  }
  throw new FallbackExhaustedError(attempts, skippedRoutes);
}

/**
 * Validates the options strictly, before any route runs; returns the model attempt bound. Also
 * used by `runEval`, to refuse a bad policy before any case runs.
 */
export function checkOptions<V extends readonly unknown[], I>(
  options: FallbackOptions<V, I>,
): number {
  const { routes, highRisk, confidence, validate } = options;
  if (!Array.isArray(routes) || routes.length === 0) {
    throw new FallbackConfigError('routes must be a non-empty array');
  }
  routes.forEach((route: FallbackRoute<unknown, I>, index) => {
    if (typeof route?.route !== 'string' || route.route === '') {
      throw new FallbackConfigError(`routes[${index}].route must be a non-empty string`);
    }
    if (typeof route.run !== 'function') {
      throw new FallbackConfigError(`routes[${index}].run must be a function`);
    }
    const { timeoutMs } = route;
    if (
      timeoutMs !== undefined &&
      !(typeof timeoutMs === 'number' && timeoutMs > 0 && timeoutMs <= MAX_TIMEOUT_MS)
    ) {
      throw new FallbackConfigError(
        `routes[${index}].timeoutMs must be a number of ms in (0, ${MAX_TIMEOUT_MS}], got ${String(timeoutMs)}`,
      );
    }
  });
  const max = options.maxModelAttempts ?? DEFAULT_MAX_MODEL_ATTEMPTS;
  if (!Number.isInteger(max) || max < 1) {
    throw new FallbackConfigError(
      `maxModelAttempts must be an integer >= 1, got ${String(options.maxModelAttempts)}`,
    );
  }
  if (highRisk !== undefined) {
    if (typeof highRisk.when !== 'function') {
      throw new FallbackConfigError('highRisk.when must be a function');
    }
    if (!routes.some((route, index) => index > 0 && route.route === highRisk.skipTo)) {
      throw new FallbackConfigError(
        `highRisk.skipTo must name a route after the first, got ${JSON.stringify(highRisk.skipTo)}; routes: ${routes.map((r) => r.route).join(', ')}`,
      );
    }
  }
  if (
    confidence !== undefined &&
    (typeof confidence.of !== 'function' || !Number.isFinite(confidence.threshold))
  ) {
    throw new FallbackConfigError(
      'confidence must be { of: (value) => number | undefined, threshold: <finite number> }',
    );
  }
  if (validate !== undefined && validatorKind(validate) === undefined) {
    throw new FallbackConfigError(
      'validate must be a schema with safeParse, a Standard Schema or a predicate',
    );
  }
  return max;
}

/** What every attempt of one call shares. */
interface Chain<T, I> {
  readonly input: I;
  readonly callerSignal: AbortSignal | undefined;
  readonly validate: Validator<T> | undefined;
  readonly confidence: ConfidenceGate<T> | undefined;
}

interface AttemptPlan {
  readonly attempt: number;
  readonly reason: FallbackReason | undefined;
  readonly previousAttempts: readonly AttemptRecord[];
  readonly modelCall: boolean;
}

type EndedAttempt<T> =
  | { readonly accepted: true; readonly value: T; readonly record: AttemptRecord }
  | { readonly accepted: false; readonly record: AttemptRecord };

/** What the gates said of a result. */
interface Verdict {
  validation?: ValidationResult;
  confidence?: number;
  rejection?: AttemptRejectedError;
}

async function attemptRoute<T, I>(
  route: FallbackRoute<T, I>,
  chain: Chain<T, I>,
  plan: AttemptPlan,
): Promise<EndedAttempt<T>> {
  const startedAt = performance.now();
  const record = (
    outcome: AttemptOutcome,
    extra: Partial<Pick<AttemptRecord, 'trigger' | 'error' | 'validation' | 'confidence'>>,
  ): AttemptRecord => ({
    route: route.route,
    attempt: plan.attempt,
    reason: plan.reason,
    outcome,
    ...extra,
    modelCall: plan.modelCall,
    durationMs: performance.now() - startedAt,
  });
  const gated = route.gated ?? plan.modelCall;
  const validate = gated ? chain.validate : undefined;
  const confidence = gated ? chain.confidence : undefined;

  let value: T;
  let verdict: Verdict;
  try {
    // Explicit attempt numbers: outside a task (or after other attempts in it) runAttempt would
    // number them otherwise, and drop the fallback reasons.
    [value, verdict] = await runAttempt(
      { route: route.route, attempt: plan.attempt, ...optional('fallbackReason', plan.reason) },
      async (handle) => {
        const routeValue = await runRoute(route, plan, chain);
        return [
          routeValue,
          await judge(route.route, routeValue, validate, confidence, handle),
        ] as const;
      },
    );
  } catch (error) {
    const trigger = guard('classifying an attempt error', () => fallbackReasonOf(error)) ?? 'error';
    return {
      accepted: false,
      record: record(trigger === FALLBACK_REASONS.timeout ? 'timeout' : 'error', {
        trigger,
        error,
      }),
    };
  }
  const judged = {
    ...optional('validation', verdict.validation),
    ...optional('confidence', verdict.confidence),
  };
  if (verdict.rejection !== undefined) {
    return {
      accepted: false,
      record: record('fail', {
        trigger: verdict.rejection.reason,
        error: verdict.rejection,
        ...judged,
      }),
    };
  }
  return { accepted: true, value, record: record('pass', judged) };
}

/**
 * Runs one route with its own abort signal, and stops waiting when that signal aborts (timeout or
 * caller) even if the route ignores it.
 */
async function runRoute<T, I>(
  route: FallbackRoute<T, I>,
  plan: AttemptPlan,
  chain: Chain<T, I>,
): Promise<T> {
  const controller = new AbortController();
  const { signal } = controller;
  const { callerSignal } = chain;
  const onCallerAbort = () => controller.abort(callerSignal?.reason);
  if (callerSignal?.aborted) onCallerAbort();
  else callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
  const { timeoutMs } = route;
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(
          () => controller.abort(new RouteTimeoutError(route.route, timeoutMs)),
          timeoutMs,
        );
  const ctx: RouteContext<I> = {
    signal,
    input: chain.input,
    route: route.route,
    attempt: plan.attempt,
    fallbackReason: plan.reason,
    previousAttempts: plan.previousAttempts,
  };
  try {
    return await new Promise<T>((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      const settle = () => signal.removeEventListener('abort', onAbort);
      // A route that throws synchronously rejects like one that rejects.
      new Promise<T>((resolveRun) => resolveRun(route.run(ctx))).then(
        (value) => {
          settle();
          resolve(value);
        },
        (error: unknown) => {
          settle();
          reject(error);
        },
      );
    });
  } finally {
    // Not aborted on success: the value may be a stream still reading under this signal.
    if (timer !== undefined) clearTimeout(timer);
    callerSignal?.removeEventListener('abort', onCallerAbort);
  }
}

/** Runs the validation gate, then (if it passed) the confidence gate, recording both on the span. */
async function judge<T>(
  route: string,
  value: T,
  validate: Validator<T> | undefined,
  confidence: ConfidenceGate<T> | undefined,
  handle: AttemptHandle,
): Promise<Verdict> {
  if (validate !== undefined) {
    const rejection = await validationRejection(route, value, validate);
    handle.setValidation(rejection === undefined ? 'pass' : 'fail');
    if (rejection !== undefined) return { validation: 'fail', rejection };
  }
  const verdict: Verdict = validate === undefined ? {} : { validation: 'pass' };
  if (confidence === undefined) return verdict;
  let score: number | undefined;
  try {
    score = confidence.of(value);
  } catch (error) {
    return {
      ...verdict,
      rejection: new AttemptRejectedError(route, FALLBACK_REASONS.lowConfidence, value, {
        cause: error,
        detail: 'confidence.of threw',
      }),
    };
  }
  if (score === undefined) return verdict;
  if (typeof score !== 'number' || !Number.isFinite(score)) {
    diag.warn(`routewatch: withFallback ignores confidence ${String(score)} of route ${route}`);
    return verdict;
  }
  handle.setConfidence(score);
  verdict.confidence = score;
  if (score < confidence.threshold) {
    verdict.rejection = new AttemptRejectedError(route, FALLBACK_REASONS.lowConfidence, value, {
      confidence: score,
      detail: `confidence ${score} < ${confidence.threshold}`,
    });
  }
  return verdict;
}

function validatorKind(validate: unknown): 'safeParse' | 'standard' | 'predicate' | undefined {
  if (typeof validate === 'function') return 'predicate';
  if (typeof validate !== 'object' || validate === null) return undefined;
  if (typeof (validate as { safeParse?: unknown }).safeParse === 'function') return 'safeParse';
  const standard = (validate as { '~standard'?: { validate?: unknown } })['~standard'];
  return typeof standard?.validate === 'function' ? 'standard' : undefined;
}

/** Undefined when `value` passes; else the rejection. A gate that throws rejects. */
async function validationRejection<T>(
  route: string,
  value: T,
  validate: Validator<T>,
): Promise<AttemptRejectedError | undefined> {
  const reject = (reason: FallbackReason, options: { cause?: unknown; detail?: string }) =>
    new AttemptRejectedError(route, reason || FALLBACK_REASONS.validationFailed, value, options);
  try {
    if (typeof validate === 'function') {
      const verdict = await validate(value);
      if (typeof verdict === 'string') return reject(verdict, { detail: 'predicate' });
      return verdict
        ? undefined
        : reject(FALLBACK_REASONS.validationFailed, { detail: 'predicate' });
    }
    if ('safeParse' in validate) {
      // The async form when there is one: zod's safeParse throws on an async refinement, which
      // rejected every value, valid ones too.
      const parsed =
        typeof validate.safeParseAsync === 'function'
          ? await validate.safeParseAsync(value)
          : validate.safeParse(value);
      return parsed.success
        ? undefined
        : reject(FALLBACK_REASONS.validationFailed, { cause: parsed.error, detail: 'schema' });
    }
    const result = await validate['~standard'].validate(value);
    if (result.issues === undefined) return undefined;
    return reject(FALLBACK_REASONS.validationFailed, {
      cause: result.issues,
      detail: result.issues.map((issue) => issue.message).join('; '),
    });
  } catch (error) {
    return reject(FALLBACK_REASONS.validationFailed, { cause: error, detail: 'validate threw' });
  }
}

/**
 * The fallback reason a thrown value triggers: `rate_limited` for HTTP 429 (`status` or
 * `statusCode`, as provider SDK errors carry), `timeout` for our `RouteTimeoutError` and errors named
 * like a timeout (`APIConnectionTimeoutError`, `TimeoutError`, `ETIMEDOUT`, …), looking through
 * `cause`; otherwise `error`.
 */
export function fallbackReasonOf(error: unknown): 'rate_limited' | 'timeout' | 'error' {
  let current = error;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH; depth += 1) {
    if (typeof current !== 'object' || current === null) break;
    const { status, statusCode, name, code, constructor } = current as Record<string, unknown>;
    if (status === 429 || statusCode === 429) return FALLBACK_REASONS.rateLimited;
    const className = typeof constructor === 'function' ? constructor.name : undefined;
    if (
      current instanceof RouteTimeoutError ||
      [name, className].some((n) => typeof n === 'string' && n.includes('Timeout')) ||
      (typeof code === 'string' && /TIMEDOUT|TIMEOUT/i.test(code))
    ) {
      return FALLBACK_REASONS.timeout;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return FALLBACK_REASONS.error;
}

/** `{ [key]: value }`, or `{}` when value is undefined (exactOptionalPropertyTypes). */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return value === undefined ? {} : ({ [key]: value } as { [P in K]?: V });
}
