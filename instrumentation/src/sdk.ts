import { diag, ProxyTracerProvider, trace } from '@opentelemetry/api';
import type { TracerProvider } from '@opentelemetry/api';
import { OTLPTraceExporter as OTLPJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OTLPProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import type { Instrumentation } from '@opentelemetry/instrumentation';
import { NodeSDK } from '@opentelemetry/sdk-node';
import {
  BatchSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { AnthropicInstrumentation } from './providers/anthropic.js';
import { nonEmpty, readBatchSettings, readRoutewatchEnv } from './config.js';
import { OpenAIInstrumentation } from './providers/openai.js';
import { RoutewatchSpanProcessor } from './span-processor.js';
import { guard } from './errors.js';
import { endOpenStreams } from './capture/span-lifecycle.js';
import type {
  InstrumentationsOptions,
  RegisterOptions,
  RoutewatchHandle,
  SpanProcessorsOptions,
} from './types.js';

export const DEFAULT_TRACES_ENDPOINT = 'http://localhost:4318/v1/traces';

let active: RoutewatchHandle | undefined;

const ALREADY_REGISTERED =
  'an OpenTelemetry SDK is already running in this process (a tracer provider is registered), ' +
  'so routewatch starts none of its own and records nothing: add routewatchSpanProcessors() and ' +
  'routewatchInstrumentations() to your NodeSDK instead (README, "Bring your own NodeSDK")';

const LATER_SDK =
  'another OpenTelemetry SDK started after routewatch and could not register its tracer ' +
  'provider (OpenTelemetry keeps the first): its exporter receives nothing, and LLM calls its ' +
  'instrumentations capture beside ours count twice. Start routewatch inside your SDK instead: ' +
  'routewatchSpanProcessors() and routewatchInstrumentations() (README, "Bring your own NodeSDK")';

/**
 * Says so when an SDK started after ours fails to register its provider (the app's own NodeSDK
 * behind the register entry): OpenTelemetry tells it only through `diag`, which nobody reads.
 */
function warnOfLaterSdk(): void {
  guard('watching for a later OpenTelemetry SDK', () => {
    const api = trace as { setGlobalTracerProvider(provider: TracerProvider): boolean };
    const register = api.setGlobalTracerProvider.bind(api);
    let warned = false;
    api.setGlobalTracerProvider = (provider: TracerProvider) => {
      const registered = register(provider);
      if (!registered && !warned) {
        warned = true;
        diag.warn(`routewatch: ${LATER_SDK}`);
        console.warn(`[routewatch] ${LATER_SDK}`);
      }
      return registered;
    };
  });
}

/** The API's no-op provider, which an unregistered proxy delegates to. */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/**
 * Whether a tracer provider is registered globally already (the app's own NodeSDK, say): the
 * global proxy delegates to something other than the no-op provider. By identity, never by class
 * name, which bundlers rename. A global set by another copy of `@opentelemetry/api` is one only
 * once a provider was registered through it, so it counts too.
 */
export function tracingAlreadyRegistered(): boolean {
  const provider = trace.getTracerProvider() as TracerProvider & {
    getDelegate?: () => TracerProvider;
  };
  const delegate = typeof provider.getDelegate === 'function' ? provider.getDelegate() : provider;
  return delegate !== NOOP_PROVIDER;
}

/**
 * Starts the OpenTelemetry Node SDK for routewatch: our span processor first (so exported spans
 * carry the routing context), a batching OTLP/HTTP exporter (JSON by default), the OpenAI and
 * Anthropic captures, plus whatever `opts` adds. Options win over the environment. A second call
 * returns the handle of the first.
 */
export function registerRoutewatch(opts: RegisterOptions = {}): RoutewatchHandle {
  if (active !== undefined) {
    diag.warn('routewatch: registerRoutewatch called twice; keeping the first registration');
    return active;
  }
  if (tracingAlreadyRegistered()) {
    // A second NodeSDK could not register its provider (OpenTelemetry holds one per process):
    // routewatch would store nothing while its captures doubled the app's own LLM spans.
    // Starting nothing keeps the app's tracing exactly as it was, and says so.
    const message = ALREADY_REGISTERED;
    diag.warn(`routewatch: ${message}`);
    console.warn(`[routewatch] ${message}`);
    return { forceFlush: async () => {}, shutdown: async () => {} };
  }
  const spanProcessors: SpanProcessor[] = [
    ...routewatchSpanProcessors(opts),
    ...(opts.spanProcessors ?? []),
  ];
  const serviceName = opts.serviceName ?? nonEmpty(process.env['OTEL_SERVICE_NAME']);
  const sdk = new NodeSDK({
    ...(serviceName === undefined ? {} : { serviceName }),
    spanProcessors,
    instrumentations: [...routewatchInstrumentations(opts), ...(opts.instrumentations ?? [])],
  });
  sdk.start();
  warnOfLaterSdk();

  let shutdown: Promise<void> | undefined;
  const handle: RoutewatchHandle = {
    async forceFlush() {
      if (shutdown !== undefined) return;
      await Promise.all(spanProcessors.map((processor) => processor.forceFlush()));
    },
    shutdown() {
      // Streams dropped unfinished and not yet collected: their spans go with the last export.
      endOpenStreams();
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
 * For apps that build their own NodeSDK or tracer provider: the stamping processor, then a batch
 * processor exporting to the routewatch collector (or into `opts.exporter`). Keep the order: the
 * stamping must run before the export.
 */
export function routewatchSpanProcessors(opts: SpanProcessorsOptions = {}): SpanProcessor[] {
  const exporter = opts.exporter ?? createTraceExporter(opts);
  // Explicit settings: the processor would read OTEL_BSP_* itself, unchecked.
  const batch = readBatchSettings(process.env);
  if (opts.exportIntervalMillis !== undefined) {
    batch.scheduledDelayMillis = opts.exportIntervalMillis;
  }
  return [new RoutewatchSpanProcessor(), new BatchSpanProcessor(exporter, batch)];
}

/**
 * For apps that build their own NodeSDK: the OpenAI and Anthropic captures, configured from
 * `opts`, then ROUTEWATCH_* variables. Empty when the SDK capture is off.
 */
export function routewatchInstrumentations(opts: InstrumentationsOptions = {}): Instrumentation[] {
  const env = readRoutewatchEnv(process.env);
  if ((opts.sdkCapture ?? env.sdkCapture) === false) return [];
  const captureContent = opts.captureContent ?? env.captureContent ?? false;
  const requestStreamUsage = opts.requestStreamUsage ?? env.requestStreamUsage ?? true;
  return [
    new OpenAIInstrumentation({ captureContent, requestStreamUsage }),
    new AnthropicInstrumentation({ captureContent }),
  ];
}

/**
 * The OTLP/HTTP trace exporter: JSON (what the routewatch collector takes; the default) or
 * protobuf, from `opts.protocol`, then OTEL_EXPORTER_OTLP_TRACES_PROTOCOL /
 * OTEL_EXPORTER_OTLP_PROTOCOL. Headers from OTEL_EXPORTER_OTLP_(TRACES_)HEADERS are added by the
 * exporter itself; `opts.headers` go over them.
 */
export function createTraceExporter(opts: SpanProcessorsOptions = {}): SpanExporter {
  const protocol = opts.protocol ?? readRoutewatchEnv(process.env).protocol ?? 'http/json';
  const config = {
    url: resolveTracesEndpoint(opts.tracesEndpoint, process.env),
    ...(opts.headers === undefined ? {} : { headers: opts.headers }),
  };
  return protocol === 'http/protobuf'
    ? new OTLPProtoTraceExporter(config)
    : new OTLPJsonTraceExporter(config);
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
