import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GateResult } from '../../analyzer/gate.js';
import type { Report } from '../../analyzer/report.js';
import { runCli, startInstance } from '../support/cli.js';
import type { StartedInstance } from '../support/cli.js';
import { unusedPort } from '../support/outage.js';
import { otlpBodiesOf } from '../support/tasks.js';
import type { CraftedTask } from '../support/tasks.js';

// `routewatch gate` and `routewatch advice` as a CI job runs them: `routewatch start` as a child
// process (write-ahead log on, the default), crafted before/after traffic sent over OTLP/HTTP,
// then the CLI against it, right after the export — the gate must see every acknowledged span.

const HOUR = 3_600_000;
const now = Date.now();

interface Batch {
  cohort: string;
  route?: string;
  n: number;
  /** Exactly this many succeed (the first ones), the rest fail: verdicts do not hang on a seed. */
  successes: number;
  fromMs: number;
  toMs: number;
  policyVersion?: string;
  evalRun?: string;
  scores?: (i: number) => Record<string, number>;
}

function batch(b: Batch): CraftedTask[] {
  const step = (b.toMs - b.fromMs) / b.n;
  return Array.from({ length: b.n }, (_, i) => ({
    cohort: b.cohort,
    routes: [b.route ?? 'small'],
    startMs: b.fromMs + i * step,
    outcome: i < b.successes ? 'success' : 'failure',
    policyVersion: b.policyVersion ?? 'v1',
    ...(b.evalRun ? { evalRun: b.evalRun, evalDataset: 'golden@1' } : {}),
    ...(b.scores ? { scores: b.scores(i) } : {}),
  }));
}

const recent = { fromMs: now - 20 * 60_000, toMs: now - 60_000 };
const shareFrom = Math.floor((now - HOUR) / HOUR) * HOUR + 5 * 60_000;
const production = [
  // The baseline: policy v1, four to six hours ago.
  batch({ cohort: 'faq', n: 600, successes: 552, fromMs: now - 6 * HOUR, toMs: now - 4 * HOUR }),
  batch({
    cohort: 'extraction',
    n: 600,
    successes: 540,
    fromMs: now - 6 * HOUR,
    toMs: now - 4 * HOUR,
  }),
  // A canary on `billing`: v3 served alone for about two hours (and did very well then), then v4
  // took a share of the same traffic from five minutes into a clock hour (see canaryStart below),
  // as well as v3 did in that time.
  batch({
    cohort: 'billing',
    n: 400,
    successes: 396,
    fromMs: now - 3 * HOUR,
    toMs: shareFrom,
    policyVersion: 'v3',
  }),
  batch({
    cohort: 'billing',
    n: 400,
    successes: 372,
    fromMs: shareFrom,
    toMs: now - 30_000,
    policyVersion: 'v3',
  }),
  batch({
    cohort: 'billing',
    n: 400,
    successes: 368,
    fromMs: shareFrom,
    toMs: now - 30_000,
    policyVersion: 'v4',
  }),
].flat();

// A canary twelve to eight hours ago (outside the 7h report window), cohort by cohort: on
// `refunds` v5 stopped an hour before v6 started, so the two never served it at the same time; on
// `search` v5 served alone for two hours (99 %), then both served it for two (92 % and 91 %). It
// starts five minutes into a clock hour: a start in an hour's last 18 s gave v6 one task in it
// beside v5's many, which the gate rightly treats as a straggler's hour, not a shared one.
const canaryStart = Math.floor((now - 12 * HOUR) / HOUR) * HOUR + 5 * 60_000;
const earlierCanary = [
  batch({
    cohort: 'refunds',
    n: 400,
    successes: 372,
    fromMs: canaryStart,
    toMs: canaryStart + HOUR,
    policyVersion: 'v5',
  }),
  batch({
    cohort: 'refunds',
    n: 400,
    successes: 372,
    fromMs: canaryStart + 2 * HOUR,
    toMs: canaryStart + 4 * HOUR,
    policyVersion: 'v6',
  }),
  batch({
    cohort: 'search',
    n: 400,
    successes: 396,
    fromMs: canaryStart,
    toMs: canaryStart + 2 * HOUR,
    policyVersion: 'v5',
  }),
  batch({
    cohort: 'search',
    n: 400,
    successes: 368,
    fromMs: canaryStart + 2 * HOUR,
    toMs: canaryStart + 4 * HOUR,
    policyVersion: 'v5',
  }),
  batch({
    cohort: 'search',
    n: 400,
    successes: 364,
    fromMs: canaryStart + 2 * HOUR,
    toMs: canaryStart + 4 * HOUR,
    policyVersion: 'v6',
  }),
].flat();

