import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AlertStore } from '../../analyzer/alert-store.js';
import type { AlertMessage } from '../../analyzer/message.js';
import { Notifier, webhookChannel } from '../../analyzer/notifier.js';
import type { NotifierLog } from '../../analyzer/notifier.js';
import type { Finding } from '../../analyzer/detectors.js';
import { openTempStore } from '../support/store.js';
import { startWebhookReceiver } from '../support/webhook-receiver.js';
import type { WebhookReceiver } from '../support/webhook-receiver.js';

// The notifier sends what a channel has not received, but not events older than its look-back
// (a week by default): after a long outage those are given up, and it says so. Nor does one
// message the endpoint refuses as it is hold up every message after it.

let temp: Awaited<ReturnType<typeof openTempStore>>;
let hook: WebhookReceiver;

beforeAll(async () => {
  temp = await openTempStore();
  hook = await startWebhookReceiver();
});
afterAll(async () => {
  await hook?.close();
  await temp?.dispose();
});

function event(cohort: string, at: number) {
  const finding = {
    ruleId: 'success_rate_drop',
    kind: 'success_rate_drop',
    cohort,
    route: 'small',
    detail: '',
    status: 'degraded',
    summary: `${cohort} degraded`,
  } as Finding;
  return {
    event: {
      fingerprint: cohort,
      incident: 1,
      seq: 1,
      kind: 'firing' as const,
      at,
      notify: true,
      finding,
    },
    message: {
      kind: 'firing',
      fingerprint: cohort,
      cohort,
      route: 'small',
      title: cohort,
      finding,
    } as AlertMessage,
  };
}

