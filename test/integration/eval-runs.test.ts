import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { FIXED_CONTENT } from '../../examples/mock-answers.js';
import { faults } from '../../examples/mock-faults.js';
import { startMockLlm, type MockLlm } from '../../examples/mock-llm.js';
import {
  instrumentOpenAI,
  registerRoutewatch,
  runEval,
  type EvalSummary,
  type FallbackRoute,
  type RoutewatchHandle,
} from '../../instrumentation/src/index.js';
import {
  ATTR_EVAL_DATASET,
  ATTR_EVAL_RUN,
  SCORE_ATTRIBUTE_PREFIX,
} from '../../instrumentation/src/semconv.js';
import { configWith } from '../../server/config.js';
import { startRoutewatch, type RunningRoutewatch } from '../../server/start.js';

// An eval run as a CI job runs it: the real OpenTelemetry SDK (registerRoutewatch, a batch
// exporter that would wait a minute on its own), the OpenAI SDK against the simulated LLM, a real
// collector over HTTP with the embedded ClickHouse. runEval's own flush must have delivered every
// span by the time it resolves.

const RUN = `ci-${Date.now()}`;
const DATASET = 'faq-golden@1';
const SERVICE = 'support-bot-eval';

let llm: MockLlm;
let routewatch: RunningRoutewatch;
let sdk: RoutewatchHandle;
let dataDir = '';

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'routewatch-eval-'));
  routewatch = await startRoutewatch(
    configWith({
      ROUTEWATCH_PORT: '0',
      ROUTEWATCH_DATA_DIR: dataDir,
      ROUTEWATCH_BATCH_DELAY: '5ms',
    }),
  );
  // The first request to the small model fails: one case (whichever runs first) falls back.
  llm = await startMockLlm({
    anyModel: true,
    faults: [faults.status('gpt-small', 503, { times: 1 })],
  });
  sdk = registerRoutewatch({
    serviceName: SERVICE,
    tracesEndpoint: routewatch.tracesUrl,
    exportIntervalMillis: 60_000,
    sdkCapture: false,
  });
  // No loader hook runs under vitest: patch the imported module directly.
  instrumentOpenAI(await import('openai'));
});

