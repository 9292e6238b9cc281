/**
 * Times for test spans, relative to now: the collector refuses spans older than its retention
 * window (30 days by default) or more than an hour ahead, so a fixed date in a test would start
 * failing one day.
 *
 * The base is the start of the current UTC hour, one day ago, computed once per test file (one
 * process): every test in a file sees the same base even when the hour turns during the run.
 */
export const BASE_MS = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 86_400_000;
/** BASE_MS in nanoseconds. */
export const BASE_NS = BigInt(BASE_MS) * 1_000_000n;

/** The base time plus `offsetMs`, as an OTLP nanosecond timestamp string. */
export function nsAt(offsetMs: number): string {
  return String((BigInt(BASE_MS) + BigInt(offsetMs)) * 1_000_000n);
}

/** Nanoseconds `ms` (and `extraNs`) after the base, as the decimal string OTLP sends. */
export const nsAfter = (ms: number, extraNs = 0n): string =>
  String(BASE_NS + BigInt(Math.round(ms * 1_000_000)) + extraNs);

/** The base time plus `offsetMs`, as a Date. */
export function dateAt(offsetMs: number): Date {
  return new Date(BASE_MS + offsetMs);
}

/** A nanosecond time as the store returns it: `YYYY-MM-DD hh:mm:ss.nnnnnnnnn` (UTC). */
export function storedTime(ns: bigint | string): string {
  const value = BigInt(ns);
  const seconds = value / 1_000_000_000n;
  const fraction = String(value % 1_000_000_000n).padStart(9, '0');
  return `${new Date(Number(seconds) * 1000).toISOString().slice(0, 19).replace('T', ' ')}.${fraction}`;
}
