import { queryOfView, viewFromQuery } from '../analyzer/dashboard-link.js';
import { escapeName, joinNames } from '../analyzer/name-list.js';
import type { DashboardView } from '../analyzer/dashboard-link.js';
import { parseDuration, resolveWindow } from '../server/time.js';
import { API_TIMEOUT_MS, Abandoned, ApiError, getJson, sendJson } from './api.js';
import type { AdviceReport, AlertsAnswer, Report, TimeseriesAnswer } from './api-types.js';
import { renderCharts } from './charts.js';
import { byId, fill, h, notice } from './dom.js';
import { utc } from './format.js';
import { renderAdvice, renderAlerts, renderConcentration, renderRoutes } from './sections.js';
import type { AlertActions, Loaded } from './sections.js';
import { chooseBucket } from './series.js';
import {
  currentToken,
  forgetToken,
  isTokenText,
  saveToken,
  takeTokenFromFragment,
} from './token.js';

/**
 * The dashboard: reads the view from the address (analyzer/dashboard-link.ts), asks the API for
 * the report, the time series, the alerts and the advice, and draws each section from its answer
 * or says why it cannot. The page's state is on <html data-state>: loading, ready, token (the
 * token form is shown) or failed.
 */

/** The report's own default, given explicitly so that every section covers the same window. */
const DEFAULT_WINDOW = '24h';
const HISTORY = 50;

type PageState = 'loading' | 'ready' | 'token' | 'failed';

function setState(state: PageState): void {
  document.documentElement.dataset['state'] = state;
  byId('main').setAttribute('aria-busy', state === 'loading' ? 'true' : 'false');
}

function sectionBody(id: string): Element {
  const body = byId(id).querySelector('.section-body');
  if (!body) throw new Error(`section #${id} has no body`);
  return body;
}

const hasFilter = (view: DashboardView) =>
  view.cohorts.length + view.routes.length + view.services.length + view.policies.length > 0;

/** The view's time: its window, or from/to, or the default window. */
function timeOf(view: DashboardView): Pick<DashboardView, 'window' | 'from' | 'to'> {
  if (view.from !== undefined) return { from: view.from, to: view.to };
  return { window: view.window ?? DEFAULT_WINDOW, to: view.to };
}

/** The charts' bucket: the view's, else one that gives a readable number of points. */
function bucketOf(view: DashboardView): string {
  if (view.bucket) return view.bucket;
  try {
    const { from, to } = resolveWindow(timeOf(view), new Date());
    return chooseBucket(to.getTime() - from.getTime());
  } catch {
    // A window the API will refuse with its own message: any bucket will do.
    return chooseBucket(parseDuration(DEFAULT_WINDOW));
  }
}

async function settle<T>(promise: Promise<T>): Promise<Loaded<T>> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return {
      ok: false,
      error:
        error instanceof ApiError
          ? error
          : new ApiError(0, 'INTERNAL', `the dashboard failed: ${(error as Error).message}`),
    };
  }
}

function fillForm(view: DashboardView): void {
  const form = byId<HTMLFormElement>('filters');
  const windowSelect = byId<HTMLSelectElement>('f-window');
  const windowValue = view.from !== undefined ? '' : (view.window ?? DEFAULT_WINDOW);
  // A window of the address that the list lacks is offered while it is the view's, then dropped.
  for (const option of [...windowSelect.options]) {
    if (option.dataset['added'] !== undefined && option.value !== windowValue) option.remove();
  }
  if (![...windowSelect.options].some((o) => o.value === windowValue)) {
    windowSelect.append(
      h('option', { value: windowValue, 'data-added': '' }, `last ${windowValue}`),
    );
  }
  windowSelect.value = windowValue;
  // With a `to`, a window ends there, not now: the options say so.
  for (const option of [...windowSelect.options]) {
    if (option.value === '') continue;
    option.dataset['label'] ??= option.textContent ?? '';
    option.textContent =
      view.to !== undefined
        ? `${option.value} up to “To”`
        : (option.dataset['label'] ?? option.value);
  }
  const bucketSelect = byId<HTMLSelectElement>('f-bucket');
  const bucketValue = view.bucket ?? '';
  // As the window: a bucket of the address that the list lacks, offered while it is the view's.
  for (const option of [...bucketSelect.options]) {
    if (option.dataset['added'] !== undefined && option.value !== bucketValue) option.remove();
  }
  if (![...bucketSelect.options].some((o) => o.value === bucketValue)) {
    bucketSelect.append(h('option', { value: bucketValue, 'data-added': '' }, bucketValue));
  }
  bucketSelect.value = bucketValue;
  const text: Record<string, string> = {
    from: view.from ?? '',
    to: view.to ?? '',
    cohort: joinNames(view.cohorts, ', '),
    route: joinNames(view.routes, ', '),
    service: joinNames(view.services, ', '),
    policy: joinNames(view.policies, ', '),
  };
  for (const [name, value] of Object.entries(text)) {
    const input = form.elements.namedItem(name);
    if (input instanceof HTMLInputElement) input.value = value;
  }
}

