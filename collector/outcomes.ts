import { createHash } from 'node:crypto';
import { MAX_SCORES, OUTCOMES, SCORE_NAME_PATTERN } from '@routewatch/instrumentation/semconv';
import { z } from 'zod';
import type { Store } from '../storage/store.js';
import { MAX_COST_USD, canonicalTaskId, clickHouseTime, wellFormed } from './normalize.js';
import type { TimeWindow } from './normalize.js';

/**
 * Late outcomes: what the application learns after the reply (a reask, a human correction, a
 * validation result). The latest outcome of a task wins in v_tasks; cleanup costs add up.
 *
 * A report's identity is its report id; its place in time is its observedAt, or, without one, the
 * time it was first received. Both are fixed by the first copy: `late_outcomes` keeps the copy of
 * a report observed first (sql/migrations/0008), so a retry, stored with its own later receive
 * time, changes nothing. Reports of equal time are ordered by report id (sql/views/v_tasks.sql).
 */
const SCORE_NAME_RULE = 'a score name is 1-64 characters of [a-z0-9_.-]';

/**
 * Named quality scores in 0..1, under the names the instrumentation accepts (`setScore`). zod
 * skips a `__proto__` key (JSON.parse makes it an own key; the name fits the pattern), so it is
 * refused here before the record is read: a score is never dropped in silence.
 */
const scores = z.preprocess(
  (named, ctx) => {
    if (typeof named === 'object' && named !== null && Object.hasOwn(named, '__proto__')) {
      ctx.addIssue({ code: 'custom', message: SCORE_NAME_RULE, path: ['__proto__'], input: named });
    }
    return named;
  },
  z
    .record(z.string().regex(SCORE_NAME_PATTERN), z.number().min(0).max(1), {
      error: (issue) => (issue.code === 'invalid_key' ? SCORE_NAME_RULE : undefined),
    })
    .refine((named) => Object.keys(named).length <= MAX_SCORES, {
      message: `at most ${MAX_SCORES} scores per report`,
    }),
);

export const outcomeReport = z
  .object({
    taskId: z.string().min(1).max(256),
    outcome: z.enum(OUTCOMES),
    reason: z.string().max(128).optional(),
    reask: z.boolean().optional(),
    cleanupCostUsd: z.number().finite().nonnegative().max(MAX_COST_USD).optional(),
    /** Named quality scores in 0..1 (`{ "groundedness": 0.8 }`), stored with the report. */
    scores: scores.optional(),
    /** When the outcome was observed; default: when it was first received (retries keep that). */
    observedAt: z.iso.datetime({ offset: true }).optional(),
    source: z.string().max(64).optional(),
    /**
     * Identifies the report: sending it again changes nothing. Default: the report's content, so
     * a retry counts once and two identical reports without an id count once too.
     */
    reportId: z.string().min(1).max(128).optional(),
  })
  .strict();
export type OutcomeReport = z.output<typeof outcomeReport>;

const outcomesBatch = z.object({ outcomes: z.array(outcomeReport).min(1).max(10_000) }).strict();

/** A report of a batch left out for its observedAt, by its place in the batch. */
export interface RefusedReport {
  index: number;
  message: string;
}

export type OutcomesParse =
  | { success: true; data: OutcomeReport[]; refused: RefusedReport[] }
  | { success: false; error: z.ZodError };

/**
 * One report, or `{ "outcomes": [...] }`; the shape is chosen first so errors name the field.
 * With a `window`, an observedAt outside it is refused too (see observedAtIssue): alone, the
 * request is refused; in a batch, that report is left out and named in `refused` while the others
 * are taken (as an OTLP partial success leaves out a span out of its window), unless none is left.
 * A batch of the wrong shape is refused whole: a sender's bug, not one report's date.
 */
export function parseOutcomesRequest(json: unknown, window?: TimeWindow): OutcomesParse {
  if (typeof json === 'object' && json !== null && 'outcomes' in json) {
    const batch = outcomesBatch.safeParse(json);
    if (!batch.success) return { success: false, error: batch.error };
    return withinWindow(batch.data.outcomes, window, (i) => ['outcomes', i, 'observedAt']);
  }
  const one = outcomeReport.safeParse(json);
  if (!one.success) return { success: false, error: one.error };
  return withinWindow([one.data], window, () => ['observedAt']);
}

