import { isolate } from '../analyzer/name-list.js';
import { printable } from '../analyzer/text-width.js';
import { queryOfView } from '../analyzer/dashboard-link.js';
import type { DashboardView } from '../analyzer/dashboard-link.js';
import type { ApiError } from './api.js';
import type { AdviceReport, AlertsAnswer, CohortRouteMetrics, Report } from './api-types.js';
import { fill, h, notice } from './dom.js';
import type { Child } from './dom.js';
import { count, latency, pct, pctRange, ratio, reasons, usd, usdRange, utc } from './format.js';

/** An API answer, or why there is none. */
export type Loaded<T> = { ok: true; value: T } | { ok: false; error: ApiError };

type Alert = AlertsAnswer['alerts'][number];

/**
 * A name from the data as a cell shows it: isolated from the text around it (right-to-left names,
 * bidi controls), its control characters as escapes (a newline is no line break), and `(none)`,
 * set apart, for the empty name the report gives tasks without a cohort or route.
 */
const named = (name: string) => {
  // The empty name reads apart from a real name `(none)`: in italics, and said in full on hover.
  if (name === '')
    return h('bdi', { class: 'name none', title: 'no name on these tasks' }, '(none)');
  const shown = printable(name);
  return h('bdi', { class: 'name', title: shown.length > 32 ? shown : undefined }, shown);
};

const hasFilter = (view: DashboardView) =>
  view.cohorts.length + view.routes.length + view.services.length + view.policies.length > 0;

/** The same window with other filters: a link that stays within this view's time. */
export function viewLink(view: DashboardView, changes: Partial<DashboardView>): string {
  const query = queryOfView({ ...view, ...changes }).toString();
  return query ? `?${query}` : '?';
}

function describeFilter(view: DashboardView): string {
  const parts: string[] = [];
  const names = (list: string[]) => list.map(isolate).join(', ');
  if (view.cohorts.length) parts.push(`cohort ${names(view.cohorts)}`);
  if (view.routes.length) parts.push(`route ${names(view.routes)}`);
  if (view.services.length) parts.push(`service ${names(view.services)}`);
  if (view.policies.length) parts.push(`policy ${names(view.policies)}`);
  return parts.join('; ');
}

/** What a section says when its API call failed. */
export function errorNotice(what: string, error: ApiError): HTMLElement {
  return notice(
    'error',
    `${what} could not be loaded: `,
    h('span', { class: 'error-message' }, error.message),
    error.code ? ` (${error.code})` : '',
  );
}

const ALERT_ORDER: Record<Alert['state'], number> = {
  firing: 0,
  pending: 1,
  resolved: 2,
  inactive: 3,
};

const SEVERITY_ORDER: Record<Alert['severity'], number> = { critical: 0, warning: 1, info: 2 };

/** Firing first, then pending, then resolved; the most severe first within each (stable). */
const alertOrder = (a: Alert, b: Alert) =>
  ALERT_ORDER[a.state] - ALERT_ORDER[b.state] ||
  (SEVERITY_ORDER[a.severity] ?? 3) - (SEVERITY_ORDER[b.severity] ?? 3);

function alertsOf(alerts: Loaded<AlertsAnswer>, cohort: string, route: string): Alert[] {
  if (!alerts.ok) return [];
  return alerts.value.alerts
    .filter((a) => a.cohort === cohort && a.route === route && a.state !== 'inactive')
    .sort(alertOrder);
}

function stateBadge(state: Alert['state'], title?: string): HTMLElement {
  return h('span', { class: `badge badge-${state}`, title }, state);
}

/** Closed without a verdict (held too long, its rule gone): neutral, not the green of a recovery. */
function closedBadge(title?: string): HTMLElement {
  return h('span', { class: 'badge badge-closed', title }, 'closed');
}

/**
 * An alert's state as it reads: a held firing alert says since when it has had no verdict, a
 * resolved one closed without a verdict reads `closed`. The title is the latest finding's summary.
 */
function alertState(a: Alert, title?: string): Child {
  if (a.state === 'resolved' && a.resolution === 'closed_without_verdict')
    return closedBadge(title);
  // A silence in force: the alert pages no one until it ends (absent from an older server).
  const silenced = a.silenced
    ? [
        ' ',
        h(
          'span',
          { class: 'muted silenced', title: `silence ${a.silenced.id}` },
          `silenced until ${utc(a.silenced.until)}`,
        ),
      ]
    : [];
  if (a.state === 'firing' && a.heldSince !== null) {
    return [
      stateBadge(a.state, title),
      ' ',
      h('span', { class: 'muted held', title: a.summary }, `no verdict since ${utc(a.heldSince)}`),
      ...silenced,
    ];
  }
  return [stateBadge(a.state, title), ...silenced];
}

