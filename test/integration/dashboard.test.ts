import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defaultDashboardDir } from '../../analyzer/dashboard-routes.js';
import { runDemo } from '../../cli/demo.js';
import type { DemoResult } from '../../cli/demo.js';
import { pct, usd, utc } from '../../dashboard/format.js';
import { PALETTE } from '../../dashboard/palette.js';
import { EmbeddedStore } from '../../storage/embedded-store.js';
import { sendTasks, testApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';
import { craftAlertEndings } from '../support/alert-endings.js';
import { launchChromium, saveScreenshot, watchPage } from '../support/browser.js';
import { REPO_ROOT } from '../support/child-process.js';
import type { PageWatch } from '../support/browser.js';
import { DEMO } from '../support/demo-truth.js';
import { seeded, stream } from '../support/tasks.js';

// The dashboard in headless Chromium, on the demo's data: the demo's own run (runDemo: the
// example service through the real SDK and collector, with its before/after degradation and
// alerts) keeps its data directory, and the production app serves it over real HTTP, once
// without a token and once behind one. Screenshots go to test-artifacts/dashboard/.

/**
 * The little of the DOM the page callbacks (run in the browser) use: the test program is
 * type-checked without the DOM library, whose fetch types differ from Node's.
 */
interface PageElement {
  getAttribute(name: string): string | null;
  readonly innerText: string;
  /** The text of a folded element too (innerText is empty while a <details> is closed). */
  readonly textContent: string | null;
  readonly children: ArrayLike<PageElement>;
}
interface PageCanvas {
  readonly width: number;
  readonly height: number;
  getContext(kind: '2d'): {
    getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> };
  } | null;
}
declare const document: {
  readonly documentElement: { readonly dataset: Record<string, string | undefined> };
  querySelectorAll(selector: string): ArrayLike<PageElement>;
};

const TOKEN = 'dashboard-test-token-0123456789';
const dataDir = mkdtempSync(join(tmpdir(), 'routewatch-dashboard-'));
let demo: DemoResult;
let store: EmbeddedStore;
let open: TestApp;
let guarded: TestApp;
let openUrl: string;
let guardedUrl: string;
let browser: Browser;

async function listen(app: TestApp): Promise<string> {
  return app.app.listen({ host: '127.0.0.1', port: 0 });
}

beforeAll(async () => {
  // The page is a build output (npm run build, which npm test runs first): say so at once rather
  // than wait for a page that cannot load.
  if (defaultDashboardDir() === undefined)
    throw new Error('the dashboard is not built: run `npm run build` (npm test does it first)');
  demo = await runDemo({ ...DEMO, dataDir, out: () => undefined });
  // The demo has closed its store: the same directory, opened again as `routewatch start` would.
  store = await EmbeddedStore.open(dataDir);
  open = await testApp(store);
  guarded = await testApp(store, { config: { ROUTEWATCH_TOKEN: TOKEN } });
  openUrl = await listen(open);
  guardedUrl = await listen(guarded);
  browser = await launchChromium();
}, 120_000);

/**
 * Waits for a clean-up step, but not for ever: once every test has passed, a browser that is slow
 * to exit (seen once on Node 24 under load) must not fail the file. What is left behind goes with
 * the test process.
 */
async function bounded(step: Promise<unknown> | undefined, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      process.stderr.write(`dashboard test: ${what} did not finish within 20 s; going on\n`);
      resolve();
    }, 20_000);
  });
  await Promise.race([step, late]);
  clearTimeout(timer);
}

afterAll(async () => {
  await bounded(browser?.close(), 'closing Chromium');
  await bounded(open?.close(), 'closing the open app');
  await bounded(guarded?.close(), 'closing the app behind the token');
  await store?.close();
  rmSync(dataDir, { recursive: true, force: true });
}, 120_000);

let context: BrowserContext | undefined;
afterEach(async () => {
  await context?.close();
  context = undefined;
});

/** A fresh browser profile (its own sessionStorage) and a page watched for errors. */
async function newPage(): Promise<{ page: Page; watch: PageWatch }> {
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  return { page, watch: watchPage(page) };
}

type PageState = 'ready' | 'token' | 'failed';
async function settled(page: Page, state: PageState = 'ready'): Promise<void> {
  await page.waitForSelector(`html[data-state="${state}"]`, { state: 'attached' });
}

interface TableRow {
  cohort: string;
  route: string;
  cells: string[];
}

async function routeRows(page: Page): Promise<TableRow[]> {
  return page.$$eval('#routes-table tbody tr', (rows: PageElement[]) =>
    rows.map((row) => ({
      cohort: row.getAttribute('data-cohort') ?? '',
      route: row.getAttribute('data-route') ?? '',
      cells: Array.from(row.children).map((cell) => cell.innerText.trim()),
    })),
  );
}

const overallTasks = (page: Page) =>
  page.$eval('#routes-table tfoot tr[data-overall] td', (cell: PageElement) => cell.innerText);

/** The demo's own report, as the table should show it. */
function expectedRows(filter: (row: DemoResult['report']['rows'][number]) => boolean = () => true) {
  return demo.report.rows
    .filter(filter)
    .map((r) => `${r.cohort} × ${r.primaryRoute}: ${r.tasks.toLocaleString('en')} tasks`)
    .sort();
}
const shownRows = (rows: TableRow[]) =>
  rows.map((r) => `${r.cohort} × ${r.route}: ${r.cells[2]} tasks`).sort();

