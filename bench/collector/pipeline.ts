/**
 * The ingest pipeline alone — decode → check → normalize → price → serialize, exactly what an
 * ingest thread runs (`createIngest`), with the store replaced by a sink — in spans per CPU-second
 * of this process, on both mixes and both encodings, in one run. Also the cost of a skipped span:
 * a request of non-LLM spans only (HTTP, DB, queue), every one decoded and skipped.
 *
 * Each round runs every variant once over the same pre-encoded requests, in rotating order, so
 * load drifting on the shared machine hits all variants alike; figures are medians over rounds.
 *
 * Usage: npm run bench:pipeline -- [--spans 50000] [--rounds 5]
 *        npm run bench:pipeline -- --profile mixed/protobuf   (V8 sampling profile of one variant)
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createIngest } from '../../collector/ingest.js';
import type { IngestResult } from '../../collector/ingest.js';
import { configWith } from '../../server/config.js';
import { ingestSettings } from '../../server/start.js';
import { selfTimeByOwner, selfTimes } from '../instrumentation/cpu-profile.js';
import type { CpuProfile } from '../instrumentation/cpu-profile.js';
import { describeMachine, loadAverage } from '../instrumentation/machine.js';
import { median } from '../instrumentation/stats.js';
import { MIXES, SPANS_PER_REQUEST, encode, makeRequests, skippedOnlySpans } from './workload.js';
import type { Encoding } from './workload.js';
import { benchArgs } from '../cli-args.js';

const USAGE = `Usage: npm run bench:pipeline -- [--spans 50000] [--rounds 5]
       npm run bench:pipeline -- --profile mixed/protobuf   (V8 sampling profile of one variant)`;
const { values } = benchArgs(
  {
    options: {
      spans: { type: 'string', default: '50000' },
      rounds: { type: 'string', default: '5' },
      profile: { type: 'string' },
      'profile-out': { type: 'string' },
    },
  },
  USAGE,
);
const SPANS = Number(values.spans);
const ROUNDS = Number(values.rounds);

interface Variant {
  name: string;
  encoding: Encoding;
  bodies: Uint8Array[];
  spans: number;
}

function variants(): Variant[] {
  const list: Variant[] = [];
  for (const mix of MIXES) {
    for (const encoding of ['protobuf', 'json'] as const) {
      list.push({
        name: `${mix}/${encoding}`,
        encoding,
        bodies: makeRequests(mix, SPANS).map((spans) => encode(spans, encoding)),
        spans: SPANS,
      });
    }
  }
  const skipped: Uint8Array[] = [];
  for (let i = 0; i < SPANS; i += SPANS_PER_REQUEST) {
    skipped.push(encode(skippedOnlySpans(Math.min(SPANS_PER_REQUEST, SPANS - i)), 'protobuf'));
  }
  list.push({ name: 'skipped-only/protobuf', encoding: 'protobuf', bodies: skipped, spans: SPANS });
  return list;
}

const ingest = createIngest(ingestSettings(configWith({})));

/** The sink: what the writer would need (lines and their bytes), kept so nothing is optimized away. */
let sinkBytes = 0;
let sinkRows = 0;
const rowsPerRun = new Map<string, number>();
function runOnce(variant: Variant): void {
  const now = Date.now();
  let rows = 0;
  for (const body of variant.bodies) {
    const result: IngestResult = ingest(body, variant.encoding, now);
    if (result.received !== Math.min(SPANS_PER_REQUEST, variant.spans))
      throw new Error(`${variant.name}: ${result.received} spans received`);
    rows += result.rows;
    for (const record of result.records) sinkBytes += record.byteLength;
  }
  sinkRows += rows;
  rowsPerRun.set(variant.name, rows);
}

function cpuMicros(fn: () => void): number {
  const before = process.cpuUsage();
  fn();
  const used = process.cpuUsage(before);
  return used.user + used.system;
}

async function profile(variant: Variant, out: string | undefined): Promise<void> {
  for (let i = 0; i < 3; i++) runOnce(variant);
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  const micros = cpuMicros(() => {
    for (let i = 0; i < ROUNDS; i++) runOnce(variant);
  });
  const { profile } = (await session.post('Profiler.stop')) as { profile: CpuProfile };
  session.disconnect();
  if (out) writeFileSync(out, JSON.stringify(profile));
  const spans = variant.spans * ROUNDS;
  console.log(`${variant.name}: ${(micros / spans).toFixed(2)} CPU µs/span with the profiler on`);
  console.log('\nself time by owner');
  for (const { owner, share } of selfTimeByOwner(selfTimes(profile)).slice(0, 12)) {
    console.log(`  ${(share * 100).toFixed(1).padStart(5)} %  ${owner}`);
  }
  console.log('\nself time by function');
  for (const time of selfTimes(profile).slice(0, 30)) {
    console.log(
      `  ${(time.share * 100).toFixed(1).padStart(5)} %  ${(time.micros / spans).toFixed(3).padStart(7)} µs/span  ${time.location}`,
    );
  }
}

async function main(): Promise<void> {
  console.log(
    'routewatch bench: the ingest pipeline alone (createIngest, store replaced by a sink)',
  );
  for (const line of describeMachine().slice(0, 2)) console.log(line);
  const all = variants();
  if (values.profile) {
    const variant = all.find((v) => v.name === values.profile);
    if (!variant)
      throw new Error(`no variant ${values.profile}: ${all.map((v) => v.name).join(', ')}`);
    await profile(variant, values['profile-out']);
    return;
  }
  console.log(
    `${SPANS} spans per variant and round, ${SPANS_PER_REQUEST} per request, ${ROUNDS} rounds · load average before: ${loadAverage()}\n`,
  );
  // Warm-up: every variant twice, so each code path is optimized before it is measured.
  for (let i = 0; i < 2; i++) for (const variant of all) runOnce(variant);
  const micros = new Map<string, number[]>(all.map((v) => [v.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = all.map((_, i) => all[(i + round) % all.length]!);
    for (const variant of order) micros.get(variant.name)!.push(cpuMicros(() => runOnce(variant)));
    console.log(
      `round ${round + 1}/${ROUNDS}: ` +
        all
          .map(
            (v) =>
              `${v.name} ${Math.round(v.spans / (micros.get(v.name)!.at(-1)! / 1e6)).toLocaleString('en')}`,
          )
          .join(' · '),
    );
  }
  console.log(
    '\nvariant                    spans per CPU-second (median)   CPU µs/span   rows/span',
  );
  for (const variant of all) {
    const list = micros.get(variant.name)!;
    const perSpan = median(list) / variant.spans;
    console.log(
      `${variant.name.padEnd(26)} ${Math.round(1e6 / perSpan)
        .toLocaleString('en')
        .padStart(
          29,
        )}   ${perSpan.toFixed(2).padStart(11)}   ${((rowsPerRun.get(variant.name) ?? 0) / variant.spans).toFixed(2).padStart(9)}`,
    );
  }
  console.log(
    `\nload average after: ${loadAverage()} · sink: ${sinkRows.toLocaleString('en')} rows, ${(sinkBytes / 2 ** 20).toFixed(0)} MiB`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
