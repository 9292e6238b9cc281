import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { buildReport } from '../../analyzer/report.js';
import { openTempStore } from '../support/store.js';
import { hexId, otlpBody } from '../support/otlp.js';
import type { TestSpan } from '../support/otlp.js';
import { testApp } from '../support/app.js';
import { dateAt, nsAt } from '../support/time.js';

let temp: Awaited<ReturnType<typeof openTempStore>>;

// Span times relative to BASE_MS (the start of the current hour, a day ago), so the spans stay
// inside the collector's retention window.
const at = nsAt;
const smallCall = (input: number, output: number) => (input * 0.15 + output * 0.6) / 1e6;
const largeCall = (input: number, output: number) => (input * 2.5 + output * 10) / 1e6;

function task(
  id: string,
  cohort: string,
  startMs: number,
  durationMs: number,
  extra: TestSpan['attributes'] = {},
): TestSpan {
  return {
    name: `routewatch.task ${cohort}`,
    kind: 1,
    start: at(startMs),
    end: at(startMs + durationMs),
    attributes: {
      'routewatch.task.id': id,
      'routewatch.cohort': cohort,
      'routewatch.policy.version': 'v1',
      ...extra,
    },
  };
}
function attempt(
  id: string,
  cohort: string,
  route: string,
  n: number,
  startMs: number,
  reason?: string,
): TestSpan {
  return {
    name: `routewatch.attempt ${route}`,
    kind: 1,
    start: at(startMs),
    end: at(startMs + 10),
    attributes: {
      'routewatch.task.id': id,
      'routewatch.cohort': cohort,
      'routewatch.route': route,
      'routewatch.attempt': n,
      ...(reason ? { 'routewatch.fallback.reason': reason } : {}),
    },
  };
}
function llm(
  id: string,
  cohort: string,
  route: string,
  n: number,
  model: string,
  input: number,
  output: number,
  startMs: number,
): TestSpan {
  return {
    name: `chat ${model}`,
    start: at(startMs),
    end: at(startMs + 8),
    attributes: {
      'routewatch.task.id': id,
      'routewatch.cohort': cohort,
      'routewatch.route': route,
      'routewatch.attempt': n,
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': model,
      'gen_ai.usage.input_tokens': input,
      'gen_ai.usage.output_tokens': output,
    },
  };
}

beforeAll(async () => {
  temp = await openTempStore();
  const rw = await testApp(temp.store);
  const { app } = rw;
  const spans: TestSpan[] = [
    // A: faq, small, success first time.
    task('A', 'faq', 0, 100, { 'routewatch.outcome': 'success' }),
    attempt('A', 'faq', 'small', 1, 1),
    llm('A', 'faq', 'small', 1, 'gpt-4o-mini', 1000, 200, 2),
    // B: faq, small fails validation, falls back to large, success.
    task('B', 'faq', 1000, 300, { 'routewatch.outcome': 'success' }),
    attempt('B', 'faq', 'small', 1, 1001),
    llm('B', 'faq', 'small', 1, 'gpt-4o-mini', 800, 100, 1002),
    attempt('B', 'faq', 'large', 2, 1100, 'validation_failed'),
    llm('B', 'faq', 'large', 2, 'gpt-4o', 800, 150, 1101),
    // C: faq, small, fallback without a reason (invisible), failure, corrected later to success with cleanup cost.
    task('C', 'faq', 2000, 200, {
      'routewatch.outcome': 'failure',
      'routewatch.outcome.reason': 'wrong_answer',
    }),
    attempt('C', 'faq', 'small', 1, 2001),
    llm('C', 'faq', 'small', 1, 'gpt-4o-mini', 500, 50, 2002),
    attempt('C', 'faq', 'large', 2, 2100),
    llm('C', 'faq', 'large', 2, 'gpt-4o', 500, 60, 2101),
    // D: extraction, no outcome.
    task('D', 'extraction', 3000, 50),
    attempt('D', 'extraction', 'small', 1, 3001),
    llm('D', 'extraction', 'small', 1, 'gpt-4o-mini', 300, 30, 3002),
    // E: policy, large-first, failure; a late outcome older than the span's does not win.
    task('E', 'policy', 4000, 400, { 'routewatch.outcome': 'failure' }),
    attempt('E', 'policy', 'large', 1, 4001),
    llm('E', 'policy', 'large', 1, 'gpt-4o', 2000, 500, 4002),
    // F: agentic cascade, small → medium → large, timing out twice: one task under "timeout".
    task('F', 'agentic', 5000, 900, { 'routewatch.outcome': 'success' }),
    attempt('F', 'agentic', 'small', 1, 5001),
    attempt('F', 'agentic', 'medium', 2, 5300, 'timeout'),
    attempt('F', 'agentic', 'large', 3, 5600, 'timeout'),
    // G: agentic, small → large on low confidence.
    task('G', 'agentic', 6000, 500, { 'routewatch.outcome': 'success' }),
    attempt('G', 'agentic', 'small', 1, 6001),
    attempt('G', 'agentic', 'large', 2, 6200, 'low_confidence'),
  ].map((s) => ({ ...s, traceId: hexId(16), spanId: hexId(8) }));
  const res = await app.inject({
    method: 'POST',
    url: '/v1/traces',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(otlpBody(spans)),
  });
  expect(res.statusCode).toBe(200);
  const late = [
    {
      task_id: 'C',
      observed_at: at(60_000),
      outcome: 'success',
      outcome_reason: 'human_corrected',
      reask: 1,
      cleanup_cost_usd: 0.5,
      source: 'test',
    },
    {
      task_id: 'E',
      observed_at: at(0),
      outcome: 'success',
      outcome_reason: '',
      reask: 0,
      cleanup_cost_usd: 0,
      source: 'test',
    },
  ];
  await temp.store.insertJsonEachRow(
    'late_outcomes',
    Buffer.from(late.map((r, i) => JSON.stringify({ ...r, report_id: `late-${i}` })).join('\n')),
  );
  await rw.close();
});
afterAll(async () => {
  await temp?.dispose();
});

