import { describe, expect, it } from 'vitest';
import {
  MAX_DURATION,
  RULE_KINDS,
  RulesError,
  parseRules,
  resolveRules,
  watches,
} from '../../analyzer/rules.js';
import { ConfigError } from '../../server/config.js';

describe('rules', () => {
  it('watch every kind on every cohort and route without a file', () => {
    const set = resolveRules();
    expect(set.rules.map((r) => r.kind).sort()).toEqual([...RULE_KINDS].sort());
    expect(set.evaluation).toMatchObject({
      horizonMs: 86_400_000,
      baselineWindowMs: 7 * 86_400_000,
      alpha: 0.01,
      minTasks: 150,
      pendingEvaluations: 2,
      repeatIntervalMs: 4 * 3_600_000,
      holdWithoutVerdictMs: 86_400_000,
      largeRoute: 'large',
    });
    const drop = set.rules.find((r) => r.id === 'success_rate_drop')!;
    expect(drop.baseline).toEqual({ kind: 'trailing', windowMs: 7 * 86_400_000 });
    expect(watches(drop, 'faq', 'small')).toBe(true);
  });

  it('read YAML: evaluation settings, pinned baselines, a changed default rule and a new one', () => {
    const set = parseRules(`
evaluation:
  horizon: 6h
  alpha: 0.005
baselines:
  launch: { from: 2026-11-01, to: 2026-11-08 }
rules:
  - id: success_rate_drop
    detect: 0.03
    cohorts: [extraction]
  - id: extraction-vs-launch
    kind: success_rate_drop
    baseline: pinned:launch
  - id: reask_rise
    enabled: false
`);
    expect(set.evaluation.horizonMs).toBe(6 * 3_600_000);
    expect(set.evaluation.alpha).toBe(0.005);
    const drop = set.rules.find((r) => r.id === 'success_rate_drop')!;
    expect(drop.detect).toBe(0.03);
    expect(watches(drop, 'faq', 'small')).toBe(false);
    expect(watches(drop, 'extraction', 'small')).toBe(true);
    expect(set.rules.find((r) => r.id === 'extraction-vs-launch')!.baseline).toEqual({
      kind: 'pinned',
      name: 'launch',
    });
    expect(set.rules.find((r) => r.id === 'reask_rise')!.enabled).toBe(false);
  });

  it('read a target baseline: an SLO in the unit of the figure the rule shows', () => {
    const set = parseRules(`
rules:
  - { id: extraction-slo, kind: success_rate_drop, baseline: "target:0.9", cohorts: [extraction] }
  - { id: fallback_rate_spike, baseline: "target:.25" }
  - { id: cost_per_success_rise, baseline: "target:0.0025" }
`);
    const of = (id: string) => set.rules.find((r) => r.id === id)!.baseline;
    expect(of('extraction-slo')).toEqual({ kind: 'target', value: 0.9 });
    expect(of('fallback_rate_spike')).toEqual({ kind: 'target', value: 0.25 });
    expect(of('cost_per_success_rise')).toEqual({ kind: 'target', value: 0.0025 });
    // Tuned to the target's scale unless the file says otherwise: 5 points past a 99 % target
    // would alarm only at about 96.5 %.
    const high = parseRules(`
rules:
  - { id: faq-slo, kind: success_rate_drop, baseline: "target:0.99" }
  - { id: faq-slo-tuned, kind: success_rate_drop, baseline: "target:0.99", detect: 0.03, minEffect: 0.02 }
  - { id: fallbacks-slo, kind: fallback_rate_spike, baseline: "target:1e-2" }
`);
    const rule = (id: string) => high.rules.find((r) => r.id === id)!;
    expect(rule('faq-slo').detect).toBeCloseTo(0.01, 12);
    expect(rule('faq-slo').minEffect).toBeCloseTo(0.005, 12);
    expect(rule('faq-slo-tuned')).toMatchObject({ detect: 0.03, minEffect: 0.02 });
    expect(rule('fallbacks-slo').baseline).toEqual({ kind: 'target', value: 0.01 });
    expect(rule('fallbacks-slo').detect).toBeCloseTo(0.01, 12);
    // A 90 % target keeps the defaults, which are within its budget.
    expect(set.rules.find((r) => r.id === 'extraction-slo')).toMatchObject({
      detect: 0.05,
      minEffect: 0.02,
    });
    expect(() => parseRules('rules: [{ id: success_rate_drop, baseline: "target:high" }]')).toThrow(
      /use trailing, trailing:<duration>, pinned:<name>, previous_policy, large_route or target:<number>/,
    );
  });

  it('read YAML merge keys, so that rules can share a block of settings', () => {
    const set = parseRules(`
x-common: &strict
  severity: critical
  cohorts: [billing]
rules:
  - { id: success_rate_drop, <<: *strict }
  - id: cascades
    <<: *strict
    cohorts: [refunds]
`);
    expect(set.rules.find((r) => r.id === 'success_rate_drop')).toMatchObject({
      severity: 'critical',
      cohorts: ['billing'],
    });
    expect(set.rules.find((r) => r.id === 'cascades')).toMatchObject({
      severity: 'critical',
      cohorts: ['refunds'],
    });
  });

  it('read JSON too', () => {
    const set = parseRules(
      '{"evaluation": {"minTasks": 50}, "rules": [{"id": "cascades", "baseline": "trailing:14d"}]}',
    );
    expect(set.evaluation.minTasks).toBe(50);
    expect(set.rules.find((r) => r.id === 'cascades')!.baseline).toEqual({
      kind: 'trailing',
      windowMs: 14 * 86_400_000,
    });
  });

  it.each([
    [
      'an unknown field',
      'rules: [{ id: cascades, colour: red }]',
      /rules\.0 \(rule cascades\): Unrecognized key: "colour"$/m,
    ],
    [
      'a misspelt field, with the one it most likely means',
      'evaluation: { pendingEvaluation: 2 }',
      /evaluation: Unrecognized key: "pendingEvaluation" \(did you mean "pendingEvaluations"\?\)/,
    ],
    [
      'a misspelt default rule, with the one it most likely means',
      'rules: [{ id: succes_rate_drop }]',
      /rule succes_rate_drop: give its kind .* \(did you mean "success_rate_drop"\?\)/,
    ],
    [
      'a bad baseline',
      'rules: [{ id: cascades, baseline: yesterday }]',
      /rules\.0\.baseline \(rule cascades\): use trailing/,
    ],
    [
      'an undefined pinned baseline',
      'rules: [{ id: cascades, baseline: "pinned:nope" }]',
      /pinned:nope is not defined/,
    ],
    ['a new rule without a kind', 'rules: [{ id: mine }]', /rule mine: give its kind/],
    [
      'a bad duration',
      'evaluation: { horizon: soon }',
      /evaluation\.horizon: invalid duration "soon"/,
    ],
    ['an alpha above 0.5', 'evaluation: { alpha: 0.9 }', /evaluation\.alpha/],
    ['not YAML', 'rules: [ {', /not valid YAML or JSON/],
    [
      'cheaper_than_large on a trailing baseline',
      'rules: [{ id: cheaper_than_large, baseline: trailing }]',
      /large route only/,
    ],
    [
      "a default rule's id on another kind (it would replace that default silently)",
      'rules: [{ id: success_rate_drop, kind: cost_per_success_rise }]',
      /rule success_rate_drop: success_rate_drop is a default success_rate_drop rule; a cost_per_success_rise rule needs an id of its own/,
    ],
    [
      'a relative change too large to compute',
      'rules: [{ id: cost_per_success_rise, detect: 1e300 }]',
      /rule cost_per_success_rise: detect and minEffect must be at most 1000000.*got detect 1e\+300/,
    ],
  ])('refuse %s, naming the place, as a configuration error', (_name, text, message) => {
    expect(() => parseRules(text, 'ROUTEWATCH_RULES=rules.yaml')).toThrow(message);
    expect(() => parseRules(text)).toThrow(RulesError);
    try {
      parseRules(text, 'ROUTEWATCH_RULES=rules.yaml');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(/^ROUTEWATCH_RULES=rules\.yaml/);
    }
  });

  it('load the defaults, and values at the edge of each limit', () => {
    expect(() => resolveRules()).not.toThrow();
    expect(() => parseRules('')).not.toThrow();
    const set = parseRules(`
evaluation:
  horizon: ${MAX_DURATION}
  baselineWindow: ${MAX_DURATION}
  repeatInterval: 1ms
  policyLookback: ${MAX_DURATION}
baselines:
  first: { from: 1970-01-01, to: 2262-04-11 }
rules:
  - { id: success_rate_drop, detect: 0.99, minEffect: 0.99 }
  - { id: cascades, baseline: "trailing:${MAX_DURATION}", minEffect: 0 }
  - { id: cheaper_than_large, detect: 0.99, minEffect: 1 }
  - { id: cost_per_success_rise, detect: 3, minEffect: 2 }
  - { id: failure_concentration, detect: 4, minEffect: 1.5 }
`);
    expect(set.evaluation.horizonMs).toBe(365 * 86_400_000);
    expect(set.rules.find((r) => r.id === 'cost_per_success_rise')!.detect).toBe(3);
    // The longest current window and baseline together are still a date (they threw a RangeError).
    const earliest = Date.now() - set.evaluation.horizonMs - set.evaluation.baselineWindowMs;
    expect(new Date(earliest).toISOString()).toMatch(/^\d{4}-/);
  });
});

