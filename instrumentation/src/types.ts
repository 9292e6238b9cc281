import type { Attributes, Span } from '@opentelemetry/api';
import type { Instrumentation, InstrumentationConfig } from '@opentelemetry/instrumentation';
import type { SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Outcome, ValidationResult } from './semconv.js';

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
  /** Extra instrumentations, added after the OpenAI and Anthropic ones. */
  instrumentations?: Instrumentation[];
  /** Delay between two batch exports in ms (BatchSpanProcessor scheduledDelayMillis); default 5000. */
  exportIntervalMillis?: number;
  /**
   * Encoding of the export. Default: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, then
   * OTEL_EXPORTER_OTLP_PROTOCOL, then `http/json` (what the routewatch collector takes).
   */
  protocol?: TracesProtocol;
  /** Extra export headers, over OTEL_EXPORTER_OTLP_HEADERS / OTEL_EXPORTER_OTLP_TRACES_HEADERS. */
  headers?: Record<string, string>;
  /** See `CaptureOptions.captureContent`. Default: ROUTEWATCH_CAPTURE_CONTENT, then false. */
  captureContent?: boolean;
  /** See `OpenAICaptureOptions.requestStreamUsage`. Default: ROUTEWATCH_STREAM_USAGE, then true. */
  requestStreamUsage?: boolean;
  /**
   * Patch the OpenAI and Anthropic SDKs. Default: ROUTEWATCH_SDK_CAPTURE (`on`/`off`), then on.
   * Off for apps that use another LLM instrumentation: the stamping processor still tags its spans.
   */
  sdkCapture?: boolean;
}

/** Options of `routewatchSpanProcessors`. */
export interface SpanProcessorsOptions {
  /** Exporter to batch into; default: an OTLP/HTTP exporter set up as `registerRoutewatch` does. */
  exporter?: SpanExporter;
  tracesEndpoint?: string;
  protocol?: TracesProtocol;
  headers?: Record<string, string>;
  exportIntervalMillis?: number;
}

/** Options of `routewatchInstrumentations`. */
export interface InstrumentationsOptions extends OpenAICaptureOptions {
  /** Default: ROUTEWATCH_SDK_CAPTURE, then on. Off gives an empty list. */
  sdkCapture?: boolean;
}

export interface RoutewatchHandle {
  /** Exports every span ended so far. */
  forceFlush(): Promise<void>;
  /** Flushes and stops the SDK; later calls are no-ops. */
  shutdown(): Promise<void>;
}

/** What the provider captures record, shared by OpenAI and Anthropic. */
export interface CaptureOptions {
  /**
   * Record prompts and completions as `gen_ai.input.messages`, `gen_ai.output.messages` and
   * `gen_ai.system_instructions` (JSON strings). Default false: message content can hold personal
   * data. Env: ROUTEWATCH_CAPTURE_CONTENT.
   */
  captureContent?: boolean;
}

/** Options of the OpenAI capture (`OpenAIInstrumentation`, `instrumentOpenAI`). */
export interface OpenAICaptureOptions extends CaptureOptions {
  /**
   * On a chat stream whose caller did not ask for usage, add `stream_options.include_usage` to the
   * request so token usage is recorded, and hide the extra usage-only chunk (and the `usage: null`
   * field it brings on the other chunks) from the caller. Default true; turn it off for
   * OpenAI-compatible servers that reject `stream_options`. Env: ROUTEWATCH_STREAM_USAGE.
   */
  requestStreamUsage?: boolean;
}

/** Configuration of `OpenAIInstrumentation`. */
export type OpenAIInstrumentationConfig = InstrumentationConfig & OpenAICaptureOptions;

/** Configuration of `AnthropicInstrumentation`. */
export type AnthropicInstrumentationConfig = InstrumentationConfig & CaptureOptions;

/** OTLP/HTTP encodings the exporter speaks. */
export type TracesProtocol = 'http/json' | 'http/protobuf';
