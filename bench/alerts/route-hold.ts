/**
 * What the route-wide baseline hold buys, and what it costs: one cohort × route watched by
 * `fallback_rate_spike` and `success_rate_drop`, simulated tick by tick from seeded generators and
 * evaluated through the detector and lifecycle code (`analyzer/detectors.ts`,
 * `analyzer/lifecycle.ts`), with the trailing baselines read as the evaluator reads them.
 *
 * A fallback storm: for a while half the tasks fall back to the large model, which answers them,
 * so the success rate *rises* (88 % → 97 %); then the route is as before. Two scenarios:
 *   storm     the route stays normal after it: any success_rate_drop page is false.
 *   relapse   after it, the success rate drops to 80 % and stays there: it must page (a page
 *             before the relapse began is a false one, shown as a negative time).
 * Three arms on the same streams:
 *   own       only the monitor whose alert is open holds its baseline (before 2026-12-07);
 *   route     a firing alert holds the baselines of every rule on its cohort × route, and a
 *             resolved incident is left out of them (analyzer/evaluator.ts #holds; stop 46);
 *   reach     as route, and a baseline reaches back by the time it leaves out, at most one more
 *             window (analyzer/evaluator.ts reachBack): the evaluator now.
 * Four settings: the defaults (24 h window, 7-day baseline, evaluated every minute) with a
 * 6-hour and with a 2-day storm, and short windows as a soak test ran them (10-minute window in
 * 1-minute buckets, 20-minute baseline, evaluated every 30 s) with a 15- and a 30-minute storm.
 * Besides the pages, it counts how long success_rate_drop went unjudged (too little baseline)
 * after the storm's alert resolved. Not part of `npm test`; the figures are in docs/benchmarks.md.
 *
 * Usage: npm run bench:route-hold -- [--seeds 20]
 */
import { detect } from '../../analyzer/detectors.js';
import { evidenceFrom, step } from '../../analyzer/lifecycle.js';
import type { AlertRecord } from '../../analyzer/lifecycle.js';
import { parseRules } from '../../analyzer/rules.js';
import type { Rule, RuleSet } from '../../analyzer/rules.js';
import { reachBack } from '../../analyzer/evaluator.js';
import { emptyCounts } from '../../analyzer/series.js';
import type { TaskCounts } from '../../analyzer/series.js';
import { describeMachine } from '../instrumentation/machine.js';
import { benchArgs } from '../cli-args.js';
import { mergeIntervals } from './intervals.js';
import { poisson, seeded } from './random.js';

