import { isolate } from './name-list.js';
import { RESOLVE_BELOW } from './detectors.js';
import type { Finding, Side } from './detectors.js';
import type { EventKind } from './lifecycle.js';
import type { Rule } from './rules.js';
import type { Interval } from './stats.js';

/**
 * What an alert says, as data (stored with its event), and how each channel renders it: Slack
 * Block Kit with a plain-text fallback, and a generic JSON webhook body. Pure: tested directly.
 */

export interface CostOnRoute {
  route: string;
  tasks: number;
  costPerSuccessfulTask: number | null;
  interval: Interval | null;
}

/** Another alert firing on the same cohort × route when a message goes out. */
export interface OtherAlert {
  ruleId: string;
  severity: Rule['severity'];
  /** What it says, without the cohort × route: "cost per successful task rose". */
  what: string;
  /** When it fired. */
  since: string;
}

export interface ReasonShare {
  reason: string;
  tasks: number;
  share: number;
}

export interface AlertMessage {
  kind: Extract<EventKind, 'firing' | 'repeat' | 'resolved'>;
  fingerprint: string;
  incident: number;
  at: string;
  severity: Rule['severity'];
  ruleId: string;
  ruleKind: Rule['kind'];
  ruleDescription: string;
  cohort: string;
  route: string;
  detail: string;
  /**
   * For a resolved alert: whether its monitor found it well again (`recovered`), or it was closed
   * with no verdict (`closed_without_verdict`): its rule was disabled, removed or narrowed, or it
   * was held with no verdict for `holdWithoutVerdict`.
   */
  resolution?: Resolution;
  /** One line: what degraded, or that it recovered. */
  title: string;
  finding: Finding;
  /** Cost per successful task on this route and on the large route of the cohort. */
  costs: CostOnRoute[];
  failureReasons: ReasonShare[];
  fallbackReasons: ReasonShare[];
  /**
   * The other alerts firing on this cohort × route, so that one message says all that is wrong
   * with the route: the route's alerts share one repeat (lifecycle.ts step). Absent in messages
   * stored before it existed.
   */
  alsoFiring?: OtherAlert[];
  /** Where to look: the dashboard on this cohort × route and window (analyzer/dashboard-link.ts). */
  url: string;
}

export type Resolution = 'recovered' | 'closed_without_verdict';

const RULE_TITLES: Record<Rule['kind'], string> = {
  success_rate_drop: 'success rate dropped',
  cost_per_success_rise: 'cost per successful task rose',
  cheaper_than_large: 'no longer cheaper per successful task than the large route',
  fallback_rate_spike: 'fallback rate spiked',
  fallback_reason_shift: 'fallback reasons shifted',
  invisible_fallbacks: 'fallbacks without a reason appeared',
  cascades: 'cascades appeared',
  reask_rise: 'reasks rose',
  escalation_rise: 'escalations rose',
  p95_regression: 'p95 latency regressed',
  failure_concentration: 'failures concentrate here',
  unpriced_rise: 'unpriced model calls rose (cost per success understated)',
  loop_rate_rise: 'agent loops rose',
  retry_rise: 'SDK retries rose (hidden rate limits or server errors)',
};

type TitledRule = Pick<Rule, 'kind'> & Partial<Pick<Rule, 'baseline'>>;

/** What an alert of `rule` says, without its cohort × route. */
export function whatOf(rule: TitledRule, detail: string): string {
  // Against a target, nothing "dropped" or "rose": the route is worse than its target, and may
  // always have been (a cohort that started out bad).
  const title =
    rule.baseline?.kind === 'target'
      ? rule.kind === 'success_rate_drop'
        ? 'success rate below its target'
        : `${RULE_TITLES[rule.kind]} (past its target)`
      : RULE_TITLES[rule.kind];
  return `${title}${detail ? ` ("${isolate(detail)}")` : ''}`;
}

export function titleOf(
  kind: AlertMessage['kind'],
  rule: TitledRule,
  cohort: string,
  route: string,
  detail: string,
  resolution: Resolution = 'recovered',
): string {
  const where = `${isolate(cohort) || '(none)'} · ${isolate(route) || '(none)'}`;
  const what = whatOf(rule, detail);
  if (kind !== 'resolved') return `${where}: ${what}`;
  return resolution === 'recovered'
    ? `Resolved: ${where} — ${what}`
    : `Closed without a verdict: ${where} — ${what}`;
}

/** The word a message's first line starts with. */
function banner(message: AlertMessage): string {
  if (message.kind === 'repeat') return 'STILL FIRING';
  if (message.kind === 'firing') return 'FIRING';
  return message.resolution === 'closed_without_verdict' ? 'CLOSED' : 'RESOLVED';
}

const MONEY: ReadonlySet<Rule['kind']> = new Set(['cost_per_success_rise', 'cheaper_than_large']);

