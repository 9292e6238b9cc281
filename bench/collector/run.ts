/**
 * Collector ingest end to end into the embedded store, against the engine's own insert of the same
 * rows, in one run, for each mix (bench/collector/workload.ts):
 *   (1) raw: the rows the pipeline makes of the export, inserted straight into `spans` in 10 000-row
 *       batches, in the format the writer sends (SPAN_INSERT) — what the embedded ClickHouse can
 *       take, no HTTP, no decoding;
 *   (2) OTLP/HTTP protobuf (the SDK default) and JSON: pre-encoded export requests of 500 spans
 *       POSTed to `routewatch start` on 127.0.0.1, `--in-flight` at a time. With the write-ahead log
 *       (the default) a request is answered once its spans are fsynced to the log; the phase is
 *       timed until every span is stored (`writer.flush()`: the log drained into the store);
 *   (3) protobuf, WAL off: the same app (`buildApp`, same store, ROUTEWATCH_WAL=off) on a port of
 *       its own, each request answered only once stored. WAL on and off swap places every round.
 * Rates are in rows stored per second (the same unit as the raw insert) and spans received per
 * second; "acknowledged" rates count until the last answer. Then the acknowledgement latency at
 * half the maximum rate, with the log on and off: protobuf requests sent at a fixed pace (open
 * loop) at half the median stored protobuf rate just measured for that variant, p50/p99. A third
 * latency variant, "store down", is a store outage: the same app with a log of its own on a store
 * whose every insert fails, so the log only fills and the drainer retries; the engine neither
 * inserts nor merges for it. It is started for its phase, warmed with 40 requests, and closed
 * after it. Under each latency line, the collector's own stage timings over the phase, read from
 * /metrics (routewatch_export_stage_seconds, quantiles interpolated in its buckets).
 * The rate phases send from this process, so the sender's CPU is counted with the collector's.
 * The latency phase sends from a child process (paced-sender.ts; `--sender inline`: from this
 * process, as before), so that the sender's work and garbage collections do not run on the
 * collector's main thread inside the latencies; both share the same two cores.
 * A progress line goes to stderr; the figures to stdout.
 * Usage: npm run bench:collector -- [--spans 60000] [--rounds 3] [--mixes llm,mixed] [--latency-s 15]
 *        [--latency-rate llm=9000,mixed=25000]
 *        [--in-flight 16] [--batch-delay 200ms] [--ingest-workers 2] [--engine-nice 0]
 *        [--profile-main main.cpuprofile] [--heap-profile-main main.heapprofile]
 *        [--sender process|inline]
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { progressReporter } from '../../cli/progress.js';
import type { Progress } from '../../cli/progress.js';
import { createIngest } from '../../collector/ingest.js';
import { EXPORT_STAGES, readStageHistograms } from '../../collector/latency-histogram.js';
import type { StageHistograms } from '../../collector/latency-histogram.js';
import { SPAN_INSERT, preparedLines } from '../../collector/span-lines.js';
import type { SpanWriter } from '../../collector/span-writer.js';
import { buildApp } from '../../server/app.js';
import { batchDelayMs, configWith } from '../../server/config.js';
import {
  ingestRunnerFor,
  ingestSettings,
  openSpanWriter,
  startRoutewatch,
} from '../../server/start.js';
import type { Store } from '../../storage/store.js';
import { allocationSites } from '../instrumentation/cpu-profile.js';
import type { HeapProfile } from '../instrumentation/cpu-profile.js';
import { describeMachine, loadAverage } from '../instrumentation/machine.js';
import { median } from '../instrumentation/stats.js';
import { SPANS_PER_REQUEST, encode, makeRequests, pacedFromChild, postOnce } from './workload.js';
import type { Encoding, Mix } from './workload.js';
import { benchArgs } from '../cli-args.js';

const USAGE = `Usage: npm run bench:collector -- [--spans 60000] [--rounds 3] [--mixes llm,mixed] [--latency-s 15]
       [--latency-rate llm=9000,mixed=25000]
       [--in-flight 16] [--batch-delay 200ms] [--ingest-workers 2] [--engine-nice 0]
       [--profile-main main.cpuprofile] [--heap-profile-main main.heapprofile]
       [--sender process|inline]`;
const { values } = benchArgs(
  {
    options: {
      spans: { type: 'string', default: '60000' },
      rounds: { type: 'string', default: '3' },
      mixes: { type: 'string', default: 'llm,mixed' },
      'latency-s': { type: 'string', default: '15' },
      /**
       * The latency phases' pace, spans/s per mix (`llm=9000,mixed=25000`), instead of half of each
       * run's measured maximum: to compare builds or settings at the same load.
       */
      'latency-rate': { type: 'string' },
      /** Requests in flight while measuring the rate. */
      'in-flight': { type: 'string', default: '16' },
      /** Writes a V8 profile of the main thread during the first protobuf (WAL on) phase to this file. */
      'profile-main': { type: 'string' },
      /**
       * Samples the main thread's allocations during the first latency phase (WAL on) into this
       * file, garbage included, and prints the functions that allocate most per request.
       */
      'heap-profile-main': { type: 'string' },
      /** ROUTEWATCH_BATCH_DELAY for both apps (default: the configuration's, by mode). */
      'batch-delay': { type: 'string' },
      /** ROUTEWATCH_INGEST_WORKERS for both apps (default: the configuration's, by cores). */
      'ingest-workers': { type: 'string' },
      /** ROUTEWATCH_ENGINE_NICE (default: the configuration's); 0 leaves the engine's threads be. */
      'engine-nice': { type: 'string' },
      /** Where the latency phase sends from: a child process (default) or this one. */
      sender: { type: 'string', default: 'process' },
    },
  },
  USAGE,
);
if (values.sender !== 'process' && values.sender !== 'inline') {
  throw new Error(`--sender must be process or inline, not ${values.sender}`);
}
const SPANS = Number(values.spans);
const ROUNDS = Number(values.rounds);
const MIX_LIST = values.mixes.split(',') as Mix[];
const LATENCY_S = Number(values['latency-s']);
const LATENCY_RATES = latencyRates(values['latency-rate']);
const IN_FLIGHT = Number(values['in-flight']);
const RAW_BATCH_ROWS = 10_000;
/** Requests sent to the store-down app before its latency phase, to warm it. */
const STORE_DOWN_WARM_REQUESTS = 40;