async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('the notifier look-back', () => {
  it('gives up the messages that grew older than it while undelivered, once, logged and counted', async () => {
    const alerts = new AlertStore(temp.store);
    const warnings: { details: object; message: string }[] = [];
    const log: NotifierLog = {
      info: () => undefined,
      warn: (details, message) => warnings.push({ details, message }),
      error: () => undefined,
    };
    const options = {
      channels: [webhookChannel(hook.url)],
      store: alerts,
      log,
      minIntervalMs: 0,
      pollMs: 100,
      lookbackMs: 1_000,
    };
    // The channel is registered, then the process stops before two events are sent.
    await alerts.channelSince('webhook');
    await alerts.saveEvents([event('alpha', Date.now()), event('beta', Date.now())]);
    await new Promise((resolve) => setTimeout(resolve, 1_300));

    const notifier = new Notifier(options);
    notifier.start();
    await until(() => notifier.stats()['webhook']!.expired === 2, 'two expired');
    const warned = warnings.filter((w) => /will not be sent/.test(w.message));
    expect(warned).toHaveLength(1);
    expect(warned[0]!.message).toMatch(
      /^2 alert message\(s\) were never delivered and are now older than 1 s/,
    );
    expect(warned[0]!.details).toMatchObject({ channel: 'webhook', expired: 2 });

    // A new event is sent; the expired ones are not, and are not reported again.
    await alerts.saveEvents([event('gamma', Date.now())]);
    notifier.kick();
    await until(() => hook.delivered().length === 1, 'the new event');
    await new Promise((resolve) => setTimeout(resolve, 400));
    await notifier.stop();
    expect(hook.delivered()).toMatchObject([{ cohort: 'gamma' }]);
    expect(notifier.stats()['webhook']).toMatchObject({ sent: 1, expired: 2 });

    // Another process later finds nothing more to expire.
    const next = new Notifier(options);
    next.start();
    await new Promise((resolve) => setTimeout(resolve, 400));
    await next.stop();
    expect(next.stats()['webhook']).toMatchObject({ sent: 0, expired: 0 });
    expect(warnings.filter((w) => /will not be sent/.test(w.message))).toHaveLength(1);
  });

  it('counts the messages waiting while a channel is down, those raised during the outage too', async () => {
    const down = await startWebhookReceiver();
    down.fallback = { status: 500, body: 'down' };
    const alerts = new AlertStore(temp.store);
    const notifier = new Notifier({
      channels: [{ ...webhookChannel(down.url), name: 'outage' }],
      store: alerts,
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
      minIntervalMs: 0,
      pollMs: 100,
      initialBackoffMs: 100,
      maxBackoffMs: 200,
      lookbackMs: 60_000,
    });
    try {
      await alerts.channelSince('outage');
      await alerts.saveEvents([event('delta', Date.now())]);
      notifier.start();
      await until(() => down.requests.length >= 2, 'failed attempts');
      expect(notifier.stats()['outage']).toMatchObject({ sent: 0, queued: 1 });

      // Raised while the first is still being retried: counted before it gets through.
      await alerts.saveEvents([event('epsilon', Date.now()), event('zeta', Date.now())]);
      await until(() => notifier.stats()['outage']!.queued === 3, 'three waiting');
      expect(down.delivered()).toHaveLength(0);

      down.fallback = { status: 200, body: 'ok' };
      await until(() => down.delivered().length === 3, 'the three, once the channel is back');
      // A delivery is counted, then recorded, and only then taken off the queue.
      await until(
        () => notifier.stats()['outage']!.sent === 3 && notifier.stats()['outage']!.queued === 0,
        'three sent and none waiting',
      );
    } finally {
      await notifier.stop();
      await down.close();
    }
  });

  it('gives up a message the endpoint refuses as it is, and delivers the ones after it', async () => {
    const picky = await startWebhookReceiver();
    // The first message is refused whatever is tried; 500s in between do not count as refusals.
    picky.script([
      { status: 400, body: 'invalid_payload' },
      { status: 500, body: 'busy' },
      { status: 400, body: 'invalid_payload' },
      { status: 400, body: 'invalid_payload' },
    ]);
    const alerts = new AlertStore(temp.store);
    const errors: { details: object; message: string }[] = [];
    const options = {
      channels: [{ ...webhookChannel(picky.url), name: 'picky' }],
      store: alerts,
      log: {
        info: () => undefined,
        warn: () => undefined,
        error: (details: object, message: string) => errors.push({ details, message }),
      },
      minIntervalMs: 0,
      pollMs: 100,
      initialBackoffMs: 50,
      maxBackoffMs: 100,
      lookbackMs: 60_000,
    };
    const notifier = new Notifier(options);
    try {
      await alerts.channelSince('picky');
      await alerts.saveEvents([event('a-refused', Date.now()), event('b-after', Date.now())]);
      notifier.start();
      await until(() => picky.delivered().length === 1, 'the message after the refused one');
      expect(picky.requests.map((r) => r.status)).toEqual([400, 500, 400, 400, 200]);
      expect(picky.delivered()).toMatchObject([{ cohort: 'b-after' }]);
      await until(() => notifier.stats()['picky']!.sent === 1, 'one sent');
      expect(notifier.stats()['picky']).toMatchObject({ refused: 1, sent: 1 });
      const refusal = errors.find((e) => /refused this alert message 3 times/.test(e.message));
      expect(refusal?.message).toMatch(/HTTP 400: invalid_payload.*given up/);
    } finally {
      await notifier.stop();
    }
    // Recorded: after a restart it is not tried again.
    const next = new Notifier(options);
    next.start();
    await new Promise((resolve) => setTimeout(resolve, 400));
    await next.stop();
    await picky.close();
    expect(picky.requests).toHaveLength(5);
    // And said from the store after the restart (review ops #8: the count lived in the process).
    expect(next.stats()['picky']).toMatchObject({ refused: 0 });
    const givenUp = await alerts.givenUp(Date.now() - 60_000);
    expect(givenUp.filter((g) => g.channel === 'picky')).toEqual([
      { channel: 'picky', status: 'refused', alerts: 1, latest: expect.any(Number) },
    ]);
    expect(Date.now() - givenUp.find((g) => g.channel === 'picky')!.latest).toBeLessThan(60_000);
    expect(await alerts.givenUp(Date.now() + 1_000)).toEqual([]);
  });

  it('keeps a message whose 400 is about the webhook, not the message (a mistyped Slack URL), until the URL works', async () => {
    const mistyped = await startWebhookReceiver();
    mistyped.script([
      { status: 400, body: 'no_team' },
      { status: 400, body: 'no_service_id' },
      { status: 400, body: 'no_team' },
      { status: 400, body: 'no_team' },
    ]);
    const alerts = new AlertStore(temp.store);
    const notifier = new Notifier({
      channels: [{ ...webhookChannel(mistyped.url), name: 'mistyped' }],
      store: alerts,
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
      minIntervalMs: 0,
      pollMs: 100,
      initialBackoffMs: 20,
      maxBackoffMs: 40,
      lookbackMs: 60_000,
    });
    try {
      await alerts.channelSince('mistyped');
      await alerts.saveEvents([event('kept-until-fixed', Date.now())]);
      notifier.start();
      await until(() => mistyped.delivered().length === 1, 'the message once the URL works');
      expect(mistyped.requests.map((r) => r.status)).toEqual([400, 400, 400, 400, 200]);
      expect(notifier.stats()['mistyped']).toMatchObject({ refused: 0, retries: 4 });
    } finally {
      await notifier.stop();
      await mistyped.close();
    }
  });

  it('gives up a message retried past the look-back, and goes on with the rest', async () => {
    const down = await startWebhookReceiver();
    down.fallback = { status: 503, body: 'down' };
    const alerts = new AlertStore(temp.store);
    const warnings: string[] = [];
    const notifier = new Notifier({
      channels: [{ ...webhookChannel(down.url), name: 'long-outage' }],
      store: alerts,
      log: { info: () => undefined, warn: (_, m) => warnings.push(m), error: () => undefined },
      minIntervalMs: 0,
      pollMs: 100,
      initialBackoffMs: 100,
      maxBackoffMs: 100,
      lookbackMs: 1_500,
    });
    try {
      await alerts.channelSince('long-outage');
      await alerts.saveEvents([event('stale', Date.now())]);
      notifier.start();
      await until(() => down.requests.length >= 2, 'failed attempts');
      await until(() => notifier.stats()['long-outage']!.expired === 1, 'the retried one expired');
      const tries = down.requests.length;
      await new Promise((resolve) => setTimeout(resolve, 400));
      // Not tried again once given up.
      expect(down.requests.length).toBe(tries);
      expect(warnings.some((w) => /^1 alert message\(s\) were never delivered/.test(w))).toBe(true);
      down.fallback = { status: 200, body: 'ok' };
      await alerts.saveEvents([event('fresh', Date.now())]);
      notifier.kick();
      await until(() => down.delivered().length === 1, 'the fresh one');
      expect(down.delivered()).toMatchObject([{ cohort: 'fresh' }]);
    } finally {
      await notifier.stop();
      await down.close();
    }
  });
});

