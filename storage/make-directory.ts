import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * `mkdir -p`: the directory and any parents it lacks. Node's own `{ recursive: true }` never returns
 * where mkdir answers ENOENT under a parent that exists (Node 20 under `/proc`, a start-up hang);
 * this one walks up once and then fails with the system's error. `mode` is the directory's own
 * (the umask still applies), parents get the default; a directory already there is left as it is.
 */
export function makeDirectory(path: string, mode?: number): void {
  const dir = resolve(path);
  try {
    mkdirSync(dir, mode === undefined ? undefined : { mode });
    return;
  } catch (error) {
    if (isDirectoryNow(dir, error)) return;
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(dir) === dir) throw error;
  }
  makeDirectory(dirname(dir));
  try {
    mkdirSync(dir, mode === undefined ? undefined : { mode });
  } catch (error) {
    if (!isDirectoryNow(dir, error)) throw error;
  }
}

/** A directory only this user may read: span data, the log, the engine's files. */
export const PRIVATE_DIRECTORY = 0o700;
/** A file only this user may read or write (the log's segments, its checkpoint). */
export const PRIVATE_FILE = 0o600;

/** Whether mkdir failed only because the directory exists (made meanwhile, or there all along). */
function isDirectoryNow(dir: string, error: unknown): boolean {
  if ((error as NodeJS.ErrnoException).code !== 'EEXIST') return false;
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}
