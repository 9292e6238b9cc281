import { subscribe } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { context, diag, trace, type Span } from '@opentelemetry/api';
import { isTracingSuppressed } from '@opentelemetry/core';
import { ATTR_HTTP_ATTEMPTS, ATTR_HTTP_RETRY_WAIT_MS } from '../semconv.js';
import { portOf } from './params.js';

/**
 * Counting the HTTP requests of each model call: the OpenAI and Anthropic SDKs retry 429s, 5xx and
 * connection errors themselves (`maxRetries`, default 2), so one call, one span, may be several
 * requests and seconds of waiting. Node publishes every request on diagnostics channels: the
 * global `fetch` (undici, which the SDKs use by default) on `undici:request:*`, the `http` module
 * (node-fetch, older SDKs, a custom `fetch` option) on `http.client.*`. A request is counted on
 * the span active where it was made, when that span is a model call: one of our captures', or a
 * foreign instrumentation's that runs the SDK call with its span active (most do).
 *
 * Why channels, and not the SDKs' `fetch` option or a wrapped global `fetch`: the channels are a
 * public Node API, see every client instance (even one given its own `fetch`), and patch nothing a
 * host or another library also patches. Each handler costs one context lookup and a WeakMap
 * access per request; a call without retries gets one attribute. Every handler is guarded: a
 * diagnostics subscriber that throws would surface as an uncaught exception in the host.
 */

/** How one span's requests went. */
interface SpanAttempts {
  attempts: number;
  /** Total wait between the end of one request and the start of the next, ms. */
  waitMs: number;
  /** When the latest request ended (response headers or error), or started while in flight. */
  lastMark: number;
}

/** Spans started by our captures: model calls by construction. */
const ownModelCalls = new WeakSet<Span>();
/** Spans a request was made under: their counts, or null when the span is no model call. */
const bySpan = new WeakMap<Span, SpanAttempts | null>();
/** Requests in flight, to the counts of their span (for the time their response ends). */
const byRequest = new WeakMap<object, SpanAttempts>();

let watching = false;

/** Marks a span of our own captures as a model call, whose requests are counted. */
export function markModelCall(span: Span): void {
  ownModelCalls.add(span);
}

/**
 * Starts counting requests on model-call spans, once per process. Called when a provider capture
 * patches its SDK and when the span processor is built (for foreign instrumentations' spans).
 */
export function watchHttpAttempts(): void {
  if (watching) return;
  watching = true;
  try {
    subscribe('undici:request:create', onFetchStart);
    subscribe('undici:request:headers', onRequestEnd);
    subscribe('undici:request:error', onRequestEnd);
    subscribe('http.client.request.start', onHttpStart);
    // Published when the response's headers are in. Node 20 publishes no error of an `http`
    // request: after a connection error the wait runs from that request's start.
    subscribe('http.client.response.finish', onRequestEnd);
  } catch (error) {
    diag.error('routewatch: watching HTTP requests for SDK retries failed', error);
  }
}

function onFetchStart(message: unknown): void {
  onRequestStart(message, false);
}

/**
 * The OTLP exporters send over `http` with tracing suppressed, in a context that may still hold a
 * model call's span (a batch timer armed while a long stream ran): such requests are not the
 * call's. Our Anthropic capture also suppresses tracing around its SDK call (the SDK's own spans
 * would double ours), so a suppressed request is counted only when it goes to the server the span
 * names, which an exporter's never does; the undici channels, which the SDKs' default `fetch`
 * reports on, do not check suppression at all.
 */
function onHttpStart(message: unknown): void {
  onRequestStart(message, true);
}

function onRequestStart(message: unknown, skipSuppressed: boolean): void {
  try {
    const active = context.active();
    const suppressed = skipSuppressed && isTracingSuppressed(active);
    const span = trace.getSpan(active);
    if (span === undefined || !span.isRecording()) return;
    let counts = bySpan.get(span);
    if (counts === undefined) {
      counts = isModelCall(span) ? { attempts: 0, waitMs: 0, lastMark: 0 } : null;
      bySpan.set(span, counts);
    }
    if (counts === null || !toCallServer(span, message, suppressed)) return;
    const now = performance.now();
    counts.attempts += 1;
    if (counts.attempts > 1) counts.waitMs += Math.max(0, now - counts.lastMark);
    counts.lastMark = now;
    const request = (message as { request?: unknown } | null)?.request;
    if (typeof request === 'object' && request !== null) byRequest.set(request, counts);
    if (counts.attempts === 1) {
      span.setAttribute(ATTR_HTTP_ATTEMPTS, 1);
    } else {
      span.setAttributes({
        [ATTR_HTTP_ATTEMPTS]: counts.attempts,
        [ATTR_HTTP_RETRY_WAIT_MS]: Math.round(counts.waitMs),
      });
    }
  } catch (error) {
    diag.error('routewatch: counting an HTTP request failed', error);
  }
}

