import { describe, expect, it } from 'vitest';
import { unmatchedRuleNames } from '../../analyzer/evaluator.js';
import { parseRules } from '../../analyzer/rules.js';

// A rule whose cohorts or routes name nothing the data has watches nothing: a target on a
// mistyped cohort would never fire. The evaluation says so, with the nearest name.

const rules = parseRules(`
rules:
  - { id: success_rate_drop, cohorts: [gama, extraction] }
  - { id: fallback_rate_spike, routes: [tiny, smal] }
`).rules.filter((r) => r.enabled);
const seen = [
  { cohort: 'gamma', route: 'small' },
  { cohort: 'extraction', route: 'small' },
  { cohort: 'extraction', route: 'large' },
];

describe('unmatchedRuleNames', () => {
  it('names each cohort and route a rule names that no task has, with the nearest one', () => {
    expect(unmatchedRuleNames(rules, seen)).toEqual([
      'rule success_rate_drop: no task of the current window has the cohort "gama" its cohorts name (did you mean "gamma"?): it watches nothing there until one does',
      'rule fallback_rate_spike: no task of the current window has the route "tiny" its routes name: it watches nothing there until one does',
      'rule fallback_rate_spike: no task of the current window has the route "smal" its routes name (did you mean "small"?): it watches nothing there until one does',
    ]);
  });

  it('says nothing of the rules that watch every cohort and route, or of a window without tasks', () => {
    const defaults = parseRules('{}').rules.filter((r) => r.enabled);
    expect(unmatchedRuleNames(defaults, seen)).toEqual([]);
    expect(unmatchedRuleNames(rules, [])).toEqual([]);
  });
});
