import type { FastifyPluginAsync } from 'fastify';
import type { Store } from '../storage/store.js';
import { renderMetrics } from '../collector/metrics.js';
import type { MetricsSources } from '../collector/metrics.js';
import { unavailable } from './http-error.js';

/**
 * Operational routes: `/healthz` (the process answers), `/readyz` (the store answers: open to
 * probes, so it says no more than ready or not) and `/metrics` (Prometheus text, behind the
 * token like everything else).
 */
export interface OpsRoutesOptions {
  store: Store;
  metrics: MetricsSources;
  /** False while the app is shutting down. */
  accepting: () => boolean;
}

export const opsRoutes: FastifyPluginAsync<OpsRoutesOptions> = async (app, options) => {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (request) => {
    if (!options.accepting()) throw unavailable('not ready: shutting down', 5);
    try {
      await options.store.ping();
    } catch (error) {
      request.log.warn({ err: error }, 'readiness check: the store does not answer');
      throw unavailable('not ready', 5);
    }
    return { status: 'ready' };
  });

  app.get('/metrics', async (_request, reply) =>
    reply.type('text/plain; version=0.0.4').send(renderMetrics(options.metrics)),
  );
};