afterAll(async () => {
  await sdk?.shutdown();
  await llm?.close();
  await routewatch?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const storedSpan = z.object({
  task_id: z.string(),
  kind: z.string(),
  route: z.string(),
  attempt: z.coerce.number(),
  fallback_reason: z.string(),
  outcome: z.string(),
  outcome_reason: z.string(),
  service_name: z.string(),
  eval_run: z.string(),
  eval_dataset: z.string(),
  scores: z.record(z.string(), z.string()),
  age_ms: z.coerce.number(),
});
type StoredSpan = z.output<typeof storedSpan>;

async function storedSpans(taskIds: string[]): Promise<StoredSpan[]> {
  await routewatch.writer.flush();
  return routewatch.store.query(
    `SELECT task_id, kind, route, attempt, fallback_reason, outcome, outcome_reason, service_name,
            attributes['${ATTR_EVAL_RUN}'] AS eval_run,
            attributes['${ATTR_EVAL_DATASET}'] AS eval_dataset,
            mapFilter((k, v) -> startsWith(k, '${SCORE_ATTRIBUTE_PREFIX}'), attributes) AS scores,
            toUnixTimestamp64Milli(now64(3)) - toUnixTimestamp64Milli(timestamp) AS age_ms
     FROM spans FINAL WHERE task_id IN {taskIds:Array(String)}
     ORDER BY task_id, kind, attempt`,
    { taskIds },
    storedSpan,
  );
}

const postOutcomes = (payload: unknown) =>
  fetch(`${routewatch.url}/v1/outcomes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(payload),
  });

const lateOutcome = z.object({
  report_id: z.string(),
  outcome: z.string(),
  outcome_reason: z.string(),
  scores: z.record(z.string(), z.number()),
});
const lateOutcomes = (taskId: string) =>
  routewatch.store.query(
    `SELECT report_id, outcome, outcome_reason, scores FROM late_outcomes FINAL
     WHERE task_id = {taskId:String} ORDER BY report_id`,
    { taskId },
    lateOutcome,
  );

describe('runEval against the simulated LLM, exporting to a real collector', () => {
  const client = new OpenAI({ apiKey: 'test', baseURL: '', maxRetries: 0 });
  const route = (name: string, model: string): FallbackRoute<string, string> => ({
    route: name,
    run: async (ctx) => {
      const completion = await client.chat.completions.create(
        { model, messages: [{ role: 'user', content: ctx.input }] },
        { signal: ctx.signal },
      );
      return completion.choices[0]?.message.content ?? '';
    },
  });
  const cases = [
    { id: 'greet-1', input: 'Say hello.', expected: FIXED_CONTENT },
    { id: 'greet-2', input: 'Greet me.', expected: FIXED_CONTENT },
    { id: 'greet-3', input: 'Hi!', expected: FIXED_CONTENT },
    { id: 'farewell', input: 'Say goodbye.', expected: 'bye' },
  ];
  let summary: EvalSummary;

  beforeAll(async () => {
    client.baseURL = llm.url;
    summary = await runEval({
      run: RUN,
      dataset: DATASET,
      cohort: 'faq',
      policyVersion: 'small-first@1',
      cases,
      routes: [route('small', 'gpt-small'), route('large', 'gpt-large')],
      concurrency: 2,
      grade: (evalCase, output) => ({
        pass: output === evalCase.expected,
        scores: { exact: output === evalCase.expected ? 1 : 0, answered: output === '' ? 0 : 1 },
      }),
    });
  });

  it('summarizes the run: three greetings pass, the farewell fails, one case fell back', () => {
    expect(summary).toMatchObject({
      run: RUN,
      dataset: DATASET,
      cohort: 'faq',
      cases: 4,
      passed: 3,
      failed: 1,
      errors: 0,
      scores: { answered: { n: 4, mean: 1 }, exact: { n: 4, mean: 0.75 } },
    });
    expect(summary.results.filter((r) => r.route === 'large')).toHaveLength(1);
    expect(summary.results.find((r) => r.id === 'farewell')?.passed).toBe(false);
  });

  it('stored every task span with the eval tags, scores and outcome, by the time runEval resolved', async () => {
    const rows = await storedSpans(summary.results.map((r) => r.taskId));
    const tasks = rows.filter((row) => row.kind === 'task');
    expect(tasks).toHaveLength(4);
    for (const result of summary.results) {
      const task = tasks.find((row) => row.task_id === result.taskId);
      expect(task, result.id).toMatchObject({
        service_name: SERVICE,
        eval_run: RUN,
        eval_dataset: DATASET,
        outcome: result.passed ? 'success' : 'failure',
        outcome_reason: result.passed ? '' : 'grade_failed',
        scores: {
          'routewatch.score.exact': result.passed ? '1' : '0',
          'routewatch.score.answered': '1',
        },
      });
      // Exported just now: well inside the collector's 30-day retention.
      expect(task!.age_ms).toBeLessThan(10 * 60_000);
    }
  });

  it('stored the attempts and LLM calls of each case under its task, without the eval tags', async () => {
    const rows = await storedSpans(summary.results.map((r) => r.taskId));
    const attempts = rows.filter((row) => row.kind === 'attempt');
    const calls = rows.filter((row) => row.kind === 'llm');
    // Four primary attempts on small, one fallback to large after the injected 503.
    expect(attempts).toHaveLength(5);
    expect(calls).toHaveLength(5);
    expect(attempts.filter((row) => row.attempt === 2)).toMatchObject([
      { route: 'large', fallback_reason: 'error' },
    ]);
    for (const row of [...attempts, ...calls]) {
      expect(row).toMatchObject({ eval_run: '', eval_dataset: '', scores: {} });
    }
  });

  it('stores the scores of a late outcome report for an eval task, and a retry once', async () => {
    const taskId = summary.results.find((r) => r.id === 'greet-1')!.taskId;
    const review = {
      taskId,
      outcome: 'failure',
      reason: 'human_review',
      scores: { groundedness: 0.25, 'tone.ok': 1 },
      observedAt: new Date().toISOString(),
    };
    for (let send = 0; send < 2; send += 1) {
      const res = await postOutcomes(review);
      expect(res.status).toBe(202);
    }
    // The same report with another score value is another report.
    const rescored = await postOutcomes({ ...review, scores: { groundedness: 0.5, 'tone.ok': 1 } });
    expect(rescored.status).toBe(202);
    const stored = await lateOutcomes(taskId);
    expect(
      stored.map((row) => row.scores).sort((a, b) => a.groundedness! - b.groundedness!),
    ).toEqual([
      { groundedness: 0.25, 'tone.ok': 1 },
      { groundedness: 0.5, 'tone.ok': 1 },
    ]);
    expect(stored.map((row) => [row.outcome, row.outcome_reason])).toEqual([
      ['failure', 'human_review'],
      ['failure', 'human_review'],
    ]);
  });

  it("reads the run in v_tasks, a later report's score winning over the span's, and keeps it out of the production report", async () => {
    const taskId = summary.results.find((r) => r.id === 'greet-3')!.taskId;
    const res = await postOutcomes({
      taskId,
      outcome: 'success',
      scores: { exact: 0.5 },
      observedAt: new Date(Date.now() + 1000).toISOString(),
    });
    expect(res.status).toBe(202);
    const tasks = await routewatch.store.query(
      `SELECT task_id, eval_run, eval_dataset, outcome, scores FROM v_tasks
       WHERE task_id IN {ids:Array(String)} ORDER BY task_id`,
      { ids: summary.results.map((r) => r.taskId) },
      z.object({
        task_id: z.string(),
        eval_run: z.string(),
        eval_dataset: z.string(),
        outcome: z.string(),
        scores: z.record(z.string(), z.number()),
      }),
    );
    expect(tasks).toHaveLength(4);
    for (const task of tasks) expect(task).toMatchObject({ eval_run: RUN, eval_dataset: DATASET });
    // The span said exact 1 and answered 1; the later report's exact 0.5 wins, answered stays.
    expect(tasks.find((t) => t.task_id === taskId)?.scores).toEqual({ exact: 0.5, answered: 1 });
    const farewell = summary.results.find((r) => r.id === 'farewell')!.taskId;
    expect(tasks.find((t) => t.task_id === farewell)).toMatchObject({
      outcome: 'failure',
      scores: { exact: 0, answered: 1 },
    });

    const report = (await (await fetch(`${routewatch.url}/api/v1/report?window=1h`)).json()) as {
      rows: unknown[];
      overall: unknown;
    };
    expect(report).toMatchObject({ rows: [], overall: null });
    // The gate selects the run: judged against a run that is not there, it names it.
    const compare = await fetch(
      `${routewatch.url}/api/v1/compare?baseline=eval:${RUN}-typo&candidate=eval:${RUN}&minCases=4`,
    );
    expect(compare.status).toBe(400);
    const { error } = (await compare.json()) as { error: { message: string } };
    expect(error.message).toMatch(new RegExp(`^the baseline eval:${RUN}-typo selects no task`));
    expect(error.message).toContain(RUN);
  });

  it.each([
    [
      'an upper-case score name',
      { Groundedness: 0.5 },
      /scores\.Groundedness: a score name is 1-64 characters of \[a-z0-9_.-\]/,
    ],
    ['a score above 1', { groundedness: 1.5 }, /scores\.groundedness: .*<=1/],
    [
      'a score that is no number',
      { groundedness: 'high' },
      /scores\.groundedness: .*expected number/,
    ],
    [
      'more than 32 scores',
      Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`s${i}`, 0.5])),
      /scores: at most 32 scores per report/,
    ],
  ])('refuses %s with a 400 naming the field, storing nothing', async (_name, scores, message) => {
    const taskId = summary.results.find((r) => r.id === 'greet-2')!.taskId;
    const res = await postOutcomes({ taskId, outcome: 'success', scores });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('INVALID_ARGUMENT');
    expect(body.error.message).toMatch(message);
    expect(await lateOutcomes(taskId)).toEqual([]);
  });
});
