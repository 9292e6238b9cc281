import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { normalizeRequest } from '../../collector/normalize.js';
import type { SpanRow } from '../../collector/normalize.js';
import { validateTraceRequest } from '../../collector/otlp-json.js';
import { PriceTable } from '../../collector/pricing.js';
import { deduplicationToken, recordsToken } from '../../collector/span-inserter.js';
import {
  RECORD_ROWS,
  SPAN_COLUMNS,
  SPAN_INSERT,
  preparedLines,
} from '../../collector/span-lines.js';
import { recordOfFrame } from '../../collector/wal-record.js';
import { CHECKPOINT_FILE, LEGACY_CHECKPOINT_FILE } from '../../collector/wal-checkpoint.js';
import { SpanWriter, prepareRows } from '../../collector/span-writer.js';
import type { PreparedRows, SpanWriterLog } from '../../collector/span-writer.js';
import { WriteAheadLog, encodeRecord } from '../../collector/wal.js';
import { configWith } from '../../server/config.js';
import { writerOptions } from '../../server/start.js';
import { testApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';
import type { Store } from '../../storage/store.js';
import { hexId, otlpBody } from '../support/otlp.js';
import type { TestSpan } from '../support/otlp.js';
import { switchableStore } from '../support/outage.js';
import { openTempStore } from '../support/store.js';

// The span writer with its write-ahead log, on the embedded engine: acknowledged once on disk,
// stored once the store takes it, exactly once across lost answers and restarts.

let temp: Awaited<ReturnType<typeof openTempStore>>;
const dirs: string[] = [];
beforeAll(async () => {
  temp = await openTempStore();
  // Raw row counts below must show every row inserted: no merge may collapse duplicates.
  await temp.store.exec('SYSTEM STOP MERGES spans');
});
afterAll(async () => {
  await temp?.dispose();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await temp.store.exec('TRUNCATE TABLE spans');
});

const llm = { 'routewatch.cohort': 'faq', 'gen_ai.request.model': 'gpt-4o-mini' };
function spanRows(count: number, name = 'span'): SpanRow[] {
  const spans: TestSpan[] = Array.from({ length: count }, (_, i) => ({
    traceId: hexId(16),
    name: `${name} ${i}`,
    attributes: llm,
  }));
  return normalizeRequest(validateTraceRequest(otlpBody(spans)), new PriceTable()).rows;
}
const rows = (count: number, name?: string): PreparedRows => prepareRows(spanRows(count, name));

const counted = z.object({ span_id: z.string(), n: z.coerce.number() });
/** Raw rows per span id (no FINAL: a duplicate insert shows). */
async function copiesBySpan(): Promise<Map<string, number>> {
  const found = await temp.store.query(
    'SELECT span_id, count() AS n FROM spans GROUP BY span_id',
    {},
    counted,
  );
  return new Map(found.map((r) => [r.span_id, r.n]));
}
const SPAN_ID = SPAN_COLUMNS.indexOf('span_id');
/** The span ids of prepared rows (positional lines, span-lines.ts). */
const spanIds = (prepared: PreparedRows) =>
  preparedLines(prepared).map((line) => (JSON.parse(line) as string[])[SPAN_ID]!);

function walDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'routewatch-wal-writer-'));
  dirs.push(dir);
  return dir;
}

function recordingLog(): SpanWriterLog & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (_d, m) => lines.push(`info ${m}`),
    warn: (d, m) => lines.push(`warn ${m} ${JSON.stringify(d)}`),
    error: (_d, m) => lines.push(`error ${m}`),
  };
}

async function walWriter(
  store: Store,
  dir: string,
  overrides: Record<string, string> = {},
  log?: SpanWriterLog,
): Promise<SpanWriter> {
  const config = configWith({ ROUTEWATCH_BATCH_DELAY: '5ms', ...overrides });
  const wal = await WriteAheadLog.open({ dir, maxBytes: config.ROUTEWATCH_WAL_MAX_BYTES });
  return new SpanWriter(store, writerOptions(config), { wal, ...(log ? { log } : {}) });
}

