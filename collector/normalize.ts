import { createHash } from 'node:crypto';
import { MAX_SCORES } from '@routewatch/instrumentation/semconv';
import { OUTCOMES as OUTCOME_VALUES } from './mapping.js';
import type { Mapping, MappedField, MappedSpan } from './mapping.js';
import type { AnyValue, ExportTraceRequest, KeyValue, OtlpSpan } from './otlp-json.js';
import { inclusiveUsage } from './pricing.js';
import type { PriceTable, TokenUsage } from './pricing.js';

/** A row of the `spans` table (sql/migrations/0001_spans.sql). Timestamps are nanosecond strings. */
export interface SpanRow {
  timestamp: string;
  end_time: string;
  duration_ns: string;
  trace_id: string;
  span_id: string;
  parent_span_id: string;
  name: string;
  span_kind: string;
  kind: 'task' | 'attempt' | 'llm' | 'other';
  service_name: string;
  scope_name: string;
  task_id: string;
  cohort: string;
  route: string;
  attempt: number;
  fallback_reason: string;
  policy_version: string;
  validation: string;
  confidence: number | null;
  provider: string;
  operation: string;
  request_model: string;
  response_model: string;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_creation_tokens: number;
  reasoning_tokens: number;
  cost_usd: number;
  cost_source: CostSource;
  /** Why the cost is what it is, where `cost_source` alone does not say (see CostNote). */
  cost_note: CostNote;
  /** The price entry that priced the call (cost_source `price_table`), else ''. */
  price_ref: string;
  status_code: 'unset' | 'ok' | 'error';
  status_message: string;
  error_type: string;
  outcome: string;
  outcome_reason: string;
  reask: number;
  cleanup_cost_usd: number;
  /**
   * HTTP requests the call made, the SDK's own retries included (`routewatch.http.attempts`, else
   * `http.request.resend_count` + 1); 0 when not counted (sql/migrations/0031_http_attempts.sql).
   */
  http_attempts: number;
  /** Time between those requests, ms (`routewatch.http.retry_wait_ms`); 0 without retries. */
  http_retry_wait_ms: number;
  attributes: Record<string, string>;
  resource: Record<string, string>;
}

/**
 * Where an LLM call's cost comes from:
 * - `span`: the span carried a cost (a positive one: see normalizeSpan);
 * - `price_table`: priced from its tokens (price file or catalogue), `price_ref` says by which entry;
 * - `unpriced`: its cost is unknown (no token counts, or no price for its model): stored as 0 but
 *   never to be read as $0;
 * - `none`: nothing to price (not an LLM call, or a failed call that reported no usage).
 */
export type CostSource = 'span' | 'price_table' | 'unpriced' | 'none';

/**
 * The detail behind a cost source:
 * - `no_usage` (unpriced): the call reported no token counts (e.g. a stream without usage);
 * - `unknown_model` (unpriced): tokens, but neither the served nor the requested model has a price;
 * - `no_model` (unpriced): tokens, but no model name;
 * - `implausible_usage` (unpriced): more tokens than one call can hold (MAX_TOKENS_PER_CALL), or a
 *   price above MAX_COST_USD: a broken counter, not a bill, so it moves no cost per task;
 * - `reported_zero_ignored` (price_table): the span said its cost was 0, and was priced instead;
 * - `failed_no_usage` (none): the call failed and reported no usage: providers bill no refused
 *   request (429, 5xx, 4xx);
 * - `aborted_no_usage` (unpriced): the caller gave up on the call (an abort, a timeout: CLIENT_GAVE_UP)
 *   and no usage came back; the provider may have served, and billed, the request all the same;
 * - '' otherwise.
 */
export type CostNote =
  | ''
  | 'no_usage'
  | 'unknown_model'
  | 'no_model'
  | 'implausible_usage'
  | 'reported_zero_ignored'
  | 'failed_no_usage'
  | 'aborted_no_usage';

export interface NormalizeResult {
  rows: SpanRow[];
  /** Spans with neither routewatch.* nor GenAI attributes: counted, not stored. */
  skipped: number;
  /** Spans refused for a start time outside the accepted window (see TimeWindow). */
  outOfWindow: number;
  /** Why the first of them was refused; empty when none was. */
  outOfWindowMessage: string;
  /** Spans refused for an id that is not one (otlp-request.ts), and why the first was. */
  invalid: number;
  invalidMessage: string;
  /** LLM calls stored, by where their cost comes from. */
  costSources: CostSourceCounts;
}

/**
 * The start times a span may have to be stored: not older than retention (it would be deleted
 * at once, after costing a partition of its own) and not further ahead than a clock could be
 * wrong. One request of spans spread over thousands of days would otherwise create thousands of
 * partitions and slow the store down for everyone after it.
 */
export interface TimeWindow {
  /** Oldest accepted start, ns since the epoch. */
  fromNs: bigint;
  /** Latest accepted start, ns since the epoch. */
  toNs: bigint;
}

/** The window accepted at `nowMs`: `maxAgeMs` back, `maxAheadMs` ahead. */
export function acceptedWindow(nowMs: number, maxAgeMs: number, maxAheadMs: number): TimeWindow {
  return {
    fromNs: BigInt(Math.max(0, nowMs - maxAgeMs)) * 1_000_000n,
    toNs: BigInt(nowMs + maxAheadMs) * 1_000_000n,
  };
}

