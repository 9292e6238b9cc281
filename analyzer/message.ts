import { utcMinute } from '../server/time.js';
import { isolate } from './name-list.js';
import { printable } from './text-width.js';
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
  /** Null with no success, or when no model call under it was priced (`unpricedCalls` = `calls`). */
  costPerSuccessfulTask: number | null;
  interval: Interval | null;
  /** Present when some model calls have no known price: the figure is then a floor. */
  unpricedCalls?: number;
  calls?: number;
}

/** Another alert firing on the same cohort × route when a message goes out. */
export interface OtherAlert {
  fingerprint: string;
  ruleId: string;
  kind: Rule['kind'];
  /** The fallback reason a reason-shift alert watches; empty otherwise. */
  detail: string;
  incident: number;
  severity: Rule['severity'];
  /** What it says, without the cohort × route: "cost per successful task rose". */
  what: string;
  /** When it fired. */
  since: string;
  /** Held without a verdict (its monitor cannot judge it: too few tasks) since then. */
  heldSince?: string;
  /** When the silence that keeps it quiet ends, if one does. */
  silencedUntil?: string;
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
  /** A message a silence kept unsent (analyzer/silences.ts): which, and until when. */
  silenced?: { id: string; until: string };
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

/**
 * A name (cohort, route, reason) as a message sets it, for every channel: control characters
 * written as escapes (a newline in a cohort name forged a second line in the notification:
 * "FIRING fake line"), right-to-left text isolated.
 */
export function nameInText(name: string): string {
  return isolate(printable(name));
}

/**
 * Text of ours holding names, as Slack's mrkdwn shows it: each formatting mark that could open a
 * span (`*bold*`, `_`, `~` at the start of a word; a backtick anywhere) followed by a zero-width space, so
 * that a route named `*big*` shows as it is; and a `://` broken the same way, so that a name
 * holding a URL is not made a link in a trusted alert. Only where the text carries no formatting
 * of ours, and only for Slack: stored titles and the webhook keep names as they are.
 */
export function slackSafe(text: string): string {
  return text.replace(/(?<=^|[^\p{L}\p{N}])[*_~]|`/gu, '$&\u200b').replaceAll('://', ':\u200b//');
}

/** "extraction · small", names set as nameInText does. */
const whereOf = (cohort: string, route: string) =>
  `${nameInText(cohort) || '(none)'} · ${nameInText(route) || '(none)'}`;

type TitledRule = Pick<Rule, 'kind'> & Partial<Pick<Rule, 'baseline'>>;

/**
 * What titles an alert: its rule as configured, else (a rule gone from the rules file) what its
 * finding kept of it, so that a target rule's closing message is still titled by its target.
 */
export function titledRule(finding: Finding, rule?: Pick<Rule, 'baseline'>): TitledRule {
  if (rule) return { kind: finding.kind, baseline: rule.baseline };
  const { target, value } = finding.baseline;
  return target && value !== null
    ? { kind: finding.kind, baseline: { kind: 'target', value } }
    : { kind: finding.kind };
}

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
  return `${title}${detail ? ` ("${nameInText(detail)}")` : ''}`;
}

export function titleOf(
  kind: AlertMessage['kind'],
  rule: TitledRule,
  cohort: string,
  route: string,
  detail: string,
  resolution: Resolution = 'recovered',
): string {
  const where = whereOf(cohort, route);
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
        .map((r) => {
          // Failures sent without `routewatch.outcome.reason` read as what they are.
          const name =
            r.reason === '' || r.reason === '(none)'
              ? 'no reason given'
              : slackSafe(nameInText(r.reason));
          const share = Math.round(r.share * 100);
          return `${name} ${share === 0 && r.share > 0 ? 'under 1' : share} %`;
        })
        .join(', ');
}

function cost(c: CostOnRoute): string {
  const unpriced =
    c.unpricedCalls !== undefined
      ? ` (${c.unpricedCalls.toLocaleString('en')} of ${(c.calls ?? 0).toLocaleString('en')} model calls with no known price)`
      : '';
  if (c.costPerSuccessfulTask === null)
    return `*${slackSafe(nameInText(c.route))}* ${unpriced ? `unknown${unpriced}` : '—'}`;
  const ci = c.interval
    ? ` (95 % CI $${c.interval.lower.toPrecision(3)}–$${c.interval.upper.toPrecision(3)})`
    : '';
  const floor = unpriced ? '≥' : '';
  return `*${slackSafe(nameInText(c.route))}* ${floor}$${c.costPerSuccessfulTask.toPrecision(3)}${ci}, n = ${c.tasks.toLocaleString('en')}${unpriced}`;
}

/** " since 2026-12-04 10:30 UTC", from an ISO time. */
const sinceText = (iso: string) => ` since ${utcMinute(iso)}`;

/** The other alerts a message lists by name; the rest are counted. */
const OTHERS_SHOWN = 8;

const SLACK_TEXT_LIMIT = 3000;
/** `text` cut to `limit` characters with an ellipsis, at a word's end where one is near. */
const clip = (text: string, limit = SLACK_TEXT_LIMIT) => {
  if (text.length <= limit) return text;
  const cut = text.slice(0, limit - 1).replace(/&[a-z]{0,3}$/, '');
  const space = cut.lastIndexOf(' ');
  return `${space >= cut.length - 40 && space > 0 ? cut.slice(0, space).replace(/[\s,;:(]+$/, '') : cut}…`;
};

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
function evidenceLine(
  statistic: number,
  threshold: number,
  status: Finding['status'],
  target = false,
  ending?: Finding['ending'],
): string {
  const how =
    "(one-sided CUSUM log-likelihood ratio; false alerts held to the rule's budget per horizon)";
  // Resolved because the alarm window's evidence faded (the summary gives it): the window shown
  // is the latest one, whose own evidence may favour the baseline by the threshold without
  // having been judged a recovery.
  if (ending === 'faded_latest') {
    const side = target ? 'target' : 'baseline';
    return `Evidence for the ${side} ${(-statistic).toFixed(1)} in the window shown; resolved because the alarm window's evidence fell below half the threshold, ${(threshold * RESOLVE_BELOW).toFixed(1)} ${how}.`;
  }
  // Only a recovery's window favours the baseline by the threshold; a window under it is merely
  // not degraded (its evidence for the baseline, if any, is no claim of recovery).
  if (status === 'ok' && -statistic >= threshold) {
    return `Evidence for the ${target ? 'target' : 'baseline'} ${(-statistic).toFixed(1)} over a threshold of ${threshold.toFixed(1)}: recovered ${how}.`;
  }
  const held =
    status === 'degraded' && statistic < threshold
      ? `, held firing until it falls below ${(threshold * RESOLVE_BELOW).toFixed(1)}`
      : '';
  return `Evidence ${statistic.toFixed(1)} against a threshold of ${threshold.toFixed(1)}${held} ${how}.`;
}

/**
 * What the Latest line says of its evidence: how far it is from a recovery, or, with the evidence
 * there, what the recovery still lacks.
 */
function latestEvidence(
  latest: NonNullable<Finding['latest']>,
  threshold: number | null,
  target: boolean,
): string {
  const against = target ? 'the target' : 'the baseline';
  const evidence = `evidence ${latest.evidence.toFixed(1)} for ${against}`;
  if (threshold === null) return evidence;
  if (!latest.missing) return `${evidence}, of the ${threshold.toFixed(1)} a recovery needs`;
  const over = `${evidence}, over the ${threshold.toFixed(1)} a recovery needs`;
  switch (latest.missing.reason) {
    case 'duration':
      return `${over}; it must also last as long as the degraded stretch before it`;
    case 'relapse':
      return `${over}, but a window inside it alarms on its own (a relapse)`;
    case 'effect':
      return `${over}, but it is still further from ${against} than the rule's minimum effect`;
  }
}

/** One alert's parts of a Slack message, shared by a message of its own and a group's. */
function slackParts(message: AlertMessage) {
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
      ? evidenceLine(
          finding.statistic,
          finding.threshold,
          finding.status,
          finding.baseline.target === true,
          finding.ending,
        )
      : // No test ran: the summary, which heads every message, says why; not twice.
        '';
  // Closed without a verdict, the figures are the last ones seen before it closed, not a
  // judgement of now. Resolved without a recovery window, they are the window the test judged
  // (the one closest to alarming), which may still hold some of the incident: not "now".
  const closed = message.resolution === 'closed_without_verdict';
  const judged =
    message.kind === 'resolved' &&
    !closed &&
    (finding.ending === undefined
      ? // Stored before `ending` existed.
        !finding.summary.startsWith('recovered: ')
      : finding.ending === 'faded');
  // A window with no figure and no test (fallbacks too few for their reasons to matter) has
  // nothing to show but its summary, which the evidence line gives.
  const figureless = finding.current.value === null && finding.statistic === null;
  const lines = [
    ...(figureless && !closed
      ? []
      : [
          sideLine(
            message.ruleKind,
            closed ? 'Last seen' : judged ? 'Window judged' : 'Now',
            finding.current,
            closed ? '' : since,
          ),
        ]),
    // Firing still, though the latest data lean towards the baseline: what the route looks like
    // now, beside the alarm window that may still hold the incident.
    ...(finding.latest && message.kind !== 'resolved'
      ? [
          sideLine(
            message.ruleKind,
            'Latest',
            finding.latest,
            `${sinceText(finding.latest.since)}: ${latestEvidence(finding.latest, finding.threshold, finding.baseline.target === true)}`,
          ),
        ]
      : []),
    ...(figureless && finding.baseline.value === null && !finding.baseline.target
      ? // Nothing judged, nothing to show: not "Baseline —".
        []
      : [
          finding.baseline.target
            ? `*Target* ${figure(message.ruleKind, finding.baseline.value)}`
            : sideLine(
                message.ruleKind,
                'Baseline',
                finding.baseline,
                ` (${finding.baseline.description})`,
              ),
        ]),
  ];
  const footer = `${evidence ? `${evidence} ` : ''}Rule \`${message.ruleId}\` · ${message.severity} · incident ${message.incident}`;
  return { icon, lines, footer };
}

/**
 * The sections every message ends with: cost per successful task on the routes, the top reasons
 * and the other alerts firing on the cohort · route, as blocks and as plain text. `window` says
 * which window the costs cover.
 */
function slackTail(
  message: AlertMessage,
  window: string,
  others: readonly OtherAlert[],
): { blocks: unknown[]; text: string[] } {
  const blocks: unknown[] = [];
  const text: string[] = [];
  if (message.costs.length > 0) {
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: slackText(
          `*Cost per successful task*${window}\n${message.costs.map(cost).join('\n')}`,
        ),
      },
    });
    text.push(
      `Cost per successful task${window}: ${message.costs.map(cost).join('; ').replaceAll('*', '')}`,
    );
  }
  // The reasons are read for firing and repeats only: a resolution has none to show.
  if (message.failureReasons.length > 0 || message.fallbackReasons.length > 0) {
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
    text.push(
      `Top failure reasons: ${reasons(message.failureReasons)}. Top fallback reasons: ${reasons(message.fallbackReasons)}.`,
    );
  }
  if (others.length > 0) {
    const listed = others
      .slice(0, OTHERS_SHOWN)
      .map(
        (o) =>
          `${slackSafe(o.what)} (\`${o.ruleId}\`, ${o.severity}), firing${sinceText(o.since)}${
            o.heldSince ? `, no verdict${sinceText(o.heldSince)}` : ''
          }${o.silencedUntil ? `, silenced until${sinceText(o.silencedUntil).slice(6)}` : ''}`,
      );
    if (others.length > OTHERS_SHOWN) listed.push(`and ${others.length - OTHERS_SHOWN} more`);
    const title = `${message.kind === 'resolved' ? 'Still firing' : 'Also firing'} on this cohort · route`;
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: slackText(`*${title}*\n${listed.map((l) => `• ${l}`).join('\n')}`),
      },
    });
    text.push(`${title}: ${listed.join('; ').replaceAll('`', '')}`);
  }
  return { blocks, text };
}

