import { describe, expect, it } from 'vitest';
import type { CallInfo, OperationCapture } from '../../instrumentation/src/capture/provider.js';
import { startOf } from '../../instrumentation/src/capture/provider.js';
import { ANTHROPIC_CAPTURE } from '../../instrumentation/src/providers/anthropic.js';
import { OPENAI_CAPTURE } from '../../instrumentation/src/providers/openai.js';
import {
  ATTR_GEN_AI_INPUT_MESSAGES,
  ATTR_GEN_AI_OUTPUT_MESSAGES,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  ATTR_GEN_AI_RESPONSE_ID,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_SYSTEM_INSTRUCTIONS,
  ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
} from '../../instrumentation/src/semconv.js';
import type { CaptureOptions } from '../../instrumentation/src/types.js';
import { recordingSpan } from '../support/recording-span.js';

// What each declared operation reads from a response or a stream, with no SDK and no server.

function operation<O extends CaptureOptions>(
  capture: { resources: readonly { path: readonly string[]; operation: OperationCapture<O> }[] },
  path: string,
): OperationCapture<O> {
  const found = capture.resources.find((resource) => resource.path.join('.') === path);
  if (found === undefined) throw new Error(`no resource ${path}`);
  return found.operation;
}

const chat = operation(OPENAI_CAPTURE, 'Chat.Completions');
const responses = operation(OPENAI_CAPTURE, 'Responses');
const embeddings = operation(OPENAI_CAPTURE, 'Embeddings');
const messages = operation(ANTHROPIC_CAPTURE, 'Messages');
const plain: CallInfo = { captureContent: false, rewritten: false };

