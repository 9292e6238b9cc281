import { readFileSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type * as Chdb from 'chdb';
import type { z } from 'zod';
import { StorageError, errorMessage, storageFailure } from './errors.js';
import { PRIVATE_DIRECTORY, makeDirectory } from './make-directory.js';
import {
  INSERT_SETTINGS,
  OUTPUT_SETTINGS,
  assertIdentifier,
  insertFormat,
  readOnlySettings,
  resultTooLarge,
} from './store.js';
import type { InsertOptions, QueryParams, ReadOnlyLimits, ReadOnlyResult, Store } from './store.js';
import { checkedReadOnlySql } from './read-only-sql.js';
import { parseReadOnlyResult, parseRows } from './rows.js';

type ChdbModule = typeof Chdb;
type ChdbSession = InstanceType<ChdbModule['Session']>;

/**
 * The embedded driver: the ClickHouse engine in-process through chDB, data in a local directory.
 * chDB binds one data directory per process, and a directory is held by one process at a time.
 */
export class EmbeddedStore implements Store {
  readonly driver = 'embedded' as const;
  readonly location: string;
  readonly #session: ChdbSession;
  readonly #chdb: ChdbModule;
  #closed = false;

  private constructor(chdb: ChdbModule, session: ChdbSession, location: string) {
    this.#chdb = chdb;
    this.#session = session;
    this.location = location;
  }

  static async open(dataDir: string): Promise<EmbeddedStore> {
    const location = resolve(dataDir);
    let chdb: ChdbModule;
    try {
      // Loaded lazily: the native library is large and server mode never needs it.
      chdb = await import('chdb');
    } catch (error) {
      throw new StorageError(
        'EMBEDDED_UNAVAILABLE',
        `the embedded ClickHouse (npm package "chdb") could not be loaded: ${errorMessage(error)}. ` +
          'Run `npm ci` on Linux (x64/arm64, glibc) or macOS, or set CLICKHOUSE_URL to use a ClickHouse server.',
        { cause: error },
      );
    }
    const held = (holder: number | undefined, cause?: unknown) =>
      new StorageError(
        'EMBEDDED_HELD',
        `the embedded ClickHouse data directory ${location} is held by another process` +
          `${holder === undefined ? '' : ` (PID ${holder})`}, and only one process can hold a ` +
          'data directory: stop that process (a running `routewatch start`?), ask it instead ' +
          '(ROUTEWATCH_URL / --url), or choose another data directory.',
        { cause },
      );
    // A process that has the directory's `status` file open holds it (the engine locks that
    // file): refused before the engine tries, which would print its own "Cannot lock file" line
    // on stderr ahead of this message.
    const holder = holdingProcess(location);
    if (holder !== undefined && hasOpen(holder, join(location, 'status'))) throw held(holder);
    // Otherwise asked only once the open failed: a `status` file left by a process that died may
    // name a PID another process has since taken, and the engine opens such a directory anyway.
    try {
      makeDirectory(location, PRIVATE_DIRECTORY);
      const session = new chdb.Session(location, {
        connectionArgs: Object.entries(OUTPUT_SETTINGS).map(([key, value]) => `--${key}=${value}`),
      });
      return new EmbeddedStore(chdb, session, location);
    } catch (error) {
      // The engine's lock refused it: its message says so on stderr ("Cannot lock file …/status.
      // Another server instance in same directory is already running"), rarely in the error.
      const holder = holdingProcess(location);
      if (holder !== undefined || /lock|already running/i.test(errorMessage(error)))
        throw held(holder, error);
      throw new StorageError(
        'EMBEDDED_OPEN_FAILED',
        `could not open the embedded ClickHouse data directory ${location}: ${errorMessage(error)}. ` +
          'Set ROUTEWATCH_DATA_DIR (`routewatch sql` and `demo`: --data-dir) to a directory this user can create and write (not a file).',
        { cause: error },
      );
    }
  }

  async exec(sql: string, params: QueryParams = {}): Promise<void> {
    await this.#run(sql, params);
  }

  async insertJsonEachRow(
    table: string,
    body: Uint8Array,
    options: InsertOptions = {},
  ): Promise<void> {
    if (body.byteLength === 0) return;
    this.#assertOpen();
    const settings: Record<string, string> = Object.fromEntries(
      Object.entries(INSERT_SETTINGS).map(([name, value]) => [name, String(value)]),
    );
    if (options.deduplicationToken)
      settings['insert_deduplication_token'] = options.deduplicationToken;
    try {
      await this.#session.insert({
        table: assertIdentifier(table),
        values: Buffer.from(body.buffer, body.byteOffset, body.byteLength),
        format: insertFormat(options),
        ...(options.columns ? { columns: options.columns.map(assertIdentifier) } : {}),
        settings,
      });
    } catch (error) {
      throw storageFailure('INSERT_FAILED', `insert into ${table} failed`, error);
    }
  }

  async query<T>(sql: string, params: QueryParams, row: z.ZodType<T>): Promise<T[]> {
    const text = await this.#run(sql, params);
    return parseRows(text, row);
  }

  /**
   * Runs on a connection of its own, opened for this query and closed after it: settings are
   * per connection, and `readonly = 1` cannot be undone on the connection it was set on. It also
   * keeps chDB's leftovers out of the store's own connection: after a failed query chDB hands
   * the failed query's partial output to the next query on the same connection. Opening one
   * costs well under a millisecond (same data directory, same engine).
   */
  async queryReadOnly(sql: string, limits: ReadOnlyLimits): Promise<ReadOnlyResult> {
    this.#assertOpen();
    const checked = await checkedReadOnlySql(this, sql);
    let session: ChdbSession;
    try {
      session = new this.#chdb.Session(this.location);
    } catch (error) {
      throw storageFailure('QUERY_FAILED', 'could not open a connection for the query', error);
    }
    try {
      const settings = { ...OUTPUT_SETTINGS, ...readOnlySettings(limits) };
      for (const [name, value] of Object.entries(settings)) {
        // Names and values come from code (numbers and words), never from the user.
        await session.queryAsync(`SET ${assertIdentifier(name)} = '${String(value)}'`);
      }
      const result = await session.queryAsync(checked, { format: 'JSONCompact' });
      const size = result.bytes().byteLength;
      if (size > limits.maxResultBytes) throw resultTooLarge(size, limits.maxResultBytes);
      return parseReadOnlyResult(result.text());
    } catch (error) {
      if (error instanceof StorageError) throw error;
      throw storageFailure('QUERY_FAILED', 'ClickHouse query failed', error);
    } finally {
      session.close();
    }
  }

  /** Checks that the engine answers (the server driver's ping has the same meaning). */
  async ping(): Promise<void> {
    await this.#run('SELECT 1', {});
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#session.close();
    // close() can return while background merges still write into the directory.
    await this.#chdb.drainPending();
  }

  async #run(sql: string, params: QueryParams): Promise<string> {
    this.#assertOpen();
    try {
      const result =
        Object.keys(params).length === 0
          ? await this.#session.queryAsync(sql, { format: 'JSONEachRow' })
          : await this.#session.queryBindAsync(sql, params, { format: 'JSONEachRow' });
      return result.text();
    } catch (error) {
      throw storageFailure('QUERY_FAILED', 'ClickHouse query failed', error);
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new StorageError('STORE_CLOSED', 'the embedded store is closed');
  }
}

/**
 * Whether process `pid` has `path` open, where the system says (Linux's /proc; false elsewhere,
 * or for another user's process).
 */
function hasOpen(pid: number, path: string): boolean {
  const fds = `/proc/${pid}/fd`;
  let entries: string[];
  let real: string;
  try {
    entries = readdirSync(fds);
    // The links name the file by its real path (a data directory reached through a symlink).
    real = realpathSync(path);
  } catch {
    return false;
  }
  return entries.some((fd) => {
    try {
      return readlinkSync(join(fds, fd)) === real;
    } catch {
      return false;
    }
  });
}

/**
 * The live process holding an embedded data directory, if any. The engine writes its PID to
 * `status` while it holds the directory and removes the file when it lets go; a file left by a
 * process that died names a PID that no longer runs.
 */
export function holdingProcess(dir: string): number | undefined {
  let status: string;
  try {
    status = readFileSync(join(dir, 'status'), 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(/^PID: (\d+)$/m.exec(status)?.[1]);
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as { code?: string }).code === 'EPERM' ? pid : undefined;
  }
}
