import { describe, expect, it } from 'vitest';
import { parseOutcomesRequest, reportId } from '../../collector/outcomes.js';
import type { OutcomeReport } from '../../collector/outcomes.js';
import { EvalGradeError, readGrade, summarizeResults } from '../../instrumentation/src/eval.js';
import { MAX_SCORES, SCORE_NAME_PATTERN } from '../../instrumentation/src/semconv.js';
import { scoreProblem } from '../../instrumentation/src/tagging.js';
import type { EvalCaseResult } from '../../instrumentation/src/types.js';

describe('scoreProblem', () => {
  it.each(['groundedness', 'schema_valid', 'refusal.correct', 'rubric-v2', '0', 'a'.repeat(64)])(
    'accepts the name %s with values 0, 1 and between',
    (name) => {
      for (const value of [0, 0.5, 1]) expect(scoreProblem(name, value)).toBeUndefined();
    },
  );

  it.each([
    ['Groundedness', 'upper case'],
    ['tone ok', 'a space'],
    ['tone/ok', 'a slash'],
    ['', 'empty'],
    ['a'.repeat(65), 'too long'],
    ['naïve', 'not ASCII'],
  ])('refuses the name %j (%s)', (name) => {
    expect(scoreProblem(name, 0.5)).toMatch(
      /score name .* is not 1-64 characters of \[a-z0-9_.-\]/,
    );
  });

  it.each([-0.01, 1.01, Number.NaN, Infinity, '0.5', null, undefined, true])(
    'refuses the value %s',
    (value) => {
      expect(scoreProblem('tone', value)).toMatch(/score tone = .* is not a number in 0\.\.1/);
    },
  );

  it('agrees with the contract pattern, which the collector uses too', () => {
    expect(SCORE_NAME_PATTERN.test('refusal.correct')).toBe(true);
    expect(SCORE_NAME_PATTERN.test('Refusal')).toBe(false);
  });
});

describe('readGrade', () => {
  it('reads a boolean as pass or fail without scores', () => {
    expect(readGrade(true, 'grade', 0.5)).toEqual({ pass: true, scores: {}, ignored: [] });
    expect(readGrade(false, 'grade', 0.5)).toEqual({ pass: false, scores: {}, ignored: [] });
  });

  it('reads a number as a score under scoreName, passing at the threshold and above', () => {
    expect(readGrade(0.7, 'exact', 0.7)).toEqual({
      pass: true,
      scores: { exact: 0.7 },
      ignored: [],
    });
    expect(readGrade(0.69, 'exact', 0.7)).toEqual({
      pass: false,
      scores: { exact: 0.69 },
      ignored: [],
    });
  });

  it('reads a verdict with named scores, leaving out bad entries with the reason', () => {
    const grade = readGrade(
      { pass: false, scores: { groundedness: 0.4, Tone: 0.9, schema_valid: 2 } },
      'grade',
      0.5,
    );
    expect(grade.pass).toBe(false);
    expect(grade.scores).toEqual({ groundedness: 0.4 });
    expect(grade.ignored).toEqual([
      expect.stringMatching(/score name "Tone"/),
      expect.stringMatching(/schema_valid = 2/),
    ]);
  });

  it.each([
    ['a number above 1', 1.5],
    ['NaN', Number.NaN],
    ['a string', 'pass'],
    ['null', null],
    ['undefined', undefined],
    ['a verdict without a boolean pass', { pass: 'yes' }],
    ['a verdict whose scores are no object', { pass: true, scores: 0.5 }],
  ])('throws an EvalGradeError for %s', (_case, grade) => {
    expect(() => readGrade(grade, 'grade', 0.5)).toThrow(EvalGradeError);
  });
});

