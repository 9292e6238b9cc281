import { createHash, randomUUID } from 'node:crypto';
import { incidentKey } from './alert-store.js';
import type { AlertStore, StoredEvent } from './alert-store.js';
import { formatDuration } from '../server/time.js';
import {
  SLACK_GROUP_LIMIT,
  slackGroupMessage,
  slackMessage,
  slackTestMessage,
  webhookBody,
  webhookTestBody,
} from './message.js';
import type { AlertMessage, GroupPart, TestMessage } from './message.js';
import { SEVERITY_RANK } from './rules.js';
import { OutageLog } from '../storage/outage-log.js';
import { silenceOf } from './silences.js';
import type { Silence } from './silences.js';

/**
 * Delivers alert events to the configured channels — a Slack incoming webhook and a generic JSON
 * webhook — each with its own queue: in order, at most one message per `minIntervalMs`,
 * honouring a 429's Retry-After, retrying other failures with exponential backoff (the queue is
 * the events table: what a channel has not acknowledged is sent again after a restart). A message
 * is given up in two cases only, each logged and counted: the endpoint refused that message as it
 * is (400, 413, 422, three times), so that it does not hold up every alert after it; or it grew
 * older than the look-back while undelivered. Webhook URLs are secrets: they are never logged.
 */

/** Answers that refuse the message itself (Slack: `invalid_payload`, too large), not the channel. */
const REFUSED_STATUSES: ReadonlySet<number> = new Set([400, 413, 422]);
/**
 * Slack's answers about the webhook or its channel rather than the message (a mistyped or revoked
 * URL, an archived channel), which some paths give with a 400: the message waits, as for a 404,
 * until the channel is fixed.
 */
const CHANNEL_ERRORS =
  /^(no_service|no_service_id|no_team|team_disabled|invalid_token|channel_not_found|channel_is_archived|action_prohibited|posting_to_general_channel_denied)\b/;
/** Attempts a refused message gets before it is given up: a proxy's passing 400 is retried. */
const REFUSED_ATTEMPTS = 3;

export interface Channel {
  /** `slack` or `webhook`: stored with each delivery. */
  name: string;
  url: string;
  render(message: AlertMessage): unknown;
  /**
   * Renders the alerts of one cohort × route that changed the same way in one evaluation as one
   * message (at most `groupLimit`). A channel without it gets one message per event: a machine
   * reading the webhook keys on each alert's fingerprint.
   */
  renderGroup?(messages: readonly AlertMessage[], part?: GroupPart): unknown;
  groupLimit?: number;
  /** A message that only says the channel works (`routewatch alerts --test`). */
  renderTest(test: TestMessage): unknown;
}

/** How one channel took a test message. */
export interface ChannelTestResult {
  channel: string;
  ok: boolean;
  /** The endpoint's HTTP status; absent when no answer came (refused, timed out). */
  status?: number;
  /** What went wrong, as the notifier logs it (URLs left out); empty when ok. */
  error: string;
  ms: number;
  /** False when no message was sent: the channel is waiting out its own 429 (`error` says till when). */
  tried?: false;
}

export function slackChannel(url: string): Channel {
  return {
    name: 'slack',
    url,
    render: slackMessage,
    renderGroup: slackGroupMessage,
    groupLimit: SLACK_GROUP_LIMIT,
    renderTest: slackTestMessage,
  };
}

/** The events one message carries, and its part of a change larger than one message holds. */
export interface EventBatch {
  events: StoredEvent[];
  part?: GroupPart;
}

/**
 * The queue's events in messages: the events of one evaluation (`at`) on one cohort × route of
 * the same kind (and resolution) together, the most severe first, at most `limit` a message, in
 * the order of each group's first event. A group split over messages says so in each part.
 */
