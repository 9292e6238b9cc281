import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';
import { closestName } from './edit-distance.js';
import { parseMappingFile } from '../collector/mapping.js';
import type { MappingRules } from '../collector/mapping.js';
import { parsePriceFile } from '../collector/price-file.js';
import type { PriceSettings } from '../collector/pricing.js';
import { parseDuration } from './time.js';

/**
 * Every setting of routewatch, read from the environment, with its default stated here once.
 * Parsed strictly at start: a bad value stops start-up with a message naming the variable.
 * Empty strings count as unset.
 */

const unset = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const MiB = 1024 * 1024;

/** Unset as for every setting; a number given in code is read as its text would be. */
const unsetOrText = (v: unknown) => (typeof v === 'number' ? String(v) : unset(v));

/**
 * A port or a count, in decimal digits only: `0x10f0`, `1e3` or `4318.0` are refused rather than
 * read as a number the user may not have meant.
 */
const integer = (min: number, max: number, fallback: number) =>
  z.preprocess(
    unsetOrText,
    z
      .string()
      .default(String(fallback))
      .transform((text, ctx) => {
        if (/^\d+$/.test(text.trim())) return Number(text.trim());
        ctx.addIssue({
          code: 'custom',
          message: `"${text}" is not a whole number: write it in decimal digits, such as ${fallback}`,
        });
        return z.NEVER;
      })
      .pipe(inRange(min, max, String)),
  );

const BYTE_UNITS = { kib: 1024, mib: MiB, gib: 1024 * MiB } as const;

