import { context, createContextKey, type Context, type Span } from '@opentelemetry/api';
import { isTracingSuppressed, suppressTracing } from '@opentelemetry/core';
import {
  InstrumentationBase,
  type InstrumentationNodeModuleDefinition,
} from '@opentelemetry/instrumentation';
import { inputMessages, partsOf, setOutputMessages, textPart } from '../capture/content.js';
import { instrumentModule, moduleDefinitions, scopeName } from '../capture/patching.js';
import { isObject, setCount } from '../capture/params.js';
import type { OperationCapture, ProviderCapture, SdkMethod } from '../capture/provider.js';
import type { StreamSummary } from '../capture/span-lifecycle.js';
import { guard } from '../errors.js';
import {
  ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  ATTR_GEN_AI_RESPONSE_ID,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
} from '../semconv.js';
import type { AnthropicInstrumentationConfig, CaptureOptions } from '../types.js';
import { PACKAGE_VERSION } from '../version.js';

/**
 * The Anthropic SDK: `messages.create` (plain and `stream: true`) as a CLIENT span;
 * `messages.stream()` calls `create`, so it is captured there.
 */

/** Versions of `@anthropic-ai/sdk` whose `Messages` resource we know how to wrap. */
export const SUPPORTED_ANTHROPIC_VERSIONS = ['>=0.20.0 <2'];

interface AnthropicUsage {
  input_tokens?: unknown;
  output_tokens?: unknown;
  cache_read_input_tokens?: unknown;
  cache_creation_input_tokens?: unknown;
}

const messages: OperationCapture<CaptureOptions> = {
  operation: 'chat',
  maxTokensParams: ['max_tokens'],
  input: (params) => ({ system: params['system'], messages: inputMessages(params['messages']) }),
  recordResponse: (span, message, call) => recordMessage(span, message, call.captureContent),
  streamSummary: (call) => new MessageStreamSummary(call.captureContent),
};

function recordMessage(span: Span, message: unknown, captureContent: boolean): void {
  if (!isObject(message)) return;
  if (typeof message['id'] === 'string') span.setAttribute(ATTR_GEN_AI_RESPONSE_ID, message['id']);
  if (typeof message['model'] === 'string') {
    span.setAttribute(ATTR_GEN_AI_RESPONSE_MODEL, message['model']);
  }
  const stopReason = message['stop_reason'];
  if (typeof stopReason === 'string') {
    span.setAttribute(ATTR_GEN_AI_RESPONSE_FINISH_REASONS, [stopReason]);
  }
  const usage = message['usage'];
  if (isObject(usage)) recordUsage(span, usage);
  if (captureContent) {
    setOutputMessages(span, [
      {
        role: 'assistant',
        parts: partsOf(message['content']),
        ...(typeof stopReason === 'string' ? { finish_reason: stopReason } : {}),
      },
    ]);
  }
}

/**
 * GenAI `input_tokens` include cached tokens; Anthropic's `input_tokens` exclude them, so the
 * recorded input is the sum of the three, and the cache counts are its sub-counts.
 */
function recordUsage(span: Span, usage: AnthropicUsage): void {
  const count = (value: unknown) =>
    typeof value === 'number' && Number.isFinite(value) ? value : 0;
  const {
    input_tokens: input,
    cache_read_input_tokens: read,
    cache_creation_input_tokens: created,
  } = usage;
  if (typeof input === 'number' && Number.isFinite(input)) {
    span.setAttribute(ATTR_GEN_AI_USAGE_INPUT_TOKENS, input + count(read) + count(created));
  }
  setCount(span, ATTR_GEN_AI_USAGE_OUTPUT_TOKENS, usage.output_tokens);
  setCount(span, ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, read);
  setCount(span, ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, created);
}

/**
 * A streamed message: `message_start` brings id, model and the input usage; `message_delta` the
 * stop reason and the output tokens (cumulative, so the last one wins), sometimes updated input
 * counts; `content_block_delta` the text.
 */
class MessageStreamSummary implements StreamSummary {
  private id: string | undefined;
  private model: string | undefined;
  private stopReason: string | undefined;
  private readonly usage: AnthropicUsage = {};
  private text = '';

  constructor(private readonly captureContent: boolean) {}

  add(event: unknown): boolean {
    if (!isObject(event)) return true;
    switch (event['type']) {
      case 'message_start': {
        const message = event['message'];
        if (!isObject(message)) break;
        if (typeof message['id'] === 'string') this.id = message['id'];
        if (typeof message['model'] === 'string') this.model = message['model'];
        if (isObject(message['usage'])) this.mergeUsage(message['usage']);
        break;
      }
      case 'message_delta': {
        const delta = event['delta'];
        if (isObject(delta) && typeof delta['stop_reason'] === 'string') {
          this.stopReason = delta['stop_reason'];
        }
        if (isObject(event['usage'])) this.mergeUsage(event['usage']);
        break;
      }
      case 'content_block_delta': {
        const delta = event['delta'];
        if (this.captureContent && isObject(delta) && typeof delta['text'] === 'string') {
          this.text += delta['text'];
        }
        break;
      }
      default:
        break;
    }
    return true;
  }

  private mergeUsage(usage: Record<string, unknown>): void {
    for (const key of [
      'input_tokens',
      'output_tokens',
      'cache_read_input_tokens',
      'cache_creation_input_tokens',
    ] as const) {
      if (typeof usage[key] === 'number') this.usage[key] = usage[key];
    }
  }

