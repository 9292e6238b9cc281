import {
  context,
  diag,
  SpanKind,
  trace,
  type Attributes,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import {
  InstrumentationBase,
  InstrumentationNodeModuleDefinition,
} from '@opentelemetry/instrumentation';
import { guard, markSpanFailed } from './errors.js';
import {
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MAX_TOKENS,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_REQUEST_TEMPERATURE,
  ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  ATTR_GEN_AI_RESPONSE_ID,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
} from './semconv.js';
import type { OpenAIInstrumentationConfig } from './types.js';
import { PACKAGE_NAME, PACKAGE_VERSION } from './version.js';

/** Versions of the `openai` package whose `chat.completions.create` we know how to wrap. */
export const SUPPORTED_OPENAI_VERSIONS = ['>=4.0.0 <7'];

// Symbol.for: a second copy of this package in the same process recognises our wrapper.
const ORIGINAL_CREATE: unique symbol = Symbol.for('routewatch.openai.chat.completions.create');

// The OpenAI SDK is never imported (not even its types): everything below reads it structurally.
type CreateFn = (this: unknown, ...args: unknown[]) => unknown;
interface CompletionsPrototype {
  create: CreateFn;
}
interface WrappedCreate extends CreateFn {
  [ORIGINAL_CREATE]?: CreateFn;
}
interface ChatChunkChoice {
  index?: unknown;
  finish_reason?: unknown;
}
interface ChatUsage {
  prompt_tokens?: unknown;
  completion_tokens?: unknown;
  prompt_tokens_details?: { cached_tokens?: unknown } | null;
  completion_tokens_details?: { reasoning_tokens?: unknown } | null;
}
interface ChatResponse {
  id?: unknown;
  model?: unknown;
  choices?: unknown;
  usage?: ChatUsage | null;
}

/**
 * Patches `chat.completions.create` of an already imported `openai` module, for processes where no
 * loader hook runs (tests, in-process demos): `instrumentOpenAI(await import('openai'))`.
 * Idempotent; accepts the module namespace, the CommonJS exports or the `OpenAI` class.
 */
export function instrumentOpenAI(openaiModule: unknown): void {
  guard('instrumenting openai', () => {
    const proto = findChatCompletionsPrototype(openaiModule);
    if (proto === undefined) {
      diag.warn('routewatch: instrumentOpenAI found no Chat.Completions in the given module');
      return;
    }
    wrapChatCompletions(proto, () => trace.getTracer(PACKAGE_NAME, PACKAGE_VERSION));
  });
}

/** Captures OpenAI SDK chat completions (v4–v6) as GenAI CLIENT spans, loaded by require or import. */
export class OpenAIInstrumentation extends InstrumentationBase<OpenAIInstrumentationConfig> {
  constructor(config: OpenAIInstrumentationConfig = {}) {
    super(`${PACKAGE_NAME}/openai`, PACKAGE_VERSION, config);
  }

  protected override init(): InstrumentationNodeModuleDefinition[] {
    return [
      new InstrumentationNodeModuleDefinition(
        'openai',
        SUPPORTED_OPENAI_VERSIONS,
        (moduleExports: unknown) => {
          guard('patching openai', () => {
            const proto = findChatCompletionsPrototype(moduleExports);
            if (proto === undefined)
              diag.warn('routewatch: openai loaded without Chat.Completions');
            else wrapChatCompletions(proto, () => this.tracer);
          });
          return moduleExports;
        },
        (moduleExports: unknown) => {
          guard('unpatching openai', () => {
            const proto = findChatCompletionsPrototype(moduleExports);
            if (proto !== undefined) unwrapChatCompletions(proto);
          });
        },
      ),
    ];
  }
}

function findChatCompletionsPrototype(openaiModule: unknown): CompletionsPrototype | undefined {
  const mod = openaiModule as { OpenAI?: unknown; default?: unknown } | null | undefined;
  const candidates = [mod?.OpenAI, (mod?.default as { OpenAI?: unknown } | undefined)?.OpenAI];
  candidates.push(mod?.default, mod);
  for (const candidate of candidates) {
    if (typeof candidate !== 'function' && typeof candidate !== 'object') continue;
    const chat = (candidate as { Chat?: { Completions?: { prototype?: unknown } } } | null)?.Chat;
    const proto = chat?.Completions?.prototype as CompletionsPrototype | undefined;
    if (typeof proto?.create === 'function') return proto;
  }
  return undefined;
}

function wrapChatCompletions(proto: CompletionsPrototype, getTracer: () => Tracer): void {
  const current = proto.create as WrappedCreate;
  if (current[ORIGINAL_CREATE] !== undefined) return;
  const original = current;
  const wrapped: WrappedCreate = function routewatchChatCompletionsCreate(
    this: unknown,
    ...args: unknown[]
  ): unknown {
    const call = guard('starting an OpenAI chat span', () =>
      ChatCall.start(getTracer(), this, args[0]),
    );
    if (call === undefined) return original.apply(this, args);
    let result: unknown;
    try {
      result = context.with(call.ctx, () => original.apply(this, args));
    } catch (error) {
      call.fail(error);
      throw error;
    }
    if (guard('observing an OpenAI response', () => call.observe(result)) === undefined) call.end();
    // The SDK's own APIPromise, untouched: `.withResponse()`, `.asResponse()` keep working.
    return result;
  };
  wrapped[ORIGINAL_CREATE] = original;
  proto.create = wrapped;
}

function unwrapChatCompletions(proto: CompletionsPrototype): void {
  const original = (proto.create as WrappedCreate)[ORIGINAL_CREATE];
  if (original !== undefined) proto.create = original;
}

/** One `chat.completions.create` call and its span. */
class ChatCall {
  private ended = false;
  private readonly streamed: boolean;

  private constructor(
    readonly span: Span,
    readonly ctx: Context,
    streamed: boolean,
  ) {
    this.streamed = streamed;
  }

  static start(tracer: Tracer, completions: unknown, params: unknown): ChatCall {
    const body = (typeof params === 'object' && params !== null ? params : {}) as Record<
      string,
      unknown
    >;
    // Each read on its own: a throwing getter of the caller's params costs one attribute, not the span.
    const model = read(() => body['model']);
    const attributes: Attributes = {
      [ATTR_GEN_AI_OPERATION_NAME]: 'chat',
      [ATTR_GEN_AI_PROVIDER_NAME]: 'openai',
    };
    if (typeof model === 'string') attributes[ATTR_GEN_AI_REQUEST_MODEL] = model;
    const maxTokens = read(() => body['max_completion_tokens'] ?? body['max_tokens']);
    if (typeof maxTokens === 'number') attributes[ATTR_GEN_AI_REQUEST_MAX_TOKENS] = maxTokens;
    const temperature = read(() => body['temperature']);
    if (typeof temperature === 'number') attributes[ATTR_GEN_AI_REQUEST_TEMPERATURE] = temperature;
    Object.assign(
      attributes,
      read(() => serverAttributes(completions)),
    );

    const parent = context.active();
    const span = tracer.startSpan(
      typeof model === 'string' ? `chat ${model}` : 'chat',
      { kind: SpanKind.CLIENT, attributes },
      parent,
    );
    return new ChatCall(span, trace.setSpan(parent, span), read(() => body['stream']) === true);
  }

  /** Watches the SDK's promise on the side; the span ends when the call (or its stream) does. */
  observe(result: unknown): true {
    if (!isThenable(result)) {
      this.end();
      return true;
    }
    result.then(
      (response) => this.succeed(response),
      (error: unknown) => this.fail(error),
    );
    return true;
  }

  private succeed(response: unknown): void {
    if (this.streamed && isSdkStream(response)) {
      if (guard('wrapping an OpenAI stream', () => this.wrapStream(response)) !== undefined) return;
      this.end();
      return;
    }
    guard('reading an OpenAI response', () => recordResponse(this.span, response as ChatResponse));
    this.end();
  }

  fail(error: unknown): void {
    if (this.ended) return;
    markSpanFailed(this.span, error);
    this.end();
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    guard('ending an OpenAI chat span', () => this.span.end());
  }

  /**
   * Replaces the stream's `iterator` factory, which `Symbol.asyncIterator`, `.tee()` and
   * `.toReadableStream()` all go through, so the SDK's Stream object itself stays the caller's.
   */
  private wrapStream(stream: SdkStream): true {
    const originalIterator = stream.iterator;
    const summary = new StreamSummary();
    stream.iterator = () => {
      const inner = originalIterator.call(stream);
      const finish = () => {
        guard('reading an OpenAI stream', () => summary.record(this.span));
        this.end();
      };
      const observed: AsyncIterator<unknown> & AsyncIterable<unknown> = {
        next: async (...args: [] | [unknown]) => {
          let step: IteratorResult<unknown>;
          try {
            step = await inner.next(...args);
          } catch (error) {
            this.fail(error);
            throw error;
          }
          if (step.done === true) finish();
          else guard('reading an OpenAI stream chunk', () => summary.add(step.value));
          return step;
        },
        return: async (value?: unknown) => {
          finish();
          return inner.return ? inner.return(value) : { done: true, value };
        },
        throw: async (error?: unknown) => {
          this.fail(error);
          if (inner.throw) return inner.throw(error);
          throw error;
        },
        [Symbol.asyncIterator]() {
          return this;
        },
      };
      return observed;
    };
    return true;
  }
}

interface SdkStream {
  iterator: () => AsyncIterator<unknown>;
}

function isSdkStream(value: unknown): value is SdkStream {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { iterator?: unknown }).iterator === 'function' &&
    Symbol.asyncIterator in value
  );
}

