import { resolve } from 'node:path';
import type { Command } from '../command.js';
import { parseConfig, unknownSettings } from '../../server/config.js';
import type { RunningRoutewatch } from '../../server/start.js';

export const startCommand: Command<Record<string, never>> = {
  name: 'start',
  summary: 'collector + analyzer + embedded ClickHouse in one process',
  usage: `
Usage: routewatch start

Listens for OTLP/HTTP traces (POST /v1/traces), late outcomes (POST /v1/outcomes) and the API
(GET /api/v1/report), with the data in ROUTEWATCH_DATA_DIR (embedded ClickHouse) or on the
ClickHouse server CLICKHOUSE_URL names. A request is answered once its spans are in the
write-ahead log (ROUTEWATCH_WAL_DIR), which is drained into ClickHouse, also after a restart.
Stops on SIGINT/SIGTERM; what it acknowledged is stored, or kept in the log for the next start.

Environment (defaults in parentheses; see docs/operating.md for all settings):
  ROUTEWATCH_HOST (127.0.0.1)   ROUTEWATCH_PORT (4318)   ROUTEWATCH_DATA_DIR (./.routewatch)
  CLICKHOUSE_URL (unset: embedded)   ROUTEWATCH_TOKEN (required beyond loopback)
  ROUTEWATCH_LOG_LEVEL (info)   ROUTEWATCH_RETENTION_DAYS (30)   ROUTEWATCH_MAX_BODY_BYTES (20 MiB)
  ROUTEWATCH_RULES (unset: default rules)   ROUTEWATCH_EVALUATE_EVERY (1m; 0 turns it off)
  ROUTEWATCH_SLACK_WEBHOOK_URL   ROUTEWATCH_WEBHOOK_URL   ROUTEWATCH_PUBLIC_URL (links in alerts)
  ROUTEWATCH_WAL (on)   ROUTEWATCH_WAL_DIR (<ROUTEWATCH_DATA_DIR>/wal)   ROUTEWATCH_WAL_MAX_BYTES (1 GiB)
`,
  options: {},
  async run() {
    // The handlers go in before anything starts: with none, a SIGTERM kills the process outright,
    // and one sent as soon as the banner shows (by a supervisor, or a script) raced them. A signal
    // while starting stops it once started; a second one stops it at once.
    let running: RunningRoutewatch | undefined = undefined;
    let asked: string | undefined;
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping || (asked && !running)) {
        // Asked again: the operator will not wait. What was acknowledged is in the log (with
        // ROUTEWATCH_WAL=off, in the store: nothing is acknowledged before it is stored).
        // Written to stderr, which is synchronous: the logger's buffered line would die with us.
        process.stderr.write(
          `routewatch: ${signal} again${running ? '' : ' while starting'}: stopping at once\n`,
        );
        // Ended by the signal itself, its default action once our handlers are gone: exit()
        // runs the embedded engine's exit handlers, which can wait forever on a lock while the
        // store is still open (as it is while the first stop waits for a slow body), leaving a
        // hung process holding the data directory. The shell sees 143 (130) all the same.
        process.off('SIGINT', onSigint);
        process.off('SIGTERM', onSigterm);
        process.kill(process.pid, signal);
        return;
      }
      asked = signal;
      if (!running) {
        process.stderr.write(`routewatch: ${signal} while starting: stopping once started\n`);
        return;
      }
      stopping = true;
      const stopped = running;
      stopped.app.log.info({ signal }, 'shutting down (again to stop at once)');
      const since = performance.now();
      stopped.close().then(
        () => {
          // The last line: an operator reading the log sees the stop finished, and how long it took.
          stopped.app.log.info({ ms: Math.round(performance.now() - since) }, 'stopped');
          process.exit(0);
        },
        (error: unknown) => {
          stopped.app.log.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    const onSigint = () => stop('SIGINT');
    const onSigterm = () => stop('SIGTERM');
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', onSigterm);
    const config = parseConfig();
    for (const { name, suggestion } of unknownSettings()) {
      process.stderr.write(
        `routewatch: warning: ${name} is not a routewatch setting and is ignored` +
          `${suggestion ? ` (did you mean ${suggestion}?)` : ''}; the settings are in docs/operating.md\n`,
      );
    }
    const prices = config.ROUTEWATCH_PRICES;
    for (const warning of prices?.settings.warnings ?? []) {
      process.stderr.write(`routewatch: warning: ROUTEWATCH_PRICES ${prices!.path}: ${warning}\n`);
    }
    const mapping = config.ROUTEWATCH_MAPPING;
    if (
      mapping &&
      Object.keys(mapping.settings.fields).length === 0 &&
      mapping.settings.task_spans.length === 0
    ) {
      process.stderr.write(
        `routewatch: warning: ROUTEWATCH_MAPPING ${mapping.path}: the file maps nothing (no fields, no task_spans); see docs/mapping.md\n`,
      );
    }
    const { startRoutewatch } = await import('../../server/start.js');
    const started = await startRoutewatch(config, {
      logger: {
        level: config.ROUTEWATCH_LOG_LEVEL,
        redact: ['req.headers.authorization', '*.webhookUrl', '*.token'],
      },
    });
    running = started;
    const where =
      started.store.driver === 'embedded'
        ? `embedded ClickHouse, data in ${resolve(config.ROUTEWATCH_DATA_DIR)}`
        : `ClickHouse server ${started.store.location}`;
    const wal = started.walDir
      ? `Write-ahead log: ${started.walDir}\n\n`
      : 'Write-ahead log: off (ROUTEWATCH_WAL=off): a request is answered once stored.\n\n';
    process.stdout.write(
      `\nroutewatch is listening on ${started.url} (${where})\n\n` +
        wal +
        "Point your service's OpenTelemetry exporter here:\n" +
        `  OTEL_EXPORTER_OTLP_ENDPOINT=${started.url} \\\n` +
        // The token itself is never printed: the shell fills it in from the variable.
        (config.ROUTEWATCH_INGEST_TOKEN
          ? '    OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer%20$ROUTEWATCH_INGEST_TOKEN" \\\n'
          : config.ROUTEWATCH_TOKEN
            ? '    OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer%20$ROUTEWATCH_TOKEN" \\\n'
            : '') +
        '    node --import @routewatch/instrumentation/register app.js\n\n' +
        `Dashboard: ${started.url}/\n` +
        `Report: routewatch report --url ${started.url}   (or GET ${started.url}/api/v1/report)\n` +
        `Alerts: routewatch alerts --url ${started.url}   (${config.ROUTEWATCH_EVALUATE_EVERY > 0 ? `rules evaluated every ${config.ROUTEWATCH_EVALUATE_EVERY / 1000} s` : 'periodic evaluation off'}${config.ROUTEWATCH_SLACK_WEBHOOK_URL ? ', sent to Slack' : ''}${config.ROUTEWATCH_WEBHOOK_URL ? ', sent to the webhook' : ''})\n` +
        (config.ROUTEWATCH_SLACK_WEBHOOK_URL || config.ROUTEWATCH_WEBHOOK_URL
          ? `        check the channels now: routewatch alerts --test --url ${started.url}\n`
          : '') +
        'Stop with Ctrl-C: spans already acknowledged are stored, or kept in the log for the next start.\n\n',
    );
    if (asked) stop(asked);
    // Keeps running until a signal.
    await new Promise<never>(() => undefined);
  },
};
