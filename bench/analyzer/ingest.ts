/**
 * The ingest cost of the rollups, in its own process (chDB holds one data directory per process):
 * task-shaped spans POSTed as OTLP/HTTP protobuf to `routewatch start` on 127.0.0.1, 500 spans a
 * request, 16 in flight, each acknowledged once stored — the approach of bench/collector/run.ts —
 * and the same rows inserted straight into `spans` (10 000-row batches: the engine alone). Three
 * variants, alternating in order from round to round so that load drifting over the run spreads
 * over all of them:
 *   - off: the materialized views detached and the refresher stopped (no rollups at all);
 *   - views: the materialized views copying every insert into task_events, no refresher;
 *   - views + refresher: as `routewatch start` runs, refreshing every ROUTEWATCH_ROLLUP_INTERVAL.
 * Prints one JSON line with the figures; bench/analyzer/run.ts starts it.
 *   The refresher runs every 5 s here (ROUTEWATCH_ROLLUP_INTERVAL defaults to 10 s), so that a round
 *   of ~15 s pays for a few refreshes.
 * Usage: node dist/bench/analyzer/ingest.js --spans 100000 --rounds 3 --interval 5s
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { z } from 'zod';
import { normalizeRequest } from '../../collector/normalize.js';
import { decodeTraceRequestProto } from '../../collector/otlp-proto.js';
import { PriceTable } from '../../collector/pricing.js';
import { configWith } from '../../server/config.js';
import { startRoutewatch } from '../../server/start.js';
import type { RunningRoutewatch } from '../../server/start.js';
import { median } from '../instrumentation/stats.js';
import { benchArgs } from '../cli-args.js';

const USAGE = `Usage: node dist/bench/analyzer/ingest.js --spans 100000 --rounds 3 --interval 5s`;
const { values } = benchArgs(
  {
    options: {
      spans: { type: 'string', default: '100000' },
      rounds: { type: 'string', default: '3' },
      // Shorter than the default 10 s, so that a round of ~15 s sees a few refreshes.
      interval: { type: 'string', default: '5s' },
    },
  },
  USAGE,
);
const SPANS = Number(values.spans);
const ROUNDS = Number(values.rounds);
const PER_REQUEST = 500;
const IN_FLIGHT = 16;

export const VARIANTS = ['off', 'views', 'views + refresher'] as const;
export type Variant = (typeof VARIANTS)[number];

export interface IngestFigures {
  spans: number;
  rounds: number;
  /** Median spans per second over the rounds, per variant: OTLP/HTTP protobuf through the collector. */
  collector: Record<Variant, number>;
  /** Process CPU (collector, engine threads and the sender) per 1 000 spans, median. */
  collectorCpuMs: Record<Variant, number>;
  /** The same, straight inserts into `spans` (no HTTP, no decoding). */
  engine: Record<Variant, number>;
  engineCpuMs: Record<Variant, number>;
  refreshes: number;
  /** Requests sent again after a refused connection, a 503 or a 429 (the machine was busy). */
  retries: number;
}

let taskSequence = 0;
const hex = (value: number, bytes: number) => value.toString(16).padStart(bytes * 2, '0');
const toHr = (ns: bigint): [number, number] => [
  Number(ns / 1_000_000_000n),
  Number(ns % 1_000_000_000n),
];

/** One task as the instrumentation exports it: task span, attempt span, LLM call; 17 % fall back. */
function taskSpans(startNs: bigint): ReadableSpan[] {
  const n = ++taskSequence;
  const traceId = hex(n, 16);
  const cohort = `cohort-${String(n % 50).padStart(2, '0')}`;
  const attempts = n % 6 === 0 ? 2 : 1;
  const primary = n % 10 < 7 ? 'small' : 'large';
  const resource = {
    attributes: { 'service.name': 'bench' },
    merge: () => null,
    asyncAttributesPending: false,
    getRawAttributes: () => [['service.name', 'bench']],
  };
  let spanSequence = 0;
  const span = (
    name: string,
    kind: number,
    offsetMs: number,
    attributes: Record<string, string | number>,
  ): ReadableSpan => {
    const start = startNs + BigInt(offsetMs) * 1_000_000n;
    return {
      name,
      kind,
      spanContext: () => ({ traceId, spanId: hex(n * 8 + ++spanSequence, 8), traceFlags: 1 }),
      parentSpanContext: undefined,
      startTime: toHr(start),
      endTime: toHr(start + 200_000_000n),
      duration: [0, 200_000_000],
      status: { code: 0 },
      attributes: { 'routewatch.task.id': traceId, 'routewatch.cohort': cohort, ...attributes },
      links: [],
      events: [],
      ended: true,
      resource,
      instrumentationScope: { name: '@routewatch/instrumentation', version: '0.1.0' },
      droppedAttributesCount: 0,
      droppedEventsCount: 0,
      droppedLinksCount: 0,
    } as unknown as ReadableSpan;
  };
  const spans = [
    span(`routewatch.task ${cohort}`, 0, 0, {
      'routewatch.policy.version': 'v1',
      'routewatch.outcome': n % 10 === 0 ? 'failure' : 'success',
    }),
  ];
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const route = attempt === 1 ? primary : 'large';
    const model = route === 'small' ? 'gpt-4o-mini' : 'gpt-4o';
    const routing = { 'routewatch.route': route, 'routewatch.attempt': attempt };
    spans.push(
      span(`routewatch.attempt ${route}`, 0, attempt * 10, {
        ...routing,
        ...(attempt > 1 ? { 'routewatch.fallback.reason': 'validation_failed' } : {}),
      }),
      span(`chat ${model}`, 2, attempt * 10 + 1, {
        ...routing,
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': model,
        'gen_ai.response.model': model,
        'gen_ai.usage.input_tokens': 800 + (n % 400),
        'gen_ai.usage.output_tokens': 120 + (n % 80),
      }),
    );
  }
  return spans;
}

