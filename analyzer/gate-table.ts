import { displayWidth, padEndTo, printable, tableLayout } from './text-width.js';
import { latencyText } from './latency-text.js';
import type { AdviceReport } from './advice.js';
import type { CohortComparison, Figure, GateCohort, GateResult } from './gate.js';

/**
 * The gate and the advice as text: a terminal table, and Markdown for a pull-request comment.
 * Pure: tested directly.
 */

const pct = (v: number | null) => (v === null ? '—' : `${(v * 100).toFixed(1)}%`);
const points = (v: number | null) =>
  v === null ? '—' : `${v >= 0 ? '+' : '−'}${Math.abs(v * 100).toFixed(1)} pts`;
const usd = (v: number | null) => (v === null ? '—' : `$${v.toPrecision(3)}`);
const ms = (v: number | null) => (v === null ? '—' : latencyText(v));

function rateWithInterval(f: Figure): string {
  if (f.value === null) return '—';
  return f.interval
    ? `${pct(f.value)} (${(f.interval.lower * 100).toFixed(1)}–${(f.interval.upper * 100).toFixed(1)})`
    : pct(f.value);
}

/** A cost per success and its interval; `≥` a floor (unpriced calls under it), `unknown` none priced. */
function costWithInterval(f: Figure, floor: boolean): string {
  if (f.value === null) return floor ? 'unknown' : '—';
  const mark = floor ? '≥' : '';
  if (!f.interval || f.value === 0) return `${mark}${usd(f.value)}`;
  const half = Math.max(f.value - f.interval.lower, f.interval.upper - f.value);
  return `${mark}${usd(f.value)} ±${Math.round((half / f.value) * 100)}%`;
}

/** Sides with model calls of no known price: their costs are floors, and compared with nothing. */
function unpricedNote(result: GateResult): string | null {
  const sides = (['baseline', 'candidate'] as const).filter((side) =>
    result.cohorts.some((c) => c.costPerSuccessfulTask.understated[side]),
  );
  if (sides.length === 0) return null;
  return (
    `the ${sides.join(' and the ')} side${sides.length > 1 ? 's have' : ' has'} model calls with no known price: ` +
    'cost per success is a floor there (≥, unknown when no call was priced) and is not compared; ' +
    'price them with ROUTEWATCH_PRICES (docs/pricing.md)'
  );
}

/**
 * Cohorts not failing, with the minimum of cases, whose candidate costs clearly more per successful task (the two 95 %
 * intervals apart, by 10 % or more; weighed hour by hour on a canary, as its success rate) or falls back far more
 * often (by 20 points or more): the verdict is on success
 * rate alone, and a candidate cheaper per call that falls back to the large model most of the
 * time passes it while it costs more. Null when none.
 */
export function costRiseNote(result: GateResult): string | null {
  // A cohort that fails already says enough: fewer successes cost more each.
  const rises = result.cohorts.flatMap((c) => {
    // Nor one of a few tasks, whose figures are noise.
    const cases = Math.min(c.baseline.known, c.candidate.known);
    if (c.verdict === 'fail' || cases < result.options.minCases) return [];
    const parts: string[] = [];
    // On the strata the success change was weighed over, when it was (a canary's hours): pooled,
    // a version that took more of the traffic in an incident's hours reads dearer for them alone.
    const { relativeChange, matched } = c.costPerSuccessfulTask;
    const { baseline, candidate } = matched ?? c.costPerSuccessfulTask;
    if (
      relativeChange !== null &&
      relativeChange >= 0.1 &&
      baseline.interval &&
      candidate.interval &&
      candidate.interval.lower > baseline.interval.upper
    ) {
      const weighed = matched ? `, weighed ${matched.by} by ${matched.by}` : '';
      parts.push(
        `cost per success +${Math.round(relativeChange * 100)} % (${usd(baseline.value)} → ${usd(candidate.value)}${weighed}, the intervals apart)`,
      );
    }
    const { baseline: fb, candidate: fc } = c.fallbackRate;
    if (fb !== null && fc !== null && fc - fb >= 0.2)
      parts.push(`fallback rate ${pct(fb)} → ${pct(fc)}`);
    return parts.length > 0 ? [`${c.cohort || '(none)'}: ${parts.join(', ')}`] : [];
  });
  if (rises.length === 0) return null;
  return (
    `the candidate may cost more — ${rises.join('; ')}. ` +
    'The verdict is on success rate only: weigh the cost before rolling out'
  );
}

