export * from './semconv.js';
export type {
  AnthropicInstrumentationConfig,
  AttemptHandle,
  AttemptOptions,
  CaptureOptions,
  InstrumentationsOptions,
  OpenAICaptureOptions,
  OpenAIInstrumentationConfig,
  OutcomeOptions,
  RegisterOptions,
  RoutewatchHandle,
  RoutingContext,
  SpanProcessorsOptions,
  TaskHandle,
  TaskOptions,
  TracesProtocol,
} from './types.js';
export {
  getRoutingContext,
  recordConfidence,
  recordFallbackReason,
  recordOutcome,
  recordValidation,
  runAttempt,
  runTask,
} from './tagging.js';
export { RoutewatchSpanProcessor } from './span-processor.js';
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
export { readRoutewatchEnv, type RoutewatchEnv } from './config.js';
export { HOOKED_MODULES, registerLoaderHook } from './loader-hook.js';
export {
  createTraceExporter,
  DEFAULT_TRACES_ENDPOINT,
  registerRoutewatch,
  resolveTracesEndpoint,
  routewatchInstrumentations,
  routewatchSpanProcessors,
} from './sdk.js';
export { PACKAGE_NAME, PACKAGE_VERSION } from './version.js';
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
export { fallbackReasonOf, withFallback } from './fallback.js';
export {
  AttemptRejectedError,
  FallbackConfigError,
  FallbackExhaustedError,
  RouteTimeoutError,
} from './fallback-errors.js';
