import { afterAll, describe, expect, it } from 'vitest';
import { createIngestRunner } from '../../collector/ingest-pool.js';
import { configWith } from '../../server/config.js';
import { ingestSettings } from '../../server/start.js';
import { otlpBody } from '../support/otlp.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, runNode } from '../support/child-process.js';

// The ingest thread gets the request body either as a copy or, when the route hands it over and
// the body owns its memory, as that memory itself (moved, not copied). Either way the result is
// the same, and a body that shares its memory with anything else is never taken from under it.

const pool = createIngestRunner(ingestSettings(configWith()), { workers: 1, heapMb: 64 });
afterAll(() => pool.close());

const llmSpan = {
  attributes: {
    'routewatch.task.id': 'task-1',
    'routewatch.cohort': 'faq',
    'routewatch.route': 'small',
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': 'openai',
    'gen_ai.request.model': 'gpt-4o-mini',
    'gen_ai.usage.input_tokens': 1000,
    'gen_ai.usage.output_tokens': 200,
  },
};
const json = JSON.stringify(
  otlpBody([llmSpan, llmSpan, { name: 'GET /health', attributes: { 'http.route': '/health' } }]),
);

/** The body in an ArrayBuffer of its own, as Fastify's concatenation of a large body is. */
const ownedBody = () => new Uint8Array(Buffer.from(json));

describe('IngestPool', () => {
  it('moves a handed-over body that owns its memory to the ingest thread, without a copy', async () => {
    const body = ownedBody();
    const result = await pool.run(body, 'json', true);
    expect(result).toMatchObject({ received: 3, rows: 2, skipped: 1 });
    // Moved: the caller's view is detached.
    expect(body.byteLength).toBe(0);
  });

  it('copies a body that is not handed over, and leaves it as it was', async () => {
    const body = ownedBody();
    const result = await pool.run(body, 'json');
    expect(result).toMatchObject({ received: 3, rows: 2, skipped: 1 });
    expect(Buffer.from(body).toString('utf8')).toBe(json);
  });

  it('copies a handed-over body that is a view into a larger buffer, which stays intact', async () => {
    const bytes = Buffer.from(json);
    const shared = new Uint8Array(bytes.length + 64).fill(0x2a);
    shared.set(bytes, 32);
    const body = shared.subarray(32, 32 + bytes.length);
    const result = await pool.run(body, 'json', true);
    expect(result).toMatchObject({ received: 3, rows: 2, skipped: 1 });
    expect(shared.byteLength).toBe(bytes.length + 64);
    expect(shared[0]).toBe(0x2a);
    expect(shared[shared.length - 1]).toBe(0x2a);
    expect(Buffer.from(body).toString('utf8')).toBe(json);
  });

  it('copies a handed-over small Buffer, which lives in Node\u2019s shared pool', async () => {
    const small = JSON.stringify(otlpBody([llmSpan]));
    const body = Buffer.from(small);
    expect(body.byteLength).toBeLessThan(body.buffer.byteLength); // pooled
    const result = await pool.run(body, 'json', true);
    expect(result).toMatchObject({ received: 1, rows: 1 });
    expect(body.toString('utf8')).toBe(small);
  });

  it('keeps the process alive while a thread works on a request, where nothing else holds it', async () => {
    // A script that only awaits the pool (app.inject in a tool, no server listening): with the
    // thread unref'd while busy, Node found nothing left to run and exited 13 before the answer.
    const script = `
      const { createIngestRunner } = await import(${JSON.stringify(join(REPO_ROOT, 'dist/collector/ingest-pool.js'))});
      const { configWith } = await import(${JSON.stringify(join(REPO_ROOT, 'dist/server/config.js'))});
      const { ingestSettings } = await import(${JSON.stringify(join(REPO_ROOT, 'dist/server/start.js'))});
      const pool = createIngestRunner(ingestSettings(configWith({})), { workers: 1, heapMb: 64 });
      const body = Buffer.from(${JSON.stringify(JSON.stringify(otlpBody([llmSpan])))});
      const result = await pool.run(body, 'json');
      console.log('received', result.received);
      await pool.close();
    `;
    // A file, not --eval: the ingest thread inherits the process's flags (--input-type too).
    const dir = mkdtempSync(join(tmpdir(), 'routewatch-pool-'));
    const file = join(dir, 'inject.mjs');
    writeFileSync(file, script);
    const run = await runNode([file], { cwd: REPO_ROOT });
    rmSync(dir, { recursive: true, force: true });
    expect(run.stderr).toBe('');
    expect({ code: run.code, stdout: run.stdout.trim() }).toEqual({
      code: 0,
      stdout: 'received 1',
    });
  });
});
