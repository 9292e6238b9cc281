/**
 * A latency as people read it: milliseconds under 10 s, then seconds, minutes and hours (a task
 * of 3 hours read "10800000 ms" in the report). The dashboard's `latency` goes to seconds sooner.
 */
export function latencyText(ms: number): string {
  if (ms < 10_000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 7_200_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}
