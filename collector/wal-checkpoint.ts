import { open, readFile, rename, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { crc32 } from './crc32.js';
import { PRIVATE_FILE } from '../storage/make-directory.js';

/**
 * The write-ahead log's checkpoint: how far the log has been stored, and the range of the insert
 * in flight. The drainer writes it twice per insert, so it is written in place.
 *
 * The file `checkpoint` holds two slots of 4 KiB, each a whole checkpoint:
 * `"RWCK" | u32 CRC-32 of the rest | u64 sequence | u32 payload length | payload (JSON)`, little
 * endian. Write n goes to slot n mod 2 with one pwrite and one fdatasync, so the slot written
 * last before a crash may be torn but the other one is whole; at open the valid slot with the
 * higher sequence wins. The file's size never changes after it is created, so an fdatasync of a
 * slot commits no file-system metadata: no rename, no directory fsync, no journal commit in front
 * of the appends that are waiting for theirs.
 *
 * A log written before this format kept its checkpoint in `checkpoint.json` (write, rename,
 * directory fsync); it is read once, carried into the new file, and deleted.
 */

export const CHECKPOINT_FILE = 'checkpoint';
export const LEGACY_CHECKPOINT_FILE = 'checkpoint.json';
export const SLOT_BYTES = 4096;
const SLOT_MAGIC = Buffer.from('RWCK', 'latin1');
/** magic, CRC, sequence, payload length. */
const SLOT_HEADER_BYTES = 4 + 4 + 8 + 4;

const positionSchema = z.object({
  segment: z.number().int().min(0),
  offset: z.number().int().min(0),
});
const checkpointSchema = z.object({
  version: z.literal(1),
  segment: z.number().int().min(0),
  offset: z.number().int().min(0),
  inFlightEnd: positionSchema.nullable(),
  /**
   * The deduplication token the insert in flight was sent with (absent in checkpoints written
   * before routewatch recorded it: such an insert is repeated under its body's SHA-256, the token
   * those versions sent).
   */
  inFlightToken: z.string().min(1).max(512).optional(),
});

export type Checkpoint = z.infer<typeof checkpointSchema>;

export const NO_CHECKPOINT: Checkpoint = { version: 1, segment: 0, offset: 0, inFlightEnd: null };

export interface CheckpointLog {
  warn(details: object, message: string): void;
}

/** One slot's bytes (header and payload, unpadded). */
export function encodeSlot(sequence: number, checkpoint: Checkpoint): Buffer {
  const payload = Buffer.from(JSON.stringify(checkpoint), 'utf8');
  if (SLOT_HEADER_BYTES + payload.length > SLOT_BYTES) {
    throw new Error(`a checkpoint of ${payload.length} bytes does not fit its slot`);
  }
  const slot = Buffer.alloc(SLOT_HEADER_BYTES + payload.length);
  SLOT_MAGIC.copy(slot, 0);
  slot.writeBigUInt64LE(BigInt(sequence), 8);
  slot.writeUInt32LE(payload.length, 16);
  payload.copy(slot, SLOT_HEADER_BYTES);
  slot.writeUInt32LE(crc32(slot.subarray(8)), 4);
  return slot;
}

/** A slot's checkpoint and sequence; undefined when the slot is empty, torn or not a slot. */
export function decodeSlot(
  bytes: Uint8Array,
): { sequence: number; checkpoint: Checkpoint } | undefined {
  const slot = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (slot.length < SLOT_HEADER_BYTES || !slot.subarray(0, 4).equals(SLOT_MAGIC)) return undefined;
  const length = slot.readUInt32LE(16);
  if (length > SLOT_BYTES - SLOT_HEADER_BYTES || SLOT_HEADER_BYTES + length > slot.length) {
    return undefined;
  }
  const end = SLOT_HEADER_BYTES + length;
  if (crc32(slot.subarray(8, end)) !== slot.readUInt32LE(4)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(slot.subarray(SLOT_HEADER_BYTES, end).toString('utf8'));
  } catch {
    return undefined;
  }
  const checkpoint = checkpointSchema.safeParse(parsed);
  if (!checkpoint.success) return undefined;
  return { sequence: Number(slot.readBigUInt64LE(8)), checkpoint: checkpoint.data };
}

/** The whole slot with the higher sequence in a checkpoint file's bytes, if either is whole. */
function newestSlot(bytes: Buffer): { sequence: number; checkpoint: Checkpoint } | undefined {
  const slots = [
    decodeSlot(bytes.subarray(0, Math.min(bytes.length, SLOT_BYTES))),
    decodeSlot(bytes.subarray(SLOT_BYTES, Math.max(SLOT_BYTES, bytes.length))),
  ];
  return slots.reduce((best, slot) =>
    slot && (!best || slot.sequence > best.sequence) ? slot : best,
  );
}

/**
 * The checkpoint of the log in `dir`, read without changing anything (no file created, none
 * deleted): for a command that looks at a stopped routewatch's log. NO_CHECKPOINT when there is
 * none, or none readable.
 */
export async function readCheckpoint(dir: string): Promise<Checkpoint> {
  let bytes: Buffer;
  try {
    bytes = await readFile(join(dir, CHECKPOINT_FILE));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    return readLegacyCheckpoint(dir, undefined);
  }
  return newestSlot(bytes.subarray(0, 2 * SLOT_BYTES))?.checkpoint ?? NO_CHECKPOINT;
}

/** The checkpoint file of one log directory, open for the life of the log. */
export class CheckpointFile {
  readonly path: string;
  readonly #handle: FileHandle;
  /** Sequence of the last slot known written; the next write goes to the other slot. */
  #sequence: number;
  /** Writes one at a time, in call order: two in flight could leave both slots torn. */
  #queue: Promise<void> = Promise.resolve();

  private constructor(path: string, handle: FileHandle, sequence: number) {
    this.path = path;
    this.#handle = handle;
    this.#sequence = sequence;
  }

  /**
   * Opens the checkpoint of the log in `dir`, creating it (from `checkpoint.json` when an older
   * log left one) when missing. Without a readable checkpoint every record left in the log is
   * stored again: duplicates that the deduplication tokens and the table collapse, never a loss.
   */
  static async open(
    dir: string,
    log: CheckpointLog | undefined,
  ): Promise<{ file: CheckpointFile; checkpoint: Checkpoint }> {
    const path = join(dir, CHECKPOINT_FILE);
    let handle: FileHandle;
    try {
      handle = await open(path, 'r+');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      const checkpoint = await readLegacyCheckpoint(dir, log);
      await createCheckpointFile(dir, path, checkpoint);
      await unlink(join(dir, LEGACY_CHECKPOINT_FILE)).catch(ignoreMissing);
      return { file: new CheckpointFile(path, await open(path, 'r+'), 1), checkpoint };
    }
    try {
      const bytes = Buffer.alloc(2 * SLOT_BYTES);
      const { bytesRead } = await handle.read(bytes, 0, bytes.length, 0);
      const newest = newestSlot(bytes.subarray(0, bytesRead));
      // A crash after the file was created and before the older log's file was deleted.
      await unlink(join(dir, LEGACY_CHECKPOINT_FILE)).catch(ignoreMissing);
      if (!newest) {
        log?.warn(
          { path },
          'write-ahead log: unreadable checkpoint; every record left in the log is stored again',
        );
        return { file: new CheckpointFile(path, handle, 0), checkpoint: NO_CHECKPOINT };
      }
      return {
        file: new CheckpointFile(path, handle, newest.sequence),
        checkpoint: newest.checkpoint,
      };
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
  }

  /** Writes `checkpoint` durably; resolves once it is on disk. */
  save(checkpoint: Checkpoint): Promise<void> {
    const write = this.#queue.then(() => this.#write(checkpoint));
    this.#queue = write.catch(() => undefined);
    return write;
  }

  async close(): Promise<void> {
    await this.#queue;
    await this.#handle.close();
  }

  async #write(checkpoint: Checkpoint): Promise<void> {
    const sequence = this.#sequence + 1;
    const slot = encodeSlot(sequence, checkpoint);
    const at = (sequence % 2) * SLOT_BYTES;
    let written = 0;
    while (written < slot.length) {
      const { bytesWritten } = await this.#handle.write(
        slot,
        written,
        slot.length - written,
        at + written,
      );
      if (bytesWritten === 0) throw new Error('the disk accepted no bytes');
      written += bytesWritten;
    }
    await this.#handle.datasync();
    // Only now: after a failure the next write goes to the same slot again, never over the
    // last slot known whole.
    this.#sequence = sequence;
  }
}

