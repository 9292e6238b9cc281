import type { AdviceReport } from '../../analyzer/advice.js';
import { renderAdvice } from '../../analyzer/gate-table.js';
import { resolveWindow } from '../../server/time.js';
import type { Command } from '../command.js';
import { remote } from '../client.js';

interface AdviceValues {
  window?: string;
  cohort?: string[];
  service?: string[];
  policy?: string[];
  from?: string;
  to?: string;
  json?: boolean;
  url?: string;
}

export const adviceCommand: Command<AdviceValues> = {
  name: 'advice',
  summary: 'what to do next with each cohort’s routing, with the numbers behind it',
  usage: `
Usage: routewatch advice [--window 7d | --from TIME [--to TIME]] [--cohort C]… [--service S]…
                         [--policy V]… [--json] [--url URL]

Asks a running routewatch (GET /api/v1/advice) for routing advice per cohort, from production
traffic in the window and the last 30 days of eval runs:
  keep               nothing to change on this evidence (it says when nothing compares the routes,
                     or when the small route is not yet shown to hold)
  expand small       the small route is shown to hold within the margin (its one-sided 95 %
                     bound) and costs less per success: more of the cohort could take it
  revert to large    the small route fails the margin, or no longer costs less per success
  try small          a large-first cohort whose eval shows the small route holding
  review fallback    so many fallbacks that the cheap route pays twice
  insufficient data  with how many more tasks are needed
Routes are told apart by name: \`small\` and \`large\` (see docs/gate.md).

Options:
  --window D   the window ending now (or at --to): 24h, 7d, 2w (default 7d)
  --from TIME  start: a date, an ISO instant or a duration ago
  --to TIME    end, same forms (default now)
  --cohort C   only this cohort (repeat for several, or a,b; a comma inside a name is \\,);
               also --service, --policy (version)
  --json       print the advice as JSON, with the comparison behind each verdict
  --url URL    the routewatch instance
`,
  options: {
    window: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    cohort: { type: 'string', multiple: true },
    service: { type: 'string', multiple: true },
    policy: { type: 'string', multiple: true },
    json: { type: 'boolean' },
    url: { type: 'string' },
  },
  async run(values) {
    const window = resolveWindow(values, new Date(), '7d', '--');
    const query = new URLSearchParams({
      from: window.from.toISOString(),
      to: window.to.toISOString(),
    });
    for (const name of ['cohort', 'service', 'policy'] as const) {
      for (const value of values[name] ?? []) query.append(name, value);
    }
    const advice = (await remote(values.url).get(`/api/v1/advice?${query}`)) as AdviceReport;
    process.stdout.write(
      values.json ? `${JSON.stringify(advice, null, 2)}\n` : renderAdvice(advice),
    );
  },
};
