import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { createIngestRunner } from '../collector/ingest-pool.js';
import type { IngestRunner } from '../collector/ingest-pool.js';
import type { IngestSettings } from '../collector/ingest.js';
import { NO_MAPPING } from '../collector/mapping.js';
import { DEFAULT_PRICE_SETTINGS } from '../collector/pricing.js';
import { SpanWriter } from '../collector/span-writer.js';
import type { SpanWriterLog, SpanWriterOptions } from '../collector/span-writer.js';
import { WriteAheadLog } from '../collector/wal.js';
import { errorMessage, isStoreUnavailable } from '../storage/errors.js';
import { migrate } from '../storage/migrations.js';
import { openStore } from '../storage/open-store.js';
import type { Store } from '../storage/store.js';
import { Evaluator } from '../analyzer/evaluator.js';
import { Notifier, slackChannel, webhookChannel } from '../analyzer/notifier.js';
import type { Channel } from '../analyzer/notifier.js';
import { AlertStore } from '../analyzer/alert-store.js';
import { loadRules } from '../analyzer/rules.js';
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

/** Where the write-ahead log lives: ROUTEWATCH_WAL_DIR, else `wal` in the data directory. */
export function walDir(config: Config): string {
  return resolve(config.ROUTEWATCH_WAL_DIR ?? join(config.ROUTEWATCH_DATA_DIR, 'wal'));
}

/**
 * The span writer the configuration asks for. With the write-ahead log (the default) the log is
 * opened first: a torn tail is cut off, and what was not stored before the last stop is drained
 * in the background, before anything written after it.
 */
export async function openSpanWriter(
  store: Store,
  config: Config,
  parts: { log?: SpanWriterLog; storeReady?: Promise<void> } = {},
): Promise<SpanWriter> {
  const log = parts.log;
  if (config.ROUTEWATCH_WAL === 'off') {
    return new SpanWriter(store, writerOptions(config), log ? { log } : {});
  }
  const wal = await WriteAheadLog.open({
    dir: walDir(config),
    maxBytes: config.ROUTEWATCH_WAL_MAX_BYTES,
    ...(log ? { log } : {}),
  });
  if (wal.stats.replayedRecords > 0) {
    log?.info(
      { spans: wal.stats.replayedRows, records: wal.stats.replayedRecords, dir: wal.dir },
      'write-ahead log: storing the spans left from before the last stop',
    );
  }
  return new SpanWriter(store, writerOptions(config), {
    wal,
    ...(log ? { log } : {}),
    ...(parts.storeReady ? { storeReady: parts.storeReady } : {}),
  });
}

/** How long start-up waits for a ClickHouse server's first answer before going on without it. */
const FIRST_CONTACT_MS = 5_000;
const MIGRATE_RETRY_MAX_MS = 5_000;

/**
 * Applies the migrations. Without the log, or on the embedded store, before listening: a failure
 * stops start-up. With the log and a ClickHouse server that does not answer, start-up goes on:
 * spans are accepted into the log, and the migrations — then the inserts — are retried in the
 * background until it answers (a collector restarted during an outage must not refuse spans).
 * A migration that fails on an answering server still stops start-up.
 */
async function migrateAtStart(
  store: Store,
  config: Config,
  log: SpanWriterLog,
  stopped: () => boolean,
): Promise<{ ready: Promise<void> }> {
  const done = { ready: Promise.resolve() };
  if (config.ROUTEWATCH_WAL === 'off' || store.driver === 'embedded') {
    await migrate(store);
    return done;
  }
  const later = (error: unknown) => {
    log.warn(
      { reason: errorMessage(error).split('\n')[0] },
      'ClickHouse does not answer: accepting spans into the write-ahead log; migrations and ' +
        'inserts are retried until it answers',
    );
    return { ready: migrateWhenReachable(store, log, stopped) };
  };
  try {
    const ping = store.ping();
    ping.catch(() => undefined);
    await Promise.race([
      ping,
      sleep(FIRST_CONTACT_MS, undefined, { ref: false }).then(() => {
        throw new Error(`no answer within ${FIRST_CONTACT_MS} ms`);
      }),
    ]);
  } catch (error) {
    return later(error);
  }
  try {
    await migrate(store);
  } catch (error) {
    if (!isStoreUnavailable(error)) throw error;
    return later(error);
  }
  return done;
}

