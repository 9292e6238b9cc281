import type { Store } from '../storage/store.js';
import { INITIAL_ROWS_PER_SECOND, SpanInserter } from './span-inserter.js';
import type { RowBlock, RowFormat, UnitOutcome } from './span-inserter.js';
import { WalDrainer } from './wal-drainer.js';
import { SpanKeyWindow } from './span-key-window.js';
import { LatencyHistogram } from './latency-histogram.js';
import type { WriteAheadLog } from './wal.js';
import { encodeRecord, forEachKey, recordKeys, recordOfFrame } from './wal-record.js';
import type { WalRecord } from './wal-record.js';
import { SPAN_COLUMNS, SPAN_LINE_FORMAT, prepareRows } from './span-lines.js';
import { COST_SOURCES, noCostSourceCounts } from './normalize.js';
import type { CostSourceCounts } from './normalize.js';
import type { PreparedRows } from './span-lines.js';

export { prepareRows };
export type { PreparedRows };

export interface SpanWriterOptions {
  /** Flush when this many rows are waiting (ROUTEWATCH_BATCH_ROWS). */
  maxBatchRows: number;
  /**
   * How long to let an insert fill (ROUTEWATCH_BATCH_DELAY). With the log: the drainer's wait from
   * a record's append, which no answer waits for; an explicit flush or a stop cuts it short.
   * Without it: rows that arrived while an insert ran wait at most this long (from the first of
   * them) for more to join the next insert; a write to an idle writer is inserted at once.
   */
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

/** The format `prepareRows` serializes to; the log records it with every record. */
export const ROW_FORMAT: RowFormat = SPAN_LINE_FORMAT;

export interface SpanWriterStats {
  rowsWritten: number;
  /**
   * Rows the store refused for their content. Without the log they are answered as an OTLP partial
   * success; with it they were acknowledged already, and are logged and dropped.
   */
  rowsRejected: number;
  duplicatesDropped: number;
  batches: number;
  /** Rows waiting: for the store without the log, for the log's fsync with it. */
  pendingRows: number;
  pendingBytes: number;
  /** Writes refused because the queue was full (answered 503). */
  overloadRefusals: number;
  /** Writes refused because the write-ahead log was at its disk budget (answered 503). */
  logFullRefusals: number;
  /** Appends to the write-ahead log that failed (a full disk, an I/O error): answered 503. */
  logAppendFailures: number;
  /** Rows the store takes per second, measured over recent inserts. */
  insertRowsPerSecond: number;
  /**
   * Per write: waiting for the append (or, without the log, the insert) before its own, and that
   * durable append (or that insert).
   */
  writeWaitMs: LatencyHistogram;
  writeMs: LatencyHistogram;
}

/** What became of one write: every row stored, except `rejected` ones the store refused. */
export interface WriteResult {
  rejected: number;
  /** Why the first rejected row was refused; empty when none was. */
  errorMessage: string;
  /**
   * The write's LLM calls dropped as duplicates (spans taken before: an exporter's retry), by
   * cost source; absent when none was. They are not new calls, and are not counted as such.
   */
  duplicateCalls?: CostSourceCounts;
}

/** Why a write is refused for now: the client should retry after `retryAfterSeconds` (503). */
export class OverloadedError extends Error {
  readonly code: 'OVERLOADED' | 'LOG_FULL' | 'LOG_UNWRITABLE' | 'SHUTTING_DOWN';
  readonly retryAfterSeconds: number;
  constructor(
    code: OverloadedError['code'],
    message: string,
    retryAfterSeconds: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'OverloadedError';
    this.code = code;
    this.retryAfterSeconds = clampRetryAfter(retryAfterSeconds);
  }