export function groupEvents(events: readonly StoredEvent[], limit: number): EventBatch[] {
  const groups = new Map<string, StoredEvent[]>();
  for (const event of events) {
    const key = JSON.stringify([
      event.at,
      event.cohort,
      event.route,
      event.kind,
      event.message.resolution ?? '',
    ]);
    const group = groups.get(key);
    if (group) group.push(event);
    else groups.set(key, [event]);
  }
  const batches: EventBatch[] = [];
  for (const group of groups.values()) {
    group.sort(
      (a, b) =>
        SEVERITY_RANK[a.message.severity] - SEVERITY_RANK[b.message.severity] ||
        a.ruleId.localeCompare(b.ruleId) ||
        a.fingerprint.localeCompare(b.fingerprint),
    );
    const of = Math.ceil(group.length / limit);
    const whole = {
      of,
      total: group.length,
      critical: group.filter((e) => e.message.severity === 'critical').length,
      fingerprints: group.map((e) => e.fingerprint),
    };
    for (let i = 0; i < group.length; i += limit) {
      const events = group.slice(i, i + limit);
      batches.push(of > 1 ? { events, part: { index: i / limit + 1, ...whole } } : { events });
    }
  }
  return batches;
}

interface RequestTarget {
  url: string;
  authorization?: string;
  /** The secrets of the URL, kept out of what an answer echoes (its error body in the log and API). */
  secrets: string[];
}

/** `text` with each of `secrets` replaced by `<redacted>`. */
function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) out = out.replaceAll(secret, '<redacted>');
  return out;
}

/**
 * A channel URL as `fetch` takes it: credentials in it (`https://user:pass@host/hook`, as many
 * webhook receivers are given) become an `Authorization: Basic` header, since `fetch` refuses a
 * URL that holds them and every message would fail.
 */
export function requestTarget(url: string): RequestTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { url, secrets: [] };
  }
  // A long path is a secret too (Slack's /services/T…/B…/…): the whole URL is never logged.
  const path = parsed.pathname.length >= 16 ? [`${parsed.pathname}${parsed.search}`] : [];
  if (parsed.username === '' && parsed.password === '') return { url, secrets: path };
  // A `%` that starts no escape (a password typed as it is) is taken as it is.
  const decoded = (part: string) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return part;
    }
  };
  const password = parsed.password;
  const credentials = `${decoded(parsed.username)}:${decoded(password)}`;
  parsed.username = '';
  parsed.password = '';
  const basic = Buffer.from(credentials, 'utf8').toString('base64');
  return {
    url: parsed.href,
    authorization: `Basic ${basic}`,
    // Read before the URL lost them: the token, and the password as typed and decoded.
    secrets: [basic, decoded(password), password, ...path].filter((secret) => secret.length >= 4),
  };
}

export function webhookChannel(url: string): Channel {
  return { name: 'webhook', url, render: webhookBody, renderTest: webhookTestBody };
}

export interface NotifierLog {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
}

export interface NotifierOptions {
  channels: Channel[];
  store: AlertStore;
  log: NotifierLog;
  /** At most one message per this long, per channel (Slack: about one per second). */
  minIntervalMs?: number;
  /** Longest wait between two attempts of a failing message. */
  maxBackoffMs?: number;
  /** First wait after a failure; doubles each attempt. */
  initialBackoffMs?: number;
  /** A channel re-reads its queue at least this often. */
  pollMs?: number;
  /** Events older than this are not (re)sent (a channel also gets none from before it was added). */
  lookbackMs?: number;
  /** Per-request timeout. */
  requestTimeoutMs?: number;
  /** How long a stop waits for a message in flight before it abandons it (10 s). */
  stopGraceMs?: number;
  fetch?: typeof fetch;
}

export interface ChannelStats {
  sent: number;
  /** Failed attempts, retried. */
  retries: number;
  /**
   * Messages waiting, this one included while it is being retried: counted at each read of the
   * queue and again after each failed attempt, so it grows while a channel is down.
   */
  queued: number;
  /** Messages never delivered that grew older than the look-back: given up, and logged. */
  expired: number;
  /** Messages the endpoint refused as they are (400, 413, 422): given up, and logged. */
  refused: number;
  /** Messages kept back because a silence came into force while they waited. */
  silenced: number;
  /**
   * Ends of incidents (resolved, closed) not sent because the incident's firing never reached
   * this channel: kept back by a silence, refused, or given up as too old.
   */
  unannounced: number;
  /** The last failure, without the URL. */
  lastError: string;
  /** When it happened (ISO 8601), '' before any; a delivery after it means the channel recovered. */
  lastErrorAt: string;
  /** When a message was last delivered (ISO 8601), '' before any. */
  lastSentAt: string;
  /** When these counts started (ISO 8601): this process's notifier, not kept across restarts. */
  since: string;
}

