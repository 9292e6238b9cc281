import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { OtlpDecodeError, RequestLimitError } from './otlp-errors.js';
import type { RequestLimits } from './otlp-errors.js';
import { createIngest, mergeParts } from './ingest.js';
import type { IngestResult, IngestSettings, OtlpEncoding } from './ingest.js';
import { LatencyHistogram, epochNowMs } from './latency-histogram.js';
import { WHOLE_REQUEST } from './normalize.js';
import type { SpanPart } from './normalize.js';

/**
 * Runs the ingest pipeline on worker threads, so that decoding a large or hostile body never
 * blocks the event loop: health checks, /metrics, other requests and SIGTERM are served while it
 * runs. Each thread has a bounded heap; a request that would need more is refused, and the thread
 * is replaced.
 *
 * A large protobuf body that finds two or more threads idle, and nothing queued, is split across
 * them: each thread decodes and checks the whole body but normalizes, prices and serializes only
 * its share of the spans (normalize.ts's SpanPart), and the shares' results are merged. The
 * acknowledgement then waits for the slowest share, not for the whole request on one thread.
 * Only while most spans of recent requests are stored: the walk every share repeats is most of
 * the work for an export of HTTP and database spans, where a split would cost more than it saves.
 */

/** Bodies from this size on are split when threads are idle: about 100 LLM spans, 500 others. */
export const SPLIT_MIN_BYTES = 64 * 1024;
/** Bodies are split while the recent share of stored spans is at least this. */
const SPLIT_MIN_STORED_SHARE = 0.5;
/** Weight of the latest request in the smoothed share of stored spans. */
const SHARE_SMOOTHING = 0.3;

export interface IngestTask {
  id: number;
  body: ArrayBuffer;
  encoding: OtlpEncoding;
  nowMs: number;
  /** The share of the body's spans this thread keeps: the whole request unless it is split. */
  part: SpanPart;
}

export type IngestAnswer =
  | {
      id: number;
      ok: true;
      result: IngestResult;
      /** When the thread took the task and when it finished, ms since the epoch (sub-ms). */
      startedAt: number;
      finishedAt: number;
    }
  | { id: number; ok: false; error: { name: string; message: string; code: string } };

/** The ingest pipeline as the HTTP route sees it. */
export interface IngestRunner {
  /**
   * Decodes, checks, normalizes and prices one request body. With `handOver`, the caller gives
   * the body up: when it spans a whole ArrayBuffer of its own, the pool moves that memory to the
   * ingest thread instead of copying it, and the caller must not read the body again.
   */
  run(body: Uint8Array, encoding: OtlpEncoding, handOver?: boolean): Promise<IngestResult>;
  /**
   * How long a body arriving now would wait before a thread takes it, behind the bodies queued
   * and `arrivingBytes` of bodies still being received.
   */
  estimatedWaitMs(arrivingBytes?: number): number;
  readonly stats: IngestStats;
  close(): Promise<void>;
}

export interface IngestStats {
  /** Bodies waiting for a thread, and their bytes. */
  queued: number;
  queuedBytes: number;
  /** Threads replaced after they died (out of memory on a request, or a crash). */
  workerRestarts: number;
  /** Bodies refused after waiting for a thread longer than the queue wait allowed. */
  shed: number;
  /** Body bytes decoded per second, measured over recent requests. */
  bytesPerSecond: number;
  /** Per request: waiting for a thread (and handed to it), the thread's work, the answer's way back. */
  waitMs: LatencyHistogram;
  workMs: LatencyHistogram;
  returnMs: LatencyHistogram;
}

function newIngestStats(): IngestStats {
  return {
    queued: 0,
    queuedBytes: 0,
    workerRestarts: 0,
    shed: 0,
    bytesPerSecond: INITIAL_BYTES_PER_SECOND,
    waitMs: new LatencyHistogram(),
    workMs: new LatencyHistogram(),
    returnMs: new LatencyHistogram(),
  };
}

/** A request needed more memory than an ingest thread may use. */
export class IngestTooComplexError extends Error {
  readonly code = 'INGEST_TOO_COMPLEX';
  constructor(heapMb: number) {
    super(
      `decoding this request needs more than the ${heapMb} MB an ingest thread may use ` +
        '(ROUTEWATCH_INGEST_WORKER_HEAP_MB): send smaller batches',
    );
    this.name = 'IngestTooComplexError';
  }
}