  record(span: Span): void {
    if (this.id !== undefined) span.setAttribute(ATTR_GEN_AI_RESPONSE_ID, this.id);
    if (this.model !== undefined) span.setAttribute(ATTR_GEN_AI_RESPONSE_MODEL, this.model);
    if (this.stopReason !== undefined) {
      span.setAttribute(ATTR_GEN_AI_RESPONSE_FINISH_REASONS, [this.stopReason]);
    }
    recordUsage(span, this.usage);
    if (this.captureContent) {
      setOutputMessages(span, [
        {
          role: 'assistant',
          parts: [textPart(this.text)],
          ...(this.stopReason === undefined ? {} : { finish_reason: this.stopReason }),
        },
      ]);
    }
  }
}

// --- one span per call: the SDK's own spans ------------------------------------------------

/**
 * The context `messages.stream()` was called in, before we suppressed tracing for it: the
 * `messages.create` it makes starts our span there.
 */
const CALLER_CONTEXT = createContextKey('routewatch.anthropic.caller');

/**
 * Recent SDKs (1.x) emit their own call span when a tracer provider is registered. Our span
 * replaces it, so each call is one LLM span (counted once): the SDK runs with tracing suppressed.
 */
function emitsOwnSpans(messagesResource: unknown): boolean {
  const client = (messagesResource as { _client?: { _tracer?: unknown } } | null)?._client;
  return client?._tracer !== undefined && client._tracer !== null;
}

/**
 * `stream()` calls `create` itself (captured there); wrapped only to keep the SDK's own stream
 * span from being started next to ours. The stream's work runs with tracing suppressed, and its
 * events are emitted from there: its listeners (`on`, `once`) are bound to the caller's context,
 * or every span the app started in one — a `runAttempt`, a model call — went unrecorded.
 */
function suppressStreamSpan(original: SdkMethod): SdkMethod {
  return function routewatchAnthropicStream(this: unknown, ...args: unknown[]): unknown {
    const active = context.active();
    const ctx = guard('suppressing the SDK stream span', () => {
      if (!emitsOwnSpans(this)) return undefined;
      return suppressTracing(active).setValue(CALLER_CONTEXT, active);
    });
    if (ctx === undefined) return original.apply(this, args);
    const stream: unknown = context.with(ctx, () => original.apply(this, args));
    guard('binding the stream listeners to the caller', () => bindListeners(stream, active));
    return stream;
  };
}

/**
 * Makes `on`, `once` and `off` of an event emitter-like `stream` run each listener in the context
 * it was added in (a listener added later, from another task, is that task's), or in `caller` when
 * that is the suppressed one the stream runs in.
 */
function bindListeners(stream: unknown, caller: Context): void {
  if (!isObject(stream)) return;
  const bound = new WeakMap<object, unknown>();
  const bind = (listener: unknown): unknown => {
    if (typeof listener !== 'function') return listener;
    let wrapped = bound.get(listener);
    if (wrapped === undefined) {
      const active = context.active();
      const target = isTracingSuppressed(active) ? caller : active;
      wrapped = context.bind(target, listener as (...a: unknown[]) => unknown);
      bound.set(listener, wrapped);
    }
    return wrapped;
  };
  const emitter = stream as Record<string, unknown>;
  for (const name of ['on', 'once', 'off']) {
    const method = emitter[name];
    if (typeof method !== 'function') continue;
    emitter[name] = function (
      this: unknown,
      event: unknown,
      listener: unknown,
      ...rest: unknown[]
    ) {
      return (method as (...a: unknown[]) => unknown).call(this, event, bind(listener), ...rest);
    };
  }
}

// --- the declaration -----------------------------------------------------------------------

export const ANTHROPIC_CAPTURE: ProviderCapture<CaptureOptions> = {
  module: '@anthropic-ai/sdk',
  supportedVersions: SUPPORTED_ANTHROPIC_VERSIONS,
  provider: 'anthropic',
  displayName: 'Anthropic',
  clientExport: 'Anthropic',
  resources: [
    {
      path: ['Messages'],
      method: 'create',
      operation: messages,
      parentContext: (active) => (active.getValue(CALLER_CONTEXT) as Context | undefined) ?? active,
      runIn: (resource, callContext) =>
        emitsOwnSpans(resource) ? suppressTracing(callContext) : callContext,
      companions: { stream: suppressStreamSpan },
    },
  ],
};

/** Captures Anthropic SDK messages as GenAI CLIENT spans, loaded by require or import. */
export class AnthropicInstrumentation extends InstrumentationBase<AnthropicInstrumentationConfig> {
  constructor(config: AnthropicInstrumentationConfig = {}) {
    super(scopeName(ANTHROPIC_CAPTURE), PACKAGE_VERSION, config);
  }

  protected override init(): InstrumentationNodeModuleDefinition[] {
    return moduleDefinitions(
      ANTHROPIC_CAPTURE,
      () => this.tracer,
      () => this.getConfig(),
    );
  }
}

/**
 * Patches `messages.create` (plain and `stream: true`) and `messages.stream()` of an already
 * imported `@anthropic-ai/sdk`, for processes where no loader hook runs. Idempotent; accepts the
 * module namespace, the CommonJS exports or the `Anthropic` class.
 */
export function instrumentAnthropic(anthropicModule: unknown, options: CaptureOptions = {}): void {
  instrumentModule(ANTHROPIC_CAPTURE, anthropicModule, options);
}
