import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PRIVATE_DIRECTORY, makeDirectory } from '../../storage/make-directory.js';

const root = mkdtempSync(join(tmpdir(), 'routewatch-mkdir-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const modeOf = (path: string) => (statSync(path).mode & 0o777).toString(8);

describe('makeDirectory', () => {
  it('makes the parents it lacks and the directory itself private when asked', () => {
    const dir = join(root, 'a', 'b', 'data');
    makeDirectory(dir, PRIVATE_DIRECTORY);
    expect(modeOf(dir)).toBe('700');
    expect(statSync(join(root, 'a', 'b')).isDirectory()).toBe(true);
  });

  it('leaves a directory that is already there as it is', () => {
    const dir = join(root, 'shared');
    makeDirectory(dir);
    const before = modeOf(dir);
    makeDirectory(dir, PRIVATE_DIRECTORY);
    expect(modeOf(dir)).toBe(before);
  });
});
