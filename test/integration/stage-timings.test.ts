import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EXPORT_STAGES, readStageHistograms } from '../../collector/latency-histogram.js';
import type { Store } from '../../storage/store.js';
import { testApp } from '../support/app.js';
import type { ConfigOverrides, TestApp } from '../support/app.js';
import { LLM_ATTRIBUTES, hexId, otlpBody } from '../support/otlp.js';

// /metrics says where an export request's time goes (routewatch_export_stage_seconds): each stage
// is observed once per request, by the part of the collector that spends it. A store that takes
// INSERT_MS per insert shows in the `write` stage without the log, and only there.

const INSERT_MS = 160;
const apps: TestApp[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const rw of apps.splice(0)) await rw.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A store that takes every insert, each after INSERT_MS (and after `held`, if given). */
function slowStore(held?: Promise<void>): Store & { insertedBodies: number } {
  const store = {
    driver: 'embedded' as const,
    location: 'memory',
    insertedBodies: 0,
    exec: async () => undefined,
    query: async () => [],
    queryReadOnly: async () => {
      throw new Error('no reads in this test');
    },
    ping: async () => undefined,
    close: async () => undefined,
    insertJsonEachRow: async () => {
      await held;
      await new Promise((resolve) => setTimeout(resolve, INSERT_MS));
      store.insertedBodies++;
    },
  };
  return store;
}

const llm = LLM_ATTRIBUTES;

async function exportAndScrape(store: Store, config: ConfigOverrides, requests: number) {
  const rw = await testApp(store, { config });
  apps.push(rw);
  for (let i = 0; i < requests; i++) {
    const res = await rw.app.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify(otlpBody([{ traceId: hexId(16), attributes: llm }])),
    });
    expect(res.statusCode).toBe(200);
  }
  const metrics = await rw.app.inject({ method: 'GET', url: '/metrics' });
  expect(metrics.statusCode).toBe(200);
  expect(metrics.body).toContain('# TYPE routewatch_export_stage_seconds histogram\n');
  return readStageHistograms(metrics.body, 'routewatch_export_stage_seconds');
}

describe('the export stage histograms on /metrics', () => {
  it('without the log: every stage once per request, the slow store in `write` and `total`', async () => {
    const stages = await exportAndScrape(slowStore(), { ROUTEWATCH_WAL: 'off' }, 3);
    for (const stage of EXPORT_STAGES) {
      expect(stages[stage]?.count, stage).toBe(3);
    }
    // Each insert took at least INSERT_MS: every write, and every whole request, is over it.
    const over = (h: NonNullable<(typeof stages)['write']>, ms: number) =>
      h.boundsMs.reduce((n, bound, i) => (bound >= ms ? n + h.counts[i]! : n), 0) +
      h.counts[h.boundsMs.length]!;
    expect(over(stages.write!, INSERT_MS)).toBe(3);
    expect(over(stages.total!, INSERT_MS)).toBe(3);
    expect(stages.write!.sumMs).toBeGreaterThanOrEqual(3 * INSERT_MS);
    // The ingest thread's work is not the store's time.
    expect(stages.ingest!.sumMs).toBeLessThan(stages.write!.sumMs);
  });

  it('with the log: the write is the append, answered before the store is reached', async () => {
    const walDir = mkdtempSync(join(tmpdir(), 'routewatch-stages-'));
    dirs.push(walDir);
    let release = () => {};
    const store = slowStore(new Promise<void>((resolve) => (release = resolve)));
    try {
      const stages = await exportAndScrape(
        store,
        { ROUTEWATCH_WAL: 'on', ROUTEWATCH_WAL_DIR: walDir },
        2,
      );
      // Both answered and timed while no insert had finished: the write is the log's alone.
      expect(stages.write?.count).toBe(2);
      expect(stages.write_wait?.count).toBe(2);
      expect(stages.total?.count).toBe(2);
      expect(store.insertedBodies).toBe(0);
    } finally {
      release();
    }
  });
});
