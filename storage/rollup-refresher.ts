import { OutageLog } from './outage-log.js';
import type { JobLog } from './outage-log.js';
import { refreshRollups, repairRollups } from './rollups.js';
import type { RefreshOptions, RefreshResult, RepairOptions } from './rollups.js';
import type { Store } from './store.js';

/** Where the refresher reports: the app's pino logger, or nothing. */
export interface RefresherLog extends JobLog {
  debug(fields: object, message: string): void;
}

export interface RollupRefresherOptions {
  /** Time from the end of one refresh to the start of the next (ROUTEWATCH_ROLLUP_INTERVAL). */
  intervalMs: number;
  refresh?: RefreshOptions;
  /**
   * How often the periodic refreshes are followed by a repair of rows seen late
   * (repairRollups): 5 min by default; 0, never.
   */
  repairEveryMs?: number;
  repair?: Omit<RepairOptions, 'signal'>;
  log?: RefresherLog;
}

export interface RollupRefresherStats {
  refreshes: number;
  failures: number;
  last: RefreshResult | undefined;
  /** Repairs run, and the tasks they found seen late (their rows stamped again). */
  repairs: number;
  repairedTasks: number;
  repairFailures: number;
}

const DEFAULT_REPAIR_EVERY_MS = 5 * 60_000;

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
  readonly stats: RollupRefresherStats = {
    refreshes: 0,
    failures: 0,
    last: undefined,
    repairs: 0,
    repairedTasks: 0,
    repairFailures: 0,
  };
  /** When the last repair ran (performance.now()); none yet: the first waits a whole period. */
  #repairedAt = performance.now();

  /** The periodic refreshes' failures, and the repairs', an outage of the store said once. */
  readonly #failures: OutageLog;
  readonly #repairFailures: OutageLog;

  constructor(store: Store, options: RollupRefresherOptions) {
    this.#store = store;
    this.#options = options;
    this.#failures = new OutageLog(
      options.log,
      'rollup refresh',
      'nothing is lost: the first refresh once it answers takes in what changed, and the views compute what the rollups lack until then',
    );
    this.#repairFailures = new OutageLog(
      options.log,
      'rollup repair',
      'it runs again at its next turn once the store answers',
    );
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

  /** Repairs now, after the refresh in progress if there is one: the tasks it stamped again. */
  repairNow(): Promise<number> {
    return this.#repair(undefined);
  }

  #repair(signal: AbortSignal | undefined): Promise<number> {
    // It looks back at least over a whole period between repairs and two refreshes, so a long
    // ROUTEWATCH_ROLLUP_INTERVAL does not leave a gap behind it.
    const every = this.#options.repairEveryMs ?? DEFAULT_REPAIR_EVERY_MS;
    const horizonMs = Math.max(
      this.#options.repair?.horizonMs ?? 3_600_000,
      every + 2 * this.#options.intervalMs,
    );
    const run = this.#chain.then(() =>
      repairRollups(this.#store, {
        ...this.#options.repair,
        horizonMs,
        ...(signal ? { signal } : {}),
      }),
    );
    this.#chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run.then((result) => {
      this.stats.repairs++;
      this.stats.repairedTasks += result.tasks;
      return result.tasks;
    });
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
      this.#failures.succeeded();
    } catch (error) {
      if (signal.aborted) return;
      this.#failures.failed(error, {}, 'rollup refresh failed');
    }
    const every = this.#options.repairEveryMs ?? DEFAULT_REPAIR_EVERY_MS;
    if (
      !signal.aborted &&
      !this.#failures.storeDown &&
      every > 0 &&
      performance.now() - this.#repairedAt >= every
    ) {
      this.#repairedAt = performance.now();
      try {
        const repaired = await this.#repair(signal);
        this.#repairFailures.succeeded();
        if (repaired > 0) {
          log?.info(
            { tasks: repaired },
            'rollups repaired: tasks whose rows were seen after the refresh that passed their stamp (replication lag, a clock stepped back) are read from their events again',
          );
        }
      } catch (error) {
        if (signal.aborted) return;
        this.stats.repairFailures++;
        this.#repairFailures.failed(error, {}, 'rollup repair failed');
      }
    }
    if (!signal.aborted) this.#schedule(this.#options.intervalMs);
  }
}
