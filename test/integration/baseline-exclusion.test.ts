import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aggregateCounts, monitorKey } from '../../analyzer/series.js';
import { mergeSpans, trailingRead } from '../../analyzer/evaluator.js';
import type { ExcludedSpan, RouteReach } from '../../analyzer/series.js';
import { sendTasks, testApp } from '../support/app.js';
import { openTempStore } from '../support/store.js';
import { seeded, stream } from '../support/tasks.js';
import type { CraftedTask } from '../support/tasks.js';

// A trailing baseline without a route's resolved incidents: the spans are written into the
// statement (analyzer/series.ts), so names that are quotes, backslashes or placeholders must
// stay names, and exactly the tasks of each span go. A route whose spans leave its baseline short
// reads further back than the others (`reach`), written in the same way.

const HOUR = 3_600_000;
const T = Date.now() - 60_000;
const FROM = T - 10 * HOUR;
const NAMES = ["o'brien\\", '{view}', "{from:DateTime64(9, 'UTC')}", 'plain', 'ש{}\n'];

let temp: Awaited<ReturnType<typeof openTempStore>>;
let tasks: CraftedTask[];

beforeAll(async () => {
  temp = await openTempStore();
  const random = seeded(3);
  tasks = NAMES.flatMap((cohort) =>
    stream(
      {
        cohort,
        routes: ['small', 'large'],
        tasks: 200,
        success: 0.8,
        fallback: 0.2,
        fromMs: FROM,
        toMs: T,
      },
      random,
    ),
  );
  const app = await testApp(temp.store);
  await sendTasks(app, tasks);
  await app.close();
}, 120_000);
afterAll(async () => {
  await temp?.dispose();
});

