import { displayWidth } from '../../analyzer/text-width.js';
import { describe, expect, it } from 'vitest';
import type { CohortRouteMetrics, Report, WindowMetrics } from '../../analyzer/report.js';
import { renderReportTable } from '../../analyzer/report-table.js';

function metrics(overrides: Partial<WindowMetrics> = {}): WindowMetrics {
  return {
    tasks: 1000,
    successes: 900,
    failures: 100,
    knownOutcomes: 1000,
    successRate: 0.9,
    successRateInterval: { lower: 0.881, upper: 0.917 },
    outcomeCoverage: 1,
    totalCostUsd: 2,
    costPerSuccessfulTask: 2 / 900,
    costPerSuccessfulTaskInterval: { lower: 0.0021, upper: 0.00234 },
    fallbacks: 200,
    fallbackRate: 0.2,
    cascades: 10,
    cascadeRate: 0.01,
    invisibleFallbacks: 3,
    reaskRate: 0.02,
    escalationRate: 0.01,
    topFallbackReasons: [{ reason: 'validation_failed', tasks: 180, share: 0.9 }],
    p50LatencyMs: 300,
    p95LatencyMs: 800,
    p99LatencyMs: 1200,
    p95CallsPerTask: 2,
    loopRate: 0,
    modelCalls: 1200,
    unpricedCalls: 0,
    pricedCallShare: 1,
    costUnderstated: false,
    httpCountedCalls: 1200,
    retriedCalls: 48,
    httpRetries: 60,
    retryWaitMs: 51_000,
    retryRate: 0.04,
    retriesPerTask: 0.06,
    scores: [],
    ...overrides,
  };
}

function row(
  cohort: string,
  route: string,
  overrides: Partial<CohortRouteMetrics> = {},
): CohortRouteMetrics {
  return { cohort, primaryRoute: route, ...metrics(), concentration: null, ...overrides };
}

function report(rows: CohortRouteMetrics[], overall: WindowMetrics | null = metrics()): Report {
  return {
    from: '2026-12-01T00:00:00.000Z',
    to: '2026-12-02T00:00:00.000Z',
    generatedAt: '2026-12-02T00:00:00.000Z',
    filter: { cohorts: [], routes: [], services: [], policies: [] },
    rows,
    overall,
  };
}

