import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { createIngest } from '../../collector/ingest.js';
import type { IngestRunner } from '../../collector/ingest-pool.js';
import type { Config } from '../../server/config.js';
import { ingestSettings } from '../../server/start.js';
import { startMockLlm } from '../../examples/mock-llm.js';
import type { MockLlm } from '../../examples/mock-llm.js';
import { MODEL_TIERS, TASK_TYPES } from '../../examples/mock-models.js';
import type { ProfileOverrides } from '../../examples/mock-models.js';
import { RoutewatchSpanProcessor } from '../../instrumentation/src/index.js';
import { openTempStore } from './store.js';
import { testApp } from './app.js';
import type { ConfigOverrides, TestApp } from './app.js';

/**
 * The real path for a third-party LLM instrumentation: the simulated LLM of examples/, the
 * production app listening on an ephemeral port with the embedded store, and an OpenTelemetry SDK
 * whose spans go over OTLP/HTTP protobuf (the SDK default) to it, with our stamping processor first.
 */

/** The simulator, answering every call (no simulated 429 or 500): each test decides its errors. */
export async function startReliableLlm(): Promise<MockLlm> {
  const profiles: ProfileOverrides = {};
  for (const tier of MODEL_TIERS) {
    profiles[tier] = Object.fromEntries(
      TASK_TYPES.map((t) => [t, { rateLimitedRate: 0, serverErrorRate: 0 }]),
    );
  }
  return startMockLlm({ seed: 13, latencyScale: 0, profiles });
}

export interface ListeningCollector {
  /** OTLP/HTTP traces URL, e.g. http://127.0.0.1:PORT/v1/traces */
  tracesUrl: string;
  app: TestApp;
  /** The LLM calls and other spans stored, oldest first. */
  storedSpans(): Promise<StoredSpan[]>;
  /** Rows of a query through POST /api/v1/sql (the read-only path), as objects, once stored. */
  sqlRows(query: string): Promise<Record<string, unknown>[]>;
  metrics(): Promise<string>;
  close(): Promise<void>;
}

const storedSpan = z.object({
  name: z.string(),
  kind: z.string(),
  trace_id: z.string(),
  task_id: z.string(),
  cohort: z.string(),
  route: z.string(),
  attempt: z.coerce.number(),
  provider: z.string(),
  operation: z.string(),
  request_model: z.string(),
  response_model: z.string(),
  input_tokens: z.coerce.number(),
  output_tokens: z.coerce.number(),
  cost_usd: z.number(),
  cost_source: z.string(),
  cost_note: z.string(),
  price_ref: z.string(),
  scope_name: z.string(),
  outcome: z.string(),
});
export type StoredSpan = z.infer<typeof storedSpan>;

/**
 * Runs every protobuf body also through the pipeline's fast path and its full path side by side,
 * and records any difference in rows, counts or error: each third-party package's real export is
 * then a check that skipping spans before decoding their attributes changes nothing (issue 13).
 */
function comparingPaths(runner: IngestRunner, config: Config, mismatches: string[]): IngestRunner {
  const fast = createIngest(ingestSettings(config));
  const full = createIngest(ingestSettings(config), { fastPath: false });
  const outcome = (ingest: typeof fast, body: Uint8Array, now: number) => {
    try {
      return ingest(body, 'protobuf', now);
    } catch (error) {
      return String(error);
    }
  };
  return {
    async run(body, encoding) {
      if (encoding === 'protobuf') {
        const now = Date.now();
        const viaFast = outcome(fast, body, now);
        const viaFull = outcome(full, body, now);
        if (!isDeepStrictEqual(viaFast, viaFull))
          mismatches.push(`fast: ${JSON.stringify(viaFast)}\nfull: ${JSON.stringify(viaFull)}`);
      }
      return runner.run(body, encoding);
    },
    estimatedWaitMs: (arrivingBytes?: number) => runner.estimatedWaitMs(arrivingBytes),
    get stats() {
      return runner.stats;
    },
    close: () => runner.close(),
  };
}

/** The production app with the embedded store, listening on 127.0.0.1 at an ephemeral port. */
export async function startCollector(config: ConfigOverrides = {}): Promise<ListeningCollector> {
  const temp = await openTempStore();
  const mismatches: string[] = [];
  const app = await testApp(temp.store, {
    config,
    wrapIngest: (runner, appConfig) => comparingPaths(runner, appConfig, mismatches),
  });
  await app.app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    tracesUrl: `http://127.0.0.1:${port}/v1/traces`,
    app,
    async storedSpans() {
      await app.writer.flush();
      return temp.store.query(
        `SELECT ${Object.keys(storedSpan.shape).join(', ')} FROM spans FINAL ORDER BY timestamp, name`,
        {},
        storedSpan,
      );
    },
    async sqlRows(query) {
      await app.writer.flush();
      const res = await app.app.inject({
        method: 'POST',
        url: '/api/v1/sql',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ sql: query }),
      });
      if (res.statusCode !== 200)
        throw new Error(`POST /api/v1/sql ${res.statusCode}: ${res.body}`);
      const { columns, rows } = res.json() as { columns: { name: string }[]; rows: unknown[][] };
      return rows.map((row) => Object.fromEntries(columns.map((c, i) => [c.name, row[i]])));
    },
    async metrics() {
      return (await app.app.inject({ method: 'GET', url: '/metrics' })).body;
    },
    async close() {
      await app.close();
      await temp.dispose();
      if (mismatches.length > 0) {
        throw new Error(
          `the protobuf fast path and the full path differed on ${mismatches.length} bodies:\n${mismatches[0]}`,
        );
      }
    },
  };
}

export interface ExportingTracing {
  provider: BasicTracerProvider;
  /** Waits until every ended span was acknowledged by the collector. */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/**
 * The OpenTelemetry SDK registered globally (AsyncLocalStorage context), our stamping processor
 * first, then `exporting` (default: a simple processor with the OTLP/HTTP protobuf exporter).
 */
export function exportTo(
  tracesUrl: string,
  options: { service?: string; exporting?: (exporter: OTLPTraceExporter) => SpanProcessor } = {},
): ExportingTracing {
  const exporter = new OTLPTraceExporter({ url: tracesUrl });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.service ?? 'third-party-test' }),
    spanProcessors: [
      new RoutewatchSpanProcessor(),
      options.exporting ? options.exporting(exporter) : new SimpleSpanProcessor(exporter),
    ],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
  return {
    provider,
    flush: () => provider.forceFlush(),
    async shutdown() {
      await provider.shutdown();
      trace.disable();
      context.disable();
    },
  };
}

/** A chat request the simulator answers. */
export const QUESTION = [
  { role: 'system' as const, content: 'task-type: faq' },
  { role: 'user' as const, content: 'How do I reset my password?' },
];
