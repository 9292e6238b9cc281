import { diag, ProxyTracerProvider, trace } from '@opentelemetry/api';
import type { TracerProvider } from '@opentelemetry/api';
import { OTLPTraceExporter as OTLPJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OTLPProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import type { Instrumentation } from '@opentelemetry/instrumentation';
import { envDetector, hostDetector } from '@opentelemetry/resources';
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
import {
  exportNow,
  headersFromEnv,
  SettlingExporter,
  tlsFromEnv,
  UnexportedSpanProcessor,
  UnexportedSpans,
  type ExitExportOutcome,
  type ExitTarget,
} from './exit-export.js';
import type {
  InstrumentationsOptions,
  RegisterOptions,
  RoutewatchHandle,
  SpanProcessorsOptions,
} from './types.js';

export const DEFAULT_TRACES_ENDPOINT = 'http://localhost:4318/v1/traces';

let active: RoutewatchHandle | undefined;
let secondCallWarned = false;

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
  return start(opts, false);
}

/**
 * The register entry's start: as registerRoutewatch, and the spans not yet exported are kept for
 * the export it makes at exit (exportUnexportedNow). Only the register entry, which installs the
 * `exit` hook, may start this way.
 */
export function registerForExitExport(): RoutewatchHandle {
  return start({}, true);
}

function start(opts: RegisterOptions, forExit: boolean): RoutewatchHandle {
  if (active !== undefined) {
    const message =
      'registerRoutewatch was called again (under the register entry, or twice): the first registration is kept, and these options are not applied';
    diag.warn(`routewatch: ${message}`);
    if (Object.keys(opts).length > 0 && !secondCallWarned) {
      secondCallWarned = true;
      console.warn(`[routewatch] ${message}`);
    }
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
  const built = buildSpanProcessors(opts, forExit);
  const spanProcessors: SpanProcessor[] = [...built.processors, ...(opts.spanProcessors ?? [])];
  const serviceName = opts.serviceName ?? nonEmpty(process.env['OTEL_SERVICE_NAME']);
  const sdk = new NodeSDK({
    ...(serviceName === undefined ? {} : { serviceName }),
    spanProcessors,
    instrumentations: [...routewatchInstrumentations(opts), ...(opts.instrumentations ?? [])],
    // Traces only. Left to its defaults NodeSDK also registers global metrics and logs providers
    // (OTLP, or a Prometheus listener on :9464 with OTEL_METRICS_EXPORTER=prometheus): the app's
    // own, registered after, would lose their data to a collector that takes neither.
    metricReaders: [],
    // The service's environment and host, unless OTEL_NODE_RESOURCE_DETECTORS says otherwise;
    // not the process detector's, which exports the whole command line (a secret passed as an
    // argument with it) on every batch.
    ...(nonEmpty(process.env['OTEL_NODE_RESOURCE_DETECTORS']) === undefined
      ? { resourceDetectors: [envDetector, hostDetector] }
      : {}),
  });
  withoutLogsProvider(() => sdk.start());
  warnOfLaterSdk();
  exitExport =
    built.exit === undefined
      ? undefined
      : (endStreams) => {
          if (endStreams) endOpenStreams();
          return exportNow(built.exit!.unexported.take(), built.exit!.target);
        };

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
        if (active === handle) {
          active = undefined;
          exitExport = undefined;
        }
      });
      return shutdown;
    },
  };
  active = handle;
  return handle;
}

/**
 * NodeSDK registers a global logs provider unless OTEL_LOGS_EXPORTER says `none`: said so while it
 * starts, and the variable put back as it was.
 */
function withoutLogsProvider(start: () => void): void {
  const given = process.env['OTEL_LOGS_EXPORTER'];
  process.env['OTEL_LOGS_EXPORTER'] = 'none';
  try {
    start();
  } finally {
    if (given === undefined) delete process.env['OTEL_LOGS_EXPORTER'];
    else process.env['OTEL_LOGS_EXPORTER'] = given;
  }
}

/** The export the register entry makes at exit (exit-export.ts); undefined when none is due. */
let exitExport: ((endStreams: boolean) => ExitExportOutcome) | undefined;

