import type { Report } from '../../analyzer/report.js';
import { renderReportTable } from '../../analyzer/report-table.js';
import { resolveWindow } from '../../server/time.js';
import type { Command } from '../command.js';
import { remote } from '../client.js';

interface ReportValues {
  window?: string;
  from?: string;
  to?: string;
  json?: boolean;
  url?: string;
}

export const reportCommand: Command<ReportValues> = {
  name: 'report',
  summary: 'cost per successful task, fallbacks, p95 per cohort × route',
  usage: `
Usage: routewatch report [--window 24h | --from TIME [--to TIME]] [--json] [--url URL]

Asks a running routewatch (--url, else ROUTEWATCH_URL, else http://127.0.0.1:4318) for the report
of tasks started in the window, and prints it as a table or JSON.

Options:
  --window D    the window ending now (or at --to): 90s, 15m, 24h, 7d, 2w (default 24h)
  --from TIME   start: a date (2026-12-02), an ISO instant (2026-12-02T10:00:00Z) or a duration ago (2h)
  --to TIME     end, same forms (default now)
  --json        print the report as JSON
  --url URL     the routewatch instance
`,
  options: {
    window: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    json: { type: 'boolean' },
    url: { type: 'string' },
  },
  async run(values) {
    // Checked here first, so that a typo is a usage error (exit 2) named before any request.
    resolveWindow(values, new Date());
    const query = new URLSearchParams();
    for (const key of ['window', 'from', 'to'] as const) {
      const value = values[key];
      if (value !== undefined) query.set(key, value);
    }
    const report = (await remote(values.url).get(`/api/v1/report?${query}`)) as Report;
    process.stdout.write(
      values.json ? `${JSON.stringify(report, null, 2)}\n` : renderReportTable(report),
    );
  },
};
