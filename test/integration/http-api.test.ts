import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../storage/errors.js';
import { ServerStore } from '../../storage/server-store.js';
import type { Store } from '../../storage/store.js';
import { openTempStore, unavailableStore } from '../support/store.js';
import { decodeStatus, otlpBody } from '../support/otlp.js';
import { testApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';
import { SpanWriter } from '../../collector/span-writer.js';
import { assertSafeExposure, configWith } from '../../server/config.js';
import { writerOptions } from '../../server/start.js';

// Auth, error shapes and status encodings, on every route, through the production app.
const TOKEN = 'http-api-test-token-0123456789';
const MAX_BODY_BYTES = 20 * 1024 * 1024;

let temp: Awaited<ReturnType<typeof openTempStore>>;
let rw: TestApp;
beforeAll(async () => {
  temp = await openTempStore();
  rw = await testApp(temp.store, { config: { ROUTEWATCH_TOKEN: TOKEN } });
});
afterAll(async () => {
  await rw?.close();
  await temp?.dispose();
});

const bearer = { authorization: `Bearer ${TOKEN}` };
const spans = JSON.stringify(otlpBody([{ attributes: { 'gen_ai.request.model': 'gpt-4o-mini' } }]));

interface RouteCase {
  name: string;
  method: 'GET' | 'POST';
  url: string;
  headers?: Record<string, string>;
  payload?: string | Buffer;
  /** How errors come back: a google.rpc.Status (JSON or protobuf) or `{ error }`. */
  shape: 'status-json' | 'status-proto' | 'error-json';
}

const PROTECTED: RouteCase[] = [
  {
    name: 'OTLP JSON',
    method: 'POST',
    url: '/v1/traces',
    headers: { 'content-type': 'application/json' },
    payload: spans,
    shape: 'status-json',
  },
  {
    name: 'OTLP protobuf',
    method: 'POST',
    url: '/v1/traces',
    headers: { 'content-type': 'application/x-protobuf' },
    payload: Buffer.alloc(0),
    shape: 'status-proto',
  },
  {
    name: 'outcomes',
    method: 'POST',
    url: '/v1/outcomes',
    headers: { 'content-type': 'application/json' },
    payload: '{"taskId":"t","outcome":"success"}',
    shape: 'error-json',
  },
  { name: 'report', method: 'GET', url: '/api/v1/report?window=1h', shape: 'error-json' },
  // What the dashboard reads: its page is public, these stay behind the token.
  { name: 'alerts', method: 'GET', url: '/api/v1/alerts', shape: 'error-json' },
  { name: 'advice', method: 'GET', url: '/api/v1/advice?window=1h', shape: 'error-json' },
  { name: 'metrics', method: 'GET', url: '/metrics', shape: 'error-json' },
];

/** The inject options of a route case, with extra headers. */
const requestOf = (route: RouteCase, headers: Record<string, string> = {}) => ({
  method: route.method,
  url: route.url,
  headers: { ...route.headers, ...headers },
  ...(route.payload === undefined ? {} : { payload: route.payload }),
});

/** The error's code and message, whatever the shape. */
function errorOf(
  res: { headers: Record<string, unknown>; rawPayload: Buffer; json(): unknown },
  shape: RouteCase['shape'],
) {
  if (shape === 'status-proto') {
    expect(res.headers['content-type']).toBe('application/x-protobuf');
    return decodeStatus(res.rawPayload);
  }
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.json() as {
    code?: unknown;
    message?: unknown;
    error?: { code: string; message: string };
  };
  if (shape === 'status-json') {
    expect(body).toMatchObject({ details: [] });
    return { code: body.code, message: body.message };
  }
  expect(Object.keys(body)).toEqual(['error']);
  return body.error!;
}

describe('authentication', () => {
  it.each(PROTECTED)('refuses $name without a token, in its error shape', async (route) => {
    const res = await rw.app.inject(requestOf(route));
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    const error = errorOf(res, route.shape);
    expect(error.code).toBe(route.shape === 'error-json' ? 'UNAUTHENTICATED' : 16);
    expect(error.message).toMatch(/Authorization: Bearer/);
  });

  it.each(PROTECTED)(
    'refuses $name with the token but without the Bearer scheme',
    async (route) => {
      const res = await rw.app.inject(requestOf(route, { authorization: TOKEN }));
      expect(res.statusCode).toBe(401);
    },
  );

  it.each(PROTECTED)('serves $name with the bearer token', async (route) => {
    const res = await rw.app.inject(requestOf(route, bearer));
    expect(res.statusCode).toBeLessThan(300);
  });

  it("serves the process's own figures on /metrics under the Prometheus client names", async () => {
    const res = await rw.app.inject({ method: 'GET', url: '/metrics', headers: bearer });
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(res.body)?.[1]);
    expect(value('process_resident_memory_bytes')).toBeGreaterThan(
      value('nodejs_heap_size_used_bytes'),
    );
    expect(value('process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(value('process_start_time_seconds')).toBeLessThanOrEqual(Date.now() / 1000);
    expect(res.body).toMatch(/^# TYPE process_cpu_seconds_total counter$/m);
    expect(res.body).toMatch(/^nodejs_eventloop_lag_max_seconds \d/m);
    if (process.platform === 'linux') expect(value('process_open_fds')).toBeGreaterThan(0);
  });

  it('refuses a wrong token of the right length', async () => {
    const res = await rw.app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: `Bearer ${'x'.repeat(TOKEN.length)}` },
    });
    expect(res.statusCode).toBe(401);
  });

  it('leaves the health probes open, and they say no more than up or ready', async () => {
    const health = await rw.app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({ status: 'ok' });
    const ready = await rw.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready' });
  });
});

