/**
 * A latency as people read it: milliseconds under 10 s, then seconds, minutes and hours (a task
 * of 3 hours read "10800000 ms" in the report). The unit is chosen from the rounded figure, so a
 * value at a boundary reads "2.0 min", not "120.0 s". The dashboard's `latency` goes to seconds
 * sooner.
 */
export function latencyText(ms: number): string {
  if (Math.round(ms) < 10_000) return `${Math.round(ms)} ms`;
  const tenths = (value: number) => Math.round(value * 10) / 10;
  if (tenths(ms / 1000) < 120) return `${tenths(ms / 1000).toFixed(1)} s`;
  if (tenths(ms / 60_000) < 120) return `${tenths(ms / 60_000).toFixed(1)} min`;
  return `${tenths(ms / 3_600_000).toFixed(1)} h`;
}