describe('a read without the spans of resolved incidents', () => {
  it('leaves out exactly the tasks of each span, whatever the names', async () => {
    const exclude: ExcludedSpan[] = [
      { cohort: NAMES[0]!, route: 'small', fromMs: FROM + HOUR, toMs: FROM + 3 * HOUR },
      { cohort: NAMES[0]!, route: 'small', fromMs: FROM + 5 * HOUR, toMs: FROM + 6 * HOUR },
      { cohort: NAMES[1]!, route: 'small', fromMs: FROM, toMs: T },
      { cohort: NAMES[2]!, route: 'small', fromMs: FROM + 2 * HOUR, toMs: FROM + 7 * HOUR },
      { cohort: NAMES[4]!, route: 'small', fromMs: FROM + 4 * HOUR, toMs: FROM + 4.5 * HOUR },
      // A route with no tasks, and a cohort with none: nothing to leave out.
      { cohort: 'plain', route: 'large', fromMs: FROM, toMs: T },
      { cohort: 'nobody', route: 'small', fromMs: FROM, toMs: T },
    ];
    const left = (t: CraftedTask) =>
      exclude.some(
        (e) =>
          e.cohort === t.cohort &&
          e.route === t.routes[0] &&
          t.startMs >= e.fromMs &&
          t.startMs < e.toMs,
      );
    const expected = new Map<string, { tasks: number; successes: number; fallbacks: number }>();
    for (const t of tasks) {
      if (left(t)) continue;
      const key = monitorKey(t.cohort, t.routes[0]!);
      const c = expected.get(key) ?? { tasks: 0, successes: 0, fallbacks: 0 };
      c.tasks++;
      if (t.outcome === 'success') c.successes++;
      if (t.routes.length > 1) c.fallbacks++;
      expected.set(key, c);
    }
    const read = async (spans: ExcludedSpan[]) =>
      new Map(
        (
          await aggregateCounts(temp.store, new Date(FROM), new Date(T), {
            callBudget: 10,
            byVersion: false,
            exclude: spans,
          })
        ).map((r) => [
          monitorKey(r.cohort, r.route),
          { tasks: r.counts.tasks, successes: r.counts.successes, fallbacks: r.counts.fallbacks },
        ]),
      );
    expect(await read(exclude)).toEqual(expected);
    // Every task of the route in the span went: the cohort left out whole has no row.
    expect(expected.has(monitorKey('{view}', 'small'))).toBe(false);
    // Without spans, every task counts.
    const all = await read([]);
    expect([...all.values()].reduce((n, c) => n + c.tasks, 0)).toBe(tasks.length);
    expect([...expected.values()].reduce((n, c) => n + c.tasks, 0)).toBeLessThan(
      tasks.length - 300,
    );
  });

  it("reads the routes `reach` names from their own earlier starts, the others from the read's", async () => {
    const from = FROM + 6 * HOUR;
    const reach: RouteReach[] = [
      { cohort: NAMES[0]!, route: 'small', fromMs: FROM + 2 * HOUR },
      { cohort: NAMES[2]!, route: 'small', fromMs: FROM },
      { cohort: NAMES[4]!, route: 'large', fromMs: FROM + 3 * HOUR },
      // Not earlier than the read's own start: no change.
      { cohort: 'plain', route: 'small', fromMs: from + HOUR },
    ];
    const exclude: ExcludedSpan[] = [
      { cohort: NAMES[0]!, route: 'small', fromMs: FROM + 3 * HOUR, toMs: FROM + 7 * HOUR },
    ];
    const expected = new Map<string, number>();
    for (const t of tasks) {
      const start = Math.min(
        from,
        ...reach
          .filter((r) => r.cohort === t.cohort && r.route === t.routes[0])
          .map((r) => r.fromMs),
      );
      const out = exclude.some(
        (e) =>
          e.cohort === t.cohort &&
          e.route === t.routes[0] &&
          t.startMs >= e.fromMs &&
          t.startMs < e.toMs,
      );
      if (t.startMs < start || t.startMs >= T || out) continue;
      const key = monitorKey(t.cohort, t.routes[0]!);
      expected.set(key, (expected.get(key) ?? 0) + 1);
    }
    const rows = await aggregateCounts(temp.store, new Date(from), new Date(T), {
      callBudget: 10,
      byVersion: false,
      exclude,
      reach,
    });
    expect(new Map(rows.map((r) => [monitorKey(r.cohort, r.route), r.counts.tasks]))).toEqual(
      expected,
    );
    // The routes reached back hold more than a plain read from `from` gives them.
    const plain = await aggregateCounts(temp.store, new Date(from), new Date(T), {
      callBudget: 10,
      byVersion: false,
    });
    const plainOf = (cohort: string) =>
      plain.find((r) => r.cohort === cohort && r.route === 'small')?.counts.tasks ?? 0;
    expect(expected.get(monitorKey(NAMES[2]!, 'small'))).toBeGreaterThan(plainOf(NAMES[2]!) + 50);
    expect(expected.get(monitorKey('plain', 'small'))).toBe(plainOf('plain'));
  });

  it('keeps the statement of a read at the span caps within what ClickHouse parses, whatever the names', async () => {
    const read = (spans: ExcludedSpan[]) => {
      const around = trailingRead(mergeSpans(spans), T, 4 * HOUR);
      return {
        around,
        rows: aggregateCounts(temp.store, new Date(T - 4 * HOUR), new Date(T), {
          callBudget: 10,
          byVersion: false,
          ...around,
        }),
      };
    };
    // 500 routes, each with an incident of most of the window: 500 spans and 500 reaches.
    const spans = (name: (i: number) => string) =>
      Array.from({ length: 500 }, (_, i) => ({
        cohort: name(i),
        route: 'small',
        fromMs: T - 3 * HOUR,
        toMs: T - HOUR + i,
      }));
    const plain = read(spans((i) => `cohort-${i}`));
    expect(plain.around.exclude).toHaveLength(500);
    expect(plain.around.reach).toHaveLength(500);
    await expect(plain.rows).resolves.toBeDefined();
    // Names of 200 characters, braces escaped to four each: the routes with the latest
    // incidents keep theirs, the rest are read as if they had none, and the read answers.
    const long = read(spans((i) => `${i}${'{'.repeat(100)}${'x'.repeat(96)}`));
    expect(long.around.exclude.length).toBeLessThan(500);
    expect(long.around.exclude.length).toBeGreaterThan(50);
    expect(long.around.reach).toHaveLength(long.around.exclude.length);
    expect(
      long.around.exclude.every((s) => s.toMs >= T - HOUR + 500 - long.around.exclude.length),
    ).toBe(true);
    await expect(long.rows).resolves.toBeDefined();
  });
});
