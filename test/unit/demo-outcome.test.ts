import { describe, expect, it } from 'vitest';
import { alertOutcome, demoSettings } from '../../cli/demo.js';

describe("the demo's last word on alerts", () => {
  it('names the alerts an earlier run left firing beside the ones this run fired', () => {
    const said = alertOutcome(['extraction × small'], ['faq × small'], '/tmp/d');
    expect(said).toMatch(
      /^\nAlerts fired for extraction × small only \(faq × small was already firing from an earlier run kept in \/tmp\/d\); every other cohort stayed quiet\./,
    );
    expect(alertOutcome(['extraction × small'], [], '/tmp/d')).toMatch(
      /^\nAlerts fired for extraction × small only; every other cohort stayed quiet\. They are kept in \/tmp\/d/,
    );
  });

  it('says when nothing new fired because it was firing already, and when nothing fired at all', () => {
    expect(alertOutcome([], ['a × small', 'b × small'], undefined)).toMatch(
      /^\nNo new alert fired: a × small, b × small were already firing from an earlier run kept in this data directory, and still are/,
    );
    expect(alertOutcome([], [], undefined)).toBe('\nNo alert fired.\n');
    // Review audit-A: `demo --tasks 400` said "No alert fired." and no more.
    expect(alertOutcome([], [], undefined, { degraded: 41, minTasks: 60 })).toBe(
      '\nNo alert fired: extraction × small ran 41 tasks after the change, fewer than the 60 a rule judges at all. Run more --tasks (3000 by default) to see it caught.\n',
    );
    expect(alertOutcome([], [], undefined, { degraded: 90, minTasks: 60 })).toMatch(
      /ran 90 tasks after the change, too few for the evidence to reach the rules' threshold\. Run more --tasks/,
    );
    expect(alertOutcome(['x × small'], [], undefined)).toMatch(/temporary directory, now removed/);
  });
});

describe('the demo’s settings', () => {
  it('links its alert messages where `routewatch start` serves the data, not to its own port', () => {
    // Review audit-B: the links named the demo's ephemeral port, gone once it ended.
    const none = { ROUTEWATCH_SLACK_WEBHOOK_URL: undefined, ROUTEWATCH_WEBHOOK_URL: undefined };
    const unset = { ...none, ROUTEWATCH_PUBLIC_URL: undefined };
    expect(demoSettings(unset, { dataDir: '/d', kept: true })).toEqual({
      ROUTEWATCH_PORT: '0',
      ROUTEWATCH_EVALUATE_EVERY: '0',
      ROUTEWATCH_DATA_DIR: '/d',
      ROUTEWATCH_PUBLIC_URL: 'http://127.0.0.1:4318',
    });
    // A temporary directory, removed at the end: no link to another store's dashboard.
    expect(demoSettings(unset, { dataDir: '/tmp/x' })).not.toHaveProperty('ROUTEWATCH_PUBLIC_URL');
    const settings = demoSettings(
      {
        ROUTEWATCH_SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T/B/x',
        ROUTEWATCH_WEBHOOK_URL: undefined,
        ROUTEWATCH_PUBLIC_URL: 'https://routewatch.example.com',
      },
      { clickhouseUrl: 'http://ch:8123' },
    );
    expect(settings).toMatchObject({
      CLICKHOUSE_URL: 'http://ch:8123',
      ROUTEWATCH_SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T/B/x',
      ROUTEWATCH_PUBLIC_URL: 'https://routewatch.example.com',
    });
  });
});
