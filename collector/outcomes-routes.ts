import type { FastifyPluginAsync } from 'fastify';
import type { Store } from '../storage/store.js';
import { badRequest, unavailable } from '../server/http-error.js';
import type { Admission } from './admission.js';
import { decodeBody, guardBodies } from './body-guard.js';
import type { BodyGuardOptions } from './body-guard.js';
import { acceptedWindow } from './normalize.js';
import { parseOutcomesRequest, writeOutcomes } from './outcomes.js';

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
}

const USAGE =
  'Send {"taskId": "...", "outcome": "success|failure|escalated|abandoned|unknown"} or {"outcomes": [...]}.';

export const outcomesRoutes: FastifyPluginAsync<OutcomesRoutesOptions> = async (app, options) => {
  guardBodies(app, {
    admission: options.admission,
    maxBodyBytes: options.maxBodyBytes,
    bodyTimeoutMs: options.bodyTimeoutMs,
    bodyIdleTimeoutMs: options.bodyIdleTimeoutMs,
    ...(options.closing ? { closing: options.closing } : {}),
    contentTypes: ['application/json'],
  });

  app.post('/v1/outcomes', async (request, reply) => {
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
    try {
      await writeOutcomes(options.store, parsed.data);
    } catch (error) {
      request.log.error({ err: error }, 'writing outcomes failed');
      throw unavailable(
        'the store is unavailable: retry the same reports later (a retry counts once)',
        5,
        error,
      );
    }
    return reply.code(202).send({ accepted: parsed.data.length });
  });
};
