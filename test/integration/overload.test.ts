import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { openTempStore } from '../support/store.js';
import { LLM_ATTRIBUTES, decodeStatus, hexId, otlpBody } from '../support/otlp.js';
import type { TestSpan } from '../support/otlp.js';
import { testApp } from '../support/app.js';
import type { ConfigOverrides, TestApp } from '../support/app.js';
import { slowStore } from '../support/slow-store.js';
import { CLOSE_GRACE_MS } from '../../server/connections.js';
import type { Store } from '../../storage/store.js';

const execFileAsync = promisify(execFile);

// Bounded, loopback-only load: every request goes to 127.0.0.1, every test ends by itself.

let temp: Awaited<ReturnType<typeof openTempStore>>;
const apps: TestApp[] = [];
const sockets: Socket[] = [];
beforeAll(async () => {
  temp = await openTempStore();
});
afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  for (const app of apps) await app.close();
  await temp?.dispose();
});

async function listening(
  store: Store,
  config: ConfigOverrides,
): Promise<{ rw: TestApp; url: string; port: number }> {
  const rw = await testApp(store, { config });
  apps.push(rw);
  await rw.app.listen({ host: '127.0.0.1', port: 0 });
  const address = rw.app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { rw, url: `http://127.0.0.1:${port}`, port };
}

const llm = LLM_ATTRIBUTES;

async function until(check: () => Promise<boolean>, what = 'a condition'): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * The server's side of each connection the app accepts from now on. A closing server ends at once
 * a connection it has read nothing from (ConnectionTracker), so a test that means "begun before
 * the close" waits until the server has read what it sent, not a fixed time.
 */
function accepted(rw: TestApp): Socket[] {
  const sockets: Socket[] = [];
  rw.app.server.on('connection', (socket: Socket) => sockets.push(socket));
  return sockets;
}

/** Until the server has read from `n` of its connections. */
const serverRead = (sockets: Socket[], n: number) =>
  until(async () => sockets.filter((s) => s.bytesRead > 0).length === n, 'the server to read');

const countRow = z.object({ n: z.coerce.number() });
async function storedWith(traceIds: string[]): Promise<number> {
  if (traceIds.length === 0) return 0;
  const [row] = await temp.store.query(
    'SELECT count() AS n FROM spans FINAL WHERE trace_id IN {ids:Array(String)}',
    { ids: traceIds },
    countRow,
  );
  return row!.n;
}

/** Sends one LLM span as OTLP/JSON; the answer's status. */
async function sendOneSpan(url: string): Promise<number> {
  const body = JSON.stringify(otlpBody([{ traceId: hexId(16), attributes: llm }]));
  const res = await fetch(`${url}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  return res.status;
}

/** Opens a connection and sends a POST whose body never (fully) comes. */
function stalledUpload(
  port: number,
  announced: number,
  sent = 10,
): Promise<{ socket: Socket; answer: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(
        `POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${announced}\r\n\r\n` +
          '{'.padEnd(sent, ' '),
      );
      let received = '';
      const answer = new Promise<string>((done) => {
        socket.on('data', (chunk) => (received += chunk.toString()));
        socket.on('close', () => done(received));
      });
      resolve({ socket, answer });
    });
    socket.on('error', reject);
    sockets.push(socket);
  });
}

describe('slow clients', () => {
  it('answers a body that stops arriving with 408 and closes the connection', async () => {
    const { url, port } = await listening(temp.store, { ROUTEWATCH_BODY_IDLE_TIMEOUT: '300ms' });
    const { answer } = await stalledUpload(port, 1000);
    const text = await answer;
    expect(text).toMatch(/^HTTP\/1\.1 408/);
    expect(text).toMatch(/"code":4/);
    expect(text).toMatch(/ROUTEWATCH_BODY_IDLE_TIMEOUT/);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/^routewatch_inflight_bytes 0$/m);
  });

  it('answers a body trickled too slowly overall with 408', async () => {
    const { port } = await listening(temp.store, {
      ROUTEWATCH_BODY_IDLE_TIMEOUT: '1s',
      ROUTEWATCH_BODY_TIMEOUT: '800ms',
    });
    const { socket, answer } = await stalledUpload(port, 1000, 1);
    const trickle = setInterval(() => socket.writable && socket.write(' '), 100);
    const text = await answer;
    clearInterval(trickle);
    expect(text).toMatch(/^HTTP\/1\.1 408/);
    expect(text).toMatch(/ROUTEWATCH_BODY_TIMEOUT/);
  });

  it('counts bodies still being received against the in-flight budget, and refuses beyond it at once', async () => {
    const { url, port } = await listening(temp.store, {
      ROUTEWATCH_MAX_INFLIGHT_BYTES: String(4 * 1024 * 1024),
      ROUTEWATCH_BODY_IDLE_TIMEOUT: '30s',
    });
    const twoMiB = 2 * 1024 * 1024;
    const held = [await stalledUpload(port, twoMiB), await stalledUpload(port, twoMiB)];
    // The third would hold 6 MiB: refused before a byte of its body is read.
    const refused = await fetch(`${url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Buffer.alloc(twoMiB, 0x20),
    });
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await refused.json()) as { code: number }).code).toBe(14);
    // Health and metrics answer meanwhile; the held bytes show.
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`^routewatch_inflight_bytes ${2 * twoMiB}$`, 'm'));
    // Once the stalled clients go, their bytes are released.
    for (const { socket } of held) socket.destroy();
    await Promise.all(held.map((h) => h.answer));
    await until(async () =>
      /^routewatch_inflight_bytes 0$/m.test(await (await fetch(`${url}/metrics`)).text()),
    );
    expect(await sendOneSpan(url)).toBe(200);
  });
});

