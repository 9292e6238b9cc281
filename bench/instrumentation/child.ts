/**
 * One variant's process. It prepares the variant, warms it up, flushes, says `ready`, then measures
 * chunks on request: the CPU of `calls` sequential calls plus a forceFlush (so the export's
 * serialization and HTTP send are counted), reported over IPC. The parent interleaves chunks of all
 * variants, so load that drifts over time (other jobs on the machine) hits them alike.
 *
 * A chunk request may name a `profileFile`: the V8 sampling profiler (the one behind
 * `node --cpu-prof`) then records that chunk only, not start-up and warm-up.
 */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  isVariantName,
  prepareVariant,
  type PreparedVariant,
  type VariantName,
} from './variants.js';

export type ToChild = { type: 'chunk'; calls: number; profileFile?: string } | { type: 'exit' };

export type FromChild =
  | { type: 'ready'; variant: VariantName; spansPerCall: number; spansPerLoop: number }
  | { type: 'chunk'; calls: number; cpuMicrosPerCall: number; wallMicrosPerCall: number };

/**
 * The canned fetch settles through microtasks alone, so a bare loop of calls would never let the
 * event loop reach I/O: the batch exporter could not send, its queue would overflow and spans be
 * dropped (less work measured). A real call waits on the network; one `setImmediate` per call
 * stands in for that turn of the event loop. It costs every variant the same.
 */
async function callThenYield(variant: PreparedVariant): Promise<unknown> {
  const response = await variant.call();
  await new Promise<void>((resolve) => setImmediate(resolve));
  return response;
}

async function measureChunk(
  variant: PreparedVariant,
  calls: number,
  profileFile: string | undefined,
): Promise<FromChild> {
  const profiler = profileFile === undefined ? undefined : new Session();
  if (profiler !== undefined) {
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.setSamplingInterval', { interval: 100 });
    await profiler.post('Profiler.start');
  }
  const wallStart = performance.now();
  const cpuStart = process.cpuUsage();
  await variant.around(async () => {
    for (let i = 0; i < calls; i += 1) await callThenYield(variant);
  });
  await variant.flush();
  const cpu = process.cpuUsage(cpuStart);
  const wall = performance.now() - wallStart;
  if (profiler !== undefined && profileFile !== undefined) {
    const { profile } = await profiler.post('Profiler.stop');
    await writeFile(profileFile, JSON.stringify(profile));
    profiler.disconnect();
  }
  return {
    type: 'chunk',
    calls,
    cpuMicrosPerCall: (cpu.user + cpu.system) / calls,
    wallMicrosPerCall: (wall * 1000) / calls,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      variant: { type: 'string' },
      endpoint: { type: 'string' },
      warmup: { type: 'string' },
    },
    strict: true,
  });
  const variantName = values.variant ?? '';
  if (!isVariantName(variantName)) throw new Error(`unknown --variant ${variantName}`);
  const endpoint = values.endpoint;
  if (endpoint === undefined || !endpoint.startsWith('http://127.0.0.1:')) {
    throw new Error('--endpoint must be an http://127.0.0.1:<port>/… URL');
  }
  const warmup = Number(values.warmup);
  if (!Number.isInteger(warmup) || warmup <= 0) {
    throw new Error(`--warmup must be a positive integer, got ${JSON.stringify(values.warmup)}`);
  }

  const variant = await prepareVariant(variantName, endpoint);
  await variant.around(async () => {
    const first = (await callThenYield(variant)) as {
      choices?: { message?: { content?: unknown } }[];
    };
    if (first.choices?.[0]?.message?.content !== 'Paris.') {
      throw new Error(`${variantName}: the call did not return the canned completion`);
    }
    for (let i = 1; i < warmup; i += 1) await callThenYield(variant);
  });
  await variant.flush();

  const send = (message: FromChild) => process.send?.(message);
  // One request at a time: the parent waits for each chunk's answer before sending the next.
  let queue = Promise.resolve();
  process.on('message', (message: ToChild) => {
    queue = queue.then(async () => {
      if (message.type === 'exit') process.exit(0);
      send(await measureChunk(variant, message.calls, message.profileFile));
    });
  });
  process.on('disconnect', () => process.exit(0));
  send({
    type: 'ready',
    variant: variantName,
    spansPerCall: variant.spansPerCall,
    spansPerLoop: variant.spansPerLoop,
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
