import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../server/config.js';
import { closestName } from '../server/edit-distance.js';
import { EARLIEST, LATEST, parseDuration, parseInstant } from '../server/time.js';
import { RATE_BOUNDS } from './stats.js';

/**
 * The alert rules: one file (`ROUTEWATCH_RULES`, YAML or JSON), checked with zod at start, with
 * defaults that work without a file. A file changes the evaluation settings, names pinned
 * baselines, and adds rules or changes the default ones by id (`enabled: false` turns one off).
 * docs/rules.md describes every field.
 */

export const RULE_KINDS = [
  'success_rate_drop',
  'cost_per_success_rise',
  'cheaper_than_large',
  'fallback_rate_spike',
  'fallback_reason_shift',
  'invisible_fallbacks',
  'cascades',
  'reask_rise',
  'escalation_rise',
  'p95_regression',
  'failure_concentration',
  'unpriced_rise',
  'loop_rate_rise',
  'retry_rise',
] as const;
export type RuleKind = (typeof RULE_KINDS)[number];

/** What a rule compares the current window with. */
export type BaselineRef =
  | { kind: 'trailing'; windowMs: number }
  | { kind: 'pinned'; name: string }
  | { kind: 'previous_policy' }
  | { kind: 'large_route' }
  /**
   * A fixed target instead of measured data, in the unit of the figure the rule shows: a success
   * rate for success_rate_drop (0.9 is 90 %), the rate for the other rate rules, dollars per
   * successful task for cost_per_success_rise. An SLO: it alarms on a breach of the target
   * (from about detect/2 past it; a rate target's detect and minEffect default to its error budget
   * and half of it), whatever the route did before, so a cohort that starts out bad is alerted too.
   */
  | { kind: 'target'; value: number };

const instant = z.string().transform((text, ctx) => {
  try {
    return parseInstant(text);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});

const BASELINE =
  /^(trailing(?::(\d+(?:\.\d+)?(?:ms|s|m|h|d|w)))?|pinned:([\w.-]+)|previous_policy|large_route|target:(-?\d*\.?\d+(?:[eE][-+]?\d+)?))$/;

const baselineRef = z
  .string()
  .regex(
    BASELINE,
    'use trailing, trailing:<duration>, pinned:<name>, previous_policy, large_route or target:<number>',
  )
  .optional();

const ruleSchema = z
  .object({
    /** Unique; the default rules' ids are their kinds. */
    id: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'use lower-case letters, digits, _ and -'),
    kind: z.enum(RULE_KINDS).optional(),
    enabled: z.boolean().optional(),
    baseline: baselineRef,
    /**
     * The change the test is tuned to, in the kind's CHANGE_UNIT. Its bounds depend on the kind,
     * which may come from a default rule, so resolveRules checks them.
     */
    detect: z.number().optional(),
    /** The smallest observed change worth an alert (same unit as detect; checked likewise). */
    minEffect: z.number().optional(),
    /** Cohorts and routes the rule watches; `*` (default) for all. */
    cohorts: z.array(z.string()).min(1).optional(),
    routes: z.array(z.string()).min(1).optional(),
    severity: z.enum(['critical', 'warning', 'info']).optional(),
    /** loop_rate_rise: model calls per task above which a task is a loop. */
    callBudget: z.number().int().positive().optional(),
  })
  .strict();

export const rulesFileSchema = z
  .object({
    evaluation: z
      .object({
        /** The current window: tasks started in [now − horizon, now). */
        horizon: z.string().optional(),
        /** The default trailing baseline: this long, ending where the current window starts. */
        baselineWindow: z.string().optional(),
        /** Buckets the current window is cut into: the change points the test considers. */
        buckets: z.number().int().min(4).max(1_000).optional(),
        /** False alerts allowed per rule per horizon, shared by all its cohort × route monitors. */
        alpha: z.number().positive().max(0.5).optional(),
        /** Fewer tasks than this in the current window (or the baseline): insufficient_data. */
        minTasks: z.number().int().positive().optional(),
        minBaselineTasks: z.number().int().positive().optional(),
        /** Evaluations a degradation must persist before it fires. */
        pendingEvaluations: z.number().int().min(1).max(100).optional(),
        /** Evaluations without it before a firing alert resolves. */
        resolveEvaluations: z.number().int().min(1).max(100).optional(),
        /** While firing, the message is repeated this often. */
        repeatInterval: z.string().optional(),
        /** A firing alert its monitor cannot judge is held this long, then closed unjudged. */
        holdWithoutVerdict: z.string().optional(),
        /** The route the cheaper routes are compared with. */
        largeRoute: z.string().min(1).optional(),
        /** How far back previous_policy looks for the version before the current one. */
        policyLookback: z.string().optional(),
      })
      .strict()
      .optional(),
    baselines: z
      .record(z.string().regex(/^[\w.-]+$/), z.object({ from: instant, to: instant }).strict())
      .optional(),
    rules: z.array(ruleSchema).optional(),
  })
  .strict();