describe('a burst of exports', () => {
  it('counts the bytes received of bodies still arriving as work queued: a request behind them is refused with Retry-After', async () => {
    // Review audit-A: 200 exporters sending at once each found the queue empty and were all
    // admitted; the last waited past their 10 s timeout. At the starting rate (20 MiB/s, one
    // thread), 4 MiB received of a body still arriving is 200 ms of work, over the 100 ms allowed.
    const { url, port } = await listening(temp.store, {
      ROUTEWATCH_MAX_QUEUE_WAIT: '100ms',
      ROUTEWATCH_BODY_IDLE_TIMEOUT: '30s',
    });
    const fourMiB = 4 * 1024 * 1024;
    // Bytes announced but not sent are no work yet (diff-review-10 #1: six stalled uploads of
    // 20 MiB announced had an idle collector refuse everything).
    const announcedOnly = await stalledUpload(port, 20 * 1024 * 1024);
    expect(await sendOneSpan(url)).toBe(200);
    announcedOnly.socket.destroy();
    await announcedOnly.answer;
    const held = await stalledUpload(port, fourMiB + 1024, fourMiB);
    await until(async () => {
      const arriving = /^routewatch_arriving_bytes (\d+)$/m.exec(
        await (await fetch(`${url}/metrics`)).text(),
      );
      return Number(arriving?.[1]) >= fourMiB;
    }, 'the 4 MiB to be received');
    const behind = await fetch(`${url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(otlpBody([{ traceId: hexId(16), attributes: llm }])),
    });
    expect(behind.status).toBe(503);
    expect(Number(behind.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await behind.json()) as { message: string }).message).toMatch(
      /s of spans queued or arriving: retry after/,
    );
    // Once that body is no longer arriving, the same request is taken.
    held.socket.destroy();
    await held.answer;
    await until(async () =>
      /^routewatch_inflight_bytes 0$/m.test(await (await fetch(`${url}/metrics`)).text()),
    );
    expect(await sendOneSpan(url)).toBe(200);
  });
});

describe('a chunked body past the size limit', () => {
  it.each(['/v1/traces', '/v1/outcomes'])(
    'gets 413 on %s, and the collector stays up once its timers would have fired',
    async (path) => {
      const { url, port } = await listening(temp.store, {
        ROUTEWATCH_MAX_BODY_BYTES: '4096',
        ROUTEWATCH_BODY_IDLE_TIMEOUT: '300ms',
        ROUTEWATCH_BODY_TIMEOUT: '600ms',
      });
      // No Content-Length: the limit is found while reading, not announced.
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => {
          socket.write(
            `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
              'Transfer-Encoding: chunked\r\n\r\n',
          );
          const chunk = ' '.repeat(64 * 1024);
          for (let i = 0; i < 16; i++) socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
          socket.write('0\r\n\r\n');
        });
        let received = '';
        socket.on('data', (data) => (received += data.toString()));
        socket.on('close', () => resolve(received));
        socket.on('error', (error) => (received ? resolve(received) : reject(error)));
        sockets.push(socket);
      });
      expect(answer).toMatch(/^HTTP\/1\.1 413/);
      // Past both timers: an error from a guard nobody reads any more would have been unhandled.
      await new Promise((r) => setTimeout(r, 900));
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toMatch(/^routewatch_inflight_bytes 0$/m);
      expect(await sendOneSpan(url)).toBe(200);
    },
  );
});