describe('rules file limits', () => {
  // Each value here once loaded and then silently turned a rule off, or broke every evaluation.
  it.each([
    [
      'detect of 1 or more on a rate rule',
      'rules: [{ id: extraction-success, kind: success_rate_drop, detect: 5 }]',
      /rule extraction-success: detect must be below 1 for a rate rule \(success_rate_drop: .*\); got 5$/,
    ],
    [
      'detect of 1 exactly on a rate rule',
      'rules: [{ id: cascades, detect: 1 }]',
      /rule cascades: detect must be below 1 for a rate rule .*; got 1$/,
    ],
    [
      'a detect of 0',
      'rules: [{ id: reask_rise, detect: 0 }]',
      /rule reask_rise: detect must be above 0 .*; got 0$/,
    ],
    [
      'a negative detect on a relative rule',
      'rules: [{ id: cost_per_success_rise, detect: -0.25 }]',
      /rule cost_per_success_rise: detect must be above 0 .*; got -0\.25$/,
    ],
    [
      'a minEffect of 1 or more on a rate rule',
      'rules: [{ id: retry_rise, minEffect: 2 }]',
      /rule retry_rise: minEffect must be below 1 for a rate rule \(retry_rise: .*would never fire\); got 2$/,
    ],
    [
      'a negative minEffect',
      'rules: [{ id: escalation_rise, minEffect: -0.01 }]',
      /rule escalation_rise: minEffect must be 0 or more; got -0\.01$/,
    ],
    [
      'a detect of 1 on cheaper_than_large (a route that is free)',
      'rules: [{ id: cheaper_than_large, detect: 1 }]',
      /rule cheaper_than_large: detect must be below 1 for cheaper_than_large .*; got 1$/,
    ],
    [
      'a minEffect above 1 on cheaper_than_large',
      'rules: [{ id: cheaper_than_large, minEffect: 1.5 }]',
      /rule cheaper_than_large: minEffect must be at most 1 for cheaper_than_large .*; got 1\.5$/,
    ],
    [
      'a callBudget on a rule that counts no loops',
      'rules: [{ id: success_rate_drop, callBudget: 5 }]',
      /rule success_rate_drop: callBudget is for loop_rate_rise rules .*has no use for it$/,
    ],
    [
      'two loop rules with different call budgets, of which only one would be used',
      'rules: [{ id: loop_rate_rise, callBudget: 5 }, { id: faq-loops, kind: loop_rate_rise, cohorts: [faq], callBudget: 8 }]',
      /rules loop_rate_rise and faq-loops: loop_rate_rise rules share one callBudget .*got 5 and 8; give them the same$/,
    ],
    [
      'a target on a rule that compares with measured data only',
      'rules: [{ id: p95_regression, baseline: "target:0.9" }]',
      /rule p95_regression: p95_regression cannot use a target baseline: its test counts the tasks slower than a measured p95/,
    ],
    [
      'a target on failure_concentration',
      'rules: [{ id: failure_concentration, baseline: "target:0.1" }]',
      /rule failure_concentration: failure_concentration cannot use a target baseline: .*use success_rate_drop with a target instead$/,
    ],
    [
      'a success-rate target of 90 written as a percentage',
      'rules: [{ id: faq-slo, kind: success_rate_drop, baseline: "target:90" }]',
      /rule faq-slo: a target for success_rate_drop is the success rate to hold \(0\.9 is 90 %\), between 0 and 1; got 90$/,
    ],
    [
      'a rate target of 0',
      'rules: [{ id: fallback_rate_spike, baseline: "target:0" }]',
      /rule fallback_rate_spike: a target for fallback_rate_spike is the fallback_rate_spike rate not to exceed .*; got 0$/,
    ],
    [
      'a cost target of 0',
      'rules: [{ id: cost_per_success_rise, baseline: "target:0.0" }]',
      /rule cost_per_success_rise: a cost_per_success_rise target is dollars per successful task, above 0; got 0$/,
    ],
    [
      'a negative rate target',
      'rules: [{ id: reask_rise, baseline: "target:-0.1" }]',
      /rule reask_rise: a target for reask_rise is the reask_rise rate not to exceed .*, between 0 and 1; got -0\.1$/,
    ],
    [
      'a success target past what the test can tell apart',
      'rules: [{ id: faq-slo, kind: success_rate_drop, baseline: "target:0.99999" }]',
      /rule faq-slo: a target for success_rate_drop is the success rate to hold \(0\.9 is 90 %\), from 0\.001 to 0\.9995: past that the test cannot tell the rates apart; got 0\.99999$/,
    ],
    [
      'a minEffect no route can show from its target',
      'rules: [{ id: faq-slo, kind: success_rate_drop, baseline: "target:0.01", minEffect: 0.5 }]',
      /rule faq-slo: minEffect 0\.5 can never be reached from the target 0\.01 \(the rate can rise by less than 0\.01\); lower it$/,
    ],
    [
      'a zero horizon',
      'evaluation: { horizon: 0h }',
      /evaluation\.horizon must be longer than 0; got 0h$/,
    ],
    [
      'a zero baselineWindow',
      'evaluation: { baselineWindow: "0" }',
      /evaluation\.baselineWindow must be longer than 0; got 0$/,
    ],
    [
      'a repeatInterval that rounds to 0',
      'evaluation: { repeatInterval: 0.2ms }',
      /evaluation\.repeatInterval must be longer than 0; got 0\.2ms$/,
    ],
    [
      'a zero policyLookback',
      'evaluation: { policyLookback: 0d }',
      /evaluation\.policyLookback must be longer than 0; got 0d$/,
    ],
    [
      'a negative duration',
      'evaluation: { horizon: -1h }',
      /evaluation\.horizon: invalid duration "-1h"/,
    ],
    [
      'a horizon past the limit (a RangeError at every evaluation)',
      'evaluation: { horizon: 99999999w }',
      /evaluation\.horizon must be at most 365d \(a year\); got 99999999w$/,
    ],
    [
      'a baselineWindow past the limit',
      'evaluation: { baselineWindow: 366d }',
      /evaluation\.baselineWindow must be at most 365d \(a year\); got 366d$/,
    ],
    [
      'a repeatInterval past the limit',
      'evaluation: { repeatInterval: 53w }',
      /evaluation\.repeatInterval must be at most 365d \(a year\); got 53w$/,
    ],
    [
      'a policyLookback past the limit',
      'evaluation: { policyLookback: 400d }',
      /evaluation\.policyLookback must be at most 365d \(a year\); got 400d$/,
    ],
    [
      'a zero trailing baseline',
      'rules: [{ id: cascades, baseline: "trailing:0m" }]',
      /rule cascades: baseline trailing window must be longer than 0; got 0m$/,
    ],
    [
      'a trailing baseline past the limit',
      'rules: [{ id: my-drop, kind: success_rate_drop, baseline: "trailing:9999d" }]',
      /rule my-drop: baseline trailing window must be at most 365d \(a year\); got 9999d$/,
    ],
    [
      'a trailing baseline with a bad duration',
      'rules: [{ id: cascades, baseline: "trailing:soon" }]',
      /rules\.0\.baseline \(rule cascades\): use trailing, trailing:<duration>/,
    ],
    [
      'a pinned baseline before the store can hold',
      'baselines: { old: { from: 1900-01-01, to: 2026-01-01 } }',
      /baseline old: from must fall within the time routewatch can store \(1970-01-01 to 2262-04-11\); got 1900-01-01T00:00:00\.000Z$/,
    ],
    [
      'a pinned baseline after the store can hold',
      'baselines: { far: { from: 2026-01-01, to: 9999-01-01 } }',
      /baseline far: to must fall within the time routewatch can store .*; got 9999-01-01/,
    ],
    [
      'a default rule given twice',
      'rules: [{ id: cascades, detect: 0.1 }, { id: reask_rise }, { id: cascades, enabled: false }]',
      /rule cascades: given twice \(rules\.0 and rules\.2\); give each id once/,
    ],
    [
      'a new rule given twice',
      'rules: [{ id: mine, kind: cascades }, { id: mine, kind: reask_rise }]',
      /rule mine: given twice \(rules\.0 and rules\.1\)/,
    ],
    [
      'a mistyped field, naming the rule',
      'rules: [{ id: cascades }, { id: mine, kind: cascades, severity: loud }]',
      /rules\.1\.severity \(rule mine\): /,
    ],
  ])('refuse %s, naming the rule or setting and the field', (_name, text, message) => {
    let thrown: unknown;
    try {
      parseRules(text, 'ROUTEWATCH_RULES=rules.yaml');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(RulesError);
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as Error).message).toMatch(/^ROUTEWATCH_RULES=rules\.yaml: /);
    expect((thrown as Error).message).toMatch(message);
  });
});
