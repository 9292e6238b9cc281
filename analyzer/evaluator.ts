import type { Store } from '../storage/store.js';
import { AlertStore, incidentKey } from './alert-store.js';
import { dashboardUrl } from './dashboard-link.js';
import { detect, mixRate, mixTotals, restMixOf } from './detectors.js';
import type { Finding, MixRate, MixTotals, MonitorInput } from './detectors.js';
import { evidenceFrom, fingerprintOf, heldBaselineEnd, retire, step } from './lifecycle.js';
import type { AlertEvent, AlertRecord, Step } from './lifecycle.js';
import { formatDuration, utcMinute } from '../server/time.js';
import { titleOf, titledRule, whatOf } from './message.js';
import type { AlertMessage, CostOnRoute, OtherAlert, ReasonShare, Resolution } from './message.js';
import type { Notifier } from './notifier.js';
import { silenceOf, silenceRef } from './silences.js';
import type { Silence } from './silences.js';
import { SEVERITY_RANK, watches } from './rules.js';
import type { BaselineRef, Rule, RuleSet } from './rules.js';
import {
  addCounts,
  aggregateCounts,
  clauseBytes,
  bucketedCounts,
  emptyCounts,
  failureReasons,
  knownOutcomeSums,
  monitorKey,
} from './series.js';
import type {
  AggregateCounts,
  BucketedCounts,
  ExcludedSpan,
  RouteReach,
  TaskCounts,
} from './series.js';
import { costPerSuccess, nonePriced } from './stats.js';
import { OutageLog } from '../storage/outage-log.js';
import { closestName } from '../server/edit-distance.js';
import type { JobLog } from '../storage/outage-log.js';

/**
 * One evaluation: read the current window in buckets and each baseline the rules need, run every
 * rule on every cohort × route it watches (stats.ts, detectors.ts), step each alert's lifecycle
 * (lifecycle.ts), store events then states (alert-store.ts), and wake the notifier. The periodic
 * job runs it every ROUTEWATCH_EVALUATE_EVERY inside `routewatch start`; `POST /api/v1/evaluate`
 * and `routewatch evaluate` run one now.
 */

export interface EvaluationResult {
  evaluatedAt: string;
  findings: Finding[];
  /** Transitions this evaluation made. */
  events: {
    fingerprint: string;
    kind: AlertEvent['kind'];
    ruleId: string;
    cohort: string;
    route: string;
    detail: string;
    summary: string;
  }[];
  /** Alerts firing after it. */
  firing: number;
  /** Those alerts, oldest first: which rule, where, and since when (ISO). */
  firingAlerts: { ruleId: string; cohort: string; route: string; detail: string; since: string }[];
  /** A dry run: the transitions are what it would have made; nothing was stored or notified. */
  dryRun: boolean;
  /**
   * A dry run of a past time that stepped alerts rebuilt from their history, as they stood then:
   * says so, and what the history does not hold. Null when every alert was as the live state has
   * it (none evaluated since that time).
   */
  replayedState: string | null;
  /** Cohorts and routes the rules name that no task of the current window has (unmatchedRuleNames). */
  warnings: string[];
}

export interface EvaluatorOptions {
  store: Store;
  rules: RuleSet;
  notifier?: Notifier | undefined;
  /** Base URL for links in messages (the dashboard and report). */
  publicUrl: string;
  log: JobLog;
}

interface Group {
  cohort: string;
  route: string;
}

/** A trailing baseline held at an open incident's start (lifecycle.ts heldBaselineEnd). */
interface HeldBaseline {
  endMs: number;
  windowMs: number;
  byRoute: Map<string, TaskCounts>;
  p95: Map<string, number | null>;
  totals: TaskCounts;
}

/**
 * How this evaluation's trailing baselines step around incidents (#holds): the open ones hold
 * them at their start, the resolved ones are left out of them.
 */
interface Holds {
  /** The held baseline of one monitor (rule with a trailing baseline, cohort × route, detail). */
  of(rule: Rule, cohort: string, route: string, detail: string): HeldBaseline | undefined;
  /** Why it is held when not by its own incident: the rule of the route's incident that holds it. */
  heldBy(rule: Rule, cohort: string, route: string, detail: string): string | undefined;
  /** The cohort × routes a hold applies to (for the p95 rules' thresholds). */
  routes: ReadonlySet<string>;
  /**
   * What a trailing baseline of `windowMs` ending at `endMs` leaves out of its read and reads
   * further back for it (trailingRead over the resolved incidents): the one source of both the
   * read and its description.
   */
  around(endMs: number, windowMs: number): TrailingRead;
}

/** How long the read of a held baseline (a range wholly in the past) is reused. */
const HELD_REFRESH_MS = 10 * 60_000;

const sum = (list: readonly TaskCounts[]) => list.reduce((a, b) => addCounts(a, b), emptyCounts());

/** Adds up aggregates per cohort × route (over policy versions). */
function byRoute(rows: readonly AggregateCounts[]): Map<string, TaskCounts> {
  const out = new Map<string, TaskCounts>();
  for (const row of rows) {
    const key = monitorKey(row.cohort, row.route);
    out.set(key, addCounts(out.get(key) ?? emptyCounts(), row.counts));
  }
  return out;
}

/** Adds up bucket series per cohort × route, optionally of one policy version only. */
function seriesByRoute(
  rows: readonly BucketedCounts[],
  buckets: number,
  version?: (cohort: string) => string | undefined,
): Map<string, TaskCounts[]> {
  const out = new Map<string, TaskCounts[]>();
  for (const row of rows) {
    if (version) {
      const wanted = version(row.cohort);
      if (wanted === undefined || row.policyVersion !== wanted) continue;
    }
    const key = monitorKey(row.cohort, row.route);
    const list = out.get(key) ?? Array.from({ length: buckets }, emptyCounts);
    row.buckets.forEach((b, i) => addCounts(list[i]!, b));
    out.set(key, list);
  }
  return out;
}

const shares = (counts: Record<string, number>, total: number): ReasonShare[] =>
  Object.entries(counts)
    .map(([reason, tasks]) => ({ reason, tasks, share: total > 0 ? tasks / total : 0 }))
    .sort((a, b) => b.tasks - a.tasks || a.reason.localeCompare(b.reason));

export class Evaluator {
  readonly alerts: AlertStore;
  #timer: NodeJS.Timeout | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  #last: EvaluationResult | undefined;
  /** Warnings logged already: each once per process. */
  #warned = new Set<string>();
  /** Held baselines' reads, kept across evaluations (see HELD_REFRESH_MS). */
  readonly #heldCache = new Map<string, { read: Promise<HeldBaseline>; readAtMs: number }>();
  /** Evaluations run, those that failed, and scheduled ones skipped while one still ran. */
  readonly stats = { evaluations: 0, failedEvaluations: 0, skippedEvaluations: 0, firing: 0 };

  /** The scheduled evaluations' failures, an outage of the store said once. */
  readonly #failures: OutageLog;

