import { joinNames, splitNames } from './name-list.js';

/**
 * What the dashboard shows, as the query string of its URL, so that a view can be shared and the
 * alert messages can link to one. The names are those of `GET /api/v1/report` (window, from, to,
 * cohort, route, service, policy; lists comma-separated), plus the charts' `bucket`. Pure: the
 * server (links in alerts) and the dashboard in the browser read and write it with these functions.
 */

export interface DashboardView {
  /** A duration ending now (`24h`) — or `from` (and `to`): dates, ISO instants or durations ago. */
  window?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  cohorts: string[];
  routes: string[];
  services: string[];
  policies: string[];
  /** The charts' bucket (`5m`, `1h`); unset: chosen from the window. */
  bucket?: string | undefined;
}

/** The lists of a view and their names in the URL, in the order the URL writes them. */
export const VIEW_LISTS = [
  ['cohorts', 'cohort'],
  ['routes', 'route'],
  ['services', 'service'],
  ['policies', 'policy'],
] as const;

const TEXT_PARAMS = ['window', 'from', 'to'] as const;

/**
 * A list parameter, repeated (`?cohort=a&cohort=b`) or comma-separated (`?cohort=a,b`, `\,` for a
 * comma inside a name), deduplicated.
 */
function listOf(params: URLSearchParams, name: string): string[] {
  return [...new Set(params.getAll(name).flatMap(splitNames))];
}

function textOf(params: URLSearchParams, name: string): string | undefined {
  const value = params.get(name)?.trim();
  return value ? value : undefined;
}

/** The view a query string names (`?window=24h&cohort=faq`); unknown parameters are ignored. */
export function viewFromQuery(query: string | URLSearchParams): DashboardView {
  const params = typeof query === 'string' ? new URLSearchParams(query) : query;
  return {
    window: textOf(params, 'window'),
    from: textOf(params, 'from'),
    to: textOf(params, 'to'),
    cohorts: listOf(params, 'cohort'),
    routes: listOf(params, 'route'),
    services: listOf(params, 'service'),
    policies: listOf(params, 'policy'),
    bucket: textOf(params, 'bucket'),
  };
}

/** The query string of a view, in one canonical order, without empty parameters. */
export function queryOfView(
  view: Partial<DashboardView>,
  options: { bucket?: boolean } = {},
): URLSearchParams {
  const params = new URLSearchParams();
  for (const name of TEXT_PARAMS) {
    const value = view[name]?.trim();
    if (value) params.set(name, value);
  }
  for (const [key, name] of VIEW_LISTS) {
    // Names are the data's, spaces and all (joinNames escapes what splitNames would trim).
    const items = (view[key] ?? []).filter((item) => item !== '');
    if (items.length > 0) params.set(name, joinNames([...new Set(items)]));
  }
  if (options.bucket !== false && view.bucket?.trim()) params.set('bucket', view.bucket.trim());
  return params;
}

/**
 * The dashboard at `publicUrl` (which may carry a path, behind a proxy) showing `view`; what the
 * "Open the dashboard" button of an alert message links to.
 */
export function dashboardUrl(publicUrl: string, view: Partial<DashboardView>): string {
  const query = queryOfView(view).toString();
  return `${publicUrl.replace(/\/+$/, '')}/${query ? `?${query}` : ''}`;
}
