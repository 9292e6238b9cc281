/** The alerts API's answer as a terminal table (routewatch alerts). Pure. */

export interface AlertsView {
  evaluatedAt: string | null;
  alerts: {
    rule: string;
    severity: string;
    cohort: string;
    route: string;
    detail: string;
    state: string;
    since: string;
    summary: string;
  }[];
  history: {
    at: string;
    kind: string;
    rule: string;
    cohort: string;
    route: string;
    detail: string;
    summary: string;
  }[];
  channels: Record<string, { sent: number; retries: number; queued: number; lastError: string }>;
}

const short = (iso: string) => iso.slice(0, 16).replace('T', ' ');

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '─'.repeat(w))), ...rows.map(line)];
}

export function renderAlertsTable(view: AlertsView, historyRows = 10): string {
  const where = (a: { cohort: string; route: string; detail: string }) =>
    `${a.cohort || '(none)'} × ${a.route || '(none)'}${a.detail ? ` (${a.detail})` : ''}`;
  const lines = [
    `routewatch alerts  ${view.evaluatedAt ? `last evaluated ${short(view.evaluatedAt)} UTC` : 'not evaluated yet in this process'}`,
    '',
  ];
  const open = view.alerts.filter((a) => a.state === 'firing' || a.state === 'pending');
  if (open.length === 0) lines.push('No alert firing or pending.');
  else {
    lines.push(
      ...table(
        ['state', 'severity', 'rule', 'cohort × route', 'since (UTC)', 'what'],
        open.map((a) => [a.state, a.severity, a.rule, where(a), short(a.since), a.summary]),
      ),
    );
  }
  const recent = view.history.slice(0, historyRows);
  if (recent.length > 0) {
    lines.push('', 'Recent transitions:');
    lines.push(
      ...table(
        ['at (UTC)', 'transition', 'rule', 'cohort × route', 'what'],
        recent.map((e) => [short(e.at), e.kind, e.rule, where(e), e.summary]),
      ),
    );
  }
  const channels = Object.entries(view.channels);
  if (channels.length > 0) {
    lines.push(
      '',
      `Channels: ${channels
        .map(
          ([name, c]) =>
            `${name} ${c.sent} sent, ${c.queued} queued${c.lastError ? `, last error ${c.lastError}` : ''}`,
        )
        .join('; ')}`,
    );
  }
  return lines.join('\n') + '\n';
}
