import { createServer } from 'node:http';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it, vi } from 'vitest';
import type { AlertStore, StoredEvent } from '../../analyzer/alert-store.js';
import type { AlertMessage } from '../../analyzer/message.js';
import { slackGroupMessage, titleOf } from '../../analyzer/message.js';
import { Notifier, slackChannel } from '../../analyzer/notifier.js';
import { sampleMessage } from '../support/alert-message.js';
import { storeUnreachable } from '../support/outage.js';

// The Slack group's notifier semantics, on a fake queue (found by review 34).

/** A warning on extraction × `route` with no costs or reasons, from the shared sample. */
function message(over: Partial<AlertMessage> = {}): AlertMessage {
  return sampleMessage({
    fingerprint: 'fp',
    severity: 'warning',
    title: titleOf(
      'firing',
      { kind: 'success_rate_drop' },
      'extraction',
      over.route ?? 'small',
      '',
    ),
    costs: [],
    failureReasons: [],
    fallbackReasons: [],
    url: 'https://routewatch.example/',
    ...over,
  });
}

const AT = Date.now() - 60_000;
function event(fingerprint: string, route: string, over: Partial<AlertMessage> = {}): StoredEvent {
  return {
    fingerprint,
    incident: 1,
    seq: 1,
    kind: 'firing',
    at: AT,
    notify: true,
    ruleId: over.ruleId ?? 'success_rate_drop',
    cohort: 'extraction',
    route,
    detail: '',
    message: message({ fingerprint, route, ...over }),
  };
}

/** The queue as the events table would answer it: what has no sent/refused/expired delivery. */
function fakeStore(events: StoredEvent[]) {
  const done = new Set<string>();
  const store = {
    channelSince: async () => 0,
    retryAt: async () => 0,
    expireUndelivered: async () => [],
    undelivered: async () => events.filter((e) => !done.has(e.fingerprint)),
    recordDeliveries: async (batch: StoredEvent[], _c: string, o: { status: string }) => {
      if (o.status !== 'failing') for (const e of batch) done.add(e.fingerprint);
    },
  };
  return store as unknown as AlertStore;
}

const quiet = { info() {}, warn() {}, error() {} };

/** A started notifier on one Slack channel, fast retries, over the fake queue of `events`. */
function startedNotifier(
  events: StoredEvent[],
  fetch: typeof globalThis.fetch,
  over: { requestTimeoutMs?: number; stopGraceMs?: number } = {},
): Notifier {
  const notifier = new Notifier({
    channels: [slackChannel('http://slack.test/x')],
    store: fakeStore(events),
    log: quiet,
    minIntervalMs: 0,
    initialBackoffMs: 1,
    maxBackoffMs: 2,
    pollMs: 10,
    fetch,
    ...over,
  });
  notifier.start();
  return notifier;
}

