import { diag } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OpenAIInstrumentation } from './openai.js';
import { RoutewatchSpanProcessor } from './span-processor.js';
import type { RegisterOptions, RoutewatchHandle } from './types.js';

export const DEFAULT_TRACES_ENDPOINT = 'http://localhost:4318/v1/traces';

let active: RoutewatchHandle | undefined;

/**
 * Starts the OpenTelemetry Node SDK for routewatch: our span processor first (so exported spans
 * carry the routing context), a batching OTLP/HTTP JSON exporter, the OpenAI capture, plus
 * whatever `opts` adds. A second call returns the handle of the first.
 */
export function registerRoutewatch(opts: RegisterOptions = {}): RoutewatchHandle {
  if (active !== undefined) {
    diag.warn('routewatch: registerRoutewatch called twice; keeping the first registration');
    return active;
  }
  const exporter = new OTLPTraceExporter({
    url: resolveTracesEndpoint(opts.tracesEndpoint, process.env),
  });
  const spanProcessors: SpanProcessor[] = [
    new RoutewatchSpanProcessor(),
    new BatchSpanProcessor(
      exporter,
      opts.exportIntervalMillis === undefined
        ? {}
        : { scheduledDelayMillis: opts.exportIntervalMillis },
    ),
    ...(opts.spanProcessors ?? []),
  ];
  const serviceName = opts.serviceName ?? nonEmpty(process.env['OTEL_SERVICE_NAME']);
  const sdk = new NodeSDK({
    ...(serviceName === undefined ? {} : { serviceName }),
    spanProcessors,
    instrumentations: [new OpenAIInstrumentation(), ...(opts.instrumentations ?? [])],
  });
  sdk.start();

  let shutdown: Promise<void> | undefined;
  const handle: RoutewatchHandle = {
    async forceFlush() {
      if (shutdown !== undefined) return;
      await Promise.all(spanProcessors.map((processor) => processor.forceFlush()));
    },
    shutdown() {
      shutdown ??= sdk.shutdown().finally(() => {
        if (active === handle) active = undefined;
      });
      return shutdown;
    },
  };
  active = handle;
  return handle;
}

/**
 * The OTLP/HTTP traces URL: explicit option, then OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given,
 * then OTEL_EXPORTER_OTLP_ENDPOINT with `/v1/traces` appended, then the local default.
 */
export function resolveTracesEndpoint(
  explicit: string | undefined,
  env: NodeJS.ProcessEnv,
): string {
  const given = nonEmpty(explicit) ?? nonEmpty(env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']);
  if (given !== undefined) return given;
  const base = nonEmpty(env['OTEL_EXPORTER_OTLP_ENDPOINT']);
  if (base !== undefined) return `${base.replace(/\/+$/, '')}/v1/traces`;
  return DEFAULT_TRACES_ENDPOINT;
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === undefined || trimmed === '' ? undefined : trimmed;
}
