import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { isStoreUnavailable } from '../storage/errors.js';
import type { Store } from '../storage/store.js';
import { HttpError, badRequest, notFound, unavailable } from '../server/http-error.js';
import { closestName } from '../server/edit-distance.js';
import { TimeArgumentError, parseInstant, resolveWindow } from '../server/time.js';
import type { Finding } from './detectors.js';
import type { Evaluator } from './evaluator.js';
import type { ChannelStats, ChannelTestResult } from './notifier.js';
import type { AlertState, EventKind } from './lifecycle.js';
import type { Resolution } from './message.js';
import type { Rule } from './rules.js';
import {
  SilenceRequestError,
  isOver,
  newSilence,
  scopeOf,
  silenceOf,
  silenceRef,
  silenceRequest,
} from './silences.js';
import type { Silence } from './silences.js';
import type { TimeWindow } from '../server/time.js';
import { buildReport } from './report.js';
import { filterList } from './filter-list.js';
import { monitorKey } from './series.js';
import { buildTimeseries, seriesOptionsOf } from './timeseries.js';
import { DEFAULT_ADVICE, buildAdvice } from './advice.js';
import {
  DEFAULT_GATE,
  GateCohortError,
  GateEmptyRefError,
  GateRefError,
  distinctRefs,
  MAX_SUCCESS_DROP_LIMIT,
  parseRef,
  runGate,
} from './gate.js';
import type { GateOptions, GateRef } from './gate.js';

/** The analyzer's HTTP API: `GET /api/v1/report`, `GET /api/v1/timeseries`, alerts and evaluation. */
export interface ApiRoutesOptions {
  store: Store;
  now: () => Date;
  /**
   * Resolves once the spans acknowledged so far are stored (bounded; see server/app.ts), so a
   * query right after an export sees them: a CI job gates on the eval it just sent.
   */
  settle?: () => Promise<void>;
}

const windowFields = {
  from: z.string().optional(),
  to: z.string().optional(),
  window: z.string().optional(),
};
const windowQuery = z.object(windowFields).strict();

const reportQuery = z
  .object({
    ...windowFields,
    cohort: filterList,
    route: filterList,
    service: filterList,
    policy: filterList,
  })
  .strict();

const WINDOW_USAGE =
  'Use ?window=24h (s, m, h, d, w) or ?from=<date or ISO instant>&to=<date or ISO instant>.';

function parseQuery<T>(schema: z.ZodType<T>, query: unknown, usage: string): T {
  const parsed = schema.safeParse(query);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw badRequest(
      `invalid query: ${issue?.path.join('.') || (issue?.code === 'unrecognized_keys' ? issue.keys.join(', ') : 'query')}: ${issue?.message ?? 'invalid'}. ${usage}`,
    );
  }
  return parsed.data;
}

/** The window a query names, or a 400 that says how to name one. */
export function windowOf(query: unknown, now: Date): TimeWindow {
  return resolveQueryWindow(parseQuery(windowQuery, query, WINDOW_USAGE), now);
}

function resolveQueryWindow(
  window: { from?: string | undefined; to?: string | undefined; window?: string | undefined },
  now: Date,
): TimeWindow {
  try {
    return resolveWindow(window, now);
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
    const query = parseQuery(
      reportQuery,
      request.query,
      `${WINDOW_USAGE} Filter with cohort, route, service, policy (repeated or comma-separated).`,
    );
    const window = resolveQueryWindow(query, now);
    await options.settle?.();
    return readStore(() =>
      buildReport(options.store, window, now, {
        cohorts: query.cohort,
        routes: query.route,
        services: query.service,
        policies: query.policy,
      }),
    );
  });
};

/** `GET /api/v1/alerts` and `POST /api/v1/evaluate`. */
export interface AlertRoutesOptions {
  evaluator: Evaluator;
  notifierStats?: () => Record<string, ChannelStats>;
  /** A test message to every configured channel; absent when none is configured. */
  testChannels?: () => Promise<ChannelTestResult[]>;
  /** Waits until the spans acknowledged so far are stored (read your writes), as the reads do. */
  settle?: () => Promise<void>;
}