/** Requests of about `count` spans, tasks never split across requests. */
function makeRequests(count: number): ReadableSpan[][] {
  const start = BigInt(Date.now() - 60_000) * 1_000_000n;
  const requests: ReadableSpan[][] = [];
  let current: ReadableSpan[] = [];
  let made = 0;
  while (made < count) {
    const spans = taskSpans(start + BigInt(made) * 1_000n);
    current.push(...spans);
    made += spans.length;
    if (current.length >= PER_REQUEST) {
      requests.push(current);
      current = [];
    }
  }
  if (current.length > 0) requests.push(current);
  return requests;
}

/** Retries of one request, as an OTLP exporter retries: a refused connection, a 503 or a 429. */
let retries = 0;

async function post(url: string, body: Uint8Array): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-protobuf' },
        body,
      });
      if (res.status === 200) {
        await res.arrayBuffer();
        return;
      }
      const text = await res.text();
      if ((res.status !== 503 && res.status !== 429) || attempt === 5) {
        throw new Error(`collector answered ${res.status}: ${text}`);
      }
    } catch (error) {
      if (attempt === 5 || (error instanceof Error && error.message.startsWith('collector'))) {
        throw error;
      }
    }
    retries++;
    await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
  }
}

async function send(url: string, bodies: Uint8Array[]): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < bodies.length) await post(url, bodies[next++]!);
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
}

async function setVariant(routewatch: RunningRoutewatch, variant: Variant): Promise<void> {
  await routewatch.rollups.stop();
  const [view] = await routewatch.store.query(
    "SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name = 'task_events_from_spans'",
    {},
    z.object({ n: z.coerce.number() }),
  );
  const attached = view!.n > 0;
  if (variant === 'off' && attached)
    await routewatch.store.exec('DETACH TABLE task_events_from_spans');
  if (variant !== 'off' && !attached)
    await routewatch.store.exec('ATTACH TABLE task_events_from_spans');
  if (variant === 'views + refresher') {
    // Catch up first (not timed), so the round measures the refreshes its own spans cause.
    await routewatch.rollups.refreshNow();
    routewatch.rollups.start();
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'routewatch-bench-ingest-'));
  const routewatch = await startRoutewatch(
    configWith({
      ROUTEWATCH_PORT: '0',
      ROUTEWATCH_DATA_DIR: dir,
      ROUTEWATCH_ROLLUP_INTERVAL: values.interval,
    }),
  );
  const prices = new PriceTable();
  const series = (): Record<Variant, number[]> => ({ off: [], views: [], 'views + refresher': [] });
  const collector = series();
  const collectorCpu = series();
  const engine = series();
  const engineCpu = series();
  const cpuMsPer1k = (since: NodeJS.CpuUsage, spans: number) => {
    const used = process.cpuUsage(since);
    return (used.user + used.system) / 1000 / (spans / 1000);
  };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]!);
      for (const variant of order) {
        await setVariant(routewatch, variant);
        // Fresh tasks each time: the collector drops span ids it has stored recently.
        const bodies = makeRequests(SPANS).map((spans) =>
          ProtobufTraceSerializer.serializeRequest(spans)!,
        );
        let t0 = performance.now();
        let cpu = process.cpuUsage();
        await send(routewatch.tracesUrl, bodies);
        collector[variant].push(SPANS / ((performance.now() - t0) / 1000));
        collectorCpu[variant].push(cpuMsPer1k(cpu, SPANS));

        const rows = makeRequests(SPANS).flatMap(
          (spans) =>
            normalizeRequest(
              decodeTraceRequestProto(ProtobufTraceSerializer.serializeRequest(spans)!),
              prices,
            ).rows,
        );
        const batches: Buffer[] = [];
        for (let i = 0; i < rows.length; i += 10_000) {
          batches.push(
            Buffer.from(
              rows
                .slice(i, i + 10_000)
                .map((r) => JSON.stringify(r))
                .join('\n'),
            ),
          );
        }
        t0 = performance.now();
        cpu = process.cpuUsage();
        for (const batch of batches) await routewatch.store.insertJsonEachRow('spans', batch);
        engine[variant].push(rows.length / ((performance.now() - t0) / 1000));
        engineCpu[variant].push(cpuMsPer1k(cpu, rows.length));
      }
    }
    await setVariant(routewatch, 'views');
    const medians = (values: Record<Variant, number[]>): Record<Variant, number> => ({
      off: median(values.off),
      views: median(values.views),
      'views + refresher': median(values['views + refresher']),
    });
    const figures: IngestFigures = {
      spans: SPANS,
      rounds: ROUNDS,
      collector: medians(collector),
      collectorCpuMs: medians(collectorCpu),
      engine: medians(engine),
      engineCpuMs: medians(engineCpu),
      refreshes: routewatch.rollups.stats.refreshes,
      retries,
    };
    process.stdout.write(`${JSON.stringify(figures)}\n`);
  } finally {
    await routewatch.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
