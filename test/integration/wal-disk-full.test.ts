import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import type * as FsPromises from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { WriteAheadLog, encodeRecord, recordKeys } from '../../collector/wal.js';
import { testApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';
import { hexId, otlpBody } from '../support/otlp.js';
import { openTempStore } from '../support/store.js';

// The log on a volume that fills up: the log's own files are real, and a write that would take
// the log's segments past `room` bytes fails with ENOSPC, as it would on a small volume. (A real
// full volume needs a mount, which a test cannot make.)

const disk = vi.hoisted(() => ({ dir: '', room: Infinity }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof FsPromises>();
  const { readdirSync: list, statSync: stat } = await import('node:fs');
  const { join: joinPath } = await import('node:path');
  const used = () =>
    list(disk.dir)
      .filter((f) => f.endsWith('.wal'))
      .reduce((sum, f) => sum + stat(joinPath(disk.dir, f)).size, 0);
  const full = (bytes: number) => disk.dir !== '' && used() + bytes > disk.room;
  const enospc = () =>
    Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  const length = (buffers: readonly { length: number }[]) =>
    buffers.reduce((n, b) => n + b.length, 0);
  return {
    ...actual,
    // What is left of the volume, as the log asks before it says it can be written again.
    statfs: async (...args: Parameters<typeof actual.statfs>) =>
      disk.dir !== '' && String(args[0]).startsWith(disk.dir)
        ? { ...(await actual.statfs(...args)), bsize: 1, bavail: Math.max(0, disk.room - used()) }
        : actual.statfs(...args),
    open: async (...args: Parameters<typeof actual.open>) => {
      const handle = await actual.open(...args);
      if (!String(args[0]).endsWith('.wal')) return handle;
      return new Proxy(handle, {
        get(target, key) {
          if (key === 'write') {
            return async (buffer: { length: number }, ...rest: unknown[]) => {
              if (full(buffer.length)) throw enospc();
              return (target.write as (...a: unknown[]) => unknown)(buffer, ...rest);
            };
          }
          if (key === 'writev') {
            return async (buffers: { length: number }[], position: number) => {
              if (full(length(buffers))) throw enospc();
              return target.writev(buffers as Buffer[], position);
            };
          }
          const value = Reflect.get(target, key) as unknown;
          return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
        },
      });
    },
  };
});

const dirs: string[] = [];
let app: TestApp | undefined;
let temp: Awaited<ReturnType<typeof openTempStore>> | undefined;
afterAll(async () => {
  await app?.close();
  await temp?.dispose();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}, 60_000);
function volume(): string {
  const dir = mkdtempSync(join(tmpdir(), 'routewatch-wal-full-'));
  dirs.push(dir);
  disk.dir = dir;
  disk.room = Infinity;
  return dir;
}

const segments = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.wal'))
    .sort();
const used = (dir: string) =>
  segments(dir).reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);

function frame(name: string, pad = 1000): Buffer {
  return encodeRecord({
    format: 'JSONEachRow',
    writtenAtMs: Date.now(),
    keys: [name],
    lines: [JSON.stringify({ key: name, pad: 'p'.repeat(pad) })],
  });
}

async function rowsOf(wal: WriteAheadLog): Promise<string[]> {
  const rows: string[] = [];
  for (const entry of wal.entries()) {
    const record = await wal.read(entry);
    rows.push(...recordKeys(record!));
  }
  return rows;
}

describe('the write-ahead log on a volume that fills up', () => {
  it('takes appends again once what it stored frees the room, with no restart', async () => {
    const dir = volume();
    const wal = await WriteAheadLog.open({ dir, maxBytes: 1 << 30, segmentBytes: 4096 });
    for (let i = 0; i < 6; i++) await wal.append([frame(`a${i}`)]);
    const before = segments(dir);
    expect(before.length).toBeGreaterThan(1);

    // The volume is full: an append that needs a new segment fails, and leaves no file behind.
    disk.room = used(dir);
    await expect(wal.append([frame('refused-1')])).rejects.toThrow(/no space left/);
    await expect(wal.append([frame('refused-2')])).rejects.toThrow(/no space left/);
    expect(segments(dir)).toEqual(before);

    // The store takes everything: the stored segments go, and the log takes appends again.
    await wal.release(wal.entries().at(-1)!.end);
    await wal.append([frame('b0')]);
    await wal.append([frame('b1')]);
    expect(await rowsOf(wal)).toEqual(['b0', 'b1']);
    await wal.close();

    const again = await WriteAheadLog.open({ dir, maxBytes: 1 << 30, segmentBytes: 4096 });
    expect(await rowsOf(again)).toEqual(['b0', 'b1']);
    await again.close();
  });

  it('frees a stored active segment when only it fills the volume, and says when it can write again', async () => {
    const dir = volume();
    const wal = await WriteAheadLog.open({ dir, maxBytes: 1 << 30, segmentBytes: 16 * 1024 });
    for (let i = 0; i < 4; i++) await wal.append([frame(`a${i}`, 3000)]);
    expect(segments(dir)).toHaveLength(1);
    disk.room = used(dir);
    await expect(wal.append([frame('refused')])).rejects.toThrow(/no space left/);
    expect(await wal.tryRecover()).toBe(false);
    expect(segments(dir)).toHaveLength(1);

    // All of the one segment is stored: it is the room the next one needs.
    await wal.release(wal.entries().at(-1)!.end);
    expect(await wal.tryRecover()).toBe(true);
    await wal.append([frame('b0')]);
    expect(await rowsOf(wal)).toEqual(['b0']);
    expect(segments(dir)).toHaveLength(1);
    await wal.close();

    const again = await WriteAheadLog.open({ dir, maxBytes: 1 << 30, segmentBytes: 16 * 1024 });
    expect(await rowsOf(again)).toEqual(['b0']);
    await again.close();
  });
});

