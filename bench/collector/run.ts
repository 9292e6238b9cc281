/**
 * Collector ingest end to end into the embedded store, against the engine's own insert of the same
 * rows, in one run, for each mix (bench/collector/workload.ts):
 *   (1) raw: the rows the pipeline makes of the export, inserted straight into `spans` in 10 000-row
 *       batches, in the format the writer sends — what the embedded ClickHouse can take, no HTTP,
 *       no decoding;
 *   (2) OTLP/HTTP protobuf (the SDK default) and JSON: pre-encoded export requests of 500 spans
 *       POSTed to `routewatch start` on 127.0.0.1, 16 in flight, each acknowledged only once stored.
 * Rates are in rows stored per second (the same unit as the raw insert) and spans received per
 * second. Then the acknowledgement latency at half the maximum rate: protobuf requests sent at a
 * fixed pace (open loop) at half the median protobuf rate just measured, p50/p99 per request.
 * The sender runs in this process too, so its CPU shares the two cores with the collector.
 * Usage: npm run bench:collector -- [--spans 60000] [--rounds 3] [--mixes llm,mixed] [--latency-s 15]
 *        [--in-flight 16] [--batch-delay 200ms] [--profile-main main.cpuprofile]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { createIngest } from '../../collector/ingest.js';
import { SPAN_INSERT } from '../../collector/span-lines.js';
import { configWith } from '../../server/config.js';
import { ingestSettings, startRoutewatch } from '../../server/start.js';
import type { Store } from '../../storage/store.js';
import { describeMachine, loadAverage } from '../instrumentation/machine.js';
import { median } from '../instrumentation/stats.js';
import { CONTENT_TYPE, SPANS_PER_REQUEST, encode, makeRequests } from './workload.js';
import type { Encoding, Mix } from './workload.js';

const { values } = parseArgs({
  options: {
    spans: { type: 'string', default: '60000' },
    rounds: { type: 'string', default: '3' },
    mixes: { type: 'string', default: 'llm,mixed' },
    'latency-s': { type: 'string', default: '15' },
    /** Requests in flight while measuring the rate. */
    'in-flight': { type: 'string', default: '16' },
    /** Writes a V8 profile of the main thread during the protobuf phases to this file. */
    'profile-main': { type: 'string' },
    /** ROUTEWATCH_BATCH_DELAY for the collector (default: the configuration's default). */
    'batch-delay': { type: 'string' },
  },
});
const SPANS = Number(values.spans);
const ROUNDS = Number(values.rounds);
const MIX_LIST = values.mixes.split(',') as Mix[];
const LATENCY_S = Number(values['latency-s']);
const IN_FLIGHT = Number(values['in-flight']);
const RAW_BATCH_ROWS = 10_000;

/** 503s answered (the collector's admission control: overloaded), retried as an exporter would. */
let refusals = 0;

async function post(url: string, body: Uint8Array, encoding: Encoding): Promise<void> {
  for (;;) {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': CONTENT_TYPE[encoding] },
      body,
    });
    if (res.status === 503) {
      refusals++;
      await res.arrayBuffer();
      // Retry-After, capped at a second so that one refusal does not idle the run for long.
      const seconds = Math.min(1, Number(res.headers.get('retry-after') ?? 1));
      await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
      continue;
    }
    if (res.status !== 200)
      throw new Error(`collector answered ${res.status}: ${await res.text()}`);
    await res.arrayBuffer();
    return;
  }
}

async function send(url: string, bodies: Uint8Array[], encoding: Encoding): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < bodies.length) await post(url, bodies[next++]!, encoding);
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
}

interface Measure {
  wallMs: number;
  cpuMs: number;
}

/**
 * Waits until the engine merges no part of `spans`: merges started by one phase's inserts would
 * otherwise run, and be counted, in the next phase.
 */
