import { errorMessage } from './errors.js';
import { refreshRollups } from './rollups.js';
import type { RefreshOptions, RefreshResult } from './rollups.js';
import type { Store } from './store.js';

/** Where the refresher reports: the app's pino logger, or nothing. */
export interface RefresherLog {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface RollupRefresherOptions {
  /** Time from the end of one refresh to the start of the next (ROUTEWATCH_ROLLUP_INTERVAL). */
  intervalMs: number;
  refresh?: RefreshOptions;
  log?: RefresherLog;
}

export interface RollupRefresherStats {
  refreshes: number;
  failures: number;
  last: RefreshResult | undefined;
}

/**
 * Runs {@link refreshRollups} now and then every `intervalMs`, one at a time. The views are exact
 * without it; it keeps them fast by keeping the set of tasks changed since the last refresh small.
 * A failed refresh is logged and tried again at the next interval: it leaves the rollups as they
 * were, and the views still answer from task_events.
 */
export class RollupRefresher {
  readonly #store: Store;
  readonly #options: RollupRefresherOptions;
  #timer: NodeJS.Timeout | undefined;
  /** Refreshes run one after the other: each waits for this, the end of the one before. */
  #chain: Promise<void> = Promise.resolve();
  #stopping: AbortController | undefined;
  readonly stats: RollupRefresherStats = { refreshes: 0, failures: 0, last: undefined };

  constructor(store: Store, options: RollupRefresherOptions) {
    this.#store = store;
    this.#options = options;
  }

  /**
   * Starts the first refresh at once (on an upgraded store it builds the rollups), then periodic
   * ones. Again after stop(), it starts again.
   */
  start(): void {
    if (this.#stopping && !this.#stopping.signal.aborted) return;
    this.#stopping = new AbortController();
    this.#schedule(0);
  }

  /** Refreshes now, after the refresh in progress if there is one; also while stopped. */
  refreshNow(): Promise<RefreshResult> {
    return this.#refresh(undefined);
  }

  #refresh(signal: AbortSignal | undefined): Promise<RefreshResult> {
    const run = this.#chain.then(() =>
      refreshRollups(this.#store, { ...this.#options.refresh, ...(signal ? { signal } : {}) }),
    );
    this.#chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run.then(
      (result) => {
        this.stats.refreshes++;
        this.stats.last = result;
        return result;
      },
      (error: unknown) => {
        this.stats.failures++;
        throw error;
      },
    );
  }

  /** Stops the timer and waits for the refresh in progress, which stops between its statements. */
  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#stopping?.abort();
    await this.#chain;
  }

  #schedule(delayMs: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#tick();
    }, delayMs);
    // A pending refresh never keeps the process alive.
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    const log = this.#options.log;
    const signal = this.#stopping?.signal;
    if (!signal || signal.aborted) return;
    try {
      const result = await this.#refresh(signal);
      // Routine refreshes every few seconds are debug; one that builds the rollups (after an
      // upgrade) or takes long is worth a line.
      if (result.durationMs > 5_000) log?.info({ rollups: result }, 'rollups refreshed');
      else if (result.tasks > 0) log?.debug({ rollups: result }, 'rollups refreshed');
    } catch (error) {
      if (signal.aborted) return;
      log?.error({ err: error, message: errorMessage(error) }, 'rollup refresh failed');
    }
    if (!signal.aborted) this.#schedule(this.#options.intervalMs);
  }
}
