/**
 * Times for test spans. The collector refuses spans older than the retention (30 days by
 * default) or more than an hour ahead, so tests build their timestamps from a recent instant.
 */

/** The start of the hour two hours ago, in ms: recent, and a whole hour for readable times. */
export const BASE_MS = Math.floor((Date.now() - 2 * 3_600_000) / 3_600_000) * 3_600_000;
/** BASE_MS in nanoseconds. */
export const BASE_NS = BigInt(BASE_MS) * 1_000_000n;

/** Nanoseconds `ms` after BASE, as the decimal string OTLP sends. */
export const nsAfter = (ms: number, extraNs = 0n): string =>
  String(BASE_NS + BigInt(Math.round(ms * 1_000_000)) + extraNs);

/** A nanosecond time as the store returns it: `YYYY-MM-DD hh:mm:ss.nnnnnnnnn` (UTC). */
export function storedTime(ns: bigint | string): string {
  const value = BigInt(ns);
  const seconds = value / 1_000_000_000n;
  const fraction = String(value % 1_000_000_000n).padStart(9, '0');
  return `${new Date(Number(seconds) * 1000).toISOString().slice(0, 19).replace('T', ' ')}.${fraction}`;
}
