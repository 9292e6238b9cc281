import { describe, expect, it } from 'vitest';
import { renderAlertsTable } from '../../analyzer/alerts-table.js';
import type { AlertsView } from '../../analyzer/alerts-table.js';

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
});
