import type { AnyValue, ExportTraceRequest, KeyValue, OtlpSpan } from './otlp-json.js';
import type { PriceTable } from './pricing.js';

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
  cost_source: 'span' | 'price_table' | 'unpriced' | 'none';
  status_code: 'unset' | 'ok' | 'error';
  status_message: string;
  error_type: string;
  outcome: string;
  outcome_reason: string;
  reask: number;
  cleanup_cost_usd: number;
  attributes: Record<string, string>;
  resource: Record<string, string>;
}

export interface NormalizeResult {
  rows: SpanRow[];
  /** Spans with neither routewatch.* nor GenAI attributes: counted, not stored. */
  skipped: number;
  /** Spans refused for a start time outside the accepted window (see TimeWindow). */
  outOfWindow: number;
  /** Why the first of them was refused; empty when none was. */
  outOfWindowMessage: string;
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

const SPAN_KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'] as const;
const STATUS_CODES = ['unset', 'ok', 'error'] as const;
const OUTCOMES = new Set(['success', 'failure', 'escalated', 'abandoned', 'unknown']);

/** The first attribute present among names: current GenAI name first, then older ones in the wild. */
const NAMES = {
  provider: ['gen_ai.provider.name', 'gen_ai.system', 'llm.provider', 'llm.system'],
  operation: ['gen_ai.operation.name', 'llm.request.type'],
  requestModel: ['gen_ai.request.model', 'llm.request.model_name', 'ai.model.id'],
  responseModel: ['gen_ai.response.model', 'llm.response.model_name', 'llm.model_name'],
  inputTokens: [
    'gen_ai.usage.input_tokens',
    'gen_ai.usage.prompt_tokens',
    'llm.token_count.prompt',
  ],
  outputTokens: [
    'gen_ai.usage.output_tokens',
    'gen_ai.usage.completion_tokens',
    'llm.token_count.completion',
  ],
  cacheRead: ['gen_ai.usage.cache_read.input_tokens', 'llm.token_count.prompt_details.cache_read'],
  cacheCreation: [
    'gen_ai.usage.cache_creation.input_tokens',
    'llm.token_count.prompt_details.cache_write',
  ],
  reasoning: [
    'gen_ai.usage.reasoning.output_tokens',
    'gen_ai.usage.reasoning_tokens',
    'llm.token_count.completion_details.reasoning',
  ],
  cost: ['gen_ai.usage.cost', 'llm.cost.total'],
} as const;

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
export function clickHouseTime(ns: bigint): string {
  const clamped = clampNs(ns);
  const seconds = clamped / 1_000_000_000n;
  const fraction = String(clamped % 1_000_000_000n).padStart(9, '0');
  return `${new Date(Number(seconds) * 1000).toISOString().slice(0, 19).replace('T', ' ')}.${fraction}`;
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
  'error.type',
  ...Object.values(NAMES).flat(),
]);

