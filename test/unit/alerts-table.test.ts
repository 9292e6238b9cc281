import { describe, expect, it } from 'vitest';
import { renderAlertsTable } from '../../analyzer/alerts-table.js';
import type { AlertsView } from '../../analyzer/alerts-table.js';
import { successUnjudgedOf, unjudgedOf } from '../../analyzer/api-routes.js';
import type { Finding } from '../../analyzer/detectors.js';

const alert = (
  state: string,
  summary: string,
  status = 'degraded',
): AlertsView['alerts'][number] => ({
  rule: 'success-drop',
  severity: 'critical',
  cohort: 'extraction',
  route: 'small',
  detail: '',
  state,
  since: '2026-12-04T10:00:00.000Z',
  summary,
  finding: { status },
});

const view = (alerts: AlertsView['alerts']): AlertsView => ({
  evaluatedAt: '2026-12-04T10:05:00.000Z',
  alerts,
  history: [],
  channels: {},
});

describe('renderAlertsTable', () => {
  it('says when a channel last failed, and that it delivered since when it did', () => {
    const channel = {
      sent: 2,
      retries: 3,
      queued: 0,
      lastError: 'HTTP 500: boom',
      lastErrorAt: '2026-12-04T10:01:00.000Z',
    };
    const failing = renderAlertsTable({ ...view([]), channels: { slack: channel } });
    expect(failing).toMatch(
      /^Channels: slack 2 sent, 0 queued, last error HTTP 500: boom at 2026-12-04 10:01 UTC$/m,
    );
    const recovered = renderAlertsTable({
      ...view([]),
      channels: { slack: { ...channel, lastSentAt: '2026-12-04T10:03:00.000Z' } },
    });
    expect(recovered).toMatch(
      /last error HTTP 500: boom at 2026-12-04 10:01 UTC \(delivered since, last at 2026-12-04 10:03 UTC\)$/m,
    );
  });

  it('says since when the channel counts run, and every message not sent, each by why', () => {
    const table = renderAlertsTable({
      ...view([]),
      channels: {
        slack: {
          sent: 6,
          retries: 0,
          queued: 1,
          refused: 1,
          expired: 2,
          silenced: 3,
          unannounced: 1,
          lastError: '',
          since: '2026-12-04T09:00:00.000Z',
        },
      },
    });
    expect(table).toMatch(
      /^Channels \(counted since 2026-12-04 09:00 UTC, when routewatch started\): slack 6 sent, 1 queued, 1 refused by the endpoint and given up, 2 given up as older than the look-back, 3 kept back by a silence, 1 ends not sent \(their firing never reached it\)$/m,
    );
  });

  it('says the messages given up in the last 7 days from the store, which a restart does not forget', () => {
    const table = renderAlertsTable({
      ...view([]),
      channels: { slack: { sent: 0, retries: 0, queued: 0, lastError: '' } },
      givenUp: [
        { channel: 'slack', status: 'refused', alerts: 5, latest: '2026-12-04T09:31:00.000Z' },
        { channel: 'webhook', status: 'expired', alerts: 2, latest: '2026-12-03T22:00:00.000Z' },
      ],
    });
    expect(table).toMatch(
      /^Given up in the last 7 days: slack 5 alerts refused by the endpoint \(latest 2026-12-04 09:31 UTC\); webhook 2 alerts older than the look-back \(latest 2026-12-03 22:00 UTC\); routewatch alerts --test checks a channel now$/m,
    );
    expect(renderAlertsTable({ ...view([]), givenUp: [] })).not.toMatch(/Given up/);
  });

  it('lists the firing and pending alerts by default, not the resolved ones', () => {
    const text = renderAlertsTable(
      view([alert('firing', 'success 61 % against 90 %'), alert('resolved', 'back to 89 %')]),
    );
    expect(text).toMatch(/firing .*success 61 % against 90 %/);
    expect(text).not.toMatch(/back to 89 %/);
  });

  it('lists the state asked for, and says when there is none in it', () => {
    const resolved = renderAlertsTable(view([alert('resolved', 'back to 89 %')]), 10, 'resolved');
    expect(resolved).toMatch(/resolved .*back to 89 %/);
    expect(renderAlertsTable(view([]), 10, 'pending')).toMatch(/^No alert pending\.$/m);
    expect(renderAlertsTable(view([]))).toMatch(/^No alert firing or pending\.$/m);
  });

  it('says a firing alert is held when its monitor has too little data for a verdict', () => {
    const text = renderAlertsTable(
      view([alert('firing', '0 in the baseline, fewer than the minimum 150', 'insufficient_data')]),
    );
    expect(text).toMatch(/firing .*still firing, no verdict now: 0 in the baseline/);
  });

  it('says since when a held alert has had no verdict', () => {
    const held = {
      ...alert(
        'firing',
        'no tasks of this cohort and route in the current window',
        'insufficient_data',
      ),
      heldSince: '2026-12-04T11:30:00.000Z',
    };
    expect(renderAlertsTable(view([held]))).toMatch(
      /firing .*still firing, no verdict since 2026-12-04 11:30 UTC: no tasks of this cohort/,
    );
  });

  it('says closed, not resolved, for an alert closed without a verdict, in the list and the history', () => {
    const closed = {
      ...alert(
        'resolved',
        'held 24 h with no verdict: closed without a verdict',
        'insufficient_data',
      ),
      resolution: 'closed_without_verdict' as const,
    };
    const recovered = {
      ...alert('resolved', 'back to 89 %', 'ok'),
      resolution: 'recovered' as const,
    };
    const transition = (summary: string, resolution: 'recovered' | 'closed_without_verdict') => ({
      at: '2026-12-04T12:00:00.000Z',
      kind: 'resolved',
      rule: 'success-drop',
      cohort: 'extraction',
      route: 'small',
      detail: '',
      resolution,
      summary,
    });
    const text = renderAlertsTable(
      {
        ...view([closed, recovered]),
        history: [
          transition('held 24 h with no verdict', 'closed_without_verdict'),
          transition('back to 89 %', 'recovered'),
        ],
      },
      10,
      'resolved',
    );
    expect(text).toMatch(/^closed +critical .*held 24 h with no verdict: closed/m);
    expect(text).toMatch(/^resolved +critical .*back to 89 %/m);
    expect(text).toMatch(/^2026-12-04 12:00 +closed +success-drop .*held 24 h with no verdict$/m);
    expect(text).toMatch(/^2026-12-04 12:00 +resolved +success-drop .*back to 89 %$/m);
  });
});

