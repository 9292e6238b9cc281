/**
 * Collector ingest throughput into the embedded store, against the engine's own ceiling, in one run:
 *   (1) raw: pre-normalized rows inserted straight into `spans` in 10 000-row batches — what the
 *       embedded ClickHouse can take, no HTTP, no decoding;
 *   (2) OTLP/HTTP JSON and (3) OTLP/HTTP protobuf: pre-encoded export requests of 500 spans POSTed
 *       to `routewatch start` on 127.0.0.1, 16 in flight, each acknowledged once in the
 *       write-ahead log (the default); timed until every span is stored (the log drained);
 *   (4) OTLP/HTTP protobuf with ROUTEWATCH_WAL=off: the same app on the same store, each request
 *       acknowledged only once stored.
 * The sender runs in this process too, so its CPU shares the two cores with the collector.
 * Usage: npm run bench:collector -- [--spans 60000] [--rounds 3]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { progressReporter } from '../../cli/progress.js';
import type { Progress } from '../../cli/progress.js';
import { buildApp } from '../../server/app.js';
import { configWith } from '../../server/config.js';
import { ingestRunnerFor, openSpanWriter, startRoutewatch } from '../../server/start.js';
import { normalizeRequest } from '../../collector/normalize.js';
import { decodeTraceRequestProto } from '../../collector/otlp-proto.js';
import { PriceTable } from '../../collector/pricing.js';
import { describeMachine, loadAverage } from '../instrumentation/machine.js';
import { median } from '../instrumentation/stats.js';

const { values } = parseArgs({
  options: {
    spans: { type: 'string', default: '60000' },
    rounds: { type: 'string', default: '3' },
  },
});
const SPANS = Number(values.spans);
const ROUNDS = Number(values.rounds);
const PER_REQUEST = 500;
const IN_FLIGHT = 16;

let sequence = 0;
/** A realistic LLM span: routing attributes, GenAI attributes, tokens; unique ids. */
function syntheticSpan(startNs: bigint): ReadableSpan {
  const n = ++sequence;
  const hex = (value: number, bytes: number) => value.toString(16).padStart(bytes * 2, '0');
  const cohort = ['faq', 'extraction', 'policy', 'agentic'][n % 4]!;
  const toHr = (ns: bigint): [number, number] => [
    Number(ns / 1_000_000_000n),
    Number(ns % 1_000_000_000n),
  ];
  return {
    name: 'chat gpt-4o-mini',
    kind: 2,
    spanContext: () => ({ traceId: hex(n, 16), spanId: hex(n, 8), traceFlags: 1 }),
    parentSpanContext: undefined,
    startTime: toHr(startNs),
    endTime: toHr(startNs + 250_000_000n),
    duration: [0, 250_000_000],
    status: { code: 0 },
    attributes: {
      'routewatch.task.id': `task-${Math.floor(n / 3)}`,
      'routewatch.cohort': cohort,
      'routewatch.route': n % 5 === 0 ? 'large' : 'small',
      'routewatch.attempt': n % 5 === 0 ? 2 : 1,
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
      'gen_ai.response.id': `chatcmpl-${n}`,
      'gen_ai.response.finish_reasons': ['stop'],
      'gen_ai.usage.input_tokens': 800 + (n % 400),
      'gen_ai.usage.output_tokens': 120 + (n % 80),
      'server.address': 'api.openai.com',
      'server.port': 443,
    },
    links: [],
    events: [],
    ended: true,
    resource: {
      attributes: { 'service.name': 'bench' },
      merge: () => null,
      asyncAttributesPending: false,
      getRawAttributes: () => [['service.name', 'bench']],
    },
    instrumentationScope: { name: '@routewatch/instrumentation', version: '0.1.0' },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  } as unknown as ReadableSpan;
}

function makeRequests(count: number): ReadableSpan[][] {
  const start = BigInt(Date.now()) * 1_000_000n;
  const requests: ReadableSpan[][] = [];
  for (let i = 0; i < count; i += PER_REQUEST) {
    requests.push(
      Array.from({ length: Math.min(PER_REQUEST, count - i) }, (_, j) =>
        syntheticSpan(start + BigInt(i + j)),
      ),
    );
  }
  return requests;
}

