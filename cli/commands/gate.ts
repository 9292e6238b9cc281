import type { GateResult } from '../../analyzer/gate.js';
import { distinctRefs, MAX_SUCCESS_DROP_LIMIT, parseRef } from '../../analyzer/gate.js';
import { renderGateMarkdown, renderGateTable } from '../../analyzer/gate-table.js';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { RemoteError, remote } from '../client.js';

interface GateValues {
  baseline?: string;
  candidate?: string;
  'max-success-drop'?: string;
  'min-cases'?: string;
  confidence?: string;
  cohort?: string[];
  json?: boolean;
  markdown?: boolean;
  url?: string;
}

/** The gate's exit codes: CI reads them. 2 (usage) is the CLI's own. */
export const GATE_EXIT = { pass: 0, fail: 1, insufficient_data: 3 } as const;

/** --max-success-drop is in percentage points: 2 is 0.02, 0.5 half a point. */
function points(text: string): number {
  const n = Number(text);
  const most = MAX_SUCCESS_DROP_LIMIT * 100;
  if (text.trim() === '' || !Number.isFinite(n) || n < 0 || n > most) {
    throw new UsageError(
      `--max-success-drop takes percentage points from 0 to ${most} (2 for two points), got ${JSON.stringify(text)}`,
    );
  }
  // 0.02 typed as a fraction is a margin of 0.02 points: most likely 2 points were meant.
  if (n > 0 && n < 0.1) {
    throw new UsageError(
      `--max-success-drop takes percentage points: ${text} would allow a drop of ${text} points; write 2 for two points (or 0 for none)`,
    );
  }
  return n / 100;
}

export const gateCommand: Command<GateValues> = {
  name: 'gate',
  summary:
    'before/after comparison by cohort, for CI and canaries (exit 0 pass, 1 fail, 3 insufficient data)',
  usage: `
Usage: routewatch gate --baseline REF --candidate REF [--max-success-drop 2] [--min-cases 200]
                       [--confidence 0.95] [--cohort C]… [--json | --markdown] [--url URL]

Compares a candidate with a baseline, cohort by cohort, on a running routewatch
(GET /api/v1/compare): success rate held to a margin, with cost per successful task, p95
latency, fallback and reask rates and quality scores beside it. Each REF is one of
  eval:<run>             the tasks of an eval run (runEval's \`run\`)
  policy:<version>       production tasks of a policy version; two versions (a canary) are
                         compared cohort by cohort on the time both served that cohort
  window:<from>/<to>     production tasks started in the window (dates, ISO instants or durations ago)

A cohort passes when its success rate dropped by no more than the margin. It fails when it
dropped by more and the drop is beyond chance (one-sided p ≤ 0.05 after Holm's method over the
cohorts judged, so an unchanged policy fails at most 5 % of the time however many cohorts it
has); a drop beyond the margin not beyond chance is insufficient_data, with how many more cases
would tell. It is insufficient_data too below --min-cases cases with an outcome on either side
(unless its drop beyond the margin is already beyond chance: a collapse fails), or when two
policy versions never served it at the same time.
With --confidence it passes only when that one-sided lower bound of the change clears the
margin (a formal non-inferiority test; needs several times more cases). See docs/gate.md.

Options:
  --baseline REF           what the candidate must hold up against
  --candidate REF          what is being judged
  --max-success-drop P     the largest drop in success rate allowed, in percentage points (default 2;
                           0 or 0.1 to 50: a value below 0.1 is taken for a fraction and refused)
  --min-cases N            cases with an outcome needed on each side (default 200)
  --confidence C           strict mode: e.g. 0.95
  --cohort C               only this cohort (repeat for several, or a,b; a comma inside a name is
                           \\,); one neither side has is a usage error, unless neither side has
                           any task yet (exit 3)
  --json                   print the comparison as JSON
  --markdown               print it as Markdown, for a pull-request comment
  --url URL                the routewatch instance

An eval run against production is judged on the cohorts the eval covers; the others are named.

Exit codes: 0 every cohort passes; 1 a cohort fails (or the comparison could not run: the
message says which); 3 insufficient data and no failure; 2 a usage error (also a reference that
selects no task while the other side has some: the message lists what there is).
`,
  options: {
    baseline: { type: 'string' },
    candidate: { type: 'string' },
    'max-success-drop': { type: 'string' },
    'min-cases': { type: 'string' },
    confidence: { type: 'string' },
    cohort: { type: 'string', multiple: true },
    json: { type: 'boolean' },
    markdown: { type: 'boolean' },
    url: { type: 'string' },
  },
  async run(values) {
    if (!values.baseline || !values.candidate) {
      throw new UsageError(
        'routewatch gate needs --baseline and --candidate, e.g. --baseline policy:v1 --candidate eval:pr-123: see `routewatch gate --help`',
      );
    }
    if (values.json && values.markdown) throw new UsageError('choose one of --json and --markdown');
    // Checked here, so that a typo, or one reference given twice, is a usage error (exit 2)
    // before any request.
    const now = new Date();
    distinctRefs(parseRef(values.baseline, now), parseRef(values.candidate, now));
    const query = new URLSearchParams({ baseline: values.baseline, candidate: values.candidate });
    if (values['max-success-drop'] !== undefined) {
      query.set('maxSuccessDrop', String(points(values['max-success-drop'])));
    }
    if (values['min-cases'] !== undefined) {
      const n = Number(values['min-cases']);
      if (!Number.isInteger(n) || n < 1)
        throw new UsageError(
          `--min-cases must be a whole number ≥ 1, got ${JSON.stringify(values['min-cases'])}`,
        );
      query.set('minCases', String(n));
    }
    if (values.confidence !== undefined) {
      const c = Number(values.confidence);
      if (!(c > 0.5 && c < 1))
        throw new UsageError(
          `--confidence takes a level between 0.5 and 1, e.g. 0.95, got ${JSON.stringify(values.confidence)}`,
        );
      query.set('confidence', String(c));
    }
    if (values.cohort?.length) query.set('cohort', values.cohort.join(','));
    let result: GateResult;
    try {
      result = (await remote(values.url).get(`/api/v1/compare?${query}`)) as GateResult;
    } catch (error) {
      // The instance refuses what only it can check (a --cohort neither side has) with a 400:
      // a mistake on the command line, not a gate that failed.
      if (error instanceof RemoteError && error.status === 400 && error.detail !== undefined)
        throw new UsageError(error.detail);
      throw error;
    }
    process.stdout.write(
      values.json
        ? `${JSON.stringify(result, null, 2)}\n`
        : values.markdown
          ? renderGateMarkdown(result)
          : renderGateTable(result),
    );
    return GATE_EXIT[result.verdict];
  },
};
