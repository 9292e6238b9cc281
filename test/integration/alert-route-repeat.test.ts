import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRules } from '../../analyzer/rules.js';
import { testApp } from '../support/app.js';
import { storeDegradedCohorts } from '../support/degraded.js';
import { until } from '../support/wait.js';
import type { SlackBody } from '../support/wait.js';
import type { TestApp } from '../support/app.js';
import { openTempStore } from '../support/store.js';
import { disableDefaultRulesBut } from '../support/rules.js';
import { slackChannel, webhookChannel } from '../../analyzer/notifier.js';
import { startWebhookReceiver } from '../support/webhook-receiver.js';
import type { WebhookReceiver } from '../support/webhook-receiver.js';

// One degraded route, three rules firing on it: each message lists the others, the route
// repeats once per repeatInterval, not once per rule, and Slack gets the alerts that fired in one
// evaluation as one message (the generic webhook, read by machines, one body per alert). Another
// cohort's alert keeps its own reminder. Time line (T = now): healthy [T − 68 h, T − 20 h), degraded from T − 20 h on.

const HOUR = 3_600_000;
const MINUTE = 60_000;
const T = Date.now() - MINUTE;
const DEGRADED_FROM = T - 20 * HOUR;
const RULES = parseRules(`
evaluation: { horizon: 6h, baselineWindow: 2d, buckets: 24, minTasks: 100, minBaselineTasks: 100, pendingEvaluations: 2, resolveEvaluations: 2, repeatInterval: 1h }
rules:
  - { id: success_rate_drop, cohorts: [alpha, beta] }
  - { id: cost_per_success_rise, cohorts: [alpha] }
  - { id: alpha-slo, kind: success_rate_drop, baseline: "target:0.9", cohorts: [alpha], severity: critical }
${disableDefaultRulesBut('success_rate_drop', 'cost_per_success_rise')}
`);

let temp: Awaited<ReturnType<typeof openTempStore>>;
let slack: WebhookReceiver;
let hook: WebhookReceiver;
const apps: TestApp[] = [];

beforeAll(async () => {
  temp = await openTempStore();
  slack = await startWebhookReceiver();
  hook = await startWebhookReceiver();
  await storeDegradedCohorts(temp.store, {
    seed: 11,
    cohorts: ['alpha', 'beta'],
    degradedFrom: DEGRADED_FROM,
    endMs: T,
  });
});
afterAll(async () => {
  for (const app of apps) await app.close();
  await slack?.close();
  await hook?.close();
  await temp?.dispose();
});