/** Any window: for tools and tests that store spans of any time. */
export const ANY_TIME: TimeWindow = { fromNs: 0n, toNs: 9_223_372_036_854_775_807n };

/**
 * A cost above this (USD, one call or one report) is taken as a unit error or garbage: summed, a
 * few such values make a cohort's total infinite.
 */
export const MAX_COST_USD = 1_000_000;
/**
 * Tokens one call can count (input and output together): ten times the longest context window
 * offered today. A count above it is a broken counter, and the call is left unpriced.
 */
export const MAX_TOKENS_PER_CALL = 100_000_000;

const SPAN_KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'] as const;
const STATUS_CODES = ['unset', 'ok', 'error'] as const;
const OUTCOMES = new Set<string>(OUTCOME_VALUES);

/**
 * The first attribute present among names: current GenAI name first, then older ones in the wild
 * (OpenLLMetry, OpenLIT), OpenInference (`llm.*`), the Vercel AI SDK (`ai.*`) and Langfuse.
 */
const NAMES = {
  provider: [
    'gen_ai.provider.name',
    'gen_ai.system',
    'llm.provider',
    'llm.system',
    'ai.model.provider',
  ],
  operation: ['gen_ai.operation.name', 'llm.request.type'],
  requestModel: [
    'gen_ai.request.model',
    'llm.request.model_name',
    'ai.model.id',
    'langfuse.observation.model.name',
    'embedding.model_name',
  ],
  responseModel: [
    'gen_ai.response.model',
    'llm.response.model_name',
    'llm.model_name',
    'ai.response.model',
  ],
  inputTokens: [
    'gen_ai.usage.input_tokens',
    'gen_ai.usage.prompt_tokens',
    'llm.token_count.prompt',
    'ai.usage.inputTokens',
    'ai.usage.promptTokens',
    // The Vercel AI SDK's embed and embedMany spans: their one count, input tokens.
    'ai.usage.tokens',
  ],
  outputTokens: [
    'gen_ai.usage.output_tokens',
    'gen_ai.usage.completion_tokens',
    'llm.token_count.completion',
    'ai.usage.outputTokens',
    'ai.usage.completionTokens',
  ],
  cacheRead: [
    'gen_ai.usage.cache_read.input_tokens',
    // Anthropic's own field names, as OpenLLMetry and others copied them.
    'gen_ai.usage.cache_read_input_tokens',
    'llm.token_count.prompt_details.cache_read',
    'gen_ai.usage.prompt_tokens_details.cache_read',
    'ai.usage.inputTokenDetails.cacheReadTokens',
    'ai.usage.cachedInputTokens',
  ],
  cacheCreation: [
    'gen_ai.usage.cache_creation.input_tokens',
    'gen_ai.usage.cache_creation_input_tokens',
    'llm.token_count.prompt_details.cache_write',
    'gen_ai.usage.prompt_tokens_details.cache_write',
    'ai.usage.inputTokenDetails.cacheWriteTokens',
  ],
  reasoning: [
    'gen_ai.usage.reasoning.output_tokens',
    'gen_ai.usage.reasoning_tokens',
    'llm.token_count.completion_details.reasoning',
    'gen_ai.usage.completion_tokens_details.reasoning',
    'ai.usage.outputTokenDetails.reasoningTokens',
    'ai.usage.reasoningTokens',
  ],
  cost: ['gen_ai.usage.cost', 'llm.cost.total'],
} as const;

/** Other conventions' markers, read to tell a model call from the spans around it. */
export const VERCEL_OPERATION = 'ai.operationId';
const OPENINFERENCE_KIND = 'openinference.span.kind';
const OPENINFERENCE_PARAMETERS = 'llm.invocation_parameters';
export const LANGFUSE_TYPE = 'langfuse.observation.type';
const LANGFUSE_USAGE = 'langfuse.observation.usage_details';
const LANGFUSE_COST = 'langfuse.observation.cost_details';

/** The Vercel AI SDK's provider request spans (`ai.generateText.doGenerate`, `….doStream`, …). */
const VERCEL_MODEL_CALL = /\.do[A-Z][A-Za-z]*$/;
const LANGFUSE_MODEL_CALLS = new Set(['generation', 'embedding']);

function flatten(value: AnyValue): string {
  switch (value.kind) {
    case 'string':
    case 'int':
    case 'bytes':
      return value.value;
    case 'bool':
      return value.value ? 'true' : 'false';
    case 'double':
      return String(value.value);
    case 'array':
      return JSON.stringify(value.value.map(toJson));
    case 'kvlist':
      return JSON.stringify(
        Object.fromEntries(value.value.map((kv) => [kv.key, toJson(kv.value)])),
      );
    case 'empty':
      return '';
  }
}

function toJson(value: AnyValue): unknown {
  switch (value.kind) {
    case 'array':
      return value.value.map(toJson);
    case 'kvlist':
      return Object.fromEntries(value.value.map((kv) => [kv.key, toJson(kv.value)]));
    case 'empty':
      return null;
    default:
      return value.value;
  }
}

