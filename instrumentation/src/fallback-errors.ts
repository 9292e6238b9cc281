import type { AttemptRecord } from './fallback-types.js';
import type { FallbackReason } from './semconv.js';

/** Why `ctx.signal` aborts when a route runs past its `timeoutMs`; its name marks it a timeout. */
export class RouteTimeoutError extends Error {
  readonly code = 'ROUTE_TIMEOUT';
  readonly route: string;
  readonly timeoutMs: number;
  constructor(route: string, timeoutMs: number) {
    super(`route ${route} timed out after ${timeoutMs} ms`);
    this.name = 'RouteTimeoutError';
    this.route = route;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The error of an attempt whose result a gate rejected: `reason` is `validation_failed`,
 * `low_confidence` or the predicate's own word; `value` the rejected result; `cause` the schema's
 * error (or issues) or what the gate threw.
 */
export class AttemptRejectedError extends Error {
  readonly code = 'ATTEMPT_REJECTED';
  readonly route: string;
  readonly reason: FallbackReason;
  readonly value: unknown;
  readonly confidence: number | undefined;
  constructor(
    route: string,
    reason: FallbackReason,
    value: unknown,
    options: { cause?: unknown; confidence?: number | undefined; detail?: string } = {},
  ) {
    const detail = options.detail === undefined ? '' : `: ${options.detail}`;
    super(
      `route ${route} result rejected (${reason})${detail}`,
      'cause' in options ? { cause: options.cause } : undefined,
    );
    this.name = 'AttemptRejectedError';
    this.route = route;
    this.reason = reason;
    this.value = value;
    this.confidence = options.confidence;
  }
}

/** Thrown by `withFallback` when every attempt it was allowed to make failed. */
export class FallbackExhaustedError extends AggregateError {
  readonly code = 'FALLBACK_EXHAUSTED';
  /** The attempt trail; `errors` holds each attempt's error, in the same order. */
  readonly attempts: readonly AttemptRecord[];
  /** Routes not tried because `maxModelAttempts` was reached. */
  readonly skippedRoutes: readonly string[];
  constructor(attempts: readonly AttemptRecord[], skippedRoutes: readonly string[] = []) {
    const trail = attempts.map((a) => `${a.route}: ${a.trigger ?? a.outcome}`).join(', ');
    const skipped =
      skippedRoutes.length === 0
        ? ''
        : `; skipped at the model attempt bound: ${skippedRoutes.join(', ')}`;
    const last = attempts.at(-1);
    super(
      attempts.map((a) => a.error),
      `all ${attempts.length} attempts failed (${trail})${skipped}`,
      last === undefined ? undefined : { cause: last.error },
    );
    this.name = 'FallbackExhaustedError';
    this.attempts = attempts;
    this.skippedRoutes = skippedRoutes;
  }
}

/** A `withFallback` call that cannot run as written; `message` names the option. */
export class FallbackConfigError extends Error {
  readonly code = 'BAD_FALLBACK_CONFIG';
  constructor(message: string) {
    super(`withFallback: ${message}`);
    this.name = 'FallbackConfigError';
  }
}
