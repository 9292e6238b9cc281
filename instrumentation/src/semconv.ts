/**
 * The attribute contract between the instrumentation and the collector (DESIGN.md, "Attribute
 * contract"; docs/attributes.md): attribute names, span names and kinds, and the values of the
 * enumerated attributes. Import it as `@routewatch/instrumentation/semconv`.
 *
 * This module imports nothing, so the collector, the analyzer, the examples and the tests can use
 * it without loading the OpenTelemetry SDK. Lists are `as const` arrays (build a zod enum with
 * `z.enum(OUTCOMES)`); their types are derived from them. A rename here is a compile error in
 * every reader instead of a silent mismatch.
 */

// --- routewatch.* ----------------------------------------------------------------------------

/** Prefix of every routing attribute. */
export const ROUTEWATCH_PREFIX = 'routewatch.' as const;

/**
 * Task identity (task, attempt, llm); default: the trace id when the task span is a trace root,
 * else `<trace id>-<task span id>`.
 */
export const ATTR_TASK_ID = 'routewatch.task.id' as const;
/** Optional human-readable name of a task (`TaskOptions.name`); the span name stays `routewatch.task <cohort>`. */
export const ATTR_TASK_NAME = 'routewatch.task.name' as const;
export const ATTR_COHORT = 'routewatch.cohort' as const;
export const ATTR_POLICY_VERSION = 'routewatch.policy.version' as const;
export const ATTR_ROUTE = 'routewatch.route' as const;
/** 1 = primary route (the routing decision), 2+ = fallback. */
export const ATTR_ATTEMPT = 'routewatch.attempt' as const;
/** One of `FALLBACK_REASON_VALUES`, or a custom low-cardinality word. */
export const ATTR_FALLBACK_REASON = 'routewatch.fallback.reason' as const;
/** One of `VALIDATION_RESULTS`. */
export const ATTR_VALIDATION = 'routewatch.validation' as const;
export const ATTR_CONFIDENCE = 'routewatch.confidence' as const;
/** One of `OUTCOMES`. */
export const ATTR_OUTCOME = 'routewatch.outcome' as const;
export const ATTR_OUTCOME_REASON = 'routewatch.outcome.reason' as const;
export const ATTR_REASK = 'routewatch.reask' as const;
export const ATTR_CLEANUP_COST_USD = 'routewatch.cleanup.cost_usd' as const;
/**
 * On an LLM span: HTTP requests the SDK made for the call (int ≥ 1), its own retries included
 * (the OpenAI and Anthropic SDKs retry 429s, 5xx and connection errors, `maxRetries` 2 by
 * default). More than 1: the call was retried. Absent: not counted (e.g. a client whose requests
 * Node does not publish).
 */
export const ATTR_HTTP_ATTEMPTS = 'routewatch.http.attempts' as const;
/**
 * On an LLM span that was retried: milliseconds (int) between the end of each HTTP request and
 * the start of the next, summed — the SDK's back-off, mostly. Absent when the call made one request.
 */
export const ATTR_HTTP_RETRY_WAIT_MS = 'routewatch.http.retry_wait_ms' as const;
/** The task belongs to an offline eval run (kept out of production figures). */
export const ATTR_EVAL_RUN = 'routewatch.eval.run' as const;
export const ATTR_EVAL_DATASET = 'routewatch.eval.dataset' as const;
/** Prefix of named quality scores in 0..1: `routewatch.score.<name>` on a task span. */
export const SCORE_ATTRIBUTE_PREFIX = 'routewatch.score.' as const;
/**
 * What a score name may be (`groundedness`, `schema_valid`, `refusal.correct`): lower-case letters,
 * digits, `_`, `.` and `-`, 1 to 64 characters. Names become map keys and report columns, so they
 * must stay few and fixed: put what varies (a case id, a model) elsewhere, never in the name.
 */
export const SCORE_NAME_PATTERN = /^[a-z0-9_.-]{1,64}$/;
/** The longest score name, in characters (the limit `SCORE_NAME_PATTERN` holds). */
export const MAX_SCORE_NAME_LENGTH = 64;
/** At most this many distinct scores on one task span, and in one late outcome report. */
export const MAX_SCORES = 32;

