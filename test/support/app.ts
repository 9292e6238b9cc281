import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import type { Evaluator } from '../../analyzer/evaluator.js';
import type { Channel, Notifier, NotifierOptions } from '../../analyzer/notifier.js';
import { resolveRules } from '../../analyzer/rules.js';
import type { RuleSet } from '../../analyzer/rules.js';
import type { IngestRunner } from '../../collector/ingest-pool.js';
import { SpanWriter } from '../../collector/span-writer.js';
import { configWith } from '../../server/config.js';
import type { Config } from '../../server/config.js';
import { assembleRoutewatch, writerOptions } from '../../server/start.js';
import type { Store } from '../../storage/store.js';
import { otlpBodiesOf } from './tasks.js';
import type { CraftedTask } from './tasks.js';

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

/**
 * The production app on a given store, wired as `routewatch start` wires it (buildApp: auth,
 * error handler, every plugin; ingest on a real worker thread; the alert evaluator and, with
 * channels, the notifier running), with a short batch delay so tests need not wait. The periodic
 * evaluation is off: tests evaluate at chosen times.
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
    ROUTEWATCH_EVALUATE_EVERY: '0',
    // Suites of other features read the store right after the answer: without the write-ahead
    // log the answer comes once the rows are stored. The log's suites turn it on.
    ROUTEWATCH_WAL: 'off',
    // No rollup refresher: the views are exact without it, and the rollup suites refresh when
    // they mean to.
    ROUTEWATCH_ROLLUP_INTERVAL: '0',
    ...options.config,
  });
  const assembled = await assembleRoutewatch(config, store, {
    logger: options.logger ?? false,
    rules: options.rules ?? resolveRules(),
    channels: options.channels ?? [],
    ...(options.notifier ? { notifier: options.notifier } : {}),
    publicUrl: () => 'http://routewatch.test',
    ...(options.writer ? { writer: options.writer } : {}),
    ...(options.wrapIngest ? { wrapIngest: options.wrapIngest } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
  assembled.begin();
  return { ...assembled, config };
}

/** A span writer with the default settings but a short batch delay. */
export function testWriter(store: Store, overrides: ConfigOverrides = {}): SpanWriter {
  return new SpanWriter(
    store,
    writerOptions(configWith({ ROUTEWATCH_BATCH_DELAY: '5ms', ...overrides })),
  );
}

/** Sends crafted tasks through the app's OTLP/JSON endpoint; each request must be stored whole. */
export async function sendTasks(rw: TestApp, tasks: CraftedTask[]): Promise<void> {
  for (const body of otlpBodiesOf(tasks)) {
    const res = await rw.app.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { 'content-type': 'application/json' },
      payload: body,
    });
    if (res.statusCode !== 200 || res.body !== '{}') {
      throw new Error(`OTLP request answered ${res.statusCode}: ${res.body}`);
    }
  }
}

/** A finding as the evaluate API answers it. */
export interface EvaluatedFinding {
  rule: string;
  cohort: string;
  route: string;
  detail: string;
  status: string;
  summary: string;
}

/**
 * The findings of one dry-run evaluation at `atMs` (nothing stored), and the finding of one
 * monitor, which must be there.
 */
export async function dryRunFindings(
  rw: TestApp,
  atMs: number,
): Promise<{
  findings: EvaluatedFinding[];
  finding: (rule: string, cohort: string, route?: string) => EvaluatedFinding;
}> {
  const res = await rw.app.inject({
    method: 'POST',
    url: `/api/v1/evaluate?at=${new Date(atMs).toISOString()}&dryRun=true`,
  });
  if (res.statusCode !== 200) throw new Error(`evaluate answered ${res.statusCode}: ${res.body}`);
  const findings = (res.json() as { findings: EvaluatedFinding[] }).findings;
  return {
    findings,
    finding: (rule, cohort, route = 'small') => {
      const found = findings.find(
        (f) => f.rule === rule && f.cohort === cohort && f.route === route,
      );
      if (!found) throw new Error(`no ${rule} finding on ${cohort} × ${route}`);
      return found;
    },
  };
}
