import { errorMessage, isRowDataError } from '../storage/errors.js';
import type { Store } from '../storage/store.js';
import type { SpanRow } from './normalize.js';
import { SPAN_INSERT, spanLines } from './span-lines.js';

export interface SpanWriterOptions {
  /** Flush when this many rows are waiting (ROUTEWATCH_BATCH_ROWS). */
  maxBatchRows: number;
  /** Flush at the latest this long after the first row of a batch arrived (ROUTEWATCH_BATCH_DELAY). */
  maxDelayMs: number;
  /** Refuse new rows (the caller answers 503) while this many are waiting. */
  maxPendingRows: number;
  /** Refuse new rows while their serialized size waiting exceeds this many bytes. */
  maxPendingBytes: number;
  /** Refuse new rows while the ones waiting would take longer than this to store (ROUTEWATCH_MAX_QUEUE_WAIT). */
  maxQueueWaitMs: number;
  /** How many recently written span keys to remember for de-duplication at ingest. */
  dedupWindow: number;
}

/**
 * Rows serialized for the store: one line per row in the format and columns of SPAN_INSERT
 * (span-lines.ts: JSONCompactEachRow), and the row's span key.
 */
export interface PreparedRows {
  lines: string[];
  /** trace id + span id of each line, for de-duplication. */
  keys: string[];
}

/** Serializes rows for `SpanWriter.write`. */
export function prepareRows(rows: readonly SpanRow[]): PreparedRows {
  return spanLines(rows);
}

export interface SpanWriterStats {
  rowsWritten: number;
  /** Rows the store refused for what they contain (answered as OTLP partial success). */
  rowsRejected: number;
  duplicatesDropped: number;
  batches: number;
  pendingRows: number;
  pendingBytes: number;
  /** Writes refused because the queue was full (answered 503). */
  overloadRefusals: number;
  /** Rows the store takes per second, measured over recent inserts. */
  insertRowsPerSecond: number;
}

/** What became of one write: every row stored, except `rejected` ones the store refused. */
export interface WriteResult {
  rejected: number;
  /** Why the first rejected row was refused; empty when none was. */
  errorMessage: string;
}

export class OverloadedError extends Error {
  readonly code = 'OVERLOADED';
  constructor(
    readonly pendingRows: number,
    readonly pendingBytes: number,
    /** How long the waiting rows should take to store. */
    readonly drainMs: number,
  ) {
    super(
      `the collector has ${pendingRows} spans (${pendingBytes} bytes) waiting to be stored, ` +
        `about ${Math.ceil(drainMs / 1000)} s of work: retry later`,
    );
    this.name = 'OverloadedError';
  }

  /** Seconds a client should wait: about the time the queue takes to drain, 1 to 60. */
  get retryAfterSeconds(): number {
    return Math.min(60, Math.max(1, Math.ceil(this.drainMs / 1000)));
  }
}

/** The insert rate assumed before the first insert is measured, rows per second. */
const INITIAL_ROWS_PER_SECOND = 20_000;
/** Weight of the newest measurement in the moving average of the insert rate. */
const RATE_SMOOTHING = 0.3;

interface Waiter {
  /** One line per row (PreparedRows). */
  lines: string[];
  keys: string[];
  bytes: number;
  resolve: (result: WriteResult) => void;
  reject: (error: unknown) => void;
}

const ALL_STORED: WriteResult = Object.freeze({ rejected: 0, errorMessage: '' });

/**
 * Group commit: rows from concurrent requests go into one insert, and each request is answered
 * only once the rows it sent are stored, so an acknowledged span is stored. If the store refuses
 * a batch for a row's content, each request is written on its own and the refused rows are found
 * by halving, so one bad span costs only itself. Spans already written recently (exporter
 * retries) are dropped before the insert; the table is keyed by span id as well, so a duplicate
 * that slips past this window still counts once.
 */