describe('a token for exporters (ROUTEWATCH_INGEST_TOKEN)', () => {
  it("is taken on the ingest routes only; the operators' token everywhere", async () => {
    const INGEST = 'exporters-only-token-0123456789';
    const split = await testApp(temp.store, {
      config: { ROUTEWATCH_TOKEN: TOKEN, ROUTEWATCH_INGEST_TOKEN: INGEST },
    });
    try {
      const exporter = { authorization: `Bearer ${INGEST}` };
      const json = { 'content-type': 'application/json' };
      const traces = await split.app.inject({
        method: 'POST',
        url: '/v1/traces',
        headers: { ...json, ...exporter },
        payload: spans,
      });
      expect(traces.statusCode).toBe(200);
      const outcomes = await split.app.inject({
        method: 'POST',
        url: '/v1/outcomes',
        headers: { ...json, ...exporter },
        payload: JSON.stringify({
          outcomes: [{ taskId: 'ingest-token-task', outcome: 'success' }],
        }),
      });
      expect(outcomes.statusCode).toBeLessThan(300);
      for (const request of [
        { method: 'GET' as const, url: '/api/v1/report' },
        { method: 'GET' as const, url: '/metrics' },
        {
          method: 'POST' as const,
          url: '/api/v1/sql',
          payload: JSON.stringify({ sql: 'SELECT 1' }),
        },
        {
          method: 'POST' as const,
          url: '/api/v1/silences',
          payload: JSON.stringify({ all: true, duration: '1h', comment: 'x' }),
        },
      ]) {
        const res = await split.app.inject({ ...request, headers: { ...json, ...exporter } });
        expect([request.url, res.statusCode]).toEqual([request.url, 401]);
        const admin = await split.app.inject({ ...request, headers: { ...json, ...bearer } });
        expect([request.url, admin.statusCode === 401]).toEqual([request.url, false]);
      }
      // An exporter without a token is told of the exporters' one, not the operators'.
      const none = await split.app.inject({
        method: 'POST',
        url: '/v1/outcomes',
        headers: json,
        payload: '{}',
      });
      expect(none.statusCode).toBe(401);
      expect(none.json().error.message).toMatch(
        /Bearer <ROUTEWATCH_INGEST_TOKEN> \(or <ROUTEWATCH_TOKEN>\)/,
      );
      const byAdmin = await split.app.inject({
        method: 'POST',
        url: '/v1/traces',
        headers: { ...json, ...bearer },
        payload: spans,
      });
      expect(byAdmin.statusCode).toBe(200);
    } finally {
      await split.close();
    }
  });

  it("is refused without the operators' token, or equal to it", () => {
    expect(() =>
      assertSafeExposure(
        configWith({ ROUTEWATCH_INGEST_TOKEN: 'exporters-only-token-0123456789' }),
      ),
    ).toThrow(/set ROUTEWATCH_TOKEN too/);
    expect(() =>
      assertSafeExposure(configWith({ ROUTEWATCH_TOKEN: TOKEN, ROUTEWATCH_INGEST_TOKEN: TOKEN })),
    ).toThrow(/is the same as ROUTEWATCH_TOKEN/);
  });
});

