import uPlot from 'uplot';
import type { DashboardView } from '../analyzer/dashboard-link.js';
import type { TimeseriesAnswer } from './api-types.js';
import { fill, h, notice } from './dom.js';
import { pct, span, timeTicks, usd, utc } from './format.js';
import { colour, dashOf } from './palette.js';
import { errorNotice } from './sections.js';
import type { Loaded } from './sections.js';
import {
  costPerSuccessByRoute,
  fallbackRateByReason,
  pointsOf,
  selectSeries,
  successRateByRoute,
} from './series.js';
import type { ChartData } from './series.js';

/**
 * The three trends, drawn with uPlot (canvas): cost per successful task per route, success rate
 * per route with its 95 % band, fallback rate by reason. Each chart carries its figures as a
 * table too, for screen readers and for copying.
 */

const HEIGHT = 220;

let charts: uPlot[] = [];
let resizeObserver: ResizeObserver | undefined;

/** Removes the charts drawn before (their canvases and listeners). */
function destroyCharts(): void {
  for (const chart of charts) chart.destroy();
  charts = [];
  resizeObserver?.disconnect();
  resizeObserver = undefined;
}

interface ChartSpec {
  id: string;
  title: string;
  description: string;
  data: ChartData;
  format: (value: number) => string;
  /** The y axis from 0 to 1 (rates). */
  unitInterval?: boolean;
  /**
   * The window asked for, seconds since the epoch: the x axis spans it whatever the data, so a
   * window with one bucket of tasks shows one point in its place in the window, not a point
   * alone on an axis uPlot widens to years.
   */
  window: [number, number];
}

function dataTable(spec: ChartSpec): HTMLElement {
  const { data } = spec;
  return h(
    'details',
    {},
    h('summary', {}, 'Figures'),
    h(
      'div',
      { class: 'table-scroll' },
      h(
        'table',
        { class: 'metrics chart-data' },
        h('caption', {}, spec.title),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', { scope: 'col' }, 'Bucket start'),
            data.lines.map((line) => h('th', { scope: 'col' }, line.label)),
          ),
        ),
        h(
          'tbody',
          {},
          data.times.map((time, i) =>
            h(
              'tr',
              {},
              h('th', { scope: 'row' }, utc(new Date(time).toISOString())),
              data.lines.map((line) => {
                const value = line.values[i];
                const lower = line.band?.lower[i];
                const upper = line.band?.upper[i];
                return h(
                  'td',
                  { class: 'num' },
                  value === null || value === undefined ? '—' : spec.format(value),
                  lower !== null && lower !== undefined && upper !== null && upper !== undefined
                    ? h('small', {}, `${spec.format(lower)}–${spec.format(upper)}`)
                    : null,
                );
              }),
            ),
          ),
        ),
      ),
    ),
  );
}

/** The longest series name a chart's legend shows whole. */
const LEGEND_LABEL = 48;

/** A name cut to LEGEND_LABEL characters (code points: an emoji is never split in two). */
function legendLabel(label: string): string {
  const chars = Array.from(label);
  return chars.length > LEGEND_LABEL ? `${chars.slice(0, LEGEND_LABEL - 1).join('')}…` : label;
}