export interface EvaluationSettings {
  horizonMs: number;
  baselineWindowMs: number;
  buckets: number;
  alpha: number;
  minTasks: number;
  minBaselineTasks: number;
  pendingEvaluations: number;
  resolveEvaluations: number;
  repeatIntervalMs: number;
  holdWithoutVerdictMs: number;
  largeRoute: string;
  policyLookbackMs: number;
}

export interface Rule {
  id: string;
  kind: RuleKind;
  enabled: boolean;
  baseline: BaselineRef;
  detect: number;
  minEffect: number;
  cohorts: string[];
  routes: string[];
  severity: 'critical' | 'warning' | 'info';
  callBudget: number;
  /** One line: what it watches, for messages and docs. */
  description: string;
}

/** Severities, the most severe first: the order alerts are listed, grouped and reminded in. */
export const SEVERITY_RANK: Record<Rule['severity'], number> = { critical: 0, warning: 1, info: 2 };

export interface RuleSet {
  evaluation: EvaluationSettings;
  baselines: Record<string, { from: Date; to: Date }>;
  rules: Rule[];
}

export const DEFAULT_EVALUATION = {
  horizon: '24h',
  baselineWindow: '7d',
  buckets: 96,
  alpha: 0.01,
  minTasks: 150,
  minBaselineTasks: 150,
  pendingEvaluations: 2,
  resolveEvaluations: 3,
  repeatInterval: '4h',
  holdWithoutVerdict: '24h',
  largeRoute: 'large',
  policyLookback: '30d',
} as const;

/**
 * The longest duration a rules file may give (horizon, baselineWindow, repeatInterval,
 * holdWithoutVerdict, policyLookback, a trailing baseline's window): a year. It covers any seasonal baseline, keeps
 * every window an evaluation reads inside what a Date and the store can hold (`99999999w` made
 * every evaluation throw a RangeError), and stops a typo from scanning years every minute.
 */
export const MAX_DURATION = '365d';
const MAX_DURATION_MS = parseDuration(MAX_DURATION);

/**
 * What a kind's `detect` and `minEffect` measure. `rate`: a change in a rate, in absolute points
 * (0.05 is 5 points), so below 1. `relative`: a change relative to the baseline (0.25 is 25 %
 * more), unbounded. `margin`: a fraction of the large route's cost (0.1 is 10 % cheaper).
 */
export const CHANGE_UNIT: Record<RuleKind, 'rate' | 'relative' | 'margin'> = {
  success_rate_drop: 'rate',
  cost_per_success_rise: 'relative',
  cheaper_than_large: 'margin',
  fallback_rate_spike: 'rate',
  fallback_reason_shift: 'rate',
  invisible_fallbacks: 'rate',
  cascades: 'rate',
  reask_rise: 'rate',
  escalation_rise: 'rate',
  p95_regression: 'rate',
  failure_concentration: 'relative',
  unpriced_rise: 'rate',
  loop_rate_rise: 'rate',
  retry_rise: 'rate',
};

type RuleDefaults = Omit<Rule, 'id' | 'kind' | 'enabled' | 'cohorts' | 'routes' | 'baseline'> & {
  baseline: string;
};

