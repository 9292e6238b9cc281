import { describe, expect, it } from 'vitest';
import {
  NO_CHECKPOINT,
  SLOT_BYTES,
  decodeSlot,
  encodeSlot,
} from '../../collector/wal-checkpoint.js';
import type { Checkpoint } from '../../collector/wal-checkpoint.js';

// One checkpoint slot as bytes: what reads back, and what is refused as torn or foreign.

const checkpoint: Checkpoint = {
  version: 1,
  segment: 12,
  offset: 4096,
  inFlightEnd: { segment: 13, offset: 80 },
};

describe('checkpoint slots', () => {
  it('reads back the checkpoint and sequence written, padded or not', () => {
    const slot = encodeSlot(7, checkpoint);
    expect(decodeSlot(slot)).toEqual({ sequence: 7, checkpoint });
    const padded = Buffer.alloc(SLOT_BYTES);
    slot.copy(padded);
    expect(decodeSlot(padded)).toEqual({ sequence: 7, checkpoint });
    expect(decodeSlot(encodeSlot(2 ** 40, NO_CHECKPOINT))).toEqual({
      sequence: 2 ** 40,
      checkpoint: NO_CHECKPOINT,
    });
  });

  it('refuses an empty, short, torn or altered slot', () => {
    const slot = encodeSlot(3, checkpoint);
    expect(decodeSlot(Buffer.alloc(SLOT_BYTES))).toBeUndefined();
    expect(decodeSlot(slot.subarray(0, 10))).toBeUndefined();
    expect(decodeSlot(slot.subarray(0, slot.length - 1))).toBeUndefined();
    for (const at of [0, 5, 9, 17, slot.length - 2]) {
      const altered = Buffer.from(slot);
      altered[at] = altered[at]! ^ 0x20;
      expect(decodeSlot(altered), `byte ${at} altered`).toBeUndefined();
    }
    // A torn write: the new header over the old payload.
    const older = encodeSlot(2, { ...checkpoint, offset: 8 });
    const torn = Buffer.from(older);
    slot.copy(torn, 0, 0, 20);
    expect(decodeSlot(torn)).toBeUndefined();
  });

  it('refuses a length past the slot, and a payload that is not a checkpoint', () => {
    const slot = encodeSlot(3, checkpoint);
    const long = Buffer.from(slot);
    long.writeUInt32LE(SLOT_BYTES, 16);
    expect(decodeSlot(long)).toBeUndefined();
    const foreign = encodeSlot(3, { ...checkpoint, version: 2 } as unknown as Checkpoint);
    expect(decodeSlot(foreign)).toBeUndefined();
  });
});
