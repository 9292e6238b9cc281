import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRules } from '../../analyzer/rules.js';
import { dryRunFindings, sendTasks, testApp } from '../support/app.js';
import type { EvaluatedFinding, TestApp } from '../support/app.js';
import { openTempStore } from '../support/store.js';
import { seeded, stream } from '../support/tasks.js';
import type { CraftedTask, StreamSpec } from '../support/tasks.js';

// Which baseline each monitor is judged against, on crafted spans in the embedded store, evaluated
// once at T (dry run). Time line: a pinned baseline `old` [T − 20 d, T − 15 d), the trailing
// baseline [T − 2 d − 6 h, T − 6 h), the current window [T − 6 h, T).

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T = Date.now() - 60_000;
const NOW_FROM = T - 6 * HOUR;
const TRAILING_FROM = NOW_FROM - 2 * DAY;
const OLD_FROM = T - 20 * DAY;
const OLD_TO = T - 15 * DAY;

// Under these names the engine lists the current version's rows first, and a threshold taken
// from the first row of any version (as before) came from the current version.
const CURRENT_VERSION = 'b';
const PREVIOUS_VERSION = 'a';

const RULES = parseRules(`
evaluation:
  horizon: 6h
  baselineWindow: 2d
  buckets: 24
  minTasks: 100
  minBaselineTasks: 100
baselines:
  old: { from: "${new Date(OLD_FROM).toISOString()}", to: "${new Date(OLD_TO).toISOString()}" }
rules:
  - id: p95-vs-old
    kind: p95_regression
    baseline: pinned:old
    cohorts: [latency]
  - id: p95-vs-previous
    kind: p95_regression
    baseline: previous_policy
    cohorts: [versions]
  - id: drop-vs-large
    kind: success_rate_drop
    baseline: large_route
    cohorts: [nolarge]
`);

const latency = (low: number, high: number) => (_i: number, r: () => number) => ({
  latencyMs: low + r() * (high - low),
});

function tasks(): CraftedTask[] {
  const random = seeded(32);
  const out: CraftedTask[] = [];
  const add = (spec: Partial<StreamSpec> & Pick<StreamSpec, 'cohort' | 'tasks'>, from: number) =>
    out.push(
      ...stream(
        { routes: ['small', 'large'], success: 0.95, fromMs: from, toMs: from + 6 * HOUR, ...spec },
        random,
      ),
    );
  // latency: slow in the pinned baseline (p95 about 490 ms), fast in the trailing one (about
  // 148 ms), in between now (250–300 ms): slower than the trailing p95, faster than the old one.
  add({ cohort: 'latency', tasks: 1_200, extra: latency(400, 500) }, OLD_FROM);
  add({ cohort: 'latency', tasks: 1_200, extra: latency(100, 150) }, TRAILING_FROM);
  add({ cohort: 'latency', tasks: 400, extra: latency(250, 300) }, NOW_FROM);
  // versions: fast under its previous policy version, slow under the current one, which ran
  // before the window too (its own p95 is then slow: a threshold from it would see no change).
  const version =
    (policyVersion: string, low: number, high: number) => (i: number, r: () => number) => ({
      policyVersion,
      ...latency(low, high)(i, r),
    });
  add(
    {
      cohort: 'versions',
      routes: ['small'],
      tasks: 1_200,
      extra: version(CURRENT_VERSION, 250, 300),
    },
    TRAILING_FROM,
  );
  add(
    {
      cohort: 'versions',
      routes: ['small'],
      tasks: 1_200,
      extra: version(PREVIOUS_VERSION, 100, 150),
    },
    TRAILING_FROM + DAY,
  );
  add(
    {
      cohort: 'versions',
      routes: ['small'],
      tasks: 400,
      extra: version(CURRENT_VERSION, 250, 300),
    },
    NOW_FROM,
  );
  // nolarge: its large route ran days ago, not now; its small route now costs more per success.
  const dear = () => ({ callCostUsd: 0.02 });
  add({ cohort: 'nolarge', routes: ['large'], tasks: 700 }, T - 8 * DAY);
  add({ cohort: 'nolarge', routes: ['small'], tasks: 400, extra: dear }, NOW_FROM);
  // latelarge: its large route runs now too, 300 tasks, but most outcomes have not arrived: too
  // few known outcomes to judge by, so its last 30 days are the reference.
  add({ cohort: 'latelarge', routes: ['large'], tasks: 700 }, T - 8 * DAY);
  add({ cohort: 'latelarge', routes: ['large'], tasks: 300 }, NOW_FROM);
  for (const task of out.slice(-250)) delete task.outcome;
  add({ cohort: 'latelarge', routes: ['small'], tasks: 400, extra: dear }, NOW_FROM);
  // fresh: a cohort × route first seen in the current window, failing often, with fallbacks (too
  // few to test their reasons).
  add({ cohort: 'fresh', tasks: 200, success: 0.5, fallback: 0.3 }, NOW_FROM);
  // steady: the rest of the traffic, in the baseline and now.
  add({ cohort: 'steady', tasks: 1_600 }, TRAILING_FROM);
  add({ cohort: 'steady', tasks: 400 }, NOW_FROM);
  return out;
}