/** OTLP/JSON as the OpenTelemetry JS exporter encodes it (hex ids, int64 as strings). */
function toJson(spans: ReadableSpan[]): Uint8Array {
  const decoded = decodeTraceRequestProto(ProtobufTraceSerializer.serializeRequest(spans)!);
  const value = (kv: { value: { kind: string; value?: unknown } }) => {
    const v = kv.value;
    if (v.kind === 'string') return { stringValue: v.value };
    if (v.kind === 'int') return { intValue: v.value };
    if (v.kind === 'double') return { doubleValue: v.value };
    if (v.kind === 'bool') return { boolValue: v.value };
    return {
      arrayValue: {
        values: (v.value as { value: unknown }[]).map((x) => ({ stringValue: x.value })),
      },
    };
  };
  return Buffer.from(
    JSON.stringify({
      resourceSpans: decoded.resourceSpans.map((rs) => ({
        resource: {
          attributes: (rs.resource?.attributes ?? []).map((kv) => ({
            key: kv.key,
            value: value(kv),
          })),
        },
        scopeSpans: rs.scopeSpans.map((ss) => ({
          scope: ss.scope,
          spans: ss.spans.map((s) => ({
            ...s,
            attributes: s.attributes.map((kv) => ({ key: kv.key, value: value(kv) })),
          })),
        })),
      })),
    }),
  );
}

async function send(
  url: string,
  bodies: Uint8Array[],
  contentType: string,
  progress?: Progress,
): Promise<void> {
  let next = 0;
  let answered = 0;
  const worker = async () => {
    while (next < bodies.length) {
      const body = bodies[next++]!;
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': contentType },
        body,
      });
      if (res.status !== 200)
        throw new Error(`collector answered ${res.status}: ${await res.text()}`);
      await res.arrayBuffer();
      progress?.update(++answered);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  progress?.clear();
}

interface Measure {
  /** Until every span is stored. */
  wallMs: number;
  /** Until every request was answered (the same as wallMs when answers wait for the store). */
  ackMs: number;
  cpuMs: number;
}