/** The dashboard button; a link longer than Slack takes opens the dashboard without the view. */
function slackButton(url: string): { block: unknown; link: string } {
  // A link longer than Slack takes (very long names) would lose the whole message.
  const link = url.length <= SLACK_URL_LIMIT ? url : url.split('?')[0]!;
  return {
    link,
    block: {
      type: 'actions',
      elements: [
        { type: 'button', text: { type: 'plain_text', text: 'Open the dashboard' }, url: link },
      ],
    },
  };
}

/** The Slack incoming-webhook body: Block Kit blocks, and `text` as the notification fallback. */
export function slackMessage(message: AlertMessage): SlackMessage {
  const { finding } = message;
  const { icon, lines, footer } = slackParts(message);
  // The costs are over the window of the first line (evaluator.ts), both routes.
  const tail = slackTail(
    message,
    finding.current.since ? ' (same window)' : '',
    message.alsoFiring ?? [],
  );
  const { block: button, link } = slackButton(message.url);
  const blocks: unknown[] = [
    {
      type: 'header',
      text: {
        type: 'plain_text',
        text: clip(`${message.kind === 'repeat' ? 'Still firing: ' : ''}${message.title}`, 150),
        emoji: true,
      },
    },
    {
      type: 'section',
      text: { type: 'mrkdwn', text: slackText(`${icon} ${slackSafe(printable(finding.summary))}`) },
    },
    { type: 'section', text: { type: 'mrkdwn', text: slackText(lines.join('\n')) } },
    ...tail.blocks,
    { type: 'context', elements: [{ type: 'mrkdwn', text: slackText(footer) }] },
    button,
  ];
  const text = [
    // The banner says what a resolution's title starts with ("Resolved: …"): once is enough.
    `${banner(message)} ${slackSafe(message.title.replace(/^(Resolved|Closed without a verdict): /, ''))}`,
    slackSafe(printable(finding.summary)),
    lines.join('\n').replaceAll('*', ''),
    ...tail.text,
    footer.replaceAll('`', ''),
  ].join('\n');
  // The link is routewatch's own, its names percent-encoded: it goes in as it is.
  return { text: `${slackText(text, 3900 - link.length - 1)}\n${link}`, blocks };
}

