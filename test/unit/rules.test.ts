import { describe, expect, it } from 'vitest';
import { RULE_KINDS, RulesError, parseRules, resolveRules, watches } from '../../analyzer/rules.js';
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
    ['an unknown field', 'rules: [{ id: cascades, colour: red }]', /rules\.0: Unrecognized key/],
    [
      'a bad baseline',
      'rules: [{ id: cascades, baseline: yesterday }]',
      /rules\.0\.baseline: use trailing/,
    ],
    [
      'an undefined pinned baseline',
      'rules: [{ id: cascades, baseline: "pinned:nope" }]',
      /pinned:nope is not defined/,
    ],
    ['a new rule without a kind', 'rules: [{ id: mine }]', /rule mine: give its kind/],
    ['a bad duration', 'evaluation: { horizon: soon }', /invalid duration "soon"/],
    ['an alpha above 0.5', 'evaluation: { alpha: 0.9 }', /evaluation\.alpha/],
    ['not YAML', 'rules: [ {', /not valid YAML or JSON/],
    [
      'cheaper_than_large on a trailing baseline',
      'rules: [{ id: cheaper_than_large, baseline: trailing }]',
      /large route only/,
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
});
