/**
 * The write-ahead log's checkpoint, written in place (two slots, one write and one fdatasync:
 * collector/wal-checkpoint.ts) against the way it was written before 78f1eba (a temporary file
 * written and fdatasynced, renamed over `checkpoint.json`, the directory fsynced): how long a
 * checkpoint write takes, and what it does to the log's appends that acknowledgements wait for.
 *
 * Each phase runs the real log (`WriteAheadLog`) on a fresh directory: a 500 KB record appended
 * and fdatasynced every 40 ms (an ingest of ~10 000 LLM spans/s), a checkpoint written twice a
 * second as the drainer does (before its insert and 300 ms later, after it), and, unless
 * `--engine-writes off`, a writer standing in for the embedded engine on the same disk (an 8 MB
 * part every 150 ms, every fourth fsynced). Phases alternate between the two methods round by
 * round, so drift in the machine's load hits both alike; figures are over all rounds.
 *
 * Usage: npm run bench:checkpoint -- [--rounds 4] [--seconds 8] [--engine-writes on|off]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, open, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WriteAheadLog, encodeRecord } from '../../collector/wal.js';
import { CheckpointFile, syncDirectory } from '../../collector/wal-checkpoint.js';
import type { Checkpoint } from '../../collector/wal-checkpoint.js';
import { describeMachine, loadAverage } from '../instrumentation/machine.js';
import { benchArgs } from '../cli-args.js';

const USAGE = `Usage: npm run bench:checkpoint -- [--rounds 4] [--seconds 8] [--engine-writes on|off]`;
const { values } = benchArgs(
  {
    options: {
      rounds: { type: 'string', default: '4' },
      seconds: { type: 'string', default: '8' },
      'engine-writes': { type: 'string', default: 'on' },
    },
  },
  USAGE,
);
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.seconds);
const ENGINE_WRITES = values['engine-writes'] !== 'off';
const APPEND_EVERY_MS = 40;
const SLOW_APPEND_MS = 8;

type Method = 'in place (two slots)' | 'rename (before 78f1eba)';
const METHODS: Method[] = ['in place (two slots)', 'rename (before 78f1eba)'];

interface Samples {
  appends: number[];
  checkpoints: number[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The checkpoint as it was written before: temporary file, fdatasync, rename, directory fsync. */
