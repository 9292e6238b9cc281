/**
 * The acknowledgement latency with the embedded engine's threads lowered and not, paired in one
 * process: one collector (`startRoutewatch`, embedded store, write-ahead log on), and phases at a
 * fixed pace that alternate the engine's threads between `--nice` and `--against` (0 unless
 * given). The same process, data directory, store size and warm code serve both arms, so a pair
 * differs only by the priority; runs of `run.js --engine-nice` in separate processes differ by
 * much more on a shared machine.
 *
 * Putting a nice value back to 0 needs privilege (root, or CAP_SYS_NICE): without it the bench
 * says so and stops. The collector's own scanner (storage/engine-priority.ts) only raises them;
 * here the bench sets them itself before each phase, and keeps setting new engine threads every
 * 50 ms during it.
 *
 * Usage: node dist/bench/collector/engine-nice.js [--mix mixed|llm] [--rate 25000] [--pairs 4]
 *        [--seconds 15] [--nice 10] [--against 0]
 * Prints one line per phase (client-side p50/p90/p99/max from a sender in a child process) and,
 * per arm, the median of the phases' p99s and how many pairs the lowered arm won.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { getPriority, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { configWith } from '../../server/config.js';
import { startRoutewatch } from '../../server/start.js';
import { nodeThreadNames, systemErrorCode } from '../../storage/engine-priority.js';
import { describeMachine, loadAverage } from '../instrumentation/machine.js';
import { median } from '../instrumentation/stats.js';
import { MIXES, SPANS_PER_REQUEST, encode, makeRequests, pacedFromChild } from './workload.js';
import type { Mix } from './workload.js';
import { benchArgs } from '../cli-args.js';

const USAGE = `Usage: node dist/bench/collector/engine-nice.js [--mix mixed|llm] [--rate 25000] [--pairs 4]
       [--seconds 15] [--nice 10] [--against 0]`;
const { values } = benchArgs(
  {
    options: {
      mix: { type: 'string', default: 'mixed' },
      rate: { type: 'string', default: '25000' },
      pairs: { type: 'string', default: '4' },
      seconds: { type: 'string', default: '15' },
      nice: { type: 'string', default: '10' },
      against: { type: 'string', default: '0' },
    },
  },
  USAGE,
);
const MIX = values.mix as Mix;
if (!MIXES.includes(MIX)) throw new Error(`--mix must be one of ${MIXES.join(', ')}`);
const RATE = Number(values.rate);
const PAIRS = Number(values.pairs);
const SECONDS = Number(values.seconds);
const NICE = Number(values.nice);
const AGAINST = Number(values.against);
/** A bad value: the message and the usage on stderr, exit code 2, as `benchArgs` does. */
function usageError(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}
for (const [name, value] of [
  ['--nice', NICE],
  ['--against', AGAINST],
] as const) {
  if (!Number.isInteger(value) || value < 0 || value > 19) usageError(`${name} must be 0–19`);
}
if (AGAINST >= NICE)
  usageError('--against must be lower than --nice: it is the arm left at the higher priority');

/** Threads of this process not carrying one of Node's names: the engine's. */
function engineThreads(nodeNames: ReadonlySet<string>): number[] {
  return readdirSync('/proc/self/task').flatMap((tid) => {
    try {
      const name = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trimEnd();
      return nodeNames.has(name) ? [] : [Number(tid)];
    } catch {
      return []; // the thread ended
    }
  });
}

function setEngine(nodeNames: ReadonlySet<string>, nice: number): void {
  for (const tid of engineThreads(nodeNames)) {
    try {
      if (getPriority(tid) !== nice) setPriority(tid, nice);
    } catch (error) {
      const code = systemErrorCode(error);
      if (code === 'ESRCH') continue;
      if (code === 'EACCES' || code === 'EPERM') {
        throw new Error(
          'putting the engine threads back to a lower nice value needs privilege: run this bench as root (or with CAP_SYS_NICE)',
          { cause: error },
        );
      }
      throw error;
    }
  }
}

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

async function main(): Promise<void> {
  if (process.platform !== 'linux') throw new Error('this bench reads /proc: Linux only');
  const dir = mkdtempSync(join(tmpdir(), 'routewatch-bench-engine-nice-'));
  const nodeNames = nodeThreadNames();
  // The collector's own scanner off: the bench sets the engine's threads itself.
  const running = await startRoutewatch(
    configWith({ ROUTEWATCH_PORT: '0', ROUTEWATCH_DATA_DIR: dir, ROUTEWATCH_ENGINE_NICE: '0' }),
    { logger: false },
  );
  let current = AGAINST;
  const keep = setInterval(() => {
    try {
      setEngine(nodeNames, current);
    } catch {
      // Reported by the call before each phase.
    }
  }, 50);
  const intervalMs = (SPANS_PER_REQUEST / RATE) * 1000;
  const count = Math.round((SECONDS * 1000) / intervalMs);
  const phase = async () => {
    const bodies = makeRequests(MIX, count * SPANS_PER_REQUEST).map((s) => encode(s, 'protobuf'));
    const { latencies, late } = await pacedFromChild(running.tracesUrl, bodies, intervalMs);
    return { sorted: latencies.sort((a, b) => a - b), late };
  };
  try {
    for (const line of describeMachine().slice(0, 2)) console.log(line);
    console.log(
      `${MIX}, ${RATE.toLocaleString('en')} spans/s, ${count} requests of ${SPANS_PER_REQUEST} spans per phase, ` +
        `${PAIRS} pairs, engine threads at nice ${NICE} or ${AGAINST} (load ${loadAverage()})`,
    );
    setEngine(nodeNames, AGAINST);
    await phase(); // warms the code and the store
    const p99: Record<'lowered' | 'not', number[]> = { lowered: [], not: [] };
    let won = 0;
    for (let pair = 0; pair < PAIRS; pair++) {
      // The arm that goes first alternates, so neither always follows the other.
      const order = pair % 2 === 0 ? [NICE, AGAINST] : [AGAINST, NICE];
      const inPair: Record<number, number> = {};
      for (const nice of order) {
        current = nice;
        setEngine(nodeNames, nice);
        await new Promise((resolve) => setTimeout(resolve, 3000)); // the last phase's drain
        const { sorted, late } = await phase();
        const q = (x: number) => quantile(sorted, x).toFixed(1);
        console.log(
          `  pair ${pair + 1}, engine at nice ${String(nice).padStart(2)}: ack p50 ${q(0.5)} · p90 ${q(0.9)} · ` +
            `p99 ${q(0.99)} · max ${sorted.at(-1)!.toFixed(1)} ms${late > 0 ? ` (${late} sent late)` : ''}`,
        );
        inPair[nice] = quantile(sorted, 0.99);
        p99[nice === AGAINST ? 'not' : 'lowered'].push(quantile(sorted, 0.99));
      }
      if (inPair[NICE]! < inPair[AGAINST]!) won++;
    }
    console.log(
      `median p99: engine at nice ${NICE} ${median(p99.lowered).toFixed(1)} ms, at ${AGAINST} ${median(p99.not).toFixed(1)} ms; ` +
        `lower p99 at nice ${NICE} in ${won} of ${PAIRS} pairs (load ${loadAverage()})`,
    );
  } finally {
    clearInterval(keep);
    await running.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
