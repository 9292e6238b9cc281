import { context, diag, DiagLogLevel, trace, type DiagLogger } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { RoutewatchSpanProcessor } from '../../instrumentation/src/index.js';

export interface InMemoryTracing {
  /** The provider registered globally (to register it again after a test disabled tracing). */
  provider: BasicTracerProvider;
  /** Finished spans, emptied after each test. */
  exporter: InMemorySpanExporter;
  /** `diag` errors and warnings, emptied after each test. */
  diagMessages: { level: 'error' | 'warn'; message: string }[];
  /** The one finished span with this name (fails the test otherwise). */
  spanNamed(name: string): ReadableSpan;
}

/**
 * The real OpenTelemetry SDK for one test file: AsyncLocalStorage context, our stamping processor
 * first, spans kept in memory, `diag` captured. Registers its own hooks; call it at the top level.
 */
export function useInMemoryTracing(): InMemoryTracing {
  const exporter = new InMemorySpanExporter();
  const contextManager = new AsyncLocalStorageContextManager().enable();
  const provider = new BasicTracerProvider({
    spanProcessors: [new RoutewatchSpanProcessor(), new SimpleSpanProcessor(exporter)],
  });
  const diagMessages: InMemoryTracing['diagMessages'] = [];
  const diagLogger: DiagLogger = {
    error: (message) => void diagMessages.push({ level: 'error', message }),
    warn: (message) => void diagMessages.push({ level: 'warn', message }),
    info: () => undefined,
    debug: () => undefined,
    verbose: () => undefined,
  };

  beforeAll(() => {
    context.setGlobalContextManager(contextManager);
    trace.setGlobalTracerProvider(provider);
    diag.setLogger(diagLogger, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
  });
  afterEach(() => {
    exporter.reset();
    diagMessages.length = 0;
  });
  afterAll(async () => {
    await provider.shutdown();
    trace.disable();
    context.disable();
    diag.disable();
  });

  return {
    provider,
    exporter,
    diagMessages,
    spanNamed(name) {
      const matches = exporter.getFinishedSpans().filter((span) => span.name === name);
      expect(matches, `exactly one finished span named ${name}`).toHaveLength(1);
      return matches[0]!;
    },
  };
}
