import { createHash } from 'node:crypto';

/**
 * The last `capacity` span keys seen, exactly, off the JavaScript heap: how the span writer
 * recognises an exporter's retry of rows it already took (ROUTEWATCH_DEDUP_WINDOW, 1 000 000 by
 * default).
 *
 * As a `Set<string>` the default window was a million 48-character strings: about 80 MB of old
 * generation that every major garbage collection of the main thread walks, and one of them could
 * pause acknowledgements for tens of milliseconds (docs/benchmarks.md). Here a key — trace id and
 * span id in lowercase hex, 24 bytes — is six 32-bit words in a ring buffer, oldest overwritten
 * first, with an open-addressing table of ring slots beside it: 32 bytes a key in two typed
 * arrays, which the collector never scans.
 *
 * Same behaviour as the set it replaces: adding a key already held does not renew it; past the
 * capacity the oldest key goes. A key that is not 48 lowercase hex digits (never made by the
 * normalizer, kept for safety) is held by the first 24 bytes of its SHA-256.
 */

const WORDS = 6;
const KEY_CHARS = WORDS * 8;
const EMPTY = -1;
const FIRST_SLOTS = 4096;

/** Value of each lowercase hex digit by char code, -1 for anything else. */
const NIBBLE = (() => {
  const table = new Int8Array(128).fill(-1);
  for (let c = 0; c < 10; c++) table[48 + c] = c;
  for (let c = 0; c < 6; c++) table[97 + c] = 10 + c;
  return table;
})();

