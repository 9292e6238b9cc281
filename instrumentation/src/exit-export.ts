import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { diag, TraceFlags } from '@opentelemetry/api';
import { ExportResultCode, parseKeyPairsIntoRecord, type ExportResult } from '@opentelemetry/core';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { nonEmpty } from './config.js';
import { guard } from './errors.js';

/**
 * The register entry's last export, made when the process exits, synchronously.
 *
 * A final export started from `beforeExit` wakes the event loop up again, so Node emits
 * `beforeExit` once more and the app's own listeners run twice (a pool's `end()` then fails);
 * and it ran before the app's own `beforeExit` work, whose spans it could not include. So nothing
 * of ours runs at `beforeExit`. Every span ended and not yet through an export is kept here
 * (bounded), and at `exit` — or on a signal that would kill the process — the spans left are
 * serialized as the exporter would and posted from a worker thread while this thread waits, at
 * most EXIT_EXPORT_TIMEOUT_MS in all. That covers `process.exit()` and uncaught errors too. A
 * span whose export was cut short by the exit is sent again: the collector keeps one copy (spans
 * are replaced by their trace and span id).
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
}

/** Keeps each sampled span that ends (what the batch processor exports) until an export settles it. */
export class UnexportedSpanProcessor implements SpanProcessor {
  constructor(private readonly unexported: UnexportedSpans) {}

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    this.unexported.add(span);
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * The OTLP exporter, settling each batch it exported (or gave up on) in UnexportedSpans. The first
 * batch it gives up on is said once on stderr: a wrong address, a collector answering 404 or
 * refusing the connection, would otherwise lose every span without a word (the exporter tells
 * only `diag`, which nobody reads).
 */
export class SettlingExporter implements SpanExporter {
  #warned = false;

  constructor(
    private readonly inner: SpanExporter,
    private readonly unexported: UnexportedSpans,
    private readonly url: string,
  ) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      this.unexported.settle(spans);
      if (result.code !== ExportResultCode.SUCCESS) this.#warnOnce(result.error);
      resultCallback(result);
    });
  }

  shutdown(): Promise<void> {
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

/** Where and how the exit export posts: what the exporter itself sends. */
export interface ExitTarget {
  url: string;
  protocol: 'http/json' | 'http/protobuf';
  /** OTEL_EXPORTER_OTLP_(TRACES_)HEADERS and the options' headers, as the exporter sends them. */
  headers: Record<string, string>;
  /** The TLS files of OTEL_EXPORTER_OTLP_(TRACES_)CERTIFICATE, _CLIENT_KEY, _CLIENT_CERTIFICATE. */
  tls: { ca?: Buffer; key?: Buffer; cert?: Buffer };
  /** Spans per request: the batch processor's batch size. */
  batchSize: number;
}

/** OTEL_EXPORTER_OTLP_HEADERS, then OTEL_EXPORTER_OTLP_TRACES_HEADERS over it, as the exporter reads them. */
export function headersFromEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  return {
    ...parseKeyPairsIntoRecord(env['OTEL_EXPORTER_OTLP_HEADERS']),
    ...parseKeyPairsIntoRecord(env['OTEL_EXPORTER_OTLP_TRACES_HEADERS']),
  };
}

/** The TLS files the exporter reads from the environment (traces-specific first); unreadable: left out. */
export function tlsFromEnv(env: NodeJS.ProcessEnv): ExitTarget['tls'] {
  const file = (suffix: string) => {
    const path =
      nonEmpty(env[`OTEL_EXPORTER_OTLP_TRACES_${suffix}`]) ??
      nonEmpty(env[`OTEL_EXPORTER_OTLP_${suffix}`]);
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch {
      return undefined; // the exporter warns of it itself
    }
  };
  const ca = file('CERTIFICATE');
  const key = file('CLIENT_KEY');
  const cert = file('CLIENT_CERTIFICATE');
  return {
    ...(ca ? { ca } : {}),
    ...(key ? { key } : {}),
    ...(cert ? { cert } : {}),
  };
}

/**
 * The worker's code (CommonJS, run with `eval`): the bodies posted one after the other until one
 * fails or the time is up; in the shared flags, [1] the bodies sent, [2] the first failure — the
 * status code, -1 for a network error, -2 for no answer in time — and [0] set to 1 once done,
 * which wakes the waiting thread; -3 for a request that could not be made (a header value no
 * header can carry). [3] is set once the worker runs.
 */
