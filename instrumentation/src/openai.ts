import { context, diag, trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import {
  InstrumentationBase,
  InstrumentationNodeModuleDefinition,
} from '@opentelemetry/instrumentation';
import {
  inputMessages,
  partsOf,
  setInputMessages,
  setOutputMessages,
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
  putCount,
  setCount,
  tracedCall,
  unwrapMethod,
  wrapMethod,
  type CallStart,
  type ResponseReader,
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
  ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
} from './semconv.js';
import type { OpenAICaptureOptions, OpenAIInstrumentationConfig } from './types.js';
import { PACKAGE_NAME, PACKAGE_VERSION } from './version.js';

/** Versions of the `openai` package whose resources we know how to wrap. */
export const SUPPORTED_OPENAI_VERSIONS = ['>=4.0.0 <7'];

/**
 * Patches `chat.completions.create`, `responses.create` and `embeddings.create` of an already
 * imported `openai` module, for processes where no loader hook runs (tests, in-process demos):
 * `instrumentOpenAI(await import('openai'))`. Idempotent; accepts the module namespace, the
 * CommonJS exports or the `OpenAI` class.
 */
export function instrumentOpenAI(openaiModule: unknown, options: OpenAICaptureOptions = {}): void {
  guard('instrumenting openai', () => {
    // Looked up on first use, then kept: the global provider may be registered after this call.
    let tracer: Tracer | undefined;
    const patched = patchOpenAI(
      openaiModule,
      () => (tracer ??= trace.getTracer(PACKAGE_NAME, PACKAGE_VERSION)),
      () => options,
    );
    if (!patched) diag.warn('routewatch: instrumentOpenAI found no OpenAI resources in the module');
  });
}

/** Captures OpenAI SDK calls (v4–v6) as GenAI CLIENT spans, loaded by require or import. */
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
            const patched = patchOpenAI(
              moduleExports,
              () => this.tracer,
              () => this.getConfig(),
            );
            if (!patched) diag.warn('routewatch: openai loaded without the resources we capture');
          });
          return moduleExports;
        },
        (moduleExports: unknown) => {
          guard('unpatching openai', () => {
            for (const proto of Object.values(findPrototypes(moduleExports))) {
              if (proto !== undefined) unwrapMethod(proto, 'create');
            }
          });
        },
      ),
    ];
  }
}

interface OpenAIPrototypes {
  chat: object | undefined;
  responses: object | undefined;
  embeddings: object | undefined;
}

/** The resource classes' prototypes, from the namespace, the CommonJS exports or the class. */
function findPrototypes(openaiModule: unknown): OpenAIPrototypes {
  const mod = openaiModule as { OpenAI?: unknown; default?: unknown } | null | undefined;
  const candidates = [mod?.OpenAI, (mod?.default as { OpenAI?: unknown } | undefined)?.OpenAI];
  candidates.push(mod?.default, mod);
  const found: OpenAIPrototypes = { chat: undefined, responses: undefined, embeddings: undefined };
  const protoOf = (cls: unknown): object | undefined => {
    const proto = (cls as { prototype?: unknown } | undefined)?.prototype;
    return isObject(proto) && typeof proto['create'] === 'function' ? proto : undefined;
  };
  for (const candidate of candidates) {
    if (candidate === null || (typeof candidate !== 'function' && typeof candidate !== 'object')) {
      continue;
    }
    const api = candidate as {
      Chat?: { Completions?: unknown };
      Responses?: unknown;
      Embeddings?: unknown;
    };
    found.chat ??= protoOf(api.Chat?.Completions);
    found.responses ??= protoOf(api.Responses);
    found.embeddings ??= protoOf(api.Embeddings);
  }
  return found;
}

function patchOpenAI(
  openaiModule: unknown,
  getTracer: () => Tracer,
  getOptions: () => OpenAICaptureOptions,
): boolean {
  const protos = findPrototypes(openaiModule);
  const operations: [object | undefined, Operation][] = [
    [protos.chat, chatOperation],
    [protos.responses, responsesOperation],
    [protos.embeddings, embeddingsOperation],
  ];
  for (const [proto, operation] of operations) {
    if (proto === undefined) continue;
    wrapMethod(
      proto,
      'create',
      (original) =>
        function routewatchOpenAICreate(this: unknown, ...args: unknown[]): unknown {
          return tracedCall(this, args, original, () => {
            const start = operation(this, args, getOptions());
            return { call: LlmCall.start(getTracer(), context.active(), start), args: start.args };
          });
        },
    );
  }
  return operations.some(([proto]) => proto !== undefined);
}