/** DateTime64(9) bounds; outside them the engine refuses the row, and with it the whole batch. */
const MAX_NS = 9_223_372_036_854_775_807n;

/** A nanosecond time brought within what a DateTime64(9) column holds. */
function clampNs(ns: bigint): bigint {
  return ns < 0n ? 0n : ns > MAX_NS ? MAX_NS : ns;
}

/**
 * A nanosecond time as `YYYY-MM-DD hh:mm:ss.nnnnnnnnn` (UTC): a bare digit string is read by the
 * engine according to its length (seconds, or refused), this form only one way.
 */
let lastSecond = Number.NaN;
let lastSecondText = '';
export function clickHouseTime(ns: bigint): string {
  const clamped = clampNs(ns);
  const seconds = Number(clamped / 1_000_000_000n);
  const fraction = String(clamped % 1_000_000_000n).padStart(9, '0');
  // The spans of one request mostly share their second: its text is made once.
  if (seconds !== lastSecond) {
    lastSecond = seconds;
    lastSecondText = new Date(seconds * 1000).toISOString().slice(0, 19).replace('T', ' ');
  }
  return `${lastSecondText}.${fraction}`;
}

const TRACE_ID_FORM = /^[0-9A-Fa-f]{32}$/;

/**
 * A task id as stored. Ids in the form of a trace id are lowercased, as trace ids are: a task
 * without its own id is its trace, and tools show trace ids in either case.
 */
export function canonicalTaskId(id: string): string {
  return TRACE_ID_FORM.test(id) ? id.toLowerCase() : id;
}

/** Attributes stored in typed columns: the `attributes` map keeps only the rest. */
const TYPED = new Set<string>([
  'routewatch.task.id',
  'routewatch.cohort',
  'routewatch.route',
  'routewatch.attempt',
  'routewatch.fallback.reason',
  'routewatch.policy.version',
  'routewatch.validation',
  'routewatch.confidence',
  'routewatch.outcome',
  'routewatch.outcome.reason',
  'routewatch.reask',
  'routewatch.cleanup.cost_usd',
  'routewatch.http.attempts',
  'routewatch.http.retry_wait_ms',
  'error.type',
  ...Object.values(NAMES).flat(),
]);

/** The span's attributes without those kept in typed columns. */
const SCORE_PREFIX = 'routewatch.score.';
/** The longest score name SCORE_NAME_PATTERN takes. */
const SCORE_NAME_LENGTH = 64;

function untyped(map: Record<string, string>): Record<string, string> {
  const rest = emptyMap();
  let scores = 0;
  for (const key in map) {
    if (TYPED.has(key)) continue;
    if (key.startsWith(SCORE_PREFIX)) {
      // The views read every score key by name, and each name is a key in every report: a name
      // longer than the outcomes route takes (SCORE_NAME_LENGTH), or one past MAX_SCORES, is
      // not kept. Its characters are left alone: spans written before this rule keep theirs.
      const length = key.length - SCORE_PREFIX.length;
      if (length < 1 || length > SCORE_NAME_LENGTH || ++scores > MAX_SCORES) continue;
    } else if (key === 'routewatch.eval.run' || key === 'routewatch.eval.dataset') {
      rest[key] = boundName(map[key]!);
      continue;
    }
    rest[key] = map[key]!;
  }
  return rest;
}

/** ES2024's well-formed string methods, present from Node 20 on (our `lib` stops at ES2023). */
interface WellFormedString {
  isWellFormed(): boolean;
  toWellFormed(): string;
}

/**
 * The string with lone UTF-16 surrogates replaced by U+FFFD. SDKs truncating long attributes can
 * cut an emoji in half, and the engine refuses the escaped half.
 */
export function wellFormed(text: string): string {
  const s = text as unknown as WellFormedString;
  return s.isWellFormed() ? text : s.toWellFormed();
}

/** A map without a prototype: a key such as `__proto__` is stored like any other. */
const emptyMap = (): Record<string, string> => Object.create(null) as Record<string, string>;

function toMap(attributes: KeyValue[]): Record<string, string> {
  const map = emptyMap();
  for (const kv of attributes) map[wellFormed(kv.key)] = wellFormed(flatten(kv.value));
  return map;
}

/** A resource's keys and values together, in UTF-16 units, beyond which its long values are cut. */
export const RESOURCE_ROW_UNITS = 16 * 1024;
/** What each value of such a resource keeps at most, halved until the resource fits (to 64). */
export const RESOURCE_VALUE_UNITS = 1024;
const RESOURCE_VALUE_FLOOR = 64;

/** Names longer than this (UTF-16 units) are stored bounded: see {@link boundName}. */
export const MAX_NAME_LENGTH = 256;

/**
 * A name the reports group by and repeat in every answer (task id, cohort, route, reasons,
 * policy, model, service, error type), bounded: one longer than MAX_NAME_LENGTH is stored as its
 * first 200 characters, `…` and 16 hex digits of its SHA-256, so that two long names stay two
 * and a span cannot make every report, alert and dashboard answer carry megabytes. (A name
 * that long is a bug or an attack: a cohort is a word or two.)
 */
