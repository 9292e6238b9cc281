import type { Attributes, Span } from '@opentelemetry/api';
import type { Instrumentation, InstrumentationConfig } from '@opentelemetry/instrumentation';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Outcome } from './semconv.js';

/** Options of `runTask`: one unit of user-visible work. */
export interface TaskOptions {
  /** Segment the task belongs to (`faq`, `extraction`, …). Keep it low-cardinality. */
  cohort: string;
  /** Version of the routing policy in force. */
  policyVersion?: string;
  /** Task identity; defaults to the trace id of the task span. */
  taskId?: string;
  /** Human-readable task name, recorded as `routewatch.task.name`. */
  name?: string;
  /** Extra attributes for the task span. */
  attributes?: Attributes;
}

/** Options of `TaskHandle.setOutcome` / `recordOutcome`. */
export interface OutcomeOptions {
  /** Why, low-cardinality (`validation_failed`, `user_rejected`, …). */
  reason?: string;
  /** The user asked again. */
  reask?: boolean;
  /** Human review or correction cost in USD, added to the task's cost. */
  cleanupCostUsd?: number;
}

export interface TaskHandle {
  readonly taskId: string;
  readonly cohort: string;
  readonly span: Span;
  /** Sets the task outcome; the latest call wins. */
  setOutcome(outcome: Outcome, opts?: OutcomeOptions): void;
  /** Task-level fallback reason (`routewatch.fallback.reason` on the task span). */
  setFallbackReason(reason: string): void;
}

/** Options of `runAttempt`: one try at the task on one route. */
export interface AttemptOptions {
  /** Route this attempt takes (`small`, `large`, …). */
  route: string;
  /** 1 = primary route, 2+ = fallback. Default: the next index in the current task, from 1. */
  attempt?: number;
  /** Why this fallback happened; recorded from attempt 2 on. */
  fallbackReason?: string;
}

export type ValidationResult = 'pass' | 'fail';

export interface AttemptHandle {
  readonly route: string;
  readonly attempt: number;
  readonly span: Span;
  setValidation(result: ValidationResult): void;
  setConfidence(value: number): void;
  /** Fallback reason of this attempt; ignored on attempt 1 (a primary route is no fallback). */
  setFallbackReason(reason: string): void;
}

/** The routing context active at a point of the code. */
export interface RoutingContext {
  taskId: string;
  cohort: string;
  route?: string;
  attempt?: number;
  policyVersion?: string;
}

/** Options of `registerRoutewatch`. */
export interface RegisterOptions {
  /** `service.name`; default: OTEL_SERVICE_NAME, then the SDK's default. */
  serviceName?: string;
  /**
   * OTLP/HTTP traces URL. Default: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, then
   * OTEL_EXPORTER_OTLP_ENDPOINT + `/v1/traces`, then http://localhost:4318/v1/traces.
   */
  tracesEndpoint?: string;
  /** Extra span processors, added after ours. */
  spanProcessors?: SpanProcessor[];
  /** Extra instrumentations, added after the OpenAI one. */
  instrumentations?: Instrumentation[];
  /** Delay between two batch exports in ms (BatchSpanProcessor scheduledDelayMillis); default 5000. */
  exportIntervalMillis?: number;
}

export interface RoutewatchHandle {
  /** Exports every span ended so far. */
  forceFlush(): Promise<void>;
  /** Flushes and stops the SDK; later calls are no-ops. */
  shutdown(): Promise<void>;
}

/** Configuration of `OpenAIInstrumentation`. */
export type OpenAIInstrumentationConfig = InstrumentationConfig;