function withinWindow(
  reports: OutcomeReport[],
  window: TimeWindow | undefined,
  pathOf: (index: number) => (string | number)[],
): OutcomesParse {
  if (window === undefined) return { success: true, data: reports, refused: [] };
  const data: OutcomeReport[] = [];
  const refused: RefusedReport[] = [];
  for (const [index, report] of reports.entries()) {
    const message = observedAtIssue(report.observedAt, window);
    if (message === undefined) data.push(report);
    else refused.push({ index, message });
  }
  const first = refused[0];
  if (data.length === 0 && first !== undefined) {
    const path = pathOf(first.index);
    const { observedAt } = reports[first.index] ?? {};
    return {
      success: false,
      error: new z.ZodError([{ code: 'custom', path, message: first.message, input: observedAt }]),
    };
  }
  return { success: true, data, refused };
}

/**
 * Why an observedAt is refused, if it is: the window a span's start must be in (retention back,
 * ROUTEWATCH_MAX_CLOCK_SKEW ahead; normalize.ts). The latest observedAt wins a task's outcome
 * (v_tasks), so a report dated ahead by a wrong clock or a typo would win it for ever, no later
 * correction could, and one dated before retention (or 1970) is of a task no longer reported.
 */
export function observedAtIssue(iso: string | undefined, window: TimeWindow): string | undefined {
  if (iso === undefined) return undefined;
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) return `${iso} is not a date: send an ISO 8601 time`;
  const ns = BigInt(ms) * 1_000_000n;
  const at = new Date(ms).toISOString();
  if (ns < window.fromNs) {
    return (
      `${at} is before ${isoOfNs(window.fromNs)}: older than the retention ` +
      '(ROUTEWATCH_RETENTION_DAYS), so the task is no longer reported'
    );
  }
  if (ns > window.toNs) {
    return (
      `${at} is after ${isoOfNs(window.toNs)}: further ahead than the allowed clock skew ` +
      "(ROUTEWATCH_MAX_CLOCK_SKEW), and it would win the task's outcome over every later " +
      "report; check the sender's clock"
    );
  }
  return undefined;
}

const isoOfNs = (ns: bigint) => new Date(Number(ns / 1_000_000n)).toISOString();

function observedAt(iso: string | undefined, now: Date): string {
  const ms = iso ? Date.parse(iso) : now.getTime();
  return clickHouseTime(BigInt(ms) * 1_000_000n);
}

/** The report's identity: its reportId, else a hash of everything it says (not when it arrived). */
export function reportId(report: OutcomeReport): string {
  if (report.reportId !== undefined) return report.reportId;
  const content = JSON.stringify([
    canonicalTaskId(report.taskId),
    report.outcome,
    report.reason ?? '',
    report.reask ?? false,
    report.cleanupCostUsd ?? 0,
    report.observedAt === undefined ? '' : Date.parse(report.observedAt),
    report.source ?? 'api',
    // Only when there are scores: a report without them keeps the id it had before scores
    // existed, so its retry across an upgrade still counts once.
    ...(hasScores(report) ? [sortedScores(report.scores)] : []),
  ]);
  return `sha256:${createHash('sha256').update(content).digest('hex').slice(0, 32)}`;
}

function hasScores(
  report: OutcomeReport,
): report is OutcomeReport & { scores: Record<string, number> } {
  return report.scores !== undefined && Object.keys(report.scores).length > 0;
}

/** The scores as [name, value] pairs in name order: the same scores hash alike in any order. */
function sortedScores(named: Record<string, number>): [string, number][] {
  return Object.entries(named).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The reports as `late_outcomes` rows. Strings pass through `wellFormed`, as span attributes do:
 * the engine refuses a lone UTF-16 surrogate, and a report must not fail for good on one (a task
 * id sanitized alike still joins its spans' ids).
 */
export function outcomeRows(reports: OutcomeReport[], now: Date): string {
  return (
    reports
      .map((r) =>
        JSON.stringify({
          task_id: wellFormed(canonicalTaskId(r.taskId)),
          report_id: reportId(r),
          observed_at: observedAt(r.observedAt, now),
          outcome: r.outcome,
          outcome_reason: wellFormed(r.reason ?? ''),
          reask: r.reask ? 1 : 0,
          cleanup_cost_usd: r.cleanupCostUsd ?? 0,
          source: wellFormed(r.source ?? 'api'),
          scores: r.scores ?? {},
        }),
      )
      .join('\n') + '\n'
  );
}

/** The table late outcome reports are written to. */
const LATE_OUTCOMES_TABLE = 'late_outcomes';

export async function writeOutcomes(
  store: Store,
  reports: OutcomeReport[],
  now = new Date(),
): Promise<void> {
  await store.insertJsonEachRow(LATE_OUTCOMES_TABLE, Buffer.from(outcomeRows(reports, now)));
}