// A canary thirty hours ago, on clock hours: v7 served `straggler` alone for an hour, v8 took a
// share for the next hour (both 90 %), then served alone (80 %); one v7 task straggled in almost two
// hours later (an old pod finishing a queued job). By first and last task alone, the overlap runs
// to that task, and v8's hours alone are compared with v7's from before: a failure.
const shift = Math.floor((now - 30 * HOUR) / HOUR) * HOUR;
const straggling = [
  batch({
    cohort: 'straggler',
    n: 300,
    successes: 297,
    fromMs: shift,
    toMs: shift + HOUR,
    policyVersion: 'v7',
  }),
  batch({
    cohort: 'straggler',
    n: 300,
    successes: 270,
    fromMs: shift + HOUR,
    toMs: shift + 2 * HOUR,
    policyVersion: 'v7',
  }),
  batch({
    cohort: 'straggler',
    n: 250,
    successes: 225,
    fromMs: shift + HOUR,
    toMs: shift + 2 * HOUR,
    policyVersion: 'v8',
  }),
  batch({
    cohort: 'straggler',
    n: 1000,
    successes: 800,
    fromMs: shift + 2 * HOUR,
    toMs: shift + 4 * HOUR,
    policyVersion: 'v8',
  }),
  batch({
    cohort: 'straggler',
    n: 1,
    successes: 1,
    fromMs: shift + 3 * HOUR + 50 * 60_000,
    toMs: shift + 3 * HOUR + 51 * 60_000,
    policyVersion: 'v7',
  }),
].flat();

// A canary forty hours ago that ramps up while every task's success moves with the hour: in the
// first hour (a provider incident) ramp-2 takes 40 tasks to ramp-1's 300, 75 % against 80 %; in the
// next, 300 each, 90 % against 95 %. Five points worse in each hour, but pooled over the two it
// reads 88.2 % against 87.5 %: most of ramp-2's tasks came in the good hour.
const rampStart = Math.floor((now - 40 * HOUR) / HOUR) * HOUR;
const rampedCanary = [
  batch({
    cohort: 'ramp',
    n: 300,
    successes: 240,
    fromMs: rampStart,
    toMs: rampStart + HOUR,
    policyVersion: 'ramp-1',
  }),
  batch({
    cohort: 'ramp',
    n: 40,
    successes: 30,
    fromMs: rampStart,
    toMs: rampStart + HOUR,
    policyVersion: 'ramp-2',
  }),
  batch({
    cohort: 'ramp',
    n: 300,
    successes: 285,
    fromMs: rampStart + HOUR,
    toMs: rampStart + 2 * HOUR,
    policyVersion: 'ramp-1',
  }),
  batch({
    cohort: 'ramp',
    n: 300,
    successes: 270,
    fromMs: rampStart + HOUR,
    toMs: rampStart + 2 * HOUR,
    policyVersion: 'ramp-2',
  }),
].flat();

// A canary thirty hours ago whose versions are alike in every hour (same cost a task; 90 % in the
// first hour, 70 % in the next) but take opposite shares of the two: mix-1 400 then 100 tasks,
// mix-2 100 then 400. Pooled, mix-2 reads 12 points worse and 16 % dearer per success. Both
// versions' last tasks start at the same millisecond, 54 minutes into the second hour, so that
// the overlap holds every task of both.
const mixStart = Math.floor((now - 30 * HOUR) / HOUR) * HOUR;
const oppositeMixes = (
  [
    ['mix-1', 0, 400, 360],
    ['mix-2', 0, 100, 90],
    ['mix-1', 1, 100, 70],
    ['mix-2', 1, 400, 280],
  ] as const
).flatMap(([policyVersion, hour, n, successes]) =>
  batch({
    cohort: 'mix',
    n,
    successes,
    fromMs: mixStart + hour * HOUR,
    toMs: mixStart + hour * HOUR + (hour === 0 ? HOUR : (0.9 * HOUR * n) / (n - 1)),
    policyVersion,
  }),
);

