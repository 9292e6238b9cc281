import { createHash } from 'node:crypto';
import { errorMessage, isRowDataError } from '../storage/errors.js';
import type { InsertOptions, Store } from '../storage/store.js';
import { SPAN_LINE_LAYOUTS, spanInsert } from './span-lines.js';
import type { SpanLineFormat } from './span-lines.js';
import type { WalRecord } from './wal-record.js';

/**
 * Inserts rows into `spans`, one insert per call, and isolates the rows the store refuses for
 * their content: when a batch is refused that way, each unit (a request, or a log record) is
 * stored on its own, halving around the refused rows, so one bad span costs only itself.
 */

/**
 * The serialization the rows of a batch are in; the one place that maps it to an insert.
 * `JSONEachRow` (objects) is what the log held before the positional layouts of span-lines.ts;
 * it stays readable so a log written by an older routewatch still drains after an upgrade.
 */
export type RowFormat = 'JSONEachRow' | SpanLineFormat;

/** Every format this routewatch can insert. */
export const ROW_FORMATS: ReadonlySet<string> = new Set<string>([
  'JSONEachRow',
  ...Object.keys(SPAN_LINE_LAYOUTS),
]);

function insertOptions(format: RowFormat): InsertOptions {
  return format === 'JSONEachRow' ? {} : { ...spanInsert(format) };
}

/** Rows as they go into an insert body. */
export interface RowBlock {
  /** The rows' bytes, one after another: any run of whole rows is a valid insert body. */
  body: Buffer;
  /** `rowEnds[i]` is the offset in `body` just past row i. */
  rowEnds: ArrayLike<number>;
}

/** What became of one unit: the indexes of the rows the store refused, and why the first was. */
export interface UnitOutcome {
  rejectedRows: number[];
  firstError: string;
}

export interface InserterStats {
  rowsWritten: number;
  /** Rows the store refused for their content. */
  rowsRejected: number;
  batches: number;
  /** Rows the store takes per second, measured over recent inserts. */
  insertRowsPerSecond: number;
}

/** The insert rate assumed before the first insert is measured, rows per second. */
export const INITIAL_ROWS_PER_SECOND = 20_000;
/** Weight of the newest measurement in the moving average of the insert rate. */
const RATE_SMOOTHING = 0.3;
const NOTHING_REJECTED: UnitOutcome = Object.freeze({ rejectedRows: [], firstError: '' });

/**
 * The deduplication token of an insert body: its SHA-256. The same rows sent again carry the same
 * token, and the engine skips the insert; different rows can never share one. Used for the parts
 * of a batch inserted apart around a refused row, and for an insert in flight when an older
 * routewatch stopped (it sent this token, and did not record it).
 */
export function deduplicationToken(body: Uint8Array): string {
  return `routewatch-${createHash('sha256').update(body).digest('hex')}`;
}

/**
 * The deduplication token of a batch of log records, without reading their rows again: the
 * SHA-256 of each record's row count, body length, checksum (the CRC-32 of its whole payload,
 * made on the ingest thread) and span keys, in order. Hashing the bodies themselves cost the event
 * loop about 9 ms per 10 000 LLM rows (docs/benchmarks.md); the keys are about a thirtieth of them.
 *
 * Two batches share a token only if they hold the same spans in the same order and their records
 * have the same checksums: an insert skipped for it would hold nothing the table does not already
 * count (`spans` is keyed by the span). The drainer records the token with the range in flight
 * (wal.ts `markInFlight`), so a repeat after a crash sends it again as it was.
 */
export function recordsToken(records: readonly WalRecord[]): string {
  const hash = createHash('sha256');
  const header = Buffer.allocUnsafe(12);
  for (const record of records) {
    header.writeUInt32LE(record.rows, 0);
    header.writeUInt32LE(record.body.length, 4);
    header.writeUInt32LE(record.checksum, 8);
    hash.update(header);
    hash.update(record.keysBlock);
  }
  return `routewatch-r-${hash.digest('hex')}`;
}

export class SpanInserter {
  readonly #store: Store;
  readonly #stats: InserterStats;
  readonly #tokens: boolean;

  /** `tokens`: send a deduplication token with every insert (the log's inserts are retried). */
  constructor(store: Store, stats: InserterStats, options: { tokens: boolean }) {
    this.#store = store;
    this.#stats = stats;
    this.#tokens = options.tokens;
  }

  /**
   * Stores the units' rows, as one insert when the store takes them all. Resolves with one outcome
   * per unit; rejects with the store's error when it fails for another reason than content (the
   * caller retries: with tokens, rows already stored by the failed attempt are not stored twice).
   */
  async insert(
    format: RowFormat,
    units: readonly RowBlock[],
    options: { token?: string } = {},
  ): Promise<UnitOutcome[]> {
    const rows = units.reduce((sum, unit) => sum + unit.rowEnds.length, 0);
    if (rows === 0) return units.map(() => NOTHING_REJECTED);
    const body =
      units.length === 1 ? units[0]!.body : Buffer.concat(units.map((unit) => unit.body));
    try {
      await this.#send(format, body, rows, options.token);
      return units.map(() => NOTHING_REJECTED);
    } catch (error) {
      if (!isRowDataError(error)) throw error;
    }
    const outcomes: UnitOutcome[] = [];
    for (const unit of units) outcomes.push(await this.#isolate(format, unit));
    return outcomes;
  }

  /** Stores one unit's rows, halving around rows the store refuses; other failures throw. */
  async #isolate(format: RowFormat, unit: RowBlock): Promise<UnitOutcome> {
    const rowStart = (i: number) => (i === 0 ? 0 : unit.rowEnds[i - 1]!);
    const rejectedRows: number[] = [];
    let firstError = '';
    const ranges: Array<[number, number]> = [[0, unit.rowEnds.length]];
    while (ranges.length > 0) {
      const [from, to] = ranges.pop()!;
      if (from === to) continue;
      try {
        await this.#send(format, unit.body.subarray(rowStart(from), rowStart(to)), to - from);
      } catch (error) {
        if (!isRowDataError(error)) throw error;
        if (to - from > 1) {
          const middle = from + Math.floor((to - from) / 2);
          ranges.push([middle, to], [from, middle]);
          continue;
        }
        rejectedRows.push(from);
        firstError ||= errorMessage(error).split('\n')[0]!;
      }
    }
    this.#stats.rowsRejected += rejectedRows.length;
    return rejectedRows.length === 0 ? NOTHING_REJECTED : { rejectedRows, firstError };
  }

  /** One insert; with tokens, under `token` (the batch's), or else the body's own. */
  async #send(format: RowFormat, body: Buffer, rows: number, token?: string): Promise<void> {
    const started = performance.now();
    const options = insertOptions(format);
    if (this.#tokens) options.deduplicationToken = token ?? deduplicationToken(body);
    await this.#store.insertJsonEachRow('spans', body, options);
    this.#measure(rows, performance.now() - started);
    this.#stats.rowsWritten += rows;
    this.#stats.batches++;
  }

  /** Moving average of the insert rate, from batches large enough to say something. */
  #measure(rows: number, elapsedMs: number): void {
    if (rows < 100 || elapsedMs <= 0) return;
    const rate = (rows / elapsedMs) * 1000;
    const { insertRowsPerSecond } = this.#stats;
    this.#stats.insertRowsPerSecond =
      insertRowsPerSecond + RATE_SMOOTHING * (rate - insertRowsPerSecond);
  }
}
