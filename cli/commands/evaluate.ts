import { parseInstant } from '../../server/time.js';
import { UsageError } from '../command.js';
import type { Command } from '../command.js';
import { remote } from '../client.js';

interface EvaluateValues {
  at?: string;
  json?: boolean;
  url?: string;
}

interface EvaluateAnswer {
  evaluatedAt: string;
  firing: number;
  transitions: {
    kind: string;
    ruleId: string;
    cohort: string;
    route: string;
    detail: string;
    summary: string;
  }[];
  findings: { status: string }[];
}

export const evaluateCommand: Command<EvaluateValues> = {
  name: 'evaluate',
  summary: 'evaluate the alert rules now, on a running instance',
  usage: `
Usage: routewatch evaluate [--at TIME] [--json] [--url URL]

Runs one evaluation of the alert rules on a running routewatch (POST /api/v1/evaluate), as the
periodic one inside \`routewatch start\` does every ROUTEWATCH_EVALUATE_EVERY, and prints what
changed. Transitions are stored and notified like the periodic ones.

Options:
  --at TIME   evaluate as of this date or ISO instant (replays; default now)
  --json      print the whole answer, every monitor's finding included
  --url URL   the routewatch instance
`,
  options: { at: { type: 'string' }, json: { type: 'boolean' }, url: { type: 'string' } },
  async run(values) {
    // Checked here, so that a typo is a usage error (exit 2).
    if (values.at !== undefined && parseInstant(values.at).getTime() > Date.now() + 60_000) {
      throw new UsageError(
        `--at ${values.at} is in the future: evaluate now (no --at) or at a past time (a replay)`,
      );
    }
    const query = values.at ? `?at=${encodeURIComponent(values.at)}` : '';
    const answer = (await remote(values.url).post(
      `/api/v1/evaluate${query}`,
      {},
    )) as EvaluateAnswer;
    if (values.json) {
      process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
      return;
    }
    const counts = new Map<string, number>();
    for (const f of answer.findings) counts.set(f.status, (counts.get(f.status) ?? 0) + 1);
    const lines = [
      `evaluated at ${answer.evaluatedAt}: ${answer.findings.length} monitors (${[...counts].map(([s, n]) => `${n} ${s}`).join(', ') || 'none'}), ${answer.firing} alert(s) firing`,
      ...answer.transitions.map(
        (t) =>
          `  ${t.kind.padEnd(8)} ${t.ruleId}  ${t.cohort} × ${t.route}${t.detail ? ` (${t.detail})` : ''}: ${t.summary}`,
      ),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  },
};
