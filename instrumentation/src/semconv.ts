/**
 * Attribute names: the contract between the instrumentation and the collector (docs/attributes.md).
 * Routing attributes live under `routewatch.`; LLM call attributes follow the OpenTelemetry GenAI
 * semantic conventions.
 */
export const ATTR_TASK_ID = 'routewatch.task.id' as const;
export const ATTR_COHORT = 'routewatch.cohort' as const;
export const ATTR_POLICY_VERSION = 'routewatch.policy.version' as const;
export const ATTR_ROUTE = 'routewatch.route' as const;
export const ATTR_ATTEMPT = 'routewatch.attempt' as const;
export const ATTR_FALLBACK_REASON = 'routewatch.fallback.reason' as const;
export const ATTR_VALIDATION = 'routewatch.validation' as const;
export const ATTR_CONFIDENCE = 'routewatch.confidence' as const;
export const ATTR_OUTCOME = 'routewatch.outcome' as const;
export const ATTR_OUTCOME_REASON = 'routewatch.outcome.reason' as const;
export const ATTR_REASK = 'routewatch.reask' as const;
export const ATTR_CLEANUP_COST_USD = 'routewatch.cleanup.cost_usd' as const;

export const ATTR_GEN_AI_OPERATION_NAME = 'gen_ai.operation.name' as const;
export const ATTR_GEN_AI_PROVIDER_NAME = 'gen_ai.provider.name' as const;
export const ATTR_GEN_AI_REQUEST_MODEL = 'gen_ai.request.model' as const;
export const ATTR_GEN_AI_RESPONSE_MODEL = 'gen_ai.response.model' as const;
export const ATTR_GEN_AI_RESPONSE_ID = 'gen_ai.response.id' as const;
export const ATTR_GEN_AI_RESPONSE_FINISH_REASONS = 'gen_ai.response.finish_reasons' as const;
export const ATTR_GEN_AI_USAGE_INPUT_TOKENS = 'gen_ai.usage.input_tokens' as const;
export const ATTR_GEN_AI_USAGE_OUTPUT_TOKENS = 'gen_ai.usage.output_tokens' as const;
export const ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS =
  'gen_ai.usage.cache_read.input_tokens' as const;
export const ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS =
  'gen_ai.usage.cache_creation.input_tokens' as const;
export const ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS =
  'gen_ai.usage.reasoning.output_tokens' as const;
export const ATTR_GEN_AI_USAGE_COST = 'gen_ai.usage.cost' as const;
export const ATTR_GEN_AI_REQUEST_MAX_TOKENS = 'gen_ai.request.max_tokens' as const;
export const ATTR_GEN_AI_REQUEST_TEMPERATURE = 'gen_ai.request.temperature' as const;
/** Message content, recorded only when content capture is on (JSON strings, GenAI conventions). */
export const ATTR_GEN_AI_INPUT_MESSAGES = 'gen_ai.input.messages' as const;
export const ATTR_GEN_AI_OUTPUT_MESSAGES = 'gen_ai.output.messages' as const;
export const ATTR_GEN_AI_SYSTEM_INSTRUCTIONS = 'gen_ai.system_instructions' as const;
export const ATTR_SERVER_ADDRESS = 'server.address' as const;
export const ATTR_SERVER_PORT = 'server.port' as const;
export const ATTR_ERROR_TYPE = 'error.type' as const;

/** Outcome values of a task (DESIGN.md, the task model). */
export const OUTCOMES = ['success', 'failure', 'escalated', 'abandoned', 'unknown'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Span names of the routing spans. */
export const TASK_SPAN_PREFIX = 'routewatch.task' as const;
export const ATTEMPT_SPAN_PREFIX = 'routewatch.attempt' as const;

/** Optional human-readable name of a task (TaskOptions.name); the span name stays `routewatch.task <cohort>`. */
export const ATTR_TASK_NAME = 'routewatch.task.name' as const;