/** The answer of `GET /api/v1/alerts`: what the CLI's `alerts` command and the dashboard read. */
export interface AlertsAnswer {
  /** The last evaluation of this process; null before the first. */
  evaluatedAt: string | null;
  /** Alerts not inactive (pending, firing, resolved), latest change first. */
  alerts: {
    fingerprint: string;
    rule: string;
    kind: Finding['kind'];
    severity: Rule['severity'];
    cohort: string;
    route: string;
    detail: string;
    state: AlertState;
    since: string;
    incident: number;
    lastEvaluatedAt: string;
    lastNotifiedAt: string | null;
    /**
     * A firing alert on hold (its monitor cannot judge it: no tasks, too few): when the hold
     * began. Null while it is judged, and in any other state.
     */
    heldSince: string | null;
    /**
     * A resolved alert: how its incident ended, `recovered` (its monitor found it well again) or
     * `closed_without_verdict` (held too long, or its rule disabled, removed or narrowed). Null in
     * any other state.
     */
    resolution: Resolution | null;
    /**
     * What the alert is about now; for a resolved alert, how its incident ended (the summary of
     * the finding that closed it, which later evaluations do not replace).
     */
    summary: string;
    /**
     * A firing alert: the summary of the finding it fired on (held, its `summary` says only why it
     * cannot be judged now). Null in any other state.
     */
    firedSummary: string | null;
    /** The latest finding of its monitor. */
    finding: Finding;
    /** A silence in force that matches it: its messages are not sent. Null otherwise. */
    silenced: { id: string; until: string } | null;
  }[];
  /** The silences in force now, or to come (analyzer/silences.ts). */
  silences: SilenceView[];
  /**
   * The cohort × routes the last evaluation could judge by no rule, for too little data (a small
   * cohort below `minTasks` in the window, a new one without a baseline): nothing can alert on
   * them, and the reason says what is missing. Open alerts are not listed here. Sorted.
   */
  unjudged: { cohort: string; route: string; reason: string }[];
  /**
   * The cohort × routes some rule judged whose success rate none could (too few outcomes in the
   * window, outcomes still coming in, no baseline): a drop in it raises nothing while the board
   * looks watched. Open alerts are not listed here. Sorted.
   */
  successUnjudged: { cohort: string; route: string; reason: string }[];
  /** The latest transitions, newest first. */
  history: {
    at: string;
    kind: EventKind;
    fingerprint: string;
    incident: number;
    rule: string;
    cohort: string;
    route: string;
    detail: string;
    notified: boolean;
    /** A `resolved` transition: how the incident ended, as the alert's `resolution`; else null. */
    resolution: Resolution | null;
    /** A transition a silence kept from the channels: which silence, until when. */
    silenced: { id: string; until: string } | null;
    title: string;
    summary: string;
  }[];
  /** Each configured channel's delivery counts since this process started; empty with none. */
  channels: Record<string, ChannelStats>;
  /**
   * Alert messages each channel gave up in the last 7 days, from the deliveries table (the
   * channels' counts above start with the process): `refused` by the endpoint, `expired` past
   * the look-back.
   */
  givenUp: { channel: string; status: 'refused' | 'expired'; alerts: number; latest: string }[];
}

/** A silence as the API answers it. */
export interface SilenceView {
  id: string;
  cohort: string;
  route: string;
  rule: string;
  /** What it matches, in words: "cohort extraction × every route × every rule". */
  scope: string;
  startsAt: string;
  endsAt: string;
  comment: string;
  createdAt: string;
}

const silenceView = (s: Silence): SilenceView => ({
  id: s.id,
  cohort: s.cohort,
  route: s.route,
  rule: s.ruleId,
  scope: scopeOf(s),
  startsAt: new Date(s.startsAt).toISOString(),
  endsAt: new Date(s.endsAt).toISOString(),
  comment: s.comment,
  createdAt: new Date(s.createdAt).toISOString(),
});

