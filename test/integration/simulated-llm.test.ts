import Anthropic from '@anthropic-ai/sdk';
import OpenAI, { NotFoundError, RateLimitError } from 'openai';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXED_CONTENT, FIXED_USAGE } from '../../examples/mock-answers.js';
import { faults } from '../../examples/mock-faults.js';
import { startMockLlm } from '../../examples/mock-llm.js';
import type { MockLlm } from '../../examples/mock-llm.js';
import { DEFAULT_PROFILES, findMockModel } from '../../examples/mock-models.js';
import { decideReply } from '../../examples/mock-replies.js';

// The simulated LLM over real HTTP, through the real OpenAI and Anthropic SDKs.

const SEED = 42;

async function postJson(
  url: string,
  body: unknown,
): Promise<{ status: number; text: string; headers: Headers }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

const chatRequest = (
  content: string,
  model = 'gpt-4o-mini',
): ChatCompletionCreateParamsNonStreaming => ({
  model,
  messages: [
    { role: 'system', content: 'task-type: faq' },
    { role: 'user', content },
  ],
});

describe('simulated LLM: seeded catalog models', () => {
  let mock: MockLlm;
  let client: OpenAI;
  beforeAll(async () => {
    mock = await startMockLlm({ seed: SEED, latencyScale: 0 });
    client = new OpenAI({ baseURL: mock.url, apiKey: 'test', maxRetries: 0 });
  });
  afterAll(async () => {
    await mock.close();
  });

  it('listens on an ephemeral loopback port and counts requests', async () => {
    expect(mock.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const before = mock.requests;
    await postJson(`${mock.url}/chat/completions`, chatRequest('count me'));
    expect(mock.requests).toBe(before + 1);
  });

  it('returns the same body for the same request', async () => {
    const first = await postJson(
      `${mock.url}/chat/completions`,
      chatRequest('How do I reset my password?'),
    );
    const second = await postJson(
      `${mock.url}/chat/completions`,
      chatRequest('How do I reset my password?'),
    );
    expect(first.status).toBe(200);
    expect(second.text).toBe(first.text);
    expect(second.headers.get('x-request-id')).toBe(first.headers.get('x-request-id'));
  });

  it('answers differently under another seed', async () => {
    const other = await startMockLlm({ seed: SEED + 1, latencyScale: 0 });
    try {
      const outcomes = async (url: string): Promise<string[]> =>
        Promise.all(
          Array.from({ length: 40 }, async (_, i) => {
            const reply = await postJson(`${url}/chat/completions`, chatRequest(`question ${i}`));
            if (reply.status !== 200) return `status ${reply.status}`;
            const body = JSON.parse(reply.text) as {
              choices: Array<{ message: { content: string } }>;
            };
            return body.choices[0]?.message.content ?? '';
          }),
        );
      const [mine, theirs] = [await outcomes(mock.url), await outcomes(other.url)];
      expect(mine).toEqual(await outcomes(mock.url));
      expect(theirs.filter((content, i) => content !== mine[i]).length).toBeGreaterThan(10);
    } finally {
      await other.close();
    }
  });

  it('speaks the chat completions format the openai SDK parses', async () => {
    const completion = await client.chat.completions.create(
      chatRequest('Where is my order?', 'gpt-4o'),
    );
    expect(completion.object).toBe('chat.completion');
    expect(completion.id).toMatch(/^chatcmpl-/);
    expect(completion.model).toBe('gpt-4o-2024-08-06');
    expect(completion.choices[0]?.finish_reason).toBe('stop');
    const answer = JSON.parse(completion.choices[0]?.message.content ?? '') as Record<
      string,
      unknown
    >;
    expect(answer).toHaveProperty('answer');
    expect(completion.usage?.prompt_tokens).toBeGreaterThan(600);
    expect(completion.usage?.total_tokens).toBe(
      (completion.usage?.prompt_tokens ?? 0) + (completion.usage?.completion_tokens ?? 0),
    );
  });

  it('streams the same reply as SSE chunks with a final usage chunk', async () => {
    const request = chatRequest('Can I add a second admin to my workspace?');
    const plain = await client.chat.completions.create(request);
    const stream = await client.chat.completions.create({
      ...request,
      stream: true,
      stream_options: { include_usage: true },
    });
    let content = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks += 1;
      content += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(chunks).toBeGreaterThan(3);
    expect(content).toBe(plain.choices[0]?.message.content);
    expect(usage).toEqual(plain.usage);
  });

  it('raises 429 and 500 replies as the SDK error classes, like the pure core decides', async () => {
    const model = findMockModel('gpt-4o-mini', 'openai');
    if (model === undefined) throw new Error('gpt-4o-mini is not simulated');
    const statusOf = (content: string): number => {
      const reply = decideReply({
        seed: SEED,
        model,
        messages: [
          { role: 'system', content: 'task-type: faq' },
          { role: 'user', content },
        ],
        profiles: DEFAULT_PROFILES,
        latencyScale: 0,
      });
      return reply.kind === 'error' ? reply.status : 200;
    };
    const probes = Array.from({ length: 2000 }, (_, i) => `probe ${i}`);
    const rateLimited = probes.find((content) => statusOf(content) === 429);
    const serverError = probes.find((content) => statusOf(content) === 500);
    if (rateLimited === undefined || serverError === undefined)
      throw new Error('no error in 2000 probes');
    // A few percent of calls fail, as configured.
    const failures = probes.filter((content) => statusOf(content) !== 200).length;
    expect(failures / probes.length).toBeGreaterThan(0.01);
    expect(failures / probes.length).toBeLessThan(0.06);

    const rateLimitError = await client.chat.completions
      .create(chatRequest(rateLimited))
      .catch((e: unknown) => e);
    expect(rateLimitError).toBeInstanceOf(RateLimitError);
    expect((rateLimitError as RateLimitError).headers.get('retry-after')).toBe('1');
    const serverErrorError = await client.chat.completions
      .create(chatRequest(serverError))
      .catch((e: unknown) => e);
    expect(serverErrorError).toBeInstanceOf(OpenAI.InternalServerError);
    expect(serverErrorError).not.toBeInstanceOf(RateLimitError);
  });

  it('rejects unknown models, unknown paths and bad bodies with OpenAI-style errors', async () => {
    const unknownModel = await client.chat.completions
      .create(chatRequest('hi', 'gpt-9'))
      .catch((e: unknown) => e);
    expect(unknownModel).toBeInstanceOf(NotFoundError);
    expect((unknownModel as NotFoundError).code).toBe('model_not_found');

    const unknownPath = await postJson(`${mock.url}/audio/speech`, { model: 'gpt-4o', input: 'x' });
    expect(unknownPath.status).toBe(404);
    expect(JSON.parse(unknownPath.text)).toMatchObject({
      error: { type: 'invalid_request_error' },
    });

    // The catalog has chat models only.
    const embeddings = await client.embeddings
      .create({ model: 'gpt-4o', input: 'x' })
      .catch((e: unknown) => e);
    expect(embeddings).toBeInstanceOf(NotFoundError);

    const badJson = await postJson(`${mock.url}/chat/completions`, '{"model": "gpt-4o",');
    expect(badJson.status).toBe(400);
    expect(JSON.parse(badJson.text)).toMatchObject({ error: { type: 'invalid_request_error' } });

    const noMessages = await postJson(`${mock.url}/chat/completions`, { model: 'gpt-4o' });
    expect(noMessages.status).toBe(400);
    expect(JSON.parse(noMessages.text)).toMatchObject({ error: { param: 'messages' } });
  });

  it('speaks the Anthropic messages format', async () => {
    const request = {
      model: 'claude-3-5-haiku-latest',
      max_tokens: 512,
      system: 'task-type: faq',
      messages: [{ role: 'user', content: 'How do I reset my password?' }],
    };
    const reply = await postJson(`${mock.origin}/v1/messages`, request);
    expect(reply.status).toBe(200);
    const body = JSON.parse(reply.text) as {
      type: string;
      model: string;
      content: Array<{ type: string; text: string }>;
      usage: { input_tokens: number; output_tokens: number };
    };
    expect(body.type).toBe('message');
    expect(body.model).toBe('claude-3-5-haiku-20241022');
    expect(body.content[0]?.type).toBe('text');
    expect(body.usage.input_tokens).toBeGreaterThan(600);
    expect(body.usage.output_tokens).toBeGreaterThan(0);
    expect((await postJson(`${mock.origin}/v1/messages`, request)).text).toBe(reply.text);

    const unknown = await postJson(`${mock.origin}/v1/messages`, { ...request, model: 'gpt-4o' });
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.text)).toMatchObject({
      type: 'error',
      error: { type: 'not_found_error' },
    });
  });

  it('delays replies by the simulated latency and closes with requests in flight', async () => {
    const slow = await startMockLlm({ seed: SEED, latencyScale: 1 });
    const started = performance.now();
    const reply = await postJson(`${slow.url}/chat/completions`, chatRequest('slow one'));
    const elapsed = performance.now() - started;
    const simulated = Number(reply.headers.get('openai-processing-ms'));
    expect(simulated).toBeGreaterThan(100);
    expect(elapsed).toBeGreaterThanOrEqual(simulated - 5);

    // A large-model reply takes ≥ 0.8 s at latencyScale 1; close() does not wait for it: the
    // request in flight fails instead of being answered.
    const inFlight = postJson(
      `${slow.url}/chat/completions`,
      chatRequest('never answered', 'gpt-4o'),
    ).catch((e: unknown) => e);
    while (slow.requests < 2) await new Promise((resolve) => setImmediate(resolve));
    await slow.close();
    expect(await inFlight).toBeInstanceOf(Error);
  });
});