/** What a streamed response tells about itself, gathered chunk by chunk. */
class StreamSummary {
  private id: string | undefined;
  private model: string | undefined;
  private readonly finishReasons = new Map<number, string>();
  private usage: ChatUsage | undefined;

  add(chunk: unknown): void {
    if (typeof chunk !== 'object' || chunk === null) return;
    const { id, model, choices, usage } = chunk as ChatResponse;
    if (this.id === undefined && typeof id === 'string') this.id = id;
    if (this.model === undefined && typeof model === 'string') this.model = model;
    if (Array.isArray(choices)) {
      for (const choice of choices as ChatChunkChoice[]) {
        if (typeof choice?.finish_reason === 'string') {
          this.finishReasons.set(
            typeof choice.index === 'number' ? choice.index : 0,
            choice.finish_reason,
          );
        }
      }
    }
    // With stream_options.include_usage the last chunk carries the usage.
    if (typeof usage === 'object' && usage !== null) this.usage = usage;
  }

  record(span: Span): void {
    if (this.id !== undefined) span.setAttribute(ATTR_GEN_AI_RESPONSE_ID, this.id);
    if (this.model !== undefined) span.setAttribute(ATTR_GEN_AI_RESPONSE_MODEL, this.model);
    if (this.finishReasons.size > 0) {
      const ordered = [...this.finishReasons.entries()].sort(([a], [b]) => a - b);
      span.setAttribute(
        ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
        ordered.map(([, reason]) => reason),
      );
    }
    if (this.usage !== undefined) recordUsage(span, this.usage);
  }
}

