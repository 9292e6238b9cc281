import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { configWith } from '../../server/config.js';
import { startRoutewatch } from '../../server/start.js';

// An upgrade from a version that made the data directory and the log 0755: said at start, with
// what to do, beside what the upgrade applied to the store.
const root = mkdtempSync(join(tmpdir(), 'routewatch-start-dirs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('routewatch start on directories an earlier version made', () => {
  it('warns that the data directory and the log can be read by others, and says what it migrated', async () => {
    const dataDir = join(root, 'data');
    mkdirSync(join(dataDir, 'wal'), { recursive: true });
    chmodSync(dataDir, 0o755);
    chmodSync(join(dataDir, 'wal'), 0o755);
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean))
          lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const running = await startRoutewatch(
      configWith({ ROUTEWATCH_PORT: '0', ROUTEWATCH_DATA_DIR: dataDir }),
      { logger: { level: 'info', stream } },
    );
    await running.close();
    const warned = lines.filter((l) => /can be read by other users/.test(String(l['msg'])));
    expect(warned.map((l) => l['dir'])).toEqual([dataDir, join(dataDir, 'wal')]);
    expect(String(warned[0]!['msg'])).toMatch(
      new RegExp(
        `^the data directory ${dataDir} can be read by other users of this machine \\(mode 755\\).*chmod -R go= ${dataDir}`,
      ),
    );
    const migrated = lines.find((l) =>
      /^applied \d+ migration\(s\) to the store$/.test(String(l['msg'])),
    );
    expect(migrated?.['migrations']).toEqual(expect.arrayContaining(['0038_delivery_retry_at']));
  });
});
