import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { registerRoutewatch } from '@routewatch/instrumentation';
import { DEFAULT_GATE, runGate } from '../../analyzer/gate.js';
import type { GateOptions, Verdict } from '../../analyzer/gate.js';
import { startMockLlm } from '../../examples/mock-llm.js';
import { configWith } from '../../server/config.js';
import { startRoutewatch } from '../../server/start.js';
import { CANDIDATES, COHORT, openAiModel, profilesOf, runSide } from './extraction-eval.js';
import type { Candidate, Side } from './extraction-eval.js';

/**
 * The gate on the real path: `runEval` calling the simulated LLM over HTTP with the OpenAI SDK,
 * its task spans exported by the real OpenTelemetry SDK (registerRoutewatch, OTLP/HTTP) to a
 * real collector (startRoutewatch, the embedded ClickHouse in a temporary directory), then
 * `runGate` reading both eval runs back from the store. What the bench's fast path computes
 * in-process must come out of this path verdict for verdict.
 */

export interface SideCounts {
  known: number;
  successes: number;
}

export interface EndToEndComparison {
  seed: number;
  candidate: Candidate['name'];
  /** What runEval returned for each side (its own count, before any span was exported). */
  evalCounts: { baseline: SideCounts; candidate: SideCounts };
  /** What the gate read back from the store. */
  storedCounts: { baseline: SideCounts; candidate: SideCounts };
  verdicts: { default: Verdict; strict: Verdict };
}

export const STRICT_CONFIDENCE = 0.95;
export const STRICT_GATE: GateOptions = { ...DEFAULT_GATE, confidence: STRICT_CONFIDENCE };

export async function runEndToEnd(input: {
  seeds: readonly number[];
  size: number;
  concurrency: number;
  /** Called after each eval run with the runs done and the total. */
  onProgress: (done: number, total: number) => void;
}): Promise<EndToEndComparison[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'routewatch-gatebench-'));
  const routewatch = await startRoutewatch(
    configWith({
      ROUTEWATCH_PORT: '0',
      ROUTEWATCH_DATA_DIR: dataDir,
      ROUTEWATCH_BATCH_DELAY: '20ms',
    }),
    { logger: false },
  );
  const sdk = registerRoutewatch({
    serviceName: 'routewatch-gatebench',
    tracesEndpoint: routewatch.tracesUrl,
    exportIntervalMillis: 200,
    // The gate reads task spans; capturing the LLM calls needs the loader hook and adds nothing.
    sdkCapture: false,
  });
  const sides: Side[] = ['baseline', ...CANDIDATES.map((c) => c.name)];
  const total = input.seeds.length * sides.length;
  const out: EndToEndComparison[] = [];
  try {
    let done = 0;
    for (const seed of input.seeds) {
      const llm = await startMockLlm({ seed, latencyScale: 0 });
      try {
        const client = new OpenAI({ baseURL: llm.url, apiKey: 'test', maxRetries: 0 });
        const runName = (side: Side) =>
          `gatebench-${seed}-${input.size}-${side.replaceAll(' ', '-')}`;
        const evalCounts = new Map<Side, SideCounts>();
        for (const side of sides) {
          llm.setProfiles(profilesOf(side));
          const summary = await runSide({
            run: runName(side),
            seed,
            side,
            size: input.size,
            ask: openAiModel(client),
            concurrency: input.concurrency,
            flush: true,
          });
          evalCounts.set(side, { known: summary.cases, successes: summary.passed });
          done += 1;
          input.onProgress(done, total);
        }
        await routewatch.writer.flush();
        for (const candidate of CANDIDATES) {
          const refs = [
            { kind: 'eval', run: runName('baseline') },
            { kind: 'eval', run: runName(candidate.name) },
          ] as const;
          const loose = await runGate(routewatch.store, refs[0], refs[1], DEFAULT_GATE, [COHORT]);
          const strict = await runGate(routewatch.store, refs[0], refs[1], STRICT_GATE, [COHORT]);
          const cohort = loose.cohorts.find((c) => c.cohort === COHORT);
          const strictCohort = strict.cohorts.find((c) => c.cohort === COHORT);
          const read = (side: { known: number; successRate: { value: number | null } }) => ({
            known: side.known,
            successes: Math.round((side.successRate.value ?? 0) * side.known),
          });
          out.push({
            seed,
            candidate: candidate.name,
            evalCounts: {
              baseline: evalCounts.get('baseline')!,
              candidate: evalCounts.get(candidate.name)!,
            },
            storedCounts: {
              baseline: cohort ? read(cohort.baseline) : { known: 0, successes: 0 },
              candidate: cohort ? read(cohort.candidate) : { known: 0, successes: 0 },
            },
            verdicts: {
              default: cohort?.verdict ?? 'insufficient_data',
              strict: strictCohort?.verdict ?? 'insufficient_data',
            },
          });
        }
      } finally {
        await llm.close();
      }
    }
  } finally {
    await sdk.shutdown();
    await routewatch.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
  return out;
}