function renameWriter(dir: string) {
  const path = join(dir, 'checkpoint.json');
  return async (checkpoint: Checkpoint) => {
    const temporary = `${path}.tmp`;
    const handle = await open(temporary, 'w');
    try {
      await handle.writeFile(JSON.stringify(checkpoint));
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
    await syncDirectory(dir);
  };
}

/** 500 rows of ~1 KB: one ingest request's record. */
function recordFrame(n: number): Buffer {
  const keys = Array.from({ length: 500 }, (_, i) => `${n.toString(16).padStart(16, '0')}${i}`);
  const lines = keys.map((key) => JSON.stringify([key, 'x'.repeat(980)]));
  return encodeRecord({ format: 'JSONCompactEachRow', writtenAtMs: Date.now(), keys, lines });
}

/** Writes 8 MB files every 150 ms, fsyncing every fourth, until `stop()`; as the engine's parts do. */
function engineWriter(dir: string) {
  let running = true;
  const done = (async () => {
    const part = Buffer.alloc(8 * 1024 * 1024, 7);
    for (let n = 0; running; n++) {
      const path = join(dir, `part-${n % 8}.bin`);
      if (n % 4 === 3) {
        const handle = await open(path, 'w');
        await handle.writeFile(part);
        await handle.sync();
        await handle.close();
      } else {
        await writeFile(path, part);
      }
      await sleep(150);
    }
  })();
  return async () => {
    running = false;
    await done;
  };
}

async function phase(method: Method): Promise<Samples> {
  const dir = mkdtempSync(join(tmpdir(), 'routewatch-bench-checkpoint-'));
  const walDir = join(dir, 'wal');
  const wal = await WriteAheadLog.open({ dir: walDir, maxBytes: 4 * 1024 ** 3 });
  // The log opens its own checkpoint file; for the rename method a second directory holds the
  // old-style file, on the same disk, so that each phase writes one kind of checkpoint.
  const checkpointDir = join(dir, 'checkpoint');
  await mkdir(checkpointDir);
  const inPlace =
    method === 'in place (two slots)'
      ? (await CheckpointFile.open(checkpointDir, undefined)).file
      : undefined;
  const save = inPlace ? (c: Checkpoint) => inPlace.save(c) : renameWriter(checkpointDir);
  const stopEngine = ENGINE_WRITES ? engineWriter(dir) : async () => undefined;
  const frames = Array.from({ length: 8 }, (_, n) => recordFrame(n));
  const samples: Samples = { appends: [], checkpoints: [] };
  const until = performance.now() + SECONDS * 1000;

  const appender = (async () => {
    const t0 = performance.now();
    for (let n = 0; performance.now() < until; n++) {
      const wait = t0 + n * APPEND_EVERY_MS - performance.now();
      if (wait > 0) await sleep(wait);
      const started = performance.now();
      await wal.append([frames[n % frames.length]!]);
      samples.appends.push(performance.now() - started);
      // Keep the log from growing without bound: release what was appended.
      if (n % 25 === 24) await wal.release(wal.entries().at(-1)!.end);
    }
  })();
  const checkpointer = (async () => {
    for (let n = 0; performance.now() < until; n++) {
      for (const pause of [300, 700]) {
        const started = performance.now();
        await save({
          version: 1,
          segment: n,
          offset: 8,
          inFlightEnd: pause === 300 ? { segment: n, offset: 4096 } : null,
        });
        samples.checkpoints.push(performance.now() - started);
        await sleep(pause);
      }
    }
  })();
  await Promise.all([appender, checkpointer]);
  await stopEngine();
  await inPlace?.close();
  await wal.close();
  rmSync(dir, { recursive: true, force: true });
  return samples;
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function main(): Promise<void> {
  for (const line of describeMachine()) console.log(line);
  console.log(
    `${ROUNDS} rounds of ${SECONDS} s per method · a 500 KB append every ${APPEND_EVERY_MS} ms · ` +
      `two checkpoints a second · engine-like writes ${ENGINE_WRITES ? 'on' : 'off'} · load ${loadAverage()}`,
  );
  const all = new Map<Method, Samples>(METHODS.map((m) => [m, { appends: [], checkpoints: [] }]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? METHODS : [...METHODS].reverse();
    for (const method of order) {
      const samples = await phase(method);
      all.get(method)!.appends.push(...samples.appends);
      all.get(method)!.checkpoints.push(...samples.checkpoints);
      process.stderr.write(`  round ${round + 1}/${ROUNDS} ${method} done\n`);
    }
  }
  const figures = new Map<Method, { append99: number; checkpoint99: number }>();
  console.log(
    '\nmethod                      checkpoint p50 / p99 ms   append p50 / p99 / max ms   appends over 8 ms',
  );
  for (const method of METHODS) {
    const appends = [...all.get(method)!.appends].sort((a, b) => a - b);
    const checkpoints = [...all.get(method)!.checkpoints].sort((a, b) => a - b);
    const slow = appends.filter((ms) => ms > SLOW_APPEND_MS).length;
    figures.set(method, {
      append99: quantile(appends, 0.99),
      checkpoint99: quantile(checkpoints, 0.99),
    });
    console.log(
      `${method.padEnd(27)} ${quantile(checkpoints, 0.5).toFixed(1).padStart(9)} / ${quantile(checkpoints, 0.99).toFixed(1).padEnd(13)}` +
        `${quantile(appends, 0.5).toFixed(1).padStart(8)} / ${quantile(appends, 0.99).toFixed(1)} / ${appends.at(-1)!.toFixed(1).padEnd(10)}` +
        `${slow} of ${appends.length}`,
    );
  }
  const a = figures.get(METHODS[0]!)!;
  const b = figures.get(METHODS[1]!)!;
  console.log(
    `\nin place ÷ rename, same run: checkpoint p99 ${(a.checkpoint99 / b.checkpoint99).toFixed(2)}×, ` +
      `append p99 ${(a.append99 / b.append99).toFixed(2)}× · load after ${loadAverage()}`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