describe('the dashboard', () => {
  it("renders the demo's data: every cohort × route with its figures, the trends' sections, alerts and advice", async () => {
    const { page, watch } = await newPage();
    await page.goto(`${openUrl}/?window=1h`);
    await settled(page);

    const rows = await routeRows(page);
    expect(shownRows(rows)).toEqual(expectedRows());
    for (const row of demo.report.rows) {
      const shown = rows.find((r) => r.cohort === row.cohort && r.route === row.primaryRoute)!;
      // Cost per success, success rate (with its interval below it), fallback rate.
      expect(shown.cells[3]).toContain(usd(row.costPerSuccessfulTask));
      expect(shown.cells[4]).toContain(pct(row.successRate));
      // The fallback rate, with the SDK's hidden retries under it when there are any.
      expect(shown.cells[5]).toBe(
        row.retryRate
          ? `${pct(row.fallbackRate)}\nSDK retries ${pct(row.retryRate)}`
          : pct(row.fallbackRate),
      );
    }
    expect(await overallTasks(page)).toBe(demo.truth.totals.tasks.toLocaleString('en'));
    // The demo's simulated rate limits are retried by the SDK: some row says so.
    expect(rows.some((r) => r.cells[5]!.includes('SDK retries'))).toBe(true);

    // The degraded cohort × route carries the alert the demo raised; no other row does.
    const alerted = rows.filter((r) => /pending|firing/.test(r.cells[8]!));
    expect(alerted.map((r) => `${r.cohort} × ${r.route}`)).toEqual(['extraction × small']);
    expect(await page.locator('#alerts-table tbody tr[data-cohort="extraction"]').count()).toBe(
      await page.locator('#alerts-table tbody tr').count(),
    );
    expect(await page.locator('#alert-history li').count()).toBeGreaterThan(0);

    // Failure concentration: one row per cohort × route that failed; advice: one per cohort.
    const failed = demo.report.rows.filter((r) => r.failures > 0).length;
    expect(await page.locator('#concentration-table tbody tr').count()).toBe(failed);
    const cohorts = new Set(demo.report.rows.map((r) => r.cohort));
    expect(await page.locator('#advice-table tbody tr').count()).toBe(cohorts.size);

    await saveScreenshot(page, 'demo');
    expect(watch.errors).toEqual([]);
    // Offline by construction: nothing but this routewatch was asked for anything.
    expect(watch.requests.filter((url) => !url.startsWith(openUrl))).toEqual([]);
  });

  it('changes the table and the address when a filter is applied, and back', async () => {
    const { page, watch } = await newPage();
    await page.goto(`${openUrl}/?window=1h`);
    await settled(page);
    expect(await routeRows(page)).toHaveLength(demo.report.rows.length);

    await page.fill('#f-cohort', 'extraction');
    await page.click('#filters button[type="submit"]');
    await page.waitForFunction(() => {
      const rows = Array.from(document.querySelectorAll('#routes-table tbody tr'));
      return (
        document.documentElement.dataset['state'] === 'ready' &&
        rows.length > 0 &&
        rows.every((r) => r.getAttribute('data-cohort') === 'extraction')
      );
    });
    expect(new URL(page.url()).searchParams.get('cohort')).toBe('extraction');
    expect(new URL(page.url()).searchParams.get('window')).toBe('1h');
    expect(shownRows(await routeRows(page))).toEqual(
      expectedRows((r) => r.cohort === 'extraction'),
    );
    const extractionTasks = demo.report.rows
      .filter((r) => r.cohort === 'extraction')
      .reduce((n, r) => n + r.tasks, 0);
    expect(await overallTasks(page)).toBe(extractionTasks.toLocaleString('en'));
    await saveScreenshot(page, 'filtered');

    // The address is the view: opened afresh, it shows the same rows.
    const shared = page.url();
    const { page: other } = await newPageInSameContext();
    await other.goto(shared);
    await settled(other);
    expect(shownRows(await routeRows(other))).toEqual(
      expectedRows((r) => r.cohort === 'extraction'),
    );

    await page.goBack();
    await page.waitForFunction(
      (count) => document.querySelectorAll('#routes-table tbody tr').length === count,
      demo.report.rows.length,
    );
    expect(new URL(page.url()).searchParams.get('cohort')).toBeNull();
    expect(watch.errors).toEqual([]);
  });

  it('draws the trends: a chart has points', async () => {
    const { page, watch } = await newPage();
    await page.goto(`${openUrl}/?window=1h&bucket=1m`);
    await settled(page);
    const response = await fetch(`${openUrl}/api/v1/timeseries?window=1h&bucket=1m`);
    expect(response.status, 'GET /api/v1/timeseries answers (the charts read it)').toBe(200);
    const series = (await response.json()) as {
      series: { primaryRoute: string; points: { bucketStart: string; successes: number }[] }[];
    };
    // One point per route and bucket with a success, as the API counts them.
    const expected = new Set(
      series.series.flatMap((s) =>
        s.points.filter((p) => p.successes > 0).map((p) => `${s.primaryRoute} ${p.bucketStart}`),
      ),
    ).size;
    expect(expected).toBeGreaterThan(0);
    const cost = page.locator('figure#chart-cost');
    expect(Number(await cost.getAttribute('data-points'))).toBe(expected);
    expect(Number(await cost.getAttribute('data-lines'))).toBe(
      new Set(series.series.map((s) => s.primaryRoute)).size,
    );
    // Drawn, not only counted: the canvas holds pixels of the first line's colour.
    const painted = await page.$eval(
      'figure#chart-cost canvas',
      (c: PageCanvas, hex: string) => {
        const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
        let n = 0;
        for (let i = 0; i < data.length; i += 4) {
          const near =
            Math.abs(data[i]! - r!) < 12 &&
            Math.abs(data[i + 1]! - g!) < 12 &&
            Math.abs(data[i + 2]! - b!) < 12;
          if (near && data[i + 3]! > 200) n++;
        }
        return n;
      },
      PALETTE[0],
    );
    expect(painted).toBeGreaterThan(10);
    expect(
      Number(await page.locator('figure#chart-success').getAttribute('data-points')),
    ).toBeGreaterThan(0);
    expect(
      Number(await page.locator('figure#chart-fallback').getAttribute('data-lines')),
    ).toBeGreaterThan(0);
    await saveScreenshot(page, 'charts');
    expect(watch.errors).toEqual([]);
  });

  it('opens the view an alert message links to: its cohort × route, from the start of the evidence', async () => {
    const [event] = (await open.evaluator.alerts.history(100)).filter(
      (e) => e.kind === 'firing' || e.kind === 'pending',
    );
    expect(event).toBeDefined();
    const link = new URL(event!.message.url);
    expect(link.pathname).toBe('/');
    const { page, watch } = await newPage();
    await page.goto(`${openUrl}/${link.search}`);
    await settled(page);
    const rows = await routeRows(page);
    expect(rows.map((r) => `${r.cohort} × ${r.route}`)).toEqual([
      `${event!.cohort} × ${event!.route}`,
    ]);
    expect(await page.inputValue('#f-from')).toBe(link.searchParams.get('from'));
    expect(await page.locator('#alerts-table tbody tr').count()).toBeGreaterThan(0);
    await saveScreenshot(page, 'alert-link');
    expect(watch.errors).toEqual([]);
  });

  it('says so, never a blank page, when the window has no tasks, a filter matches nothing or the API refuses the query', async () => {
    const { page, watch } = await newPage();
    await page.goto(`${openUrl}/?from=2020-01-01&to=2020-01-02`);
    await settled(page);
    await expect(page.locator('#routes .notice-empty').innerText()).resolves.toMatch(
      /No tasks in this window/,
    );

    await page.goto(`${openUrl}/?window=1h&cohort=nope`);
    await settled(page);
    const empty = page.locator('#routes .notice-empty');
    await expect(empty.innerText()).resolves.toMatch(/No tasks match cohort nope/);
    await page.click('#routes a[data-action="clear-filters"]');
    await page.waitForFunction(
      (count) => document.querySelectorAll('#routes-table tbody tr').length === count,
      demo.report.rows.length,
    );

    await page.goto(`${openUrl}/?window=2x`);
    await settled(page);
    const error = await page.locator('#status .notice-error').innerText();
    expect(error).toMatch(/invalid duration "2x"/);
    await expect(page.locator('#routes .notice-error').innerText()).resolves.toMatch(
      /The report could not be loaded/,
    );
    await saveScreenshot(page, 'api-error');
    expect(watch.errors).toEqual([]);
  });
});