describe('OpenAI chat completions', () => {
  it('records finish reasons in choice order, and usage with its cached and reasoning counts', () => {
    const { span, attributes } = recordingSpan();
    chat.recordResponse(
      span,
      {
        id: 'chatcmpl-1',
        model: 'gpt-4o-2024-08-06',
        choices: [
          { index: 0, finish_reason: 'stop' },
          { index: 1, finish_reason: 'length' },
        ],
        usage: {
          prompt_tokens: 120,
          completion_tokens: 30,
          prompt_tokens_details: { cached_tokens: 100 },
          completion_tokens_details: { reasoning_tokens: 12 },
        },
      },
      plain,
    );
    expect(attributes).toEqual({
      [ATTR_GEN_AI_RESPONSE_ID]: 'chatcmpl-1',
      [ATTR_GEN_AI_RESPONSE_MODEL]: 'gpt-4o-2024-08-06',
      [ATTR_GEN_AI_RESPONSE_FINISH_REASONS]: ['stop', 'length'],
      [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 120,
      [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: 30,
      [ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS]: 100,
      [ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS]: 12,
    });
  });

  it('skips counts that are not finite numbers', () => {
    const { span, attributes } = recordingSpan();
    chat.recordResponse(
      span,
      { choices: [], usage: { prompt_tokens: 'many', completion_tokens: Number.NaN } },
      plain,
    );
    expect(attributes[ATTR_GEN_AI_USAGE_INPUT_TOKENS]).toBeUndefined();
    expect(attributes[ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]).toBeUndefined();
  });

  it('asks for stream usage on a copy of the params, unless asked already or turned off', () => {
    const params = { model: 'm', stream: true, stream_options: { other: 1 } };
    const start = startOf(OPENAI_CAPTURE, chat, {}, [params, { timeout: 5 }], {});
    expect(start.args).toEqual([
      { ...params, stream_options: { other: 1, include_usage: true } },
      { timeout: 5 },
    ]);
    expect(params.stream_options).toEqual({ other: 1 });
    expect(start.reader.streamed).toBe(true);
    expect(start.name).toBe('chat m');
    expect(start.attributes[ATTR_GEN_AI_REQUEST_MODEL]).toBe('m');

    const asked = { model: 'm', stream: true, stream_options: { include_usage: true } };
    expect(startOf(OPENAI_CAPTURE, chat, {}, [asked], {}).args).toBeUndefined();
    expect(
      startOf(OPENAI_CAPTURE, chat, {}, [params], { requestStreamUsage: false }).args,
    ).toBeUndefined();
    expect(startOf(OPENAI_CAPTURE, chat, {}, [{ model: 'm' }], {}).args).toBeUndefined();
  });

  it('hides the usage it asked for from the caller, and sorts finish reasons by choice index', () => {
    const summary = chat.streamSummary!({ captureContent: true, rewritten: true });
    const first = {
      id: 'c',
      model: 'm',
      usage: null,
      choices: [{ index: 1, delta: { content: 'b' } }],
    };
    expect(summary.add(first)).toBe(true);
    expect(first).not.toHaveProperty('usage');
    expect(
      summary.add({
        choices: [
          { index: 1, delta: {}, finish_reason: 'length' },
          { index: 0, delta: { content: 'a' }, finish_reason: 'stop' },
        ],
      }),
    ).toBe(true);
    expect(summary.add({ choices: [], usage: { prompt_tokens: 9, completion_tokens: 2 } })).toBe(
      false,
    );
    const { span, attributes } = recordingSpan();
    summary.record(span);
    expect(attributes).toMatchObject({
      [ATTR_GEN_AI_RESPONSE_ID]: 'c',
      [ATTR_GEN_AI_RESPONSE_FINISH_REASONS]: ['stop', 'length'],
      [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 9,
      [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: 2,
    });
    expect(JSON.parse(String(attributes[ATTR_GEN_AI_OUTPUT_MESSAGES]))).toEqual([
      { role: 'assistant', parts: [{ type: 'text', content: 'a' }], finish_reason: 'stop' },
      { role: 'assistant', parts: [{ type: 'text', content: 'b' }], finish_reason: 'length' },
    ]);
  });

  it('delivers every chunk when the caller asked for usage itself', () => {
    const summary = chat.streamSummary!(plain);
    const usageChunk = { choices: [], usage: { prompt_tokens: 1 } };
    const nullUsage = { choices: [], usage: null };
    expect(summary.add(usageChunk)).toBe(true);
    expect(summary.add(nullUsage)).toBe(true);
    expect(nullUsage).toHaveProperty('usage', null);
  });

  it('records the input messages with the response when content capture is on', () => {
    const params = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };
    const start = startOf(OPENAI_CAPTURE, chat, {}, [params], { captureContent: true });
    params.messages.push({ role: 'user', content: 'added after the call' });
    const { span, attributes } = recordingSpan();
    start.reader.recordResponse(span, { choices: [] });
    expect(JSON.parse(String(attributes[ATTR_GEN_AI_INPUT_MESSAGES]))).toEqual([
      { role: 'user', parts: [{ type: 'text', content: 'hi' }] },
    ]);
  });
});

describe('OpenAI responses and embeddings', () => {
  it('takes the finish reason from incomplete_details, else stop for a completed response', () => {
    const { span, attributes } = recordingSpan();
    responses.recordResponse(
      span,
      {
        status: 'incomplete',
        incomplete_details: { reason: 'max_output_tokens' },
        usage: {
          input_tokens: 20,
          output_tokens: 5,
          input_tokens_details: { cached_tokens: 8 },
          output_tokens_details: { reasoning_tokens: 2 },
        },
      },
      plain,
    );
    expect(attributes).toMatchObject({
      [ATTR_GEN_AI_RESPONSE_FINISH_REASONS]: ['max_output_tokens'],
      [ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS]: 8,
      [ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS]: 2,
    });
    const completed = recordingSpan();
    responses.recordResponse(completed.span, { status: 'completed' }, plain);
    expect(completed.attributes[ATTR_GEN_AI_RESPONSE_FINISH_REASONS]).toEqual(['stop']);
  });

  it('turns instructions into a system message of the input', () => {
    const input = responses.input!({ instructions: 'be brief', input: 'hi' });
    expect(input.messages).toEqual([
      { role: 'system', parts: [{ type: 'text', content: 'be brief' }] },
      { role: 'user', parts: [{ type: 'text', content: 'hi' }] },
    ]);
  });

  it('records embeddings input tokens, and never streams them', () => {
    const { span, attributes } = recordingSpan();
    embeddings.recordResponse(span, { model: 'e-1', usage: { prompt_tokens: 7 } }, plain);
    expect(attributes).toEqual({
      [ATTR_GEN_AI_RESPONSE_MODEL]: 'e-1',
      [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 7,
    });
    const start = startOf(OPENAI_CAPTURE, embeddings, {}, [{ model: 'e', stream: true }], {});
    expect(start.reader.streamed).toBe(false);
    expect(embeddings.input).toBeUndefined();
  });
});

describe('Anthropic messages', () => {
  it('records input tokens including the cached ones, the cache counts as their parts', () => {
    const { span, attributes } = recordingSpan();
    messages.recordResponse(
      span,
      {
        id: 'msg_1',
        model: 'claude-sonnet-4-20250514',
        stop_reason: 'end_turn',
        usage: {
          input_tokens: 10,
          output_tokens: 4,
          cache_read_input_tokens: 100,
          cache_creation_input_tokens: 20,
        },
      },
      plain,
    );
    expect(attributes).toEqual({
      [ATTR_GEN_AI_RESPONSE_ID]: 'msg_1',
      [ATTR_GEN_AI_RESPONSE_MODEL]: 'claude-sonnet-4-20250514',
      [ATTR_GEN_AI_RESPONSE_FINISH_REASONS]: ['end_turn'],
      [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 130,
      [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: 4,
      [ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS]: 100,
      [ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS]: 20,
    });
  });

  it('merges a stream’s usage: input from message_start, the last output count wins', () => {
    const summary = messages.streamSummary!({ captureContent: true, rewritten: false });
    for (const event of [
      {
        type: 'message_start',
        message: { id: 'msg_s', model: 'claude', usage: { input_tokens: 10, output_tokens: 1 } },
      },
      { type: 'content_block_delta', delta: { type: 'text_delta', text: 'hel' } },
      { type: 'content_block_delta', delta: { type: 'text_delta', text: 'lo' } },
      { type: 'message_delta', delta: { stop_reason: 'max_tokens' }, usage: { output_tokens: 4 } },
    ]) {
      expect(summary.add(event)).toBe(true);
    }
    const { span, attributes } = recordingSpan();
    summary.record(span);
    expect(attributes).toMatchObject({
      [ATTR_GEN_AI_RESPONSE_ID]: 'msg_s',
      [ATTR_GEN_AI_RESPONSE_FINISH_REASONS]: ['max_tokens'],
      [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 10,
      [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: 4,
    });
    expect(JSON.parse(String(attributes[ATTR_GEN_AI_OUTPUT_MESSAGES]))).toEqual([
      {
        role: 'assistant',
        parts: [{ type: 'text', content: 'hello' }],
        finish_reason: 'max_tokens',
      },
    ]);
  });

  it('records system instructions apart from the messages', () => {
    const start = startOf(
      ANTHROPIC_CAPTURE,
      messages,
      {},
      [{ model: 'claude', system: 'be brief', messages: [{ role: 'user', content: 'hi' }] }],
      { captureContent: true },
    );
    const { span, attributes } = recordingSpan();
    start.reader.recordResponse(span, { content: [{ type: 'text', text: 'ok' }] });
    expect(JSON.parse(String(attributes[ATTR_GEN_AI_SYSTEM_INSTRUCTIONS]))).toEqual([
      { type: 'text', content: 'be brief' },
    ]);
    expect(JSON.parse(String(attributes[ATTR_GEN_AI_INPUT_MESSAGES]))).toEqual([
      { role: 'user', parts: [{ type: 'text', content: 'hi' }] },
    ]);
  });
});