describe('a request refused before its body is read', () => {
  /**
   * POSTs from another process with node:http, as OpenTelemetry JS exporters do (the whole body,
   * without waiting), one request after another on one kept-alive connection; prints the status
   * of each, or the socket error that replaced it. In this process the client's writes would wait
   * on the server's own event loop and never race its answer.
   */
  const CLIENT = `
    const http = require('node:http');
    const [port, bytes, type, count] = process.argv.slice(1);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const body = Buffer.alloc(Number(bytes));
    const one = () => new Promise((resolve) => {
      const request = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/traces', agent,
        headers: { 'content-type': type, 'content-length': body.length } }, (response) => {
        response.resume();
        response.on('end', () => resolve(String(response.statusCode)));
      });
      request.on('error', (error) => resolve(error.code));
      request.end(body);
    });
    (async () => {
      const answers = [];
      for (let i = 0; i < Number(count); i++) answers.push(await one());
      console.log(JSON.stringify(answers));
      agent.destroy();
    })();`;
  const postFromChild = async (port: number, bytes: number, type: string, count: number) => {
    const { stdout } = await execFileAsync(process.execPath, [
      '-e',
      CLIENT,
      String(port),
      String(bytes),
      type,
      String(count),
    ]);
    return JSON.parse(stdout) as string[];
  };

  it('gets its answer, not a reset, while it is still sending the body', async () => {
    const { url, port } = await listening(temp.store, {
      ROUTEWATCH_MAX_BODY_BYTES: String(1 << 20),
    });
    const big = 24 << 20;
    expect(await postFromChild(port, big, 'application/x-protobuf', 10)).toEqual(
      Array<string>(10).fill('413'),
    );
    expect(await postFromChild(port, big, 'text/plain', 10)).toEqual(Array<string>(10).fill('415'));
    expect(await sendOneSpan(url)).toBe(200);
  });

  /** Sends a request's head with `Expect: 100-continue`, and the body only once 100 comes. */
  const expecting = (port: number, type: string, body: Buffer) =>
    new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(
          `POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${type}\r\n` +
            `Content-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`,
        );
      });
      sockets.push(socket);
      let received = '';
      socket.on('data', (chunk) => {
        const before = received;
        received += chunk.toString();
        if (!before.includes('100 Continue') && received.includes('100 Continue'))
          socket.write(body);
        if (/HTTP\/1\.1 [2-5]\d\d (?!Continue)/.test(received)) socket.end();
      });
      socket.on('close', () => resolve(received));
      socket.on('error', reject);
    });

  it('says 100 Continue only once the checks passed', async () => {
    const { port } = await listening(temp.store, { ROUTEWATCH_MAX_BODY_BYTES: String(1 << 20) });
    const refused = await expecting(port, 'application/x-protobuf', Buffer.alloc(2 << 20));
    expect(refused).toMatch(/^HTTP\/1\.1 413 /);
    expect(refused).not.toMatch(/100 Continue/);
    const wrongType = await expecting(port, 'text/plain', Buffer.alloc(10));
    expect(wrongType).toMatch(/^HTTP\/1\.1 415 /);
    const body = Buffer.from(JSON.stringify(otlpBody([{ traceId: hexId(16), attributes: llm }])));
    const taken = await expecting(port, 'application/json', body);
    expect(taken).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
  });
});

describe('an unsupported Content-Encoding', () => {
  it('is refused with 415 before the body is sent', async () => {
    const { port } = await listening(temp.store, {});
    // The head announces a body that never comes: only an answer given before it can arrive.
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(
          'POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n' +
            'Content-Encoding: zstd\r\nContent-Length: 100000\r\n\r\n',
        );
      });
      sockets.push(socket);
      let received = '';
      const gaveUp = setTimeout(() => resolve(received), 2_000);
      socket.on('data', (chunk) => {
        received += chunk.toString();
        if (received.includes('\r\n\r\n')) {
          clearTimeout(gaveUp);
          resolve(received);
        }
      });
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 415 /);
  });
});