describe('the dashboard behind the token', () => {
  it('serves the page and its assets without the token, and they carry no data; the data stays behind it', async () => {
    const page = await fetch(`${guardedUrl}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    // The built file as it is, the same for everyone: no data in it.
    expect(await page.text()).toBe(
      readFileSync(join(REPO_ROOT, 'dist/dashboard/index.html'), 'utf8'),
    );
    expect(await page.text().catch(() => '')).not.toMatch(/extraction|agentic/);
    for (const asset of ['dashboard.js', 'dashboard.css']) {
      expect((await fetch(`${guardedUrl}/assets/${asset}`)).status).toBe(200);
    }
    for (const path of ['/api/v1/report?window=1h', '/api/v1/alerts', '/api/v1/advice']) {
      expect((await fetch(`${guardedUrl}${path}`)).status).toBe(401);
    }
    // Only the built files, whatever the path asks for.
    for (const path of [
      '/assets/..%2F..%2Fpackage.json',
      '/assets/../package.json',
      '/assets/nope.js',
    ]) {
      expect((await fetch(`${guardedUrl}${path}`)).status).not.toBe(200);
    }
  });

  it('asks for the token, says when it is wrong, and works once the right one is given', async () => {
    const { page, watch } = await newPage();
    await page.goto(`${guardedUrl}/?window=1h`);
    await settled(page, 'token');
    expect(await page.isVisible('#token-panel')).toBe(true);
    expect(await page.isVisible('#content')).toBe(false);

    await page.fill('#token-input', 'wrong-token-wrong-token-0000');
    await page.click('#token-form button[type="submit"]');
    await page.waitForSelector('#token-message .notice-error');
    await expect(page.locator('#token-message').innerText()).resolves.toMatch(/refused this token/);
    await settled(page, 'token');
    await saveScreenshot(page, 'token-refused');

    await page.fill('#token-input', TOKEN);
    await page.click('#token-form button[type="submit"]');
    await settled(page);
    expect(shownRows(await routeRows(page))).toEqual(expectedRows());
    expect(await page.isVisible('#token-panel')).toBe(false);

    // Kept for the tab: a reload needs no token again; every data request carried it.
    await page.reload();
    await settled(page);
    expect(await routeRows(page)).toHaveLength(demo.report.rows.length);
    const sent = watch.authorizations.filter((a) => a.authorization === `Bearer ${TOKEN}`);
    expect(sent.length).toBeGreaterThan(0);
    expect(
      watch.authorizations.every(
        (a) => a.authorization === undefined || a.authorization.startsWith('Bearer '),
      ),
    ).toBe(true);
    await saveScreenshot(page, 'token-accepted');
    expect(watch.errors).toEqual([]);
  });

  it('takes a token with + from a fragment, one given to an open tab, and refuses one no header can carry', async () => {
    const plusToken = 'dash+board+token+0123456789';
    const plus = await testApp(store, { config: { ROUTEWATCH_TOKEN: plusToken } });
    const plusUrl = await listen(plus);
    try {
      const { page, watch } = await newPage();
      await page.goto(`${plusUrl}/?window=1h#token=${plusToken}`);
      await settled(page);
      expect(watch.authorizations.some((a) => a.authorization === `Bearer ${plusToken}`)).toBe(
        true,
      );

      // A #token= link opened in a tab already on the dashboard, asking for the token.
      await page.click('#forget-token');
      await settled(page, 'token');
      await page.evaluate((token: string) => {
        (globalThis as unknown as { location: { hash: string } }).location.hash =
          `token=${encodeURIComponent(token)}`;
      }, plusToken);
      await settled(page);
      expect(page.url()).not.toContain('token=');

      // Pasted with a character a header cannot carry: said, and the form stays.
      await page.click('#forget-token');
      await settled(page, 'token');
      await page.fill('#token-input', 'jeton-à-coller-0123456789');
      await page.click('#token-form button[type="submit"]');
      await page.waitForSelector('#token-message .notice-error');
      await expect(page.locator('#token-message').innerText()).resolves.toMatch(
        /printable ASCII without spaces/,
      );
      expect(await page.isVisible('#token-panel')).toBe(true);
      expect(watch.errors).toEqual([]);
    } finally {
      await plus.close();
    }
  });

  it('takes the token from a #token= fragment, which it removes from the address', async () => {
    const { page, watch } = await newPage();
    await page.goto(`${guardedUrl}/?window=1h#token=${TOKEN}`);
    await settled(page);
    expect(await routeRows(page)).toHaveLength(demo.report.rows.length);
    expect(page.url()).not.toContain(TOKEN);
    expect(new URL(page.url()).searchParams.get('window')).toBe('1h');
    // Forgotten on request: the next load asks again.
    await page.click('#forget-token');
    await settled(page, 'token');
    expect(watch.errors).toEqual([]);
  });
});