describe('summarizeResults', () => {
  const result = (overrides: Partial<EvalCaseResult>): EvalCaseResult => ({
    index: 0,
    id: undefined,
    taskId: 't',
    passed: false,
    scores: {},
    route: 'small',
    ...overrides,
  });

  it('counts passed, failed and errors, and averages each score over the cases that have it', () => {
    const summary = summarizeResults([
      result({ passed: true, scores: { grade: 1, tone: 0.5 } }),
      result({ passed: false, scores: { grade: 0.25 } }),
      result({ passed: false, error: new Error('exhausted'), route: undefined }),
      result({ passed: true, scores: { grade: 0.5, tone: 1 } }),
    ]);
    expect(summary).toEqual({
      cases: 4,
      passed: 2,
      failed: 2,
      errors: 1,
      scores: { grade: { n: 3, mean: 0.5833333333333334 }, tone: { n: 2, mean: 0.75 } },
    });
    expect(Object.keys(summary.scores)).toEqual(['grade', 'tone']);
  });

  it('summarizes no cases as zeros', () => {
    expect(summarizeResults([])).toEqual({ cases: 0, passed: 0, failed: 0, errors: 0, scores: {} });
  });
});

describe('outcome reports with scores', () => {
  const parsed = (json: unknown): OutcomeReport => {
    const result = parseOutcomesRequest(json);
    if (!result.success) throw new Error(result.error.issues[0]?.message);
    return result.data[0]!;
  };
  const firstIssue = (json: unknown) => {
    const result = parseOutcomesRequest(json);
    expect(result.success).toBe(false);
    const issue = result.success ? undefined : result.error.issues[0];
    return `${issue?.path.join('.')}: ${issue?.message}`;
  };
  const base = { taskId: 't-1', outcome: 'success' } as const;

  it('accepts named scores in 0..1', () => {
    expect(parsed({ ...base, scores: { groundedness: 0.8, 'refusal.correct': 1 } }).scores).toEqual(
      { groundedness: 0.8, 'refusal.correct': 1 },
    );
  });

  it.each([
    [{ Groundedness: 0.8 }, /^scores\.Groundedness: a score name is 1-64 characters/],
    [{ tone: 1.2 }, /^scores\.tone: .*<=1/],
    [{ tone: -1 }, /^scores\.tone: .*>=0/],
    [{ tone: '0.5' }, /^scores\.tone: .*expected number/],
    [
      Object.fromEntries(Array.from({ length: MAX_SCORES + 1 }, (_, i) => [`s${i}`, 0.5])),
      new RegExp(`^scores: at most ${MAX_SCORES} scores per report`),
    ],
  ])('refuses scores %j, naming the field', (scores, message) => {
    expect(firstIssue({ ...base, scores })).toMatch(message);
  });

  it('refuses an own "__proto__" score key (as JSON.parse makes it) instead of losing it', () => {
    expect(
      firstIssue(JSON.parse('{"taskId":"t","outcome":"success","scores":{"__proto__":0.5}}')),
    ).toMatch(/^scores\.__proto__: a score name/);
  });

  it('identifies a report by its scores too, whatever their order', () => {
    const a = reportId(parsed({ ...base, scores: { groundedness: 0.8, tone: 0.5 } }));
    const sameInOtherOrder = reportId(
      parsed({ ...base, scores: { tone: 0.5, groundedness: 0.8 } }),
    );
    const otherValue = reportId(parsed({ ...base, scores: { groundedness: 0.9, tone: 0.5 } }));
    expect(sameInOtherOrder).toBe(a);
    expect(otherValue).not.toBe(a);
  });

  it('keeps the id a report without scores had before scores existed', () => {
    // What reportId gave this report before scores existed (sha256 of
    // ["t-1","success","",false,0,"","api"]): a retry across the upgrade keeps its identity.
    const before = 'sha256:13e5cb125cfd4e66c3fb33a92dae0e65';
    expect(reportId(parsed(base))).toBe(before);
    expect(reportId(parsed({ ...base, scores: {} }))).toBe(before);
  });
});
