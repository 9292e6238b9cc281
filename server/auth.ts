import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from './http-error.js';
import { RateLimitedLog, SUMMARY_LOG_EVERY_MS } from './rate-limited-log.js';

/** Paths answered without a token: health probes, which say no more than up or ready. */
const OPEN_PATHS = new Set(['/healthz', '/readyz']);

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route answers the same to everyone and carries no data (the dashboard's page and its
     * scripts): served without a token. Read from the route the router matched, never the raw URL.
     */
    public?: boolean;
  }
}

const BEARER = /^Bearer +(\S+)\s*$/i;

/** Whether the request carries `Authorization: Bearer <token>`, compared in constant time. */
export function hasToken(request: FastifyRequest, token: string): boolean {
  const match = BEARER.exec(request.headers.authorization ?? '');
  if (!match) return false;
  const given = Buffer.from(match[1]!);
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** After the first refusal, a summary of the refusals since is logged at most this often. */
export const REFUSAL_LOG_EVERY_MS = SUMMARY_LOG_EVERY_MS;

const REFUSAL_MESSAGE =
  'refused requests without the token (401); exporters send it with ' +
  'OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20<ROUTEWATCH_TOKEN>';

/** What one log line says of the requests refused: how many, and the last one's path. */
export interface RefusalSummary {
  refused: number;
  path: string;
  hasAuthorization: boolean;
}

/**
 * The warnings of requests refused for want of the token, rate-limited (RateLimitedLog): an
 * exporter without the token keeps exporting, each batch refused.
 */
export class RefusalLog extends RateLimitedLog<RefusalSummary> {
  refused(path: string, hasAuthorization: boolean): void {
    this.add((pending) => ({ refused: (pending?.refused ?? 0) + 1, path, hasAuthorization }));
  }
}

/**
 * Requires the bearer token on every route but the health probes and the public ones. Refusals
 * are counted (`onRefused`: /metrics) and logged (RefusalLog: the first at once, then a summary a
 * minute at most, with how many): an exporter set up without the token otherwise loses every span,
 * and says so only in its own log, if at all.
 */
export function requireToken(
  app: FastifyInstance,
  token: string,
  onRefused: () => void = () => undefined,
): void {
  const refusals = new RefusalLog((summary) => app.log.warn(summary, REFUSAL_MESSAGE));
  app.addHook('onClose', async () => refusals.close());
  app.addHook('onRequest', async (request) => {
    const path = request.url.split('?', 1)[0]!;
    if (OPEN_PATHS.has(path) || request.routeOptions.config?.public === true) return;
    if (!hasToken(request, token)) {
      onRefused();
      refusals.refused(path, request.headers.authorization !== undefined);
      throw new HttpError(
        401,
        'UNAUTHENTICATED',
        'missing or wrong token: send Authorization: Bearer <ROUTEWATCH_TOKEN>.',
        { headers: { 'www-authenticate': 'Bearer realm="routewatch"' } },
      );
    }
  });
}