async function migrateWhenReachable(
  store: Store,
  log: SpanWriterLog,
  stopped: () => boolean,
): Promise<void> {
  let backoff = 250;
  let lastLogAt = Date.now();
  for (;;) {
    await sleep(backoff, undefined, { ref: false });
    if (stopped()) return new Promise<void>(() => undefined);
    try {
      await store.ping();
      await migrate(store);
      log.info({}, 'ClickHouse answers: migrations applied, storing the write-ahead log');
      return;
    } catch (error) {
      if (Date.now() - lastLogAt > 30_000) {
        lastLogAt = Date.now();
        log.warn(
          { reason: errorMessage(error).split('\n')[0] },
          'ClickHouse still does not answer (or migrating failed): retrying',
        );
      }
      backoff = Math.min(MIGRATE_RETRY_MAX_MS, backoff * 2);
    }
  }
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

interface EvaluatorLog {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
}

/** A log whose lines go to `target()` as it is when they are written (the app's comes later). */
function deferredLog(target: () => EvaluatorLog): EvaluatorLog {
  return {
    info: (d, m) => target().info(d, m),
    warn: (d, m) => target().warn(d, m),
    error: (d, m) => target().error(d, m),
  };
}

export interface RunningRoutewatch {
  /** Base URL, e.g. http://127.0.0.1:4318 */
  url: string;
  tracesUrl: string;
  app: FastifyInstance;
  store: Store;
  writer: SpanWriter;
  evaluator: Evaluator;
  /** The write-ahead log's directory; undefined with ROUTEWATCH_WAL=off. */
  walDir: string | undefined;
  /**
   * Stops listening, then stores what was acknowledged — with the log, what the store takes
   * within a few seconds; the rest stays in the log for the next start — and closes the store.
   */
  close(): Promise<void>;
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
  let ingest: IngestRunner | undefined;
  let notifier: Notifier | undefined;
  let writer: SpanWriter | undefined;
  let stopped = false;
  // Everything made before the app logs through the app's logger, made below; lines written
  // before it exists are kept and written to it then.
  const earlyLines: Array<[keyof EvaluatorLog, object, string]> = [];
  const early: EvaluatorLog = {
    info: (d, m) => earlyLines.push(['info', d, m]),
    warn: (d, m) => earlyLines.push(['warn', d, m]),
    error: (d, m) => earlyLines.push(['error', d, m]),
  };
  let log: EvaluatorLog = { info: () => undefined, warn: () => undefined, error: () => undefined };
  let writerLog: EvaluatorLog = early;
  const proxyLog = deferredLog(() => log);
  try {
    const migrated = await migrateAtStart(
      store,
      config,
      deferredLog(() => writerLog),
      () => stopped,
    );
    writer = await openSpanWriter(store, config, {
      log: deferredLog(() => writerLog),
      storeReady: migrated.ready,
    });
    ingest = ingestRunnerFor(config);
    const channels = channelsFor(config);
    notifier =
      channels.length > 0
        ? new Notifier({ channels, store: new AlertStore(store), log: proxyLog })
        : undefined;
    const host = config.ROUTEWATCH_HOST;
    const listenUrl = (port: number) => `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    let publicUrl = config.ROUTEWATCH_PUBLIC_URL ?? listenUrl(config.ROUTEWATCH_PORT);
    const evaluator = new Evaluator({
      store,
      rules,
      notifier,
      get publicUrl() {
        return publicUrl;
      },
      log: proxyLog,
    });
    const app = await buildApp({
      config,
      store,
      writer,
      ingest,
      evaluator,
      ...(notifier ? { notifier } : {}),
      logger: options.logger,
    });
    const child = app.log.child({ module: 'alerts' });
    log = {
      info: (d, m) => child.info(d, m),
      warn: (d, m) => child.warn(d, m),
      error: (d, m) => child.error(d, m),
    };
    const writerChild = app.log.child({ module: 'span-writer' });
    writerLog = {
      info: (d, m) => writerChild.info(d, m),
      warn: (d, m) => writerChild.warn(d, m),
      error: (d, m) => writerChild.error(d, m),
    };
    for (const [level, details, message] of earlyLines.splice(0))
      writerLog[level](details, message);
    await app.listen({ host, port: config.ROUTEWATCH_PORT });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.ROUTEWATCH_PORT;
    const url = listenUrl(port);
    publicUrl = config.ROUTEWATCH_PUBLIC_URL ?? url;
    notifier?.start();
    evaluator.start(config.ROUTEWATCH_EVALUATE_EVERY);
    const runningIngest = ingest;
    const runningNotifier = notifier;
    const runningWriter = writer;
    return {
      url,
      tracesUrl: `${url}/v1/traces`,
      app,
      store,
      writer,
      evaluator,
      walDir: writer.wal?.dir,
      async close() {
        stopped = true;
        await evaluator.stop();
        await runningNotifier?.stop();
        await app.close();
        await runningWriter.close();
        await runningIngest.close();
        await store.close();
      },
    };
  } catch (error) {
    stopped = true;
    for (const [level, details, message] of earlyLines) {
      if (level !== 'info') process.stderr.write(`${message} ${JSON.stringify(details)}\n`);
    }
    await notifier?.stop();
    await writer?.close({ drainMs: 0 });
    await ingest?.close();
    await store.close();
    throw error;
  }
}