export function boundName(value: string): string {
  if (value.length <= MAX_NAME_LENGTH) return value;
  let kept = value.slice(0, 200);
  if (/[\uD800-\uDBFF]$/.test(kept)) kept = kept.slice(0, -1);
  return `${kept}…${createHash('sha256').update(value).digest('hex').slice(0, 16)}`;
}

/**
 * The resource as each of its spans' rows stores it (span-lines.ts): every row holds the whole
 * map, so a resource of 100 KB (a command line, labels) over 2 000 spans made a 1.2 MB export
 * 200 MB of log and rows. Past RESOURCE_ROW_UNITS in all, its values longer than a cap are cut to
 * it and marked with their length, the cap starting at RESOURCE_VALUE_UNITS and halved while the
 * resource is still over (to 64). Keys, short values and `service.name` are kept. The spans'
 * mapping rules and service name read the whole resource first: only the stored copy is cut.
 * Returns the resource itself when it fits, else a cut copy.
 */
export function boundResource(resource: Record<string, string>): Record<string, string> {
  const unitsOf = (map: Record<string, string>) => {
    let units = 0;
    for (const key in map) units += key.length + map[key]!.length;
    return units;
  };
  if (unitsOf(resource) <= RESOURCE_ROW_UNITS) return resource;
  let cap = RESOURCE_VALUE_UNITS;
  for (;;) {
    const cut = emptyMap();
    for (const key in resource) {
      const value = resource[key]!;
      if (value.length <= cap || key === 'service.name') {
        cut[key] = value;
        continue;
      }
      let kept = value.slice(0, cap);
      // Not half a surrogate pair.
      if (/[\uD800-\uDBFF]$/.test(kept)) kept = kept.slice(0, -1);
      cut[key] =
        `${kept}…(cut from ${value.length} characters: a resource over ${RESOURCE_ROW_UNITS} in all)`;
    }
    if (cap <= RESOURCE_VALUE_FLOOR || unitsOf(cut) <= RESOURCE_ROW_UNITS) return cut;
    cap = Math.max(RESOURCE_VALUE_FLOOR, cap >> 1);
  }
}

function first(map: Record<string, string>, names: readonly string[]): string | undefined {
  for (const name of names) {
    const value = map[name];
    if (value !== undefined && value !== '') return value;
  }
  return undefined;
}

/** A token count: a non-negative integer, capped where JSON numbers stop being exact. */
function count(value: string | undefined): number {
  if (value === undefined) return 0;
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? Math.min(Math.floor(n), Number.MAX_SAFE_INTEGER) : 0;
}

function finiteNumber(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

/**
 * HTTP requests of a call: `routewatch.http.attempts` (our instrumentation counts them), else the
 * OpenTelemetry HTTP convention's `http.request.resend_count` + 1 that some instrumentations set on
 * the call span (the Anthropic SDK's own spans do, from the second request on); 0 when neither is
 * there: not counted, which is not the same as 1.
 */
function httpAttemptsOf(map: Record<string, string>): number {
  const attempts = count(map['routewatch.http.attempts']);
  if (attempts > 0) return Math.min(attempts, 65_535);
  const resent = map['http.request.resend_count'];
  return resent === undefined ? 0 : Math.min(count(resent) + 1, 65_535);
}

/** A cost in USD: a number from 0 to MAX_COST_USD, else absent. */
function usdAmount(value: string | undefined): number | undefined {
  const n = finiteNumber(value);
  return n !== undefined && n >= 0 && n <= MAX_COST_USD ? n : undefined;
}

/** Attribute key prefixes that make a span one to store, whatever else it carries. */
export const RELEVANT_PREFIXES = ['routewatch.', 'gen_ai.', 'llm.'] as const;

/** Whether an attribute key makes its span one to store. */
export function isRelevantKey(key: string): boolean {
  return key.startsWith('routewatch.') || key.startsWith('gen_ai.') || key.startsWith('llm.');
}

/**
 * Whether a span is stored, from three facts about its attributes: whether a key has a relevant
 * prefix, and the (last) values of `langfuse.observation.type` and `ai.operationId`. Decoders that
 * skip spans before building their attribute map (otlp-proto-rows.ts) gather these facts alone.
 */
export function isRelevantBy(
  hasRelevantKey: boolean,
  langfuseType: string | undefined,
  vercelOperation: string | undefined,
): boolean {
  if (hasRelevantKey) return true;
  // Langfuse generations carry only `langfuse.*` attributes, older Vercel AI SDK calls `ai.*` ones.
  if (langfuseType !== undefined) return LANGFUSE_MODEL_CALLS.has(langfuseType);
  return vercelOperation !== undefined && VERCEL_MODEL_CALL.test(vercelOperation);
}

function isRelevant(map: Record<string, string>): boolean {
  let hasRelevantKey = false;
  for (const key in map) {
    if (isRelevantKey(key)) {
      hasRelevantKey = true;
      break;
    }
  }
  return isRelevantBy(hasRelevantKey, map[LANGFUSE_TYPE], map[VERCEL_OPERATION]);
}

/**
 * GenAI operations that are not one request to a model: an agent's or a tool's span, which may
 * name a model, or sum its calls' usage, and would count them again.
 */
const NOT_MODEL_CALL_OPERATIONS: ReadonlySet<string> = new Set([
  'create_agent',
  'invoke_agent',
  'execute_tool',
]);

/** Whether the span is one request to a model, by the markers of the convention it follows. */
function isModelCall(name: string, map: Record<string, string>): boolean {
  // The Vercel AI SDK wraps each provider request (`….doGenerate`, `….doStream`) in a span for the
  // whole call (`ai.generateText`) that repeats its model and usage: only the inner one counts.
  const vercel = map[VERCEL_OPERATION];
  if (vercel !== undefined) return VERCEL_MODEL_CALL.test(vercel);
  const langfuseType = map[LANGFUSE_TYPE];
  if (langfuseType !== undefined) return LANGFUSE_MODEL_CALLS.has(langfuseType);
  const openInference = map[OPENINFERENCE_KIND];
  if (openInference !== undefined) return openInference === 'LLM' || openInference === 'EMBEDDING';
  const operation = first(map, NAMES.operation);
  if (operation !== undefined) return !NOT_MODEL_CALL_OPERATIONS.has(operation);
  // The Anthropic SDK's own tracer gives every endpoint's span (`anthropic.messages.count_tokens`,
  // `anthropic.models.list`, `anthropic.messages.batches.create`) the provider, and a model to
  // count tokens for; its model calls, `anthropic.messages.create`, name their operation (above).
  // A span of that name with usage is still a call.
  if (name.startsWith('anthropic.') && first(map, NAMES.inputTokens) === undefined) return false;
  return (
    first(map, NAMES.requestModel) !== undefined ||
    first(map, NAMES.provider) !== undefined ||
    first(map, NAMES.inputTokens) !== undefined
  );
}

function kindOf(span: SpanFields, map: Record<string, string>): SpanRow['kind'] {
  if (span.name.startsWith('routewatch.task')) return 'task';
  if (span.name.startsWith('routewatch.attempt')) return 'attempt';
  return isModelCall(span.name, map) ? 'llm' : 'other';
}

/** A field of a JSON object held in an attribute; undefined when it is not there. */
function jsonField(text: string | undefined, field: string): unknown {
  if (text === undefined || text === '' || text[0] !== '{') return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object'
      ? (value as Record<string, unknown>)[field]
      : undefined;
  } catch {
    return undefined;
  }
}