/** Both slots' room, slot 0 holding `checkpoint`, put in place whole by a rename. */
async function createCheckpointFile(dir: string, path: string, checkpoint: Checkpoint) {
  const bytes = Buffer.alloc(2 * SLOT_BYTES);
  encodeSlot(1, checkpoint).copy(bytes, SLOT_BYTES);
  const temporary = `${path}.tmp`;
  const handle = await open(temporary, 'w', PRIVATE_FILE);
  try {
    await handle.writeFile(bytes);
    await handle.datasync();
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
  await syncDirectory(dir);
}

async function readLegacyCheckpoint(
  dir: string,
  log: CheckpointLog | undefined,
): Promise<Checkpoint> {
  let text: string;
  try {
    text = await readFile(join(dir, LEGACY_CHECKPOINT_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return NO_CHECKPOINT;
    throw error;
  }
  try {
    return checkpointSchema.parse(JSON.parse(text));
  } catch (error) {
    log?.warn(
      { err: error },
      'write-ahead log: unreadable checkpoint; every record left in the log is stored again',
    );
    return NO_CHECKPOINT;
  }
}

/** Makes a directory's entries (a new or renamed file) durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch (error) {
    // Some file systems cannot fsync a directory; the rename is as durable as they make it.
    if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error;
  } finally {
    await handle.close();
  }
}

function ignoreMissing(error: NodeJS.ErrnoException): void {
  if (error.code !== 'ENOENT') throw error;
}
