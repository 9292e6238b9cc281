import { describe, expect, it } from 'vitest';
import { pairIncidents } from '../../analyzer/alert-store.js';
import { leftOut, mergeSpans, reachBack, trailingRead } from '../../analyzer/evaluator.js';
import { monitorKey } from '../../analyzer/series.js';

// The resolved incidents left out of a route's trailing baselines: the incidents of one route's
// rules overlap (they fire together), and are merged before they go into the statement.

const span = (route: string, fromMs: number, toMs: number, cohort = 'faq') => ({
  cohort,
  route,
  fromMs,
  toMs,
});

describe('mergeSpans', () => {
  it('merges the overlapping and touching spans of one cohort × route, not of others', () => {
    expect(
      mergeSpans([
        span('small', 50, 70),
        span('small', 10, 30),
        span('small', 20, 40),
        span('small', 40, 45),
        span('large', 25, 60),
        span('small', 28, 35, 'billing'),
      ]),
    ).toEqual([
      span('small', 28, 35, 'billing'),
      span('small', 10, 45),
      span('large', 25, 60),
      span('small', 50, 70),
    ]);
  });

  it('drops empty spans and leaves its input as it was', () => {
    const input = [span('small', 10, 10), span('small', 30, 20), span('small', 1, 5)];
    const before = structuredClone(input);
    expect(mergeSpans(input)).toEqual([span('small', 1, 5)]);
    expect(input).toEqual(before);
  });

  it('keeps the latest 20 of a flapping route, and those of the quiet routes beside it', () => {
    const many = Array.from({ length: 150 }, (_, i) => span('small', i * 10, i * 10 + 5));
    const merged = mergeSpans([...many, span('large', 0, 5), span('small', 0, 5, 'billing')]);
    const small = merged.filter((s) => s.route === 'small' && s.cohort === 'faq');
    expect(small).toHaveLength(20);
    // The oldest kept one says that older ones were dropped (reachBack stops there).
    expect(small[0]).toEqual({ ...span('small', 1300, 1305), cut: true });
    expect(small.slice(1).filter((s) => s.cut)).toEqual([]);
    expect(small.at(-1)).toEqual(span('small', 1490, 1495));
    // A busy route does not push a quiet one's older incident out.
    expect(merged).toContainEqual(span('large', 0, 5));
    expect(merged).toContainEqual(span('small', 0, 5, 'billing'));
  });

  it('keeps the latest 500 in all', () => {
    const routes = Array.from({ length: 40 }, (_, r) =>
      Array.from({ length: 20 }, (_, i) => span(`r${r}`, i * 100 + r, i * 100 + r + 50)),
    ).flat();
    const merged = mergeSpans(routes);
    expect(merged).toHaveLength(500);
    expect(Math.min(...merged.map((s) => s.toMs))).toBeGreaterThan(
      Math.min(...routes.map((s) => s.toMs)),
    );
    // Each route that lost spans to the cap in all has its oldest kept one marked, and only it.
    for (let r = 0; r < 40; r++) {
      const kept = merged.filter((s) => s.route === `r${r}`);
      expect(kept.filter((s) => s.cut)).toEqual(kept.length < 20 ? [kept[0]] : []);
    }
  });
});

// Each resolution pairs with the firing before it: one incident number can hold several fired
// episodes (a number no message went out under, as under a silence, is given to the next one).
describe('pairIncidents', () => {
  const row = (
    kind: string,
    at: number,
    extra: Partial<{ fingerprint: string; change_point: string; baseline: string }> = {},
  ) => ({
    fingerprint: 'f1',
    rule_id: 'fallback_rate_spike',
    cohort: 'faq',
    route: 'small',
    kind,
    at,
    change_point: '',
    baseline: kind === 'firing' ? 'trailing 7 d before the current window' : '',
    ...extra,
  });
  const iso = (ms: number) => new Date(ms).toISOString();

  it('gives two spans, not one across the healthy gap, for two episodes under one number', () => {
    const spans = pairIncidents([
      row('pending', 10),
      row('firing', 30, { change_point: iso(5) }),
      row('repeat', 60),
      row('resolved', 400),
      row('pending', 600),
      row('firing', 650, { change_point: iso(620) }),
      row('resolved', 900),
    ]);
    expect(spans.map((s) => [s.fromMs, s.toMs])).toEqual([
      [5, 400],
      [620, 900],
    ]);
    expect(spans[0]).toMatchObject({
      ruleId: 'fallback_rate_spike',
      cohort: 'faq',
      route: 'small',
    });
  });

  it('starts at the firing when its finding had no change point, and never after it', () => {
    expect(
      pairIncidents([
        row('firing', 30),
        row('resolved', 90),
        row('firing', 100, { change_point: iso(150) }),
        row('resolved', 200),
      ]).map((s) => [s.fromMs, s.toMs]),
    ).toEqual([
      [30, 90],
      [100, 200],
    ]);
  });

  it('leaves out what has no firing before it in its alert, and the incidents of other baselines', () => {
    expect(
      pairIncidents([
        row('firing', 30),
        row('resolved', 90, { fingerprint: 'f2' }),
        row('firing', 100, { fingerprint: 'f3', baseline: 'the target success rate 90 %' }),
        row('resolved', 200, { fingerprint: 'f3' }),
        row('firing', 300, { fingerprint: 'f4', baseline: 'pinned baseline q3 (…)' }),
        row('resolved', 400, { fingerprint: 'f4' }),
      ]),
    ).toEqual([]);
  });
});

