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
import { Evaluator } from '../analyzer/evaluator.js';
import { Notifier, slackChannel, webhookChannel } from '../analyzer/notifier.js';
import type { Channel, NotifierLog, NotifierOptions } from '../analyzer/notifier.js';
import { AlertStore } from '../analyzer/alert-store.js';
import { loadRules } from '../analyzer/rules.js';
import type { RuleSet } from '../analyzer/rules.js';
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

/** The alert channels the configuration names. */
export function channelsFor(config: Config): Channel[] {
  const channels: Channel[] = [];
  if (config.ROUTEWATCH_SLACK_WEBHOOK_URL)
    channels.push(slackChannel(config.ROUTEWATCH_SLACK_WEBHOOK_URL));
  if (config.ROUTEWATCH_WEBHOOK_URL) channels.push(webhookChannel(config.ROUTEWATCH_WEBHOOK_URL));
  return channels;
}

export interface RunningRoutewatch {
  /** Base URL, e.g. http://127.0.0.1:4318 */
  url: string;
  tracesUrl: string;
  app: FastifyInstance;
  store: Store;
  writer: SpanWriter;
  evaluator: Evaluator;
  notifier: Notifier | undefined;
  /** Stops listening, stores what was acknowledged, closes the store. */
  close(): Promise<void>;
}

export interface Assembled {
  app: FastifyInstance;
  writer: SpanWriter;
  ingest: IngestRunner;
  evaluator: Evaluator;
  notifier: Notifier | undefined;
  /** Starts the periodic evaluation and the notifier (after listening). */
  begin(): void;
  /** Stops them, the app and the ingest threads, writing what was acknowledged; not the store. */
  close(): Promise<void>;
}

export interface AssembleOptions {
  logger?: FastifyServerOptions['logger'];
  rules: RuleSet;
  channels: Channel[];
  /** Notifier timings (tests use a fast rate limit). */
  notifier?: Partial<Omit<NotifierOptions, 'channels' | 'store' | 'log'>>;
  /** Base URL for links in alerts; read when a message is made. */
  publicUrl: () => string;
  writer?: SpanWriter;
  now?: () => Date;
}

/**
 * Everything `routewatch start` runs on a store: span writer, ingest threads, alert evaluator,
 * notifier and the HTTP app. Shared by start and the tests, so that both run the same wiring.
 */
export async function assembleRoutewatch(
  config: Config,
  store: Store,
  options: AssembleOptions,
): Promise<Assembled> {
  const writer = options.writer ?? new SpanWriter(store, writerOptions(config));
  const ingest = ingestRunnerFor(config);
  // The evaluator and notifier log through the app's logger, which exists only once built.
  let log: NotifierLog = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const proxy: NotifierLog = {
    info: (d, m) => log.info(d, m),
    warn: (d, m) => log.warn(d, m),
    error: (d, m) => log.error(d, m),
  };
  const notifier =
    options.channels.length > 0
      ? new Notifier({
          channels: options.channels,
          store: new AlertStore(store),
          log: proxy,
          ...options.notifier,
        })
      : undefined;
  const evaluator = new Evaluator({
    store,
    rules: options.rules,
    notifier,
    get publicUrl() {
      return options.publicUrl();
    },
    log: proxy,
  });
  const app = await buildApp({
    config,
    store,
    writer,
    ingest,
    evaluator,
    ...(notifier ? { notifier } : {}),
    logger: options.logger,
    ...(options.now ? { now: options.now } : {}),
  });
  const child = app.log.child({ module: 'alerts' });
  log = {
    info: (d, m) => child.info(d, m),
    warn: (d, m) => child.warn(d, m),
    error: (d, m) => child.error(d, m),
  };
  return {
    app,
    writer,
    ingest,
    evaluator,
    notifier,
    begin() {
      notifier?.start();
      evaluator.start(config.ROUTEWATCH_EVALUATE_EVERY);
    },
    async close() {
      await evaluator.stop();
      await notifier?.stop();
      await app.close();
      await writer.flush();
      await ingest.close();
    },
  };
}

/** Opens the store, applies migrations and listens: `routewatch start`. */
export async function startRoutewatch(
  config: Config,
  options: { logger?: FastifyServerOptions['logger'] } = {},
): Promise<RunningRoutewatch> {
  assertSafeExposure(config);
  // Read before anything opens: a bad rules file stops start-up with a message naming it.
  const rules = loadRules(config.ROUTEWATCH_RULES);
  const store = await openStore({
    clickhouseUrl: config.CLICKHOUSE_URL,
    dataDir: config.ROUTEWATCH_DATA_DIR,
  });
  let assembled: Assembled | undefined;
  try {
    await migrate(store);
    const host = config.ROUTEWATCH_HOST;
    const listenUrl = (port: number) => `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    let publicUrl = config.ROUTEWATCH_PUBLIC_URL ?? listenUrl(config.ROUTEWATCH_PORT);
    assembled = await assembleRoutewatch(config, store, {
      logger: options.logger,
      rules,
      channels: channelsFor(config),
      publicUrl: () => publicUrl,
    });
    const { app } = assembled;
    await app.listen({ host, port: config.ROUTEWATCH_PORT });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.ROUTEWATCH_PORT;
    const url = listenUrl(port);
    publicUrl = config.ROUTEWATCH_PUBLIC_URL ?? url;
    assembled.begin();
    const running = assembled;
    return {
      url,
      tracesUrl: `${url}/v1/traces`,
      app,
      store,
      writer: running.writer,
      evaluator: running.evaluator,
      notifier: running.notifier,
      async close() {
        await running.close();
        await store.close();
      },
    };
  } catch (error) {
    await assembled?.close();
    await store.close();
    throw error;
  }
}
