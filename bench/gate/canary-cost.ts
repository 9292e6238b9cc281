/**
 * The gate's "the candidate may cost more" warning on canaries (audit 47, #4): how often it warns
 * on a candidate that costs the same per task and succeeds alike in every hour, and how often it
 * warns on one truly dearer, with the cost compared pooled over the hours (stop 47: the success
 * change was weighed hour by hour, the cost was not) and weighed hour by hour as the success rate
 * is (now). Not a test.
 *
 * Each run is a day of one cohort's traffic, 200 tasks an hour, the candidate's share ramping
 * from 5 % to 50 % over it. Every task's success depends on its hour only (92 %, or 60 % in the
 * incident's hours), its cost is log-normal (σ 0.8) around $0.001, the candidate's times
 * (1 + rise). The comparison is the gate's own: `matched`, `compareCohort` and `costRiseNote` on
 * the sums the gate reads, the "pooled" arm given the same hours without their costs.
 *
 * Usage: npm run bench:canary-cost -- [--seeds 400] [--first-seed 1]
 */
import { compareCohort, DEFAULT_GATE, EMPTY_SIDE, matched } from '../../analyzer/gate.js';
import type { GateResult, SideStats, Stratum } from '../../analyzer/gate.js';
import { costRiseNote } from '../../analyzer/gate-table.js';
import { seeded } from '../alerts/random.js';
import { benchArgs } from '../cli-args.js';
import { describeMachine } from '../instrumentation/machine.js';

const USAGE = 'Usage: npm run bench:canary-cost -- [--seeds 400] [--first-seed 1]';
const { values } = benchArgs(
  {
    options: {
      seeds: { type: 'string', default: '400' },
      'first-seed': { type: 'string', default: '1' },
    },
  },
  USAGE,
);
const seeds = Number(values.seeds);
const firstSeed = Number(values['first-seed']);
for (const [name, value] of [
  ['seeds', seeds],
  ['first-seed', firstSeed],
] as const) {
  if (!Number.isSafeInteger(value) || value < 1) {
    console.error(`--${name} must be a positive integer, got ${String(values[name])}\n${USAGE}`);
    process.exit(2);
  }
}

const HOURS = 24;
const PER_HOUR = 200;
const HOUR_MS = 3_600_000;

interface Scenario {
  name: string;
  /** The hours (0-based) of the provider incident, when success falls to 60 %. */
  incident: readonly number[];
  /** The candidate's cost per task over the baseline's: 0 is the same. */
  rise: number;
}

const SCENARIOS: Scenario[] = [
  { name: 'equal cost, no incident', incident: [], rise: 0 },
  { name: 'equal cost, incident in hours 18-21', incident: [18, 19, 20, 21], rise: 0 },
  { name: '+15 % a task, no incident', incident: [], rise: 0.15 },
  { name: '+15 % a task, incident in hours 18-21', incident: [18, 19, 20, 21], rise: 0.15 },
];

interface SideSums {
  stats: SideStats;
  hours: Map<number, Required<Stratum>>;
}

function emptySide(): SideSums {
  return { stats: { ...EMPTY_SIDE, scores: {} }, hours: new Map() };
}

function add(side: SideSums, hour: number, cost: number, success: boolean): void {
  const s = side.stats;
  s.tasks += 1;
  s.known += 1;
  s.modelCalls += 1;
  s.cost += cost;
  s.costSquared += cost * cost;
  s.knownCost += cost;
  s.knownCostSquared += cost * cost;
  const stratum = side.hours.get(hour) ?? {
    known: 0,
    successes: 0,
    cost: { sum: 0, squares: 0, successes: 0 },
  };
  stratum.known += 1;
  stratum.cost.sum += cost;
  stratum.cost.squares += cost * cost;
  if (success) {
    s.successes += 1;
    s.successCost += cost;
    stratum.successes += 1;
    stratum.cost.successes += cost;
  }
  side.hours.set(hour, stratum);
}

/** One day of the canary: whether the warning names a cost rise, pooled and weighed. */
function run(scenario: Scenario, seed: number): { pooled: boolean; weighed: boolean } {
  const random = seeded(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const baseline = emptySide();
  const candidate = emptySide();
  for (let h = 0; h < HOURS; h++) {
    const share = 0.05 + (0.45 * h) / (HOURS - 1);
    const rate = scenario.incident.includes(h) ? 0.6 : 0.92;
    for (let i = 0; i < PER_HOUR; i++) {
      const isCandidate = random() < share;
      const cost = 0.001 * Math.exp(0.8 * normal()) * (isCandidate ? 1 + scenario.rise : 1);
      add(isCandidate ? candidate : baseline, h * HOUR_MS, cost, random() < rate);
    }
  }
  const successOnly = (hours: Map<number, Required<Stratum>>) =>
    new Map([...hours].map(([h, s]) => [h, { known: s.known, successes: s.successes }]));
  const warns = (byHour: ReturnType<typeof matched>) => {
    const comparison = compareCohort(
      'canary',
      baseline.stats,
      candidate.stats,
      DEFAULT_GATE,
      byHour ?? undefined,
    );
    const result: GateResult = {
      baseline: 'policy:old',
      candidate: 'policy:new',
      canary: true,
      notCovered: [],
      empty: null,
      options: DEFAULT_GATE,
      verdict: comparison.verdict,
      cohorts: [{ ...comparison, concurrent: null }],
    };
    return /cost per success \+/.test(costRiseNote(result) ?? '');
  };
  return {
    pooled: warns(matched(successOnly(baseline.hours), successOnly(candidate.hours))),
    weighed: warns(matched(baseline.hours, candidate.hours)),
  };
}

console.log(`# canary cost warning: ${seeds} seeds from ${firstSeed}`);
for (const line of describeMachine()) console.log(`# ${line}`);
console.log('');
console.log(
  '| scenario | warned, cost pooled (stop 47) | warned, cost weighed hour by hour (now) |',
);
console.log('| --- | --- | --- |');
for (const scenario of SCENARIOS) {
  let pooled = 0;
  let weighed = 0;
  for (let seed = firstSeed; seed < firstSeed + seeds; seed++) {
    const r = run(scenario, seed);
    if (r.pooled) pooled++;
    if (r.weighed) weighed++;
  }
  const pct = (n: number) => `${n}/${seeds} (${((100 * n) / seeds).toFixed(1)} %)`;
  console.log(`| ${scenario.name} | ${pct(pooled)} | ${pct(weighed)} |`);
}
