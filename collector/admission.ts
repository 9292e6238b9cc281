/**
 * Admission control for ingest requests. A request is admitted before its body is read, by the
 * bytes it will bring and the time the work already queued should take; under overload it is
 * refused at once with a Retry-After, so that an exporter (10 s timeout by default) gets an
 * answer it can act on instead of a timeout, and the collector keeps storing at the rate the
 * store sustains. Bytes count from the first byte received until the answer is sent: bodies
 * being received, decoded and written alike. The wait counts the bytes received of bodies still
 * arriving too: a burst of exports sent at once finds the queue empty, and each of them, admitted
 * by that alone, would then wait behind all the others (review audit-A: 200 exporters at once,
 * one in ten unanswered within 10 s). Received, not announced: a body trickling in over a slow
 * link is no work for the decoding threads until it is here, and its announced length would
 * have an idle collector refuse everyone for as long as it takes (diff-review-10 #1). A body that
 * still waits too long for a thread is refused there (ingest-pool.ts, IngestQueueWaitError).
 */
export interface AdmissionOptions {
  /** ROUTEWATCH_MAX_INFLIGHT_BYTES */
  maxInflightBytes: number;
  /** ROUTEWATCH_MAX_QUEUE_WAIT */
  maxQueueWaitMs: number;
  /**
   * How long work admitted now would wait behind the work already queued and the `arrivingBytes`
   * received of admitted bodies still arriving.
   */
  queuedWorkMs: (arrivingBytes: number) => number;
}

export type Admit =
  { ok: true; ticket: AdmissionTicket } | { ok: false; reason: string; retryAfterSeconds: number };

export class AdmissionTicket {
  bytes = 0;
  /** Its body is still being received: `received` is counted in `arrivingBytes`. */
  arriving = true;
  received = 0;
  released = false;
}

export interface AdmissionStats {
  inflightBytes: number;
  inflightRequests: number;
  /** The bytes received so far of bodies still being received. */
  arrivingBytes: number;
  /** Requests refused before their body was read. */
  refused: number;
}

const retryAfter = (ms: number) => Math.min(60, Math.max(1, Math.ceil(ms / 1000)));

export class Admission {
  readonly stats: AdmissionStats = {
    inflightBytes: 0,
    inflightRequests: 0,
    arrivingBytes: 0,
    refused: 0,
  };
  readonly #options: AdmissionOptions;

  constructor(options: AdmissionOptions) {
    this.#options = options;
  }

  /** Admits a request announcing `bytes` (0 when its length is not known yet). */
  admit(bytes: number): Admit {
    const queuedMs = this.#options.queuedWorkMs(this.stats.arrivingBytes);
    if (queuedMs > this.#options.maxQueueWaitMs) {
      this.stats.refused++;
      return {
        ok: false,
        reason: `the collector has about ${Math.ceil(queuedMs / 1000)} s of spans queued or arriving`,
        retryAfterSeconds: retryAfter(queuedMs),
      };
    }
    if (!this.#fits(bytes)) {
      this.stats.refused++;
      return {
        ok: false,
        reason: `the collector is receiving ${this.stats.inflightBytes} bytes of requests already`,
        retryAfterSeconds: retryAfter(queuedMs || 1000),
      };
    }
    const ticket = new AdmissionTicket();
    this.stats.inflightRequests++;
    this.#add(ticket, bytes);
    return { ok: true, ticket };
  }

  /** Counts more bytes of an admitted request (a body without Content-Length); false if over. */
  grow(ticket: AdmissionTicket, bytes: number): boolean {
    if (ticket.released) return true;
    if (!this.#fits(bytes)) return false;
    this.#add(ticket, bytes);
    return true;
  }

  /** `bytes` more of an admitted request's body came in. */
  receiving(ticket: AdmissionTicket, bytes: number): void {
    if (!ticket.arriving || ticket.released) return;
    ticket.received += bytes;
    this.stats.arrivingBytes += bytes;
  }

  /** The admitted request's body is all received: it is queued work now, no longer arriving. */
  arrived(ticket: AdmissionTicket): void {
    if (!ticket.arriving || ticket.released) return;
    ticket.arriving = false;
    this.stats.arrivingBytes -= ticket.received;
  }

  release(ticket: AdmissionTicket): void {
    if (ticket.released) return;
    this.arrived(ticket);
    ticket.released = true;
    this.stats.inflightRequests--;
    this.stats.inflightBytes -= ticket.bytes;
  }

  #fits(bytes: number): boolean {
    // One request alone is always admitted (it is bounded by the body limit).
    return (
      this.stats.inflightBytes === 0 ||
      this.stats.inflightBytes + bytes <= this.#options.maxInflightBytes
    );
  }

  #add(ticket: AdmissionTicket, bytes: number): void {
    ticket.bytes += bytes;
    this.stats.inflightBytes += bytes;
  }
}