// Last: it adds alerts (and, before the last hour, traffic) the tests above do not expect.
describe('the dashboard on alerts with no verdict', () => {
  it('shows a held alert as firing with no verdict since its hold began, and one closed without a verdict as closed, not resolved', async () => {
    // Before the last hour, which the tests above look at.
    const { heldSince } = await craftAlertEndings(open, Date.now() - 3 * 3_600_000);
    // The held alert's cohort is silenced: said beside its state.
    const silencedUntil = Date.now() + 3_600_000;
    await open.evaluator.alerts.saveSilence({
      id: 'quiet-held',
      cohort: 'held',
      route: '',
      ruleId: '',
      startsAt: Date.now() - 60_000,
      endsAt: silencedUntil,
      comment: 'test',
      createdAt: Date.now() - 60_000,
    });
    const silenced = `silenced until ${utc(new Date(silencedUntil).toISOString())}`;
    const { page, watch } = await newPage();
    await page.goto(`${openUrl}/?window=7d`);
    await settled(page);
    const noVerdict = `no verdict since ${utc(new Date(heldSince).toISOString())}`;

    // The alert cell of each cohort × route, and the classes of its badges.
    const cells = await page.$$eval(
      '#routes-table tbody tr[data-route="small"]',
      (rows: PageElement[]) =>
        rows.map((row) => {
          const cell = row.children[8]!;
          const badges = Array.from(cell.children).filter((c) =>
            (c.getAttribute('class') ?? '').includes('badge'),
          );
          return {
            cohort: row.getAttribute('data-cohort'),
            text: cell.innerText.trim(),
            badges: badges.map((b) => b.getAttribute('class')),
          };
        }),
    );
    const cell = (cohort: string) => cells.find((c) => c.cohort === cohort);
    expect(cell('held')).toMatchObject({ text: `firing ${noVerdict} ${silenced} ending_drop` });
    expect(cell('held-too-long')).toEqual({
      cohort: 'held-too-long',
      text: 'closed',
      badges: ['badge badge-closed'],
    });
    expect(cell('rule-removed')).toMatchObject({ text: 'closed', badges: ['badge badge-closed'] });
    expect(cell('recovered')).toMatchObject({
      text: 'resolved',
      badges: ['badge badge-resolved'],
    });

    // The alerts table: the state column says the same.
    const states = await page.$$eval('#alerts-table tbody tr', (rows: PageElement[]) =>
      rows.map((row) => ({
        cohort: row.getAttribute('data-cohort'),
        state: row.children[0]!.innerText.trim(),
        badge: row.children[0]!.children[0]!.getAttribute('class'),
      })),
    );
    const state = (cohort: string) => states.find((s) => s.cohort === cohort);
    expect(state('held')).toEqual({
      cohort: 'held',
      state: `firing ${noVerdict} ${silenced}`,
      badge: 'badge badge-firing',
    });
    // Its evidence: what it fired on, then why it cannot be judged now.
    const evidence = await page
      .locator('#alerts-table tbody tr[data-cohort="held"] td')
      .nth(5)
      .innerText();
    expect(evidence).toMatch(/^held × small: success rate .*\nno verdict now: /);
    expect(state('held-too-long')).toMatchObject({ state: 'closed', badge: 'badge badge-closed' });
    expect(state('rule-removed')).toMatchObject({ state: 'closed', badge: 'badge badge-closed' });
    expect(state('recovered')).toMatchObject({ state: 'resolved', badge: 'badge badge-resolved' });

    // The history: a closing transition is 'closed', a recovery 'resolved'.
    const resolved = await page.$$eval(
      '#alert-history li[data-kind="resolved"]',
      (items: PageElement[]) =>
        items.map((item) => ({
          text: item.innerText,
          badge: Array.from(item.children)
            .map((c) => c.getAttribute('class') ?? '')
            .find((c) => c.includes('badge')),
        })),
    );
    const closing = (cohort: string) => resolved.find((e) => e.text.includes(`${cohort} · small`));
    expect(closing('held-too-long')).toMatchObject({ badge: 'badge badge-closed' });
    expect(closing('held-too-long')!.text).toMatch(
      / closed Closed without a verdict: held-too-long/,
    );
    expect(closing('rule-removed')).toMatchObject({ badge: 'badge badge-closed' });
    expect(closing('recovered')).toMatchObject({ badge: 'badge badge-resolved' });
    expect(closing('recovered')!.text).toMatch(/ resolved Resolved: recovered · small/);

    // What the last evaluation could not judge at all is said, folded, with why: `recovered`,
    // resolved, then short of data since (its evidence spent).
    const unjudged = await page.$$eval('#alerts-unjudged li', (items: PageElement[]) =>
      items.map((item) => ({ cohort: item.getAttribute('data-cohort'), text: item.textContent })),
    );
    expect(unjudged).toContainEqual({
      cohort: 'recovered',
      text: expect.stringMatching(
        /^recovered × small: no window of at least \d+ since the last alert resolved/,
      ),
    });
    await expect(page.locator('#alerts-unjudged summary').innerText()).resolves.toMatch(
      /^\d+ cohort × routes? not judged by any rule: too little data$/,
    );

    // The silences in force or to come are listed, one set ahead and one matching nothing too.
    await open.evaluator.alerts.saveSilence({
      id: 'ahead-nowhere',
      cohort: 'no-such-cohort',
      route: '',
      ruleId: '',
      startsAt: Date.now() + 3_600_000,
      endsAt: Date.now() + 7_200_000,
      comment: 'migration tonight',
      createdAt: Date.now(),
    });
    // The alerts caption counts each state.
    const caption = await page.locator('#alerts-table caption').innerText();
    const shownStates = states.map((s) => s.state.split(' ')[0]);
    const firing = shownStates.filter((s) => s === 'firing').length;
    expect(caption).toContain(`${firing} firing`);
    await page.reload();
    await settled(page);
    const silences = await page.$$eval('#silences-table tbody tr', (rows: PageElement[]) =>
      rows.map((row) => ({ id: row.getAttribute('data-silence'), text: row.innerText })),
    );
    expect(silences.map((r) => r.id).sort()).toEqual(['ahead-nowhere', 'quiet-held']);
    expect(silences.find((r) => r.id === 'ahead-nowhere')!.text).toMatch(
      /no-such-cohort[\s\S]*\(to come\)[\s\S]*migration tonight/,
    );

    // A view of one cohort asks the API for that cohort's history: its transitions are listed
    // however many other cohorts' came after them.
    const asked: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/api/v1/alerts')) asked.push(r.url());
    });
    await page.goto(`${openUrl}/?window=7d&cohort=recovered`);
    await settled(page);
    expect(asked.some((u) => new URL(u).searchParams.get('cohort') === 'recovered')).toBe(true);
    const listed = await page.$$eval('#alert-history li', (items: PageElement[]) =>
      items.map((item) => item.innerText),
    );
    expect(listed.length).toBeGreaterThan(0);
    expect(listed.every((t) => t.includes('recovered · small'))).toBe(true);
    expect(await page.locator('#silences-table tbody tr').count()).toBe(0);

    await saveScreenshot(page, 'alerts-without-verdict');
    expect(watch.errors).toEqual([]);
  });
});

