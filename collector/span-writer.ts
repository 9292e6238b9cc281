import type { Store } from '../storage/store.js';
import type { SpanRow } from './normalize.js';

export interface SpanWriterOptions {
  /** Flush when this many rows are waiting. */
  maxBatchRows?: number;
  /** Flush at the latest this long after the first row of a batch arrived. */
  maxDelayMs?: number;
  /** Refuse new rows (the caller answers 503) while this many are waiting. */
  maxPendingRows?: number;
  /** How many recently written span keys to remember for de-duplication at ingest. */
  dedupWindow?: number;
}

export interface SpanWriterStats {
  rowsWritten: number;
  duplicatesDropped: number;
  batches: number;
  pendingRows: number;
}

export class OverloadedError extends Error {
  readonly code = 'OVERLOADED';
  constructor(readonly pendingRows: number) {
    super(`the collector has ${pendingRows} spans waiting to be written; retry later`);
    this.name = 'OverloadedError';
  }
}

interface Waiter {
  rows: SpanRow[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: rows from concurrent requests go into one insert, and each request is answered
 * only once the insert holding its rows has succeeded, so an acknowledged span is stored.
 * Spans already written recently (exporter retries) are dropped before the insert; the table is
 * keyed by span id as well, so a duplicate that slips past this window still counts once.
 */
export class SpanWriter {
  readonly #store: Store;
  readonly #maxBatchRows: number;
  readonly #maxDelayMs: number;
  readonly #maxPendingRows: number;
  readonly #dedupWindow: number;
  readonly #recent = new Set<string>();
  #waiting: Waiter[] = [];
  #waitingRows = 0;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  readonly stats: SpanWriterStats = {
    rowsWritten: 0,
    duplicatesDropped: 0,
    batches: 0,
    pendingRows: 0,
  };

  constructor(store: Store, options: SpanWriterOptions = {}) {
    this.#store = store;
    this.#maxBatchRows = options.maxBatchRows ?? 10_000;
    this.#maxDelayMs = options.maxDelayMs ?? 200;
    this.#maxPendingRows = options.maxPendingRows ?? 200_000;
    this.#dedupWindow = options.dedupWindow ?? 1_000_000;
  }

  /** Resolves when the rows are stored; rejects if the insert failed (the client should retry). */
  write(rows: SpanRow[]): Promise<void> {
    if (rows.length === 0) return Promise.resolve();
    if (this.#waitingRows + rows.length > this.#maxPendingRows) {
      return Promise.reject(new OverloadedError(this.#waitingRows));
    }
    return new Promise<void>((resolve, reject) => {
      this.#waiting.push({ rows, resolve, reject });
      this.#waitingRows += rows.length;
      this.stats.pendingRows = this.#waitingRows;
      if (this.#waitingRows >= this.#maxBatchRows) this.#schedule(0);
      else this.#schedule(this.#maxDelayMs);
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

  async #flushBatch(): Promise<void> {
    if (this.#waiting.length === 0) return;
    const batch: Waiter[] = [];
    let rows = 0;
    while (this.#waiting.length > 0 && (rows === 0 || rows < this.#maxBatchRows)) {
      const waiter = this.#waiting.shift()!;
      batch.push(waiter);
      rows += waiter.rows.length;
    }
    this.#waitingRows -= rows;
    this.stats.pendingRows = this.#waitingRows;
    if (this.#waiting.length > 0)
      this.#schedule(this.#waitingRows >= this.#maxBatchRows ? 0 : this.#maxDelayMs);

    const fresh: string[] = [];
    const keys: string[] = [];
    const inBatch = new Set<string>();
    for (const waiter of batch) {
      for (const row of waiter.rows) {
        const key = `${row.trace_id}${row.span_id}`;
        if (this.#recent.has(key) || inBatch.has(key)) {
          this.stats.duplicatesDropped++;
          continue;
        }
        inBatch.add(key);
        keys.push(key);
        fresh.push(JSON.stringify(row));
      }
    }
    try {
      if (fresh.length > 0) {
        await this.#store.insertJsonEachRow('spans', Buffer.from(fresh.join('\n') + '\n'));
      }
    } catch (error) {
      for (const waiter of batch) waiter.reject(error);
      return;
    }
    this.stats.rowsWritten += fresh.length;
    this.stats.batches++;
    this.#remember(keys);
    for (const waiter of batch) waiter.resolve();
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
