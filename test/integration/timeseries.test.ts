import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReport } from '../../analyzer/report.js';
import type { Timeseries } from '../../analyzer/timeseries.js';
import { refreshRollups } from '../../storage/rollups.js';
import { hexId, otlpBody } from '../support/otlp.js';
import { openTempStore } from '../support/store.js';
import type { TestSpan } from '../support/otlp.js';
import { testApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';
import { dateAt, nsAt } from '../support/time.js';

// GET /api/v1/timeseries through the production app: tasks in three hours, two cohorts.

const HOUR = 3_600_000;
let temp: Awaited<ReturnType<typeof openTempStore>>;
let rw: TestApp;

function task(
  cohort: string,
  route: string,
  startMs: number,
  outcome: string,
  fallback = false,
  policy?: string,
): TestSpan[] {
  const id = `${cohort}-${startMs}`;
  const traceId = hexId(16);
  const common = {
    'routewatch.task.id': id,
    'routewatch.cohort': cohort,
    ...(policy ? { 'routewatch.policy.version': policy } : {}),
  };
  const attempt = (n: number, r: string, at: number, reason?: string): TestSpan[] => [
    {
      traceId,
      name: `routewatch.attempt ${r}`,
      kind: 1,
      start: nsAt(at),
      end: nsAt(at + 100),
      attributes: {
        ...common,
        'routewatch.route': r,
        'routewatch.attempt': n,
        ...(reason ? { 'routewatch.fallback.reason': reason } : {}),
      },
    },
    {
      traceId,
      start: nsAt(at + 1),
      end: nsAt(at + 90),
      attributes: {
        ...common,
        'routewatch.route': r,
        'routewatch.attempt': n,
        'gen_ai.request.model': r === 'small' ? 'gpt-4o-mini' : 'gpt-4o',
        'gen_ai.usage.input_tokens': 1000,
        'gen_ai.usage.output_tokens': 100,
      },
    },
  ];
  return [
    {
      traceId,
      name: `routewatch.task ${cohort}`,
      kind: 1,
      start: nsAt(startMs),
      end: nsAt(startMs + 500),
      attributes: { ...common, 'routewatch.outcome': outcome },
    },
    ...attempt(1, route, startMs + 1),
    ...(fallback ? attempt(2, 'large', startMs + 200, 'validation_failed') : []),
  ];
}

beforeAll(async () => {
  temp = await openTempStore();
  rw = await testApp(temp.store);
  const spans = [
    ...task('faq', 'small', 5 * 60_000, 'success'),
    ...task('faq', 'small', 20 * 60_000, 'failure', true, 'v2'),
    ...task('faq', 'small', HOUR + 5 * 60_000, 'success'),
    ...task('faq', 'small', 2 * HOUR + 5 * 60_000, 'success', true, 'v2'),
    ...task('policy', 'large', HOUR + 30 * 60_000, 'success'),
  ];
  const res = await rw.app.inject({
    method: 'POST',
    url: '/v1/traces',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(otlpBody(spans)),
  });
  expect(res.statusCode).toBe(200);
  await rw.writer.flush();
  // Half the hours from the rollups: the first refresh, then one more task.
  await refreshRollups(temp.store, { marginMs: 0 });
  await rw.app.inject({
    method: 'POST',
    url: '/v1/traces',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(otlpBody(task('faq', 'small', HOUR + 40 * 60_000, 'success'), 'svc-b')),
  });
  await rw.writer.flush();
});
afterAll(async () => {
  await rw?.close();
  await temp?.dispose();
});

const get = (query: string) => rw.app.inject({ method: 'GET', url: `/api/v1/timeseries?${query}` });
const window = `from=${dateAt(0).toISOString()}&to=${dateAt(3 * HOUR).toISOString()}`;

describe('GET /api/v1/timeseries', () => {
  it('gives each cohort × primary route its buckets, with the metrics of the report for the tasks started in each', async () => {
    const res = await get(`${window}&bucket=1h`);
    expect(res.statusCode).toBe(200);
    const body = res.json<Timeseries>();
    expect(body).toMatchObject({ bucketSeconds: 3600, from: dateAt(0).toISOString() });
    expect(body.series.map((s) => [s.cohort, s.primaryRoute, s.points.length])).toEqual([
      ['faq', 'small', 3],
      ['policy', 'large', 1],
    ]);
    const faq = body.series[0]!;
    expect(faq.points.map((p) => [p.bucketStart, p.tasks, p.successes, p.fallbacks])).toEqual([
      [dateAt(0).toISOString(), 2, 1, 1],
      [dateAt(HOUR).toISOString(), 2, 2, 0],
      [dateAt(2 * HOUR).toISOString(), 1, 1, 1],
    ]);
    // Each bucket is the report of its hour.
    for (const point of faq.points) {
      const from = new Date(point.bucketStart);
      const report = await buildReport(temp.store, { from, to: new Date(from.getTime() + HOUR) });
      const { cohort, primaryRoute, ...metrics } = report.rows.find((r) => r.cohort === 'faq')!;
      expect([cohort, primaryRoute]).toEqual(['faq', 'small']);
      const { bucketStart, ...pointMetrics } = point;
      expect(bucketStart).toBe(from.toISOString());
      // A point has no failure concentration (that compares a group with the rest of a window).
      expect({ ...pointMetrics, concentration: null }).toEqual({ ...metrics, concentration: null });
    }
    expect(faq.points[0]!.topFallbackReasons).toEqual([
      { reason: 'validation_failed', tasks: 1, share: 1 },
    ]);
    expect(faq.points[0]!.successRate).toBe(0.5);
  });

  it('cuts by cohort and route, and defaults to hourly buckets', async () => {
    const res = await get(`${window}&cohort=policy`);
    expect(res.statusCode).toBe(200);
    const body = res.json<Timeseries>();
    expect(body.bucketSeconds).toBe(3600);
    expect(body.series.map((s) => s.cohort)).toEqual(['policy']);
    const none = await get(`${window}&cohort=faq&route=large`);
    expect(none.json<Timeseries>().series).toEqual([]);
  });

  it("cuts by service and policy version before the sums: a version's buckets hold its own tasks", async () => {
    // Review audit-B #1: the dashboard's charts of a canary (policy=…) drew every version's tasks.
    const points = async (query: string) =>
      (await get(`${window}&${query}`))
        .json<Timeseries>()
        .series.map((s) => [
          s.cohort,
          s.points.map((p) => [p.bucketStart, p.tasks, p.successes, p.fallbacks]),
        ]);
    expect(await points('policy=v2')).toEqual([
      [
        'faq',
        [
          [dateAt(0).toISOString(), 1, 0, 1],
          [dateAt(2 * HOUR).toISOString(), 1, 1, 1],
        ],
      ],
    ]);
    expect(await points('service=svc-b')).toEqual([
      ['faq', [[dateAt(HOUR).toISOString(), 1, 1, 0]]],
    ]);
    const totals = (await get(`${window}&service=test-service&cohort=faq`))
      .json<Timeseries>()
      .series.flatMap((series) => series.points)
      .reduce(
        (sum, p) => [sum[0]! + p.tasks, sum[1]! + p.successes, sum[2]! + p.fallbacks],
        [0, 0, 0],
      );
    expect(totals).toEqual([4, 3, 2]);
    expect(await points('policy=v9')).toEqual([]);
  });

  it('takes several cohorts or routes, comma-separated or repeated, as the report does', async () => {
    const pairs = async (query: string) =>
      (await get(`${window}&${query}`)).json<Timeseries>().series.map((s) => s.cohort);
    expect(await pairs('cohort=faq,policy')).toEqual(['faq', 'policy']);
    expect(await pairs('cohort=faq&cohort=policy')).toEqual(['faq', 'policy']);
    expect(await pairs('cohort=policy,nope')).toEqual(['policy']);
    expect(await pairs('route=small,large')).toEqual(['faq', 'policy']);
    expect(await pairs('cohort=faq,policy&route=large')).toEqual(['policy']);
  });

  it('sums buckets smaller than an hour to the same totals', async () => {
    const total = (body: Timeseries) =>
      body.series.flatMap((s) => s.points).reduce((n, p) => n + p.tasks, 0);
    const fine = (await get(`${window}&bucket=15m`)).json<Timeseries>();
    const day = (await get(`${window}&bucket=1d`)).json<Timeseries>();
    expect(total(fine)).toBe(6);
    expect(total(day)).toBe(6);
    expect(fine.series[0]!.points.length).toBe(5);
  });

  it.each([
    ['a bucket under a minute', `${window}&bucket=30s`, /bucket must be whole seconds from 1m/],
    ['a bucket that is no duration', `${window}&bucket=hourly`, /bucket: invalid duration/],
    ['too many buckets', `window=30d&bucket=1m`, /43201 buckets of 1m, more than 10000/],
    ['an unknown parameter', `${window}&colour=red`, /colour/],
    [
      'a window ending before it starts',
      `from=${dateAt(HOUR).toISOString()}&to=${dateAt(0).toISOString()}`,
      /from must be before to/,
    ],
  ])('answers 400 to %s', async (_name, query, message) => {
    const res = await get(query);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: { code: 'INVALID_ARGUMENT' } });
    expect(res.json().error.message).toMatch(message);
  });
});
