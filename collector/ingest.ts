import { decodeTraceRequestJson } from './otlp-json.js';
import { decodeTraceRequestProto } from './otlp-proto.js';
import { compileMapping } from './mapping.js';
import type { MappingRules } from './mapping.js';
import {
  COST_SOURCES,
  RequestRows,
  WHOLE_REQUEST,
  acceptedWindow,
  countSpans,
  noCostSourceCounts,
  normalizeRequest,
} from './normalize.js';
import type { CostSourceCounts, NormalizeResult, SpanPart } from './normalize.js';
import { decodeProtoRows } from './otlp-proto-rows.js';
import { PriceTable } from './pricing.js';
import type { PriceSettings } from './pricing.js';
import type { RequestLimits } from './request-limits.js';
import { prepareRows } from './span-lines.js';
import type { PreparedRows } from './span-lines.js';

/**
 * The OTLP ingest pipeline as one pure function: a request body in, rows for the store out.
 * Decode (JSON or protobuf, within the request limits) → check → normalize and price → refuse
 * spans outside the accepted time window → serialize. It runs in the ingest worker threads, or
 * inline (ROUTEWATCH_INGEST_WORKERS=0).
 *
 * Protobuf bodies take the fast path first (otlp-proto-rows.ts: straight into rows, spans that are
 * not stored skipped before their attributes are decoded); a body it does not take goes the full
 * way (decode into the OTLP/JSON object shape, check, normalize), which gives the same rows, or the
 * error to answer.
 */

export type OtlpEncoding = 'json' | 'protobuf';

/** What the pipeline needs besides the body; plain data, so it crosses into a worker thread. */
export interface IngestSettings {
  limits: RequestLimits;
  /** The price file's entries and whether to use the bundled catalogue (ROUTEWATCH_PRICES). */
  prices: PriceSettings;
  /** Routing fields derived from other tools' attributes (ROUTEWATCH_MAPPING). */
  mapping: MappingRules;
  /** Spans starting longer ago than this are refused (retention). */
  maxAgeMs: number;
  /** Spans starting further ahead than this are refused (clock skew). */
  maxAheadMs: number;
}

export interface IngestResult extends PreparedRows {
  /** Spans in the request. */
  received: number;
  /** Spans without routing or GenAI attributes: not stored, not an error. */
  skipped: number;
  /** Spans refused for their start time, and why the first was. */
  outOfWindow: number;
  outOfWindowMessage: string;
  /** Spans refused alone for an invalid trace or span id, and why the first was. */
  invalid: number;
  invalidMessage: string;
  /** LLM calls stored, by where their cost comes from (span, price_table, unpriced). */
  costSources: CostSourceCounts;
}

/**
 * Prepares the pipeline once per thread: the price table and the mapping are compiled once, not
 * per request.
 */
export function createIngest(settings: IngestSettings, options: { fastPath?: boolean } = {}) {
  const prices = PriceTable.from(settings.prices);
  const mapping = compileMapping(settings.mapping);
  const fastPath = options.fastPath ?? true;
  return (
    body: Uint8Array,
    encoding: OtlpEncoding,
    nowMs: number,
    part: SpanPart = WHOLE_REQUEST,
  ): IngestResult => {
    const window = acceptedWindow(nowMs, settings.maxAgeMs, settings.maxAheadMs);
    if (encoding === 'protobuf' && fastPath) {
      const out = new RequestRows(prices, window, mapping);
      const received = decodeProtoRows(body, settings.limits, out, mapping, part);
      if (received !== undefined) return ingestResult(out.result(), received, nowMs);
    }
    const request =
      encoding === 'json'
        ? decodeTraceRequestJson(body, settings.limits)
        : decodeTraceRequestProto(body, settings.limits);
    return ingestResult(
      normalizeRequest(request, prices, window, mapping, part),
      countSpans(request),
      nowMs,
    );
  };
}

/**
 * One request's result from the results of its parts (each pass's `received` is the whole
 * request's): what a single pass over it would have given, its rows in other records.
 */
export function mergeParts(parts: readonly IngestResult[]): IngestResult {
  const merged: IngestResult = {
    rows: 0,
    records: [],
    received: parts[0]?.received ?? 0,
    skipped: 0,
    outOfWindow: 0,
    outOfWindowMessage: '',
    invalid: 0,
    invalidMessage: '',
    costSources: noCostSourceCounts(),
  };
  for (const part of parts) {
    merged.rows += part.rows;
    merged.records.push(...part.records);
    merged.skipped += part.skipped;
    merged.outOfWindow += part.outOfWindow;
    if (merged.outOfWindowMessage === '') merged.outOfWindowMessage = part.outOfWindowMessage;
    merged.invalid += part.invalid;
    if (merged.invalidMessage === '') merged.invalidMessage = part.invalidMessage;
    for (const source of COST_SOURCES) merged.costSources[source] += part.costSources[source];
  }
  return merged;
}

/** The result, its rows as log records written at `nowMs` (when the request came). */
function ingestResult(normalized: NormalizeResult, received: number, nowMs: number): IngestResult {
  const { rows, skipped, outOfWindow, outOfWindowMessage, invalid, invalidMessage, costSources } =
    normalized;
  return {
    ...prepareRows(rows, nowMs),
    received,
    skipped,
    outOfWindow,
    outOfWindowMessage,
    invalid,
    invalidMessage,
    costSources,
  };
}