describe('SpanWriter with the write-ahead log', () => {
  it('acknowledges while the store is down, and stores every row once when it is back', async () => {
    const store = switchableStore(temp.store, 'down');
    const writer = await walWriter(store, walDir());
    const sent = [rows(3, 'a'), rows(2, 'b'), rows(4, 'c')];
    const results = await Promise.all(sent.map((r) => writer.write(r)));
    expect(results).toEqual(sent.map(() => ({ rejected: 0, errorMessage: '' })));
    expect((await copiesBySpan()).size).toBe(0);
    expect(writer.walSnapshot()).toMatchObject({ rows: 9 });
    expect(writer.health()).toMatchObject({ wal: true, logFull: false });
    while (store.counts.attempts < 2) await new Promise((r) => setTimeout(r, 20));
    expect(writer.walSnapshot()).toMatchObject({ storeAvailable: false });

    store.mode = 'up';
    await writer.flush();
    const copies = await copiesBySpan();
    expect([...copies.keys()].sort()).toEqual(sent.flatMap(spanIds).sort());
    expect([...copies.values()].every((n) => n === 1)).toBe(true);
    expect(writer.walSnapshot()).toMatchObject({ rows: 0, records: 0, storeAvailable: true });
    expect(writer.walSnapshot()!.storeFailures).toBeGreaterThanOrEqual(2);
    await writer.close();
  });

  it('retries an insert whose answer was lost with the same token: the rows are stored once', async () => {
    const store = switchableStore(temp.store, 'lose-answer');
    const writer = await walWriter(store, walDir());
    const sent = rows(5);
    await writer.write(sent);
    // Wait until the store has executed the insert at least twice (the first answer was lost).
    while (store.counts.executed < 2) await new Promise((r) => setTimeout(r, 20));
    store.mode = 'up';
    await writer.flush();
    const copies = await copiesBySpan();
    expect(copies.size).toBe(5);
    expect([...copies.values()]).toEqual([1, 1, 1, 1, 1]);
    await writer.close();
  });

  it('logs only the new rows of a write that repeats spans: of its own, of its group, or taken before', async () => {
    const dir = walDir();
    const store = switchableStore(temp.store, 'down');
    const writer = await walWriter(store, dir);
    const [taken, fresh] = [spanRows(3, 'taken'), spanRows(4, 'fresh')];
    await writer.write(prepareRows(taken));
    // Two writes in one group: the first repeats two taken spans and one of its own; the second
    // repeats one of the first's.
    const mixed = prepareRows([fresh[0]!, taken[0]!, taken[2]!, fresh[1]!, fresh[1]!, fresh[2]!]);
    const other = prepareRows([fresh[2]!, fresh[3]!]);
    await Promise.all([writer.write(mixed), writer.write(other)]);
    expect(writer.stats.duplicatesDropped).toBe(4);
    expect(writer.walSnapshot()).toMatchObject({ rows: 7 });
    // The rows stay in the log across a restart as they were logged.
    await writer.close({ drainMs: 0 });
    store.mode = 'up';
    const again = await walWriter(store, dir);
    expect(again.walSnapshot()).toMatchObject({ rows: 7 });
    await again.flush();
    const copies = await copiesBySpan();
    expect([...copies.keys()].sort()).toEqual(
      [...spanIds(prepareRows(taken)), ...spanIds(prepareRows(fresh))].sort(),
    );
    expect([...copies.values()].every((n) => n === 1)).toBe(true);
    await again.close();
  });

  it('splits a write of more rows than a record holds, and stores each row once', async () => {
    const many = prepareRows(spanRows(RECORD_ROWS + 7, 'many'));
    expect(many.records.map((r) => recordOfFrame(Buffer.from(r)).rows)).toEqual([RECORD_ROWS, 7]);
    const writer = await walWriter(temp.store, walDir());
    await writer.write(many);
    await writer.flush();
    const copies = await copiesBySpan();
    expect(copies.size).toBe(RECORD_ROWS + 7);
    expect([...copies.values()].every((n) => n === 1)).toBe(true);
    await writer.close();
  });

  it('stores what was left in the log after a restart, once, and drops an exporter retry of it', async () => {
    const dir = walDir();
    const store = switchableStore(temp.store, 'down');
    const first = await walWriter(store, dir);
    const sent = rows(6);
    await first.write(sent);
    // Stopped while the store is down: the rows stay in the log.
    await first.close({ drainMs: 0 });
    expect((await copiesBySpan()).size).toBe(0);

    store.mode = 'up';
    const log = recordingLog();
    const second = await walWriter(store, dir, {}, log);
    expect(second.walSnapshot()).toMatchObject({ replayedRecords: 1, rows: 6 });
    // The exporter never got its answer and sends the same spans again.
    await second.write(sent);
    await second.flush();
    expect(second.stats.duplicatesDropped).toBe(6);
    const copies = await copiesBySpan();
    expect([...copies.keys()].sort()).toEqual(spanIds(sent).sort());
    expect([...copies.values()].every((n) => n === 1)).toBe(true);
    await second.close();
  });

  it('repeats the insert in flight at a crash as the same batch, and the engine skips it', async () => {
    const dir = walDir();
    const store = switchableStore(temp.store, 'lose-answer');
    const first = await walWriter(store, dir);
    await first.write(rows(4, 'early'));
    while (store.counts.executed < 1) await new Promise((r) => setTimeout(r, 10));
    // More rows arrive while the first batch is being retried: a new batch would hold them too,
    // and carry another token, so only repeating the recorded range stores each row once.
    await first.write(rows(3, 'late'));
    await first.close({ drainMs: 0 });

    store.mode = 'up';
    const second = await walWriter(store, dir);
    expect(second.wal!.inFlightEnd).toBeDefined();
    await second.flush();
    const copies = await copiesBySpan();
    expect(copies.size).toBe(7);
    expect([...copies.values()].every((n) => n === 1)).toBe(true);
    await second.close();
  });

  it('repeats an insert an older routewatch left in flight under the token it sent, the SHA-256 of the body', async () => {
    const dir = walDir();
    // What an older routewatch left: two records, the range in flight in its JSON checkpoint
    // (no token recorded), and that insert stored, its answer lost in the crash.
    const wal = await WriteAheadLog.open({ dir, maxBytes: 64 * 1024 * 1024 });
    const sent = [rows(3, 'older a'), rows(2, 'older b')];
    for (const prepared of sent) await wal.append(prepared.records.map((r) => Buffer.from(r)));
    const [start, end] = [wal.entries()[0]!.start, wal.entries()[1]!.end];
    await wal.close();
    rmSync(join(dir, CHECKPOINT_FILE));
    writeFileSync(
      join(dir, LEGACY_CHECKPOINT_FILE),
      JSON.stringify({ version: 1, ...start, inFlightEnd: end }),
    );
    const body = Buffer.concat(
      sent.flatMap((p) => p.records.map((r) => recordOfFrame(Buffer.from(r)).body)),
    );
    await temp.store.insertJsonEachRow('spans', body, {
      ...SPAN_INSERT,
      deduplicationToken: deduplicationToken(body),
    });

    const writer = await walWriter(temp.store, dir);
    expect(writer.wal!.inFlightToken).toBeUndefined();
    await writer.flush();
    const copies = await copiesBySpan();
    expect(copies.size).toBe(5);
    expect([...copies.values()].every((n) => n === 1)).toBe(true);
    await writer.close();
  });

  it('counts and logs acknowledged rows the store refuses for their content, and stores the rest', async () => {
    const store = switchableStore(temp.store, 'down');
    const log = recordingLog();
    const writer = await walWriter(store, walDir(), {}, log);
    const good = rows(3, 'good');
    const mixed = spanRows(4, 'mixed');
    // A lone surrogate written past normalization: ClickHouse refuses the escape sequence.
    mixed[2]!.name = 'cut \ud83d';
    const bad = prepareRows(mixed);
    expect(await writer.write(good)).toEqual({ rejected: 0, errorMessage: '' });
    expect(await writer.write(bad)).toEqual({ rejected: 0, errorMessage: '' });
    store.mode = 'up';
    await writer.flush();
    expect(writer.stats.rowsRejected).toBe(1);
    expect(writer.walSnapshot()).toMatchObject({ rowsRejectedAfterAck: 1, rows: 0 });
    expect((await copiesBySpan()).size).toBe(6);
    const warning = log.lines.find((l) => l.includes('refused acknowledged spans'));
    expect(warning).toContain(mixed[2]!.trace_id + mixed[2]!.span_id);
    expect(warning).toMatch(/surrogate/);
    await writer.close();
  });

  it('refuses writes past its disk budget with a retry delay, and takes them again once drained', async () => {
    const store = switchableStore(temp.store, 'down');
    const writer = await walWriter(store, walDir(), { ROUTEWATCH_WAL_MAX_BYTES: '65536' });
    const accepted: PreparedRows[] = [];
    let refusal: unknown;
    for (let i = 0; i < 100 && !refusal; i++) {
      const batch = rows(10, `r${i}`);
      try {
        await writer.write(batch);
        accepted.push(batch);
      } catch (error) {
        refusal = error;
      }
    }
    expect(refusal).toMatchObject({ code: 'LOG_FULL', retryAfterSeconds: 10 });
    expect(writer.stats.logFullRefusals).toBe(1);
    expect(writer.wal!.bytes).toBeLessThanOrEqual(65536);
    expect(writer.refusal()).toMatchObject({ reason: 'the write-ahead log is full' });
    expect(writer.health().logFull).toBe(true);

    store.mode = 'up';
    await writer.flush();
    expect(writer.refusal()).toBeUndefined();
    await writer.write(rows(10, 'after'));
    await writer.flush();
    const copies = await copiesBySpan();
    expect(copies.size).toBe(accepted.length * 10 + 10);
    expect([...copies.values()].every((n) => n === 1)).toBe(true);
    await writer.close();
  });
  it('does not stay full after refusing one write larger than its free space, once the rest is drained', async () => {
    // Regression: the refusal of one oversized export marked the log full until it shrank below
    // its size then, which a log holding one small unrotated segment never does: every export was
    // refused before its body was read, until a restart.
    const store = switchableStore(temp.store, 'down');
    const writer = await walWriter(store, walDir(), { ROUTEWATCH_WAL_MAX_BYTES: String(1 << 20) });
    await writer.write(rows(3, 'small'));
    const huge = rows(6_000, 'huge');
    await expect(writer.write(huge)).rejects.toMatchObject({ code: 'LOG_FULL' });
    // Ordinary writes still fit beside what the log holds.
    expect(writer.refusal()).toBeUndefined();
    store.mode = 'up';
    await writer.flush();
    expect(writer.refusal()).toBeUndefined();
    expect(writer.health().logFull).toBe(false);
    await writer.write(rows(3, 'after'));
    await writer.flush();
    // The oversized export, retried into a log with nothing left to store, is taken whole.
    await writer.write(huge);
    await writer.flush();
    expect((await copiesBySpan()).size).toBe(6_006);
    await writer.close();
  });

  it('logs a failed append as an error once a run, each write refused as LOG_UNWRITABLE', async () => {
    const log = recordingLog();
    const writer = await walWriter(temp.store, walDir(), {}, log);
    const wal = writer.wal!;
    const append = wal.append.bind(wal);
    const failWith = (message: string) => {
      wal.append = () => Promise.reject(new Error(message));
    };
    const refusals = async (count: number) => {
      for (let i = 0; i < count; i++) {
        await expect(writer.write(rows(2, `f${i}`))).rejects.toMatchObject({
          code: 'LOG_UNWRITABLE',
        });
      }
    };
    const errors = () => log.lines.filter((line) => line.startsWith('error'));
    failWith('ENOSPC: no space left on device');
    await refusals(5);
    expect(errors()).toEqual(['error appending to the write-ahead log failed']);
    // A different error within the run is worth a line of its own.
    failWith('EIO: i/o error');
    await refusals(3);
    expect(errors()).toHaveLength(2);
    // An append that succeeds ends the run: the next failure is told again.
    wal.append = append;
    await writer.write(rows(2, 'ok'));
    failWith('EIO: i/o error');
    await refusals(2);
    expect(errors()).toHaveLength(3);
    wal.append = append;
    await writer.close();
  });

  it('gives refused exports and /readyz the same Retry-After, counting the fill window (ROUTEWATCH_BATCH_DELAY)', async () => {
    // The store is up but takes nothing (its inserts wait until released): the log fills to its
    // budget.
    let release = () => undefined as void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const stuck: Store = { ...switchableStore(temp.store), insertJsonEachRow: () => held };
    const writer = await walWriter(stuck, walDir(), {
      ROUTEWATCH_WAL_MAX_BYTES: '65536',
      ROUTEWATCH_BATCH_DELAY: '8s',
    });
    for (let i = 0; i < 100 && !writer.health().logFull; i++) {
      await writer.write(rows(10, `s${i}`)).catch(() => undefined);
    }
    expect(writer.health().logFull).toBe(true);
    const rw = await testApp(temp.store, { writer });
    try {
      const ready = await rw.app.inject({ method: 'GET', url: '/readyz' });
      const refused = await rw.app.inject({
        method: 'POST',
        url: '/v1/traces',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify(otlpBody([{ traceId: hexId(16), attributes: llm }])),
      });
      expect(ready.statusCode).toBe(503);
      expect(refused.statusCode).toBe(503);
      // Nothing is freed before the drainer's window has passed.
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(8);
      expect(ready.headers['retry-after']).toBe(refused.headers['retry-after']);
    } finally {
      release();
      await rw.close();
    }
  });

  it('drains a log written by an older routewatch, in the JSONEachRow format it used then', async () => {
    const dir = walDir();
    const old = spanRows(3, 'legacy');
    // What the log held before the positional layouts: one JSON object per row.
    const wal = await WriteAheadLog.open({ dir, maxBytes: 64 * 1024 * 1024 });
    await wal.append([
      encodeRecord({
        format: 'JSONEachRow',
        writtenAtMs: Date.now(),
        keys: old.map((row) => row.trace_id + row.span_id),
        lines: old.map((row) => JSON.stringify(row)),
      }),
    ]);
    await wal.close();
    const writer = await walWriter(temp.store, dir);
    expect(writer.walSnapshot()).toMatchObject({ replayedRecords: 1, rows: 3 });
    await writer.flush();
    const copies = await copiesBySpan();
    expect([...copies.keys()].sort()).toEqual(old.map((row) => row.span_id).sort());
    await writer.close();
  });
});