// After the others: it adds cohorts the tests above do not expect.
describe('the dashboard on names from hostile or right-to-left spans', () => {
  it('isolates names, offers them as the filter reads them, and takes an address with both from and window', async () => {
    const rlo = '\u202eevil';
    const hebrew = 'שאלות';
    const now = Date.now();
    const recent = { fromMs: now - 20 * 60_000, toMs: now - 60_000 };
    const random = seeded(5);
    await sendTasks(open, [
      ...stream({ cohort: 'a,b', routes: ['small'], tasks: 20, success: 0.9, ...recent }, random),
      ...stream({ cohort: rlo, routes: ['small'], tasks: 20, success: 0.9, ...recent }, random),
      ...stream({ cohort: hebrew, routes: ['small'], tasks: 20, success: 0.9, ...recent }, random),
      ...stream(
        { cohort: ' spaced ', routes: ['small'], tasks: 20, success: 0.9, ...recent },
        random,
      ),
      ...stream({ cohort: '', routes: ['small'], tasks: 20, success: 0.9, ...recent }, random),
      ...stream(
        { cohort: '(none)', routes: ['small'], tasks: 20, success: 0.9, ...recent },
        random,
      ),
      ...stream(
        {
          cohort: 'c'.repeat(200),
          routes: ['small', 'large'],
          tasks: 20,
          success: 0.9,
          fallback: 0.5,
          reasons: ['r'.repeat(200)],
          ...recent,
        },
        random,
      ),
    ]);
    await open.writer.flush();
    const { page, watch } = await newPage();
    await page.goto(`${openUrl}/?window=1h`);
    await settled(page);
    const isolated = await page.$$eval('#routes-table tbody tr bdi', (cells: PageElement[]) =>
      cells.map((cell) => cell.innerText),
    );
    expect(isolated).toEqual(expect.arrayContaining([rlo, hebrew, 'a,b', 'small']));
    // Tasks without a cohort read apart from a cohort named "(none)".
    const classOf = (cohort: string) =>
      page.$eval(`#routes-table tbody tr[data-cohort="${cohort}"] th bdi`, (cell: PageElement) => [
        cell.getAttribute('class'),
        cell.textContent,
      ]);
    expect(await classOf('')).toEqual(['name none', '(none)']);
    expect(await classOf('(none)')).toEqual(['name', '(none)']);
    // The suggestions hold names as the filter field reads them: a comma written \,.
    const options = await page.$$eval('#cohort-options option', (items: PageElement[]) =>
      items.map((item) => item.getAttribute('value')),
    );
    expect(options).toContain('a\\,b');
    expect(options).not.toContain('a,b');
    // A 200-character name and reason do not widen the page past the window.
    const widths = await page.evaluate(() => {
      const root = (
        globalThis as unknown as {
          document: { documentElement: { scrollWidth: number; clientWidth: number } };
        }
      ).document.documentElement;
      return { scroll: root.scrollWidth, client: root.clientWidth };
    });
    expect(widths.scroll).toBeLessThanOrEqual(widths.client);

    // A name with spaces at its ends: its link opens that cohort, spaces and all.
    await page.click('#routes-table tbody tr[data-cohort=" spaced "] th a');
    await page.waitForFunction(
      () => document.querySelectorAll('#routes-table tbody tr').length === 1,
    );
    expect((await routeRows(page)).map((r) => r.cohort)).toEqual([' spaced ']);
    expect(new URL(page.url()).searchParams.get('cohort')).toBe('\\ spaced\\ ');

    // from and window both in the address: the start wins, as in the form; every section draws.
    const from = new Date(now - 3_600_000).toISOString();
    await page.goto(`${openUrl}/?from=${from}&window=7d`);
    await settled(page);
    expect(await page.$$('#status .notice-error')).toHaveLength(0);
    expect(await page.$$('#routes-table tbody tr')).not.toHaveLength(0);
    expect(watch.errors).toEqual([]);
  });

  it('marks a cost built on unpriced model calls as a floor, and as unknown when none was priced', async () => {
    const now = Date.now();
    const recent = { fromMs: now - 20 * 60_000, toMs: now - 60_000 };
    const random = seeded(6);
    const spec = { routes: ['small'], tasks: 20, success: 0.9, fallback: 0, ...recent };
    await sendTasks(open, [
      ...stream(
        { ...spec, cohort: 'priced-some', extra: (i) => ({ unpriced: i % 4 === 0 }) },
        random,
      ),
      ...stream({ ...spec, cohort: 'priced-none', extra: () => ({ unpriced: true }) }, random),
    ]);
    await open.writer.flush();
    const { page, watch } = await newPage();
    await page.goto(`${openUrl}/?window=1h&cohort=priced-some,priced-none`);
    await settled(page);
    const rows = await routeRows(page);
    const cost = (cohort: string) => rows.find((r) => r.cohort === cohort)!.cells[3]!;
    expect(cost('priced-some')).toMatch(/^≥\$/);
    // The interval under a floor is the priced calls', said so: not a range for the true cost.
    expect(cost('priced-some')).toMatch(/\npriced calls \$[\d.]+–\$[\d.]+$/);
    expect(cost('priced-none')).toBe('unknown');
    await expect(
      page.locator('#routes-table tbody tr[data-cohort="priced-some"] .cost').getAttribute('title'),
    ).resolves.toMatch(/^75\.0 % of the model calls priced/);
    expect(watch.errors).toEqual([]);
  });

  it('marks a row whose tasks no model call joined: $0 that may be a task split from its calls', async () => {
    const now = Date.now();
    const recent = { fromMs: now - 20 * 60_000, toMs: now - 60_000 };
    const random = seeded(8);
    const spec = { routes: ['small'], tasks: 20, success: 0.9, fallback: 0, ...recent };
    await sendTasks(open, [
      // The task and attempt spans only, as when the calls do not carry the task's id.
      ...stream({ ...spec, cohort: 'split', extra: () => ({ callsPerAttempt: 0 }) }, random),
      ...stream({ ...spec, cohort: 'joined' }, random),
    ]);
    await open.writer.flush();
    const { page, watch } = await newPage();
    await page.goto(`${openUrl}/?window=1h&cohort=split,joined`);
    await settled(page);
    const rows = await routeRows(page);
    const cost = (cohort: string) => rows.find((r) => r.cohort === cohort)!.cells[3]!;
    expect(cost('split')).toBe(`${usd(0)}\nno model call`);
    expect(cost('joined')).toMatch(/^\$[\d.]+\n\$[\d.]+–\$[\d.]+$/);
    expect(cost('joined')).not.toMatch(/no model call/);
    await expect(
      page.locator('#routes-table tbody tr[data-cohort="split"] .cost').getAttribute('title'),
    ).resolves.toMatch(/^No model call joined these tasks, so their cost reads \$0/);
    await expect(
      page.locator('#routes-table tbody tr[data-cohort="joined"] .cost').getAttribute('title'),
    ).resolves.toBeNull();
    expect(watch.errors).toEqual([]);
  });
});

