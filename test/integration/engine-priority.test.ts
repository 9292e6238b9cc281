import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { configWith } from '../../server/config.js';
import { startRoutewatch } from '../../server/start.js';
import type { RunningRoutewatch } from '../../server/start.js';
import { nodeThreadNames } from '../../storage/engine-priority.js';

// `routewatch start` on the embedded store, on Linux: the engine's threads (the ones ClickHouse
// names) run at ROUTEWATCH_ENGINE_NICE, while the threads that answer exports (the main thread,
// the ingest threads, Node's pools) keep the process's priority.

interface Thread {
  tid: number;
  name: string;
  nice: number;
}

function threads(): Thread[] {
  return readdirSync('/proc/self/task').flatMap((tid) => {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const name = stat.slice(stat.indexOf('(') + 1, close);
      // Fields after the name: state is the 1st, nice the 17th (proc(5): field 19).
      const nice = Number(stat.slice(close + 2).split(' ')[16]);
      return [{ tid: Number(tid), name, nice }];
    } catch {
      return []; // the thread ended
    }
  });
}

const NICE = 7;
let dir: string;
let running: RunningRoutewatch;
let nodeNames: Set<string>;
let base: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'routewatch-engine-priority-'));
  nodeNames = nodeThreadNames();
  base = getPriority(process.pid);
  running = await startRoutewatch(
    configWith({
      ROUTEWATCH_PORT: '0',
      ROUTEWATCH_DATA_DIR: dir,
      ROUTEWATCH_ENGINE_NICE: String(NICE),
      ROUTEWATCH_INGEST_WORKERS: '2',
    }),
    { logger: false },
  );
  // Work for the engine's pools, which start threads as they grow.
  await running.store.query(
    'SELECT sum(number) AS n FROM numbers(20000000) GROUP BY number % 7',
    {},
    z.object({ n: z.coerce.number() }),
  );
});

afterAll(async () => {
  await running?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe.runIf(process.platform === 'linux')('the embedded engine’s thread priority', () => {
  it('lowers every thread the engine names', () => {
    running.enginePriority!.scan();
    const engine = threads().filter((t) => !nodeNames.has(t.name));
    expect(engine.length).toBeGreaterThanOrEqual(5);
    // At least NICE: a thread may sit between NICE and a higher nice value of the process's own
    // (the engine's MemoryWorker raises its own priority by 3: under `nice -n 10`, it runs at 7).
    expect(engine.filter((t) => t.nice < NICE)).toEqual([]);
    // Fewer than found: a thread the engine starts from a lowered one starts lowered.
    expect(running.enginePriority!.lowered()).toBeGreaterThan(0);
  });

  it('leaves the main thread, the ingest threads and Node’s pools at the process’s priority', () => {
    running.enginePriority!.scan();
    const node = threads().filter((t) => nodeNames.has(t.name));
    expect(node.find((t) => t.tid === process.pid)?.nice).toBe(base);
    // Main, V8's and libuv's pools, the two ingest threads at least.
    expect(node.length).toBeGreaterThanOrEqual(4);
    expect(node.filter((t) => t.nice !== base)).toEqual([]);
  });

  it('leaves a worker thread started after the engine (as the ingest threads are) alone', async () => {
    // Told apart by its thread id, not its name: each Node version names its threads its own way.
    const worker = new Worker(
      "require('node:worker_threads').parentPort.postMessage(require('node:fs').readlinkSync('/proc/thread-self')); setInterval(() => {}, 1000)",
      { eval: true },
    );
    try {
      const [path] = (await once(worker, 'message')) as [string];
      const tid = Number(path.split('/').pop());
      running.enginePriority!.scan();
      expect(getPriority(tid)).toBe(base);
    } finally {
      await worker.terminate();
    }
  });
});
