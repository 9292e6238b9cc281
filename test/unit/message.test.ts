import { describe, expect, it } from 'vitest';
import type { AlertMessage } from '../../analyzer/message.js';
import { slackGroupMessage, slackMessage, titleOf, webhookBody } from '../../analyzer/message.js';
import { sampleMessage } from '../support/alert-message.js';
import { groupEvents, retryAfterMs } from '../../analyzer/notifier.js';
import type { StoredEvent } from '../../analyzer/alert-store.js';

interface Block {
  type: string;
  text?: { type: string; text: string };
  fields?: { text: string }[];
  elements?: { url?: string; text?: unknown }[];
}

describe('slackMessage', () => {
  it('says what degraded, baseline against now with n and intervals, both routes’ cost, top reasons and a link', () => {
    const { text, blocks } = slackMessage(sampleMessage());
    const all = JSON.stringify(blocks);
    const typed = blocks as Block[];
    expect(typed[0]).toMatchObject({
      type: 'header',
      text: { type: 'plain_text', text: 'extraction · small: success rate dropped' },
    });
    expect(all).toContain('*Now* 75.3 % (95 % CI 70.9–79.2 %), n = 412 since 2026-12-02 08:15 UTC');
    expect(all).toContain('*Baseline* 93.6 % (95 % CI 92.6–94.5 %), n = 2,804');
    expect(all).toContain('*small* $0.00210');
    expect(all).toContain('*large* $0.00190');
    expect(all).toContain('schema_invalid 70 %');
    expect(all).toContain('validation_failed 90 %');
    const button = typed.find((b) => b.type === 'actions')!.elements![0]!;
    expect(button.url).toBe(sampleMessage().url);
    expect(button.text).toMatchObject({ text: 'Open the dashboard' });
    // The plain-text fallback carries the same facts.
    expect(text).toMatch(/^FIRING extraction · small: success rate dropped/);
    expect(text).toContain('n = 412');
    expect(text).toContain(sampleMessage().url);
  });

  it('shows a target baseline as the target, without a sample size it does not have', () => {
    const base = sampleMessage().finding;
    const { blocks, text } = slackMessage(
      sampleMessage({
        finding: {
          ...base,
          summary: 'extraction × small: success rate 75.3% (n 412) against the target 90.0%',
          baseline: {
            label: 'success rate',
            n: 0,
            value: 0.9,
            interval: null,
            description: 'the target success rate 90 %',
            target: true,
          },
        },
      }),
    );
    const all = JSON.stringify(blocks);
    expect(all).toContain('*Target* 90.0 %');
    expect(all).not.toContain('*Baseline*');
    expect(all).not.toContain('n = 0');
    expect(text).toContain('against the target 90.0%');
  });

  it('says a recovery’s evidence for the baseline, and where a held alert resolves', () => {
    const base = sampleMessage().finding;
    const resolved = slackMessage(
      sampleMessage({
        kind: 'resolved',
        resolution: 'recovered',
        finding: { ...base, status: 'ok', statistic: -20.24, threshold: 9.1 },
      }),
    );
    expect(JSON.stringify(resolved.blocks)).toContain(
      'Evidence for the baseline 20.2 over a threshold of 9.1: recovered',
    );
    const held = slackMessage(
      sampleMessage({ kind: 'repeat', finding: { ...base, statistic: 6.1, threshold: 10 } }),
    );
    expect(JSON.stringify(held.blocks)).toContain(
      'Evidence 6.1 against a threshold of 10.0, held firing until it falls below 5.0',
    );
    // Over the threshold, the line is as it was.
    expect(JSON.stringify(slackMessage(sampleMessage()).blocks)).toContain(
      'Evidence 31.2 against a threshold of 9.8 (one-sided CUSUM',
    );
  });

  it('shows what the route looks like lately beside the alarm window, while still firing', () => {
    const base = sampleMessage().finding;
    const latest = {
      label: 'success rate',
      n: 480,
      value: 0.931,
      interval: { lower: 0.905, upper: 0.951 },
      since: '2026-12-02T09:00:00.000Z',
      evidence: 4.25,
    };
    const repeat = slackMessage(sampleMessage({ kind: 'repeat', finding: { ...base, latest } }));
    const line =
      '*Latest* 93.1 % (95 % CI 90.5–95.1 %), n = 480 since 2026-12-02 09:00 UTC: evidence 4.3 for the baseline, of the 9.8 a recovery needs';
    expect(JSON.stringify(repeat.blocks)).toContain(line);
    expect(repeat.text).toContain(line.replaceAll('*', ''));
    // With the evidence there, what the recovery still lacks.
    const lacking = (missing: NonNullable<typeof base.latest>['missing']) =>
      slackMessage(
        sampleMessage({
          kind: 'repeat',
          finding: {
            ...base,
            latest: { ...latest, evidence: 12.04, ...(missing ? { missing } : {}) },
          },
        }),
      ).text;
    expect(lacking({ reason: 'duration' })).toMatch(
      /evidence 12\.0 for the baseline, over the 9\.8 a recovery needs; it must also last as long as the degraded stretch before it\n/,
    );
    expect(lacking({ reason: 'relapse' })).toContain(
      'over the 9.8 a recovery needs, but a window inside it alarms on its own (a relapse)',
    );
    expect(lacking({ reason: 'effect' })).toContain(
      "but it is still further from the baseline than the rule's minimum effect",
    );
    // Against a target, the evidence is for the target.
    const target = slackMessage(
      sampleMessage({
        kind: 'repeat',
        finding: {
          ...base,
          latest,
          baseline: { ...base.baseline, n: 0, value: 0.9, interval: null, target: true },
        },
      }),
    ).text;
    expect(target).toContain('evidence 4.3 for the target, of the 9.8 a recovery needs');
    // A target's recovery is evidence for the target too.
    const recoveredTarget = slackMessage(
      sampleMessage({
        kind: 'resolved',
        resolution: 'recovered',
        finding: {
          ...base,
          status: 'ok',
          statistic: -8.7,
          threshold: 7.8,
          baseline: { ...base.baseline, n: 0, value: 0.9, interval: null, target: true },
        },
      }),
    ).text;
    expect(recoveredTarget).toContain(
      'Evidence for the target 8.7 over a threshold of 7.8: recovered',
    );
    // Without it (the latest data do not lean towards the baseline), no line.
    expect(JSON.stringify(slackMessage(sampleMessage({ kind: 'repeat' })).blocks)).not.toContain(
      'Latest',
    );
    // A resolution says how it was judged; the line is for alerts still firing.
    const resolved = slackMessage(
      sampleMessage({
        kind: 'resolved',
        resolution: 'recovered',
        finding: { ...base, status: 'ok', latest },
      }),
    );
    expect(resolved.text).not.toContain('Latest');
  });

  it('lists the other alerts firing on the cohort · route, and counts those past eight', () => {
    const other = (i: number) => ({
      fingerprint: `f${i}`,
      ruleId: `rule-${i}`,
      kind: 'reask_rise' as const,
      detail: '',
      incident: 1,
      severity: 'warning' as const,
      what: `thing ${i} rose`,
      since: '2026-12-02T08:30:00.000Z',
    });
    const two = slackMessage(sampleMessage({ alsoFiring: [other(1), other(2)] }));
    expect(JSON.stringify(two.blocks)).toContain(
      '*Also firing on this cohort · route*\\n• thing 1 rose (`rule-1`, warning), firing since 2026-12-02 08:30 UTC\\n• thing 2 rose',
    );
    expect(two.text).toContain(
      'Also firing on this cohort · route: thing 1 rose (rule-1, warning), firing since 2026-12-02 08:30 UTC; thing 2 rose',
    );
    const many = slackMessage(
      sampleMessage({ alsoFiring: Array.from({ length: 11 }, (_, i) => other(i + 1)) }),
    );
    expect(JSON.stringify(many.blocks)).toContain('rule-8');
    expect(JSON.stringify(many.blocks)).not.toContain('rule-9');
    expect(JSON.stringify(many.blocks)).toContain('and 3 more');
    // A resolution lists those still firing as such.
    const resolved = slackMessage(
      sampleMessage({ kind: 'resolved', resolution: 'recovered', alsoFiring: [other(1)] }),
    );
    expect(resolved.text).toContain('Still firing on this cohort · route: thing 1 rose');
    // None, or a message stored before the list existed: no section.
    for (const message of [sampleMessage({ alsoFiring: [] }), sampleMessage()])
      expect(JSON.stringify(slackMessage(message).blocks)).not.toContain('firing on this');
  });

  it('groups alerts of one cohort · route raised together: each with its evidence, the others once', () => {
    const base = sampleMessage();
    const cost = sampleMessage({
      fingerprint: 'def',
      severity: 'warning',
      ruleId: 'cost_per_success_rise',
      ruleKind: 'cost_per_success_rise',
      failureReasons: [],
      fallbackReasons: [],
      finding: { ...base.finding, ruleId: 'cost_per_success_rise', kind: 'cost_per_success_rise' },
    });
    const elsewhere = {
      fingerprint: 'xyz',
      ruleId: 'p95_regression',
      kind: 'p95_regression' as const,
      detail: '',
      incident: 1,
      severity: 'warning' as const,
      what: 'p95 latency regressed',
      since: '2026-12-02T07:00:00.000Z',
    };
    // Each lists the other as firing too; the group lists only what it does not show itself.
    const inGroup = (m: typeof base, other: typeof base) => ({
      ...m,
      alsoFiring: [
        {
          fingerprint: other.fingerprint,
          ruleId: other.ruleId,
          kind: other.ruleKind,
          detail: '',
          incident: 1,
          severity: other.severity,
          what: 'x',
          since: base.at,
        },
        elsewhere,
      ],
    });
    const { text, blocks } = slackGroupMessage([inGroup(base, cost), inGroup(cost, base)]);
    const all = JSON.stringify(blocks);
    expect((blocks as Block[])[0]).toMatchObject({
      type: 'header',
      text: { text: 'extraction · small: 2 alerts firing (1 critical)' },
    });
    expect(text).toMatch(
      /^FIRING extraction · small: 2 alerts firing \(1 critical\)\n• success rate dropped \(success_rate_drop, critical\): .*\n• cost per successful task rose \(cost_per_success_rise, warning\): /,
    );
    expect(text.match(/Rule /g)).toHaveLength(2);
    expect(all.match(/\*Now\*/g)).toHaveLength(2);
    // The reasons of the first that has them, the costs once, over the first one's window.
    expect(all).toContain('schema_invalid 70 %');
    expect(all.match(/Cost per successful task/g)).toHaveLength(1);
    expect(all).toContain(
      "Cost per successful task* (success_rate_drop's window, since 2026-12-02 08:15 UTC)",
    );
    expect(all).toContain('*Also firing on this cohort · route*\\n• p95 latency regressed');
    expect(all).not.toContain('• x (');
    expect((blocks as Block[]).filter((b) => b.type === 'actions')).toHaveLength(1);
    // A group of one is the alert's own message.
    expect(slackGroupMessage([base])).toEqual(slackMessage(base));
  });

  it('shows no empty window line for a resolution without a figure, only its reason', () => {
    const base = sampleMessage();
    const summary =
      'only 12 fallbacks in 900 tasks in the current window, fewer than the minimum 100: too few for a shift in their reasons to matter';
    const message = sampleMessage({
      kind: 'resolved',
      resolution: 'recovered',
      ruleId: 'fallback_reason_shift',
      ruleKind: 'fallback_reason_shift',
      detail: 'timeout',
      finding: {
        ...base.finding,
        ruleId: 'fallback_reason_shift',
        kind: 'fallback_reason_shift',
        detail: 'timeout',
        status: 'ok',
        summary,
        current: { ...base.finding.current, n: 12, value: null, interval: null },
        statistic: null,
        effect: null,
      },
    });
    const { text, blocks } = slackMessage(message);
    const all = JSON.stringify(blocks);
    expect(all).not.toContain('Window judged');
    expect(all).not.toContain('*Now*');
    expect(all).toContain(summary);
    expect(text).toContain(summary);
    expect(all).toContain('*Baseline*');
    // Said once, in the message's head: the footer ran it into "Rule … · incident 1".
    expect(all.split(summary)).toHaveLength(2);
    expect(all).toContain('"text":"Rule `fallback_reason_shift`');
    // A baseline with no figure either (its reason's fallbacks too few there too): no "Baseline —".
    const bare = slackMessage({
      ...message,
      finding: { ...message.finding, baseline: { ...message.finding.baseline, value: null } },
    });
    expect(JSON.stringify(bare.blocks)).not.toContain('*Baseline*');
  });

  it('shows a route’s cost built on unpriced calls as a floor, and as unknown when none was priced', () => {
    const { blocks } = slackMessage(
      sampleMessage({
        costs: [
          {
            route: 'small',
            tasks: 412,
            costPerSuccessfulTask: 0.0021,
            interval: { lower: 0.0019, upper: 0.0023 },
            unpricedCalls: 40,
            calls: 500,
          },
          {
            route: 'large',
            tasks: 120,
            costPerSuccessfulTask: null,
            interval: null,
            unpricedCalls: 130,
            calls: 130,
          },
        ],
      }),
    );
    const all = JSON.stringify(blocks);
    expect(all).toContain(
      '*small* ≥$0.00210 (95 % CI $0.00190–$0.00230), n = 412 (40 of 500 model calls with no known price)',
    );
    expect(all).toContain('*large* unknown (130 of 130 model calls with no known price)');
  });

  it('clips a long summary in the plain text at the end of a word', () => {
    const base = sampleMessage();
    const words = Array.from({ length: 80 }, (_, i) => `word${i}`).join(' ');
    const long = { ...base, finding: { ...base.finding, summary: words } };
    const other = { ...sampleMessage(), fingerprint: 'f-2', ruleId: 'p95_regression' };
    const { text } = slackGroupMessage([long, other]);
    const line = text.split('\n').find((l) => l.includes('word0'))!;
    expect(line.length).toBeLessThanOrEqual(300);
    expect(line).toMatch(/ word\d+…$/);
  });

  it('words a resolution by how it was judged, once, without empty reasons', () => {
    const base = sampleMessage().finding;
    const resolvedTitle = titleOf(
      'resolved',
      { kind: 'success_rate_drop' },
      'extraction',
      'small',
      '',
    );
    // Resolved on "no degradation": the window judged, not "now", and no claim of recovery.
    const plain = slackMessage(
      sampleMessage({
        kind: 'resolved',
        resolution: 'recovered',
        title: resolvedTitle,
        failureReasons: [],
        fallbackReasons: [],
        finding: {
          ...base,
          status: 'ok',
          summary: 'no degradation: evidence -4.3 below the threshold 8.3',
          statistic: -4.3,
          threshold: 8.3,
        },
      }),
    );
    expect(plain.text).toMatch(/^RESOLVED extraction · small — success rate dropped\n/);
    expect(plain.text).toMatch(/^Window judged 75\.3 %/m);
    expect(plain.text).not.toMatch(/recovered \(/);
    expect(plain.text).toContain('Evidence -4.3 against a threshold of 8.3');
    expect(plain.text).not.toContain('Top failure reasons');
    expect(JSON.stringify(plain.blocks)).not.toContain('Top failure reasons');
    // A firing message carries its reasons, and its evidence in the plain text too.
    const firing = slackMessage(sampleMessage());
    expect(firing.text).toContain('Top failure reasons: schema_invalid 70 %');
    expect(firing.text).toContain('Evidence 31.2 against a threshold of 9.8');
    expect(firing.text).toContain('Rule success_rate_drop · critical · incident 1');
    // Failures without a reason, and a share that rounds to nothing, read as what they are.
    const unnamed = slackMessage(
      sampleMessage({
        failureReasons: [
          { reason: '(none)', tasks: 249, share: 0.996 },
          { reason: 'exhausted', tasks: 1, share: 0.004 },
        ],
      }),
    );
    expect(unnamed.text).toContain(
      'Top failure reasons: no reason given 100 %, exhausted under 1 %',
    );
  });

  it('says, for a resolution on faded evidence, which window it shows and why it resolved, without claiming a recovery', () => {
    // review ops #5: the summary said "no longer degraded: the window since 06:16 has evidence
    // -3.5, below half the threshold 9.8" under "Window judged", and the footer "Evidence for the
    // baseline 15.1 over a threshold of 9.8: recovered": two verdicts, and the window shown was
    // the latest one, not the one judged.
    const base = sampleMessage().finding;
    const message = slackMessage(
      sampleMessage({
        kind: 'resolved',
        resolution: 'recovered',
        title: titleOf('resolved', { kind: 'p95_regression' }, 'extraction', 'small', ''),
        failureReasons: [],
        fallbackReasons: [],
        finding: {
          ...base,
          status: 'ok',
          summary:
            'extraction × small: tasks slower than the baseline p95 5.0% → 3.9% since 06:18 UTC; no longer degraded: the window since 06:16 UTC has evidence -3.5, below half the threshold 9.8',
          current: { ...base.current, since: '2026-12-07T06:18:00.000Z' },
          statistic: -15.1,
          threshold: 9.8,
          ending: 'faded_latest',
        },
      }),
    );
    expect(message.text).toMatch(/^Now 75\.3 %/m);
    expect(message.text).not.toContain('Window judged');
    expect(message.text).toContain(
      "Evidence for the baseline 15.1 in the window shown; resolved because the alarm window's evidence fell below half the threshold, 4.9",
    );
    expect(message.text).not.toMatch(/recovered \(/);
    // Faded with no later window to show: the alarm window, "Window judged", as before.
    const judged = slackMessage(
      sampleMessage({
        kind: 'resolved',
        resolution: 'recovered',
        finding: {
          ...base,
          status: 'ok',
          summary: 'no longer degraded: evidence 3.1 below half the threshold 9.8',
          statistic: 3.1,
          threshold: 9.8,
          ending: 'faded',
        },
      }),
    );
    expect(judged.text).toMatch(/^Window judged 75\.3 %/m);
    expect(judged.text).toContain('Evidence 3.1 against a threshold of 9.8');
  });

  it('titles a target rule by its target, not as a drop', () => {
    const target = { kind: 'target' as const, value: 0.9 };
    expect(
      titleOf('firing', { kind: 'success_rate_drop', baseline: target }, 'onboard', 'small', ''),
    ).toBe('onboard · small: success rate below its target');
    expect(
      titleOf(
        'resolved',
        { kind: 'fallback_rate_spike', baseline: { kind: 'target', value: 0.1 } },
        'faq',
        'small',
        '',
      ),
    ).toBe('Resolved: faq · small — fallback rate spiked (past its target)');
  });

  it('keeps within Block Kit limits however long the names are', () => {
    const long = 'x'.repeat(5_000);
    const { text, blocks } = slackMessage(
      sampleMessage({ title: long, finding: { ...sampleMessage().finding, summary: long } }),
    );
    const typed = blocks as Block[];
    expect(typed.length).toBeLessThanOrEqual(50);
    expect(typed[0]!.text!.text.length).toBeLessThanOrEqual(150);
    for (const block of typed) {
      if (block.text) expect(block.text.text.length).toBeLessThanOrEqual(3000);
      for (const field of block.fields ?? []) expect(field.text.length).toBeLessThanOrEqual(2000);
    }
    expect(text.length).toBeLessThanOrEqual(3900);
  });

  it('escapes names for Slack, so that a cohort named <!channel> notifies no one and links nothing', () => {
    const cohort = '<!channel> & *bold*';
    const route = 'x<y>&z';
    const message = sampleMessage({
      cohort,
      route,
      title: titleOf('firing', { kind: 'success_rate_drop' }, cohort, route, ''),
      finding: {
        ...sampleMessage().finding,
        summary: `${cohort} × ${route}: success rate 93.6% → 75.3% (n 2804 → 412)`,
      },
      costs: [{ route, tasks: 1, costPerSuccessfulTask: 0.002, interval: null }],
      failureReasons: [{ reason: '<https://evil.example|click> <@U123>', tasks: 1, share: 1 }],
    });
    const { text, blocks } = slackMessage(message);
    const mrkdwn = [
      text,
      ...(blocks as Block[]).flatMap((b) => [
        b.type === 'header' ? '' : (b.text?.text ?? ''),
        ...(b.fields ?? []).map((f) => f.text),
        ...(b.elements ?? []).map((e) => (typeof e.text === 'string' ? e.text : '')),
      ]),
    ].join('\n');
    expect(mrkdwn).not.toMatch(/<!channel>|<@U123>|<https:/);
    expect(mrkdwn).toContain('&lt;!channel&gt; &amp; *\u200bbold* × x&lt;y&gt;&amp;z');
    // A URL in a name is not made a link either: its `://` is broken by a zero-width space.
    expect(mrkdwn).toContain('&lt;https:\u200b//evil.example|click&gt; &lt;@U123&gt;');
    expect(mrkdwn).not.toContain('https://evil');
    // The header is plain text, which Slack shows as it is.
    expect((blocks as Block[])[0]!.text).toMatchObject({ type: 'plain_text' });
    expect((blocks as Block[])[0]!.text!.text).toContain('<!channel> & *bold* · x<y>&z');
  });

  it('writes a newline in a name as an escape and keeps its formatting marks from formatting, so that a name forges no line and no bold', () => {
    const cohort = 'billing\nFIRING fake line';
    const route = '*big*`x`';
    const message = sampleMessage({
      cohort,
      route,
      title: titleOf('firing', { kind: 'success_rate_drop' }, cohort, route, ''),
      // As the detectors write it: the names as they are.
      finding: {
        ...sampleMessage().finding,
        summary: `${cohort} × ${route}: success rate 93.0% → 50.0% (n 9600 → 155)`,
      },
      costs: [{ route, tasks: 1, costPerSuccessfulTask: 0.002, interval: null }],
      failureReasons: [{ reason: '_slow_', tasks: 1, share: 1 }],
    });
    const { text, blocks } = slackMessage(message);
    const lines = text.split('\n');
    expect(lines.filter((l) => l.startsWith('FIRING fake line'))).toEqual([]);
    expect(lines[0]).toContain('billing\\nFIRING fake line · *\u200bbig*');
    expect(text).toContain('billing\\nFIRING fake line × *\u200bbig*`\u200bx`\u200b: success rate');
    // Stored and sent to the webhook as they are: the zero-width space is Slack's alone.
    expect(message.title).toBe('billing\\nFIRING fake line · *big*`x`: success rate dropped');
    // The mrkdwn blocks (the header is plain text, which Slack does not format).
    const sections = (blocks as Block[])
      .filter((b) => b.type !== 'header')
      .flatMap((b) => [b.text?.text ?? '', ...(b.fields ?? []).map((f) => f.text)])
      .join('\n');
    expect(sections).toContain('*\u200bbig*');
    expect(sections).toContain('_\u200bslow_');
    expect(sections).not.toMatch(/(^|\s)\*big\*/);
    // Within a word a mark is left as it is: validation_failed is no italics.
    expect(titleOf('firing', { kind: 'success_rate_drop' }, 'a_b', 'small', '')).toBe(
      'a_b · small: success rate dropped',
    );
  });

  it('links to the dashboard without the view when the link is longer than Slack takes', () => {
    const url = `https://routewatch.example/?cohort=${'c'.repeat(3_100)}`;
    const { text, blocks } = slackMessage(sampleMessage({ url }));
    const button = (blocks as Block[]).find((b) => b.type === 'actions')!.elements![0]!;
    expect(button.url).toBe('https://routewatch.example/');
    expect(text).toMatch(/\nhttps:\/\/routewatch\.example\/$/);
    expect(text.length).toBeLessThanOrEqual(3900);
  });

  it('marks a resolve and a repeat', () => {
    expect(slackMessage(sampleMessage({ kind: 'resolved' })).text).toMatch(/^RESOLVED/);
    expect((slackMessage(sampleMessage({ kind: 'repeat' })).blocks[0] as Block).text!.text).toMatch(
      /^Still firing/,
    );
  });

  it('says an alert closed without a verdict as such, not as a recovery', () => {
    const closed = slackMessage(
      sampleMessage({ kind: 'resolved', resolution: 'closed_without_verdict' }),
    );
    expect(closed.text).toMatch(/^CLOSED /);
    expect(closed.text).not.toMatch(/RESOLVED/);
    expect(JSON.stringify(closed.blocks)).toContain(':heavy_minus_sign:');
    expect(JSON.stringify(closed.blocks)).not.toContain(':white_check_mark:');
    // Its figures are the last ones seen, not a judgement of now.
    expect(closed.text).toMatch(/^Last seen /m);
    expect(closed.text).not.toMatch(/^Now /m);
    expect(slackMessage(sampleMessage({ kind: 'firing' })).text).toMatch(/^Now /m);
    expect(
      titleOf(
        'resolved',
        { kind: 'success_rate_drop' },
        'faq',
        'small',
        '',
        'closed_without_verdict',
      ),
    ).toBe('Closed without a verdict: faq · small — success rate dropped');
    expect(titleOf('resolved', { kind: 'success_rate_drop' }, 'faq', 'small', '')).toBe(
      'Resolved: faq · small — success rate dropped',
    );
  });
});

describe('webhookBody', () => {
  it('is the message as JSON with a version and a status', () => {
    expect(webhookBody(sampleMessage())).toMatchObject({
      version: 1,
      status: 'firing',
      cohort: 'extraction',
      route: 'small',
    });
    expect(webhookBody(sampleMessage({ kind: 'resolved' }))).toMatchObject({ status: 'resolved' });
  });
});

describe('retryAfterMs', () => {
  it('reads seconds and HTTP dates, and nothing else', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs('Wed, 02 Dec 2026 10:00:05 GMT', Date.parse('2026-12-02T10:00:00Z'))).toBe(
      5000,
    );
    expect(retryAfterMs(null)).toBeUndefined();
    expect(retryAfterMs('soon')).toBeUndefined();
  });
});

