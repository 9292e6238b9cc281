import { DEFAULT_RULE_IDS } from '../../analyzer/rules.js';
import type { RuleKind } from '../../analyzer/rules.js';

/**
 * Rules-file lines (under `rules:`) that disable every default rule but `kept`, so that a suite
 * watching one rule sees no other rule's alerts, and a default rule added later is disabled too.
 */
export function disableDefaultRulesBut(...kept: RuleKind[]): string {
  return DEFAULT_RULE_IDS.filter((id) => !kept.includes(id))
    .map((id) => `  - { id: ${id}, enabled: false }`)
    .join('\n');
}