/** Each kind's defaults: the change it is tuned to and the smallest change worth an alert. */
export const RULE_DEFAULTS: Record<RuleKind, RuleDefaults> = {
  success_rate_drop: {
    baseline: 'trailing',
    detect: 0.05,
    minEffect: 0.02,
    severity: 'critical',
    callBudget: 10,
    description: 'success rate drops (absolute points)',
  },
  cost_per_success_rise: {
    baseline: 'trailing',
    detect: 0.25,
    minEffect: 0.1,
    severity: 'warning',
    callBudget: 10,
    description: 'cost per successful task rises (relative)',
  },
  cheaper_than_large: {
    baseline: 'large_route',
    detect: 0.1,
    minEffect: 0,
    severity: 'critical',
    callBudget: 10,
    description:
      'the route no longer costs less per successful task than the large route of its cohort',
  },
  fallback_rate_spike: {
    baseline: 'trailing',
    detect: 0.05,
    minEffect: 0.02,
    severity: 'warning',
    callBudget: 10,
    description: 'fallback rate spikes (at least doubles, or rises by detect)',
  },
  fallback_reason_shift: {
    baseline: 'trailing',
    detect: 0.15,
    minEffect: 0.1,
    severity: 'info',
    callBudget: 10,
    description: "a fallback reason's share of fallbacks rises",
  },
  invisible_fallbacks: {
    baseline: 'trailing',
    detect: 0.01,
    minEffect: 0.005,
    severity: 'warning',
    callBudget: 10,
    description: 'fallbacks without a reason appear',
  },
  cascades: {
    baseline: 'trailing',
    detect: 0.02,
    minEffect: 0.01,
    severity: 'warning',
    callBudget: 10,
    description: 'tasks going past the second attempt appear',
  },
  reask_rise: {
    baseline: 'trailing',
    detect: 0.03,
    minEffect: 0.01,
    severity: 'warning',
    callBudget: 10,
    description: 'users ask again more often',
  },
  escalation_rise: {
    baseline: 'trailing',
    detect: 0.03,
    minEffect: 0.01,
    severity: 'warning',
    callBudget: 10,
    description: 'escalations to a human rise',
  },
  p95_regression: {
    baseline: 'trailing',
    detect: 0.05,
    minEffect: 0.03,
    severity: 'warning',
    callBudget: 10,
    description:
      'p95 task latency regresses: the share of tasks slower than the baseline p95 (5 % by definition) rises',
  },
  failure_concentration: {
    baseline: 'trailing',
    detect: 0.5,
    minEffect: 0.25,
    severity: 'critical',
    callBudget: 10,
    description:
      "a cohort's failures concentrate: its failure rate grows against the rest of the traffic (relative to how it compared in the baseline)",
  },
  unpriced_rise: {
    baseline: 'trailing',
    detect: 0.05,
    minEffect: 0.02,
    severity: 'warning',
    callBudget: 10,
    description: 'model calls without a known price rise (cost per success is then understated)',
  },
  loop_rate_rise: {
    baseline: 'trailing',
    detect: 0.03,
    minEffect: 0.01,
    severity: 'warning',
    callBudget: 10,
    description: 'tasks over the call budget (agent loops) rise',
  },
  retry_rise: {
    baseline: 'trailing',
    detect: 0.05,
    minEffect: 0.02,
    severity: 'warning',
    callBudget: 10,
    description:
      'model calls the SDK retried (more than one HTTP request: rate limits, 5xx) rise, a hidden retry storm',
  },
};

/** The rules watched when no file says otherwise: every kind, on every cohort and route. */
export const DEFAULT_RULE_IDS: readonly RuleKind[] = RULE_KINDS;

/** A rules file that cannot be used: a configuration error (exit code 2), naming the file and field. */
export class RulesError extends ConfigError {
  constructor(message: string) {
    super(message);
    this.name = 'RulesError';
  }
}

/**
 * Milliseconds of a duration the file gives at `field`: above 0 and at most MAX_DURATION.
 * Throws RulesError naming the field.
 */
function durationMs(field: string, text: string): number {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (error) {
    throw new RulesError(`${field}: ${(error as Error).message}`);
  }
  if (!(ms > 0)) throw new RulesError(`${field} must be longer than 0; got ${text}`);
  if (!(ms <= MAX_DURATION_MS)) {
    throw new RulesError(`${field} must be at most ${MAX_DURATION} (a year); got ${text}`);
  }
  return ms;
}

/** A baseline as written (already matched by BASELINE); `ruleId` names it in errors. */
function baselineOf(text: string, defaultWindowMs: number, ruleId: string): BaselineRef {
  const match = BASELINE.exec(text)!;
  if (match[1]?.startsWith('trailing')) {
    return {
      kind: 'trailing',
      windowMs: match[2]
        ? durationMs(`rule ${ruleId}: baseline trailing window`, match[2])
        : defaultWindowMs,
    };
  }
  if (match[3]) return { kind: 'pinned', name: match[3] };
  if (match[4]) return { kind: 'target', value: Number(match[4]) };
  return { kind: text as 'previous_policy' | 'large_route' };
}