/** The span's attributes without those kept in typed columns. */
function untyped(map: Record<string, string>): Record<string, string> {
  const rest = emptyMap();
  for (const key in map) if (!TYPED.has(key)) rest[key] = map[key]!;
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

/** A cost in USD: a number from 0 to MAX_COST_USD, else absent. */
function usdAmount(value: string | undefined): number | undefined {
  const n = finiteNumber(value);
  return n !== undefined && n >= 0 && n <= MAX_COST_USD ? n : undefined;
}

function isRelevant(map: Record<string, string>): boolean {
  for (const key in map) {
    if (key.startsWith('routewatch.') || key.startsWith('gen_ai.') || key.startsWith('llm.'))
      return true;
  }
  return false;
}

function kindOf(span: OtlpSpan, map: Record<string, string>): SpanRow['kind'] {
  if (span.name.startsWith('routewatch.task')) return 'task';
  if (span.name.startsWith('routewatch.attempt')) return 'attempt';
  if (
    first(map, NAMES.operation) !== undefined ||
    first(map, NAMES.requestModel) !== undefined ||
    first(map, NAMES.provider) !== undefined ||
    first(map, NAMES.inputTokens) !== undefined
  ) {
    return 'llm';
  }
  return 'other';
}

export function normalizeSpan(
  span: OtlpSpan,
  map: Record<string, string>,
  resource: Record<string, string>,
  scopeName: string,
  prices: PriceTable,
): SpanRow {
  const kind = kindOf(span, map);
  const requestModel = first(map, NAMES.requestModel) ?? '';
  const responseModel = first(map, NAMES.responseModel) ?? '';
  const usage = {
    inputTokens: count(first(map, NAMES.inputTokens)),
    outputTokens: count(first(map, NAMES.outputTokens)),
    cacheReadTokens: count(first(map, NAMES.cacheRead)),
    cacheCreationTokens: count(first(map, NAMES.cacheCreation)),
  };

  let costUsd = 0;
  let costSource: SpanRow['cost_source'] = 'none';
  const reportedCost = usdAmount(first(map, NAMES.cost));
  if (kind === 'llm') {
    if (reportedCost !== undefined) {
      // A cost the application knows is final; the price table never overrides it.
      costUsd = reportedCost;
      costSource = 'span';
    } else if (usage.inputTokens + usage.outputTokens > 0) {
      // The served model beats the requested one: after a provider-side fallback they differ.
      const price = prices.find(responseModel || requestModel) ?? prices.find(requestModel);
      if (price) {
        costUsd = prices.cost(price, usage);
        costSource = 'price_table';
      } else {
        costSource = 'unpriced';
      }
    }
  }

  // Clamped first, so the stored duration is the difference of the stored times (and fits UInt64).
  const start = clampNs(BigInt(span.startTimeUnixNano));
  const end = clampNs(BigInt(span.endTimeUnixNano));
  const outcome = map['routewatch.outcome'] ?? '';
  const confidence = finiteNumber(map['routewatch.confidence']);
  const attempt = count(map['routewatch.attempt']);

  // An end before the start (or missing: 0 on the wire) is taken as the start.
  const endNs = end > start ? end : start;
  return {
    timestamp: clickHouseTime(start),
    end_time: clickHouseTime(endNs),
    duration_ns: String(endNs - start),
    trace_id: span.traceId,
    span_id: span.spanId,
    parent_span_id: span.parentSpanId,
    name: wellFormed(span.name),
    span_kind: SPAN_KINDS[span.kind] ?? 'unspecified',
    kind,
    service_name: resource['service.name'] ?? '',
    scope_name: wellFormed(scopeName),
    task_id: canonicalTaskId(map['routewatch.task.id'] || span.traceId),
    cohort: map['routewatch.cohort'] ?? '',
    route: map['routewatch.route'] ?? '',
    attempt: Math.min(attempt, 65_535),
    fallback_reason: map['routewatch.fallback.reason'] ?? '',
    policy_version: map['routewatch.policy.version'] ?? '',
    validation: map['routewatch.validation'] ?? '',
    confidence: confidence ?? null,
    provider: first(map, NAMES.provider) ?? '',
    operation: first(map, NAMES.operation) ?? '',
    request_model: requestModel,
    response_model: responseModel,
    input_tokens: usage.inputTokens,
    output_tokens: usage.outputTokens,
    cache_read_tokens: usage.cacheReadTokens,
    cache_creation_tokens: usage.cacheCreationTokens,
    reasoning_tokens: count(first(map, NAMES.reasoning)),
    cost_usd: costUsd,
    cost_source: costSource,
    status_code: STATUS_CODES[span.status.code] ?? 'unset',
    status_message: wellFormed(span.status.message),
    error_type: map['error.type'] ?? '',
    outcome: OUTCOMES.has(outcome) ? outcome : outcome === '' ? '' : 'unknown',
    outcome_reason: map['routewatch.outcome.reason'] ?? '',
    reask: map['routewatch.reask'] === 'true' ? 1 : 0,
    cleanup_cost_usd: usdAmount(map['routewatch.cleanup.cost_usd']) ?? 0,
    attributes: untyped(map),
    resource,
  };
}

/**
 * Turns a decoded request into `spans` rows. Spans without routing or GenAI attributes are
 * skipped (counted, not stored); spans starting outside `window` are refused (counted, with the
 * reason of the first).
 */
export function normalizeRequest(
  request: ExportTraceRequest,
  prices: PriceTable,
  window: TimeWindow = ANY_TIME,
): NormalizeResult {
  const rows: SpanRow[] = [];
  let skipped = 0;
  let outOfWindow = 0;
  let outOfWindowMessage = '';
  for (const resourceSpans of request.resourceSpans) {
    const resource = toMap(resourceSpans.resource?.attributes ?? []);
    for (const scopeSpans of resourceSpans.scopeSpans) {
      const scopeName = scopeSpans.scope?.name ?? '';
      for (const span of scopeSpans.spans) {
        const map = toMap(span.attributes);
        if (!isRelevant(map)) {
          skipped++;
          continue;
        }
        const start = BigInt(span.startTimeUnixNano);
        if (start < window.fromNs || start > window.toNs) {
          if (outOfWindow++ === 0) outOfWindowMessage = outsideWindowMessage(start, window);
          continue;
        }
        rows.push(normalizeSpan(span, map, resource, scopeName, prices));
      }
    }
  }
  return { rows, skipped, outOfWindow, outOfWindowMessage };
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