function change(c: CohortComparison): string {
  const s = c.successChange;
  if (s.estimate === null) return '—';
  return s.interval
    ? `${points(s.estimate)} (${points(s.interval.lower)} to ${points(s.interval.upper)})`
    : points(s.estimate);
}

const VERDICT_MARK = { pass: 'PASS', fail: 'FAIL', insufficient_data: 'INSUFFICIENT DATA' };

function headline(result: GateResult): string[] {
  const o = result.options;
  return [
    `routewatch gate  baseline ${result.baseline}  →  candidate ${result.candidate}`,
    `margin: success may drop by at most ${(o.maxSuccessDrop * 100).toFixed(1)} pts; ` +
      `at least ${o.minCases} cases with an outcome per side` +
      (o.confidence !== undefined
        ? `; strict: the ${Math.round(o.confidence * 100)} % lower bound must clear the margin`
        : ''),
    ...(result.canary
      ? ['two policy versions: each cohort compared on the time both served it only']
      : []),
  ];
}

/** A cohort's reason, with the overlap it was compared on when that was a canary's. */
function reasonOf(c: GateCohort): string {
  const overlap = c.concurrent?.overlap;
  if (!overlap) return c.reason;
  const hours =
    overlap.hours !== undefined
      ? `, in the ${overlap.hours} clock hour${overlap.hours === 1 ? '' : 's'} both served it`
      : '';
  return `${c.reason} (over ${overlap.from} → ${overlap.to}${hours})`;
}

/** What the overall verdict made of cohorts with no overlap to compare; null when none. */
function notComparedNote(result: GateResult): string | null {
  const names = result.cohorts
    .filter((c) => c.concurrent !== null && c.concurrent.overlap === null)
    .map((c) => c.cohort || '(none)');
  if (names.length === 0) return null;
  return `${names.join(', ')} not compared (the versions never served ${names.length === 1 ? 'it' : 'them'} at the same time): counted as insufficient data`;
}

/**
 * Sides with tasks whose outcome has not arrived (late outcomes): the verdict is on the tasks with
 * one, and failures reported later than successes make a side read better than it will. Null
 * when every outcome is in.
 */
export function pendingNote(result: GateResult): string | null {
  const sides = (['baseline', 'candidate'] as const)
    .map((side) => {
      const tasks = result.cohorts.reduce((sum, c) => sum + c[side].tasks, 0);
      const known = result.cohorts.reduce((sum, c) => sum + c[side].known, 0);
      return { side, tasks, pending: tasks - known };
    })
    .filter((s) => s.pending > 0);
  if (sides.length === 0) return null;
  return (
    `outcomes still to come on the ${sides.map((s) => `${s.side} side (${s.pending} of ${s.tasks} tasks)`).join(' and the ')}: ` +
    'the verdict is on the tasks whose outcome has arrived; if failures are reported later than ' +
    'successes (a review queue), gate again once they are in'
  );
}

/** Cohorts left out because the eval run on one side does not cover them; null when none. */
function notCoveredNote(result: GateResult): string | null {
  const names = result.notCovered ?? [];
  if (names.length === 0) return null;
  const run = result.baseline.startsWith('eval:') ? result.baseline : result.candidate;
  return `not compared, as ${run} has no task in ${names.length === 1 ? 'it' : 'them'}: ${names.map((n) => n || '(none)').join(', ')}`;
}

/**
 * Sides whose successful tasks cost nothing at all: their tasks carry no priced model call, most
 * often because the instrumentation was not loaded where they ran (an eval script started without
 * `--import`). Cost per success then reads $0 and compares as a saving. Null when none.
 */
