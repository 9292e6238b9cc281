import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { FastifyInstance } from 'fastify';
import { openTempStore } from '../support/store.js';
import { otlpBody } from '../support/otlp.js';
import { testApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';

let temp: Awaited<ReturnType<typeof openTempStore>>;
let rw: TestApp;
let app: FastifyInstance;
beforeAll(async () => {
  temp = await openTempStore();
  rw = await testApp(temp.store, { config: { ROUTEWATCH_BATCH_DELAY: '1ms' } });
  app = rw.app;
});
afterAll(async () => {
  await rw?.close();
  await temp?.dispose();
});

/** mulberry32: a small seeded generator, so a failing case can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(input: Buffer, next: () => number): Buffer {
  const bytes = Buffer.from(input);
  const edits = 1 + Math.floor(next() * 4);
  let out = bytes;
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(next() * out.length);
    const kind = next();
    if (kind < 0.5) out[at] = Math.floor(next() * 256);
    else if (kind < 0.75) out = out.subarray(0, at);
    else
      out = Buffer.concat([
        out.subarray(0, at),
        Buffer.from([Math.floor(next() * 256)]),
        out.subarray(at),
      ]);
  }
  return out;
}

const attributes = {
  'routewatch.cohort': 'faq',
  'routewatch.route': 'small',
  'routewatch.attempt': 1,
  'gen_ai.request.model': 'gpt-4o-mini',
  'gen_ai.usage.input_tokens': 10,
};

describe('collector under mangled input', () => {
  it('answers every mutated JSON body with 200 or 4xx, never 5xx, and keeps serving', async () => {
    const valid = Buffer.from(JSON.stringify(otlpBody([{ attributes }, { attributes }])));
    const next = random(1234);
    const statuses = new Map<number, number>();
    for (let i = 0; i < 300; i++) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/traces',
        headers: { 'content-type': 'application/json' },
        payload: mutate(valid, next),
      });
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      expect(res.statusCode, `case ${i}`).toBeLessThan(500);
      if (res.statusCode !== 200) expect(typeof res.json().message).toBe('string');
    }
    expect(statuses.get(400)).toBeGreaterThan(0);
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  it('answers every mutated protobuf body with 200 or 4xx, never 5xx', async () => {
    const span = {
      name: 'chat gpt-4o-mini',
      kind: 2,
      spanContext: () => ({ traceId: 'ab'.repeat(16), spanId: 'cd'.repeat(8), traceFlags: 1 }),
      parentSpanContext: undefined,
      startTime: [1_764_331_200, 1] as [number, number],
      endTime: [1_764_331_200, 500] as [number, number],
      status: { code: 0 },
      attributes,
      links: [],
      events: [],
      duration: [0, 499] as [number, number],
      ended: true,
      resource: {
        attributes: { 'service.name': 'fuzz' },
        merge: () => null,
        asyncAttributesPending: false,
        getRawAttributes: () => [['service.name', 'fuzz']],
      },
      instrumentationScope: { name: 'fuzz' },
      droppedAttributesCount: 0,
      droppedEventsCount: 0,
      droppedLinksCount: 0,
    } as unknown as ReadableSpan;
    const valid = Buffer.from(ProtobufTraceSerializer.serializeRequest([span])!);
    const original = await app.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { 'content-type': 'application/x-protobuf' },
      payload: valid,
    });
    expect(original.statusCode).toBe(200);
    const next = random(99);
    for (let i = 0; i < 300; i++) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/traces',
        headers: { 'content-type': 'application/x-protobuf' },
        payload: mutate(valid, next),
      });
      expect(res.statusCode, `case ${i}`).toBeLessThan(500);
    }
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });
});