/**
 * A body waited for a thread longer than ROUTEWATCH_MAX_QUEUE_WAIT: it is refused, not decoded,
 * so that its exporter gets an answer it can act on (503 with Retry-After) before its own timeout
 * (10 s by default), rather than none. Admission estimates the wait before a body is read; in a
 * burst, or on a machine slower than measured, the estimate is short, and this bounds it.
 */
export class IngestQueueWaitError extends Error {
  readonly code = 'INGEST_QUEUE_WAIT';
  constructor(
    waitedMs: number,
    readonly retryAfterSeconds: number,
  ) {
    super(
      `the request waited ${(waitedMs / 1000).toFixed(1)} s for an ingest thread, longer than ` +
        `ROUTEWATCH_MAX_QUEUE_WAIT: the collector is overloaded`,
    );
    this.name = 'IngestQueueWaitError';
  }
}

const INITIAL_BYTES_PER_SECOND = 20 * 1024 * 1024;
const RATE_SMOOTHING = 0.3;

function rebuildError(error: { name: string; message: string; code: string }): Error {
  if (error.code === 'OTLP_LIMIT') {
    const limit = /ROUTEWATCH_MAX_(SPANS|ENTRIES|RESOURCES)/.exec(error.message)?.[1];
    const key: keyof RequestLimits =
      limit === 'SPANS' ? 'maxSpans' : limit === 'RESOURCES' ? 'maxResources' : 'maxEntries';
    return new RequestLimitError(key, error.message);
  }
  if (error.code === 'OTLP_INVALID') return new OtlpDecodeError(error.message);
  const rebuilt = new Error(error.message);
  rebuilt.name = error.name;
  return rebuilt;
}

/**
 * The compiled worker script. Next to this module in dist/; when this module runs from the
 * TypeScript sources (vitest), the build in dist/ that `npm test` makes first.
 */