describe('without a token: requests addressed to loopback only (DNS rebinding)', () => {
  it('refuses a request addressed to another name on every route but the probes, saying what to do', async () => {
    const open = await testApp(temp.store);
    const named = await testApp(temp.store, {
      config: { ROUTEWATCH_PUBLIC_URL: 'http://routewatch.internal:8080/' },
    });
    try {
      const evil = { host: 'rebind.attacker.example:4318' };
      for (const request of [
        { method: 'GET' as const, url: '/api/v1/alerts' },
        { method: 'GET' as const, url: '/metrics' },
        { method: 'GET' as const, url: '/' },
        {
          method: 'POST' as const,
          url: '/api/v1/sql',
          headers: { 'content-type': 'application/json' },
          payload: JSON.stringify({ sql: 'SELECT 1' }),
        },
        {
          method: 'POST' as const,
          url: '/v1/traces',
          headers: { 'content-type': 'application/json' },
          payload: spans,
        },
      ]) {
        const res = await open.app.inject({
          ...request,
          headers: { ...request.headers, ...evil },
        });
        expect([request.url, res.statusCode]).toEqual([request.url, 403]);
        expect(res.body).toMatch(
          /answers only requests addressed to localhost.*DNS rebinding.*ROUTEWATCH_TOKEN/,
        );
      }
      expect((await open.app.inject({ url: '/healthz', headers: evil })).statusCode).toBe(200);
      // Counted, for an exporter that reaches it by another name and loses its spans.
      const metrics = (await open.app.inject({ url: '/metrics' })).body;
      expect(metrics).toMatch(/^routewatch_misaddressed_requests_total 5$/m);
      for (const host of [
        'localhost:4318',
        '127.0.0.1:4318',
        '[::1]:4318',
        'app.localhost',
        'LOCALHOST',
      ]) {
        const res = await open.app.inject({ url: '/api/v1/alerts', headers: { host } });
        expect([host, res.statusCode]).toEqual([host, 200]);
      }
      // The address people open it at, when one is set, is its own too.
      const byName = { host: 'routewatch.internal:8080' };
      expect((await named.app.inject({ url: '/api/v1/alerts', headers: byName })).statusCode).toBe(
        200,
      );
      expect((await named.app.inject({ url: '/api/v1/alerts', headers: evil })).statusCode).toBe(
        403,
      );
      // With a token the token decides, whatever the name.
      const tokened = await rw.app.inject({
        url: '/api/v1/alerts',
        headers: { ...evil, ...bearer },
      });
      expect(tokened.statusCode).toBe(200);
    } finally {
      await open.close();
      await named.close();
    }
  });
});

