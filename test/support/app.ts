import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { AlertStore } from '../../analyzer/alert-store.js';
import { Evaluator } from '../../analyzer/evaluator.js';
import { Notifier } from '../../analyzer/notifier.js';
import type { Channel, NotifierOptions } from '../../analyzer/notifier.js';
import { resolveRules } from '../../analyzer/rules.js';
import type { RuleSet } from '../../analyzer/rules.js';
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
  evaluator: Evaluator;
  notifier: Notifier | undefined;
  config: Config;
  close(): Promise<void>;
}

/** Logs nothing; the tests read what matters from the API and the store. */
const QUIET = { info: () => undefined, warn: () => undefined, error: () => undefined };

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
    /** Wraps the ingest runner the app uses (to look at what it is given, say). */
    wrapIngest?: (runner: IngestRunner, config: Config) => IngestRunner;
    now?: () => Date;
    /** Alert rules; default: the defaults. */
    rules?: RuleSet;
    /** Alert channels, with notifier settings (a fast rate limit for tests, say). */
    channels?: Channel[];
    notifier?: Partial<Omit<NotifierOptions, 'channels' | 'store' | 'log'>>;
  } = {},
): Promise<TestApp> {
  const config = configWith({
    ROUTEWATCH_BATCH_DELAY: '5ms',
    ROUTEWATCH_INGEST_WORKERS: '1',
    ...options.config,
  });
  const writer = options.writer ?? new SpanWriter(store, writerOptions(config));
  const runner = ingestRunnerFor(config);
  const ingest = options.wrapIngest ? options.wrapIngest(runner, config) : runner;
  const notifier =
    options.channels && options.channels.length > 0
      ? new Notifier({
          channels: options.channels,
          store: new AlertStore(store),
          log: QUIET,
          ...options.notifier,
        })
      : undefined;
  const evaluator = new Evaluator({
    store,
    rules: options.rules ?? resolveRules(),
    notifier,
    publicUrl: 'http://routewatch.test',
    log: QUIET,
  });
  notifier?.start();
  const app = await buildApp({
    config,
    store,
    writer,
    ingest,
    evaluator,
    ...(notifier ? { notifier } : {}),
    logger: options.logger ?? false,
    ...(options.now ? { now: options.now } : {}),
  });
  return {
    app,
    writer,
    ingest,
    evaluator,
    notifier,
    config,
    async close() {
      await evaluator.stop();
      await notifier?.stop();
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
