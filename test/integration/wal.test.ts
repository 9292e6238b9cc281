import { spawn } from 'node:child_process';
import {
  appendFileSync,
  constants,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  SEGMENT_MAGIC,
  WalError,
  WriteAheadLog,
  encodeRecord,
  recordKeys,
  unstoredInLog,
} from '../../collector/wal.js';
import type { WalOptions } from '../../collector/wal.js';
import { CHECKPOINT_FILE, SLOT_BYTES, decodeSlot } from '../../collector/wal-checkpoint.js';
import { decodeSegment } from '../../collector/wal-record.js';
import { FIXTURES } from '../support/child-process.js';
import { seeded } from '../support/tasks.js';

// The log on real files: segments, rotation, replay order, torn and damaged records, the
// checkpoint of the insert in flight, and the lock.

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'routewatch-wal-'));
  dirs.push(dir);
  return dir;
}

/** A record of `rows` rows, each row naming its record and index. */
function frame(name: string, rows = 3, pad = 0): Buffer {
  const keys = Array.from({ length: rows }, (_, i) => `${name}/${i}`);
  return encodeRecord({
    format: 'JSONEachRow',
    writtenAtMs: Date.now(),
    keys,
    lines: keys.map((key) => JSON.stringify({ key, pad: 'p'.repeat(pad) })),
  });
}

async function rowsOf(wal: WriteAheadLog): Promise<string[]> {
  const rows: string[] = [];
  for (const entry of wal.entries()) {
    const record = await wal.read(entry);
    for (const line of record!.body.toString('utf8').split('\n').filter(Boolean))
      rows.push((JSON.parse(line) as { key: string }).key);
  }
  return rows;
}

const segments = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.wal'))
    .sort();
const quiet = () => {
  const lines: string[] = [];
  return {
    lines,
    log: {
      warn: (_d: object, m: string) => lines.push(`warn ${m}`),
      error: (_d: object, m: string) => lines.push(`error ${m}`),
    },
  };
};
const open = (options: Partial<WalOptions> & { dir: string }) =>
  WriteAheadLog.open({ maxBytes: 64 * 1024 * 1024, ...options });

/** Both checkpoint slots as they are on disk (undefined: not a whole slot). */
function checkpointSlots(dir: string) {
  const bytes = readFileSync(join(dir, CHECKPOINT_FILE));
  return [0, 1].map((slot) =>
    decodeSlot(bytes.subarray(slot * SLOT_BYTES, (slot + 1) * SLOT_BYTES)),
  );
}

/** Tears the checkpoint written last, as a crash in the middle of its write would. */
function tearNewestCheckpoint(dir: string): void {
  const [first, second] = checkpointSlots(dir);
  const slot = (second?.sequence ?? -1) > (first?.sequence ?? -1) ? 1 : 0;
  const path = join(dir, CHECKPOINT_FILE);
  const bytes = readFileSync(path);
  bytes.fill(0x5a, slot * SLOT_BYTES + 6, slot * SLOT_BYTES + 40);
  writeFileSync(path, bytes);
}