export class SpanKeyWindow {
  readonly capacity: number;
  /** The keys, WORDS words each, in the order they came; `#head` is where the next one goes. */
  #ring: Uint32Array;
  #slots: number;
  #head = 0;
  #count = 0;
  /** Ring slot of each key, by hash; EMPTY where none. Its size is a power of two ≥ 2 × slots. */
  #table: Int32Array;
  #mask: number;
  readonly #key = new Uint32Array(WORDS);

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) {
      throw new RangeError(`the window must hold a whole number of keys ≥ 0, not ${capacity}`);
    }
    this.capacity = capacity;
    this.#slots = Math.min(capacity, FIRST_SLOTS);
    this.#ring = new Uint32Array(this.#slots * WORDS);
    this.#table = new Int32Array(tableSize(this.#slots)).fill(EMPTY);
    this.#mask = this.#table.length - 1;
  }

  get size(): number {
    return this.#count;
  }

  has(key: string): boolean {
    if (this.#count === 0) return false;
    this.#encode(key);
    return this.#find() !== EMPTY;
  }

  /**
   * `has` for a key given as its UTF-8 bytes, `bytes[start, end)`: how the writer reads the keys
   * of a log record without making strings of them. The same key as a string or as bytes is the
   * same key.
   */
  hasBytes(bytes: Uint8Array, start: number, end: number): boolean {
    if (this.#count === 0) return false;
    this.#encodeBytes(bytes, start, end);
    return this.#find() !== EMPTY;
  }

  /** Holds `key` (no change if it is held already), dropping the oldest past the capacity. */
  add(key: string): void {
    if (this.capacity === 0) return;
    this.#encode(key);
    this.#addEncoded();
  }

  /** `add` for a key given as its UTF-8 bytes, `bytes[start, end)`. */
  addBytes(bytes: Uint8Array, start: number, end: number): void {
    if (this.capacity === 0) return;
    this.#encodeBytes(bytes, start, end);
    this.#addEncoded();
  }

  /** Adds the key in #key. */
  #addEncoded(): void {
    if (this.#count > 0 && this.#find() !== EMPTY) return;
    if (this.#count === this.#slots && this.#slots < this.capacity) this.#grow();
    if (this.#count === this.#slots) {
      // Full at capacity: the slot at the head holds the oldest key.
      this.#remove(this.#head);
    } else {
      this.#count++;
    }
    const slot = this.#head;
    this.#ring.set(this.#key, slot * WORDS);
    let at = this.#hashOf(this.#key, 0) & this.#mask;
    while (this.#table[at] !== EMPTY) at = (at + 1) & this.#mask;
    this.#table[at] = slot;
    this.#head = slot + 1 === this.#slots ? 0 : slot + 1;
  }

  /** Puts `key` into #key: its 24 bytes, or a digest of it when it is not hex. */
  #encode(key: string): void {
    const words = this.#key;
    if (key.length === KEY_CHARS) {
      let ok = true;
      for (let w = 0; w < WORDS && ok; w++) {
        let word = 0;
        for (let c = w * 8; c < w * 8 + 8; c++) {
          const code = key.charCodeAt(c);
          const nibble = code < 128 ? NIBBLE[code]! : -1;
          if (nibble < 0) {
            ok = false;
            break;
          }
          word = (word << 4) | nibble;
        }
        words[w] = word >>> 0;
      }
      if (ok) return;
    }
    this.#digest(createHash('sha256').update(key).digest());
  }

  /** `#encode` of the key whose UTF-8 bytes are `bytes[start, end)`: the same words. */
  #encodeBytes(bytes: Uint8Array, start: number, end: number): void {
    const words = this.#key;
    if (end - start === KEY_CHARS) {
      let ok = true;
      for (let w = 0; w < WORDS && ok; w++) {
        let word = 0;
        for (let c = start + w * 8; c < start + w * 8 + 8; c++) {
          const code = bytes[c]!;
          const nibble = code < 128 ? NIBBLE[code]! : -1;
          if (nibble < 0) {
            ok = false;
            break;
          }
          word = (word << 4) | nibble;
        }
        words[w] = word >>> 0;
      }
      if (ok) return;
    }
    this.#digest(createHash('sha256').update(bytes.subarray(start, end)).digest());
  }

  /** A key that is not hex: the first 24 bytes of its digest. */
  #digest(digest: Buffer): void {
    for (let w = 0; w < WORDS; w++) this.#key[w] = digest.readUInt32BE(w * 4);
  }

  /** Table position of #key, or EMPTY. */
  #find(): number {
    const ring = this.#ring;
    const key = this.#key;
    let at = this.#hashOf(key, 0) & this.#mask;
    for (;;) {
      const slot = this.#table[at]!;
      if (slot === EMPTY) return EMPTY;
      const base = slot * WORDS;
      if (
        ring[base] === key[0] &&
        ring[base + 1] === key[1] &&
        ring[base + 2] === key[2] &&
        ring[base + 3] === key[3] &&
        ring[base + 4] === key[4] &&
        ring[base + 5] === key[5]
      ) {
        return at;
      }
      at = (at + 1) & this.#mask;
    }
  }

  /** Removes the key in ring `slot` from the table (linear probing: shift the run back). */
  #remove(slot: number): void {
    const table = this.#table;
    const mask = this.#mask;
    let at = this.#hashOf(this.#ring, slot * WORDS) & mask;
    while (table[at] !== slot) at = (at + 1) & mask;
    let hole = at;
    let next = (hole + 1) & mask;
    while (table[next] !== EMPTY) {
      const home = this.#hashOf(this.#ring, table[next]! * WORDS) & mask;
      // Moves back into the hole unless its home lies cyclically after the hole, up to `next`.
      const stays = hole <= next ? hole < home && home <= next : hole < home || home <= next;
      if (!stays) {
        table[hole] = table[next]!;
        hole = next;
      }
      next = (next + 1) & mask;
    }
    table[hole] = EMPTY;
  }

  /** Doubles the ring (up to the capacity), oldest key first, and rebuilds the table. */
  #grow(): void {
    const slots = Math.min(this.capacity, this.#slots * 2);
    const ring = new Uint32Array(slots * WORDS);
    // Full: the oldest key is at the head.
    ring.set(this.#ring.subarray(this.#head * WORDS), 0);
    ring.set(this.#ring.subarray(0, this.#head * WORDS), (this.#slots - this.#head) * WORDS);
    this.#ring = ring;
    this.#head = this.#count;
    this.#slots = slots;
    this.#table = new Int32Array(tableSize(slots)).fill(EMPTY);
    this.#mask = this.#table.length - 1;
    for (let slot = 0; slot < this.#count; slot++) {
      let at = this.#hashOf(ring, slot * WORDS) & this.#mask;
      while (this.#table[at] !== EMPTY) at = (at + 1) & this.#mask;
      this.#table[at] = slot;
    }
  }

  /** Mixes the six words (ids need not be random: some tools count them up from 1). */
  #hashOf(words: Uint32Array, base: number): number {
    let h = 0x9e3779b9;
    for (let w = 0; w < WORDS; w++) {
      h = Math.imul(h ^ words[base + w]!, 0x85ebca6b);
      h ^= h >>> 13;
    }
    h = Math.imul(h ^ (h >>> 16), 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  }
}

function tableSize(slots: number): number {
  let size = 8;
  while (size < slots * 2) size *= 2;
  return size;
}
