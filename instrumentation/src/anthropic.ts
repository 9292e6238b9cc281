import {
  context,
  createContextKey,
  diag,
  trace,
  type Attributes,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';
import {
  InstrumentationBase,
  InstrumentationNodeModuleDefinition,
} from '@opentelemetry/instrumentation';
import {
  inputMessages,
  partsOf,
  setInputMessages,
  setOutputMessages,
  setSystemInstructions,
  textPart,
  type ChatMessage,
} from './content.js';
import { guard } from './errors.js';
import {
  isObject,
  LlmCall,
  paramsOf,
  read,
  serverAttributes,
  setCount,
  tracedCall,
  unwrapMethod,
  wrapMethod,
  type CallStart,
  type StreamSummary,
} from './llm-call.js';
import {
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MAX_TOKENS,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_REQUEST_TEMPERATURE,
  ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  ATTR_GEN_AI_RESPONSE_ID,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
} from './semconv.js';
import type { AnthropicInstrumentationConfig, CaptureOptions } from './types.js';
import { PACKAGE_NAME, PACKAGE_VERSION } from './version.js';

/** Versions of `@anthropic-ai/sdk` whose `Messages` resource we know how to wrap. */
export const SUPPORTED_ANTHROPIC_VERSIONS = ['>=0.20.0 <2'];

/**
 * Patches `messages.create` (plain and `stream: true`) and `messages.stream()` of an already
 * imported `@anthropic-ai/sdk`, for processes where no loader hook runs. Idempotent; accepts the
 * module namespace, the CommonJS exports or the `Anthropic` class.
 */
export function instrumentAnthropic(anthropicModule: unknown, options: CaptureOptions = {}): void {
  guard('instrumenting @anthropic-ai/sdk', () => {
    const proto = findMessagesPrototype(anthropicModule);
    if (proto === undefined) {
      diag.warn('routewatch: instrumentAnthropic found no Messages in the given module');
      return;
    }
    let tracer: Tracer | undefined;
    patchMessages(
      proto,
      () => (tracer ??= trace.getTracer(PACKAGE_NAME, PACKAGE_VERSION)),
      () => options,
    );
  });
}

/** Captures Anthropic SDK messages as GenAI CLIENT spans, loaded by require or import. */
export class AnthropicInstrumentation extends InstrumentationBase<AnthropicInstrumentationConfig> {
  constructor(config: AnthropicInstrumentationConfig = {}) {
    super(`${PACKAGE_NAME}/anthropic`, PACKAGE_VERSION, config);
  }

  protected override init(): InstrumentationNodeModuleDefinition[] {
    return [
      new InstrumentationNodeModuleDefinition(
        '@anthropic-ai/sdk',
        SUPPORTED_ANTHROPIC_VERSIONS,
        (moduleExports: unknown) => {
          guard('patching @anthropic-ai/sdk', () => {
            const proto = findMessagesPrototype(moduleExports);
            if (proto === undefined) diag.warn('routewatch: @anthropic-ai/sdk without Messages');
            else
              patchMessages(
                proto,
                () => this.tracer,
                () => this.getConfig(),
              );
          });
          return moduleExports;
        },
        (moduleExports: unknown) => {
          guard('unpatching @anthropic-ai/sdk', () => {
            const proto = findMessagesPrototype(moduleExports);
            if (proto === undefined) return;
            unwrapMethod(proto, 'create');
            unwrapMethod(proto, 'stream');
          });
        },
      ),
    ];
  }
}

function findMessagesPrototype(anthropicModule: unknown): object | undefined {
  const mod = anthropicModule as { Anthropic?: unknown; default?: unknown } | null | undefined;
  const candidates = [
    mod?.Anthropic,
    (mod?.default as { Anthropic?: unknown } | undefined)?.Anthropic,
  ];
  candidates.push(mod?.default, mod);
  for (const candidate of candidates) {
    if (candidate === null || (typeof candidate !== 'function' && typeof candidate !== 'object')) {
      continue;
    }
    const proto = (candidate as { Messages?: { prototype?: unknown } }).Messages?.prototype;
    if (isObject(proto) && typeof proto['create'] === 'function') return proto;
  }
  return undefined;
}

/**
 * The context `messages.stream()` was called in, before we suppressed tracing for it: the
 * `messages.create` it makes starts our span there.
 */
const CALLER_CONTEXT = createContextKey('routewatch.anthropic.caller');

/**
 * Recent SDKs (1.x) emit their own call span when a tracer provider is registered. Our span
 * replaces it, so each call is one LLM span (counted once): the SDK runs with tracing suppressed.
 */
function emitsOwnSpans(messages: unknown): boolean {
  const client = (messages as { _client?: { _tracer?: unknown } } | null)?._client;
  return client?._tracer !== undefined && client._tracer !== null;
}

function patchMessages(
  proto: object,
  getTracer: () => Tracer,
  getOptions: () => CaptureOptions,
): void {
  wrapMethod(
    proto,
    'create',
    (original) =>
      function routewatchAnthropicCreate(this: unknown, ...args: unknown[]): unknown {
        return tracedCall(
          this,
          args,
          original,
          () => {
            const active = context.active();
            const parent = (active.getValue(CALLER_CONTEXT) as Context | undefined) ?? active;
            const start = messagesCall(this, args, getOptions());
            return { call: LlmCall.start(getTracer(), parent, start) };
          },
          (call) => (emitsOwnSpans(this) ? suppressTracing(call.ctx) : call.ctx),
        );
      },
  );
  // `stream()` calls `create` itself (captured there); wrapped only to keep the SDK's own stream
  // span from being started next to ours.
  wrapMethod(
    proto,
    'stream',
    (original) =>
      function routewatchAnthropicStream(this: unknown, ...args: unknown[]): unknown {
        const ctx = guard('suppressing the SDK stream span', () => {
          if (!emitsOwnSpans(this)) return undefined;
          const active = context.active();
          return suppressTracing(active).setValue(CALLER_CONTEXT, active);
        });
        if (ctx === undefined) return original.apply(this, args);
        return context.with(ctx, () => original.apply(this, args));
      },
  );
}

interface AnthropicUsage {
  input_tokens?: unknown;
  output_tokens?: unknown;
  cache_read_input_tokens?: unknown;
  cache_creation_input_tokens?: unknown;
}

function messagesCall(resource: unknown, args: unknown[], options: CaptureOptions): CallStart {
  const body = paramsOf(args[0]);
  // Each read on its own: a throwing getter of the caller's params costs one attribute, not the span.
  const model = read(() => body['model']);
  const attributes: Attributes = {
    [ATTR_GEN_AI_OPERATION_NAME]: 'chat',
    [ATTR_GEN_AI_PROVIDER_NAME]: 'anthropic',
  };
  if (typeof model === 'string') attributes[ATTR_GEN_AI_REQUEST_MODEL] = model;
  const maxTokens = read(() => body['max_tokens']);
  if (typeof maxTokens === 'number') attributes[ATTR_GEN_AI_REQUEST_MAX_TOKENS] = maxTokens;
  const temperature = read(() => body['temperature']);
  if (typeof temperature === 'number') attributes[ATTR_GEN_AI_REQUEST_TEMPERATURE] = temperature;
  Object.assign(
    attributes,
    read(() => serverAttributes(resource)),
  );
  const captureContent = options.captureContent === true;
  let input: { system: unknown; messages: ChatMessage[] } | undefined;
  if (captureContent) {
    // Read now: the caller may mutate its messages once the call has returned.
    input = guard('reading input messages', () => ({
      system: body['system'],
      messages: inputMessages(body['messages']),
    }));
  }
  const recordInput = (span: Span) => {
    if (input === undefined) return;
    setSystemInstructions(span, input.system);
    setInputMessages(span, input.messages);
  };
  return {
    provider: 'Anthropic',
    name: typeof model === 'string' ? `chat ${model}` : 'chat',
    attributes,
    reader: {
      streamed: read(() => body['stream']) === true,
      recordResponse: (span, response) => {
        recordInput(span);
        recordMessage(span, response, captureContent);
      },
      streamSummary: () => new MessageStreamSummary(captureContent, recordInput),
    },
  };
}

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

  constructor(
    private readonly captureContent: boolean,
    private readonly recordInput: (span: Span) => void,
  ) {}

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
      this.recordInput(span);
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