function jsonObject(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined || text === '' || text[0] !== '{') return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The requested model: a name attribute, or OpenInference's invocation parameters. */
function requestModelOf(map: Record<string, string>): string {
  const named = first(map, NAMES.requestModel);
  if (named !== undefined) return named;
  // OpenInference overwrites `llm.model_name` with the served model; the request keeps the asked one.
  const asked = jsonField(map[OPENINFERENCE_PARAMETERS], 'model');
  return typeof asked === 'string' ? asked : '';
}

/** The operation, from the GenAI attributes or else from the convention's own span kinds. */
function operationOf(map: Record<string, string>): string {
  const named = first(map, NAMES.operation);
  if (named !== undefined) return named;
  const vercel = map[VERCEL_OPERATION];
  if (vercel !== undefined && VERCEL_MODEL_CALL.test(vercel))
    return vercel.endsWith('.doEmbed') ? 'embeddings' : 'chat';
  const openInference = map[OPENINFERENCE_KIND];
  if (openInference === 'LLM') return 'chat';
  if (openInference === 'EMBEDDING') return 'embeddings';
  const langfuseType = map[LANGFUSE_TYPE];
  if (langfuseType === 'generation') return 'chat';
  if (langfuseType === 'embedding') return 'embeddings';
  return '';
}

const firstCount = (details: Record<string, unknown>, keys: readonly string[]): number => {
  for (const key of keys) {
    const value = details[key];
    if (typeof value === 'number' || typeof value === 'string') return count(String(value));
  }
  return 0;
};

/**
 * Usage from Langfuse's `usage_details` JSON. Its own keys (`input`, `output`, …) are disjoint
 * buckets, each priced apart: the input there excludes cached tokens, which are added back to
 * follow the GenAI convention. OpenAI-style keys (`prompt_tokens`) already include them.
 */
function langfuseUsage(map: Record<string, string>): TokenUsage | undefined {
  const details = jsonObject(map[LANGFUSE_USAGE]);
  if (details === undefined) return undefined;
  const cacheReadTokens = firstCount(details, [
    'input_cached_tokens',
    'cache_read_input_tokens',
    'input_cache_read',
  ]);
  const cacheCreationTokens = firstCount(details, [
    'cache_creation_input_tokens',
    'input_cache_creation',
    'input_cache_write',
  ]);
  const disjointInput = firstCount(details, ['input']);
  const inputTokens =
    disjointInput > 0 || details['input'] !== undefined
      ? disjointInput + cacheReadTokens + cacheCreationTokens
      : firstCount(details, ['prompt_tokens', 'input_tokens', 'promptTokens']);
  return {
    inputTokens,
    outputTokens: firstCount(details, [
      'output',
      'completion_tokens',
      'output_tokens',
      'completionTokens',
    ]),
    cacheReadTokens,
    cacheCreationTokens,
  };
}

