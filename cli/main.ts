#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import type { Report } from '../analyzer/report.js';
import { renderReportTable } from '../analyzer/report-table.js';
import { migrate } from '../storage/migrations.js';
import { openStore } from '../storage/open-store.js';
import { ConfigError, parseEnv } from './env.js';

const HELP = `routewatch — is your LLM routing still saving money?

Usage:
  routewatch start               collector + analyzer + embedded ClickHouse in one process
  routewatch demo [--tasks N] [--seed S] [--concurrency C] [--latency-scale X]
                                 the whole pipeline on a local mock LLM, then the report
  routewatch report [--window 24h | --from ISO --to ISO] [--json] [--url URL]
                                 cost per successful task, fallbacks, p95 per cohort × route
  routewatch migrate             apply schema migrations (CLICKHOUSE_URL or the data directory)

Environment:
  ROUTEWATCH_HOST (127.0.0.1)  ROUTEWATCH_PORT (4318)  ROUTEWATCH_DATA_DIR (./.routewatch)
  CLICKHOUSE_URL (unset: embedded)  ROUTEWATCH_TOKEN (required beyond loopback)
  ROUTEWATCH_LOG_LEVEL (info)  ROUTEWATCH_URL (for report; default http://127.0.0.1:4318)
`;

async function start(): Promise<void> {
  const env = parseEnv();
  const { startRoutewatch } = await import('./server.js');
  const running = await startRoutewatch({
    host: env.ROUTEWATCH_HOST,
    port: env.ROUTEWATCH_PORT,
    dataDir: env.ROUTEWATCH_DATA_DIR,
    clickhouseUrl: env.CLICKHOUSE_URL,
    token: env.ROUTEWATCH_TOKEN,
    logger: { level: env.ROUTEWATCH_LOG_LEVEL },
  });
  const where =
    running.store.driver === 'embedded'
      ? `embedded ClickHouse, data in ${resolve(env.ROUTEWATCH_DATA_DIR)}`
      : `ClickHouse server ${running.store.location}`;
  process.stdout.write(
    `\nroutewatch is listening on ${running.url} (${where})\n\n` +
      "Point your service's OpenTelemetry exporter here:\n" +
      `  OTEL_EXPORTER_OTLP_ENDPOINT=${running.url} OTEL_EXPORTER_OTLP_PROTOCOL=http/json \\\n` +
      '    node --import @routewatch/instrumentation/register app.js\n\n' +
      `Report: npm run report   (or GET ${running.url}/api/v1/report)\n` +
      'Stop with Ctrl-C: spans already acknowledged are written before exit.\n\n',
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    running.app.log.info({ signal }, 'shutting down');
    running.close().then(
      () => process.exit(0),
      (error: unknown) => {
        running.app.log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

async function report(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      window: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      json: { type: 'boolean', default: false },
      url: { type: 'string' },
    },
  });
  const base = values.url ?? process.env['ROUTEWATCH_URL'] ?? 'http://127.0.0.1:4318';
  const query = new URLSearchParams();
  if (values.window) query.set('window', values.window);
  if (values.from) query.set('from', values.from);
  if (values.to) query.set('to', values.to);
  const headers: Record<string, string> = {};
  const token = process.env['ROUTEWATCH_TOKEN'];
  if (token) headers['authorization'] = `Bearer ${token}`;
  let response: Response;
  try {
    response = await fetch(`${base}/api/v1/report?${query}`, { headers });
  } catch (error) {
    throw new ConfigError(
      `no routewatch answered at ${base} (${(error as Error).message}). Start it with \`npm start\`, ` +
        'or point --url / ROUTEWATCH_URL at a running instance.',
    );
  }
  const body = (await response.json()) as Report | { message?: string };
  if (!response.ok)
    throw new ConfigError(
      `the report request failed (${response.status}): ${'message' in body ? body.message : ''}`,
    );
  process.stdout.write(
    values.json ? `${JSON.stringify(body, null, 2)}\n` : renderReportTable(body as Report),
  );
}

async function migrateCommand(): Promise<void> {
  const env = parseEnv();
  const store = await openStore({
    clickhouseUrl: env.CLICKHOUSE_URL,
    dataDir: env.ROUTEWATCH_DATA_DIR,
  });
  try {
    const result = await migrate(store);
    process.stdout.write(
      `${store.location}: applied ${result.applied.length} migration(s)` +
        `${result.applied.length ? ` (${result.applied.map((m) => m.name).join(', ')})` : ''}, ` +
        `${result.alreadyApplied} already applied\n`,
    );
  } finally {
    await store.close();
  }
}

async function demo(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      tasks: { type: 'string', default: '3000' },
      seed: { type: 'string', default: '42' },
      concurrency: { type: 'string', default: '32' },
      'latency-scale': { type: 'string', default: '0.05' },
      'data-dir': { type: 'string' },
    },
  });
  const number = (name: string, text: string, min: number) => {
    const n = Number(text);
    if (!Number.isFinite(n) || n < min)
      throw new ConfigError(`--${name} must be a number ≥ ${min}, got ${JSON.stringify(text)}`);
    return n;
  };
  const { runDemo } = await import('./demo.js');
  const result = await runDemo({
    tasks: Math.floor(number('tasks', values.tasks, 1)),
    seed: Math.floor(number('seed', values.seed, 0)),
    concurrency: Math.floor(number('concurrency', values.concurrency, 1)),
    latencyScale: number('latency-scale', values['latency-scale'], 0),
    dataDir: values['data-dir'],
  });
  if (result.mismatches.length > 0) process.exitCode = 1;
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start':
      return start();
    case 'demo':
      return demo(rest);
    case 'report':
      return report(rest);
    case 'migrate':
      return migrateCommand();
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return;
    default:
      throw new ConfigError(`unknown command ${JSON.stringify(command)}\n\n${HELP}`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`routewatch: ${message}\n`);
  process.exit(error instanceof ConfigError ? 2 : 1);
});
