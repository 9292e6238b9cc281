import { timingSafeEqual } from 'node:crypto';
import Fastify, { LogController } from 'fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { registerAnalyzerRoutes } from '../analyzer/app.js';
import { registerCollectorRoutes } from '../collector/app.js';
import type { CollectorStats } from '../collector/app.js';
import { encodeStatusProto } from '../collector/otlp-proto.js';
import { SpanWriter } from '../collector/span-writer.js';
import { renderMetrics } from '../collector/metrics.js';
import type { SpanWriterOptions } from '../collector/span-writer.js';
import { migrate } from '../storage/migrations.js';
import { openStore } from '../storage/open-store.js';
import type { Store } from '../storage/store.js';
import { ConfigError, isLoopback } from './env.js';

export interface RoutewatchOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  dataDir?: string;
  clickhouseUrl?: string | undefined;
  token?: string | undefined;
  logger?: FastifyServerOptions['logger'];
  writer?: SpanWriterOptions;
}

export interface RunningRoutewatch {
  /** Base URL, e.g. http://127.0.0.1:4318 */
  url: string;
  tracesUrl: string;
  app: FastifyInstance;
  store: Store;
  writer: SpanWriter;
  stats: CollectorStats;
  close(): Promise<void>;
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(header?.replace(/^Bearer\s+/i, '') ?? '');
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** google.rpc.Status codes for the answers given here rather than by the collector routes. */
const RPC = {
  INVALID_ARGUMENT: 3,
  RESOURCE_EXHAUSTED: 8,
  INTERNAL: 13,
  UNAUTHENTICATED: 16,
} as const;

function isProtobufRequest(request: FastifyRequest): boolean {
  const contentType = request.headers['content-type'] ?? '';
  return contentType.split(';')[0]?.trim().toLowerCase() === 'application/x-protobuf';
}

/** OTLP/HTTP answers errors with a google.rpc.Status in the encoding of the request. */
function sendStatus(
  request: FastifyRequest,
  reply: FastifyReply,
  httpStatus: number,
  code: number,
  message: string,
): FastifyReply {
  if (isProtobufRequest(request)) {
    return reply
      .code(httpStatus)
      .type('application/x-protobuf')
      .send(Buffer.from(encodeStatusProto(code, message)));
  }
  return reply.code(httpStatus).send({ code, message, details: [] });
}

/** The google.rpc code for an HTTP error status raised by Fastify or a route. */
function rpcCode(httpStatus: number): number {
  if (httpStatus === 413) return RPC.RESOURCE_EXHAUSTED;
  return httpStatus >= 500 ? RPC.INTERNAL : RPC.INVALID_ARGUMENT;
}

/** Builds the one-process routewatch app: collector and analyzer routes on one store. */
export function buildRoutewatchApp(options: {
  store: Store;
  writer: SpanWriter;
  token?: string | undefined;
  logger?: FastifyServerOptions['logger'];
}): { app: FastifyInstance; stats: CollectorStats } {
  // One log line per OTLP request would drown the log at any real volume: failures are logged.
  const app = Fastify({
    logger: options.logger ?? false,
    // The top-level disableRequestLogging option is deprecated in Fastify 5 (FSTDEP023).
    logController: new LogController({ disableRequestLogging: true }),
  });
  const token = options.token;
  if (token) {
    app.addHook('onRequest', async (request, reply) => {
      if (request.url === '/healthz') return;
      if (!tokenMatches(request.headers.authorization, token)) {
        await sendStatus(
          request,
          reply,
          401,
          RPC.UNAUTHENTICATED,
          'missing or wrong token: send Authorization: Bearer <ROUTEWATCH_TOKEN>',
        );
      }
    });
  }
  // Every error answers with a status body: OTLP clients read `code` and `message`.
  app.setErrorHandler((error: { statusCode?: number; message: string }, request, reply) => {
    const statusCode = error.statusCode && error.statusCode >= 400 ? error.statusCode : 500;
    if (statusCode >= 500) request.log.error({ err: error }, 'request failed');
    void sendStatus(request, reply, statusCode, rpcCode(statusCode), error.message);
  });
  const stats = registerCollectorRoutes(app, { writer: options.writer, store: options.store });
  registerAnalyzerRoutes(app, { store: options.store });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/metrics', async (_request, reply) =>
    reply.type('text/plain; version=0.0.4').send(renderMetrics(stats, options.writer.stats)),
  );
  app.get('/readyz', async (_request, reply) => {
    try {
      await options.store.exec('SELECT 1');
      return { status: 'ready', store: options.store.driver };
    } catch (error) {
      return reply.code(503).send({ status: 'unavailable', message: (error as Error).message });
    }
  });
  return { app, stats };
}

/** Opens the store, applies migrations and listens: `routewatch start`. */
export async function startRoutewatch(options: RoutewatchOptions = {}): Promise<RunningRoutewatch> {
  const host = options.host ?? '127.0.0.1';
  if (!isLoopback(host) && !options.token) {
    throw new ConfigError(
      `routewatch would listen on ${host}, beyond loopback, without a token: set ROUTEWATCH_TOKEN ` +
        '(16+ characters) or listen on 127.0.0.1',
    );
  }
  const store = await openStore({
    clickhouseUrl: options.clickhouseUrl,
    dataDir: options.dataDir ?? './.routewatch',
  });
  try {
    await migrate(store);
    const writer = new SpanWriter(store, options.writer);
    const { app, stats } = buildRoutewatchApp({
      store,
      writer,
      token: options.token,
      logger: options.logger,
    });
    await app.listen({ host, port: options.port ?? 4318 });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : options.port;
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    return {
      url,
      tracesUrl: `${url}/v1/traces`,
      app,
      store,
      writer,
      stats,
      async close() {
        await app.close();
        await writer.flush();
        await store.close();
      },
    };
  } catch (error) {
    await store.close();
    throw error;
  }
}
