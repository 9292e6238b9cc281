import { describe, expect, it } from 'vitest';
import { FIXED_IDS, FIXED_USAGE, fixedAnswer, seededAnswer } from '../../examples/mock-answers.js';
import { FaultPlan, faults } from '../../examples/mock-faults.js';
import { DEFAULT_PROFILES, findMockModel } from '../../examples/mock-models.js';
import { decideReply } from '../../examples/mock-replies.js';
import {
  anthropicEvents,
  errorBody,
  openAiChatChunks,
  openAiChatCompletion,
} from '../../examples/mock-wire.js';
import { callCostUsd } from '../../examples/pricing-truth.js';

// The pure parts of the simulated LLM: what it decides, how it encodes it, which faults apply.

const model = findMockModel('gpt-4o-mini', 'openai')!;
const faqMessages = [
  { role: 'system', content: 'task-type: faq' },
  { role: 'user', content: 'How do I reset my password?' },
];
const decide = (seed: number, messages = faqMessages) =>
  decideReply({ seed, model, messages, profiles: DEFAULT_PROFILES, latencyScale: 0 });

describe('pricing truth', () => {
  it('prices served model names by their family, gpt-4o-mini apart from gpt-4o', () => {
    const usage = { inputTokens: 1_000_000, outputTokens: 1_000_000 };
    expect(callCostUsd('gpt-4o-mini-2024-07-18', usage)).toBeCloseTo(0.75, 10);
    expect(callCostUsd('gpt-4o-2024-08-06', usage)).toBeCloseTo(12.5, 10);
    expect(() => callCostUsd('gpt-5', usage)).toThrow(/no simulator price/);
  });
});

describe('decideReply', () => {
  it('is a function of seed, model and messages', () => {
    expect(decide(42)).toEqual(decide(42));
    const replies = Array.from({ length: 20 }, (_, i) =>
      JSON.stringify(decide(i, [faqMessages[0]!, { role: 'user', content: `question ${i}` }])),
    );
    expect(new Set(replies).size).toBe(20);
  });

  it('knows the catalog by canonical, dated and -latest names, per API', () => {
    expect(findMockModel('gpt-4o-mini-2024-07-18', 'openai')?.id).toBe('gpt-4o-mini');
    expect(findMockModel('claude-3-5-haiku-latest', 'anthropic')?.tier).toBe('small');
    expect(findMockModel('gpt-4o', 'anthropic')).toBeUndefined();
  });
});

describe('FaultPlan', () => {
  it('applies the first matching rule with uses left, in order', () => {
    const plan = new FaultPlan([
      faults.status('m', 429, { times: 2 }),
      { path: '/v1/messages', fault: { kind: 'hang' } },
      faults.slow('m', 10),
    ]);
    const kinds = ['m', 'm', 'm', 'other'].map(
      (model) => plan.next({ model, path: '/v1/chat/completions' })?.kind,
    );
    expect(kinds).toEqual(['status', 'status', 'slow', undefined]);
    expect(plan.next({ model: 'm', path: '/v1/messages' })?.kind).toBe('hang');
    expect(new FaultPlan().next({ model: 'm', path: '/' })).toBeUndefined();
  });

  it('rejects rules it cannot apply, naming the rule', () => {
    expect(() => new FaultPlan([faults.status('m', 200)])).toThrow(
      /faults\[0\]: status must be an HTTP error status/,
    );
    expect(() => new FaultPlan([faults.slow('m', 1), faults.stall('m', 5, 0)])).toThrow(
      /faults\[1\]: afterEvents/,
    );
  });
});

describe('wire encoding', () => {
  it('streams a chat answer as chunks whose text is the plain reply, usage last when asked', () => {
    const reply = decide(7);
    if (reply.kind !== 'completion') throw new Error('expected a completion for this seed');
    const answer = seededAnswer(model, reply);
    const plain = openAiChatCompletion(answer) as {
      choices: { message: { content: string } }[];
    };
    const chunks = openAiChatChunks(answer, true).map(
      (event) => event.data as { choices: { delta: { content?: string } }[]; usage: unknown },
    );
    const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(plain.choices[0]?.message.content);
    expect(chunks.slice(0, -1).every((chunk) => chunk.usage === null)).toBe(true);
    expect(chunks.at(-1)).toMatchObject({
      choices: [],
      usage: { prompt_tokens: reply.usage.inputTokens },
    });
    expect(
      openAiChatChunks(answer, false).every((event) => !('usage' in (event.data as object))),
    ).toBe(true);
  });

  it('gives the fixed answer its ids and per-format counts', () => {
    const answer = fixedAnswer('gpt-small');
    expect(answer.servedAs).toBe('gpt-small-served');
    expect(answer.id('openai-chat', false)).toBe(FIXED_IDS['openai-chat']);
    expect(answer.id('anthropic', true)).toBe(FIXED_IDS['anthropic-stream']);
    expect(answer.usage('openai-chat', true)).toEqual(FIXED_USAGE['openai-chat-stream']);
    // `hello` in two deltas: message_start, block start, 2 deltas, block stop, delta, stop.
    expect(anthropicEvents(answer).map((event) => event.event)).toEqual([
      'message_start',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
  });

  it('words errors in each provider’s shape', () => {
    expect(errorBody('anthropic', 529, 'busy')).toEqual({
      type: 'error',
      error: { type: 'overloaded_error', message: 'busy' },
    });
    expect(errorBody('openai-chat', 429, 'slow down')).toEqual({
      error: { message: 'slow down', type: 'requests', param: null, code: 'rate_limit_exceeded' },
    });
    expect(
      errorBody('openai-chat', 400, 'bad', { code: 'invalid_value', param: 'messages' }),
    ).toEqual({
      error: {
        message: 'bad',
        type: 'invalid_request_error',
        param: 'messages',
        code: 'invalid_value',
      },
    });
  });
});