describe('simulated LLM: the other wire formats of catalog models', () => {
  let mock: MockLlm;
  beforeAll(async () => {
    mock = await startMockLlm({ seed: SEED, latencyScale: 0 });
  });
  afterAll(async () => {
    await mock.close();
  });

  it('streams an Anthropic message with the same text and usage as the plain reply', async () => {
    const anthropic = new Anthropic({ apiKey: 'test', baseURL: mock.origin, maxRetries: 0 });
    const request = {
      model: 'claude-3-5-haiku',
      max_tokens: 512,
      system: 'task-type: faq',
      messages: [{ role: 'user' as const, content: 'How do I turn on two-factor authentication?' }],
    };
    const plain = await anthropic.messages.create(request);
    const streamed = await anthropic.messages.stream(request).finalMessage();
    expect(streamed.content).toEqual(plain.content);
    expect(streamed.usage.input_tokens).toBe(plain.usage.input_tokens);
    expect(streamed.usage.output_tokens).toBe(plain.usage.output_tokens);
    expect(streamed.model).toBe('claude-3-5-haiku-20241022');
  });

  it('answers the responses API from the same seeded core as chat completions', async () => {
    const openai = new OpenAI({ apiKey: 'test', baseURL: mock.url, maxRetries: 0 });
    const question = 'Where is my order? It has not arrived yet.';
    const chat = await openai.chat.completions.create(chatRequest(question));
    const response = await openai.responses.create({
      model: 'gpt-4o-mini',
      instructions: 'task-type: faq',
      input: question,
    });
    expect(response.output_text).toBe(chat.choices[0]?.message.content);
    expect(response.usage?.input_tokens).toBe(chat.usage?.prompt_tokens);
  });
});