describe('renderReportTable', () => {
  it('shows each row with its intervals, and the overall row under a rule', () => {
    const text = renderReportTable(report([row('faq', 'small')]));
    expect(text).toMatch(
      /^faq\s+small\s+1000\s+90\.0% \(88\.1–91\.7\)\s+\$2\.0000\s+\$0\.002222 ±5%\s+20\.0%\s+validation_failed 90%/m,
    );
    const lines = text.split('\n');
    const overall = lines.findIndex((l) => l.startsWith('overall'));
    expect(lines[overall - 1]).toMatch(/^─+/);
  });

  it('aligns its columns in a terminal whatever script or emoji the names are in', () => {
    const names = ['faq', '請求書', 'café', 'e\u0301t\u0301e\u0301', '🚀 launch', '한국어 문의'];
    const text = renderReportTable(report(names.map((name) => row(name, 'small'))));
    const lines = text.split('\n').filter((l) => / small /.test(l) && !l.startsWith('SDK'));
    expect(lines).toHaveLength(names.length);
    // The route column starts at the same terminal column on every row.
    const columns = lines.map((l) => displayWidth(l.slice(0, l.indexOf(' small '))));
    expect(new Set(columns).size).toBe(1);
    expect(displayWidth('請求書')).toBe(6);
    expect(displayWidth('e\u0301')).toBe(1);
    expect(displayWidth('🚀')).toBe(2);
    expect(displayWidth('a\u200db')).toBe(2);
  });

  it('says which filtered names no task of the window has, with the name a typo most likely means', () => {
    const text = renderReportTable({
      ...report([], null),
      filter: { cohorts: ['fqa'], routes: ['smal'], services: [], policies: [] },
      unmatched: [
        { filter: 'cohort', name: 'fqa', suggestion: 'faq' },
        { filter: 'route', name: 'smal', suggestion: null },
      ],
    });
    expect(text).toMatch(/^\(no tasks in this window\)$/m);
    expect(text).toMatch(/^No task in this window has cohort "fqa": did you mean "faq"\?$/m);
    expect(text).toMatch(/^No task in this window has route "smal"\.$/m);
  });

  it('shows control characters in names as escapes: a tab keeps its row in line, ESC runs nothing', () => {
    const names = ['faq', 'billing\tEU', '\u001b[31mred'];
    const text = renderReportTable(report(names.map((name) => row(name, 'small'))));
    expect(text.includes('\t') || text.includes('\u001b')).toBe(false);
    const lines = text.split('\n').filter((l) => / small /.test(l) && !l.startsWith('SDK'));
    expect(lines.map((l) => l.slice(0, l.indexOf(' small ')).trimEnd())).toEqual([
      'faq',
      'billing\\tEU',
      '\\u001b[31mred',
    ]);
    expect(new Set(lines.map((l) => l.indexOf(' small '))).size).toBe(1);
  });

  it('marks a cost per success built on unpriced calls as a floor, and a masked cohort', () => {
    const text = renderReportTable(
      report([
        row('faq', 'small', { pricedCallShare: 0.8, unpricedCalls: 240, costUnderstated: true }),
        row('internal', 'small', {
          pricedCallShare: 0,
          unpricedCalls: 1200,
          costUnderstated: true,
        }),
        row('extraction', 'small', {
          concentration: {
            ratio: 2.4,
            failureRate: 0.25,
            restFailureRate: 0.08,
            z: 6,
            significantlyWorse: true,
            maskedByAverage: true,
          },
        }),
      ]),
    );
    // The total and the cost per success alike: floors, or unknown when no call was priced.
    expect(text).toMatch(/^faq\s.*≥\$2\.0000\s+≥\$0\.002222/m);
    expect(text).toMatch(/^internal\s.*\s+unknown\s+unknown\s/m);
    expect(text).toMatch(/^extraction\s.*\s\$2\.0000\s+\$0\.002222/m);
    expect(text).toMatch(/^extraction\s.*2\.40× masked$/m);
    expect(text).toMatch(
      /Masked by the average: extraction × small fail significantly more often than the rest while the overall success rate looks healthy\. Pooled over the window's hours: /,
    );
    expect(text).toMatch(
      /≥ cost built on model calls with no known price: .* Model calls with no known price: faq × small 240 of 1200, internal × small 1200 of 1200\./,
    );
  });

  it('adds the JSON-only columns with --wide', () => {
    const text = renderReportTable(report([row('faq', 'small')]), { wide: true });
    expect(text).toMatch(
      /coverage\s+reask\s+escalation\s+cascades\s+invisible\s+p50\s+p99\s+calls p95\s+loops\s+priced\s+retries/,
    );
    expect(text).toMatch(
      /^faq\s.*100\.0%\s+2\.0%\s+1\.0%\s+1\.0%\s+3\s+300 ms\s+1200 ms\s+2\s+0\.0%\s+100\.0%\s+4\.0% \+0\.06\/task$/m,
    );
  });

  it('names the rows with SDK retries under the table, most retried first, and none without', () => {
    const text = renderReportTable(
      report([
        row('faq', 'small', { retryRate: 0.02, retriesPerTask: 0.03 }),
        row('extraction', 'small', { retryRate: 0.3, retriesPerTask: 0.6 }),
        row('quiet', 'small', { retryRate: 0, retriesPerTask: 0 }),
      ]),
    );
    expect(text).toMatch(
      /^SDK retries \(model calls that needed more than one HTTP request\): extraction × small 30\.0% \+0\.60\/task, faq × small 2\.0% \+0\.03\/task\.$/m,
    );
    const none = renderReportTable(report([row('quiet', 'small', { retryRate: 0 })]));
    expect(none).not.toMatch(/SDK retries/);
  });

  it('says when a tagged row has no model call, and counts the untagged tasks with calls', () => {
    const text = renderReportTable(
      report([
        row('billing', 'small', { tasks: 2, modelCalls: 0, totalCostUsd: 0 }),
        row('refunds', '', { tasks: 1, modelCalls: 0, totalCostUsd: 0 }),
        row('', '', { tasks: 4, modelCalls: 4 }),
        row('faq', 'small', { tasks: 10, modelCalls: 12 }),
      ]),
    );
    expect(text).toMatch(
      /^No model call joined the tasks of billing × small \(2 tasks\), refunds × \(none\) \(1 task\): their cost reads \$0\./m,
    );
    expect(text).toMatch(
      /^\(none\) × \(none\): 4 tasks with neither cohort nor route, 4 model calls\./m,
    );
    // A tagged row with calls, and an untagged row without any, need neither note.
    const quiet = renderReportTable(
      report([row('faq', 'small', { modelCalls: 12 }), row('', '', { tasks: 3, modelCalls: 0 })]),
    );
    expect(quiet).not.toMatch(/No model call joined|neither cohort nor route/);
  });

  it('shows no retry rate with --wide where no call had its HTTP requests counted', () => {
    const text = renderReportTable(
      report([row('faq', 'small', { httpCountedCalls: 0, retryRate: null, retriesPerTask: null })]),
      { wide: true },
    );
    expect(text).toMatch(/^faq\s.*100\.0%\s+—$/m);
  });

  it('compares each row with the previous window', () => {
    const now = report([
      row('faq', 'small', { successRate: 0.85, costPerSuccessfulTask: 0.003, fallbackRate: 0.3 }),
      row('new', 'small'),
    ]);
    const before = report([
      row('faq', 'small', { successRate: 0.9, costPerSuccessfulTask: 0.002, fallbackRate: 0.2 }),
    ]);
    const text = renderReportTable(now, { previous: before });
    expect(text).toMatch(/^faq\s.*success −5\.0 pts, cost\/success \+50%, fallback \+10\.0 pts$/m);
    expect(text).toMatch(/^new\s.*new$/m);
    expect(text).toMatch(/^compared with 2026-12-01/m);
  });

  it('says which filter applies, and when the window is empty', () => {
    const filtered = {
      ...report([], null),
      filter: { cohorts: ['faq'], routes: [], services: [], policies: ['v2'] },
    };
    const text = renderReportTable(filtered);
    expect(text).toMatch(/\(cohorts faq; policies v2\)/);
    expect(text).toMatch(/\(no tasks in this window\)/);
  });

  it('lists quality scores per cohort × route with their interval, and nothing when none exist', () => {
    expect(renderReportTable(report([row('faq', 'small')]))).not.toMatch(/Quality scores/);
    const text = renderReportTable(
      report(
        [
          row('faq', 'small', {
            scores: [
              { name: 'confidence', n: 120, mean: 0.8125, interval: { lower: 0.79, upper: 0.835 } },
            ],
          }),
          row('policy', 'large'),
        ],
        metrics({ scores: [{ name: 'confidence', n: 1, mean: 0.5, interval: null }] }),
      ),
    );
    expect(text).toMatch(/^Quality scores/m);
    expect(text).toMatch(/^ {2}faq × small\s+confidence 0\.813 \[0\.790–0\.835\] \(n=120\)$/m);
    expect(text).toMatch(/^ {2}overall\s+confidence 0\.500 \(n=1\)$/m);
    expect(text).not.toMatch(/^\s+policy × large\s+\S/m);
  });
});