describe('overload', () => {
  it('answers every request in time — stored, or refused with Retry-After — and loses nothing acknowledged', async () => {
    // The store takes 10 000 rows/s; 40 clients send 1 000 spans each at once (4 s of work),
    // and at most 1 s of work may queue.
    const { url } = await listening(slowStore(temp.store, 10_000), {
      ROUTEWATCH_MAX_QUEUE_WAIT: '1s',
      ROUTEWATCH_BATCH_ROWS: '2000',
    });
    const requests = Array.from({ length: 40 }, () => {
      const traceId = hexId(16);
      const spans: TestSpan[] = Array.from({ length: 1000 }, () => ({ traceId, attributes: llm }));
      return { traceId, body: JSON.stringify(otlpBody(spans)) };
    });
    const answers = await Promise.all(
      requests.map(async ({ traceId, body }) => {
        // An exporter's default timeout: an answer must come before it.
        const res = await fetch(`${url}/v1/traces`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(10_000),
        });
        return { traceId, status: res.status, retryAfter: res.headers.get('retry-after') };
      }),
    );
    const ok = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status === 503);
    expect(ok.length + refused.length).toBe(answers.length);
    expect(ok.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    for (const answer of refused) expect(Number(answer.retryAfter)).toBeGreaterThanOrEqual(1);
    // Every acknowledged span is stored, exactly once; nothing of a refused request is.
    expect(await storedWith(ok.map((a) => a.traceId))).toBe(ok.length * 1000);
    expect(await storedWith(refused.map((a) => a.traceId))).toBe(0);
  });

  it('refuses with Retry-After a body that waited for an ingest thread longer than the queue wait, rather than answer it too late', async () => {
    // Admission let it in (nothing queued then), but the request ahead of it takes longer than
    // ROUTEWATCH_MAX_QUEUE_WAIT to decode: answered 503 when a thread is free, not decoded.
    const { url } = await listening(temp.store, { ROUTEWATCH_MAX_QUEUE_WAIT: '100ms' });
    const traceId = hexId(16);
    const big = JSON.stringify(
      otlpBody(Array.from({ length: 30_000 }, () => ({ traceId, attributes: llm }))),
    );
    const ahead = fetch(`${url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: big,
    });
    // Its body is in and on its way to the thread once the receive stage is timed.
    await until(async () =>
      /^routewatch_export_stage_seconds_count\{stage="receive"\} 1$/m.test(
        await (await fetch(`${url}/metrics`)).text(),
      ),
    );
    const behindTrace = hexId(16);
    const answered: string[] = [];
    void ahead.then(() => answered.push('ahead'));
    const behind = await fetch(`${url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(otlpBody([{ traceId: behindTrace, attributes: llm }])),
    });
    answered.push('behind');
    // Refused when its wait ran out, while the decode ahead of it still went on (diff-review-10
    // #2: it was answered only once the thread was free): no request's decode had ended then.
    const decodes = /^routewatch_export_stage_seconds_count\{stage="ingest"\} (\d+)$/m.exec(
      await (await fetch(`${url}/metrics`)).text(),
    );
    expect(Number(decodes?.[1] ?? 0)).toBe(0);
    expect((await ahead).status).toBe(200);
    expect(answered).toEqual(['behind', 'ahead']);
    expect(behind.status).toBe(503);
    expect(Number(behind.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await behind.json()) as { message: string }).message).toMatch(
      /waited \d+\.\d s for an ingest thread, longer than ROUTEWATCH_MAX_QUEUE_WAIT/,
    );
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/^routewatch_ingest_shed_requests_total 1$/m);
    expect(await storedWith([traceId])).toBe(30_000);
    expect(await storedWith([behindTrace])).toBe(0);
    // Nothing waits now: the same request is taken.
    expect(await sendOneSpan(url)).toBe(200);
  });

  it('serves health and metrics while a large request is decoded', async () => {
    const { url } = await listening(temp.store, {});
    const traceId = hexId(16);
    const spans: TestSpan[] = Array.from({ length: 20_000 }, () => ({
      traceId,
      attributes: { ...llm, 'app.note': 'x'.repeat(100) },
    }));
    const order: string[] = [];
    const ingest = fetch(`${url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(otlpBody(spans)),
    }).then((res) => {
      order.push('ingest');
      return res.status;
    });
    // Wait until the request is in (the in-flight gauge shows it), then probe.
    await until(async () =>
      /^routewatch_inflight_requests 1$/m.test(await (await fetch(`${url}/metrics`)).text()),
    );
    const health = await fetch(`${url}/healthz`);
    order.push('healthz');
    expect(health.status).toBe(200);
    expect(await ingest).toBe(200);
    expect(order).toEqual(['healthz', 'ingest']);
    expect(await storedWith([traceId])).toBe(20_000);
  });
});

describe('shutdown', () => {
  it('answers requests that arrive while it closes with 503 and Retry-After, in the route’s shape', async () => {
    const rw = await testApp(temp.store);
    await rw.app.listen({ host: '127.0.0.1', port: 0 });
    const port = (rw.app.server.address() as { port: number }).port;
    const serverSide = accepted(rw);
    const open = async () => {
      const socket = connect(port, '127.0.0.1');
      sockets.push(socket);
      await new Promise((resolve) => socket.once('connect', resolve));
      let received = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
      return { socket, received: () => received };
    };
    // An upload in progress keeps the server closing (not closed) while the others arrive.
    const holder = await open();
    holder.socket.write(
      'POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{',
    );
    // Two requests begun before the close and finished after it.
    const health = await open();
    health.socket.write('GET /api/v1/report HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const otlp = await open();
    otlp.socket.write(
      'POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n',
    );
    await serverRead(serverSide, 3);
    const closing = rw.app.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    health.socket.write('\r\n');
    otlp.socket.write('\r\n');
    await until(async () => health.received().length > 0 && otlp.received().length > 0);
    const json = health.received().toString();
    expect(json).toMatch(/^HTTP\/1\.1 503/);
    expect(json).toMatch(/retry-after: 5/i);
    expect(json).toMatch(/"error":\{"code":"UNAVAILABLE","message":"routewatch is shutting down/);
    const proto = otlp.received();
    const head = proto.toString('latin1');
    expect(head).toMatch(/^HTTP\/1\.1 503/);
    expect(head).toMatch(/content-type: application\/x-protobuf/i);
    expect(decodeStatus(proto.subarray(proto.indexOf('\r\n\r\n') + 4))).toMatchObject({ code: 14 });
    holder.socket.destroy();
    await closing;
    await rw.writer.flush();
    await rw.ingest.close();
  });
});

describe('shutdown with quiet connections', () => {
  it('does not wait for a connection that never sent a request, and gives one stalled in its headers a grace', async () => {
    const rw = await testApp(temp.store);
    await rw.app.listen({ host: '127.0.0.1', port: 0 });
    const port = (rw.app.server.address() as { port: number }).port;
    const serverSide = accepted(rw);
    const open = async () => {
      const socket = connect(port, '127.0.0.1');
      sockets.push(socket);
      await new Promise((resolve) => socket.once('connect', resolve));
      const ended = new Promise<number>((resolve) =>
        socket.once('close', () => resolve(Date.now())),
      );
      let received = 0;
      socket.on('data', (chunk: Buffer) => (received += chunk.length));
      socket.on('error', () => undefined);
      return { socket, ended, received: () => received };
    };
    // A browser's preconnect: connected, nothing sent. Node's closeIdleConnections() passes it by.
    const silent = await open();
    // A client stalled half-way into its headers, which never finishes them.
    const stalled = await open();
    stalled.socket.write('GET /api/v1/report HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    await serverRead(serverSide, 1);

    const began = Date.now();
    let closed = false;
    const closing = rw.app.close().then(() => (closed = true));
    const silentEnded = await silent.ended;
    expect(silent.received()).toBe(0);
    // The stalled one is still open while the silent one is already gone.
    expect(stalled.socket.destroyed).toBe(false);
    expect(closed).toBe(false);
    const stalledEnded = await stalled.ended;
    await closing;
    expect(silentEnded).toBeLessThan(stalledEnded);
    expect(stalledEnded - began).toBeGreaterThanOrEqual(CLOSE_GRACE_MS - 100);
    await rw.writer.flush();
    await rw.ingest.close();
  }, 30_000);

  it('gives a body still arriving when the close begins the same grace, not the whole body timeout', async () => {
    const rw = await testApp(temp.store);
    await rw.app.listen({ host: '127.0.0.1', port: 0 });
    const port = (rw.app.server.address() as { port: number }).port;
    const serverSide = accepted(rw);
    const socket = connect(port, '127.0.0.1');
    sockets.push(socket);
    await new Promise((resolve) => socket.once('connect', resolve));
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    const ended = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    // An export whose body trickles in: a byte a second, well within the idle timeout, and far
    // from done within ROUTEWATCH_BODY_TIMEOUT (30 s).
    socket.write(
      'POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{',
    );
    const drip = setInterval(() => socket.write(' '), 1_000);
    try {
      await serverRead(serverSide, 1);
      const began = Date.now();
      await rw.app.close();
      const closedAfter = Date.now() - began;
      await ended;
      expect(closedAfter).toBeGreaterThanOrEqual(CLOSE_GRACE_MS - 100);
      expect(closedAfter).toBeLessThan(rw.config.ROUTEWATCH_BODY_TIMEOUT / 2);
      expect(answer).toMatch(/^HTTP\/1\.1 503/);
      expect(answer).toMatch(/shutting down, and the body was still arriving/);
    } finally {
      clearInterval(drip);
    }
    await rw.writer.flush();
    await rw.ingest.close();
  }, 30_000);
});