describe('simulated LLM: the fixed answer for any model', () => {
  let mock: MockLlm;
  beforeAll(async () => {
    mock = await startMockLlm({ anyModel: true, recordRequests: true });
  });
  afterAll(async () => {
    await mock.close();
  });

  it('answers every format with `hello` and the fixed counts of that format', async () => {
    const openai = new OpenAI({ apiKey: 'test', baseURL: mock.url, maxRetries: 0 });
    const anthropic = new Anthropic({ apiKey: 'test', baseURL: mock.origin, maxRetries: 0 });
    const chat = await openai.chat.completions.create({
      model: 'any-model',
      messages: [{ role: 'user', content: 'hi' }],
      n: 2,
    });
    expect(chat.model).toBe('any-model-served');
    expect(chat.choices.map((choice) => choice.message.content)).toEqual([
      FIXED_CONTENT,
      FIXED_CONTENT,
    ]);
    expect(chat.usage?.prompt_tokens).toBe(FIXED_USAGE['openai-chat'].input);
    const embeddings = await openai.embeddings.create({ model: 'e', input: ['a', 'b'] });
    expect(embeddings.data.map((item) => item.embedding.length)).toEqual([3, 3]);
    expect(embeddings.usage.prompt_tokens).toBe(FIXED_USAGE['openai-embeddings'].input);
    const message = await anthropic.messages.create({
      model: 'claude-any',
      max_tokens: 10,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(message.content).toEqual([{ type: 'text', text: FIXED_CONTENT }]);
    expect(message.usage.cache_read_input_tokens).toBe(FIXED_USAGE.anthropic.cacheRead);
    expect(mock.received.map((request) => [request.path, request.model])).toEqual([
      ['/v1/chat/completions', 'any-model'],
      ['/v1/embeddings', 'e'],
      ['/v1/messages', 'claude-any'],
    ]);
  });
});

describe('simulated LLM: fault rules', () => {
  it('fails the first K requests with the status, then answers: the SDK’s hidden retries', async () => {
    const mock = await startMockLlm({
      anyModel: true,
      faults: [faults.status('gpt-retry', 429, { times: 2, retryAfterSeconds: 0 })],
    });
    try {
      const retrying = new OpenAI({ apiKey: 'test', baseURL: mock.url, maxRetries: 2 });
      const completion = await retrying.chat.completions.create({
        model: 'gpt-retry',
        messages: [{ role: 'user', content: 'hi' }],
      });
      expect(completion.choices[0]?.message.content).toBe(FIXED_CONTENT);
      // One call, three HTTP requests: what issue 13 calls the hidden retry storm.
      expect(mock.requests).toBe(3);
      const once = new OpenAI({ apiKey: 'test', baseURL: mock.url, maxRetries: 0 });
      mock.setFaults([faults.status('gpt-retry', 503, { times: 1, retryAfterSeconds: 7 })]);
      const failure = await once.chat.completions
        .create({ model: 'gpt-retry', messages: [{ role: 'user', content: 'hi' }] })
        .catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(OpenAI.InternalServerError);
      expect((failure as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
      expect((failure as InstanceType<typeof OpenAI.APIError>).headers?.get('retry-after')).toBe(
        '7',
      );
    } finally {
      await mock.close();
    }
  });

  it('answers in the provider’s error shape: Anthropic classes for /v1/messages', async () => {
    const mock = await startMockLlm({
      anyModel: true,
      faults: [faults.status('claude-busy', 429), faults.status('claude-down', 529)],
    });
    try {
      const anthropic = new Anthropic({ apiKey: 'test', baseURL: mock.origin, maxRetries: 0 });
      const ask = (model: string) =>
        anthropic.messages
          .create({ model, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] })
          .catch((e: unknown) => e);
      expect(await ask('claude-busy')).toBeInstanceOf(Anthropic.RateLimitError);
      const overloaded = await ask('claude-down');
      expect(overloaded).toBeInstanceOf(Anthropic.APIError);
      expect((overloaded as InstanceType<typeof Anthropic.APIError>).status).toBe(529);
      expect(await ask('claude-fine')).toMatchObject({ type: 'message' });
    } finally {
      await mock.close();
    }
  });

  it('stalls a stream after the given events, and slows or hangs a plain call past the client timeout', async () => {
    const mock = await startMockLlm({
      anyModel: true,
      faults: [faults.stall('stall', 60_000, 1), faults.slow('slow', 60_000), faults.hang('hang')],
    });
    try {
      const openai = new OpenAI({ apiKey: 'test', baseURL: mock.url, maxRetries: 0 });
      const stream = await openai.chat.completions.create({
        model: 'stall',
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
      });
      const iterator = stream[Symbol.asyncIterator]();
      const first = await iterator.next();
      expect(first.done).toBe(false);
      const second = iterator.next();
      const state = await Promise.race([
        second.then(() => 'next chunk'),
        new Promise((resolve) => setTimeout(() => resolve('stalled'), 200)),
      ]);
      expect(state).toBe('stalled');
      stream.controller.abort();
      await second.catch(() => undefined);
      for (const model of ['slow', 'hang']) {
        const late = await openai.chat.completions
          .create({ model, messages: [{ role: 'user', content: 'hi' }] }, { timeout: 100 })
          .catch((e: unknown) => e);
        expect(late).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
      }
    } finally {
      await mock.close();
    }
  });

  it('rejects a rule it cannot apply', async () => {
    await expect(
      startMockLlm({ faults: [{ model: 'x', times: 0, fault: { kind: 'hang' } }] }),
    ).rejects.toThrow(/times must be an integer/);
  });
});