/**
 * Exports now, synchronously and bounded, every span ended and not yet through an export: for the
 * register entry's `exit` and signal hooks; `endStreams` first ends the spans of streams nobody
 * reads (the process is ending). Nothing without a running registration of ours, or with an
 * exporter of the app's (which only it can drive).
 */
export function exportUnexportedNow(endStreams: boolean): ExitExportOutcome {
  return exitExport?.(endStreams) ?? { nothing: true };
}

/**
 * For apps that build their own NodeSDK or tracer provider: the stamping processor, then a batch
 * processor exporting to the routewatch collector (or into `opts.exporter`). Keep the order: the
 * stamping must run before the export.
 */
export function routewatchSpanProcessors(opts: SpanProcessorsOptions = {}): SpanProcessor[] {
  return buildSpanProcessors(opts, false).processors;
}

/**
 * The span processors; with `forExit`, the spans not yet exported are also kept for the exit
 * export (exit-export.ts), where the exporter would send them.
 */
function buildSpanProcessors(
  opts: SpanProcessorsOptions,
  forExit: boolean,
): {
  processors: SpanProcessor[];
  exit?: { unexported: UnexportedSpans; target: ExitTarget };
} {
  // Explicit settings: the processor would read OTEL_BSP_* itself, unchecked.
  const batch = readBatchSettings(process.env);
  if (opts.exportIntervalMillis !== undefined) {
    batch.scheduledDelayMillis = opts.exportIntervalMillis;
  }
  if (!forExit || opts.exporter !== undefined) {
    const exporter = opts.exporter ?? createTraceExporter(opts);
    return { processors: [new RoutewatchSpanProcessor(), new BatchSpanProcessor(exporter, batch)] };
  }
  const target: ExitTarget = {
    url: resolveTracesEndpoint(opts.tracesEndpoint, process.env),
    protocol: opts.protocol ?? readRoutewatchEnv(process.env).protocol ?? 'http/json',
    headers: { ...headersFromEnv(process.env), ...(opts.headers ?? {}) },
    tls: tlsFromEnv(process.env),
    batchSize: batch.maxExportBatchSize,
  };
  const unexported = new UnexportedSpans(2 * batch.maxQueueSize);
  const exporter = new SettlingExporter(createTraceExporter(opts), unexported, target.url);
  return {
    processors: [
      new RoutewatchSpanProcessor(),
      new BatchSpanProcessor(exporter, batch),
      new UnexportedSpanProcessor(unexported),
    ],
    exit: { unexported, target },
  };
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
  if (given !== undefined)
    return checkedEndpoint(
      given,
      explicit !== undefined ? 'tracesEndpoint' : 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
    );
  const base = nonEmpty(env['OTEL_EXPORTER_OTLP_ENDPOINT']);
  if (base !== undefined) {
    const url = `${base.replace(/\/+$/, '')}/v1/traces`;
    checkedEndpoint(url, 'OTEL_EXPORTER_OTLP_ENDPOINT');
    if (/\/v1\/traces\/?$/.test(base)) {
      warnEndpointOnce(
        `OTEL_EXPORTER_OTLP_ENDPOINT (${base}) ends in /v1/traces, which is appended to it: spans go to ${url}. Give the base (${base.replace(/\/v1\/traces\/?$/, '')}), or the whole URL as OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
      );
    }
    return url;
  }
  return DEFAULT_TRACES_ENDPOINT;
}

/**
 * An endpoint as given, said once when it is no http(s) URL: the exporter would fail each export
 * ("Protocol not supported") and tell only `diag`. Never throws into the app.
 */
function checkedEndpoint(url: string, name: string): string {
  let protocol: string | undefined;
  try {
    protocol = new URL(url).protocol;
  } catch {
    protocol = undefined;
  }
  if (protocol !== 'http:' && protocol !== 'https:') {
    warnEndpointOnce(
      `${name} (${url}) is not an http:// or https:// URL, so no span can be exported: give one, e.g. http://localhost:4318 (the routewatch collector's OTLP/HTTP port; gRPC is not spoken)`,
    );
  }
  return url;
}

let endpointWarned = false;
function warnEndpointOnce(message: string): void {
  if (endpointWarned) return;
  endpointWarned = true;
  diag.warn(`routewatch: ${message}`);
  console.warn(`[routewatch] ${message}`);
}
