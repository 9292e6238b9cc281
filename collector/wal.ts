import { constants, existsSync, readFileSync } from 'node:fs';
import { open, readFile, readdir, statfs, unlink, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  WalError,
  decodeFrames,
  decodeRecord,
  decodeSegment,
  recordKeys,
  recordOfFrame,
} from './wal-record.js';
import type { WalRecord } from './wal-record.js';
import { CheckpointFile, readCheckpoint, syncDirectory } from './wal-checkpoint.js';
import type { Checkpoint } from './wal-checkpoint.js';
import { PRIVATE_DIRECTORY, PRIVATE_FILE, makeDirectory } from '../storage/make-directory.js';

/**
 * The write-ahead log of the span writer: rows are appended here and fsynced before a request is
 * acknowledged, and a drainer moves them into ClickHouse in log order (span-writer.ts).
 *
 * On disk, a directory holding
 * - segments `<20-digit sequence>.wal`: an 8-byte magic, then records one after another;
 * - `checkpoint`: how far the log has been stored, and the range of the insert in flight, written
 *   in place in one of two slots (wal-checkpoint.ts);
 * - `LOCK`: the pid of the process holding the log (one process per directory).
 *
 * A record is framed as `u32 payload length | u32 CRC-32 of the payload | payload` (little
 * endian). Appends only ever add at the end of the newest segment and are acknowledged once on
 * disk (segments are opened O_DSYNC where the platform has it, else each write is followed by
 * fdatasync), so after a crash only the tail of the newest segment can be torn; at open it is
 * detected (short frame, impossible length, checksum mismatch), cut off and counted. Nothing cut
 * off was ever acknowledged.
 */

/** First bytes of every segment; the last byte is the segment format version. */
export const SEGMENT_MAGIC = Buffer.from('RWWAL\r\n\x01', 'latin1');
const SEGMENT_NAME = /^(\d{20})\.wal$/;
/**
 * How a new segment is opened: write-only, created, never over an existing one, and, where the
 * platform has O_DSYNC (Linux, macOS), with each write returning only once its data is on disk,
 * which saves an append the separate fdatasync and its round trip through the thread pool.
 */
const SEGMENT_DSYNC = constants.O_DSYNC !== undefined;
const SEGMENT_FLAGS = SEGMENT_DSYNC
  ? constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DSYNC
  : 'wx';
const LOCK = 'LOCK';
const MiB = 1024 * 1024;
/** Free space a recovered log needs, at most (a quarter segment, if less): a few group commits. */
const RECOVERY_ROOM_BYTES = MiB;

/** The segment appends go to. */
interface ActiveSegment {
  sequence: number;
  handle: FileHandle;
  size: number;
}

// ---------------------------------------------------------------------------------------------
// Framing: wal-record.ts (pure functions over buffers, also used by the ingest threads).

export { crc32, crc32Portable } from './crc32.js';
export {
  FRAME_HEADER_BYTES,
  WalError,
  decodeFrames,
  decodeRecord,
  encodeRecord,
  recordKeys,
} from './wal-record.js';
export type { DecodedFrames, FrameProblem, WalRecord, WalRecordInput } from './wal-record.js';

// ---------------------------------------------------------------------------------------------
// The log on disk.

export interface WalPosition {
  segment: number;
  offset: number;
}

/** A record appended and not yet stored. */
export interface WalEntry {
  start: WalPosition;
  end: WalPosition;
  /** Bytes of the frame on disk. */
  frameBytes: number;
  rows: number;
  format: string;
  writtenAtMs: number;
  /** The record itself while it is kept in memory (appended while the cache had room). */
  cached?: WalRecord | undefined;
}

export interface WalLog {
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
}

export interface WalOptions {
  dir: string;
  /** The disk budget: bytes of segments on disk past which appends are refused. */
  maxBytes: number;
  /** A new segment starts when the current one would grow past this; default maxBytes/16 in 4 KiB–64 MiB. */
  segmentBytes?: number;
  /** Bytes of unstored records kept in memory, so the drainer does not read them back; default 64 MiB. */
  cacheBytes?: number;
  log?: WalLog;
}

