import type { Attributes, Span } from '@opentelemetry/api';
import {
  InstrumentationBase,
  type InstrumentationNodeModuleDefinition,
} from '@opentelemetry/instrumentation';
import { inputMessages, partsOf, setOutputMessages, textPart } from '../capture/content.js';
import { instrumentModule, moduleDefinitions, scopeName } from '../capture/patching.js';
import { isObject, putCount, read, setCount } from '../capture/params.js';
import type {
  CallInfo,
  OperationCapture,
  PreparedRequest,
  ProviderCapture,
} from '../capture/provider.js';
import type { StreamSummary } from '../capture/span-lifecycle.js';
import {
  ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  ATTR_GEN_AI_RESPONSE_ID,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
} from '../semconv.js';
import type { OpenAICaptureOptions, OpenAIInstrumentationConfig } from '../types.js';
import { PACKAGE_VERSION } from '../version.js';

/**
 * The OpenAI SDK (v4–v6): `chat.completions.create`, `responses.create` (and so
 * `responses.stream()`) and `embeddings.create`, each a CLIENT span with the GenAI attributes.
 */

/** Versions of the `openai` package whose resources we know how to wrap. */
export const SUPPORTED_OPENAI_VERSIONS = ['>=4.0.0 <7'];

// --- chat.completions.create ---------------------------------------------------------------

interface ChatUsage {
  prompt_tokens?: unknown;
  completion_tokens?: unknown;
  prompt_tokens_details?: { cached_tokens?: unknown } | null;
  completion_tokens_details?: { reasoning_tokens?: unknown } | null;
}

const chat: OperationCapture<OpenAICaptureOptions> = {
  operation: 'chat',
  maxTokensParams: ['max_completion_tokens', 'max_tokens'],
  input: (params) => ({ messages: inputMessages(params['messages']) }),
  prepare: askForStreamUsage,
  recordResponse: recordChatResponse,
  // The summary hides what `askForStreamUsage` added, when it added something.
  streamSummary: (call) => new ChatStreamSummary(call.rewritten, call.captureContent),
};

/**
 * Usage on a stream comes only with `stream_options.include_usage`: ask for it when the caller did
 * not, on a copy of the params, unless `requestStreamUsage` is off.
 */
function askForStreamUsage({
  params,
  args,
  streamed,
  options,
}: PreparedRequest<OpenAICaptureOptions>): unknown[] | undefined {
  if (!streamed || options.requestStreamUsage === false) return undefined;
  const streamOptions = read(() => params['stream_options']);
  if (isObject(streamOptions) && streamOptions['include_usage'] === true) return undefined;
  const withUsage = read(() => ({
    ...params,
    stream_options: { ...(isObject(streamOptions) ? streamOptions : {}), include_usage: true },
  }));
  return withUsage === undefined ? undefined : [withUsage, ...args.slice(1)];
}

function recordChatResponse(span: Span, response: unknown, call: CallInfo): void {
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
  if (isObject(usage)) span.setAttributes(chatUsageAttributes(usage));
  if (call.captureContent) {
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

function idAndModel(response: Record<string, unknown>): Attributes {
  const attributes: Attributes = {};
  if (typeof response['id'] === 'string') attributes[ATTR_GEN_AI_RESPONSE_ID] = response['id'];
  if (typeof response['model'] === 'string') {
    attributes[ATTR_GEN_AI_RESPONSE_MODEL] = response['model'];
  }
  return attributes;
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
    if (this.usage !== undefined) span.setAttributes(chatUsageAttributes(this.usage));
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

const responses: OperationCapture<OpenAICaptureOptions> = {
  operation: 'chat',
  maxTokensParams: ['max_output_tokens'],
  input: (params) => {
    const input = params['input'];
    const instructions = params['instructions'];
    const messages =
      typeof input === 'string'
        ? [{ role: 'user', parts: [textPart(input)] }]
        : inputMessages(input);
    return {
      messages:
        typeof instructions === 'string'
          ? [{ role: 'system', parts: [textPart(instructions)] }, ...messages]
          : messages,
    };
  },
  recordResponse: (span, response, call) =>
    recordResponsesResponse(span, response, call.captureContent),
  streamSummary: (call) => {
    // `response.completed` (or `.incomplete`, `.failed`) carries the whole response with usage.
    let last: unknown;
    return {
      add: (event) => {
        if (isObject(event) && isObject(event['response'])) last = event['response'];
        return true;
      },
      record: (span) => recordResponsesResponse(span, last, call.captureContent),
    };
  },
};

function recordResponsesResponse(span: Span, response: unknown, captureContent: boolean): void {
  if (!isObject(response)) return;
  span.setAttributes(idAndModel(response));
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

// Embedding inputs are never recorded, content capture or not.
const embeddings: OperationCapture<OpenAICaptureOptions> = {
  operation: 'embeddings',
  recordResponse: (span, response) => {
    if (!isObject(response)) return;
    if (typeof response['model'] === 'string') {
      span.setAttribute(ATTR_GEN_AI_RESPONSE_MODEL, response['model']);
    }
    const usage = response['usage'];
    if (isObject(usage)) setCount(span, ATTR_GEN_AI_USAGE_INPUT_TOKENS, usage['prompt_tokens']);
  },
};

// --- the declaration -----------------------------------------------------------------------

export const OPENAI_CAPTURE: ProviderCapture<OpenAICaptureOptions> = {
  module: 'openai',
  supportedVersions: SUPPORTED_OPENAI_VERSIONS,
  provider: 'openai',
  displayName: 'OpenAI',
  clientExport: 'OpenAI',
  resources: [
    { path: ['Chat', 'Completions'], method: 'create', operation: chat },
    { path: ['Responses'], method: 'create', operation: responses },
    { path: ['Embeddings'], method: 'create', operation: embeddings },
  ],
};

/** Captures OpenAI SDK calls (v4–v6) as GenAI CLIENT spans, loaded by require or import. */
export class OpenAIInstrumentation extends InstrumentationBase<OpenAIInstrumentationConfig> {
  constructor(config: OpenAIInstrumentationConfig = {}) {
    super(scopeName(OPENAI_CAPTURE), PACKAGE_VERSION, config);
  }

  protected override init(): InstrumentationNodeModuleDefinition[] {
    return moduleDefinitions(
      OPENAI_CAPTURE,
      () => this.tracer,
      () => this.getConfig(),
    );
  }
}

/**
 * Patches `chat.completions.create`, `responses.create` and `embeddings.create` of an already
 * imported `openai` module, for processes where no loader hook runs (tests, in-process demos):
 * `instrumentOpenAI(await import('openai'))`. Idempotent; accepts the module namespace, the
 * CommonJS exports or the `OpenAI` class.
 */
export function instrumentOpenAI(openaiModule: unknown, options: OpenAICaptureOptions = {}): void {
  instrumentModule(OPENAI_CAPTURE, openaiModule, options);
}
