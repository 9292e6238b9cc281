import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError, badRequest, refused, toHttpError, unavailable } from '../server/http-error.js';
import type { Admission } from './admission.js';
import { decodeBody, guardBodies, refuseBeforeBody } from './body-guard.js';
import type { BodyGuardOptions } from './body-guard.js';
import { IngestQueueWaitError, IngestTooComplexError } from './ingest-pool.js';
import type { IngestRunner } from './ingest-pool.js';
import type { IngestResult, OtlpEncoding } from './ingest.js';
import { LatencyHistogram } from './latency-histogram.js';
import { COST_SOURCES, noCostSourceCounts } from './normalize.js';
import type { CostSourceCounts } from './normalize.js';
import { OtlpDecodeError } from './otlp-errors.js';
import { encodeTraceResponseProto } from './otlp-proto.js';
import { OverloadedError } from './span-writer.js';
import { ReasonCountLog } from '../server/rate-limited-log.js';
import type { SpanWriter, WriteResult } from './span-writer.js';

/** The OTLP/HTTP trace receiver: `POST /v1/traces`, JSON or protobuf, gzip or not. */

export interface CollectorStats {
  /** Trace export requests received (POST), counted before anything refuses them (app.ts). */
  requests: number;
  spansReceived: number;
  spansSkipped: number;
  /** Spans refused for a start time outside the accepted window. */
  spansOutOfWindow: number;
  /** Spans refused alone for an invalid trace or span id. */
  spansInvalid: number;
  /** Requests answered with a 4xx. */
  rejectedRequests: number;
  /** Requests to any route refused with 401 for want of the token (before any route's own counts). */
  unauthenticatedRequests: number;
  /** Requests refused with 403 for their Host: no token, and a name other than a loopback one. */
  misaddressedRequests: number;
  /** LLM calls taken (not an exporter's retry of ones taken before), by where their cost comes from. */
  llmCallsByCostSource: CostSourceCounts;
  /** Per request: the body read and decompressed; the whole request, for those answered 200. */
  receiveMs: LatencyHistogram;
  totalMs: LatencyHistogram;
}

export function newCollectorStats(): CollectorStats {
  return {
    requests: 0,
    spansReceived: 0,
    spansSkipped: 0,
    spansOutOfWindow: 0,
    spansInvalid: 0,
    rejectedRequests: 0,
    unauthenticatedRequests: 0,
    misaddressedRequests: 0,
    llmCallsByCostSource: noCostSourceCounts(),
    receiveMs: new LatencyHistogram(),
    totalMs: new LatencyHistogram(),
  };
}

export interface OtlpRoutesOptions {
  ingest: IngestRunner;
  writer: SpanWriter;
  admission: Admission;
  stats: CollectorStats;
  maxBodyBytes: number;
  bodyTimeoutMs: number;
  bodyIdleTimeoutMs: number;
  /** When the server began to close (body-guard.ts). */
  closing?: BodyGuardOptions['closing'];
}

const CONTENT_TYPES: Record<string, OtlpEncoding> = {
  'application/json': 'json',
  'application/x-protobuf': 'protobuf',
};

/** The request's encoding by its Content-Type, as OTLP answers in it. */
export function otlpEncodingOf(request: FastifyRequest): OtlpEncoding {
  const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  return CONTENT_TYPES[type] ?? 'json';
}

/**
 * An ExportTraceServiceResponse: `{}` (zero bytes in protobuf) when everything was stored, else
 * a partial success naming how many spans were not stored and why. Exporters do not retry it.
 */
function accepted(reply: FastifyReply, encoding: OtlpEncoding, rejected = 0, message = '') {
  if (encoding === 'protobuf') {
    return reply
      .code(200)
      .type('application/x-protobuf')
      .send(Buffer.from(encodeTraceResponseProto(rejected, message)));
  }
  const body =
    rejected === 0
      ? {}
      : { partialSuccess: { rejectedSpans: String(rejected), errorMessage: message } };
  return reply.code(200).type('application/json').send(body);
}

/**
 * Says what was not stored: spans with an invalid id, spans outside the time window, and spans
 * the store refused.
 */
function partialMessage(ingested: IngestResult, stored: WriteResult): string {
  const { invalid, outOfWindow } = ingested;
  const total = ingested.rows + outOfWindow + invalid;
  const parts: string[] = [];
  if (invalid > 0) parts.push(`${invalid} with an invalid id (${ingested.invalidMessage})`);
  if (outOfWindow > 0)
    parts.push(`${outOfWindow} outside the accepted time window (${ingested.outOfWindowMessage})`);
  if (stored.rejected > 0)
    parts.push(`${stored.rejected} refused by the span store (${stored.errorMessage})`);
  return `${invalid + outOfWindow + stored.rejected} of ${total} spans were not stored, the rest were: ${parts.join('; ')}`;
}