describe('the dashboard when the API misbehaves', () => {
  it('fails only the sections of an answer of the wrong shape, and says so when a request hangs', async () => {
    const { page, watch } = await newPage();
    // A proxy (or another version) answers 200 with a body the page does not know.
    await page.route('**/api/v1/report?*', (route) =>
      route.fulfill({ status: 200, contentType: 'application/json', body: '{}' }),
    );
    await page.goto(`${openUrl}/?window=24h`);
    await settled(page);
    await expect(page.locator('#routes .notice-error').innerText()).resolves.toMatch(
      /could not be drawn/,
    );
    // The sections of the other answers draw.
    expect(await page.$$('#alerts table')).not.toHaveLength(0);
    await page.unroute('**/api/v1/report?*');
    // Rows without names (another version's answer): its sections fail, the page stands.
    await page.route('**/api/v1/report?*', (route) =>
      route.fulfill({
        status: 200,
        contentType: 'application/json',
        body: '{"rows":[{"tasks":1}]}',
      }),
    );
    await page.goto(`${openUrl}/?window=24h`);
    await settled(page);
    expect(await page.$$('#alerts table')).not.toHaveLength(0);
    await page.unroute('**/api/v1/report?*');

    // A request that never ends: after the page's time limit its section says so.
    await page.clock.install();
    await page.route('**/api/v1/timeseries?*', () => undefined);
    const hung = page.waitForRequest('**/api/v1/timeseries?*');
    const answered = ['report', 'alerts', 'advice'].map((path) =>
      page.waitForResponse(`**/api/v1/${path}?*`),
    );
    await page.goto(`${openUrl}/?window=24h`);
    await Promise.all([hung, ...answered]);
    expect(await page.getAttribute('html', 'data-state')).toBe('loading');
    await page.clock.fastForward(31_000);
    await settled(page);
    await expect(page.locator('#trends .notice-error').innerText()).resolves.toMatch(
      /did not answer api\/v1\/timeseries within 30 s/,
    );
    expect(await page.$$('#routes-table tbody tr')).not.toHaveLength(0);
    expect(watch.errors).toEqual([]);
  });

  it('says where the alerts go and what was given up, and that none go anywhere without a channel', async () => {
    const { page, watch } = await newPage();
    await page.goto(`${openUrl}/?window=24h`);
    await settled(page);
    // This instance has no channel.
    await expect(page.locator('#alert-delivery').innerText()).resolves.toBe(
      'No alert channel is configured (ROUTEWATCH_SLACK_WEBHOOK_URL, ROUTEWATCH_WEBHOOK_URL): alerts are shown here and by routewatch alerts only.',
    );
    // One with Slack failing since 06:31, the webhook well, and pages refused in the last week
    // (review ops #8: lost pages were said nowhere after a restart).
    await page.route('**/api/v1/alerts?*', async (route) => {
      const real = (await (await route.fetch()).json()) as Record<string, unknown>;
      const channel = {
        sent: 2,
        retries: 4,
        queued: 1,
        expired: 0,
        refused: 0,
        silenced: 0,
        unannounced: 0,
        lastError: 'HTTP 500: busy',
        lastErrorAt: '2026-12-07T06:31:00.000Z',
        lastSentAt: '2026-12-07T06:20:00.000Z',
        since: '2026-12-07T06:00:00.000Z',
      };
      await route.fulfill({
        json: {
          ...real,
          channels: {
            slack: channel,
            webhook: { ...channel, lastError: '', lastErrorAt: '', queued: 0 },
          },
          givenUp: [
            {
              channel: 'slack',
              status: 'refused',
              alerts: 5,
              latest: '2026-12-06T22:10:00.000Z',
            },
          ],
        },
      });
    });
    await page.goto(`${openUrl}/?window=24h`);
    await settled(page);
    const delivery = await page.locator('#alert-delivery').innerText();
    expect(delivery).toContain(
      'Sent to slack (2 sent, 1 queued since 2026-12-07 06:00 UTC, failing since 2026-12-07 06:31 UTC: HTTP 500: busy), webhook (2 sent, 0 queued since 2026-12-07 06:00 UTC). routewatch alerts --test sends each a test message.',
    );
    expect(delivery).toContain(
      'Given up in the last 7 days: slack 5 alerts refused by the endpoint (latest 2026-12-06 22:10 UTC).',
    );
    expect(watch.errors).toEqual([]);
  });

  it('moves within a view without asking the API again, and keeps the window list to the views seen', async () => {
    const { page, watch } = await newPage();
    await page.goto(`${openUrl}/?window=24h`);
    await settled(page);
    const asked: string[] = [];
    page.on('request', (request) => {
      if (request.url().includes('/api/')) asked.push(request.url());
    });
    await page.click('a[href="#alerts"]');
    await page.goBack();
    await page.goForward();
    expect(asked).toEqual([]);

    // An address's odd window is offered while it is the view's, and then dropped.
    const windows = () =>
      page.$$eval('#f-window option', (items: PageElement[]) =>
        items.map((item) => item.getAttribute('value')),
      );
    const show = async (search: string) => {
      await page.evaluate((query) => {
        const w = globalThis as unknown as {
          history: { pushState(a: null, b: string, url: string): void };
          dispatchEvent(event: unknown): void;
          PopStateEvent: new (type: string) => unknown;
        };
        w.history.pushState(null, '', query);
        w.dispatchEvent(new w.PopStateEvent('popstate'));
      }, search);
      await page.waitForFunction(
        (query) =>
          (globalThis as unknown as { location: { search: string } }).location.search === query &&
          document.documentElement.dataset['state'] === 'ready',
        search,
      );
    };
    await show('?window=5h');
    expect(await windows()).toContain('5h');
    await show('?window=7h');
    expect(await windows()).toContain('7h');
    expect(await windows()).not.toContain('5h');
    expect(asked.length).toBeGreaterThan(0);

    // A window with a `to` ends there: its option does not read "last hour".
    const chosen = () =>
      page.$eval('#f-window option:checked', (option: PageElement) => option.textContent);
    await show('?window=1h&to=2h');
    expect(await chosen()).toBe('1h up to “To”');
    await show('?window=1h');
    expect(await chosen()).toBe('last hour');

    // A start in From wins over the window: picking a window clears it, typing one clears the window.
    await page.fill('#f-from', '2h');
    expect(await page.inputValue('#f-window')).toBe('');
    await page.selectOption('#f-window', '6h');
    expect(await page.inputValue('#f-from')).toBe('');
    expect(watch.errors).toEqual([]);
  });
});

