import { z } from 'zod';
import { chNumber } from '../storage/rows.js';
import type { Store } from '../storage/store.js';
import type { Finding } from './detectors.js';
import { ALERT_STATES, EVENT_KINDS } from './lifecycle.js';
import type { AlertEvent, AlertRecord } from './lifecycle.js';
import type { AlertMessage } from './message.js';
import type { Silence } from './silences.js';
import { toClickHouseTime } from './report.js';

/**
 * Alert state, history and deliveries in ClickHouse (sql/migrations/0020_alerting.sql): the
 * only module that reads or writes those tables. Rows read back are checked with zod.
 */

const time = z.string().transform((text) => Date.parse(`${text.replace(' ', 'T')}Z`));
const json = <T>() => z.string().transform((text) => JSON.parse(text) as T);

const stateRow = z.object({
  fingerprint: z.string(),
  rule_id: z.string(),
  cohort: z.string(),
  route: z.string(),
  detail: z.string(),
  state: z.enum(ALERT_STATES),
  since: time,
  pending_count: chNumber,
  clear_count: chNumber,
  incident: chNumber,
  seq: chNumber,
  last_notified_at: time.nullable(),
  held_since: time.nullable(),
  finding: json<Finding>(),
  evaluated_at: time,
});

const resolvedRow = z.object({
  fingerprint: z.string(),
  resolved_at: time,
  resolution: z.enum(['recovered', 'closed_without_verdict']),
  resolved_summary: z.string(),
});

const openedRow = z.object({
  fingerprint: z.string(),
  last_incident: chNumber,
  opened_at: time,
  change_point: z.string(),
  opened_summary: z.string(),
});

/** An event's own columns, without its message. */
const eventColumns = z.object({
  fingerprint: z.string(),
  incident: chNumber,
  seq: chNumber,
  kind: z.enum(EVENT_KINDS),
  at: time,
  notify: chNumber.transform((v) => v === 1),
  rule_id: z.string(),
  cohort: z.string(),
  route: z.string(),
  detail: z.string(),
});

const eventRow = eventColumns.extend({ message: json<AlertMessage>() });

/** One event, as statesBefore rebuilds a record from it: the message's few fields it needs. */
const historyRow = eventColumns.extend({
  change_point: z.string(),
  summary: z.string(),
  resolution: z.enum(['', 'recovered', 'closed_without_verdict']),
});

const silenceRow = z.object({
  id: z.string(),
  cohort: z.string(),
  route: z.string(),
  rule_id: z.string(),
  starts_at: time,
  ends_at: time,
  comment: z.string(),
  created_at: time,
});

export interface StoredEvent {
  fingerprint: string;
  incident: number;
  seq: number;
  kind: AlertEvent['kind'];
  at: number;
  notify: boolean;
  ruleId: string;
  cohort: string;
  route: string;
  detail: string;
  message: AlertMessage;
}

const ms = (value: number) => toClickHouseTime(new Date(value));
/** 2262-04-11, the last instant a DateTime64(3) holds: "no upper bound" in a time range. */
const LATEST_MS = Date.UTC(2262, 3, 11);

/**
 * A channel's delivery of one event: `expired` is one it will never send (too old), `refused` one
 * the channel's endpoint refused as it is (HTTP 400, 413, 422), given up so that later ones go,
 * `silenced` one still queued when a silence that matches it came into force, `unannounced` the
 * end of an incident whose firing never reached this channel (kept back there, or given up).
 */
export interface DeliveryOutcome {
  status: 'sent' | 'failing' | 'registered' | 'expired' | 'refused' | 'silenced' | 'unannounced';
  attempts: number;
  error: string;
  /** A `failing` answer's Retry-After, as epoch ms: the channel is not tried again before. */
  retryAt?: number | undefined;
}

/** An incident that fired and resolved: where its change began, and its resolution (ms). */
export interface IncidentSpan {
  ruleId: string;
  cohort: string;
  route: string;
  fromMs: number;
  toMs: number;
}

export class AlertStore {
  #lastVersion = 0;
  constructor(private readonly store: Store) {}

