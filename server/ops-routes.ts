import type { FastifyPluginAsync } from 'fastify';
import type { Store } from '../storage/store.js';
import { renderMetrics } from '../collector/metrics.js';
import type { MetricsSources } from '../collector/metrics.js';
import { startProcessMetrics } from '../collector/process-metrics.js';
import type { SpanWriter } from '../collector/span-writer.js';

/**
 * Operational routes: `/healthz` (the process answers), `/readyz` (spans can be taken: open to
 * probes, so it says ready or not and, when not, a short reason — never an engine message) and
 * `/metrics` (Prometheus text, behind the token like everything else).
 */
export interface OpsRoutesOptions {
  store: Store;
  writer: Pick<SpanWriter, 'health' | 'walSnapshot'>;
  metrics: MetricsSources;
  /** False while the app is shutting down. */
  accepting: () => boolean;
}

export const opsRoutes: FastifyPluginAsync<OpsRoutesOptions> = async (app, options) => {
  app.get('/healthz', async () => ({ status: 'ok' }));

  /**
   * Ready means ingest is taken. With the write-ahead log that does not depend on the store — a
   * store that is down (or hangs: a probe must answer fast) leaves the collector ready, spans
   * wait in the log — only a full log makes it not ready. Without the log, the store must answer.
   */
  app.get('/readyz', async (request, reply) => {
    const unavailable = (reason: string, retryAfterSeconds: number) =>
      reply
        .code(503)
        .header('retry-after', String(retryAfterSeconds))
        .send({ status: 'unavailable', reason });
    if (!options.accepting()) return unavailable('shutting down', 5);
    const writer = options.writer.health();
    if (writer.wal) {
      // The same Retry-After as the exports it refuses are given.
      if (writer.logFull) {
        return unavailable('write-ahead log full', writer.logFullRetryAfterSeconds ?? 10);
      }
      if (writer.logUnwritable) {
        return unavailable('write-ahead log cannot be written (is its disk full?)', 5);
      }
      if (!writer.storeAvailable) {
        return { status: 'ready', store: 'unavailable: spans are kept in the write-ahead log' };
      }
      return { status: 'ready' };
    }
    try {
      await options.store.ping();
    } catch (error) {
      request.log.warn({ err: error }, 'readiness check: the store does not answer');
      return unavailable('store unavailable', 5);
    }
    return { status: 'ready' };
  });

  const processMetrics = startProcessMetrics();
  app.addHook('onClose', async () => processMetrics.close());
  app.get('/metrics', async (_request, reply) =>
    reply.type('text/plain; version=0.0.4').send(
      renderMetrics({
        ...options.metrics,
        wal: options.writer.walSnapshot(),
        process: processMetrics.snapshot(),
      }),
    ),
  );
};