/** The variants of a round, in the order of the table. */
const VARIANTS = ['raw', 'protobuf', 'protobuf, WAL off', 'json'] as const;
type Variant = (typeof VARIANTS)[number];

/** 503s answered (the collector's admission control: overloaded), retried as an exporter would. */
let refusals = 0;

/**
 * The sender speaks as the OpenTelemetry Node exporters do (otlp-exporter-base's http transport):
 * `http.request` over keep-alive connections. `fetch` (undici) costs ~1.5 ms more CPU per 300 KiB
 * request here, which would be counted against the collector, since the sender shares its process.
 */
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

async function post(url: string, body: Uint8Array, encoding: Encoding): Promise<void> {
  for (;;) {
    const res = await postOnce(agent, url, body, encoding);
    if (res.status === 503) {
      refusals++;
      // Retry-After, capped at a second so that one refusal does not idle the run for long.
      const seconds = Math.min(1, Number(res.retryAfter ?? 1));
      await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
      continue;
    }
    if (res.status !== 200) throw new Error(`collector answered ${res.status}: ${res.text}`);
    return;
  }
}

async function send(
  url: string,
  bodies: Uint8Array[],
  encoding: Encoding,
  progress: Progress,
): Promise<void> {
  let next = 0;
  let answered = 0;
  const worker = async () => {
    while (next < bodies.length) {
      await post(url, bodies[next++]!, encoding);
      progress.update(++answered);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  progress.clear();
}

/** Progress on stderr, so the figures on stdout stay as they are. */
const progress = (label: string, total: number) => progressReporter(process.stderr, label, total);

interface Measure {
  /** Until every span is stored. */
  wallMs: number;
  /** Until every request was answered (the same as wallMs when answers wait for the store). */
  ackMs: number;
  cpuMs: number;
  /** The writer's inserts into the store during the phase (none for the raw insert). */
  inserts: number;
  /** Its write-ahead log appends, one fdatasync each (none without the log). */
  appends: number;
  /** CPU ms by group of threads (threadCpu); all 0 where /proc is missing. */
  threads: ThreadCpu;
}

interface ThreadCpu {
  /** The main thread: HTTP server, the sender, the writer and the log's drainer. */
  main: number;
  /** The two apps' ingest threads (decode → normalize → price → serialize). */
  ingest: number;
  /** Other unnamed threads: libuv's pool (where chDB's calls run), V8's GC helpers, chDB's own. */
  node: number;
  /** Threads the engine names itself (chDB: ThreadPool, MergeMutate, …). */
  engine: number;
}

/** The ingest threads' ids, found by which threads appear when the apps start (threadsNamedNode). */
const ingestTids = new Set<string>();

/** Clock ticks per second of /proc's utime and stime (USER_HZ, 100 on Linux). */
const TICK_MS = 10;

/** Ids of this process's threads that carry Node's name, not one the engine gave them. */
function threadsNamedNode(): string[] {
  try {
    return readdirSync('/proc/self/task').filter((tid) => {
      try {
        return readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').includes('(node)');
      } catch {
        return false;
      }
    });
  } catch {
    return [];
  }
}

/** CPU time so far of each thread of this process, by group (Linux /proc; zeros elsewhere). */
function threadCpu(): ThreadCpu {
  const total: ThreadCpu = { main: 0, ingest: 0, node: 0, engine: 0 };
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return total;
  }
  for (const tid of tids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended
    }
    const close = stat.lastIndexOf(')');
    const name = stat.slice(stat.indexOf('(') + 1, close);
    const fields = stat.slice(close + 2).split(' ');
    const ms = (Number(fields[11]) + Number(fields[12])) * TICK_MS;
    if (Number(tid) === process.pid) total.main += ms;
    else if (ingestTids.has(tid)) total.ingest += ms;
    else if (name === 'node') total.node += ms;
    else total.engine += ms;
  }
  return total;
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

/**
 * Samples the main thread's allocations during `fn`, once (the first WAL-on latency phase), into
 * --heap-profile-main, and prints the functions that allocate most, per request of the phase.
 * Objects already collected are kept in the profile: the garbage is what the question is about.
 */
let heapProfiledOnce = false;
async function heapProfiled<T>(on: boolean, requests: number, fn: () => Promise<T>): Promise<T> {
  if (!on || heapProfiledOnce) return fn();
  heapProfiledOnce = true;
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 16_384,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  const result = await fn();
  const { profile } = (await session.post('HeapProfiler.stopSampling')) as {
    profile: HeapProfile;
  };
  session.disconnect();
  writeFileSync(values['heap-profile-main']!, JSON.stringify(profile));
  const sites = allocationSites(profile);
  const total = sites.reduce((sum, site) => sum + site.bytes, 0);
  console.log(
    `main thread allocations in the phase (sampled, garbage included): ` +
      `${(total / requests / 1024).toFixed(0)} KiB per request; the largest, per request:`,
  );
  for (const site of sites.slice(0, 15)) {
    console.log(
      `  ${(site.share * 100).toFixed(1).padStart(5)} %  ${(site.bytes / requests / 1024).toFixed(1).padStart(7)} KiB  ${site.location}`,
    );
  }
  return result;
}

/** Times `send`, then `stored` (waiting for what was acknowledged to be stored). */
async function measure(
  sendAll: () => Promise<void>,
  writer?: SpanWriter,
  stored: () => Promise<void> = async () => undefined,
): Promise<Measure> {
  const counters = () => ({
    inserts: writer?.stats.batches ?? 0,
    appends: writer?.walSnapshot()?.appends ?? 0,
  });
  const before = counters();
  const threadsBefore = threadCpu();
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await sendAll();
  const ackMs = performance.now() - t0;
  await stored();
  const used = process.cpuUsage(cpu);
  const after = counters();
  const threadsAfter = threadCpu();
  return {
    wallMs: performance.now() - t0,
    ackMs,
    cpuMs: (used.user + used.system) / 1000,
    inserts: after.inserts - before.inserts,
    appends: after.appends - before.appends,
    // A thread that ended during the phase takes its time with it: the groups can sum to less.
    threads: {
      main: threadsAfter.main - threadsBefore.main,
      ingest: threadsAfter.ingest - threadsBefore.ingest,
      node: threadsAfter.node - threadsBefore.node,
      engine: threadsAfter.engine - threadsBefore.engine,
    },
  };
}

/** `--latency-rate llm=9000,mixed=25000`: a fixed pace per mix, spans per second. */
function latencyRates(text: string | undefined): Map<Mix, number> {
  const rates = new Map<Mix, number>();
  for (const part of text ? text.split(',') : []) {
    const [mix, rate] = part.split('=');
    const spansPerSecond = Number(rate);
    if ((mix !== 'llm' && mix !== 'mixed') || !(spansPerSecond > 0)) {
      throw new Error(
        `--latency-rate takes mix=spans-per-second pairs, such as llm=9000,mixed=25000; not "${part}"`,
      );
    }
    rates.set(mix, spansPerSecond);
  }
  return rates;
}

/** The collector's own stage histograms, as /metrics exposes them. */
async function scrapeStages(metricsUrl: string): Promise<Partial<StageHistograms>> {
  const response = await fetch(metricsUrl);
  if (!response.ok) throw new Error(`${metricsUrl} answered ${response.status}`);
  return readStageHistograms(await response.text(), 'routewatch_export_stage_seconds');
}

/** Each stage's quantiles over the requests between two scrapes (bucket-interpolated). */
function stageSummary(before: Partial<StageHistograms>, after: Partial<StageHistograms>): string {
  return EXPORT_STAGES.map((stage) => {
    const later = after[stage];
    if (!later) return `${stage} —`;
    const earlier = before[stage];
    const h = earlier ? later.since(earlier) : later;
    const q = (p: number) => h.quantile(p).toFixed(1);
    return `${stage} ${q(0.5)} / ${q(0.9)} / ${q(0.99)}`;
  }).join(' · ');
}

/** Open loop: one request every `intervalMs`, whatever the answers; latency of each. */
async function paced(
  url: string,
  bodies: Uint8Array[],
  intervalMs: number,
  bar: Progress,
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
        bar.update(latencies.length);
      }),
    );
  }
  await Promise.all(pending);
  bar.clear();
  return { latencies, late };
}

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