describe('v_tasks', () => {
  it('has one row per task with primary route, attempts, fallback reasons, outcome and cost', async () => {
    const rows = await temp.store.query(
      'SELECT task_id, cohort, primary_route, attempts, model_calls, fallback_reasons, invisible_fallbacks, outcome, outcome_reason, reask, cost_usd, latency_ms FROM v_tasks ORDER BY task_id',
      {},
      z.object({
        task_id: z.string(),
        cohort: z.string(),
        primary_route: z.string(),
        attempts: z.coerce.number(),
        model_calls: z.coerce.number(),
        fallback_reasons: z.array(z.string()),
        invisible_fallbacks: z.coerce.number(),
        outcome: z.string(),
        outcome_reason: z.string(),
        reask: z.union([z.boolean(), z.number()]).transform(Boolean),
        cost_usd: z.number(),
        latency_ms: z.number(),
      }),
    );
    expect(
      rows.map((r) => [r.task_id, r.cohort, r.primary_route, r.attempts, r.model_calls, r.outcome]),
    ).toEqual([
      ['A', 'faq', 'small', 1, 1, 'success'],
      ['B', 'faq', 'small', 2, 2, 'success'],
      ['C', 'faq', 'small', 2, 2, 'success'],
      ['D', 'extraction', 'small', 1, 1, 'unknown'],
      ['E', 'policy', 'large', 1, 1, 'failure'],
      ['F', 'agentic', 'small', 3, 0, 'success'],
      ['G', 'agentic', 'small', 2, 0, 'success'],
    ]);
    const byId = Object.fromEntries(rows.map((r) => [r.task_id, r]));
    expect(byId['F']!.fallback_reasons).toEqual(['timeout', 'timeout']);
    expect(byId['B']!.fallback_reasons).toEqual(['validation_failed']);
    expect(byId['C']!.fallback_reasons).toEqual(['']);
    expect(byId['C']!.invisible_fallbacks).toBe(1);
    expect(byId['C']!.outcome_reason).toBe('human_corrected');
    expect(byId['C']!.reask).toBe(true);
    expect(byId['B']!.cost_usd).toBeCloseTo(smallCall(800, 100) + largeCall(800, 150), 12);
    expect(byId['C']!.cost_usd).toBeCloseTo(smallCall(500, 50) + largeCall(500, 60) + 0.5, 12);
    expect(byId['B']!.latency_ms).toBe(300);
  });
});

