import { EARLIEST, parseInstant } from '../../server/time.js';
import { UsageError } from '../command.js';
import type { Command } from '../command.js';
import { remote } from '../client.js';

interface EvaluateValues {
  at?: string;
  'dry-run'?: boolean;
  record?: boolean;
  json?: boolean;
  url?: string;
}

interface EvaluateAnswer {
  evaluatedAt: string;
  dryRun?: boolean;
  firing: number;
  firingAlerts?: { ruleId: string; cohort: string; route: string; detail: string; since: string }[];
  transitions: {
    kind: string;
    ruleId: string;
    cohort: string;
    route: string;
    detail: string;
    summary: string;
  }[];
  findings: { status: string }[];
  warnings?: string[];
  replayedState?: string | null;
}

export const evaluateCommand: Command<EvaluateValues> = {
  name: 'evaluate',
  summary: 'evaluate the alert rules now, on a running instance',
  usage: `
Usage: routewatch evaluate [--dry-run] [--at TIME (--dry-run | --record)] [--json] [--url URL]

Runs one evaluation of the alert rules on a running routewatch (POST /api/v1/evaluate), as the
periodic one inside \`routewatch start\` does every ROUTEWATCH_EVALUATE_EVERY, and prints what
changed. Transitions are stored and notified like the periodic ones, unless --dry-run.

Options:
  --dry-run   print what would change; store nothing, notify no one
  --at TIME   evaluate as of this date or ISO instant (a replay). Say what it does to the live
              alerts: --dry-run touches nothing; --record stores and notifies its transitions
              (a firing alert can resolve as of then, and fire again at the next evaluation)
  --record    with --at: store and notify the replay's transitions
  --json      print the whole answer, every monitor's finding included
  --url URL   the routewatch instance
`,
  options: {
    at: { type: 'string' },
    'dry-run': { type: 'boolean' },
    record: { type: 'boolean' },
    json: { type: 'boolean' },
    url: { type: 'string' },
  },
  async run(values) {
    // Checked here, so that a typo is a usage error (exit 2).
    if (values.at !== undefined && parseInstant(values.at).getTime() > Date.now() + 60_000) {
      throw new UsageError(
        `--at ${values.at} is in the future: evaluate now (no --at) or at a past time (a replay)`,
      );
    }
    if (values.at !== undefined && parseInstant(values.at) < EARLIEST) {
      throw new UsageError(
        `--at ${values.at} is before ${EARLIEST.toISOString().slice(0, 10)}, before any span routewatch can store`,
      );
    }
    if (values['dry-run'] && values.record)
      throw new UsageError('--dry-run and --record contradict each other: give one');
    if (values.record && values.at === undefined)
      throw new UsageError('--record is for a replay (--at): an evaluation now is recorded anyway');
    // A replay steps the live alerts as of a past time: never without saying so.
    if (values.at !== undefined && !values['dry-run'] && !values.record) {
      throw new UsageError(
        '--at replays a past instant: add --dry-run to see what the rules said then without ' +
          'touching the live alerts, or --record to store and notify its transitions (a firing ' +
          'alert can then resolve as of that time, and fire again at the next evaluation)',
      );
    }
    const params = new URLSearchParams();
    if (values.at !== undefined) params.set('at', values.at);
    if (values['dry-run']) params.set('dryRun', 'true');
    const query = params.size > 0 ? `?${params}` : '';
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
      `${answer.dryRun ? 'dry run (nothing stored or notified), ' : ''}evaluated at ${answer.evaluatedAt}: ${answer.findings.length} monitors (${[...counts].map(([s, n]) => `${n} ${s}`).join(', ') || 'none'}), ${answer.firing} alert(s) firing`,
      // Right under the count it qualifies: the state a replay stepped is rebuilt, not recorded.
      ...(answer.replayedState ? [`note: ${answer.replayedState}`] : []),
      ...firingLine(answer.firingAlerts ?? []),
      ...answer.transitions.map((t) => {
        // A degradation's summary names its cohort × route already; a "no verdict" one does not.
        const where = `${t.cohort} × ${t.route}`;
        const text =
          !t.detail && t.summary.startsWith(`${where}: `)
            ? t.summary
            : `${where}${t.detail ? ` (${t.detail})` : ''}: ${t.summary}`;
        return `  ${t.kind.padEnd(8)} ${t.ruleId}  ${text}`;
      }),
      ...(answer.warnings ?? []).map((w) => `warning: ${w}`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  },
};

/** Most alerts named on the firing line; --json lists them all. */
const FIRING_NAMED = 10;

/** The alerts firing after the evaluation, by rule and where, and since when: none, no line. */
function firingLine(alerts: NonNullable<EvaluateAnswer['firingAlerts']>): string[] {
  if (alerts.length === 0) return [];
  const named = alerts.slice(0, FIRING_NAMED).map((a) => {
    const since = `${a.since.slice(0, 16).replace('T', ' ')} UTC`;
    return `${a.ruleId} on ${a.cohort} × ${a.route}${a.detail ? ` (${a.detail})` : ''} since ${since}`;
  });
  const rest = alerts.length - named.length;
  return [`firing: ${named.join('; ')}${rest > 0 ? `; and ${rest} more (--json lists them)` : ''}`];
}