export function costlessNote(result: GateResult): string | null {
  const sides = (['baseline', 'candidate'] as const).filter((side) => {
    const figures = result.cohorts
      .map((c) => c.costPerSuccessfulTask[side].value)
      .filter((v): v is number => v !== null);
    return figures.length > 0 && figures.every((v) => v === 0);
  });
  if (sides.length === 0) return null;
  return (
    `no cost recorded on the ${sides.join(' or the ')} side: its tasks carry no priced model ` +
    'call, so cost per successful task reads $0; is the instrumentation loaded where they ran ' +
    '(node --import @routewatch/instrumentation/register)?'
  );
}

function columns(c: CohortComparison): string[] {
  const scores = c.scores
    .map(
      (s) =>
        `${s.name} ${s.baseline.value?.toFixed(3) ?? '—'}→${s.candidate.value?.toFixed(3) ?? '—'}`,
    )
    .join(', ');
  return [
    c.cohort || '(none)',
    VERDICT_MARK[c.verdict],
    `${c.baseline.known}/${c.candidate.known}`,
    rateWithInterval(c.baseline.successRate),
    rateWithInterval(c.candidate.successRate),
    change(c),
    `${costWithInterval(c.costPerSuccessfulTask.baseline, c.costPerSuccessfulTask.understated.baseline)} → ${costWithInterval(c.costPerSuccessfulTask.candidate, c.costPerSuccessfulTask.understated.candidate)}`,
    `${ms(c.p95LatencyMs.baseline)} → ${ms(c.p95LatencyMs.candidate)}`,
    `${pct(c.fallbackRate.baseline)} → ${pct(c.fallbackRate.candidate)}`,
    `${pct(c.reaskRate.baseline)} → ${pct(c.reaskRate.candidate)}`,
    scores || '—',
  ];
}

const HEADER = [
  'cohort',
  'verdict',
  'n (base/cand)',
  'baseline success',
  'candidate success',
  'change (95% CI)',
  'cost/success',
  'p95',
  'fallback',
  'reask',
  'scores',
];

/** The gate as a terminal table, each cohort's reason under it, and the overall verdict. */
export function renderGateTable(result: GateResult): string {
  const rows = result.cohorts.map(columns);
  const { line, rule } = tableLayout(HEADER, rows);
  const lines = [...headline(result), '', line(HEADER), rule];
  for (const row of rows) lines.push(line(row));
  if (result.cohorts.length === 0) lines.push('(no tasks on either side)');
  if (result.empty) lines.push('', printable(result.empty));
  lines.push('');
  for (const c of result.cohorts)
    lines.push(`${printable(c.cohort || '(none)')}: ${printable(reasonOf(c))}`);
  const note = notComparedNote(result);
  const costless = costlessNote(result);
  const unpriced = unpricedNote(result);
  const pending = pendingNote(result);
  const uncovered = notCoveredNote(result);
  const dearer = costRiseNote(result);
  if (uncovered) lines.push('', uncovered);
  if (pending) lines.push('', `warning: ${pending}`);
  if (dearer) lines.push('', `warning: ${printable(dearer)}`);
  if (costless) lines.push('', `warning: ${costless}`);
  if (unpriced) lines.push('', `warning: ${unpriced}`);
  lines.push('', `verdict: ${VERDICT_MARK[result.verdict]}${note ? `; ${note}` : ''}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Text for Markdown (a table cell or a bullet): the characters that would format it, link it or
 * open HTML are escaped, since cohort names come from span attributes; newlines become spaces,
 * other control characters escapes (`\u001b`: a CI log would run an escape sequence).
 * An `@` before a name gets a zero-width space after it, as Dependabot writes its own name: a
 * cohort called `@org/team` would otherwise notify that team on every pull request it gates.
 */
const escapeCell = (text: string) =>
  printable(text.replace(/\r?\n/g, ' '))
    .replace(/[\\`*_<>[\]|~]/g, '\\$&')
    .replace(/@(?=[\p{L}\p{N}_-])/gu, '@\u200b');

