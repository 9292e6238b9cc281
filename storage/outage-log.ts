import { errorMessage, isStoreUnreachable } from './errors.js';

/** The log a background job writes to: the app's pino logger for its module. */
export interface JobLog {
  debug?(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/**
 * How a job that runs every few seconds against the store (the rollup refresh, the alert
 * evaluation, the notifier's read of its queue) reports failing, without repeating an outage
 * at every turn: the first failure because the store does not answer is one warning that says
 * what waits for it, the ones after it are debug lines, and the first success after them says
 * the store answers again. Any other failure is an error each time, with its cause: a server
 * that answers with an error (out of memory, a statement over its time limit, too many parts,
 * the client's own request timeout) is no outage, and must not go quiet after one line.
 */
export class OutageLog {
  readonly #log: JobLog | undefined;
  readonly #job: string;
  readonly #meanwhile: string;
  readonly #describe: ((error: unknown) => string) | undefined;
  #down = false;

  /**
   * `job` names what is skipped ("rollup refresh"); `meanwhile` says what that means for the
   * user while the store is away. With `describe`, an error is logged as the text it gives (the
   * notifier's, which leaves URLs out), never as the error object.
   */
  constructor(
    log: JobLog | undefined,
    job: string,
    meanwhile: string,
    describe?: (error: unknown) => string,
  ) {
    this.#log = log;
    this.#job = job;
    this.#meanwhile = meanwhile;
    this.#describe = describe;
  }

  /** Whether the last failure was the store not answering, with no success since. */
  get storeDown(): boolean {
    return this.#down;
  }

  /** A failed turn: `fields` and `message` are what an error other than an outage logs. */
  failed(error: unknown, fields: object, message: string): void {
    const describe = this.#describe;
    if (!isStoreUnreachable(error)) {
      this.#log?.error(
        describe
          ? { ...fields, err: describe(error) }
          : { ...fields, err: error, message: errorMessage(error) },
        message,
      );
      return;
    }
    const reason = describe ? describe(error) : errorMessage(error);
    if (this.#down) {
      this.#log?.debug?.({ ...fields, reason }, `${this.#job}: the store still does not answer`);
      return;
    }
    this.#down = true;
    this.#log?.warn(
      { ...fields, reason },
      `${this.#job} skipped: the store does not answer (${reason}); ${this.#meanwhile}. Said once: the next line is when it answers again`,
    );
  }

  /** A turn that reached the store. */
  succeeded(fields: object = {}): void {
    if (!this.#down) return;
    this.#down = false;
    this.#log?.info(fields, `${this.#job}: the store answers again`);
  }
}
