import { errorMessage } from '../storage/errors.js';
import { ROW_FORMATS, deduplicationToken, recordsToken } from './span-inserter.js';
import type { RowFormat, SpanInserter } from './span-inserter.js';
import { recordKeys } from './wal.js';
import type { WalEntry, WalPosition, WalRecord, WriteAheadLog } from './wal.js';

/**
 * Moves the write-ahead log into the store, in log order: batches of records (up to
 * `maxBatchRows` rows and `maxBatchBytes` bytes, or whatever has waited `maxDelayMs` since it was
 * appended; a flush or a stop does not wait), each retried until the store takes it. A batch's
 * range is written to the log's checkpoint before its first attempt, so a retry — after a lost
 * answer or after a restart — sends exactly the same rows, with the same deduplication token, and
 * the engine stores them once.
 */

export interface DrainLog {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
}

export interface DrainerOptions {
  wal: WriteAheadLog;
  inserter: SpanInserter;
  maxBatchRows: number;
  /** Bytes of log frames per insert at most (one record alone may exceed it). */
  maxBatchBytes: number;
  maxDelayMs: number;
  log: DrainLog;
  /** Inserts wait for this: the migrations, when the store was down at start. */
  storeReady: Promise<void>;
}

export interface DrainStats {
  /** False until the store is ready (migrated), and from a failed insert until one succeeds. */
  storeAvailable: boolean;
  /** Insert attempts that failed for another reason than content (each retried). */
  storeFailures: number;
  /** Rows stored by the drainer. */
  rowsDrained: number;
  /** Rows acknowledged, then refused by the store for their content, and dropped (logged). */
  rowsRejectedAfterAck: number;
}

const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;
/** Failures are logged at most this often while the store stays down. */
const FAILURE_LOG_INTERVAL_MS = 30_000;
const RATE_WINDOW_MS = 10_000;

interface Batch {
  entries: WalEntry[];
  end: WalPosition;
  rows: number;
  bytes: number;
  format: string;
  /** The log has more after it: no reason to wait for the batch to fill. */
  full: boolean;
  /** The range of an insert in flight before a restart: repeated as it was. */
  replayed: boolean;
  /** Read, and the batch's deduplication token chosen, before its range is marked in flight. */
  records?: WalRecord[];
  token?: string;
}

const notBefore = (a: WalPosition, b: WalPosition) =>
  a.segment > b.segment || (a.segment === b.segment && a.offset >= b.offset);

export class WalDrainer {
  readonly stats: DrainStats = {
    storeAvailable: false,
    storeFailures: 0,
    rowsDrained: 0,
    rowsRejectedAfterAck: 0,
  };
  readonly #options: DrainerOptions;
  #loop: Promise<void> | undefined;
  #inFlight: Batch | undefined;
  #wake: (() => void) | undefined;
  /** Sleeping between retries: new records do not cut it short; a flush or a stop does. */
  #backingOff = false;
  #urgent = 0;
  #closingDeadline: number | undefined;
  #stopped = false;
  #flushes: Array<{ target: WalPosition; resolve: () => void; reject: (e: Error) => void }> = [];
  #lastFailureLogAt = 0;
  #drained: Array<{ at: number; rows: number }> = [];

