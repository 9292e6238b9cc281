import { gunzipSync } from 'node:zlib';
import Fastify from 'fastify';
import type { FastifyInstance, FastifyReply, FastifyServerOptions } from 'fastify';
import { OtlpDecodeError, decodeTraceRequestJson } from './otlp-json.js';
import { countSpans, normalizeRequest } from './normalize.js';
import { PriceTable } from './pricing.js';
import { OverloadedError } from './span-writer.js';
import type { SpanWriter } from './span-writer.js';

export interface CollectorOptions {
  writer: SpanWriter;
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
  UNIMPLEMENTED: 12,
} as const;

function status(reply: FastifyReply, httpStatus: number, code: number, message: string) {
  return reply.code(httpStatus).type('application/json').send({ code, message, details: [] });
}

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
    if (contentType === 'application/x-protobuf') {
      stats.rejectedRequests++;
      return status(
        reply,
        415,
        RPC.UNIMPLEMENTED,
        'OTLP/HTTP protobuf is not accepted yet: set OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/json ' +
          '(or use @opentelemetry/exporter-trace-otlp-http)',
      );
    }
    if (contentType !== 'application/json') {
      stats.rejectedRequests++;
      return status(
        reply,
        415,
        RPC.INVALID_ARGUMENT,
        `unsupported Content-Type ${contentType || '(none)'}: send application/json`,
      );
    }
    let body = request.body as Buffer;
    const encoding = (request.headers['content-encoding'] ?? 'identity').toLowerCase();
    if (encoding === 'gzip') {
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
            )
          : status(
              reply,
              400,
              RPC.INVALID_ARGUMENT,
              `the body is not valid gzip: ${(error as Error).message}`,
            );
      }
    } else if (encoding !== 'identity') {
      stats.rejectedRequests++;
      return status(
        reply,
        415,
        RPC.INVALID_ARGUMENT,
        `unsupported Content-Encoding ${encoding}: use gzip or none`,
      );
    }

    if (body.length === 0) return reply.code(200).send({});
    let decoded;
    try {
      decoded = decodeTraceRequestJson(body.toString('utf8'));
    } catch (error) {
      stats.rejectedRequests++;
      if (error instanceof OtlpDecodeError)
        return status(reply, 400, RPC.INVALID_ARGUMENT, error.message);
      throw error;
    }
    const received = countSpans(decoded);
    const { rows, skipped } = normalizeRequest(decoded, prices);
    stats.spansReceived += received;
    stats.spansSkipped += skipped;
    try {
      await options.writer.write(rows);
    } catch (error) {
      if (error instanceof OverloadedError) {
        reply.header('retry-after', '5');
        return status(reply, 503, RPC.UNAVAILABLE, error.message);
      }
      request.log.error({ err: error }, 'writing spans failed');
      reply.header('retry-after', '5');
      return status(reply, 503, RPC.UNAVAILABLE, 'the span store is unavailable; retry later');
    }
    return reply.code(200).send({});
  });

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