function alertCell(alerts: Loaded<AlertsAnswer>, row: CohortRouteMetrics): Child {
  if (!alerts.ok) {
    return alerts.error.status === 404
      ? h('span', { class: 'muted' }, 'not evaluated')
      : h('span', { class: 'muted', title: alerts.error.message }, 'unknown');
  }
  const found = alertsOf(alerts, row.cohort, row.primaryRoute);
  const active = found.filter((a) => a.state !== 'resolved');
  if (active.length === 0) {
    return found.length > 0
      ? alertState(found[0]!, found[0]!.summary)
      : h('span', { class: 'muted' }, 'no alert');
  }
  return active.map((a) =>
    h('div', {}, alertState(a, a.summary), ' ', h('span', { class: 'rule' }, a.rule)),
  );
}

/**
 * The cohort's routing advice, which weighs its small route against its large one: marked on the
 * small route's row, and muted on the cohort's other rows, which it is not about.
 */
function verdictCell(advice: Loaded<AdviceReport>, cohort: string, route: string): Child {
  if (!advice.ok) return h('span', { class: 'muted', title: advice.error.message }, '—');
  const found = advice.value.cohorts.find((c) => c.cohort === cohort);
  if (!found) return h('span', { class: 'muted' }, '—');
  const small = found.smallRoute ?? advice.value.options.smallRoute;
  if (route !== small)
    return h('span', { class: 'muted', title: found.reason }, `${small}: ${found.verdict}`);
  return h(
    'span',
    { class: `verdict verdict-${found.verdict.replaceAll(' ', '-')}`, title: found.reason },
    found.verdict,
  );
}

const num = (...children: Child[]) => h('td', { class: 'num' }, ...children);

function metricCells(row: {
  tasks: number;
  costPerSuccessfulTask: number | null;
  costPerSuccessfulTaskInterval: { lower: number; upper: number } | null;
  successRate: number | null;
  successRateInterval: { lower: number; upper: number } | null;
  knownOutcomes: number;
  outcomeCoverage: number | null;
  fallbackRate: number;
  topFallbackReasons: { reason: string; share: number }[];
  p95LatencyMs: number | null;
  pricedCallShare: number | null;
  costUnderstated: boolean;
  retryRate?: number | null;
  /** A cohort × route's (the overall row has none): its tasks' model calls. */
  modelCalls?: number;
  cohort?: string;
  primaryRoute?: string;
}): HTMLElement[] {
  // Built on model calls with no known price: a floor, or unknown when no call was priced.
  const unknown = row.costUnderstated && row.pricedCallShare === 0;
  // Tasks with a cohort or route but no model call joined to them: $0, which may be right (a
  // route that calls no model) or a split task whose calls lack its id. Said, as the CLI says it.
  const callless = row.modelCalls === 0 && row.tasks > 0 && Boolean(row.cohort || row.primaryRoute);
  const cost = callless
    ? h(
        'span',
        {
          class: 'cost callless',
          title:
            "No model call joined these tasks, so their cost reads $0: right for a route that calls no model; otherwise the calls do not carry their task's id (docs/mapping.md)",
        },
        usd(row.costPerSuccessfulTask),
      )
    : unknown
      ? h(
          'span',
          { class: 'cost understated', title: 'no model call of this row has a known price' },
          'unknown',
        )
      : h(
          'span',
          {
            class: row.costUnderstated ? 'cost understated' : 'cost',
            ...(row.costUnderstated
              ? {
                  title: `${pct(row.pricedCallShare)} of the model calls priced: the true cost is higher (see docs/pricing.md)`,
                }
              : {}),
          },
          `${row.costUnderstated && row.costPerSuccessfulTask !== null ? '≥' : ''}${usd(row.costPerSuccessfulTask)}`,
        );
  return [
    num(count(row.tasks)),
    num(
      cost,
      callless
        ? h('small', { class: 'callless' }, 'no model call')
        : row.costPerSuccessfulTaskInterval && !unknown
          ? // On a floor, the interval is the priced calls' alone: not a range the true cost is in.
            h(
              'small',
              {},
              row.costUnderstated ? 'priced calls ' : '',
              usdRange(row.costPerSuccessfulTaskInterval),
            )
          : null,
    ),
    num(
      h(
        'span',
        {
          class: 'success',
          title: `${count(row.knownOutcomes)} tasks with a known outcome (coverage ${pct(row.outcomeCoverage)})`,
        },
        pct(row.successRate),
      ),
      row.successRateInterval ? h('small', {}, pctRange(row.successRateInterval)) : null,
    ),
    num(
      pct(row.fallbackRate),
      // Hidden SDK retries (429s, 5xx the SDK retried itself): no fallback, but time and money.
      row.retryRate
        ? h(
            'small',
            { class: 'retries', title: 'model calls the SDK retried ÷ model calls' },
            `SDK retries ${pct(row.retryRate)}`,
          )
        : null,
    ),
    h('td', { class: 'reasons' }, reasons(row.topFallbackReasons)),
    num(latency(row.p95LatencyMs)),
  ];
}