describe('the notifier’s clock', () => {
  it('dates an event by this process’s clock, on which its look-back is measured, not the store’s', async () => {
    // A ClickHouse server two hours behind this host: the column's default dated the event by the
    // server, before the channel was registered here, and it was never sent.
    const alerts = new AlertStore(temp.store);
    const hostNow = Date.now() + 2 * 3_600_000;
    const clock = vi.spyOn(Date, 'now').mockReturnValue(hostNow);
    try {
      await alerts.saveEvents([event('skewed', hostNow)]);
    } finally {
      clock.mockRestore();
    }
    const unsent = await alerts.undelivered('skew-check', hostNow - 1_000, 3_600_000, hostNow);
    expect(unsent.map((e) => e.fingerprint)).toEqual(['skewed']);
  });
});

describe('a 429’s Retry-After across a restart', () => {
  it('waits the rest of the wait after a restart, says so to a test message, and forgets it once sent', async () => {
    const limited = await startWebhookReceiver();
    // An hour asked for: cut to the longest backoff (3 s here, 5 min by default).
    limited.script([{ status: 429, headers: { 'retry-after': '3600' }, body: 'slow down' }]);
    const alerts = new AlertStore(temp.store);
    const options = {
      channels: [{ ...webhookChannel(limited.url), name: 'ratelimited' }],
      store: alerts,
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
      minIntervalMs: 0,
      pollMs: 100,
      maxBackoffMs: 3_000,
      lookbackMs: 60_000,
    };
    const first = new Notifier(options);
    const next = new Notifier(options);
    try {
      await alerts.channelSince('ratelimited');
      await alerts.saveEvents([event('limited', Date.now())]);
      first.start();
      await until(() => limited.requests.length > 0, 'the first attempt');
      // The process stops during the wait the channel asked for (the wait is in the store).
      await until(
        () => first.stats()['ratelimited']!.retries === 1,
        'the 429 taken as one to retry',
      );
      const asked = limited.requests[0]!.at;
      await first.stop();
      const retryAt = await alerts.retryAt('ratelimited');
      expect(retryAt).toBeGreaterThanOrEqual(asked + 2_900);
      expect(retryAt).toBeLessThan(asked + 60_000);

      next.start();
      const [test] = await next.test({ url: 'http://127.0.0.1:1', at: new Date().toISOString() });
      expect(test).toMatchObject({ channel: 'ratelimited', ok: false, tried: false });
      expect(test!.error).toMatch(
        /^not tried: the channel answered 429 and asked to wait \d+ s more/,
      );
      // Other tests' events may follow it here: this one's tries are told by their body.
      const tries = () =>
        limited.requests.filter((r) => (r.body as { cohort?: string }).cohort === 'limited');
      await until(() => tries().some((r) => r.status === 200), 'the message after the wait');
      // One try after the 429, not before the time it named; the test message was not sent.
      expect(tries().map((r) => r.status)).toEqual([429, 200]);
      expect(tries()[1]!.at).toBeGreaterThanOrEqual(asked + 2_900);
      expect(limited.requests.every((r) => (r.body as { cohort?: string }).cohort)).toBe(true);
      // Sent: nothing asks the channel to wait any more.
      await until(() => next.stats()['ratelimited']!.queued === 0, 'recorded as sent');
      expect(await alerts.retryAt('ratelimited')).toBe(0);
    } finally {
      await first.stop();
      await next.stop();
      await limited.close();
    }
  });
});

