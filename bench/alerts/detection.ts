/**
 * Detection quality of the alert rules: power, time to detect and false alerts, against a
 * peer-style fixed threshold on the same streams. Not a test.
 *
 * Streams: a deployment of six cohort × route monitors (traffic shares 40/25/15/10/7/3 % of
 * 40 000 tasks a day) simulated task by task from seeded generators, with 8 days of history and
 * one monitored day. A degradation starts when the monitored day does, and lasts all day:
 *   A  billing × small (3 % of traffic): success 95 % → 90 %
 *   B  faq × small: fallback rate 12 % → 24 % (doubling)
 *   C  extraction × small: the small model's price ×3.5, so its cost per successful task crosses
 *      extraction × large's (a concurrent control of 7 % of traffic)
 *   D  billing × small: success 95 % → 75 %
 *   E  billing × small: every call's cost ×1.5 (cost per success +50 %, twice the rule's detect)
 *   F  billing × small: every call's cost ×3
 *   control: nothing changes.
 * Evaluated as production evaluates: the default rules and settings (24 h window in 96 buckets,
 * trailing 7-day baseline, α 1 % per rule per window, minimum 150, pending for 2 evaluations),
 * every minute of the monitored day, through the same detectors and lifecycle code
 * (analyzer/detectors.ts, analyzer/lifecycle.ts). What the SQL would return is built here from
 * the simulated tasks (the SQL itself is tested against TypeScript in test/).
 *
 * Usage: npm run bench:detection -- [--seeds 100] [--every 1]   (--every 5: every 5 minutes, 5× faster)
 */
import { detect, mixRate, mixTotals, restMixOf } from '../../analyzer/detectors.js';
import type { MonitorInput } from '../../analyzer/detectors.js';
import { evidenceFrom, step } from '../../analyzer/lifecycle.js';
import type { AlertRecord } from '../../analyzer/lifecycle.js';
import { resolveRules } from '../../analyzer/rules.js';
import type { RuleKind } from '../../analyzer/rules.js';
import { addCounts, emptyCounts } from '../../analyzer/series.js';
import type { TaskCounts } from '../../analyzer/series.js';
import { describeMachine, loadAverage } from '../instrumentation/machine.js';
import { benchArgs } from '../cli-args.js';
import { seeded } from './random.js';

const USAGE = `Usage: npm run bench:detection -- [--seeds 100] [--every 1]   (--every 5: every 5 minutes, 5× faster)`;
const { values } = benchArgs(
  {
    options: { seeds: { type: 'string', default: '100' }, every: { type: 'string', default: '1' } },
  },
  USAGE,
);
const SEEDS = Number(values.seeds);
const EVERY_MIN = Number(values.every);

const MINUTE = 60_000;
const DAY_MIN = 1_440;
const HISTORY_DAYS = 8;
const TOTAL_MIN = (HISTORY_DAYS + 1) * DAY_MIN;
const DAY_START = HISTORY_DAYS * DAY_MIN;
const CHANGE_AT = DAY_START;
const TASKS_PER_DAY = 40_000;

interface Monitor {
  cohort: string;
  route: string;
  share: number;
  success: number;
  fallback: number;
  /** Mean cost of the route's own call, and of the large call a fallback adds. */
  callCost: number;
  fallbackCost: number;
}

const MONITORS: Monitor[] = [
  {
    cohort: 'faq',
    route: 'small',
    share: 0.4,
    success: 0.92,
    fallback: 0.12,
    callCost: 0.0004,
    fallbackCost: 0.006,
  },
  {
    cohort: 'extraction',
    route: 'small',
    share: 0.25,
    success: 0.9,
    fallback: 0.2,
    callCost: 0.002,
    fallbackCost: 0.008,
  },
  {
    cohort: 'policy',
    route: 'large',
    share: 0.15,
    success: 0.88,
    fallback: 0,
    callCost: 0.01,
    fallbackCost: 0,
  },
  {
    cohort: 'agentic',
    route: 'large',
    share: 0.1,
    success: 0.78,
    fallback: 0,
    callCost: 0.009,
    fallbackCost: 0,
  },
  {
    cohort: 'extraction',
    route: 'large',
    share: 0.07,
    success: 0.94,
    fallback: 0,
    callCost: 0.008,
    fallbackCost: 0,
  },
  {
    cohort: 'billing',
    route: 'small',
    share: 0.03,
    success: 0.95,
    fallback: 0.1,
    callCost: 0.0005,
    fallbackCost: 0.007,
  },
];