/** The most alerts one Slack message groups: each takes two of Block Kit's 50 blocks. */
export const SLACK_GROUP_LIMIT = 10;

/**
 * One Slack message for alerts of one cohort · route that changed in the same evaluation, the
 * same way (all fired, or all resolved): what each says, with its evidence, then the costs and
 * reasons of the first (the most severe) and the other alerts still firing there. A group of one
 * is that alert's own message.
 */
/**
 * Where a message stands in a change of more alerts than one message holds: part `index` of `of`,
 * of `total` alerts (`critical` of them critical), whose fingerprints are `fingerprints`.
 */
export interface GroupPart {
  index: number;
  of: number;
  total: number;
  critical: number;
  fingerprints: readonly string[];
}

export function slackGroupMessage(
  messages: readonly AlertMessage[],
  part?: GroupPart,
): SlackMessage {
  if (messages.length === 1 && part === undefined) return slackMessage(messages[0]!);
  const [first] = messages as [AlertMessage, ...AlertMessage[]];
  const where = whereOf(first.cohort, first.route);
  const how =
    first.kind === 'resolved'
      ? first.resolution === 'closed_without_verdict'
        ? 'closed without a verdict'
        : 'resolved'
      : first.kind === 'repeat'
        ? 'still firing'
        : 'firing';
  const critical = part?.critical ?? messages.filter((m) => m.severity === 'critical').length;
  // The count and severity are what a phone's notification shows: the names are clipped, not they.
  // A change split over messages counts all its alerts, and says which part this is.
  const count =
    `: ${part?.total ?? messages.length} alerts ${how}${critical > 0 ? ` (${critical} critical)` : ''}` +
    (part ? `, part ${part.index} of ${part.of}` : '');
  const title = `${clip(where, 150 - count.length)}${count}`;
  const blocks: unknown[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(title, 150), emoji: true } },
  ];
  // The plain text names every alert first, in a line each, then the details while room lasts:
  // clipped at Slack's limit, it loses details, not alerts.
  const named: string[] = [`${banner(first)} ${slackSafe(title)}`];
  const details: string[] = [];
  for (const message of messages) {
    const { icon, lines, footer } = slackParts(message);
    const what = slackSafe(whatOf(titledRule(message.finding), message.detail));
    blocks.push(
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: slackText(
            `${icon} *${what}*: ${slackSafe(printable(message.finding.summary))}\n${lines.join('\n')}`,
          ),
        },
      },
      { type: 'context', elements: [{ type: 'mrkdwn', text: slackText(footer) }] },
    );
    named.push(
      clip(
        `• ${what} (${message.ruleId}, ${message.severity}): ${slackSafe(printable(message.finding.summary))}`,
        300,
      ),
    );
    details.push(`${what}:`, lines.join('\n').replaceAll('*', ''), footer.replaceAll('`', ''));
  }
  const text = [...named];
  // The alerts of the other parts changed with these: not listed as firing apart from them.
  const grouped = new Set(part?.fingerprints ?? messages.map((m) => m.fingerprint));
  const others = (first.alsoFiring ?? []).filter((o) => !grouped.has(o.fingerprint));
  const window = first.finding.current.since
    ? ` (${first.ruleId}'s window,${sinceText(first.finding.current.since)})`
    : '';
  const withReasons =
    messages.find((m) => m.failureReasons.length > 0 || m.fallbackReasons.length > 0) ?? first;
  const tail = slackTail(
    {
      ...first,
      failureReasons: withReasons.failureReasons,
      fallbackReasons: withReasons.fallbackReasons,
    },
    window,
    others,
  );
  const { block: button, link } = slackButton(first.url);
  blocks.push(...tail.blocks, button);
  text.push(...tail.text, ...details);
  return { text: `${slackText(text.join('\n'), 3900 - link.length - 1)}\n${link}`, blocks };
}

/** What a test message (`routewatch alerts --test`) says: where it comes from, and when. */
export interface TestMessage {
  /** The routewatch sending it (ROUTEWATCH_PUBLIC_URL, else where it listens). */
  url: string;
  at: string;
}

const testText = (test: TestMessage) =>
  `routewatch test message: alerts from ${test.url} reach this channel (sent ${test.at} by routewatch alerts --test; nothing is wrong).`;

/** A Slack test message: one line, no alert. */
export function slackTestMessage(test: TestMessage): SlackMessage {
  const text = testText(test);
  return {
    text,
    blocks: [{ type: 'section', text: { type: 'mrkdwn', text: slackText(text) } }],
  };
}

/**
 * A webhook test body: `status` "test", which a receiver that routes on `status` ("firing",
 * "resolved") can tell from an alert.
 */
export function webhookTestBody(test: TestMessage): Record<string, unknown> {
  return { version: 1, status: 'test', text: testText(test), url: test.url, at: test.at };
}

/** The generic webhook body: the message as JSON, with a schema version. */
export function webhookBody(message: AlertMessage): Record<string, unknown> {
  return { version: 1, status: message.kind === 'resolved' ? 'resolved' : 'firing', ...message };
}