const POST_BODIES = `
const { workerData } = require('node:worker_threads');
const { url, headers, tls, bodies, deadline, flags } = workerData;
Atomics.store(flags, 3, 1);
const finish = (failure) => {
  if (failure !== undefined) Atomics.store(flags, 2, failure);
  Atomics.store(flags, 0, 1);
  Atomics.notify(flags, 0);
};
const post = (body) => new Promise((resolve) => {
  const left = deadline - Date.now();
  if (left <= 0) return resolve(-2);
  const target = new URL(url);
  const http = require(target.protocol === 'https:' ? 'node:https' : 'node:http');
  const request = http.request(target, {
    method: 'POST',
    headers: { ...headers, 'content-length': String(body.byteLength) },
    timeout: left,
    ...tls,
  }, (response) => {
    response.resume();
    response.on('end', () => resolve(response.statusCode));
    response.on('error', () => resolve(-1));
  });
  request.on('timeout', () => { request.destroy(); resolve(-2); });
  request.on('error', () => resolve(-1));
  request.end(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
}).catch(() => -3);
(async () => {
  for (const body of bodies) {
    const status = await post(body);
    if (status < 200 || status >= 300) return finish(status);
    Atomics.add(flags, 1, 1);
  }
  finish();
})().catch(() => finish(-1));
`;

/** The exit export's User-Agent, beside the exporter's `OTel-OTLP-Exporter-JavaScript/…`. */
const EXIT_USER_AGENT = 'routewatch-instrumentation-exit-export';

/** The environment without NODE_OPTIONS, which a worker would apply (its `--require`s). */
function withoutNodeOptions(env: NodeJS.ProcessEnv): Record<string, string> {
  const copy: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (key !== 'NODE_OPTIONS' && value !== undefined) copy[key] = value;
  }
  return copy;
}

/** What the exit export came to, for the one line said when it failed. */
export type ExitExportOutcome =
  { sent: number } | { failed: number; why: string } | { nothing: true };

/**
 * Posts `spans` now, in requests of `target.batchSize`, blocking this thread until the collector
 * has answered them all or `timeoutMs` has passed. Never throws. The serialization is the
 * exporter's own (otlp-transformer).
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
    const size = Math.max(1, target.batchSize);
    const batches: ReadableSpan[][] = [];
    for (let at = 0; at < spans.length; at += size) batches.push(spans.slice(at, at + size));
    const bodies = batches.map((batch) => serializer.serializeRequest(batch));
    if (bodies.some((body) => body === undefined))
      return { failed: spans.length, why: 'the spans could not be encoded' };
    const flags = new Int32Array(new SharedArrayBuffer(16));
    const started = Date.now();
    const worker = new Worker(POST_BODIES, {
      eval: true,
      // Only the posts: not the app's `--import` of us, nor what NODE_OPTIONS would preload
      // (`--require` runs in a worker too): a slow or failing preload cost every exit its time,
      // or the last spans. The rest of the environment stays (NODE_TLS_REJECT_UNAUTHORIZED).
      execArgv: [],
      env: withoutNodeOptions(process.env),
      workerData: {
        url: target.url,
        headers: {
          'user-agent': EXIT_USER_AGENT,
          ...target.headers,
          'content-type':
            target.protocol === 'http/protobuf' ? 'application/x-protobuf' : 'application/json',
        },
        tls: target.tls,
        bodies,
        deadline: started + timeoutMs,
        flags,
      },
    });
    worker.unref();
    const waited = Atomics.wait(flags, 0, 0, timeoutMs + 250);
    const sentBatches = Atomics.load(flags, 1);
    const sent = batches.slice(0, sentBatches).reduce((n, batch) => n + batch.length, 0);
    const failed = spans.length - sent;
    if (failed === 0) return { sent };
    const status = Atomics.load(flags, 2);
    const why =
      Atomics.load(flags, 3) === 0
        ? `the worker thread that posts it did not start within ${Math.round(timeoutMs / 1000)} s`
        : status === -3
          ? `the request to ${target.url} could not be made (a header of OTEL_EXPORTER_OTLP_HEADERS?)`
          : waited === 'timed-out' || status === -2 || status === 0
            ? `no answer from ${target.url} within ${Math.round((Date.now() - started) / 1000)} s`
            : status === -1
              ? `${target.url} could not be reached`
              : `${target.url} answered ${status}`;
    return { failed, why };
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
