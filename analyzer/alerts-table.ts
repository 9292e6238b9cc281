import { utcMinute } from '../server/time.js';
import { tableLayout } from './text-width.js';
import type { Resolution } from './message.js';

/** The alerts API's answer as a terminal table (routewatch alerts). Pure. */

export interface AlertsView {
  evaluatedAt: string | null;
  alerts: {
    rule: string;
    severity: string;
    cohort: string;
    route: string;
    detail: string;
    state: string;
    since: string;
    summary: string;
    /** The latest evaluation's finding: `insufficient_data` while a firing alert is held. */
    finding?: { status: string };
    /** When a firing alert's hold began (absent from an older server's answer). */
    heldSince?: string | null;
    /** How a resolved alert ended (absent from an older server's answer). */
    resolution?: Resolution | null;
    /** A silence in force over it (absent from an older server's answer). */
    silenced?: { id: string; until: string } | null;
  }[];
  /** Silences in force or to come (absent from an older server's answer). */
  silences?: { id: string; scope: string; startsAt: string; endsAt: string; comment: string }[];
  /** What no rule could judge for lack of data (absent from an older server's answer). */
  unjudged?: { cohort: string; route: string; reason: string }[];
  successUnjudged?: { cohort: string; route: string; reason: string }[];
  history: {
    at: string;
    kind: string;
    rule: string;
    cohort: string;
    route: string;
    detail: string;
    resolution?: Resolution | null;
    /** A transition a silence kept from the channels. */
    silenced?: { id: string; until: string } | null;
    summary: string;
  }[];
  channels: Record<
    string,
    {
      sent: number;
      retries: number;
      queued: number;
      refused?: number;
      expired?: number;
      silenced?: number;
      unannounced?: number;
      /** When the counts started: the process's start (they are not kept across restarts). */
      since?: string;
      lastError: string;
      lastErrorAt?: string;
      lastSentAt?: string;
    }
  >;
  /** Absent from an instance older than this field. */
  givenUp?: { channel: string; status: 'refused' | 'expired'; alerts: number; latest: string }[];
}

/** Unjudged cohort × routes listed in the table; --json has them all. */
const UNJUDGED_SHOWN = 10;

const short = (iso: string) => iso.slice(0, 16).replace('T', ' ');

function table(header: string[], rows: string[][]): string[] {
  const { line, rule } = tableLayout(header, rows);
  return [line(header), rule, ...rows.map(line)];
}

/**
 * `state`: the state the view was asked for (`routewatch alerts --state S`); without one, the
 * alerts firing or pending are listed.
 */