interface Scenario {
  name: string;
  target?: { cohort: string; route: string; rule: RuleKind };
  change?: (m: Monitor) => Monitor;
}

const SCENARIOS: Scenario[] = [
  {
    name: 'A: billing × small (3 %) success 95 % → 90 %',
    target: { cohort: 'billing', route: 'small', rule: 'success_rate_drop' },
    change: (m) => (m.cohort === 'billing' ? { ...m, success: 0.9 } : m),
  },
  {
    name: 'B: faq × small fallback 12 % → 24 %',
    target: { cohort: 'faq', route: 'small', rule: 'fallback_rate_spike' },
    change: (m) => (m.cohort === 'faq' ? { ...m, fallback: 0.24 } : m),
  },
  {
    name: 'C: extraction × small cost per success crosses the large route’s',
    target: { cohort: 'extraction', route: 'small', rule: 'cheaper_than_large' },
    change: (m) =>
      m.cohort === 'extraction' && m.route === 'small' ? { ...m, callCost: m.callCost * 3.5 } : m,
  },
  {
    // A large drop on the smallest cohort: a rate test tuned to `detect` alone gathers evidence
    // barely faster for it than for A (docs/rules.md, "How a rule decides").
    name: 'D: billing × small (3 %) success 95 % → 75 %',
    target: { cohort: 'billing', route: 'small', rule: 'success_rate_drop' },
    change: (m) => (m.cohort === 'billing' ? { ...m, success: 0.75 } : m),
  },
  {
    // A cost rise twice the rule's `detect` (25 %), and one eight times it, on the smallest cohort:
    // the cost test's evidence grows with the size of the rise, but a chart tuned to `detect`
    // alone collects it at a fraction of the rate one tuned to the rise would.
    name: 'E: billing × small (3 %) cost per success +50 %',
    target: { cohort: 'billing', route: 'small', rule: 'cost_per_success_rise' },
    change: (m) =>
      m.cohort === 'billing'
        ? { ...m, callCost: m.callCost * 1.5, fallbackCost: m.fallbackCost * 1.5 }
        : m,
  },
  {
    name: 'F: billing × small (3 %) cost per success ×3',
    target: { cohort: 'billing', route: 'small', rule: 'cost_per_success_rise' },
    change: (m) =>
      m.cohort === 'billing'
        ? { ...m, callCost: m.callCost * 3, fallbackCost: m.fallbackCost * 3 }
        : m,
  },
  { name: 'control: no change' },
];

const RULE_KINDS: RuleKind[] = [
  'success_rate_drop',
  'cost_per_success_rise',
  'cheaper_than_large',
  'fallback_rate_spike',
  'failure_concentration',
  'reask_rise',
  'escalation_rise',
];

const FIELDS = [
  'tasks',
  'known',
  'failures',
  'successes',
  'cost',
  'costSquared',
  'successCost',
  'knownCost',
  'knownCostSquared',
  'fallbacks',
  'reasks',
  'escalations',
] as const;
type Field = (typeof FIELDS)[number];

/** Prefix sums per field over minute cells, for one monitor. */
type Prefix = Record<Field, Float64Array>;

/** Simulates every task of one monitor, minute by minute, and returns prefix sums. */
function simulate(monitor: Monitor, changed: Monitor, random: () => number): Prefix {
  const prefix = Object.fromEntries(
    FIELDS.map((f) => [f, new Float64Array(TOTAL_MIN + 1)]),
  ) as Prefix;
  const perMinute = (TASKS_PER_DAY * monitor.share) / DAY_MIN;
  const cell = Object.fromEntries(FIELDS.map((f) => [f, 0])) as Record<Field, number>;
  for (let minute = 0; minute < TOTAL_MIN; minute++) {
    const m = minute >= CHANGE_AT ? changed : monitor;
    for (const f of FIELDS) cell[f] = 0;
    // Tasks this minute: a Poisson-like count by rounding with a random remainder.
    const whole = Math.floor(perMinute);
    const n = whole + (random() < perMinute - whole ? 1 : 0);
    for (let i = 0; i < n; i++) {
      const fellBack = random() < m.fallback;
      const escalated = random() < 0.01;
      const success = !escalated && random() < m.success;
      const cost =
        m.callCost * (0.6 + 0.8 * random()) +
        (fellBack ? m.fallbackCost * (0.6 + 0.8 * random()) : 0);
      cell.tasks += 1;
      cell.known += 1;
      cell.failures += success ? 0 : 1;
      cell.successes += success ? 1 : 0;
      cell.cost += cost;
      cell.costSquared += cost * cost;
      cell.successCost += success ? cost : 0;
      // Every simulated task has its outcome at once: its cost counts as judged.
      cell.knownCost += cost;
      cell.knownCostSquared += cost * cost;
      cell.fallbacks += fellBack ? 1 : 0;
      cell.reasks += random() < 0.02 ? 1 : 0;
      cell.escalations += escalated ? 1 : 0;
    }
    for (const f of FIELDS) prefix[f][minute + 1] = prefix[f][minute]! + cell[f];
  }
  return prefix;
}