  /** A version that only grows within this process: the latest write wins whatever `at` said. */
  #version(): number {
    this.#lastVersion = Math.max(this.#lastVersion + 1, Date.now() * 1000);
    return this.#lastVersion;
  }

  async states(): Promise<AlertRecord[]> {
    const rows = await this.store.query(
      'SELECT * EXCEPT version FROM alert_states FINAL',
      {},
      stateRow,
    );
    // The last resolution of each alert, from its events (written before its state): when (the
    // evidence before it is spent, lifecycle.ts evidenceFrom), how, and its finding's summary. Events stored before the
    // message carried `resolution` say it by their finding: a recovery needs a verdict.
    const resolutions = await this.store.query(
      `SELECT fingerprint, max(at) AS resolved_at,
         argMax(if(JSONExtractString(message, 'resolution') != '',
                   JSONExtractString(message, 'resolution'),
                   if(JSONExtractString(message, 'finding', 'status') = 'insufficient_data',
                      'closed_without_verdict', 'recovered')), at) AS resolution,
         argMax(JSONExtractString(message, 'finding', 'summary'), at) AS resolved_summary
       FROM alert_events FINAL
       WHERE kind = 'resolved' GROUP BY fingerprint`,
      {},
      resolvedRow,
    );
    const resolved = new Map(resolutions.map((r) => [r.fingerprint, r]));
    // Where each open incident began (lifecycle.ts changedAt), from its last pending or firing
    // event: the change point that event's finding estimated, else the event's time.
    const open = rows.some((r) => r.state === 'pending' || r.state === 'firing')
      ? await this.store.query(
          `SELECT fingerprint, argMax(incident, (incident, seq)) AS last_incident,
             argMax(at, (incident, seq)) AS opened_at,
             argMax(JSONExtractString(message, 'finding', 'current', 'since'), (incident, seq))
               AS change_point,
             argMax(JSONExtractString(message, 'finding', 'summary'), (incident, seq))
               AS opened_summary
           FROM alert_events FINAL
           WHERE kind IN ('pending', 'firing') GROUP BY fingerprint`,
          {},
          openedRow,
        )
      : [];
    const opened = new Map(open.map((r) => [r.fingerprint, r]));
    const changedAt = (r: z.output<typeof stateRow>): number | null => {
      const event = opened.get(r.fingerprint);
      if ((r.state !== 'pending' && r.state !== 'firing') || event?.last_incident !== r.incident)
        return null;
      return event.change_point ? Date.parse(event.change_point) : event.opened_at;
    };
    return rows.map((r) => ({
      fingerprint: r.fingerprint,
      ruleId: r.rule_id,
      cohort: r.cohort,
      route: r.route,
      detail: r.detail,
      state: r.state,
      since: r.since,
      pendingCount: r.pending_count,
      clearCount: r.clear_count,
      incident: r.incident,
      seq: r.seq,
      lastNotifiedAt: r.last_notified_at,
      resolvedAt: resolved.get(r.fingerprint)?.resolved_at ?? null,
      resolution: resolved.get(r.fingerprint)?.resolution ?? null,
      resolvedSummary: resolved.get(r.fingerprint)?.resolved_summary ?? null,
      heldSince: r.held_since,
      changedAt: changedAt(r),
      firedSummary:
        r.state === 'firing' && opened.get(r.fingerprint)?.last_incident === r.incident
          ? opened.get(r.fingerprint)!.opened_summary || null
          : null,
      finding: r.finding,
      evaluatedAt: r.evaluated_at,
    }));
  }

  /**
   * The records of `fingerprints` as they stood just before `beforeMs`, rebuilt from their events
   * (a dry run of a past time steps these, not today's: lifecycle.ts). An alert with no event
   * before then had not been raised: it has no record. The events hold every change of state,
   * incident and message; they do not hold the counts kept between them (evaluations degraded
   * while pending, well while firing) nor since when a firing alert had no verdict, so those are
   * taken as at the event: 1, 0 and none (historyRecords).
   */
  async statesBefore(beforeMs: number, fingerprints: readonly string[]): Promise<AlertRecord[]> {
    if (fingerprints.length === 0) return [];
    const rows = await this.store.query(
      `SELECT fingerprint, incident, seq, kind, at, notify, rule_id, cohort, route, detail,
         JSONExtractString(message, 'finding', 'current', 'since') AS change_point,
         JSONExtractString(message, 'finding', 'summary') AS summary,
         if(kind != 'resolved', '',
            if(JSONExtractString(message, 'resolution') != '',
               JSONExtractString(message, 'resolution'),
               if(JSONExtractString(message, 'finding', 'status') = 'insufficient_data',
                  'closed_without_verdict', 'recovered'))) AS resolution
       FROM alert_events FINAL
       WHERE at < {before:DateTime64(3, 'UTC')} AND has({fingerprints:Array(String)}, fingerprint)
       ORDER BY fingerprint, incident, seq`,
      { before: ms(beforeMs), fingerprints: [...fingerprints] },
      historyRow,
    );
    const records = historyRecords(rows);
    if (records.length === 0) return [];
    // Each record's finding: its last event's, read for those events only (a message is large).
    const findings = await this.store.query(
      // The fingerprints first: the table's key, which the computed one below cannot prune by.
      `SELECT fingerprint, JSONExtractRaw(message, 'finding') AS finding FROM alert_events FINAL
       WHERE has({fingerprints:Array(String)}, fingerprint)
         AND has({keys:Array(String)}, concat(fingerprint, '/', toString(incident), '/', toString(seq)))`,
      {
        fingerprints: records.map((r) => r.fingerprint),
        keys: records.map((r) => `${r.fingerprint}/${r.incident}/${r.seq}`),
      },
      z.object({ fingerprint: z.string(), finding: json<Finding>() }),
    );
    const findingOf = new Map(findings.map((f) => [f.fingerprint, f.finding]));
    return records.flatMap((r) => {
      const finding = findingOf.get(r.fingerprint);
      return finding ? [{ ...r, finding }] : [];
    });
  }

  async saveStates(records: readonly AlertRecord[]): Promise<void> {
    if (records.length === 0) return;
    const lines = records.map((r) =>
      JSON.stringify({
        fingerprint: r.fingerprint,
        rule_id: r.ruleId,
        cohort: r.cohort,
        route: r.route,
        detail: r.detail,
        state: r.state,
        since: ms(r.since),
        pending_count: r.pendingCount,
        clear_count: r.clearCount,
        incident: r.incident,
        seq: r.seq,
        last_notified_at: r.lastNotifiedAt === null ? null : ms(r.lastNotifiedAt),
        held_since: r.heldSince === null ? null : ms(r.heldSince),
        finding: JSON.stringify(r.finding),
        evaluated_at: ms(r.evaluatedAt),
        version: this.#version(),
      }),
    );
    await this.store.insertJsonEachRow('alert_states', Buffer.from(lines.join('\n') + '\n'));
  }

  /** Written before the states they lead to: a crash in between recomputes the same keys. */
  async saveEvents(events: readonly { event: AlertEvent; message: AlertMessage }[]): Promise<void> {
    if (events.length === 0) return;
    const lines = events.map(({ event, message }) =>
      JSON.stringify({
        fingerprint: event.fingerprint,
        incident: event.incident,
        seq: event.seq,
        kind: event.kind,
        at: ms(event.at),
        notify: event.notify ? 1 : 0,
        rule_id: event.finding.ruleId,
        cohort: event.finding.cohort,
        route: event.finding.route,
        detail: event.finding.detail,
        message: JSON.stringify(message),
        // This process's clock, which the notifier's look-back is measured on (undelivered):
        // the column's default is the server's, and a server behind it hid new events.
        created_at: ms(Date.now()),
      }),
    );
    await this.store.insertJsonEachRow('alert_events', Buffer.from(lines.join('\n') + '\n'));
  }

  /**
   * The latest `limit` transitions (since `since`), of the cohorts and routes named when some
   * are: filtered before the limit, so that a busy cohort does not push a quiet one's out.
   */
  async history(
    limit: number,
    since?: number,
    filter: { cohorts?: readonly string[]; routes?: readonly string[] } = {},
  ): Promise<StoredEvent[]> {
    const rows = await this.store.query(
      `SELECT * EXCEPT created_at FROM alert_events FINAL
       WHERE at >= {since:DateTime64(3, 'UTC')}
         AND (empty({cohorts:Array(String)}) OR has({cohorts:Array(String)}, cohort))
         AND (empty({routes:Array(String)}) OR has({routes:Array(String)}, route))
       ORDER BY at DESC, fingerprint, seq DESC LIMIT {limit:UInt32}`,
      {
        since: ms(since ?? 0),
        limit,
        cohorts: [...(filter.cohorts ?? [])],
        routes: [...(filter.routes ?? [])],
      },
      eventRow,
    );
    return rows.map(toStoredEvent);
  }

  /**
   * The incidents of rules with a trailing baseline that fired and resolved at or after
   * `sinceMs`: their rule, cohort × route and span, from where the firing event's finding put the
   * change (else when it fired) to the resolution. The evaluator leaves these spans out of its
   * routes' trailing baselines. Whether a baseline was trailing is read from the event (its
   * finding's baseline), not from the rules file: an incident stays what it was when a rule is
   * changed or removed.
   */
  async resolvedIncidents(sinceMs: number): Promise<IncidentSpan[]> {
    // Every firing, and the resolutions since: each resolution pairs with the firing before it
    // in its alert's order. One incident number can hold several fired episodes (a number no
    // message went out under is given to the next one, lifecycle.ts), so they are not grouped by
    // it. No subquery or join: on a cluster one incident's events lie on several shards.
    const rows = await this.store.query(
      `SELECT fingerprint, incident, seq, kind, rule_id, cohort, route, at,
         if(kind = 'firing', JSONExtractString(message, 'finding', 'current', 'since'), '')
           AS change_point,
         if(kind = 'firing', JSONExtractString(message, 'finding', 'baseline', 'description'), '')
           AS baseline
       FROM alert_events FINAL
       WHERE kind = 'firing' OR (kind = 'resolved' AND at >= {since:DateTime64(3, 'UTC')})
       ORDER BY fingerprint, incident, seq`,
      { since: ms(sinceMs) },
      z.object({
        fingerprint: z.string(),
        incident: chNumber,
        seq: chNumber,
        kind: z.enum(EVENT_KINDS),
        rule_id: z.string(),
        cohort: z.string(),
        route: z.string(),
        at: time,
        change_point: z.string(),
        baseline: z.string(),
      }),
    );
    return pairIncidents(rows);
  }

  /**
   * The severity the alert's last message carried: a rule gone from the rules file has none now,
   * and its closing message keeps the one it fired with.
   */
  async lastSeverity(fingerprint: string): Promise<AlertMessage['severity'] | undefined> {
    const [row] = await this.store.query(
      `SELECT JSONExtractString(message, 'severity') AS severity FROM alert_events FINAL
       WHERE fingerprint = {fingerprint:String} ORDER BY incident DESC, seq DESC LIMIT 1`,
      { fingerprint },
      z.object({ severity: z.string() }),
    );
    const parsed = z.enum(['critical', 'warning', 'info']).safeParse(row?.severity);
    return parsed.success ? parsed.data : undefined;
  }

  /** Silences that end after `endsAfterMs`, by start; those called off before they began are not. */
  async silences(endsAfterMs: number): Promise<Silence[]> {
    const rows = await this.store.query(
      `SELECT * EXCEPT version FROM alert_silences FINAL
       WHERE ends_at > {after:DateTime64(3, 'UTC')} AND ends_at > starts_at
       ORDER BY starts_at, id`,
      { after: ms(Math.max(0, endsAfterMs)) },
      silenceRow,
    );
    return rows.map(toSilence);
  }

  async silence(id: string): Promise<Silence | undefined> {
    const [row] = await this.store.query(
      'SELECT * EXCEPT version FROM alert_silences FINAL WHERE id = {id:String}',
      { id },
      silenceRow,
    );
    return row && toSilence(row);
  }

  /** Writes a silence, or a new version of one (ended early: its `endsAt` moved). */
  async saveSilence(silence: Silence): Promise<void> {
    const line = JSON.stringify({
      id: silence.id,
      cohort: silence.cohort,
      route: silence.route,
      rule_id: silence.ruleId,
      starts_at: ms(silence.startsAt),
      ends_at: ms(silence.endsAt),
      comment: silence.comment,
      created_at: ms(silence.createdAt),
      version: this.#version(),
    });
    await this.store.insertJsonEachRow('alert_silences', Buffer.from(line + '\n'));
  }

  /**
   * When a channel was first configured (recorded on its first start): it gets the events
   * created since, not the history from before it existed.
   */
  async channelSince(channel: string): Promise<number> {
    const [row] = await this.store.query(
      `SELECT toUnixTimestamp64Milli(min(updated_at)) AS since, count() AS n FROM alert_deliveries
       WHERE channel = {channel:String} AND status = 'registered'`,
      { channel },
      z.object({ since: chNumber, n: chNumber }),
    );
    if (row && row.n > 0) return row.since;
    const now = Date.now();
    await this.recordDelivery({ fingerprint: '', incident: 0, seq: 0 }, channel, {
      status: 'registered',
      attempts: 0,
      error: '',
    });
    return now;
  }

  /**
   * When the channel may be tried again, as epoch ms, if an answer told it to wait past `now`
   * (429 with Retry-After) and the message it refused has not been sent or given up since: so
   * that a restart waits as told. 0 when nothing asks it to wait.
   */
  async retryAt(channel: string, now = Date.now()): Promise<number> {
    const [row] = await this.store.query(
      `SELECT toUnixTimestamp64Milli(max(retry_at)) AS at, count() AS n FROM alert_deliveries FINAL
       WHERE channel = {channel:String} AND status = 'failing'
         AND retry_at > fromUnixTimestamp64Milli({now:Int64}, 'UTC')`,
      { channel, now },
      z.object({ at: chNumber.nullable(), n: chNumber }),
    );
    return row && row.n > 0 && row.at !== null ? row.at : 0;
  }

  /**
   * Notify events the channel has not received, oldest first: created since the channel was
   * registered and within the last `withinMs`.
   */
  async undelivered(
    channel: string,
    sinceMs: number,
    withinMs: number,
    now = Date.now(),
  ): Promise<StoredEvent[]> {
    return this.#unsent(channel, Math.max(sinceMs, now - withinMs), Number.MAX_SAFE_INTEGER);
  }

  /** Notify events created in [fromMs, beforeMs) that the channel neither received nor gave up. */
  async #unsent(channel: string, fromMs: number, beforeMs: number): Promise<StoredEvent[]> {
    const rows = await this.store.query(
      `SELECT e.* EXCEPT created_at FROM alert_events AS e FINAL
       LEFT ANTI JOIN
       (
           SELECT fingerprint, incident, seq FROM alert_deliveries FINAL
           WHERE channel = {channel:String}
             AND status IN ('sent', 'expired', 'refused', 'silenced', 'unannounced')
       ) AS d USING (fingerprint, incident, seq)
       WHERE e.notify = 1 AND e.created_at >= {from:DateTime64(3, 'UTC')}
         AND e.created_at < {before:DateTime64(3, 'UTC')}
       ORDER BY e.created_at, e.at, e.fingerprint, e.seq`,
      { channel, from: ms(fromMs), before: ms(Math.min(beforeMs, LATEST_MS)) },
      eventRow,
    );
    return rows.map(toStoredEvent);
  }

  /**
   * The incidents, of those `events` belong to, that the channel was told of: a message of the
   * incident before the event (its firing, a reminder) was delivered there. A delivery is only
   * ever recorded `sent` once accepted, so any such row is enough (no FINAL).
   */
  async announced(
    channel: string,
    events: readonly Pick<StoredEvent, 'fingerprint' | 'incident' | 'seq'>[],
  ): Promise<Set<string>> {
    if (events.length === 0) return new Set();
    const rows = await this.store.query(
      `SELECT DISTINCT fingerprint, incident, seq FROM alert_deliveries
       WHERE channel = {channel:String} AND status = 'sent'
         AND has({fingerprints:Array(String)}, fingerprint)`,
      { channel, fingerprints: [...new Set(events.map((e) => e.fingerprint))] },
      z.object({ fingerprint: z.string(), incident: chNumber, seq: chNumber }),
    );
    const told = new Set<string>();
    for (const event of events) {
      const key = incidentKey(event);
      if (rows.some((r) => incidentKey(r) === key && r.seq < event.seq)) told.add(key);
    }
    return told;
  }

  /**
   * The incidents (incidentKey) of `alerts` whose firing or a reminder was notified: told to the
   * channels, as far as the evaluator is concerned (each channel's own record is `announced`).
   */
  async notifiedIncidents(
    alerts: readonly (Pick<StoredEvent, 'fingerprint' | 'incident'> & {
      /** When this episode fired: an incident number given back is reused by the next one. */
      firedAt: number;
    })[],
  ): Promise<Set<string>> {
    if (alerts.length === 0) return new Set();
    const rows = await this.store.query(
      `SELECT fingerprint, incident, max(at) AS last FROM alert_events FINAL
       WHERE notify = 1 AND kind IN ('firing', 'repeat')
         AND has({fingerprints:Array(String)}, fingerprint)
       GROUP BY fingerprint, incident`,
      { fingerprints: [...new Set(alerts.map((a) => a.fingerprint))] },
      z.object({ fingerprint: z.string(), incident: chNumber, last: time }),
    );
    const lastNotified = new Map(rows.map((r) => [incidentKey(r), r.last]));
    return new Set(
      alerts
        .filter((a) => (lastNotified.get(incidentKey(a)) ?? -Infinity) >= a.firedAt)
        .map((a) => incidentKey(a)),
    );
  }

  /**
   * Marks `expired` the notify events the channel never received that are older than `withinMs`
   * (and created since it was registered): they will not be sent. Returns them, for the log.
   */
  async expireUndelivered(
    channel: string,
    sinceMs: number,
    withinMs: number,
    now = Date.now(),
  ): Promise<StoredEvent[]> {
    const events = await this.#unsent(channel, sinceMs, now - withinMs);
    if (events.length > 0) {
      const outcome = {
        status: 'expired',
        attempts: 0,
        error: 'older than the look-back when its turn came',
      } as const;
      const lines = events.map((event) => this.#deliveryLine(event, channel, outcome));
      await this.store.insertJsonEachRow('alert_deliveries', Buffer.from(lines.join('\n') + '\n'));
    }
    return events;
  }

  async recordDelivery(
    event: Pick<StoredEvent, 'fingerprint' | 'incident' | 'seq'>,
    channel: string,
    outcome: DeliveryOutcome,
  ): Promise<void> {
    await this.recordDeliveries([event], channel, outcome);
  }

  /**
   * The alerts whose message each channel gave up (`refused` by the endpoint, `expired` past the
   * look-back) since `sinceMs`, by channel and status, with the latest: read from the deliveries,
   * so that a restart does not forget a lost page. A Slack group of N alerts counts N.
   */
  async givenUp(
    sinceMs: number,
  ): Promise<{ channel: string; status: 'refused' | 'expired'; alerts: number; latest: number }[]> {
    const rows = await this.store.query(
      `SELECT channel, status, count() AS alerts, max(updated_at) AS latest
       FROM alert_deliveries FINAL
       WHERE status IN ('refused', 'expired') AND updated_at >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')
       GROUP BY channel, status ORDER BY channel, status`,
      { since: sinceMs },
      z.object({
        channel: z.string(),
        status: z.enum(['refused', 'expired']),
        alerts: chNumber,
        latest: time,
      }),
    );
    return rows;
  }

  /** One outcome for several events: those one message carried (a Slack group), in one insert. */
  async recordDeliveries(
    events: readonly Pick<StoredEvent, 'fingerprint' | 'incident' | 'seq'>[],
    channel: string,
    outcome: DeliveryOutcome,
  ): Promise<void> {
    const lines = events.map((event) => this.#deliveryLine(event, channel, outcome));
    await this.store.insertJsonEachRow('alert_deliveries', Buffer.from(lines.join('\n') + '\n'));
  }

  #deliveryLine(
    event: Pick<StoredEvent, 'fingerprint' | 'incident' | 'seq'>,
    channel: string,
    outcome: DeliveryOutcome,
  ): string {
    return JSON.stringify({
      fingerprint: event.fingerprint,
      incident: event.incident,
      seq: event.seq,
      channel,
      status: outcome.status,
      attempts: outcome.attempts,
      last_error: outcome.error.slice(0, 500),
      retry_at: outcome.retryAt === undefined ? null : ms(outcome.retryAt),
      updated_at: ms(Date.now()),
      version: this.#version(),
    });
  }
}

