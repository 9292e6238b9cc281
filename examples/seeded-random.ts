import { createHash } from 'node:crypto';

/**
 * Seeded randomness for the simulation. Everything random in examples/ is drawn from a key
 * string (seed + what is being decided), never from Math.random or the clock, so a run is a pure
 * function of its seed whatever the timing, arrival order or concurrency.
 */

/** A stream of uniform draws in [0, 1). */
export interface SeededRandom {
  /** Next uniform draw in [0, 1). */
  next(): number;
  /** True with probability `p`. */
  chance(p: number): boolean;
  /** Integer in [min, max], both inclusive. */
  int(min: number, max: number): number;
  /** One element of a non-empty list. */
  pick<T>(items: readonly [T, ...T[]]): T;
}

/** SHA-256 of the key, hex. Stable across platforms and Node versions. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/**
 * A random stream keyed by `key`: SHA-256 of the key seeds sfc32 (a small, well-distributed
 * generator), so similar keys give unrelated streams.
 */
export function seededRandom(key: string): SeededRandom {
  const digest = createHash('sha256').update(key).digest();
  let a = digest.readUInt32LE(0);
  let b = digest.readUInt32LE(4);
  let c = digest.readUInt32LE(8);
  let d = digest.readUInt32LE(12);
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  return {
    next,
    chance: (p) => next() < p,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (items) => items[Math.floor(next() * items.length)] ?? items[0],
  };
}