describe('the alerts of one cohort × route', () => {
  it('share one repeat, and each message lists the others firing there', async () => {
    // The grouped message is refused once (a proxy's passing 400): retried as it is.
    let refusedOnce = false;
    slack.answerBy = (body) => {
      const header = (body as SlackBody).blocks[0]!.text!.text;
      if (refusedOnce || !/alerts firing/.test(header)) return undefined;
      refusedOnce = true;
      return { status: 400, body: 'invalid_payload' };
    };
    const app = await testApp(temp.store, {
      rules: RULES,
      channels: [slackChannel(slack.url), webhookChannel(hook.url)],
      notifier: { minIntervalMs: 50, initialBackoffMs: 100, maxBackoffMs: 200, pollMs: 100 },
    });
    apps.push(app);
    const start = DEGRADED_FROM + 8 * HOUR;
    const sent: {
      at: number;
      kind: string;
      ruleId: string;
      cohort: string;
      severity: string;
      others: string[];
    }[] = [];
    for (let at = start; at <= start + 3 * HOUR; at += 10 * MINUTE) {
      await app.evaluator.evaluate(new Date(at));
    }
    const history = await app.evaluator.alerts.history(500);
    const notified = history.filter((e) => e.notify).length;
    // Every event to the webhook, one body each; Slack: alpha's three firings as one message.
    await until(() => hook.delivered().length === notified, `${notified} webhook bodies`);
    await until(() => slack.delivered().length === notified - 2, `${notified - 2} Slack messages`);
    await until(
      () => Object.values(app.notifier!.stats()).every((c) => c.sent === notified),
      'the deliveries recorded',
    );
    for (const e of history.reverse()) {
      if (!e.notify || e.route !== 'small') continue;
      sent.push({
        at: e.at,
        kind: e.kind,
        ruleId: e.ruleId,
        cohort: e.cohort,
        severity: e.message.severity,
        others: (e.message.alsoFiring ?? []).map((o) => o.ruleId).sort(),
      });
    }

    const alpha = sent.filter((s) => s.cohort === 'alpha');
    const fired = alpha.filter((s) => s.kind === 'firing');
    expect(fired.map((s) => s.ruleId).sort()).toEqual([
      'alpha-slo',
      'cost_per_success_rise',
      'success_rate_drop',
    ]);
    // The last to fire lists the two before it.
    const lastFired = fired.reduce((a, b) => (b.at > a.at ? b : a));
    expect(lastFired.others).toHaveLength(2);
    expect(lastFired.others).not.toContain(lastFired.ruleId);

    // Three hours of firing at a 1-h repeat: alone, each rule would repeat about 3 times (9 in
    // all). Shared, no two messages on the route are within the hour unless one is a firing.
    const repeats = alpha.filter((s) => s.kind === 'repeat');
    expect(repeats.length).toBeGreaterThanOrEqual(2);
    expect(repeats.length).toBeLessThanOrEqual(3);
    for (const repeat of repeats) {
      // The route's one reminder is a critical alert's: the most severe due carries it.
      expect(repeat.severity).toBe('critical');
      const before = alpha.filter((s) => s.at < repeat.at).map((s) => s.at);
      expect(repeat.at - Math.max(...before)).toBeGreaterThanOrEqual(HOUR);
      // The repeat stands for the other two: it names them.
      expect([...repeat.others, repeat.ruleId].sort()).toEqual([
        'alpha-slo',
        'cost_per_success_rise',
        'success_rate_drop',
      ]);
    }
    // Slack: one message for the three alerts alpha × small raised in one evaluation, the most
    // severe first, each with its evidence, after one refusal retried.
    const bodies = slack.delivered() as SlackBody[];
    const grouped = bodies.filter((b) => b.blocks[0]!.text!.text.includes('alerts firing'));
    expect(grouped).toHaveLength(1);
    expect(grouped[0]!.blocks[0]!.text!.text).toBe('alpha · small: 3 alerts firing (2 critical)');
    const text = grouped[0]!.text;
    expect(text).toMatch(
      /^FIRING alpha · small: 3 alerts firing \(2 critical\)\n• success rate below its target \(alpha-slo, critical\):/,
    );
    expect(text.match(/Rule /g)).toHaveLength(3);
    expect(text).toContain('Rule alpha-slo · critical');
    expect(text).not.toContain('Also firing');
    expect(slack.requests.filter((r) => r.status === 400)).toHaveLength(1);
    // The webhook: one body per alert, keyed by its fingerprint.
    const hookFirings = (
      hook.delivered() as { status: string; cohort: string; kind: string }[]
    ).filter((b) => b.cohort === 'alpha' && b.kind === 'firing');
    expect(hookFirings).toHaveLength(3);

    // A message names the others for machines too: fingerprint, kind, incident; the most severe
    // first.
    const [repeatEvent] = history.filter(
      (e) => e.cohort === 'alpha' && e.kind === 'repeat' && e.notify,
    );
    const listed = repeatEvent!.message.alsoFiring!;
    expect(listed.map((o) => o.severity)).toEqual(
      [...listed.map((o) => o.severity)].sort((a, b) => (a === b ? 0 : a === 'critical' ? -1 : 1)),
    );
    for (const o of listed) {
      expect(o.fingerprint).toMatch(/^[0-9a-f]{24}$/);
      expect(o).toMatchObject({ incident: 1, detail: '' });
      expect(o.kind).toMatch(/^(success_rate_drop|cost_per_success_rise)$/);
    }
    // Every firing alert of the route was mentioned by its last message: one clock for all.
    const alphaStates = (await app.evaluator.alerts.states()).filter(
      (a) => a.cohort === 'alpha' && a.route === 'small' && a.state === 'firing',
    );
    expect(new Set(alphaStates.map((a) => a.lastNotifiedAt)).size).toBe(1);
    expect(alphaStates[0]!.lastNotifiedAt).toBe(Math.max(...alpha.map((a) => a.at)));
    // beta has one rule firing: its reminder is its own, on its own clock, and lists nothing.
    const beta = sent.filter((s) => s.cohort === 'beta');
    expect(beta.map((s) => s.kind)).toEqual(['firing', 'repeat', 'repeat']);
    expect(beta.every((s) => s.others.length === 0)).toBe(true);
    await app.close();
  });

  it('are sent one by one when Slack refuses them as one message', async () => {
    // The rules removed: the four firing alerts close without a verdict in one evaluation, alpha's
    // three as one Slack message, which Slack refuses (too large, say) three times.
    slack.answerBy = (body) =>
      /alerts closed without a verdict/.test((body as SlackBody).blocks[0]!.text!.text)
        ? { status: 400, body: 'invalid_blocks' }
        : undefined;
    const before = slack.delivered().length;
    const app = await testApp(temp.store, {
      rules: parseRules(`
evaluation: { horizon: 6h, baselineWindow: 2d, buckets: 24, minTasks: 100, minBaselineTasks: 100 }
rules:
${disableDefaultRulesBut()}
`),
      channels: [slackChannel(slack.url)],
      notifier: { minIntervalMs: 50, initialBackoffMs: 50, maxBackoffMs: 100, pollMs: 100 },
    });
    apps.push(app);
    const closing = await app.evaluator.evaluate(new Date(DEGRADED_FROM + 11 * HOUR + 30 * MINUTE));
    expect(closing.events.map((e) => `${e.cohort} ${e.kind}`).sort()).toEqual([
      'alpha resolved',
      'alpha resolved',
      'alpha resolved',
      'beta resolved',
    ]);
    await until(() => slack.delivered().length === before + 4, 'four closing messages');
    const titles = (slack.delivered() as SlackBody[])
      .slice(before)
      .map((b) => b.blocks[0]!.text!.text)
      .sort();
    expect(titles).toEqual([
      'Closed without a verdict: alpha · small — cost per successful task rose',
      'Closed without a verdict: alpha · small — success rate below its target',
      'Closed without a verdict: alpha · small — success rate dropped',
      'Closed without a verdict: beta · small — success rate dropped',
    ]);
    expect(slack.requests.filter((r) => r.status === 400)).toHaveLength(1 + 3);
    await until(() => app.notifier!.stats()['slack']!.sent === 4, 'the deliveries recorded');
    expect(app.notifier!.stats()['slack']!.refused).toBe(0);
  });

  it('send no reminder beside news of the same route: the firing message lists what still fires', async () => {
    // New rules on beta (the alerts before are closed): drop3 fires first, slo3 an hour later,
    // just when drop3's reminder is due.
    const rules = (withSlo: boolean) =>
      parseRules(`
evaluation: { horizon: 6h, baselineWindow: 2d, buckets: 24, minTasks: 100, minBaselineTasks: 100, pendingEvaluations: 2, resolveEvaluations: 2, repeatInterval: 1h }
rules:
  - { id: drop3, kind: success_rate_drop, cohorts: [beta] }
  - { id: slo3, kind: success_rate_drop, baseline: "target:0.9", cohorts: [beta], enabled: ${withSlo} }
${disableDefaultRulesBut()}
`);
    const app = await testApp(temp.store, { rules: rules(true) });
    apps.push(app);
    const start = DEGRADED_FROM + 12 * HOUR;
    for (let at = start; at <= start + 130 * MINUTE; at += 10 * MINUTE)
      await app.evaluator.evaluate(new Date(at), rules(at >= start + 60 * MINUTE));
    const notified = (await app.evaluator.alerts.history(500))
      .filter((e) => e.notify && (e.ruleId === 'drop3' || e.ruleId === 'slo3'))
      .reverse()
      .map((e) => `${(e.at - start) / MINUTE} ${e.ruleId} ${e.kind}`);
    // At 70 slo3 fires and drop3's reminder is due: one message, the firing, which lists drop3.
    expect(notified.filter((n) => n.startsWith('70 '))).toEqual(['70 slo3 firing']);
    expect(notified[0]).toBe('10 drop3 firing');
    // The route's next reminder is an hour after that news, not before.
    expect(notified.filter((n) => / repeat$/.test(n)).map((n) => n.split(' ')[0])).toEqual(['130']);
    const [slo] = (await app.evaluator.alerts.history(500)).filter(
      (e) => e.ruleId === 'slo3' && e.kind === 'firing',
    );
    expect(slo!.message.alsoFiring?.map((o) => o.ruleId)).toEqual(['drop3']);
  });
});
