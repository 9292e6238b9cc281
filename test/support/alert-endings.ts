import { parseRules } from '../../analyzer/rules.js';
import type { RuleSet } from '../../analyzer/rules.js';
import { sendTasks } from './app.js';
import { disableDefaultRulesBut } from './rules.js';
import type { TestApp } from './app.js';
import { seeded, stream } from './tasks.js';

/**
 * Crafted traffic and evaluations that leave one alert of each way an incident stands or ends, on
 * the small route of four cohorts named for it, all degraded from T − 20 h to T − 14 h (S), T being `endMs`:
 *
 * - `recovered`: healthy again after S, then no traffic; resolves (a verdict) at S + 6 h 3 min,
 *   and is evaluated twice more with no verdict (the evidence before its resolution is spent).
 * - `held-too-long`: no traffic after S; held from S + 6 h 2 min, closed without a verdict once
 *   held for `holdWithoutVerdict` (2 h), at the last evaluation but one.
 * - `held`: degraded until S + 3 h; held from that evaluation, still firing.
 * - `rule-removed`: degraded throughout, watched by a rule of its own (`removed_drop`), disabled
 *   in the last evaluation's rule set: closed without a verdict.
 *
 * The evaluations use rule sets of their own (`evaluate(at, ruleSet)`), whose rule ids no
 * configured rule set has: the app's own alerts are left as they are, and a rule disabled in the
 * last set counts as gone. Everything happens before `endMs`.
 */

const HOUR = 3_600_000;
const MINUTE = 60_000;

const ENDING_COHORTS = ['recovered', 'held-too-long', 'held', 'rule-removed'] as const;

function endingRules(removed: boolean): RuleSet {
  return parseRules(`
evaluation: { horizon: 6h, baselineWindow: 2d, buckets: 24, minTasks: 100, minBaselineTasks: 100, pendingEvaluations: 2, resolveEvaluations: 2, holdWithoutVerdict: 2h }
rules:
  - { id: ending_drop, kind: success_rate_drop, cohorts: [recovered, held-too-long, held] }
  - { id: removed_drop, kind: success_rate_drop, cohorts: [rule-removed]${removed ? ', enabled: false' : ''} }
${disableDefaultRulesBut()}
`);
}

export interface AlertEndings {
  /** When the `held` alert's hold began. */
  heldSince: number;
}

/** Sends the traffic through `rw` and evaluates it there; the alerts stay in its store. */
export async function craftAlertEndings(rw: TestApp, endMs: number): Promise<AlertEndings> {
  const degradedFrom = endMs - 20 * HOUR;
  const degradedTo = endMs - 14 * HOUR;
  const random = seeded(42);
  const spec = (cohort: string) => ({ cohort, routes: ['small', 'large'], fallback: 0.1 });
  const tasks = ENDING_COHORTS.flatMap((cohort) => [
    ...stream(
      {
        ...spec(cohort),
        success: 0.95,
        tasks: 1_600,
        fromMs: degradedFrom - 48 * HOUR,
        toMs: degradedFrom,
      },
      random,
    ),
    ...stream(
      { ...spec(cohort), success: 0.7, tasks: 300, fromMs: degradedFrom, toMs: degradedTo },
      random,
    ),
  ]);
  tasks.push(
    ...stream(
      {
        ...spec('recovered'),
        success: 0.95,
        tasks: 300,
        fromMs: degradedTo,
        toMs: degradedTo + 6 * HOUR,
      },
      random,
    ),
    ...stream(
      {
        ...spec('held'),
        success: 0.7,
        tasks: 150,
        fromMs: degradedTo,
        toMs: degradedTo + 3 * HOUR,
      },
      random,
    ),
    ...stream(
      { ...spec('rule-removed'), success: 0.7, tasks: 600, fromMs: degradedTo, toMs: endMs },
      random,
    ),
  );
  await sendTasks(rw, tasks);

  const watched = endingRules(false);
  const at = (ms: number, rules = watched) => rw.evaluator.evaluate(new Date(ms), rules);
  await at(degradedTo); // pending
  await at(degradedTo + MINUTE); // firing, all four
  await at(degradedTo + 6 * HOUR + 2 * MINUTE); // held-too-long held; recovered judged well once
  await at(degradedTo + 6 * HOUR + 3 * MINUTE); // recovered resolves
  const heldSince = degradedTo + 9 * HOUR + 5 * MINUTE;
  await at(heldSince); // held-too-long closes (held 3 h); held is held
  await at(heldSince + MINUTE, endingRules(true)); // rule-removed closes
  return { heldSince };
}
