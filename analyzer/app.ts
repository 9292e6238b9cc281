import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Store } from '../storage/store.js';
import { buildReport } from './report.js';

const DURATION = /^(\d+)(m|h|d)$/;
const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Parses `15m`, `24h`, `7d` into milliseconds. */
export function parseDuration(text: string): number {
  const match = DURATION.exec(text);
  if (!match)
    throw new Error(
      `invalid duration ${JSON.stringify(text)}: use a number followed by m, h or d (e.g. 24h)`,
    );
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

const reportQuery = z
  .object({
    from: z.iso.datetime({ offset: true }).optional(),
    to: z.iso.datetime({ offset: true }).optional(),
    window: z.string().regex(DURATION, 'use a number followed by m, h or d, e.g. 24h').optional(),
  })
  .strict();

export function registerAnalyzerRoutes(
  app: FastifyInstance,
  options: { store: Store; now?: () => Date },
): void {
  const now = options.now ?? (() => new Date());
  app.get('/api/v1/report', async (request, reply) => {
    const parsed = reportQuery.safeParse(request.query);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return reply.code(400).send({
        code: 'BAD_QUERY',
        message:
          `invalid report query: ${issue?.path.join('.') || 'query'}: ${issue?.message ?? 'invalid'}. ` +
          'Use ?window=24h or ?from=<ISO time>&to=<ISO time>.',
      });
    }
    const to = parsed.data.to ? new Date(parsed.data.to) : now();
    const from = parsed.data.from
      ? new Date(parsed.data.from)
      : new Date(to.getTime() - parseDuration(parsed.data.window ?? '24h'));
    if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) {
      return reply
        .code(400)
        .send({ code: 'BAD_QUERY', message: 'the window reaches outside representable time' });
    }
    if (from >= to) {
      return reply.code(400).send({ code: 'BAD_QUERY', message: '`from` must be before `to`' });
    }
    return buildReport(options.store, { from, to }, now());
  });
}