let temp: Awaited<ReturnType<typeof openTempStore>>;
let rw: TestApp;
let finding: (rule: string, cohort: string, route?: string) => EvaluatedFinding;

beforeAll(async () => {
  temp = await openTempStore();
  rw = await testApp(temp.store, { rules: RULES });
  await sendTasks(rw, tasks());
  await rw.writer.flush();
  ({ finding } = await dryRunFindings(rw, T));
});
afterAll(async () => {
  await rw?.close();
  await temp?.dispose();
});

describe('each p95_regression rule', () => {
  it('counts the tasks slower than its own baseline p95: the trailing one fires', () => {
    const trailing = finding('p95_regression', 'latency');
    expect(trailing.status, trailing.summary).toBe('degraded');
    // It says what the baseline's p95 is: the trailing one's, about 148 ms.
    expect(trailing.summary).toMatch(/slower than the baseline p95 \(14\d ms\) 5\.0% → 100\.0%/);
  });

  it('counts the tasks slower than its own baseline p95: the pinned one, slower, does not', () => {
    const pinned = finding('p95-vs-old', 'latency');
    expect(pinned.status, pinned.summary).toBe('ok');
  });
});

describe('a p95_regression rule against the previous policy version', () => {
  it("counts the tasks slower than that version's p95, not the current version's", () => {
    const previous = finding('p95-vs-previous', 'versions');
    expect(previous.status, previous.summary).toBe('degraded');
    expect(previous.summary).toMatch(/slower than the baseline p95 \(\d+ ms\) 5\.0% → 100\.0%/);
  });
});

describe('cheaper_than_large without concurrent large-route traffic', () => {
  it("compares with the large route's last 30 days, and says so", () => {
    const cheaper = finding('cheaper_than_large', 'nolarge');
    expect(cheaper.status, cheaper.summary).toBe('degraded');
    // About $0.02 / 0.95 on small against $0.01 / 0.95 on large.
    expect(cheaper.summary).toMatch(
      /costs \$0\.02\d* per successful task, no longer less than the large route's \$0\.010\d* over its last 30 d$/,
    );
  });
});

describe('another rule against the large route, without concurrent large-route traffic', () => {
  it("takes the large route's last 30 days too, as the docs say (review round3 F3)", () => {
    const drop = finding('drop-vs-large', 'nolarge');
    expect(drop.status, drop.summary).not.toBe('insufficient_data');
    expect(drop.summary).toMatch(/\(n 700 → \d+\)/);
  });
});

describe('cheaper_than_large when the large route’s outcomes are late', () => {
  it('counts the known outcomes to decide, and falls back to the last 30 days', () => {
    const cheaper = finding('cheaper_than_large', 'latelarge');
    expect(cheaper.status, cheaper.summary).toBe('degraded');
    expect(cheaper.summary).toMatch(/over its last 30 d$/);
  });
});

describe('a cohort × route with no baseline yet', () => {
  it('failure_concentration says the cohort has no baseline, not that the rest is too small', () => {
    const concentration = finding('failure_concentration', 'fresh');
    expect(concentration.status).toBe('insufficient_data');
    expect(concentration.summary).toBe('no baseline for this cohort × route yet');
  });

  it('fallback_reason_shift says its count is of fallbacks, too few to matter among enough tasks', () => {
    const shift = finding('fallback_reason_shift', 'fresh');
    expect(shift.status).toBe('ok');
    expect(shift.summary).toMatch(
      /^only \d+ fallbacks in \d+ tasks in the current window, fewer than the minimum 100: too few for a shift in their reasons to matter$/,
    );
  });
});
