/**
 * The span workloads of the collector benchmarks, encoded as the OpenTelemetry JS exporters encode
 * them (`@opentelemetry/otlp-transformer`: protobuf for exporter-trace-otlp-proto, the NodeSDK
 * default; JSON for exporter-trace-otlp-http).
 *
 * Two mixes:
 * - `llm`: LLM call spans only, each with routing and GenAI attributes and tokens (what our own
 *   instrumentation exports inside a task);
 * - `mixed`: a service's whole export, where 4 spans in 5 are not LLM calls: HTTP server and client,
 *   database and queue spans with the attributes their instrumentations set (outside any task, so
 *   without routewatch.* attributes: the collector skips them), and 1 in 5 an LLM call as above.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import type { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { z } from 'zod';

export const MIXES = ['llm', 'mixed'] as const;
export type Mix = (typeof MIXES)[number];
export type Encoding = 'protobuf' | 'json';

/** Spans per export request: the BatchSpanProcessor's default batch is 512. */
export const SPANS_PER_REQUEST = 500;

const SERVICE_RESOURCE: Resource = resourceFromAttributes({
  'service.name': 'support-api',
  'service.version': '2.14.3',
  'deployment.environment.name': 'production',
  'host.name': 'support-api-7c9f6d5b8-x2k4q',
  'host.arch': 'amd64',
  'process.pid': 41,
  'process.runtime.name': 'nodejs',
  'process.runtime.version': '20.20.2',
  'telemetry.sdk.language': 'nodejs',
  'telemetry.sdk.name': 'opentelemetry',
  'telemetry.sdk.version': '2.12.0',
});

type Attributes = Record<string, string | number | boolean | string[]>;

let sequence = 0;
const hex = (value: number, bytes: number) => value.toString(16).padStart(bytes * 2, '0');
const toHr = (ns: bigint): [number, number] => [
  Number(ns / 1_000_000_000n),
  Number(ns % 1_000_000_000n),
];

function span(
  startNs: bigint,
  name: string,
  kind: number,
  scope: string,
  attributes: Attributes,
  resource: Resource,
  status: { code: number; message?: string } = { code: 0 },
): ReadableSpan {
  const n = ++sequence;
  // Unique ids per process run: the collector drops span ids it has already stored.
  const traceId =
    hex(Math.floor(n / 5) + 1, 8) + hex(process.pid, 4) + hex(Date.now() % 2 ** 32, 4);
  return {
    name,
    kind,
    spanContext: () => ({ traceId, spanId: hex(n, 4) + hex(process.pid, 4), traceFlags: 1 }),
    parentSpanContext:
      n % 5 === 0 ? undefined : { traceId, spanId: hex(n - 1, 4) + hex(process.pid, 4) },
    startTime: toHr(startNs),
    endTime: toHr(startNs + 42_000_000n + BigInt(n % 1000) * 1000n),
    duration: [0, 42_000_000],
    status,
    attributes,
    links: [],
    events: [],
    ended: true,
    resource,
    instrumentationScope: { name: scope, version: '0.60.0' },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  } as unknown as ReadableSpan;
}

/** An LLM call span from our instrumentation inside a task: routing, GenAI, tokens. */
function llmSpan(startNs: bigint, resource: Resource): ReadableSpan {
  const n = sequence + 1;
  const cohort = ['faq', 'extraction', 'policy', 'agentic'][n % 4]!;
  return span(
    startNs,
    'chat gpt-4o-mini',
    3,
    '@routewatch/instrumentation',
    {
      'routewatch.task.id': `task-${Math.floor(n / 3)}`,
      'routewatch.cohort': cohort,
      'routewatch.route': n % 5 === 0 ? 'large' : 'small',
      'routewatch.attempt': n % 5 === 0 ? 2 : 1,
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
      'gen_ai.response.id': `chatcmpl-${n}`,
      'gen_ai.response.finish_reasons': ['stop'],
      'gen_ai.usage.input_tokens': 800 + (n % 400),
      'gen_ai.usage.output_tokens': 120 + (n % 80),
      'server.address': 'api.openai.com',
      'server.port': 443,
    },
    resource,
  );
}

const ROUTES = ['/v1/tickets/:id', '/v1/tickets', '/v1/answers', '/healthz', '/v1/users/:id'];

function httpServerSpan(startNs: bigint): ReadableSpan {
  const n = sequence + 1;
  const route = ROUTES[n % ROUTES.length]!;
  return span(
    startNs,
    `GET ${route}`,
    2,
    '@opentelemetry/instrumentation-http',
    {
      'http.request.method': 'GET',
      'url.scheme': 'https',
      'url.path': route.replace(':id', String(10_000 + (n % 5000))),
      'url.query': `page=${n % 7}&limit=50`,
      'http.route': route,
      'http.response.status_code': n % 50 === 0 ? 500 : 200,
      'server.address': 'support-api.internal',
      'server.port': 8080,
      'network.protocol.version': '1.1',
      'network.peer.address': `10.0.${n % 200}.${n % 250}`,
      'client.address': `203.0.113.${n % 250}`,
      'user_agent.original':
        'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
    },
    SERVICE_RESOURCE,
    n % 50 === 0 ? { code: 2 } : { code: 0 },
  );
}

function httpClientSpan(startNs: bigint): ReadableSpan {
  const n = sequence + 1;
  return span(
    startNs,
    'POST',
    3,
    '@opentelemetry/instrumentation-undici',
    {
      'http.request.method': 'POST',
      'url.full': `https://billing.internal:8443/v2/accounts/${n % 9000}/usage?window=1h`,
      'url.scheme': 'https',
      'url.path': `/v2/accounts/${n % 9000}/usage`,
      'server.address': 'billing.internal',
      'server.port': 8443,
      'http.response.status_code': 200,
      'network.peer.address': '10.0.12.7',
      'network.peer.port': 8443,
      'user_agent.original': 'node',
    },
    SERVICE_RESOURCE,
  );
}