describe('groupEvents', () => {
  const event = (
    fingerprint: string,
    over: Partial<StoredEvent> = {},
    severity: AlertMessage['severity'] = 'warning',
  ): StoredEvent => ({
    fingerprint,
    incident: 1,
    seq: 1,
    kind: 'firing',
    at: 1000,
    notify: true,
    ruleId: fingerprint,
    cohort: 'extraction',
    route: 'small',
    detail: '',
    message: sampleMessage({ fingerprint, severity }),
    ...over,
  });

  it('puts together one evaluation’s events of one cohort × route and kind, the most severe first', () => {
    const events = [
      event('b'),
      event('other-route', { route: 'large' }),
      event('a', {}, 'critical'),
      event('later', { at: 2000 }),
      event('resolved', { kind: 'resolved' }),
      event('c'),
    ];
    expect(groupEvents(events, 10).map((g) => g.events.map((e) => e.fingerprint))).toEqual([
      ['a', 'b', 'c'],
      ['other-route'],
      ['later'],
      ['resolved'],
    ]);
    // At most `limit` a message.
    const split = groupEvents(events, 2);
    expect(split.map((g) => g.events.map((e) => e.fingerprint))).toEqual([
      ['a', 'b'],
      ['c'],
      ['other-route'],
      ['later'],
      ['resolved'],
    ]);
    // The parts of a split group know the whole; a group that fits has no part.
    const whole = { of: 2, total: 3, critical: 1, fingerprints: ['a', 'b', 'c'] };
    expect(split.map((g) => g.part)).toEqual([
      { index: 1, ...whole },
      { index: 2, ...whole },
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('say in each part of a split change how many alerts changed and which part it is, without listing the other parts as firing apart', () => {
    const alerts = ['r1', 'r2', 'r3'].map((id, i) =>
      sampleMessage({
        fingerprint: id,
        ruleId: id,
        severity: i === 0 ? 'critical' : 'warning',
        alsoFiring: ['r1', 'r2', 'r3', 'older']
          .filter((o) => o !== id)
          .map((o) => ({
            fingerprint: o,
            ruleId: o,
            kind: 'success_rate_drop' as const,
            detail: '',
            incident: 1,
            what: `what ${o}`,
            severity: 'warning' as const,
            since: '2026-12-06T10:00:00.000Z',
          })),
      }),
    );
    const batches = groupEvents(
      alerts.map((m) => event(m.fingerprint, { message: m, ruleId: m.ruleId })),
      2,
    );
    const [first, second] = batches.map((b) =>
      slackGroupMessage(
        b.events.map((e) => e.message),
        b.part,
      ),
    );
    expect(first!.text.split('\n')[0]).toMatch(/3 alerts firing \(1 critical\), part 1 of 2$/);
    // The last part holds one alert, still in the group's layout, with the group's count.
    expect(second!.text.split('\n')[0]).toMatch(/3 alerts firing \(1 critical\), part 2 of 2$/);
    for (const { text } of [first!, second!]) {
      expect(text).toContain('what older');
      expect(text).not.toMatch(/what r[123]/);
    }
  });
});