function countsBetween(prefix: Prefix, from: number, to: number): TaskCounts {
  const c = emptyCounts();
  const a = Math.max(0, from);
  const b = Math.max(a, Math.min(TOTAL_MIN, to));
  for (const f of FIELDS) c[f] = prefix[f][b]! - prefix[f][a]!;
  c.reasons = { validation_failed: c.fallbacks };
  return c;
}

const rules = resolveRules();
const settings = rules.evaluation;
const HORIZON_MIN = settings.horizonMs / MINUTE;
const BASELINE_MIN = settings.baselineWindowMs / MINUTE;
const BUCKETS = settings.buckets;
const ruleOf = (kind: RuleKind) => rules.rules.find((r) => r.kind === kind)!;

interface Outcome {
  /** Minute of the monitored day the target fired, or null. */
  detectedAt: number | null;
  /** Post-change tasks of the target monitor when it fired. */
  detectedAfterTasks: number | null;
  /** Firing incidents that were not the target (false alerts), by rule. */
  falseAlerts: Map<RuleKind, number>;
  /** Peer threshold: first alert on the target after the change; false alerts before it or elsewhere. */
  peerDetectedAt: number | null;
  peerFalseAlerts: number;
  /** Of those, on monitors whose healthy failure rate is below the peer's 10 % threshold. */
  peerFalseBelow: number;
}