/** Langfuse's `cost_details` JSON: its `total`, else the sum of its parts. */
function langfuseCost(map: Record<string, string>): number | undefined {
  const details = jsonObject(map[LANGFUSE_COST]);
  if (details === undefined) return undefined;
  if (details['total'] !== undefined) return usdAmount(String(details['total']));
  let sum = 0;
  let any = false;
  for (const value of Object.values(details)) {
    const amount = usdAmount(String(value));
    if (amount !== undefined) {
      sum += amount;
      any = true;
    }
  }
  return any ? usdAmount(String(sum)) : undefined;
}

function usageOf(map: Record<string, string>): TokenUsage {
  if (first(map, NAMES.inputTokens) === undefined && first(map, NAMES.outputTokens) === undefined) {
    const langfuse = langfuseUsage(map);
    if (langfuse !== undefined) return langfuse;
  }
  return inclusiveUsage({
    inputTokens: count(first(map, NAMES.inputTokens)),
    outputTokens: count(first(map, NAMES.outputTokens)),
    cacheReadTokens: count(first(map, NAMES.cacheRead)),
    cacheCreationTokens: count(first(map, NAMES.cacheCreation)),
  });
}

interface CallCost {
  costUsd: number;
  source: CostSource;
  note: CostNote;
  priceRef: string;
}

const NO_COST: CallCost = { costUsd: 0, source: 'none', note: '', priceRef: '' };

/**
 * `error.type`s of a call its caller gave up on rather than one the provider refused: the SDKs'
 * abort and timeout errors (`APIUserAbortError`, `APIConnectionTimeoutError`, `AbortError`,
 * `TimeoutError`), a stream the caller aborted (`StreamAbortedError`), a cancellation. A route's
 * `timeoutMs` ends its call this way while the provider may still be generating the reply.
 */
const CLIENT_GAVE_UP = /abort|time[_ -]?out|timed[_ -]?out|cancel/i;

/**
 * The cost of an LLM call. A positive cost the span carries is final: the application (or its
 * tool) knew it. A reported cost of 0 is no evidence: tools send 0 when they cannot price a model
 * (OpenLIT) or saw no usage, so it is set aside and the call is priced from its tokens like any
 * other. Without a price, or without token counts, the cost is unknown: `unpriced`, never $0 priced.
 */
function costOf(
  map: Record<string, string>,
  provider: string,
  models: readonly string[],
  usage: TokenUsage,
  failed: boolean,
  atMs: number,
  prices: PriceTable,
): CallCost {
  const reported = usdAmount(first(map, NAMES.cost)) ?? langfuseCost(map);
  if (reported !== undefined && reported > 0)
    return { costUsd: reported, source: 'span', note: '', priceRef: '' };
  if (usage.inputTokens + usage.outputTokens === 0) {
    if (!failed) return { ...NO_COST, source: 'unpriced', note: 'no_usage' };
    // A refusal costs nothing; a call given up on may have been served: its cost is unknown.
    return CLIENT_GAVE_UP.test(map['error.type'] ?? '')
      ? { ...NO_COST, source: 'unpriced', note: 'aborted_no_usage' }
      : { ...NO_COST, note: 'failed_no_usage' };
  }
  const implausible: CallCost = { ...NO_COST, source: 'unpriced', note: 'implausible_usage' };
  if (usage.inputTokens + usage.outputTokens > MAX_TOKENS_PER_CALL) return implausible;
  // The served model first: after a provider-side fallback it is the one billed.
  const quote = prices.price(provider, models, usage, atMs);
  if (quote !== undefined) {
    if (quote.costUsd > MAX_COST_USD) return implausible;
    return {
      costUsd: quote.costUsd,
      source: 'price_table',
      note: reported === 0 ? 'reported_zero_ignored' : '',
      priceRef: quote.ref,
    };
  }
  return {
    ...NO_COST,
    source: 'unpriced',
    note: models.some((m) => m !== '') ? 'unknown_model' : 'no_model',
  };
}

/**
 * What normalizing reads of a span besides its attributes: decoded and checked, whatever the
 * encoding it came in.
 */
export interface SpanFields {
  traceId: string;
  spanId: string;
  /** '' when the span has no parent. */
  parentSpanId: string;
  name: string;
  kind: number;
  startNs: bigint;
  endNs: bigint;
  statusCode: number;
  statusMessage: string;
  /**
   * The name, the status message and the scope name are known to hold no lone surrogate (decoded
   * from UTF-8 bytes), so they need no wellFormed pass.
   */
  wellFormed?: boolean;
}

export function spanFields(span: OtlpSpan): SpanFields {
  return {
    traceId: span.traceId,
    spanId: span.spanId,
    parentSpanId: span.parentSpanId,
    name: span.name,
    kind: span.kind,
    startNs: BigInt(span.startTimeUnixNano),
    endNs: BigInt(span.endTimeUnixNano),
    statusCode: span.status.code,
    statusMessage: span.status.message,
  };
}

export function normalizeSpan(
  span: OtlpSpan,
  map: Record<string, string>,
  resource: Record<string, string>,
  scopeName: string,
  prices: PriceTable,
  mapping?: Mapping,
): SpanRow {
  return normalizeFields(spanFields(span), map, resource, scopeName, prices, mapping);
}

