import { createServer } from 'node:net';
import { statSync } from 'node:fs';
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
import { migrate, newerSchemaNotice } from '../storage/migrations.js';
import { lowerEnginePriority, nodeThreadNames } from '../storage/engine-priority.js';
import type { EnginePriority } from '../storage/engine-priority.js';
import { openStore } from '../storage/open-store.js';
import { RollupRefresher } from '../storage/rollup-refresher.js';
import { applyRetention } from '../storage/rollups.js';
import type { RetentionSettings } from '../storage/rollups.js';
import type { Store } from '../storage/store.js';
import { Evaluator } from '../analyzer/evaluator.js';
import { Notifier, slackChannel, webhookChannel } from '../analyzer/notifier.js';
import type { Channel, NotifierLog, NotifierOptions } from '../analyzer/notifier.js';
import { AlertStore } from '../analyzer/alert-store.js';
import { loadRules } from '../analyzer/rules.js';
import type { RuleSet } from '../analyzer/rules.js';
import { buildApp } from './app.js';
import { acceptedTimes, assertSafeExposure, batchDelayMs } from './config.js';
import type { Config } from './config.js';

/** The settings of each part, read from the one configuration. */
export function writerOptions(config: Config): SpanWriterOptions {
  return {
    maxBatchRows: config.ROUTEWATCH_BATCH_ROWS,
    maxDelayMs: batchDelayMs(config),
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
    await prepareStore(store, config, log);
    return done;
  }
  const later = (error: unknown) => {
    log.warn(
      { reason: errorMessage(error).split('\n')[0] },
      'ClickHouse does not answer: accepting spans into the write-ahead log; migrations and ' +
        'inserts are retried until it answers',
    );
    return { ready: migrateWhenReachable(store, config, log, stopped) };
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
    await prepareStore(store, config, log);
  } catch (error) {
    if (!isStoreUnavailable(error)) throw error;
    return later(error);
  }
  return done;
}

async function migrateWhenReachable(
  store: Store,
  config: Config,
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
      await prepareStore(store, config, log);
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
    ...acceptedTimes(config),
  };
}

export function retentionSettings(config: Config): RetentionSettings {
  return {
    rawDays: config.ROUTEWATCH_RETENTION_DAYS,
    rollupDays: config.ROUTEWATCH_ROLLUP_RETENTION_DAYS,
  };
}

/**
 * Brings a store's schema and retention to what this version and the configuration say; says on
 * `log` when a newer version migrated it.
 */
export async function prepareStore(
  store: Store,
  config: Config,
  log: Pick<SpanWriterLog, 'warn'> & Partial<Pick<SpanWriterLog, 'info'>>,
): Promise<void> {
  const cluster = config.ROUTEWATCH_CLICKHOUSE_CLUSTER;
  const result = await migrate(store, undefined, undefined, { cluster });
  // An upgrade says what it changed in the store, as `routewatch migrate` does.
  if (result.applied.length > 0) {
    log.info?.(
      {
        migrations: result.applied.map((m) => `${String(m.version).padStart(4, '0')}_${m.name}`),
        alreadyApplied: result.alreadyApplied,
      },
      `applied ${result.applied.length} migration(s) to the store`,
    );
  }
  const notice = newerSchemaNotice(result.newer);
  // The newer version's retention too: two versions sharing a server would otherwise rewrite
  // each other's TTLs at every start, as they would the views.
  if (notice !== undefined) log.warn({ newer: result.newer }, notice);
  else await applyRetention(store, retentionSettings(config), { cluster });
}