const evals = [
  // A candidate as good as the baseline, with a quality score.
  batch({
    cohort: 'faq',
    n: 600,
    successes: 552,
    ...recent,
    evalRun: 'equal',
    scores: (i) => ({ groundedness: i % 2 === 0 ? 0.8 : 0.9 }),
  }),
  batch({ cohort: 'extraction', n: 600, successes: 540, ...recent, evalRun: 'equal' }),
  // Extraction ten points worse.
  batch({ cohort: 'faq', n: 600, successes: 555, ...recent, evalRun: 'worse' }),
  batch({ cohort: 'extraction', n: 600, successes: 480, ...recent, evalRun: 'worse' }),
  // Too few cases to say anything.
  batch({ cohort: 'faq', n: 100, successes: 92, ...recent, evalRun: 'tiny' }),
  batch({ cohort: 'extraction', n: 100, successes: 90, ...recent, evalRun: 'tiny' }),
].flat();

let instance: StartedInstance;
let dataDir = '';
const env = () => ({ ROUTEWATCH_URL: instance.url });

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'routewatch-gate-'));
  instance = await startInstance({ ROUTEWATCH_DATA_DIR: dataDir });
  for (const body of otlpBodiesOf([
    ...production,
    ...earlierCanary,
    ...straggling,
    ...rampedCanary,
    ...oppositeMixes,
    ...evals,
  ])) {
    const res = await fetch(`${instance.url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(res.status).toBe(200);
  }
}, 120_000);

afterAll(async () => {
  await instance?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const gate = (...args: string[]) => runCli(['gate', ...args], { env: env(), timeoutMs: 60_000 });

describe('routewatch gate', () => {
  it('passes an equal candidate (exit 0), every cohort with its numbers and the score beside', async () => {
    const run = await gate('--baseline', 'policy:v1', '--candidate', 'eval:equal', '--json');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as GateResult;
    expect(result.verdict).toBe('pass');
    const byCohort = Object.fromEntries(result.cohorts.map((c) => [c.cohort, c]));
    // Exactly the crafted counts: every acknowledged span was stored before the gate read.
    expect(byCohort['faq']).toMatchObject({
      verdict: 'pass',
      baseline: { tasks: 600, known: 600 },
      candidate: { tasks: 600, known: 600 },
      successChange: { estimate: 0 },
    });
    expect(byCohort['extraction']?.verdict).toBe('pass');
    expect(byCohort['faq']?.scores).toEqual([
      expect.objectContaining({
        name: 'groundedness',
        candidate: expect.objectContaining({ n: 600 }),
      }),
    ]);
    expect(byCohort['faq']?.scores[0]?.candidate.value).toBeCloseTo(0.85, 12);
    // billing has no v1 tasks and no eval: no data on either side.
    expect(byCohort['billing']).toBeUndefined();
  });

  it('fails a clear regression (exit 1) on the cohort that regressed only', async () => {
    const run = await gate('--baseline', 'policy:v1', '--candidate', 'eval:worse');
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^extraction\s+FAIL\s+600\/600\s+90\.0% .*80\.0% .*−10\.0 pts/m);
    expect(run.stdout).toMatch(/^faq\s+PASS\s/m);
    expect(run.stdout).toMatch(
      /^extraction: success rate -10\.0 pts \(95 % CI .*\), a larger drop than the 2\.0 pts allowed$/m,
    );
    expect(run.stdout).toMatch(/^verdict: FAIL$/m);
  });

  it('answers insufficient_data (exit 3) below the minimum sample, with how many more are needed', async () => {
    const run = await gate('--baseline', 'policy:v1', '--candidate', 'eval:tiny', '--markdown');
    expect(run.code).toBe(3);
    expect(run.stdout).toMatch(/^### ⚠️ routewatch gate: INSUFFICIENT DATA$/m);
    expect(run.stdout).toMatch(/\| faq \| ⚠️ INSUFFICIENT DATA \| 600\/100 \|/);
    expect(run.stdout).toMatch(
      /100 cases with an outcome on the smaller side, fewer than 200: 100 more needed/,
    );
    // A lower minimum makes the same data enough: the threshold is the option, not a constant.
    const lower = await gate(
      '--baseline',
      'policy:v1',
      '--candidate',
      'eval:tiny',
      '--min-cases',
      '100',
    );
    expect(lower.code).toBe(0);
  });

  it('holds a candidate to the margin given: a 10-point drop passes a 12-point margin', async () => {
    const run = await gate(
      '--baseline',
      'policy:v1',
      '--candidate',
      'eval:worse',
      '--max-success-drop',
      '12',
      '--cohort',
      'extraction',
    );
    expect(run.code).toBe(0);
    expect(run.stdout).not.toMatch(/^faq/m);
  });

  it('compares two policy versions serving at once on the hour they overlapped (a canary)', async () => {
    const run = await gate('--baseline', 'policy:v3', '--candidate', 'policy:v4', '--json');
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as GateResult;
    expect(result.canary).toBe(true);
    expect(Date.parse(result.cohorts[0]!.concurrent!.overlap!.from)).toBe(shareFrom);
    // v3's two earlier hours (99 %) are left out: 93 % against 92 % in the same hours.
    expect(result.cohorts).toEqual([
      expect.objectContaining({
        cohort: 'billing',
        verdict: 'pass',
        baseline: expect.objectContaining({ tasks: 400 }),
        candidate: expect.objectContaining({ tasks: 400 }),
      }),
    ]);
    expect(result.cohorts[0]!.successChange.estimate).toBeCloseTo(-0.01, 12);
  });

  it('compares each cohort of a canary on its own overlap, and reports one without any as not compared', async () => {
    // Regression: the overlap was taken across all cohorts at once. v5's last refunds task came
    // before v6's first task, so there was none, and both cohorts were compared over all their
    // time: search failed on v5's two hours alone (99 %), refunds passed on disjoint hours.
    const run = await gate('--baseline', 'policy:v5', '--candidate', 'policy:v6', '--json');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(3);
    const result = JSON.parse(run.stdout) as GateResult;
    expect(result.verdict).toBe('insufficient_data');
    const byCohort = Object.fromEntries(result.cohorts.map((c) => [c.cohort, c]));
    // search: the two hours both versions served it, 92 % against 91 %.
    expect(byCohort['search']).toMatchObject({
      verdict: 'pass',
      baseline: { tasks: 400, known: 400 },
      candidate: { tasks: 400, known: 400 },
    });
    expect(byCohort['search']!.successChange.estimate).toBeCloseTo(-0.01, 12);
    expect(Date.parse(byCohort['search']!.concurrent!.overlap!.from)).toBe(canaryStart + 2 * HOUR);
    // refunds: nothing compared, and each side's times given.
    const refunds = byCohort['refunds']!;
    expect(refunds.verdict).toBe('insufficient_data');
    expect(refunds.concurrent?.overlap).toBeNull();
    expect(refunds.baseline.tasks).toBe(0);
    expect(refunds.candidate.tasks).toBe(0);
    const v5Last = new Date(canaryStart + HOUR - HOUR / 400).toISOString();
    const v6First = new Date(canaryStart + 2 * HOUR).toISOString();
    expect(refunds.concurrent?.baseline.last).toBe(v5Last);
    expect(refunds.concurrent?.candidate.first).toBe(v6First);
    expect(refunds.reason).toMatch(
      `no overlap: baseline's last task at ${v5Last}, candidate's first at ${v6First}; two policy versions are compared only on the time both served a cohort. For a straight cutover,`,
    );
    // The reason's suggestion runs as given, and compares each version's own hours of refunds.
    const suggested = /--baseline (\S+) --candidate (\S+) --cohort refunds$/.exec(refunds.reason);
    expect(suggested).not.toBeNull();
    const cutover = await gate(
      '--baseline',
      suggested![1]!,
      '--candidate',
      suggested![2]!,
      '--cohort',
      'refunds',
      '--json',
    );
    expect(cutover.stderr).toBe('');
    expect(cutover.code).toBe(0);
    const compared = (JSON.parse(cutover.stdout) as GateResult).cohorts;
    expect(compared).toMatchObject([
      { cohort: 'refunds', verdict: 'pass', baseline: { tasks: 400 }, candidate: { tasks: 400 } },
    ]);

    const table = await gate('--baseline', 'policy:v5', '--candidate', 'policy:v6');
    expect(table.code).toBe(3);
    expect(table.stdout).toMatch(/^refunds\s+INSUFFICIENT DATA\s+0\/0\s/m);
    expect(table.stdout).toMatch(/^search\s+PASS\s+400\/400\s/m);
    expect(table.stdout).toMatch(/^refunds: no overlap: baseline's last task at /m);
    expect(table.stdout).toMatch(
      /^verdict: INSUFFICIENT DATA; refunds not compared \(the versions never served it at the same time\): counted as insufficient data$/m,
    );
  });

  it('compares a canary on the clock hours both versions served: a straggling task does not stretch it', async () => {
    const run = await gate('--baseline', 'policy:v7', '--candidate', 'policy:v8', '--json');
    expect(run.stderr).toBe('');
    const result = JSON.parse(run.stdout) as GateResult;
    const straggler = result.cohorts.find((c) => c.cohort === 'straggler')!;
    // The overlap still runs to the straggler; only its one shared hour is compared: 90 % and 90 %.
    expect(straggler.concurrent?.overlap).toEqual({
      from: new Date(shift + HOUR).toISOString(),
      to: new Date(shift + 3 * HOUR + 50 * 60_000 + 1).toISOString(),
      hours: 1,
    });
    expect(straggler).toMatchObject({
      verdict: 'pass',
      baseline: { tasks: 300, known: 300 },
      candidate: { tasks: 250, known: 250 },
    });
    expect(run.code).toBe(0);
    const table = await gate('--baseline', 'policy:v7', '--candidate', 'policy:v8');
    expect(table.stdout).toMatch(
      /^straggler: success rate 0\.0 pts .*\(over .* → .*, in the 1 clock hour both served it\)$/m,
    );
  });

  it('weighs a ramping canary hour by hour: five points worse in every hour fails, though pooled it reads better', async () => {
    const run = await gate('--baseline', 'policy:ramp-1', '--candidate', 'policy:ramp-2', '--json');
    expect(run.stderr).toBe('');
    const ramp = (JSON.parse(run.stdout) as GateResult).cohorts.find((c) => c.cohort === 'ramp')!;
    expect(ramp.baseline.known).toBe(600);
    expect(ramp.candidate.known).toBe(340);
    expect(ramp.successChange.matchedBy).toBe('hour');
    expect(ramp.successChange.estimate).toBeCloseTo(-0.05, 9);
    expect(ramp.verdict).toBe('fail');
    expect(ramp.reason).toMatch(
      /^success rate -5\.0 pts \(95 % CI .*\), a larger drop than the 2\.0 pts allowed; weighed hour by hour: pooled over the hours it would read 0\.7 pts, as the two sides' shares of the traffic differ from hour to hour$/,
    );
    expect(run.code).toBe(1);
  });

  it("weighs a canary's cost per success hour by hour too: versions alike in every hour do not read as dearer", async () => {
    const run = await gate('--baseline', 'policy:mix-1', '--candidate', 'policy:mix-2', '--json');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const mix = (JSON.parse(run.stdout) as GateResult).cohorts.find((c) => c.cohort === 'mix')!;
    expect(mix.verdict).toBe('pass');
    expect(mix.successChange.estimate).toBeCloseTo(0, 9);
    const cost = mix.costPerSuccessfulTask;
    // Each side's own figure is what it paid per success, pooled: $0.001 a task over 86 % and 74 %.
    expect(cost.baseline.value).toBeCloseTo(0.5 / 430, 9);
    expect(cost.candidate.value).toBeCloseTo(0.5 / 370, 9);
    expect(cost.matched?.by).toBe('hour');
    expect(cost.matched?.candidate.value).toBeCloseTo(cost.matched!.baseline.value!, 9);
    expect(cost.relativeChange).toBeCloseTo(0, 9);
    const table = await gate('--baseline', 'policy:mix-1', '--candidate', 'policy:mix-2');
    expect(table.stdout).toMatch(/^mix: success rate 0\.0 pts .*weighed hour by hour/m);
    expect(table.stdout).not.toMatch(/may cost more/);
  });

  it('refuses a cohort neither side has as a usage error (exit 2), listing the ones they have', async () => {
    const run = await gate(
      '--baseline',
      'policy:v1',
      '--candidate',
      'eval:equal',
      '--cohort',
      'faq',
      '--cohort',
      'typo',
    );
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      'routewatch: no cohort "typo" in baseline policy:v1 or candidate eval:equal; the cohorts there: "extraction", "faq"\n',
    );
    const res = await fetch(
      `${instance.url}/api/v1/compare?baseline=policy:v1&candidate=eval:equal&cohort=typo`,
    );
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('INVALID_ARGUMENT');
    expect(body.error.message).toMatch(/^no cohort "typo" in baseline policy:v1/);
  });

  it('answers insufficient data (exit 3), not a usage error, for a cohort when neither side has any task', async () => {
    // No typo to point at: an eval run not started yet, a policy version not deployed yet.
    const run = await gate(
      '--baseline',
      'policy:not-deployed',
      '--candidate',
      'eval:not-run-yet',
      '--cohort',
      'faq',
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(3);
    expect(run.stdout).toMatch(/^faq\s+INSUFFICIENT DATA\s+0\/0\s/m);
    expect(run.stdout).toMatch(
      /^faq: no task yet in baseline policy:not-deployed or candidate eval:not-run-yet, in any cohort: check the references/m,
    );
    const res = await fetch(
      `${instance.url}/api/v1/compare?baseline=policy:not-deployed&candidate=eval:not-run-yet&cohort=faq,search`,
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as GateResult;
    expect(body.verdict).toBe('insufficient_data');
    expect(body.cohorts.map((c) => [c.cohort, c.verdict])).toEqual([
      ['faq', 'insufficient_data'],
      ['search', 'insufficient_data'],
    ]);
    // Without a cohort: what the store holds instead, for each side (both evals failed to export
    // reads the same as nothing run yet, and the store knows which).
    const bare = await gate('--baseline', 'policy:not-deployed', '--candidate', 'eval:not-run-yet');
    expect(bare.code).toBe(3);
    expect(bare.stdout).toMatch(/^\(no tasks on either side\)$/m);
    expect(bare.stdout).toMatch(
      /^the baseline policy:not-deployed selects no task, in any cohort: the policy versions here, latest first: policy:v\d.*check the version name\. And the candidate eval:not-run-yet selects no task, in any cohort: the eval runs here, latest first: eval:.*check the run name/m,
    );
    // With tasks on one side, a cohort neither has is still a typo (exit 2, above).
    const typo = await gate(
      '--baseline',
      'policy:v1',
      '--candidate',
      'eval:not-run-yet',
      '--cohort',
      'fqa',
    );
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(
      /^routewatch: no cohort "fqa" in baseline policy:v1 or candidate eval:not-run-yet; the cohorts there: /,
    );
  });

  it('refuses a reference that selects no task while the other side has some (exit 2), naming what is there', async () => {
    // A mistyped run, or an eval that never exported here: "200 more needed" would promise that
    // waiting helps, and a job that reads exit 3 as a warning would never block.
    const typo = await gate('--baseline', 'policy:v1', '--candidate', 'eval:eqaul');
    expect(typo.stdout).toBe('');
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(
      /^routewatch: the candidate eval:eqaul selects no task, in any cohort: the eval runs here, latest first: eval:\w+ \(last task \d{4}-.*; check the run name, and that the eval exported to this routewatch/,
    );
    for (const run of ['equal', 'worse', 'tiny'])
      expect(typo.stderr).toContain(`eval:${run} (last task`);
    const version = await gate('--baseline', 'policy:v9', '--candidate', 'eval:equal');
    expect(version.code).toBe(2);
    expect(version.stderr).toMatch(
      /^routewatch: the baseline policy:v9 selects no task, in any cohort: the policy versions here, latest first: policy:v\d .*policy:v1 .*; check the version name\n$/,
    );
    const window = await gate(
      '--baseline',
      'window:2020-01-01/2020-01-08',
      '--candidate',
      'eval:equal',
    );
    expect(window.code).toBe(2);
    expect(window.stderr).toMatch(
      /^routewatch: the baseline window:2020-01-01T00:00:00\.000Z\/2020-01-08T00:00:00\.000Z selects no task, in any cohort: the production tasks stored here started from \d{4}-.* to \d{4}-.*; choose a window within that time\n$/,
    );
    const res = await fetch(
      `${instance.url}/api/v1/compare?baseline=policy:v1&candidate=eval:eqaul`,
    );
    expect(res.status).toBe(400);
    // A side with tasks in other cohorts than the one asked for is no mistake: that cohort lacks them.
    const elsewhere = await gate(
      '--baseline',
      'policy:v3',
      '--candidate',
      'eval:equal',
      '--cohort',
      'billing',
    );
    expect(elsewhere.code).toBe(3);
    expect(elsewhere.stdout).toMatch(
      /^billing: the candidate has no task in this cohort: nothing to compare with$/m,
    );
  });

  it('judges an eval run against production on the cohorts the eval covers, and names the others', async () => {
    // Production in the last 7 hours served faq, extraction and billing; the eval covers the first two.
    const run = await gate('--baseline', 'window:7h/0s', '--candidate', 'eval:equal');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).not.toMatch(/^billing/m);
    expect(run.stdout).toMatch(/^not compared, as eval:equal has no task in it: billing$/m);
    const json = await gate('--baseline', 'window:7h/0s', '--candidate', 'eval:equal', '--json');
    const result = JSON.parse(json.stdout) as GateResult;
    expect(result.notCovered).toEqual(['billing']);
    expect(result.cohorts.map((c) => c.cohort)).toEqual(['extraction', 'faq']);
    // Asked for by name, it is compared: and the eval has nothing for it.
    const asked = await gate(
      '--baseline',
      'window:7h/0s',
      '--candidate',
      'eval:equal',
      '--cohort',
      'billing',
    );
    expect(asked.code).toBe(3);
    expect(asked.stdout).toMatch(/^billing: the candidate has no task in this cohort/m);
  });

  it('refuses a maxSuccessDrop given in points to the API, naming the unit', async () => {
    // 1 would be a margin of 100 points (every candidate passes): far likelier 1 point meant.
    for (const drop of ['1', '2', '-0.01']) {
      const res = await fetch(
        `${instance.url}/api/v1/compare?baseline=policy:v1&candidate=eval:equal&maxSuccessDrop=${drop}`,
      );
      expect(res.status, drop).toBe(400);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.message).toMatch(
        /^invalid query: maxSuccessDrop: a fraction of 1 \(0\.02 is two percentage points\)/,
      );
    }
    const ok = await fetch(
      `${instance.url}/api/v1/compare?baseline=policy:v1&candidate=eval:equal&maxSuccessDrop=0.5`,
    );
    expect(ok.status).toBe(200);
    // Empty is refused, not read as a margin of 0.
    for (const empty of ['maxSuccessDrop=', 'minCases=', 'confidence=%20']) {
      const res = await fetch(
        `${instance.url}/api/v1/compare?baseline=policy:v1&candidate=eval:equal&${empty}`,
      );
      expect(res.status, empty).toBe(400);
      const body = (await res.json()) as { error: { message: string } };
      expect(body.error.message).toMatch(/empty: give a number, or leave the parameter out/);
    }
  });

  it.each([
    [['--candidate', 'eval:equal'], /needs --baseline and --candidate/],
    [['--baseline', 'v1', '--candidate', 'eval:equal'], /invalid reference "v1": use eval:<run>/],
    [['--baseline', 'window:2026-12-02/yesterday', '--candidate', 'eval:equal'], /invalid window/],
    [
      ['--baseline', 'policy:v1', '--candidate', 'eval:equal', '--max-success-drop', '150'],
      /--max-success-drop takes percentage points/,
    ],
    [
      ['--baseline', 'policy:v1', '--candidate', 'eval:equal', '--max-success-drop', '60'],
      /--max-success-drop takes percentage points from 0 to 50 \(2 for two points\), got "60"/,
    ],
    [
      ['--baseline', 'policy:v1', '--candidate', 'eval:equal', '--max-success-drop', '0.02'],
      /--max-success-drop takes percentage points: 0\.02 would allow a drop of 0\.02 points; write 2 for two points/,
    ],
    [
      ['--baseline', 'policy:v1', '--candidate', 'eval:equal', '--confidence', '95'],
      /--confidence takes a level between 0\.5 and 1/,
    ],
    [['--baseline', 'policy:v1', '--candidate', 'eval:equal', '--json', '--markdown'], /one of/],
    [
      ['--baseline', 'policy:v1', '--candidate', 'policy:v1'],
      /the baseline and the candidate are the same reference \(policy:v1\): a side compared with itself passes every cohort/,
    ],
    [
      ['--baseline', 'window:2d/1d', '--candidate', 'window:2d/1d'],
      /the baseline and the candidate are the same reference \(window:/,
    ],
  ])('refuses %j as a usage error (exit 2)', async (args, message) => {
    const run = await gate(...args);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stdout).toBe('');
  });

  it('refuses the same reference on both sides through the API too (400)', async () => {
    const res = await fetch(
      `${instance.url}/api/v1/compare?baseline=eval:equal&candidate=eval:equal`,
    );
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(
      /the baseline and the candidate are the same reference \(eval:equal\)/,
    );
  });

  it('exits 1 with a clear message when no routewatch answers', async () => {
    const url = `http://127.0.0.1:${await unusedPort()}`;
    const run = await runCli(
      ['gate', '--baseline', 'policy:v1', '--candidate', 'eval:equal', '--url', url],
      { env: {} },
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`no routewatch answered at ${url} (ECONNREFUSED)`);
  });
});

