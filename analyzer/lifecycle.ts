import { createHash } from 'node:crypto';
import { formatDuration } from '../server/time.js';
import type { EvaluationSettings } from './rules.js';
import type { Finding } from './detectors.js';
import type { Resolution } from './message.js';

/**
 * The alert lifecycle, as a pure step function: inactive → pending (held for
 * `pendingEvaluations`) → firing → resolved (after `resolveEvaluations` found the monitor well).
 * Notifies on firing and on resolve, and repeats every `repeatInterval` while firing. A firing
 * alert whose monitor cannot judge (no tasks, too few) is held firing: traffic that went away, or
 * was routed away, is not a recovery. It is closed without a verdict after `holdWithoutVerdict`
 * of that, or at once when its rule is disabled, removed, or no longer watches its cohort × route
 * (`retire`). While an incident is open the record keeps where it began (`changedAt`), and its
 * monitor's trailing baseline is held there (evaluator.ts), so that a recovery is judged against
 * the data from before the incident. The record it steps is persisted (alert-store.ts), so a
 * restart continues where it stopped.
 */

export const ALERT_STATES = ['inactive', 'pending', 'firing', 'resolved'] as const;
export type AlertState = (typeof ALERT_STATES)[number];

export const EVENT_KINDS = ['pending', 'firing', 'repeat', 'resolved', 'cleared'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

export interface AlertRecord {
  fingerprint: string;
  ruleId: string;
  cohort: string;
  route: string;
  detail: string;
  state: AlertState;
  /** When the record entered its state (ms). */
  since: number;
  /** Consecutive evaluations degraded (pending) or not degraded (firing). */
  pendingCount: number;
  clearCount: number;
  /**
   * The current or last incident's number: incidents that fired, and the one pending now. A
   * pending episode that clears without firing gives its number to the next one, so the pages a
   * human receives are numbered 1, 2, 3 (the cleared episode's events stay under that number).
   */
  incident: number;
  /** Events emitted so far under this incident number: the last event's sequence number. */
  seq: number;
  lastNotifiedAt: number | null;
  /**
   * When the last incident resolved (ms), null if none has: the evidence before it is spent
   * (evidenceFrom), read back from the resolved events (alert-store.ts).
   */
  resolvedAt: number | null;
  /**
   * How the last incident ended, null if none has: `recovered` on a verdict, else
   * `closed_without_verdict`. Read back from the resolved events like `resolvedAt`.
   */
  resolution: Resolution | null;
  /**
   * The summary of the finding that closed the last incident, null if none has: later
   * evaluations replace `finding`, not how the incident ended.
   */
  resolvedSummary: string | null;
  /**
   * Firing and held: when its monitor last became unable to judge it (ms); null while it judges.
   * Held this long past `holdWithoutVerdictMs`, the alert closes without a verdict.
   */
  heldSince: number | null;
  /**
   * Pending or firing: where the incident began (ms), the change point its firing finding (or,
   * while pending, its first degraded one) estimated, else when that was; null otherwise. The
   * monitor's trailing baseline is held to end there while the incident is open (heldBaselineEnd).
   */
  changedAt: number | null;
  /**
   * Firing: the summary of the finding it fired on (read from its firing event, for the alert
   * list: a held alert's latest finding says only why it cannot be judged now).
   */
  firedSummary?: string | null;
  /** The latest finding. */
  finding: Finding;
  evaluatedAt: number;
}

export interface AlertEvent {
  fingerprint: string;
  incident: number;
  seq: number;
  kind: EventKind;
  at: number;
  /** Whether the event is sent to the notification channels. */
  notify: boolean;
  finding: Finding;
}

/** Identifies an alert: rule, cohort, route (and the fallback reason a reason monitor watches). */
export function fingerprintOf(
  ruleId: string,
  cohort: string,
  route: string,
  detail: string,
): string {
  return createHash('sha256')
    .update(JSON.stringify([ruleId, cohort, route, detail]))
    .digest('hex')
    .slice(0, 24);
}

export interface Step {
  record: AlertRecord;
  event: AlertEvent | undefined;
}

/**
 * The instant before which a monitor's evidence is spent: its last resolution. The windows that
 * made an incident fire, and then fell below the threshold for `resolveEvaluations`, must not
 * raise the next one — a CUSUM restarts after an alarm. Without this, one stretch of bad luck
 * re-fires the same alert each time a new bucket nudges its statistic back over the threshold.
 */
export function evidenceFrom(record: AlertRecord | undefined, atMs: number): number | null {
  const resolvedAt = record?.resolvedAt ?? null;
  // Judged as at `atMs`, before that resolution (a dry run of a past time): the evidence was not
  // spent yet, and the incident it ended can be seen again.
  return resolvedAt !== null && resolvedAt <= atMs ? resolvedAt : null;
}

/**
 * Where an open incident holds its monitor's trailing baseline to end, null when none is open.
 * Trailing on, the baseline would take in the degraded data itself, and a degradation that
 * persists would soon look normal: "recovered" within days, and never raised again.
 */
export function heldBaselineEnd(record: AlertRecord | undefined): number | null {
  if (record?.state !== 'firing' && record?.state !== 'pending') return null;
  return record.changedAt;
}

/** The change point a finding estimated, else `now`. */
const changePointOf = (finding: Finding, now: number): number =>
  finding.current.since ? Date.parse(finding.current.since) : now;

/**
 * One evaluation's step for one alert. `routeNotifiedAt` is when a message last went out for any
 * alert firing on the same cohort × route: each message lists the others firing there
 * (message.ts), so it stands for their repeats too, and a route with seven rules firing repeats
 * once per `repeatInterval`, not seven times.
 */
export function step(
  previous: AlertRecord | undefined,
  finding: Finding,
  now: number,
  settings: Pick<
    EvaluationSettings,
    'pendingEvaluations' | 'resolveEvaluations' | 'repeatIntervalMs' | 'holdWithoutVerdictMs'
  >,
  routeNotifiedAt: number | null = null,
): Step {
  const fingerprint = fingerprintOf(finding.ruleId, finding.cohort, finding.route, finding.detail);
  const prev: AlertRecord = previous ?? {
    fingerprint,
    ruleId: finding.ruleId,
    cohort: finding.cohort,
    route: finding.route,
    detail: finding.detail,
    state: 'inactive',
    since: now,
    pendingCount: 0,
    clearCount: 0,
    incident: 0,
    seq: 0,
    lastNotifiedAt: null,
    resolvedAt: null,
    resolution: null,
    resolvedSummary: null,
    heldSince: null,
    changedAt: null,
    finding,
    evaluatedAt: now,
  };
  const degraded = finding.status === 'degraded';
  const base = { ...prev, finding, evaluatedAt: now, heldSince: null };
  const emit = (record: AlertRecord, kind: EventKind, notify: boolean): Step => {
    const seq = record.seq + 1;
    const next = { ...record, seq, ...(notify ? { lastNotifiedAt: now } : {}) };
    return {
      record: next,
      event: { fingerprint, incident: next.incident, seq, kind, at: now, notify, finding },
    };
  };

  switch (prev.state) {
    case 'inactive':
    case 'resolved': {
      if (!degraded) return { record: base, event: undefined };
      // The last incident number paged no one: that episode cleared (or was retired) while
      // pending, or fired and ended under a silence (resolved, never notified). Its number is
      // reused, its sequence continued, so that event keys stay unique without a gap in the
      // numbers people see.
      const reuse =
        prev.incident > 0 &&
        (prev.state === 'inactive' || (prev.state === 'resolved' && prev.lastNotifiedAt === null));
      const opened = {
        ...base,
        incident: reuse ? prev.incident : prev.incident + 1,
        seq: reuse ? prev.seq : 0,
        pendingCount: 1,
        clearCount: 0,
        lastNotifiedAt: null,
        changedAt: changePointOf(finding, now),
      };
      if (settings.pendingEvaluations <= 1)
        return emit({ ...opened, state: 'firing', since: now }, 'firing', true);
      return emit({ ...opened, state: 'pending', since: now }, 'pending', false);
    }
    case 'pending': {
      if (!degraded)
        return emit(
          { ...base, state: 'inactive', since: now, pendingCount: 0, changedAt: null },
          'cleared',
          false,
        );
      const pendingCount = prev.pendingCount + 1;
      if (pendingCount >= settings.pendingEvaluations) {
        return emit(
          {
            ...base,
            state: 'firing',
            since: now,
            pendingCount,
            clearCount: 0,
            changedAt: changePointOf(finding, now),
          },
          'firing',
          true,
        );
      }
      return { record: { ...base, pendingCount }, event: undefined };
    }
    case 'firing': {
      // No verdict is not a recovery: held as it is, without a repeat, for a bounded time.
      if (finding.status === 'insufficient_data') {
        const heldSince = prev.heldSince ?? now;
        if (now - heldSince >= settings.holdWithoutVerdictMs) {
          return retire(
            { ...base, heldSince },
            now,
            `held ${formatDuration(settings.holdWithoutVerdictMs)} with no verdict (${finding.summary}): closed without a verdict`,
          )!;
        }
        return { record: { ...base, heldSince }, event: undefined };
      }
      if (degraded) {
        const last = Math.max(prev.lastNotifiedAt ?? -Infinity, routeNotifiedAt ?? -Infinity);
        const due = last === -Infinity || now - last >= settings.repeatIntervalMs;
        const record = { ...base, clearCount: 0 };
        return due ? emit(record, 'repeat', true) : { record, event: undefined };
      }
      const clearCount = prev.clearCount + 1;
      if (clearCount >= settings.resolveEvaluations) {
        // An incident nobody was told of (it fired, and stayed, under a silence) ends without a
        // message: a resolution of something never announced is noise.
        return emit(
          {
            ...base,
            state: 'resolved',
            since: now,
            clearCount,
            pendingCount: 0,
            resolvedAt: now,
            resolution: 'recovered',
            resolvedSummary: finding.summary,
            changedAt: null,
          },
          'resolved',
          prev.lastNotifiedAt !== null,
        );
      }
      return { record: { ...base, clearCount }, event: undefined };
    }
  }
}

/**
 * Closes an alert nothing will judge: its rule is disabled, gone from the rules file or no longer
 * watches its cohort × route, or it was held without a verdict for `holdWithoutVerdict`. A firing
 * alert resolves without a verdict (notified, the summary says why: not a recovery), a pending
 * one clears. Returns no step for an alert already closed.
 */
export function retire(previous: AlertRecord, now: number, summary: string): Step | undefined {
  if (previous.state !== 'firing' && previous.state !== 'pending') return undefined;
  // Its last finding's figures, not its view of the latest data: nothing judges it now.
  const { latest: _latest, ending: _ending, ...last } = previous.finding;
  const finding: Finding = {
    ...last,
    status: 'insufficient_data',
    summary,
    statistic: null,
    effect: null,
  };
  const seq = previous.seq + 1;
  const firing = previous.state === 'firing';
  // Closed without a message if it never sent one (it fired under a silence), as a resolution.
  const notify = firing && previous.lastNotifiedAt !== null;
  const record: AlertRecord = {
    ...previous,
    finding,
    evaluatedAt: now,
    since: now,
    seq,
    pendingCount: 0,
    heldSince: null,
    changedAt: null,
    ...(firing
      ? {
          state: 'resolved',
          resolvedAt: now,
          resolution: 'closed_without_verdict',
          resolvedSummary: summary,
          lastNotifiedAt: notify ? now : null,
        }
      : { state: 'inactive' }),
  };
  return {
    record,
    event: {
      fingerprint: previous.fingerprint,
      incident: previous.incident,
      seq,
      kind: firing ? 'resolved' : 'cleared',
      at: now,
      notify,
      finding,
    },
  };
}