async function settle(store: Store): Promise<void> {
  const merges = z.object({ n: z.coerce.number() });
  for (let i = 0; i < 100; i++) {
    const [row] = await store.query(
      "SELECT count() AS n FROM system.merges WHERE table = 'spans'",
      {},
      merges,
    );
    if (row!.n === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Profiles the main thread during `fn`, once (the first protobuf phase), into --profile-main. */
let profiledOnce = false;
async function profiled<T>(on: boolean, fn: () => Promise<T>): Promise<T> {
  if (!on || profiledOnce) return fn();
  profiledOnce = true;
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  const result = await fn();
  const { profile } = await session.post('Profiler.stop');
  writeFileSync(values['profile-main']!, JSON.stringify(profile));
  session.disconnect();
  return result;
}

async function measure(fn: () => Promise<void>): Promise<Measure> {
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const used = process.cpuUsage(cpu);
  return { wallMs: performance.now() - t0, cpuMs: (used.user + used.system) / 1000 };
}

/** Open loop: one request every `intervalMs`, whatever the answers; latency of each. */
async function paced(
  url: string,
  bodies: Uint8Array[],
  intervalMs: number,
): Promise<{ latencies: number[]; late: number }> {
  const latencies: number[] = [];
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  let late = 0;
  for (let i = 0; i < bodies.length; i++) {
    const due = t0 + i * intervalMs;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    else if (wait < -intervalMs) late++;
    const sent = performance.now();
    pending.push(
      post(url, bodies[i]!, 'protobuf').then(() => {
        latencies.push(performance.now() - sent);
      }),
    );
  }
  await Promise.all(pending);
  return { latencies, late };
}

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'routewatch-bench-collector-'));
  const config = configWith({
    ROUTEWATCH_PORT: '0',
    ROUTEWATCH_DATA_DIR: dir,
    ...(values['batch-delay'] ? { ROUTEWATCH_BATCH_DELAY: values['batch-delay'] } : {}),
  });
  const routewatch = await startRoutewatch(config);
  // The pipeline itself, to make the raw insert's rows exactly as the collector makes them.
  const ingest = createIngest(ingestSettings(config));
  const table: string[] = [];
  try {
    console.log('routewatch bench: collector ingest into the embedded store, end to end');
    for (const line of describeMachine().slice(0, 2)) console.log(line);
    console.log(
      `${SPANS} spans per variant and round, ${SPANS_PER_REQUEST} spans per request, ${IN_FLIGHT} in flight, ${ROUNDS} rounds · batch delay ${config.ROUTEWATCH_BATCH_DELAY} ms · load average before: ${loadAverage()}\n`,
    );
    for (const mix of MIX_LIST) {
      const results: Record<string, Measure[]> = { raw: [], protobuf: [], json: [] };
      let rowsPerRound = 0;
      for (let round = 1; round <= ROUNDS; round++) {
        // Fresh spans for each variant: the collector drops span ids it has already stored.
        const rawBatches: Buffer[] = [];
        let lines: string[] = [];
        for (const spans of makeRequests(mix, SPANS)) {
          lines.push(...ingest(encode(spans, 'protobuf'), 'protobuf', Date.now()).lines);
        }
        rowsPerRound = lines.length;
        for (let i = 0; i < lines.length; i += RAW_BATCH_ROWS) {
          rawBatches.push(Buffer.from(lines.slice(i, i + RAW_BATCH_ROWS).join('\n') + '\n'));
        }
        lines = [];
        const bodies = {
          protobuf: makeRequests(mix, SPANS).map((s) => encode(s, 'protobuf')),
          json: makeRequests(mix, SPANS).map((s) => encode(s, 'json')),
        };
        // Each phase after the engine's merges of the one before; the order rotates by round.
        const phases = ['raw', 'protobuf', 'json'] as const;
        for (let p = 0; p < phases.length; p++) {
          const phase = phases[(p + round - 1) % phases.length]!;
          await settle(routewatch.store);
          if (phase === 'raw') {
            results['raw']!.push(
              await measure(async () => {
                for (const batch of rawBatches)
                  await routewatch.store.insertJsonEachRow('spans', batch, SPAN_INSERT);
              }),
            );
          } else {
            results[phase]!.push(
              await profiled(phase === 'protobuf' && values['profile-main'] !== undefined, () =>
                measure(() => send(routewatch.tracesUrl, bodies[phase], phase)),
              ),
            );
          }
        }
        console.log(
          `${mix} round ${round}/${ROUNDS}: ` +
            Object.entries(results)
              .map(
                ([name, list]) =>
                  `${name} ${Math.round(rowsPerRound / (list.at(-1)!.wallMs / 1000)).toLocaleString('en')} rows/s`,
              )
              .join(' · '),
        );
      }
      const rawRate = median(results['raw']!.map((m) => rowsPerRound / (m.wallMs / 1000)));
      for (const [name, list] of Object.entries(results)) {
        const rowRate = median(list.map((m) => rowsPerRound / (m.wallMs / 1000)));
        const spanRate =
          name === 'raw' ? Number.NaN : median(list.map((m) => SPANS / (m.wallMs / 1000)));
        const cpuPerKRows = median(list.map((m) => m.cpuMs / (rowsPerRound / 1000)));
        table.push(
          `${`${mix}/${name}`.padEnd(16)} ${Math.round(rowRate).toLocaleString('en').padStart(10)} ${(Number.isNaN(spanRate) ? '—' : Math.round(spanRate).toLocaleString('en')).padStart(10)} ${(rowRate / rawRate).toFixed(2).padStart(8)} ${cpuPerKRows.toFixed(1).padStart(18)}`,
        );
      }

      // Acknowledgement latency at half the maximum rate (the median protobuf rate above).
      const maxSpanRate = median(results['protobuf']!.map((m) => SPANS / (m.wallMs / 1000)));
      const intervalMs = (SPANS_PER_REQUEST / (maxSpanRate / 2)) * 1000;
      const count = Math.max(50, Math.round((LATENCY_S * 1000) / intervalMs));
      const bodies = makeRequests(mix, count * SPANS_PER_REQUEST).map((s) => encode(s, 'protobuf'));
      await settle(routewatch.store);
      const { latencies, late } = await paced(routewatch.tracesUrl, bodies, intervalMs);
      latencies.sort((a, b) => a - b);
      const line =
        `${mix}: ${count} protobuf requests of ${SPANS_PER_REQUEST} spans at ${Math.round(maxSpanRate / 2).toLocaleString('en')} spans/s ` +
        `(one every ${intervalMs.toFixed(0)} ms${late > 0 ? `, ${late} sent late` : ''}): ` +
        `ack latency p50 ${quantile(latencies, 0.5).toFixed(1)} ms · p90 ${quantile(latencies, 0.9).toFixed(1)} ms · ` +
        `p99 ${quantile(latencies, 0.99).toFixed(1)} ms · max ${latencies.at(-1)!.toFixed(1)} ms`;
      console.log(line);
      table.push(`  ${line}`);
    }
    console.log(
      '\nvariant            rows/s   spans/s   × raw   process CPU ms/1k rows   (medians)',
    );
    for (const line of table) console.log(line);
    console.log(
      `\nrows stored via HTTP: ${routewatch.writer.stats.rowsWritten.toLocaleString('en')} in ${routewatch.writer.stats.batches} inserts · requests refused with 503 and retried: ${refusals} · load average after: ${loadAverage()}`,
    );
  } finally {
    await routewatch.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