describe('the write-ahead log on a volume with a little room left', () => {
  it('does not say it can be written while the room is less than a group commit, and leaves no empty segments', async () => {
    const dir = volume();
    const wal = await WriteAheadLog.open({ dir, maxBytes: 1 << 30, segmentBytes: 16 * 1024 });
    for (let i = 0; i < 3; i++) await wal.append([frame(`a${i}`, 3000)]);
    // Room for a segment's start, not for a record.
    disk.room = used(dir) + 100;
    const files = segments(dir).length;
    for (let i = 0; i < 5; i++) {
      await expect(wal.append([frame(`refused-${i}`, 3000)])).rejects.toThrow(/no space left/);
      expect(await wal.tryRecover()).toBe(false);
    }
    // Each try started a segment that holds nothing; the next one removed it.
    expect(segments(dir).length).toBeLessThanOrEqual(files + 1);
    expect(await rowsOf(wal)).toEqual(['a0', 'a1', 'a2']);
    await wal.close();
  });

  it('makes an append wait for a recovery under way, rather than refuse it', async () => {
    const dir = volume();
    const wal = await WriteAheadLog.open({ dir, maxBytes: 1 << 30, segmentBytes: 4096 });
    for (let i = 0; i < 4; i++) await wal.append([frame(`a${i}`)]);
    disk.room = used(dir);
    await expect(wal.append([frame('refused')])).rejects.toThrow(/no space left/);
    await wal.release(wal.entries().at(-1)!.end);
    disk.room = Infinity;
    const [recovered, appended] = await Promise.all([wal.tryRecover(), wal.append([frame('b0')])]);
    expect(recovered).toBe(true);
    expect(appended).toHaveLength(1);
    // A close waits for a recovery too.
    const closing = Promise.all([wal.tryRecover(), wal.close()]);
    await expect(closing).resolves.toBeDefined();
  });
});

describe('the collector when its log cannot be written', () => {
  it('answers 503, is not ready, recovers by itself once the store frees the disk, and loses nothing acknowledged', async () => {
    temp = await openTempStore();
    const walDir = join(volume(), 'wal');
    disk.dir = '';
    app = await testApp(temp.store, {
      config: {
        ROUTEWATCH_WAL: 'on',
        ROUTEWATCH_WAL_DIR: walDir,
        ROUTEWATCH_WAL_MAX_BYTES: String(1024 * 1024),
        // The drainer waits: the log holds what it acknowledged until the test flushes it.
        ROUTEWATCH_BATCH_DELAY: '60s',
      },
    });
    disk.dir = walDir;
    const rw = app;
    const acknowledged: string[] = [];
    const send = async (i: number) => {
      const spans = Array.from({ length: 20 }, () => ({
        traceId: hexId(16),
        spanId: hexId(8),
        attributes: {
          'routewatch.cohort': 'faq',
          'routewatch.route': 'small',
          'gen_ai.request.model': 'gpt-4o-mini',
          'gen_ai.usage.input_tokens': 100 + i,
        },
      }));
      const res = await rw.app.inject({
        method: 'POST',
        url: '/v1/traces',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify(otlpBody(spans)),
      });
      if (res.statusCode === 200) acknowledged.push(...spans.map((s) => s.spanId));
      return res;
    };
    const ready = () => rw.app.inject({ method: 'GET', url: '/readyz' });

    let i = 0;
    while (segments(walDir).length < 3) expect((await send(i++)).statusCode).toBe(200);
    disk.room = used(walDir);
    let refused = await send(i++);
    // The active segment may still have had room for one request.
    if (refused.statusCode === 200) refused = await send(i++);
    expect(refused.statusCode).toBe(503);
    expect(refused.json()).toMatchObject({
      message: expect.stringMatching(/could not write its write-ahead log/),
    });
    const notReady = await ready();
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json()).toEqual({
      status: 'unavailable',
      reason: 'write-ahead log cannot be written (is its disk full?)',
    });
    // Until the log finds room again, an export is refused before its body is decoded: no
    // append is tried for it.
    const early = await send(i++);
    expect(early.statusCode).toBe(503);
    expect(early.headers['retry-after']).toBe('5');
    const metrics = (await rw.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(Number(/^routewatch_wal_append_failures_total (\d+)$/m.exec(metrics)![1])).toBe(1);

    // The store takes what the log holds; with no request sent, the collector is ready again.
    await rw.writer.flush();
    const deadline = Date.now() + 10_000;
    while ((await ready()).statusCode !== 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await ready()).statusCode).toBe(200);
    expect((await send(i++)).statusCode).toBe(200);
    await rw.writer.flush();

    const stored = await temp.store.query(
      'SELECT count() AS n, uniqExact(span_id) AS ids, countIf(span_id IN {ids:Array(String)}) AS acked FROM spans FINAL',
      { ids: acknowledged },
      z.object({ n: z.coerce.number(), ids: z.coerce.number(), acked: z.coerce.number() }),
    );
    expect(stored).toEqual([
      { n: acknowledged.length, ids: acknowledged.length, acked: acknowledged.length },
    ]);
  }, 60_000);
});
