/**
 * A burst of exports sent at once: `--clients` exporters each post one OTLP/JSON request of
 * `--spans` LLM spans at the same moment, `--rounds` times, to `routewatch start` in a child
 * process (embedded store, write-ahead log on, loopback, a port of its own), each with an
 * exporter's 10-s timeout. What it measures is whether every exporter gets an answer in time —
 * stored (200) or refused with Retry-After (503) — rather than none.
 *
 * `--hog` runs a busy process beside it for the whole bench (a machine with a core taken), and
 * `--nice` starts routewatch at that nice value: the conditions under which admission's estimate
 * of the queue, measured on a quiet machine, runs short.
 *
 * `--cli` runs another build's `dist/cli/main.js` (an earlier commit's, for a before and after).
 *
 * Usage: node dist/bench/collector/burst.js [--clients 200] [--spans 2000] [--rounds 2]
 *        [--hog] [--nice 0] [--cli path/to/dist/cli/main.js]
 * Prints one line per round: answered 200 / 503 / other, exporters timed out, 200s' and 503s'
 * latency (p50, p95, max), stored spans per second; then the server's refusal counters.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeMachine, loadAverage } from '../instrumentation/machine.js';
import { benchArgs } from '../cli-args.js';

const USAGE = `Usage: node dist/bench/collector/burst.js [--clients 200] [--spans 2000] [--rounds 2]
       [--hog] [--nice 0] [--cli path/to/dist/cli/main.js]`;
const { values } = benchArgs(
  {
    options: {
      clients: { type: 'string', default: '200' },
      spans: { type: 'string', default: '2000' },
      rounds: { type: 'string', default: '2' },
      hog: { type: 'boolean', default: false },
      nice: { type: 'string', default: '0' },
      cli: { type: 'string' },
    },
  },
  USAGE,
);
const CLIENTS = Number(values.clients);
const SPANS = Number(values.spans);
const ROUNDS = Number(values.rounds);
const NICE = Number(values.nice);
for (const [name, value, max] of [
  ['--clients', CLIENTS, 1000],
  ['--spans', SPANS, 50_000],
  ['--rounds', ROUNDS, 20],
  ['--nice', NICE + 1, 20],
] as const) {
  if (!Number.isInteger(value) || value < 1 || value > max) {
    console.error(`${name} is out of range\n${USAGE}`);
    process.exit(2);
  }
}
/** An OTLP exporter's default timeout: an answer after it is no answer. */
const EXPORTER_TIMEOUT_MS = 10_000;
const CLI = values.cli ?? fileURLToPath(new URL('../../cli/main.js', import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** One export request: `SPANS` LLM spans of one trace, as an OTLP/JSON body. */
function exportBody(): string {
  const traceId = randomBytes(16).toString('hex');
  const start = BigInt(Date.now() - 60_000) * 1_000_000n;
  const spans = Array.from({ length: SPANS }, (_, i) => ({
    traceId,
    spanId: randomBytes(8).toString('hex'),
    name: 'chat gpt-4o-mini',
    kind: 3,
    startTimeUnixNano: String(start + BigInt(i) * 1_000_000n),
    endTimeUnixNano: String(start + BigInt(i + 900) * 1_000_000n),
    attributes: [
      { key: 'routewatch.cohort', value: { stringValue: 'burst' } },
      { key: 'gen_ai.operation.name', value: { stringValue: 'chat' } },
      { key: 'gen_ai.request.model', value: { stringValue: 'gpt-4o-mini' } },
      { key: 'gen_ai.usage.input_tokens', value: { intValue: '120' } },
      { key: 'gen_ai.usage.output_tokens', value: { intValue: '30' } },
    ],
  }));
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'burst' } }] },
        scopeSpans: [{ scope: { name: 'bench' }, spans }],
      },
    ],
  });
}

async function waitReady(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`routewatch exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('routewatch was not ready within 60 s');
}

const quantiles = (values: number[]) => {
  if (values.length === 0) return '—';
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return `${Math.round(at(0.5))} / ${Math.round(at(0.95))} / ${Math.round(sorted.at(-1)!)} ms`;
};

async function round(url: string, bodies: string[]): Promise<string> {
  const ok: number[] = [];
  const refused: number[] = [];
  let other = 0;
  let timedOut = 0;
  let withoutRetryAfter = 0;
  const started = performance.now();
  await Promise.all(
    bodies.map(async (body) => {
      const sent = performance.now();
      try {
        const res = await fetch(`${url}/v1/traces`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(EXPORTER_TIMEOUT_MS),
        });
        await res.arrayBuffer();
        const ms = performance.now() - sent;
        if (res.status === 200) ok.push(ms);
        else if (res.status === 503) {
          refused.push(ms);
          if (!res.headers.get('retry-after')) withoutRetryAfter++;
        } else other++;
      } catch (error) {
        if ((error as Error).name === 'TimeoutError') timedOut++;
        else other++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return (
    `200: ${ok.length} (${quantiles(ok)}) · 503: ${refused.length} (${quantiles(refused)}` +
    `${withoutRetryAfter ? `, ${withoutRetryAfter} without Retry-After` : ''}) · other: ${other} · ` +
    `timed out: ${timedOut} · stored ${Math.round((ok.length * SPANS) / seconds).toLocaleString('en')} spans/s`
  );
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'routewatch-bench-burst-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const hog = values.hog
    ? spawn(
        process.execPath,
        ['-e', 'const end = Date.now() + 600_000; while (Date.now() < end);'],
        {
          stdio: 'ignore',
        },
      )
    : undefined;
  const args = [CLI, 'start'];
  const child =
    NICE > 0
      ? spawn('nice', ['-n', String(NICE), process.execPath, ...args], { env: envFor(dir, port) })
      : spawn(process.execPath, args, { env: envFor(dir, port) });
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)));
  child.stdout?.on('data', () => undefined);
  try {
    for (const line of describeMachine().slice(0, 2)) console.log(line);
    await waitReady(url, child);
    console.log(
      `${CLI}\n${CLIENTS} exporters at once × ${SPANS.toLocaleString('en')} spans (OTLP/JSON), ${ROUNDS} round(s), ` +
        `${EXPORTER_TIMEOUT_MS / 1000}-s timeout; routewatch at nice ${NICE}${hog ? ', a busy process beside it' : ''} ` +
        `(load ${loadAverage()})`,
    );
    const bodies = Array.from({ length: CLIENTS }, exportBody);
    for (let r = 1; r <= ROUNDS; r++) console.log(`round ${r}: ${await round(url, bodies)}`);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const counter = (name: string) => new RegExp(`^${name} (\\d+)$`, 'm').exec(metrics)?.[1] ?? '?';
    console.log(
      `server: refused before the body ${counter('routewatch_requests_refused_total')}, ` +
        `refused after waiting for a thread ${counter('routewatch_ingest_shed_requests_total')} ` +
        `(load ${loadAverage()})`,
    );
  } catch (error) {
    console.error(log);
    throw error;
  } finally {
    hog?.kill('SIGKILL');
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

function envFor(dir: string, port: number): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ROUTEWATCH_PORT: String(port),
    ROUTEWATCH_HOST: '127.0.0.1',
    ROUTEWATCH_DATA_DIR: dir,
    ROUTEWATCH_EVALUATE_EVERY: '0',
  };
}

await main();
