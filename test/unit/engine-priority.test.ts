import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lowerEnginePriority, nodeThreadNames } from '../../storage/engine-priority.js';

/** A stand-in for /proc/self/task: one folder per thread with its `comm`. */
let taskDir: string;
const thread = (tid: number, name: string) => {
  mkdirSync(join(taskDir, String(tid)), { recursive: true });
  writeFileSync(join(taskDir, String(tid), 'comm'), `${name}\n`);
};
const ended = (tid: number) => rmSync(join(taskDir, String(tid)), { recursive: true });

/** Nice values by thread, and every change asked for. */
function scheduler(start: Record<number, number> = {}) {
  const nice = new Map<number, number>(Object.entries(start).map(([t, n]) => [Number(t), n]));
  const sets: Array<[number, number]> = [];
  return {
    sets,
    nice,
    get: (tid: number) => nice.get(tid) ?? 0,
    set(tid: number, value: number) {
      sets.push([tid, value]);
      nice.set(tid, value);
    },
  };
}

const NODE = new Set(['node', 'libuv-worker']);

beforeEach(() => {
  taskDir = mkdtempSync(join(tmpdir(), 'routewatch-tasks-'));
});
afterEach(() => rmSync(taskDir, { recursive: true, force: true }));

describe('lowerEnginePriority', () => {
  it("lowers every thread not named as Node's, once, and leaves Node's threads alone", () => {
    thread(100, 'node');
    thread(101, 'libuv-worker');
    thread(102, 'ThreadPool');
    thread(103, 'MergeMutate');
    const priority = scheduler();
    const engine = lowerEnginePriority({ nice: 10, nodeNames: NODE, taskDir, priority });
    expect(priority.sets).toEqual([
      [102, 10],
      [103, 10],
    ]);
    engine.scan();
    expect(priority.sets).toHaveLength(2);
    // A thread the engine starts later is found at the next scan.
    thread(104, 'BgSchPool');
    engine.scan();
    expect(priority.sets.at(-1)).toEqual([104, 10]);
    expect(engine.lowered()).toBe(3);
    // A thread id that ended and came back belongs to a new thread: looked at again.
    ended(102);
    engine.scan();
    thread(102, 'Common');
    priority.nice.set(102, 0);
    engine.scan();
    expect(priority.sets.at(-1)).toEqual([102, 10]);
    engine.stop();
  });

  it('lowers again an engine thread that raised its own priority after its first look', () => {
    thread(100, 'node');
    thread(102, 'MemoryWorker');
    const priority = scheduler();
    const engine = lowerEnginePriority({ nice: 10, nodeNames: NODE, taskDir, priority });
    expect(priority.sets).toEqual([[102, 10]]);
    priority.nice.set(102, 7); // ClickHouse's MemoryWorker raises its own by 3
    engine.scan();
    expect(priority.sets).toEqual([
      [102, 10],
      [102, 10],
    ]);
    // One thread lowered, however often.
    expect(engine.lowered()).toBe(1);
    // Node's thread is still not touched.
    expect(priority.nice.get(100)).toBeUndefined();
    engine.stop();
  });

  it('looks again at a new thread that still had its creator’s name', () => {
    thread(100, 'node');
    const priority = scheduler();
    const engine = lowerEnginePriority({ nice: 5, nodeNames: NODE, taskDir, priority });
    thread(110, 'node'); // just started by the engine, not yet named
    engine.scan();
    expect(priority.sets).toEqual([]);
    thread(110, 'QueryPipelineEx');
    engine.scan();
    expect(priority.sets).toEqual([[110, 5]]);
    engine.stop();
  });

  it('reads a thread found with a Node name at two scans no more', () => {
    thread(100, 'node');
    const priority = scheduler();
    const engine = lowerEnginePriority({ nice: 10, nodeNames: NODE, taskDir, priority });
    engine.scan();
    // Settled as Node's: its name is not read again (a rename this late is not the engine's).
    thread(100, 'ThreadPool');
    engine.scan();
    expect(priority.sets).toEqual([]);
    engine.stop();
  });

  it('never lowers a nice value already higher (that would need privilege)', () => {
    thread(102, 'ThreadPool');
    thread(103, 'Fetch');
    const priority = scheduler({ 102: 15, 103: 3 });
    lowerEnginePriority({ nice: 10, nodeNames: NODE, taskDir, priority }).stop();
    expect(priority.sets).toEqual([[103, 10]]);
    expect(priority.nice.get(102)).toBe(15);
  });

  it('skips a thread that ended between the listing and the call', () => {
    thread(102, 'ThreadPool');
    thread(103, 'MergeMutate');
    const priority = scheduler();
    const engine = lowerEnginePriority({
      nice: 10,
      nodeNames: NODE,
      taskDir,
      priority: {
        get: priority.get,
        set(tid, value) {
          if (tid === 102) throw Object.assign(new Error('gone'), { info: { code: 'ESRCH' } });
          priority.set(tid, value);
        },
      },
    });
    expect(priority.sets).toEqual([[103, 10]]);
    expect(engine.lowered()).toBe(1);
    engine.stop();
  });

  it('stops after a refusal and says so once', () => {
    thread(102, 'ThreadPool');
    thread(103, 'MergeMutate');
    const failures: Error[] = [];
    let calls = 0;
    const engine = lowerEnginePriority({
      nice: 10,
      nodeNames: NODE,
      taskDir,
      onFailure: (error) => failures.push(error),
      priority: {
        get: () => 0,
        set() {
          calls++;
          throw Object.assign(new Error('operation not permitted'), { info: { code: 'EPERM' } });
        },
      },
    });
    thread(104, 'Move');
    engine.scan();
    expect(calls).toBe(1);
    expect(failures.map((e) => e.message)).toEqual(['operation not permitted']);
    expect(engine.lowered()).toBe(0);
  });

  it('does nothing with nice 0, or where there is no thread listing', () => {
    thread(102, 'ThreadPool');
    const priority = scheduler();
    lowerEnginePriority({ nice: 0, nodeNames: NODE, taskDir, priority }).scan();
    const elsewhere = lowerEnginePriority({
      nice: 10,
      nodeNames: NODE,
      taskDir: join(taskDir, 'missing'),
      priority,
    });
    elsewhere.scan();
    expect(priority.sets).toEqual([]);
    expect(elsewhere.lowered()).toBe(0);
  });

  it("reads Node's names from the threads running, plus the names Node gives later ones", () => {
    thread(1, 'routewatch');
    thread(2, 'V8 DefaultWorke');
    const names = nodeThreadNames(taskDir);
    expect(names.has('routewatch')).toBe(true);
    expect(names.has('V8 DefaultWorke')).toBe(true);
    // Named by Node 22 and 24 when they start, after the engine.
    expect(names.has('libuv-worker')).toBe(true);
    expect(names.has('WorkerThread')).toBe(true);
    expect(names.has('ThreadPool')).toBe(false);
  });
});
