export * from './semconv.js';
export type {
  AttemptHandle,
  AttemptOptions,
  OpenAIInstrumentationConfig,
  OutcomeOptions,
  RegisterOptions,
  RoutewatchHandle,
  RoutingContext,
  TaskHandle,
  TaskOptions,
  ValidationResult,
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
export { instrumentOpenAI, OpenAIInstrumentation, SUPPORTED_OPENAI_VERSIONS } from './openai.js';
export { DEFAULT_TRACES_ENDPOINT, registerRoutewatch, resolveTracesEndpoint } from './sdk.js';
export { PACKAGE_NAME, PACKAGE_VERSION } from './version.js';
