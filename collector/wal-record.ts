import { crc32 } from './crc32.js';

/**
 * The write-ahead log's records (wal.ts), as pure functions over buffers. A record is framed as
 * `u32 payload length | u32 CRC-32 of the payload | payload` (little endian); its payload holds
 * the rows' insert format, when it was written, each row's span key and the rows' bytes.
 *
 * Apart from the log itself so that the ingest threads can build whole records (ingest.ts): the
 * main thread then appends them as they come, without a string per row on its heap.
 */

export const FRAME_HEADER_BYTES = 8;
/** The smallest payload a record can have: version, format length, time, rows, keys length. */
const MIN_PAYLOAD_BYTES = 1 + 1 + 8 + 4 + 4;
/** A length above this is read as corruption, not as a record to wait for. */
const MAX_PAYLOAD_BYTES = 1024 * 1024 * 1024;
const RECORD_VERSION = 1;

export class WalError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WalError';
    this.code = code;
  }
}

/** What one record holds: a group of rows as they go into an insert body, and their span keys. */
export interface WalRecordInput {
  /** The insert format of the rows, e.g. `JSONEachRow`; a batch never mixes formats. */
  format: string;
  writtenAtMs: number;
  /** The span key of each row, for de-duplication after a restart. */
  keys: readonly string[];
  /**
   * The rows. A string is a text row: its UTF-8 bytes and a newline go into the body; bytes go in
   * as they are (a binary format carries its own framing). The log never looks inside.
   */
  lines: readonly (string | Uint8Array)[];
}

/** A record read back: the rows' bytes as one insert body, and where each row ends in it. */
export interface WalRecord {
  format: string;
  writtenAtMs: number;
  rows: number;
  /** Concatenated row bytes: any run of whole rows is a valid insert body. */
  body: Buffer;
  /** `rowEnds[i]` is the offset in `body` just past row i. */
  rowEnds: Uint32Array;
  /** The keys, encoded; `recordKeys()` decodes them. */
  keysBlock: Buffer;
  /** The CRC-32 of the record's payload, from its frame. */
  checksum: number;
}

/** Encodes one record with its frame (length, checksum), ready to append. */
export function encodeRecord(input: WalRecordInput): Buffer {
  const { keys, lines } = input;
  if (keys.length !== lines.length) {
    throw new WalError('WAL_BAD_RECORD', `${keys.length} keys for ${lines.length} rows`);
  }
  const format = Buffer.from(input.format, 'latin1');
  if (format.length === 0 || format.length > 255) {
    throw new WalError('WAL_BAD_RECORD', `bad format name ${JSON.stringify(input.format)}`);
  }
  let keysBytes = 0;
  const keyLengths = new Array<number>(keys.length);
  for (let i = 0; i < keys.length; i++) {
    const length = Buffer.byteLength(keys[i]!);
    if (length > 0xffff) throw new WalError('WAL_BAD_RECORD', 'a span key over 64 KiB');
    keyLengths[i] = length;
    keysBytes += 2 + length;
  }
  let bodyBytes = 0;
  const rowLengths = new Array<number>(lines.length);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const length = typeof line === 'string' ? Buffer.byteLength(line) + 1 : line.byteLength;
    rowLengths[i] = length;
    bodyBytes += length;
  }
  const payloadBytes = MIN_PAYLOAD_BYTES + format.length + keysBytes + 4 * lines.length + bodyBytes;
  if (payloadBytes > MAX_PAYLOAD_BYTES) {
    throw new WalError('WAL_RECORD_TOO_LARGE', `a record of ${payloadBytes} bytes`);
  }
  // Never from Buffer's shared pool: an ingest thread hands the frame's memory over whole.
  const frame = Buffer.allocUnsafeSlow(FRAME_HEADER_BYTES + payloadBytes);
  let at = FRAME_HEADER_BYTES;
  at = frame.writeUInt8(RECORD_VERSION, at);
  at = frame.writeUInt8(format.length, at);
  at += format.copy(frame, at);
  at = frame.writeDoubleLE(input.writtenAtMs, at);
  at = frame.writeUInt32LE(lines.length, at);
  at = frame.writeUInt32LE(keysBytes, at);
  for (let i = 0; i < keys.length; i++) {
    at = frame.writeUInt16LE(keyLengths[i]!, at);
    at += frame.write(keys[i]!, at, keyLengths[i]!, 'utf8');
  }
  let rowEnd = 0;
  for (const length of rowLengths) {
    rowEnd += length;
    at = frame.writeUInt32LE(rowEnd, at);
  }
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (typeof line === 'string') {
      at += frame.write(line, at, rowLengths[i]! - 1, 'utf8');
      at = frame.writeUInt8(0x0a, at);
    } else {
      frame.set(line, at);
      at += line.byteLength;
    }
  }
  frame.writeUInt32LE(payloadBytes, 0);
  frame.writeUInt32LE(crc32(frame.subarray(FRAME_HEADER_BYTES)), 4);
  return frame;
}