/**
 * The same for every try of one message on one channel: the channel and the message's events,
 * each once (fingerprint, incident, seq). Two channels reaching one receiver do not share it.
 */
export function idempotencyKey(channel: string, batch: readonly StoredEvent[]): string {
  const events = batch.map((e) => `${e.fingerprint}:${e.incident}:${e.seq}`).sort();
  return createHash('sha256')
    .update([channel, ...events].join('\n'))
    .digest('hex')
    .slice(0, 32);
}

/** Seconds of a Retry-After header (seconds or an HTTP date); undefined when absent or bad. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

class ChannelQueue {
  readonly stats: ChannelStats = {
    sent: 0,
    retries: 0,
    queued: 0,
    expired: 0,
    refused: 0,
    silenced: 0,
    unannounced: 0,
    lastError: '',
    lastErrorAt: '',
    lastSentAt: '',
    since: new Date().toISOString(),
  };
  #lastSentAt = 0;
  /**
   * Not tried before this (epoch ms): a 429's Retry-After, kept in the store too, so that a
   * restart during the wait waits the rest of it. Undefined until read from the store.
   */
  #notBefore: number | undefined;
  #wake: (() => void) | undefined;
  #kicked = false;
  /**
   * Aborted `stopGraceMs` after the stop: a message in flight at shutdown may finish and be
   * recorded, but a channel given a long ROUTEWATCH_NOTIFY_TIMEOUT does not hold the exit that
   * long (the message goes again at the next start, with the same Idempotency-Key).
   */
  readonly #stopGrace = new AbortController();
  /** Reads of the queue that failed: an outage of the store said once. */
  readonly #readFailures: OutageLog;
  /** Where messages go, and as whom: see {@link requestTarget}. */
  readonly #target: RequestTarget;

  constructor(
    readonly channel: Channel,
    private readonly options: Required<Omit<NotifierOptions, 'channels'>>,
    private readonly signal: AbortSignal,
  ) {
    this.#target = requestTarget(channel.url);
    this.#readFailures = new OutageLog(
      options.log,
      `the ${channel.name} channel's read of its alert queue`,
      'its messages wait in the store, and go once it answers',
      describe,
    );
    signal.addEventListener(
      'abort',
      () => setTimeout(() => this.#stopGrace.abort(), options.stopGraceMs).unref(),
      { once: true },
    );
  }

  kick(): void {
    this.#kicked = true;
    this.#wake?.();
  }

  async run(): Promise<void> {
    let since: number | undefined;
    while (!this.signal.aborted) {
      let events: StoredEvent[];
      try {
        since ??= await this.options.store.channelSince(this.channel.name);
        this.#notBefore ??= await this.options.store.retryAt(this.channel.name);
        await this.#expire(since);
        events = await this.options.store.undelivered(
          this.channel.name,
          since,
          this.options.lookbackMs,
        );
        this.#readFailures.succeeded({ channel: this.channel.name });
      } catch (error) {
        this.#readFailures.failed(
          error,
          { channel: this.channel.name },
          'could not read the alert queue',
        );
        await this.#sleep(this.options.pollMs);
        continue;
      }
      this.stats.queued = events.length;
      const { renderGroup, groupLimit = 1 } = this.channel;
      const batches = renderGroup
        ? groupEvents(events, groupLimit)
        : events.map((e): EventBatch => ({ events: [e] }));
      for (const { events: batch, part } of batches) {
        if (this.signal.aborted) return;
        const recounted = await this.#deliver(batch, since, part);
        if (!recounted) this.stats.queued = Math.max(0, this.stats.queued - batch.length);
      }
      if (events.length === 0) await this.#idle();
    }
  }

  /**
   * Sends one message for `batch` (one event, or a group: groupEvents), recorded for each.
   * Resolves true when it counted the queue again itself (a group split into single messages),
   * so that the caller does not take the batch off the count a second time.
   */
  async #deliver(
    queued: readonly StoredEvent[],
    since: number,
    part?: GroupPart,
  ): Promise<boolean> {
    // A silence added while the message waited (the channel down, a long queue) keeps it back,
    // and the end of an incident this channel was never told of is noise there.
    const batch = await this.#unsilenced(await this.#announcedHere(queued));
    if (batch.length === 0) return false;
    const [event] = batch as [StoredEvent, ...StoredEvent[]];
    const alert = batch.length === 1 ? event.fingerprint : batch.map((e) => e.fingerprint);
    const body =
      (batch.length > 1 || part) && this.channel.renderGroup
        ? this.channel.renderGroup(
            batch.map((e) => e.message),
            part,
          )
        : this.channel.render(event.message);
    let attempts = 0;
    let refusals = 0;
    let backoff = this.options.initialBackoffMs;
    while (!this.signal.aborted) {
      await this.#sleep(this.#nextSendAt() - Date.now());
      if (this.signal.aborted) return false;
      if (attempts > 0) {
        const still = await this.#unsilenced(batch);
        if (still.length === 0) return false;
        if (still.length < batch.length) return this.#deliver(still, since, part);
      }
      attempts++;
      this.#lastSentAt = Date.now();
      const result = await this.#send(body, idempotencyKey(this.channel.name, batch));
      if (result.ok) {
        this.stats.sent += batch.length;
        this.stats.lastSentAt = new Date().toISOString();
        await this.#record(batch, { status: 'sent', attempts, error: '' });
        this.options.log.info(
          { channel: this.channel.name, alert, kind: event.kind, attempts },
          'alert delivered',
        );
        return false;
      }
      this.stats.retries++;
      this.stats.lastError = result.error;
      this.stats.lastErrorAt = new Date().toISOString();
      if (
        result.status !== undefined &&
        REFUSED_STATUSES.has(result.status) &&
        !CHANNEL_ERRORS.test(result.body ?? '')
      )
        refusals++;
      if (refusals >= REFUSED_ATTEMPTS && batch.length > 1) {
        // The group as one message is refused (too large, say): each alert on its own, then.
        this.options.log.warn(
          { channel: this.channel.name, alert, attempts, error: result.error },
          'the channel refused a grouped alert message; sending its alerts one by one',
        );
        for (const single of batch) await this.#deliver([single], since);
        await this.#recount(since, []);
        return true;
      }
      if (refusals >= REFUSED_ATTEMPTS) {
        this.stats.refused += batch.length;
        await this.#record(batch, { status: 'refused', attempts, error: result.error });
        this.options.log.error(
          { channel: this.channel.name, alert, attempts, error: result.error },
          `the channel refused this alert message ${refusals} times (${result.error}): it is ` +
            'given up, and the messages after it go on (routewatch alerts lists the current state)',
        );
        return false;
      }
      let waitMs: number;
      let retryAt: number | undefined;
      if (result.status === 429) {
        // Rate limited: wait as told (or a second), without growing the backoff, but no longer
        // than the longest backoff (an endpoint asking for a day would hold every alert of the
        // channel that long). The channel as a whole waits (a test message too), and a wait it
        // was told of is stored with the attempt, so that a restart meanwhile does not send early.
        waitMs = Math.min(result.retryAfterMs ?? 1000, this.options.maxBackoffMs);
        if (result.retryAfterMs !== undefined) this.#notBefore = retryAt = Date.now() + waitMs;
      } else {
        waitMs = Math.min(this.options.maxBackoffMs, backoff) * (0.8 + Math.random() * 0.4);
        backoff = Math.min(this.options.maxBackoffMs, backoff * 2);
      }
      const log =
        result.status !== undefined &&
        result.status >= 400 &&
        result.status < 500 &&
        result.status !== 429
          ? this.options.log.error.bind(this.options.log)
          : this.options.log.warn.bind(this.options.log);
      log(
        {
          channel: this.channel.name,
          alert,
          attempts,
          status: result.status,
          error: result.error,
          retryInMs: Math.round(waitMs),
        },
        'alert delivery failed; retrying',
      );
      if (attempts === 1 || attempts % 10 === 0 || retryAt !== undefined) {
        await this.#record(batch, { status: 'failing', attempts, error: result.error, retryAt });
      }
      // A message retried past the look-back is given up like the others that grew too old (a
      // group's events are of one evaluation: they grow too old together).
      try {
        if ((await this.#expire(since)).some((e) => batch.some((b) => sameEvent(e, b))))
          return false;
      } catch {
        // The store is unreachable: the next read of the queue expires it.
      }
      await this.#recount(since, batch);
      await this.#sleep(waitMs);
    }
    return false;
  }

  /**
   * The events of `batch` no silence in force now matches, and the ends of incidents (which
   * #announcedHere leaves only where the incident was told: a silence does not leave a channel
   * showing an incident that is over). Those a silence matches are recorded `silenced` (never
   * sent: their alert's next reminder comes on its usual clock) and logged. A store it cannot
   * read keeps the batch as it is: a silence must not lose a message.
   */
  async #unsilenced(batch: readonly StoredEvent[]): Promise<readonly StoredEvent[]> {
    const now = Date.now();
    let silences: Silence[];
    try {
      silences = await this.options.store.silences(now);
    } catch {
      return batch;
    }
    if (silences.length === 0) return batch;
    const kept = batch.filter(
      (e) => e.kind !== 'resolved' && silenceOf(silences, e, now) !== undefined,
    );
    if (kept.length === 0) return batch;
    await this.#record(kept, { status: 'silenced', attempts: 0, error: '' });
    this.stats.silenced += kept.length;
    this.options.log.info(
      {
        channel: this.channel.name,
        alert: kept.map((e) => e.fingerprint),
        silence: kept.map((e) => silenceOf(silences, e, now)!.id),
      },
      'alert message kept back: a silence came into force while it waited',
    );
    return batch.filter((e) => !kept.includes(e));
  }

  /**
   * The events of `batch` but the ends of incidents whose firing this channel never received (a
   * silence kept it back, the endpoint refused it, it expired): those are recorded
   * `unannounced`, not sent. Another channel that got the firing gets the end. A store it cannot
   * read keeps the batch as it is.
   */
  async #announcedHere(batch: readonly StoredEvent[]): Promise<readonly StoredEvent[]> {
    const ends = batch.filter((e) => e.kind === 'resolved');
    if (ends.length === 0) return batch;
    let told: Set<string>;
    try {
      told = await this.options.store.announced(this.channel.name, ends);
    } catch {
      return batch;
    }
    const untold = ends.filter((e) => !told.has(incidentKey(e)));
    if (untold.length === 0) return batch;
    await this.#record(untold, { status: 'unannounced', attempts: 0, error: '' });
    this.stats.unannounced += untold.length;
    this.options.log.info(
      { channel: this.channel.name, alert: untold.map((e) => e.fingerprint) },
      'end of an incident not sent: this channel was never told it fired',
    );
    return batch.filter((e) => !untold.includes(e));
  }

  /** Gives up the undelivered events older than the look-back: logged once, counted. */
  async #expire(since: number): Promise<StoredEvent[]> {
    const expired = await this.options.store.expireUndelivered(
      this.channel.name,
      since,
      this.options.lookbackMs,
    );
    if (expired.length > 0) {
      this.stats.expired += expired.length;
      this.options.log.warn(
        {
          channel: this.channel.name,
          expired: expired.length,
          oldest: new Date(expired[0]!.at).toISOString(),
          newest: new Date(expired.at(-1)!.at).toISOString(),
        },
        `${expired.length} alert message(s) were never delivered and are now older than ` +
          `${formatDuration(this.options.lookbackMs)}: they will not be sent (routewatch alerts ` +
          'lists the current state)',
      );
    }
    return expired;
  }

  /**
   * Counts the queue again while a message is retried: alerts raised during a channel's outage
   * would otherwise not show in `queued` until the message at its head got through.
   */
  async #recount(since: number, retried: readonly StoredEvent[]): Promise<void> {
    try {
      const waiting = await this.options.store.undelivered(
        this.channel.name,
        since,
        this.options.lookbackMs,
      );
      // The events being retried count whether or not this read lists them (they may have been
      // expired meanwhile by another read): they are taken off the count when their attempts end.
      const unlisted = retried.filter((r) => !waiting.some((e) => sameEvent(e, r))).length;
      this.stats.queued = waiting.length + unlisted;
    } catch {
      // The store is unreachable: the last count stands; the next read of the queue retries it.
    }
  }

  async #record(
    batch: readonly StoredEvent[],
    outcome: {
      status: 'sent' | 'failing' | 'refused' | 'silenced' | 'unannounced';
      attempts: number;
      error: string;
      retryAt?: number | undefined;
    },
  ): Promise<void> {
    try {
      await this.options.store.recordDeliveries(batch, this.channel.name, outcome);
    } catch (error) {
      // Sent but not recorded: after a restart it would be sent again. Logged; nothing else to do.
      this.options.log.error(
        {
          channel: this.channel.name,
          alert: batch.map((e) => e.fingerprint),
          err: describe(error),
        },
        'could not record an alert delivery',
      );
    }
  }

  async #send(
    body: unknown,
    key: string,
  ): Promise<{
    ok: boolean;
    status?: number;
    retryAfterMs?: number | undefined;
    body?: string;
    error: string;
  }> {
    // Not aborted on stop at once: a message in flight finishes and is recorded, else a restart
    // would send it again. Bounded by the request timeout, answer's body included, and by the
    // grace after a stop. A timer of our own, not AbortSignal.any([AbortSignal.timeout(…), …]):
    // on Node 20 the composite holds the timeout signal weakly, a garbage collection takes it,
    // and the request then waited for undici's own 300-s timeout (nodejs/node#57736).
    const abort = new AbortController();
    const timer = setTimeout(
      () =>
        abort.abort(
          new DOMException(
            `no answer within ${this.options.requestTimeoutMs} ms (ROUTEWATCH_NOTIFY_TIMEOUT)`,
            'TimeoutError',
          ),
        ),
      this.options.requestTimeoutMs,
    );
    const stopped = () => abort.abort(this.#stopGrace.signal.reason);
    if (this.#stopGrace.signal.aborted) stopped();
    else this.#stopGrace.signal.addEventListener('abort', stopped, { once: true });
    try {
      const response = await this.options.fetch(this.#target.url, {
        method: 'POST',
        // The key is the same on every try of one message: a receiver that answered too late (past
        // the timeout) or whose answer was lost can tell the retry from a new message.
        headers: {
          'content-type': 'application/json',
          'idempotency-key': key,
          ...(this.#target.authorization ? { authorization: this.#target.authorization } : {}),
        },
        body: JSON.stringify(body),
        signal: abort.signal,
        // A redirect is not followed: the alert would go, body and all, wherever the endpoint
        // (or whoever took it over) points. It fails, saying where to point the URL instead.
        redirect: 'manual',
      });
      // An endpoint that echoes the request (its headers, its URL) in an error would show the
      // credentials wherever the error goes: the log, the API, the dashboard.
      const text = redact(await response.text().catch(() => ''), this.#target.secrets);
      if (response.ok) return { ok: true, status: response.status, error: '' };
      if (response.status >= 300 && response.status < 400) {
        const location = response.headers.get('location') ?? '';
        let to = '';
        try {
          to = ` to ${new URL(location, this.channel.url).origin}`;
        } catch {
          // No usable Location: the status says enough.
        }
        return {
          ok: false,
          status: response.status,
          error: `HTTP ${response.status}: the endpoint redirects${to}, and alerts do not follow redirects: set the channel's URL to where it points`,
        };
      }
      return {
        ok: false,
        status: response.status,
        retryAfterMs: retryAfterMs(response.headers.get('retry-after')),
        body: text.trim(),
        error: `HTTP ${response.status}${text ? `: ${text.slice(0, 200)}` : ''}`,
      };
    } catch (error) {
      return { ok: false, error: describe(error) };
    } finally {
      clearTimeout(timer);
      this.#stopGrace.signal.removeEventListener('abort', stopped);
    }
  }

  /**
   * Sends a test message now, beside the queue (not recorded, not retried): whether the endpoint
   * takes a message from here, with the same timeout and headers as an alert.
   */
  async test(message: TestMessage): Promise<ChannelTestResult> {
    // A channel that asked to wait (429, Retry-After) is not tried: the answer says until when.
    try {
      this.#notBefore ??= await this.options.store.retryAt(this.channel.name);
    } catch {
      // The store does not answer: the wait this process was told of, if any, stands.
    }
    const waitMs = (this.#notBefore ?? 0) - Date.now();
    if (waitMs > 0) {
      return {
        channel: this.channel.name,
        ok: false,
        tried: false,
        error:
          `not tried: the channel answered 429 and asked to wait ${Math.ceil(waitMs / 1000)} s ` +
          `more (Retry-After, until ${new Date(this.#notBefore ?? 0).toISOString()})`,
        ms: 0,
      };
    }
    // Spaced from the alerts as they are from each other (Slack: one a second), or a test sent
    // beside an alert would be answered 429 on a channel that works.
    await this.#sleep(this.#nextSendAt() - Date.now());
    this.#lastSentAt = Date.now();
    const started = performance.now();
    const result = await this.#send(
      this.channel.renderTest(message),
      randomUUID().replaceAll('-', ''),
    );
    return {
      channel: this.channel.name,
      ok: result.ok,
      ...(result.status !== undefined ? { status: result.status } : {}),
      error: result.error,
      ms: Math.round(performance.now() - started),
    };
  }

  /** The earliest a message may go: spaced from the last one, and after a 429's wait. */
  #nextSendAt(): number {
    return Math.max(this.#lastSentAt + this.options.minIntervalMs, this.#notBefore ?? 0);
  }

  async #idle(): Promise<void> {
    if (this.#kicked) {
      this.#kicked = false;
      return;
    }
    await this.#sleep(this.options.pollMs, true);
    this.#kicked = false;
  }

  #sleep(ms: number, wakeable = false): Promise<void> {
    if (ms <= 0 || this.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.signal.removeEventListener('abort', done);
        if (wakeable) this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.signal.addEventListener('abort', done, { once: true });
      if (wakeable) this.#wake = done;
    });
  }
}