function onRequestEnd(message: unknown): void {
  try {
    const request = (message as { request?: unknown } | null)?.request;
    if (typeof request !== 'object' || request === null) return;
    const counts = byRequest.get(request);
    if (counts === undefined) return;
    byRequest.delete(request);
    counts.lastMark = performance.now();
  } catch (error) {
    diag.error('routewatch: timing an HTTP request failed', error);
  }
}

/**
 * Whether a request goes to the server the model call names (`server.address`, `server.port`,
 * from the client's base URL): a token fetched first (an async `apiKey`, a `fetch` option that
 * signs in) is the app's, not a retry. Without a server to compare, every request counts, but for
 * one made with tracing suppressed (`strict`): that may be an exporter's.
 */
function toCallServer(span: Span, message: unknown, strict: boolean): boolean {
  const attributes = (span as { attributes?: Record<string, unknown> }).attributes;
  const address = attributes?.['server.address'];
  if (typeof address !== 'string' || address === '') return !strict;
  let target: ReturnType<typeof requestTarget>;
  try {
    target = requestTarget((message as { request?: unknown } | null)?.request);
  } catch {
    return !strict; // a target URL cannot be read: counted, as before servers were compared
  }
  if (target === undefined) return !strict;
  const port = attributes?.['server.port'];
  return (
    bare(target.host) === bare(address) &&
    (typeof port !== 'number' || target.port === undefined || port === target.port)
  );
}

/**
 * Host and port of a request on either channel: undici's `origin`, or an `http` ClientRequest's
 * Host header (its `host` alone when the header is not set: the port is then unknown).
 */
function requestTarget(request: unknown): { host: string; port: number | undefined } | undefined {
  if (typeof request !== 'object' || request === null) return undefined;
  const r = request as {
    origin?: unknown;
    host?: unknown;
    protocol?: unknown;
    getHeader?: unknown;
  };
  let url: URL;
  if (typeof r.origin === 'string') {
    url = new URL(r.origin);
  } else if (typeof r.protocol === 'string') {
    const header =
      typeof r.getHeader === 'function'
        ? (r.getHeader as (name: string) => unknown).call(request, 'host')
        : undefined;
    if (typeof header !== 'string') {
      return typeof r.host === 'string' ? { host: r.host, port: undefined } : undefined;
    }
    url = new URL(`${r.protocol}//${header}`);
  } else {
    return undefined;
  }
  return { host: url.hostname, port: portOf(url) };
}

const bare = (host: string) => host.replace(/^\[|\]$/g, '').toLowerCase();

/** The Vercel AI SDK's provider request spans (`ai.generateText.doGenerate`, `….doStream`). */
const VERCEL_MODEL_CALL = /\.do[A-Z][A-Za-z]*$/;

/**
 * Whether a span is a model call: one of ours, or a foreign span whose attributes at the time of
 * the request say so, by the markers the collector reads (collector/normalize.ts `isModelCall`).
 * Foreign spans are read through `attributes`, which the OpenTelemetry SDK's spans expose; a
 * wrapper around one (OpenInference makes its active span an `OISpan` holding the SDK's span as
 * `span`) through the span it wraps.
 */
function isModelCall(span: Span): boolean {
  if (ownModelCalls.has(span)) return true;
  const attributes =
    (span as { attributes?: unknown }).attributes ??
    (span as { span?: { attributes?: unknown } }).span?.attributes;
  if (typeof attributes !== 'object' || attributes === null) return false;
  const a = attributes as Record<string, unknown>;
  const vercel = a['ai.operationId'];
  if (typeof vercel === 'string') return VERCEL_MODEL_CALL.test(vercel);
  const langfuse = a['langfuse.observation.type'];
  if (typeof langfuse === 'string') return langfuse === 'generation' || langfuse === 'embedding';
  const openInference = a['openinference.span.kind'];
  if (typeof openInference === 'string') {
    return openInference === 'LLM' || openInference === 'EMBEDDING';
  }
  return (
    a['gen_ai.operation.name'] !== undefined ||
    a['gen_ai.provider.name'] !== undefined ||
    a['gen_ai.system'] !== undefined ||
    a['gen_ai.request.model'] !== undefined ||
    a['llm.request.type'] !== undefined
  );
}