/** Reads one call's request: span name, attributes, response reader. */
type Operation = (resource: unknown, args: unknown[], options: OpenAICaptureOptions) => CallStart;

function baseAttributes(
  operation: string,
  resource: unknown,
  body: Record<string, unknown>,
): { model: string | undefined; attributes: Attributes } {
  // Each read on its own: a throwing getter of the caller's params costs one attribute, not the span.
  const model = read(() => body['model']);
  const attributes: Attributes = {
    [ATTR_GEN_AI_OPERATION_NAME]: operation,
    [ATTR_GEN_AI_PROVIDER_NAME]: 'openai',
  };
  if (typeof model === 'string') attributes[ATTR_GEN_AI_REQUEST_MODEL] = model;
  const temperature = read(() => body['temperature']);
  if (typeof temperature === 'number') attributes[ATTR_GEN_AI_REQUEST_TEMPERATURE] = temperature;
  Object.assign(
    attributes,
    read(() => serverAttributes(resource)),
  );
  return { model: typeof model === 'string' ? model : undefined, attributes };
}

const spanName = (operation: string, model: string | undefined) =>
  model === undefined ? operation : `${operation} ${model}`;

// --- chat.completions.create ---------------------------------------------------------------

interface ChatUsage {
  prompt_tokens?: unknown;
  completion_tokens?: unknown;
  prompt_tokens_details?: { cached_tokens?: unknown } | null;
  completion_tokens_details?: { reasoning_tokens?: unknown } | null;
}

const chatOperation: Operation = (resource, args, options) => {
  const body = paramsOf(args[0]);
  const { model, attributes } = baseAttributes('chat', resource, body);
  const maxTokens = read(() => body['max_completion_tokens'] ?? body['max_tokens']);
  if (typeof maxTokens === 'number') attributes[ATTR_GEN_AI_REQUEST_MAX_TOKENS] = maxTokens;
  const streamed = read(() => body['stream']) === true;
  const captureContent = options.captureContent === true;

  // Usage on a stream comes only with stream_options.include_usage: ask for it when the caller did
  // not, on a copy of the params, and hide what that adds from the caller (ChatStreamSummary).
  let callArgs: unknown[] | undefined;
  let hideUsage = false;
  if (streamed && options.requestStreamUsage !== false) {
    const streamOptions = read(() => body['stream_options']);
    const asked = isObject(streamOptions) && streamOptions['include_usage'] === true;
    if (!asked) {
      const withUsage = read(() => ({
        ...body,
        stream_options: { ...(isObject(streamOptions) ? streamOptions : {}), include_usage: true },
      }));
      if (withUsage !== undefined) {
        callArgs = [withUsage, ...args.slice(1)];
        hideUsage = true;
      }
    }
  }

  const reader: ResponseReader = {
    streamed,
    recordResponse: (span, response) => recordChatResponse(span, response, captureContent),
    streamSummary: () => new ChatStreamSummary(hideUsage, captureContent),
  };
  return {
    provider: 'OpenAI',
    name: spanName('chat', model),
    attributes,
    reader: captureContent ? withInput(reader, () => inputMessages(body['messages'])) : reader,
    ...(callArgs === undefined ? {} : { args: callArgs }),
  };
};

/** Wraps a reader so the input messages are recorded with the response (content capture on). */
function withInput(reader: ResponseReader, input: () => ChatMessage[]): ResponseReader {
  let messages: ChatMessage[] | undefined;
  // Read now: the caller may mutate its messages array once the call has returned.
  guard('reading input messages', () => (messages = input()));
  const record = (span: Span) => {
    if (messages !== undefined)
      guard('recording input messages', () => setInputMessages(span, messages!));
  };
  return {
    streamed: reader.streamed,
    recordResponse: (span, response) => {
      record(span);
      reader.recordResponse(span, response);
    },
    streamSummary: () => {
      const summary = reader.streamSummary();
      return {
        add: (chunk) => summary.add(chunk),
        record: (span) => {
          record(span);
          summary.record(span);
        },
      };
    },
  };
}