/** Why reading frames stopped before the end of the buffer. */
export type FrameProblem = 'torn' | 'bad-length' | 'checksum';

export interface DecodedFrames {
  frames: Array<{ start: number; end: number; payload: Buffer; checksum: number }>;
  /** Offset just past the last whole, valid frame. */
  end: number;
  /** Set when bytes after `end` are not a valid frame. */
  problem?: FrameProblem;
}

/**
 * Reads consecutive frames from `from` on, stopping at the end of the buffer or at the first
 * frame that is short (torn), has an impossible length (zeroes after a crash read as length 0) or
 * fails its checksum. Frames after a bad one are not read: their boundaries cannot be trusted.
 */
export function decodeFrames(buffer: Buffer, from: number): DecodedFrames {
  const frames: DecodedFrames['frames'] = [];
  let at = from;
  while (at < buffer.length) {
    if (buffer.length - at < FRAME_HEADER_BYTES) return { frames, end: at, problem: 'torn' };
    const length = buffer.readUInt32LE(at);
    if (length < MIN_PAYLOAD_BYTES || length > MAX_PAYLOAD_BYTES)
      return { frames, end: at, problem: 'bad-length' };
    const end = at + FRAME_HEADER_BYTES + length;
    if (end > buffer.length) return { frames, end: at, problem: 'torn' };
    const payload = buffer.subarray(at + FRAME_HEADER_BYTES, end);
    const checksum = buffer.readUInt32LE(at + 4);
    if (crc32(payload) !== checksum) return { frames, end: at, problem: 'checksum' };
    frames.push({ start: at, end, payload, checksum });
    at = end;
  }
  return { frames, end: at };
}

/** Bytes a segment holds that are not a valid frame, and why: from `start` up to `end`. */
export interface SkippedBytes {
  start: number;
  end: number;
  problem: FrameProblem;
}

export interface DecodedSegment {
  frames: DecodedFrames['frames'];
  /** Unreadable stretches with valid frames after them: damage, as a crash only tears the end. */
  skipped: SkippedBytes[];
  /** An unreadable end with no valid frame after it (a torn append, or damage at the end). */
  tail?: SkippedBytes;
}

/**
 * Reads a segment's frames from `from` on. Where a frame does not read, the next frame that does
 * is looked for (nextFrameAt): if there is one, the bytes between are skipped and the frames
 * after them kept; if not, the rest is the tail. A crash tears only the last append, so only a
 * tail can be an append never acknowledged; a bad stretch with good frames after it is damage to
 * acknowledged data, whose neighbours must not be lost with it.
 */
export function decodeSegment(buffer: Buffer, from: number): DecodedSegment {
  const frames: DecodedFrames['frames'] = [];
  const skipped: SkippedBytes[] = [];
  let at = from;
  for (;;) {
    const decoded = decodeFrames(buffer, at);
    frames.push(...decoded.frames);
    if (!decoded.problem) return { frames, skipped };
    const next = nextFrameAt(buffer, decoded.end + 1);
    const stretch = { start: decoded.end, end: next ?? buffer.length, problem: decoded.problem };
    if (next === undefined) return { frames, skipped, tail: stretch };
    skipped.push(stretch);
    at = next;
  }
}

/** 2000-01-01 and 2100-01-01: a record's written time between them, ms. */
const WRITTEN_FROM_MS = 946_684_800_000;
const WRITTEN_TO_MS = 4_102_444_800_000;

/**
 * The offset of the first valid frame at or after `from`, if any: a plausible header (a length
 * that fits, this record version, a format name of letters and digits, a written time in this
 * century) whose checksum matches. Those checks come first, so a scan over megabytes of rows
 * computes almost no checksum in vain.
 */
