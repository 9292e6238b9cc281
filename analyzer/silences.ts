import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { formatDuration, parseDuration, parseInstant } from '../server/time.js';

/**
 * Silences: while one is in force, the alerts it matches notify no one — a known incident being
 * worked on, a planned migration of a cohort. The alerts are still evaluated, and their
 * transitions recorded (alert_events, notify = 0), so `routewatch alerts` shows what was kept
 * quiet. A silence matches a cohort, a route and a rule, each '' for any. An alert still firing
 * when its silence ends gets its reminder at the next evaluation: it has not been notified.
 */
export interface Silence {
  id: string;
  /** '' for any cohort. */
  cohort: string;
  /** '' for any route. */
  route: string;
  /** '' for any rule. */
  ruleId: string;
  startsAt: number;
  endsAt: number;
  /** Why: who silenced it and what is being done, for the people who see it later. */
  comment: string;
  createdAt: number;
}

/** A silence as what it covers says it: which, and until when; null for none. */
export function silenceRef(silence: Silence | undefined): { id: string; until: string } | null {
  return silence ? { id: silence.id, until: new Date(silence.endsAt).toISOString() } : null;
}

/**
 * The longest silence, and how far ahead one may start: longer is a rule to change (`cohorts`,
 * `enabled`), not a silence.
 */
export const MAX_SILENCE_MS = 30 * 86_400_000;

/** Whether a silence is over at `at`: past its end, or ended before it began (`end` early). */
export function isOver(silence: Pick<Silence, 'startsAt' | 'endsAt'>, at: number): boolean {
  return silence.endsAt <= at || silence.endsAt <= silence.startsAt;
}

export function matches(
  silence: Silence,
  alert: { cohort: string; route: string; ruleId: string },
  at: number,
): boolean {
  return (
    silence.startsAt <= at &&
    at < silence.endsAt &&
    (silence.cohort === '' || silence.cohort === alert.cohort) &&
    (silence.route === '' || silence.route === alert.route) &&
    (silence.ruleId === '' || silence.ruleId === alert.ruleId)
  );
}

/** The silence in force for `alert` at `at` that ends last, if any. */
export function silenceOf(
  silences: readonly Silence[],
  alert: { cohort: string; route: string; ruleId: string },
  at: number,
): Silence | undefined {
  let found: Silence | undefined;
  for (const s of silences)
    if (matches(s, alert, at) && (!found || s.endsAt > found.endsAt)) found = s;
  return found;
}

/** What a silence matches, as people read it: "cohort extraction × route small, every rule". */
export function scopeOf(silence: Pick<Silence, 'cohort' | 'route' | 'ruleId'>): string {
  const part = (name: string, value: string, any: string) =>
    value === '' ? any : `${name} ${value}`;
  return [
    part('cohort', silence.cohort, 'every cohort'),
    part('route', silence.route, 'every route'),
    part('rule', silence.ruleId, 'every rule'),
  ].join(' × ');
}

/** The body of `POST /api/v1/silences`. */
const matcher = z
  .string()
  .trim()
  .min(1, 'empty: leave it out to match any')
  .max(256, 'longer than any name routewatch stores (256)')
  .optional();

export const silenceRequest = z
  .object({
    cohort: matcher,
    route: matcher,
    rule: matcher,
    /** Every alert: needed when no cohort, route or rule is named, so that it is never by accident. */
    all: z.boolean().optional(),
    /** How long from its start: `4h`, `2d`. Give this or `until`. */
    for: z.string().optional(),
    /** When it ends: a date or ISO instant. */
    until: z.string().optional(),
    /** When it starts: a date or ISO instant; now if absent. */
    starts: z.string().optional(),
    comment: z.string().trim().min(1, 'say why (who, and what is being done)').max(1000),
  })
  .strict();

export type SilenceRequest = z.infer<typeof silenceRequest>;

export class SilenceRequestError extends Error {}

/**
 * A silence from a request: checked (a duration or an end, in the future, at most
 * MAX_SILENCE_MS; a rule that exists), with a new id. Throws SilenceRequestError saying what to
 * give instead.
 */
export function newSilence(
  request: SilenceRequest,
  now: number,
  ruleIds: readonly string[],
): Silence {
  const instant = (what: string, text: string) => {
    try {
      return parseInstant(text).getTime();
    } catch (error) {
      throw new SilenceRequestError(`${what}: ${(error as Error).message}`);
    }
  };
  const named = [request.cohort, request.route, request.rule].some((m) => m !== undefined);
  if (!named && request.all !== true)
    throw new SilenceRequestError(
      'it names no cohort, route or rule, so it would silence every alert: name one, or say so with "all": true (--all)',
    );
  if (named && request.all === true)
    throw new SilenceRequestError(
      '"all": true silences every alert: name no cohort, route or rule with it',
    );
  const startsAt = request.starts === undefined ? now : instant('starts', request.starts);
  if (startsAt > now + MAX_SILENCE_MS)
    throw new SilenceRequestError(
      `starts ${new Date(startsAt).toISOString()} is more than ${formatDuration(MAX_SILENCE_MS)} ahead: add it nearer the time`,
    );
  if ((request.for === undefined) === (request.until === undefined))
    throw new SilenceRequestError(
      'give how long it lasts (for: "4h", "2d") or when it ends (until: a date or ISO instant), one of the two',
    );
  let endsAt: number;
  if (request.for !== undefined) {
    let ms: number;
    try {
      ms = parseDuration(request.for);
    } catch (error) {
      throw new SilenceRequestError(`for: ${(error as Error).message}`);
    }
    if (ms <= 0) throw new SilenceRequestError('for: give a duration above 0, e.g. 30m, 4h, 2d');
    endsAt = startsAt + ms;
  } else {
    endsAt = instant('until', request.until!);
  }
  if (endsAt <= startsAt)
    throw new SilenceRequestError(
      `it would end (${new Date(endsAt).toISOString()}) before it starts (${new Date(startsAt).toISOString()})`,
    );
  if (endsAt <= now)
    throw new SilenceRequestError(
      `it would end in the past (${new Date(endsAt).toISOString()}): a silence is for alerts to come`,
    );
  if (endsAt - startsAt > MAX_SILENCE_MS)
    throw new SilenceRequestError(
      `at most ${formatDuration(MAX_SILENCE_MS)}: to stop watching a cohort for longer, change its rules (cohorts, enabled) in the rules file`,
    );
  const rule = request.rule ?? '';
  if (rule !== '' && !ruleIds.includes(rule))
    throw new SilenceRequestError(
      `no rule "${rule}" is configured: the rules are ${ruleIds.join(', ')}`,
    );
  return {
    id: randomUUID(),
    cohort: request.cohort ?? '',
    route: request.route ?? '',
    ruleId: rule,
    startsAt,
    endsAt,
    comment: request.comment,
    createdAt: now,
  };
}
