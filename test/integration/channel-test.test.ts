import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startInstance } from '../support/cli.js';
import type { StartedInstance } from '../support/cli.js';
import { startWebhookReceiver } from '../support/webhook-receiver.js';
import type { WebhookReceiver } from '../support/webhook-receiver.js';

// `routewatch alerts --test` (POST /api/v1/channels/test): a channel that does not take a message
// from here is found before the first incident, not during it (review ops #7: a wrong webhook URL
// printed "sent to the webhook" at start and failed only at the first alert).

let slack: WebhookReceiver;
let hook: WebhookReceiver;
let withChannels: StartedInstance;
let withNone: StartedInstance;
const dirs: string[] = [];

beforeAll(async () => {
  slack = await startWebhookReceiver();
  hook = await startWebhookReceiver();
  hook.fallback = { status: 500, body: 'upstream broke' };
  const dataDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'routewatch-channel-test-'));
    dirs.push(dir);
    return dir;
  };
  [withChannels, withNone] = await Promise.all([
    startInstance({
      ROUTEWATCH_DATA_DIR: dataDir(),
      ROUTEWATCH_EVALUATE_EVERY: '0',
      ROUTEWATCH_SLACK_WEBHOOK_URL: slack.url,
      ROUTEWATCH_WEBHOOK_URL: hook.url,
      ROUTEWATCH_PUBLIC_URL: 'https://routewatch.example',
    }),
    startInstance({ ROUTEWATCH_DATA_DIR: dataDir(), ROUTEWATCH_EVALUATE_EVERY: '0' }),
  ]);
}, 120_000);
afterAll(async () => {
  await withChannels?.stop();
  await withNone?.stop();
  await slack?.close();
  await hook?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('routewatch alerts --test', () => {
  it('sends each channel a test message and says how each answered, exit 1 when one did not take it', async () => {
    const run = await runCli(['alerts', '--test', '--url', withChannels.url]);
    expect(run.code, run.stderr).toBe(1);
    expect(run.stdout).toMatch(/^slack: took the test message \(HTTP 200, \d+ ms\)$/m);
    expect(run.stdout).toMatch(/^webhook: did not take it: HTTP 500: upstream broke \(\d+ ms\)$/m);
    // What each endpoint got: a message that names where it comes from, and is no alert.
    expect(slack.delivered()).toEqual([
      {
        text: expect.stringMatching(
          /^routewatch test message: alerts from https:\/\/routewatch\.example reach this channel/,
        ),
        blocks: [expect.objectContaining({ type: 'section' })],
      },
    ]);
    expect(hook.requests.map((r) => r.body)).toEqual([
      expect.objectContaining({ version: 1, status: 'test', url: 'https://routewatch.example' }),
    ]);
    // One test per 10 s: a loop must not post to the team's channel over and over.
    const soon = await runCli(['alerts', '--test', '--url', withChannels.url]);
    expect(soon.code).toBe(1);
    expect(soon.stderr).toMatch(
      /answered 429: a test message was sent less than 10 s ago: test again in \d+ s/,
    );
    expect(slack.requests).toHaveLength(1);
    // Once the webhook works, both take it, exit 0; --json says the same as data.
    hook.fallback = { status: 200, body: 'ok' };
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    const again = await runCli(['alerts', '--test', '--json', '--url', withChannels.url]);
    expect(again.code, again.stderr).toBe(0);
    const { channels } = JSON.parse(again.stdout) as {
      channels: { channel: string; ok: boolean; status: number; error: string }[];
    };
    expect(channels.map((c) => [c.channel, c.ok, c.status, c.error])).toEqual([
      ['slack', true, 200, ''],
      ['webhook', true, 200, ''],
    ]);
    // A test is not an alert: nothing queued or counted as sent.
    const alerts = await runCli(['alerts', '--json', '--url', withChannels.url]);
    const view = JSON.parse(alerts.stdout) as { channels: Record<string, { sent: number }> };
    expect(view.channels['slack']!.sent).toBe(0);
    expect(view.channels['webhook']!.sent).toBe(0);
  });

  it('is named in the start banner when a channel is configured, and not otherwise', () => {
    expect(withChannels.output()).toContain(
      `check the channels now: routewatch alerts --test --url ${withChannels.url}`,
    );
    expect(withNone.output()).not.toContain('alerts --test');
  });

  it('says what to set when no channel is configured', async () => {
    const run = await runCli(['alerts', '--test', '--url', withNone.url]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /answered 409: no alert channel is configured: set ROUTEWATCH_SLACK_WEBHOOK_URL or ROUTEWATCH_WEBHOOK_URL/,
    );
  });

  it('refuses --state beside --test', async () => {
    const run = await runCli(['alerts', '--test', '--state', 'all', '--url', withNone.url]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--test lists no alerts: leave out --state/);
  });
});
