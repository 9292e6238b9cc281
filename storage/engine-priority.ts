import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/**
 * The embedded engine's own threads at a lower scheduling priority (Linux).
 *
 * chDB runs ClickHouse in this process: its inserts, merges and background pools share the cores
 * with the threads that answer exports (the event loop and the ingest threads). On busy cores
 * the scheduler shares time out evenly, so an answer waits behind a merge or an insert's
 * compression. With the engine's threads at a higher nice value, the threads that answer run
 * first and the engine takes what they leave; it catches up from the write-ahead log.
 *
 * Linux keeps a nice value per thread, and a new thread starts with its creator's. ClickHouse
 * names every thread it starts (ThreadPool, MergeMutate, BgSchPool, …); Node's threads carry
 * Node's names. So every thread whose name is not one of Node's is the engine's. A chDB call
 * itself runs on Node's libuv pool and keeps Node's priority: the part of an insert done there
 * is not lowered. The engine starts threads as its pools grow, so the threads are looked at
 * again every `intervalMs`. Raising a thread's nice value needs no privilege (lowering it back
 * would), and a value already higher is left as it is.
 */

/**
 * Names Node and libuv give their threads. Node 20 leaves every thread the executable's name;
 * 22 names libuv's pool; 24 names them all, and a worker thread (an ingest thread) starts after
 * the engine as `WorkerThread`.
 */
export const NODE_THREAD_NAMES: readonly string[] = [
  'node',
  'libuv-worker',
  'MainThread',
  'WorkerThread',
  'V8Worker',
  'DelayedTaskSche',
  'SignalInspector',
];

const TASKS = '/proc/self/task';

export interface EnginePriorityOptions {
  /** The nice value to give the engine's threads (1–19). */
  nice: number;
  /** Names of Node's own threads: see `nodeThreadNames`. */
  nodeNames: ReadonlySet<string>;
  /** How often new threads are looked for. */
  intervalMs?: number;
  /** Called once if a thread's priority cannot be set; the threads are not looked at again. */
  onFailure?: (error: Error) => void;
  /** The directory listing this process's threads (tests give another). */
  taskDir?: string;
  /** Sets and reads a thread's nice value (tests record the calls). */
  priority?: { get(tid: number): number; set(tid: number, nice: number): void };
}

export interface EnginePriority {
  /** Looks at the threads now; the timer calls it every `intervalMs`. */
  scan(): void;
  /** Engine threads given the nice value so far. */
  lowered(): number;
  stop(): void;
}

/** The names of this process's threads now (empty where there is no /proc). */
export function threadNames(taskDir = TASKS): Set<string> {
  const names = new Set<string>();
  for (const tid of tasks(taskDir)) {
    const name = threadName(taskDir, tid);
    if (name !== undefined) names.add(name);
  }
  return names;
}

/**
 * Node's thread names, read before the engine is loaded: the names of the threads already
 * running (the main thread's is the executable's name) and the names Node gives later threads.
 */
export function nodeThreadNames(taskDir = TASKS): Set<string> {
  return new Set([...threadNames(taskDir), ...NODE_THREAD_NAMES]);
}

/**
 * Gives the engine's threads `nice` now and every `intervalMs`, until stopped. Inert where
 * there is no /proc (macOS, Windows) and when `nice` is 0.
 */
export function lowerEnginePriority(options: EnginePriorityOptions): EnginePriority {
  const taskDir = options.taskDir ?? TASKS;
  const priority = options.priority ?? { get: getPriority, set: setPriority };
  /**
   * Threads settled, not read again while they run: the engine's once lowered (or found lower),
   * Node's once they have carried a Node name at two scans (a thread the engine has just started
   * carries its creator's name until the engine names it, within microseconds).
   */
  let done = new Set<string>();
  /**
   * The engine's among them: their priority is read again at each scan, since a thread may
   * raise its own after its first look (ClickHouse's MemoryWorker does, by 3).
   */
  let engine = new Set<string>();
  /** Threads found with a Node name once. */
  let nodeOnce = new Set<string>();
  /** The threads lowered, each once however often it is lowered again. */
  const lowered = new Set<string>();
  let failed = false;
  let timer: NodeJS.Timeout | undefined;

  const stop = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
  };
  const active = options.nice > 0 && existsSync(taskDir);
  /** Gives an engine thread `nice` if it has less: 'ended' when it is gone, 'failed' on error. */
  const lower = (tid: string): 'ok' | 'ended' | 'failed' => {
    try {
      if (priority.get(Number(tid)) < options.nice) {
        priority.set(Number(tid), options.nice);
        lowered.add(tid);
      }
      return 'ok';
    } catch (error) {
      if (systemErrorCode(error) === 'ESRCH') return 'ended';
      failed = true;
      stop();
      options.onFailure?.(error as Error);
      return 'failed';
    }
  };
  const scan = () => {
    if (!active || failed) return;
    const next = new Set<string>();
    const nextEngine = new Set<string>();
    const nextNodeOnce = new Set<string>();
    for (const tid of tasks(taskDir)) {
      if (done.has(tid) && !engine.has(tid)) {
        next.add(tid);
        continue;
      }
      if (!done.has(tid)) {
        const name = threadName(taskDir, tid);
        if (name === undefined) continue; // the thread ended
        if (options.nodeNames.has(name)) {
          (nodeOnce.has(tid) ? next : nextNodeOnce).add(tid);
          continue;
        }
      }
      const result = lower(tid);
      if (result === 'failed') return;
      if (result === 'ended') continue;
      next.add(tid);
      nextEngine.add(tid);
    }
    done = next;
    engine = nextEngine;
    nodeOnce = nextNodeOnce;
  };

  if (active) {
    scan();
    if (!failed) {
      timer = setInterval(scan, options.intervalMs ?? 500);
      timer.unref();
    }
  }
  return { scan, lowered: () => lowered.size, stop };
}

/** os.getPriority and os.setPriority throw ERR_SYSTEM_ERROR with the errno's name in `info`. */
export function systemErrorCode(error: unknown): string | undefined {
  const { code, info } = error as { code?: string; info?: { code?: string } };
  return info?.code ?? code;
}

function tasks(taskDir: string): string[] {
  try {
    return readdirSync(taskDir);
  } catch {
    return [];
  }
}

function threadName(taskDir: string, tid: string): string | undefined {
  try {
    return readFileSync(`${taskDir}/${tid}/comm`, 'utf8').trimEnd();
  } catch {
    return undefined; // the thread ended
  }
}