export class SpanWriter {
  readonly #store: Store;
  readonly #maxBatchRows: number;
  readonly #maxDelayMs: number;
  readonly #maxPendingRows: number;
  readonly #maxPendingBytes: number;
  readonly #maxQueueWaitMs: number;
  readonly #dedupWindow: number;
  readonly #recent = new Set<string>();
  #waiting: Waiter[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  readonly stats: SpanWriterStats = {
    rowsWritten: 0,
    rowsRejected: 0,
    duplicatesDropped: 0,
    batches: 0,
    pendingRows: 0,
    pendingBytes: 0,
    overloadRefusals: 0,
    insertRowsPerSecond: INITIAL_ROWS_PER_SECOND,
  };

  constructor(store: Store, options: SpanWriterOptions) {
    this.#store = store;
    this.#maxBatchRows = options.maxBatchRows;
    this.#maxDelayMs = options.maxDelayMs;
    this.#maxPendingRows = options.maxPendingRows;
    this.#maxPendingBytes = options.maxPendingBytes;
    this.#maxQueueWaitMs = options.maxQueueWaitMs;
    this.#dedupWindow = options.dedupWindow;
  }

  /** How long the rows waiting now should take to store, at the measured insert rate. */
  estimatedDrainMs(extraRows = 0): number {
    return ((this.stats.pendingRows + extraRows) / this.stats.insertRowsPerSecond) * 1000;
  }

  /**
   * Resolves when the rows are stored, saying how many the store refused for their content;
   * rejects with OverloadedError when the queue is full (the client should retry later), or with
   * the store's error if it failed otherwise (the client should retry).
   */
  write(rows: PreparedRows): Promise<WriteResult> {
    const { lines, keys } = rows;
    if (lines.length === 0) return Promise.resolve(ALL_STORED);
    const { pendingRows, pendingBytes } = this.stats;
    const drainMs = this.estimatedDrainMs(lines.length);
    if (
      pendingRows + lines.length > this.#maxPendingRows ||
      pendingBytes > this.#maxPendingBytes ||
      (pendingRows > 0 && drainMs > this.#maxQueueWaitMs)
    ) {
      this.stats.overloadRefusals++;
      return Promise.reject(new OverloadedError(pendingRows, pendingBytes, drainMs));
    }
    let bytes = 0;
    for (const line of lines) bytes += line.length + 1;
    return new Promise<WriteResult>((resolve, reject) => {
      this.#waiting.push({ lines, keys, bytes, resolve, reject });
      this.stats.pendingRows += lines.length;
      this.stats.pendingBytes += bytes;
      this.#schedule(this.stats.pendingRows >= this.#maxBatchRows ? 0 : this.#maxDelayMs);
    });
  }

  /** Writes whatever is waiting and resolves when every write so far has settled. */
  async flush(): Promise<void> {
    while (this.#waiting.length > 0) {
      this.#kick();
      await this.#flushing;
    }
    await this.#flushing;
  }

  #schedule(delayMs: number): void {
    if (delayMs === 0) {
      this.#kick();
      return;
    }
    this.#timer ??= setTimeout(() => this.#kick(), delayMs);
  }

  #kick(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    // #flushBatch settles every waiter itself; the chain must never stay rejected.
    this.#flushing = this.#flushing.then(() => this.#flushBatch()).catch(() => undefined);
  }

  #takeBatch(): Waiter[] {
    const batch: Waiter[] = [];
    let rows = 0;
    while (this.#waiting.length > 0 && (rows === 0 || rows < this.#maxBatchRows)) {
      const waiter = this.#waiting.shift()!;
      batch.push(waiter);
      rows += waiter.lines.length;
      this.stats.pendingRows -= waiter.lines.length;
      this.stats.pendingBytes -= waiter.bytes;
    }
    if (this.#waiting.length > 0)
      this.#schedule(this.stats.pendingRows >= this.#maxBatchRows ? 0 : this.#maxDelayMs);
    return batch;
  }

  async #flushBatch(): Promise<void> {
    const batch = this.#takeBatch();
    if (batch.length === 0) return;
    const lines: string[] = [];
    const keys: string[] = [];
    const inBatch = new Set<string>();
    for (const waiter of batch) {
      waiter.keys.forEach((key, i) => {
        if (this.#recent.has(key) || inBatch.has(key)) {
          this.stats.duplicatesDropped++;
          return;
        }
        inBatch.add(key);
        keys.push(key);
        lines.push(waiter.lines[i]!);
      });
    }
    try {
      await this.#insert(lines, keys);
    } catch (error) {
      if (!isRowDataError(error)) {
        for (const waiter of batch) waiter.reject(error);
        return;
      }
      // Some row's content was refused: the requests that sent none of it must still succeed.
      for (const waiter of batch) {
        try {
          waiter.resolve(await this.#insertIsolating(waiter));
        } catch (isolatedError) {
          waiter.reject(isolatedError);
        }
      }
      return;
    }
    for (const waiter of batch) waiter.resolve(ALL_STORED);
  }

  async #insert(lines: string[], keys: string[]): Promise<void> {
    if (lines.length > 0) {
      const started = performance.now();
      await this.#store.insertJsonEachRow(
        'spans',
        Buffer.from(lines.join('\n') + '\n'),
        SPAN_INSERT,
      );
      this.#measure(lines.length, performance.now() - started);
    }
    this.stats.rowsWritten += lines.length;
    this.stats.batches++;
    this.#remember(keys);
  }

  /** Stores one request's rows, halving around rows the store refuses; other failures throw. */
  async #insertIsolating(waiter: Waiter): Promise<WriteResult> {
    const lines: string[] = [];
    const keys: string[] = [];
    waiter.keys.forEach((key, i) => {
      if (this.#recent.has(key)) return;
      keys.push(key);
      lines.push(waiter.lines[i]!);
    });
    let rejected = 0;
    let firstError = '';
    const ranges: Array<[number, number]> = [[0, lines.length]];
    while (ranges.length > 0) {
      const [from, to] = ranges.pop()!;
      try {
        await this.#insert(lines.slice(from, to), keys.slice(from, to));
      } catch (error) {
        if (!isRowDataError(error)) throw error;
        if (to - from > 1) {
          const middle = from + Math.floor((to - from) / 2);
          ranges.push([middle, to], [from, middle]);
          continue;
        }
        rejected++;
        firstError ||= errorMessage(error).split('\n')[0]!;
      }
    }
    this.stats.rowsRejected += rejected;
    return rejected === 0 ? ALL_STORED : { rejected, errorMessage: firstError };
  }

  /** Moving average of the insert rate, from batches large enough to say something. */
  #measure(rows: number, elapsedMs: number): void {
    if (rows < 100 || elapsedMs <= 0) return;
    const rate = (rows / elapsedMs) * 1000;
    const { insertRowsPerSecond } = this.stats;
    this.stats.insertRowsPerSecond =
      insertRowsPerSecond + RATE_SMOOTHING * (rate - insertRowsPerSecond);
  }

  #remember(keys: string[]): void {
    for (const key of keys) this.#recent.add(key);
    if (this.#recent.size > this.#dedupWindow) {
      // Sets iterate in insertion order: drop the oldest keys.
      let excess = this.#recent.size - this.#dedupWindow;
      for (const key of this.#recent) {
        if (excess-- <= 0) break;
        this.#recent.delete(key);
      }
    }
  }
}