  /** The queue holds more than it may: about `drainMs` of work. */
  static queueFull(pendingRows: number, pendingBytes: number, drainMs: number): OverloadedError {
    return new OverloadedError(
      'OVERLOADED',
      `the collector has ${pendingRows} spans (${pendingBytes} bytes) waiting to be stored, ` +
        `about ${Math.ceil(drainMs / 1000)} s of work: retry later`,
      drainMs / 1000,
    );
  }
}

/** Seconds a client should wait, 1 to 60. */
const clampRetryAfter = (seconds: number) => Math.min(60, Math.max(1, Math.ceil(seconds)));

/** Why new requests are refused before their body is read (admission), if they are. */
export interface Refusal {
  code: 'LOG_FULL' | 'LOG_UNWRITABLE';
  reason: string;
  retryAfterSeconds: number;
}

/** What /readyz reports of the writer. */
export interface WriterHealth {
  wal: boolean;
  /** The log is at its disk budget: ingest is refused (503). */
  logFull: boolean;
  /**
   * An append to the log failed, and the log has found no room since (its own check, every 2 s):
   * ingest is refused (503) before bodies are read.
   */
  logUnwritable: boolean;
  /** While the log is full: the Retry-After exports are given, for /readyz to give as well. */
  logFullRetryAfterSeconds: number | undefined;
  /** Without the log: true. With it: the store is migrated and the last insert did not fail. */
  storeAvailable: boolean;
}

/** The write-ahead log's gauges and counters for /metrics. */
export interface WalSnapshot {
  bytes: number;
  maxBytes: number;
  records: number;
  rows: number;
  oldestUnstoredAgeSeconds: number;
  drainRowsPerSecond: number;
  appends: number;
  recordsAppended: number;
  bytesAppended: number;
  replayedRecords: number;
  tornRecordsDropped: number;
  corruptRecords: number;
  segmentsDeleted: number;
  storeAvailable: boolean;
  storeFailures: number;
  rowsRejectedAfterAck: number;
}

export interface SpanWriterLog {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
}

export interface SpanWriterParts {
  /** The write-ahead log: with it, a write is acknowledged once on disk, and drained after. */
  wal?: WriteAheadLog;
  log?: SpanWriterLog;
  /** With the log: inserts wait for this (the migrations, when the store was down at start). */
  storeReady?: Promise<void>;
}

/** Retry-After while the log is full and the store is down: no estimate of when it is back. */
const LOG_FULL_STORE_DOWN_RETRY_S = 10;

/** How long `close()` keeps draining the log into the store before it stops. */
export const CLOSE_DRAIN_MS = 5_000;
/** The fsync rate assumed before the first append is measured, bytes per second. */
const INITIAL_APPEND_BYTES_PER_SECOND = 20 * 1024 * 1024;
const RATE_SMOOTHING = 0.3;
/** Retry-After while the log cannot be written: a few of its own checks. */
const UNWRITABLE_RETRY_AFTER_S = 5;
/** How often a log that cannot be written is tried while no request tries it. */
const RECOVERY_CHECK_MS = 2_000;

interface Waiter {
  /** When the write was queued (Date.now()). */
  at: number;
  /** The same, on the monotonic clock (performance.now()). */
  queuedAt: number;
  /** The write's log records (PreparedRows), framed, and each one read. */
  frames: readonly Buffer[];
  records: readonly WalRecord[];
  rows: number;
  bytes: number;
  resolve: (result: WriteResult) => void;
  reject: (error: unknown) => void;
}

const ALL_STORED: WriteResult = Object.freeze({ rejected: 0, errorMessage: '' });
const QUIET: SpanWriterLog = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/**
 * Group commit, with or without the write-ahead log.
 *
 * With the log (the default): rows from concurrent requests are appended as one record with one
 * durable write, and each request is answered once its rows are on disk; a drainer (wal-drainer.ts)
 * stores the log in order, and whatever is left at a stop is stored after the next start. The
 * queue in memory is only what waits for the fsync; the log's disk budget bounds the backlog
 * when the store is slow or down.
 *
 * Without it: rows go into one insert, and each request is answered only once the rows it sent
 * are stored. If the store refuses a batch for a row's content, each request is written on its
 * own and the refused rows are found by halving, so one bad span costs only itself.
 *
 * Either way, spans written recently (exporter retries) are dropped before they are queued; the
 * table is keyed by span id as well, so a duplicate that slips past this window still counts once.
 */
export class SpanWriter {
  readonly #store: Store;
  readonly #maxBatchRows: number;
  readonly #maxDelayMs: number;
  readonly #maxPendingRows: number;
  readonly #maxPendingBytes: number;
  readonly #maxQueueWaitMs: number;
  readonly #recent: SpanKeyWindow;
  readonly #inserter: SpanInserter;
  readonly #wal: WriteAheadLog | undefined;
  readonly #drainer: WalDrainer | undefined;
  /** Since when appends to the log fail (undefined: the last one worked). */
  #unwritableSince: number | undefined;
  /** Why the last append failed, while none has succeeded since (logged once, and on a change). */
  #appendFailure: string | undefined;
  #recovery: NodeJS.Timeout | undefined;
  readonly #log: SpanWriterLog;
  #waiting: Waiter[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  /** Writes queued so far, and those answered (stored or logged, or failed): `flush` waits by them. */
  #queuedWrites = 0;
  #settledWrites = 0;
  /** Without the log: inserts queued on #flushing and not finished (0: the writer is idle). */
  #inserts = 0;
  /** Without the log: the writes waiting arrived while an insert ran, so they may fill (#insertSoon). */
  #busy = false;
  #appending: Promise<void> | undefined;
  #appendBytesPerSecond = INITIAL_APPEND_BYTES_PER_SECOND;
  #closing = false;
  /** The log's size when a write was last refused for the disk budget. */
  #fullAt: number | undefined;
  readonly stats: SpanWriterStats = {
    rowsWritten: 0,
    rowsRejected: 0,
    duplicatesDropped: 0,
    batches: 0,
    pendingRows: 0,
    pendingBytes: 0,
    overloadRefusals: 0,
    writeWaitMs: new LatencyHistogram(),
    writeMs: new LatencyHistogram(),
    logFullRefusals: 0,
    logAppendFailures: 0,
    insertRowsPerSecond: INITIAL_ROWS_PER_SECOND,
  };