const ROUTE_HEADINGS = [
  ['Cohort', ''],
  ['Route', 'the primary route: where the routing sent the task first'],
  ['Tasks', ''],
  ['Cost / success', 'cost per successful task (fallbacks and cleanup included), 95 % interval'],
  ['Success rate', 'successes ÷ tasks with a known outcome, Wilson 95 % interval'],
  [
    'Fallback rate',
    'tasks with a second attempt ÷ tasks; below, the SDK retries when there are any',
  ],
  ['Fallback reasons', 'share of the fallbacks'],
  ['p95', '95th percentile of task latency'],
  ['Alert', 'the alert state of this cohort × route'],
  ['Advice', 'the routing advice for the cohort'],
] as const;

/** The cohort × route table with its overall row, or why it is empty. */
export function renderRoutes(
  container: Element,
  args: {
    report: Loaded<Report>;
    all: Loaded<Report>;
    alerts: Loaded<AlertsAnswer>;
    advice: Loaded<AdviceReport>;
    view: DashboardView;
  },
): void {
  const { report, all, alerts, advice, view } = args;
  if (!report.ok) {
    fill(container, errorNotice('The report', report.error));
    return;
  }
  const { rows, overall } = report.value;
  if (rows.length === 0) {
    const elsewhere = all.ok && all.value.rows.length > 0;
    fill(
      container,
      hasFilter(view) && elsewhere
        ? notice(
            'empty',
            `No tasks match ${describeFilter(view)} in this window. `,
            h(
              'a',
              {
                href: viewLink(view, { cohorts: [], routes: [], services: [], policies: [] }),
                'data-action': 'clear-filters',
              },
              'Show every cohort and route',
            ),
            '.',
          )
        : notice(
            'empty',
            `No tasks in this window (${utc(report.value.from)} to ${utc(report.value.to)}). `,
            'Send spans to routewatch (README: "Instrument a service") or run `routewatch demo`, or choose a longer window.',
          ),
    );
    return;
  }
  const table = h(
    'table',
    { class: 'metrics', id: 'routes-table' },
    h(
      'caption',
      {},
      `Per cohort × primary route, tasks started ${utc(report.value.from)} to ${utc(report.value.to)}`,
      hasFilter(view) ? ` — ${describeFilter(view)}` : '',
    ),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ROUTE_HEADINGS.map(([label, title]) =>
          h('th', { scope: 'col', title: title || undefined }, label),
        ),
      ),
    ),
    h(
      'tbody',
      {},
      rows.map((row) =>
        h(
          'tr',
          {
            'data-cohort': row.cohort,
            'data-route': row.primaryRoute,
            class: row.concentration?.maskedByAverage ? 'masked' : undefined,
          },
          h(
            'th',
            { scope: 'row' },
            // Tasks without a cohort have no filter of their own: their name is not a link.
            row.cohort === ''
              ? named(row.cohort)
              : h(
                  'a',
                  {
                    href: viewLink(view, { cohorts: [row.cohort] }),
                    title: 'show only this cohort',
                  },
                  named(row.cohort),
                ),
          ),
          h('td', {}, named(row.primaryRoute)),
          ...metricCells(row),
          h('td', { class: 'alert-state' }, alertCell(alerts, row)),
          h('td', {}, verdictCell(advice, row.cohort, row.primaryRoute)),
        ),
      ),
    ),
    overall
      ? h(
          'tfoot',
          {},
          h(
            'tr',
            { 'data-overall': true },
            h(
              'th',
              { scope: 'row', colspan: 2 },
              hasFilter(view) ? 'All matching tasks' : 'All tasks',
            ),
            ...metricCells(overall),
            h('td', {}),
            h('td', {}),
          ),
        )
      : null,
  );
  fill(container, h('div', { class: 'table-scroll' }, table));
}

