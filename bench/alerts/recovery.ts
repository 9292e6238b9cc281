/**
 * How soon an alert resolves once its cohort × route is well again, and whether a lasting
 * degradation stays one incident: one `success_rate_drop` monitor with the default rules and
 * settings, simulated minute by minute and evaluated every minute as production evaluates
 * (`--every`), through the detector and lifecycle code (`analyzer/detectors.ts`,
 * `analyzer/lifecycle.ts`): 96 buckets of 15 minutes ending at the evaluated minute, the trailing
 * baseline held at an open incident's start, without the resolved ones and reaching back by
 * the time they took (at most one more window), as the evaluator reads it.
 *
 * Two arms on the same streams: "now", and "without" the open alert's state given to the detector
 * (no recovery read from the latest data, no hysteresis), which is how it judged before. Not part
 * of `npm test`; the figures are in docs/benchmarks.md.
 */
import { detect } from '../../analyzer/detectors.js';
import { evidenceFrom, step } from '../../analyzer/lifecycle.js';
import type { AlertRecord } from '../../analyzer/lifecycle.js';
import { resolveRules } from '../../analyzer/rules.js';
import { reachBack } from '../../analyzer/evaluator.js';
import { emptyCounts } from '../../analyzer/series.js';
import type { TaskCounts } from '../../analyzer/series.js';
import { describeMachine } from '../instrumentation/machine.js';
import { benchArgs } from '../cli-args.js';
import { mergeIntervals } from './intervals.js';
import { poisson, seeded } from './random.js';

const USAGE =
  'Usage: npm run bench:recovery -- [--seeds 20] [--every 1]   (--every: minutes between evaluations; production evaluates every minute)';
const { values } = benchArgs(
  {
    options: {
      seeds: { type: 'string', default: '20' },
      every: { type: 'string', default: '1' },
    },
  },
  USAGE,
);
const SEEDS = Number(values.seeds);
const EVERY = Number(values.every);
for (const [name, value] of [
  ['--seeds', SEEDS],
  ['--every', EVERY],
] as const) {
  if (!Number.isInteger(value) || value < 1) {
    console.error(`${name} takes a whole number of at least 1\n${USAGE}`);
    process.exit(2);
  }
}

const { evaluation, rules } = resolveRules({});
const RULE = rules.find((r) => r.id === 'success_rate_drop')!;
const MINUTE = 60_000;
const DAY = 1_440;
const HORIZON = evaluation.horizonMs / MINUTE;
const BUCKET = HORIZON / evaluation.buckets;
const BASELINE = evaluation.baselineWindowMs / MINUTE;
const HISTORY_DAYS = 8;

interface Scenario {
  name: string;
  perDay: number;
  /** Success rate during the incident, and whether a minute of it is degraded (minutes since its start). */
  during: number;
  degraded?: (minute: number) => boolean;
  /** The incident's length and the time after it, in days; `after` 0 is a lasting incident. */
  days: number;
  after: number;
}

const SCENARIOS: Scenario[] = [
  { name: '200/day, 95 % → 80 % for 1 day', perDay: 200, during: 0.8, days: 1, after: 2 },
  { name: '2 000/day, 95 % → 80 % for 6 h', perDay: 2_000, during: 0.8, days: 0.25, after: 2 },
  { name: '20 000/day, 95 % → 85 % for 2.4 h', perDay: 20_000, during: 0.85, days: 0.1, after: 1 },
  { name: '200/day, 95 % → 85 %, lasting', perDay: 200, during: 0.85, days: 4, after: 0 },
  { name: '2 000/day, 95 % → 90 %, lasting', perDay: 2_000, during: 0.9, days: 4, after: 0 },
  { name: '2 000/day, 95 % → 92 %, lasting', perDay: 2_000, during: 0.92, days: 4, after: 0 },
  {
    name: '20 000/day, 15 min at 60 % every 2 h, lasting',
    perDay: 20_000,
    during: 0.6,
    degraded: (minute) => minute % 120 < 15,
    days: 2,
    after: 0,
  },
];

/** Cumulative tasks and failures, minute by minute: [i] counts the minutes before i. */
interface Stream {
  tasks: Float64Array;
  failures: Float64Array;
}

function stream(scenario: Scenario, random: () => number): Stream {
  const lambda = scenario.perDay / DAY;
  const incident = HISTORY_DAYS * DAY;
  const end = incident + Math.round(scenario.days * DAY);
  const total = end + Math.round(scenario.after * DAY);
  const tasks = new Float64Array(total + 1);
  const failures = new Float64Array(total + 1);
  for (let i = 0; i < total; i++) {
    const bad = i >= incident && i < end && (scenario.degraded?.(i - incident) ?? true);
    const success = bad ? scenario.during : 0.95;
    const n = poisson(lambda, random);
    let failed = 0;
    for (let t = 0; t < n; t++) if (random() >= success) failed++;
    tasks[i + 1] = tasks[i]! + n;
    failures[i + 1] = failures[i]! + failed;
  }
  return { tasks, failures };
}