describe('WriteAheadLog', () => {
  it('keeps the spans to this user: its directory and files readable by no one else', async () => {
    const dir = join(tempDir(), 'wal');
    const wal = await open({ dir });
    await wal.append([frame('private')]);
    await wal.close();
    expect((statSync(dir).mode & 0o777).toString(8)).toBe('700');
    expect(readdirSync(dir)).toEqual(expect.arrayContaining([CHECKPOINT_FILE]));
    for (const file of readdirSync(dir)) {
      expect([file, (statSync(join(dir, file)).mode & 0o077).toString(8)]).toEqual([file, '0']);
    }
  });

  it('rotates segments at their size, counts their bytes, and deletes them once stored', async () => {
    const dir = tempDir();
    const wal = await open({ dir, segmentBytes: 4096 });
    for (let i = 0; i < 12; i++) await wal.append([frame(`r${i}`, 3, 300)]);
    const files = segments(dir);
    expect(files.length).toBeGreaterThan(3);
    for (const file of files) expect(statSync(join(dir, file)).size).toBeLessThanOrEqual(4096);
    const onDisk = files.reduce((sum, file) => sum + statSync(join(dir, file)).size, 0);
    expect(wal.bytes).toBe(onDisk);
    expect(wal.unstoredRows).toBe(36);

    // Store the first half: the segments holding only those go.
    await wal.release(wal.entries()[5]!.end);
    expect(wal.entries()).toHaveLength(6);
    expect(segments(dir).length).toBeLessThan(files.length);
    expect(await rowsOf(wal)).toEqual(
      Array.from({ length: 6 }, (_, i) => [0, 1, 2].map((j) => `r${i + 6}/${j}`)).flat(),
    );
    await wal.release(wal.entries().at(-1)!.end);
    expect(wal.entries()).toHaveLength(0);
    expect(segments(dir)).toHaveLength(1);
    expect(wal.bytes).toBe(statSync(join(dir, segments(dir)[0]!)).size);
    await wal.close();
  });

  it('replays what was not stored, in the order it was written, across segments and restarts', async () => {
    const dir = tempDir();
    let wal = await open({ dir, segmentBytes: 2048 });
    for (let i = 0; i < 5; i++) await wal.append([frame(`a${i}`, 2, 200)]);
    await wal.release(wal.entries()[1]!.end);
    await wal.close();

    wal = await open({ dir, segmentBytes: 2048 });
    expect(wal.stats.replayedRecords).toBe(3);
    expect(wal.stats.replayedRows).toBe(6);
    await wal.append([frame('b0', 2, 200), frame('b1', 2, 200)]);
    await wal.close();

    wal = await open({ dir, segmentBytes: 2048 });
    const expected = ['a2', 'a3', 'a4', 'b0', 'b1'].flatMap((r) => [`${r}/0`, `${r}/1`]);
    expect(await rowsOf(wal)).toEqual(expected);
    // The keys of every unstored row, for de-duplication of exporter retries.
    expect(wal.takeReplayedKeys()).toEqual(expected);
    await wal.close();
  });

  it('tells what it holds unstored without opening it, for a query of a stopped directory', async () => {
    const dir = tempDir();
    expect(await unstoredInLog(join(dir, 'none'))).toEqual({ records: 0, spans: 0 });
    const wal = await open({ dir, segmentBytes: 2048 });
    for (let i = 0; i < 5; i++) await wal.append([frame(`s${i}`, 3, 200)]);
    await wal.release(wal.entries()[1]!.end);
    const before = readdirSync(dir).map((name) => [name, statSync(join(dir, name)).size]);
    // Read while the log is open (its files as a killed process leaves them): 3 records unstored.
    expect(await unstoredInLog(dir)).toEqual({ records: 3, spans: 9 });
    expect(readdirSync(dir).map((name) => [name, statSync(join(dir, name)).size])).toEqual(before);
    await wal.release(wal.entries().at(-1)!.end);
    expect(await unstoredInLog(dir)).toEqual({ records: 0, spans: 0 });
    await wal.close();
  });

  it('reads records back from disk when they are not kept in memory', async () => {
    const dir = tempDir();
    const wal = await open({ dir, cacheBytes: 0 });
    await wal.append([frame('x', 4)]);
    expect(wal.entries()[0]!.cached).toBeUndefined();
    const record = await wal.read(wal.entries()[0]!);
    expect(recordKeys(record!)).toEqual(['x/0', 'x/1', 'x/2', 'x/3']);
    await wal.close();
  });

  it('cuts a torn record off the newest segment at open, and appends after it stay readable', async () => {
    const dir = tempDir();
    let wal = await open({ dir });
    await wal.append([frame('kept0')]);
    await wal.append([frame('kept1')]);
    await wal.close();
    const newest = join(dir, segments(dir).at(-1)!);
    const whole = statSync(newest).size;
    // An append the process died in: half a frame on disk.
    const torn = frame('torn', 5);
    appendFileSync(newest, torn.subarray(0, Math.floor(torn.length / 2)));

    const { lines, log } = quiet();
    wal = await open({ dir, log });
    expect(wal.stats.tornRecordsDropped).toBe(1);
    expect(lines).toEqual([expect.stringMatching(/^warn .*torn record/)]);
    expect(statSync(newest).size).toBe(whole);
    expect(await rowsOf(wal)).toEqual(
      ['kept0', 'kept1'].flatMap((r) => [0, 1, 2].map((i) => `${r}/${i}`)),
    );
    await wal.append([frame('after')]);
    await wal.close();

    wal = await open({ dir });
    expect(wal.stats.tornRecordsDropped).toBe(0);
    expect(wal.entries().map((e) => e.rows)).toEqual([3, 3, 3]);
    expect((await rowsOf(wal)).at(-1)).toBe('after/2');
    await wal.close();
  });

  it('cuts a newest record whose checksum fails, and skips the rest of an older damaged segment', async () => {
    const dir = tempDir();
    let wal = await open({ dir, segmentBytes: 1024 });
    for (let i = 0; i < 6; i++) await wal.append([frame(`r${i}`, 2, 150)]);
    await wal.close();
    const files = segments(dir);
    expect(files.length).toBeGreaterThanOrEqual(3);
    // Damage the first record of the first segment (not the newest: a failing disk, not a crash).
    const first = join(dir, files[0]!);
    const bytes = readFileSync(first);
    bytes[SEGMENT_MAGIC.length + 20]! ^= 0xff;
    writeFileSync(first, bytes);

    const { lines, log } = quiet();
    wal = await open({ dir, segmentBytes: 1024, log });
    expect(wal.stats.corruptRecords).toBe(1);
    expect(lines).toEqual([
      expect.stringMatching(
        /^error .*an unreadable record \(damage on disk, not a crash\) was skipped; the records after it are kept/,
      ),
    ]);
    // Only the damaged record is lost: r1, after it in the same segment, is kept.
    const rows = await rowsOf(wal);
    expect(rows).not.toContain('r0/0');
    expect(rows).toEqual([1, 2, 3, 4, 5].flatMap((r) => [`r${r}/0`, `r${r}/1`]));
    await wal.close();
  });

  it('takes a hole of zeros in the newest segment for a write torn by a power loss, not for damage', async () => {
    const dir = tempDir();
    let wal = await open({ dir });
    for (let i = 0; i < 4; i++) await wal.append([frame(`r${i}`, 2, 40)]);
    await wal.close();
    const newest = join(dir, segments(dir).at(-1)!);
    const bytes = readFileSync(newest);
    const size = frame('r1', 2, 40).length;
    // The third record's bytes never reached the disk; the fourth's did.
    bytes.fill(0, SEGMENT_MAGIC.length + 2 * size, SEGMENT_MAGIC.length + 3 * size);
    writeFileSync(newest, bytes);
    const { lines, log } = quiet();
    wal = await open({ dir, log });
    expect(wal.stats.tornRecordsDropped).toBe(1);
    expect(wal.stats.corruptRecords).toBe(0);
    expect(lines).toEqual([expect.stringMatching(/^warn .*a hole of zeros/)]);
    expect(await rowsOf(wal)).toEqual([0, 1, 3].flatMap((r) => [`r${r}/0`, `r${r}/1`]));
    await wal.close();
  });

  it('finds no record in a megabyte of noise after a torn append: all of it is the tail', () => {
    const good = frame('good', 2, 40);
    const random = seeded(3);
    const noise = Buffer.from(Array.from({ length: 1 << 20 }, () => Math.floor(random() * 256)));
    const decoded = decodeSegment(Buffer.concat([good, noise, good]), 0);
    // The good frame after the noise is found again; the noise alone is skipped.
    expect(decoded.frames).toHaveLength(2);
    expect(decoded.skipped).toEqual([
      { start: good.length, end: good.length + noise.length, problem: expect.any(String) },
    ]);
    const torn = decodeSegment(Buffer.concat([good, noise]), 0);
    expect(torn.frames).toHaveLength(1);
    expect(torn.skipped).toEqual([]);
    expect(torn.tail).toMatchObject({ start: good.length, end: good.length + noise.length });
  });

  it('skips a damaged record in the middle of the newest segment and keeps the acknowledged ones after it', async () => {
    // Regression: any unreadable record in the newest segment was taken for a torn append and
    // the file cut there, losing every acknowledged record after it as "never acknowledged".
    const dir = tempDir();
    let wal = await open({ dir });
    for (let i = 0; i < 10; i++) await wal.append([frame(`r${i}`, 2, 40)]);
    await wal.close();
    const newest = join(dir, segments(dir).at(-1)!);
    const bytes = readFileSync(newest);
    const third = frame('r2', 2, 40);
    // A byte of the third record's rows, flipped.
    bytes[SEGMENT_MAGIC.length + 2 * third.length + third.length - 10]! ^= 0xff;
    writeFileSync(newest, bytes);

    const { lines, log } = quiet();
    wal = await open({ dir, log });
    expect(wal.stats.corruptRecords).toBe(1);
    expect(wal.stats.tornRecordsDropped).toBe(0);
    expect(lines).toEqual([expect.stringMatching(/^error .*damage on disk, not a crash/)]);
    expect(statSync(newest).size).toBe(bytes.length);
    expect(await rowsOf(wal)).toEqual(
      [0, 1, 3, 4, 5, 6, 7, 8, 9].flatMap((r) => [`r${r}/0`, `r${r}/1`]),
    );
    await wal.close();
  });

  it('remembers the insert in flight: after a restart the same range is retried, then forgotten', async () => {
    const dir = tempDir();
    let wal = await open({ dir });
    for (const name of ['a', 'b', 'c']) await wal.append([frame(name)]);
    await wal.markInFlight(wal.entries()[1]!.end, 'token-ab');
    await wal.close();

    wal = await open({ dir });
    expect(wal.inFlightEnd).toEqual(wal.entries()[1]!.end);
    expect(wal.inFlightToken).toBe('token-ab');
    await wal.release(wal.entries()[1]!.end);
    expect(wal.inFlightEnd).toBeUndefined();
    expect(wal.inFlightToken).toBeUndefined();
    await wal.close();

    wal = await open({ dir });
    expect(wal.inFlightEnd).toBeUndefined();
    expect(wal.inFlightToken).toBeUndefined();
    expect(await rowsOf(wal)).toEqual(['c/0', 'c/1', 'c/2']);
    await wal.close();
  });

  it('writes its checkpoint in place, alternating two slots, in a file whose size never changes', async () => {
    const dir = tempDir();
    const wal = await open({ dir });
    for (const name of ['a', 'b', 'c']) await wal.append([frame(name)]);
    const size = statSync(join(dir, CHECKPOINT_FILE)).size;
    expect(size).toBe(2 * SLOT_BYTES);
    const sequences: number[][] = [];
    for (const entry of wal.entries().slice(0, 2)) {
      await wal.markInFlight(entry.end, 'token');
      sequences.push(checkpointSlots(dir).map((slot) => slot!.sequence));
      await wal.release(entry.end);
      sequences.push(checkpointSlots(dir).map((slot) => slot!.sequence));
    }
    // Each write replaces the older slot; the newer one stays whole.
    expect(sequences).toEqual([
      [2, 1],
      [2, 3],
      [4, 3],
      [4, 5],
    ]);
    expect(statSync(join(dir, CHECKPOINT_FILE)).size).toBe(size);
    expect(checkpointSlots(dir)[1]!.checkpoint).toMatchObject({
      segment: wal.entries()[0]!.start.segment,
      offset: wal.entries()[0]!.start.offset,
      inFlightEnd: null,
    });
    expect(readdirSync(dir).filter((f) => f.startsWith('checkpoint'))).toEqual([CHECKPOINT_FILE]);
    await wal.close();
  });

  it('falls back to the slot before a torn checkpoint: the stored range is retried as the same insert', async () => {
    const dir = tempDir();
    let wal = await open({ dir });
    for (const name of ['a', 'b', 'c']) await wal.append([frame(name)]);
    const end = wal.entries()[1]!.end;
    await wal.markInFlight(end, 'token-ab');
    await wal.release(end);
    await wal.close();
    // The write that recorded the range as stored is torn: the one before it, the insert in
    // flight, is what the log knows, so the range goes again as one insert with its token.
    tearNewestCheckpoint(dir);

    const { lines, log } = quiet();
    wal = await open({ dir, log });
    expect(lines).toEqual([]);
    expect(wal.inFlightEnd).toEqual(end);
    expect(wal.inFlightToken).toBe('token-ab');
    expect(await rowsOf(wal)).toEqual([
      'a/0',
      'a/1',
      'a/2',
      'b/0',
      'b/1',
      'b/2',
      'c/0',
      'c/1',
      'c/2',
    ]);
    await wal.release(end);
    await wal.close();

    wal = await open({ dir });
    expect(wal.inFlightEnd).toBeUndefined();
    expect(await rowsOf(wal)).toEqual(['c/0', 'c/1', 'c/2']);
    await wal.close();
  });

  it('stores everything again when neither checkpoint slot is readable, and says so', async () => {
    const dir = tempDir();
    let wal = await open({ dir });
    for (const name of ['a', 'b']) await wal.append([frame(name)]);
    await wal.markInFlight(wal.entries()[0]!.end, 'token');
    await wal.release(wal.entries()[0]!.end);
    await wal.close();
    writeFileSync(join(dir, CHECKPOINT_FILE), Buffer.alloc(2 * SLOT_BYTES, 0x11));

    const { lines, log } = quiet();
    wal = await open({ dir, log });
    expect(lines).toEqual([
      'warn write-ahead log: unreadable checkpoint; every record left in the log is stored again',
    ]);
    expect(await rowsOf(wal)).toEqual(['a/0', 'a/1', 'a/2', 'b/0', 'b/1', 'b/2']);
    // The next checkpoint is whole again.
    await wal.markInFlight(wal.entries()[1]!.end, 'token');
    await wal.release(wal.entries()[1]!.end);
    await wal.close();
    wal = await open({ dir });
    expect(wal.entries()).toEqual([]);
    await wal.close();
  });

  it('carries the checkpoint of a log written by an older version (checkpoint.json) into the new file', async () => {
    const dir = tempDir();
    let wal = await open({ dir });
    for (const name of ['a', 'b', 'c']) await wal.append([frame(name)]);
    const stored = wal.entries()[0]!.end;
    const inFlight = wal.entries()[1]!.end;
    await wal.close();
    // What an older routewatch left: its JSON checkpoint, and no slot file.
    rmSync(join(dir, CHECKPOINT_FILE));
    writeFileSync(
      join(dir, 'checkpoint.json'),
      JSON.stringify({ version: 1, ...stored, inFlightEnd: inFlight }),
    );

    wal = await open({ dir });
    expect(wal.inFlightEnd).toEqual(inFlight);
    // It recorded no token: the drainer repeats the range under the body's SHA-256, as it did.
    expect(wal.inFlightToken).toBeUndefined();
    expect(await rowsOf(wal)).toEqual(['b/0', 'b/1', 'b/2', 'c/0', 'c/1', 'c/2']);
    expect(existsSync(join(dir, 'checkpoint.json'))).toBe(false);
    await wal.release(inFlight);
    await wal.close();
    // A crash between the new file's rename and the old one's deletion: the new one wins.
    writeFileSync(
      join(dir, 'checkpoint.json'),
      JSON.stringify({ version: 1, ...stored, inFlightEnd: null }),
    );

    wal = await open({ dir });
    expect(await rowsOf(wal)).toEqual(['c/0', 'c/1', 'c/2']);
    expect(existsSync(join(dir, 'checkpoint.json'))).toBe(false);
    await wal.close();
  });

  it('makes its directory and missing parents, and says when it cannot', async () => {
    const dir = join(tempDir(), 'a', 'b', 'wal');
    await (await open({ dir })).close();
    expect(statSync(dir).isDirectory()).toBe(true);

    const file = join(tempDir(), 'a-file');
    writeFileSync(file, '');
    for (const bad of [file, join(file, 'wal')]) {
      const refused = open({ dir: bad });
      await expect(refused).rejects.toMatchObject({ code: 'WAL_OPEN_FAILED' });
      await expect(refused).rejects.toThrow(
        /cannot create the write-ahead log directory.*ROUTEWATCH_WAL_DIR/,
      );
    }
  });

  // Node's own recursive mkdir never returns there: `routewatch start` hung.
  it.runIf(process.platform === 'linux')(
    'refuses a directory under /proc instead of hanging',
    async () => {
      await expect(open({ dir: '/proc/routewatch-nope/wal' })).rejects.toMatchObject({
        code: 'WAL_OPEN_FAILED',
      });
    },
  );

  it('is held by one log at a time, and takes over the lock of a process that is gone', async () => {
    const dir = tempDir();
    const wal = await open({ dir });
    await expect(open({ dir })).rejects.toMatchObject({ code: 'WAL_LOCKED' });
    await wal.close();

    writeFileSync(join(dir, 'LOCK'), `${process.ppid}\n`);
    const held = open({ dir });
    await expect(held).rejects.toBeInstanceOf(WalError);
    await expect(held).rejects.toThrow(/held by process \d+.*ROUTEWATCH_WAL_DIR/);

    // A pid no process has (above the kernel's pid_max).
    writeFileSync(join(dir, 'LOCK'), '99999999\n');
    const taken = await open({ dir });
    expect(readFileSync(join(dir, 'LOCK'), 'utf8').trim()).toBe(String(process.pid));
    await taken.close();
    expect(existsSync(join(dir, 'LOCK'))).toBe(false);
  });

  it.runIf(process.platform === 'linux')(
    'writes segments opened O_DSYNC, so that each append is on disk when its write returns',
    async () => {
      const dir = tempDir();
      const wal = await open({ dir });
      await wal.append([frame('durable')]);
      // The open file of the segment, among this process's descriptors, and its open flags.
      const segment = join(dir, segments(dir).at(-1)!);
      const fd = readdirSync('/proc/self/fd').find((n) => {
        try {
          return readlinkSync(`/proc/self/fd/${n}`) === segment;
        } catch {
          return false;
        }
      });
      expect(fd).toBeDefined();
      const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      expect(Number.parseInt(flags![1]!, 8) & constants.O_DSYNC).toBe(constants.O_DSYNC);
      await wal.close();
    },
  );

  it('refuses to start on a file named like a segment that is not one', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, `${'7'.padStart(20, '0')}.wal`), 'not a log segment at all');
    await expect(open({ dir })).rejects.toMatchObject({ code: 'WAL_UNKNOWN_FILE' });
    // The lock of the failed open is released.
    expect(existsSync(join(dir, 'LOCK'))).toBe(false);
  });

  it('keeps every acknowledged record of a process killed with SIGKILL mid-append', async () => {
    const dir = tempDir();
    const appender = spawn(process.execPath, [join(FIXTURES, 'wal-appender.mjs'), dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let acked = 0;
    let stderr = '';
    appender.stderr.on('data', (d: Buffer) => (stderr += d));
    const exited = new Promise<void>((resolve) => appender.on('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      appender.on('exit', () => reject(new Error(`the appender exited: ${stderr}`)));
      appender.stdout.on('data', (d: Buffer) => {
        const numbers = [...d.toString().matchAll(/acked (\d+)/g)].map((m) => Number(m[1]));
        acked = Math.max(acked, ...numbers);
        // Enough appends to have rotated segments a few times.
        if (acked >= 300) resolve();
      });
    });
    appender.kill('SIGKILL');
    await exited;

    const wal = await open({ dir, segmentBytes: 256 * 1024 });
    const records = wal.entries().length;
    // Every acknowledged append is there; at most the appends in flight after it too.
    expect(records).toBeGreaterThanOrEqual(acked);
    const rows = await rowsOf(wal);
    expect(rows.slice(0, acked * 50)).toEqual(
      Array.from({ length: acked }, (_, n) =>
        Array.from({ length: 50 }, (_, i) => `record-${n + 1}-row-${i}`),
      ).flat(),
    );
    await wal.close();
  });
});
