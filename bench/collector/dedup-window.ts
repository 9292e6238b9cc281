/**
 * The span writer's deduplication window (ROUTEWATCH_DEDUP_WINDOW, 1 000 000 keys by default):
 * the `Set<string>` it was before against `SpanKeyWindow` (collector/span-key-window.ts), in one
 * run. For each, a window filled to its capacity with span keys as the normalizer makes them, then
 * another capacity's worth streamed through it as an exporter's traffic does (look up, add, the
 * oldest evicted): the JavaScript heap and the off-heap memory it holds, the time of a full
 * garbage collection of the thread holding it (what a major GC of the collector's main thread
 * must walk), and the time per look-up and add (the time to make the keys subtracted).
 *
 * Usage: npm run bench:dedup -- [--keys 1000000] [--rounds 3]
 */
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { SpanKeyWindow } from '../../collector/span-key-window.js';
import { describeMachine, loadAverage } from '../instrumentation/machine.js';
import { median } from '../instrumentation/stats.js';
import { benchArgs } from '../cli-args.js';

const USAGE = `Usage: npm run bench:dedup -- [--keys 1000000] [--rounds 3]`;
const { values } = benchArgs(
  {
    options: {
      keys: { type: 'string', default: '1000000' },
      rounds: { type: 'string', default: '3' },
    },
  },
  USAGE,
);
const KEYS = Number(values.keys);
const ROUNDS = Number(values.rounds);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface Window {
  has(key: string): boolean;
  add(key: string): void;
  endOfRequest?(): void;
}

/** Keys per export request, as the writer remembers them. */
const REQUEST_KEYS = 500;

/** The Set the writer used before, with its eviction: after each request's keys, in one pass. */
function setWindow(capacity: number): Window {
  const keys = new Set<string>();
  return {
    has: (key) => keys.has(key),
    add(key) {
      keys.add(key);
    },
    endOfRequest() {
      let excess = keys.size - capacity;
      if (excess <= 0) return;
      for (const key of keys) {
        if (excess-- <= 0) break;
        keys.delete(key);
      }
    },
  };
}

const VARIANTS = {
  'Set<string> (before)': setWindow,
  SpanKeyWindow: (capacity: number): Window => new SpanKeyWindow(capacity),
} as const;
type Variant = keyof typeof VARIANTS;

/**
 * Keys made on demand (the generator keeps none alive): 24 random bytes with the counter mixed
 * in, as one flat hex string, as keys arrive from the ingest threads.
 */
const SOURCE = randomBytes(24 * 4096);
const scratch = Buffer.alloc(24);
function keyAt(n: number): string {
  SOURCE.copy(scratch, 0, (n % 4096) * 24, (n % 4096) * 24 + 24);
  scratch.writeUInt32LE((scratch.readUInt32LE(16) ^ n) >>> 0, 16);
  return scratch.toString('hex');
}

/** Nanoseconds per key of making the keys alone, subtracted from the window's figures. */
function keyMakingNs(): number {
  let length = 0;
  const t0 = performance.now();
  for (let n = 0; n < KEYS; n++) length += keyAt(n).length;
  if (length !== KEYS * 48) throw new Error('a key is not 48 hex digits');
  return ((performance.now() - t0) * 1e6) / KEYS;
}

function fullGcMs(): number {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    gc();
    times.push(performance.now() - t0);
  }
  return median(times);
}

function measure(variant: Variant) {
  gc();
  const before = process.memoryUsage();
  const gcBefore = fullGcMs();
  const window = VARIANTS[variant](KEYS);
  for (let n = 0; n < KEYS; n++) {
    window.add(keyAt(n));
    if (n % REQUEST_KEYS === REQUEST_KEYS - 1) window.endOfRequest?.();
  }
  // A second capacity's worth, each looked up first (a miss) and then added (an eviction).
  const t0 = performance.now();
  let hits = 0;
  for (let n = KEYS; n < 2 * KEYS; n++) {
    const key = keyAt(n);
    if (window.has(key)) hits++;
    window.add(key);
    if (n % REQUEST_KEYS === REQUEST_KEYS - 1) window.endOfRequest?.();
  }
  const streamNs = ((performance.now() - t0) * 1e6) / KEYS - keyMakingNs();
  if (hits !== 0) throw new Error(`${hits} keys never added were found`);
  gc();
  const after = process.memoryUsage();
  const gcWith = fullGcMs();
  // Still held: checked so the window cannot be collected before the measures above.
  if (!window.has(keyAt(2 * KEYS - 1))) throw new Error('the newest key is not held');
  return {
    heapMb: (after.heapUsed - before.heapUsed) / 2 ** 20,
    offHeapMb: (after.arrayBuffers - before.arrayBuffers) / 2 ** 20,
    gcAddedMs: gcWith - gcBefore,
    streamNs,
  };
}

function main(): void {
  for (const line of describeMachine()) console.log(line);
  console.log(`${KEYS} keys per window · ${ROUNDS} rounds · load ${loadAverage()}`);
  const results = new Map<Variant, ReturnType<typeof measure>[]>();
  const names = Object.keys(VARIANTS) as Variant[];
  for (let round = 0; round < ROUNDS; round++) {
    for (const variant of round % 2 === 0 ? names : [...names].reverse()) {
      const result = measure(variant);
      results.set(variant, [...(results.get(variant) ?? []), result]);
      process.stderr.write(`  round ${round + 1}/${ROUNDS} ${variant} done\n`);
    }
  }
  console.log(
    '\nwindow                  JS heap MB   off heap MB   full GC added ms   look-up + add ns',
  );
  const medians = new Map<Variant, { heap: number; gc: number; ns: number }>();
  for (const variant of names) {
    const list = results.get(variant)!;
    const m = {
      heap: median(list.map((r) => r.heapMb)),
      offHeap: median(list.map((r) => r.offHeapMb)),
      gc: median(list.map((r) => r.gcAddedMs)),
      ns: median(list.map((r) => r.streamNs)),
    };
    medians.set(variant, m);
    console.log(
      `${variant.padEnd(22)} ${m.heap.toFixed(1).padStart(10)} ${m.offHeap.toFixed(1).padStart(13)} ` +
        `${m.gc.toFixed(1).padStart(18)} ${m.ns.toFixed(0).padStart(18)}`,
    );
  }
  const a = medians.get('SpanKeyWindow')!;
  const b = medians.get('Set<string> (before)')!;
  console.log(
    `\nsame run: a full GC takes ${b.gc.toFixed(1)} ms longer with the Set holding the window, ` +
      `${a.gc.toFixed(1)} ms with SpanKeyWindow (0 within noise); look-up + add ` +
      `${(a.ns / b.ns).toFixed(2)}× the Set's · load after ${loadAverage()}`,
  );
}

main();
