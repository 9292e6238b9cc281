import { diag, TraceFlags } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Agent } from 'node:http';
import { Worker } from 'node:worker_threads';
import { guard } from './errors.js';

/**
 * The last export, made when the process exits, synchronously.
 *
 * A final export started from `beforeExit` wakes the event loop up again, so Node emits
 * `beforeExit` once more and the app's own listeners run twice (a pool's `end()` then fails);
 * and it ran before the app's own `beforeExit` work, whose spans it could not include. So nothing
 * of ours runs at `beforeExit`. Every span ended and not yet through an export is kept here
 * (bounded), the exporter's sockets do not hold the process open, and at `exit`, or on a signal
 * that would kill the process, the spans left are serialized as the exporter would and posted
 * from a worker thread while this thread waits, at most EXIT_EXPORT_TIMEOUT_MS. That covers
 * `process.exit()` too. A span that was in flight at exit is sent again: the collector keeps one
 * copy (spans are replaced by their trace and span id).
 */

/** The longest a finished process waits for its last export. */
export const EXIT_EXPORT_TIMEOUT_MS = 5_000;

/**
 * The spans ended and not yet through an export: the batch processor's queue and its export in
 * flight. Bounded by the queue's own size (twice over, for the batch in flight): the processor
 * drops past its queue anyway, and the oldest go first here too.
 */
export class UnexportedSpans {
  readonly #spans = new Set<ReadableSpan>();
  readonly #limit: number;

  constructor(limit: number) {
    this.#limit = Math.max(1, limit);
  }

  add(span: ReadableSpan): void {
    if (this.#spans.size >= this.#limit) {
      const oldest = this.#spans.values().next().value;
      if (oldest !== undefined) this.#spans.delete(oldest);
    }
    this.#spans.add(span);
  }

  /** An export is over, whichever way: its spans are the exporter's matter now. */
  settle(spans: readonly ReadableSpan[]): void {
    for (const span of spans) this.#spans.delete(span);
  }

  take(): ReadableSpan[] {
    const spans = [...this.#spans];
    this.#spans.clear();
    return spans;
  }

  get size(): number {
    return this.#spans.size;
  }
}

/**
 * Keeps each sampled span that ends (what the batch processor exports) until an export settles
 * it. Placed after the batch processor: its flush waits for the exports that one started.
 */
export class UnexportedSpanProcessor implements SpanProcessor {
  constructor(
    private readonly unexported: UnexportedSpans,
    private readonly exporter: SettlingExporter,
  ) {}

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    this.unexported.add(span);
  }

  /** The exports under way, those the batch processor's flush just started included; bounded. */
  forceFlush(): Promise<void> {
    return this.exporter.drained(EXIT_EXPORT_TIMEOUT_MS);
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * The exporter, between the batch processor and the OTLP exporter. It takes a batch off the
 * processor's hands as soon as its export starts, one export at a time: the processor waits for
 * each export under a timer of its own (30 s) that keeps the process alive, so a collector that
 * hangs held a finished process for the exporter's timeout and its retries. The batch stays in
 * UnexportedSpans until its export is over, and a process that ends first sends it at exit.
 *
 * The first batch it gives up on is said once on stderr: a wrong address, a collector answering
 * 404 or refusing the connection, would otherwise lose every span without a word (the exporter
 * tells only `diag`, which nobody reads).
 */
export class SettlingExporter implements SpanExporter {
  #warned = false;
  /** Settles when the last export started is over. */
  #tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly inner: SpanExporter,
    private readonly unexported: UnexportedSpans,
    private readonly url: string,
  ) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    const previous = this.#tail;
    let over!: () => void;
    this.#tail = new Promise<void>((resolve) => (over = resolve));
    void previous.then(() => {
      resultCallback({ code: ExportResultCode.SUCCESS });
      const settle = (result: ExportResult) => {
        this.unexported.settle(spans);
        if (result.code !== ExportResultCode.SUCCESS) this.#warnOnce(result.error);
        over();
      };
      try {
        this.inner.export(spans, settle);
      } catch (error) {
        settle({ code: ExportResultCode.FAILED, error: error as Error });
      }
    });
  }

  /** Resolves once the exports started so far are over, or after `timeoutMs`. */
  drained(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
      timer.unref();
    });
    return Promise.race([this.#tail, late]).finally(() => clearTimeout(timer));
  }

  async shutdown(): Promise<void> {
    await this.drained(EXIT_EXPORT_TIMEOUT_MS);
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }

  #warnOnce(error: Error | undefined): void {
    if (this.#warned) return;
    this.#warned = true;
    guard('reporting a failed export', () =>
      process.stderr.write(
        `[routewatch] exporting spans to ${this.url} failed (${error?.message ?? 'no reason given'}): the spans of a failed export are dropped; said once, OTEL_LOG_LEVEL=debug tells each\n`,
      ),
    );
  }
}

/**
 * An HTTP agent for the exporter whose sockets do not keep the process alive: an export in flight
 * (a collector that hangs, one that is slow) no longer holds a finished process for the
 * exporter's timeout. Its spans are still in UnexportedSpans, and go with the exit export.
 */
