/**
 * Where an acknowledgement's time goes, stage by stage, as Prometheus histograms
 * (`routewatch_export_stage_seconds`, collector/metrics.ts). Each part of the path observes its own
 * stages: the route (receive, total), the ingest pool (waiting for a thread, the thread's work,
 * the answer's way back) and the span writer (waiting for the append or insert before, and its
 * own). An operator reads which stage a slow p99 sits in; the collector bench prints the same.
 */

/** Now, in ms since the epoch with sub-millisecond precision, comparable between threads. */
export const epochNowMs = (): number => performance.timeOrigin + performance.now();

/** Upper bounds of the buckets, in milliseconds; 25 ms is the acknowledgement target. */
export const STAGE_BUCKETS_MS: readonly number[] = Object.freeze([
  0.25, 0.5, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 75, 100, 150, 250, 500, 1_000,
  2_500, 5_000, 10_000,
]);

/** A cumulative-bucket histogram of durations; observing is a few comparisons and no allocation. */
export class LatencyHistogram {
  /** counts[i]: observations in (bound[i-1], bound[i]]; the last slot is above every bound. */
  readonly counts: number[];
  sumMs = 0;
  count = 0;

  constructor(readonly boundsMs: readonly number[] = STAGE_BUCKETS_MS) {
    this.counts = new Array<number>(boundsMs.length + 1).fill(0);
  }

  observe(ms: number): void {
    // A negative span (clocks of two threads a hair apart) counts as 0, never as a lost sample.
    const value = ms > 0 && Number.isFinite(ms) ? ms : 0;
    const bounds = this.boundsMs;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sumMs += value;
    this.count++;
  }

  /** A copy, to subtract from a later one (`since`). */
  snapshot(): LatencyHistogram {
    const copy = new LatencyHistogram(this.boundsMs);
    copy.counts.splice(0, copy.counts.length, ...this.counts);
    copy.sumMs = this.sumMs;
    copy.count = this.count;
    return copy;
  }

  /** The observations made after `earlier` (a snapshot of this histogram). */
  since(earlier: LatencyHistogram): LatencyHistogram {
    const delta = new LatencyHistogram(this.boundsMs);
    for (let i = 0; i < this.counts.length; i++)
      delta.counts[i] = this.counts[i]! - (earlier.counts[i] ?? 0);
    delta.sumMs = this.sumMs - earlier.sumMs;
    delta.count = this.count - earlier.count;
    return delta;
  }

  /**
   * The q-quantile, interpolated linearly inside its bucket (as Prometheus' histogram_quantile
   * does): exact to the bucket, an estimate within it. NaN when empty; the highest bound when the
   * quantile lies above every bound.
   */
  quantile(q: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = q * this.count;
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      const inBucket = this.counts[i]!;
      if (seen + inBucket >= rank && inBucket > 0) {
        if (i === this.boundsMs.length) return this.boundsMs[i - 1]!;
        const lower = i === 0 ? 0 : this.boundsMs[i - 1]!;
        return lower + (this.boundsMs[i]! - lower) * ((rank - seen) / inBucket);
      }
      seen += inBucket;
    }
    return this.boundsMs[this.boundsMs.length - 1]!;
  }
}

/** The stages of an OTLP export request, in the order a request passes them. */
export const EXPORT_STAGES = [
  'receive',
  'ingest_wait',
  'ingest',
  'ingest_return',
  'write_wait',
  'write',
  'total',
] as const;
export type ExportStage = (typeof EXPORT_STAGES)[number];

export const EXPORT_STAGE_HELP: Readonly<Record<ExportStage, string>> = Object.freeze({
  receive: 'from the request line to the whole body read and decompressed',
  ingest_wait: 'waiting for an ingest thread, and the body handed to it',
  ingest: "the ingest thread's work: decode, normalize, price, frame the log records",
  ingest_return: "the thread's answer back on the main thread",
  write_wait: 'waiting for the write-ahead log append (or the store insert) before this one',
  write: 'the durable append (or, without the log, the insert) that holds this request',
  total: 'from the request line to the answer, for requests answered 200',
});

export type StageHistograms = Record<ExportStage, LatencyHistogram>;

export function newStageHistograms(): StageHistograms {
  return Object.fromEntries(
    EXPORT_STAGES.map((stage) => [stage, new LatencyHistogram()]),
  ) as StageHistograms;
}

/** The histogram family in the Prometheus text format, one `stage` label per stage. */
export function stageHistogramLines(name: string, stages: Partial<StageHistograms>): string {
  let text =
    `# HELP ${name} Time an OTLP export request spends in each stage before it is answered ` +
    `(${EXPORT_STAGES.map((s) => `${s}: ${EXPORT_STAGE_HELP[s]}`).join('; ')}).\n` +
    `# TYPE ${name} histogram\n`;
  for (const stage of EXPORT_STAGES) {
    const histogram = stages[stage];
    if (!histogram) continue;
    let cumulative = 0;
    histogram.boundsMs.forEach((bound, i) => {
      cumulative += histogram.counts[i]!;
      text += `${name}_bucket{stage="${stage}",le="${bound / 1000}"} ${cumulative}\n`;
    });
    text += `${name}_bucket{stage="${stage}",le="+Inf"} ${histogram.count}\n`;
    text += `${name}_sum{stage="${stage}"} ${histogram.sumMs / 1000}\n`;
    text += `${name}_count{stage="${stage}"} ${histogram.count}\n`;
  }
  return text;
}

/**
 * The histograms of `stageHistogramLines` read back from a scrape of /metrics (for the collector
 * bench and the tests): per stage, counts per bucket. Bounds absent from the text stay 0.
 */
export function readStageHistograms(text: string, name: string): Partial<StageHistograms> {
  const stages: Partial<StageHistograms> = {};
  const cumulative = new Map<ExportStage, Map<string, number>>();
  const line = new RegExp(
    `^${name}_(bucket|sum|count)\\{stage="([a-z_]+)"(?:,le="([^"]+)")?\\} (\\S+)$`,
  );
  for (const text_line of text.split('\n')) {
    const match = line.exec(text_line);
    if (!match) continue;
    const [, kind, stageName, le, value] = match;
    if (!(EXPORT_STAGES as readonly string[]).includes(stageName!)) continue;
    const stage = stageName as ExportStage;
    const histogram = (stages[stage] ??= new LatencyHistogram());
    if (kind === 'sum') histogram.sumMs = Number(value) * 1000;
    else if (kind === 'count') histogram.count = Number(value);
    else {
      const byBound = cumulative.get(stage) ?? new Map<string, number>();
      byBound.set(le!, Number(value));
      cumulative.set(stage, byBound);
    }
  }
  for (const [stage, byBound] of cumulative) {
    const histogram = stages[stage]!;
    let below = 0;
    histogram.boundsMs.forEach((bound, i) => {
      const atOrBelow = byBound.get(String(bound / 1000)) ?? below;
      histogram.counts[i] = atOrBelow - below;
      below = atOrBelow;
    });
    histogram.counts[histogram.boundsMs.length] = (byBound.get('+Inf') ?? below) - below;
  }
  return stages;
}
