import type { FallbackReason, ValidationResult } from './semconv.js';

/** What a route's `run` receives. */
export interface RouteContext<I> {
  /**
   * Aborted when the route's `timeoutMs` elapses (reason: a `RouteTimeoutError`) or when the
   * caller's `signal` aborts. Pass it on (`{ signal: ctx.signal }` for the OpenAI and Anthropic
   * SDKs) so the abandoned call stops; `withFallback` stops waiting either way.
   */
  readonly signal: AbortSignal;
  /** `FallbackOptions.input`. */
  readonly input: I;
  readonly route: string;
  /** Index of this attempt, from 1. */
  readonly attempt: number;
  /** Why this attempt happens; undefined on the primary route. */
  readonly fallbackReason: FallbackReason | undefined;
  /** Attempts made before this one (e.g. to hand a human what the models produced). */
  readonly previousAttempts: readonly AttemptRecord[];
}

/** One route of the chain, tried in order. */
export interface FallbackRoute<T, I> {
  /** Route name (`small`, `large`, `human`, …), recorded as `routewatch.route`. */
  readonly route: string;
  /** The work of this route. Its rejection triggers the next route. */
  readonly run: (ctx: RouteContext<I>) => T | PromiseLike<T>;
  /**
   * Give up on this route after this many ms: `ctx.signal` aborts and the next route runs, even if
   * `run` ignores the signal. Default: no timeout.
   */
  readonly timeoutMs?: number;
  /**
   * Whether this route calls a model, so counts towards `maxModelAttempts`. Default true; set it
   * false for a human queue, a cache or a rules engine.
   */
  readonly modelCall?: boolean;
  /**
   * Whether `validate` and `confidence` judge this route's result. Default: true for model routes,
   * false for `modelCall: false` routes (a human queue's ticket is no model answer).
   */
  readonly gated?: boolean;
}

/** A zod-like schema: `safeParse` that reports success and, on failure, an error. */
export interface SafeParseSchema {
  safeParse(value: unknown): { readonly success: boolean; readonly error?: unknown };
  /** Used when present (zod): a schema with an async refinement throws from `safeParse`. */
  safeParseAsync?(
    value: unknown,
  ): PromiseLike<{ readonly success: boolean; readonly error?: unknown }>;
}

/** A Standard Schema (zod 4, valibot, arktype, …): https://standardschema.dev */
export interface StandardSchemaLike {
  readonly '~standard': {
    validate(value: unknown): StandardSchemaResult | PromiseLike<StandardSchemaResult>;
  };
}
export type StandardSchemaResult =
  | { readonly value: unknown; readonly issues?: undefined }
  | { readonly issues: readonly { readonly message: string }[] };

/**
 * The validation gate: a schema, or a predicate returning true (pass), false (fail:
 * `validation_failed`) or a string (fail, with that string as the fallback reason).
 */
export type Validator<T> =
  | SafeParseSchema
  | StandardSchemaLike
  | ((value: T) => boolean | string | PromiseLike<boolean | string>);

/** The confidence gate. */
export interface ConfidenceGate<T> {
  /** Confidence of a result; undefined when it has none (the gate then lets it pass). */
  readonly of: (value: T) => number | undefined;
  /** Results below it trigger `low_confidence`; equal passes. */
  readonly threshold: number;
}

/** Sends risky inputs straight to a safer route. */
export interface HighRiskRule<I> {
  /** Evaluated once, on `input`, before any attempt. */
  readonly when: (input: I) => boolean | PromiseLike<boolean>;
  /**
   * Name of a later route. The routes before it make no attempt: it becomes attempt 1 (the
   * routing decision), and the task span gets `routewatch.fallback.reason` `high_risk`.
   */
  readonly skipTo: string;
}

/**
 * Options of `withFallback`. `V` lists what each route resolves to (inferred from `routes`; a
 * `[K in keyof V]` mapping keeps each route's `run` contextually typed) and `I` is the input type.
 */
export interface FallbackOptions<V extends readonly unknown[], I> {
  /** The chain, primary route first. */
  readonly routes: { readonly [K in keyof V]: FallbackRoute<V[K], I> };
  /** Passed to every route as `ctx.input` and to `highRisk.when`. */
  readonly input?: I;
  /** Validation gate on each gated route's result (`routewatch.validation`). */
  readonly validate?: Validator<Awaited<V[number]>>;
  /** Confidence gate, applied after a passing validation (`routewatch.confidence`). */
  readonly confidence?: ConfidenceGate<Awaited<V[number]>>;
  readonly highRisk?: HighRiskRule<I>;
  /**
   * At most this many attempts on model routes (`modelCall` not false); later model routes are
   * skipped, non-model routes still run. Default 2, so a chain never becomes a retry storm.
   */
  readonly maxModelAttempts?: number;
  /** Cancels the whole chain: the running attempt's `ctx.signal` aborts and no route follows. */
  readonly signal?: AbortSignal;
}

/**
 * How an attempt ended: `pass` (accepted), `fail` (rejected by a gate), `error` (threw),
 * `timeout` (timed out: `timeoutMs` or an SDK timeout error).
 */
export type AttemptOutcome = 'pass' | 'fail' | 'error' | 'timeout';

/** One attempt of the trail. */
export interface AttemptRecord {
  readonly route: string;
  /** From 1, consecutive over the attempts made. */
  readonly attempt: number;
  /**
   * Why this attempt happened: the trigger of the previous attempt; `high_risk` on a primary route
   * chosen by the high-risk rule; undefined on the primary route otherwise.
   */
  readonly reason: FallbackReason | undefined;
  readonly outcome: AttemptOutcome;
  /** The fallback reason this attempt raised, unless it passed. */
  readonly trigger?: FallbackReason;
  /** What the route threw, or an `AttemptRejectedError` for a gate failure. */
  readonly error?: unknown;
  readonly validation?: ValidationResult;
  readonly confidence?: number;
  readonly modelCall: boolean;
  readonly durationMs: number;
}

/** What `withFallback` resolves to: the accepted value and the trail that led to it. */
export interface FallbackResult<T> {
  readonly value: T;
  /** Route and attempt that produced `value`. */
  readonly route: string;
  readonly attempt: number;
  readonly attempts: readonly AttemptRecord[];
}