function recordChatResponse(span: Span, response: unknown, captureContent: boolean): void {
  if (!isObject(response)) return;
  // Attributes are set in two calls per response, not one by one: this is the hot path.
  const attributes = idAndModel(response);
  const choices = Array.isArray(response['choices']) ? response['choices'].filter(isObject) : [];
  const reasons: string[] = [];
  for (const choice of choices) {
    if (typeof choice['finish_reason'] === 'string') reasons.push(choice['finish_reason']);
  }
  attributes[ATTR_GEN_AI_RESPONSE_FINISH_REASONS] = reasons;
  span.setAttributes(attributes);
  // Set apart: a throwing usage getter then costs the usage attributes only.
  const usage = response['usage'];
  if (isObject(usage)) recordChatUsage(span, usage);
  if (captureContent) {
    setOutputMessages(
      span,
      choices.map((choice) => {
        const message = isObject(choice['message']) ? choice['message'] : {};
        const [output] = inputMessages([{ ...message, role: 'assistant' }]);
        return {
          ...(output ?? { role: 'assistant', parts: [] }),
          ...(typeof choice['finish_reason'] === 'string'
            ? { finish_reason: choice['finish_reason'] }
            : {}),
        };
      }),
    );
  }
}

function recordIdAndModel(span: Span, response: Record<string, unknown>): void {
  span.setAttributes(idAndModel(response));
}

function idAndModel(response: Record<string, unknown>): Attributes {
  const attributes: Attributes = {};
  if (typeof response['id'] === 'string') attributes[ATTR_GEN_AI_RESPONSE_ID] = response['id'];
  if (typeof response['model'] === 'string') {
    attributes[ATTR_GEN_AI_RESPONSE_MODEL] = response['model'];
  }
  return attributes;
}

function recordChatUsage(span: Span, usage: ChatUsage): void {
  span.setAttributes(chatUsageAttributes(usage));
}

function chatUsageAttributes(usage: ChatUsage): Attributes {
  const attributes: Attributes = {};
  putCount(attributes, ATTR_GEN_AI_USAGE_INPUT_TOKENS, usage.prompt_tokens);
  putCount(attributes, ATTR_GEN_AI_USAGE_OUTPUT_TOKENS, usage.completion_tokens);
  putCount(
    attributes,
    ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    usage.prompt_tokens_details?.cached_tokens,
  );
  putCount(
    attributes,
    ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    usage.completion_tokens_details?.reasoning_tokens,
  );
  return attributes;
}

/** What a streamed chat response tells about itself, gathered chunk by chunk. */
class ChatStreamSummary implements StreamSummary {
  private id: string | undefined;
  private model: string | undefined;
  private readonly finishReasons = new Map<number, string>();
  private readonly texts = new Map<number, string>();
  private usage: ChatUsage | undefined;

  constructor(
    /** We asked for usage: the caller must not see the usage-only chunk nor `usage: null`. */
    private readonly hideUsage: boolean,
    private readonly captureContent: boolean,
  ) {}

  add(chunk: unknown): boolean {
    if (!isObject(chunk)) return true;
    const { id, model, choices, usage } = chunk;
    if (this.id === undefined && typeof id === 'string') this.id = id;
    if (this.model === undefined && typeof model === 'string') this.model = model;
    if (Array.isArray(choices)) {
      for (const choice of choices.filter(isObject)) {
        const index = typeof choice['index'] === 'number' ? choice['index'] : 0;
        if (typeof choice['finish_reason'] === 'string') {
          this.finishReasons.set(index, choice['finish_reason']);
        }
        const delta = choice['delta'];
        if (this.captureContent && isObject(delta) && typeof delta['content'] === 'string') {
          this.texts.set(index, (this.texts.get(index) ?? '') + delta['content']);
        }
      }
    }
    // With stream_options.include_usage the last chunk carries the usage.
    if (isObject(usage)) this.usage = usage;
    if (!this.hideUsage) return true;
    if (isObject(usage) && Array.isArray(choices) && choices.length === 0) return false;
    if (usage === null) delete chunk['usage'];
    return true;
  }

  record(span: Span): void {
    if (this.id !== undefined) span.setAttribute(ATTR_GEN_AI_RESPONSE_ID, this.id);
    if (this.model !== undefined) span.setAttribute(ATTR_GEN_AI_RESPONSE_MODEL, this.model);
    const byIndex = <T>(map: Map<number, T>) => [...map.entries()].sort(([a], [b]) => a - b);
    if (this.finishReasons.size > 0) {
      span.setAttribute(
        ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
        byIndex(this.finishReasons).map(([, reason]) => reason),
      );
    }
    if (this.usage !== undefined) recordChatUsage(span, this.usage);
    if (this.captureContent) {
      setOutputMessages(
        span,
        byIndex(this.texts).map(([index, text]) => {
          const reason = this.finishReasons.get(index);
          return {
            role: 'assistant',
            parts: [textPart(text)],
            ...(reason === undefined ? {} : { finish_reason: reason }),
          };
        }),
      );
    }
  }
}