/**
 * A cohort name for Markdown: in quotes when it starts or ends with whitespace, which a table cell
 * trims and which keeps `**` from making it bold (`** lead space**` renders as it is written). A
 * name that is itself in quotes reads the same: the JSON (`--json`) has it exactly.
 */
const mdName = (name: string) => (/^\s|\s$/u.test(name) ? `"${name}"` : name || '(none)');

/** Text as an inline code span, however many backticks it holds. */
function code(text: string): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  const pad = longest > 0 ? ' ' : '';
  return `${fence}${pad}${printable(text.replace(/\r?\n/g, ' '))}${pad}${fence}`;
}

/** The gate as Markdown, for a pull-request comment. */
export function renderGateMarkdown(result: GateResult): string {
  const icon = { pass: '✅', fail: '❌', insufficient_data: '⚠️' };
  const note = notComparedNote(result);
  const costless = costlessNote(result);
  const unpriced = unpricedNote(result);
  const pending = pendingNote(result);
  const uncovered = notCoveredNote(result);
  const dearer = costRiseNote(result);
  const lines = [
    `### ${icon[result.verdict]} routewatch gate: ${VERDICT_MARK[result.verdict]}`,
    '',
    ...(note ? [escapeCell(note), ''] : []),
    ...(uncovered ? [escapeCell(uncovered), ''] : []),
    ...(pending ? [`> ⚠️ ${escapeCell(pending)}`, ''] : []),
    ...(dearer ? [`> ⚠️ ${escapeCell(dearer)}`, ''] : []),
    ...(costless ? [`> ⚠️ ${escapeCell(costless)}`, ''] : []),
    ...(unpriced ? [`> ⚠️ ${escapeCell(unpriced)}`, ''] : []),
    ...headline(result)
      .slice(1)
      .map((l) => `- ${escapeCell(l)}`),
    `- baseline ${code(result.baseline)}, candidate ${code(result.candidate)}`,
    '',
    // No cohort on either side: a table of headers alone would say nothing, as the text says.
    ...(result.cohorts.length === 0
      ? ['_(no tasks on either side)_', ...(result.empty ? ['', escapeCell(result.empty)] : [])]
      : [
          `| ${HEADER.join(' | ')} |`,
          `|${HEADER.map(() => ' --- ').join('|')}|`,
          ...result.cohorts.map((c) => {
            const cells = columns(c);
            cells[0] = mdName(c.cohort);
            cells[1] = `${icon[c.verdict]} ${cells[1]}`;
            return `| ${cells.map(escapeCell).join(' | ')} |`;
          }),
        ]),
    '',
    ...result.cohorts.map(
      (c) => `- **${escapeCell(mdName(c.cohort))}**: ${escapeCell(reasonOf(c))}`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}

/** Routing advice as text: one line per cohort, its verdict and the numbers behind it. */
export function renderAdvice(advice: AdviceReport): string {
  const width = Math.max(6, ...advice.cohorts.map((c) => displayWidth(c.cohort)));
  const verdictWidth = Math.max(...advice.cohorts.map((c) => c.verdict.length), 7);
  // The route each cohort is mostly on: what a verdict asks to change, or to keep.
  const on = (c: AdviceReport['cohorts'][number]) => `on ${c.currentRoute ?? '—'}`;
  const onWidth = Math.max(...advice.cohorts.map((c) => displayWidth(on(c))), 4);
  const lines = [
    `Routing advice  ${advice.from} → ${advice.to}`,
    ...advice.cohorts.map(
      (c) =>
        `  ${padEndTo(c.cohort, width)}  ${c.verdict.padEnd(verdictWidth)}  ${padEndTo(on(c), onWidth)}  ${c.reason}`,
    ),
  ];
  if (advice.cohorts.length === 0) lines.push('  (no production tasks in this window)');
  // A typo in --cohort reads as "no traffic" otherwise.
  for (const u of advice.unmatched ?? []) {
    lines.push(
      `  No production task in this window has cohort "${printable(u.name)}"` +
        (u.suggestion === null ? '.' : `: did you mean "${printable(u.suggestion)}"?`),
    );
  }
  return `${lines.join('\n')}\n`;
}