/** Failure concentration: which cohort × route holds more than its share of the failures. */
export function renderConcentration(container: Element, report: Loaded<Report>): void {
  if (!report.ok) {
    fill(container, errorNotice('The report', report.error));
    return;
  }
  const rows = report.value.rows
    .filter((r) => r.concentration !== null && r.failures > 0)
    .sort((a, b) => (b.concentration?.ratio ?? 0) - (a.concentration?.ratio ?? 0));
  if (rows.length === 0) {
    fill(container, notice('empty', 'No failures in this window: nothing concentrates.'));
    return;
  }
  const masked = rows.filter((r) => r.concentration?.maskedByAverage);
  fill(
    container,
    masked.length > 0
      ? notice(
          'note',
          h('strong', {}, 'Masked by the average: '),
          masked.map((r, i) => [i > 0 ? ', ' : '', named(r.cohort), ' × ', named(r.primaryRoute)]),
          ' fail significantly more than the rest while the overall success rate looks healthy.',
        )
      : null,
    h(
      'div',
      { class: 'table-scroll' },
      h(
        'table',
        { class: 'metrics', id: 'concentration-table' },
        h(
          'caption',
          {},
          'Share of the failures ÷ share of the tasks (1 = average), against the rest of the traffic',
        ),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Cohort', 'Route', 'Failures', 'Failure rate', 'Rest', 'Concentration', 'z', ''].map(
              (label) => h('th', { scope: 'col' }, label),
            ),
          ),
        ),
        h(
          'tbody',
          {},
          rows.map((r) => {
            const c = r.concentration!;
            return h(
              'tr',
              { 'data-cohort': r.cohort, 'data-route': r.primaryRoute },
              h('th', { scope: 'row' }, named(r.cohort)),
              h('td', {}, named(r.primaryRoute)),
              num(count(r.failures)),
              num(pct(c.failureRate)),
              num(pct(c.restFailureRate)),
              num(ratio(c.ratio)),
              num(c.z === null ? '—' : c.z.toFixed(1)),
              h(
                'td',
                {},
                c.maskedByAverage
                  ? h('span', { class: 'badge badge-firing' }, 'masked by the average')
                  : c.significantlyWorse
                    ? h('span', { class: 'badge badge-pending' }, 'significantly worse')
                    : null,
              ),
            );
          }),
        ),
      ),
    ),
  );
}

/**
 * The cohort × routes no rule could judge for lack of data: nothing can alert on them, which a
 * quiet alerts table must not hide.
 */
function unjudgedNote(
  unjudged: AlertsAnswer['unjudged'],
  id = 'alerts-unjudged',
  what = 'not judged by any rule: too little data',
): Child {
  if (unjudged.length === 0) return '';
  const plural = unjudged.length === 1 ? '' : 's';
  return h(
    'details',
    { class: 'unjudged', id },
    h('summary', {}, `${unjudged.length} cohort × route${plural} ${what}`),
    h(
      'ul',
      {},
      unjudged.map((u) =>
        h(
          'li',
          { 'data-cohort': u.cohort, 'data-route': u.route },
          named(u.cohort),
          ' × ',
          named(u.route),
          ': ',
          u.reason,
        ),
      ),
    ),
  );
}

/** A silence the page asks for: one alert's cohort, route and rule, for a while, and why. */
export interface SilenceAsked {
  cohort: string;
  route: string;
  rule: string;
  for: string;
  comment: string;
}

/**
 * What the alerts section can do besides show them: add a silence, end one. Each settles once the
 * page shows the change; it rejects with the API's error, which the section says in place.
 */
export interface AlertActions {
  silence(asked: SilenceAsked): Promise<void>;
  endSilence(id: string): Promise<void>;
}