function runStream(scenario: Scenario, seed: number): Outcome {
  const prefixes = MONITORS.map((m, i) =>
    simulate(m, scenario.change ? scenario.change(m) : m, seeded(seed * 1_000 + i + 1)),
  );
  const key = (m: Monitor) => `${m.cohort}\t${m.route}`;
  const states = new Map<string, AlertRecord>();
  const outcome: Outcome = {
    detectedAt: null,
    detectedAfterTasks: null,
    falseAlerts: new Map(),
    peerDetectedAt: null,
    peerFalseAlerts: 0,
    peerFalseBelow: 0,
  };
  const peerInAlert = new Map<string, number>();

  for (let now = DAY_START + EVERY_MIN; now <= TOTAL_MIN; now += EVERY_MIN) {
    const from = now - HORIZON_MIN;
    const bucketMin = HORIZON_MIN / BUCKETS;
    const current = prefixes.map((p) =>
      Array.from({ length: BUCKETS }, (_, b) =>
        countsBetween(p, from + b * bucketMin, from + (b + 1) * bucketMin),
      ),
    );
    const totals = (list: TaskCounts[]) => list.reduce((a, c) => addCounts(a, c), emptyCounts());
    const currentSum = current.map(totals);
    const baseline = prefixes.map((p) => countsBetween(p, from - BASELINE_MIN, from));
    const allNow = totals(currentSum);
    const allBase = totals(baseline);

    for (const kind of RULE_KINDS) {
      const rule = ruleOf(kind);
      const inputs: Omit<MonitorInput, 'monitors'>[] = [];
      MONITORS.forEach((m, i) => {
        if (kind === 'cheaper_than_large' && m.route === 'large') return;
        const largeIndex = MONITORS.findIndex((x) => x.cohort === m.cohort && x.route === 'large');
        const input: Omit<MonitorInput, 'monitors'> = {
          rule,
          cohort: m.cohort,
          route: m.route,
          detail: '',
          current: current[i]!,
          currentTotal: currentSum[i]!,
          fromMs: from * MINUTE,
          bucketMs: bucketMin * MINUTE,
          baseline:
            kind === 'cheaper_than_large'
              ? largeIndex >= 0
                ? currentSum[largeIndex]!
                : null
              : baseline[i]!,
          baselineDescription: 'trailing 7 d',
          baselineSpanMs: kind === 'cheaper_than_large' ? null : settings.baselineWindowMs,
        };
        if (kind === 'cheaper_than_large')
          input.large = largeIndex >= 0 ? currentSum[largeIndex]! : emptyCounts();
        if (kind === 'failure_concentration') {
          const restNow = emptyCounts();
          addCounts(restNow, allNow);
          const restBase = emptyCounts();
          addCounts(restBase, allBase);
          for (const f of FIELDS) {
            restNow[f] -= currentSum[i]![f];
            restBase[f] -= baseline[i]![f];
          }
          // The rest bucket by bucket too, as the evaluator gives it: each window is compared
          // with the rest over the same buckets.
          const restBuckets = current[i]!.map((_, b) =>
            totals(current.filter((_, j) => j !== i).map((other) => other[b]!)),
          );
          // The rest's failures expected at baseline rates, bucket by bucket, as the evaluator
          // gives them.
          const rates = MONITORS.map((_, j) => mixRate(baseline[j]!, settings.minBaselineTasks));
          const all = mixTotals(
            MONITORS.map((_, j) => ({ buckets: current[j]!, rate: rates[j]! })),
            current[i]!.length,
          );
          input.rest = {
            current: restNow,
            baseline: restBase,
            buckets: restBuckets,
            ...restMixOf(all, { buckets: current[i]!, rate: rates[i]! }),
          };
        }
        inputs.push(input);
      });
      const testable = Math.max(
        1,
        inputs.filter((x) => x.currentTotal!.tasks >= settings.minTasks).length,
      );
      for (const input of inputs) {
        const fp = `${kind}\t${input.cohort}\t${input.route}`;
        const state = states.get(fp)?.state;
        const finding = detect(
          {
            ...input,
            monitors: testable,
            evidenceFromMs: evidenceFrom(states.get(fp), now * MINUTE),
            alertState: state === 'pending' || state === 'firing' ? state : null,
          },
          settings,
        );
        const result = step(states.get(fp), finding, now * MINUTE, settings);
        states.set(fp, result.record);
        if (result.event?.kind !== 'firing') continue;
        const target = scenario.target;
        const isTarget =
          target &&
          target.rule === kind &&
          target.cohort === input.cohort &&
          target.route === input.route &&
          now >= CHANGE_AT;
        // Any alert on the degraded monitor after the change is a true detection, whatever rule.
        const onDegraded =
          target &&
          target.cohort === input.cohort &&
          target.route === input.route &&
          now >= CHANGE_AT;
        if (isTarget && outcome.detectedAt === null) {
          outcome.detectedAt = now - DAY_START;
          const i = MONITORS.findIndex((m) => m.cohort === input.cohort && m.route === input.route);
          outcome.detectedAfterTasks = prefixes[i]!.tasks[now]! - prefixes[i]!.tasks[CHANGE_AT]!;
        } else if (!onDegraded) {
          outcome.falseAlerts.set(kind, (outcome.falseAlerts.get(kind) ?? 0) + 1);
        }
      }
    }

    // Peer-style rule: error rate ≥ 10 % with ≥ 10 requests in the last 5 minutes, per monitor;
    // an alert when it starts holding, then quiet for 5 minutes (a cooldown, as peers do).
    MONITORS.forEach((m, i) => {
      const window = countsBetween(prefixes[i]!, now - 5, now);
      const breached = window.known >= 10 && window.failures / window.known >= 0.1;
      const last = peerInAlert.get(key(m));
      if (!breached || (last !== undefined && now - last < 5)) return;
      peerInAlert.set(key(m), now);
      const target = scenario.target;
      if (
        target?.rule === 'success_rate_drop' &&
        target.cohort === m.cohort &&
        target.route === m.route &&
        now >= CHANGE_AT
      ) {
        outcome.peerDetectedAt ??= now - DAY_START;
      } else {
        outcome.peerFalseAlerts++;
        if (1 - m.success <= 0.1 + 1e-9) outcome.peerFalseBelow++;
      }
    });
  }
  return outcome;
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const pct = (v: number) => `${(v * 100).toFixed(1)} %`;
const hhmm = (minutes: number | null) =>
  minutes === null
    ? '—'
    : `${Math.floor(minutes / 60)} h ${String(Math.round(minutes % 60)).padStart(2, '0')} min`;

function main(): void {
  const started = Date.now();
  console.log('routewatch bench: alert detection quality');
  for (const line of describeMachine()) console.log(line);
  console.log(
    `${SEEDS} seeds per scenario · evaluated every ${EVERY_MIN} min of the monitored day · load average before: ${loadAverage()}\n`,
  );
  const rows: string[][] = [];
  let falseTotal = 0;
  const falseByRule = new Map<RuleKind, number>();
  let ruleDays = 0;
  let peerFalse = 0;
  let peerMonitorDays = 0;
  let peerBelow = 0;
  let peerBelowDays = 0;
  const belowMonitors = MONITORS.filter((m) => 1 - m.success <= 0.1 + 1e-9).length;
  for (const scenario of SCENARIOS) {
    const outcomes: Outcome[] = [];
    for (let seed = 1; seed <= SEEDS; seed++) {
      outcomes.push(runStream(scenario, seed));
      if (seed % 10 === 0)
        process.stderr.write(`  ${scenario.name.slice(0, 1)}: ${seed}/${SEEDS}\r`);
    }
    const detected = outcomes.filter((o) => o.detectedAt !== null);
    const by = (tasks: number) =>
      outcomes.filter((o) => o.detectedAfterTasks !== null && o.detectedAfterTasks <= tasks)
        .length / outcomes.length;
    const delays = detected.map((o) => o.detectedAt! - (CHANGE_AT - DAY_START));
    const falseAlerts = outcomes.reduce(
      (n, o) => n + [...o.falseAlerts.values()].reduce((a, b) => a + b, 0),
      0,
    );
    falseTotal += falseAlerts;
    for (const o of outcomes) {
      for (const [rule, n] of o.falseAlerts)
        falseByRule.set(rule, (falseByRule.get(rule) ?? 0) + n);
    }
    ruleDays += outcomes.length * RULE_KINDS.length;
    peerFalse += outcomes.reduce((n, o) => n + o.peerFalseAlerts, 0);
    peerMonitorDays += outcomes.length * MONITORS.length;
    peerBelow += outcomes.reduce((n, o) => n + o.peerFalseBelow, 0);
    peerBelowDays += outcomes.length * belowMonitors;
    const peerDetected = outcomes.filter((o) => o.peerDetectedAt !== null);
    const peerDelays = peerDetected.map((o) => o.peerDetectedAt! - (CHANGE_AT - DAY_START));
    rows.push([
      scenario.name,
      scenario.target ? pct(by(400)) : '—',
      scenario.target ? pct(by(800)) : '—',
      scenario.target ? pct(detected.length / outcomes.length) : '—',
      scenario.target ? hhmm(median(delays)) : '—',
      String(falseAlerts),
      scenario.target?.rule === 'success_rate_drop'
        ? pct(peerDetected.length / outcomes.length)
        : 'n/a',
      scenario.target?.rule === 'success_rate_drop' ? hhmm(median(peerDelays)) : 'n/a',
      String(outcomes.reduce((n, o) => n + o.peerFalseAlerts, 0)),
    ]);
  }
  const header = [
    'scenario',
    'power by 400 tasks',
    'by 800',
    'by 24 h',
    'median time to detect',
    'false alerts',
    'peer power (24 h)',
    'peer time',
    'peer false alerts',
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log(line(header));
  console.log(line(widths.map((w) => '─'.repeat(w))));
  for (const row of rows) console.log(line(row));
  console.log(
    `\nfalse alerts per rule-day (routewatch, ${RULE_KINDS.length} rules × ${MONITORS.length} monitors, every stream): ` +
      `${falseTotal} in ${ruleDays} rule-days = ${(falseTotal / ruleDays).toFixed(4)}`,
  );
  console.log(`  by rule: ${RULE_KINDS.map((r) => `${r} ${falseByRule.get(r) ?? 0}`).join(', ')}`);
  console.log(
    `false alerts per monitor-day (peer threshold on errors): ${peerFalse} in ${peerMonitorDays} = ${(peerFalse / peerMonitorDays).toFixed(3)}; ` +
      `on the ${belowMonitors} monitors whose healthy failure rate is at most its 10 % threshold: ${peerBelow} in ${peerBelowDays} = ${(peerBelow / peerBelowDays).toFixed(3)}`,
  );
  console.log(
    `took ${Math.round((Date.now() - started) / 1000)} s · load average after: ${loadAverage()}`,
  );
}

main();
