import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from './http-error.js';

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

/** A refused request is logged at most this often: an exporter without the token retries forever. */
const REFUSAL_LOG_EVERY_MS = 60_000;

/**
 * Requires the bearer token on every route but the health probes and the public ones. Refusals
 * are counted (`onRefused`: /metrics) and logged (a warning a minute at most, with how many since
 * the last): an exporter set up without the token otherwise loses every span, and says so only in
 * its own log, if at all.
 */
export function requireToken(
  app: FastifyInstance,
  token: string,
  onRefused: () => void = () => undefined,
): void {
  let lastLogged = -Infinity;
  let unlogged = 0;
  app.addHook('onRequest', async (request) => {
    const path = request.url.split('?', 1)[0]!;
    if (OPEN_PATHS.has(path) || request.routeOptions.config?.public === true) return;
    if (!hasToken(request, token)) {
      onRefused();
      unlogged++;
      const now = performance.now();
      if (now - lastLogged >= REFUSAL_LOG_EVERY_MS) {
        request.log.warn(
          {
            path,
            refused: unlogged,
            hasAuthorization: request.headers.authorization !== undefined,
          },
          'refused requests without the token (401); exporters send it with ' +
            'OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20<ROUTEWATCH_TOKEN>',
        );
        lastLogged = now;
        unlogged = 0;
      }
      throw new HttpError(
        401,
        'UNAUTHENTICATED',
        'missing or wrong token: send Authorization: Bearer <ROUTEWATCH_TOKEN>',
        { headers: { 'www-authenticate': 'Bearer realm="routewatch"' } },
      );
    }
  });
}
