import type { AdviceReport } from '../../analyzer/advice.js';
import { renderAdvice } from '../../analyzer/gate-table.js';
import type { Report } from '../../analyzer/report.js';
import { renderReportTable } from '../../analyzer/report-table.js';
import { resolveWindow } from '../../server/time.js';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { remote } from '../client.js';

interface ReportValues {
  window?: string;
  from?: string;
  to?: string;
  cohort?: string[];
  route?: string[];
  service?: string[];
  policy?: string[];
  compare?: string;
  wide?: boolean;
  json?: boolean;
  url?: string;
}

export const reportCommand: Command<ReportValues> = {
  name: 'report',
  summary: 'cost per successful task, fallbacks, p95 per cohort × route',
  usage: `
Usage: routewatch report [--window 24h | --from TIME [--to TIME]] [--cohort C]… [--route R]…
                         [--service S]… [--policy V]… [--compare previous] [--wide] [--json] [--url URL]

Asks a running routewatch (--url, else ROUTEWATCH_URL, else http://127.0.0.1:4318) for the report
of tasks started in the window, per cohort × primary route with intervals, failure concentration,
the overall row, quality scores and the routing advice per cohort over the same window (routewatch
advice reads 7 days by default, so the two can differ on a short window), and prints it as a table
or JSON.

Options:
  --window D          the window ending now (or at --to): 90s, 15m, 24h, 7d, 2w (default 24h)
  --from TIME         start: a date (2026-12-02), an ISO instant (2026-12-02T10:00:00Z) or a duration ago (2h)
  --to TIME           end, same forms (default now)
  --cohort C          only this cohort (repeat for several, or a,b; a comma inside a name is \\,);
                      also --route, --service, --policy (version).
                      The advice follows every filter but --route: it weighs a cohort's routes together
  --compare previous  also the window just before, of the same length, with the change per row
  --wide              also reask, escalation, coverage, cascades, invisible fallbacks, p50/p99,
                      calls per task, loop rate and priced share of calls
  --json              print the report as JSON, with "advice" (with --compare: {"current",
                      "previous", "advice"})
  --url URL           the routewatch instance
`,
  options: {
    window: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    cohort: { type: 'string', multiple: true },
    route: { type: 'string', multiple: true },
    service: { type: 'string', multiple: true },
    policy: { type: 'string', multiple: true },
    compare: { type: 'string' },
    wide: { type: 'boolean' },
    json: { type: 'boolean' },
    url: { type: 'string' },
  },
  async run(values) {
    if (values.compare !== undefined && values.compare !== 'previous') {
      throw new UsageError(`--compare takes "previous", got ${JSON.stringify(values.compare)}`);
    }
    // Resolved here, so that a typo is a usage error (exit 2) named before any request, and so
    // that both windows of a comparison are the same length.
    const window = resolveWindow(values, new Date(), '24h', '--');
    const client = remote(values.url);
    const fetchReport = (from: Date, to: Date) => {
      const query = new URLSearchParams({ from: from.toISOString(), to: to.toISOString() });
      for (const name of ['cohort', 'route', 'service', 'policy'] as const) {
        for (const value of values[name] ?? []) query.append(name, value);
      }
      return client.get(`/api/v1/report?${query}`) as Promise<Report>;
    };
    const report = await fetchReport(window.from, window.to);
    let previous: Report | undefined;
    if (values.compare) {
      const length = window.to.getTime() - window.from.getTime();
      previous = await fetchReport(new Date(window.from.getTime() - length), window.from);
    }
    // Advice reads the same tasks but for a route filter: it weighs a cohort's routes together.
    const adviceQuery = new URLSearchParams({
      from: window.from.toISOString(),
      to: window.to.toISOString(),
    });
    for (const name of ['cohort', 'service', 'policy'] as const) {
      for (const value of values[name] ?? []) adviceQuery.append(name, value);
    }
    const advice = (await client.get(`/api/v1/advice?${adviceQuery}`)) as AdviceReport;
    if (values.json) {
      process.stdout.write(
        `${JSON.stringify(previous ? { current: report, previous, advice } : { ...report, advice }, null, 2)}\n`,
      );
      return;
    }
    process.stdout.write(
      renderReportTable(report, {
        ...(values.wide ? { wide: true } : {}),
        ...(previous ? { previous } : {}),
      }),
    );
    // A cohort the filter names that no task has is said once, by the report above.
    const { unmatched: _said, ...rest } = advice;
    process.stdout.write(`\n${renderAdvice(rest)}`);
  },
};
