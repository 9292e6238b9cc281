import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import type { IngestRunner } from '../../collector/ingest-pool.js';
import { SpanWriter } from '../../collector/span-writer.js';
import { buildApp } from '../../server/app.js';
import { configWith } from '../../server/config.js';
import type { Config } from '../../server/config.js';
import { ingestRunnerFor, writerOptions } from '../../server/start.js';
import type { Store } from '../../storage/store.js';

export type ConfigOverrides = Partial<Record<keyof Config, string>>;

export interface TestApp {
  app: FastifyInstance;
  writer: SpanWriter;
  ingest: IngestRunner;
  config: Config;
  close(): Promise<void>;
}

/**
 * The production app (`buildApp`: auth, error handler, every plugin) on a given store, with a
 * short batch delay so tests need not wait. Ingest runs on a real worker thread.
 */
export async function testApp(
  store: Store,
  options: {
    config?: ConfigOverrides;
    logger?: FastifyServerOptions['logger'];
    writer?: SpanWriter;
    now?: () => Date;
  } = {},
): Promise<TestApp> {
  const config = configWith({
    ROUTEWATCH_BATCH_DELAY: '5ms',
    ROUTEWATCH_INGEST_WORKERS: '1',
    ...options.config,
  });
  const writer = options.writer ?? new SpanWriter(store, writerOptions(config));
  const ingest = ingestRunnerFor(config);
  const app = await buildApp({
    config,
    store,
    writer,
    ingest,
    logger: options.logger ?? false,
    ...(options.now ? { now: options.now } : {}),
  });
  return {
    app,
    writer,
    ingest,
    config,
    async close() {
      await app.close();
      await writer.flush();
      await ingest.close();
    },
  };
}

/** A span writer with the default settings but a short batch delay. */
export function testWriter(store: Store, overrides: ConfigOverrides = {}): SpanWriter {
  return new SpanWriter(
    store,
    writerOptions(configWith({ ROUTEWATCH_BATCH_DELAY: '5ms', ...overrides })),
  );
}
