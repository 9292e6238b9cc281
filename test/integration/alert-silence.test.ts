import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { slackChannel } from '../../analyzer/notifier.js';
import { parseRules } from '../../analyzer/rules.js';
import { testApp } from '../support/app.js';
import { storeDegradedCohorts } from '../support/degraded.js';
import { until } from '../support/wait.js';
import type { SlackBody } from '../support/wait.js';
import type { TestApp } from '../support/app.js';
import { openTempStore } from '../support/store.js';
import { disableDefaultRulesBut } from '../support/rules.js';
import { startWebhookReceiver } from '../support/webhook-receiver.js';
import type { WebhookReceiver } from '../support/webhook-receiver.js';

// A silence keeps an alert's messages unsent while it is in force; the alert is still evaluated
// and its transitions recorded, and once the silence ends its reminder goes out. Two cohorts
// degrade from T − 20 h on; one rule of alpha's is silenced for two hours of the incident.

const HOUR = 3_600_000;
const MINUTE = 60_000;
const T = Date.now() - MINUTE;
const DEGRADED_FROM = T - 20 * HOUR;
const RULES = parseRules(`
evaluation: { horizon: 6h, baselineWindow: 2d, buckets: 24, minTasks: 100, minBaselineTasks: 100, pendingEvaluations: 2, resolveEvaluations: 2, repeatInterval: 1h }
rules:
  - { id: success_rate_drop, cohorts: [alpha, beta] }
  - { id: alpha-slo, kind: success_rate_drop, baseline: "target:0.9", cohorts: [alpha] }
${disableDefaultRulesBut('success_rate_drop')}
`);

let temp: Awaited<ReturnType<typeof openTempStore>>;
let slack: WebhookReceiver;
const apps: TestApp[] = [];

beforeAll(async () => {
  temp = await openTempStore();
  slack = await startWebhookReceiver();
  await storeDegradedCohorts(temp.store, {
    seed: 5,
    cohorts: ['alpha', 'beta'],
    degradedFrom: DEGRADED_FROM,
    endMs: T,
  });
});
afterAll(async () => {
  for (const app of apps) await app.close();
  await slack?.close();
  await temp?.dispose();
});