/** A number in a query string; `?x=` (empty) is refused rather than read as 0. */
const queryNumber = (schema: z.ZodNumber) =>
  z
    .string()
    .trim()
    .min(1, 'empty: give a number, or leave the parameter out')
    .transform(Number)
    .pipe(schema);

const alertsQuery = z
  .object({
    state: z.enum(['pending', 'firing', 'resolved', 'all']).optional(),
    history: queryNumber(z.number().int().min(0).max(1000)).optional(),
    cohort: filterList,
    route: filterList,
  })
  .strict();

/** The shortest time between two test messages (`POST /api/v1/channels/test`). */
const TEST_EVERY_MS = 10_000;

/** How far back `GET /api/v1/alerts` lists the messages the channels gave up. */
const GIVEN_UP_SHOWN_MS = 7 * 86_400_000;

/** `?ended=true` lists the silences that ended in the last ENDED_SHOWN_MS too. */
const silencesQuery = z.object({ ended: z.enum(['true', 'false']).optional() }).strict();
const ENDED_SHOWN_MS = 7 * 86_400_000;

const evaluateQuery = z
  .object({ at: z.string().optional(), dryRun: z.enum(['true', 'false']).optional() })
  .strict();

/**
 * How a resolved incident ended, from the finding that resolved it: a recovery needs a verdict.
 * The same rule as the evaluator's message (`resolution`), which events stored before it lack.
 */
const resolutionOf = (closing: Finding): Resolution =>
  closing.status === 'insufficient_data' ? 'closed_without_verdict' : 'recovered';

/**
 * The cohort × routes of `findings` that no rule could judge (no finding ran a test: each is
 * `insufficient_data`, or `ok` with no statistic, as a reason shift among too few fallbacks to
 * matter), with the reason of the success-rate rule's finding (the one every cohort × route has
 * by default), else of the first. Those with an alert open are left out: they are listed as
 * alerts. A route with no baseline at all was left off the list by that one `ok`.
 */
export function unjudgedOf(
  findings: readonly Finding[],
  open: ReadonlySet<string>,
): AlertsAnswer['unjudged'] {
  const monitors = new Map<
    string,
    { cohort: string; route: string; reason: string; judged: boolean }
  >();
  for (const f of findings) {
    const key = monitorKey(f.cohort, f.route);
    let entry = monitors.get(key);
    if (!entry) {
      entry = { cohort: f.cohort, route: f.route, reason: f.summary, judged: false };
      monitors.set(key, entry);
    }
    if (f.status !== 'insufficient_data' && f.statistic !== null) entry.judged = true;
    else if (f.kind === 'success_rate_drop' && f.detail === '') entry.reason = f.summary;
  }
  return [...monitors.entries()]
    .filter(([key, m]) => !m.judged && !open.has(key))
    .map(([, m]) => ({ cohort: m.cohort, route: m.route, reason: m.reason }))
    .sort((a, b) => a.cohort.localeCompare(b.cohort) || a.route.localeCompare(b.route));
}

/**
 * The cohort × routes of `findings` judged by some rule whose success-rate rule had no verdict
 * (unjudgedOf lists those no rule judged), with that finding's reason. Those with an alert open
 * are left out.
 */
export function successUnjudgedOf(
  findings: readonly Finding[],
  open: ReadonlySet<string>,
  unjudgedList: AlertsAnswer['unjudged'] = unjudgedOf(findings, open),
): AlertsAnswer['successUnjudged'] {
  const unjudged = new Set(unjudgedList.map((u) => monitorKey(u.cohort, u.route)));
  // Per cohort × route: listed when every success-rate rule there had no verdict (a target SLO
  // that judged it beside a default rule without a baseline yet: judged).
  const monitors = new Map<
    string,
    { cohort: string; route: string; reason: string; judged: boolean }
  >();
  for (const f of findings) {
    if (f.kind !== 'success_rate_drop' || f.detail !== '') continue;
    const key = monitorKey(f.cohort, f.route);
    if (open.has(key) || unjudged.has(key)) continue;
    const entry = monitors.get(key) ?? {
      cohort: f.cohort,
      route: f.route,
      reason: f.summary,
      judged: false,
    };
    if (f.status !== 'insufficient_data') entry.judged = true;
    monitors.set(key, entry);
  }
  return [...monitors.values()]
    .filter((m) => !m.judged)
    .map(({ cohort, route, reason }) => ({ cohort, route, reason }))
    .sort((a, b) => a.cohort.localeCompare(b.cohort) || a.route.localeCompare(b.route));
}