export async function exportAgent(protocol: string): Promise<Agent> {
  const http = protocol === 'https:' ? await import('node:https') : await import('node:http');
  const agent = new http.Agent({ keepAlive: true });
  const unref = (socket: unknown) =>
    (socket as { unref?: () => void } | null | undefined)?.unref?.();
  const internals = agent as unknown as {
    createConnection(...args: unknown[]): unknown;
    reuseSocket(socket: unknown, request: unknown): void;
  };
  const create = internals.createConnection.bind(agent);
  internals.createConnection = (...args: unknown[]) => {
    const socket = create(...args);
    unref(socket);
    return socket;
  };
  const reuse = internals.reuseSocket.bind(agent);
  internals.reuseSocket = (socket: unknown, request: unknown) => {
    reuse(socket, request);
    // Node refs a kept-alive socket again when it takes a new request.
    unref(socket);
  };
  return agent;
}

/** Where and how the exit export posts: what the exporter itself would send. */
export interface ExitTarget {
  url: string;
  protocol: 'http/json' | 'http/protobuf';
  /** Extra headers: OTEL_EXPORTER_OTLP_(TRACES_)HEADERS and the options', as the exporter adds. */
  headers: Record<string, string>;
}

/** OTEL_EXPORTER_OTLP_HEADERS, then OTEL_EXPORTER_OTLP_TRACES_HEADERS over it: `k=v,k2=v2`. */
export function headersFromEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS']) {
    for (const pair of (env[name] ?? '').split(',')) {
      const at = pair.indexOf('=');
      if (at <= 0) continue;
      try {
        const key = decodeURIComponent(pair.slice(0, at).trim());
        const value = decodeURIComponent(pair.slice(at + 1).trim());
        if (key !== '') headers[key.toLowerCase()] = value;
      } catch {
        /* not URL-encoded text: the exporter skips it too */
      }
    }
  }
  return headers;
}

/**
 * The worker's code (CommonJS, run with `eval`): one POST, its outcome in the shared flag —
 * the status code, -1 for a network error, -2 for a timeout — then a wake-up of the waiting thread.
 */
const POST_ONCE = `
const { workerData } = require('node:worker_threads');
const { url, headers, body, timeoutMs, flag } = workerData;
const done = (code) => { Atomics.store(flag, 0, code); Atomics.notify(flag, 0); };
try {
  const target = new URL(url);
  const http = require(target.protocol === 'https:' ? 'node:https' : 'node:http');
  const request = http.request(target, {
    method: 'POST',
    headers: { ...headers, 'content-length': String(body.byteLength) },
    timeout: timeoutMs,
  }, (response) => {
    response.resume();
    response.on('end', () => done(response.statusCode));
    response.on('error', () => done(-1));
  });
  request.on('timeout', () => { request.destroy(); done(-2); });
  request.on('error', () => done(-1));
  request.end(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
} catch { done(-1); }
`;

/** What the exit export came to, for the one line said when it failed. */
export type ExitExportOutcome =
  { sent: number } | { failed: number; why: string } | { nothing: true };

/**
 * Posts `spans` now, blocking this thread until the collector answers or `timeoutMs` passes.
 * Never throws. The serialization is the exporter's own (otlp-transformer).
 */
export function exportNow(
  spans: ReadableSpan[],
  target: ExitTarget,
  timeoutMs: number = EXIT_EXPORT_TIMEOUT_MS,
): ExitExportOutcome {
  if (spans.length === 0) return { nothing: true };
  try {
    const serializer =
      target.protocol === 'http/protobuf' ? ProtobufTraceSerializer : JsonTraceSerializer;
    const body = serializer.serializeRequest(spans);
    if (body === undefined) return { failed: spans.length, why: 'the spans could not be encoded' };
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const started = Date.now();
    const worker = new Worker(POST_ONCE, {
      eval: true,
      // Not the app's `--import` of us, nor its environment: only the post.
      execArgv: [],
      env: {},
      workerData: {
        url: target.url,
        headers: {
          ...target.headers,
          'content-type':
            target.protocol === 'http/protobuf' ? 'application/x-protobuf' : 'application/json',
        },
        body,
        timeoutMs,
        flag,
      },
    });
    worker.unref();
    const waited = Atomics.wait(flag, 0, 0, timeoutMs + 250);
    const status = Atomics.load(flag, 0);
    if (waited === 'timed-out' || status === -2)
      return {
        failed: spans.length,
        why: `no answer from ${target.url} within ${Math.round((Date.now() - started) / 1000)} s`,
      };
    if (status === -1) return { failed: spans.length, why: `${target.url} could not be reached` };
    if (status >= 200 && status < 300) return { sent: spans.length };
    return { failed: spans.length, why: `${target.url} answered ${status}` };
  } catch (error) {
    diag.error('routewatch: the exit export failed', error);
    return { failed: spans.length, why: (error as Error).message };
  }
}

/** Says once, on stderr, that the last spans were lost: nothing else would. */
export function reportExitExport(outcome: ExitExportOutcome): void {
  guard('reporting the exit export', () => {
    if (!('failed' in outcome)) return;
    const line = `[routewatch] the last ${outcome.failed} span${outcome.failed === 1 ? '' : 's'} of this process could not be exported: ${outcome.why}`;
    diag.warn(`routewatch: ${line}`);
    process.stderr.write(`${line}\n`);
  });
}