  constructor(store: Store, options: SpanWriterOptions, parts: SpanWriterParts = {}) {
    this.#store = store;
    this.#maxBatchRows = options.maxBatchRows;
    this.#maxDelayMs = options.maxDelayMs;
    this.#maxPendingRows = options.maxPendingRows;
    this.#maxPendingBytes = options.maxPendingBytes;
    this.#maxQueueWaitMs = options.maxQueueWaitMs;
    this.#recent = new SpanKeyWindow(options.dedupWindow);
    this.#log = parts.log ?? QUIET;
    this.#wal = parts.wal;
    // The log's inserts are retried, and must not store the same rows twice: they carry a token.
    this.#inserter = new SpanInserter(this.#store, this.stats, { tokens: this.#wal !== undefined });
    if (this.#wal) {
      // Spans still in the log count as written: an exporter's retry of one is a duplicate.
      this.#remember(this.#wal.takeReplayedKeys());
      this.#drainer = new WalDrainer({
        wal: this.#wal,
        inserter: this.#inserter,
        maxBatchRows: this.#maxBatchRows,
        // As without the log, where no more than this waits for one insert.
        maxBatchBytes: this.#maxPendingBytes,
        maxDelayMs: this.#maxDelayMs,
        log: this.#log,
        storeReady: parts.storeReady ?? Promise.resolve(),
      });
      this.#drainer.start();
    }
  }

  /** The write-ahead log, when there is one. */
  get wal(): WriteAheadLog | undefined {
    return this.#wal;
  }

  /**
   * How long the rows waiting now should take: to be stored without the log, to be fsynced with
   * it (a backlog in the log does not count here: its bound is the disk budget).
   */
  estimatedDrainMs(extraRows = 0): number {
    if (this.#wal) return (this.stats.pendingBytes / this.#appendBytesPerSecond) * 1000;
    return ((this.stats.pendingRows + extraRows) / this.stats.insertRowsPerSecond) * 1000;
  }

  /**
   * Why a request must be refused now, before its body is read: the log is full, or it cannot be
   * written (its appends failed, and its own check has not found room since: reading, decoding
   * and refusing each body would only spend the CPU and memory the recovery needs). A full log's
   * refusal is counted (`logFullRefusals`): call it once per request.
   */
  refusal(): Refusal | undefined {
    if (this.#unwritableSince !== undefined) {
      return {
        code: 'LOG_UNWRITABLE',
        reason: 'the collector could not write its write-ahead log',
        retryAfterSeconds: UNWRITABLE_RETRY_AFTER_S,
      };
    }
    if (!this.#atBudget()) return undefined;
    this.stats.logFullRefusals++;
    return {
      code: 'LOG_FULL',
      reason: 'the write-ahead log is full',
      retryAfterSeconds: this.#logFullRetryAfter(),
    };
  }

  health(): WriterHealth {
    const logFull = this.#atBudget();
    return {
      wal: this.#wal !== undefined,
      logFull,
      logFullRetryAfterSeconds: logFull ? this.#logFullRetryAfter() : undefined,
      logUnwritable: this.#unwritableSince !== undefined,
      storeAvailable: this.#drainer?.stats.storeAvailable ?? true,
    };
  }

  walSnapshot(now = Date.now()): WalSnapshot | undefined {
    const wal = this.#wal;
    const drainer = this.#drainer;
    if (!wal || !drainer) return undefined;
    const oldest = wal.entries()[0];
    return {
      bytes: wal.bytes,
      maxBytes: wal.maxBytes,
      records: wal.entries().length,
      rows: wal.unstoredRows,
      oldestUnstoredAgeSeconds: oldest ? Math.max(0, (now - oldest.writtenAtMs) / 1000) : 0,
      drainRowsPerSecond: drainer.drainRowsPerSecond(now),
      appends: wal.stats.appends,
      recordsAppended: wal.stats.recordsAppended,
      bytesAppended: wal.stats.bytesAppended,
      replayedRecords: wal.stats.replayedRecords,
      tornRecordsDropped: wal.stats.tornRecordsDropped,
      corruptRecords: wal.stats.corruptRecords,
      segmentsDeleted: wal.stats.segmentsDeleted,
      storeAvailable: drainer.stats.storeAvailable,
      storeFailures: drainer.stats.storeFailures,
      rowsRejectedAfterAck: drainer.stats.rowsRejectedAfterAck,
    };
  }

  /**
   * Without the log: resolves when the rows are stored, saying how many the store refused for
   * their content. With it: resolves when the rows are on disk in the log (`rejected` is then
   * always 0: a row refused later is counted and logged, see docs/architecture.md). Rejects with
   * OverloadedError when the queue or the log is full (the client should retry later), or with
   * the store's error if it failed otherwise (the client should retry).
   */
  write(prepared: PreparedRows): Promise<WriteResult> {
    const rows = prepared.rows;
    if (rows === 0) return Promise.resolve(ALL_STORED);
    if (this.#closing) {
      return Promise.reject(
        new OverloadedError('SHUTTING_DOWN', 'the collector is shutting down: retry shortly', 5),
      );
    }
    const { pendingRows, pendingBytes } = this.stats;
    // The records as they go into the log (an ingest thread's arrive as plain Uint8Arrays).
    const frames = prepared.records.map((r) => Buffer.from(r.buffer, r.byteOffset, r.byteLength));
    let bytes = 0;
    for (const frame of frames) bytes += frame.length;
    const drainMs = this.estimatedDrainMs(rows);
    if (
      pendingRows + rows > this.#maxPendingRows ||
      pendingBytes > this.#maxPendingBytes ||
      (pendingRows > 0 && drainMs > this.#maxQueueWaitMs)
    ) {
      this.stats.overloadRefusals++;
      return Promise.reject(OverloadedError.queueFull(pendingRows, pendingBytes, drainMs));
    }
    if (this.#logFull(bytes)) {
      this.stats.logFullRefusals++;
      // Refused for a write an eighth of the budget or more: ordinary ones may still fit, so
      // they are not refused before their bodies are read.
      if (bytes < this.#wal!.maxBytes / 8) this.#fullAt = this.#wal!.bytes;
      return Promise.reject(
        new OverloadedError(
          'LOG_FULL',
          'the write-ahead log is full (the span store is behind or down): retry later',
          this.#logFullRetryAfter(),
        ),
      );
    }
    return new Promise<WriteResult>((resolve, reject) => {
      this.#queuedWrites++;
      this.#waiting.push({
        at: Date.now(),
        queuedAt: performance.now(),
        frames,
        records: frames.map(recordOfFrame),
        rows,
        bytes,
        resolve: (result) => {
          this.#settledWrites++;
          resolve(result);
        },
        reject: (error) => {
          this.#settledWrites++;
          reject(error);
        },
      });
      this.stats.pendingRows += rows;
      this.stats.pendingBytes += bytes;
      if (this.#wal) this.#appendSoon();
      else this.#insertSoon();
    });
  }

  /**
   * Stores whatever was written before the call (through the log, if any) at once, without waiting
   * for a batch to fill, and resolves when all of it is stored (or its write failed). Writes made
   * after the call are not waited for, so a flush ends under a steady load too.
   */
  async flush(): Promise<void> {
    const target = this.#queuedWrites;
    if (this.#drainer) {
      // The append under way, and the one that takes what waits now: at most two.
      while (this.#settledWrites < target && this.#appending) await this.#appending;
      await this.#drainer.flush();
      return;
    }
    while (this.#settledWrites < target) {
      // Nothing being inserted: insert what waits now (a fill window is cut short).
      if (this.#inserts === 0) this.#kick();
      await this.#flushing;
    }
  }

  /**
   * Stops taking writes. Without the log: stores what is waiting. With it: finishes the appends
   * under way, stores what the store takes within `drainMs` (the rest stays in the log for the
   * next start) and closes the log.
   */
  async close(options: { drainMs?: number } = {}): Promise<void> {
    this.#closing = true;
    if (!this.#drainer || !this.#wal) {
      await this.flush();
      return;
    }
    while (this.#appending) await this.#appending;
    clearInterval(this.#recovery);
    await this.#drainer.stop(options.drainMs ?? CLOSE_DRAIN_MS);
    await this.#wal.close();
  }

  #logFull(extraBytes: number): boolean {
    const wal = this.#wal;
    if (!wal) return false;
    const queued = wal.unstoredBytes + this.stats.pendingBytes;
    // One request alone is always taken into an empty log, or it could never be.
    if (extraBytes > 0 && queued === 0) return false;
    return wal.bytes + this.stats.pendingBytes + extraBytes > wal.maxBytes;
  }

  /**
   * The log is at its budget: over it, or an ordinary write was refused for it and nothing was
   * freed since, while it still holds rows to store (an empty log takes any write: #logFull).
   * Requests are then refused before their body is read.
   */
  #atBudget(): boolean {
    const wal = this.#wal;
    if (!wal) return false;
    if (wal.bytes + this.stats.pendingBytes > wal.maxBytes) return true;
    const queued = wal.unstoredBytes + this.stats.pendingBytes;
    if (this.#fullAt !== undefined && wal.bytes >= this.#fullAt && queued > 0) return true;
    this.#fullAt = undefined;
    return false;
  }

  /**
   * About the time the store takes to free a segment — the drainer's fill window
   * (ROUTEWATCH_BATCH_DELAY), which a record may wait before its insert, then the segment's rows
   * at the insert rate — or longer while the store is down. Exports and /readyz give the same.
   */
  #logFullRetryAfter(): number {
    const wal = this.#wal;
    const drainer = this.#drainer;
    if (!wal || !drainer || !drainer.stats.storeAvailable) return LOG_FULL_STORE_DOWN_RETRY_S;
    const bytesPerRow = wal.unstoredRows > 0 ? wal.unstoredBytes / wal.unstoredRows : 1_000;
    return clampRetryAfter(
      this.#maxDelayMs / 1000 +
        wal.segmentBytes / Math.max(1, this.stats.insertRowsPerSecond * bytesPerRow),
    );
  }

  // --- with the log: group commit to disk ---

  #appendSoon(): void {
    if (this.#appending) return;
    this.#appending = this.#appendWaiting().finally(() => {
      this.#appending = undefined;
      if (this.#waiting.length > 0) this.#appendSoon();
    });
  }

  /**
   * Appends everything waiting, with one fsync: each write's records as the ingest thread made
   * them, or remade without the rows that are duplicates (of spans taken before, or of another
   * write in the same group).
   */
  async #appendWaiting(): Promise<void> {
    const wal = this.#wal!;
    const group = this.#waiting;
    this.#waiting = [];
    const groupStarted = performance.now();
    let groupBytes = 0;
    let groupRows = 0;
    for (const waiter of group) {
      groupBytes += waiter.bytes;
      groupRows += waiter.rows;
    }
    const inGroup = new SpanKeyWindow(groupRows);
    const frames: Buffer[] = [];
    const appended: WalRecord[] = [];
    const results = group.map((waiter) => {
      let duplicateCalls: CostSourceCounts | undefined;
      waiter.records.forEach((record, i) => {
        const kept = this.#newRows(record, inGroup);
        if (kept === undefined) {
          frames.push(waiter.frames[i]!);
          appended.push(record);
          return;
        }
        duplicateCalls = callsNotKept(record, kept, duplicateCalls);
        if (kept.length > 0) {
          const frame = recordWithRows(record, kept);
          frames.push(frame);
          appended.push(recordOfFrame(frame));
        }
      });
      return duplicateCalls ? { ...ALL_STORED, duplicateCalls } : ALL_STORED;
    });
    try {
      if (frames.length > 0) {
        const started = performance.now();
        await wal.append(frames);
        this.#measureAppend(
          frames.reduce((n, frame) => n + frame.length, 0),
          performance.now() - started,
        );
        // Only now: a retry arriving before the fsync must not be dropped as a duplicate of
        // rows that might still fail to be written.
        for (const record of appended) this.#rememberRecord(record);
        this.#drainer!.notify();
        this.#writable(true);
      }
      this.#observeWrites(group, groupStarted);
      group.forEach((waiter, i) => waiter.resolve(results[i]!));
    } catch (error) {
      this.#unwritable(error);
      const refusal = new OverloadedError(
        'LOG_UNWRITABLE',
        'the collector could not write its write-ahead log: retry later',
        UNWRITABLE_RETRY_AFTER_S,
        { cause: error },
      );
      for (const waiter of group) waiter.reject(refusal);
    } finally {
      this.stats.pendingRows -= groupRows;
      this.stats.pendingBytes -= groupBytes;
    }
  }

  /**
   * An append failed. The first of a run is logged; until the log is written again, /readyz says
   * so, and the log is tried every few seconds even with no request coming (a balancer sends
   * none to a collector that is not ready): once what was stored frees a full disk, it recovers.
   */
  #unwritable(error: unknown): void {
    this.stats.logAppendFailures++;
    // Once per run of failures, and again if the error changes: while the log cannot be written
    // every append fails, and a line with a stack per request would bury the one that says why.
    const message = error instanceof Error ? error.message : String(error);
    if (message !== this.#appendFailure) {
      this.#appendFailure = message;
      this.#log.error(
        { err: error, answer: 'exports are answered 503 until the log can be written again' },
        'appending to the write-ahead log failed',
      );
    }
    if (this.#unwritableSince !== undefined) return;
    this.#unwritableSince = Date.now();
    this.#recovery = setInterval(() => {
      if (this.#closing) return;
      this.#wal!.tryRecover().then(
        (ok) => {
          if (ok) this.#writable(false);
        },
        () => undefined,
      );
    }, RECOVERY_CHECK_MS);
    this.#recovery.unref();
  }

  /**
   * The log can be written again: `appended`, an append succeeded; else the log's own check
   * found room. Only an append ends the run of failures: if the next one fails the same way, it is
   * not logged again.
   */
  #writable(appended: boolean): void {
    if (appended) this.#appendFailure = undefined;
    if (this.#unwritableSince === undefined) return;
    this.#log.info(
      {
        unwritableMs: Date.now() - this.#unwritableSince,
        failedAppends: this.stats.logAppendFailures,
      },
      'the write-ahead log can be written again',
    );
    this.#unwritableSince = undefined;
    clearInterval(this.#recovery);
    this.#recovery = undefined;
  }

  /** The stage timings of writes settled now, whose append or insert began at `started`. */
  #observeWrites(group: readonly Waiter[], started: number): void {
    const now = performance.now();
    for (const waiter of group) {
      this.stats.writeWaitMs.observe(started - waiter.queuedAt);
      this.stats.writeMs.observe(now - started);
    }
  }

  #measureAppend(bytes: number, elapsedMs: number): void {
    if (bytes < 64 * 1024 || elapsedMs <= 0) return;
    const rate = (bytes / elapsedMs) * 1000;
    this.#appendBytesPerSecond += RATE_SMOOTHING * (rate - this.#appendBytesPerSecond);
  }

  // --- without the log: group commit to the store ---

  /**
   * Starts an insert of what is waiting, or leaves it for later. Each answer waits for its insert,
   * so an idle writer inserts at once: the group is whatever arrived while the insert before ran
   * (the engine's time per insert sets the batch size), never a fixed delay. Rows that arrived
   * during an insert wait, after it, until maxDelayMs after the first of them or a full batch.
   */
  #insertSoon(): void {
    if (this.#inserts > 0 || this.#waiting.length === 0) return; // the insert's end comes back here
    if (this.stats.pendingRows >= this.#maxBatchRows) {
      this.#kick();
      return;
    }
    if (this.#timer) return;
    const waitMs = this.#waiting[0]!.at + this.#maxDelayMs - Date.now();
    // A write to an idle writer: whatever waits arrived now (its age is 0, not a batch's).
    if (!this.#busy || waitMs <= 0) {
      this.#kick();
      return;
    }
    this.#timer = setTimeout(() => this.#kick(), Math.min(waitMs, this.#maxDelayMs));
  }

  #kick(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#inserts++;
    // #flushBatch settles every waiter itself; the chain must never stay rejected.
    this.#flushing = this.#flushing
      .then(() => this.#flushBatch())
      .catch(() => undefined)
      .finally(() => {
        this.#inserts--;
        this.#busy = this.#waiting.length > 0;
        this.#insertSoon();
      });
  }

  #takeBatch(): Waiter[] {
    const batch: Waiter[] = [];
    let rows = 0;
    while (this.#waiting.length > 0 && (rows === 0 || rows < this.#maxBatchRows)) {
      const waiter = this.#waiting.shift()!;
      batch.push(waiter);
      rows += waiter.rows;
      this.stats.pendingRows -= waiter.rows;
      this.stats.pendingBytes -= waiter.bytes;
    }
    return batch;
  }

  async #flushBatch(): Promise<void> {
    const batch = this.#takeBatch();
    if (batch.length === 0) return;
    const batchStarted = performance.now();
    // Each request's rows that are not duplicates, as the unit a refused row is isolated in.
    let batchRows = 0;
    for (const waiter of batch) batchRows += waiter.rows;
    const inBatch = new SpanKeyWindow(batchRows);
    const duplicates: (CostSourceCounts | undefined)[] = [];
    const units = batch.map((waiter) => {
      const parts: RowBlock[] = [];
      const keys: string[] = [];
      let duplicateCalls: CostSourceCounts | undefined;
      for (const record of waiter.records) {
        const kept = this.#newRows(record, inBatch);
        const allKeys = recordKeys(record);
        if (kept === undefined) {
          parts.push(record);
          for (const key of allKeys) keys.push(key);
        } else {
          duplicateCalls = callsNotKept(record, kept, duplicateCalls);
          parts.push(rowsOf(record, kept));
          for (const row of kept) keys.push(allKeys[row]!);
        }
      }
      duplicates.push(duplicateCalls);
      return { keys, ...joinBlocks(parts) };
    });
    let outcomes: UnitOutcome[];
    try {
      outcomes = await this.#inserter.insert(ROW_FORMAT, units);
    } catch (error) {
      for (const waiter of batch) waiter.reject(error);
      return;
    }
    this.#observeWrites(batch, batchStarted);
    batch.forEach((waiter, i) => {
      const outcome = outcomes[i]!;
      const refused = new Set(outcome.rejectedRows);
      this.#remember(units[i]!.keys.filter((_key, row) => !refused.has(row)));
      const duplicateCalls = duplicates[i];
      waiter.resolve({
        ...(refused.size === 0
          ? ALL_STORED
          : { rejected: refused.size, errorMessage: outcome.firstError }),
        ...(duplicateCalls ? { duplicateCalls } : {}),
      });
    });
  }

  /**
   * Which of the record's rows are new — not taken before (the window), and not earlier in this
   * group (`seen`, which the new ones join) — counting the others as duplicates dropped. Undefined
   * when all are new: the common case, where the record goes on as it is.
   */
  #newRows(record: WalRecord, seen: SpanKeyWindow): number[] | undefined {
    const block = record.keysBlock;
    let kept: number[] | undefined;
    forEachKey(record, (start, end, row) => {
      if (this.#recent.hasBytes(block, start, end) || seen.hasBytes(block, start, end)) {
        this.stats.duplicatesDropped++;
        kept ??= Array.from({ length: row }, (_, i) => i);
        return;
      }
      seen.addBytes(block, start, end);
      kept?.push(row);
    });
    return kept;
  }

  #remember(keys: readonly string[]): void {
    for (const key of keys) this.#recent.add(key);
  }

  #rememberRecord(record: WalRecord): void {
    const block = record.keysBlock;
    forEachKey(record, (start, end) => this.#recent.addBytes(block, start, end));
  }
}