describe('connections', () => {
  it('closes a connection that sends nothing after the keep-alive timeout, and not one whose answer takes longer', async () => {
    // The store answers reads 2.5 s late while `slowReads` is set: an answer computed for longer
    // than the keep-alive timeout, with nothing on its socket meanwhile.
    let slowReads = false;
    const store: Store = {
      driver: temp.store.driver,
      location: temp.store.location,
      exec: (sql, params) => temp.store.exec(sql, params),
      query: async (sql, params, row) => {
        if (slowReads) await new Promise((resolve) => setTimeout(resolve, 2_500));
        return temp.store.query(sql, params, row);
      },
      queryReadOnly: (sql, limits) => temp.store.queryReadOnly(sql, limits),
      insertJsonEachRow: (table, body, options) =>
        temp.store.insertJsonEachRow(table, body, options),
      ping: () => temp.store.ping(),
      close: async () => undefined,
    };
    const quick = await testApp(store, { config: { ROUTEWATCH_KEEPALIVE_TIMEOUT: '1s' } });
    try {
      await quick.app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = quick.app.server.address() as AddressInfo;
      const silent = connect(port, '127.0.0.1');
      silent.on('error', () => undefined);
      const opened = Date.now();
      const closedAt = new Promise<number>((resolve) =>
        silent.once('close', () => resolve(Date.now())),
      );
      slowReads = true;
      const slow = fetch(`http://127.0.0.1:${port}/api/v1/report?window=1h`);
      const elapsed = (await closedAt) - opened;
      expect(elapsed).toBeGreaterThanOrEqual(900);
      expect(elapsed).toBeLessThan(2_400);
      const answer = await slow;
      expect(Date.now() - opened).toBeGreaterThanOrEqual(2_400);
      expect(answer.status).toBe(200);
    } finally {
      slowReads = false;
      await quick.close();
    }
  });
});

