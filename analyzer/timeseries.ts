import { z } from 'zod';
import { badRequest } from '../server/http-error.js';
import { TimeArgumentError, parseDuration } from '../server/time.js';
import type { TimeWindow } from '../server/time.js';
import type { Store } from '../storage/store.js';
import { queryFlat, readChanged } from '../storage/window-sql.js';
import { filterList } from './filter-list.js';
import { cohortRouteRow, toClickHouseTime, toMetrics } from './report.js';
import type { CohortRouteMetrics } from './report.js';

/** What a time series is cut by, besides its window. */
export interface SeriesOptions {
  bucketSeconds: number;
  /** Only these cohorts (all when empty or absent). */
  cohorts?: readonly string[];
  /** Only these primary routes (all when empty or absent). */
  primaryRoutes?: readonly string[];
  /** Only the tasks of these services (all when empty or absent). */
  services?: readonly string[];
  /** Only the tasks of these policy versions (all when empty or absent). */
  policies?: readonly string[];
}

/** One bucket of one cohort × primary route: the report's metrics for the tasks started in it. */
export type SeriesPoint = { bucketStart: string } & Omit<
  CohortRouteMetrics,
  'cohort' | 'primaryRoute'
>;

export interface Series {
  cohort: string;
  primaryRoute: string;
  points: SeriesPoint[];
}

export interface Timeseries {
  from: string;
  to: string;
  bucketSeconds: number;
  generatedAt: string;
  series: Series[];
}

/** More buckets than this in one answer is almost always a mistaken bucket size. */
export const MAX_BUCKETS = 10_000;
const DEFAULT_BUCKET = '1h';

const seriesQuery = z.object({
  bucket: z.string().optional(),
  cohort: filterList,
  route: filterList,
  service: filterList,
  policy: filterList,
});

const SERIES_USAGE =
  'Use ?bucket=1h (whole seconds, at least 1m; whole hours read the hourly rollups), and optionally ?cohort=…&route=…&service=…&policy=… (repeated or comma-separated).';

/** The bucket and filters a query names, checked against the window; a 400 otherwise. */
export function seriesOptionsOf(query: unknown, window: TimeWindow): SeriesOptions {
  const parsed = seriesQuery.safeParse(query);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw badRequest(
      `invalid query: ${issue?.path.join('.') ?? 'query'}: ${issue?.message ?? 'invalid'}. ${SERIES_USAGE}`,
    );
  }
  let bucketMs: number;
  try {
    bucketMs = parseDuration(parsed.data.bucket ?? DEFAULT_BUCKET);
  } catch (error) {
    if (error instanceof TimeArgumentError)
      throw badRequest(`bucket: ${error.message}. ${SERIES_USAGE}`);
    throw error;
  }
  if (bucketMs < 60_000 || bucketMs % 1000 !== 0 || bucketMs / 1000 > 0xffffffff) {
    throw badRequest(`bucket must be whole seconds from 1m to about 136 years. ${SERIES_USAGE}`);
  }
  const buckets = Math.ceil((window.to.getTime() - window.from.getTime()) / bucketMs) + 1;
  if (buckets > MAX_BUCKETS) {
    throw badRequest(
      `the window holds ${buckets} buckets of ${parsed.data.bucket ?? DEFAULT_BUCKET}, more than ${MAX_BUCKETS}: use a larger bucket or a shorter window`,
    );
  }
  return {
    bucketSeconds: bucketMs / 1000,
    cohorts: parsed.data.cohort,
    primaryRoutes: parsed.data.route,
    services: parsed.data.service,
    policies: parsed.data.policy,
  };
}

const seriesRow = cohortRouteRow.extend({ bucket_start: z.string() });

/** A ClickHouse UTC time (`YYYY-MM-DD hh:mm:ss.nnnnnnnnn`) as an ISO instant. */
function isoOf(clickHouseTime: string): string {
  return new Date(`${clickHouseTime.replace(' ', 'T').slice(0, 23)}Z`).toISOString();
}

/**
 * Per cohort × primary route, the metrics of each bucket of tasks started in [from, to)
 * (v_timeseries_metrics, cut by the options' cohorts, routes, services and policies): cost per successful task, success rate, fallback rate and reasons,
 * latency quantiles. Buckets without tasks are absent.
 */
export async function buildTimeseries(
  store: Store,
  window: TimeWindow,
  options: SeriesOptions,
  now: Date = new Date(),
): Promise<Timeseries> {
  const rows = await queryFlat(
    store,
    'v_timeseries_metrics',
    await readChanged(store),
    `SELECT * FROM {view} ORDER BY cohort, primary_route, bucket_start`,
    {
      from: toClickHouseTime(window.from),
      to: toClickHouseTime(window.to),
      bucket: options.bucketSeconds,
      cohorts: [...(options.cohorts ?? [])],
      routes: [...(options.primaryRoutes ?? [])],
      services: [...(options.services ?? [])],
      policies: [...(options.policies ?? [])],
    },
    seriesRow,
  );
  const series: Series[] = [];
  for (const row of rows) {
    const { cohort, primaryRoute, ...metrics } = toMetrics(row);
    let current = series.at(-1);
    if (current?.cohort !== cohort || current.primaryRoute !== primaryRoute) {
      current = { cohort, primaryRoute, points: [] };
      series.push(current);
    }
    current.points.push({ bucketStart: isoOf(row.bucket_start), ...metrics });
  }
  return {
    from: window.from.toISOString(),
    to: window.to.toISOString(),
    bucketSeconds: options.bucketSeconds,
    generatedAt: now.toISOString(),
    series,
  };
}
