import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { createIngestRunner } from '../collector/ingest-pool.js';
import type { IngestRunner } from '../collector/ingest-pool.js';
import type { IngestSettings } from '../collector/ingest.js';
import { DEFAULT_PRICES } from '../collector/pricing.js';
import { SpanWriter } from '../collector/span-writer.js';
import type { SpanWriterOptions } from '../collector/span-writer.js';
import { migrate } from '../storage/migrations.js';
import { openStore } from '../storage/open-store.js';
import { RollupRefresher } from '../storage/rollup-refresher.js';
import { applyRetention } from '../storage/rollups.js';
import type { RetentionSettings } from '../storage/rollups.js';
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
    prices: DEFAULT_PRICES,
    maxAgeMs: config.ROUTEWATCH_RETENTION_DAYS * 86_400_000,
    maxAheadMs: config.ROUTEWATCH_MAX_CLOCK_SKEW,
  };
}

export function retentionSettings(config: Config): RetentionSettings {
  return {
    rawDays: config.ROUTEWATCH_RETENTION_DAYS,
    rollupDays: config.ROUTEWATCH_ROLLUP_RETENTION_DAYS,
  };
}

/** Brings a store's schema and retention to what this version and the configuration say. */
export async function prepareStore(store: Store, config: Config): Promise<void> {
  const cluster = config.ROUTEWATCH_CLICKHOUSE_CLUSTER;
  await migrate(store, undefined, undefined, { cluster });
  await applyRetention(store, retentionSettings(config), { cluster });
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
  /** Keeps the rollups up to date (every ROUTEWATCH_ROLLUP_INTERVAL; not started when 0). */
  rollups: RollupRefresher;
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
  let rollups: RollupRefresher | undefined;
  try {
    await prepareStore(store, config);
    const writer = new SpanWriter(store, writerOptions(config));
    ingest = ingestRunnerFor(config);
    const app = await buildApp({ config, store, writer, ingest, logger: options.logger });
    // The first refresh starts at once: on an upgraded store it builds the rollups, while the
    // views already answer (from task_events) and the collector already listens.
    rollups = new RollupRefresher(store, {
      intervalMs: config.ROUTEWATCH_ROLLUP_INTERVAL,
      log: app.log.child({ module: 'rollups' }),
    });
    if (config.ROUTEWATCH_ROLLUP_INTERVAL > 0) rollups.start();
    const host = config.ROUTEWATCH_HOST;
    await app.listen({ host, port: config.ROUTEWATCH_PORT });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.ROUTEWATCH_PORT;
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    const runningIngest = ingest;
    const runningRollups = rollups;
    return {
      url,
      tracesUrl: `${url}/v1/traces`,
      app,
      store,
      writer,
      rollups: runningRollups,
      async close() {
        await app.close();
        await writer.flush();
        await runningRollups.stop();
        await runningIngest.close();
        await store.close();
      },
    };
  } catch (error) {
    await rollups?.stop();
    await ingest?.close();
    await store.close();
    throw error;
  }
}
