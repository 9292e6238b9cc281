import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The write-ahead log of a stopped instance's data directory: its own `wal`, else
 * ROUTEWATCH_WAL_DIR when it has none there (a log kept on a disk of its own; the variable may be
 * set for another, running, instance, so the directory's own log comes first).
 */
export function logOfDataDir(dataDir: string): string {
  const own = join(dataDir, 'wal');
  return existsSync(own) ? own : process.env['ROUTEWATCH_WAL_DIR'] || own;
}

/**
 * What the log still holds that the store does not have, as a warning line for stderr, or
 * undefined when it holds nothing, or when a running routewatch holds the log (its own backlog,
 * which it is storing). A routewatch killed (OOM, kill -9) before storing every acknowledged
 * batch leaves them there; `routewatch start` stores them first. `leavesOut` says what the
 * missing spans mean to the command that asks.
 */
export async function unstoredLogWarning(
  walDir: string,
  leavesOut: string,
): Promise<string | undefined> {
  const { logHolder, unstoredInLog } = await import('../collector/wal.js');
  if (logHolder(walDir) !== undefined) return undefined;
  const left = await unstoredInLog(walDir).catch(() => ({ records: 0, spans: 0 }));
  if (left.records === 0) return undefined;
  return (
    `warning: the write-ahead log (${walDir}) still holds ${left.spans} acknowledged span${left.spans === 1 ? '' : 's'} ` +
    `in ${left.records} batch${left.records === 1 ? '' : 'es'} that the store does not have yet (routewatch stopped ` +
    `before storing them): ${leavesOut}. Start routewatch on this directory once: it stores them first.\n`
  );
}