describe('a silence', () => {
  it('keeps its alerts quiet while in force, records them, and lets the reminder go once it ends', async () => {
    const app = await testApp(temp.store, {
      rules: RULES,
      channels: [slackChannel(slack.url)],
      notifier: { minIntervalMs: 20, initialBackoffMs: 50, maxBackoffMs: 100, pollMs: 50 },
    });
    apps.push(app);
    const start = DEGRADED_FROM + 8 * HOUR;
    await app.evaluator.alerts.saveSilence({
      id: 'maintenance',
      cohort: 'alpha',
      route: '',
      ruleId: 'success_rate_drop',
      startsAt: start - HOUR,
      endsAt: start + 2 * HOUR + 5 * MINUTE,
      comment: 'ana: fixing the extraction prompt',
      createdAt: start - HOUR,
    });
    for (let at = start; at <= start + 4 * HOUR; at += 10 * MINUTE)
      await app.evaluator.evaluate(new Date(at));

    const history = (await app.evaluator.alerts.history(500)).reverse();
    const silenced = history.filter(
      (e) => e.cohort === 'alpha' && e.ruleId === 'success_rate_drop',
    );
    // Fired, recorded, not notified; no reminder row while silenced; the first reminder at the
    // first evaluation after the silence ends, then one an hour.
    expect(silenced.map((e) => [e.kind, e.notify, (e.at - start) / MINUTE])).toEqual([
      ['pending', false, 0],
      ['firing', false, 10],
      ['repeat', true, 130],
      ['repeat', true, 190],
    ]);
    expect(silenced[1]!.message.silenced).toEqual({
      id: 'maintenance',
      until: new Date(start + 2 * HOUR + 5 * MINUTE).toISOString(),
    });
    // The rule left unsilenced on the same route fires and says the other is silenced.
    const slo = history.filter((e) => e.ruleId === 'alpha-slo' && e.notify);
    expect(slo[0]!.kind).toBe('firing');
    expect(slo[0]!.message.alsoFiring).toMatchObject([
      {
        ruleId: 'success_rate_drop',
        silencedUntil: new Date(start + 2 * HOUR + 5 * MINUTE).toISOString(),
      },
    ]);
    // At 130 the silenced alert owes its message, whatever the route's clock says; alpha-slo's
    // reminder is due then too, and is left to that message, which lists it.
    const at130 = history.filter(
      (e) => e.cohort === 'alpha' && e.notify && e.at === start + 130 * MINUTE,
    );
    expect(at130.map((e) => e.ruleId)).toEqual(['success_rate_drop']);
    expect(at130[0]!.message.alsoFiring?.map((o) => o.ruleId)).toEqual(['alpha-slo']);

    const notified = history.filter((e) => e.notify).length;
    // Every notified event delivered (a Slack message can carry several: groups).
    await until(() => app.notifier!.stats()['slack']!.sent === notified, `${notified} deliveries`);
    const texts = (slack.delivered() as SlackBody[]).map((b) => b.text);
    expect(texts.filter((t) => /^FIRING alpha · small: success rate dropped/.test(t))).toEqual([]);
    expect(texts.some((t) => /^STILL FIRING alpha · small: success rate dropped/.test(t))).toBe(
      true,
    );
    expect(texts.some((t) => /^FIRING beta · small: success rate dropped/.test(t))).toBe(true);
    expect(
      texts.some((t) =>
        /success rate dropped \(success_rate_drop, critical\), firing since .*, silenced until/.test(
          t,
        ),
      ),
    ).toBe(true);
  });

  it('is made, listed, shown on its alerts and ended through the API, and refused with a reason', async () => {
    const app = await testApp(temp.store, { rules: RULES });
    apps.push(app);
    // The alerts are firing (the test before): silence beta now, for an hour.
    const made = await app.app.inject({
      method: 'POST',
      url: '/api/v1/silences',
      payload: { cohort: 'beta', for: '1h', comment: 'bo: provider incident' },
    });
    expect(made.statusCode, made.body).toBe(201);
    const { silence } = made.json<{ silence: { id: string; scope: string; endsAt: string } }>();
    expect(silence.scope).toBe('cohort beta × every route × every rule');
    const alerts = (await app.app.inject({ method: 'GET', url: '/api/v1/alerts' })).json<{
      alerts: { cohort: string; state: string; silenced: { id: string } | null }[];
      silences: { id: string }[];
    }>();
    expect(alerts.silences.map((s) => s.id)).toEqual([silence.id]);
    const firing = alerts.alerts.filter((a) => a.state === 'firing');
    expect(firing.filter((a) => a.cohort === 'beta').map((a) => a.silenced?.id)).toEqual([
      silence.id,
    ]);
    expect(firing.filter((a) => a.cohort === 'alpha').every((a) => a.silenced === null)).toBe(true);

    const ended = await app.app.inject({ method: 'DELETE', url: `/api/v1/silences/${silence.id}` });
    expect(ended.statusCode).toBe(200);
    expect(ended.json()).toMatchObject({ ended: true });
    const listed = await app.app.inject({ method: 'GET', url: '/api/v1/silences' });
    expect(listed.json()).toEqual({ silences: [] });
    const withEnded = await app.app.inject({ method: 'GET', url: '/api/v1/silences?ended=true' });
    expect(withEnded.json<{ silences: { id: string }[] }>().silences.map((s) => s.id)).toContain(
      silence.id,
    );
    const again = await app.app.inject({ method: 'DELETE', url: `/api/v1/silences/${silence.id}` });
    expect(again.json()).toMatchObject({ ended: false });

    for (const [payload, message] of [
      [{ cohort: 'beta', for: '1h' }, /invalid silence: comment: .*Send \{"cohort"/],
      [{ for: '1h', comment: 'x', team: 'a' }, /invalid silence: team: /],
      [{ rule: 'nope', for: '1h', comment: 'x' }, /no rule "nope" is configured: the rules are /],
      [{ cohort: 'beta', for: '60d', comment: 'x' }, /at most 30 d/],
      [
        { cohort: '', for: '1h', comment: 'x' },
        /invalid silence: cohort: empty: leave it out to match any/,
      ],
      [
        { for: '1h', comment: 'x' },
        /names no cohort, route or rule, so it would silence every alert/,
      ],
    ] as const) {
      const refused = await app.app.inject({ method: 'POST', url: '/api/v1/silences', payload });
      expect(refused.statusCode).toBe(400);
      expect(refused.json<{ error: { message: string } }>().error.message).toMatch(message);
    }
    const unknown = await app.app.inject({ method: 'DELETE', url: '/api/v1/silences/nope' });
    expect(unknown.statusCode).toBe(404);
  });
});
