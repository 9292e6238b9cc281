import { gunzipSync } from 'node:zlib';
import Fastify from 'fastify';
import type { FastifyInstance, FastifyReply, FastifyServerOptions } from 'fastify';
import { OtlpDecodeError, decodeTraceRequestJson } from './otlp-json.js';
import type { ExportTraceRequest } from './otlp-json.js';
import {
  decodeTraceRequestProto,
  encodeStatusProto,
  encodeTraceResponseProto,
} from './otlp-proto.js';
import { countSpans, normalizeRequest } from './normalize.js';
import { PriceTable } from './pricing.js';
import { OverloadedError } from './span-writer.js';
import type { WriteResult } from './span-writer.js';
import { parseOutcomesRequest, writeOutcomes } from './outcomes.js';
import type { Store } from '../storage/store.js';
import type { SpanWriter } from './span-writer.js';

export interface CollectorOptions {
  writer: SpanWriter;
  /** Where late outcomes (POST /v1/outcomes) are written; without it the route is not served. */
  store?: Store;
  prices?: PriceTable;
  /** Largest accepted body, compressed or not (OTLP receivers commonly cap at 20 MiB). */
  maxBodyBytes?: number;
  logger?: FastifyServerOptions['logger'];
}

export interface CollectorStats {
  requests: number;
  spansReceived: number;
  spansSkipped: number;
  rejectedRequests: number;
}

/** google.rpc.Status codes used in OTLP error bodies. */
const RPC = {
  INVALID_ARGUMENT: 3,
  RESOURCE_EXHAUSTED: 8,
  UNAVAILABLE: 14,
} as const;

type Encoding = 'json' | 'protobuf';

/** Answers with a google.rpc.Status in the encoding of the request. */
function status(
  reply: FastifyReply,
  httpStatus: number,
  code: number,
  message: string,
  encoding: Encoding = 'json',
) {
  if (encoding === 'protobuf') {
    return reply
      .code(httpStatus)
      .type('application/x-protobuf')
      .send(Buffer.from(encodeStatusProto(code, message)));
  }
  return reply.code(httpStatus).type('application/json').send({ code, message, details: [] });
}

/**
 * An ExportTraceServiceResponse: `{}` (zero bytes in protobuf) when everything was stored, else a
 * partial success naming how many spans the store refused and why. The exporter must not retry it.
 */
function accepted(reply: FastifyReply, encoding: Encoding, result: WriteResult = NONE_REJECTED) {
  if (encoding === 'protobuf') {
    return reply
      .code(200)
      .type('application/x-protobuf')
      .send(Buffer.from(encodeTraceResponseProto(result.rejected, result.errorMessage)));
  }
  const body =
    result.rejected === 0
      ? {}
      : {
          partialSuccess: {
            rejectedSpans: String(result.rejected),
            errorMessage: result.errorMessage,
          },
        };
  return reply.code(200).type('application/json').send(body);
}

const NONE_REJECTED: WriteResult = { rejected: 0, errorMessage: '' };