describe('Slack groups in the notifier', () => {
  it('counts the queue right after a refused group is split and one of its alerts is retried', async () => {
    // G1..G3: one cohort × route, one evaluation (a group); L1, L2: two other routes, after it.
    const events = [
      event('g1', 'small'),
      event('g2', 'small'),
      event('g3', 'small'),
      event('l1', 'large'),
      event('l2', 'medium'),
    ];
    let calls = 0;
    let blockedOnce = false;
    let releaseL1!: () => void;
    const l1InFlight = new Promise<void>((resolve) => (releaseL1 = resolve));
    let sawL1!: () => void;
    const l1Started = new Promise<void>((resolve) => (sawL1 = resolve));
    const fakeFetch = (async (_url: string, init: { body: string }) => {
      calls++;
      const body = JSON.parse(init.body) as { text: string };
      if (/3 alerts firing/.test(body.text))
        return new Response('invalid_payload', { status: 400 });
      if (calls === 5) return new Response('down', { status: 503 }); // G2's first try
      if (/extraction · large/.test(body.text) && !blockedOnce) {
        blockedOnce = true;
        sawL1();
        await l1InFlight;
      }
      return new Response('ok', { status: 200 });
    }) as unknown as typeof fetch;
    const notifier = startedNotifier(events, fakeFetch);
    await l1Started;
    // G1..G3 delivered (split), L1 in flight: L1 and L2 are waiting.
    const queued = notifier.stats().slack!.queued;
    releaseL1();
    await notifier.stop();
    expect(queued).toBe(2);
  });

  it('sends a message again after a timeout with the same Idempotency-Key, a new one with its own', async () => {
    // review round3 F2: a webhook answering after the request timeout got the message again with
    // nothing to tell it was the same one.
    const events = [event('t1', 'small'), event('t2', 'large')];
    const keys: string[] = [];
    let calls = 0;
    const fakeFetch = (async (_url: string, init: { headers: Record<string, string> }) => {
      calls++;
      keys.push(init.headers['idempotency-key']!);
      if (calls === 1)
        throw new DOMException('The operation was aborted due to timeout', 'TimeoutError');
      return new Response('ok', { status: 200 });
    }) as unknown as typeof fetch;
    const notifier = startedNotifier(events, fakeFetch);
    for (let i = 0; i < 200 && calls < 3; i++) await new Promise((r) => setTimeout(r, 10));
    await notifier.stop();
    expect(keys).toHaveLength(3);
    expect(keys[0]).toMatch(/^[0-9a-f]{32}$/);
    expect(keys[1]).toBe(keys[0]);
    expect(keys[2]).not.toBe(keys[0]);
  });

  it('times out a request that gets no answer, a garbage collection during it or not', async () => {
    // review ops #1: with AbortSignal.any([AbortSignal.timeout(10 s), …]) on Node 20, a garbage
    // collection during the request took the timeout signal, and a hung Slack blocked the channel
    // for undici's own 300 s. A real server that never answers, the real fetch, two forced GCs.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const attempts: number[] = [];
    const held: ServerResponse[] = [];
    const server = createServer((request, response) => {
      attempts.push(Date.now());
      request.resume();
      held.push(response);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const notifier = new Notifier({
      channels: [slackChannel(`http://127.0.0.1:${port}/hook`)],
      store: fakeStore([event('gc1', 'small')]),
      log: quiet,
      minIntervalMs: 0,
      initialBackoffMs: 1,
      maxBackoffMs: 2,
      pollMs: 10,
      requestTimeoutMs: 400,
    });
    try {
      notifier.start();
      await vi.waitFor(() => expect(attempts.length).toBeGreaterThanOrEqual(1), { timeout: 5_000 });
      gc();
      await new Promise((resolve) => setTimeout(resolve, 100));
      gc();
      // Timed out at 400 ms and sent again: a second request well within 5 s.
      await vi.waitFor(() => expect(attempts.length).toBeGreaterThanOrEqual(2), { timeout: 5_000 });
      expect(notifier.stats()['slack']!.lastError).toMatch(
        /TimeoutError: no answer within 400 ms \(ROUTEWATCH_NOTIFY_TIMEOUT\)/,
      );
    } finally {
      await notifier.stop();
      for (const response of held) response.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('abandons a message still unanswered a grace after the stop, however long its timeout', async () => {
    // review diff #6: a long ROUTEWATCH_NOTIFY_TIMEOUT held the shutdown that long.
    let started!: () => void;
    const inFlight = new Promise<void>((resolve) => (started = resolve));
    const hanging = ((_url: string, init: { signal: AbortSignal }) => {
      started();
      return new Promise((_resolve, reject) =>
        init.signal.addEventListener('abort', () => reject(init.signal.reason as Error)),
      );
    }) as unknown as typeof fetch;
    const notifier = startedNotifier([event('h1', 'small')], hanging, {
      requestTimeoutMs: 300_000,
      stopGraceMs: 50,
    });
    await inFlight;
    // Without the grace this waits out the 5-minute timeout, past the test's own.
    await notifier.stop();
    expect(notifier.stats().slack!.sent).toBe(0);
  });

  it('says how many of a group are critical in its header', () => {
    const { text, blocks } = slackGroupMessage([
      message({ fingerprint: 'c', severity: 'critical', ruleId: 'alpha-slo' }),
      message({ fingerprint: 'w', severity: 'warning' }),
    ]);
    const header = (blocks[0] as { text: { text: string } }).text.text;
    expect(header).toMatch(/: 2 alerts firing \(1 critical\)$/);
    expect(text.split('\n')[0]).toMatch(/\(1 critical\)$/);
  });

  it('keeps 10 long-named alerts in one group within Slack limits', () => {
    const long = 'x'.repeat(240);
    const group = Array.from({ length: 10 }, (_, i) =>
      message({
        fingerprint: `f${i}`,
        cohort: `${long}-cohort`,
        route: `${long}-route`,
        detail: `${'reason '.repeat(60)}${i}`,
        ruleKind: 'fallback_reason_shift',
        ruleId: `fallback_reason_shift_${i}`,
        finding: {
          ...message().finding,
          kind: 'fallback_reason_shift',
          detail: `${'reason '.repeat(60)}${i}`,
          summary: `${long} × ${long}: ${'reason '.repeat(200)}`,
        },
      }),
    );
    const { text, blocks } = slackGroupMessage(group);
    const b = blocks as { type: string; text?: { text: string }; elements?: { text?: string }[] }[];
    const sizes = {
      blocks: b.length,
      header: b[0]!.text!.text.length,
      headerEnd: b[0]!.text!.text.slice(-30),
      maxSection: Math.max(
        ...b.filter((x) => x.type === 'section').map((x) => x.text?.text.length ?? 0),
      ),
      maxContext: Math.max(
        ...b.filter((x) => x.type === 'context').map((x) => x.elements![0]!.text!.length),
      ),
      text: text.length,
      json: JSON.stringify({ text, blocks }).length,
      nowLinesShown: (JSON.stringify(blocks).match(/\*Now\*/g) ?? []).length,
      alertsInText: (text.match(/^• /gm) ?? []).length,
    };
    expect(sizes.blocks).toBeLessThanOrEqual(50);
    expect(sizes.header).toBeLessThanOrEqual(150);
    expect(sizes.maxSection).toBeLessThanOrEqual(3000);
    expect(sizes.text).toBeLessThanOrEqual(3900);
    // The names are clipped, not the count; every alert is named in the text.
    expect(sizes.headerEnd).toMatch(/: 10 alerts firing/);
    expect(sizes.alertsInText).toBe(10);
  });
});

describe('the plain-text fallback of a group', () => {
  it('names all 10 alerts of a group in its plain text before any detail', () => {
    const kinds = [
      'success_rate_drop',
      'cost_per_success_rise',
      'fallback_rate_spike',
      'reask_rise',
      'escalation_rise',
      'p95_regression',
      'failure_concentration',
      'retry_rise',
      'loop_rate_rise',
      'cascades',
    ] as const;
    const group = kinds.map((kind, i) =>
      message({
        fingerprint: `f${i}`,
        ruleId: kind,
        ruleKind: kind,
        finding: { ...message().finding, kind, ruleId: kind },
      }),
    );
    const { text } = slackGroupMessage(group);
    const listed = (text.match(/^• /gm) ?? []).length;
    expect(listed).toBe(10);
  });
});

describe('the notifier while the store does not answer', () => {
  it('says so once, not at every read of its queue, and sends what waited once it answers', async () => {
    let down = true;
    const queue = fakeStore([event('w1', 'small')]);
    const reads = { failed: 0 };
    const store = new Proxy(queue, {
      get(target, key, receiver) {
        const value: unknown = Reflect.get(target, key, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (down) {
            reads.failed++;
            return Promise.reject(storeUnreachable());
          }
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const lines: Array<[string, string, object]> = [];
    const at = (level: string) => (fields: object, message: string) =>
      void lines.push([level, message, fields]);
    const sent: string[] = [];
    const notifier = new Notifier({
      channels: [slackChannel('http://slack.test/x')],
      store,
      log: { info: at('info'), warn: at('warn'), error: at('error') },
      minIntervalMs: 0,
      pollMs: 5,
      fetch: (async (_url: string, init: { body: string }) => {
        sent.push(init.body);
        return new Response('ok', { status: 200 });
      }) as unknown as typeof globalThis.fetch,
    });
    notifier.start();
    await vi.waitFor(() => expect(reads.failed).toBeGreaterThanOrEqual(10));
    down = false;
    await vi.waitFor(() => expect(sent).toHaveLength(1));
    await notifier.stop();
    const said = lines.filter(([, message]) => !message.startsWith('alert delivered'));
    expect(said.map(([level, message]) => [level, message.split(':')[0]])).toEqual([
      ['warn', "the slack channel's read of its alert queue skipped"],
      ['info', "the slack channel's read of its alert queue"],
    ]);
    expect(said[0]![1]).toContain('its messages wait in the store, and go once it answers');
    expect(said[0]![2]).toEqual({
      channel: 'slack',
      reason: expect.stringContaining('ECONNREFUSED'),
    });
  });
});