/** A second page in the current context (shares sessionStorage's origin, not its tab). */
async function newPageInSameContext(): Promise<{ page: Page }> {
  return { page: await context!.newPage() };
}

describe('the dashboard silencing an alert', () => {
  it('silences a firing alert from its row, says why it refused one without a reason, and ends it again', async () => {
    const { page, watch } = await newPage();
    // Behind the token: the page's writes carry it as its reads do.
    await page.goto(`${guardedUrl}/?window=7d#token=${TOKEN}`);
    await settled(page);
    const silencesNow = async () => {
      const res = await guarded.app.inject({
        method: 'GET',
        url: '/api/v1/silences',
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      expect(res.statusCode).toBe(200);
      return (
        res.json() as {
          silences: {
            id: string;
            cohort: string;
            route: string;
            rule: string;
            endsAt: string;
            comment: string;
          }[];
        }
      ).silences;
    };
    const before = (await silencesNow()).map((s) => s.id);

    // The demo's degraded extraction × small fires: its row offers a silence.
    const row = page
      .locator(
        '#alerts-table tbody tr[data-cohort="extraction"][data-route="small"][data-state="firing"]',
      )
      .first();
    const rule = await row.getAttribute('data-rule');
    expect(rule).toBeTruthy();
    const rowOfRule = `#alerts-table tbody tr[data-cohort="extraction"][data-route="small"][data-rule="${rule}"]`;
    await row.locator('details.silence summary').click();

    // Without a reason it is not sent: the row says what to give.
    await row.locator('button[type="submit"]').click();
    await expect(row.locator('.action-message .notice-error').innerText()).resolves.toBe(
      'Say why, and who: the silence is listed with it for the people who see it later.',
    );
    // One the server refuses (here a store that does not answer) says the server's reason, and
    // the button can be used again.
    await page.route('**/api/v1/silences', (route) =>
      route.fulfill({
        status: 503,
        contentType: 'application/json',
        body: '{"error":{"code":"STORE_UNAVAILABLE","message":"the store did not answer"}}',
      }),
    );
    await row.locator('input[name="comment"]').fill('dashboard test: looking into it');
    await row.locator('button[type="submit"]').click();
    await expect(row.locator('.action-message .notice-error').innerText()).resolves.toBe(
      'Not silenced: the store did not answer',
    );
    expect(await row.locator('button[type="submit"]').isEnabled()).toBe(true);
    await page.unroute('**/api/v1/silences');
    expect((await silencesNow()).map((s) => s.id)).toEqual(before);

    // With one, for an hour: saved for this cohort × route × rule, and the page shows it.
    await row.locator('select[name="for"]').selectOption('1h');
    const asked = Date.now();
    await row.locator('button[type="submit"]').click();
    await page.waitForSelector(`${rowOfRule} .silenced`);
    await settled(page);
    const added = (await silencesNow()).filter((s) => !before.includes(s.id));
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({
      cohort: 'extraction',
      route: 'small',
      rule,
      comment: 'dashboard test: looking into it',
    });
    const endsIn = Date.parse(added[0]!.endsAt) - asked;
    expect(endsIn).toBeGreaterThan(3_600_000 - 60_000);
    expect(endsIn).toBeLessThanOrEqual(3_600_000 + 60_000);
    expect(await page.locator(`${rowOfRule} details.silence`).count()).toBe(0);
    const listed = page.locator(`#silences-table tbody tr[data-silence="${added[0]!.id}"]`);
    await expect(listed.innerText()).resolves.toContain('dashboard test: looking into it');

    // Ended from its row: no longer in force, and the alert can be silenced again.
    await listed.locator('button').click();
    await page.waitForSelector(`#silences-table tbody tr[data-silence="${added[0]!.id}"]`, {
      state: 'detached',
    });
    await settled(page);
    expect((await silencesNow()).map((s) => s.id)).toEqual(before);
    expect(await page.locator(`${rowOfRule} .silenced`).count()).toBe(0);
    expect(await page.locator(`${rowOfRule} details.silence`).count()).toBe(1);
    await saveScreenshot(page, 'alerts-silence');
    expect(watch.errors).toEqual([]);
  });
});