function countsBetween(s: Stream, from: number, to: number): TaskCounts {
  const a = Math.max(0, from);
  const b = Math.max(0, to);
  const c = emptyCounts();
  c.tasks = s.tasks[b]! - s.tasks[a]!;
  c.known = c.tasks;
  c.failures = s.failures[b]! - s.failures[a]!;
  c.successes = c.known - c.failures;
  return c;
}

/** Counts over [from, to) without the minutes of `spans`, as the evaluator leaves them out. */
function baselineWithout(
  s: Stream,
  from: number,
  to: number,
  spans: readonly [number, number][],
): TaskCounts {
  const c = countsBetween(s, from, to);
  for (const [a, b] of mergeIntervals(spans)) {
    const lo = Math.max(a, from);
    const hi = Math.min(b, to);
    if (hi <= lo) continue;
    const out = countsBetween(s, lo, hi);
    c.tasks -= out.tasks;
    c.known -= out.known;
    c.failures -= out.failures;
    c.successes -= out.successes;
  }
  return c;
}

interface Run {
  incidents: number;
  /** Hours from the incident's end to the first resolution after it; null when none. */
  resolvedAfterEndH: number | null;
  /** Resolutions while the incident lasted. */
  resolvedDuring: number;
}

function track(scenario: Scenario, s: Stream, withState: boolean): Run {
  const incident = HISTORY_DAYS * DAY;
  const end = incident + Math.round(scenario.days * DAY);
  const last = s.tasks.length - 1;
  let record: AlertRecord | undefined;
  const run: Run = { incidents: 0, resolvedAfterEndH: null, resolvedDuring: 0 };
  // Resolved incidents, [change point, resolution) in minutes: left out of the baseline.
  const resolved: [number, number][] = [];
  for (let t = incident - 60; t <= last; t += EVERY) {
    const now = t * MINUTE;
    const open = record?.state === 'pending' || record?.state === 'firing';
    const windowStart = t - HORIZON;
    // Held at the incident's start while an alert is open, as the evaluator does.
    const baselineEnd =
      open && record!.changedAt !== null
        ? Math.min(windowStart, Math.floor(record!.changedAt / MINUTE))
        : windowStart;
    const current = Array.from({ length: evaluation.buckets }, (_, b) =>
      countsBetween(s, windowStart + b * BUCKET, windowStart + (b + 1) * BUCKET),
    );
    const finding = detect(
      {
        rule: RULE,
        cohort: 'c',
        route: 'small',
        detail: '',
        current,
        fromMs: windowStart * MINUTE,
        bucketMs: BUCKET * MINUTE,
        baseline: baselineWithout(
          s,
          reachBack(
            resolved.map(([fromMs, toMs]) => ({ fromMs, toMs })),
            baselineEnd,
            BASELINE,
          ),
          baselineEnd,
          resolved,
        ),
        baselineDescription: 'trailing 7 d',
        baselineSpanMs: evaluation.baselineWindowMs,
        monitors: 1,
        evidenceFromMs: evidenceFrom(record, now),
        alertState: withState && open ? (record!.state as 'pending' | 'firing') : null,
      },
      evaluation,
    );
    if (!record && finding.status !== 'degraded') continue;
    const result = step(record, finding, now, evaluation);
    if (result.event?.kind === 'resolved' && record?.changedAt != null)
      resolved.push([Math.floor(record.changedAt / MINUTE), t]);
    record = result.record;
    if (result.event?.kind === 'firing') run.incidents++;
    if (result.event?.kind === 'resolved') {
      if (t <= end) run.resolvedDuring++;
      else run.resolvedAfterEndH ??= (t - end) / 60;
    }
  }
  return run;
}

const quantiles = (values: number[]) => {
  if (values.length === 0) return '—';
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return `${at(0.5).toFixed(1)} (${sorted[0]!.toFixed(1)}–${sorted.at(-1)!.toFixed(1)})`;
};

console.log(describeMachine().join('\n'));
console.log(`${SEEDS} seeds per scenario · default rules · evaluated every ${EVERY} min\n`);
console.log(
  '| scenario | arm | incidents per run | resolved while it lasted | hours from its end to resolved, median (range) | never resolved |',
);
console.log('| --- | --- | ---: | ---: | --- | ---: |');
for (const scenario of SCENARIOS) {
  for (const withState of [false, true]) {
    const runs: Run[] = [];
    for (let seed = 1; seed <= SEEDS; seed++) {
      runs.push(track(scenario, stream(scenario, seeded(seed)), withState));
    }
    const delays = runs.flatMap((r) => (r.resolvedAfterEndH === null ? [] : [r.resolvedAfterEndH]));
    const lasting = scenario.after === 0;
    console.log(
      `| ${scenario.name} | ${withState ? 'now' : 'without'} | ${(runs.reduce((a, r) => a + r.incidents, 0) / SEEDS).toFixed(2)} | ${runs.reduce((a, r) => a + r.resolvedDuring, 0)} | ${lasting ? 'n/a' : quantiles(delays)} | ${lasting ? 'n/a' : runs.filter((r) => r.incidents > 0 && r.resolvedAfterEndH === null).length} |`,
    );
  }
}