  constructor(private readonly options: EvaluatorOptions) {
    this.alerts = new AlertStore(options.store);
    this.#failures = new OutageLog(
      options.log,
      'alert evaluation',
      'no alert is raised or resolved meanwhile, and the next evaluation once it answers judges the data stored since',
    );
  }

  get rules(): RuleSet {
    return this.options.rules;
  }

  /** Where links in messages point (ROUTEWATCH_PUBLIC_URL, else where routewatch listens). */
  get publicUrl(): string {
    return this.options.publicUrl;
  }

  get lastResult(): EvaluationResult | undefined {
    return this.#last;
  }

  /** Evaluates every `everyMs` until stop(); a failed evaluation is logged and the next one runs. */
  start(everyMs: number): void {
    if (everyMs <= 0 || this.#timer) return;
    // A scheduled evaluation still running when the next is due makes that one skip: queued
    // behind it, runs would pile up without end on a store slower than the interval, and a
    // shutdown would wait for all of them.
    let scheduledRunning = false;
    const tick = () => {
      if (scheduledRunning) {
        this.stats.skippedEvaluations++;
        return;
      }
      scheduledRunning = true;
      this.evaluate()
        .then(
          () => this.#failures.succeeded(),
          (error: unknown) =>
            this.#failures.failed(
              error,
              {},
              'alert evaluation failed; the next one runs on schedule',
            ),
        )
        .finally(() => {
          scheduledRunning = false;
        });
    };
    this.#timer = setInterval(tick, everyMs);
    this.#timer.unref();
    setImmediate(tick);
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#chain.catch(() => undefined);
  }

  /**
   * One evaluation at `at` (default now), with the configured rules or others (the demo moves its
   * window as it runs). Evaluations never overlap: they run one after another.
   */
  evaluate(
    at: Date = new Date(),
    rules: RuleSet = this.options.rules,
    options: { dryRun?: boolean } = {},
  ): Promise<EvaluationResult> {
    const dryRun = options.dryRun ?? false;
    const run = this.#chain
      .catch(() => undefined)
      .then(() => this.#evaluate(at, rules, dryRun))
      .then(
        (result) => {
          if (dryRun) return result;
          this.stats.evaluations++;
          this.stats.firing = result.firing;
          return result;
        },
        (error: unknown) => {
          if (!dryRun) {
            this.stats.evaluations++;
            this.stats.failedEvaluations++;
          }
          throw error;
        },
      );
    this.#chain = run;
    return run;
  }

  async #evaluate(at: Date, ruleSet: RuleSet, dryRun: boolean): Promise<EvaluationResult> {
    const { rules, evaluation } = ruleSet;
    const { store } = this.options;
    const active = rules.filter((r) => r.enabled);
    const now = at.getTime();
    const from = new Date(now - evaluation.horizonMs);
    const bucketMs = Math.max(1, Math.floor(evaluation.horizonMs / evaluation.buckets));
    const callBudget = active.find((r) => r.kind === 'loop_rate_rise')?.callBudget ?? 10;

    // The alerts as the last evaluation left them: open incidents hold their routes' trailing
    // baselines, resolved ones are left out of them (#holds), and each monitor tests only the
    // evidence after its last incident resolved (lifecycle.ts).
    const previous = new Map((await this.alerts.states()).map((r) => [r.fingerprint, r]));
    // A dry run of a past time steps the alerts as they stood then: an alert evaluated since is
    // rebuilt from its transitions before that time (alert-store.ts statesBefore). Stepped from
    // today's state, an incident that fired before then and resolved after read as resolved, and
    // the replay said "0 alert(s) firing" and raised it again as pending (audit #5).
    let replayedState: string | null = null;
    if (dryRun) {
      const since = [...previous.values()].filter((r) => r.evaluatedAt >= now);
      if (since.length > 0) {
        for (const record of since) previous.delete(record.fingerprint);
        const then = await this.alerts.statesBefore(
          now,
          since.map((r) => r.fingerprint),
        );
        for (const record of then) previous.set(record.fingerprint, record);
        replayedState =
          `alert state as of ${at.toISOString()} reconstructed from the alert history ` +
          `(${since.length} alert(s) evaluated since): states, incidents and messages as ` +
          'recorded; how many evaluations a pending alert had been degraded, or a firing one ' +
          'well or without a verdict, is not stored and is counted from its last transition, so ' +
          'the replay can fire, resolve or close an alert an evaluation or more later than it ' +
          'did (`routewatch alerts` lists what happened)';
      }
    }
    // Silences in force now (a replay: then) keep their alerts' messages unsent, below, and keep
    // a firing alert from holding the other rules' baselines of its route (#holds).
    const wallNow = Date.now();
    const silences = await this.alerts.silences(dryRun ? now : Math.min(now, wallNow));
    const held = await this.#holds([...previous.values()], rules, {
      now,
      fromMs: from.getTime(),
      bucketMs,
      callBudget,
      dryRun,
      silenced: (record) => silenceOf(silences, record, now) !== undefined,
    });
    // Baselines: one read per distinct range.
    const trailing = new Map<number, Promise<AggregateCounts[]>>();
    const trailingOf = (windowMs: number) => {
      let read = trailing.get(windowMs);
      if (!read) {
        read = aggregateCounts(store, new Date(from.getTime() - windowMs), from, {
          callBudget,
          byVersion: false,
          ...held.around(from.getTime(), windowMs),
        });
        trailing.set(windowMs, read);
      }
      return read;
    };
    const pinned = new Map<string, Promise<AggregateCounts[]>>();
    const pinnedOf = (name: string) => {
      let read = pinned.get(name);
      if (!read) {
        const range = ruleSet.baselines[name]!;
        read = aggregateCounts(store, range.from, range.to, { callBudget, byVersion: false });
        pinned.set(name, read);
      }
      return read;
    };
    const needsPolicy = active.some((r) => r.baseline.kind === 'previous_policy');
    // cheaper_than_large falls back to the large route's recent history without concurrent traffic.
    const lookbackRows = active.some(
      (r) => r.kind === 'cheaper_than_large' || r.baseline.kind === 'large_route',
    )
      ? await aggregateCounts(store, new Date(now - evaluation.policyLookbackMs), at, {
          callBudget,
          byVersion: false,
        })
      : [];
    const policyRows = needsPolicy
      ? await aggregateCounts(store, new Date(now - evaluation.policyLookbackMs), at, {
          callBudget,
          byVersion: true,
        })
      : [];

    const policyNow = currentPolicies(policyRows, from.getTime(), {
      fromMs: now - evaluation.policyLookbackMs,
      slackMs: bucketMs,
    });

    // Each p95 rule counts the tasks slower than its own baseline's p95 (one threshold map for all
    // would judge a pinned baseline by the trailing p95), so the current window is read once per
    // distinct p95 baseline: the first read serves every other rule too.
    const slowReads = new Map<
      string,
      { current: BucketedCounts[]; byRoute: Map<string, TaskCounts[]> }
    >();
    for (const rule of active) {
      if (rule.kind !== 'p95_regression' || slowReads.has(baselineKey(rule.baseline))) continue;
      const slowThresholds = new Map<string, number>();
      const rows = await this.#baselineRows(rule, trailingOf, pinnedOf, policyRows, policyNow);
      for (const row of rows) {
        if (row.p95LatencyMs !== null && !slowThresholds.has(monitorKey(row.cohort, row.route))) {
          slowThresholds.set(monitorKey(row.cohort, row.route), row.p95LatencyMs);
        }
      }
      // A monitor of these rules with a held baseline counts the tasks slower than its p95.
      const key = baselineKey(rule.baseline);
      for (const route of held.routes) {
        const [cohort, name] = route.split('\t') as [string, string];
        for (const r of active) {
          if (r.kind !== 'p95_regression' || baselineKey(r.baseline) !== key) continue;
          const p95 = held.of(r, cohort, name, '')?.p95.get(route);
          if (p95 !== null && p95 !== undefined) slowThresholds.set(route, p95);
        }
      }
      const read = await bucketedCounts(store, from, at, evaluation.buckets, {
        callBudget,
        slowThresholds,
      });
      slowReads.set(key, {
        current: read,
        byRoute: seriesByRoute(read, evaluation.buckets),
      });
    }
    const [first] = slowReads.values();
    const current =
      first?.current ?? (await bucketedCounts(store, from, at, evaluation.buckets, { callBudget }));
    const currentByRoute = first?.byRoute ?? seriesByRoute(current, evaluation.buckets);
    const warnings = unmatchedRuleNames(active, current);

    const inputs: MonitorInput[] = [];
    for (const rule of active) {
      const own =
        rule.kind === 'p95_regression' ? slowReads.get(baselineKey(rule.baseline)) : undefined;
      const ruleInputs = await this.#monitorsOf(rule, ruleSet, {
        current: own?.current ?? current,
        lookback: byRoute(lookbackRows),
        currentByRoute: own?.byRoute ?? currentByRoute,
        fromMs: from.getTime(),
        bucketMs,
        trailingOf,
        pinnedOf,
        policyRows,
        policyNow,
        held,
      });
      inputs.push(...ruleInputs);
    }
    for (const input of inputs) {
      const record = previous.get(
        fingerprintOf(input.rule.id, input.cohort, input.route, input.detail),
      );
      // As of the evaluated time: a replay of a time before the alert fired sees it as it was
      // then, not firing (the state's `since` is when it entered it).
      input.alertState =
        (record?.state === 'pending' || record?.state === 'firing') && record.since <= now
          ? record.state
          : null;
      input.evidenceFromMs = evidenceFrom(
        record,
        // A dry run of a past time sees the incidents of then, even those resolved since. A
        // recorded evaluation never reopens them: their evidence is spent.
        dryRun ? now : Infinity,
      );
    }
    const findings = inputs.map((input) => detect(input, evaluation));

    // Lifecycle: every finding, and every known alert with no finding this time (no data at all).
    // Silences in force now keep their alerts' messages unsent (recorded, notify = 0); such an
    // alert keeps the time it was last notified, so that its reminder is due once the silence ends.
    // A recorded evaluation's messages go out now: a replay of a past time (`--record`) is also
    // silenced by the silences in force now, not only by those of its time.
    const silenceAt = (alert: AlertRecord) =>
      silenceOf(silences, alert, now) ?? (dryRun ? undefined : silenceOf(silences, alert, wallNow));
    const silenced = new Map<string, Silence>();
    const silence = (result: Step, before: AlertRecord | undefined): Step => {
      const found = result.event?.notify ? silenceAt(result.record) : undefined;
      if (!found || !result.event) return result;
      // The end of an incident the channels were told of is sent under a silence too, so that no
      // channel is left showing an incident that is over (the notifier sends it only where the
      // firing went). Alertmanager keeps it back (its issue #226); a page left open is worse.
      if (result.event.kind === 'resolved') return result;
      // A firing alert kept quiet owes a message (lastNotifiedAt null): its reminder is due at the
      // first evaluation after the silence ends, whatever the route's shared clock says. A
      // reminder kept quiet is not worth a row each evaluation.
      if (result.event.kind === 'repeat')
        return {
          record: { ...result.record, seq: before?.seq ?? 0, lastNotifiedAt: null },
          event: undefined,
        };
      silenced.set(result.record.fingerprint, found);
      return {
        record: {
          ...result.record,
          lastNotifiedAt: result.event.kind === 'firing' ? null : (before?.lastNotifiedAt ?? null),
        },
        event: { ...result.event, notify: false },
      };
    };
    // The alerts of one cohort × route share a repeat: any message on the route lists the others
    // firing there, so it stands for their reminders (lifecycle.ts step).
    const routeNotified = new Map<string, number>();
    const noteNotified = (record: AlertRecord, at: number | null) => {
      const key = monitorKey(record.cohort, record.route);
      if (at !== null && at > (routeNotified.get(key) ?? -Infinity)) routeNotified.set(key, at);
    };
    for (const record of previous.values()) noteNotified(record, record.lastNotifiedAt);
    const stepOf = (record: AlertRecord | undefined, finding: Finding): Step => {
      // A firing alert never notified (it fired, or its reminder fell, in a silence) owes its own
      // message: the route's clock, kept by others, does not stand for it.
      const owed = record?.state === 'firing' && record.lastNotifiedAt === null;
      const result = silence(
        step(
          record,
          finding,
          now,
          evaluation,
          owed ? null : (routeNotified.get(monitorKey(finding.cohort, finding.route)) ?? null),
        ),
        record,
      );
      // A reminder does not advance the clock here: every alert due repeats in this pass, and the
      // route's one reminder is chosen after it (the most severe).
      if (result.event?.notify && result.event.kind !== 'repeat') noteNotified(result.record, now);
      return result;
    };
    const seen = new Set<string>();
    const steps: {
      record: AlertRecord;
      event: AlertEvent | undefined;
      input: MonitorInput | undefined;
    }[] = [];
    findings.forEach((finding, i) => {
      const fingerprint = fingerprintOf(
        finding.ruleId,
        finding.cohort,
        finding.route,
        finding.detail,
      );
      seen.add(fingerprint);
      const before = previous.get(fingerprint);
      // A monitor that never alerted and has nothing to say is not worth a row.
      if (!before && finding.status !== 'degraded') return;
      steps.push({ ...stepOf(before, finding), input: inputs[i] });
    });
    // The rules this process runs with decide whether a rule is gone: the demo evaluates a rule set
    // of its own, and must not close the alerts of the configured rules it leaves out.
    const configured = new Set(this.options.rules.rules.filter((r) => r.enabled).map((r) => r.id));
    for (const record of previous.values()) {
      if (seen.has(record.fingerprint) || record.state === 'inactive') continue;
      const rule = active.find((r) => r.id === record.ruleId);
      const closeWhy = !rule
        ? configured.has(record.ruleId)
          ? undefined
          : `rule "${record.ruleId}" is disabled or no longer in the rules file`
        : watchesMonitor(rule, record.cohort, record.route, evaluation.largeRoute)
          ? undefined
          : `rule "${record.ruleId}" no longer watches ${record.cohort} × ${record.route}`;
      if (closeWhy) {
        const retired = retire(record, now, `${closeWhy}: closed without a verdict`);
        const closed = retired && silence(retired, record);
        if (closed?.event?.notify) noteNotified(closed.record, now);
        if (closed) steps.push({ ...closed, input: undefined });
        continue;
      }
      // Another rule set's evaluation (the demo's): this alert is left as it is.
      if (!rule) continue;
      const { latest: _stale, ending: _ended, ...last } = record.finding;
      const gone: Finding = {
        ...last,
        status: 'insufficient_data',
        summary: 'no tasks of this cohort and route in the current window',
        statistic: null,
        effect: null,
      };
      steps.push({ ...stepOf(record, gone), input: undefined });
    }

    // An incident told of, then silenced: its reminder under the silence cleared lastNotifiedAt
    // (it owes one), so the lifecycle did not notify its end. Told is told: it is notified, and
    // goes to the channels that got the firing or a reminder.
    const untoldEnds = steps.filter(
      (s) =>
        s.event?.kind === 'resolved' &&
        !s.event.notify &&
        previous.get(s.record.fingerprint)?.state === 'firing',
    );
    if (untoldEnds.length > 0) {
      const told = await this.alerts.notifiedIncidents(
        untoldEnds.map((s) => ({
          ...s.record,
          firedAt: previous.get(s.record.fingerprint)!.since,
        })),
      );
      for (const s of untoldEnds) {
        if (!told.has(incidentKey(s.record))) continue;
        s.event = { ...s.event!, notify: true };
        s.record = { ...s.record, lastNotifiedAt: now };
      }
    }

    // One reminder per cohort × route and evaluation: none beside news of the route (an alert
    // fired, resolved or closed there: that message lists the alerts still firing), else the one
    // of the most severe alert due, then the longest firing. A reminder owed by an alert never
    // notified (a silence) is its own message, and stays.
    const ruleOf = (id: string) =>
      active.find((r) => r.id === id) ?? rules.find((r) => r.id === id);
    const severity = (s: (typeof steps)[number]) =>
      SEVERITY_RANK[ruleOf(s.record.ruleId)?.severity ?? 'warning'];
    const owes = (s: (typeof steps)[number]) =>
      (previous.get(s.record.fingerprint)?.lastNotifiedAt ?? null) === null;
    const news = new Set(
      steps
        .filter((s) => s.event?.notify && (s.event.kind !== 'repeat' || owes(s)))
        .map((s) => monitorKey(s.record.cohort, s.record.route)),
    );
    const leader = new Map<string, (typeof steps)[number]>();
    const reminders = steps.filter((s) => s.event?.kind === 'repeat' && s.event.notify && !owes(s));
    for (const s of reminders) {
      const key = monitorKey(s.record.cohort, s.record.route);
      if (news.has(key)) continue;
      const best = leader.get(key);
      if (
        !best ||
        severity(s) < severity(best) ||
        (severity(s) === severity(best) && s.record.since < best.record.since)
      )
        leader.set(key, s);
    }
    for (const s of reminders) {
      if (leader.get(monitorKey(s.record.cohort, s.record.route)) === s) continue;
      s.event = undefined;
      s.record = { ...s.record, seq: previous.get(s.record.fingerprint)!.seq };
    }
    // Every message on a route mentions the alerts firing there: each of them was reminded now
    // (lastNotifiedAt), so that the route's clock survives any one record reopening. Not those a
    // silence keeps quiet, nor those owed a message of their own.
    const messaged = new Set(
      steps.filter((s) => s.event?.notify).map((s) => monitorKey(s.record.cohort, s.record.route)),
    );
    for (const s of steps) {
      if (
        s.record.state === 'firing' &&
        s.record.lastNotifiedAt !== null &&
        messaged.has(monitorKey(s.record.cohort, s.record.route)) &&
        !silenceAt(s.record)
      )
        s.record = { ...s.record, lastNotifiedAt: now };
    }
    const after = new Map(previous);
    for (const s of steps) after.set(s.record.fingerprint, s.record);
    // The alerts firing on each cohort × route after this evaluation, for the messages to list.
    const firingOn = new Map<string, OtherAlert[]>();
    for (const record of after.values()) {
      if (record.state !== 'firing') continue;
      const key = monitorKey(record.cohort, record.route);
      const rule = ruleOf(record.ruleId);
      const quiet = silenceRef(silenceAt(record));
      firingOn.set(key, [
        ...(firingOn.get(key) ?? []),
        {
          fingerprint: record.fingerprint,
          ruleId: record.ruleId,
          kind: record.finding.kind,
          detail: record.detail,
          incident: record.incident,
          severity: rule?.severity ?? 'warning',
          what: whatOf(titledRule(record.finding, rule), record.detail),
          since: new Date(record.since).toISOString(),
          ...(record.heldSince !== null
            ? { heldSince: new Date(record.heldSince).toISOString() }
            : {}),
          ...(quiet ? { silencedUntil: quiet.until } : {}),
        },
      ]);
    }
    // The most severe first, then the longest firing.
    for (const list of firingOn.values())
      list.sort(
        (a, b) =>
          SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] || a.since.localeCompare(b.since),
      );
    const events: { event: AlertEvent; message: AlertMessage }[] = [];
    for (const s of steps) {
      if (!s.event) continue;
      const rule = ruleOf(s.record.ruleId);
      const message = await this.#message(
        s.event,
        s.record,
        rule,
        s.input,
        currentByRoute,
        at,
        ruleSet,
      );
      const muted = silenced.get(s.record.fingerprint);
      if (muted) message.silenced = silenceRef(muted)!;
      if (s.event.notify || muted) {
        message.alsoFiring = (
          firingOn.get(monitorKey(s.record.cohort, s.record.route)) ?? []
        ).filter((o) => o.fingerprint !== s.record.fingerprint);
      }
      events.push({ event: s.event, message });
    }
    if (!dryRun) {
      // Events first: a crash before the states are written recomputes the same event keys.
      await this.alerts.saveEvents(events);
      await this.alerts.saveStates(steps.map((s) => s.record));
      if (events.some((e) => e.event.notify)) this.options.notifier?.kick();
    }

    // As of the evaluated time: a replay of a time before an alert fired does not count it.
    const firingNow = [...after.values()]
      .filter((r) => r.state === 'firing' && r.since <= now)
      .sort((a, b) => a.since - b.since || a.fingerprint.localeCompare(b.fingerprint));
    const result: EvaluationResult = {
      evaluatedAt: at.toISOString(),
      findings,
      events: events.map(({ event }) => ({
        fingerprint: event.fingerprint,
        kind: event.kind,
        ruleId: event.finding.ruleId,
        cohort: event.finding.cohort,
        route: event.finding.route,
        detail: event.finding.detail,
        summary: event.finding.summary,
      })),
      firing: firingNow.length,
      firingAlerts: firingNow.map((r) => ({
        ruleId: r.ruleId,
        cohort: r.cohort,
        route: r.route,
        detail: r.detail,
        since: new Date(r.since).toISOString(),
      })),
      dryRun,
      replayedState,
      warnings,
    };
    if (dryRun) return result;
    this.#last = result;
    for (const warning of warnings) {
      if (this.#warned.has(warning)) continue;
      this.#warned.add(warning);
      this.options.log.warn({ job: 'evaluate' }, warning);
    }
    for (const e of result.events) {
      if (e.kind !== 'repeat')
        this.options.log.info(
          {
            alert: e.fingerprint,
            rule: e.ruleId,
            cohort: e.cohort,
            route: e.route,
            transition: e.kind,
          },
          e.summary,
        );
    }
    return result;
  }

  /**
   * How the trailing baselines step around incidents. An open incident holds its monitor's
   * baseline at its start, and a firing one holds those of every rule on its cohort × route too:
   * trailing on, a baseline takes in the degraded data. A monitor's own would call a persistent
   * degradation recovered; another figure of the route, moved the other way meanwhile (fallbacks
   * to the large model lift the success rate while they rescue a degraded small route), would
   * make the route's return to normal read as a change. Once an incident has resolved, its span
   * is left out of the route's trailing baselines, held or not, for as long as they reach back to
   * it. Only the incidents of rules with a trailing baseline count: a pinned, concurrent or target
   * rule can fire for as long as a route is what it is, and would freeze its baselines for that
   * long.
   *
   * Ends are floored to the bucket grid so that incidents that began together (one provider's
   * outage across cohorts) share one read. Such a range lies wholly in the past, so its read is
   * kept across evaluations and renewed every HELD_REFRESH_MS (late outcomes still change it a
   * little): each open incident would otherwise cost a scan of a whole baseline window every
   * evaluation.
   */
  async #holds(
    records: readonly AlertRecord[],
    rules: readonly Rule[],
    at: {
      now: number;
      fromMs: number;
      bucketMs: number;
      callBudget: number;
      dryRun: boolean;
      /** Whether a silence in force keeps the alert quiet. */
      silenced: (record: AlertRecord) => boolean;
    },
  ): Promise<Holds> {
    const trailingRule = (id: string) => {
      const rule = rules.find((r) => r.id === id);
      return rule?.baseline.kind === 'trailing' ? rule : undefined;
    };
    const windowOf = (rule: Rule) =>
      rule.baseline.kind === 'trailing' ? rule.baseline.windowMs : 0;
    const active = rules.filter((r) => r.enabled && r.baseline.kind === 'trailing');
    // Where each open incident began: of the monitor (pending or firing), and the earliest firing
    // one of each cohort × route. A replay (`--at` in the past) before it began: not open then.
    const own = new Map<string, number>();
    const byRoute = new Map<string, { endMs: number; ruleId: string }>();
    for (const record of records) {
      const end = heldBaselineEnd(record);
      if (end === null || end > at.now || !trailingRule(record.ruleId)?.enabled) continue;
      own.set(record.fingerprint, end);
      const route = monitorKey(record.cohort, record.route);
      // A silenced alert holds its own baseline only: a silence says the team knows, and a change
      // taken as the route's new state must not keep its other rules on the history before it.
      if (
        record.state === 'firing' &&
        record.since <= at.now &&
        !at.silenced(record) &&
        end < (byRoute.get(route)?.endMs ?? Infinity)
      )
        byRoute.set(route, { endMs: end, ruleId: record.ruleId });
    }
    const endOf = (rule: Rule, cohort: string, route: string, detail: string) => {
      const mine = own.get(fingerprintOf(rule.id, cohort, route, detail)) ?? Infinity;
      const routes = byRoute.get(monitorKey(cohort, route));
      const end = Math.min(mine, routes?.endMs ?? Infinity);
      // Begun within the current window: the trailing baseline, before the window, holds none
      // of it yet. Held (and said to be) only once the window has moved past the incident's start.
      const endMs = Math.floor(end / at.bucketMs) * at.bucketMs;
      if (!Number.isFinite(end) || endMs >= at.fromMs) return null;
      return { endMs, by: routes && routes.endMs < mine ? routes.ruleId : undefined };
    };

    // The resolved incidents any baseline read here reaches back to, by up to one more window
    // where they leave it short (reachBack).
    const longest = Math.max(0, ...active.map(windowOf));
    const ends = [at.fromMs, ...own.values()].map((e) => Math.floor(e / at.bucketMs) * at.bucketMs);
    const spans =
      active.length === 0
        ? []
        : (await this.alerts.resolvedIncidents(Math.min(...ends) - 2 * longest))
            // A dry run steps the alerts as they stood then: an incident resolved at or after
            // that time was open, and holds its baselines instead (#evaluate).
            .filter((i) => i.fromMs <= at.now && (!at.dryRun || i.toMs < at.now))
            .map((i) => ({ ...i, toMs: Math.min(i.toMs, at.now) }));
    const excluded = mergeSpans(spans);
    const arounds = new Map<string, TrailingRead>();
    const around = (endMs: number, windowMs: number) => {
      const key = `${endMs} ${windowMs}`;
      let read = arounds.get(key);
      if (!read) {
        read = trailingRead(excluded, endMs, windowMs);
        arounds.set(key, read);
      }
      return read;
    };

    const wallNow = Date.now();
    const used = new Set<string>();
    const reads = new Map<string, HeldBaseline>();
    const read = async (windowMs: number, endMs: number) => {
      const spans = around(endMs, windowMs);
      const key = `${windowMs} ${endMs} ${at.callBudget} ${JSON.stringify(spans)}`;
      let entry = this.#heldCache.get(key);
      if (!entry || (!used.has(key) && wallNow - entry.readAtMs >= HELD_REFRESH_MS)) {
        const fresh = {
          read: readHeld(this.options.store, endMs, windowMs, at.callBudget, spans),
          readAtMs: wallNow,
        };
        this.#heldCache.set(key, fresh);
        // A failed read is not kept: the next evaluation reads again.
        fresh.read.catch(() => {
          if (this.#heldCache.get(key) === fresh) this.#heldCache.delete(key);
        });
        entry = fresh;
      }
      used.add(key);
      reads.set(`${windowMs} ${endMs}`, await entry.read);
    };
    // Every monitor with an open incident, and every trailing rule on a route with a firing one.
    for (const record of records) {
      const rule = own.has(record.fingerprint) ? trailingRule(record.ruleId) : undefined;
      const end = rule && endOf(rule, record.cohort, record.route, record.detail);
      if (end) await read(windowOf(rule), end.endMs);
    }
    for (const route of byRoute.keys()) {
      const [cohort, name] = route.split('\t') as [string, string];
      for (const rule of active) {
        const end = endOf(rule, cohort, name, '');
        if (end) await read(windowOf(rule), end.endMs);
      }
    }
    // Reads no open incident uses any more go (not after a replay of a past time: the live
    // evaluations' reads stay).
    if (!at.dryRun)
      for (const key of this.#heldCache.keys()) if (!used.has(key)) this.#heldCache.delete(key);

    return {
      of: (rule, cohort, route, detail) => {
        const end = rule.baseline.kind === 'trailing' ? endOf(rule, cohort, route, detail) : null;
        return end ? reads.get(`${windowOf(rule)} ${end.endMs}`) : undefined;
      },
      heldBy: (rule, cohort, route, detail) => endOf(rule, cohort, route, detail)?.by,
      routes: new Set([
        ...byRoute.keys(),
        ...records.filter((r) => own.has(r.fingerprint)).map((r) => monitorKey(r.cohort, r.route)),
      ]),
      around,
    };
  }

  async #baselineRows(
    rule: Rule,
    trailingOf: (windowMs: number) => Promise<AggregateCounts[]>,
    pinnedOf: (name: string) => Promise<AggregateCounts[]>,
    policyRows: AggregateCounts[],
    policyNow: Map<string, { version: string; last: number }>,
  ): Promise<AggregateCounts[]> {
    switch (rule.baseline.kind) {
      case 'trailing':
        return trailingOf(rule.baseline.windowMs);
      case 'pinned':
        return pinnedOf(rule.baseline.name);
      case 'previous_policy':
        // The previous version's rows only: a p95 threshold from the current version would
        // judge the current version against itself.
        return previousPolicyRows(policyRows, policyNow);
      case 'large_route':
        return policyRows;
      case 'target':
        return [];
    }
  }

  async #monitorsOf(
    rule: Rule,
    ruleSet: RuleSet,
    data: {
      current: BucketedCounts[];
      lookback: Map<string, TaskCounts>;
      currentByRoute: Map<string, TaskCounts[]>;
      fromMs: number;
      bucketMs: number;
      trailingOf: (windowMs: number) => Promise<AggregateCounts[]>;
      pinnedOf: (name: string) => Promise<AggregateCounts[]>;
      policyRows: AggregateCounts[];
      policyNow: Map<string, { version: string; last: number }>;
      held: Holds;
    },
  ): Promise<MonitorInput[]> {
    const { evaluation, baselines } = ruleSet;
    const buckets = evaluation.buckets;
    const empty = () => Array.from({ length: buckets }, emptyCounts);
    let currentByRoute = data.currentByRoute;
    let baseline = new Map<string, TaskCounts>();
    let baselineP95 = new Map<string, number | null>();
    let description: string;
    /** A monitor's own baseline description, where it differs from the rule's. */
    const descriptions = new Map<string, string>();
    // The large route of a cohort as a reference (baseline large_route, cheaper_than_large): its
    // concurrent traffic or, without a concurrent control group, its own recent history (the
    // look-back, which holds the current window too): many deployments send nothing large-first,
    // and the rules would never run. Counted as the cost rules count: the tasks with a known
    // outcome (late outcomes would otherwise leave the window's large route "enough" and still
    // judged short).
    const largeReference = (cohort: string): { counts: TaskCounts; over?: string } => {
      const largeKey = monitorKey(cohort, evaluation.largeRoute);
      const concurrent = sum(data.currentByRoute.get(largeKey) ?? []);
      const recent = data.lookback.get(largeKey);
      return concurrent.known < evaluation.minBaselineTasks &&
        recent &&
        recent.known > concurrent.known
        ? { counts: recent, over: `its last ${formatDuration(evaluation.policyLookbackMs)}` }
        : { counts: concurrent };
    };
    const largeOverDescription = (over: string) =>
      `the ${evaluation.largeRoute} route of the same cohort over ${over} (too little concurrent traffic)`;
    let spanMs: number | null;

    switch (rule.baseline.kind) {
      case 'trailing':
      case 'pinned': {
        const rows =
          rule.baseline.kind === 'trailing'
            ? await data.trailingOf(rule.baseline.windowMs)
            : await data.pinnedOf(rule.baseline.name);
        baseline = byRoute(rows);
        baselineP95 = new Map(rows.map((r) => [monitorKey(r.cohort, r.route), r.p95LatencyMs]));
        if (rule.baseline.kind === 'trailing') {
          description = `trailing ${formatDuration(rule.baseline.windowMs)} before the current window`;
          spanMs = rule.baseline.windowMs;
        } else {
          const range = baselines[rule.baseline.name]!;
          description = `pinned baseline ${rule.baseline.name} (${utcMinute(range.from)} → ${utcMinute(range.to)})`;
          spanMs = range.to.getTime() - range.from.getTime();
        }
        break;
      }
      case 'previous_policy': {
        // Current: the cohort's current version only. Baseline: the version used last before it.
        currentByRoute = seriesByRoute(
          data.current,
          buckets,
          (cohort) => data.policyNow.get(cohort)?.version,
        );
        for (const row of previousPolicyRows(data.policyRows, data.policyNow)) {
          const key = monitorKey(row.cohort, row.route);
          baseline.set(key, addCounts(baseline.get(key) ?? emptyCounts(), row.counts));
          baselineP95.set(key, row.p95LatencyMs);
        }
        description = 'the previous policy version of the cohort';
        spanMs = null;
        break;
      }
      case 'large_route': {
        for (const key of currentByRoute.keys()) {
          const [cohort] = key.split('\t');
          const large = largeReference(cohort!);
          baseline.set(key, large.counts);
          if (large.over) descriptions.set(key, largeOverDescription(large.over));
        }
        description = `the ${evaluation.largeRoute} route of the same cohort, same window`;
        spanMs = null;
        break;
      }
      case 'target':
        // No data to read: the monitors are the cohort × routes with tasks now.
        description = `the target ${targetText(rule.kind, rule.baseline.value)}`;
        spanMs = null;
        break;
    }

    // Every cohort × route with data now or in the baseline.
    const groups = new Map<string, Group>();
    for (const key of [...currentByRoute.keys(), ...baseline.keys()]) {
      const [cohort, route] = key.split('\t') as [string, string];
      if (!watchesMonitor(rule, cohort, route, evaluation.largeRoute)) continue;
      groups.set(key, { cohort, route });
    }
    const totalsNow = sum([...data.currentByRoute.values()].map(sum));
    // failure_concentration compares each window with the rest of the traffic over the same
    // buckets: all the traffic, bucket by bucket.
    const totalsByBucket =
      rule.kind === 'failure_concentration'
        ? empty().map((_, b) =>
            sum([...data.currentByRoute.values()].map((buckets) => buckets[b] ?? emptyCounts())),
          )
        : [];
    const totalsBase = sum([...baseline.values()]);
    // failure_concentration: all the traffic now at each cohort × route's baseline rate, bucket
    // by bucket, for the rest's baseline rate at its current mix (restMixOf); per baseline map (a
    // held one differs).
    const mixes = new Map<
      ReadonlyMap<string, TaskCounts>,
      { rates: Map<string, MixRate>; totals: MixTotals }
    >();
    const mixOf = (byRoute: ReadonlyMap<string, TaskCounts>) => {
      let mix = mixes.get(byRoute);
      if (!mix) {
        const rates = new Map(
          [...data.currentByRoute.keys()].map((key) => [
            key,
            mixRate(byRoute.get(key) ?? null, evaluation.minBaselineTasks),
          ]),
        );
        const totals = mixTotals(
          [...data.currentByRoute].map(([key, buckets]) => ({ buckets, rate: rates.get(key)! })),
          buckets,
        );
        mix = { rates, totals };
        mixes.set(byRoute, mix);
      }
      return mix;
    };
    // A monitor with an open incident, or on a cohort × route with a firing one, is judged
    // against the baseline held at its start; a trailing baseline leaves resolved incidents out.
    const baselineOf = (group: Group, detail: string) => {
      const key = monitorKey(group.cohort, group.route);
      const held = data.held.of(rule, group.cohort, group.route, detail);
      if (!held) {
        const left =
          rule.baseline.kind === 'trailing'
            ? leftOut(
                data.held.around(data.fromMs, rule.baseline.windowMs),
                key,
                data.fromMs,
                rule.baseline.windowMs,
              )
            : { text: '', spanMs };
        return {
          baseline: baseline.get(key) ?? null,
          p95: baselineP95.get(key) ?? null,
          totals: totalsBase,
          byRoute: baseline,
          description: (descriptions.get(key) ?? description) + left.text,
          spanMs: left.spanMs,
        };
      }
      const by = data.held.heldBy(rule, group.cohort, group.route, detail);
      const left = leftOut(
        data.held.around(held.endMs, held.windowMs),
        key,
        held.endMs,
        held.windowMs,
      );
      return {
        baseline: held.byRoute.get(key) ?? null,
        p95: held.p95.get(key) ?? null,
        totals: held.totals,
        byRoute: held.byRoute,
        description:
          `trailing ${formatDuration(held.windowMs)} before ${utcMinute(held.endMs)}, ` +
          (by
            ? `held at the start of the ${by} incident open on this cohort × route`
            : "held at the incident's start while it is open") +
          left.text,
        spanMs: left.spanMs,
      };
    };

    const inputs: Omit<MonitorInput, 'monitors'>[] = [];
    for (const [key, group] of groups) {
      const current = currentByRoute.get(key) ?? empty();
      const base = baseline.get(key) ?? null;
      const currentTotal = sum(current);
      const common = {
        rule,
        cohort: group.cohort,
        route: group.route,
        current,
        currentTotal,
        fromMs: data.fromMs,
        bucketMs: data.bucketMs,
        baseline: base,
        baselineDescription: description,
        baselineSpanMs: spanMs,
        target: rule.baseline.kind === 'target' ? rule.baseline.value : null,
      };
      if (rule.kind === 'fallback_reason_shift') {
        const reasons = new Set([
          ...Object.keys(currentTotal.reasons),
          ...Object.keys(base?.reasons ?? {}),
        ]);
        for (const reason of reasons) {
          const own = baselineOf(group, reason);
          inputs.push({
            ...common,
            baseline: own.baseline,
            baselineDescription: own.description,
            baselineSpanMs: own.spanMs,
            detail: reason,
          });
        }
        continue;
      }
      const own = baselineOf(group, '');
      const input: Omit<MonitorInput, 'monitors'> = {
        ...common,
        baseline: own.baseline,
        baselineDescription: own.description,
        baselineSpanMs: own.spanMs,
        detail: '',
      };
      if (rule.kind === 'p95_regression') input.baselineP95Ms = own.p95;
      if (rule.kind === 'failure_concentration') {
        const mine = data.currentByRoute.get(key);
        const mix = mixOf(own.byRoute);
        const rate = mix.rates.get(key);
        input.rest = {
          current: subtract(totalsNow, mine ? sum(mine) : emptyCounts()),
          baseline: own.baseline ? subtract(own.totals, own.baseline) : null,
          buckets: totalsByBucket.map((all, b) => subtract(all, mine?.[b] ?? emptyCounts())),
          ...restMixOf(mix.totals, mine && rate ? { buckets: mine, rate } : null),
        };
      }
      if (rule.kind === 'cheaper_than_large') {
        const large = largeReference(group.cohort);
        input.large = large.counts;
        if (large.over) {
          input.largeOver = large.over;
          input.baselineDescription = largeOverDescription(large.over);
        }
      }
      if (
        rule.kind === 'p95_regression' &&
        (input.baselineP95Ms === null || input.baselineP95Ms === undefined)
      ) {
        input.baseline = null;
      }
      inputs.push(input);
    }
    // The rule's α is split over the monitors that have data enough to be tested: for the cost
    // rules, tasks with a known outcome (the only ones they judge).
    const judged =
      rule.kind === 'cost_per_success_rise' || rule.kind === 'cheaper_than_large'
        ? (c: TaskCounts) => c.known
        : (c: TaskCounts) => c.tasks;
    const testable = Math.max(
      1,
      inputs.filter((i) => judged(i.currentTotal ?? sum(i.current)) >= evaluation.minTasks).length,
    );
    return inputs.map((i) => ({ ...i, monitors: testable }));
  }

  async #message(
    event: AlertEvent,
    record: AlertRecord,
    rule: Rule | undefined,
    input: MonitorInput | undefined,
    currentByRoute: Map<string, TaskCounts[]>,
    at: Date,
    ruleSet: RuleSet,
  ): Promise<AlertMessage> {
    const { finding } = event;
    const kind =
      event.kind === 'resolved' ? 'resolved' : event.kind === 'repeat' ? 'repeat' : 'firing';
    // A firing alert resolves on findings of a well monitor, or unjudged (lifecycle.ts says which).
    const resolution: Resolution | undefined =
      kind === 'resolved' ? (record.resolution ?? undefined) : undefined;
    const largeRoute = ruleSet.evaluation.largeRoute;
    // Over the finding's own window (its "Now" line), so that the message shows one cost for the
    // route, not the alarm window's beside the whole horizon's; the whole window without one.
    const { horizonMs, buckets } = ruleSet.evaluation;
    const windowFrom = finding.current.since
      ? Math.min(
          buckets,
          Math.max(
            0,
            Math.round(
              (Date.parse(finding.current.since) - (at.getTime() - horizonMs)) /
                (horizonMs / buckets),
            ),
          ),
        )
      : 0;
    const costOf = (route: string): CostOnRoute => {
      // Over the tasks with a known outcome, as the cost rules judge it.
      const all = sum(
        (currentByRoute.get(monitorKey(finding.cohort, route)) ?? []).slice(windowFrom),
      );
      const counts = knownOutcomeSums(all);
      const cps = costPerSuccess(counts);
      // Unpriced model calls under it: a floor, or unknown when no call was priced.
      const unknown = nonePriced(all.calls, all.unpricedCalls);
      return {
        route,
        tasks: counts.tasks,
        costPerSuccessfulTask: unknown ? null : (cps?.value ?? null),
        interval: unknown ? null : (cps?.interval ?? null),
        ...(all.unpricedCalls > 0 ? { unpricedCalls: all.unpricedCalls, calls: all.calls } : {}),
      };
    };
    const costs = [costOf(finding.route)];
    // The large route beside it, over the same window; but not for cheaper_than_large, whose
    // baseline line gives the large route's figure it was judged against (its whole window, or
    // its history): a second figure for it, over the alarm's window, read as a contradiction
    // (review audit-A: "large $0.0105, n = 85" above "Baseline $0.0103, n = 195").
    if (
      finding.route !== largeRoute &&
      rule?.kind !== 'cheaper_than_large' &&
      currentByRoute.has(monitorKey(finding.cohort, largeRoute))
    )
      costs.push(costOf(largeRoute));
    const since = finding.current.since
      ? new Date(finding.current.since)
      : new Date(at.getTime() - ruleSet.evaluation.horizonMs);
    let failureShares: ReasonShare[] = [];
    let fallbackShares: ReasonShare[] = [];
    if (event.notify && kind !== 'resolved') {
      const failures = await failureReasons(
        this.options.store,
        finding.cohort,
        finding.route,
        since,
        at,
      );
      const totalFailures = failures.reduce((n, r) => n + r.tasks, 0);
      failureShares = failures.map((r) => ({
        ...r,
        share: totalFailures > 0 ? r.tasks / totalFailures : 0,
      }));
      if (input) {
        const windowCounts = sum(
          input.current.slice(
            Math.max(0, Math.floor((since.getTime() - input.fromMs) / input.bucketMs)),
          ),
        );
        fallbackShares = shares(windowCounts.reasons, windowCounts.fallbacks).slice(0, 5);
      }
    }
    return {
      kind,
      fingerprint: event.fingerprint,
      incident: event.incident,
      at: new Date(event.at).toISOString(),
      severity: rule?.severity ?? (await this.alerts.lastSeverity(event.fingerprint)) ?? 'warning',
      ruleId: finding.ruleId,
      ruleKind: finding.kind,
      ruleDescription: rule?.description ?? finding.ruleId,
      cohort: finding.cohort,
      route: finding.route,
      detail: finding.detail,
      ...(resolution ? { resolution } : {}),
      title: titleOf(
        kind,
        titledRule(finding, rule),
        finding.cohort,
        finding.route,
        finding.detail,
        resolution,
      ),
      finding: kind === 'resolved' ? { ...record.finding } : finding,
      costs,
      failureReasons: failureShares,
      fallbackReasons: fallbackShares,
      // The dashboard on this cohort × route, from the start of the evidence until now.
      url: dashboardUrl(this.options.publicUrl, {
        from: since.toISOString(),
        cohorts: [finding.cohort],
        routes: [finding.route],
      }),
    };
  }
}