/**
 * The kinds a `target:` baseline cannot serve, and why (cheaper_than_large is refused any baseline
 * but large_route before this is asked).
 */
const NO_TARGET: Partial<Record<RuleKind, string>> = {
  p95_regression:
    'its test counts the tasks slower than a measured p95; for a latency target, watch the p95 on the dashboard',
  failure_concentration:
    'it compares a cohort with the rest of the traffic; use success_rate_drop with a target instead',
  fallback_reason_shift:
    "it compares a reason's share of the fallbacks with a measured one; use fallback_rate_spike with a target instead",
};

/**
 * A rate target's error budget: the rate it allows (1 − target for a success rate, the target
 * for a rate not to exceed); null for a cost target.
 */
export function targetBudget(kind: RuleKind, value: number): number | null {
  if (kind === 'cost_per_success_rise') return null;
  return kind === 'success_rate_drop' ? 1 - value : value;
}

/** Refuses a target the rule's kind cannot use, or one out of the range of its figure. */
function checkTarget(rule: Rule, value: number): void {
  const { id, kind } = rule;
  const why = NO_TARGET[kind];
  if (why) throw new RulesError(`rule ${id}: ${kind} cannot use a target baseline: ${why}`);
  if (kind === 'cost_per_success_rise') {
    if (!(value > 0)) {
      throw new RulesError(
        `rule ${id}: a cost_per_success_rise target is dollars per successful task, above 0; got ${value}`,
      );
    }
    return;
  }
  const success = kind === 'success_rate_drop';
  const what = success
    ? 'the success rate to hold (0.9 is 90 %)'
    : `the ${kind} rate not to exceed (0.05 is 5 %)`;
  if (!(value > 0 && value < 1)) {
    throw new RulesError(
      `rule ${id}: a target for ${kind} is ${what}, between 0 and 1; got ${value}`,
    );
  }
  const rate = targetBudget(kind, value)!;
  if (rate < RATE_BOUNDS.min || rate > RATE_BOUNDS.max) {
    const range = success
      ? `from ${Number((1 - RATE_BOUNDS.max).toPrecision(6))} to ${Number((1 - RATE_BOUNDS.min).toPrecision(6))}`
      : `from ${RATE_BOUNDS.min} to ${RATE_BOUNDS.max}`;
    throw new RulesError(
      `rule ${id}: a target for ${kind} is ${what}, ${range}: past that the test cannot tell the rates apart; got ${value}`,
    );
  }
}

/**
 * Refuses a detect or minEffect that can never work for the rule's kind: one that breaks the
 * test, or that no observed change can reach (the rule would be silently off).
 */
function checkChanges(rule: Rule): void {
  const { id, kind, detect, minEffect } = rule;
  if (!(detect > 0)) {
    throw new RulesError(
      `rule ${id}: detect must be above 0 (the change the test is tuned to); got ${detect}`,
    );
  }
  if (!(minEffect >= 0)) {
    throw new RulesError(`rule ${id}: minEffect must be 0 or more; got ${minEffect}`);
  }
  // A relative change is a multiple of the baseline: past a million-fold the test's arithmetic
  // overflows (evidence −∞ against a threshold of ∞), and the rule never fires.
  if (detect > 1e6 || minEffect > 1e6) {
    throw new RulesError(
      `rule ${id}: detect and minEffect must be at most 1000000 (a relative change of 1 is a doubling); got ${detect > 1e6 ? `detect ${detect}` : `minEffect ${minEffect}`}`,
    );
  }
  const unit = CHANGE_UNIT[kind];
  if (unit === 'rate') {
    // Tuned to the baseline rate plus detect: a rate cannot rise by 1 or more.
    if (detect >= 1) {
      throw new RulesError(
        `rule ${id}: detect must be below 1 for a rate rule (${kind}: a change in absolute points of a rate, 0.05 is 5 points); got ${detect}`,
      );
    }
    // The observed change is a rate minus a baseline estimate that is never 0: always below 1.
    if (minEffect >= 1) {
      throw new RulesError(
        `rule ${id}: minEffect must be below 1 for a rate rule (${kind}: a change in absolute points of a rate, 0.02 is 2 points; a rate never moves by 1 or more, so the rule would never fire); got ${minEffect}`,
      );
    }
  } else if (unit === 'margin') {
    // The test starts from (1 − detect) × the large route's cost: 1 would be free.
    if (detect >= 1) {
      throw new RulesError(
        `rule ${id}: detect must be below 1 for ${kind} (a fraction of the large route's cost: 0.1 is 10 % cheaper, 1 would be free); got ${detect}`,
      );
    }
    // It fires from (1 − minEffect) × the large route's cost: above 1, a cost below nothing.
    if (minEffect > 1) {
      throw new RulesError(
        `rule ${id}: minEffect must be at most 1 for ${kind} (a fraction of the large route's cost: a route cannot cost less than nothing); got ${minEffect}`,
      );
    }
  }
}

