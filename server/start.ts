import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { createIngestRunner } from '../collector/ingest-pool.js';
import type { IngestRunner } from '../collector/ingest-pool.js';
import type { IngestSettings } from '../collector/ingest.js';
import { NO_MAPPING } from '../collector/mapping.js';
import { DEFAULT_PRICE_SETTINGS } from '../collector/pricing.js';
import { SpanWriter } from '../collector/span-writer.js';
import type { SpanWriterOptions } from '../collector/span-writer.js';
import { migrate } from '../storage/migrations.js';
import { openStore } from '../storage/open-store.js';
import type { Store } from '../storage/store.js';
import { buildApp } from './app.js';
import { assertSafeExposure } from './config.js';
import type { Config } from './config.js';

/** The settings of each part, read from the one configuration. */
export function writerOptions(config: Config): SpanWriterOptions {
  return {
    maxBatchRows: config.ROUTEWATCH_BATCH_ROWS,
    maxDelayMs: config.ROUTEWATCH_BATCH_DELAY,
    maxPendingRows: config.ROUTEWATCH_MAX_PENDING_ROWS,
    maxPendingBytes: config.ROUTEWATCH_MAX_PENDING_BYTES,
    maxQueueWaitMs: config.ROUTEWATCH_MAX_QUEUE_WAIT,
    dedupWindow: config.ROUTEWATCH_DEDUP_WINDOW,
  };
}

export function ingestSettings(config: Config): IngestSettings {
  return {
    limits: {
      maxSpans: config.ROUTEWATCH_MAX_SPANS_PER_REQUEST,
      maxEntries: config.ROUTEWATCH_MAX_ENTRIES_PER_REQUEST,
      maxResources: config.ROUTEWATCH_MAX_RESOURCES_PER_REQUEST,
    },
    prices: config.ROUTEWATCH_PRICES?.settings ?? DEFAULT_PRICE_SETTINGS,
    mapping: config.ROUTEWATCH_MAPPING?.settings ?? NO_MAPPING,
    maxAgeMs: config.ROUTEWATCH_RETENTION_DAYS * 86_400_000,
    maxAheadMs: config.ROUTEWATCH_MAX_CLOCK_SKEW,
  };
}

export function ingestRunnerFor(config: Config): IngestRunner {
  return createIngestRunner(ingestSettings(config), {
    workers: config.ROUTEWATCH_INGEST_WORKERS,
    heapMb: config.ROUTEWATCH_INGEST_WORKER_HEAP_MB,
  });
}

export interface RunningRoutewatch {
  /** Base URL, e.g. http://127.0.0.1:4318 */
  url: string;
  tracesUrl: string;
  app: FastifyInstance;
  store: Store;
  writer: SpanWriter;
  /** Stops listening, stores what was acknowledged, closes the store. */
  close(): Promise<void>;
}

/** Opens the store, applies migrations and listens: `routewatch start`. */
export async function startRoutewatch(
  config: Config,
  options: { logger?: FastifyServerOptions['logger'] } = {},
): Promise<RunningRoutewatch> {
  assertSafeExposure(config);
  const store = await openStore({
    clickhouseUrl: config.CLICKHOUSE_URL,
    dataDir: config.ROUTEWATCH_DATA_DIR,
  });
  let ingest: IngestRunner | undefined;
  try {
    await migrate(store);
    const writer = new SpanWriter(store, writerOptions(config));
    ingest = ingestRunnerFor(config);
    const app = await buildApp({ config, store, writer, ingest, logger: options.logger });
    const host = config.ROUTEWATCH_HOST;
    await app.listen({ host, port: config.ROUTEWATCH_PORT });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.ROUTEWATCH_PORT;
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    const runningIngest = ingest;
    return {
      url,
      tracesUrl: `${url}/v1/traces`,
      app,
      store,
      writer,
      async close() {
        await app.close();
        await writer.flush();
        await runningIngest.close();
        await store.close();
      },
    };
  } catch (error) {
    await ingest?.close();
    await store.close();
    throw error;
  }
}