/** Whether `rule` has a monitor on cohort × route (a large-route baseline never on the large route). */
/**
 * What the rules name that no task of the current window has: a mistyped cohort in a rule's
 * `cohorts` (or route in `routes`) watches nothing, and a target on it never fires. Said, not
 * refused: a rule may name a cohort ahead of its first tasks. Nothing when the window has no
 * task at all (nothing to compare with).
 */
export function unmatchedRuleNames(
  rules: readonly Rule[],
  seen: readonly { cohort: string; route: string }[],
): string[] {
  if (seen.length === 0) return [];
  const warnings: string[] = [];
  for (const [field, key] of [
    ['cohorts', 'cohort'],
    ['routes', 'route'],
  ] as const) {
    const names = new Set(seen.map((row) => row[key]));
    const candidates = [...names].filter((n) => n !== '').sort();
    for (const rule of rules) {
      for (const name of rule[field]) {
        if (name === '*' || names.has(name)) continue;
        const near = closestName(name, candidates);
        warnings.push(
          `rule ${rule.id}: no task of the current window has the ${key} ${JSON.stringify(name)} its ${field} name` +
            (near === undefined ? '' : ` (did you mean ${JSON.stringify(near)}?)`) +
            ': it watches nothing there until one does',
        );
      }
    }
  }
  return warnings;
}