/** Registers the OTLP/HTTP receiver routes on an app. */
export function registerCollectorRoutes(
  app: FastifyInstance,
  options: CollectorOptions,
): CollectorStats {
  const prices = options.prices ?? new PriceTable();
  const maxBodyBytes = options.maxBodyBytes ?? 20 * 1024 * 1024;
  const stats: CollectorStats = {
    requests: 0,
    spansReceived: 0,
    spansSkipped: 0,
    rejectedRequests: 0,
  };

  // Bodies arrive as raw bytes: gzip is undone here, and JSON is parsed by the OTLP decoder,
  // which keeps 64-bit integers exact.
  app.addContentTypeParser(
    ['application/json', 'application/x-protobuf'],
    { parseAs: 'buffer', bodyLimit: maxBodyBytes },
    (_request, body, done) => done(null, body),
  );

  app.post('/v1/traces', async (request, reply) => {
    stats.requests++;
    const contentType = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    const encoding: Encoding | undefined =
      contentType === 'application/json'
        ? 'json'
        : contentType === 'application/x-protobuf'
          ? 'protobuf'
          : undefined;
    if (encoding === undefined) {
      stats.rejectedRequests++;
      return status(
        reply,
        415,
        RPC.INVALID_ARGUMENT,
        `unsupported Content-Type ${contentType || '(none)'}: send application/json or application/x-protobuf`,
      );
    }
    let body = request.body as Buffer;
    const contentEncoding = (request.headers['content-encoding'] ?? 'identity').toLowerCase();
    if (contentEncoding === 'gzip') {
      try {
        body = gunzipSync(body, { maxOutputLength: maxBodyBytes });
      } catch (error) {
        stats.rejectedRequests++;
        const tooLarge = (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
        return tooLarge
          ? status(
              reply,
              413,
              RPC.INVALID_ARGUMENT,
              `the decompressed body exceeds ${maxBodyBytes} bytes`,
              encoding,
            )
          : status(
              reply,
              400,
              RPC.INVALID_ARGUMENT,
              `the body is not valid gzip: ${(error as Error).message}`,
              encoding,
            );
      }
    } else if (contentEncoding !== 'identity') {
      stats.rejectedRequests++;
      return status(
        reply,
        415,
        RPC.INVALID_ARGUMENT,
        `unsupported Content-Encoding ${contentEncoding}: use gzip or none`,
        encoding,
      );
    }

    if (body.length === 0) return accepted(reply, encoding);
    let decoded: ExportTraceRequest;
    try {
      decoded =
        encoding === 'json'
          ? decodeTraceRequestJson(body.toString('utf8'))
          : decodeTraceRequestProto(body);
    } catch (error) {
      stats.rejectedRequests++;
      if (error instanceof OtlpDecodeError) {
        request.log.warn({ reason: error.message, encoding }, 'rejected an OTLP request');
        return status(reply, 400, RPC.INVALID_ARGUMENT, error.message, encoding);
      }
      throw error;
    }
    const received = countSpans(decoded);
    const { rows, skipped } = normalizeRequest(decoded, prices);
    stats.spansReceived += received;
    stats.spansSkipped += skipped;
    let result: WriteResult;
    try {
      result = await options.writer.write(rows);
    } catch (error) {
      if (error instanceof OverloadedError) {
        reply.header('retry-after', '5');
        return status(reply, 503, RPC.UNAVAILABLE, error.message, encoding);
      }
      request.log.error({ err: error }, 'writing spans failed');
      reply.header('retry-after', '5');
      return status(
        reply,
        503,
        RPC.UNAVAILABLE,
        'the span store is unavailable; retry later',
        encoding,
      );
    }
    if (result.rejected > 0) {
      request.log.warn(
        { rejectedSpans: result.rejected, reason: result.errorMessage },
        'the store refused some spans of a request',
      );
      result = {
        rejected: result.rejected,
        errorMessage: `${result.rejected} of ${rows.length} spans were refused by the span store and not stored (the rest were): ${result.errorMessage}`,
      };
    }
    return accepted(reply, encoding, result);
  });

  const store = options.store;
  if (store) {
    app.post('/v1/outcomes', async (request, reply) => {
      const body = Buffer.isBuffer(request.body) ? request.body.toString('utf8') : undefined;
      let json: unknown;
      try {
        json = body === undefined ? request.body : JSON.parse(body);
      } catch (error) {
        return reply.code(400).send({
          code: 'BAD_OUTCOME',
          message: `the body is not valid JSON: ${(error as Error).message}`,
        });
      }
      const parsed = parseOutcomesRequest(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        return reply.code(400).send({
          code: 'BAD_OUTCOME',
          message:
            `invalid outcome report: ${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}. ` +
            'Send {"taskId": "...", "outcome": "success|failure|escalated|abandoned|unknown"} or {"outcomes": [...]}.',
        });
      }
      try {
        await writeOutcomes(store, parsed.data);
      } catch (error) {
        request.log.error({ err: error }, 'writing outcomes failed');
        return reply
          .header('retry-after', '5')
          .code(503)
          .send({ code: 'UNAVAILABLE', message: 'the store is unavailable; retry later' });
      }
      return reply.code(202).send({ accepted: parsed.data.length });
    });
  }

  app.route({
    method: ['GET', 'PUT', 'DELETE', 'PATCH'],
    url: '/v1/traces',
    handler: (_request, reply) =>
      status(
        reply.header('allow', 'POST'),
        405,
        RPC.INVALID_ARGUMENT,
        'use POST to send OTLP traces',
      ),
  });

  return stats;
}

export function buildCollectorApp(options: CollectorOptions): {
  app: FastifyInstance;
  stats: CollectorStats;
} {
  const app = Fastify({ logger: options.logger ?? false });
  const stats = registerCollectorRoutes(app, options);
  app.get('/healthz', async () => ({ status: 'ok' }));
  return { app, stats };
}