/**
 * What a new silence names that the last evaluation watched nowhere: a mistyped cohort would
 * confirm a silence that matches nothing, while the alert it was meant for keeps paging. Said,
 * not refused: a silence may be set ahead of a cohort's first tasks. Nothing before the first
 * evaluation, which is what it is compared with.
 */
export function unwatchedNames(silence: Silence, findings: readonly Finding[]): string[] {
  if (findings.length === 0) return [];
  const warnings: string[] = [];
  for (const [matcher, name] of [
    ['cohort', silence.cohort],
    ['route', silence.route],
  ] as const) {
    if (name === '') continue;
    const watched = new Set(findings.map((f) => f[matcher]));
    if (watched.has(name)) continue;
    const near = closestName(name, [...watched].filter((n) => n !== '').sort());
    warnings.push(
      `no ${matcher} named ${JSON.stringify(name)} was watched at the last evaluation` +
        (near === undefined ? '' : ` (did you mean ${JSON.stringify(near)}?)`) +
        ': the silence matches no alert now',
    );
  }
  return warnings;
}

const SILENCE_USAGE =
  'Send {"cohort": "…", "route": "…", "rule": "…" (any left out matches any; "all": true instead of all three), "for": "4h" or "until": "<date or ISO instant>", "starts": "<instant>" (optional, now), "comment": "who and why"}.';

/** How far past now an evaluation's `at` may be: a client's clock a little ahead. */
const FUTURE_SLACK_MS = 60_000;

