/**
 * The wire formats the simulated LLM speaks: one answer (mock-answers.ts) encoded as an OpenAI chat
 * completion, an OpenAI response, an OpenAI embeddings list or an Anthropic message, as JSON or as
 * server-sent events. Pure functions: bodies and event lists, no I/O.
 */

export const WIRE_FORMATS = [
  'openai-chat',
  'openai-responses',
  'openai-embeddings',
  'anthropic',
] as const;
export type WireFormat = (typeof WIRE_FORMATS)[number];

/** Token counts as the wire format reports them. */
export interface WireUsage {
  /** OpenAI: prompt tokens, cached ones included. Anthropic: uncached input tokens only. */
  readonly input: number;
  readonly output: number;
  readonly cacheRead: number;
  /** Anthropic only: tokens written to the cache. */
  readonly cacheWrite: number;
  readonly reasoning: number;
}

/** What the simulator answers to one request, before it is encoded. */
export interface Answer {
  /** Response id in this format (`chatcmpl-…`, `msg_…`, `resp_…`). */
  id(format: WireFormat, streamed: boolean): string;
  /** Unix seconds. */
  readonly created: number;
  /** The model name the reply carries (often a dated name: served ≠ requested). */
  readonly servedAs: string;
  readonly content: string;
  usage(format: WireFormat, streamed: boolean): WireUsage;
  /** Characters per streamed text delta. */
  readonly pieceSize: number;
  /** Response headers in this format (request ids). */
  headers(format: WireFormat): Record<string, string>;
}

/** One server-sent event. */
export interface SseEvent {
  readonly event?: string;
  readonly data: unknown;
}

export function encodeSse({ event, data }: SseEvent): string {
  return `${event === undefined ? '' : `event: ${event}\n`}data: ${JSON.stringify(data)}\n\n`;
}

function pieces(answer: Answer): string[] {
  const size = Math.max(1, answer.pieceSize);
  const parts: string[] = [];
  for (let at = 0; at < answer.content.length; at += size) {
    parts.push(answer.content.slice(at, at + size));
  }
  return parts.length === 0 ? [''] : parts;
}

// --- OpenAI chat completions ---------------------------------------------------------------