describe('eval tasks and production views', () => {
  it('keeps eval runs out of the production report, which carries the advice', async () => {
    const run = await runCli(['report', '--window', '7h', '--json'], { env: env() });
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as Report & { advice: { cohorts: unknown[] } };
    expect(report.overall?.tasks).toBe(production.length);
    expect(report.rows.map((r) => [r.cohort, r.tasks])).toEqual([
      ['billing', 1200],
      ['extraction', 600],
      ['faq', 600],
    ]);
    expect(report.advice.cohorts).toHaveLength(3);
  });

  it('applies the report’s cohort, service and policy filters to its advice too', async () => {
    const run = await runCli(['report', '--window', '7h', '--policy', 'v4', '--json'], {
      env: env(),
    });
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as Report & {
      advice: { cohorts: { cohort: string; small: { tasks: number } | null }[] };
    };
    expect(report.rows.map((r) => [r.cohort, r.tasks])).toEqual([['billing', 400]]);
    expect(report.advice.cohorts.map((c) => [c.cohort, c.small?.tasks])).toEqual([
      ['billing', 400],
    ]);
    const advice = await runCli(['advice', '--window', '7h', '--cohort', 'faq', '--json'], {
      env: env(),
    });
    expect(advice.code).toBe(0);
    const cohorts = (JSON.parse(advice.stdout) as { cohorts: { cohort: string }[] }).cohorts;
    expect(cohorts.map((c) => c.cohort)).toEqual(['faq']);
  });

  it('advises per cohort from production traffic', async () => {
    const run = await runCli(['advice', '--window', '7h'], { env: env() });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      /^ {2}faq\s+keep\s+on small\s+no large traffic to compare the small route with \(92\.0 % success/m,
    );
  });
});
