/**
 * What the dashboard reads from the API, typed by the modules that build the answers, so that a
 * change there breaks the dashboard's type check rather than the page.
 */
export type { AdviceReport, CohortAdvice } from '../analyzer/advice.js';
export type { AlertsAnswer } from '../analyzer/api-routes.js';
export type { CohortRouteMetrics, Report, WindowMetrics } from '../analyzer/report.js';
import type { Series, SeriesPoint, Timeseries } from '../analyzer/timeseries.js';

/**
 * `GET /api/v1/timeseries` (analyzer/timeseries.ts `Timeseries`): per cohort × primary route, the
 * report's metrics per bucket; buckets without tasks are absent. Narrowed to the fields the charts
 * read, so tests can build small answers, but derived from the real type: a field renamed there
 * fails the dashboard's type check.
 */
type FallbackReason = SeriesPoint['topFallbackReasons'][number];

export type TimeseriesPoint = Pick<
  SeriesPoint,
  'bucketStart' | 'tasks' | 'successes' | 'knownOutcomes' | 'totalCostUsd' | 'fallbacks'
> & { topFallbackReasons: Pick<FallbackReason, 'reason' | 'tasks'>[] };

export type TimeseriesSeries = Pick<Series, 'cohort' | 'primaryRoute'> & {
  points: TimeseriesPoint[];
};

export type TimeseriesAnswer = Omit<Timeseries, 'series'> & { series: TimeseriesSeries[] };
