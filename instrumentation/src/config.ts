import { diag } from '@opentelemetry/api';
import type { TracesProtocol } from './types.js';

/**
 * The environment the instrumentation reads, parsed strictly: a bad value is reported (through
 * `diag` and one console line, since `diag` is often silent at start-up) and the default is used.
 * Never throws: the host application starts whatever its environment holds.
 */

export interface RoutewatchEnv {
  captureContent: boolean | undefined;
  sdkCapture: boolean | undefined;
  requestStreamUsage: boolean | undefined;
  protocol: TracesProtocol | undefined;
}

export type Warn = (message: string) => void;

const warned = new Set<string>();

/** Reports a configuration problem once per process: through `diag` and on the console. */
export const warnOnce: Warn = (message) => {
  if (warned.has(message)) return;
  warned.add(message);
  diag.warn(message);
  console.warn(`[routewatch] ${message}`);
};

const TRUE_FALSE = { true: true, false: false } as const;
const ON_OFF = { on: true, off: false, true: true, false: false } as const;
const PROTOCOLS = ['http/json', 'http/protobuf'] as const;

export function readRoutewatchEnv(env: NodeJS.ProcessEnv, warn: Warn = warnOnce): RoutewatchEnv {
  return {
    captureContent: choice(env, 'ROUTEWATCH_CAPTURE_CONTENT', TRUE_FALSE, 'false', warn),
    sdkCapture: choice(env, 'ROUTEWATCH_SDK_CAPTURE', ON_OFF, 'on', warn),
    requestStreamUsage: choice(env, 'ROUTEWATCH_STREAM_USAGE', ON_OFF, 'on', warn),
    protocol: tracesProtocol(env, warn),
  };
}

/** OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, then OTEL_EXPORTER_OTLP_PROTOCOL; `grpc` is not spoken. */
function tracesProtocol(env: NodeJS.ProcessEnv, warn: Warn): TracesProtocol | undefined {
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const value = nonEmpty(env[name])?.toLowerCase();
    if (value === undefined) continue;
    if ((PROTOCOLS as readonly string[]).includes(value)) return value as TracesProtocol;
    warn(
      `${name}=${JSON.stringify(env[name])} is not supported (accepted: ${PROTOCOLS.join(', ')}); ` +
        'exporting with http/json',
    );
    return undefined;
  }
  return undefined;
}

/** What the batch span processor is built with: always explicit, never read by it unchecked. */
export interface BatchSettings {
  maxQueueSize: number;
  maxExportBatchSize: number;
  scheduledDelayMillis: number;
  exportTimeoutMillis: number;
}

/** The OpenTelemetry defaults of the OTEL_BSP_* variables. */
export const BATCH_DEFAULTS: Readonly<BatchSettings> = {
  maxQueueSize: 2048,
  maxExportBatchSize: 512,
  scheduledDelayMillis: 5000,
  exportTimeoutMillis: 30_000,
};

// Delays beyond the largest a Node timer holds would fire at once (TimeoutOverflowWarning).
const MAX_TIMER_MS = 2 ** 31 - 1;

const BATCH_VARIABLES = [
  ['maxQueueSize', 'OTEL_BSP_MAX_QUEUE_SIZE', 1, Number.MAX_SAFE_INTEGER],
  ['maxExportBatchSize', 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 1, Number.MAX_SAFE_INTEGER],
  ['scheduledDelayMillis', 'OTEL_BSP_SCHEDULE_DELAY', 0, MAX_TIMER_MS],
  ['exportTimeoutMillis', 'OTEL_BSP_EXPORT_TIMEOUT', 1, MAX_TIMER_MS],
] as const;

/**
 * OTEL_BSP_* as integers in range, each bad one replaced by its default with a warning: the SDK
 * reads them unchecked, and a batch size of 0 makes its flush loop forever (`ceil(n / 0)`). A
 * batch size above the queue size is lowered to it.
 */
export function readBatchSettings(env: NodeJS.ProcessEnv, warn: Warn = warnOnce): BatchSettings {
  const settings = { ...BATCH_DEFAULTS };
  for (const [key, name, min, max] of BATCH_VARIABLES) {
    const raw = nonEmpty(env[name]);
    if (raw === undefined) continue;
    const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
    if (Number.isSafeInteger(value) && value >= min && value <= max) {
      settings[key] = value;
      continue;
    }
    warn(
      `${name}=${JSON.stringify(raw)} is not valid (accepted: an integer from ${min} to ${max}); ` +
        `using ${BATCH_DEFAULTS[key]}`,
    );
  }
  if (settings.maxExportBatchSize > settings.maxQueueSize) {
    warn(
      `OTEL_BSP_MAX_EXPORT_BATCH_SIZE (${settings.maxExportBatchSize}) exceeds the queue size ` +
        `(${settings.maxQueueSize}); using ${settings.maxQueueSize}`,
    );
    settings.maxExportBatchSize = settings.maxQueueSize;
  }
  return settings;
}

function choice(
  env: NodeJS.ProcessEnv,
  name: string,
  accepted: Readonly<Record<string, boolean>>,
  fallback: string,
  warn: Warn,
): boolean | undefined {
  const raw = nonEmpty(env[name]);
  if (raw === undefined) return undefined;
  const value = accepted[raw.toLowerCase()];
  if (value !== undefined) return value;
  warn(
    `${name}=${JSON.stringify(raw)} is not valid (accepted: ${Object.keys(accepted).join(', ')}); ` +
      `using ${fallback}`,
  );
  return undefined;
}

export function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === undefined || trimmed === '' ? undefined : trimmed;
}
