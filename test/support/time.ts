/**
 * Times for test spans, relative to now: the collector refuses spans older than its retention
 * window, so a fixed date in a test would start failing one day.
 *
 * The base is the start of the current UTC hour, one day ago, computed once per test file (one
 * process): every test in a file sees the same base even when the hour turns during the run.
 */
export const BASE_MS = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 86_400_000;

/** The base time plus `offsetMs`, as an OTLP nanosecond timestamp string. */
export function nsAt(offsetMs: number): string {
  return String((BigInt(BASE_MS) + BigInt(offsetMs)) * 1_000_000n);
}

/** The base time plus `offsetMs`, as a Date. */
export function dateAt(offsetMs: number): Date {
  return new Date(BASE_MS + offsetMs);
}