function workerScript(): URL {
  const sibling = new URL('./ingest-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(sibling))) return sibling;
  const built = new URL('../dist/collector/ingest-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new Error(
    'the ingest worker is not built (dist/collector/ingest-worker.js): run `npm run build`',
  );
}

/** Where one task's time went: waiting for a thread, the thread's work, the answer's way back. */
interface TaskTimes {
  waitMs: number;
  workMs: number;
  returnMs: number;
}

const totalMs = (times: TaskTimes) => times.waitMs + times.workMs + times.returnMs;

interface Done {
  result: IngestResult;
  times: TaskTimes;
}

class Pending {
  /** When the request asked for a thread (epochNowMs). */
  readonly queuedAt = epochNowMs();
  /** Refuses it once it has waited the longest it may (cleared when a thread takes it). */
  expiry: ReturnType<typeof setTimeout> | undefined;
  constructor(
    readonly task: IngestTask,
    readonly bytes: number,
    readonly resolve: (done: Done) => void,
    readonly reject: (error: Error) => void,
  ) {}
}

interface Slot {
  worker: Worker;
  current: Pending | undefined;
  startedAt: number;
}

export class IngestPool implements IngestRunner {
  readonly stats: IngestStats = newIngestStats();
  readonly #settings: IngestSettings;
  readonly #heapMb: number;
  readonly #maxQueueWaitMs: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Pending[] = [];
  #nextId = 1;
  #closed = false;
  /** The share of received spans stored, smoothed over recent requests. */
  #storedShare = 1;

  constructor(settings: IngestSettings, options: IngestPoolOptions) {
    this.#settings = settings;
    this.#heapMb = options.heapMb;
    this.#maxQueueWaitMs = options.maxQueueWaitMs ?? Infinity;
    for (let i = 0; i < Math.max(1, options.workers); i++) this.#slots.push(this.#spawn());
  }

  async run(body: Uint8Array, encoding: OtlpEncoding, handOver = false): Promise<IngestResult> {
    if (this.#closed) throw new Error('the ingest pool is closed');
    const nowMs = Date.now();
    const count = this.#partsFor(body, encoding);
    // The copies first: handing the body over detaches it.
    const copies: ArrayBuffer[] = [];
    for (let i = 1; i < count; i++) copies.push(copyOf(body));
    const own = (handOver ? wholeBuffer(body) : undefined) ?? copyOf(body);
    const bodies = [own, ...copies];
    const bytes = body.byteLength / count;
    const parts = await Promise.all(
      bodies.map((buffer, index) =>
        this.#enqueue(
          buffer,
          encoding,
          nowMs,
          count === 1 ? WHOLE_REQUEST : { index, count },
          bytes,
        ),
      ),
    );
    // The request's times are those of the share that finished last.
    let last = parts[0]!.times;
    for (const { times } of parts) if (totalMs(times) > totalMs(last)) last = times;
    this.stats.waitMs.observe(last.waitMs);
    this.stats.workMs.observe(last.workMs);
    this.stats.returnMs.observe(last.returnMs);
    const result =
      parts.length === 1 ? parts[0]!.result : mergeParts(parts.map((part) => part.result));
    if (result.received > 0) {
      const share = result.rows / result.received;
      this.#storedShare += SHARE_SMOOTHING * (share - this.#storedShare);
    }
    return result;
  }

  /** Into how many shares a body is split: one per idle thread, when it is large and none waits. */
  #partsFor(body: Uint8Array, encoding: OtlpEncoding): number {
    if (
      encoding !== 'protobuf' ||
      body.byteLength < SPLIT_MIN_BYTES ||
      this.#queue.length > 0 ||
      this.#storedShare < SPLIT_MIN_STORED_SHARE
    )
      return 1;
    let idle = 0;
    for (const slot of this.#slots) if (slot.current === undefined) idle++;
    return Math.max(1, idle);
  }

  #enqueue(
    body: ArrayBuffer,
    encoding: OtlpEncoding,
    nowMs: number,
    part: SpanPart,
    bytes: number,
  ): Promise<Done> {
    return new Promise((resolve, reject) => {
      const task: IngestTask = { id: this.#nextId++, body, encoding, nowMs, part };
      const pending = new Pending(task, bytes, resolve, reject);
      // Refused when its wait runs out, not when a thread frees (a long decode ahead of it would
      // have it answered after its exporter gave up); the timer goes when a thread takes it.
      if (Number.isFinite(this.#maxQueueWaitMs)) {
        pending.expiry = setTimeout(() => this.#expire(pending), this.#maxQueueWaitMs);
        pending.expiry.unref();
      }
      this.#queue.push(pending);
      this.stats.queued++;
      this.stats.queuedBytes += bytes;
      this.#dispatch();
    });
  }

  estimatedWaitMs(arrivingBytes = 0): number {
    const busy = this.#slots.filter((s) => s.current !== undefined).length;
    const ahead = this.stats.queuedBytes + arrivingBytes;
    if (ahead === 0 && busy < this.#slots.length) return 0;
    return (ahead / this.stats.bytesPerSecond / this.#slots.length) * 1000;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const pending of this.#queue.splice(0)) {
      clearTimeout(pending.expiry);
      pending.reject(new Error('the collector is stopping'));
    }
    await Promise.all(this.#slots.map((slot) => slot.worker.terminate()));
  }

  #spawn(): Slot {
    const worker = new Worker(workerScript(), {
      workerData: this.#settings,
      resourceLimits: { maxOldGenerationSizeMb: this.#heapMb },
    });
    const slot: Slot = { worker, current: undefined, startedAt: 0 };
    worker.on('message', (answer: IngestAnswer) => {
      const pending = slot.current;
      slot.current = undefined;
      worker.unref();
      if (pending && pending.task.id === answer.id) {
        if (answer.ok) {
          this.#measure(pending.bytes, performance.now() - slot.startedAt);
          pending.resolve({
            result: answer.result,
            times: {
              waitMs: answer.startedAt - pending.queuedAt,
              workMs: answer.finishedAt - answer.startedAt,
              returnMs: epochNowMs() - answer.finishedAt,
            },
          });
        } else {
          pending.reject(rebuildError(answer.error));
        }
      }
      this.#dispatch();
    });
    worker.on('error', (error: Error & { code?: string }) => {
      const pending = slot.current;
      slot.current = undefined;
      pending?.reject(
        error.code === 'ERR_WORKER_OUT_OF_MEMORY' ? new IngestTooComplexError(this.#heapMb) : error,
      );
    });
    worker.on('exit', () => {
      if (this.#closed) return;
      const pending = slot.current;
      slot.current = undefined;
      pending?.reject(new Error('an ingest thread stopped while decoding this request'));
      const index = this.#slots.indexOf(slot);
      if (index >= 0) {
        this.stats.workerRestarts++;
        this.#slots[index] = this.#spawn();
        this.#dispatch();
      }
    });
    // Idle threads must not keep the process alive; a busy one does (#dispatch), so that a request
    // answered by it is awaited even where nothing else holds the event loop (app.inject in a
    // script: with the thread unref'd, Node exited 13 before the answer came).
    worker.unref();
    return slot;
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      if (slot.current !== undefined) continue;
      const pending = this.#next();
      if (pending === undefined) return;
      slot.current = pending;
      slot.startedAt = performance.now();
      slot.worker.ref();
      slot.worker.postMessage(pending.task, [pending.task.body]);
    }
  }

  /**
   * The next body for a thread, once those that waited too long are refused (their timers do it
   * on time; this is for a timer held up behind a busy event loop).
   */
  #next(): Pending | undefined {
    for (;;) {
      const pending = this.#queue.shift();
      if (pending === undefined) return undefined;
      clearTimeout(pending.expiry);
      this.stats.queued--;
      this.stats.queuedBytes -= pending.bytes;
      const waitedMs = epochNowMs() - pending.queuedAt;
      if (waitedMs <= this.#maxQueueWaitMs) return pending;
      this.#shed(pending, waitedMs);
    }
  }

  /** Its wait ran out while queued: out of the queue, refused. */
  #expire(pending: Pending): void {
    const index = this.#queue.indexOf(pending);
    if (index < 0) return;
    this.#queue.splice(index, 1);
    this.stats.queued--;
    this.stats.queuedBytes -= pending.bytes;
    this.#shed(pending, epochNowMs() - pending.queuedAt);
  }

  #shed(pending: Pending, waitedMs: number): void {
    this.stats.shed++;
    // Retry once the rest of the queue has gone through, as admission would say (1 to 60 s).
    const retryAfter = Math.min(60, Math.max(1, Math.ceil(this.estimatedWaitMs() / 1000)));
    pending.reject(new IngestQueueWaitError(waitedMs, retryAfter));
  }

  #measure(bytes: number, elapsedMs: number): void {
    if (bytes < 64 * 1024 || elapsedMs <= 0) return;
    const rate = (bytes / elapsedMs) * 1000;
    this.stats.bytesPerSecond += RATE_SMOOTHING * (rate - this.stats.bytesPerSecond);
  }
}

/**
 * The body's ArrayBuffer when the body covers all of it, so that moving it to another thread takes
 * nothing else along; undefined for a view into a larger or shared buffer (Node's pooled Buffers).
 */
function wholeBuffer(body: Uint8Array): ArrayBuffer | undefined {
  const buffer = body.buffer;
  if (!(buffer instanceof ArrayBuffer)) return undefined;
  return body.byteOffset === 0 && body.byteLength === buffer.byteLength ? buffer : undefined;
}

/** A copy the worker can own: the body may be a view into a pooled buffer. */
function copyOf(body: Uint8Array): ArrayBuffer {
  const copy = new Uint8Array(body.byteLength);
  copy.set(body);
  return copy.buffer;
}

/** The pipeline on the event loop itself (ROUTEWATCH_INGEST_WORKERS=0): for tools and debugging. */
export class InlineIngest implements IngestRunner {
  readonly stats: IngestStats = newIngestStats();
  readonly #ingest: ReturnType<typeof createIngest>;
  constructor(settings: IngestSettings) {
    this.#ingest = createIngest(settings);
  }
  async run(body: Uint8Array, encoding: OtlpEncoding): Promise<IngestResult> {
    const started = performance.now();
    const result = this.#ingest(body, encoding, Date.now());
    this.stats.waitMs.observe(0);
    this.stats.workMs.observe(performance.now() - started);
    this.stats.returnMs.observe(0);
    return result;
  }
  estimatedWaitMs(): number {
    return 0;
  }
  async close(): Promise<void> {}
}

export interface IngestPoolOptions {
  workers: number;
  heapMb: number;
  /** ROUTEWATCH_MAX_QUEUE_WAIT: a body that waited longer for a thread is refused (no limit when absent). */
  maxQueueWaitMs?: number;
}

export function createIngestRunner(
  settings: IngestSettings,
  options: IngestPoolOptions,
): IngestRunner {
  return options.workers === 0 ? new InlineIngest(settings) : new IngestPool(settings, options);
}
