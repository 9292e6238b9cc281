/**
 * Where a variant's CPU goes: runs it once under the V8 sampling profiler (the one behind
 * `node --cpu-prof`, here started around the measured loop only) and prints self time per package
 * and the top functions, overall and in our code, in µs per call.
 *
 *   npx tsc -b && node dist/bench/instrumentation/profile.js [--variant routewatch] [--calls 5000]
 *
 * The `.cpuprofile` is kept (path printed) for Chrome DevTools or speedscope.
 */
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selfTimeByOwner, selfTimes, type CpuProfile } from './cpu-profile.js';
import { describeMachine } from './machine.js';
import { startReceiver, startVariant } from './processes.js';
import { formatTable } from './stats.js';
import { isVariantName } from './variants.js';
import { benchArgs } from '../cli-args.js';

async function main(): Promise<void> {
  const USAGE = `Usage: node dist/bench/instrumentation/profile.js [--variant routewatch] [--calls 5000] [--warmup 3000] [--top 25]`;
  const { values } = benchArgs(
    {
      options: {
        variant: { type: 'string', default: 'routewatch' },
        calls: { type: 'string', default: '5000' },
        warmup: { type: 'string', default: '3000' },
        top: { type: 'string', default: '25' },
      },
      strict: true,
    },
    USAGE,
  );
  const variant = values.variant;
  if (!isVariantName(variant)) throw new Error(`unknown --variant ${variant}`);
  const calls = Number(values.calls);
  const warmup = Number(values.warmup);
  const top = Number(values.top);
  for (const [name, value] of [
    ['calls', calls],
    ['warmup', warmup],
    ['top', top],
  ] as const) {
    if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} must be > 0`);
  }

  for (const line of describeMachine()) console.log(line);
  const profileFile = join(tmpdir(), `routewatch-bench-${variant}-${process.pid}.cpuprofile`);
  const receiver = await startReceiver();
  let cpuMicrosPerCall: number;
  try {
    const variantProcess = await startVariant(
      variant,
      `http://127.0.0.1:${receiver.port}/v1/traces?run=profile`,
      warmup,
    );
    const result = await variantProcess.measure(calls, profileFile);
    await variantProcess.exit();
    cpuMicrosPerCall = result.cpuMicrosPerCall;
    const received = await receiver.counts('profile');
    console.log(
      `${variant}: ${calls} calls profiled after ${warmup} warm-up calls · ` +
        `${cpuMicrosPerCall.toFixed(1)} CPU µs/call with the profiler on · ` +
        `${received.spans} spans exported · profile: ${profileFile}\n`,
    );
  } finally {
    receiver.stop();
  }

  const profile = JSON.parse(await readFile(profileFile, 'utf8')) as CpuProfile;
  const times = selfTimes(profile);
  const totalMicros = times.reduce((sum, time) => sum + time.micros, 0);
  const perCall = (micros: number) => (micros / calls).toFixed(2);
  const percent = (share: number) => `${(share * 100).toFixed(1)}%`;

  console.log('Self time by package (main thread, idle excluded)');
  console.log(
    formatTable(
      ['package', 'share', 'µs/call'],
      selfTimeByOwner(times).map(({ owner, share }) => [
        owner,
        percent(share),
        perCall(share * totalMicros),
      ]),
    ),
  );
  const rows = (list: typeof times) =>
    list
      .slice(0, top)
      .map((time) => [time.location, time.owner, percent(time.share), perCall(time.micros)]);
  console.log(`\nTop ${top} functions by self time`);
  console.log(formatTable(['function', 'package', 'share', 'µs/call'], rows(times)));
  const ours = times.filter((time) => time.owner === '@routewatch/instrumentation');
  console.log(`\nTop functions in @routewatch/instrumentation by self time`);
  console.log(formatTable(['function', 'package', 'share', 'µs/call'], rows(ours)));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