/** The rule set a parsed rules file describes, on top of the defaults. Throws RulesError. */
export function resolveRules(file: z.output<typeof rulesFileSchema> = {}): RuleSet {
  const given = file.evaluation ?? {};
  const e = {
    horizon: given.horizon ?? DEFAULT_EVALUATION.horizon,
    baselineWindow: given.baselineWindow ?? DEFAULT_EVALUATION.baselineWindow,
    buckets: given.buckets ?? DEFAULT_EVALUATION.buckets,
    alpha: given.alpha ?? DEFAULT_EVALUATION.alpha,
    minTasks: given.minTasks ?? DEFAULT_EVALUATION.minTasks,
    minBaselineTasks: given.minBaselineTasks ?? DEFAULT_EVALUATION.minBaselineTasks,
    pendingEvaluations: given.pendingEvaluations ?? DEFAULT_EVALUATION.pendingEvaluations,
    resolveEvaluations: given.resolveEvaluations ?? DEFAULT_EVALUATION.resolveEvaluations,
    repeatInterval: given.repeatInterval ?? DEFAULT_EVALUATION.repeatInterval,
    holdWithoutVerdict: given.holdWithoutVerdict ?? DEFAULT_EVALUATION.holdWithoutVerdict,
    largeRoute: given.largeRoute ?? DEFAULT_EVALUATION.largeRoute,
    policyLookback: given.policyLookback ?? DEFAULT_EVALUATION.policyLookback,
  };
  const evaluation: EvaluationSettings = {
    horizonMs: durationMs('evaluation.horizon', e.horizon),
    baselineWindowMs: durationMs('evaluation.baselineWindow', e.baselineWindow),
    buckets: e.buckets,
    alpha: e.alpha,
    minTasks: e.minTasks,
    minBaselineTasks: e.minBaselineTasks,
    pendingEvaluations: e.pendingEvaluations,
    resolveEvaluations: e.resolveEvaluations,
    repeatIntervalMs: durationMs('evaluation.repeatInterval', e.repeatInterval),
    holdWithoutVerdictMs: durationMs('evaluation.holdWithoutVerdict', e.holdWithoutVerdict),
    largeRoute: e.largeRoute,
    policyLookbackMs: durationMs('evaluation.policyLookback', e.policyLookback),
  };
  const baselines = file.baselines ?? {};
  for (const [name, range] of Object.entries(baselines)) {
    for (const [field, instant] of Object.entries(range)) {
      if (instant < EARLIEST || instant > LATEST) {
        throw new RulesError(
          `baseline ${name}: ${field} must fall within the time routewatch can store (${EARLIEST.toISOString().slice(0, 10)} to ${LATEST.toISOString().slice(0, 10)}); got ${instant.toISOString()}`,
        );
      }
    }
    if (range.from >= range.to) throw new RulesError(`baseline ${name}: from must be before to`);
  }
  const byId = new Map<string, Rule>();
  for (const kind of DEFAULT_RULE_IDS) {
    const d = RULE_DEFAULTS[kind];
    byId.set(kind, {
      id: kind,
      kind,
      enabled: true,
      cohorts: ['*'],
      routes: ['*'],
      ...d,
      baseline: baselineOf(d.baseline, evaluation.baselineWindowMs, kind),
    });
  }
  // Where each id was given: a second entry would silently replace the first.
  const givenAt = new Map<string, number>();
  for (const [index, given] of (file.rules ?? []).entries()) {
    const first = givenAt.get(given.id);
    if (first !== undefined) {
      throw new RulesError(
        `rule ${given.id}: given twice (rules.${first} and rules.${index}); give each id once, with all its changes`,
      );
    }
    givenAt.set(given.id, index);
    const existing = byId.get(given.id);
    const kind = given.kind ?? existing?.kind;
    if (!kind) {
      const near = closestName(given.id, byId.keys());
      throw new RulesError(
        `rule ${given.id}: give its kind (one of ${RULE_KINDS.join(', ')}), or use the id of a default rule` +
          (near === undefined ? '' : ` (did you mean "${near}"?)`),
      );
    }
    if (existing && existing.kind !== kind) {
      throw new RulesError(
        `rule ${given.id}: ${given.id} is a default ${existing.kind} rule; a ${kind} rule needs an id of its own (to turn the default off: { id: ${given.id}, enabled: false })`,
      );
    }
    const d = RULE_DEFAULTS[kind];
    const base: Rule =
      existing && existing.kind === kind
        ? existing
        : {
            id: given.id,
            kind,
            enabled: true,
            cohorts: ['*'],
            routes: ['*'],
            ...d,
            baseline: baselineOf(d.baseline, evaluation.baselineWindowMs, given.id),
          };
    const rule: Rule = {
      ...base,
      ...(given.enabled !== undefined ? { enabled: given.enabled } : {}),
      ...(given.baseline !== undefined
        ? { baseline: baselineOf(given.baseline, evaluation.baselineWindowMs, given.id) }
        : {}),
      ...(given.detect !== undefined ? { detect: given.detect } : {}),
      ...(given.minEffect !== undefined ? { minEffect: given.minEffect } : {}),
      ...(given.cohorts !== undefined ? { cohorts: given.cohorts } : {}),
      ...(given.routes !== undefined ? { routes: given.routes } : {}),
      ...(given.severity !== undefined ? { severity: given.severity } : {}),
      ...(given.callBudget !== undefined ? { callBudget: given.callBudget } : {}),
    };
    if (given.callBudget !== undefined && kind !== 'loop_rate_rise') {
      throw new RulesError(
        `rule ${given.id}: callBudget is for loop_rate_rise rules (model calls per task above which a task is a loop); a ${kind} rule has no use for it`,
      );
    }
    if (rule.baseline.kind === 'pinned' && !baselines[rule.baseline.name]) {
      throw new RulesError(
        `rule ${rule.id}: baseline pinned:${rule.baseline.name} is not defined; add it under baselines: with from and to`,
      );
    }
    if (rule.kind === 'cheaper_than_large' && rule.baseline.kind !== 'large_route') {
      throw new RulesError(
        `rule ${rule.id}: cheaper_than_large compares with the large route only (baseline: large_route)`,
      );
    }
    if (
      (rule.kind === 'p95_regression' || rule.kind === 'failure_concentration') &&
      rule.baseline.kind === 'large_route'
    ) {
      throw new RulesError(`rule ${rule.id}: ${rule.kind} cannot use large_route as its baseline`);
    }
    if (rule.baseline.kind === 'target') {
      checkTarget(rule, rule.baseline.value);
      // Tuned to the target's own scale unless the file says otherwise: a test tuned to 5 points
      // past a 99 % target would alarm only at about 96.5 %, 3.5 times the error budget.
      const budget = targetBudget(rule.kind, rule.baseline.value);
      if (budget !== null) {
        if (given.detect === undefined) rule.detect = Math.min(rule.detect, budget);
        if (given.minEffect === undefined) rule.minEffect = Math.min(rule.minEffect, budget / 2);
        // The largest change a route can show from the target is up to a rate of 1.
        if (rule.minEffect >= 1 - budget) {
          throw new RulesError(
            `rule ${rule.id}: minEffect ${rule.minEffect} can never be reached from the target ${rule.baseline.value} (the rate can rise by less than ${Number((1 - budget).toPrecision(6))}); lower it`,
          );
        }
      }
    }
    byId.set(rule.id, rule);
  }
  // Every rule, the defaults too: a default out of bounds is a bug the tests should catch.
  for (const rule of byId.values()) checkChanges(rule);
  // The loops are counted once per evaluation, with one budget: rules that differ would have all
  // but one budget silently ignored.
  const loops = [...byId.values()].filter((r) => r.enabled && r.kind === 'loop_rate_rise');
  const differing = loops.find((r) => r.callBudget !== loops[0]!.callBudget);
  if (differing) {
    throw new RulesError(
      `rules ${loops[0]!.id} and ${differing.id}: loop_rate_rise rules share one callBudget (tasks are counted as loops once per evaluation), got ${loops[0]!.callBudget} and ${differing.callBudget}; give them the same`,
    );
  }
  return { evaluation, baselines, rules: [...byId.values()] };
}

