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

/** After the first refusal, a summary of the refusals since is logged at most this often. */
export const REFUSAL_LOG_EVERY_MS = 60_000;

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
 * The warnings of refused requests: the first refusal is logged at once; the ones after it, a
 * burst from an exporter or its retries, wait for one summary a minute after the line before,
 * logged by a timer so that a burst that then stops is still told. A minute without refusals after
 * a line makes the next refusal a first one again. An exporter without the token keeps exporting,
 * each batch refused, so one line per refusal would flood the log.
 */
export class RefusalLog {
  private lastLoggedAt = -Infinity;
  private pending: RefusalSummary | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly warn: (summary: RefusalSummary) => void,
    private readonly everyMs = REFUSAL_LOG_EVERY_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  refused(path: string, hasAuthorization: boolean): void {
    this.pending = { refused: (this.pending?.refused ?? 0) + 1, path, hasAuthorization };
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

  /** Logs the refusals not told yet, if any, and stops the timer. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flush();
  }

  private flush(): void {
    if (this.pending === undefined) return;
    this.warn(this.pending);
    this.pending = undefined;
    this.lastLoggedAt = this.now();
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
