import type { FastifyBaseLogger, FastifyPluginAsync } from 'fastify';
import type { Store } from '../storage/store.js';
import { badRequest, unavailable } from '../server/http-error.js';
import type { Admission } from './admission.js';
import { decodeBody, guardBodies } from './body-guard.js';
import type { BodyGuardOptions } from './body-guard.js';
import { acceptedWindow } from './normalize.js';
import { parseOutcomesRequest, writeOutcomes } from './outcomes.js';
import type { RefusedReport } from './outcomes.js';

/** `POST /v1/outcomes`: late outcomes of tasks, one report or `{ "outcomes": [...] }`. */
export interface OutcomesRoutesOptions {
  store: Store;
  admission: Admission;
  maxBodyBytes: number;
  bodyTimeoutMs: number;
  bodyIdleTimeoutMs: number;
  /** When the server began to close (body-guard.ts). */
  closing?: BodyGuardOptions['closing'];
  /** An observedAt older than this or further ahead than `maxAheadMs` is refused, as a span is. */
  maxAgeMs: number;
  maxAheadMs: number;
  /**
   * How long a write may take before the answer is a 503 (the write may still land):
   * ROUTEWATCH_MAX_QUEUE_WAIT, the bound a span's answer is held to.
   */
  writeTimeoutMs?: number;
}

/**
 * Outcomes are written to the store directly, not through the write-ahead log: a store that hangs
 * would hold the client for the HTTP client's 30 s, past most clients' own timeouts, which then
 * see a dropped request instead of a 503 to retry. After writeTimeoutMs (this by default) the
 * answer is that 503; the write may still land, and a retry of the same reports counts once.
 */
const OUTCOMES_WRITE_TIMEOUT_MS = 5_000;

/**
 * Writes answered 503 for their time that may still be running: once this many are, a new request
 * is refused at once rather than started, so a hung store does not gather ever more of them (each
 * holds its reports in memory, outside admission's count of bytes in flight). Requests already
 * writing when the store stopped answering each add one: admission bounds how many those are.
 */
const MAX_LINGERING_WRITES = 4;

class WriteTimeout extends Error {}

const USAGE =
  'Send {"taskId": "...", "outcome": "success|failure|escalated|abandoned|unknown"} or {"outcomes": [...]}.';

export const outcomesRoutes: FastifyPluginAsync<OutcomesRoutesOptions> = async (app, options) => {
  // Writes answered 503 for their time, still running.
  let lingering = 0;

  /**
   * `work`, or a WriteTimeout after `ms`. A write that outlives its answer is counted until it
   * settles, and logged if it then fails (its client, told 503, retries).
   */
  async function within<T>(work: Promise<T>, ms: number, log: FastifyBaseLogger): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    let answered = false;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        answered = true;
        lingering++;
        reject(new WriteTimeout(`no answer from the store in ${ms} ms`));
      }, ms);
    });
    work.then(
      () => {
        if (answered) lingering--;
      },
      (error: unknown) => {
        if (!answered) return;
        lingering--;
        log.error({ err: error }, 'a write of outcomes answered 503 for its time failed later');
      },
    );
    try {
      return await Promise.race([work, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  guardBodies(app, {
    admission: options.admission,
    maxBodyBytes: options.maxBodyBytes,
    bodyTimeoutMs: options.bodyTimeoutMs,
    bodyIdleTimeoutMs: options.bodyIdleTimeoutMs,
    ...(options.closing ? { closing: options.closing } : {}),
    contentTypes: ['application/json'],
  });

  app.post('/v1/outcomes', { config: { ingest: true } }, async (request, reply) => {
    const body = await decodeBody(request, request.body as Buffer, options.maxBodyBytes);
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch (error) {
      throw badRequest(`the body is not valid JSON: ${(error as Error).message}. ${USAGE}`);
    }
    const window = acceptedWindow(Date.now(), options.maxAgeMs, options.maxAheadMs);
    const parsed = parseOutcomesRequest(json, window);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw badRequest(
        `invalid outcome report: ${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}. ${USAGE}`,
      );
    }
    const timeoutMs = options.writeTimeoutMs ?? OUTCOMES_WRITE_TIMEOUT_MS;
    if (lingering >= MAX_LINGERING_WRITES) {
      throw unavailable(
        `the store has not answered ${lingering} earlier writes of outcomes: retry the same reports later (a retry counts once)`,
        5,
      );
    }
    try {
      await within(writeOutcomes(options.store, parsed.data), timeoutMs, request.log);
    } catch (error) {
      request.log.error({ err: error }, 'writing outcomes failed');
      throw unavailable(
        error instanceof WriteTimeout
          ? `the store did not answer within ${timeoutMs / 1000} s: retry the same reports later (a retry counts once, also if this write lands after all)`
          : 'the store is unavailable: retry the same reports later (a retry counts once)',
        5,
        error,
      );
    }
    const { data, refused } = parsed;
    if (refused.length === 0) return reply.code(202).send({ accepted: data.length });
    request.log.warn(
      { accepted: data.length, rejected: refused.length },
      'outcome reports dated outside the accepted window were left out of a batch',
    );
    return reply.code(202).send({
      accepted: data.length,
      rejected: refused.length,
      errorMessage: refusedMessage(refused, data.length),
    });
  });
};

/**
 * Says which reports of a batch were left out and why: the first few by their place, so a
 * backfill that reaches past retention sees what to drop without a message the size of its batch.
 */
function refusedMessage(refused: RefusedReport[], taken: number): string {
  const named = refused
    .slice(0, NAMED_REFUSALS)
    .map(({ index, message }) => `outcomes.${index}.observedAt: ${message}`);
  const more = refused.length - named.length;
  if (more > 0) named.push(`and ${more} more`);
  const total = taken + refused.length;
  return `${refused.length} of ${total} reports were not stored, the rest were: ${named.join('; ')}`;
}

const NAMED_REFUSALS = 3;
