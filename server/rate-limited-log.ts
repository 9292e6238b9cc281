/** After the first event, a summary of the events since is logged at most this often. */
export const SUMMARY_LOG_EVERY_MS = 60_000;

/**
 * A log line for events that come in bursts or for ever (refused requests, an exporter stuck
 * sending bad batches): the first event is logged at once; the ones after it wait for one summary
 * a minute after the line before, logged by a timer so that a burst that then stops is still
 * told. A minute without events after a line makes the next event a first one again. One line
 * per event would flood the log exactly when it is read.
 *
 * `add` folds an event into the summary not logged yet (undefined when there is none).
 */
export class RateLimitedLog<Summary> {
  private lastLoggedAt = -Infinity;
  private pending: Summary | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: (summary: Summary) => void,
    private readonly everyMs = SUMMARY_LOG_EVERY_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  add(fold: (pending: Summary | undefined) => Summary): void {
    this.pending = fold(this.pending);
    if (this.timer !== undefined) return;
    const wait = this.lastLoggedAt + this.everyMs - this.now();
    if (wait <= 0) {
      this.flush();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, wait);
    // A summary still due never keeps the process alive: close() logs it.
    this.timer.unref();
  }

  /** Logs the events not told yet, if any, and stops the timer. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flush();
  }

  private flush(): void {
    if (this.pending === undefined) return;
    this.log(this.pending);
    this.pending = undefined;
    this.lastLoggedAt = this.now();
  }
}

/** What one line says of requests answered alike: how many, how many for each reason, the last. */
export interface ReasonSummary {
  requests: number;
  byReason: Record<string, number>;
  /** The last one's own message: what a client was told. */
  lastMessage: string;
}

/** A RateLimitedLog of requests counted by reason (a short label: `write-ahead log full`). */
export class ReasonCountLog extends RateLimitedLog<ReasonSummary> {
  count(reason: string, message: string): void {
    this.add((pending) => {
      const byReason = pending?.byReason ?? {};
      byReason[reason] = (byReason[reason] ?? 0) + 1;
      return { requests: (pending?.requests ?? 0) + 1, byReason, lastMessage: message };
    });
  }
}