function figure(kind: Rule['kind'], value: number | null): string {
  if (value === null) return '—';
  return MONEY.has(kind) ? `$${value.toPrecision(3)}` : `${(value * 100).toFixed(1)} %`;
}

function range(kind: Rule['kind'], interval: Interval | null): string {
  if (!interval) return '';
  return MONEY.has(kind)
    ? ` (95 % CI $${interval.lower.toPrecision(3)}–$${interval.upper.toPrecision(3)})`
    : ` (95 % CI ${(interval.lower * 100).toFixed(1)}–${(interval.upper * 100).toFixed(1)} %)`;
}

function sideLine(kind: Rule['kind'], name: string, side: Side, extra: string): string {
  return `*${name}* ${figure(kind, side.value)}${range(kind, side.interval)}, n = ${side.n.toLocaleString('en')}${extra}`;
}

function reasons(list: readonly ReasonShare[]): string {
  return list.length === 0
    ? '—'
    : list
        .slice(0, 3)
        .map((r) => `${isolate(r.reason)} ${Math.round(r.share * 100)} %`)
        .join(', ');
}

function cost(c: CostOnRoute): string {
  if (c.costPerSuccessfulTask === null) return `*${isolate(c.route)}* —`;
  const ci = c.interval
    ? ` (95 % CI $${c.interval.lower.toPrecision(3)}–$${c.interval.upper.toPrecision(3)})`
    : '';
  return `*${isolate(c.route)}* $${c.costPerSuccessfulTask.toPrecision(3)}${ci}, n = ${c.tasks.toLocaleString('en')}`;
}

/** " since 2026-12-04 10:30 UTC", from an ISO time. */
const sinceText = (iso: string) => ` since ${iso.slice(0, 16).replace('T', ' ')} UTC`;

/** The other alerts a message lists by name; the rest are counted. */
const OTHERS_SHOWN = 8;

const SLACK_TEXT_LIMIT = 3000;
const clip = (text: string, limit = SLACK_TEXT_LIMIT) =>
  text.length <= limit ? text : `${text.slice(0, limit - 1).replace(/&[a-z]{0,3}$/, '')}…`;

/**
 * Text for Slack's mrkdwn and its notification fallback, with `&`, `<` and `>` escaped as Slack
 * asks. Names come from span attributes: unescaped, a cohort named `<!channel>` would notify the
 * whole channel, and `<https://…|label>` would be a link. Nothing routewatch writes itself uses
 * the three.
 */