const COST_SOURCE_COLUMN = SPAN_COLUMNS.indexOf('cost_source');

/**
 * Adds the LLM calls among a record's rows not in `kept` to `counts` (made when undefined), by
 * cost source. Only duplicates are read back, one line each: rare, and only when they occur.
 * Never throws: it runs outside the writes' error handling.
 */
function callsNotKept(
  record: WalRecord,
  kept: readonly number[],
  counts: CostSourceCounts | undefined,
): CostSourceCounts | undefined {
  const keep = new Set(kept);
  for (let row = 0; row < record.rowEnds.length; row++) {
    if (keep.has(row)) continue;
    let source: unknown;
    try {
      source = (JSON.parse(rowBytes(record, row).toString('utf8')) as unknown[])[
        COST_SOURCE_COLUMN
      ];
    } catch {
      // Not a row of ours to read (another format): a metric is not worth a write that hangs.
      continue;
    }
    const known = COST_SOURCES.find((name) => name === source);
    if (known === undefined) continue;
    counts ??= noCostSourceCounts();
    counts[known]++;
  }
  return counts;
}

/** The bytes of row `row` of a record (its line and newline). */
function rowBytes(record: WalRecord, row: number): Buffer {
  return record.body.subarray(row === 0 ? 0 : record.rowEnds[row - 1]!, record.rowEnds[row]!);
}

