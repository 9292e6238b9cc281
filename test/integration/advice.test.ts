import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdviceReport } from '../../analyzer/advice.js';
import { renderAdvice } from '../../analyzer/gate-table.js';
import { parseRules } from '../../analyzer/rules.js';
import { sendTasks, testApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';
import { openTempStore } from '../support/store.js';
import { seeded, stream } from '../support/tasks.js';

// Routing advice over the HTTP API on stored tasks: routes named after their models, weighed
// against the large route the rules name, and a cheap route that never succeeds.

const HOUR = 3_600_000;
const TO = Date.now() - 60_000;
const FROM = TO - 6 * HOUR;

let temp: Awaited<ReturnType<typeof openTempStore>>;
let rw: TestApp;

beforeAll(async () => {
  temp = await openTempStore();
  rw = await testApp(temp.store, { rules: parseRules('evaluation: { largeRoute: gpt-4o }') });
  const random = seeded(11);
  const window = { fromMs: FROM, toMs: TO };
  await sendTasks(rw, [
    ...stream(
      {
        cohort: 'billing',
        routes: ['gpt-4o-mini', 'gpt-4o'],
        tasks: 400,
        success: 0.9,
        fallback: 0.1,
        ...window,
      },
      random,
    ).map((t) => ({ ...t, callCostUsd: 0.0005 })),
    ...stream(
      { cohort: 'billing', routes: ['gpt-4o'], tasks: 300, success: 0.92, ...window },
      random,
    ).map((t) => ({ ...t, callCostUsd: 0.01 })),
    ...stream(
      { cohort: 'broken', routes: ['small'], tasks: 300, success: 0, ...window },
      random,
    ).map((t) => ({ ...t, callCostUsd: 0.001 })),
    // A large-first cohort with two eval runs of the small route: a good one twenty days ago,
    // and the latest, today, ten points under large.
    ...stream(
      { cohort: 'pooled', routes: ['gpt-4o'], tasks: 400, success: 0.9, ...window },
      random,
    ).map((t) => ({ ...t, callCostUsd: 0.01 })),
    ...stream(
      {
        cohort: 'pooled',
        routes: ['small'],
        tasks: 1000,
        success: 0.96,
        fromMs: TO - 20 * 24 * HOUR,
        toMs: TO - 20 * 24 * HOUR + HOUR,
      },
      random,
    ).map((t) => ({ ...t, callCostUsd: 0.001, evalRun: 'adv-old', evalDataset: 'golden@1' })),
    ...stream(
      { cohort: 'pooled', routes: ['small'], tasks: 300, success: 0.78, ...window },
      random,
    ).map((t) => ({ ...t, callCostUsd: 0.001, evalRun: 'adv-latest', evalDataset: 'golden@1' })),
    // Large-first cohorts where no route is named `small`: one with a passing eval run of the
    // cheap route `tiny`, one with no eval at all.
    ...stream(
      { cohort: 'legal', routes: ['gpt-4o'], tasks: 400, success: 0.85, ...window },
      random,
    ).map((t) => ({ ...t, callCostUsd: 0.01 })),
    ...stream(
      { cohort: 'legal', routes: ['tiny'], tasks: 400, success: 0.98, ...window },
      random,
    ).map((t) => ({ ...t, callCostUsd: 0.001, evalRun: 'legal-tiny', evalDataset: 'legal@1' })),
    ...stream(
      { cohort: 'archive', routes: ['gpt-4o'], tasks: 100, success: 0.9, ...window },
      random,
    ).map((t) => ({ ...t, callCostUsd: 0.01 })),
  ]);
});
afterAll(async () => {
  await rw?.close();
  await temp?.dispose();
});

async function advice(): Promise<AdviceReport> {
  const res = await rw.app.inject({ method: 'GET', url: '/api/v1/advice?window=24h' });
  expect(res.statusCode).toBe(200);
  return res.json() as AdviceReport;
}

describe('GET /api/v1/advice', () => {
  it('weighs a route named after its model against the large route the rules name', async () => {
    const billing = (await advice()).cohorts.find((c) => c.cohort === 'billing')!;
    // 400 and 300 tasks at about 90 % and 92 %: too few to show the cheap route holds.
    expect(billing.verdict).toBe('keep');
    expect(billing.small?.tasks).toBe(400);
    expect(billing.large?.tasks).toBe(300);
    expect(billing.reason).toMatch(
      /^not shown yet that the gpt-4o-mini route holds against gpt-4o: /,
    );
    // Named, so that the dashboard shows the verdict on that route's row.
    expect(billing.smallRoute).toBe('gpt-4o-mini');
  });

  it('judges a large-first cohort on its latest eval run of the small route, never on runs pooled', async () => {
    // Pooled, the old run (96 %) would carry the latest (78 %) to ~92 %: "try small".
    const pooled = (await advice()).cohorts.find((c) => c.cohort === 'pooled')!;
    expect(pooled.smallEvalRun).toBe('adv-latest');
    expect(pooled.smallEval?.tasks).toBe(300);
    expect(pooled.verdict).toBe('keep');
    expect(pooled.reason).toMatch(
      /^stay on gpt-4o: in eval run adv-latest the small route does not hold against it \(success rate -\d+\.\d pts \(95 % CI/,
    );
  });

  it('does not say a route that never succeeds holds', async () => {
    const broken = (await advice()).cohorts.find((c) => c.cohort === 'broken')!;
    expect(broken.verdict).toBe('keep');
    expect(broken.reason).toMatch(
      /^no gpt-4o traffic to compare the small route with \(0\.0 % success/,
    );
    expect(broken.reason).not.toMatch(/holds/);
  });

  it("weighs a large-first cohort's eval run of a cheap route not named small, and names the deployment's cheap route without one", async () => {
    const report = await advice();
    const legal = report.cohorts.find((c) => c.cohort === 'legal')!;
    expect(legal.smallRoute).toBe('tiny');
    expect(legal.smallEvalRun).toBe('legal-tiny');
    expect(legal.verdict).toBe('try small');
    expect(legal.reason).toMatch(/in eval run legal-tiny, the tiny route holds/);
    // No eval and no cheap traffic of its own: the route most of the other cohorts' production
    // tasks take first other than the large one (billing's gpt-4o-mini, 400, over broken's
    // small, 300), not a `small` the deployment may not have.
    const archive = report.cohorts.find((c) => c.cohort === 'archive')!;
    expect(archive.smallRoute).toBe('gpt-4o-mini');
  });
});

describe('a --cohort no production task has', () => {
  it('is named with the cohort it most likely means, not read as a cohort without traffic', async () => {
    const res = await rw.app.inject({
      method: 'GET',
      url: '/api/v1/advice?window=24h&cohort=biling,billing,nowhere',
    });
    expect(res.statusCode).toBe(200);
    const answer = res.json() as AdviceReport;
    expect(answer.cohorts.map((c) => c.cohort)).toEqual(['billing']);
    expect(answer.unmatched).toEqual([
      { filter: 'cohort', name: 'biling', suggestion: 'billing' },
      { filter: 'cohort', name: 'nowhere', suggestion: null },
    ]);
    const text = renderAdvice(answer);
    expect(text).toContain(
      '  No production task in this window has cohort "biling": did you mean "billing"?\n',
    );
    expect(text).toContain('  No production task in this window has cohort "nowhere".\n');
    // Every name found: nothing said.
    const all = await rw.app.inject({
      method: 'GET',
      url: '/api/v1/advice?window=24h&cohort=billing',
    });
    expect((all.json() as AdviceReport).unmatched).toBeUndefined();
  });
});
