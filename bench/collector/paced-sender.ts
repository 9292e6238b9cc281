/**
 * The open-loop sender of the acknowledgement-latency phase, in a process of its own, as an
 * exporter is: one protobuf request every `intervalMs`, whatever the answers, and the time from
 * sending each to its answer. Run by run.ts (`--sender process`, the default); not on its own.
 *
 * Usage: node paced-sender.js <bodies file> <url> <intervalMs>
 *   The bodies file holds the requests one after another, each a 4-byte little-endian length and
 *   that many bytes. Prints one JSON line: { latencies: number[] (ms, in answer order), late }.
 * Sending from the collector's own process put the sender's work and its garbage collections on
 * the collector's main thread, inside the latencies it measured.
 */
import { readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { postOnce } from './workload.js';

const [file, url, interval] = process.argv.slice(2);
if (!file || !url || !interval) {
  console.error('usage: node paced-sender.js <bodies file> <url> <intervalMs>');
  process.exit(2);
}
const intervalMs = Number(interval);

function readBodies(path: string): Buffer[] {
  const data = readFileSync(path);
  const bodies: Buffer[] = [];
  for (let at = 0; at < data.length;) {
    const length = data.readUInt32LE(at);
    bodies.push(data.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return bodies;
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

async function post(body: Buffer): Promise<void> {
  const res = await postOnce(agent, url!, body, 'protobuf');
  if (res.status !== 200) throw new Error(`collector answered ${res.status}: ${res.text}`);
}

async function main(): Promise<void> {
  const bodies = readBodies(file!);
  const latencies: number[] = [];
  const pending: Promise<void>[] = [];
  let late = 0;
  const t0 = performance.now();
  for (let i = 0; i < bodies.length; i++) {
    const wait = t0 + i * intervalMs - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    else if (wait < -intervalMs) late++;
    const sent = performance.now();
    pending.push(post(bodies[i]!).then(() => void latencies.push(performance.now() - sent)));
  }
  await Promise.all(pending);
  agent.destroy();
  process.stdout.write(`${JSON.stringify({ latencies, late })}\n`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
