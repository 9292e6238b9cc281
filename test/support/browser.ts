import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { REPO_ROOT } from './child-process.js';

/**
 * Headless Chromium for the dashboard's browser tests: Debian's `chromium` package driven by
 * playwright-core (no browser download; `.ci/run` installs the package when it is missing).
 */
export const CHROMIUM = '/usr/bin/chromium';

/** Screenshots the browser tests save, for people to look at (gitignored). */
export const ARTIFACTS_DIR = join(REPO_ROOT, 'test-artifacts', 'dashboard');

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium), as .ci/run does`,
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/** Saves a full-page screenshot as test-artifacts/dashboard/<name>.png; returns its path. */
export async function saveScreenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** What a page did that a test should fail on: script errors and policy violations. */
export interface PageWatch {
  errors: string[];
  /** Every URL the page requested. */
  requests: string[];
  /** The Authorization header of each API request, by URL. */
  authorizations: { url: string; authorization: string | undefined }[];
}

export function watchPage(page: Page): PageWatch {
  const watch: PageWatch = { errors: [], requests: [], authorizations: [] };
  page.on('pageerror', (error) => watch.errors.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // A refused API call (401, 404) is logged by the browser as a failed resource: expected in
    // some tests, and said on the page. Anything else logged as an error is a defect.
    if (message.type() === 'error' && !/Failed to load resource/.test(message.text())) {
      watch.errors.push(`console: ${message.text()}`);
    }
  });
  page.on('request', (request) => {
    watch.requests.push(request.url());
    if (new URL(request.url()).pathname.includes('/api/')) {
      watch.authorizations.push({
        url: request.url(),
        authorization: request.headers()['authorization'],
      });
    }
  });
  return watch;
}
