/**
 * Per-call CPU cost of OpenAI instrumentations, measured in one run with one `openai` version.
 *
 *   npm run bench:instrumentation [-- --rounds 5 --slots 8 --chunk 512 --warmup 2500 --variants a,b]
 *
 * A round starts one fresh process per variant (instrumentations patch globally and conflict) and
 * warms them up; then, slot after slot, each process in turn measures one chunk of calls (order
 * rotated every slot), so every variant sees the same load. The receiver runs in its own process.
 * Figures: per variant the median over rounds of each process's median chunk; the added cost is
 * the median over all slots of the difference to the uninstrumented chunk of the same slot.
 */
import { progressReporter } from '../../cli/progress.js';
import { describeMachine, loadAverage } from './machine.js';
import { startReceiver, startVariant, type VariantProcess } from './processes.js';
import {
  formatTable,
  median,
  summarise,
  summaryRows,
  TABLE_HEADER,
  type ChunkSample,
  type RunSpans,
} from './stats.js';
import {
  BASELINE,
  CONTEXT_ONLY,
  FLOOR,
  isVariantName,
  VARIANT_LABELS,
  VARIANTS,
  type VariantName,
} from './variants.js';
import { benchArgs } from '../cli-args.js';

/** Our target from issue 3: added CPU per call, export included. */
const TARGET_ADDED_MICROS = 40;

interface Options {
  rounds: number;
  slots: number;
  chunk: number;
  warmup: number;
  variants: VariantName[];
}

function parseOptions(argv: string[]): Options {
  const USAGE = `Usage: npm run bench:instrumentation -- [--rounds 5] [--slots 8] [--chunk 512] [--warmup 2500] [--variants a,b]`;
  const { values } = benchArgs(
    {
      args: argv,
      options: {
        rounds: { type: 'string', default: '5' },
        slots: { type: 'string', default: '8' },
        chunk: { type: 'string', default: '512' },
        warmup: { type: 'string', default: '2500' },
        variants: { type: 'string', default: VARIANTS.join(',') },
      },
      strict: true,
    },
    USAGE,
  );
  const integer = (name: string, raw: string, min: number): number => {
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min) {
      throw new Error(`--${name} must be an integer ≥ ${min}, got ${JSON.stringify(raw)}`);
    }
    return value;
  };
  const variants = values.variants.split(',').map((name) => name.trim());
  for (const name of variants) {
    if (!isVariantName(name)) {
      throw new Error(
        `--variants: unknown ${JSON.stringify(name)} (known: ${VARIANTS.join(', ')})`,
      );
    }
  }
  // The added costs and the ratio need the baseline, context-only and floor in every slot.
  const chosen = new Set<VariantName>([
    BASELINE,
    CONTEXT_ONLY,
    FLOOR,
    ...(variants as VariantName[]),
  ]);
  return {
    rounds: integer('rounds', values.rounds, 1),
    slots: integer('slots', values.slots, 1),
    chunk: integer('chunk', values.chunk, 1),
    warmup: integer('warmup', values.warmup, 1),
    variants: VARIANTS.filter((name) => chosen.has(name)),
  };
}

