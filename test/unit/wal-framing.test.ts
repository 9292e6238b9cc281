import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  WalError,
  crc32Portable,
  decodeFrames,
  decodeRecord,
  encodeRecord,
  recordKeys,
} from '../../collector/wal.js';

const record = (lines: string[], keys = lines.map((_, i) => `key-${i}`)) =>
  encodeRecord({ format: 'JSONEachRow', writtenAtMs: 1_754_000_000_123, keys, lines });

describe('WAL record framing', () => {
  it('reads back what it wrote: format, time, keys, and a body of whole rows', () => {
    const lines = ['{"a":1}', '{"name":"é ✓ 𝄞"}', '{}'];
    const frame = record(lines, ['k1', 'k-é', '']);
    const { frames, end, problem } = decodeFrames(frame, 0);
    expect(problem).toBeUndefined();
    expect(end).toBe(frame.length);
    expect(frames).toHaveLength(1);
    const decoded = decodeRecord(frames[0]!.payload);
    expect(decoded).toMatchObject({
      format: 'JSONEachRow',
      writtenAtMs: 1_754_000_000_123,
      rows: 3,
    });
    expect(decoded.body.toString('utf8')).toBe(lines.map((l) => `${l}\n`).join(''));
    // Any run of whole rows is a valid body: row 1 alone.
    expect(decoded.body.subarray(decoded.rowEnds[0], decoded.rowEnds[1]).toString()).toBe(
      '{"name":"é ✓ 𝄞"}\n',
    );
    expect(recordKeys(decoded)).toEqual(['k1', 'k-é', '']);
  });

  it('keeps byte rows as they are (a binary format brings its own framing)', () => {
    const frame = encodeRecord({
      format: 'RowBinary',
      writtenAtMs: 0,
      keys: ['a', 'b'],
      lines: [Uint8Array.of(1, 2, 3), Uint8Array.of(10)],
    });
    const decoded = decodeRecord(decodeFrames(frame, 0).frames[0]!.payload);
    expect([...decoded.body]).toEqual([1, 2, 3, 10]);
    expect([...decoded.rowEnds]).toEqual([3, 4]);
  });

  it('reads consecutive frames from an offset', () => {
    const frames = [record(['{"n":1}']), record(['{"n":2}', '{"n":3}']), record(['{"n":4}'])];
    const buffer = Buffer.concat([Buffer.from('HEADER!!'), ...frames]);
    const decoded = decodeFrames(buffer, 8);
    expect(decoded.problem).toBeUndefined();
    expect(decoded.frames.map((f) => decodeRecord(f.payload).rows)).toEqual([1, 2, 1]);
    expect(decoded.frames[1]!.start).toBe(8 + frames[0]!.length);
  });

  it('detects a torn last record at every cut and keeps the records before it', () => {
    const whole = record(['{"n":1}']);
    const torn = record(['{"n":2}', '{"n":3}']);
    for (let cut = 1; cut < torn.length; cut++) {
      const buffer = Buffer.concat([whole, torn.subarray(0, cut)]);
      const decoded = decodeFrames(buffer, 0);
      expect(decoded.frames).toHaveLength(1);
      expect(decoded.end).toBe(whole.length);
      expect(decoded.problem).toBe('torn');
    }
  });

  it('detects a flipped bit anywhere in a payload as a checksum mismatch', () => {
    const frame = record(['{"n":1}', '{"n":2}']);
    for (let at = 8; at < frame.length; at++) {
      const damaged = Buffer.from(frame);
      damaged[at]! ^= 0x10;
      const decoded = decodeFrames(damaged, 0);
      expect(decoded.frames).toHaveLength(0);
      expect(decoded.problem).toBe('checksum');
    }
  });

  it('reads zeroes after the last record (a file extended by a crash) as no record', () => {
    const frame = record(['{"n":1}']);
    const decoded = decodeFrames(Buffer.concat([frame, Buffer.alloc(64)]), 0);
    expect(decoded.frames).toHaveLength(1);
    expect(decoded.end).toBe(frame.length);
    expect(decoded.problem).toBe('bad-length');
  });

  it('does not read past a bad record, even when whole records follow it', () => {
    const damaged = record(['{"n":1}']);
    damaged[damaged.length - 1]! ^= 1;
    const decoded = decodeFrames(Buffer.concat([damaged, record(['{"n":2}'])]), 0);
    expect(decoded.frames).toHaveLength(0);
    expect(decoded.problem).toBe('checksum');
  });

  it('refuses a record of a newer version with a message saying what to do', () => {
    const frame = record(['{}']);
    const payload = Buffer.from(frame.subarray(8));
    payload[0] = 2;
    expect(() => decodeRecord(payload)).toThrow(WalError);
    expect(() => decodeRecord(payload)).toThrow(/version 2.*run the version that wrote it/);
  });

  it('refuses keys and rows that do not pair up', () => {
    expect(() =>
      encodeRecord({ format: 'JSONEachRow', writtenAtMs: 0, keys: ['a'], lines: [] }),
    ).toThrow(/1 keys for 0 rows/);
  });
});

describe('crc32', () => {
  it('computes the same CRC-32 as zlib in its portable form', () => {
    for (const text of ['', 'a', '123456789', 'é ✓ 𝄞'.repeat(100)]) {
      const bytes = Buffer.from(text);
      expect(crc32Portable(bytes)).toBe(zlibCrc32(bytes) >>> 0);
    }
    expect(crc32Portable(Buffer.from('123456789'))).toBe(0xcbf43926);
  });
});
