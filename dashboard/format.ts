import { isolate } from '../analyzer/name-list.js';
import { latencyText } from '../analyzer/latency-text.js';
/**
 * How the dashboard writes figures, as the CLI report and the alert messages do: dollars to three
 * significant digits, rates as percentages with one decimal, latencies in ms or s, times in UTC.
 * Pure.
 */

const DASH = '—';

export function usd(value: number | null | undefined): string {
  if (value === null || value === undefined) return DASH;
  return `$${value.toPrecision(3)}`;
}

export function pct(value: number | null | undefined): string {
  if (value === null || value === undefined) return DASH;
  return `${(value * 100).toFixed(1)} %`;
}

export function usdRange(interval: { lower: number; upper: number } | null): string {
  return interval ? `$${interval.lower.toPrecision(3)}–$${interval.upper.toPrecision(3)}` : '';
}

export function pctRange(interval: { lower: number; upper: number } | null): string {
  return interval
    ? `${(interval.lower * 100).toFixed(1)}–${(interval.upper * 100).toFixed(1)} %`
    : '';
}

export function latency(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return DASH;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms >= 120_000) return latencyText(ms);
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

export function count(value: number): string {
  return value.toLocaleString('en');
}

export function ratio(value: number | null | undefined): string {
  if (value === null || value === undefined) return DASH;
  return `${value.toFixed(2)}×`;
}

/** `2026-12-02 10:00 UTC` from an ISO instant (seconds when they are not zero). */
export function utc(iso: string | null | undefined): string {
  if (!iso) return DASH;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const text = date.toISOString();
  const seconds = text.slice(17, 19);
  return `${text.slice(0, 10)} ${text.slice(11, 16)}${seconds === '00' ? '' : `:${seconds}`} UTC`;
}

/** Fallback reasons with their share of the fallbacks: `validation_failed 80 %, timeout 20 %`. */
export function reasons(list: readonly { reason: string; share: number }[], limit = 3): string {
  if (list.length === 0) return DASH;
  const shown = list
    .slice(0, limit)
    .map((r) => `${isolate(r.reason)} ${Math.round(r.share * 100)} %`)
    .join(', ');
  return list.length > limit ? `${shown}, +${list.length - limit} more` : shown;
}

/** `90 s`, `15 min`, `1 h`, `1 d`: a bucket's size. */
export function span(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/**
 * Labels of a time axis in UTC, from tick positions in seconds: `HH:MM`, with the date
 * (`MM-DD`) under the first tick of each day; dates only over three days or more.
 */
export function timeTicks(ticks: readonly number[]): string[] {
  const range = ticks.length > 1 ? ticks[ticks.length - 1]! - ticks[0]! : 0;
  // Seconds too when the ticks are under a minute apart: minutes alone would repeat.
  const step = ticks.length > 1 ? range / (ticks.length - 1) : 60;
  let previousDay = '';
  return ticks.map((seconds) => {
    const iso = new Date(seconds * 1000).toISOString();
    const day = iso.slice(5, 10);
    const time = iso.slice(11, step < 60 ? 19 : 16);
    if (range >= 3 * 86_400) return day;
    const label = day === previousDay ? time : `${time}\n${day}`;
    previousDay = day;
    return label;
  });
}
