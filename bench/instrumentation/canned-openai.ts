import type { OpenAI } from 'openai';

/**
 * The one exchange every variant makes: a small chat completion request, answered in-process by a
 * `fetch` that returns the same canned body with usage. No socket, so the only network traffic in a
 * run is the OTLP export to the local receiver.
 */

export const REQUEST_MODEL = 'gpt-4o-mini';

export const CHAT_REQUEST: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming = {
  model: REQUEST_MODEL,
  messages: [
    { role: 'system', content: 'Answer in one word.' },
    { role: 'user', content: 'What is the capital of France?' },
  ],
  temperature: 0,
  max_tokens: 16,
};

export const CANNED_COMPLETION = JSON.stringify({
  id: 'chatcmpl-bench-0001',
  object: 'chat.completion',
  created: 1_700_000_000,
  model: 'gpt-4o-mini-2024-07-18',
  choices: [
    {
      index: 0,
      message: { role: 'assistant', content: 'Paris.', refusal: null },
      logprobs: null,
      finish_reason: 'stop',
    },
  ],
  usage: {
    prompt_tokens: 24,
    completion_tokens: 2,
    total_tokens: 26,
    prompt_tokens_details: { cached_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0 },
  },
  system_fingerprint: 'fp_bench',
});

/** The `fetch` given to the OpenAI client: a fresh Response per call, as a real fetch returns. */
export const cannedFetch = async (): Promise<Response> =>
  new Response(CANNED_COMPLETION, {
    status: 200,
    headers: { 'content-type': 'application/json', 'x-request-id': 'req_bench' },
  });