/** Times `send`, then `stored` (waiting for what was acknowledged to be stored). */
async function measure(
  send: () => Promise<void>,
  stored: () => Promise<void> = async () => undefined,
): Promise<Measure> {
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await send();
  const ackMs = performance.now() - t0;
  await stored();
  const used = process.cpuUsage(cpu);
  return { wallMs: performance.now() - t0, ackMs, cpuMs: (used.user + used.system) / 1000 };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'routewatch-bench-collector-'));
  const routewatch = await startRoutewatch(
    configWith({ ROUTEWATCH_PORT: '0', ROUTEWATCH_DATA_DIR: dir }),
  );
  // The same app without the write-ahead log, on the same store (one chDB per process).
  const walOffConfig = configWith({ ROUTEWATCH_PORT: '0', ROUTEWATCH_WAL: 'off' });
  const walOffWriter = await openSpanWriter(routewatch.store, walOffConfig);
  const walOffIngest = ingestRunnerFor(walOffConfig);
  const walOff = await buildApp({
    config: walOffConfig,
    store: routewatch.store,
    writer: walOffWriter,
    ingest: walOffIngest,
  });
  await walOff.listen({ host: '127.0.0.1', port: 0 });
  const walOffAddress = walOff.server.address();
  const walOffUrl = `http://127.0.0.1:${typeof walOffAddress === 'object' && walOffAddress ? walOffAddress.port : 0}/v1/traces`;
  const prices = new PriceTable();
  const results: Record<string, Measure[]> = {
    raw: [],
    json: [],
    protobuf: [],
    'protobuf, WAL off': [],
  };
  const drained = () => routewatch.writer.flush();
  try {
    console.log('routewatch bench: collector ingest into the embedded store');
    for (const line of describeMachine()) console.log(line);
    console.log(
      `${SPANS} spans per variant and round, ${PER_REQUEST} spans per request, ${IN_FLIGHT} in flight, ${ROUNDS} rounds · load average before: ${loadAverage()}\n`,
    );
    for (let round = 1; round <= ROUNDS; round++) {
      // Fresh spans each time: the collector drops span ids it has already stored.
      const raw = makeRequests(SPANS).map((spans) =>
        ProtobufTraceSerializer.serializeRequest(spans)!,
      );
      const rows = raw.flatMap(
        (body) => normalizeRequest(decodeTraceRequestProto(body), prices).rows,
      );
      const rawBatches: Buffer[] = [];
      for (let i = 0; i < rows.length; i += 10_000) {
        rawBatches.push(
          Buffer.from(
            rows
              .slice(i, i + 10_000)
              .map((r) => JSON.stringify(r))
              .join('\n'),
          ),
        );
      }
      const json = makeRequests(SPANS).map(toJson);
      const protobuf = makeRequests(SPANS).map((spans) =>
        ProtobufTraceSerializer.serializeRequest(spans)!,
      );
      const protobufWalOff = makeRequests(SPANS).map((spans) =>
        ProtobufTraceSerializer.serializeRequest(spans)!,
      );

      results['raw']!.push(
        await measure(async () => {
          for (const batch of rawBatches) await routewatch.store.insertJsonEachRow('spans', batch);
        }),
      );
      // Progress on stderr, so the figures on stdout stay as they are.
      const sending = (variant: string) =>
        progressReporter(process.stderr, `round ${round} ${variant} requests`, json.length);
      results['json']!.push(
        await measure(
          () => send(routewatch.tracesUrl, json, 'application/json', sending('json')),
          drained,
        ),
      );
      // On and off in turn, so that load drifting over the run touches both alike.
      const protobufRuns: Array<[string, () => Promise<Measure>]> = [
        [
          'protobuf',
          () =>
            measure(
              () =>
                send(routewatch.tracesUrl, protobuf, 'application/x-protobuf', sending('protobuf')),
              drained,
            ),
        ],
        [
          'protobuf, WAL off',
          () =>
            measure(() =>
              send(
                walOffUrl,
                protobufWalOff,
                'application/x-protobuf',
                sending('protobuf, WAL off'),
              ),
            ),
        ],
      ];
      if (round % 2 === 0) protobufRuns.reverse();
      for (const [name, run] of protobufRuns) results[name]!.push(await run());
      const line = Object.entries(results)
        .map(
          ([name, list]) =>
            `${name} ${Math.round(SPANS / (list.at(-1)!.wallMs / 1000)).toLocaleString('en')} spans/s`,
        )
        .join(' · ');
      console.log(`round ${round}/${ROUNDS}: ${line}`);
    }
    const rawRate = median(results['raw']!.map((m) => SPANS / (m.wallMs / 1000)));
    console.log(
      '\nvariant                stored spans/s (median)  × raw insert  acknowledged spans/s  process CPU ms per 1k spans',
    );
    for (const [name, list] of Object.entries(results)) {
      const rate = median(list.map((m) => SPANS / (m.wallMs / 1000)));
      const ackRate = median(list.map((m) => SPANS / (m.ackMs / 1000)));
      const cpuPerK = median(list.map((m) => m.cpuMs / (SPANS / 1000)));
      console.log(
        `${name.padEnd(22)} ${Math.round(rate).toLocaleString('en').padStart(23)}  ${(rate / rawRate).toFixed(2).padStart(12)}  ${Math.round(ackRate).toLocaleString('en').padStart(20)}  ${cpuPerK.toFixed(1).padStart(27)}`,
      );
    }
    const walOn = median(results['protobuf']!.map((m) => SPANS / (m.wallMs / 1000)));
    const walOffRate = median(results['protobuf, WAL off']!.map((m) => SPANS / (m.wallMs / 1000)));
    console.log(
      `\nprotobuf end to end, WAL on ÷ WAL off: ${(walOn / walOffRate).toFixed(2)}` +
        `\nspans stored: ${(routewatch.writer.stats.rowsWritten + walOffWriter.stats.rowsWritten).toLocaleString('en')} via HTTP (+ ${(SPANS * ROUNDS).toLocaleString('en')} raw) · load average after: ${loadAverage()}`,
    );
  } finally {
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