const slackText = (text: string, limit = SLACK_TEXT_LIMIT) =>
  clip(text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;'), limit);

/** Slack refuses a button whose URL is longer. */
const SLACK_URL_LIMIT = 3000;

export interface SlackMessage {
  text: string;
  blocks: unknown[];
}

/**
 * The evidence line. A recovery's window favours the baseline: its ratio is negative, and said
 * the other way round. A firing alert held by the hysteresis (degraded, under the threshold) says
 * where it resolves.
 */
function evidenceLine(statistic: number, threshold: number, status: Finding['status']): string {
  const how =
    "(one-sided CUSUM log-likelihood ratio; false alerts held to the rule's budget per horizon)";
  // Only a recovery's window favours the baseline by the threshold; a window under it is merely
  // not degraded (its evidence for the baseline, if any, is no claim of recovery).
  if (status === 'ok' && -statistic >= threshold) {
    return `Evidence for the baseline ${(-statistic).toFixed(1)} over a threshold of ${threshold.toFixed(1)}: recovered ${how}.`;
  }
  const held =
    status === 'degraded' && statistic < threshold
      ? `, held firing until it falls below ${(threshold * RESOLVE_BELOW).toFixed(1)}`
      : '';
  return `Evidence ${statistic.toFixed(1)} against a threshold of ${threshold.toFixed(1)}${held} ${how}.`;
}

/** The Slack incoming-webhook body: Block Kit blocks, and `text` as the notification fallback. */
export function slackMessage(message: AlertMessage): SlackMessage {
  const { finding } = message;
  const icon =
    message.kind === 'resolved'
      ? message.resolution === 'closed_without_verdict'
        ? ':heavy_minus_sign:'
        : ':white_check_mark:'
      : message.severity === 'critical'
        ? ':red_circle:'
        : ':large_orange_circle:';
  const since = finding.current.since ? sinceText(finding.current.since) : '';
  const evidence =
    finding.statistic !== null && finding.threshold !== null
      ? evidenceLine(finding.statistic, finding.threshold, finding.status)
      : finding.summary;
  // Closed without a verdict, the figures are the last ones seen before it closed, not a
  // judgement of now. Resolved without a recovery window, they are the window the test judged
  // (the one closest to alarming), which may still hold some of the incident: not "now".
  const closed = message.resolution === 'closed_without_verdict';
  const judged =
    message.kind === 'resolved' && !closed && !finding.summary.startsWith('recovered: ');
  const lines = [
    sideLine(
      message.ruleKind,
      closed ? 'Last seen' : judged ? 'Window judged' : 'Now',
      finding.current,
      closed ? '' : since,
    ),
    // Firing still, though the latest data lean towards the baseline: what the route looks like
    // now, beside the alarm window that may still hold the incident.
    ...(finding.latest && message.kind !== 'resolved'
      ? [
          sideLine(
            message.ruleKind,
            'Latest',
            finding.latest,
            `${sinceText(finding.latest.since)}: evidence ${finding.latest.evidence.toFixed(1)} for the baseline${
              finding.threshold !== null
                ? `, of the ${finding.threshold.toFixed(1)} a recovery needs`
                : ''
            }`,
          ),
        ]
      : []),
    finding.baseline.target
      ? `*Target* ${figure(message.ruleKind, finding.baseline.value)}`
      : sideLine(
          message.ruleKind,
          'Baseline',
          finding.baseline,
          ` (${finding.baseline.description})`,
        ),
  ];
  // The costs are over the window of the first line (evaluator.ts), both routes.
  const sameWindow = finding.current.since ? ' (same window)' : '';
  const blocks: unknown[] = [
    {
      type: 'header',
      text: {
        type: 'plain_text',
        text: clip(`${message.kind === 'repeat' ? 'Still firing: ' : ''}${message.title}`, 150),
        emoji: true,
      },
    },
    { type: 'section', text: { type: 'mrkdwn', text: slackText(`${icon} ${finding.summary}`) } },
    { type: 'section', text: { type: 'mrkdwn', text: slackText(lines.join('\n')) } },
  ];
  if (message.costs.length > 0) {
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: slackText(
          `*Cost per successful task*${sameWindow}\n${message.costs.map(cost).join('\n')}`,
        ),
      },
    });
  }
  // The reasons are read for firing and repeats only: a resolution has none to show.
  const anyReasons = message.failureReasons.length > 0 || message.fallbackReasons.length > 0;
  if (anyReasons) {
    blocks.push({
      type: 'section',
      fields: [
        {
          type: 'mrkdwn',
          text: slackText(`*Top failure reasons*\n${reasons(message.failureReasons)}`, 2000),
        },
        {
          type: 'mrkdwn',
          text: slackText(`*Top fallback reasons*\n${reasons(message.fallbackReasons)}`, 2000),
        },
      ],
    });
  }
  const others = message.alsoFiring ?? [];
  const otherLines = others
    .slice(0, OTHERS_SHOWN)
    .map((o) => `${o.what} (\`${o.ruleId}\`, ${o.severity})${sinceText(o.since)}`);
  if (others.length > OTHERS_SHOWN) otherLines.push(`and ${others.length - OTHERS_SHOWN} more`);
  const othersTitle = `${message.kind === 'resolved' ? 'Still firing' : 'Also firing'} on this cohort · route`;
  if (others.length > 0) {
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: slackText(`*${othersTitle}*\n${otherLines.map((l) => `• ${l}`).join('\n')}`),
      },
    });
  }
  blocks.push({
    type: 'context',
    elements: [
      {
        type: 'mrkdwn',
        text: slackText(
          `${evidence} Rule \`${message.ruleId}\` · ${message.severity} · incident ${message.incident}`,
        ),
      },
    ],
  });
  // A link longer than Slack takes (very long names) would lose the whole message: the button
  // then opens the dashboard without the view.
  const link = message.url.length <= SLACK_URL_LIMIT ? message.url : message.url.split('?')[0]!;
  blocks.push({
    type: 'actions',
    elements: [
      { type: 'button', text: { type: 'plain_text', text: 'Open the dashboard' }, url: link },
    ],
  });
  const text = [
    // The banner says what a resolution's title starts with ("Resolved: …"): once is enough.
    `${banner(message)} ${message.title.replace(/^(Resolved|Closed without a verdict): /, '')}`,
    finding.summary,
    lines.join('\n').replaceAll('*', ''),
    message.costs.length
      ? `Cost per successful task${sameWindow}: ${message.costs.map(cost).join('; ').replaceAll('*', '')}`
      : '',
    anyReasons
      ? `Top failure reasons: ${reasons(message.failureReasons)}. Top fallback reasons: ${reasons(message.fallbackReasons)}.`
      : '',
    others.length > 0 ? `${othersTitle}: ${otherLines.join('; ').replaceAll('`', '')}` : '',
    `${evidence} Rule ${message.ruleId} · ${message.severity} · incident ${message.incident}`,
  ]
    .filter(Boolean)
    .join('\n');
  // The link is routewatch's own, its names percent-encoded: it goes in as it is.
  return { text: `${slackText(text, 3900 - link.length - 1)}\n${link}`, blocks };
}

/** The generic webhook body: the message as JSON, with a schema version. */
export function webhookBody(message: AlertMessage): Record<string, unknown> {
  return { version: 1, status: message.kind === 'resolved' ? 'resolved' : 'firing', ...message };
}