export function nextFrameAt(buffer: Buffer, from: number): number | undefined {
  const last = buffer.length - FRAME_HEADER_BYTES - MIN_PAYLOAD_BYTES;
  for (let at = from; at <= last; at++) {
    const length = buffer.readUInt32LE(at);
    if (length < MIN_PAYLOAD_BYTES || length > MAX_PAYLOAD_BYTES) continue;
    const payload = at + FRAME_HEADER_BYTES;
    if (payload + length > buffer.length || buffer[payload] !== RECORD_VERSION) continue;
    const formatLength = buffer[payload + 1]!;
    if (formatLength === 0 || formatLength > 64 || MIN_PAYLOAD_BYTES + formatLength > length)
      continue;
    let named = true;
    for (let i = payload + 2; i < payload + 2 + formatLength && named; i++) {
      const c = buffer[i]!;
      named = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
    }
    if (!named) continue;
    const written = buffer.readDoubleLE(payload + 2 + formatLength);
    if (!(written >= WRITTEN_FROM_MS && written < WRITTEN_TO_MS)) continue;
    if (crc32(buffer.subarray(payload, payload + length)) === buffer.readUInt32LE(at + 4))
      return at;
  }
  return undefined;
}

/**
 * Reads a record's payload (checksum already verified: `checksum` is the frame's, computed here
 * when not given). Throws WalError if it is not one.
 */
export function decodeRecord(payload: Buffer, checksum = crc32(payload)): WalRecord {
  const bad = (why: string) => new WalError('WAL_BAD_RECORD', `unreadable log record: ${why}`);
  if (payload.length < MIN_PAYLOAD_BYTES) throw bad('too short');
  const version = payload.readUInt8(0);
  if (version !== RECORD_VERSION) {
    throw new WalError(
      'WAL_NEWER_VERSION',
      `the log holds a record of version ${version}, this routewatch reads version ${RECORD_VERSION}: ` +
        'run the version that wrote it until the log is drained',
    );
  }
  let at = 1;
  const formatLength = payload.readUInt8(at++);
  if (payload.length < MIN_PAYLOAD_BYTES + formatLength) throw bad('too short');
  const format = payload.toString('latin1', at, at + formatLength);
  at += formatLength;
  const writtenAtMs = payload.readDoubleLE(at);
  at += 8;
  const rows = payload.readUInt32LE(at);
  at += 4;
  const keysBytes = payload.readUInt32LE(at);
  at += 4;
  if (at + keysBytes + 4 * rows > payload.length) throw bad('lengths beyond the record');
  const keysBlock = payload.subarray(at, at + keysBytes);
  at += keysBytes;
  const rowEnds = new Uint32Array(rows);
  for (let i = 0; i < rows; i++, at += 4) rowEnds[i] = payload.readUInt32LE(at);
  const body = payload.subarray(at);
  if (rows > 0 && rowEnds[rows - 1] !== body.length) throw bad('row ends do not match the body');
  return { format, writtenAtMs, rows, body, rowEnds, keysBlock, checksum };
}

/** A record from a frame `encodeRecord` made in this process: no checksum to verify. */
export function recordOfFrame(frame: Buffer): WalRecord {
  return decodeRecord(frame.subarray(FRAME_HEADER_BYTES), frame.readUInt32LE(4));
}

/**
 * Calls `fn` with where each row's span key lies in `record.keysBlock` (its UTF-8 bytes are
 * `keysBlock[start, end)`), in row order: the keys without a string made of each.
 */
export function forEachKey(
  record: WalRecord,
  fn: (start: number, end: number, row: number) => void,
): void {
  const block = record.keysBlock;
  let at = 0;
  for (let row = 0; at + 2 <= block.length; row++) {
    const start = at + 2;
    const end = start + (block[at]! | (block[at + 1]! << 8));
    fn(start, end, row);
    at = end;
  }
}

/** The span keys of a record, in row order. */
export function recordKeys(record: WalRecord): string[] {
  const keys: string[] = [];
  const block = record.keysBlock;
  let at = 0;
  while (at + 2 <= block.length) {
    const length = block.readUInt16LE(at);
    keys.push(block.toString('utf8', at + 2, at + 2 + length));
    at += 2 + length;
  }
  return keys;
}
