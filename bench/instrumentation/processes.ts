/** Forking the receiver and the variants' processes, shared by run.ts and profile.ts. */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FromChild, ToChild } from './child.js';
import type { ReceiverMessage, ReceiverRequest } from './receiver.js';
import type { VariantName } from './variants.js';

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

export interface Receiver {
  port: number;
  /** Spans received so far from the run `run` (the `?run=` of its exporter URL). */
  counts(run: string): Promise<Omit<Extract<ReceiverMessage, { type: 'counts' }>, 'type' | 'run'>>;
  stop(): void;
}

export async function startReceiver(): Promise<Receiver> {
  // execArgv []: the receiver must not inherit the parent's flags (--cpu-prof, inspector).
  const child = fork(here('./receiver.js'), [], { execArgv: [], stdio: 'inherit' });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`receiver exited early with code ${code}`)));
    child.on('message', (message: ReceiverMessage) => {
      if (message.type === 'listening') resolve(message.port);
    });
  });
  return {
    port,
    counts: (run) =>
      new Promise((resolve) => {
        const onMessage = (message: ReceiverMessage) => {
          if (message.type === 'counts' && message.run === run) {
            child.off('message', onMessage);
            const { type: _type, run: _run, ...counts } = message;
            resolve(counts);
          }
        };
        child.on('message', onMessage);
        child.send({ type: 'counts', run } satisfies ReceiverRequest);
      }),
    stop: () => {
      child.removeAllListeners('exit');
      child.disconnect();
    },
  };
}

export interface ChunkResult {
  cpuMicrosPerCall: number;
  wallMicrosPerCall: number;
}

/** A variant's warmed-up process, measuring chunks on request. */
export interface VariantProcess {
  readonly variant: VariantName;
  readonly spansPerCall: number;
  readonly spansPerLoop: number;
  /** Calls measured so far, warm-up included. */
  readonly totalCalls: number;
  /** `around` loops run so far (warm-up included): ours opens a task and an attempt per loop. */
  readonly loops: number;
  measure(calls: number, profileFile?: string): Promise<ChunkResult>;
  exit(): Promise<void>;
}

export async function startVariant(
  variant: VariantName,
  endpoint: string,
  warmup: number,
): Promise<VariantProcess> {
  const child: ChildProcess = fork(
    here('./child.js'),
    ['--variant', variant, '--endpoint', endpoint, '--warmup', String(warmup)],
    { execArgv: [], stdio: 'inherit' },
  );
  let pending: ((message: FromChild) => void) | undefined;
  let failed: ((error: Error) => void) | undefined;
  child.on('message', (message: FromChild) => pending?.(message));
  child.once('exit', (code) => failed?.(new Error(`${variant}: process exited with code ${code}`)));
  const next = (request?: ToChild) =>
    new Promise<FromChild>((resolve, reject) => {
      pending = resolve;
      failed = reject;
      if (request !== undefined) child.send(request);
    });

  const ready = await next();
  if (ready.type !== 'ready') throw new Error(`${variant}: expected ready, got ${ready.type}`);
  let totalCalls = warmup;
  let loops = 1;
  return {
    variant,
    spansPerCall: ready.spansPerCall,
    spansPerLoop: ready.spansPerLoop,
    get totalCalls() {
      return totalCalls;
    },
    get loops() {
      return loops;
    },
    async measure(calls, profileFile) {
      const answer = await next({
        type: 'chunk',
        calls,
        ...(profileFile === undefined ? {} : { profileFile }),
      });
      if (answer.type !== 'chunk') throw new Error(`${variant}: expected a chunk result`);
      totalCalls += calls;
      loops += 1;
      return {
        cpuMicrosPerCall: answer.cpuMicrosPerCall,
        wallMicrosPerCall: answer.wallMicrosPerCall,
      };
    },
    exit: () =>
      new Promise((resolve) => {
        failed = undefined;
        child.removeAllListeners('exit');
        child.once('exit', () => resolve());
        child.send({ type: 'exit' } satisfies ToChild);
      }),
  };
}