describe("the drainer's fill window (ROUTEWATCH_BATCH_DELAY)", () => {
  // A window of an hour: an insert that waited for it would time the test out.
  const HOUR = { ROUTEWATCH_BATCH_DELAY: '1h' };

  it('lets acknowledged rows wait to fill an insert, and a flush stores them at once', async () => {
    const writer = await walWriter(temp.store, walDir(), HOUR);
    const first = rows(3, 'first');
    await writer.write(first);
    await writer.write(rows(2, 'second'));
    // Acknowledged (on disk), not inserted: the drainer waits for the window.
    expect(writer.walSnapshot()).toMatchObject({ rows: 5, records: 2 });
    expect((await copiesBySpan()).size).toBe(0);

    await writer.flush();
    expect((await copiesBySpan()).size).toBe(5);
    expect(writer.walSnapshot()).toMatchObject({ rows: 0, records: 0 });
    // Both records in one insert.
    expect(writer.stats.batches).toBe(1);

    // The window applies again after the flush, and a second flush cuts it short again.
    await writer.write(rows(4, 'third'));
    expect((await copiesBySpan()).size).toBe(5);
    await writer.flush();
    expect((await copiesBySpan()).size).toBe(9);
    await writer.close();
  });

  it('stores everything waiting in the window at a stop, and leaves an empty log', async () => {
    const dir = walDir();
    const writer = await walWriter(temp.store, dir, HOUR);
    const sent = [rows(3, 'a'), rows(5, 'b'), rows(1, 'c')];
    for (const batch of sent) await writer.write(batch);
    expect((await copiesBySpan()).size).toBe(0);
    await writer.close();
    const copies = await copiesBySpan();
    expect([...copies.keys()].sort()).toEqual(sent.flatMap(spanIds).sort());
    expect([...copies.values()].every((n) => n === 1)).toBe(true);
    const reopened = await walWriter(temp.store, dir, HOUR);
    expect(reopened.walSnapshot()).toMatchObject({ replayedRecords: 0, rows: 0 });
    await reopened.close();
  });

  it('cuts an insert at ROUTEWATCH_MAX_PENDING_BYTES of log, as well as at its rows', async () => {
    const store = switchableStore(temp.store, 'down');
    const writer = await walWriter(store, walDir(), {
      ROUTEWATCH_MAX_PENDING_BYTES: String(1024 * 1024),
    });
    const big = (name: string) =>
      prepareRows(
        normalizeRequest(
          validateTraceRequest(
            otlpBody([{ name, attributes: { ...llm, 'app.payload': 'x'.repeat(400_000) } }]),
          ),
          new PriceTable(),
        ).rows,
      );
    // Three records of ~400 KB while the store is down: 1.2 MB waiting, over the 1 MiB bound.
    for (const name of ['big 1', 'big 2', 'big 3']) await writer.write(big(name));
    expect(writer.walSnapshot()).toMatchObject({ records: 3 });
    store.mode = 'up';
    await writer.flush();
    expect((await copiesBySpan()).size).toBe(3);
    expect(writer.stats.batches).toBe(2);
    await writer.close();
  });

  /**
   * An app whose log drains only once an hour, given one span it acknowledged and has not stored:
   * what a read right after an export finds.
   */
  async function justAcknowledged(
    name: string,
    read: (rw: TestApp, spanId: string) => Promise<void>,
  ) {
    const rw = await testApp(temp.store, {
      config: { ROUTEWATCH_WAL: 'on', ROUTEWATCH_WAL_DIR: walDir(), ...HOUR },
    });
    try {
      const spanId = hexId(8);
      const posted = await rw.app.inject({
        method: 'POST',
        url: '/v1/traces',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify(otlpBody([{ spanId, name, attributes: llm }])),
      });
      expect(posted.statusCode).toBe(200);
      expect((await copiesBySpan()).has(spanId)).toBe(false);
      await read(rw, spanId);
    } finally {
      await rw.close();
    }
  }

  it('answers a SQL query with what was just acknowledged, without waiting for the window', async () => {
    await justAcknowledged('just sent', async (rw, spanId) => {
      const read = await rw.app.inject({
        method: 'POST',
        url: '/api/v1/sql',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ sql: `SELECT name FROM spans WHERE span_id = '${spanId}'` }),
      });
      expect(read.statusCode).toBe(200);
      expect(read.json()).toMatchObject({ rowCount: 1, rows: [['just sent']] });
    });
  });

  it('evaluates the alert rules on what was just acknowledged, without waiting for the window', async () => {
    await justAcknowledged('before evaluate', async (rw, spanId) => {
      const evaluated = await rw.app.inject({
        method: 'POST',
        url: '/api/v1/evaluate?dryRun=true',
      });
      expect(evaluated.statusCode).toBe(200);
      expect((await copiesBySpan()).get(spanId)).toBe(1);
    });
  });
});