function plot(spec: ChartSpec, target: HTMLElement): uPlot {
  const { data } = spec;
  const series: uPlot.Series[] = [{ label: 'time (UTC)' }];
  const columns: (number | null)[][] = [];
  const bands: uPlot.Band[] = [];
  data.lines.forEach((line, i) => {
    const stroke = colour(i);
    const dash = dashOf(i);
    series.push({
      // A long route or reason name is cut in the legend (the Figures table has it whole).
      label: legendLabel(line.label),
      stroke,
      ...(dash ? { dash } : {}),
      width: 2,
      points: { show: true, size: 6, stroke, fill: stroke },
      value: (_u, v) => (v === null || v === undefined ? '—' : spec.format(v)),
    });
    columns.push(line.values);
    if (line.band) {
      // The band's edges: drawn only as the fill between them, kept out of the legend (CSS).
      const edge = { stroke: 'transparent', width: 0, points: { show: false }, class: 'band-edge' };
      series.push({ ...edge, label: `${line.label} upper` });
      columns.push(line.band.upper);
      series.push({ ...edge, label: `${line.label} lower` });
      columns.push(line.band.lower);
      bands.push({ series: [series.length - 2, series.length - 1], fill: `${stroke}26` });
    }
  });
  const options: uPlot.Options = {
    width: Math.max(280, target.clientWidth),
    height: HEIGHT,
    series,
    bands,
    // routewatch speaks UTC everywhere (the API, the CLI, the alert messages).
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    scales: {
      x: { time: true, range: (): uPlot.Range.MinMax => spec.window },
      y: spec.unitInterval
        ? { range: (_u, min) => [Math.max(0, Math.min(min, 1) - 0.05), 1] }
        : { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
    },
    axes: [
      { values: (_u, splits) => timeTicks(splits) },
      {
        values: (_u, splits) => splits.map((v) => spec.format(v)),
        // Wide enough for its longest label ($0.000750 is 9 characters), at about 7 px each.
        size: (_u, values) =>
          Math.max(50, 16 + 7 * Math.max(0, ...(values ?? []).map((v) => String(v).length))),
      },
    ],
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
  };
  return new uPlot(options, [data.times.map((t) => t / 1000), ...columns], target);
}

function figure(spec: ChartSpec): { element: HTMLElement; target: HTMLElement } {
  const target = h('div', { class: 'plot', 'aria-hidden': 'true' });
  const points = pointsOf(spec.data);
  const element = h(
    'figure',
    {
      class: 'chart',
      id: spec.id,
      'data-points': points,
      'data-lines': spec.data.lines.length,
    },
    h('figcaption', {}, h('strong', {}, spec.title), ' — ', spec.description),
    points === 0 ? notice('empty', 'No value to draw in this window.') : target,
    dataTable(spec),
  );
  return { element, target };
}

/** The trends of the view, or why there are none. */
export function renderCharts(
  container: Element,
  timeseries: Loaded<TimeseriesAnswer>,
  view: DashboardView,
): void {
  destroyCharts();
  if (!timeseries.ok) {
    fill(
      container,
      timeseries.error.status === 404
        ? notice(
            'note',
            'This routewatch has no time series API (GET /api/v1/timeseries): upgrade it to see the trends.',
          )
        : errorNotice('The time series', timeseries.error),
    );
    return;
  }
  const selected = selectSeries(timeseries.value.series, view);
  if (selected.length === 0) {
    fill(container, notice('empty', 'No tasks in this window to chart.'));
    return;
  }
  const bucket = span(timeseries.value.bucketSeconds);
  const stepMs = timeseries.value.bucketSeconds * 1000;
  const window: [number, number] = [
    Date.parse(timeseries.value.from) / 1000,
    Date.parse(timeseries.value.to) / 1000,
  ];
  const specs: ChartSpec[] = [
    {
      id: 'chart-cost',
      title: 'Cost per successful task, per route',
      description: `total cost ÷ successes of the tasks started in each ${bucket} bucket`,
      data: costPerSuccessByRoute(selected, stepMs),
      format: (v) => usd(v),
      window,
    },
    {
      id: 'chart-success',
      title: 'Success rate, per route',
      description: `successes ÷ tasks with a known outcome; the band is the 95 % interval`,
      data: successRateByRoute(selected, stepMs),
      format: (v) => pct(v),
      unitInterval: true,
      window,
    },
    {
      id: 'chart-fallback',
      title: 'Fallback rate, by reason',
      description: 'tasks that fell back for the reason ÷ all tasks in the bucket',
      data: fallbackRateByReason(selected, stepMs),
      format: (v) => pct(v),
      window,
    },
  ];
  const figures = specs.map((spec) => ({ spec, ...figure(spec) }));
  fill(
    container,
    figures.map((f) => f.element),
  );
  for (const f of figures) {
    if (pointsOf(f.spec.data) > 0) charts.push(plot(f.spec, f.target));
  }
  resizeObserver = new ResizeObserver(() => {
    for (const chart of charts) {
      const width = Math.max(280, chart.root.parentElement?.clientWidth ?? chart.width);
      if (width !== chart.width) chart.setSize({ width, height: HEIGHT });
    }
  });
  for (const f of figures) resizeObserver.observe(f.target);
}