/** One incident of one alert, as a key. */
export function incidentKey(e: Pick<StoredEvent, 'fingerprint' | 'incident'>): string {
  return `${e.fingerprint}\u0000${e.incident}`;
}

function toStoredEvent(r: z.output<typeof eventRow>): StoredEvent {
  return {
    fingerprint: r.fingerprint,
    incident: r.incident,
    seq: r.seq,
    kind: r.kind,
    at: r.at,
    notify: r.notify,
    ruleId: r.rule_id,
    cohort: r.cohort,
    route: r.route,
    detail: r.detail,
    message: r.message,
  };
}

function toSilence(r: z.output<typeof silenceRow>): Silence {
  return {
    id: r.id,
    cohort: r.cohort,
    route: r.route,
    ruleId: r.rule_id,
    startsAt: r.starts_at,
    endsAt: r.ends_at,
    comment: r.comment,
    createdAt: r.created_at,
  };
}

/**
 * Resolutions paired with the firing before each (rows in each alert's order: fingerprint,
 * incident, seq), for the incidents of a trailing baseline. Exported for its tests.
 */
export function pairIncidents(
  rows: readonly {
    fingerprint: string;
    kind: string;
    rule_id: string;
    cohort: string;
    route: string;
    at: number;
    change_point: string;
    baseline: string;
  }[],
): IncidentSpan[] {
  const spans: IncidentSpan[] = [];
  let fired: (typeof rows)[number] | undefined;
  for (const row of rows) {
    if (fired && fired.fingerprint !== row.fingerprint) fired = undefined;
    if (row.kind === 'firing') {
      fired = row;
      continue;
    }
    if (row.kind !== 'resolved' || !fired) continue;
    const changed = fired.change_point ? Date.parse(fired.change_point) : Number.NaN;
    if (fired.baseline.startsWith('trailing '))
      spans.push({
        ruleId: fired.rule_id,
        cohort: fired.cohort,
        route: fired.route,
        fromMs: Number.isFinite(changed) ? Math.min(changed, fired.at) : fired.at,
        toMs: row.at,
      });
    fired = undefined;
  }
  return spans;
}

