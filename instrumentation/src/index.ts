/**
 * The public API of `@routewatch/instrumentation`: what an application calls. Internals (the
 * capture machinery, the environment parser, the loader hook's module list, package metadata) stay
 * in their modules. The attribute contract is also published alone, free of the OpenTelemetry
 * SDK, as `@routewatch/instrumentation/semconv`.
 */

// The attribute contract: names, span kinds, outcomes, fallback reasons.
export * from './semconv.js';

// Tagging: tasks, attempts and what happened in them.
export {
  getRoutingContext,
  recordConfidence,
  recordFallbackReason,
  recordOutcome,
  recordScore,
  recordValidation,
  runAttempt,
  runTask,
} from './tagging.js';
export type {
  AttemptHandle,
  AttemptOptions,
  OutcomeOptions,
  RoutingContext,
  TaskHandle,
  TaskOptions,
} from './types.js';

// The routing policy helper.
export { fallbackReasonOf, withFallback } from './fallback.js';
export type {
  AttemptOutcome,
  AttemptRecord,
  ConfidenceGate,
  FallbackOptions,
  FallbackResult,
  FallbackRoute,
  HighRiskRule,
  RouteContext,
  SafeParseSchema,
  StandardSchemaLike,
  StandardSchemaResult,
  Validator,
} from './fallback-types.js';
export {
  AttemptRejectedError,
  FallbackConfigError,
  FallbackExhaustedError,
  RouteTimeoutError,
} from './fallback-errors.js';

// Offline evals through the production routing policy.
export { EVAL_OUTCOME_REASONS, EvalConfigError, EvalGradeError, runEval } from './eval.js';
export type {
  EvalCase,
  EvalCaseResult,
  EvalGrade,
  EvalGrader,
  EvalOptions,
  EvalRoutes,
  EvalRunOptions,
  EvalScoreSummary,
  EvalSummary,
  EvalVerdict,
} from './types.js';

// SDK set-up: the whole of it, or the parts for an app that starts its own NodeSDK.
export {
  createTraceExporter,
  registerRoutewatch,
  routewatchInstrumentations,
  routewatchSpanProcessors,
} from './sdk.js';
export { registerLoaderHook } from './loader-hook.js';
export { RoutewatchSpanProcessor } from './span-processor.js';
export type {
  InstrumentationsOptions,
  RegisterOptions,
  RoutewatchHandle,
  SpanProcessorsOptions,
  TracesProtocol,
} from './types.js';

// Provider captures.
export {
  instrumentOpenAI,
  OpenAIInstrumentation,
  SUPPORTED_OPENAI_VERSIONS,
} from './providers/openai.js';
export {
  AnthropicInstrumentation,
  instrumentAnthropic,
  SUPPORTED_ANTHROPIC_VERSIONS,
} from './providers/anthropic.js';
export type {
  AnthropicInstrumentationConfig,
  CaptureOptions,
  OpenAICaptureOptions,
  OpenAIInstrumentationConfig,
} from './types.js';
