import { renderAlertsTable } from '../../analyzer/alerts-table.js';
import type { AlertsView } from '../../analyzer/alerts-table.js';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { remote } from '../client.js';

interface AlertsValues {
  json?: boolean;
  state?: string;
  url?: string;
}

const STATES = ['pending', 'firing', 'resolved', 'all'];

export const alertsCommand: Command<AlertsValues> = {
  name: 'alerts',
  summary: 'alerts firing or pending, and their recent history',
  usage: `
Usage: routewatch alerts [--state firing|pending|resolved|all] [--json] [--url URL]

Asks a running routewatch (--url, else ROUTEWATCH_URL, else http://127.0.0.1:4318) for its alerts:
the current state of each (from the alert table in ClickHouse, so it survives restarts), the
recent transitions, and how each notification channel is doing.

Options:
  --state S   which alerts to list (default: the table shows firing and pending, --json all)
  --json      print the answer of GET /api/v1/alerts as JSON
  --url URL   the routewatch instance
`,
  options: { json: { type: 'boolean' }, state: { type: 'string' }, url: { type: 'string' } },
  async run(values) {
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
  },
};
