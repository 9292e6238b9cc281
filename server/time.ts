/**
 * Durations and instants as people type them: `90s`, `15m`, `2h`, `7d`, `250ms`; a date
 * (`2026-12-02`, midnight UTC) or an ISO 8601 instant (`2026-12-02T10:00:00Z`). Pure.
 */

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/;
const UNIT_MS = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
} as const;

export class TimeArgumentError extends Error {
  readonly code = 'BAD_TIME';
  constructor(message: string) {
    super(message);
    this.name = 'TimeArgumentError';
  }
}

/** Milliseconds of a duration such as `90s`, `24h` or `7d`; throws TimeArgumentError. */
export function parseDuration(text: string): number {
  // Zero needs no unit (`ROUTEWATCH_EVALUATE_EVERY=0` turns something off).
  if (text.trim() === '0') return 0;
  const match = DURATION.exec(text.trim());
  if (!match) {
    throw new TimeArgumentError(
      `invalid duration ${JSON.stringify(text)}: use a number and a unit (ms, s, m, h, d, w), e.g. 90s, 15m, 24h, 7d`,
    );
  }
  return Math.round(Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]);
}

/**
 * A duration as people read it, in its largest whole unit: `7 d`, `36 h`, `30 min`, `90 s`,
 * `250 ms` (a part of a larger unit is given in the smaller one, never rounded away).
 */
export function formatDuration(ms: number): string {
  const units: [number, string][] = [
    [UNIT_MS.d, 'd'],
    [UNIT_MS.h, 'h'],
    [UNIT_MS.m, 'min'],
    [UNIT_MS.s, 's'],
  ];
  for (const [size, name] of units) {
    if (ms >= size && ms % size === 0) return `${ms / size} ${name}`;
  }
  return `${ms} ms`;
}

/** An instant to the minute, as the messages and tables show it: `2026-12-02 08:15 UTC`. */
export function utcMinute(instant: string | number | Date): string {
  return `${new Date(instant).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

export function isDuration(text: string): boolean {
  // As parseDuration: a bare 0 is one (`window:7d/0`, `--to 0`: now).
  return text.trim() === '0' || DURATION.test(text.trim());
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
// An instant must say where it is: Z or an offset. A bare local time would mean something
// different on every machine.
const INSTANT =
  /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/i;

/** The earliest and latest instants every store can hold (DateTime64(9): 1900 to 2262). */
export const EARLIEST = new Date('1970-01-01T00:00:00Z');
export const LATEST = new Date('2262-04-11T00:00:00Z');

/** Whether `yyyy-mm-dd` names a day that exists: `Date` rolls 2026-02-30 over to March 2. */
export function isCalendarDay(day: string): boolean {
  const [year, month, date] = day.split('-').map(Number) as [number, number, number];
  // setUTCFullYear, not Date.UTC, which reads years below 100 as 19xx.
  const utc = new Date(0);
  utc.setUTCFullYear(year, month - 1, date);
  return (
    utc.getUTCFullYear() === year && utc.getUTCMonth() === month - 1 && utc.getUTCDate() === date
  );
}

/**
 * Whether the date and time the text names exist: `Date` would move 2026-02-30 to March 2 and
 * take 24:00, where a user meant something else.
 */
function onTheCalendar(text: string): boolean {
  if (!isCalendarDay(text.slice(0, 10))) return false;
  const [, hour, minute, second] = /^.{10}(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?/i.exec(text) ?? [];
  return Number(hour ?? 0) <= 23 && Number(minute ?? 0) <= 59 && Number(second ?? 0) <= 59;
}

/** A date (midnight UTC) or an ISO 8601 instant with a zone; throws TimeArgumentError. */
export function parseInstant(text: string): Date {
  const trimmed = text.trim();
  let date: Date | undefined;
  if (DATE_ONLY.test(trimmed)) date = new Date(`${trimmed}T00:00:00Z`);
  else if (INSTANT.test(trimmed)) date = new Date(trimmed.replace(' ', 'T'));
  if (date !== undefined && !onTheCalendar(trimmed)) {
    throw new TimeArgumentError(
      `invalid time ${JSON.stringify(text)}: no such day or time of day (months have 28–31 days, hours run 00–23)`,
    );
  }
  if (date === undefined || Number.isNaN(date.getTime())) {
    throw new TimeArgumentError(
      `invalid time ${JSON.stringify(text)}: use a date (2026-12-02) or an ISO 8601 instant with a zone (2026-12-02T10:00:00Z)`,
    );
  }
  return date;
}

export interface TimeWindow {
  from: Date;
  to: Date;
}

/**
 * The window `[from, to)` named by any of: `from` and `to`, `from` alone (until now), `to` alone
 * with `window` before it, or `window` alone (ending now). `fallbackWindow` applies when neither
 * `from` nor `window` is given. Each of `from`/`to` may also be a duration, read as "that long
 * before now". Throws TimeArgumentError for windows no store can represent.
 */
export function resolveWindow(
  args: { from?: string | undefined; to?: string | undefined; window?: string | undefined },
  now: Date,
  fallbackWindow = '24h',
  /** How the messages name the three: query parameters (`from`) or options (`--from`). */
  prefix = '',
): TimeWindow {
  const [fromName, toName, windowName] = ['from', 'to', 'window'].map((n) => `${prefix}${n}`);
  const at = (text: string) =>
    isDuration(text) ? new Date(now.getTime() - parseDuration(text)) : parseInstant(text);
  const to = args.to !== undefined ? at(args.to) : now;
  let from: Date;
  if (args.from !== undefined) {
    if (args.window !== undefined)
      throw new TimeArgumentError(`give either ${fromName} or ${windowName}, not both`);
    from = at(args.from);
  } else {
    const windowMs = parseDuration(args.window ?? fallbackWindow);
    if (windowMs <= 0) throw new TimeArgumentError(`${windowName} must be longer than 0`);
    from = new Date(to.getTime() - windowMs);
  }
  for (const [name, value] of [
    [fromName, from],
    [toName, to],
  ] as const) {
    if (Number.isNaN(value.getTime()) || value < EARLIEST || value > LATEST) {
      throw new TimeArgumentError(
        `${name} falls outside the time routewatch can store (${EARLIEST.toISOString().slice(0, 10)} to ${LATEST.toISOString().slice(0, 10)})`,
      );
    }
  }
  if (from >= to) throw new TimeArgumentError(`${fromName} must be before ${toName}`);
  return { from, to };
}