export interface WalStats {
  /** Appends (group commits), each one durable write. */
  appends: number;
  recordsAppended: number;
  bytesAppended: number;
  /** Records found unstored at open and replayed. */
  replayedRecords: number;
  replayedRows: number;
  /** Torn records cut off the newest segment at open (never acknowledged). */
  tornRecordsDropped: number;
  /** Records found unreadable where they cannot be torn (older segments, or read back later). */
  corruptRecords: number;
  segmentsDeleted: number;
}

const segmentName = (sequence: number) => `${String(sequence).padStart(20, '0')}.wal`;
const before = (a: WalPosition, b: WalPosition) =>
  a.segment < b.segment || (a.segment === b.segment && a.offset < b.offset);
const samePosition = (a: WalPosition, b: WalPosition) =>
  a.segment === b.segment && a.offset === b.offset;

/** Directories held by a log in this process (the LOCK file guards against other processes). */
const openDirs = new Set<string>();

/**
 * The log: append (one caller at a time), read back, release what was stored. Everything that
 * touches the disk is here; what to store and when is the span writer's.
 */
export class WriteAheadLog {
  readonly dir: string;
  readonly maxBytes: number;
  readonly segmentBytes: number;
  readonly stats: WalStats = {
    appends: 0,
    recordsAppended: 0,
    bytesAppended: 0,
    replayedRecords: 0,
    replayedRows: 0,
    tornRecordsDropped: 0,
    corruptRecords: 0,
    segmentsDeleted: 0,
  };
  readonly #cacheBytes: number;
  readonly #log: WalLog | undefined;
  /** Size of every segment on disk, by sequence number. */
  readonly #sizes = new Map<number, number>();
  #entries: WalEntry[] = [];
  #unstoredRows = 0;
  #unstoredBytes = 0;
  #cachedBytes = 0;
  /** Everything before this is stored. */
  #position: WalPosition;
  #inFlightEnd: WalPosition | undefined;
  #inFlightToken: string | undefined;
  #replayedKeys: string[] = [];
  #active: ActiveSegment;
  readonly #checkpoint: CheckpointFile;
  #rotateBeforeNextAppend = false;
  #appending = false;
  /** A tryRecover under way: appends and close wait for it. */
  #recovering: Promise<boolean> | undefined;
  /** A rotation started by `release`; appends wait for it. */
  #rotation: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(
    options: WalOptions,
    state: {
      position: WalPosition;
      active: ActiveSegment;
      checkpoint: CheckpointFile;
    },
  ) {
    this.dir = resolve(options.dir);
    this.maxBytes = options.maxBytes;
    this.segmentBytes = defaultSegmentBytes(options);
    this.#cacheBytes = options.cacheBytes ?? 64 * MiB;
    this.#log = options.log;
    this.#position = state.position;
    this.#active = state.active;
    this.#checkpoint = state.checkpoint;
  }

  /**
   * Opens the log in `dir` (created if missing): takes the lock, reads the checkpoint, checks every
   * unstored record, cuts a torn tail off the newest segment and starts a new segment. What was
   * not stored before is then `entries()`, oldest first.
   */
  static async open(options: WalOptions): Promise<WriteAheadLog> {
    const dir = resolve(options.dir);
    if (openDirs.has(dir)) {
      throw new WalError(
        'WAL_LOCKED',
        `the write-ahead log ${dir} is already open in this process`,
      );
    }
    try {
      makeDirectory(dir, PRIVATE_DIRECTORY);
    } catch (error) {
      throw new WalError(
        'WAL_OPEN_FAILED',
        `cannot create the write-ahead log directory ${dir} (ROUTEWATCH_WAL_DIR): ${(error as Error).message}`,
        { cause: error },
      );
    }
    await takeLock(dir);
    openDirs.add(dir);
    try {
      return await WriteAheadLog.#scan(options, dir);
    } catch (error) {
      openDirs.delete(dir);
      await unlink(join(dir, LOCK)).catch(() => undefined);
      throw error;
    }
  }

  static async #scan(options: WalOptions, dir: string): Promise<WriteAheadLog> {
    const { file, checkpoint } = await CheckpointFile.open(dir, options.log);
    try {
      return await WriteAheadLog.#scanSegments(options, dir, file, checkpoint);
    } catch (error) {
      await file.close().catch(() => undefined);
      throw error;
    }
  }

  static async #scanSegments(
    options: WalOptions,
    dir: string,
    file: CheckpointFile,
    checkpoint: Checkpoint,
  ): Promise<WriteAheadLog> {
    const log = options.log;
    const sequences = (await readdir(dir))
      .map((name) => SEGMENT_NAME.exec(name)?.[1])
      .filter((s): s is string => s !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    const sizes = new Map<number, number>();
    const entries: WalEntry[] = [];
    const keys: string[] = [];
    let tornRecordsDropped = 0;
    let corruptRecords = 0;
    let deleted = 0;
    for (const [index, sequence] of sequences.entries()) {
      const path = join(dir, segmentName(sequence));
      if (sequence < checkpoint.segment) {
        // Stored entirely; the deletion after the checkpoint was interrupted.
        await unlink(path);
        deleted++;
        continue;
      }
      const newest = index === sequences.length - 1;
      const bytes = await readFile(path);
      if (!bytes.subarray(0, SEGMENT_MAGIC.length).equals(SEGMENT_MAGIC)) {
        const tornHeader =
          bytes.length < SEGMENT_MAGIC.length &&
          SEGMENT_MAGIC.subarray(0, bytes.length).equals(bytes);
        if (newest && tornHeader) {
          // Created, then the process died before the header was on disk: nothing in it.
          await unlink(path);
          continue;
        }
        throw new WalError(
          'WAL_UNKNOWN_FILE',
          `${path} is not a routewatch write-ahead log segment; move it out of ROUTEWATCH_WAL_DIR`,
        );
      }
      const from =
        sequence === checkpoint.segment
          ? Math.max(SEGMENT_MAGIC.length, checkpoint.offset)
          : SEGMENT_MAGIC.length;
      const decoded = decodeSegment(bytes, from);
      for (const frame of decoded.frames) {
        const record = decodeRecord(frame.payload, frame.checksum);
        entries.push({
          start: { segment: sequence, offset: frame.start },
          end: { segment: sequence, offset: frame.end },
          frameBytes: frame.end - frame.start,
          rows: record.rows,
          format: record.format,
          writtenAtMs: record.writtenAtMs,
        });
        for (const key of recordKeys(record)) keys.push(key);
      }
      for (const damaged of decoded.skipped) {
        // Zeros in the newest segment: a group commit's write torn by a power loss, its later
        // pages on disk before its earlier ones. Its records were never acknowledged; those after
        // the hole are kept (an exporter's retry of them is dropped as a duplicate).
        if (newest && bytes.subarray(damaged.start, damaged.end).every((byte) => byte === 0)) {
          tornRecordsDropped++;
          log?.warn(
            { segment: path, offset: damaged.start, skippedBytes: damaged.end - damaged.start },
            'write-ahead log: skipped a hole of zeros in the newest segment (a write torn by a power loss, never acknowledged); the records after it are kept',
          );
          continue;
        }
        // Good records follow: not a torn append (a crash tears only the end) but damage to
        // records acknowledged; the ones after it are kept.
        corruptRecords++;
        log?.error(
          {
            segment: path,
            offset: damaged.start,
            skippedBytes: damaged.end - damaged.start,
            problem: damaged.problem,
          },
          'write-ahead log: an unreadable record (damage on disk, not a crash) was skipped; the records after it are kept',
        );
      }
      let size = bytes.length;
      const tail = decoded.tail;
      if (tail && newest) {
        // A torn tail: the append was never acknowledged. Cut it so appends never follow it.
        const handle = await open(path, 'r+');
        try {
          await handle.truncate(tail.start);
          await handle.datasync();
        } finally {
          await handle.close();
        }
        size = tail.start;
        tornRecordsDropped++;
        log?.warn(
          {
            segment: path,
            offset: tail.start,
            cutBytes: bytes.length - tail.start,
            problem: tail.problem,
          },
          'write-ahead log: cut a torn record off the end (it was never acknowledged)',
        );
      } else if (tail) {
        corruptRecords++;
        log?.error(
          {
            segment: path,
            offset: tail.start,
            skippedBytes: bytes.length - tail.start,
            problem: tail.problem,
          },
          'write-ahead log: an unreadable record at the end of an older segment was skipped',
        );
      }
      sizes.set(sequence, size);
    }
    // Appends go to a new segment, numbered past every segment and past the checkpoint's: the
    // checkpoint's offset must never point into a segment written after it.
    const last = sequences.at(-1);
    const nextSequence = Math.max(last === undefined ? 0 : last + 1, checkpoint.segment + 1);
    const active = await createSegment(dir, nextSequence);
    sizes.set(nextSequence, active.size);
    const position: WalPosition = { segment: checkpoint.segment, offset: checkpoint.offset };
    const wal = new WriteAheadLog(options, { position, active, checkpoint: file });
    for (const [sequence, size] of sizes) wal.#sizes.set(sequence, size);
    wal.#entries = entries;
    for (const entry of entries) {
      wal.#unstoredRows += entry.rows;
      wal.#unstoredBytes += entry.frameBytes;
    }
    wal.#replayedKeys = keys;
    wal.stats.replayedRecords = entries.length;
    wal.stats.replayedRows = wal.#unstoredRows;
    wal.stats.tornRecordsDropped = tornRecordsDropped;
    wal.stats.corruptRecords = corruptRecords;
    wal.stats.segmentsDeleted = deleted;
    const inFlightEnd = checkpoint.inFlightEnd;
    if (inFlightEnd && entries.some((e) => samePosition(e.end, inFlightEnd))) {
      wal.#inFlightEnd = inFlightEnd;
      wal.#inFlightToken = checkpoint.inFlightToken;
    } else if (inFlightEnd && entries.length > 0) {
      log?.warn(
        { inFlightEnd },
        'write-ahead log: the insert in flight at the last stop ends at no record; it is not repeated as one batch',
      );
    }
    await wal.#deleteStoredSegments();
    return wal;
  }

  /** Bytes of segments on disk: what the disk budget counts. */
  get bytes(): number {
    let total = 0;
    for (const size of this.#sizes.values()) total += size;
    return total;
  }

  get unstoredRows(): number {
    return this.#unstoredRows;
  }

  get unstoredBytes(): number {
    return this.#unstoredBytes;
  }

  /** Records appended and not yet stored, oldest first. Do not modify. */
  entries(): readonly WalEntry[] {
    return this.#entries;
  }

  /** Where the insert in flight before the last stop ended, when records up to there are unstored. */
  get inFlightEnd(): WalPosition | undefined {
    return this.#inFlightEnd;
  }

  /**
   * The deduplication token of the insert in flight at the last stop, as recorded with its range;
   * undefined when there was none, or when an older routewatch recorded the range without it.
   */
  get inFlightToken(): string | undefined {
    return this.#inFlightToken;
  }

  /** Span keys of the records found unstored at open, oldest first (for de-duplication). */
  takeReplayedKeys(): string[] {
    const keys = this.#replayedKeys;
    this.#replayedKeys = [];
    return keys;
  }

  /**
   * Appends records (frames from `encodeRecord`) with one write (and one fdatasync where the
   * segment is not O_DSYNC); resolves once they are on disk. One append at a time. On failure
   * nothing of it counts as written, and the next append starts a new segment so that no record
   * ever follows a torn one.
   */
  async append(frames: readonly Buffer[]): Promise<WalEntry[]> {
    this.#assertOpen();
    while (this.#recovering) await this.#recovering;
    this.#assertOpen();
    if (this.#appending) throw new WalError('WAL_BUSY', 'one append at a time');
    this.#appending = true;
    try {
      await this.#rotation;
      let total = 0;
      for (const frame of frames) total += frame.length;
      if (
        this.#rotateBeforeNextAppend ||
        (this.#active.size > SEGMENT_MAGIC.length && this.#active.size + total > this.segmentBytes)
      ) {
        await this.#rotate();
      }
      const active = this.#active;
      const start = active.size;
      try {
        await writeAll(active.handle, frames, start);
        if (!SEGMENT_DSYNC) await active.handle.datasync();
      } catch (error) {
        this.#rotateBeforeNextAppend = true;
        await active.handle.truncate(start).catch(() => undefined);
        throw new WalError(
          'WAL_WRITE_FAILED',
          `could not write the write-ahead log ${this.dir}: ${(error as Error).message}`,
          { cause: error },
        );
      }
      active.size += total;
      this.#sizes.set(active.sequence, active.size);
      const appended: WalEntry[] = [];
      let offset = start;
      for (const frame of frames) {
        const record = recordOfFrame(frame);
        const entry: WalEntry = {
          start: { segment: active.sequence, offset },
          end: { segment: active.sequence, offset: offset + frame.length },
          frameBytes: frame.length,
          rows: record.rows,
          format: record.format,
          writtenAtMs: record.writtenAtMs,
        };
        if (this.#cachedBytes + frame.length <= this.#cacheBytes) {
          entry.cached = record;
          this.#cachedBytes += frame.length;
        }
        offset += frame.length;
        this.#entries.push(entry);
        this.#unstoredRows += entry.rows;
        this.#unstoredBytes += entry.frameBytes;
        appended.push(entry);
      }
      this.stats.appends++;
      this.stats.recordsAppended += frames.length;
      this.stats.bytesAppended += total;
      return appended;
    } finally {
      this.#appending = false;
    }
  }

  /**
   * Reads an unstored record: from memory when cached, else from its segment. Undefined when the
   * bytes on disk no longer pass their checksum (counted and logged: data lost after it was
   * acknowledged, which only a failing disk does).
   */
  async read(entry: WalEntry): Promise<WalRecord | undefined> {
    if (entry.cached) return entry.cached;
    this.#assertOpen();
    const path = join(this.dir, segmentName(entry.start.segment));
    const frame = Buffer.allocUnsafe(entry.frameBytes);
    const handle = await open(path, 'r');
    try {
      const { bytesRead } = await handle.read(frame, 0, entry.frameBytes, entry.start.offset);
      const decoded = decodeFrames(frame.subarray(0, bytesRead), 0);
      const read = decoded.frames[0];
      if (read) return decodeRecord(read.payload, read.checksum);
      this.stats.corruptRecords++;
      this.#log?.error(
        { segment: path, offset: entry.start.offset, problem: decoded.problem },
        'write-ahead log: a record no longer reads back as written; its rows are lost',
      );
      return undefined;
    } finally {
      await handle.close();
    }
  }

  /**
   * Records, durably, that an insert of the records up to `end` is about to be sent with `token`:
   * after a crash the same range is retried as one insert, with the same deduplication token.
   */
  async markInFlight(end: WalPosition, token: string): Promise<void> {
    this.#assertOpen();
    await this.#saveCheckpoint(end, token);
    this.#inFlightEnd = end;
    this.#inFlightToken = token;
  }

  /** The records up to `end` are stored: forget them, and delete segments holding nothing else. */
  async release(end: WalPosition): Promise<void> {
    this.#assertOpen();
    let count = 0;
    while (count < this.#entries.length && !before(end, this.#entries[count]!.end)) count++;
    const released = this.#entries.slice(0, count);
    const position = before(this.#position, end) ? end : this.#position;
    const savedPosition = this.#position;
    this.#position = position;
    try {
      await this.#saveCheckpoint(undefined);
    } catch (error) {
      this.#position = savedPosition;
      throw error;
    }
    this.#inFlightEnd = undefined;
    this.#inFlightToken = undefined;
    this.#entries = this.#entries.slice(count);
    for (const entry of released) {
      this.#unstoredRows -= entry.rows;
      this.#unstoredBytes -= entry.frameBytes;
      if (entry.cached) {
        this.#cachedBytes -= entry.frameBytes;
        entry.cached = undefined;
      }
    }
    await this.#deleteStoredSegments();
    // A stored active segment would count against the budget until the next append, and with
    // the log full there may be none: past a quarter of its size it is replaced now.
    const active = this.#active;
    if (
      !this.#appending &&
      !this.#recovering &&
      !this.#entries.some((e) => e.start.segment === active.sequence) &&
      active.size >= this.segmentBytes / 4
    ) {
      this.#rotation = this.#rotate().catch((error: unknown) => {
        // The next append tries again.
        this.#rotateBeforeNextAppend = true;
        this.#log?.warn({ err: error }, 'write-ahead log: starting a new segment failed');
      });
      await this.#rotation;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    // A recovery under way starts a segment: not after the lock is gone.
    while (this.#recovering) await this.#recovering;
    if (this.#closed) return;
    this.#closed = true;
    await this.#active.handle.close().catch(() => undefined);
    await this.#checkpoint.close().catch(() => undefined);
    await unlink(join(this.dir, LOCK)).catch(() => undefined);
    openDirs.delete(this.dir);
  }

  /**
   * After a failed append, with no append under way: starts the segment the next append needs,
   * freeing stored segments first. True when that worked: the log can be written again (a disk
   * that was full has room). For a writer with no request to try appends with.
   */
  async tryRecover(): Promise<boolean> {
    this.#assertOpen();
    if (this.#appending || this.#recovering) return false;
    const recovering = (async () => {
      await this.#rotation;
      if (this.#rotateBeforeNextAppend) await this.#rotate();
      // Room for a group commit, not only for a segment's start: a disk with a few KB free
      // takes the 8-byte start and refuses the next append, and ready would flap.
      return (await freeBytes(this.dir)) >= Math.min(this.segmentBytes / 4, RECOVERY_ROOM_BYTES);
    })();
    // Appends wait for it (not WAL_BUSY), and so does a close.
    this.#recovering = recovering.then(
      (ok) => ok,
      () => false,
    );
    try {
      return await this.#recovering;
    } finally {
      this.#recovering = undefined;
    }
  }

  async #rotate(): Promise<void> {
    const previous = this.#active;
    // Stored segments go first: on a full disk they are the room the new segment needs. The
    // active one too when all of it is stored: the checkpoint then points into it, so a start
    // after a crash here still numbers the next segment past it.
    await this.#deleteStoredSegments();
    const previousStored =
      this.#sizes.has(previous.sequence) &&
      !this.#entries.some((e) => e.start.segment === previous.sequence) &&
      this.#position.segment === previous.sequence &&
      this.#position.offset >= previous.size;
    // A segment that holds nothing (its start written, every append after it failed) goes too:
    // no checkpoint points into it, and on a full disk each retry would leave one more.
    const previousEmpty =
      previous.size === SEGMENT_MAGIC.length &&
      !this.#entries.some((e) => e.start.segment === previous.sequence);
    if (previousStored || previousEmpty) {
      await previous.handle.close().catch(() => undefined);
      await unlink(join(this.dir, segmentName(previous.sequence))).catch(
        (error: NodeJS.ErrnoException) => {
          if (error.code !== 'ENOENT') throw error;
        },
      );
      this.#sizes.delete(previous.sequence);
      this.stats.segmentsDeleted++;
    }
    let next: ActiveSegment;
    try {
      next = await createSegment(this.dir, previous.sequence + 1);
    } catch (error) {
      // The active segment may be gone: nothing is written until a new one is started.
      this.#rotateBeforeNextAppend = true;
      throw error;
    }
    this.#active = next;
    this.#sizes.set(next.sequence, next.size);
    this.#rotateBeforeNextAppend = false;
    if (!previousStored && !previousEmpty) await previous.handle.close().catch(() => undefined);
    await this.#deleteStoredSegments();
  }

  /** Deletes segments other than the active one whose every record is stored. */
  async #deleteStoredSegments(): Promise<void> {
    // Chosen and forgotten synchronously, so that two callers never delete the same segment.
    const stored: number[] = [];
    for (const [sequence, size] of this.#sizes) {
      if (sequence === this.#active.sequence) continue;
      const drained =
        sequence < this.#position.segment ||
        (sequence === this.#position.segment && this.#position.offset >= size);
      if (!drained || this.#entries.some((e) => e.start.segment === sequence)) continue;
      stored.push(sequence);
      this.#sizes.delete(sequence);
    }
    for (const sequence of stored) {
      await unlink(join(this.dir, segmentName(sequence))).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
      this.stats.segmentsDeleted++;
    }
  }

  async #saveCheckpoint(inFlightEnd: WalPosition | undefined, token?: string): Promise<void> {
    await this.#checkpoint.save({
      version: 1,
      segment: this.#position.segment,
      offset: this.#position.offset,
      inFlightEnd: inFlightEnd ?? null,
      ...(inFlightEnd && token ? { inFlightToken: token } : {}),
    });
  }

  #assertOpen(): void {
    if (this.#closed) throw new WalError('WAL_CLOSED', 'the write-ahead log is closed');
  }
}

/** maxBytes/16 within 4 KiB–64 MiB: enough segments that stored ones free the budget early. */
function defaultSegmentBytes(options: WalOptions): number {
  if (options.segmentBytes !== undefined) return options.segmentBytes;
  return Math.min(64 * MiB, Math.max(4 * 1024, Math.floor(options.maxBytes / 16)));
}

/** Free bytes for an unprivileged writer on the log's filesystem; unknown: taken as plenty. */
async function freeBytes(dir: string): Promise<number> {
  try {
    const stats = await statfs(dir);
    return stats.bavail * stats.bsize;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

async function createSegment(dir: string, sequence: number): Promise<ActiveSegment> {
  const path = join(dir, segmentName(sequence));
  const handle = await open(path, SEGMENT_FLAGS, PRIVATE_FILE);
  try {
    await handle.write(SEGMENT_MAGIC, 0, SEGMENT_MAGIC.length, 0);
    await handle.datasync();
    // The new file's name must be on disk before anything in it is acknowledged.
    await syncDirectory(dir);
  } catch (error) {
    await handle.close().catch(() => undefined);
    // Created here (O_EXCL) and holding nothing: left behind, it would refuse every later try
    // at this name, and a disk full for a moment would stop the log until a restart.
    await unlink(path).catch(() => undefined);
    throw error;
  }
  return { sequence, handle, size: SEGMENT_MAGIC.length };
}

async function writeAll(handle: FileHandle, frames: readonly Buffer[], position: number) {
  let pending = frames.filter((frame) => frame.length > 0);
  let at = position;
  while (pending.length > 0) {
    const { bytesWritten } = await handle.writev(pending, at);
    at += bytesWritten;
    // A short write: continue after what was written.
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const frame of pending) {
      if (skip >= frame.length) {
        skip -= frame.length;
        continue;
      }
      rest.push(skip > 0 ? frame.subarray(skip) : frame);
      skip = 0;
    }
    if (bytesWritten === 0 && rest.length > 0) throw new Error('the disk accepted no bytes');
    pending = rest;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The running process other than this one that holds the log in `dir` (its LOCK), if any. */
export function logHolder(dir: string): number | undefined {
  let holder: number;
  try {
    holder = Number(readFileSync(join(dir, LOCK), 'utf8').trim());
  } catch {
    return undefined;
  }
  return Number.isInteger(holder) && holder > 0 && holder !== process.pid && processAlive(holder)
    ? holder
    : undefined;
}

/** One process per log: a LOCK file with the holder's pid; a dead holder's lock is taken over. */
async function takeLock(dir: string): Promise<void> {
  const path = join(dir, LOCK);
  if (existsSync(path)) {
    const holder = logHolder(dir);
    if (holder !== undefined) {
      throw new WalError(
        'WAL_LOCKED',
        `the write-ahead log ${dir} is held by process ${holder}: stop it, or give this ` +
          `instance its own ROUTEWATCH_WAL_DIR (if no such routewatch runs, delete ${path})`,
      );
    }
  }
  await writeFile(path, `${process.pid}\n`, { mode: PRIVATE_FILE });
}

/**
 * What the log in `dir` holds that its checkpoint does not say is stored, read without changing
 * anything: the records (acknowledged batches) and their spans. A routewatch killed before its
 * drainer caught up leaves them, and stores them at its next start. Records of the insert that
 * was in flight count too: the store may hold them already. None when there is no log.
 */
export async function unstoredInLog(dir: string): Promise<{ records: number; spans: number }> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { records: 0, spans: 0 };
    throw error;
  }
  const checkpoint = await readCheckpoint(dir);
  let records = 0;
  let spans = 0;
  for (const name of names) {
    const sequence = Number(SEGMENT_NAME.exec(name)?.[1] ?? -1);
    if (sequence < checkpoint.segment) continue;
    const bytes = await readFile(join(dir, name));
    if (!bytes.subarray(0, SEGMENT_MAGIC.length).equals(SEGMENT_MAGIC)) continue;
    const from =
      sequence === checkpoint.segment
        ? Math.max(SEGMENT_MAGIC.length, checkpoint.offset)
        : SEGMENT_MAGIC.length;
    for (const frame of decodeSegment(bytes, from).frames) {
      records++;
      try {
        spans += decodeRecord(frame.payload, frame.checksum).rows;
      } catch {
        // A record the next start will report as corrupt: counted, its spans unknown.
      }
    }
  }
  return { records, spans };
}
