/**
 * How soon an alert resolves once its cohort × route is well again, and whether a lasting
 * degradation stays one incident: one `success_rate_drop` monitor with the default rules and
 * settings, evaluated at the end of every 15-minute bucket through the detector and lifecycle code
 * (`analyzer/detectors.ts`, `analyzer/lifecycle.ts`), its trailing baseline held at an open
 * incident's start as the evaluator holds it.
 *
 * Two arms on the same streams: "now", and "without" the open alert's state given to the detector
 * (no recovery read from the latest data, no hysteresis), which is how it judged before. Not part
 * of `npm test`; the figures are in docs/benchmarks.md.
 */
import { detect } from '../../analyzer/detectors.js';
import { evidenceFrom, step } from '../../analyzer/lifecycle.js';
import type { AlertRecord } from '../../analyzer/lifecycle.js';
import { resolveRules } from '../../analyzer/rules.js';
import { addCounts, emptyCounts } from '../../analyzer/series.js';
import type { TaskCounts } from '../../analyzer/series.js';
import { describeMachine } from '../instrumentation/machine.js';
import { benchArgs } from '../cli-args.js';

const USAGE = 'Usage: npm run bench:recovery -- [--seeds 20]';
const { values } = benchArgs({ options: { seeds: { type: 'string', default: '20' } } }, USAGE);
const SEEDS = Number(values.seeds);
if (!Number.isInteger(SEEDS) || SEEDS < 1) {
  console.error(`--seeds takes a whole number of at least 1\n${USAGE}`);
  process.exit(2);
}

const { evaluation, rules } = resolveRules({});
const RULE = rules.find((r) => r.id === 'success_rate_drop')!;
const BUCKET_MS = evaluation.horizonMs / evaluation.buckets;
const DAY = 86_400_000 / BUCKET_MS;
const WINDOW = evaluation.buckets;
const BASELINE = Math.round(evaluation.baselineWindowMs / BUCKET_MS);
const HISTORY_DAYS = 8;

interface Scenario {
  name: string;
  perDay: number;
  /** Success rate during the incident, its length in days (Infinity: to the end), the days after. */
  during: number;
  days: number;
  after: number;
}

const SCENARIOS: Scenario[] = [
  { name: '200/day, 95 % → 80 % for 1 day', perDay: 200, during: 0.8, days: 1, after: 3 },
  { name: '2 000/day, 95 % → 80 % for 6 h', perDay: 2_000, during: 0.8, days: 0.25, after: 2 },
  { name: '20 000/day, 95 % → 85 % for 2.4 h', perDay: 20_000, during: 0.85, days: 0.1, after: 2 },
  { name: '200/day, 95 % → 85 %, lasting', perDay: 200, during: 0.85, days: 10, after: 0 },
  { name: '2 000/day, 95 % → 90 %, lasting', perDay: 2_000, during: 0.9, days: 10, after: 0 },
  { name: '2 000/day, 95 % → 92 %, lasting', perDay: 2_000, during: 0.92, days: 10, after: 0 },
];

/** mulberry32 */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function poisson(lambda: number, random: () => number): number {
  // Normal approximation above 50 tasks a bucket: enough for counts, and fast.
  if (lambda > 50) {
    const u = Math.max(random(), 1e-12);
    const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
    return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * z));
  }
  let k = 0;
  let p = Math.exp(-lambda);
  let s = p;
  const u = random();
  while (u > s) {
    k++;
    p *= lambda / k;
    s += p;
  }
  return k;
}

function stream(scenario: Scenario, random: () => number): TaskCounts[] {
  const lambda = scenario.perDay / DAY;
  const incident = HISTORY_DAYS * DAY;
  const end = incident + Math.round(scenario.days * DAY);
  const total = end + Math.round(scenario.after * DAY);
  return Array.from({ length: total }, (_, i) => {
    const success = i >= incident && i < end ? scenario.during : 0.95;
    const c = emptyCounts();
    const n = poisson(lambda, random);
    for (let t = 0; t < n; t++) {
      if (random() < success) c.successes++;
      else c.failures++;
    }
    c.tasks = n;
    c.known = n;
    return c;
  });
}

interface Run {
  incidents: number;
  /** Hours from the incident's end to the first resolution after it; null when none. */
  resolvedAfterEndH: number | null;
  /** Resolutions while the incident lasted. */
  resolvedDuring: number;
}

function track(scenario: Scenario, buckets: TaskCounts[], withState: boolean): Run {
  const prefix = [emptyCounts()];
  for (const b of buckets) prefix.push(addCounts(addCounts(emptyCounts(), prefix.at(-1)!), b));
  const between = (from: number, to: number) => {
    const c = emptyCounts();
    const a = prefix[Math.max(0, from)]!;
    const b = prefix[Math.max(0, to)]!;
    c.tasks = b.tasks - a.tasks;
    c.known = b.known - a.known;
    c.successes = b.successes - a.successes;
    c.failures = b.failures - a.failures;
    return c;
  };
  const incident = HISTORY_DAYS * DAY;
  const end = incident + Math.round(scenario.days * DAY);
  let record: AlertRecord | undefined;
  const run: Run = { incidents: 0, resolvedAfterEndH: null, resolvedDuring: 0 };
  for (let t = incident - DAY; t < buckets.length; t++) {
    const now = (t + 1) * BUCKET_MS;
    const open = record?.state === 'pending' || record?.state === 'firing';
    const windowStart = t + 1 - WINDOW;
    // Held at the incident's start while an alert is open, as the evaluator does.
    const baselineEnd =
      open && record!.changedAt !== null
        ? Math.min(windowStart, Math.round(record!.changedAt / BUCKET_MS))
        : windowStart;
    const finding = detect(
      {
        rule: RULE,
        cohort: 'c',
        route: 'small',
        detail: '',
        current: buckets.slice(windowStart, t + 1),
        fromMs: windowStart * BUCKET_MS,
        bucketMs: BUCKET_MS,
        baseline: between(baselineEnd - BASELINE, baselineEnd),
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
    record = result.record;
    if (result.event?.kind === 'firing') run.incidents++;
    if (result.event?.kind === 'resolved') {
      if (t < end) run.resolvedDuring++;
      else run.resolvedAfterEndH ??= ((t + 1 - end) * BUCKET_MS) / 3_600_000;
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

console.log(describeMachine().join("\n"));
console.log(
  `${SEEDS} seeds per scenario · default rules · evaluated every ${BUCKET_MS / 60_000} min\n`,
);
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