/** The lengths a silence from the page can have (longer ones: `routewatch silence add`). */
const SILENCE_LENGTHS = [
  ['1h', '1 hour'],
  ['4h', '4 hours'],
  ['1d', '1 day'],
] as const;

/** An action's failure, said where it was asked for; the control can be used again. */
function failed(message: Element, control: HTMLButtonElement, what: string) {
  return (error: unknown) => {
    control.disabled = false;
    fill(
      message,
      notice('error', `${what}: `, h('span', { class: 'error-message' }, (error as Error).message)),
    );
  };
}

/**
 * A pending or firing alert's silence, asked for on its row: this cohort × route × rule, for a
 * while, with why (the API refuses it without). Nothing for an alert a silence already covers, a
 * resolved one, or one of the empty name, which a silence cannot name ('' matches any).
 */
function silenceControl(a: Alert, actions: AlertActions | undefined): Child {
  if (!actions || a.silenced || a.cohort === '' || a.route === '') return '';
  if (a.state !== 'firing' && a.state !== 'pending') return '';
  const length = h(
    'select',
    { name: 'for', 'aria-label': 'for how long' },
    SILENCE_LENGTHS.map(([value, label]) =>
      h('option', { value, selected: value === '4h' }, label),
    ),
  );
  const comment = h('input', {
    name: 'comment',
    type: 'text',
    maxlength: 1000,
    'aria-label': 'why',
    placeholder: 'why, and who: “ana: new prompt rolling out”',
  });
  const submit = h('button', { type: 'submit' }, 'Silence');
  const message = h('div', { class: 'action-message', 'aria-live': 'polite' });
  const form = h('form', { class: 'silence-form' }, length, ' ', comment, ' ', submit, message);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    // The API refuses a silence without a reason too, with its whole usage: said here plainly.
    if (comment.value.trim() === '') {
      fill(
        message,
        notice(
          'error',
          'Say why, and who: the silence is listed with it for the people who see it later.',
        ),
      );
      comment.focus();
      return;
    }
    submit.disabled = true;
    fill(message, 'Silencing…');
    actions
      .silence({
        cohort: a.cohort,
        route: a.route,
        rule: a.rule,
        for: length.value,
        comment: comment.value,
      })
      .catch(failed(message, submit, 'Not silenced'));
  });
  return h(
    'details',
    { class: 'silence' },
    h(
      'summary',
      { title: `keeps this alert (${a.rule} on this cohort × route) from sending messages` },
      'Silence…',
    ),
    form,
  );
}