describe('error shapes', () => {
  it('counts the OTLP requests answered with a 4xx on /metrics, as received too', async () => {
    const counter = (name: string) => async () => {
      const text = (await rw.app.inject({ method: 'GET', url: '/metrics', headers: bearer })).body;
      return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1]);
    };
    const rejected = counter('routewatch_otlp_requests_rejected_total');
    const received = counter('routewatch_otlp_requests_total');
    const before = await rejected();
    const receivedBefore = await received();
    const bad = await rw.app.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { ...bearer, 'content-type': 'application/json' },
      payload: '{"resourceSpans": 7}',
    });
    expect(bad.statusCode).toBe(400);
    const unsupported = await rw.app.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { ...bearer, 'content-type': 'text/plain' },
      payload: 'x',
    });
    expect(unsupported.statusCode).toBe(415);
    expect(await rejected()).toBe(before + 2);
    // The 415 is refused before the route's handler: received all the same.
    expect(await received()).toBe(receivedBefore + 2);
  });

  it('answers an unknown route with 404 in the JSON error shape, and nothing is sniffed', async () => {
    const res = await rw.app.inject({ method: 'GET', url: '/nowhere', headers: bearer });
    expect(res.statusCode).toBe(404);
    // Every answer, errors and data alike, is the type it says: never sniffed as HTML.
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    const report = await rw.app.inject({ method: 'GET', url: '/api/v1/report', headers: bearer });
    expect(report.headers['x-content-type-options']).toBe('nosniff');
    expect(errorOf(res, 'error-json')).toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringMatching(/\/nowhere/),
    });
  });

  it('answers a path the router refuses (bad percent-encoding, a part too long) with 400 in the JSON error shape', async () => {
    const bad = await rw.app.inject({
      method: 'DELETE',
      url: '/api/v1/silences/%E0%A4%A',
      headers: bearer,
    });
    expect(bad.statusCode).toBe(400);
    expect(errorOf(bad, 'error-json')).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/not valid percent-encoding/),
    });
    const long = await rw.app.inject({
      method: 'DELETE',
      url: `/api/v1/silences/${'a'.repeat(101)}`,
      headers: bearer,
    });
    expect(long.statusCode).toBe(400);
    expect(errorOf(long, 'error-json')).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/longer than 100 characters/),
    });
  });

  it('answers an OTLP signal routewatch does not take with 404 as a Status, in the request encoding', async () => {
    const res = await rw.app.inject({
      method: 'POST',
      url: '/v1/logs',
      headers: { ...bearer, 'content-type': 'application/x-protobuf' },
      payload: Buffer.alloc(0),
    });
    expect(res.statusCode).toBe(404);
    expect(errorOf(res, 'status-proto').code).toBe(5);
  });

  it.each([
    ['OTLP protobuf', '/v1/traces', 'application/x-protobuf', 'status-proto', 8],
    ['OTLP JSON', '/v1/traces', 'application/json', 'status-json', 8],
    ['outcomes', '/v1/outcomes', 'application/json', 'error-json', 'RESOURCE_EXHAUSTED'],
  ] as const)(
    'answers a body over the limit on %s with 413 and one code',
    async (_name, url, type, shape, code) => {
      const res = await rw.app.inject({
        method: 'POST',
        url,
        headers: { ...bearer, 'content-type': type },
        payload: Buffer.alloc(MAX_BODY_BYTES + 1, 0x20),
      });
      expect(res.statusCode).toBe(413);
      const error = errorOf(res, shape);
      expect(error.code).toBe(code);
      expect(error.message).toMatch(/ROUTEWATCH_MAX_BODY_BYTES/);
    },
  );

  it('answers a report window no store can hold with 400, not 500', async () => {
    for (const query of [
      'window=200000d',
      'from=0001-01-01T00:00:00Z',
      'window=1y',
      'colour=red',
    ]) {
      const res = await rw.app.inject({
        method: 'GET',
        url: `/api/v1/report?${query}`,
        headers: bearer,
      });
      expect(res.statusCode, query).toBe(400);
      expect(errorOf(res, 'error-json')).toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
  });

  it('filters the report by cohort, route, service and policy, repeated or comma-separated', async () => {
    for (const query of [
      'cohort=faq,extraction',
      'cohort=faq&cohort=extraction&route=small',
      'service=a&policy=v1',
    ]) {
      const res = await rw.app.inject({
        method: 'GET',
        url: `/api/v1/report?window=1h&${query}`,
        headers: bearer,
      });
      expect(res.statusCode, query).toBe(200);
    }
    const res = await rw.app.inject({
      method: 'GET',
      url: '/api/v1/report?window=1h&cohort=faq,extraction&policy=v1',
      headers: bearer,
    });
    expect(res.json().filter).toEqual({
      cohorts: ['faq', 'extraction'],
      routes: [],
      services: [],
      policies: ['v1'],
    });
  });

  it('answers ?from=<date> and ?window=90s', async () => {
    for (const query of ['from=2026-01-01', 'window=90s']) {
      const res = await rw.app.inject({
        method: 'GET',
        url: `/api/v1/report?${query}`,
        headers: bearer,
      });
      expect(res.statusCode, query).toBe(200);
    }
  });
});

