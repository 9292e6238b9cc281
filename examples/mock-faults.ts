/**
 * Explicit faults of the simulated LLM: which requests fail, and how. Rules are tried in order; the
 * first one that matches a request (and has uses left) applies. Pure bookkeeping: what a rule does
 * to the HTTP exchange is mock-llm.ts's business.
 */

export type Fault =
  /** Answer with this HTTP status and an error body in the provider's shape. */
  | {
      readonly kind: 'status';
      readonly status: number;
      /** Adds `retry-after: <seconds>` (the SDKs honour it when they retry). */
      readonly retryAfterSeconds?: number;
      readonly message?: string;
    }
  /** Answer normally, after this delay. */
  | { readonly kind: 'slow'; readonly delayMs: number }
  /** Streams only: send `afterEvents` events, wait `stallMs`, then the rest. */
  | { readonly kind: 'stall'; readonly afterEvents: number; readonly stallMs: number }
  /** Never answer: the client's timeout (or `close()`) ends the exchange. */
  | { readonly kind: 'hang' };

export interface FaultRule {
  /** Requests naming this model; default every model. */
  readonly model?: string;
  /** Requests to this path (`/v1/chat/completions`); default every path. */
  readonly path?: string;
  /** Applies to the first `times` matching requests only (then they succeed); default all. */
  readonly times?: number;
  readonly fault: Fault;
}

/** What a rule is matched against. */
export interface FaultTarget {
  readonly model: string | undefined;
  readonly path: string;
}

/** Convenience rules for the common cases. */
export const faults = {
  /** HTTP `status` for requests naming `model` (the first `times` of them, when given). */
  status: (
    model: string,
    status: number,
    opts: { times?: number; retryAfterSeconds?: number } = {},
  ): FaultRule => ({
    model,
    ...(opts.times === undefined ? {} : { times: opts.times }),
    fault: {
      kind: 'status',
      status,
      ...(opts.retryAfterSeconds === undefined
        ? {}
        : { retryAfterSeconds: opts.retryAfterSeconds }),
    },
  }),
  slow: (model: string, delayMs: number): FaultRule => ({
    model,
    fault: { kind: 'slow', delayMs },
  }),
  stall: (model: string, stallMs: number, afterEvents = 1): FaultRule => ({
    model,
    fault: { kind: 'stall', afterEvents, stallMs },
  }),
  hang: (model: string): FaultRule => ({ model, fault: { kind: 'hang' } }),
} as const;

/** The rules in force and how often each has applied. */
export class FaultPlan {
  private readonly used: number[];

  constructor(private readonly rules: readonly FaultRule[] = []) {
    rules.forEach(checkRule);
    this.used = rules.map(() => 0);
  }

  /** The fault for this request, counted against its rule; undefined when none applies. */
  next(target: FaultTarget): Fault | undefined {
    for (const [index, rule] of this.rules.entries()) {
      if (rule.model !== undefined && rule.model !== target.model) continue;
      if (rule.path !== undefined && rule.path !== target.path) continue;
      const used = this.used[index] ?? 0;
      if (rule.times !== undefined && used >= rule.times) continue;
      this.used[index] = used + 1;
      return rule.fault;
    }
    return undefined;
  }
}

function checkRule(rule: FaultRule, index: number): void {
  const bad = (what: string) => new RangeError(`faults[${index}]: ${what}`);
  if (rule.times !== undefined && !(Number.isSafeInteger(rule.times) && rule.times >= 1)) {
    throw bad(`times must be an integer ≥ 1, got ${rule.times}`);
  }
  const { fault } = rule;
  switch (fault.kind) {
    case 'status':
      if (!(Number.isInteger(fault.status) && fault.status >= 400 && fault.status <= 599)) {
        throw bad(`status must be an HTTP error status, got ${fault.status}`);
      }
      if (fault.retryAfterSeconds !== undefined && !(fault.retryAfterSeconds >= 0)) {
        throw bad(`retryAfterSeconds must be ≥ 0, got ${fault.retryAfterSeconds}`);
      }
      break;
    case 'slow':
      if (!(fault.delayMs >= 0 && Number.isFinite(fault.delayMs))) {
        throw bad(`delayMs must be a finite number ≥ 0, got ${fault.delayMs}`);
      }
      break;
    case 'stall':
      if (!(Number.isSafeInteger(fault.afterEvents) && fault.afterEvents >= 1)) {
        throw bad(`afterEvents must be an integer ≥ 1, got ${fault.afterEvents}`);
      }
      if (!(fault.stallMs >= 0 && Number.isFinite(fault.stallMs))) {
        throw bad(`stallMs must be a finite number ≥ 0, got ${fault.stallMs}`);
      }
      break;
    case 'hang':
      break;
  }
}