const USAGE = 'Usage: npm run bench:route-hold -- [--seeds 20]';
const { values } = benchArgs({ options: { seeds: { type: 'string', default: '20' } } }, USAGE);
const SEEDS = Number(values.seeds);
if (!Number.isInteger(SEEDS) || SEEDS < 1) {
  console.error(`--seeds takes a whole number of at least 1\n${USAGE}`);
  process.exit(2);
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

interface Setting {
  name: string;
  rules: RuleSet;
  /** One tick of the simulation, which is also the time between evaluations (ms). */
  tickMs: number;
  tasksPerTick: number;
  historyMs: number;
  stormMs: number;
  /** The relapse starts this long after the storm ends. */
  relapseAfterMs: number;
  /** Simulated after the storm ends. */
  afterMs: number;
}

/** The default rules and settings, evaluated every minute, 20 000 tasks a day. */
const DEFAULTS = {
  rules: parseRules('{}'),
  tickMs: MINUTE,
  tasksPerTick: 20_000 / 1_440,
  historyMs: 8 * 24 * HOUR,
};
/** Short windows as the soak test ran them, evaluated every 30 s, 200 tasks a minute. */
const SHORT = {
  rules: parseRules(`evaluation: { horizon: 10m, baselineWindow: 20m, buckets: 10 }`),
  tickMs: 30_000,
  tasksPerTick: 100,
  historyMs: 2 * HOUR,
  afterMs: 2 * HOUR,
};

const SETTINGS: Setting[] = [
  {
    ...DEFAULTS,
    name: 'defaults (24 h window, 7 d baseline), 20 000 tasks a day, a 6-hour storm',
    stormMs: 6 * HOUR,
    relapseAfterMs: 12 * HOUR,
    afterMs: 3 * 24 * HOUR,
  },
  {
    ...DEFAULTS,
    name: 'defaults, 20 000 tasks a day, a 2-day storm',
    stormMs: 48 * HOUR,
    relapseAfterMs: 24 * HOUR,
    afterMs: 4 * 24 * HOUR,
  },
  {
    ...SHORT,
    name: 'short windows (10 min in 1-min buckets, 20 min baseline), 200 tasks a minute, a 15-minute storm',
    stormMs: 15 * MINUTE,
    relapseAfterMs: 20 * MINUTE,
  },
  {
    ...SHORT,
    name: 'short windows, 200 tasks a minute, a 30-minute storm (longer than the baseline)',
    stormMs: 30 * MINUTE,
    // Before its alert has resolved: without reaching back, the relapse is left out with it.
    relapseAfterMs: 5 * MINUTE,
  },
];

type Arm = 'own' | 'route' | 'reach';

/** Cumulative counts tick by tick: [i] counts the ticks before i. */
interface Stream {
  tasks: Float64Array;
  failures: Float64Array;
  fallbacks: Float64Array;
}

function simulate(setting: Setting, relapse: boolean, random: () => number): Stream {
  const ticks = Math.round(
    (setting.historyMs + setting.stormMs + setting.afterMs) / setting.tickMs,
  );
  const stormFrom = setting.historyMs / setting.tickMs;
  const stormTo = (setting.historyMs + setting.stormMs) / setting.tickMs;
  const relapseFrom = stormTo + setting.relapseAfterMs / setting.tickMs;
  const s: Stream = {
    tasks: new Float64Array(ticks + 1),
    failures: new Float64Array(ticks + 1),
    fallbacks: new Float64Array(ticks + 1),
  };
  for (let i = 0; i < ticks; i++) {
    const storm = i >= stormFrom && i < stormTo;
    const success = storm ? 0.97 : relapse && i >= relapseFrom ? 0.8 : 0.88;
    const fallback = storm ? 0.5 : 0.1;
    const n = poisson(setting.tasksPerTick, random);
    let failed = 0;
    let fellBack = 0;
    for (let t = 0; t < n; t++) {
      if (random() >= success) failed++;
      if (random() < fallback) fellBack++;
    }
    s.tasks[i + 1] = s.tasks[i]! + n;
    s.failures[i + 1] = s.failures[i]! + failed;
    s.fallbacks[i + 1] = s.fallbacks[i]! + fellBack;
  }
  return s;
}

/** Counts over ticks [from, to) without the ticks of `spans` (merged: none counted twice). */
function counts(s: Stream, from: number, to: number, spans: readonly [number, number][] = []) {
  const between = (a: number, b: number) => {
    const lo = Math.max(0, Math.min(a, s.tasks.length - 1));
    const hi = Math.max(lo, Math.min(b, s.tasks.length - 1));
    return {
      tasks: s.tasks[hi]! - s.tasks[lo]!,
      failures: s.failures[hi]! - s.failures[lo]!,
      fallbacks: s.fallbacks[hi]! - s.fallbacks[lo]!,
    };
  };
  const sum = between(from, to);
  for (const [a, b] of mergeIntervals(spans)) {
    if (Math.min(b, to) <= Math.max(a, from)) continue;
    const out = between(Math.max(a, from), Math.min(b, to));
    sum.tasks -= out.tasks;
    sum.failures -= out.failures;
    sum.fallbacks -= out.fallbacks;
  }
  const c: TaskCounts = emptyCounts();
  c.tasks = sum.tasks;
  c.known = sum.tasks;
  c.failures = sum.failures;
  c.successes = sum.tasks - sum.failures;
  c.fallbacks = sum.fallbacks;
  c.reasons = { validation_failed: sum.fallbacks };
  return c;
}

interface Run {
  /**
   * success_rate_drop incidents that fired, and when the first one did: after the storm's end,
   * or in the relapse scenario after the relapse began (negative: before it, a false page).
   */
  drops: number;
  firstDropAfterMs: number | null;
  /** fallback_rate_spike incidents that fired. */
  spikes: number;
  /** Evaluations after the storm's alert resolved that left success_rate_drop unjudged. */
  unjudged: number;
}

function track(setting: Setting, s: Stream, arm: Arm, relapse: boolean): Run {
  const routeWide = arm !== 'own';
  const { evaluation } = setting.rules;
  const rules = ['fallback_rate_spike', 'success_rate_drop'].map((id) =>
    setting.rules.rules.find((r) => r.id === id)!,
  );
  const tick = setting.tickMs;
  const horizon = evaluation.horizonMs / tick;
  const bucket = horizon / evaluation.buckets;
  const window = evaluation.baselineWindowMs / tick;
  const stormEnd = (setting.historyMs + setting.stormMs) / tick;
  const since = relapse ? stormEnd + setting.relapseAfterMs / tick : stormEnd;
  const last = s.tasks.length - 1;
  const records = new Map<string, AlertRecord>();
  const resolved: [number, number][] = [];
  // The storm's own alert resolved: from then on, an unjudged success_rate_drop is counted.
  let stormResolved = false;
  const run: Run = { drops: 0, firstDropAfterMs: null, spikes: 0, unjudged: 0 };
  const toTick = (ms: number) => Math.floor(ms / tick);
  for (let t = setting.historyMs / tick - horizon; t <= last; t++) {
    const now = t * tick;
    const from = t - horizon;
    // The route's earliest firing incident (the "route" arm holds every rule's baseline there).
    const firing = [...records.values()]
      .filter((r) => r.state === 'firing' && r.changedAt !== null)
      .map((r) => toTick(r.changedAt!));
    const routeEnd = routeWide && firing.length > 0 ? Math.min(...firing) : Infinity;
    const findings = rules.map((rule: Rule) => {
      const record = records.get(rule.id);
      const open = record?.state === 'pending' || record?.state === 'firing';
      const own = open && record!.changedAt !== null ? toTick(record!.changedAt) : Infinity;
      // Floored to the bucket grid, and never after the window's start.
      const held = Math.floor(Math.min(own, routeEnd) / bucket) * bucket;
      const end = Number.isFinite(held) && held < from ? held : from;
      const start =
        arm === 'reach'
          ? reachBack(
              resolved.map(([fromMs, toMs]) => ({ fromMs, toMs })),
              end,
              window,
            )
          : end - window;
      const current = Array.from({ length: evaluation.buckets }, (_, b) =>
        counts(s, from + b * bucket, from + (b + 1) * bucket),
      );
      return detect(
        {
          rule,
          cohort: 'extraction',
          route: 'small',
          detail: '',
          current,
          fromMs: from * tick,
          bucketMs: bucket * tick,
          baseline: counts(s, start, end, routeWide ? resolved : []),
          baselineDescription: 'trailing',
          // The healthy history read, as the evaluator takes it (leftOut): less than the window
          // when the reach stopped before finding a window outside incidents.
          baselineSpanMs:
            arm === 'reach'
              ? (end - start - leftOutTicks(resolved, start, end)) * tick
              : evaluation.baselineWindowMs,
          monitors: 1,
          evidenceFromMs: evidenceFrom(record, now),
          alertState: open ? (record!.state as 'pending' | 'firing') : null,
        },
        evaluation,
      );
    });
    if (stormResolved && findings[1]!.status === 'insufficient_data') run.unjudged++;
    rules.forEach((rule, i) => {
      const record = records.get(rule.id);
      const finding = findings[i]!;
      if (!record && finding.status !== 'degraded') return;
      const result = step(record, finding, now, evaluation);
      if (result.event?.kind === 'resolved' && record?.changedAt != null) {
        resolved.push([toTick(record.changedAt), t]);
        if (rule.id === 'fallback_rate_spike') stormResolved = true;
      }
      if (result.event?.kind === 'firing') {
        if (rule.id === 'fallback_rate_spike') run.spikes++;
        else {
          run.drops++;
          run.firstDropAfterMs ??= (t - since) * tick;
        }
      }
      records.set(rule.id, result.record);
    });
  }
  return run;
}

/** Ticks of [start, end) within the resolved spans (merged: they may overlap). */
function leftOutTicks(spans: readonly [number, number][], start: number, end: number): number {
  let total = 0;
  let cursor = start;
  for (const [from, to] of [...spans].sort((a, b) => a[0] - b[0])) {
    const lo = Math.max(from, cursor);
    const hi = Math.min(to, end);
    if (hi > lo) {
      total += hi - lo;
      cursor = hi;
    }
  }
  return total;
}

const quantiles = (values: number[], unit: number, label: string) => {
  if (values.length === 0) return '—';
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  const f = (v: number) => (v / unit).toFixed(1);
  return `${f(at(0.5))} ${label} (${f(sorted[0]!)}–${f(sorted.at(-1)!)})`;
};

console.log(describeMachine().join('\n'));
console.log(`${SEEDS} seeds per scenario and setting\n`);
console.log(
  '| setting | scenario | arm | fallback_rate_spike incidents per run | success_rate_drop incidents per run | runs with one | the first, after the storm ended (relapse: after the relapse began), median (range) | success_rate_drop unjudged after the storm resolved, mean |',
);
console.log('| --- | --- | --- | ---: | ---: | ---: | --- | ---: |');
for (const setting of SETTINGS) {
  const unit = setting.tickMs === MINUTE ? HOUR : MINUTE;
  const label = unit === HOUR ? 'h' : 'min';
  for (const relapse of [false, true]) {
    for (const arm of ['own', 'route', 'reach'] as const) {
      const runs: Run[] = [];
      for (let seed = 1; seed <= SEEDS; seed++)
        runs.push(track(setting, simulate(setting, relapse, seeded(seed)), arm, relapse));
      const firsts = runs.flatMap((r) => (r.firstDropAfterMs === null ? [] : [r.firstDropAfterMs]));
      const mean = (f: (r: Run) => number) => runs.reduce((a, r) => a + f(r), 0) / SEEDS;
      console.log(
        `| ${setting.name} | ${relapse ? `relapse to 80 % ${setting.relapseAfterMs / unit} ${label} after` : 'storm, then normal'} | ${arm} | ${mean((r) => r.spikes).toFixed(2)} | ${mean((r) => r.drops).toFixed(2)} | ${firsts.length}/${SEEDS} | ${quantiles(firsts, unit, label)} | ${((mean((r) => r.unjudged) * setting.tickMs) / unit).toFixed(1)} ${label} |`,
      );
    }
  }
}