export function ingestRunnerFor(config: Config): IngestRunner {
  return createIngestRunner(ingestSettings(config), {
    workers: config.ROUTEWATCH_INGEST_WORKERS,
    heapMb: config.ROUTEWATCH_INGEST_WORKER_HEAP_MB,
    maxQueueWaitMs: config.ROUTEWATCH_MAX_QUEUE_WAIT,
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

/**
 * A log that keeps its lines until it is attached to a real one (the app's logger exists only
 * once the app is built), then writes them there and everything after.
 */
export function bufferedLog(): {
  log: NotifierLog;
  attach(target: NotifierLog): void;
  pending(): Array<[keyof NotifierLog, object, string]>;
} {
  let target: NotifierLog | undefined;
  const lines: Array<[keyof NotifierLog, object, string]> = [];
  const write = (level: keyof NotifierLog) => (details: object, message: string) => {
    if (target) target[level](details, message);
    else lines.push([level, details, message]);
  };
  return {
    log: { info: write('info'), warn: write('warn'), error: write('error') },
    attach(next) {
      target = next;
      for (const [level, details, message] of lines.splice(0)) next[level](details, message);
    },
    pending: () => lines,
  };
}

/** The app's logger for one module, in the shape the notifier, writer and engine logs take. */
function moduleLog(app: FastifyInstance, module: string): NotifierLog {
  const log = app.log.child({ module });
  return {
    info: (d, m) => log.info(d, m),
    warn: (d, m) => log.warn(d, m),
    error: (d, m) => log.error(d, m),
  };
}

export interface Assembled {
  app: FastifyInstance;
  writer: SpanWriter;
  ingest: IngestRunner;
  evaluator: Evaluator;
  notifier: Notifier | undefined;
  /** Keeps the rollups up to date (every ROUTEWATCH_ROLLUP_INTERVAL; not started when 0). */
  rollups: RollupRefresher;
  /** Starts the periodic evaluation, the notifier and the rollup refresher (after listening). */
  begin(): void;
  /**
   * Stops them and the app, then stores what was acknowledged — with the log, what the store
   * takes within a few seconds; the rest stays in the log for the next start — and stops the
   * ingest threads. Not the store.
   */
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
  /** The span writer's log, until the app's logger exists. */
  writerLog?: ReturnType<typeof bufferedLog>;
  /** Resolves once the store is migrated (inserts wait for it). */
  storeReady?: Promise<void>;
  now?: () => Date;
  /** Wraps the ingest runner (the tests compare the fast and full decode paths through it). */
  wrapIngest?: (runner: IngestRunner, config: Config) => IngestRunner;
}

/**
 * Everything `routewatch start` runs on a store: span writer (with its write-ahead log), ingest
 * threads, alert evaluator, notifier and the HTTP app. Shared by start and the tests, so that
 * both run the same wiring.
 */
export async function assembleRoutewatch(
  config: Config,
  store: Store,
  options: AssembleOptions,
): Promise<Assembled> {
  const writerLog = options.writerLog ?? bufferedLog();
  const writer =
    options.writer ??
    (await openSpanWriter(store, config, {
      log: writerLog.log,
      ...(options.storeReady ? { storeReady: options.storeReady } : {}),
    }));
  const runner = ingestRunnerFor(config);
  const ingest = options.wrapIngest ? options.wrapIngest(runner, config) : runner;
  const alertsLog = bufferedLog();
  const notifier =
    options.channels.length > 0
      ? new Notifier({
          channels: options.channels,
          store: new AlertStore(store),
          log: alertsLog.log,
          requestTimeoutMs: config.ROUTEWATCH_NOTIFY_TIMEOUT,
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
    log: alertsLog.log,
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
  alertsLog.attach(moduleLog(app, 'alerts'));
  writerLog.attach(moduleLog(app, 'span-writer'));
  // The first refresh starts at once: on an upgraded store it builds the rollups, while the
  // views already answer (from task_events) and the collector already listens. A refresh before
  // the store is migrated fails, is logged, and is tried again at the next interval.
  const rollups = new RollupRefresher(store, {
    intervalMs: config.ROUTEWATCH_ROLLUP_INTERVAL,
    log: app.log.child({ module: 'rollups' }),
  });
  return {
    app,
    writer,
    ingest,
    evaluator,
    notifier,
    rollups,
    begin() {
      notifier?.start();
      evaluator.start(config.ROUTEWATCH_EVALUATE_EVERY);
      if (config.ROUTEWATCH_ROLLUP_INTERVAL > 0) rollups.start();
    },
    async close() {
      await evaluator.stop();
      await notifier?.stop();
      await app.close();
      await writer.close();
      await rollups.stop();
      await ingest.close();
    },
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
  /** Keeps the rollups up to date (every ROUTEWATCH_ROLLUP_INTERVAL; not started when 0). */
  rollups: RollupRefresher;
  notifier: Notifier | undefined;
  /** The write-ahead log's directory; undefined with ROUTEWATCH_WAL=off. */
  walDir: string | undefined;
  /** The embedded engine's threads at ROUTEWATCH_ENGINE_NICE; undefined with a ClickHouse server. */
  enginePriority: EnginePriority | undefined;
  /**
   * Stops listening, then stores what was acknowledged — with the log, what the store takes
   * within a few seconds; the rest stays in the log for the next start — and closes the store.
   */
  close(): Promise<void>;
}

/** Why routewatch could not listen, and what to change, for the errors a setting causes. */
export function listenFailure(error: unknown, host: string, port: number): Error {
  const code = (error as { code?: unknown }).code;
  const where = `${host}:${port}`;
  const advice: Record<string, string> = {
    EADDRINUSE: `${where} is in use by another process (another routewatch, or an OpenTelemetry Collector on 4318?): stop it, or set ROUTEWATCH_PORT to a free port (0 picks one)`,
    EACCES: `${where} needs privilege (ports below 1024): set ROUTEWATCH_PORT to 1024 or above`,
    EADDRNOTAVAIL: `${host} is not an address of this machine: set ROUTEWATCH_HOST to one of its addresses, 127.0.0.1 (this machine only) or 0.0.0.0 (all)`,
    ENOTFOUND: `the host name ${host} does not resolve: set ROUTEWATCH_HOST to an address of this machine, 127.0.0.1 or 0.0.0.0`,
    EAI_AGAIN: `the host name ${host} could not be resolved now: set ROUTEWATCH_HOST to an address, or retry`,
  };
  const text = typeof code === 'string' ? advice[code] : undefined;
  if (text === undefined) return error instanceof Error ? error : new Error(String(error));
  return new Error(`cannot listen on ${where} (${code}): ${text}`, { cause: error });
}

/** A directory's mode as octal text when users other than its owner may read or enter it. */
export function openToOthers(dir: string): string | undefined {
  try {
    const mode = statSync(dir).mode & 0o777;
    return (mode & 0o077) === 0 ? undefined : mode.toString(8);
  } catch {
    return undefined;
  }
}

/** Throws listenFailure when nothing could listen on host:port now (port 0 picks a free one). */
async function assertCanListen(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const probe = createServer();
  try {
    await new Promise<void>((resolveListen, reject) => {
      probe.once('error', reject);
      probe.listen({ host, port, exclusive: true }, resolveListen);
    });
  } catch (error) {
    throw listenFailure(error, host, port);
  } finally {
    await new Promise<void>((done) => (probe.listening ? probe.close(() => done()) : done()));
  }
}

/** Opens the store, applies migrations and listens: `routewatch start`. */
export async function startRoutewatch(
  config: Config,
  options: { logger?: FastifyServerOptions['logger'] } = {},
): Promise<RunningRoutewatch> {
  assertSafeExposure(config);
  // Read before anything opens: a bad rules file stops start-up with a message naming it.
  const rules = loadRules(config.ROUTEWATCH_RULES);
  // Read before the embedded engine starts its threads: every thread named otherwise is its.
  const nodeNames = nodeThreadNames();
  // A port in use is said before the store opens: a start that could never listen would have
  // created and migrated a new data directory first. (The real listen below still says it, for
  // a port taken in between.)
  await assertCanListen(config.ROUTEWATCH_HOST, config.ROUTEWATCH_PORT);
  const store = await openStore({
    clickhouseUrl: config.CLICKHOUSE_URL,
    dataDir: config.ROUTEWATCH_DATA_DIR,
  });
  let stopped = false;
  const writerLog = bufferedLog();
  const engineLog = bufferedLog();
  const enginePriority =
    store.driver === 'embedded'
      ? lowerEnginePriority({
          nice: config.ROUTEWATCH_ENGINE_NICE,
          nodeNames,
          onFailure: (error) =>
            engineLog.log.warn(
              { err: error },
              "could not lower the embedded engine's thread priority; it keeps the process's (set ROUTEWATCH_ENGINE_NICE=0 to stop trying)",
            ),
        })
      : undefined;
  let assembled: Assembled | undefined;
  try {
    // New directories are made 0700; one an earlier version made (0755) is said once here.
    for (const [dir, what] of [
      ...(store.driver === 'embedded'
        ? [[resolve(config.ROUTEWATCH_DATA_DIR), 'the data directory'] as const]
        : []),
      ...(config.ROUTEWATCH_WAL === 'on' ? [[walDir(config), 'the write-ahead log'] as const] : []),
    ]) {
      const open = openToOthers(dir);
      if (open !== undefined) {
        writerLog.log.warn(
          { dir, mode: open },
          `${what} ${dir} can be read by other users of this machine (mode ${open}), and it ` +
            "holds every span's attributes: close it with `chmod -R go= " +
            `${dir}\` while routewatch is stopped (new directories are made 0700)`,
        );
      }
    }
    const migrated = await migrateAtStart(store, config, writerLog.log, () => stopped);
    const host = config.ROUTEWATCH_HOST;
    const listenUrl = (port: number) => `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    let publicUrl = config.ROUTEWATCH_PUBLIC_URL ?? listenUrl(config.ROUTEWATCH_PORT);
    assembled = await assembleRoutewatch(config, store, {
      logger: options.logger,
      rules,
      channels: channelsFor(config),
      publicUrl: () => publicUrl,
      writerLog,
      storeReady: migrated.ready,
    });
    const { app } = assembled;
    engineLog.attach(moduleLog(app, 'engine'));
    if (enginePriority && enginePriority.lowered() > 0) {
      engineLog.log.info(
        { nice: config.ROUTEWATCH_ENGINE_NICE, threads: enginePriority.lowered() },
        "the embedded engine's threads run at a lower priority than the threads that answer (ROUTEWATCH_ENGINE_NICE)",
      );
    }
    try {
      await app.listen({ host, port: config.ROUTEWATCH_PORT });
    } catch (error) {
      throw listenFailure(error, host, config.ROUTEWATCH_PORT);
    }
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
      rollups: running.rollups,
      notifier: running.notifier,
      walDir: running.writer.wal?.dir,
      enginePriority,
      async close() {
        stopped = true;
        enginePriority?.stop();
        await running.close();
        await store.close();
      },
    };
  } catch (error) {
    stopped = true;
    enginePriority?.stop();
    // Nothing may have been attached yet: say what went wrong before the error stops the process.
    for (const [level, details, message] of writerLog.pending()) {
      if (level !== 'info') process.stderr.write(`${message} ${JSON.stringify(details)}\n`);
    }
    if (assembled) await assembled.close();
    await store.close();
    throw error;
  }
}