export const alertRoutes: FastifyPluginAsync<AlertRoutesOptions> = async (app, options) => {
  const { evaluator } = options;
  app.get('/api/v1/alerts', async (request): Promise<AlertsAnswer> => {
    const parsed = alertsQuery.safeParse(request.query);
    if (!parsed.success) {
      throw badRequest(
        `invalid query: ${parsed.error.issues[0]?.message ?? 'invalid'}. Use ?state=pending|firing|resolved|all, ?history=N (0 to 1000), ?cohort=C and ?route=R.`,
      );
    }
    const wanted = parsed.data.state ?? 'all';
    const now = Date.now();
    const [states, history, silences, givenUp] = await readStore(() =>
      Promise.all([
        evaluator.alerts.states(),
        evaluator.alerts.history(parsed.data.history ?? 100, undefined, {
          cohorts: parsed.data.cohort,
          routes: parsed.data.route,
        }),
        evaluator.alerts.silences(now),
        evaluator.alerts.givenUp(now - GIVEN_UP_SHOWN_MS),
      ]),
    );
    const severity = new Map(evaluator.rules.rules.map((r) => [r.id, r.severity]));
    const named = (names: readonly string[], name: string) =>
      names.length === 0 || names.includes(name);
    const listed = states
      .filter(
        (s) =>
          s.state !== 'inactive' &&
          (wanted === 'all' || s.state === wanted) &&
          named(parsed.data.cohort, s.cohort) &&
          named(parsed.data.route, s.route),
      )
      .sort(
        (a, b) =>
          b.since - a.since ||
          a.cohort.localeCompare(b.cohort) ||
          a.route.localeCompare(b.route) ||
          a.ruleId.localeCompare(b.ruleId) ||
          a.fingerprint.localeCompare(b.fingerprint),
      );
    // An alert whose rule is gone (removed from the rules file) keeps the severity it was sent
    // with, as its closing message does, not a default.
    const sentWith = new Map(
      await Promise.all(
        listed
          .filter((s) => !severity.has(s.ruleId))
          .map(
            async (s) =>
              [s.fingerprint, await evaluator.alerts.lastSeverity(s.fingerprint)] as const,
          ),
      ),
    );
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    const open = new Set(
      states
        .filter((s) => s.state === 'firing' || s.state === 'pending')
        .map((s) => monitorKey(s.cohort, s.route)),
    );
    const findings = evaluator.lastResult?.findings ?? [];
    const unjudged = unjudgedOf(findings, open);
    return {
      evaluatedAt: evaluator.lastResult?.evaluatedAt ?? null,
      unjudged,
      successUnjudged: successUnjudgedOf(findings, open, unjudged),
      alerts: listed.map((s) => ({
        fingerprint: s.fingerprint,
        rule: s.ruleId,
        kind: s.finding.kind,
        severity: severity.get(s.ruleId) ?? sentWith.get(s.fingerprint) ?? 'warning',
        cohort: s.cohort,
        route: s.route,
        detail: s.detail,
        state: s.state,
        since: new Date(s.since).toISOString(),
        incident: s.incident,
        lastEvaluatedAt: new Date(s.evaluatedAt).toISOString(),
        lastNotifiedAt: iso(s.lastNotifiedAt),
        heldSince: s.state === 'firing' ? iso(s.heldSince) : null,
        resolution: s.state === 'resolved' ? s.resolution : null,
        summary: (s.state === 'resolved' ? s.resolvedSummary : null) ?? s.finding.summary,
        firedSummary: s.state === 'firing' ? (s.firedSummary ?? null) : null,
        finding: s.finding,
        silenced: silenceRef(silenceOf(silences, s, now)),
      })),
      silences: silences.map(silenceView),
      history: history.map((e) => ({
        at: new Date(e.at).toISOString(),
        kind: e.kind,
        fingerprint: e.fingerprint,
        incident: e.incident,
        rule: e.ruleId,
        cohort: e.cohort,
        route: e.route,
        detail: e.detail,
        notified: e.notify,
        resolution:
          e.kind === 'resolved' ? (e.message.resolution ?? resolutionOf(e.message.finding)) : null,
        silenced: e.message.silenced ?? null,
        title: e.message.title,
        summary: e.message.finding.summary,
      })),
      channels: options.notifierStats?.() ?? {},
      givenUp: givenUp.map((g) => ({ ...g, latest: new Date(g.latest).toISOString() })),
    };
  });

  app.get('/api/v1/silences', async (request): Promise<{ silences: SilenceView[] }> => {
    const query = parseQuery(
      silencesQuery,
      request.query,
      'Use ?ended=true to list those ended in the last 7 days too.',
    );
    const now = Date.now();
    const silences = await readStore(() =>
      evaluator.alerts.silences(query.ended === 'true' ? now - ENDED_SHOWN_MS : now),
    );
    return { silences: silences.map(silenceView) };
  });

  app.post('/api/v1/silences', async (request, reply) => {
    const parsed = silenceRequest.safeParse(request.body ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw badRequest(
        `invalid silence: ${issue?.path.join('.') || (issue?.code === 'unrecognized_keys' ? issue.keys.join(', ') : 'body')}: ${issue?.message ?? 'invalid'}. ${SILENCE_USAGE}`,
      );
    }
    let silence: Silence;
    try {
      silence = newSilence(
        parsed.data,
        Date.now(),
        evaluator.rules.rules.map((r) => r.id),
      );
    } catch (error) {
      if (error instanceof SilenceRequestError)
        throw badRequest(`invalid silence: ${error.message}. ${SILENCE_USAGE}`);
      throw error;
    }
    await readStore(() => evaluator.alerts.saveSilence(silence));
    void reply.code(201);
    const warnings = unwatchedNames(silence, evaluator.lastResult?.findings ?? []);
    return { silence: silenceView(silence), ...(warnings.length > 0 ? { warnings } : {}) };
  });

  app.delete<{ Params: { id: string } }>('/api/v1/silences/:id', async (request) => {
    const now = Date.now();
    const found = await readStore(() => evaluator.alerts.silence(request.params.id));
    if (!found)
      throw notFound(
        `no silence ${JSON.stringify(request.params.id)}: \`routewatch silence list\` (GET /api/v1/silences) lists them`,
      );
    // Ended already: said as it is, nothing written.
    if (isOver(found, now)) return { silence: silenceView(found), ended: false };
    // One to come is called off: it ends, and starts, now.
    const ended = { ...found, startsAt: Math.min(found.startsAt, now), endsAt: now };
    await readStore(() => evaluator.alerts.saveSilence(ended));
    return { silence: silenceView(ended), ended: true };
  });

  // A test message to each alert channel, now: whether the endpoint takes a message from here.
  // One at a time, and one per TEST_EVERY_MS: a loop (or a page reloaded) must not post to the
  // team's Slack over and over.
  let lastTestAt = -Infinity;
  app.post('/api/v1/channels/test', async () => {
    if (!options.testChannels)
      throw new HttpError(
        409,
        'FAILED_PRECONDITION',
        'no alert channel is configured: set ROUTEWATCH_SLACK_WEBHOOK_URL or ROUTEWATCH_WEBHOOK_URL, restart routewatch, and test again',
      );
    const wait = lastTestAt + TEST_EVERY_MS - Date.now();
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      throw new HttpError(
        429,
        'RESOURCE_EXHAUSTED',
        `a test message was sent less than ${TEST_EVERY_MS / 1000} s ago: test again in ${seconds} s`,
        { retryAfterSeconds: seconds },
      );
    }
    lastTestAt = Date.now();
    return { channels: await options.testChannels() };
  });

  app.post('/api/v1/evaluate', async (request) => {
    const parsed = evaluateQuery.safeParse(request.query);
    if (!parsed.success)
      throw badRequest(
        'invalid query: use ?at=<date or ISO instant> and ?dryRun=true|false, or nothing',
      );
    let at = new Date();
    if (parsed.data.at !== undefined) {
      try {
        at = parseInstant(parsed.data.at);
      } catch (error) {
        throw badRequest((error as Error).message);
      }
      // An evaluation records the alerts' transitions at its time: one in the future would date
      // them there, and the alert history with them.
      if (at.getTime() > Date.now() + FUTURE_SLACK_MS) {
        throw badRequest(
          `at ${at.toISOString()} is in the future: evaluate now (no at) or at a past time (a replay)`,
        );
      }
    }
    const dryRun = parsed.data.dryRun === 'true';
    // Judged on every span acknowledged before the request, as the report would read them.
    await options.settle?.();
    const result = await readStore(() => evaluator.evaluate(at, undefined, { dryRun }));
    return {
      evaluatedAt: result.evaluatedAt,
      dryRun,
      firing: result.firing,
      firingAlerts: result.firingAlerts,
      // A dry run of a past time: the alert state it stepped was rebuilt from the history.
      replayedState: result.replayedState,
      transitions: result.events,
      // A rule naming a cohort or route no task of the window has: a typo watches nothing.
      warnings: result.warnings,
      findings: result.findings.map((f) => ({
        rule: f.ruleId,
        cohort: f.cohort,
        route: f.route,
        detail: f.detail,
        status: f.status,
        summary: f.summary,
        statistic: f.statistic,
        threshold: f.threshold,
        // What the monitor was judged against: held at an incident's start, without resolved
        // incidents, a target (docs/rules.md, "Held baseline").
        baseline: f.baseline.description,
      })),
    };
  });
};