export function renderAlertsTable(view: AlertsView, historyRows = 10, state?: string): string {
  const where = (a: { cohort: string; route: string; detail: string }) =>
    `${a.cohort || '(none)'} × ${a.route || '(none)'}${a.detail ? ` (${a.detail})` : ''}`;
  // A firing alert is held while its monitor has too little data for a verdict: the latest
  // finding then says why there is none, not why it fired (that is in its firing transition).
  const what = (a: AlertsView['alerts'][number]) =>
    a.state === 'firing' && a.finding?.status === 'insufficient_data'
      ? `still firing, no verdict ${a.heldSince ? `since ${utcMinute(a.heldSince)}` : 'now'}: ${a.summary}`
      : a.summary;
  // Closed without a verdict is not a recovery: said as the dashboard says it.
  const ended = (state: string, resolution: Resolution | null | undefined) =>
    state === 'resolved' && resolution === 'closed_without_verdict' ? 'closed' : state;
  const lines = [
    `routewatch alerts  ${view.evaluatedAt ? `last evaluated ${utcMinute(view.evaluatedAt)}` : 'not evaluated yet in this process'}`,
    '',
  ];
  const listed =
    state === undefined
      ? view.alerts.filter((a) => a.state === 'firing' || a.state === 'pending')
      : view.alerts;
  if (listed.length === 0) {
    lines.push(
      state === undefined
        ? 'No alert firing or pending.'
        : state === 'all'
          ? 'No alert in any state.'
          : `No alert ${state}.`,
    );
  } else {
    lines.push(
      ...table(
        ['state', 'severity', 'rule', 'cohort × route', 'since (UTC)', 'what'],
        listed.map((a) => [
          `${ended(a.state, a.resolution)}${a.silenced ? ' (silenced)' : ''}`,
          a.severity,
          a.rule,
          where(a),
          short(a.since),
          what(a),
        ]),
      ),
    );
  }
  // Nothing can alert on these: said, so that a quiet table is not read as "all is well".
  for (const [list, title] of [
    [view.unjudged ?? [], 'Not judged by any rule, too little data'],
    [view.successUnjudged ?? [], 'Success rate not judged (other rules judged them)'],
  ] as const) {
    if (list.length === 0) continue;
    lines.push('', `${title} (${list.length} cohort × route${list.length === 1 ? '' : 's'}):`);
    lines.push(
      ...table(
        ['cohort × route', 'why'],
        list.slice(0, UNJUDGED_SHOWN).map((u) => [where({ ...u, detail: '' }), u.reason]),
      ),
    );
    if (list.length > UNJUDGED_SHOWN) {
      lines.push(
        `… and ${list.length - UNJUDGED_SHOWN} more (routewatch alerts --json lists them all).`,
      );
    }
  }
  const silences = view.silences ?? [];
  if (silences.length > 0) {
    lines.push('', 'Silences, in force or to come (their alerts send no message meanwhile):');
    lines.push(
      ...table(
        ['id', 'matches', 'from (UTC)', 'until (UTC)', 'why'],
        silences.map((s) => [s.id, s.scope, short(s.startsAt), short(s.endsAt), s.comment]),
      ),
    );
  }
  const recent = view.history.slice(0, historyRows);
  if (recent.length > 0) {
    lines.push('', 'Recent transitions:');
    lines.push(
      ...table(
        ['at (UTC)', 'transition', 'rule', 'cohort × route', 'what'],
        recent.map((e) => [
          short(e.at),
          `${ended(e.kind, e.resolution)}${e.silenced ? ' (silenced)' : ''}`,
          e.rule,
          where(e),
          e.summary,
        ]),
      ),
    );
  }
  const channels = Object.entries(view.channels);
  if (channels.length > 0) {
    const since = channels[0]![1].since;
    const counted = since ? ` (counted since ${utcMinute(since)}, when routewatch started)` : '';
    lines.push(
      '',
      `Channels${counted}: ${channels
        .map(
          ([name, c]) => `${name} ${c.sent} sent, ${c.queued} queued${givenUp(c)}${lastError(c)}`,
        )
        .join('; ')}`,
    );
  }
  // Read from the deliveries: a lost page is still said after a restart.
  if (view.givenUp && view.givenUp.length > 0) {
    lines.push(
      `Given up in the last 7 days: ${view.givenUp
        .map(
          (g) =>
            `${g.channel} ${g.alerts} alert${g.alerts === 1 ? '' : 's'} ${g.status === 'refused' ? 'refused by the endpoint' : 'older than the look-back'} (latest ${utcMinute(g.latest)})`,
        )
        .join('; ')}; routewatch alerts --test checks a channel now`,
    );
  }
  return lines.join('\n') + '\n';
}

/** What a channel did not send, each count said when there is one. */
function givenUp(c: AlertsView['channels'][string]): string {
  return [
    c.refused ? `${c.refused} refused by the endpoint and given up` : '',
    c.expired ? `${c.expired} given up as older than the look-back` : '',
    c.silenced ? `${c.silenced} kept back by a silence` : '',
    c.unannounced ? `${c.unannounced} ends not sent (their firing never reached it)` : '',
  ]
    .filter((part) => part !== '')
    .map((part) => `, ${part}`)
    .join('');
}

/**
 * A channel's last error, when and whether it delivered since: an error the channel has
 * recovered from read as if it were still failing.
 */
function lastError(c: AlertsView['channels'][string]): string {
  if (!c.lastError) return '';
  const at = c.lastErrorAt ? ` at ${utcMinute(c.lastErrorAt)}` : '';
  const recovered = c.lastErrorAt && c.lastSentAt && c.lastSentAt >= c.lastErrorAt;
  return `, last error ${c.lastError}${at}${recovered ? ` (delivered since, last at ${utcMinute(c.lastSentAt!)})` : ''}`;
}