/**
 * Alert records rebuilt from their events (rows in each alert's order: fingerprint, incident,
 * seq), each as the lifecycle left it after its last event, but for its finding (statesBefore
 * reads it). What no event records is taken as it was at the event: a pending alert degraded
 * once (pendingCount 1), a firing one not yet well (clearCount 0) and judged (heldSince null).
 * Exported for its tests.
 */
export function historyRecords(
  rows: readonly z.output<typeof historyRow>[],
): Omit<AlertRecord, 'finding'>[] {
  const records = new Map<string, Omit<AlertRecord, 'finding'>>();
  for (const row of rows) {
    const r = records.get(row.fingerprint) ?? {
      fingerprint: row.fingerprint,
      ruleId: row.rule_id,
      cohort: row.cohort,
      route: row.route,
      detail: row.detail,
      state: 'inactive',
      since: row.at,
      pendingCount: 0,
      clearCount: 0,
      incident: row.incident,
      seq: row.seq,
      lastNotifiedAt: null,
      resolvedAt: null,
      resolution: null,
      resolvedSummary: null,
      heldSince: null,
      changedAt: null,
      firedSummary: null,
      evaluatedAt: row.at,
    };
    const changedAt = row.change_point ? Date.parse(row.change_point) : row.at;
    // An incident opens with no message sent yet (lifecycle.ts step): pending, or firing at once
    // from inactive or resolved.
    const opens = row.kind === 'pending' || (row.kind === 'firing' && r.state !== 'pending');
    const lastNotifiedAt = opens ? null : r.lastNotifiedAt;
    let change: Partial<AlertRecord>;
    switch (row.kind) {
      case 'pending':
        change = { state: 'pending', since: row.at, pendingCount: 1, changedAt, lastNotifiedAt };
        break;
      case 'firing':
        change = {
          state: 'firing',
          since: row.at,
          clearCount: 0,
          changedAt,
          lastNotifiedAt,
          firedSummary: row.summary || null,
        };
        break;
      case 'repeat':
        // Sent on a degraded evaluation, which sets the recovery count back to 0.
        change = { clearCount: 0 };
        break;
      case 'resolved':
        change = {
          state: 'resolved',
          since: row.at,
          pendingCount: 0,
          resolvedAt: row.at,
          resolution: row.resolution || 'recovered',
          resolvedSummary: row.summary,
          changedAt: null,
          firedSummary: null,
        };
        break;
      case 'cleared':
        change = { state: 'inactive', since: row.at, pendingCount: 0, changedAt: null };
        break;
    }
    const next = { ...r, ...change, incident: row.incident, seq: row.seq, evaluatedAt: row.at };
    if (row.notify) next.lastNotifiedAt = row.at;
    records.set(row.fingerprint, next);
  }
  return [...records.values()];
}