function openAiUsage(usage: WireUsage): object {
  return {
    prompt_tokens: usage.input,
    completion_tokens: usage.output,
    total_tokens: usage.input + usage.output,
    prompt_tokens_details: { cached_tokens: usage.cacheRead, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: usage.reasoning,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

/** A `chat.completion` with `choices` copies of the answer (the `n` parameter). */
export function openAiChatCompletion(answer: Answer, choices = 1): object {
  return {
    id: answer.id('openai-chat', false),
    object: 'chat.completion',
    created: answer.created,
    model: answer.servedAs,
    choices: Array.from({ length: choices }, (_, index) => ({
      index,
      message: { role: 'assistant', content: answer.content, refusal: null, annotations: [] },
      logprobs: null,
      finish_reason: 'stop',
    })),
    usage: openAiUsage(answer.usage('openai-chat', false)),
    service_tier: 'default',
    system_fingerprint: 'fp_routewatch_mock',
  };
}

/**
 * The chunks of a streamed chat completion: the first carries the role, the last the finish
 * reason. With `include_usage`, as the real API does, every chunk has `usage: null` and a final
 * chunk with no choices carries the usage. `[DONE]` is the server's to add.
 */
export function openAiChatChunks(answer: Answer, includeUsage: boolean): SseEvent[] {
  const base = {
    id: answer.id('openai-chat', true),
    object: 'chat.completion.chunk',
    created: answer.created,
    model: answer.servedAs,
    service_tier: 'default',
    system_fingerprint: 'fp_routewatch_mock',
    ...(includeUsage ? { usage: null } : {}),
  };
  const texts = pieces(answer);
  const chunks: SseEvent[] = texts.map((text, index) => ({
    data: {
      ...base,
      choices: [
        {
          index: 0,
          delta: index === 0 ? { role: 'assistant', content: text } : { content: text },
          logprobs: null,
          finish_reason: index === texts.length - 1 ? 'stop' : null,
        },
      ],
    },
  }));
  if (includeUsage) {
    chunks.push({
      data: { ...base, choices: [], usage: openAiUsage(answer.usage('openai-chat', true)) },
    });
  }
  return chunks;
}

// --- OpenAI responses ----------------------------------------------------------------------

export function openAiResponse(answer: Answer, streamed: boolean): Record<string, unknown> {
  const usage = answer.usage('openai-responses', streamed);
  return {
    id: answer.id('openai-responses', streamed),
    object: 'response',
    created_at: answer.created,
    status: 'completed',
    model: answer.servedAs,
    output: [
      {
        type: 'message',
        id: `msg_${answer.id('openai-responses', streamed)}`,
        role: 'assistant',
        status: 'completed',
        content: [{ type: 'output_text', text: answer.content, annotations: [] }],
      },
    ],
    usage: {
      input_tokens: usage.input,
      output_tokens: usage.output,
      total_tokens: usage.input + usage.output,
      input_tokens_details: { cached_tokens: usage.cacheRead },
      output_tokens_details: { reasoning_tokens: usage.reasoning },
    },
  };
}

/** `response.created`, the text as one delta, then `response.completed` with the usage. */
export function openAiResponseEvents(answer: Answer): SseEvent[] {
  const response = openAiResponse(answer, true);
  const event = (type: string, sequence: number, data: object): SseEvent => ({
    event: type,
    data: { type, sequence_number: sequence, ...data },
  });
  return [
    event('response.created', 0, {
      response: { ...response, status: 'in_progress', output: [], usage: null },
    }),
    event('response.output_text.delta', 1, { delta: answer.content }),
    event('response.completed', 2, { response }),
  ];
}

// --- OpenAI embeddings ---------------------------------------------------------------------

/** One 3-dimensional vector per input, as floats or (the SDK's default request) base64. */
export function openAiEmbeddings(answer: Answer, inputs: number, format: unknown): object {
  const vector = [0.1, 0.2, 0.3];
  const embedding =
    format === 'base64' ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector;
  const usage = answer.usage('openai-embeddings', false);
  return {
    object: 'list',
    model: answer.servedAs,
    data: Array.from({ length: inputs }, (_, index) => ({ object: 'embedding', index, embedding })),
    usage: { prompt_tokens: usage.input, total_tokens: usage.input },
  };
}

// --- Anthropic messages --------------------------------------------------------------------

function anthropicUsage(usage: WireUsage): Record<string, number> {
  return {
    input_tokens: usage.input,
    output_tokens: usage.output,
    cache_creation_input_tokens: usage.cacheWrite,
    cache_read_input_tokens: usage.cacheRead,
  };
}

export function anthropicMessage(answer: Answer): object {
  return {
    id: answer.id('anthropic', false),
    type: 'message',
    role: 'assistant',
    model: answer.servedAs,
    content: [{ type: 'text', text: answer.content }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: anthropicUsage(answer.usage('anthropic', false)),
  };
}

/**
 * A streamed message: `message_start` with the input usage (and one output token so far), one
 * `content_block_delta` per piece of text, `message_delta` with the stop reason and the final
 * output tokens, `message_stop`.
 */
export function anthropicEvents(answer: Answer): SseEvent[] {
  const usage = anthropicUsage(answer.usage('anthropic', true));
  const event = (type: string, data: object): SseEvent => ({
    event: type,
    data: { type, ...data },
  });
  return [
    event('message_start', {
      message: {
        id: answer.id('anthropic', true),
        type: 'message',
        role: 'assistant',
        model: answer.servedAs,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { ...usage, output_tokens: 1 },
      },
    }),
    event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
    ...pieces(answer).map((text) =>
      event('content_block_delta', { index: 0, delta: { type: 'text_delta', text } }),
    ),
    event('content_block_stop', { index: 0 }),
    event('message_delta', {
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      usage: { output_tokens: usage['output_tokens'] },
    }),
    event('message_stop', {}),
  ];
}

// --- errors --------------------------------------------------------------------------------

/**
 * An error body in the format's shape. Without `details`, the OpenAI `type` and `code` follow the
 * status as the API sets them; Anthropic's `type` always does.
 */
export function errorBody(
  format: WireFormat,
  status: number,
  message: string,
  details: { type?: string; code?: string | null; param?: string | null } = {},
): object {
  if (format === 'anthropic') {
    const type =
      status === 429
        ? 'rate_limit_error'
        : status === 529
          ? 'overloaded_error'
          : status === 404
            ? 'not_found_error'
            : status === 401
              ? 'authentication_error'
              : status >= 500
                ? 'api_error'
                : 'invalid_request_error';
    return { type: 'error', error: { type, message } };
  }
  const type =
    details.type ??
    (status === 429 ? 'requests' : status >= 500 ? 'server_error' : 'invalid_request_error');
  const code =
    details.code !== undefined ? details.code : status === 429 ? 'rate_limit_exceeded' : null;
  return { error: { message, type, param: details.param ?? null, code } };
}