/** The keys each part of a rules file takes, for a suggestion after an unknown one. */
const KNOWN_KEYS = {
  file: Object.keys(rulesFileSchema.shape),
  evaluation: Object.keys(rulesFileSchema.shape.evaluation.unwrap().shape),
  rule: Object.keys(ruleSchema.shape),
  baseline: ['from', 'to'],
};

/** ` (did you mean "pendingEvaluations"?)` after an unknown key near a known one; '' otherwise. */
function suggestKeys(issue: z.core.$ZodIssue): string {
  if (issue.code !== 'unrecognized_keys') return '';
  const [section] = issue.path;
  const known =
    section === undefined
      ? KNOWN_KEYS.file
      : section === 'evaluation'
        ? KNOWN_KEYS.evaluation
        : section === 'rules'
          ? KNOWN_KEYS.rule
          : KNOWN_KEYS.baseline;
  const near = issue.keys
    .map((key) => [key, closestName(key, known)] as const)
    .filter(([, suggestion]) => suggestion !== undefined)
    .map(([key, suggestion]) =>
      issue.keys.length === 1 ? `"${suggestion}"` : `"${suggestion}" for "${key}"`,
    );
  return near.length > 0 ? ` (did you mean ${near.join(', ')}?)` : '';
}

/** Where a schema issue is: its path, and under `rules` the rule's id when it has one. */
function placeOf(path: readonly PropertyKey[], raw: unknown): string {
  const place = path.map(String).join('.') || '(file)';
  const [section, index] = path;
  if (section !== 'rules' || typeof index !== 'number') return place;
  const rules = (raw as { rules?: unknown } | null)?.rules;
  const entry: unknown = Array.isArray(rules) ? rules[index] : undefined;
  const id = (entry as { id?: unknown } | null)?.id;
  return typeof id === 'string' ? `${place} (rule ${id})` : place;
}