// --- responses.create ----------------------------------------------------------------------

const responsesOperation: Operation = (resource, args, options) => {
  const body = paramsOf(args[0]);
  const { model, attributes } = baseAttributes('chat', resource, body);
  const maxTokens = read(() => body['max_output_tokens']);
  if (typeof maxTokens === 'number') attributes[ATTR_GEN_AI_REQUEST_MAX_TOKENS] = maxTokens;
  const captureContent = options.captureContent === true;
  const reader: ResponseReader = {
    streamed: read(() => body['stream']) === true,
    recordResponse: (span, response) => recordResponsesResponse(span, response, captureContent),
    streamSummary: () => {
      // `response.completed` (or `.incomplete`, `.failed`) carries the whole response with usage.
      let last: unknown;
      return {
        add: (event) => {
          if (isObject(event) && isObject(event['response'])) last = event['response'];
          return true;
        },
        record: (span) => recordResponsesResponse(span, last, captureContent),
      };
    },
  };
  if (!captureContent)
    return { provider: 'OpenAI', name: spanName('chat', model), attributes, reader };
  const instructions = read(() => body['instructions']);
  return {
    provider: 'OpenAI',
    name: spanName('chat', model),
    attributes,
    reader: withInput(reader, () => {
      const input = body['input'];
      const messages =
        typeof input === 'string'
          ? [{ role: 'user', parts: [textPart(input)] }]
          : inputMessages(input);
      return typeof instructions === 'string'
        ? [{ role: 'system', parts: [textPart(instructions)] }, ...messages]
        : messages;
    }),
  };
};

function recordResponsesResponse(span: Span, response: unknown, captureContent: boolean): void {
  if (!isObject(response)) return;
  recordIdAndModel(span, response);
  const status = response['status'];
  const incomplete = response['incomplete_details'];
  const reason =
    isObject(incomplete) && typeof incomplete['reason'] === 'string'
      ? incomplete['reason']
      : status === 'completed'
        ? 'stop'
        : status;
  if (typeof reason === 'string') span.setAttribute(ATTR_GEN_AI_RESPONSE_FINISH_REASONS, [reason]);
  const usage = response['usage'];
  if (isObject(usage)) {
    setCount(span, ATTR_GEN_AI_USAGE_INPUT_TOKENS, usage['input_tokens']);
    setCount(span, ATTR_GEN_AI_USAGE_OUTPUT_TOKENS, usage['output_tokens']);
    const inputDetails = usage['input_tokens_details'];
    const outputDetails = usage['output_tokens_details'];
    if (isObject(inputDetails)) {
      setCount(span, ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, inputDetails['cached_tokens']);
    }
    if (isObject(outputDetails)) {
      setCount(span, ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, outputDetails['reasoning_tokens']);
    }
  }
  if (captureContent && Array.isArray(response['output'])) {
    const messages = response['output']
      .filter(
        (item): item is Record<string, unknown> => isObject(item) && item['type'] === 'message',
      )
      .map((item) => ({
        role: 'assistant',
        parts: partsOf(item['content']),
        ...(typeof reason === 'string' ? { finish_reason: reason } : {}),
      }));
    setOutputMessages(span, messages);
  }
}

// --- embeddings.create ---------------------------------------------------------------------

const embeddingsOperation: Operation = (resource, args) => {
  const body = paramsOf(args[0]);
  const { model, attributes } = baseAttributes('embeddings', resource, body);
  return {
    provider: 'OpenAI',
    name: spanName('embeddings', model),
    attributes,
    reader: {
      streamed: false,
      recordResponse: (span, response) => {
        if (!isObject(response)) return;
        if (typeof response['model'] === 'string') {
          span.setAttribute(ATTR_GEN_AI_RESPONSE_MODEL, response['model']);
        }
        const usage = response['usage'];
        if (isObject(usage)) setCount(span, ATTR_GEN_AI_USAGE_INPUT_TOKENS, usage['prompt_tokens']);
      },
      streamSummary: () => ({ add: () => true, record: () => undefined }),
    },
  };
};