/** The short reason a writer's refusal is counted under in the log's summary of refusals. */
const REFUSALS: Record<OverloadedError['code'], string> = {
  OVERLOADED: 'overloaded',
  LOG_FULL: 'write-ahead log full',
  LOG_UNWRITABLE: 'write-ahead log unwritable',
  SHUTTING_DOWN: 'shutting down',
};

/** When each export request came in (performance.now()), for its stage timings. */
const receivedAt = new WeakMap<FastifyRequest, number>();

export const otlpRoutes: FastifyPluginAsync<OtlpRoutesOptions> = async (app, options) => {
  const { stats, writer } = options;
  // An exporter that sends a batch routewatch cannot decode does not retry it (400), but its next
  // batches are likely as bad: a summary a minute, counted by encoding, with the last reason.
  const rejections = new ReasonCountLog((summary) =>
    app.log.warn(summary, 'rejected OTLP requests that could not be decoded (400)'),
  );
  app.addHook('onClose', async () => rejections.close());
  // Before the body is read (and before admission): while the write-ahead log is at its disk
  // budget no request can be taken, so it is refused at once, as admission does under overload.
  app.addHook('onRequest', async (request, reply) => {
    if (request.method !== 'POST') return;
    receivedAt.set(request, performance.now());
    const refusal = writer.refusal();
    if (!refusal) return;
    refuseBeforeBody(request, reply);
    throw refused(
      REFUSALS[refusal.code],
      `${refusal.reason}: retry after ${refusal.retryAfterSeconds} s`,
      refusal.retryAfterSeconds,
    );
  });
  guardBodies(app, {
    admission: options.admission,
    maxBodyBytes: options.maxBodyBytes,
    bodyTimeoutMs: options.bodyTimeoutMs,
    bodyIdleTimeoutMs: options.bodyIdleTimeoutMs,
    ...(options.closing ? { closing: options.closing } : {}),
    contentTypes: Object.keys(CONTENT_TYPES),
  });
  // onError runs before the error handler sets the answer's status: the error's own says it.
  app.addHook('onError', async (_request, _reply, error) => {
    const { status } = toHttpError(error, options.maxBodyBytes);
    if (status >= 400 && status < 500) stats.rejectedRequests++;
  });

  app.post('/v1/traces', { config: { otlp: true, ingest: true } }, async (request, reply) => {
    const encoding = otlpEncodingOf(request);
    const body = await decodeBody(request, request.body as Buffer, options.maxBodyBytes);
    const started = receivedAt.get(request) ?? performance.now();
    stats.receiveMs.observe(performance.now() - started);
    if (body.length === 0) return accepted(reply, encoding);

    let ingested;
    try {
      // The body is not read again: the ingest thread may take its memory rather than a copy.
      ingested = await options.ingest.run(body, encoding, true);
    } catch (error) {
      if (error instanceof OtlpDecodeError) {
        rejections.count(encoding, error.message);
        throw badRequest(error.message, error);
      }
      if (error instanceof IngestTooComplexError) {
        throw new HttpError(413, 'RESOURCE_EXHAUSTED', error.message, { cause: error });
      }
      if (error instanceof IngestQueueWaitError) {
        throw refused(
          'overloaded',
          `${error.message}: retry after ${error.retryAfterSeconds} s`,
          error.retryAfterSeconds,
          error,
        );
      }
      throw error;
    }
    stats.spansReceived += ingested.received;
    stats.spansSkipped += ingested.skipped;
    stats.spansOutOfWindow += ingested.outOfWindow;
    stats.spansInvalid += ingested.invalid;

    let stored: WriteResult;
    try {
      stored = await writer.write(ingested);
    } catch (error) {
      if (error instanceof OverloadedError) {
        throw refused(REFUSALS[error.code], error.message, error.retryAfterSeconds, error);
      }
      request.log.error({ err: error }, 'writing spans failed');
      throw unavailable(
        'the span store is unavailable: the exporter should retry (Retry-After); ' +
          'if this lasts, check that ClickHouse is up',
        5,
        error,
      );
    }
    // New calls only: an exporter's retry of spans taken before is dropped by the writer.
    for (const source of COST_SOURCES) {
      stats.llmCallsByCostSource[source] +=
        ingested.costSources[source] - (stored.duplicateCalls?.[source] ?? 0);
    }
    const notStored = ingested.invalid + ingested.outOfWindow + stored.rejected;
    stats.totalMs.observe(performance.now() - started);
    if (notStored === 0) return accepted(reply, encoding);
    if (stored.rejected > 0) {
      request.log.warn(
        { rejectedSpans: stored.rejected, reason: stored.errorMessage },
        'the store refused some spans of a request',
      );
    }
    return accepted(reply, encoding, notStored, partialMessage(ingested, stored));
  });

  app.route({
    method: ['GET', 'PUT', 'DELETE', 'PATCH'],
    url: '/v1/traces',
    config: { otlp: true },
    handler: async () => {
      throw new HttpError(405, 'UNIMPLEMENTED', 'use POST to send OTLP traces', {
        headers: { allow: 'POST' },
      });
    },
  });
};
