/**
 * The variants compared, each prepared inside its own child process: instrumentations patch the
 * `openai` module globally and would conflict in one process.
 *
 * Every instrumented variant gets the same tracing setup: a NodeTracerProvider (AsyncLocalStorage
 * context manager) with a BatchSpanProcessor exporting OTLP/HTTP JSON to the local receiver. The
 * instrumentation is created (which enables it and installs its require hook) before
 * `require('openai')`, so each one patches the CommonJS module the way it does in a real service.
 * Each runs with its own defaults (content capture: off for ours and the official one, on for
 * OpenLLMetry and OpenInference), as a user gets it.
 */
import { createRequire } from 'node:module';
import { context, ROOT_CONTEXT, SpanKind, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type * as openinferenceModule from '@arizeai/openinference-instrumentation-openai';
import type * as officialModule from '@opentelemetry/instrumentation-openai';
import type * as traceloopModule from '@traceloop/instrumentation-openai';
import type * as openaiModule from 'openai';
import { CHAT_REQUEST, cannedFetch, REQUEST_MODEL } from './canned-openai.js';

const require = createRequire(import.meta.url);

export const VARIANTS = [
  'uninstrumented',
  'context-only',
  'floor',
  'routewatch',
  'routewatch-task-per-call',
  'otel-official',
  'openllmetry',
  'openinference',
] as const;
export type VariantName = (typeof VARIANTS)[number];

export const BASELINE: VariantName = 'uninstrumented';
export const FLOOR: VariantName = 'floor';
export const CONTEXT_ONLY: VariantName = 'context-only';

export const VARIANT_LABELS: Readonly<Record<VariantName, string>> = {
  uninstrumented: '(a) uninstrumented',
  'context-only': '(a′) OTel context manager on, no span',
  floor: '(f) floor: bare span, 12 attrs',
  routewatch: '(b) routewatch (in a task+attempt)',
  'routewatch-task-per-call': '(b′) routewatch, task+attempt per call',
  'otel-official': '(c) @opentelemetry/instr.-openai',
  openllmetry: '(d) OpenLLMetry (traceloop)',
  openinference: '(e) OpenInference (arize)',
};

export function isVariantName(value: string): value is VariantName {
  return (VARIANTS as readonly string[]).includes(value);
}

export interface PreparedVariant {
  /** One measured unit: one chat completion, with whatever the variant wraps around it. */
  call(): Promise<unknown>;
  /** Wraps a whole loop of calls (ours: one task and one attempt around them). */
  around<T>(loop: () => Promise<T>): Promise<T>;
  /** Exports every span ended so far and waits for the receiver's answer. */
  flush(): Promise<void>;
  readonly spansPerCall: number;
  readonly spansPerLoop: number;
}

type OpenAIModule = typeof openaiModule;

function openaiClient(): InstanceType<OpenAIModule['OpenAI']> {
  // CommonJS on purpose: require hooks are how these instrumentations patch on Node 20.
  const { OpenAI } = require('openai') as OpenAIModule;
  return new OpenAI({
    apiKey: 'sk-bench-not-a-key',
    baseURL: 'https://api.openai.com/v1',
    fetch: cannedFetch,
    maxRetries: 0,
  });
}

function startTracing(endpoint: string, first: SpanProcessor[] = []): NodeTracerProvider {
  const provider = new NodeTracerProvider({
    spanProcessors: [...first, new BatchSpanProcessor(new OTLPTraceExporter({ url: endpoint }))],
  });
  provider.register();
  return provider;
}

const direct = <T>(loop: () => Promise<T>): Promise<T> => loop();

export async function prepareVariant(
  name: VariantName,
  endpoint: string,
): Promise<PreparedVariant> {
  switch (name) {
    case 'uninstrumented': {
      const client = openaiClient();
      return {
        call: () => client.chat.completions.create(CHAT_REQUEST),
        around: direct,
        flush: async () => undefined,
        spansPerCall: 0,
        spansPerLoop: 0,
      };
    }
    case 'context-only': {
      // What merely having the OpenTelemetry SDK in the process costs on Node 20: the first
      // context.with (an export does one) enables AsyncLocalStorage, whose promise hooks then run on
      // every promise the SDK call makes. Not an instrumentation cost, but in every figure below.
      const provider = startTracing(endpoint);
      context.with(ROOT_CONTEXT, () => undefined);
      const client = openaiClient();
      return {
        call: () => client.chat.completions.create(CHAT_REQUEST),
        around: direct,
        flush: () => provider.forceFlush(),
        spansPerCall: 0,
        spansPerLoop: 0,
      };
    }
    case 'floor': {
      const provider = startTracing(endpoint);
      const tracer = provider.getTracer('routewatch-bench-floor');
      const client = openaiClient();
      return {
        call: () => bareSpanCall(tracer, client),
        around: direct,
        flush: () => provider.forceFlush(),
        spansPerCall: 1,
        spansPerLoop: 0,
      };
    }
    case 'routewatch':
    case 'routewatch-task-per-call': {
      const routewatch = await import('@routewatch/instrumentation');
      const provider = startTracing(endpoint, [new routewatch.RoutewatchSpanProcessor()]);
      new routewatch.OpenAIInstrumentation().enable();
      const client = openaiClient();
      const tagged = <T>(fn: () => Promise<T>) =>
        routewatch.runTask({ cohort: 'bench' }, () =>
          routewatch.runAttempt({ route: 'small' }, fn),
        );
      const create = () => client.chat.completions.create(CHAT_REQUEST);
      return name === 'routewatch'
        ? {
            call: create,
            around: tagged,
            flush: () => provider.forceFlush(),
            spansPerCall: 1,
            spansPerLoop: 2,
          }
        : {
            call: () => tagged(create),
            around: direct,
            flush: () => provider.forceFlush(),
            spansPerCall: 3,
            spansPerLoop: 0,
          };
    }
    case 'otel-official': {
      const provider = startTracing(endpoint);
      const { OpenAIInstrumentation } =
        require('@opentelemetry/instrumentation-openai') as typeof officialModule;
      new OpenAIInstrumentation().enable();
      return instrumented(provider, openaiClient());
    }
    case 'openllmetry': {
      const provider = startTracing(endpoint);
      const { OpenAIInstrumentation } =
        require('@traceloop/instrumentation-openai') as typeof traceloopModule;
      new OpenAIInstrumentation().enable();
      return instrumented(provider, openaiClient());
    }
    case 'openinference': {
      const provider = startTracing(endpoint);
      const { OpenAIInstrumentation } =
        require('@arizeai/openinference-instrumentation-openai') as typeof openinferenceModule;
      new OpenAIInstrumentation().enable();
      return instrumented(provider, openaiClient());
    }
  }
}

function instrumented(
  provider: NodeTracerProvider,
  client: ReturnType<typeof openaiClient>,
): PreparedVariant {
  return {
    call: () => client.chat.completions.create(CHAT_REQUEST),
    around: direct,
    flush: () => provider.forceFlush(),
    spansPerCall: 1,
    spansPerLoop: 0,
  };
}

/**
 * The floor: what any instrumentation must at least pay — one CLIENT span with a dozen attributes
 * (six from the request, six from the response), ended and exported. No context propagation, no
 * reading beyond fixed fields.
 */
async function bareSpanCall(
  tracer: Tracer,
  client: ReturnType<typeof openaiClient>,
): Promise<unknown> {
  const span = tracer.startSpan(`chat ${REQUEST_MODEL}`, {
    kind: SpanKind.CLIENT,
    attributes: {
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': REQUEST_MODEL,
      'gen_ai.request.temperature': 0,
      'gen_ai.request.max_tokens': 16,
      'server.address': 'api.openai.com',
    },
  });
  const completion = await client.chat.completions.create(CHAT_REQUEST);
  span.setAttributes({
    'server.port': 443,
    'gen_ai.response.id': completion.id,
    'gen_ai.response.model': completion.model,
    'gen_ai.response.finish_reasons': completion.choices.map((choice) => choice.finish_reason),
    'gen_ai.usage.input_tokens': completion.usage?.prompt_tokens ?? 0,
    'gen_ai.usage.output_tokens': completion.usage?.completion_tokens ?? 0,
  });
  span.end();
  return completion;
}
