import type { InsertOptions } from '../storage/store.js';
import { boundResource } from './normalize.js';
import type { SpanRow } from './normalize.js';
import { encodeRecord, recordOfFrame } from './wal-record.js';

/**
 * `spans` rows as the lines the writer inserts: JSONCompactEachRow, one JSON array per row with
 * the values in the order of SPAN_COLUMNS. The engine parses positional rows with about a fifth
 * less CPU than JSONEachRow objects (bench/collector/insert-cost.ts), and they are a third smaller.
 * Serialized by hand rather than by JSON.stringify of the row: the two attribute maps are
 * prototype-less objects, which JSON.stringify walks on its slow path, and the resource map is the
 * same for every span of a resource, so its JSON is made once.
 */

/** The typed columns of layout spans.1, before the two attribute maps that end every layout. */
const TYPED_COLUMNS_1 = [
  'timestamp',
  'end_time',
  'duration_ns',
  'trace_id',
  'span_id',
  'parent_span_id',
  'name',
  'span_kind',
  'kind',
  'service_name',
  'scope_name',
  'task_id',
  'cohort',
  'route',
  'attempt',
  'fallback_reason',
  'policy_version',
  'validation',
  'confidence',
  'provider',
  'operation',
  'request_model',
  'response_model',
  'input_tokens',
  'output_tokens',
  'cache_read_tokens',
  'cache_creation_tokens',
  'reasoning_tokens',
  'cost_usd',
  'cost_source',
  'cost_note',
  'price_ref',
  'status_code',
  'status_message',
  'error_type',
  'outcome',
  'outcome_reason',
  'reask',
  'cleanup_cost_usd',
] as const satisfies readonly (keyof SpanRow)[];

/** The columns of layout spans.1, before the HTTP request counts (migration 0031). */
const SPAN_COLUMNS_1 = [...TYPED_COLUMNS_1, 'attributes', 'resource'] as const;

/** The columns of a line, in order: SpanRow's fields (layout spans.2). */
export const SPAN_COLUMNS = [
  ...TYPED_COLUMNS_1,
  'http_attempts',
  'http_retry_wait_ms',
  'attributes',
  'resource',
] as const satisfies readonly (keyof SpanRow)[];

// Every field of SpanRow has its column: a field added to the row without one fails to compile.
type Unwritten = Exclude<keyof SpanRow, (typeof SPAN_COLUMNS)[number]>;
const _everyFieldWritten: [Unwritten] extends [never] ? true : Unwritten = true;
void _everyFieldWritten;

/**
 * The column layouts span lines have been written in, by the format name the write-ahead log
 * records with each record. Lines are positional, so a record written before an upgrade that
 * added a column must still be inserted with the columns it was written with: a layout, once
 * released, never changes; a new column makes a new layout (the columns it lacks take their
 * defaults on insert).
 */
export const SPAN_LINE_LAYOUTS = Object.freeze({
  'JSONCompactEachRow/spans.1': SPAN_COLUMNS_1,
  'JSONCompactEachRow/spans.2': SPAN_COLUMNS,
} as const);

export type SpanLineFormat = keyof typeof SPAN_LINE_LAYOUTS;

/** The layout `spanLines` writes. */
export const SPAN_LINE_FORMAT: SpanLineFormat = 'JSONCompactEachRow/spans.2';

/** How lines of a layout are inserted: their format and columns. */
export function spanInsert(format: SpanLineFormat): Readonly<InsertOptions> {
  return { format: 'JSONCompactEachRow', columns: SPAN_LINE_LAYOUTS[format] };
}

/** How the writer inserts the lines `spanLines` makes. */
export const SPAN_INSERT: Readonly<InsertOptions> = Object.freeze(spanInsert(SPAN_LINE_FORMAT));

/** `"key":` for attribute keys seen recently: the same few keys come back span after span. */
const keyJson = new Map<string, string>();
const KEY_CACHE_SIZE = 4096;