const rate = (count: number, ms: number) => count / (ms / 1000);
const int = (n: number) => Math.round(n).toLocaleString('en');

/** The writers' counters that say how the work was cut: group commits, inserts, refusals. */
function writerCounters(name: string, writer: SpanWriter): string {
  const wal = writer.walSnapshot();
  const { stats } = writer;
  const parts = [`${name}: ${int(stats.rowsWritten)} rows in ${int(stats.batches)} inserts`];
  if (stats.batches > 0) parts.push(`${int(stats.rowsWritten / stats.batches)} rows per insert`);
  if (wal) {
    parts.push(
      `${int(wal.appends)} log appends (fsyncs) of ${int(wal.recordsAppended)} records, ` +
        `${(wal.bytesAppended / 2 ** 20).toFixed(0)} MiB`,
    );
  }
  parts.push(`${stats.overloadRefusals} overload refusals`);
  return parts.join(' · ');
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'routewatch-bench-collector-'));
  const batchDelay = values['batch-delay'] ? { ROUTEWATCH_BATCH_DELAY: values['batch-delay'] } : {};
  const workers = values['ingest-workers']
    ? { ROUTEWATCH_INGEST_WORKERS: values['ingest-workers'] }
    : {};
  const config = configWith({
    ROUTEWATCH_PORT: '0',
    ROUTEWATCH_DATA_DIR: dir,
    ...batchDelay,
    ...workers,
    ...(values['engine-nice'] ? { ROUTEWATCH_ENGINE_NICE: values['engine-nice'] } : {}),
  });
  const nodeThreadsBefore = new Set(threadsNamedNode());
  const routewatch = await startRoutewatch(config);
  // Its ingest threads are the last threads Node starts in it (after chDB's, which start with the
  // store).
  const started = threadsNamedNode().filter((tid) => !nodeThreadsBefore.has(tid));
  const newest = started
    .sort((a, b) => Number(a) - Number(b))
    .slice(-Number(config.ROUTEWATCH_INGEST_WORKERS));
  for (const tid of newest) ingestTids.add(tid);
  // The same app without the write-ahead log, on the same store (one chDB per process).
  const walOffConfig = configWith({
    ROUTEWATCH_PORT: '0',
    ROUTEWATCH_DATA_DIR: dir,
    ROUTEWATCH_WAL: 'off',
    ...batchDelay,
    ...workers,
  });
  const walOffWriter = await openSpanWriter(routewatch.store, walOffConfig);
  const nodeThreadsBeforeWalOff = new Set(threadsNamedNode());
  const walOffIngest = ingestRunnerFor(walOffConfig);
  for (const tid of threadsNamedNode()) if (!nodeThreadsBeforeWalOff.has(tid)) ingestTids.add(tid);
  const walOff = await buildApp({
    config: walOffConfig,
    store: routewatch.store,
    writer: walOffWriter,
    ingest: walOffIngest,
  });
  await walOff.listen({ host: '127.0.0.1', port: 0 });
  const walOffAddress = walOff.server.address();
  const walOffUrl = `http://127.0.0.1:${typeof walOffAddress === 'object' && walOffAddress ? walOffAddress.port : 0}/v1/traces`;
  // The store down: the same app with a log of its own on a store whose every insert fails,
  // started for its latency phase and closed after it (its drainer's retries must not run into
  // the phases after it).
  let storeDownPhases = 0;
  const startStoreDown = async () => {
    const walDir = join(dir, `wal-store-down-${storeDownPhases++}`);
    const downConfig = configWith({
      ROUTEWATCH_PORT: '0',
      ROUTEWATCH_DATA_DIR: dir,
      ROUTEWATCH_WAL_DIR: walDir,
      ...batchDelay,
      ...workers,
    });
    const downStore = new Proxy(routewatch.store, {
      get(target, property, receiver) {
        if (property === 'insertJsonEachRow') {
          return () => Promise.reject(new Error('the store is down for this phase'));
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const downWriter = await openSpanWriter(downStore, downConfig, {
      log: { info() {}, warn() {}, error() {} },
    });
    const downIngest = ingestRunnerFor(downConfig);
    const downApp = await buildApp({
      config: downConfig,
      store: downStore,
      writer: downWriter,
      ingest: downIngest,
    });
    await downApp.listen({ host: '127.0.0.1', port: 0 });
    const address = downApp.server.address();
    return {
      url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/v1/traces`,
      async close() {
        await downApp.close();
        // Its log is never drained: closing gives up on it at once, and it is deleted.
        await downWriter.close({ drainMs: 0 });
        await downIngest.close();
        rmSync(walDir, { recursive: true, force: true });
      },
    };
  };
  // The pipeline itself, to make the raw insert's rows exactly as the collector makes them.
  const ingest = createIngest(ingestSettings(config));
  const drained = () => routewatch.writer.flush();
  const table: string[] = [];
  const latencyLines: string[] = [];
  try {
    console.log('routewatch bench: collector ingest into the embedded store, end to end');
    for (const line of describeMachine().slice(0, 2)) console.log(line);
    console.log(
      `${SPANS} spans per variant and round, ${SPANS_PER_REQUEST} spans per request, ${IN_FLIGHT} in flight, ` +
        `${ROUNDS} rounds · batch rows ${config.ROUTEWATCH_BATCH_ROWS}, batch delay ${batchDelayMs(config)} ms with the log, ${batchDelayMs(walOffConfig)} ms without · ` +
        `ingest threads ${config.ROUTEWATCH_INGEST_WORKERS} per app · load average before: ${loadAverage()}\n`,
    );
    for (const mix of MIX_LIST) {
      const results = Object.fromEntries(VARIANTS.map((v) => [v, [] as Measure[]])) as Record<
        Variant,
        Measure[]
      >;
      let rowsPerRound = 0;
      for (let round = 1; round <= ROUNDS; round++) {
        // Fresh spans for each variant: the collector drops span ids it has already stored.
        const rawBatches: Buffer[] = [];
        let lines: string[] = [];
        for (const spans of makeRequests(mix, SPANS)) {
          lines.push(...preparedLines(ingest(encode(spans, 'protobuf'), 'protobuf', Date.now())));
        }
        rowsPerRound = lines.length;
        for (let i = 0; i < lines.length; i += RAW_BATCH_ROWS) {
          rawBatches.push(Buffer.from(lines.slice(i, i + RAW_BATCH_ROWS).join('\n') + '\n'));
        }
        lines = [];
        const bodies = (encoding: Encoding) =>
          makeRequests(mix, SPANS).map((s) => encode(s, encoding));
        const protobufOn = bodies('protobuf');
        const protobufOff = bodies('protobuf');
        const json = bodies('json');
        const label = (variant: string) => `${mix} round ${round} ${variant}`;
        const runs: Record<Variant, () => Promise<Measure>> = {
          raw: () => {
            const bar = progress(label('raw inserts'), rawBatches.length);
            return measure(async () => {
              let done = 0;
              for (const batch of rawBatches) {
                await routewatch.store.insertJsonEachRow('spans', batch, SPAN_INSERT);
                bar.update(++done);
              }
              bar.clear();
            });
          },
          protobuf: () =>
            profiled(values['profile-main'] !== undefined, () =>
              measure(
                () =>
                  send(
                    routewatch.tracesUrl,
                    protobufOn,
                    'protobuf',
                    progress(label('protobuf requests'), protobufOn.length),
                  ),
                routewatch.writer,
                drained,
              ),
            ),
          'protobuf, WAL off': () =>
            measure(
              () =>
                send(
                  walOffUrl,
                  protobufOff,
                  'protobuf',
                  progress(label('protobuf, WAL off, requests'), protobufOff.length),
                ),
              walOffWriter,
            ),
          json: () =>
            measure(
              () =>
                send(
                  routewatch.tracesUrl,
                  json,
                  'json',
                  progress(label('json requests'), json.length),
                ),
              routewatch.writer,
              drained,
            ),
        };
        // Each phase after the engine's merges of the one before. The order rotates by round, and
        // WAL on and off swap places every round, so load drifting over the run touches all alike.
        const pair: Variant[] =
          round % 2 === 1 ? ['protobuf', 'protobuf, WAL off'] : ['protobuf, WAL off', 'protobuf'];
        const groups: Variant[][] = [['raw'], pair, ['json']];
        const order = groups.map((_, i) => groups[(i + round - 1) % groups.length]!).flat();
        for (const variant of order) {
          await settle(routewatch.store);
          results[variant].push(await runs[variant]());
        }
        console.log(
          `${mix} round ${round}/${ROUNDS} (${order.join(' → ')}): ` +
            VARIANTS.map(
              (name) => `${name} ${int(rate(rowsPerRound, results[name].at(-1)!.wallMs))} rows/s`,
            ).join(' · '),
        );
      }
      const rawRate = median(results.raw.map((m) => rate(rowsPerRound, m.wallMs)));
      for (const name of VARIANTS) {
        const list = results[name];
        const rowRate = median(list.map((m) => rate(rowsPerRound, m.wallMs)));
        const spanRate =
          name === 'raw' ? undefined : median(list.map((m) => rate(SPANS, m.wallMs)));
        const ackRate = name === 'raw' ? undefined : median(list.map((m) => rate(SPANS, m.ackMs)));
        const cpuPerKRows = median(list.map((m) => m.cpuMs / (rowsPerRound / 1000)));
        const rowsPerInsert =
          name === 'raw' ? RAW_BATCH_ROWS : median(list.map((m) => rowsPerRound / m.inserts));
        const requests = Math.ceil(SPANS / SPANS_PER_REQUEST);
        const perFsync = list.some((m) => m.appends > 0)
          ? median(list.map((m) => requests / m.appends)).toFixed(1)
          : '—';
        const split = (group: keyof ThreadCpu) =>
          median(list.map((m) => m.threads[group] / (rowsPerRound / 1000))).toFixed(0);
        table.push(
          `${`${mix} / ${name}`.padEnd(26)} ${int(rowRate).padStart(10)} ${(spanRate === undefined ? '—' : int(spanRate)).padStart(12)} ` +
            `${(rowRate / rawRate).toFixed(2).padStart(7)} ${(ackRate === undefined ? '—' : int(ackRate)).padStart(12)} ${cpuPerKRows.toFixed(1).padStart(12)}` +
            ` ${`${split('main')} / ${split('ingest')} / ${split('node')} / ${split('engine')}`.padStart(21)}` +
            ` ${int(rowsPerInsert).padStart(11)} ${perFsync.padStart(14)}`,
        );
      }
      const onRate = median(results.protobuf.map((m) => rate(SPANS, m.wallMs)));
      const offRate = median(results['protobuf, WAL off'].map((m) => rate(SPANS, m.wallMs)));
      table.push(
        `  ${mix}: protobuf end to end, WAL on ÷ WAL off: ${(onRate / offRate).toFixed(2)}`,
      );

      // Acknowledgement latency at half the maximum rate: half the median stored protobuf rate of
      // each variant (past its stored rate, the log or the queue only grows).
      for (const [name, fixedUrl, maxSpanRate] of [
        ['WAL on', routewatch.tracesUrl, onRate],
        ['WAL on, store down (the log only fills)', undefined, onRate],
        ['WAL off', walOffUrl, offRate],
      ] as const) {
        const storeDown = fixedUrl === undefined ? await startStoreDown() : undefined;
        const url = fixedUrl ?? storeDown!.url;
        if (storeDown) {
          // Warmed as the other two apps were by the rate phases: a cold ingest thread's first
          // requests (code not yet optimized) would otherwise be the phase's slowest.
          for (const spans of makeRequests(mix, STORE_DOWN_WARM_REQUESTS * SPANS_PER_REQUEST))
            await post(url, encode(spans, 'protobuf'), 'protobuf');
        }
        const spanRate = LATENCY_RATES.get(mix) ?? maxSpanRate / 2;
        const intervalMs = (SPANS_PER_REQUEST / spanRate) * 1000;
        const count = Math.max(50, Math.round((LATENCY_S * 1000) / intervalMs));
        const latencyBodies = makeRequests(mix, count * SPANS_PER_REQUEST).map((s) =>
          encode(s, 'protobuf'),
        );
        await settle(routewatch.store);
        const metricsUrl = url.replace(/\/v1\/traces$/, '/metrics');
        const stagesBefore = await scrapeStages(metricsUrl);
        const { latencies, late } = await heapProfiled(
          values['heap-profile-main'] !== undefined && name === 'WAL on',
          count,
          () =>
            values.sender === 'process'
              ? pacedFromChild(url, latencyBodies, intervalMs)
              : paced(
                  url,
                  latencyBodies,
                  intervalMs,
                  progress(`${mix} ack latency, ${name}, requests`, count),
                ),
        );
        const stagesAfter = await scrapeStages(metricsUrl);
        if (storeDown) await storeDown.close();
        else await drained();
        latencies.sort((a, b) => a - b);
        const line =
          `${mix}, ${name}: ${count} protobuf requests of ${SPANS_PER_REQUEST} spans at ${int(spanRate)} spans/s${LATENCY_RATES.has(mix) ? ' (fixed by --latency-rate)' : ''}, sender ${values.sender === 'process' ? 'in a child process' : 'in this process'} ` +
          `(one every ${intervalMs.toFixed(0)} ms${late > 0 ? `, ${late} sent late` : ''}): ` +
          `ack latency p50 ${quantile(latencies, 0.5).toFixed(1)} ms · p90 ${quantile(latencies, 0.9).toFixed(1)} ms · ` +
          `p99 ${quantile(latencies, 0.99).toFixed(1)} ms · max ${latencies.at(-1)!.toFixed(1)} ms`;
        console.log(line);
        latencyLines.push(line);
        const stageLine = `    server side, by stage (p50 / p90 / p99 ms, from /metrics): ${stageSummary(stagesBefore, stagesAfter)}`;
        console.log(stageLine);
        latencyLines.push(stageLine);
      }
    }
    console.log(
      '\nmix / variant                   rows/s      spans/s   × raw acked spans/s CPU ms/1k rows  main/ingest/node/engine  rows/insert requests/fsync',
    );
    for (const line of table) console.log(line);
    console.log(
      '(medians over rounds; rows/s and spans/s timed until every span is stored, acked until the last answer;\n' +
        ' CPU by thread, ms per 1k rows: main thread / ingest threads / other unnamed threads (libuv pool running chDB calls, GC helpers) / threads the engine names)',
    );
    console.log('\nacknowledgement latency at half the maximum (stored) rate:');
    for (const line of latencyLines) console.log(`  ${line}`);
    console.log(
      `\n${writerCounters('WAL on', routewatch.writer)}\n${writerCounters('WAL off', walOffWriter)}` +
        `\nrequests refused with 503 and retried: ${refusals} · load average after: ${loadAverage()}`,
    );
  } finally {
    agent.destroy();
    await walOff.close();
    await walOffWriter.close();
    await walOffIngest.close();
    await routewatch.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