/** A byte size as the docs write it: `20MiB` for a whole number of MiB, else the bytes. */
function sizeText(bytes: number): string {
  if (bytes >= BYTE_UNITS.gib && bytes % BYTE_UNITS.gib === 0)
    return `${bytes / BYTE_UNITS.gib}GiB`;
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB}MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024}KiB`;
  return String(bytes);
}

/**
 * A size in bytes: a number of bytes in decimal digits, or a whole number of KiB, MiB or GiB
 * (`20MiB`). Decimal units (`20MB`) are refused: whether they mean 10^6 or 2^20 is a guess.
 */
const byteSize = (min: number, max: number, fallback: number) =>
  z.preprocess(
    unsetOrText,
    z
      .string()
      .default(String(fallback))
      .transform((text, ctx) => {
        const match = /^(\d+)\s*(KiB|MiB|GiB)?$/i.exec(text.trim());
        if (match) {
          const unit = match[2]?.toLowerCase() as keyof typeof BYTE_UNITS | undefined;
          return Number(match[1]) * (unit ? BYTE_UNITS[unit] : 1);
        }
        ctx.addIssue({
          code: 'custom',
          message: `"${text}" is not a size: write a number of bytes or a size such as ${sizeText(fallback)}`,
        });
        return z.NEVER;
      })
      .pipe(inRange(min, max, sizeText)),
  );

/** A whole number from `min` to `max`, the bounds written by `show` in the message. */
const inRange = (min: number, max: number, show: (n: number) => string) =>
  z
    .number()
    .min(min, `must be at least ${show(min)}`)
    .max(max, `must be at most ${show(max)}`);

/**
 * The ports the Fetch standard blocks ("bad ports"; Node's fetch keeps the same list): a browser
 * or Node's fetch refuses to connect to them whatever listens there.
 */
const FETCH_BLOCKED_PORTS = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102,
  103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465,
  512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993,
  995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668,
  6669, 6679, 6697, 10080,
]);
const BLOCKED_PORT =
  'is a port browsers and fetch refuse to connect to (the Fetch standard\'s "bad ports"), so ';

/** An http(s) URL that fetch (`who` is what would call it) can reach: not on a blocked port. */
const fetchableUrl = (who: string) =>
  z
    .url({
      protocol: /^https?$/,
      error:
        'not an http(s) URL: give the whole URL, scheme included (https://hooks.example.com/…)',
    })
    .refine(
      // Run on a value the URL check refused too: only a URL that parses has a port to check.
      (url) => !URL.canParse(url) || !FETCH_BLOCKED_PORTS.has(Number(new URL(url).port)),
      `its port ${BLOCKED_PORT}${who} could not reach it: use another port`,
    );

/** The longest delay Node's timers keep (2^31 − 1 ms, ~24.8 days); past it they fire at once. */
const TIMER_MAX_MS = 2 ** 31 - 1;
const TIMER_MAX = {
  ms: TIMER_MAX_MS,
  text: 'at most 24d: a longer wait overflows the timer, which then fires every millisecond',
};

/** Reads a duration such as `200ms`, `10s`, `1h` into milliseconds, or says why it cannot. */
function durationMs(
  text: string,
  minMs: number,
  ctx: z.RefinementCtx,
  max: { ms: number; text: string },
): number {
  try {
    const ms = parseDuration(text);
    if (ms < minMs) {
      ctx.addIssue({ code: 'custom', message: `must be at least ${minMs} ms` });
      return z.NEVER;
    }
    if (ms > max.ms) {
      ctx.addIssue({ code: 'custom', message: `must be ${max.text}` });
      return z.NEVER;
    }
    return ms;
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
}

/**
 * A duration such as `200ms`, `10s`, `1h`; kept in milliseconds. At most what a timer can wait,
 * unless `max` says otherwise.
 */
const duration = (fallback: string, minMs = 0, max = TIMER_MAX) =>
  z.preprocess(
    unset,
    z
      .string()
      .default(fallback)
      .transform((text, ctx) => durationMs(text, minMs, ctx, max)),
  );

/** A duration whose default depends on other settings: undefined when unset. */
const optionalDuration = (minMs = 0) =>
  z.preprocess(
    unset,
    z
      .string()
      .optional()
      .transform((text, ctx) =>
        text === undefined ? undefined : durationMs(text, minMs, ctx, TIMER_MAX),
      ),
  );

/**
 * A settings file named by a variable: read and checked at start, so a typo stops start-up with
 * the variable, the file and the place in it, not the first span that needs it.
 */
const settingsFile = <T>(parseText: (text: string) => T) =>
  z.preprocess(
    unset,
    z
      .string()
      .optional()
      .transform((path, ctx): { path: string; settings: T } | undefined => {
        if (path === undefined) return undefined;
        const absolute = resolve(path);
        let text: string;
        try {
          text = readFileSync(absolute, 'utf8');
        } catch (error) {
          ctx.addIssue({
            code: 'custom',
            message: `cannot read ${absolute}: ${(error as Error).message}`,
          });
          return z.NEVER;
        }
        try {
          return { path: absolute, settings: parseText(text) };
        } catch (error) {
          ctx.addIssue({ code: 'custom', message: `${absolute}: ${(error as Error).message}` });
          return z.NEVER;
        }
      }),
  );

/**
 * A bearer token setting: 16+ printable characters. Only an empty value is unset: a token of
 * spaces is a mistake to refuse, not "no token".
 */
function bearerToken() {
  return z.preprocess(
    (v) => (v === '' ? undefined : v),
    z
      .string()
      .min(16, 'use at least 16 characters')
      .regex(/^[\x21-\x7e]+$/, 'use printable ASCII without spaces (it is sent as a Bearer token)')
      .optional(),
  );
}

export const configSchema = z.object({
  // Where routewatch listens and keeps its data.
  ROUTEWATCH_HOST: z.preprocess(unset, z.string().default('127.0.0.1')),
  ROUTEWATCH_PORT: integer(0, 65_535, 4318).refine(
    (port) => !FETCH_BLOCKED_PORTS.has(port),
    `${BLOCKED_PORT}the dashboard and the routewatch commands could not reach it: use another port (4318 by default)`,
  ),
  ROUTEWATCH_DATA_DIR: z.preprocess(unset, z.string().default('./.routewatch')),
  /**
   * A ClickHouse server instead of the embedded store. Any port: @clickhouse/client connects
   * through Node's http module, which has no "bad ports" list (fetch and browsers never call it).
   */
  CLICKHOUSE_URL: z.preprocess(
    unset,
    z
      .url({
        protocol: /^https?$/,
        error:
          "not an http(s) URL: give ClickHouse's HTTP interface, scheme included (http://user:password@host:8123/database)",
      })
      .optional(),
  ),
  /**
   * The nice value of the embedded engine's own threads (Linux), so that on busy cores the
   * threads that answer exports run before a merge; 0 leaves them at the process's priority.
   * Not used with CLICKHOUSE_URL (storage/engine-priority.ts).
   */
  ROUTEWATCH_ENGINE_NICE: integer(0, 19, 10),
  /**
   * A ClickHouse cluster (a name from the servers' remote_servers): migrations run ON CLUSTER with
   * Replicated tables and Distributed tables over them. Needs CLICKHOUSE_URL.
   */
  ROUTEWATCH_CLICKHOUSE_CLUSTER: z.preprocess(
    unset,
    z
      .string()
      .regex(
        /^[A-Za-z_][A-Za-z0-9_]*$/,
        'use the name remote_servers gives it (letters, digits, _)',
      )
      .optional(),
  ),
  ROUTEWATCH_TOKEN: bearerToken(),
  // A second token, for exporters: taken on the ingest routes only (/v1/traces, /v1/outcomes).
  ROUTEWATCH_INGEST_TOKEN: bearerToken(),
  ROUTEWATCH_LOG_LEVEL: z.preprocess(
    unset,
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ),
  /** The instance the client commands (report, alerts, sql, …) talk to. */
  ROUTEWATCH_URL: z.preprocess(
    unset,
    fetchableUrl('the routewatch commands').default('http://127.0.0.1:4318'),
  ),

  // Requests: size, slow clients, overload.
  /** Largest accepted body, compressed and again after decompression. */
  ROUTEWATCH_MAX_BODY_BYTES: byteSize(1024, 1024 * MiB, 20 * MiB),
  /** Bytes of request bodies being received, decoded or written at once; beyond, 503. */
  ROUTEWATCH_MAX_INFLIGHT_BYTES: byteSize(1 * MiB, 16 * 1024 * MiB, 256 * MiB),
  /** Refuse (503) a request whose spans would wait longer than this to be stored. */
  ROUTEWATCH_MAX_QUEUE_WAIT: duration('5s', 100),
  /** A body must arrive whole within this time… */
  ROUTEWATCH_BODY_TIMEOUT: duration('30s', 100),
  /** …and never pause longer than this between two chunks. */
  ROUTEWATCH_BODY_IDLE_TIMEOUT: duration('10s', 100),
  /** Keep-alive connections idle longer than this are closed. */
  ROUTEWATCH_KEEPALIVE_TIMEOUT: duration('65s', 1_000),
  /** Limits on one OTLP request, each answered with a 400 naming it. */
  ROUTEWATCH_MAX_SPANS_PER_REQUEST: integer(1, 10_000_000, 50_000),
  ROUTEWATCH_MAX_ENTRIES_PER_REQUEST: integer(1_000, 100_000_000, 2_000_000),
  ROUTEWATCH_MAX_RESOURCES_PER_REQUEST: integer(1, 10_000_000, 10_000),
  /** Threads that decode and normalize OTLP bodies off the event loop; 0 decodes inline. */
  ROUTEWATCH_INGEST_WORKERS: integer(0, 64, Math.max(1, Math.min(4, availableParallelism() - 1))),
  /** Heap of one ingest thread; a request that needs more is refused (413). */
  ROUTEWATCH_INGEST_WORKER_HEAP_MB: integer(64, 16_384, 1_024),

  // Time: what is accepted and how long it is kept.
  /** Raw spans are kept this long (a TTL on spans); older spans are refused at ingest. */
  ROUTEWATCH_RETENTION_DAYS: integer(1, 36_500, 30),
  /**
   * Task state, task snapshots and hourly rollups are kept this long (TTL): reports over older
   * periods answer from them once the raw spans are gone. At least ROUTEWATCH_RETENTION_DAYS.
   */
  ROUTEWATCH_ROLLUP_RETENTION_DAYS: integer(1, 36_500, 400),
  /**
   * How often this process brings the rollups up to date with what was stored since; 0: never
   * (where several processes share one store, one refresher is enough).
   */
  ROUTEWATCH_ROLLUP_INTERVAL: duration('10s', 0).refine(
    (ms) => ms === 0 || ms >= 1_000,
    'use 0 (no refresher in this process) or at least 1s',
  ),
  /** Spans starting further ahead than this (a sender's clock) are refused. */
  ROUTEWATCH_MAX_CLOCK_SKEW: duration('1h', 0, { ms: 365 * 86_400_000, text: 'at most 365d' }),

  // Alerting.
  /** The rules file (YAML or JSON); unset: the default rules (docs/rules.md). */
  ROUTEWATCH_RULES: z.preprocess(unset, z.string().optional()),
  /**
   * How often `routewatch start` evaluates the rules; 0 turns the periodic evaluation off. An
   * evaluation reads the horizon and every baseline, so more often than every 10 s is refused.
   */
  ROUTEWATCH_EVALUATE_EVERY: duration('1m', 0).refine(
    (ms) => ms === 0 || ms >= 10_000,
    'use 0 (no periodic evaluation) or at least 10s: each evaluation reads the horizon and the baselines',
  ),
  /** A Slack incoming webhook for alerts. A secret: never logged. */
  ROUTEWATCH_SLACK_WEBHOOK_URL: z.preprocess(unset, fetchableUrl('the notifier').optional()),
  /** A generic JSON webhook for alerts. A secret: never logged. */
  ROUTEWATCH_WEBHOOK_URL: z.preprocess(unset, fetchableUrl('the notifier').optional()),
  /**
   * How long an alert channel may take to answer before the message counts as failed and is sent
   * again (with the same Idempotency-Key): a webhook that works before it answers needs more.
   */
  ROUTEWATCH_NOTIFY_TIMEOUT: duration('10s', 1_000, {
    ms: 300_000,
    text: 'at most 5m: a message waiting longer holds up every alert after it',
  }),
  /** The address people open routewatch at, for links in alerts; default: where it listens. */
  ROUTEWATCH_PUBLIC_URL: z.preprocess(unset, fetchableUrl('a browser following a link').optional()),

  // Live SQL (`routewatch sql`, POST /api/v1/sql): read-only by the engine, within these limits,
  // each enforced by ClickHouse itself and answered with an error naming the setting.
  /** Rows one query may return (the engine's max_result_rows). */
  ROUTEWATCH_SQL_MAX_ROWS: integer(1, 10_000_000, 10_000),
  /** Time one query may run (max_execution_time); a ClickHouse server's client also gives up after 30 s. */
  ROUTEWATCH_SQL_MAX_TIME: duration('15s', 100),
  /** Memory one query may use (max_memory_usage). */
  ROUTEWATCH_SQL_MAX_MEMORY_BYTES: byteSize(1 * MiB, 1024 * 1024 * MiB, 1024 * MiB),
  /** Size of one query's answer (max_result_bytes, and the answer's text as it comes back). */
  ROUTEWATCH_SQL_MAX_RESULT_BYTES: byteSize(1 * MiB, 1024 * MiB, 64 * MiB),

  // The span writer (group commit into ClickHouse).
  ROUTEWATCH_BATCH_ROWS: integer(1, 1_000_000, 10_000),
  /**
   * The longest wait to fill an insert; unset: see `batchDelayMs` (1 s with the log, none
   * without it).
   */
  ROUTEWATCH_BATCH_DELAY: optionalDuration(0),
  ROUTEWATCH_MAX_PENDING_ROWS: integer(1, 100_000_000, 200_000),
  ROUTEWATCH_MAX_PENDING_BYTES: byteSize(1 * MiB, 64 * 1024 * MiB, 256 * MiB),
  ROUTEWATCH_DEDUP_WINDOW: integer(0, 100_000_000, 1_000_000),

  // The write-ahead log (collector/wal.ts; docs/architecture.md, "Guarantees").
  /**
   * `on`: a request is answered once its spans are fsynced to the log, and the log is drained
   * into ClickHouse, so a store outage or restart loses nothing. `off`: answered only once
   * stored in ClickHouse (for tests and benchmarks of the store path).
   */
  ROUTEWATCH_WAL: z.preprocess(unset, z.enum(['on', 'off']).default('on')),
  /** Where the log lives; default `<ROUTEWATCH_DATA_DIR>/wal`, in server mode too (./.routewatch/wal). */
  ROUTEWATCH_WAL_DIR: z.preprocess(unset, z.string().optional()),
  /** The log's disk budget; past it ingest is refused (503 + Retry-After) and /readyz says why. */
  ROUTEWATCH_WAL_MAX_BYTES: byteSize(64 * 1024, 64 * 1024 * 1024 * MiB, 1024 * MiB),

  // Files: prices and the mapping of other tools' attributes (YAML or JSON; docs/pricing.md,
  // docs/mapping.md).
  /** Price overrides, and whether the bundled catalogue prices the rest. */
  ROUTEWATCH_PRICES: settingsFile<PriceSettings>(parsePriceFile),
  /** Routing fields (task id, cohort, route, outcome, …) derived from foreign attributes. */
  ROUTEWATCH_MAPPING: settingsFile<MappingRules>(parseMappingFile),
});

export type Config = z.output<typeof configSchema>;

/**
 * How far back and ahead a time sent to routewatch may be: a span's start, a late outcome's
 * observedAt. Back: retention (older would be deleted at once); ahead: a sender's clock skew.
 */
export function acceptedTimes(config: Config): { maxAgeMs: number; maxAheadMs: number } {
  return {
    maxAgeMs: config.ROUTEWATCH_RETENTION_DAYS * 86_400_000,
    maxAheadMs: config.ROUTEWATCH_MAX_CLOCK_SKEW,
  };
}

/** ROUTEWATCH_BATCH_DELAY when unset and the request waits for the insert (ROUTEWATCH_WAL=off). */
export const BATCH_DELAY_WITHOUT_LOG_MS = 0;
/** ROUTEWATCH_BATCH_DELAY when unset and the log is drained into the store (the default). */
export const BATCH_DELAY_WITH_LOG_MS = 1_000;

/**
 * The longest wait to fill an insert into ClickHouse. Without the log, each request's answer waits
 * for its insert, so there is none by default: an idle collector inserts a request at once, and
 * under load the rows that arrive during one insert make the next (span-writer.ts). With the log, answers wait only for the fsync and the wait is the
 * drainer's: an insert has a fixed cost in the engine whatever its size, so at most about one
 * insert a second, as ClickHouse advises, until ROUTEWATCH_BATCH_ROWS rows are waiting (the
 * engine's threads spent 2-5× less CPU per row in the drainer's inserts of ~8 000 rows than in
 * inserts of 500-2 500: docs/benchmarks.md, "The 1-s drain window"). Queries that read their
 * writes and a shutdown do not wait for it (SpanWriter.flush, close).
 */
export function batchDelayMs(config: Config): number {
  if (config.ROUTEWATCH_BATCH_DELAY !== undefined) return config.ROUTEWATCH_BATCH_DELAY;
  return config.ROUTEWATCH_WAL === 'on' ? BATCH_DELAY_WITH_LOG_MS : BATCH_DELAY_WITHOUT_LOG_MS;
}

export class ConfigError extends Error {
  readonly code = 'BAD_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Parses the environment (or any map of the same names) into a Config; throws ConfigError. */
export function parseConfig(source: Record<string, string | undefined> = process.env): Config {
  const parsed = configSchema.safeParse(source);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const conflicts = conflictsOf(parsed.data, source);
  if (conflicts.length > 0) {
    throw new ConfigError(`invalid configuration:\n${conflicts.map((c) => `  ${c}`).join('\n')}`);
  }
  return parsed.data;
}

/** Settings the instrumentation reads in the instrumented service (instrumentation/src/config.ts). */
export const INSTRUMENTATION_SETTINGS: readonly string[] = [
  'ROUTEWATCH_CAPTURE_CONTENT',
  'ROUTEWATCH_SDK_CAPTURE',
  'ROUTEWATCH_STREAM_USAGE',
];

/**
 * `ROUTEWATCH_*` variables that are no setting, each with the setting it most likely means: a
 * misspelt one is otherwise ignored without a word, and its default used.
 */
export function unknownSettings(
  source: Record<string, string | undefined> = process.env,
): { name: string; suggestion: string | undefined }[] {
  const known = [...Object.keys(configSchema.shape), ...INSTRUMENTATION_SETTINGS];
  return Object.keys(source)
    .filter((name) => name.startsWith('ROUTEWATCH_') && !known.includes(name))
    .sort()
    .map((name) => ({ name, suggestion: closestName(name, known) }));
}

/**
 * Only the named settings, parsed as parseConfig does; the others are neither read nor checked.
 * For commands that need a few (a client needs the URL and the token): a server's environment,
 * with relative file paths or settings only the server uses, must not stop them.
 */
export function parseSettings<K extends keyof Config>(
  names: readonly K[],
  source: Record<string, string | undefined> = process.env,
): Pick<Config, K> {
  const schema = z.object(
    Object.fromEntries(names.map((name) => [name, configSchema.shape[name]])),
  );
  const parsed = schema.safeParse(source);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data as unknown as Pick<Config, K>;
}

/**
 * Settings valid alone but not together, each as `NAME: why` (both names where either may be the
 * one to change). `source` tells a value set from a default, which the user may not know of.
 */
function conflictsOf(config: Config, source: Record<string, string | undefined>): string[] {
  const conflicts: string[] = [];
  const spanDays = config.ROUTEWATCH_RETENTION_DAYS;
  const rollupDays = config.ROUTEWATCH_ROLLUP_RETENTION_DAYS;
  if (rollupDays < spanDays) {
    const rollupSet = unset(source['ROUTEWATCH_ROLLUP_RETENTION_DAYS']) !== undefined;
    conflicts.push(
      `ROUTEWATCH_RETENTION_DAYS and ROUTEWATCH_ROLLUP_RETENTION_DAYS: raw spans would be kept ${spanDays} ` +
        `days but the rollups only ${rollupDays}${rollupSet ? '' : ' (the default)'}; reports over a period ` +
        'answer from the rollups once its raw spans are gone, so the rollups are kept at least as long: ' +
        `set ROUTEWATCH_ROLLUP_RETENTION_DAYS to ${spanDays} or more as well, or lower ROUTEWATCH_RETENTION_DAYS`,
    );
  }
  if (config.ROUTEWATCH_CLICKHOUSE_CLUSTER !== undefined && config.CLICKHOUSE_URL === undefined) {
    conflicts.push(
      'ROUTEWATCH_CLICKHOUSE_CLUSTER: needs CLICKHOUSE_URL (the embedded store is one process, not a cluster)',
    );
  }
  return conflicts;
}

/** The defaults, with some settings changed: for tests and embedding. */
export function configWith(overrides: Partial<Record<keyof Config, string>> = {}): Config {
  return parseConfig(overrides);
}

const LOOPBACK_NAMES = new Set(['localhost', '::1', '[::1]']);

/** Whether `host` can only be reached from this machine: 127.0.0.0/8, ::1 or localhost. */
export function isLoopback(host: string): boolean {
  const name = host.toLowerCase();
  // A name such as 127.example.com resolves wherever its owner says: only real addresses count.
  return LOOPBACK_NAMES.has(name) || (isIP(name) === 4 && name.startsWith('127.'));
}

/** Nobody ingests or reads without a token when routewatch listens beyond loopback. */
export function assertSafeExposure(config: Config): void {
  if (config.ROUTEWATCH_INGEST_TOKEN !== undefined) {
    if (config.ROUTEWATCH_TOKEN === undefined) {
      throw new ConfigError(
        "ROUTEWATCH_INGEST_TOKEN is the exporters' token beside ROUTEWATCH_TOKEN, which the API, " +
          'the dashboard and the CLI use: set ROUTEWATCH_TOKEN too (without it nothing is protected)',
      );
    }
    if (config.ROUTEWATCH_INGEST_TOKEN === config.ROUTEWATCH_TOKEN) {
      throw new ConfigError(
        'ROUTEWATCH_INGEST_TOKEN is the same as ROUTEWATCH_TOKEN: give the exporters a token of ' +
          'their own, or leave ROUTEWATCH_INGEST_TOKEN unset',
      );
    }
  }
  if (!isLoopback(config.ROUTEWATCH_HOST) && !config.ROUTEWATCH_TOKEN) {
    throw new ConfigError(
      `routewatch would listen on ${config.ROUTEWATCH_HOST}, beyond loopback, without a token: ` +
        'set ROUTEWATCH_TOKEN (16+ characters) or listen on 127.0.0.1',
    );
  }
}
