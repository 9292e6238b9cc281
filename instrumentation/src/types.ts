import type { Attributes, Span } from '@opentelemetry/api';
import type { Instrumentation, InstrumentationConfig } from '@opentelemetry/instrumentation';
import type { SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type {
  ConfidenceGate,
  FallbackResult,
  FallbackRoute,
  HighRiskRule,
  Validator,
} from './fallback-types.js';
import type { Outcome, ValidationResult } from './semconv.js';

/** Options of `runTask`: one unit of user-visible work. */
export interface TaskOptions {
  /** Segment the task belongs to (`faq`, `extraction`, …). Keep it low-cardinality. */
  cohort: string;
  /** Version of the routing policy in force. */
  policyVersion?: string;
  /**
   * Task identity; defaults to the trace id when the task span is a trace root, else
   * `<trace id>-<task span id>` (a trace can hold several tasks).
   */
  taskId?: string;
  /** Human-readable task name, recorded as `routewatch.task.name`. */
  name?: string;
  /** Extra attributes for the task span. */
  attributes?: Attributes;
  /**
   * The offline eval run this task belongs to (`routewatch.eval.run`), e.g. a CI build id: eval
   * tasks are stored like any task and kept out of production figures. `runEval` sets it.
   */
  evalRun?: string;
  /** The eval dataset the task's case comes from (`routewatch.eval.dataset`). */
  evalDataset?: string;
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
  /**
   * Records the quality score `name` (`routewatch.score.<name>` on the task span): `value` in
   * 0..1, `name` matching `SCORE_NAME_PATTERN` (`groundedness`, `schema_valid`); at most
   * `MAX_SCORES` names per task. The latest value of a name wins. A bad name or value is reported
   * through `diag` and ignored.
   */
  setScore(name: string, value: number): void;
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

/** One case of an eval dataset: `input` goes to the routes; add whatever the grader needs. */
export interface EvalCase<I = unknown> {
  /** What the routes receive as `ctx.input`, as in production. */
  readonly input: I;
  /** Names the case: recorded as the task name (`routewatch.task.name`) and in the results. */
  readonly id?: string;
}

/**
 * What a grader returns for one case:
 * - `true` / `false`: passed or failed;
 * - a number in 0..1: a score, recorded as `routewatch.score.<scoreName>`; the case passes when
 *   it is at least `passThreshold`;
 * - `{ pass, scores? }`: passed or failed, with named scores in 0..1 (`{ groundedness: 0.8 }`).
 */
export type EvalGrade = boolean | number | EvalVerdict;

export interface EvalVerdict {
  readonly pass: boolean;
  /** Named quality scores in 0..1, recorded on the task span; names as `TaskHandle.setScore`. */
  readonly scores?: Readonly<Record<string, number>>;
}

/** Grades the accepted output of one case; `result` is the attempt trail that produced it. */
export type EvalGrader<C, T> = (
  evalCase: C,
  output: T,
  result: FallbackResult<T>,
) => EvalGrade | PromiseLike<EvalGrade>;

/** The routing policy of an eval: one route, or a fallback chain as `withFallback` takes it. */
export type EvalRoutes<T, I> =
  | { readonly route: FallbackRoute<T, I>; readonly routes?: undefined }
  | { readonly routes: readonly FallbackRoute<T, I>[]; readonly route?: undefined };

/**
 * Options of `runEval`. The policy fields (`route`/`routes`, `validate`, `confidence`, `highRisk`,
 * `maxModelAttempts`) are those of `withFallback`: spread the production policy into both.
 */
export type EvalOptions<C extends EvalCase, T> = EvalRunOptions<C, T> & EvalRoutes<T, C['input']>;

export interface EvalRunOptions<C extends EvalCase, T> {
  /** Names this run (`routewatch.eval.run`), e.g. a CI build or commit; a gate compares runs by it. */
  readonly run: string;
  /** The dataset the cases come from (`routewatch.eval.dataset`). */
  readonly dataset: string;
  /** Cohort of every case's task. */
  readonly cohort: string;
  /** Version of the routing policy under evaluation (`routewatch.policy.version`). */
  readonly policyVersion?: string;
  readonly cases: Iterable<C>;
  readonly grade: EvalGrader<C, T>;
  /** Cases run at the same time; default 4. */
  readonly concurrency?: number;
  /** The name a numeric grade is recorded under; default `grade`. */
  readonly scoreName?: string;
  /** A numeric grade at least this passes; default 0.5. */
  readonly passThreshold?: number;
  /**
   * Before resolving, force-flush the global tracer provider so the run's spans are exported even
   * if the process exits right after (`process.exit` skips the SDK's own exit hooks). Default true.
   */
  readonly flush?: boolean;
  readonly validate?: Validator<T>;
  readonly confidence?: ConfidenceGate<T>;
  readonly highRisk?: HighRiskRule<C['input']>;
  readonly maxModelAttempts?: number;
}

/** How one case ended. */
export interface EvalCaseResult {
  /** Position of the case in `cases`. */
  readonly index: number;
  readonly id: string | undefined;
  /** `routewatch.task.id` of the case's task (to look it up, or to report a late outcome). */
  readonly taskId: string;
  readonly passed: boolean;
  /** The scores recorded on the task. */
  readonly scores: Readonly<Record<string, number>>;
  /** The route whose output was graded; undefined when no route's output was accepted. */
  readonly route: string | undefined;
  /**
   * Why the case has no grade: the policy accepted no output (`FallbackExhaustedError`), or the
   * grader threw or returned something that is no grade (`EvalGradeError`). Such a case failed.
   */
  readonly error?: unknown;
}

/** Mean of one named score over the cases that recorded it. */
export interface EvalScoreSummary {
  readonly n: number;
  readonly mean: number;
}

/** What `runEval` resolves to. */
export interface EvalSummary {
  readonly run: string;
  readonly dataset: string;
  readonly cohort: string;
  readonly cases: number;
  readonly passed: number;
  /** Cases that did not pass: graded as failing, or ended in an error. */
  readonly failed: number;
  /** Of the failed cases, those that ended in an error rather than a grade. */
  readonly errors: number;
  /** Per score name, sorted by name. */
  readonly scores: Readonly<Record<string, EvalScoreSummary>>;
  /** One per case, in the order of `cases`. */
  readonly results: readonly EvalCaseResult[];
}