describe('insert deduplication tokens on the embedded engine (migration 0030)', () => {
  it('gives a batch of log records a token from their checksums and keys, not their rows', () => {
    const records = (prepared: PreparedRows[]) =>
      prepared.flatMap((p) => p.records.map((r) => recordOfFrame(Buffer.from(r))));
    const taken = spanRows(4, 'token');
    const batch = [prepareRows(taken.slice(0, 2)), prepareRows(taken.slice(2))];
    const token = recordsToken(records(batch));
    expect(token).toMatch(/^routewatch-r-[0-9a-f]{64}$/);
    expect(recordsToken(records(batch))).toBe(token);
    // Another order, another split, or a row that differs in anything but its key: another token.
    expect(recordsToken(records([batch[1]!, batch[0]!]))).not.toBe(token);
    expect(recordsToken(records([prepareRows(taken)]))).not.toBe(token);
    const changed = taken.map((row) => ({ ...row }));
    changed[3]!.input_tokens += 1;
    const other = [prepareRows(changed.slice(0, 2)), prepareRows(changed.slice(2))];
    expect(recordsToken(records(other))).not.toBe(token);
  });

  it('is the SHA-256 of the body in hex, as every routewatch wrote it', async () => {
    // An insert in flight at an upgrade is repeated under the token the older version sent.
    const body = Buffer.from('["a",1]\n["b",2]\n');
    const digest = createHash('sha256').update(body).digest('hex');
    expect(deduplicationToken(body)).toBe(`routewatch-${digest}`);
    expect(deduplicationToken(body.subarray(8))).toBe(
      `routewatch-${createHash('sha256').update(body.subarray(8)).digest('hex')}`,
    );
  });

  it('skips an insert whose token the table has seen, and only that one', async () => {
    const body = Buffer.from(preparedLines(prepareRows(spanRows(3))).join('\n') + '\n');
    const token = deduplicationToken(body);
    await temp.store.insertJsonEachRow('spans', body, {
      ...SPAN_INSERT,
      deduplicationToken: token,
    });
    await temp.store.insertJsonEachRow('spans', body, {
      ...SPAN_INSERT,
      deduplicationToken: token,
    });
    expect([...(await copiesBySpan()).values()]).toEqual([1, 1, 1]);
    // The same rows under another token are inserted: the test above could fail.
    await temp.store.insertJsonEachRow('spans', body, {
      ...SPAN_INSERT,
      deduplicationToken: `${token}-other`,
    });
    expect([...(await copiesBySpan()).values()]).toEqual([2, 2, 2]);
  });
});