/** A test message to one webhook channel at `url`, by a notifier of its own, and its answer. */
async function testMessageTo(url: string, name: string) {
  const notifier = new Notifier({
    channels: [{ ...webhookChannel(url), name }],
    store: new AlertStore(temp.store),
    log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    minIntervalMs: 0,
  });
  try {
    const [answer] = await notifier.test({
      url: 'http://127.0.0.1:1',
      at: new Date().toISOString(),
    });
    return answer!;
  } finally {
    await notifier.stop();
  }
}

describe('a channel that redirects', () => {
  it('is not followed: nothing reaches where it points, and the answer says where to point the URL', async () => {
    const target = await startWebhookReceiver();
    const redirecting = await startWebhookReceiver();
    redirecting.fallback = { status: 307, headers: { location: `${target.url}/elsewhere` } };
    try {
      const test = await testMessageTo(redirecting.url, 'redirecting');
      expect(test).toMatchObject({ channel: 'redirecting', ok: false, status: 307 });
      expect(test.error).toBe(
        `HTTP 307: the endpoint redirects to ${new URL(target.url).origin}, and alerts do not follow redirects: set the channel's URL to where it points`,
      );
      expect(redirecting.requests).toHaveLength(1);
      expect(target.requests).toHaveLength(0);
    } finally {
      await redirecting.close();
      await target.close();
    }
  });
});

/** `url` with credentials in it. */
function withCredentials(url: string, username: string, password: string): string {
  const parsed = new URL(url);
  parsed.username = username;
  parsed.password = password;
  return parsed.href;
}

describe('a channel URL with credentials', () => {
  it('sends them as Basic authorization, which fetch refuses in the URL itself', async () => {
    const guarded = await startWebhookReceiver();
    try {
      const test = await testMessageTo(
        withCredentials(guarded.url, 'alerts', 'p@ss:word'),
        'guarded',
      );
      expect(test).toMatchObject({ channel: 'guarded', ok: true, status: 200 });
      expect(guarded.requests[0]!.headers.authorization).toBe(
        `Basic ${Buffer.from('alerts:p@ss:word').toString('base64')}`,
      );
    } finally {
      await guarded.close();
    }
  });

  it('shows neither the credentials nor the secret path when the endpoint echoes them, and takes a % in the password as it is', async () => {
    const echo = await startWebhookReceiver();
    echo.answerBy = (_body, headers) => ({
      status: 400,
      // The password decoded from the headers, the path and the headers: all a careless
      // receiver shows.
      body: `bad request: ${Buffer.from(String(headers.authorization).slice(6), 'base64').toString()} ${new URL(echo.url).pathname} ${String(headers.authorization)}`,
    });
    try {
      const test = await testMessageTo(withCredentials(echo.url, 'alerts', 'S3C%RETPW'), 'echo');
      expect(test).toMatchObject({ channel: 'echo', ok: false, status: 400 });
      const basic = Buffer.from('alerts:S3C%RETPW').toString('base64');
      expect(echo.requests[0]!.headers.authorization).toBe(`Basic ${basic}`);
      expect(test.error).toMatch(/^HTTP 400: bad request: /);
      expect(test.error).not.toContain(basic);
      expect(test.error).not.toContain('S3C%RETPW');
      expect(test.error).not.toContain('/services/T000');
      expect(test.error).toContain('<redacted>');
    } finally {
      await echo.close();
    }
  });
});