/** Alerts not inactive, and the latest transitions, for the cohorts and routes of the view. */
export function renderAlerts(
  container: Element,
  alerts: Loaded<AlertsAnswer>,
  view: DashboardView,
  actions?: AlertActions,
): void {
  if (!alerts.ok) {
    fill(
      container,
      alerts.error.status === 404
        ? notice('note', 'This instance does not evaluate alerts.')
        : errorNotice('The alerts', alerts.error),
    );
    return;
  }
  const wanted = (a: { cohort: string; route: string }) =>
    (view.cohorts.length === 0 || view.cohorts.includes(a.cohort)) &&
    (view.routes.length === 0 || view.routes.includes(a.route));
  const current = alerts.value.alerts.filter(wanted).sort(alertOrder);
  // Asked for the view's cohorts and routes already (the limit applies after the filter).
  const history = alerts.value.history.filter(wanted);
  const counts = (['firing', 'pending', 'resolved'] as const)
    .map((state) => [state, current.filter((a) => a.state === state).length] as const)
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${n} ${state}`)
    .join(', ');
  const silences = alerts.value.silences.filter(
    (s) =>
      (s.cohort === '' || view.cohorts.length === 0 || view.cohorts.includes(s.cohort)) &&
      (s.route === '' || view.routes.length === 0 || view.routes.includes(s.route)),
  );
  const scope =
    view.cohorts.length + view.routes.length > 0
      ? ` (${describeFilter({ ...view, services: [], policies: [] })})`
      : '';
  fill(
    container,
    h(
      'p',
      { class: 'muted' },
      alerts.value.evaluatedAt
        ? `Last evaluation ${utc(alerts.value.evaluatedAt)}.`
        : 'No evaluation in this process yet.',
      ' Alerts are not tied to the window above: they show the current state.',
    ),
    current.length === 0
      ? notice('empty', `No alert is pending, firing or resolved${scope}.`)
      : h(
          'div',
          { class: 'table-scroll' },
          h(
            'table',
            { class: 'metrics', id: 'alerts-table' },
            h('caption', {}, `Alerts${scope}: ${counts}`),
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                [
                  'State',
                  'Severity',
                  'Rule',
                  'Cohort × route',
                  'Since',
                  'Evidence',
                  ...(actions ? ['Silence'] : []),
                ].map((label) => h('th', { scope: 'col' }, label)),
              ),
            ),
            h(
              'tbody',
              {},
              current.map((a) =>
                h(
                  'tr',
                  {
                    'data-cohort': a.cohort,
                    'data-route': a.route,
                    'data-rule': a.rule,
                    'data-state': a.state,
                  },
                  h('td', {}, alertState(a)),
                  h('td', {}, a.severity),
                  h('td', {}, a.rule, a.detail ? ` (${a.detail})` : ''),
                  h(
                    'td',
                    {},
                    a.cohort === '' || a.route === ''
                      ? h('span', {}, named(a.cohort), ' × ', named(a.route))
                      : h(
                          'a',
                          { href: viewLink(view, { cohorts: [a.cohort], routes: [a.route] }) },
                          named(a.cohort),
                          ' × ',
                          named(a.route),
                        ),
                  ),
                  h('td', {}, utc(a.since)),
                  // A held alert: what it fired on, then why it cannot be judged now.
                  a.heldSince && a.firedSummary
                    ? h(
                        'td',
                        {},
                        a.firedSummary,
                        h('br'),
                        h('span', { class: 'muted' }, `no verdict now: ${a.summary}`),
                      )
                    : h('td', {}, a.summary),
                  actions ? h('td', { class: 'action' }, silenceControl(a, actions)) : '',
                ),
              ),
            ),
          ),
        ),
    unjudgedNote(alerts.value.unjudged?.filter(wanted) ?? []),
    unjudgedNote(
      alerts.value.successUnjudged?.filter(wanted) ?? [],
      'alerts-success-unjudged',
      'whose success rate no rule could judge (other rules judged them)',
    ),
    silencesTable(silences, actions),
    deliveryNote(alerts.value),
    h('h3', {}, 'History'),
    history.length === 0
      ? notice('empty', `No alert transition yet${scope}.`)
      : h(
          'ol',
          { class: 'history', id: 'alert-history' },
          history.map((e) =>
            h(
              'li',
              { 'data-kind': e.kind },
              h('time', { datetime: e.at }, utc(e.at)),
              ' ',
              e.kind === 'resolved' && e.resolution === 'closed_without_verdict'
                ? closedBadge()
                : h(
                    'span',
                    { class: `badge badge-${e.kind === 'repeat' ? 'firing' : e.kind}` },
                    e.kind,
                  ),
              ' ',
              e.title,
              e.silenced ? h('span', { class: 'muted' }, ' (silenced: not sent)') : '',
              h('br'),
              h('span', { class: 'muted' }, e.summary),
            ),
          ),
        ),
  );
}

/**
 * Where the alerts go, and whether they get there: each channel's counts since the process
 * started, its last error, and the messages given up in the last 7 days (from the store, so a
 * restart does not hide them). With no channel, that alerts are shown only here.
 */
function deliveryNote(answer: AlertsAnswer): Child {
  const channels = Object.entries(answer.channels);
  if (channels.length === 0)
    return h(
      'p',
      { class: 'muted', id: 'alert-delivery' },
      'No alert channel is configured (ROUTEWATCH_SLACK_WEBHOOK_URL, ROUTEWATCH_WEBHOOK_URL): alerts are shown here and by routewatch alerts only.',
    );
  const givenUp = answer.givenUp ?? [];
  return h(
    'div',
    { id: 'alert-delivery' },
    h(
      'p',
      { class: 'muted' },
      'Sent to ',
      channels
        .map(([name, c]) => {
          const failing =
            c.lastError && c.lastErrorAt && !(c.lastSentAt && c.lastSentAt >= c.lastErrorAt)
              ? `, failing since ${utc(c.lastErrorAt)}: ${c.lastError}`
              : '';
          return `${name} (${c.sent} sent, ${c.queued} queued since ${utc(c.since)}${failing})`;
        })
        .join(', '),
      '. routewatch alerts --test sends each a test message.',
    ),
    givenUp.length === 0
      ? ''
      : notice(
          'error',
          `Given up in the last 7 days: ${givenUp
            .map(
              (g) =>
                `${g.channel} ${g.alerts} alert${g.alerts === 1 ? '' : 's'} ${g.status === 'refused' ? 'refused by the endpoint' : 'older than the look-back'} (latest ${utc(g.latest)})`,
            )
            .join('; ')}.`,
        ),
  );
}

/**
 * The silences in force or to come that can match the view: who keeps what quiet, until when and
 * why, those that match no alert now and those set ahead included, each with its End button
 * (`routewatch silence` adds and ends them too).
 */
function silencesTable(
  silences: AlertsAnswer['silences'],
  actions: AlertActions | undefined,
): HTMLElement | string {
  if (silences.length === 0) return '';
  const end = (id: string) => {
    const button = h('button', { type: 'button' }, 'End');
    const message = h('div', { class: 'action-message', 'aria-live': 'polite' });
    button.addEventListener('click', () => {
      button.disabled = true;
      fill(message, 'Ending…');
      actions!.endSilence(id).catch(failed(message, button, 'Not ended'));
    });
    return h('td', { class: 'action' }, button, message);
  };
  const now = Date.now();
  return h(
    'div',
    { class: 'table-scroll' },
    h(
      'table',
      { class: 'metrics', id: 'silences-table' },
      h('caption', {}, `Silences in force or to come: ${silences.length}`),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Matches', 'From', 'Until', 'Comment', 'Id', ...(actions ? ['Action'] : [])].map(
            (label) => h('th', { scope: 'col' }, label),
          ),
        ),
      ),
      h(
        'tbody',
        {},
        silences.map((s) =>
          h(
            'tr',
            { 'data-silence': s.id },
            h('td', {}, isolate(s.scope)),
            h(
              'td',
              {},
              utc(s.startsAt),
              Date.parse(s.startsAt) > now ? h('span', { class: 'muted' }, ' (to come)') : '',
            ),
            h('td', {}, utc(s.endsAt)),
            h('td', {}, s.comment),
            h('td', {}, h('code', {}, s.id)),
            actions ? end(s.id) : '',
          ),
        ),
      ),
    ),
  );
}

/** The routing advice per cohort, with the numbers behind each verdict. */
export function renderAdvice(
  container: Element,
  advice: Loaded<AdviceReport>,
  view: DashboardView,
): void {
  if (!advice.ok) {
    fill(
      container,
      advice.error.status === 404
        ? notice('note', 'This instance gives no advice (GET /api/v1/advice).')
        : errorNotice('The advice', advice.error),
    );
    return;
  }
  const cohorts = advice.value.cohorts.filter(
    (c) => view.cohorts.length === 0 || view.cohorts.includes(c.cohort),
  );
  if (cohorts.length === 0) {
    fill(container, notice('empty', 'No cohort has production traffic in this window.'));
    return;
  }
  fill(
    container,
    h(
      'div',
      { class: 'table-scroll' },
      h(
        'table',
        { class: 'metrics', id: 'advice-table' },
        h(
          'caption',
          {},
          `Per cohort, ${cheapRoutes(advice.value)} against ${advice.value.options.largeRoute}, from ${utc(advice.value.from)} to ${utc(advice.value.to)}`,
        ),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Cohort', 'Verdict', 'Routed now', 'Why'].map((label) =>
              h('th', { scope: 'col' }, label),
            ),
          ),
        ),
        h(
          'tbody',
          {},
          cohorts.map((c) =>
            h(
              'tr',
              { 'data-cohort': c.cohort },
              h('th', { scope: 'row' }, named(c.cohort)),
              h(
                'td',
                {},
                h(
                  'span',
                  { class: `verdict verdict-${c.verdict.replaceAll(' ', '-')}` },
                  c.verdict,
                ),
              ),
              h('td', {}, c.currentRoute ?? '—'),
              h('td', {}, c.reason),
            ),
          ),
        ),
      ),
    ),
  );
}

/** The cheap routes the advice weighs, as its caption names them: one name, or a few. */
function cheapRoutes(advice: {
  options: { smallRoute: string };
  cohorts: readonly { smallRoute: string }[];
}): string {
  const names = [...new Set(advice.cohorts.map((c) => c.smallRoute))];
  if (names.length === 0) return advice.options.smallRoute;
  return names.length <= 3 ? names.join(' or ') : "each cohort's cheap route";
}