describe('v_cohort_route_window and the report', () => {
  it('computes success rate, cost per successful task and fallback rate per cohort × primary route', async () => {
    const report = await buildReport(temp.store, {
      from: dateAt(-12 * 3_600_000),
      to: dateAt(12 * 3_600_000),
    });
    const faq = report.rows.find((r) => r.cohort === 'faq');
    const faqCost =
      smallCall(1000, 200) +
      smallCall(800, 100) +
      largeCall(800, 150) +
      smallCall(500, 50) +
      largeCall(500, 60) +
      0.5;
    expect(faq).toMatchObject({
      primaryRoute: 'small',
      tasks: 3,
      successes: 3,
      knownOutcomes: 3,
      successRate: 1,
      fallbacks: 2,
      invisibleFallbacks: 1,
      cascades: 0,
    });
    expect(faq!.fallbackRate).toBeCloseTo(2 / 3, 12);
    expect(faq!.totalCostUsd).toBeCloseTo(faqCost, 12);
    expect(faq!.costPerSuccessfulTask).toBeCloseTo(faqCost / 3, 12);
    expect(faq!.topFallbackReasons).toEqual([
      { reason: '(none)', tasks: 1, share: 0.5 },
      { reason: 'validation_failed', tasks: 1, share: 0.5 },
    ]);
    const agentic = report.rows.find((r) => r.cohort === 'agentic');
    expect(agentic).toMatchObject({ tasks: 2, fallbacks: 2, cascades: 1 });
    expect(agentic!.topFallbackReasons).toEqual([
      { reason: 'low_confidence', tasks: 1, share: 0.5 },
      { reason: 'timeout', tasks: 1, share: 0.5 },
    ]);
    const extraction = report.rows.find((r) => r.cohort === 'extraction');
    expect(extraction).toMatchObject({
      tasks: 1,
      successes: 0,
      knownOutcomes: 0,
      successRate: null,
      costPerSuccessfulTask: null,
      outcomeCoverage: 0,
    });
    const policy = report.rows.find((r) => r.cohort === 'policy');
    expect(policy).toMatchObject({
      primaryRoute: 'large',
      tasks: 1,
      successes: 0,
      failures: 1,
      successRate: 0,
      costPerSuccessfulTask: null,
    });
  });

  it('leaves out tasks started outside the window', async () => {
    const report = await buildReport(temp.store, { from: dateAt(1500), to: dateAt(3500) });
    expect(report.rows.map((r) => [r.cohort, r.tasks])).toEqual([
      ['extraction', 1],
      ['faq', 1],
    ]);
  });

  it('names the filtered cohorts and routes no task of the window has, with the likely typo', async () => {
    const window = { from: dateAt(-12 * 3_600_000), to: dateAt(12 * 3_600_000) };
    const report = await buildReport(temp.store, window, new Date(), {
      cohorts: ['fqa', 'faq', 'billing'],
      routes: ['smal'],
    });
    expect(report.rows).toEqual([]);
    expect(report.unmatched).toEqual([
      { filter: 'cohort', name: 'fqa', suggestion: 'faq' },
      { filter: 'cohort', name: 'billing', suggestion: null },
      { filter: 'route', name: 'smal', suggestion: 'small' },
    ]);
    // Names the window has, even when the filters together select nothing, are not listed.
    const none = await buildReport(temp.store, window, new Date(), {
      cohorts: ['policy'],
      routes: ['small'],
    });
    expect(none.rows).toEqual([]);
    expect(none.unmatched).toBeUndefined();
  });

  it('gives the all-time summary view the same figures', async () => {
    const rows = await temp.store.query(
      'SELECT cohort, tasks, successes FROM v_cohort_route_summary ORDER BY cohort',
      {},
      z.object({ cohort: z.string(), tasks: z.coerce.number(), successes: z.coerce.number() }),
    );
    expect(rows).toEqual([
      { cohort: 'agentic', tasks: 2, successes: 2 },
      { cohort: 'extraction', tasks: 1, successes: 0 },
      { cohort: 'faq', tasks: 3, successes: 3 },
      { cohort: 'policy', tasks: 1, successes: 0 },
    ]);
  });
});
