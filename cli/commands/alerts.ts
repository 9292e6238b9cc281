import { renderAlertsTable } from '../../analyzer/alerts-table.js';
import type { AlertsView } from '../../analyzer/alerts-table.js';
import type { ChannelTestResult } from '../../analyzer/notifier.js';
import type { Command } from '../command.js';
import { EXIT, UsageError } from '../command.js';
import { remote } from '../client.js';

interface AlertsValues {
  json?: boolean;
  state?: string;
  test?: boolean;
  url?: string;
}

const STATES = ['pending', 'firing', 'resolved', 'all'];

export const alertsCommand: Command<AlertsValues> = {
  name: 'alerts',
  summary: 'alerts firing or pending, and their recent history',
  usage: `
Usage: routewatch alerts [--state firing|pending|resolved|all] [--json] [--url URL]
       routewatch alerts --test [--json] [--url URL]

Asks a running routewatch (--url, else ROUTEWATCH_URL, else http://127.0.0.1:4318) for its alerts:
the current state of each (from the alert table in ClickHouse, so it survives restarts), the
recent transitions, and how each notification channel is doing.

Options:
  --state S   which alerts to list (default: the table shows firing and pending, --json all)
  --test      send a test message to each alert channel (Slack, the webhook) now, and say how
              each answered; exits 1 when one did not take it (POST /api/v1/channels/test)
  --json      print the answer as JSON
  --url URL   the routewatch instance
`,
  options: {
    json: { type: 'boolean' },
    state: { type: 'string' },
    test: { type: 'boolean' },
    url: { type: 'string' },
  },
  async run(values) {
    if (values.test) {
      if (values.state !== undefined)
        throw new UsageError('--test lists no alerts: leave out --state');
      const { channels } = (await remote(values.url).post('/api/v1/channels/test', {})) as {
        channels: ChannelTestResult[];
      };
      process.stdout.write(
        values.json
          ? `${JSON.stringify({ channels }, null, 2)}\n`
          : channels
              .map((c) =>
                c.ok
                  ? `${c.channel}: took the test message (HTTP ${c.status}, ${c.ms} ms)\n`
                  : c.tried === false
                    ? `${c.channel}: ${c.error}\n`
                    : `${c.channel}: did not take it: ${c.error} (${c.ms} ms)\n`,
              )
              .join(''),
      );
      return channels.some((c) => !c.ok) ? EXIT.failure : EXIT.ok;
    }
    if (values.state !== undefined && !STATES.includes(values.state)) {
      throw new UsageError(
        `--state must be one of ${STATES.join(', ')}, got ${JSON.stringify(values.state)}`,
      );
    }
    const query = values.state ? `?state=${values.state}` : '';
    const view = (await remote(values.url).get(`/api/v1/alerts${query}`)) as AlertsView;
    process.stdout.write(
      values.json
        ? `${JSON.stringify(view, null, 2)}\n`
        : renderAlertsTable(view, 10, values.state),
    );
    return EXIT.ok;
  },
};