/** Every `routewatch.*` attribute name of the contract, except the open `routewatch.score.*` family. */
export const ROUTEWATCH_ATTRIBUTES = [
  ATTR_TASK_ID,
  ATTR_TASK_NAME,
  ATTR_COHORT,
  ATTR_POLICY_VERSION,
  ATTR_ROUTE,
  ATTR_ATTEMPT,
  ATTR_FALLBACK_REASON,
  ATTR_VALIDATION,
  ATTR_CONFIDENCE,
  ATTR_OUTCOME,
  ATTR_OUTCOME_REASON,
  ATTR_REASK,
  ATTR_CLEANUP_COST_USD,
  ATTR_HTTP_ATTEMPTS,
  ATTR_HTTP_RETRY_WAIT_MS,
  ATTR_EVAL_RUN,
  ATTR_EVAL_DATASET,
] as const;
export type RoutewatchAttribute = (typeof ROUTEWATCH_ATTRIBUTES)[number];

// --- GenAI semantic conventions (the names we write) -----------------------------------------

/** Prefix of the OpenTelemetry GenAI attributes. */
export const GEN_AI_PREFIX = 'gen_ai.' as const;

export const ATTR_GEN_AI_OPERATION_NAME = 'gen_ai.operation.name' as const;
/** Since semconv 1.37; older instrumentations send `gen_ai.system` (`ATTR_GEN_AI_SYSTEM`). */
export const ATTR_GEN_AI_PROVIDER_NAME = 'gen_ai.provider.name' as const;
export const ATTR_GEN_AI_REQUEST_MODEL = 'gen_ai.request.model' as const;
export const ATTR_GEN_AI_REQUEST_MAX_TOKENS = 'gen_ai.request.max_tokens' as const;
export const ATTR_GEN_AI_REQUEST_TEMPERATURE = 'gen_ai.request.temperature' as const;
/** The model that served the call (often a dated name), as opposed to the requested one. */
export const ATTR_GEN_AI_RESPONSE_MODEL = 'gen_ai.response.model' as const;
export const ATTR_GEN_AI_RESPONSE_ID = 'gen_ai.response.id' as const;
export const ATTR_GEN_AI_RESPONSE_FINISH_REASONS = 'gen_ai.response.finish_reasons' as const;
/** Input tokens, cached ones included (Anthropic's own `input_tokens` excludes them). */
export const ATTR_GEN_AI_USAGE_INPUT_TOKENS = 'gen_ai.usage.input_tokens' as const;
export const ATTR_GEN_AI_USAGE_OUTPUT_TOKENS = 'gen_ai.usage.output_tokens' as const;
export const ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS =
  'gen_ai.usage.cache_read.input_tokens' as const;
export const ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS =
  'gen_ai.usage.cache_creation.input_tokens' as const;
export const ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS =
  'gen_ai.usage.reasoning.output_tokens' as const;
/** USD cost when the app knows it; wins over the collector's price table. */
export const ATTR_GEN_AI_USAGE_COST = 'gen_ai.usage.cost' as const;
/** Message content, recorded only when content capture is on (JSON strings, GenAI conventions). */
export const ATTR_GEN_AI_INPUT_MESSAGES = 'gen_ai.input.messages' as const;
export const ATTR_GEN_AI_OUTPUT_MESSAGES = 'gen_ai.output.messages' as const;
export const ATTR_GEN_AI_SYSTEM_INSTRUCTIONS = 'gen_ai.system_instructions' as const;

/** Older GenAI names still sent by instrumentations in the wild: read by the collector, never written by us. */
export const ATTR_GEN_AI_SYSTEM = 'gen_ai.system' as const;
export const ATTR_GEN_AI_USAGE_PROMPT_TOKENS = 'gen_ai.usage.prompt_tokens' as const;
export const ATTR_GEN_AI_USAGE_COMPLETION_TOKENS = 'gen_ai.usage.completion_tokens' as const;
export const ATTR_GEN_AI_USAGE_REASONING_TOKENS = 'gen_ai.usage.reasoning_tokens' as const;