/** Some of a record's rows, as one insert body. */
function rowsOf(record: WalRecord, rows: readonly number[]): RowBlock {
  const rowEnds = new Uint32Array(rows.length);
  const parts = rows.map((row) => rowBytes(record, row));
  let total = 0;
  parts.forEach((part, i) => (rowEnds[i] = total += part.length));
  return { body: Buffer.concat(parts, total), rowEnds };
}

/** Blocks of rows one after another, as one. */
function joinBlocks(blocks: readonly RowBlock[]): RowBlock {
  if (blocks.length === 1) return blocks[0]!;
  const rows = blocks.reduce((n, block) => n + block.rowEnds.length, 0);
  const rowEnds = new Uint32Array(rows);
  let row = 0;
  let offset = 0;
  for (const block of blocks) {
    for (let i = 0; i < block.rowEnds.length; i++) rowEnds[row++] = offset + block.rowEnds[i]!;
    offset += block.body.length;
  }
  return { body: Buffer.concat(blocks.map((block) => block.body)), rowEnds };
}

/** A record remade with only some of its rows, framed for the log. */
function recordWithRows(record: WalRecord, rows: readonly number[]): Buffer {
  const keys = recordKeys(record);
  return encodeRecord({
    format: record.format,
    writtenAtMs: record.writtenAtMs,
    keys: rows.map((row) => keys[row]!),
    lines: rows.map((row) => rowBytes(record, row)),
  });
}
