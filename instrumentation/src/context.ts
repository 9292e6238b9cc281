import { createContextKey, type Context, type Span } from '@opentelemetry/api';
import type { RoutingContext } from './types.js';

/** Mutable state of a running task, shared by everything started inside it. */
export interface TaskState {
  readonly taskId: string;
  readonly cohort: string;
  readonly policyVersion: string | undefined;
  readonly span: Span;
  /** Highest attempt index handed out so far. */
  lastAttempt: number;
  outcomeSet: boolean;
  /** Score names recorded so far, to hold the task to `MAX_SCORES` distinct names. */
  readonly scoreNames: Set<string>;
}

export interface AttemptState {
  readonly route: string;
  readonly attempt: number;
  readonly span: Span;
}

/**
 * What the routing key holds. One object per context so the span processor does a single lookup
 * per span.
 */
export interface RoutingState {
  readonly task: TaskState | undefined;
  readonly attempt: AttemptState | undefined;
}

const ROUTING_KEY = createContextKey('routewatch.routing');

export function getRoutingState(ctx: Context): RoutingState | undefined {
  return ctx.getValue(ROUTING_KEY) as RoutingState | undefined;
}

export function setRoutingState(ctx: Context, state: RoutingState): Context {
  return ctx.setValue(ROUTING_KEY, state);
}

export function toRoutingContext(state: RoutingState | undefined): RoutingContext | undefined {
  const task = state?.task;
  if (!task) return undefined;
  const routing: RoutingContext = { taskId: task.taskId, cohort: task.cohort };
  if (task.policyVersion !== undefined) routing.policyVersion = task.policyVersion;
  if (state.attempt) {
    routing.route = state.attempt.route;
    routing.attempt = state.attempt.attempt;
  }
  return routing;
}