/** `GET /api/v1/compare` (the gate, canaries) and `GET /api/v1/advice`. */
export interface DecisionRoutesOptions extends ApiRoutesOptions {
  /** The rules' `evaluation.largeRoute`: the route advice weighs the cheaper ones against. */
  largeRoute?: () => string;
}

/** A fraction of 1, like every rate of the API; the CLI's --max-success-drop takes points. */
const successDrop = queryNumber(
  z
    .number()
    .min(0, 'a fraction of 1 (0.02 is two percentage points), not negative')
    .max(
      MAX_SUCCESS_DROP_LIMIT,
      `a fraction of 1 (0.02 is two percentage points), at most ${MAX_SUCCESS_DROP_LIMIT}`,
    ),
).optional();

const compareQuery = z
  .object({
    baseline: z.string(),
    candidate: z.string(),
    maxSuccessDrop: successDrop,
    minCases: queryNumber(z.number().int().min(1)).optional(),
    confidence: queryNumber(z.number().gt(0.5).lt(1)).optional(),
    cohort: filterList,
  })
  .strict();

const adviceQuery = z
  .object({
    ...windowFields,
    cohort: filterList,
    service: filterList,
    policy: filterList,
    maxSuccessDrop: successDrop,
    minCases: queryNumber(z.number().int().min(1)).optional(),
  })
  .strict();