/** A `spans` row of one span: its fields and its attributes as a map of flattened values. */
export function normalizeFields(
  span: SpanFields,
  map: Record<string, string>,
  resource: Record<string, string>,
  scopeName: string,
  prices: PriceTable,
  mapping?: Mapping,
): SpanRow {
  const mapped: MappedSpan | undefined = mapping?.active
    ? { name: span.name, parentSpanId: span.parentSpanId, attributes: map, resource }
    : undefined;
  let kind = kindOf(span, map);
  // A span the mapping names as a task's own (a Langfuse trace's root, say); never a model call.
  if (kind === 'other' && mapped && mapping!.isTaskSpan(mapped)) kind = 'task';
  const derived: Partial<Record<MappedField, string>> = mapped ? mapping!.derive(mapped) : {};
  const requestModel = requestModelOf(map);
  const responseModel = first(map, NAMES.responseModel) ?? '';
  const provider = first(map, NAMES.provider) ?? '';
  const usage = usageOf(map);

  // Clamped first, so the stored duration is the difference of the stored times (and fits UInt64).
  const start = clampNs(span.startNs);
  const end = clampNs(span.endNs);
  const statusCode = STATUS_CODES[span.statusCode] ?? 'unset';
  const cost =
    kind === 'llm'
      ? costOf(
          map,
          provider,
          [responseModel, requestModel],
          usage,
          statusCode === 'error',
          Number(start / 1_000_000n),
          prices,
        )
      : NO_COST;

  // The span's own routing attributes win; the mapping fills what they leave empty.
  const route = boundName(map['routewatch.route'] || derived.route || '');
  const attemptText =
    map['routewatch.attempt'] ??
    derived.attempt ??
    // A route derived from other attributes is the routing decision: the primary attempt.
    (derived.route !== undefined && !map['routewatch.route'] ? '1' : undefined);
  const outcome = map['routewatch.outcome'] || derived.outcome || '';
  const confidence = finiteNumber(map['routewatch.confidence']);
  const attempt = count(attemptText);

  // An end before the start (or missing: 0 on the wire) is taken as the start.
  const endNs = end > start ? end : start;
  return {
    timestamp: clickHouseTime(start),
    end_time: clickHouseTime(endNs),
    duration_ns: String(endNs - start),
    trace_id: span.traceId,
    span_id: span.spanId,
    parent_span_id: span.parentSpanId,
    name: span.wellFormed ? span.name : wellFormed(span.name),
    span_kind: SPAN_KINDS[span.kind] ?? 'unspecified',
    kind,
    service_name: boundName(resource['service.name'] ?? ''),
    scope_name: span.wellFormed ? scopeName : wellFormed(scopeName),
    task_id: boundName(
      canonicalTaskId(map['routewatch.task.id'] || derived.task_id || span.traceId),
    ),
    cohort: boundName(map['routewatch.cohort'] || derived.cohort || ''),
    route,
    attempt: Math.min(attempt, 65_535),
    fallback_reason: boundName(map['routewatch.fallback.reason'] ?? ''),
    policy_version: boundName(map['routewatch.policy.version'] || derived.policy_version || ''),
    validation: map['routewatch.validation'] ?? '',
    confidence: confidence ?? null,
    provider,
    operation: kind === 'llm' ? operationOf(map) : (first(map, NAMES.operation) ?? ''),
    request_model: boundName(requestModel),
    response_model: boundName(responseModel),
    input_tokens: usage.inputTokens,
    output_tokens: usage.outputTokens,
    cache_read_tokens: usage.cacheReadTokens,
    cache_creation_tokens: usage.cacheCreationTokens,
    reasoning_tokens: count(first(map, NAMES.reasoning)),
    cost_usd: cost.costUsd,
    cost_source: cost.source,
    cost_note: cost.note,
    price_ref: cost.priceRef,
    status_code: statusCode,
    status_message: span.wellFormed ? span.statusMessage : wellFormed(span.statusMessage),
    error_type: boundName(map['error.type'] ?? ''),
    outcome: OUTCOMES.has(outcome) ? outcome : outcome === '' ? '' : 'unknown',
    outcome_reason: boundName(map['routewatch.outcome.reason'] || derived.outcome_reason || ''),
    reask: map['routewatch.reask'] === 'true' ? 1 : 0,
    cleanup_cost_usd: usdAmount(map['routewatch.cleanup.cost_usd']) ?? 0,
    http_attempts: kind === 'llm' ? httpAttemptsOf(map) : 0,
    // UInt32 milliseconds: 49 days is more than any call waits.
    http_retry_wait_ms:
      kind === 'llm' ? Math.min(count(map['routewatch.http.retry_wait_ms']), 4_294_967_295) : 0,
    attributes: untyped(map),
    resource,
  };
}

/** LLM calls of a request by cost source: what /metrics counts. */
export type CostSourceCounts = Record<(typeof COST_SOURCES)[number], number>;

/** The cost sources counted per LLM call (a call with source `none` has nothing to price). */
export const COST_SOURCES = ['span', 'price_table', 'unpriced'] as const;

export const noCostSourceCounts = (): CostSourceCounts => ({
  span: 0,
  price_table: 0,
  unpriced: 0,
});

