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
    /**
     * The route takes what exporters send (/v1/traces, /v1/outcomes): ROUTEWATCH_INGEST_TOKEN is
     * taken here as well as ROUTEWATCH_TOKEN, and nowhere else.
     */
    ingest?: boolean;
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

/** The exporters' token as the messages name it: theirs when there is one, else the one token. */
const exportersToken = (ingest: boolean) =>
  ingest ? '<ROUTEWATCH_INGEST_TOKEN>' : '<ROUTEWATCH_TOKEN>';

const refusalMessage = (ingest: boolean) =>
  'refused requests without the token (401); exporters send it with ' +
  `OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20${exportersToken(ingest)}`;

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
  ingestToken?: string,
): void {
  const refusals = new RefusalLog((summary) =>
    app.log.warn(summary, refusalMessage(ingestToken !== undefined)),
  );
  app.addHook('onClose', async () => refusals.close());
  app.addHook('onRequest', async (request) => {
    const path = request.url.split('?', 1)[0]!;
    if (OPEN_PATHS.has(path) || request.routeOptions.config?.public === true) return;
    const ingest = ingestToken !== undefined && request.routeOptions.config?.ingest === true;
    if (!hasToken(request, token) && !(ingest && hasToken(request, ingestToken))) {
      onRefused();
      refusals.refused(path, request.headers.authorization !== undefined);
      throw new HttpError(
        401,
        'UNAUTHENTICATED',
        // On an ingest route, with an exporters' token, that is the one to name: exporters
        // given the operators' token would hold what the second token keeps from them.
        `missing or wrong token: send Authorization: Bearer ${ingest ? `${exportersToken(true)} (or <ROUTEWATCH_TOKEN>)` : '<ROUTEWATCH_TOKEN>'}.`,
        { headers: { 'www-authenticate': 'Bearer realm="routewatch"' } },
      );
    }
  });
}

/** A Host header's name, without its port: `[::1]:4318` → `::1`, `localhost:4318` → `localhost`. */
export function hostName(host: string): string {
  const bracketed = /^\[([^\]]*)\](?::\d*)?$/.exec(host);
  if (bracketed) return bracketed[1]!.toLowerCase();
  const colons = host.split(':').length - 1;
  // One colon: name:port. More: a bare IPv6 address (a client that left out the brackets).
  return (colons === 1 ? host.slice(0, host.indexOf(':')) : host).toLowerCase();
}

/**
 * Without a token routewatch listens on loopback only (config.assertSafeExposure), and answers
 * only requests addressed to a loopback name (or to the names given): a web page elsewhere
 * could otherwise reach it through DNS rebinding (its own name made to resolve to 127.0.0.1,
 * the browser then sends it requests as same-origin, Host: its name) and read the data or run
 * SQL. A request without a Host header (HTTP/1.0) is no browser's, and is served. The probes
 * stay open: they say no more than up or ready.
 */
export function requireLocalHost(
  app: FastifyInstance,
  isLocal: (name: string) => boolean,
  allowed: readonly string[],
  onRefused: () => void = () => undefined,
): void {
  const names = new Set(allowed.map((name) => name.toLowerCase()));
  // Said in the log, as refusals for want of the token are: an exporter that reaches this
  // instance by another name (host.docker.internal, a proxy on this machine) loses its spans,
  // and OTLP exporters do not retry a 403.
  const refusals = new RateLimitedLog<{ refused: number; host: string; path: string }>((summary) =>
    app.log.warn(
      summary,
      'refused requests addressed to a name other than localhost, 127.0.0.1 or [::1] (403): ' +
        'without ROUTEWATCH_TOKEN routewatch answers only those (DNS rebinding); set ' +
        'ROUTEWATCH_TOKEN, or ROUTEWATCH_PUBLIC_URL to the address the clients use',
    ),
  );
  app.addHook('onClose', async () => refusals.close());
  app.addHook('onRequest', async (request) => {
    const host = request.headers.host;
    if (host === undefined || host === '') return;
    const name = hostName(host);
    if (isLocal(name) || name.endsWith('.localhost') || names.has(name)) return;
    const path = request.url.split('?', 1)[0]!;
    if (OPEN_PATHS.has(path)) return;
    onRefused();
    refusals.add((pending) => ({
      refused: (pending?.refused ?? 0) + 1,
      host: host.slice(0, 100),
      path: path.slice(0, 200),
    }));
    throw new HttpError(
      403,
      'PERMISSION_DENIED',
      `this routewatch runs without a token, so it answers only requests addressed to localhost, ` +
        `127.0.0.1 or [::1], not to ${JSON.stringify(host.slice(0, 100))} (a web page could ` +
        'otherwise reach it through DNS rebinding): address it so, set ROUTEWATCH_PUBLIC_URL to ' +
        'the address people open it at, or set ROUTEWATCH_TOKEN',
    );
  });
}
