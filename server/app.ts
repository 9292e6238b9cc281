import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import Fastify, { LogController } from 'fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { alertRoutes, apiRoutes, decisionRoutes } from '../analyzer/api-routes.js';
import { dashboardRoutes } from '../analyzer/dashboard-routes.js';
import type { Evaluator } from '../analyzer/evaluator.js';
import type { Notifier } from '../analyzer/notifier.js';
import { Admission } from '../collector/admission.js';
import { expectsContinue } from '../collector/body-guard.js';
import type { AdmissionStats } from '../collector/admission.js';
import type { IngestRunner } from '../collector/ingest-pool.js';
import { encodeStatusProto } from '../collector/otlp-proto.js';
import { newCollectorStats, otlpEncodingOf, otlpRoutes } from '../collector/otlp-routes.js';
import type { CollectorStats } from '../collector/otlp-routes.js';
import { outcomesRoutes } from '../collector/outcomes-routes.js';
import type { SpanWriter } from '../collector/span-writer.js';
import type { Store } from '../storage/store.js';
import { hostName, requireLocalHost, requireToken } from './auth.js';
import { ConnectionTracker } from './connections.js';
import { acceptedTimes, isLoopback } from './config.js';
import type { Config } from './config.js';
import { HttpError, RPC_CODES, badRequest, refused, toHttpError } from './http-error.js';
import { opsRoutes } from './ops-routes.js';
import { ReasonCountLog } from './rate-limited-log.js';
import { sqlLimits, sqlRoutes } from './sql-routes.js';

/** What the app is built from: configuration and the parts that do I/O, passed in. */
export interface AppDeps {
  config: Config;
  store: Store;
  writer: SpanWriter;
  ingest: IngestRunner;
  /** The alert evaluator; without it the alert routes are not served. */
  evaluator?: Evaluator;
  notifier?: Notifier;
  logger?: FastifyServerOptions['logger'];
  now?: () => Date;
  /** The built dashboard (dist/dashboard); default: found next to the code. */
  dashboardDir?: string;
}

export interface RoutewatchState {
  collector: CollectorStats;
  admission: AdmissionStats;
}

declare module 'fastify' {
  interface FastifyInstance {
    routewatch: RoutewatchState;
  }
  interface FastifyContextConfig {
    /** The route speaks OTLP: errors are a google.rpc.Status in the request's encoding. */
    otlp?: boolean;
  }
}

/** OTLP signal paths: a request to one gets OTLP error bodies even where no route serves it. */
const OTLP_PATH = /^\/v1\/(traces|metrics|logs|profiles)(\/|\?|$)/;

function isOtlpRequest(request: FastifyRequest): boolean {
  return request.routeOptions.config?.otlp === true || OTLP_PATH.test(request.url);
}

/** The longest path parameter routed (names, ids): Fastify's default. */
const MAX_PARAM_LENGTH = 100;

/** Sends an error in the one shape: google.rpc.Status on OTLP routes, `{ error }` elsewhere. */
function sendError(request: FastifyRequest, reply: FastifyReply, error: HttpError): FastifyReply {
  reply.code(error.status);
  for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
  if (error.retryAfterSeconds !== undefined)
    reply.header('retry-after', String(error.retryAfterSeconds));
  // A 5xx tells the client what to do and how to find the details in the log, never the details.
  const message =
    error.status >= 500 ? `${error.message} (request id ${request.id})` : error.message;
  if (error.status >= 500) reply.header('x-request-id', request.id);
  if (isOtlpRequest(request)) {
    const code = RPC_CODES[error.code];
    if (otlpEncodingOf(request) === 'protobuf') {
      return reply
        .type('application/x-protobuf')
        .send(Buffer.from(encodeStatusProto(code, message)));
    }
    return reply.type('application/json').send({ code, message, details: [] });
  }
  return reply.type('application/json').send({
    error: {
      code: error.code,
      message,
      ...(error.status >= 500 ? { requestId: request.id } : {}),
    },
  });
}