/**
 * Turns a decoded request into `spans` rows. Spans without routing or GenAI attributes are
 * skipped (counted, not stored), unless the mapping names them as task spans; spans starting
 * outside `window` are refused (counted, with the reason of the first).
 */
export function normalizeRequest(
  request: ExportTraceRequest,
  prices: PriceTable,
  window: TimeWindow = ANY_TIME,
  mapping?: Mapping,
  part: SpanPart = WHOLE_REQUEST,
): NormalizeResult {
  const out = new RequestRows(prices, window, mapping);
  const mapsTasks = mapping?.active === true;
  let index = 0;
  for (const resourceSpans of request.resourceSpans) {
    const resource = toMap(resourceSpans.resource?.attributes ?? []);
    for (const scopeSpans of resourceSpans.scopeSpans) {
      const scopeName = scopeSpans.scope?.name ?? '';
      for (const span of scopeSpans.spans) {
        if (index++ % part.count !== part.index) continue;
        if (span.invalid !== undefined) {
          out.refuse(request.firstInvalid ?? span.invalid);
          continue;
        }
        const map = toMap(span.attributes);
        if (
          !isRelevant(map) &&
          !(
            mapsTasks &&
            mapping!.isTaskSpan({
              name: span.name,
              parentSpanId: span.parentSpanId,
              attributes: map,
              resource,
            })
          )
        ) {
          out.skipped++;
          continue;
        }
        out.add(spanFields(span), map, resource, scopeName);
      }
    }
  }
  return out.result();
}

/**
 * Which of a request's spans one pass over it keeps: those whose position in the request (0-based,
 * in the order they are encoded) leaves `index` when divided by `count`. A large request is split
 * so across idle ingest threads (ingest-pool.ts); each pass still decodes and checks the whole
 * request, so that a split request fails, or not, exactly as it would whole.
 */
export interface SpanPart {
  index: number;
  count: number;
}

export const WHOLE_REQUEST: Readonly<SpanPart> = Object.freeze({ index: 0, count: 1 });

/**
 * The rows of one request as its spans are found relevant, and the counts that go with them; what
 * every decoder feeds (the decoded request in normalizeRequest, or the protobuf body straight in
 * otlp-proto-rows.ts).
 */
export class RequestRows {
  readonly rows: SpanRow[] = [];
  readonly costSources = noCostSourceCounts();
  /** Spans not stored for lack of routing or GenAI attributes. */
  skipped = 0;
  outOfWindow = 0;
  outOfWindowMessage = '';
  invalid = 0;
  invalidMessage = '';
  readonly #prices: PriceTable;
  readonly #window: TimeWindow;
  readonly #mapping: Mapping | undefined;

  constructor(prices: PriceTable, window: TimeWindow, mapping: Mapping | undefined) {
    this.#prices = prices;
    this.#window = window;
    this.#mapping = mapping;
  }

  /** Stores a span to be stored, unless it starts outside the accepted window. */
  add(
    span: SpanFields,
    map: Record<string, string>,
    resource: Record<string, string>,
    scopeName: string,
  ): void {
    const start = span.startNs;
    if (start < this.#window.fromNs || start > this.#window.toNs) {
      if (this.outOfWindow++ === 0)
        this.outOfWindowMessage = outsideWindowMessage(start, this.#window);
      return;
    }
    // An end later than a start could be is taken as that bound, so one broken clock cannot put a
    // duration of centuries into a cohort's latency.
    const fields = span.endNs > this.#window.toNs ? { ...span, endNs: this.#window.toNs } : span;
    const row = normalizeFields(fields, map, resource, scopeName, this.#prices, this.#mapping);
    if (row.kind === 'llm' && row.cost_source !== 'none') this.costSources[row.cost_source]++;
    this.rows.push(row);
  }

  /** Counts a span refused for what it is (an invalid id), with the first one's reason. */
  refuse(reason: string): void {
    if (this.invalid++ === 0) this.invalidMessage = reason;
  }

  result(): NormalizeResult {
    return {
      rows: this.rows,
      skipped: this.skipped,
      outOfWindow: this.outOfWindow,
      outOfWindowMessage: this.outOfWindowMessage,
      invalid: this.invalid,
      invalidMessage: this.invalidMessage,
      costSources: this.costSources,
    };
  }
}

const isoOf = (ns: bigint) => {
  const ms = Number(ns / 1_000_000n);
  return Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : `${ns} ns`;
};

function outsideWindowMessage(start: bigint, window: TimeWindow): string {
  return start < window.fromNs
    ? `a span starts at ${isoOf(start)}, before ${isoOf(window.fromNs)}: older than the retention ` +
        '(ROUTEWATCH_RETENTION_DAYS), so it would never be reported'
    : `a span starts at ${isoOf(start)}, after ${isoOf(window.toNs)}: further ahead than the ` +
        "allowed clock skew (ROUTEWATCH_MAX_CLOCK_SKEW); check the sender's clock";
}

export function countSpans(request: ExportTraceRequest): number {
  let n = 0;
  for (const rs of request.resourceSpans) for (const ss of rs.scopeSpans) n += ss.spans.length;
  return n;
}