  constructor(options: DrainerOptions) {
    this.#options = options;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** New records are in the log. */
  notify(): void {
    if (!this.#backingOff) this.#wakeUp();
  }

  /** Rows stored per second over the last ten seconds. */
  drainRowsPerSecond(now = Date.now()): number {
    this.#drained = this.#drained.filter((d) => now - d.at <= RATE_WINDOW_MS);
    return this.#drained.reduce((sum, d) => sum + d.rows, 0) / (RATE_WINDOW_MS / 1000);
  }

  /** Resolves once every record in the log now is stored (waits through store outages). */
  flush(): Promise<void> {
    const last = this.#options.wal.entries().at(-1);
    if (!last) return Promise.resolve();
    if (this.#stopped) return Promise.reject(new Error('the log drainer is stopped'));
    this.#urgent++;
    this.#wakeUp();
    return new Promise<void>((resolve, reject) => {
      this.#flushes.push({ target: last.end, resolve, reject });
    }).finally(() => this.#urgent--);
  }

  /**
   * Stores what it can within `graceMs` — until the log is empty or the store fails — then stops.
   * What is left stays in the log for the next start. An insert still running then is abandoned:
   * its range is in the checkpoint, so the next start repeats it with the same token.
   */
  async stop(graceMs: number): Promise<void> {
    this.#closingDeadline = Date.now() + graceMs;
    this.#wakeUp();
    const loop = this.#loop ?? Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      loop,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs + 100))),
    ]);
    clearTimeout(timer);
    this.#stopped = true;
    this.#wakeUp();
    for (const flush of this.#flushes) flush.reject(new Error('the log drainer stopped'));
    this.#flushes = [];
  }

  async #run(): Promise<void> {
    await this.#options.storeReady.catch((error: unknown) => {
      // Inserts are tried anyway; they fail (and are retried) until the store is usable.
      this.#options.log.error({ err: error }, 'the store was not made ready; inserting anyway');
    });
    // Until an insert fails, the store counts as available.
    this.stats.storeAvailable = true;
    let backoff = FIRST_BACKOFF_MS;
    while (!this.#stopped) {
      const batch = this.#inFlight ?? this.#nextBatch();
      if (this.#closingDeadline !== undefined && (!batch || Date.now() >= this.#closingDeadline))
        return;
      if (!batch) {
        await this.#sleep(undefined);
        continue;
      }
      if (!this.#inFlight) {
        const waitMs = this.#waitMs(batch);
        if (waitMs > 0) {
          await this.#sleep(waitMs);
          continue;
        }
      }
      try {
        if (!this.#inFlight) {
          await this.#prepare(batch);
          await this.#options.wal.markInFlight(batch.end, batch.token!);
          this.#inFlight = batch;
        }
        await this.#store(batch);
        this.#inFlight = undefined;
        backoff = FIRST_BACKOFF_MS;
        this.#settleFlushes(batch.end);
      } catch (error) {
        this.#failed(error);
        if (this.#closingDeadline !== undefined || this.#stopped) return;
        this.#backingOff = true;
        await this.#sleep(backoff);
        this.#backingOff = false;
        backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
      }
    }
  }

  #nextBatch(): Batch | undefined {
    const { wal, maxBatchRows, maxBatchBytes } = this.#options;
    const entries = wal.entries();
    const first = entries[0];
    if (!first) return undefined;
    const replayedEnd = wal.inFlightEnd;
    const batch: Batch = {
      entries: [],
      end: first.end,
      rows: 0,
      bytes: 0,
      format: first.format,
      full: false,
      replayed: replayedEnd !== undefined,
    };
    for (const entry of entries) {
      if (replayedEnd) {
        if (notBefore(entry.start, replayedEnd)) break;
      } else if (
        batch.entries.length > 0 &&
        (entry.format !== batch.format ||
          batch.rows + entry.rows > maxBatchRows ||
          batch.bytes + entry.frameBytes > maxBatchBytes)
      ) {
        batch.full = true;
        break;
      }
      batch.entries.push(entry);
      batch.rows += entry.rows;
      batch.bytes += entry.frameBytes;
      batch.end = entry.end;
    }
    if (batch.rows >= maxBatchRows || batch.bytes >= maxBatchBytes) batch.full = true;
    return batch;
  }

  /** How long to let a batch fill before inserting it. */
  #waitMs(batch: Batch): number {
    if (batch.full || batch.replayed || this.#urgent > 0 || this.#closingDeadline !== undefined)
      return 0;
    const age = Date.now() - batch.entries[0]!.writtenAtMs;
    // A clock set back makes the age negative: never wait longer than the delay.
    return Math.min(this.#options.maxDelayMs, this.#options.maxDelayMs - age);
  }

  /**
   * Reads the batch's records and chooses its deduplication token: for a new batch, made from the
   * records' checksums and keys (recordsToken); for the range in flight at the last stop, the
   * token recorded with it — or, when an older routewatch recorded none, the SHA-256 of the body,
   * which is what it sent.
   */
  async #prepare(batch: Batch): Promise<void> {
    const { wal } = this.#options;
    if (!ROW_FORMATS.has(batch.format)) {
      throw new Error(
        `the log holds rows in the format ${batch.format}, which this routewatch cannot insert: ` +
          'run the version that wrote them until the log is drained',
      );
    }
    const records: WalRecord[] = [];
    for (const entry of batch.entries) {
      const record = await wal.read(entry);
      if (record) records.push(record);
    }
    batch.records = records;
    batch.token = batch.replayed
      ? (wal.inFlightToken ?? deduplicationToken(Buffer.concat(records.map((r) => r.body))))
      : recordsToken(records);
  }

  async #store(batch: Batch): Promise<void> {
    const { wal, inserter, log } = this.#options;
    const records = batch.records!;
    const outcomes = await inserter.insert(batch.format as RowFormat, records, {
      token: batch.token!,
    });
    outcomes.forEach((outcome, i) => {
      if (outcome.rejectedRows.length === 0) return;
      const keys = recordKeys(records[i]!);
      this.stats.rowsRejectedAfterAck += outcome.rejectedRows.length;
      log.warn(
        {
          rejectedSpans: outcome.rejectedRows.length,
          spanKeys: outcome.rejectedRows.slice(0, 20).map((row) => keys[row]),
          reason: outcome.firstError,
        },
        'the store refused acknowledged spans for their content: they are dropped (counted in routewatch_spans_rejected_total)',
      );
    });
    await wal.release(batch.end);
    const stored =
      records.reduce((n, record) => n + record.rows, 0) -
      outcomes.reduce((n, outcome) => n + outcome.rejectedRows.length, 0);
    this.stats.rowsDrained += stored;
    this.#drained.push({ at: Date.now(), rows: stored });
    if (!this.stats.storeAvailable && this.stats.storeFailures > 0) {
      log.info({ rows: stored }, 'the store takes spans again: draining the write-ahead log');
    }
    this.stats.storeAvailable = true;
  }

  #failed(error: unknown): void {
    this.stats.storeFailures++;
    const wasAvailable = this.stats.storeAvailable;
    this.stats.storeAvailable = false;
    const now = Date.now();
    if (wasAvailable || now - this.#lastFailureLogAt >= FAILURE_LOG_INTERVAL_MS) {
      this.#lastFailureLogAt = now;
      this.#options.log.warn(
        {
          err: error,
          reason: errorMessage(error).split('\n')[0],
          unstoredRows: this.#options.wal.unstoredRows,
          logBytes: this.#options.wal.bytes,
        },
        'storing spans from the write-ahead log failed: they stay in the log and are retried',
      );
    }
  }

  #settleFlushes(stored: WalPosition): void {
    this.#flushes = this.#flushes.filter((flush) => {
      if (!notBefore(stored, flush.target)) return true;
      flush.resolve();
      return false;
    });
  }

  /** Sleeps `ms` (undefined: until woken); `#wakeUp` ends it early. One sleeper: the loop. */
  #sleep(ms: number | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(timer);
        if (this.#wake === done) this.#wake = undefined;
        resolve();
      };
      if (ms !== undefined) timer = setTimeout(done, Math.max(0, ms));
      this.#wake = done;
    });
  }

  #wakeUp(): void {
    this.#wake?.();
  }
}