function watchesMonitor(rule: Rule, cohort: string, route: string, largeRoute: string): boolean {
  if (!watches(rule, cohort, route)) return false;
  return !(rule.baseline.kind === 'large_route' && route === largeRoute);
}

/**
 * The current policy version of each cohort: of the versions with a task in the current window
 * (from `fromMs`), the one that started serving last (its first task in the look-back the
 * latest; ties: its latest task). While a canary or an A/B split serves two versions at once,
 * that is the new one. The version of the cohort's latest task, taken before, flipped from task
 * to task: the degraded new version was judged against itself or the old one by turns and never
 * fired, and the old version, judged against the new, fired for the new one's gain.
 */
export function currentPolicies(
  policyRows: readonly AggregateCounts[],
  fromMs: number,
  /**
   * The look-back the rows were read over: a version whose first task there is within `slackMs`
   * of its start served before it, and when it started is unknown. Such versions tie, and the
   * tie goes to the greater name (`v10` over `v9`), the same at every evaluation: a split older
   * than the look-back flipped with whichever version's task fell first after its sliding start.
   */
  lookback?: { fromMs: number; slackMs: number },
): Map<string, { version: string; last: number }> {
  const versions = new Map<string, Map<string, { first: number; last: number }>>();
  for (const row of policyRows) {
    const byVersion =
      versions.get(row.cohort) ?? new Map<string, { first: number; last: number }>();
    versions.set(row.cohort, byVersion);
    const seen = byVersion.get(row.policyVersion);
    const first = row.firstStartedAt.getTime();
    const last = row.lastStartedAt.getTime();
    byVersion.set(row.policyVersion, {
      first: Math.min(first, seen?.first ?? first),
      last: Math.max(last, seen?.last ?? last),
    });
  }
  const current = new Map<string, { version: string; last: number }>();
  for (const [cohort, byVersion] of versions) {
    let best: { version: string; first: number; last: number } | undefined;
    for (const [version, span] of byVersion) {
      if (span.last < fromMs) continue;
      const first =
        lookback && span.first <= lookback.fromMs + lookback.slackMs ? -Infinity : span.first;
      const later =
        !best ||
        first > best.first ||
        (first === best.first &&
          (first === -Infinity
            ? version.localeCompare(best.version, 'en', { numeric: true }) > 0
            : span.last > best.last));
      if (later) best = { version, first, last: span.last };
    }
    if (best) current.set(cohort, { version: best.version, last: best.last });
  }
  return current;
}