function recordResponse(span: Span, response: ChatResponse): void {
  if (typeof response !== 'object' || response === null) return;
  if (typeof response.id === 'string') span.setAttribute(ATTR_GEN_AI_RESPONSE_ID, response.id);
  if (typeof response.model === 'string') {
    span.setAttribute(ATTR_GEN_AI_RESPONSE_MODEL, response.model);
  }
  if (Array.isArray(response.choices)) {
    const reasons = (response.choices as ChatChunkChoice[])
      .map((choice) => choice?.finish_reason)
      .filter((reason): reason is string => typeof reason === 'string');
    span.setAttribute(ATTR_GEN_AI_RESPONSE_FINISH_REASONS, reasons);
  }
  const { usage } = response;
  if (typeof usage === 'object' && usage !== null) recordUsage(span, usage);
}

function recordUsage(span: Span, usage: ChatUsage): void {
  setCount(span, ATTR_GEN_AI_USAGE_INPUT_TOKENS, usage.prompt_tokens);
  setCount(span, ATTR_GEN_AI_USAGE_OUTPUT_TOKENS, usage.completion_tokens);
  setCount(
    span,
    ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    usage.prompt_tokens_details?.cached_tokens,
  );
  setCount(
    span,
    ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    usage.completion_tokens_details?.reasoning_tokens,
  );
}

function setCount(span: Span, name: string, value: unknown): void {
  if (typeof value === 'number' && Number.isFinite(value)) span.setAttribute(name, value);
}

/** `server.address` / `server.port` from the client's base URL. */
function serverAttributes(completions: unknown): Attributes {
  const baseURL = (completions as { _client?: { baseURL?: unknown } } | null)?._client?.baseURL;
  if (typeof baseURL !== 'string') return {};
  const url = new URL(baseURL);
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  return { [ATTR_SERVER_ADDRESS]: url.hostname, [ATTR_SERVER_PORT]: port };
}

/** The value `fn` reads, or undefined when reading throws. */
function read<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (error) {
    diag.debug('routewatch: reading an OpenAI request parameter failed', error);
    return undefined;
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