/** The variants in slot `slot`'s order: rotated so none always runs first or after the same one. */
function slotOrder<T>(items: readonly T[], slot: number): T[] {
  const shift = slot % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const startedAt = Date.now();
  const loadBefore = loadAverage();
  console.log('routewatch bench: OpenAI instrumentation overhead (CPU per call, export included)');
  for (const line of describeMachine()) console.log(line);
  console.log(
    `${opts.rounds} rounds × ${opts.variants.length} variants, one process each per round · ` +
      `${opts.warmup} warm-up calls, then ${opts.slots} interleaved chunks of ${opts.chunk} calls ` +
      `(+ flush) per process · load average before: ${loadBefore}\n`,
  );

  const receiver = await startReceiver();
  // On stderr, so the figures on stdout stay as they are.
  const progress = progressReporter(
    process.stderr,
    'chunks measured',
    opts.rounds * opts.slots * opts.variants.length,
  );
  let measured = 0;
  const samples: ChunkSample[] = [];
  const spans: RunSpans[] = [];
  const runId = (variant: VariantName, round: number) => `${variant}-${round}`;
  try {
    for (let round = 0; round < opts.rounds; round += 1) {
      // Started together: start-up and warm-up are not measured, so they may overlap.
      const processes: VariantProcess[] = await Promise.all(
        opts.variants.map((variant) =>
          startVariant(
            variant,
            `http://127.0.0.1:${receiver.port}/v1/traces?run=${runId(variant, round)}`,
            opts.warmup,
          ),
        ),
      );
      const perVariant = new Map<VariantName, number[]>();
      for (let slot = 0; slot < opts.slots; slot += 1) {
        for (const variantProcess of slotOrder(processes, slot)) {
          const { cpuMicrosPerCall } = await variantProcess.measure(opts.chunk);
          progress.update(++measured);
          samples.push({ variant: variantProcess.variant, round, slot, cpuMicrosPerCall });
          perVariant.set(variantProcess.variant, [
            ...(perVariant.get(variantProcess.variant) ?? []),
            cpuMicrosPerCall,
          ]);
        }
      }
      for (const variantProcess of processes) {
        await variantProcess.exit();
        const received = await receiver.counts(runId(variantProcess.variant, round));
        spans.push({
          variant: variantProcess.variant,
          round,
          received: received.spans,
          tagged: received.tagged,
          attributes: received.attributes,
          expected:
            variantProcess.spansPerCall * variantProcess.totalCalls +
            variantProcess.spansPerLoop * variantProcess.loops,
        });
      }
      progress.clear();
      console.log(
        `round ${round + 1}/${opts.rounds}, median CPU µs/call: ` +
          opts.variants
            .map((variant) => `${variant} ${median(perVariant.get(variant) ?? []).toFixed(0)}`)
            .join(' · '),
      );
    }
  } finally {
    receiver.stop();
  }

  const summaries = summarise(samples, spans, opts.variants, {
    baseline: BASELINE,
    floor: FLOOR,
    contextOnly: CONTEXT_ONLY,
  });
  const callsPerRun = opts.warmup + opts.slots * opts.chunk;
  console.log('');
  console.log(formatTable(TABLE_HEADER, summaryRows(summaries, callsPerRun, VARIANT_LABELS)));
  console.log(
    `\nspans exported/run: median spans the receiver got per run (warm-up included, ` +
      `${callsPerRun} calls); attrs/span: attributes per exported span; tagged: spans carrying ` +
      'routewatch.cohort.',
  );
  const ours = summaries.find((summary) => summary.variant === 'routewatch');
  if (ours !== undefined) {
    const verdict =
      ours.addedCpu <= TARGET_ADDED_MICROS
        ? `meets the ≤ ${TARGET_ADDED_MICROS} µs target`
        : `misses the ≤ ${TARGET_ADDED_MICROS} µs target by ${(ours.addedCpu - TARGET_ADDED_MICROS).toFixed(1)} µs`;
    console.log(`routewatch adds ${ours.addedCpu.toFixed(1)} µs/call: ${verdict}.`);
  }
  console.log(
    `load average after: ${loadAverage()} · took ${((Date.now() - startedAt) / 1000).toFixed(0)} s`,
  );

  // A variant that exports nothing (or drops spans) measured less work than it should: a bench bug.
  const broken = summaries.filter(
    (summary) =>
      summary.spanMismatch || (summary.spansExpected > 0 && summary.medianSpansReceived === 0),
  );
  if (broken.length > 0) {
    console.error(
      `\nBENCH BUG: wrong span counts for ${broken.map((summary) => summary.variant).join(', ')}`,
    );
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