/** General OpenTelemetry attributes our LLM spans carry. */
export const ATTR_SERVER_ADDRESS = 'server.address' as const;
export const ATTR_SERVER_PORT = 'server.port' as const;
export const ATTR_ERROR_TYPE = 'error.type' as const;

/** `gen_ai.operation.name` values our captures write. */
export const GEN_AI_OPERATIONS = ['chat', 'embeddings'] as const;
export type GenAiOperation = (typeof GEN_AI_OPERATIONS)[number];

/** `gen_ai.provider.name` values our captures write. */
export const GEN_AI_PROVIDERS = ['openai', 'anthropic'] as const;
export type GenAiProvider = (typeof GEN_AI_PROVIDERS)[number];

/**
 * `error.type` of a stream its caller aborted through `stream.controller.abort()`. Other failed
 * LLM spans carry the HTTP status (`429`) or the SDK error's class name.
 */
export const ERROR_TYPE_STREAM_ABORTED = 'StreamAbortedError' as const;

// --- spans -----------------------------------------------------------------------------------

/**
 * The kinds of span the contract knows: a task span wraps the work, attempt spans wrap each try,
 * LLM call spans (CLIENT, GenAI conventions) sit inside.
 */
export const SPAN_KINDS = ['task', 'attempt', 'llm'] as const;
export type RoutewatchSpanKind = (typeof SPAN_KINDS)[number];

/** Span name prefixes of the routing spans: `routewatch.task <cohort>`, `routewatch.attempt <route>`. */
export const TASK_SPAN_PREFIX = 'routewatch.task' as const;
export const ATTEMPT_SPAN_PREFIX = 'routewatch.attempt' as const;
/** The same, by span kind. LLM spans have no prefix: they are `<operation> <model>` (`chat gpt-4o`). */
export const SPAN_NAME_PREFIXES = {
  task: TASK_SPAN_PREFIX,
  attempt: ATTEMPT_SPAN_PREFIX,
} as const satisfies Partial<Record<RoutewatchSpanKind, string>>;

// --- values ----------------------------------------------------------------------------------

/** Outcome values of a task (DESIGN.md, the task model). The latest outcome for a task wins. */
export const OUTCOMES = ['success', 'failure', 'escalated', 'abandoned', 'unknown'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Values of `routewatch.validation`. */
export const VALIDATION_RESULTS = ['pass', 'fail'] as const;
export type ValidationResult = (typeof VALIDATION_RESULTS)[number];

/**
 * The fallback reasons of the contract, by name (`FALLBACK_REASONS.rateLimited`). `withFallback`
 * records all but `policy`, which an app sets itself when a rule, not a failure, moved the task.
 */
export const FALLBACK_REASONS = {
  error: 'error',
  timeout: 'timeout',
  rateLimited: 'rate_limited',
  validationFailed: 'validation_failed',
  lowConfidence: 'low_confidence',
  highRisk: 'high_risk',
  policy: 'policy',
} as const;
/** The same values as a list (`z.enum(FALLBACK_REASON_VALUES)`). */
export const FALLBACK_REASON_VALUES = [
  FALLBACK_REASONS.error,
  FALLBACK_REASONS.timeout,
  FALLBACK_REASONS.rateLimited,
  FALLBACK_REASONS.validationFailed,
  FALLBACK_REASONS.lowConfidence,
  FALLBACK_REASONS.highRisk,
  FALLBACK_REASONS.policy,
] as const satisfies readonly (typeof FALLBACK_REASONS)[keyof typeof FALLBACK_REASONS][];
export type KnownFallbackReason = (typeof FALLBACK_REASON_VALUES)[number];
/**
 * A fallback reason: a known one, or a custom low-cardinality word (a validate predicate may
 * return its own). `string & {}` keeps the known ones in completions.
 */
export type FallbackReason = KnownFallbackReason | (string & {});