function dbSpan(startNs: bigint): ReadableSpan {
  const n = sequence + 1;
  return span(
    startNs,
    'SELECT support.tickets',
    3,
    '@opentelemetry/instrumentation-pg',
    {
      'db.system.name': 'postgresql',
      'db.namespace': 'support',
      'db.operation.name': 'SELECT',
      'db.collection.name': 'tickets',
      'db.query.text':
        'SELECT t.id, t.subject, t.status, t.priority, t.created_at, u.email FROM tickets t ' +
        'JOIN users u ON u.id = t.user_id WHERE t.account_id = $1 AND t.status = ANY($2) ' +
        'ORDER BY t.created_at DESC LIMIT $3',
      'server.address': 'pg-primary.internal',
      'server.port': 5432,
      'db.client.connection.pool.name': 'support-pool',
      'db.response.returned_rows': n % 50,
    },
    SERVICE_RESOURCE,
  );
}

function queueSpan(startNs: bigint): ReadableSpan {
  const n = sequence + 1;
  return span(
    startNs,
    'publish ticket-events',
    4,
    '@opentelemetry/instrumentation-kafkajs',
    {
      'messaging.system': 'kafka',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'send',
      'messaging.destination.name': 'ticket-events',
      'messaging.destination.partition.id': String(n % 12),
      'messaging.kafka.message.key': `ticket-${n % 9000}`,
      'messaging.message.id': `${n}-${process.pid}`,
      'messaging.client.id': 'support-api',
      'server.address': 'kafka-0.internal',
      'server.port': 9092,
    },
    SERVICE_RESOURCE,
  );
}

/** The next span of a mix. */
function nextSpan(mix: Mix, startNs: bigint, index: number): ReadableSpan {
  if (mix === 'llm') return llmSpan(startNs, SERVICE_RESOURCE);
  switch (index % 5) {
    case 0:
      return httpServerSpan(startNs);
    case 1:
      return dbSpan(startNs);
    case 2:
      return llmSpan(startNs, SERVICE_RESOURCE);
    case 3:
      return index % 10 === 3 ? httpClientSpan(startNs) : queueSpan(startNs);
    default:
      return dbSpan(startNs);
  }
}

/** Non-LLM spans only (HTTP, DB, queue): every one skipped by the collector. */
export function skippedOnlySpans(count: number): ReadableSpan[] {
  const start = BigInt(Date.now()) * 1_000_000n;
  const makers = [httpServerSpan, dbSpan, httpClientSpan, queueSpan];
  return Array.from({ length: count }, (_, i) => makers[i % makers.length]!(start + BigInt(i)));
}

/** `count` spans of a mix, cut into export requests. */
export function makeRequests(mix: Mix, count: number): ReadableSpan[][] {
  const start = BigInt(Date.now()) * 1_000_000n;
  const requests: ReadableSpan[][] = [];
  for (let i = 0; i < count; i += SPANS_PER_REQUEST) {
    requests.push(
      Array.from({ length: Math.min(SPANS_PER_REQUEST, count - i) }, (_, j) =>
        nextSpan(mix, start + BigInt(i + j) * 1000n, i + j),
      ),
    );
  }
  return requests;
}

/** One export request's body as the OpenTelemetry JS exporters send it. */
export function encode(spans: ReadableSpan[], encoding: Encoding): Uint8Array {
  const body =
    encoding === 'protobuf'
      ? ProtobufTraceSerializer.serializeRequest(spans)
      : JsonTraceSerializer.serializeRequest(spans);
  if (!body) throw new Error('the serializer returned nothing');
  return body;
}

export const CONTENT_TYPE: Record<Encoding, string> = {
  protobuf: 'application/x-protobuf',
  json: 'application/json',
};

/**
 * One POST of an export request, as the OpenTelemetry Node exporters send it (otlp-exporter-base's
 * http transport: `http.request` over the given keep-alive agent). Resolves with the status, the
 * Retry-After header and, unless 200, the body.
 */
export function postOnce(
  agent: Agent,
  url: string,
  body: Uint8Array,
  encoding: Encoding,
): Promise<{ status: number; retryAfter: string | undefined; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': CONTENT_TYPE[encoding], 'content-length': body.byteLength },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const header = res.headers['retry-after'];
          resolve({
            status: res.statusCode ?? 0,
            retryAfter: Array.isArray(header) ? header[0] : header,
            text: res.statusCode === 200 ? '' : Buffer.concat(chunks).toString('utf8'),
          });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Open loop from a child process (paced-sender.ts): latency of each request. */
export async function pacedFromChild(
  url: string,
  bodies: Uint8Array[],
  intervalMs: number,
): Promise<{ latencies: number[]; late: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'routewatch-bench-sender-'));
  try {
    const file = join(dir, 'bodies');
    const parts: Buffer[] = [];
    for (const body of bodies) {
      const length = Buffer.alloc(4);
      length.writeUInt32LE(body.byteLength);
      parts.push(length, Buffer.from(body.buffer, body.byteOffset, body.byteLength));
    }
    writeFileSync(file, Buffer.concat(parts));
    const script = join(dirname(fileURLToPath(import.meta.url)), 'paced-sender.js');
    const output = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        [script, file, url, String(intervalMs)],
        { maxBuffer: 64 * 2 ** 20 },
        (error, stdout, stderr) => {
          if (error) reject(new Error(`the paced sender failed: ${stderr || error.message}`));
          else resolve(stdout);
        },
      );
    });
    return z.object({ latencies: z.array(z.number()), late: z.number() }).parse(JSON.parse(output));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