function sameEvent(a: StoredEvent, b: StoredEvent): boolean {
  return a.fingerprint === b.fingerprint && a.incident === b.incident && a.seq === b.seq;
}

/** An error's message without any URL in it (fetch errors can carry the request URL). */
function describe(error: unknown): string {
  const e = error as {
    name?: string;
    message?: string;
    cause?: { code?: string; message?: string };
  };
  const text = e.cause?.code ?? e.cause?.message ?? e.message ?? String(error);
  return `${e.name && e.name !== 'Error' ? `${e.name}: ` : ''}${text}`.replace(
    /https?:\/\/\S+/g,
    '<url>',
  );
}

export class Notifier {
  readonly #queues: ChannelQueue[];
  readonly #abort = new AbortController();
  #running: Promise<void>[] = [];

  constructor(options: NotifierOptions) {
    const settings = {
      store: options.store,
      log: options.log,
      minIntervalMs: options.minIntervalMs ?? 1000,
      maxBackoffMs: options.maxBackoffMs ?? 300_000,
      initialBackoffMs: options.initialBackoffMs ?? 1000,
      pollMs: options.pollMs ?? 30_000,
      lookbackMs: options.lookbackMs ?? 7 * 86_400_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      stopGraceMs: options.stopGraceMs ?? 10_000,
      fetch: options.fetch ?? globalThis.fetch,
    };
    this.#queues = options.channels.map(
      (channel) => new ChannelQueue(channel, settings, this.#abort.signal),
    );
  }

  get channels(): string[] {
    return this.#queues.map((q) => q.channel.name);
  }

  /** A test message to every channel at once (`POST /api/v1/channels/test`). */
  test(message: TestMessage): Promise<ChannelTestResult[]> {
    return Promise.all(this.#queues.map((q) => q.test(message)));
  }

  stats(): Record<string, ChannelStats> {
    return Object.fromEntries(this.#queues.map((q) => [q.channel.name, { ...q.stats }]));
  }

  start(): void {
    if (this.#running.length > 0) return;
    this.#running = this.#queues.map((q) => q.run());
  }

  /** New events were written: read the queues now. */
  kick(): void {
    for (const q of this.#queues) q.kick();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.all(this.#running);
  }
}