/** Parses rules file text (YAML, of which JSON is a subset). Throws RulesError naming the field. */
export function parseRules(text: string, source = 'rules'): RuleSet {
  let raw: unknown;
  try {
    raw = parseYaml(text, { merge: true });
  } catch (error) {
    throw new RulesError(`${source}: not valid YAML or JSON: ${(error as Error).message}`);
  }
  // Top-level keys starting with `x-` are the file's own (YAML anchors to merge with `<<:`, as in
  // docker-compose): left out, so that the strict schema still catches a typo.
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
    raw = Object.fromEntries(Object.entries(raw).filter(([key]) => !key.startsWith('x-')));
  }
  const parsed = rulesFileSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const lines = parsed.error.issues.map(
      (i) => `  ${placeOf(i.path, raw)}: ${i.message}${suggestKeys(i)}`,
    );
    throw new RulesError(`${source}: invalid rules:\n${lines.join('\n')}`);
  }
  try {
    return resolveRules(parsed.data);
  } catch (error) {
    if (error instanceof RulesError) throw new RulesError(`${source}: ${error.message}`);
    throw new RulesError(`${source}: ${(error as Error).message}`);
  }
}

/** The rules of `ROUTEWATCH_RULES`, or the defaults when it is unset. Throws RulesError. */
export function loadRules(path: string | undefined): RuleSet {
  if (!path) return resolveRules();
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new RulesError(
      `ROUTEWATCH_RULES=${path}: cannot read the file: ${(error as Error).message}`,
    );
  }
  return parseRules(text, `ROUTEWATCH_RULES=${path}`);
}

/** Whether a rule watches a cohort × route. */
export function watches(rule: Rule, cohort: string, route: string): boolean {
  const match = (list: string[], value: string) => list.includes('*') || list.includes(value);
  return rule.enabled && match(rule.cohorts, cohort) && match(rule.routes, route);
}