/**
 * The rows of each cohort's previous policy version: the one whose latest task is the latest
 * among the versions other than the current one (`policyNow`).
 */
function previousPolicyRows(
  policyRows: readonly AggregateCounts[],
  policyNow: ReadonlyMap<string, { version: string }>,
): AggregateCounts[] {
  const previous = new Map<string, AggregateCounts>();
  for (const row of policyRows) {
    const now = policyNow.get(row.cohort);
    if (!now || row.policyVersion === now.version) continue;
    const best = previous.get(row.cohort);
    if (!best || row.lastStartedAt > best.lastStartedAt) previous.set(row.cohort, row);
  }
  return policyRows.filter((row) => previous.get(row.cohort)?.policyVersion === row.policyVersion);
}

/** The counts of a held baseline, [endMs − windowMs, endMs) around resolved incidents (trailingRead). */
async function readHeld(
  store: Store,
  endMs: number,
  windowMs: number,
  callBudget: number,
  around: ReturnType<typeof trailingRead>,
): Promise<HeldBaseline> {
  const rows = await aggregateCounts(store, new Date(endMs - windowMs), new Date(endMs), {
    callBudget,
    byVersion: false,
    ...around,
  });
  const routes = byRoute(rows);
  return {
    endMs,
    windowMs,
    byRoute: routes,
    p95: new Map(rows.map((r) => [monitorKey(r.cohort, r.route), r.p95LatencyMs])),
    totals: sum([...routes.values()]),
  };
}

