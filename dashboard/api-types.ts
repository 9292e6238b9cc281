/**
 * What the dashboard reads from the API, typed by the modules that build the answers, so that a
 * change there breaks the dashboard's type check rather than the page.
 */
export type { AdviceReport, CohortAdvice } from '../analyzer/advice.js';
export type { AlertsAnswer } from '../analyzer/api-routes.js';
export type { CohortRouteMetrics, Report, WindowMetrics } from '../analyzer/report.js';

/**
 * `GET /api/v1/timeseries` (analyzer/timeseries.ts on the `scale` branch: `Timeseries`): per
 * cohort × primary route, the report's metrics per bucket; buckets without tasks are absent.
 * Only the fields the charts read. Import `Timeseries` from analyzer/timeseries.ts instead once
 * that module is on this branch.
 */
export interface TimeseriesPoint {
  /** ISO instant. */
  bucketStart: string;
  tasks: number;
  successes: number;
  knownOutcomes: number;
  totalCostUsd: number;
  fallbacks: number;
  topFallbackReasons: { reason: string; tasks: number }[];
}

export interface TimeseriesSeries {
  cohort: string;
  primaryRoute: string;
  points: TimeseriesPoint[];
}

export interface TimeseriesAnswer {
  from: string;
  to: string;
  bucketSeconds: number;
  generatedAt: string;
  series: TimeseriesSeries[];
}