function viewFromForm(): DashboardView {
  const form = byId<HTMLFormElement>('filters');
  const params = new URLSearchParams();
  for (const [name, value] of new FormData(form)) {
    if (typeof value === 'string') params.append(name, value);
  }
  const view = viewFromQuery(params);
  // The API takes a window or a start, not both: a start given in the form wins.
  if (view.from !== undefined) view.window = undefined;
  return view;
}

/** Loads the view of the address; whatever breaks is said where the content would be. */
function refresh(): void {
  load().catch((error: unknown) => {
    fill(
      byId('status'),
      notice('error', `The dashboard failed: ${(error as Error).message}. Reload the page.`),
    );
    setState('failed');
  });
}

function navigate(search: string): void {
  const url = `${window.location.pathname}${search === '?' ? '' : search}`;
  window.history.pushState(null, '', url);
  refresh();
}

/** The suggestions of a filter field: names as the field reads them (`\,` for a comma). */
function setOptions(id: string, values: Iterable<unknown>): void {
  fill(
    byId(id),
    [...new Set(values)]
      // A name that is not text comes from an answer of another shape: offered as nothing.
      .filter((v): v is string => typeof v === 'string' && v !== '')
      .sort()
      .map((value) => h('option', { value: escapeName(value) })),
  );
}

function showTokenPanel(error: ApiError): void {
  const sent = currentToken() !== undefined;
  byId('content').hidden = true;
  byId('token-panel').hidden = false;
  byId('forget-token').hidden = !sent;
  fill(
    byId('token-message'),
    sent
      ? notice(
          'error',
          error.code === 'TOKEN_TEXT'
            ? error.message
            : `routewatch refused this token (${error.status}): it is not the ROUTEWATCH_TOKEN this instance runs with.`,
        )
      : 'Its data is protected by a bearer token. Enter it to open the dashboard.',
  );
  fill(byId('status'));
  setState('token');
  byId<HTMLInputElement>('token-input').focus();
}

/**
 * A silence added or ended from the alerts section: sent, then the view loads again to show it
 * (the alert marked silenced, the silence listed or gone). A refusal rejects, said in place.
 */
const alertActions: AlertActions = {
  async silence(asked) {
    await sendJson('POST', 'api/v1/silences', asked);
    refresh();
  },
  async endSilence(id) {
    await sendJson('DELETE', `api/v1/silences/${encodeURIComponent(id)}`);
    refresh();
  },
};

/** Draws one section; a section that fails says so in its place and the others still draw. */
function section(id: string, render: (body: Element) => void): void {
  const body = sectionBody(id);
  try {
    render(body);
  } catch (error) {
    fill(
      body,
      notice(
        'error',
        `This section could not be drawn: ${(error as Error).message}. The other sections are not affected.`,
      ),
    );
  }
}

let generation = 0;
/** The requests of the view loading now: a newer view, or API_TIMEOUT_MS, ends them. */
let requests: AbortController | undefined;
/** The address's query of the view drawn or loading, so a move within the page does not reload. */
let loadedSearch: string | undefined;

async function load(): Promise<void> {
  const mine = ++generation;
  requests?.abort(new Abandoned(false));
  const controller = (requests = new AbortController());
  const timer = setTimeout(() => controller.abort(new Abandoned(true)), API_TIMEOUT_MS);
  try {
    await loadView(mine, controller.signal);
  } finally {
    clearTimeout(timer);
  }
}

