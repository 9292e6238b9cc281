import { describe, expect, it } from 'vitest';
import { SpanKeyWindow } from '../../collector/span-key-window.js';

// The window against the Set it replaced: the same answers, key for key, through growth and
// eviction, for real-looking keys, counted-up ids and keys that are not hex at all.

/** A seeded generator (mulberry32), so a failure replays. */
function random(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hex = (n: number, chars: number) => n.toString(16).padStart(chars, '0');

/** The behaviour kept: a Set in insertion order, the oldest dropped past the capacity. */
class ReferenceWindow {
  readonly keys = new Set<string>();
  constructor(readonly capacity: number) {}
  has(key: string) {
    return this.keys.has(key);
  }
  add(key: string) {
    if (this.capacity === 0) return;
    this.keys.add(key);
    if (this.keys.size > this.capacity) this.keys.delete(this.keys.values().next().value!);
  }
}

function compare(capacity: number, keyOf: (n: number) => string, operations: number, seed: number) {
  const next = random(seed);
  const window = new SpanKeyWindow(capacity);
  const reference = new ReferenceWindow(capacity);
  let fresh = 0;
  for (let i = 0; i < operations; i++) {
    // Mostly new keys, some retried: recently, long ago, or past the window.
    const roll = next();
    const n =
      roll < 0.6 || fresh === 0
        ? fresh++
        : Math.max(0, fresh - 1 - Math.floor(next() * (roll < 0.8 ? 50 : capacity * 2 + 10)));
    const key = keyOf(n);
    expect(window.has(key), `has(${key}) at operation ${i}`).toBe(reference.has(key));
    window.add(key);
    reference.add(key);
    expect(window.size).toBe(reference.keys.size);
  }
  // Every key ever made, held or not, answers as the Set does.
  for (let n = 0; n < fresh; n++) expect(window.has(keyOf(n))).toBe(reference.has(keyOf(n)));
}

describe('SpanKeyWindow', () => {
  it('answers as a Set with oldest-first eviction, for random ids, through growth', () => {
    const next = random(7);
    const ids = new Map<number, string>();
    const keyOf = (n: number) => {
      let key = ids.get(n);
      if (key === undefined) {
        key = Array.from({ length: 6 }, () => hex(Math.floor(next() * 2 ** 32), 8)).join('');
        ids.set(n, key);
      }
      return key;
    };
    compare(10_000, keyOf, 40_000, 1);
  });

  it('does the same for ids counted up from 1, which collide in a weak hash', () => {
    compare(5_000, (n) => `${hex(1, 32)}${hex(n + 1, 16)}`, 20_000, 2);
    compare(3_000, (n) => `${hex(n + 1, 32)}${hex(1, 16)}`, 12_000, 3);
  });

  it('holds keys that are not lowercase hex apart from the hex ones', () => {
    const lower = 'ab'.repeat(24);
    const window = new SpanKeyWindow(10);
    window.add(lower);
    expect(window.has(lower.toUpperCase())).toBe(false);
    expect(window.has('not-a-span-key')).toBe(false);
    window.add('not-a-span-key');
    window.add(lower.toUpperCase());
    expect(window.has('not-a-span-key')).toBe(true);
    expect(window.has(lower.toUpperCase())).toBe(true);
    expect(window.has(lower)).toBe(true);
    expect(window.size).toBe(3);
    compare(200, (n) => `key ${n} é`, 2_000, 4);
  });

  it('holds nothing with a capacity of 0, and one key with a capacity of 1', () => {
    const none = new SpanKeyWindow(0);
    none.add('a'.repeat(48));
    expect(none.has('a'.repeat(48))).toBe(false);
    expect(none.size).toBe(0);
    compare(1, (n) => hex(n, 48), 500, 5);
    expect(() => new SpanKeyWindow(-1)).toThrow(/whole number of keys/);
  });

  it('takes a key as its UTF-8 bytes as the same key as its string', () => {
    const next = random(8);
    const window = new SpanKeyWindow(500);
    const reference = new ReferenceWindow(500);
    // Keys inside a larger buffer, as a log record's key block holds them.
    const keys = Array.from({ length: 800 }, (_, n) =>
      n % 5 === 0
        ? `not hex ${n} é`
        : Array.from({ length: 6 }, () => hex(Math.floor(next() * 2 ** 32), 8)).join(''),
    );
    for (let i = 0; i < 3_000; i++) {
      const key = keys[Math.floor(next() * keys.length)]!;
      const block = Buffer.from(`..${key}..`);
      const [start, end] = [2, block.length - 2];
      const viaBytes = next() < 0.5;
      const held = viaBytes ? window.hasBytes(block, start, end) : window.has(key);
      expect(held, `${key} at ${i}`).toBe(reference.has(key));
      if (next() < 0.5) window.addBytes(block, start, end);
      else window.add(key);
      reference.add(key);
    }
    expect(window.size).toBe(reference.keys.size);
  });

  it('grows past its first table to a capacity that is not a power of two', () => {
    compare(9_999, (n) => hex(n * 2654435761, 48), 30_000, 6);
  });
});
