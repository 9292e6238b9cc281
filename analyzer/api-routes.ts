import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { isStoreUnavailable } from '../storage/errors.js';
import type { Store } from '../storage/store.js';
import { badRequest, unavailable } from '../server/http-error.js';
import { TimeArgumentError, resolveWindow } from '../server/time.js';
import type { TimeWindow } from '../server/time.js';
import { buildReport } from './report.js';
import { buildTimeseries, seriesOptionsOf } from './timeseries.js';

/** The analyzer's HTTP API: `GET /api/v1/report`, `GET /api/v1/timeseries`. */
export interface ApiRoutesOptions {
  store: Store;
  now: () => Date;
}

const windowQuery = z
  .object({
    from: z.string().optional(),
    to: z.string().optional(),
    window: z.string().optional(),
  })
  .strict();

const WINDOW_USAGE =
  'Use ?window=24h (s, m, h, d, w) or ?from=<date or ISO instant>&to=<date or ISO instant>.';

/** The window a query names, or a 400 that says how to name one. */
export function windowOf(query: unknown, now: Date): TimeWindow {
  const parsed = windowQuery.safeParse(query);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw badRequest(
      `invalid query: ${issue?.path.join('.') || (issue?.code === 'unrecognized_keys' ? issue.keys.join(', ') : 'query')}: ${issue?.message ?? 'invalid'}. ${WINDOW_USAGE}`,
    );
  }
  try {
    return resolveWindow(parsed.data, now);
  } catch (error) {
    if (error instanceof TimeArgumentError) throw badRequest(`${error.message}. ${WINDOW_USAGE}`);
    throw error;
  }
}

/** Runs a read of the store, turning an unreachable store into a 503. */
export async function readStore<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (isStoreUnavailable(error)) {
      throw unavailable(
        'the store is unavailable: retry shortly; if this lasts, check ClickHouse',
        5,
        error,
      );
    }
    throw error;
  }
}

export const apiRoutes: FastifyPluginAsync<ApiRoutesOptions> = async (app, options) => {
  app.get('/api/v1/report', async (request) => {
    const now = options.now();
    const window = windowOf(request.query, now);
    return readStore(() => buildReport(options.store, window, now));
  });

  // The report's metrics per time bucket (v_cohort_route_timeseries), for charts and alerts.
  app.get('/api/v1/timeseries', async (request) => {
    const now = options.now();
    const { bucket, cohort, route, ...windowPart } = (request.query ?? {}) as Record<
      string,
      unknown
    >;
    const window = windowOf(windowPart, now);
    const series = seriesOptionsOf({ bucket, cohort, route }, window);
    return readStore(() => buildTimeseries(options.store, window, series, now));
  });
};
