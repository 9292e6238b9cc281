import { diag, type Context } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { watchHttpAttempts } from './capture/http-attempts.js';
import { getRoutingState } from './context.js';
import {
  ATTR_ATTEMPT,
  ATTR_COHORT,
  ATTR_ROUTE,
  ATTR_TASK_ID,
  TASK_SPAN_PREFIX,
} from './semconv.js';

/**
 * Stamps the routing context (task id, cohort, route, attempt) from the parent context onto every
 * span started inside a task, whichever tracer started it, so foreign LLM spans are tagged too.
 * Attributes a span already carries are left alone. Register it before the exporting processor.
 *
 * It runs on every span: one context lookup, then at most four attribute checks.
 *
 * Building one also starts counting the HTTP requests of model calls (capture/http-attempts.ts),
 * so that spans of foreign LLM instrumentations get `routewatch.http.attempts` too.
 */
export class RoutewatchSpanProcessor implements SpanProcessor {
  constructor() {
    watchHttpAttempts();
  }

  onStart(span: Span, parentContext: Context): void {
    try {
      const state = getRoutingState(parentContext);
      if (state === undefined) return;
      // A task's own span, nested in another task's attempt, is its own: the outer route and
      // attempt stamped on it made the inner task read as that route's (and an attempt of it).
      if (span.name.startsWith(`${TASK_SPAN_PREFIX} `)) return;
      const { attributes } = span;
      const { task, attempt } = state;
      if (task !== undefined) {
        if (attributes[ATTR_TASK_ID] === undefined) span.setAttribute(ATTR_TASK_ID, task.taskId);
        if (attributes[ATTR_COHORT] === undefined) span.setAttribute(ATTR_COHORT, task.cohort);
      }
      if (attempt !== undefined) {
        if (attributes[ATTR_ROUTE] === undefined) span.setAttribute(ATTR_ROUTE, attempt.route);
        if (attributes[ATTR_ATTEMPT] === undefined)
          span.setAttribute(ATTR_ATTEMPT, attempt.attempt);
      }
    } catch (error) {
      // Never let tagging break span creation: a span without routing tags is still a span.
      diag.error('routewatch: stamping routing attributes failed', error);
    }
  }

  onEnd(_span: ReadableSpan): void {}

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}
