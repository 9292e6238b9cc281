import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * `mkdir -p`: the directory and any parents it lacks. Node's own `{ recursive: true }` never returns
 * where mkdir answers ENOENT under a parent that exists (Node 20 under `/proc`, a start-up hang);
 * this one walks up once and then fails with the system's error.
 */
export function makeDirectory(path: string): void {
  const dir = resolve(path);
  try {
    mkdirSync(dir);
    return;
  } catch (error) {
    if (isDirectoryNow(dir, error)) return;
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(dir) === dir) throw error;
  }
  makeDirectory(dirname(dir));
  try {
    mkdirSync(dir);
  } catch (error) {
    if (!isDirectoryNow(dir, error)) throw error;
  }
}

/** Whether mkdir failed only because the directory exists (made meanwhile, or there all along). */
function isDirectoryNow(dir: string, error: unknown): boolean {
  if ((error as NodeJS.ErrnoException).code !== 'EEXIST') return false;
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}