/** A string map as a JSON object, keys in the order JSON.stringify would give them. */
export function mapJson(map: Readonly<Record<string, string>>): string {
  let json = '{';
  for (const key in map) {
    let prefix = keyJson.get(key);
    if (prefix === undefined) {
      if (keyJson.size >= KEY_CACHE_SIZE) keyJson.clear();
      prefix = JSON.stringify(key) + ':';
      keyJson.set(key, prefix);
    }
    if (json.length > 1) json += ',';
    json += prefix + JSON.stringify(map[key]);
  }
  return json + '}';
}

/** One row's line. `resourceJson` is mapJson(row.resource), made once per resource by the caller. */
export function spanLine(row: SpanRow, resourceJson: string): string {
  // Every value but the two maps, as one JSON array; the maps are appended to it.
  const scalars = JSON.stringify([
    row.timestamp,
    row.end_time,
    row.duration_ns,
    row.trace_id,
    row.span_id,
    row.parent_span_id,
    row.name,
    row.span_kind,
    row.kind,
    row.service_name,
    row.scope_name,
    row.task_id,
    row.cohort,
    row.route,
    row.attempt,
    row.fallback_reason,
    row.policy_version,
    row.validation,
    row.confidence,
    row.provider,
    row.operation,
    row.request_model,
    row.response_model,
    row.input_tokens,
    row.output_tokens,
    row.cache_read_tokens,
    row.cache_creation_tokens,
    row.reasoning_tokens,
    row.cost_usd,
    row.cost_source,
    row.cost_note,
    row.price_ref,
    row.status_code,
    row.status_message,
    row.error_type,
    row.outcome,
    row.outcome_reason,
    row.reask,
    row.cleanup_cost_usd,
    row.http_attempts,
    row.http_retry_wait_ms,
  ]);
  return `${scalars.slice(0, -1)},${mapJson(row.attributes)},${resourceJson}]`;
}

/** The rows' lines, and the span key (trace id + span id) of each, for de-duplication. */
export function spanLines(rows: readonly SpanRow[]): { lines: string[]; keys: string[] } {
  const lines = new Array<string>(rows.length);
  const keys = new Array<string>(rows.length);
  let resource: SpanRow['resource'] | undefined;
  let resourceJson = '';
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    if (row.resource !== resource) {
      resource = row.resource;
      resourceJson = mapJson(boundResource(resource));
    }
    lines[i] = spanLine(row, resourceJson);
    keys[i] = row.trace_id + row.span_id;
  }
  return { lines, keys };
}

/** Rows in one log record at most: a request with more is split (the drainer's batch size). */
export const RECORD_ROWS = 10_000;

/**
 * Rows serialized for the store: whole write-ahead log records (wal-record.ts), each holding its
 * rows' lines and span keys. Made on the ingest thread, so that the main thread appends them as
 * they are: no string per row crosses to it, and none lands on its heap.
 */
export interface PreparedRows {
  /** Rows in all the records. */
  rows: number;
  /**
   * Framed records of at most RECORD_ROWS rows, each in memory of its own (never a view into a
   * shared pool), so that a thread can transfer it.
   */
  records: Uint8Array[];
}

/** The rows as log records, in SPAN_LINE_FORMAT, written at `writtenAtMs`. */
export function prepareRows(rows: readonly SpanRow[], writtenAtMs = Date.now()): PreparedRows {
  const { lines, keys } = spanLines(rows);
  const records: Uint8Array[] = [];
  for (let from = 0; from < lines.length; from += RECORD_ROWS) {
    const to = Math.min(lines.length, from + RECORD_ROWS);
    records.push(
      encodeRecord({
        format: SPAN_LINE_FORMAT,
        writtenAtMs,
        keys: from === 0 && to === lines.length ? keys : keys.slice(from, to),
        lines: from === 0 && to === lines.length ? lines : lines.slice(from, to),
      }),
    );
  }
  return { rows: lines.length, records };
}

/** The lines of prepared rows, as strings without their newlines: for tools and tests. */
export function preparedLines(prepared: PreparedRows): string[] {
  const lines: string[] = [];
  for (const bytes of prepared.records) {
    const record = recordOfFrame(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    let start = 0;
    for (const end of record.rowEnds) {
      lines.push(record.body.toString('utf8', start, end - 1));
      start = end;
    }
  }
  return lines;
}