describe('what no rule could judge', () => {
  const finding = (
    cohort: string,
    route: string,
    kind: Finding['kind'],
    status: Finding['status'],
    summary: string,
  ): Finding => ({
    ruleId: kind,
    kind,
    cohort,
    route,
    detail: '',
    status,
    summary,
    baseline: { label: '', n: 0, value: null, interval: null, description: '' },
    current: { label: '', n: 0, value: null, interval: null, since: null },
    statistic: status === 'insufficient_data' ? null : 1,
    threshold: null,
    effect: null,
  });

  it('lists the cohort × routes every rule found short of data, with the success rule’s reason', () => {
    const unjudged = unjudgedOf(
      [
        finding('tiny', 'small', 'p95_regression', 'insufficient_data', 'p95 short'),
        finding(
          'tiny',
          'small',
          'success_rate_drop',
          'insufficient_data',
          '15 in the current window, fewer than the minimum 150',
        ),
        // One rule judged it: it is watched.
        finding('faq', 'small', 'success_rate_drop', 'ok', 'no degradation'),
        finding('faq', 'small', 'p95_regression', 'insufficient_data', 'p95 short'),
        // A reason shift among too few fallbacks to matter is `ok`, but ran no test: a route
        // with no baseline for any other rule is still unjudged (review newcomer #2).
        finding('nobase', 'small', 'success_rate_drop', 'insufficient_data', '0 in the baseline'),
        {
          ...finding('nobase', 'small', 'fallback_reason_shift', 'ok', 'too few to matter'),
          statistic: null,
        },
        // Held by an open alert: listed as an alert, not here.
        finding('held', 'small', 'success_rate_drop', 'insufficient_data', 'no tasks'),
        finding(
          'new',
          'large',
          'cost_per_success_rise',
          'insufficient_data',
          '0 tasks in the baseline',
        ),
      ],
      new Set(['held\tsmall']),
    );
    expect(unjudged).toEqual([
      { cohort: 'new', route: 'large', reason: '0 tasks in the baseline' },
      { cohort: 'nobase', route: 'small', reason: '0 in the baseline' },
      {
        cohort: 'tiny',
        route: 'small',
        reason: '15 in the current window, fewer than the minimum 150',
      },
    ]);
    const text = renderAlertsTable({ ...view([]), unjudged });
    expect(text).toMatch(/^Not judged by any rule, too little data \(3 cohort × routes\):$/m);
    expect(text).toMatch(/tiny × small +15 in the current window, fewer than the minimum 150/);
  });

  it('lists apart the cohort × routes other rules judged whose success rate none could', () => {
    const findings = [
      // Judged on fallbacks and latency; its outcomes too sparse for the success rate.
      finding('lowcov', 'small', 'fallback_rate_spike', 'ok', 'no degradation'),
      finding(
        'lowcov',
        'small',
        'success_rate_drop',
        'insufficient_data',
        '45 in the current window, fewer than the minimum 150',
      ),
      // Judged on its success rate: not listed.
      finding('faq', 'small', 'success_rate_drop', 'ok', 'no degradation'),
      // Judged by nothing: in the other list only.
      finding('tiny', 'small', 'success_rate_drop', 'insufficient_data', '15 in the window'),
      // Two success rules, one of them judged it (a target SLO beside a rule without a baseline).
      finding('slo', 'small', 'success_rate_drop', 'insufficient_data', '0 in the baseline'),
      { ...finding('slo', 'small', 'success_rate_drop', 'ok', 'above target'), ruleId: 'slo' },
      // An alert open: listed as an alert.
      finding('held', 'small', 'fallback_rate_spike', 'degraded', 'up'),
      finding('held', 'small', 'success_rate_drop', 'insufficient_data', 'few'),
    ];
    const open = new Set(['held\tsmall']);
    const successUnjudged = successUnjudgedOf(findings, open);
    expect(successUnjudged).toEqual([
      {
        cohort: 'lowcov',
        route: 'small',
        reason: '45 in the current window, fewer than the minimum 150',
      },
    ]);
    expect(unjudgedOf(findings, open).map((u) => u.cohort)).toEqual(['tiny']);
    const text = renderAlertsTable({ ...view([]), successUnjudged });
    expect(text).toMatch(
      /^Success rate not judged \(other rules judged them\) \(1 cohort × route\):$/m,
    );
    expect(text).toMatch(/lowcov × small +45 in the current window/);
  });

  it('lists ten in the table and says how many more there are', () => {
    const unjudged = Array.from({ length: 13 }, (_, i) => ({
      cohort: `c${String(i).padStart(2, '0')}`,
      route: 'small',
      reason: 'too few',
    }));
    const text = renderAlertsTable({ ...view([]), unjudged });
    expect(text).toMatch(/c09 × small/);
    expect(text).not.toMatch(/c10 × small/);
    expect(text).toMatch(/… and 3 more \(routewatch alerts --json lists them all\)\./);
  });

  it('lists the silences with when they start, so one to come is not read as in force', () => {
    const out = renderAlertsTable({
      evaluatedAt: '2026-12-06T05:00:00.000Z',
      alerts: [],
      history: [],
      channels: {},
      silences: [
        {
          id: 'planned',
          scope: 'cohort extraction × every route × every rule',
          startsAt: '2026-12-20T22:00:00.000Z',
          endsAt: '2026-12-21T02:00:00.000Z',
          comment: 'migration window',
        },
      ],
    });
    expect(out).toMatch(/Silences, in force or to come/);
    expect(out).toMatch(
      /^planned\s+cohort extraction × every route × every rule\s+2026-12-20 22:00\s+2026-12-21 02:00\s+migration window$/m,
    );
  });
});