describe('reachBack', () => {
  // A window of 100 ending at 1 000: [900, 1 000) without the spans left out.
  const at = (...spans: [number, number][]) =>
    reachBack(
      spans.map(([fromMs, toMs]) => ({ fromMs, toMs })),
      1_000,
      100,
    );

  it('starts a window back when nothing in it is left out', () => {
    expect(at()).toBe(900);
    expect(at([850, 890])).toBe(900);
    expect(at([1_000, 1_200])).toBe(900);
  });

  it('reaches back by the time left out, across the healthy gaps and the spans before', () => {
    expect(at([950, 980])).toBe(870);
    // 30 out, then 20 more read back into [850, 880), which is out too: past it.
    expect(at([950, 980], [850, 880])).toBe(840);
    // A span running past the end is left out up to the end only.
    expect(at([960, 1_050])).toBe(860);
  });

  it('takes overlapping spans as one, and spans out of order', () => {
    expect(at([930, 960], [950, 980], [940, 945])).toBe(850);
    expect(at([850, 880], [950, 980])).toBe(840);
  });

  it('reaches at most one window further', () => {
    expect(at([820, 990])).toBe(800);
    expect(at([700, 1_000])).toBe(800);
    expect(at([900, 1_000])).toBe(800);
  });

  it('reaches no further back than a span before which older incidents were dropped', () => {
    const cut = (fromMs: number, toMs: number) => ({ fromMs, toMs, cut: true });
    // Older spans dropped before [850, 880): no further back than 850.
    expect(reachBack([{ fromMs: 950, toMs: 980 }, cut(850, 880)], 1_000, 100)).toBe(850);
    // A cut span inside the window keeps the read at the window's start.
    expect(reachBack([cut(950, 980)], 1_000, 100)).toBe(900);
    // One far back does not matter.
    expect(reachBack([{ fromMs: 950, toMs: 980 }, cut(100, 200)], 1_000, 100)).toBe(870);
  });
});

describe('leftOut: a baseline says what its read left out', () => {
  const HOUR = 3_600_000;
  const END = Date.UTC(2026, 11, 7, 12);
  const key = (s: { cohort: string; route: string }) => monitorKey(s.cohort, s.route);

  it('names the incident and the reach its read has', () => {
    const one = [{ cohort: 'faq', route: 'small', fromMs: END - 3 * HOUR, toMs: END - HOUR }];
    const read = trailingRead(mergeSpans(one), END, 4 * HOUR);
    expect(leftOut(read, key(one[0]!), END, 4 * HOUR).text).toBe(
      ', without the resolved incident of 2026-12-07 09:00 → 2026-12-07 11:00 UTC on this cohort × route, reaching back to 2026-12-07 06:00 UTC for the time left out',
    );
    expect(leftOut(read, monitorKey('faq', 'large'), END, 4 * HOUR)).toEqual({
      text: '',
      spanMs: 4 * HOUR,
    });
    expect(leftOut(read, key(one[0]!), END, 4 * HOUR).spanMs).toBe(4 * HOUR);
  });

  it('says how much healthy history an incident of more than a window leaves, and holds that span', () => {
    // A 6-hour incident under 4-hour windows: the read reaches one window further, to 04:00,
    // and finds 2 hours outside it.
    const long = [{ cohort: 'faq', route: 'small', fromMs: END - 7 * HOUR, toMs: END - HOUR }];
    const read = trailingRead(mergeSpans(long), END, 4 * HOUR);
    expect(leftOut(read, key(long[0]!), END, 4 * HOUR)).toEqual({
      text: ', without the resolved incident of 2026-12-07 05:00 → 2026-12-07 11:00 UTC on this cohort × route, reaching back to 2026-12-07 04:00 UTC for the time left out (2 h of history outside incidents, not 4 h: it reaches at most one window further)',
      spanMs: 2 * HOUR,
    });
  });

  it('names nothing for a route its read, over the statement budget, took as having no incident', () => {
    // 500 routes with names of 200 characters (braces quoted four times over): the routes with
    // the oldest incidents are read as if they had none, and are described so.
    const spans = Array.from({ length: 500 }, (_, i) => ({
      cohort: `${i}${'{'.repeat(100)}${'x'.repeat(96)}`,
      route: 'small',
      fromMs: END - 3 * HOUR,
      toMs: END - HOUR + i,
    }));
    const read = trailingRead(mergeSpans(spans), END, 4 * HOUR);
    const kept = new Set(read.exclude.map(key));
    expect(kept.size).toBeLessThan(500);
    const dropped = spans.filter((s) => !kept.has(key(s)));
    expect(dropped.length).toBeGreaterThan(0);
    for (const s of dropped) expect(leftOut(read, key(s), END, 4 * HOUR).text).toBe('');
    for (const s of spans.filter((s) => kept.has(key(s))))
      expect(leftOut(read, key(s), END, 4 * HOUR).text).toMatch(
        /^, without the resolved incident of .* reaching back to /,
      );
  });
});