/**
 * Spans left out of the reads, the latest at most: this many per cohort × route (a route that
 * flapped all week), and this many in all (the statement carries them, and ClickHouse parses at
 * most 256 KiB of it by default). Overlapping incidents of one route (its rules fire together)
 * merge first.
 */
const MAX_SPANS_PER_ROUTE = 20;
const MAX_EXCLUDED_SPANS = 500;
/**
 * What the spans and reaches of one read may add to its statement: with the rest of it (about 3
 * KB), under ClickHouse's default `max_query_size` of 256 KiB.
 */
const MAX_STATEMENT_BYTES = 240 * 1024;

/** Incident spans merged per cohort × route where they overlap or touch, latest last. */
export function mergeSpans(spans: readonly ExcludedSpan[]): ExcludedSpan[] {
  const sorted = [...spans]
    .filter((s) => s.toMs > s.fromMs)
    .sort(
      (a, b) =>
        a.cohort.localeCompare(b.cohort) || a.route.localeCompare(b.route) || a.fromMs - b.fromMs,
    );
  const byRoute = new Map<string, ExcludedSpan[]>();
  for (const { cohort, route, fromMs, toMs } of sorted) {
    const key = monitorKey(cohort, route);
    const list = byRoute.get(key) ?? [];
    const last = list.at(-1);
    if (last && fromMs <= last.toMs) last.toMs = Math.max(last.toMs, toMs);
    else list.push({ cohort, route, fromMs, toMs });
    byRoute.set(key, list);
  }
  const kept = [...byRoute.values()]
    .flatMap((list) => list.slice(-MAX_SPANS_PER_ROUTE))
    .sort((a, b) => a.toMs - b.toMs)
    .slice(-MAX_EXCLUDED_SPANS);
  // A route that lost its older spans must not reach back into them as if they were healthy.
  const counts = new Map<string, number>();
  for (const span of kept) {
    const key = monitorKey(span.cohort, span.route);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const marked = new Set<string>();
  for (const span of [...kept].sort((a, b) => a.fromMs - b.fromMs)) {
    const key = monitorKey(span.cohort, span.route);
    if (marked.has(key)) continue;
    marked.add(key);
    if (counts.get(key)! < byRoute.get(key)!.length) span.cut = true;
  }
  return kept;
}

/**
 * What a trailing baseline's read (`around`, of `windowMs` ending at `endMs`) left out of
 * `route` and read further back for it, from the read itself, so that a route the statement's
 * budget read as having no incident is not described as leaving any out: the words for its
 * description, and the time of healthy history it holds (`spanMs`, which scales its trials to the
 * detector's horizon). That is the window, unless an incident of more than a window took more
 * than the one window further it may reach: then less, and the description says how much.
 */
export function leftOut(
  around: TrailingRead,
  route: string,
  endMs: number,
  windowMs: number,
): { text: string; spanMs: number } {
  const within = around.exclude.filter((s) => monitorKey(s.cohort, s.route) === route);
  if (within.length === 0) return { text: '', spanMs: windowMs };
  const fromMs =
    around.reach.find((r) => monitorKey(r.cohort, r.route) === route)?.fromMs ?? endMs - windowMs;
  // Merged per route (mergeSpans): the spans do not overlap.
  const out = within.reduce(
    (total, s) => total + Math.max(0, Math.min(s.toMs, endMs) - Math.max(s.fromMs, fromMs)),
    0,
  );
  const spanMs = Math.max(0, endMs - fromMs - out);
  const span = (s: ExcludedSpan) => `${utcMinute(s.fromMs).slice(0, -4)} → ${utcMinute(s.toMs)}`;
  // Less than a window of healthy history: the reach stopped one window further, or at the
  // oldest span kept of a route whose older ones were dropped (reachBack).
  const further = fromMs <= endMs - 2 * windowMs ? ': it reaches at most one window further' : '';
  const short =
    spanMs < windowMs - 60_000
      ? ` (${hoursText(spanMs)} of history outside incidents, not ${hoursText(windowMs)}${further})`
      : '';
  const reach =
    fromMs < endMs - windowMs
      ? `, reaching back to ${utcMinute(fromMs)} for the time left out${short}`
      : short;
  return {
    text:
      within.length === 1
        ? `, without the resolved incident of ${span(within[0]!)} on this cohort × route${reach}`
        : `, without ${within.length} resolved incidents on this cohort × route (the latest ${span(within.at(-1)!)})${reach}`,
    spanMs,
  };
}

/** A time as a description gives it: `5 h`, `5.5 h`, `40 min`. */
const hoursText = (ms: number) =>
  ms >= 3_600_000 ? `${Number((ms / 3_600_000).toFixed(1))} h` : `${Math.round(ms / 60_000)} min`;

/**
 * Where a trailing baseline of `windowMs` ending at `endMs` starts for a cohort × route whose
 * `spans` are left out: as far back as it takes to hold `windowMs` outside them, and at most one
 * window further. An incident that took most of the window would otherwise leave its route
 * unjudged (too little baseline) until healthy history gathered again, about a window after it
 * resolved; one longer than a window still does, for less time. Any unit, as long as it is one.
 */
export function reachBack(
  spans: readonly { fromMs: number; toMs: number; cut?: boolean }[],
  endMs: number,
  windowMs: number,
): number {
  // Not past a span before which older incidents were dropped (mergeSpans): unknown ground.
  const cuts = spans.filter((s) => s.cut).map((s) => s.fromMs);
  const floor = Math.max(
    endMs - 2 * windowMs,
    cuts.length > 0 ? Math.min(endMs - windowMs, Math.max(...cuts)) : -Infinity,
  );
  let cursor = endMs;
  let remaining = windowMs;
  for (const span of [...spans].sort((a, b) => b.toMs - a.toMs)) {
    if (span.fromMs >= cursor) continue;
    const top = Math.min(span.toMs, cursor);
    if (cursor - top >= remaining) break;
    remaining -= cursor - top;
    cursor = span.fromMs;
    if (cursor <= floor) return floor;
  }
  return Math.max(floor, cursor - remaining);
}

/** A trailing read's spans left out and reaches further back (trailingRead). */
export interface TrailingRead {
  exclude: ExcludedSpan[];
  reach: RouteReach[];
}

/**
 * What a trailing read of [endMs − windowMs, endMs) leaves out and reads further back: each
 * cohort × route's resolved incidents out, and the time they took read before the window
 * (reachBack), so that the route is judged against a window of healthy history.
 */
export function trailingRead(
  excluded: readonly ExcludedSpan[],
  endMs: number,
  windowMs: number,
): TrailingRead {
  const byRoute = new Map<string, ExcludedSpan[]>();
  for (const span of overlapping(excluded, endMs - 2 * windowMs, endMs)) {
    const key = monitorKey(span.cohort, span.route);
    byRoute.set(key, [...(byRoute.get(key) ?? []), span]);
  }
  const exclude: ExcludedSpan[] = [];
  const reach: RouteReach[] = [];
  // The routes with the latest incidents first, while the statement stays within its budget
  // (long names could push 500 spans and their reaches past what ClickHouse parses, and the
  // whole evaluation would fail); the rest are read as if they had none.
  let bytes = 0;
  const latest = (spans: ExcludedSpan[]) => Math.max(...spans.map((s) => s.toMs));
  for (const spans of [...byRoute.values()].sort((a, b) => latest(b) - latest(a))) {
    const { cohort, route } = spans[0]!;
    const fromMs = reachBack(spans, endMs, windowMs);
    const within = overlapping(spans, fromMs, endMs);
    const reaches = fromMs < endMs - windowMs;
    const clause = clauseBytes(cohort, route);
    const cost = clause * (within.length + (reaches ? 1 : 0));
    if (bytes + cost > MAX_STATEMENT_BYTES) continue;
    bytes += cost;
    exclude.push(...within);
    if (reaches) reach.push({ cohort, route, fromMs });
  }
  return { exclude, reach };
}

/** The spans that overlap [fromMs, toMs). */
function overlapping(spans: readonly ExcludedSpan[], fromMs: number, toMs: number): ExcludedSpan[] {
  return spans.filter((s) => s.fromMs < toMs && s.toMs > fromMs);
}

/** One key per distinct baseline: rules with equal keys read the same rows. */
function baselineKey(baseline: BaselineRef): string {
  switch (baseline.kind) {
    case 'trailing':
      return `trailing:${baseline.windowMs}`;
    case 'pinned':
      return `pinned:${baseline.name}`;
    case 'previous_policy':
    case 'large_route':
      return baseline.kind;
    case 'target':
      return `target:${baseline.value}`;
  }
}

/** A target baseline as people read it, in the unit of the rule's figure. */
function targetText(kind: Rule['kind'], value: number): string {
  if (kind === 'cost_per_success_rise') {
    return `$${Number(value.toPrecision(6)).toString()} per successful task`;
  }
  const percent = `${Number((value * 100).toPrecision(6))} %`;
  return kind === 'success_rate_drop' ? `success rate ${percent}` : `${percent} at most`;
}

/** a − b, for counts (b a part of a). */
function subtract(a: TaskCounts, b: TaskCounts): TaskCounts {
  const out = emptyCounts();
  addCounts(out, a);
  for (const key of Object.keys(out) as (keyof TaskCounts)[]) {
    if (key === 'reasons') continue;
    (out[key] as number) -= b[key] as number;
  }
  return out;
}
