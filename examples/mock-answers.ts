import type { MockModel } from './mock-models.js';
import type { MockCompletion } from './mock-replies.js';
import type { Answer, WireFormat, WireUsage } from './mock-wire.js';

/**
 * The two kinds of answer the simulated LLM gives, ready for any wire format (mock-wire.ts):
 * - seeded: a catalog model's reply decided by mock-replies.ts from (seed, model, messages);
 * - fixed: any other model, when the simulator is started with `anyModel: true`: the text `hello`,
 *   served as `<model>-served`, with fixed ids and token counts, for tests that assert exact values.
 */

/** A catalog model's seeded reply. The same usage in every format; no cache or reasoning tokens. */
export function seededAnswer(model: MockModel, reply: MockCompletion): Answer {
  const usage: WireUsage = {
    input: reply.usage.inputTokens,
    output: reply.usage.outputTokens,
    cacheRead: 0,
    cacheWrite: 0,
    reasoning: 0,
  };
  return {
    id: (format) =>
      format === 'anthropic'
        ? `msg_${reply.hash.slice(0, 24)}`
        : format === 'openai-responses'
          ? `resp_${reply.hash.slice(0, 32)}`
          : `chatcmpl-${reply.hash.slice(0, 29)}`,
    created: reply.created,
    servedAs: model.servedAs,
    content: reply.content,
    usage: () => usage,
    pieceSize: 16,
    headers: (format) =>
      format === 'anthropic'
        ? { 'request-id': `req_${reply.hash.slice(0, 24)}` }
        : {
            'x-request-id': `req_${reply.hash.slice(0, 32)}`,
            'openai-processing-ms': String(Math.round(reply.delayMs)),
          },
  };
}

/**
 * Token counts of the fixed answer, distinct per wire format (and for chat, streamed or not) so a
 * test can tell which reading produced a recorded count. OpenAI input includes the cached tokens;
 * Anthropic's excludes them, as the providers report it.
 */
export const FIXED_USAGE = {
  'openai-chat': { input: 12, output: 3, cacheRead: 4, cacheWrite: 0, reasoning: 1 },
  'openai-chat-stream': { input: 9, output: 2, cacheRead: 0, cacheWrite: 0, reasoning: 0 },
  'openai-responses': { input: 20, output: 5, cacheRead: 8, cacheWrite: 0, reasoning: 2 },
  'openai-embeddings': { input: 7, output: 0, cacheRead: 0, cacheWrite: 0, reasoning: 0 },
  anthropic: { input: 10, output: 4, cacheRead: 100, cacheWrite: 20, reasoning: 0 },
} as const satisfies Record<string, WireUsage>;

/** Response ids of the fixed answer, by format and streaming. */
export const FIXED_IDS = {
  'openai-chat': 'chatcmpl-mock',
  'openai-chat-stream': 'chatcmpl-stream',
  'openai-responses': 'resp-mock',
  'openai-embeddings': 'embd-mock',
  anthropic: 'msg-mock',
  'anthropic-stream': 'msg-stream',
} as const;

export const FIXED_CONTENT = 'hello';
/** `hello` streams as `hel` + `lo`: two text deltas. */
const FIXED_PIECE_SIZE = 3;

export function fixedAnswer(requestedModel: string): Answer {
  const key = (format: WireFormat, streamed: boolean) =>
    streamed && (format === 'openai-chat' || format === 'anthropic')
      ? (`${format}-stream` as const)
      : format;
  return {
    id: (format, streamed) => FIXED_IDS[key(format, streamed)],
    created: 1,
    servedAs: `${requestedModel}-served`,
    content: FIXED_CONTENT,
    usage: (format, streamed) =>
      FIXED_USAGE[format === 'openai-chat' && streamed ? 'openai-chat-stream' : format],
    pieceSize: FIXED_PIECE_SIZE,
    headers: () => ({ 'x-request-id': 'req-mock' }),
  };
}