async function loadView(mine: number, signal: AbortSignal): Promise<void> {
  const get = <T>(path: string) => settle(getJson<T>(path, signal));
  loadedSearch = window.location.search;
  setState('loading');
  fill(byId('status'), 'Loading…');
  const view = viewFromQuery(window.location.search);
  // The API takes a window or a start, not both: a start in the address wins, as in the form.
  if (view.from !== undefined) view.window = undefined;
  fillForm(view);
  const time = timeOf(view);
  const timeQuery = queryOfView(time);
  const single = (list: string[]) => (list.length === 1 ? list : []);
  const seriesQuery = queryOfView({
    ...time,
    cohorts: single(view.cohorts),
    routes: single(view.routes),
    services: view.services,
    policies: view.policies,
  });
  seriesQuery.set('bucket', bucketOf(view));

  const report = get<Report>(
    `api/v1/report?${queryOfView({ ...view, ...time }, { bucket: false })}`,
  );
  const [filtered, all, timeseries, alerts, advice] = await Promise.all([
    report,
    // Without filters the report is also "everything": asked once.
    hasFilter(view) ? get<Report>(`api/v1/report?${timeQuery}`) : report,
    get<TimeseriesAnswer>(`api/v1/timeseries?${seriesQuery}`),
    // The cohorts and routes of the view filter the history before its limit, on the server.
    get<AlertsAnswer>(
      `api/v1/alerts?${queryOfView({ cohorts: view.cohorts, routes: view.routes })}&history=${HISTORY}`,
    ),
    // Advice weighs a cohort's routes together: every filter of the view but the route's.
    get<AdviceReport>(
      `api/v1/advice?${queryOfView({ ...time, cohorts: view.cohorts, services: view.services, policies: view.policies })}`,
    ),
  ]);
  if (mine !== generation) return; // a newer view is loading

  const refused = [filtered, all, timeseries, alerts, advice].find(
    (r): r is { ok: false; error: ApiError } => !r.ok && r.error.unauthenticated,
  );
  if (refused) {
    showTokenPanel(refused.error);
    return;
  }
  byId('token-panel').hidden = true;
  byId('content').hidden = false;
  byId('forget-token').hidden = currentToken() === undefined;

  // An answer of an unexpected shape (a proxy's, another version's) fails its sections, which say
  // so, and leaves the suggestions and the period empty: never the whole page.
  const known = all.ok ? all.value : filtered.ok ? filtered.value : undefined;
  const rows = Array.isArray(known?.rows) ? known.rows : [];
  setOptions(
    'cohort-options',
    rows.map((r) => r.cohort),
  );
  setOptions(
    'route-options',
    rows.map((r) => r.primaryRoute),
  );
  fill(
    byId('period'),
    filtered.ok ? `${utc(filtered.value.from)} → ${utc(filtered.value.to)}` : '',
  );
  section('routes', (body) => renderRoutes(body, { report: filtered, all, alerts, advice, view }));
  section('trends', (body) => renderCharts(body, timeseries, view));
  section('concentration', (body) => renderConcentration(body, filtered));
  section('alerts', (body) => renderAlerts(body, alerts, view, alertActions));
  section('advice', (body) => renderAdvice(body, advice, view));
  fill(
    byId('status'),
    filtered.ok
      ? `Updated ${utc(new Date().toISOString())}.`
      : // A bad filter (a window the API refuses) is said once, at the top, as the API said it.
        notice('error', h('span', { class: 'error-message' }, filtered.error.message)),
  );
  setState('ready');
}

function start(): void {
  takeTokenFromFragment();
  byId('filters').addEventListener('submit', (event) => {
    event.preventDefault();
    const query = queryOfView(viewFromForm()).toString();
    navigate(`?${query}`);
  });
  byId('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = byId<HTMLInputElement>('token-input').value.trim();
    if (!token) return;
    if (!isTokenText(token)) {
      fill(
        byId('token-message'),
        notice('error', 'A token is printable ASCII without spaces: check what was pasted.'),
      );
      return;
    }
    saveToken(token, byId<HTMLInputElement>('token-remember').checked);
    byId<HTMLInputElement>('token-input').value = '';
    refresh();
  });
  byId('forget-token').addEventListener('click', () => {
    forgetToken();
    refresh();
  });
  byId('refresh').addEventListener('click', refresh);
  // Links to other views of this page (`?cohort=…`) load in place: no reload of the scripts.
  document.addEventListener('click', (event) => {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = (event.target as Element | null)?.closest?.('a');
    const href = link?.getAttribute('href');
    if (!link || !href?.startsWith('?')) return;
    event.preventDefault();
    navigate(href);
  });
  // Back and Forward between views load the view; between places in one view (`#alerts`) they
  // only move.
  window.addEventListener('popstate', () => {
    if (window.location.search !== loadedSearch) refresh();
  });
  // Picking a window means "the last …": a start in From would win over it, unseen.
  byId<HTMLSelectElement>('f-window').addEventListener('change', (event) => {
    if ((event.target as HTMLSelectElement).value !== '')
      byId<HTMLInputElement>('f-from').value = '';
  });
  byId<HTMLInputElement>('f-from').addEventListener('input', (event) => {
    if ((event.target as HTMLInputElement).value.trim() !== '') {
      byId<HTMLSelectElement>('f-window').value = '';
    }
  });
  // A `#token=…` link opened in a tab already on the dashboard: taken as at start.
  window.addEventListener('hashchange', () => {
    if (takeTokenFromFragment()) refresh();
  });
  refresh();
}

start();