describe('failures of the store', () => {
  async function appOn(store: Store, logger?: Writable) {
    return testApp(store, {
      config: { ROUTEWATCH_TOKEN: TOKEN },
      ...(logger ? { logger: { level: 'info', stream: logger } } : {}),
    });
  }

  it('answers the report with 503 and Retry-After when the store cannot be reached', async () => {
    // A real server driver pointed at a port where nothing listens.
    const down = new ServerStore({ url: 'http://127.0.0.1:9/routewatch' });
    const failing = await appOn(down);
    try {
      const res = await failing.app.inject({
        method: 'GET',
        url: '/api/v1/report?window=1h',
        headers: bearer,
      });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('5');
      const error = errorOf(res, 'error-json') as {
        code: string;
        message: string;
        requestId?: string;
      };
      expect(error.code).toBe('UNAVAILABLE');
      expect(error.message).not.toMatch(/ECONNREFUSED/);
      const ready = await failing.app.inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(JSON.stringify(ready.json())).not.toMatch(/ECONNREFUSED/);
    } finally {
      await failing.close();
    }
  });

  it('answers an engine error with 500 INTERNAL: what to do and a request id; the engine text only in the log', async () => {
    const lines: string[] = [];
    const log = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const broken: Store = {
      ...unavailableStore(),
      query: async () => {
        throw new StorageError(
          'QUERY_FAILED',
          'Code: 47. DB::Exception: Unknown identifier secret_column',
        );
      },
    };
    const failing = await appOn(broken, log);
    try {
      const res = await failing.app.inject({
        method: 'GET',
        url: '/api/v1/report?window=1h',
        headers: bearer,
      });
      expect(res.statusCode).toBe(500);
      const body = res.json() as { error: { code: string; message: string; requestId: string } };
      expect(body.error.code).toBe('INTERNAL');
      expect(body.error.requestId).toMatch(/^[0-9a-f]{16}$/);
      expect(body.error.message).toContain(body.error.requestId);
      expect(body.error.message).not.toMatch(/secret_column/);
      const logged = lines.join('');
      expect(logged).toContain(body.error.requestId);
      expect(logged).toMatch(/secret_column/);
      // A real failure stays an error, unlike the refusals made by design.
      expect(
        lines.map((line) => JSON.parse(line) as { level: number; msg: string }),
      ).toContainEqual(expect.objectContaining({ level: 50, msg: 'request failed' }));
    } finally {
      await failing.close();
    }
  });
});