/**
 * Builds the whole HTTP app without listening: the collector (OTLP receiver, outcomes), the
 * analyzer API and the operational routes, as scoped plugins behind one token check and one
 * error handler. Every HTTP test goes through it.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const app = Fastify({
    logger: deps.logger ?? false,
    // One log line per OTLP request would drown the log at any real volume: failures are logged.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: () => randomBytes(8).toString('hex'),
    bodyLimit: config.ROUTEWATCH_MAX_BODY_BYTES,
    keepAliveTimeout: config.ROUTEWATCH_KEEPALIVE_TIMEOUT,
    // Our own 503 (with Retry-After, in the route's error shape) while closing.
    return503OnClosing: false,
    // A backstop behind the per-body timeouts of the ingest routes.
    requestTimeout: config.ROUTEWATCH_BODY_TIMEOUT + 5_000,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // The router's own refusals, in the one error shape rather than Fastify's.
    frameworkErrors: (error, request, reply) => {
      const path = request.url.split('?', 1)[0]!.slice(0, 200);
      sendError(
        request,
        reply,
        error.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? badRequest(
              `a part of the path is longer than ${MAX_PARAM_LENGTH} characters: no routewatch name or id is that long`,
            )
          : error.code === 'FST_ERR_BAD_URL'
            ? badRequest(`the path ${JSON.stringify(path)} is not valid percent-encoding`)
            : new HttpError(500, 'INTERNAL', 'the request could not be routed: try again'),
      );
    },
  });
  app.server.headersTimeout = Math.min(60_000, config.ROUTEWATCH_BODY_IDLE_TIMEOUT + 5_000);
  // A connection that sends nothing is closed after the keep-alive timeout, as one idle after an
  // answer is: the header and request timeouts start only with a request's first byte, and each
  // silent connection holds a file descriptor. Only those: a socket timeout (server.timeout)
  // would also cut an answer still being computed.
  app.server.on('connection', (socket: Socket) => {
    const silent = setTimeout(() => {
      if (socket.bytesRead === 0) socket.destroy();
    }, config.ROUTEWATCH_KEEPALIVE_TIMEOUT);
    silent.unref();
    socket.once('close', () => clearTimeout(silent));
  });
  // `Expect: 100-continue`: Node would say 100 before any check ran, and the client would send a
  // body only to be refused. Here 100 is said once every onRequest hook has passed (the token,
  // the Content-Type, the size, admission): a refused client gets its answer before sending.
  app.server.on('checkContinue', (request, response) =>
    app.server.emit('request', request, response),
  );
  app.addHook('preParsing', async (request, reply, payload) => {
    if (expectsContinue(request) && !reply.raw.headersSent) reply.raw.writeContinue();
    return payload;
  });

  const collector = newCollectorStats();
  const admission = new Admission({
    maxInflightBytes: config.ROUTEWATCH_MAX_INFLIGHT_BYTES,
    maxQueueWaitMs: config.ROUTEWATCH_MAX_QUEUE_WAIT,
    queuedWorkMs: (arrivingBytes) =>
      deps.ingest.estimatedWaitMs(arrivingBytes) + deps.writer.estimatedDrainMs(),
  });
  app.decorate('routewatch', { collector, admission: admission.stats });

  // Every trace export that comes in counts as received, before any hook can refuse it (shutting
  // down, 401, 415, 413, 503): each OTLP refusal counter is then a part of it. (Admission's and
  // the token's refusal counters also count other routes: their HELP texts say so.)
  app.addHook('onRequest', async (request) => {
    if (request.method === 'POST' && request.routeOptions.config?.otlp === true)
      collector.requests++;
  });

  let accepting = true;
  const connections = new ConnectionTracker(app.server);
  app.addHook('preClose', async () => {
    accepting = false;
    connections.closing();
  });
  // While closing, every answer closes its connection: a kept-alive connection idle only after
  // the close began would otherwise hold the server open until its keep-alive timeout.
  app.addHook('onSend', async (_request, reply) => {
    if (!accepting) reply.header('connection', 'close');
    // Every answer is the type it says (JSON, protobuf, text): never sniffed into HTML.
    reply.header('x-content-type-options', 'nosniff');
  });
  app.addHook('onRequest', async (_request, reply) => {
    if (accepting) return;
    reply.header('connection', 'close');
    throw refused('shutting down', 'routewatch is shutting down: retry shortly', 5);
  });
  if (config.ROUTEWATCH_TOKEN)
    requireToken(
      app,
      config.ROUTEWATCH_TOKEN,
      () => collector.unauthenticatedRequests++,
      config.ROUTEWATCH_INGEST_TOKEN,
    );
  else
    requireLocalHost(
      app,
      isLoopback,
      [
        config.ROUTEWATCH_HOST,
        ...(config.ROUTEWATCH_PUBLIC_URL ? [new URL(config.ROUTEWATCH_PUBLIC_URL).hostname] : []),
      ].map(hostName),
      () => collector.misaddressedRequests++,
    );

  // Refusals by design (back-pressure, a full or unwritable log, shutting down) are what a client
  // is meant to retry: one error line with a stack each would flood the log under load, bury the
  // real errors and fire alerts on log errors. They are told at warn, a summary a minute with how
  // many for each reason; the writer logs the failure behind an unwritable log once, at error.
  const refusals = new ReasonCountLog((summary) =>
    app.log.warn(
      summary,
      'refused requests with 503 for now (clients retry after Retry-After); ' +
        'see /readyz and /metrics while it lasts',
    ),
  );
  app.addHook('onClose', async () => refusals.close());
  app.setErrorHandler((error, request, reply) => {
    const httpError = toHttpError(error, config.ROUTEWATCH_MAX_BODY_BYTES);
    if (httpError.refusal !== undefined) {
      refusals.count(httpError.refusal, httpError.message);
    } else if (httpError.status >= 500) {
      request.log.error(
        { err: httpError.cause ?? error, requestId: request.id, url: request.url },
        'request failed',
      );
    }
    return sendError(request, reply, httpError);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(
      request,
      reply,
      new HttpError(404, 'NOT_FOUND', `no route ${request.method} ${request.url.split('?', 1)[0]}`),
    ),
  );

  const bodies = {
    admission,
    maxBodyBytes: config.ROUTEWATCH_MAX_BODY_BYTES,
    bodyTimeoutMs: config.ROUTEWATCH_BODY_TIMEOUT,
    bodyIdleTimeoutMs: config.ROUTEWATCH_BODY_IDLE_TIMEOUT,
    closing: connections,
  };
  await app.register(opsRoutes, {
    store: deps.store,
    writer: deps.writer,
    accepting: () => accepting,
    metrics: {
      collector,
      writer: deps.writer.stats,
      ingest: deps.ingest.stats,
      admission: admission.stats,
      ...(deps.evaluator ? { alerts: () => deps.evaluator!.stats } : {}),
      ...(deps.notifier ? { channels: () => deps.notifier!.stats() } : {}),
    },
  });
  await app.register(otlpRoutes, {
    ...bodies,
    ingest: deps.ingest,
    writer: deps.writer,
    stats: collector,
  });
  await app.register(outcomesRoutes, {
    ...bodies,
    ...acceptedTimes(config),
    store: deps.store,
    writeTimeoutMs: config.ROUTEWATCH_MAX_QUEUE_WAIT,
  });
  const reads = {
    store: deps.store,
    now: deps.now ?? (() => new Date()),
    settle: settler(deps.writer),
  };
  await app.register(apiRoutes, reads);
  const evaluator = deps.evaluator;
  await app.register(decisionRoutes, {
    ...reads,
    ...(evaluator ? { largeRoute: () => evaluator.rules.evaluation.largeRoute } : {}),
  });
  await app.register(sqlRoutes, { ...reads, limits: sqlLimits(config) });
  // The page and its assets carry no data: public. What they show comes from the API above.
  await app.register(dashboardRoutes, { dir: deps.dashboardDir });
  if (deps.evaluator) {
    const notifier = deps.notifier;
    await app.register(alertRoutes, {
      evaluator: deps.evaluator,
      settle: reads.settle,
      ...(notifier
        ? {
            notifierStats: () => notifier.stats(),
            testChannels: () =>
              notifier.test({ url: deps.evaluator!.publicUrl, at: new Date().toISOString() }),
          }
        : {}),
    });
  }
  return app;
}

/** The longest a query waits for acknowledged spans to be stored before it reads. */
const READ_SETTLE_MS = 5_000;

/**
 * Read your writes: with the write-ahead log a span is acknowledged before it is stored, so a
 * query (the report, the gate, SQL) first waits until every span acknowledged so far is stored,
 * for at most READ_SETTLE_MS. With the store away it gives up and reads what is stored; the
 * read then fails or answers on its own.
 */
function settler(writer: SpanWriter): () => Promise<void> {
  return async () => {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, READ_SETTLE_MS);
      timer.unref();
    });
    try {
      await Promise.race([writer.flush().catch(() => undefined), deadline]);
    } finally {
      clearTimeout(timer);
    }
  };
}
