/** Pure statistics and table formatting for the instrumentation benchmark. */

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** One measured chunk: `calls` calls of one variant, then a flush. */
export interface ChunkSample {
  variant: string;
  /** Which set of processes (a round starts one fresh process per variant). */
  round: number;
  /** Position in the round: every variant measures slot k before any measures slot k + 1. */
  slot: number;
  cpuMicrosPerCall: number;
}

/** One variant's process in one round: what the receiver got from it. */
export interface RunSpans {
  variant: string;
  round: number;
  /** Spans the receiver got from this process (warm-up included). */
  received: number;
  /** Of those, spans carrying `routewatch.cohort` (stamped by our span processor). */
  tagged: number;
  /** Attributes over all those spans. */
  attributes: number;
  /** Spans this process should have exported if none was dropped. */
  expected: number;
}

export interface VariantSummary {
  variant: string;
  runs: number;
  /** Median over runs of each run's median chunk. */
  medianCpu: number;
  minRunCpu: number;
  maxRunCpu: number;
  /** Median over (round, slot) of (this variant − uninstrumented in the same slot). */
  addedCpu: number;
  /** Median over (round, slot) of (this variant − the context-only variant in the same slot). */
  addedOverContext: number;
  /** addedCpu / the floor's addedCpu. */
  ratioToFloor: number;
  medianSpansReceived: number;
  medianSpansTagged: number;
  attributesPerSpan: number;
  spansExpected: number;
  /** Some run exported fewer or more spans than expected. */
  spanMismatch: boolean;
}

/**
 * Summaries per variant. The added cost is paired by slot: the chunks of one slot run back to back,
 * so the difference to the uninstrumented chunk of the same slot cancels load that drifts over the
 * run (other jobs on the machine) far better than a difference of overall medians would.
 */
export function summarise(
  samples: readonly ChunkSample[],
  spans: readonly RunSpans[],
  variants: readonly string[],
  reference: { baseline: string; floor: string; contextOnly: string },
): VariantSummary[] {
  const slotKey = (sample: ChunkSample) => `${sample.round}/${sample.slot}`;
  const bySlot = (variant: string) =>
    new Map(
      samples
        .filter((sample) => sample.variant === variant)
        .map((sample) => [slotKey(sample), sample.cpuMicrosPerCall]),
    );
  const pairedDifference = (variant: string, against: Map<string, number>): number =>
    median(
      samples.flatMap((sample) => {
        if (sample.variant !== variant) return [];
        const other = against.get(slotKey(sample));
        return other === undefined ? [] : [sample.cpuMicrosPerCall - other];
      }),
    );
  const baselineBySlot = bySlot(reference.baseline);
  const contextBySlot = bySlot(reference.contextOnly);
  const addedOf = (variant: string) => pairedDifference(variant, baselineBySlot);
  const floorAdded = addedOf(reference.floor);
  return variants.map((variant) => {
    const own = samples.filter((sample) => sample.variant === variant);
    const rounds = [...new Set(own.map((sample) => sample.round))];
    const runMedians = rounds.map((round) =>
      median(
        own.filter((sample) => sample.round === round).map((sample) => sample.cpuMicrosPerCall),
      ),
    );
    const runSpans = spans.filter((run) => run.variant === variant);
    const added = variant === reference.baseline ? 0 : addedOf(variant);
    return {
      variant,
      runs: rounds.length,
      medianCpu: median(runMedians),
      minRunCpu: Math.min(...runMedians),
      maxRunCpu: Math.max(...runMedians),
      addedCpu: added,
      addedOverContext:
        variant === reference.contextOnly ? 0 : pairedDifference(variant, contextBySlot),
      ratioToFloor: added / floorAdded,
      medianSpansReceived: median(runSpans.map((run) => run.received)),
      medianSpansTagged: median(runSpans.map((run) => run.tagged)),
      attributesPerSpan:
        runSpans.reduce((sum, run) => sum + run.attributes, 0) /
        runSpans.reduce((sum, run) => sum + run.received, 0),
      spansExpected: median(runSpans.map((run) => run.expected)),
      spanMismatch: runSpans.some((run) => run.received !== run.expected),
    };
  });
}

/** A fixed-width text table; numbers right-aligned. */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) =>
        column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!),
      )
      .join('  ');
  return [
    line(header),
    widths.map((width) => '-'.repeat(width)).join('  '),
    ...rows.map(line),
  ].join('\n');
}

export function summaryRows(
  summaries: readonly VariantSummary[],
  callsPerRun: number,
  labels: Readonly<Record<string, string>>,
): string[][] {
  return summaries.map((summary) => [
    labels[summary.variant] ?? summary.variant,
    summary.medianCpu.toFixed(1),
    `${summary.minRunCpu.toFixed(0)}–${summary.maxRunCpu.toFixed(0)}`,
    summary.addedCpu === 0 ? '—' : signed(summary.addedCpu),
    summary.addedOverContext === 0 || !Number.isFinite(summary.addedOverContext)
      ? '—'
      : signed(summary.addedOverContext),
    Number.isFinite(summary.ratioToFloor) && summary.addedCpu !== 0
      ? `${summary.ratioToFloor.toFixed(2)}×`
      : '—',
    `${summary.medianSpansReceived}${summary.spanMismatch ? ` (expected ${summary.spansExpected})` : ''}`,
    (summary.medianSpansReceived / callsPerRun).toFixed(2),
    Number.isFinite(summary.attributesPerSpan) ? summary.attributesPerSpan.toFixed(1) : '—',
    String(summary.medianSpansTagged),
  ]);
}

export const TABLE_HEADER = [
  'variant',
  'CPU µs/call (median)',
  'runs min–max',
  'added µs vs (a)',
  'vs (a′)',
  '× floor',
  'spans exported/run',
  'spans/call',
  'attrs/span',
  'tagged',
] as const;

function signed(value: number): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(1)}`;
}