describe('logging', () => {
  it('logs no line per request, never the token, and raises no deprecation warning', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error & { code?: string }) => warnings.push(warning.code ?? '');
    process.on('warning', onWarning);
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logged = await testApp(temp.store, {
      config: { ROUTEWATCH_TOKEN: TOKEN },
      logger: { level: 'info', stream },
    });
    try {
      expect((await logged.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      expect(
        (await logged.app.inject({ method: 'GET', url: '/metrics', headers: bearer })).statusCode,
      ).toBe(200);
      // process.emitWarning delivers on a later tick.
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).not.toContain('FSTDEP023');
      expect(lines.filter((line) => /incoming request|request completed/.test(line))).toEqual([]);
      expect(lines.join('')).not.toContain(TOKEN);
    } finally {
      process.off('warning', onWarning);
      await logged.close();
    }
  });

  it('warns of a request refused for its Host without a token, with the name it was addressed to', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logged = await testApp(temp.store, { logger: { level: 'info', stream } });
    try {
      const res = await logged.app.inject({
        method: 'POST',
        url: '/v1/traces',
        headers: { 'content-type': 'application/json', host: 'host.docker.internal:4318' },
        payload: spans,
      });
      expect(res.statusCode).toBe(403);
      const warned = lines.filter((line) =>
        /refused requests addressed to a name other than/.test(line),
      );
      expect(warned).toHaveLength(1);
      expect(JSON.parse(warned[0]!)).toMatchObject({
        refused: 1,
        host: 'host.docker.internal:4318',
        path: '/v1/traces',
      });
    } finally {
      await logged.close();
    }
  });

  it('warns of the first request refused without the token at once, of the rest of the burst by the next summary or at shutdown, never with the token sent', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logged = await testApp(temp.store, {
      config: { ROUTEWATCH_TOKEN: TOKEN },
      logger: { level: 'info', stream },
    });
    let closed = false;
    try {
      for (const authorization of [undefined, 'Bearer wrong-token-of-any-length', undefined]) {
        const res = await logged.app.inject({
          method: 'POST',
          url: '/v1/traces',
          headers: {
            'content-type': 'application/json',
            ...(authorization ? { authorization } : {}),
          },
          payload: '{}',
        });
        expect(res.statusCode).toBe(401);
      }
      const warned = () => lines.filter((line) => /refused requests without the token/.test(line));
      // The first refusal at once; the two after it wait for the minute's summary.
      expect(warned()).toHaveLength(1);
      expect(JSON.parse(warned()[0]!)).toMatchObject({ path: '/v1/traces', refused: 1 });
      expect(lines.join('')).not.toContain('wrong-token-of-any-length');
      // Every refusal is counted on /metrics (the warning only says one a minute).
      const metrics = await logged.app.inject({
        method: 'GET',
        url: '/metrics',
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      expect(metrics.body).toMatch(/^routewatch_unauthenticated_requests_total 3$/m);
      // Refused before the route, and received all the same: the refusals are a part of it.
      expect(metrics.body).toMatch(/^routewatch_otlp_requests_total 3$/m);
      // A shutdown before the minute is up still tells the refusals not logged yet.
      closed = true;
      await logged.close();
      expect(warned().map((line) => (JSON.parse(line) as { refused: number }).refused)).toEqual([
        1, 2,
      ]);
    } finally {
      if (!closed) await logged.close();
    }
  });

  /** An app logging at info into `lines` (one JSON object each), with `writer` if given. */
  async function loggingApp(writer?: SpanWriter) {
    const lines: { level: number; msg: string; [field: string]: unknown }[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as (typeof lines)[number]);
        done();
      },
    });
    const logged = await testApp(temp.store, {
      logger: { level: 'info', stream },
      ...(writer ? { writer } : {}),
    });
    return { logged, lines };
  }

  const postSpans = (app: TestApp, payload = spans) =>
    app.app.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { 'content-type': 'application/json' },
      payload,
    });

  it('tells the 503s it answers by design at warn, a summary with counts by reason, not an error with a stack each', async () => {
    /** A writer whose log is at its disk budget: every export is refused before its body. */
    class FullLogWriter extends SpanWriter {
      override refusal() {
        return {
          code: 'LOG_FULL' as const,
          reason: 'the write-ahead log is full',
          retryAfterSeconds: 3,
        };
      }
    }
    const { logged, lines } = await loggingApp(
      new FullLogWriter(temp.store, writerOptions(configWith({ ROUTEWATCH_BATCH_DELAY: '5ms' }))),
    );
    let closed = false;
    try {
      for (let i = 0; i < 20; i++) expect((await postSpans(logged)).statusCode).toBe(503);
      expect(lines.filter((line) => line.level >= 50)).toEqual([]);
      const summaries = () => lines.filter((line) => /refused requests with 503/.test(line.msg));
      // The first at once; the other 19 wait for the minute's summary, or the shutdown.
      expect(summaries()).toHaveLength(1);
      expect(summaries()[0]).toMatchObject({
        level: 40,
        requests: 1,
        byReason: { 'write-ahead log full': 1 },
        lastMessage: 'the write-ahead log is full: retry after 3 s',
      });
      closed = true;
      await logged.close();
      expect(summaries().map((line) => line.byReason)).toEqual([
        { 'write-ahead log full': 1 },
        { 'write-ahead log full': 19 },
      ]);
    } finally {
      if (!closed) await logged.close();
    }
  });

  it('tells the OTLP requests it cannot decode (400) at warn, a summary a minute rather than a line each', async () => {
    const { logged, lines } = await loggingApp();
    let closed = false;
    try {
      for (let i = 0; i < 5; i++) {
        expect((await postSpans(logged, '{"resourceSpans": 7}')).statusCode).toBe(400);
      }
      const warned = () => lines.filter((line) => /could not be decoded/.test(line.msg));
      expect(warned()).toHaveLength(1);
      expect(warned()[0]).toMatchObject({ level: 40, requests: 1, byReason: { json: 1 } });
      expect(String(warned()[0]!.lastMessage)).toMatch(/resourceSpans/);
      closed = true;
      await logged.close();
      expect(warned().map((line) => line.requests)).toEqual([1, 4]);
    } finally {
      if (!closed) await logged.close();
    }
  });
});