export const decisionRoutes: FastifyPluginAsync<DecisionRoutesOptions> = async (app, options) => {
  app.get('/api/v1/compare', async (request) => {
    const query = parseQuery(
      compareQuery,
      request.query,
      'Use ?baseline=<ref>&candidate=<ref>, each eval:<run>, policy:<version> or window:<from>/<to>; optional maxSuccessDrop (0.02), minCases (200), confidence, cohort.',
    );
    let baseline: GateRef;
    let candidate: GateRef;
    try {
      const now = options.now();
      baseline = parseRef(query.baseline, now);
      candidate = parseRef(query.candidate, now);
      distinctRefs(baseline, candidate);
    } catch (error) {
      if (error instanceof GateRefError) throw badRequest(error.message);
      throw error;
    }
    const gate: GateOptions = {
      maxSuccessDrop: query.maxSuccessDrop ?? DEFAULT_GATE.maxSuccessDrop,
      minCases: query.minCases ?? DEFAULT_GATE.minCases,
      ...(query.confidence !== undefined ? { confidence: query.confidence } : {}),
    };
    await options.settle?.();
    try {
      return await readStore(() => runGate(options.store, baseline, candidate, gate, query.cohort));
    } catch (error) {
      if (error instanceof GateCohortError || error instanceof GateEmptyRefError)
        throw badRequest(error.message);
      throw error;
    }
  });

  app.get('/api/v1/advice', async (request) => {
    const query = parseQuery(
      adviceQuery,
      request.query,
      `${WINDOW_USAGE} Optional maxSuccessDrop, minCases; filter with cohort, service, policy (repeated or comma-separated).`,
    );
    const now = options.now();
    const window = resolveQueryWindow(
      { ...query, window: query.window ?? (query.from ? undefined : '7d') },
      now,
    );
    await options.settle?.();
    return readStore(() =>
      buildAdvice(
        options.store,
        window,
        {
          ...DEFAULT_ADVICE,
          ...(options.largeRoute ? { largeRoute: options.largeRoute() } : {}),
          ...(query.maxSuccessDrop !== undefined ? { maxSuccessDrop: query.maxSuccessDrop } : {}),
          ...(query.minCases !== undefined ? { minCases: query.minCases } : {}),
        },
        { cohorts: query.cohort, services: query.service, policies: query.policy },
      ),
    );
  });

  // The report's metrics per time bucket (v_timeseries_metrics), for the dashboard's charts.
  app.get('/api/v1/timeseries', async (request) => {
    const now = options.now();
    const { bucket, cohort, route, service, policy, ...windowPart } = (request.query ??
      {}) as Record<string, unknown>;
    const window = windowOf(windowPart, now);
    const series = seriesOptionsOf({ bucket, cohort, route, service, policy }, window);
    return readStore(() => buildTimeseries(options.store, window, series, now));
  });
};
