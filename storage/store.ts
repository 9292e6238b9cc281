import type { z } from 'zod';
import { StorageError } from './errors.js';

/** Query parameters bound server-side as `{name:Type}`: user input never becomes SQL text. */
export type QueryParams = Record<
  string,
  string | number | boolean | bigint | null | readonly string[]
>;

/** Row formats an insert body may be in: one JSON object, one JSON array, or tab-separated values per line. */
export const INSERT_FORMATS = ['JSONEachRow', 'JSONCompactEachRow', 'TSV'] as const;
export type InsertFormat = (typeof INSERT_FORMATS)[number];

export interface InsertOptions {
  /** Makes a retried insert of the same batch idempotent where the engine supports it. */
  deduplicationToken?: string;
  /**
   * The body's format (default JSONEachRow). JSONCompactEachRow rows are positional arrays: they
   * need `columns`, and cost the engine less to parse (no key per value).
   */
  format?: InsertFormat;
  /** The columns each row gives, in order; the others take their defaults. */
  columns?: readonly string[];
}

/**
 * The one way routewatch talks to ClickHouse. Two drivers implement it — embedded chDB and a
 * ClickHouse server over HTTP — and the same SQL runs on both.
 */
export interface Store {
  readonly driver: 'embedded' | 'server';
  /** A human-readable location (data directory or server URL without credentials). */
  readonly location: string;
  /** Runs a statement that returns no rows (DDL, INSERT … SELECT, OPTIMIZE). */
  exec(sql: string, params?: QueryParams): Promise<void>;
  /**
   * Inserts rows given as JSONEachRow bytes (one JSON object per line), or in the format and with
   * the columns `options` name.
   */
  insertJsonEachRow(table: string, body: Uint8Array, options?: InsertOptions): Promise<void>;
  /** Runs a query with bound parameters; every row is checked against `row`. */
  query<T>(sql: string, params: QueryParams, row: z.ZodType<T>): Promise<T[]>;
  /**
   * Runs a user's SQL (`routewatch sql`, `POST /api/v1/sql`) with the engine's own read-only
   * mode and limits (see `readOnlySettings`): a write, a setting change or a limit crossed is
   * refused by ClickHouse itself. What readonly lets through on the embedded engine (INTO
   * OUTFILE, `file()`) is refused before, on the engine's own parse of the query
   * (storage/read-only-sql.ts: StorageError `SQL_REFUSED`). Rejects with a StorageError whose
   * cause carries the ClickHouse error code (164 READONLY, 396 rows, 159 time, 241 memory).
   */
  queryReadOnly(sql: string, limits: ReadOnlyLimits): Promise<ReadOnlyResult>;
  /** Resolves when the store answers a query; rejects with a StorageError otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The engine's limits on one read-only query. */
export interface ReadOnlyLimits {
  /** Rows the result may hold (`max_result_rows`, overflow refused). */
  maxRows: number;
  /** Time the query may run (`max_execution_time`, which counts seconds). */
  maxExecutionMs: number;
  /** Memory the query may use (`max_memory_usage`). */
  maxMemoryBytes: number;
  /**
   * Bytes the answer may hold (`max_result_bytes`, which the engine checks only from a result's
   * second block on, so the drivers also refuse an answer's text past it before parsing it).
   */
  maxResultBytes: number;
}

export interface ReadOnlyColumn {
  name: string;
  /** The ClickHouse type, e.g. `UInt64`, `Nullable(Float64)`, `Array(String)`. */
  type: string;
}

/** A user query's answer, as the engine's JSONCompact output gives it. */
export interface ReadOnlyResult {
  columns: ReadOnlyColumn[];
  /** One array of values per row, in column order; 64-bit integers as strings. */
  rows: unknown[][];
  statistics: { elapsedMs: number; rowsRead: number; bytesRead: number };
}

/**
 * The settings of a user query, applied by the engine. `readonly = 1` allows reads only and
 * forbids changing any setting, so a query's own SETTINGS clause cannot lift the limits either
 * (`readonly = 2` would allow that). It comes last: a driver that applies settings one by one
 * would otherwise refuse the ones after it.
 */
export function readOnlySettings(limits: ReadOnlyLimits): Record<string, string> {
  return {
    max_result_rows: String(limits.maxRows),
    result_overflow_mode: 'throw',
    // The engine takes fractional seconds.
    max_execution_time: String(limits.maxExecutionMs / 1000),
    timeout_overflow_mode: 'throw',
    max_memory_usage: String(limits.maxMemoryBytes),
    max_result_bytes: String(limits.maxResultBytes),
    readonly: '1',
  };
}

/** The error for an answer larger than the limit: see ReadOnlyLimits.maxResultBytes. */
export function resultTooLarge(bytes: number, limit: number): StorageError {
  return new StorageError(
    'RESULT_TOO_LARGE',
    `the answer is larger than the limit ROUTEWATCH_SQL_MAX_RESULT_BYTES (${limit} bytes; ` +
      `this one ${bytes} or more): select fewer columns or rows, or raise ROUTEWATCH_SQL_MAX_RESULT_BYTES`,
  );
}

/** Settings both drivers apply so that they return identical rows. */
export const OUTPUT_SETTINGS = {
  output_format_json_quote_64bit_integers: 1,
  output_format_json_quote_denormals: 1,
  date_time_output_format: 'simple',
} as const;

/**
 * Settings for every insert. `spans` is partitioned by day, and one OTLP request may carry spans
 * from many days (a replayed backlog, a clock far off): the default cap of 100 partitions per
 * insert block would refuse the whole batch, every retry, so it is lifted here. Inserts are
 * synchronous whatever the server's user profile says: an asynchronous insert answers before its
 * data is written (the log would count it stored) and ignores `insert_deduplication_token`
 * unless `async_insert_deduplicate` is on, so a replayed batch would be stored twice.
 */
export const INSERT_SETTINGS = {
  max_partitions_per_insert_block: '0',
  async_insert: 0,
} as const;

/** Table names come from code, never from users; still refuse anything but an identifier. */
export function assertIdentifier(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new Error(`invalid table name ${JSON.stringify(name)}`);
  }
  return name;
}

/** The format of an insert, checked: it becomes SQL text in the server driver. */
export function insertFormat(options: InsertOptions): InsertFormat {
  const format = options.format ?? 'JSONEachRow';
  if (!INSERT_FORMATS.includes(format)) throw new Error(`unsupported insert format ${format}`);
  return format;
}
