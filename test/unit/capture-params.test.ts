import { describe, expect, it } from 'vitest';
import { inputMessages, partsOf } from '../../instrumentation/src/capture/content.js';
import {
  paramsOf,
  read,
  requestAttributes,
  serverAttributes,
  spanName,
} from '../../instrumentation/src/capture/params.js';
import {
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MAX_TOKENS,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_REQUEST_TEMPERATURE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
} from '../../instrumentation/src/semconv.js';

const client = (baseURL: string) => ({ _client: { baseURL } });

describe('requestAttributes', () => {
  it('reads operation, provider, model, temperature, max tokens and server', () => {
    const { model, attributes } = requestAttributes(
      'chat',
      'openai',
      client('https://api.openai.com/v1'),
      { model: 'gpt-4o', temperature: 0.2, max_completion_tokens: 50, max_tokens: 99 },
      ['max_completion_tokens', 'max_tokens'],
    );
    expect(model).toBe('gpt-4o');
    expect(attributes).toEqual({
      [ATTR_GEN_AI_OPERATION_NAME]: 'chat',
      [ATTR_GEN_AI_PROVIDER_NAME]: 'openai',
      [ATTR_GEN_AI_REQUEST_MODEL]: 'gpt-4o',
      [ATTR_GEN_AI_REQUEST_TEMPERATURE]: 0.2,
      [ATTR_GEN_AI_REQUEST_MAX_TOKENS]: 50,
      [ATTR_SERVER_ADDRESS]: 'api.openai.com',
      [ATTR_SERVER_PORT]: 443,
    });
  });

  it('takes the next max-tokens parameter when the first is null', () => {
    const { attributes } = requestAttributes(
      'chat',
      'openai',
      undefined,
      { max_completion_tokens: null, max_tokens: 99 },
      ['max_completion_tokens', 'max_tokens'],
    );
    expect(attributes[ATTR_GEN_AI_REQUEST_MAX_TOKENS]).toBe(99);
  });

  it('loses only the attribute whose getter throws', () => {
    const params = {
      get model(): string {
        throw new Error('hostile');
      },
      temperature: 1,
    };
    const { model, attributes } = requestAttributes('chat', 'anthropic', {}, params);
    expect(model).toBeUndefined();
    expect(attributes[ATTR_GEN_AI_REQUEST_MODEL]).toBeUndefined();
    expect(attributes[ATTR_GEN_AI_REQUEST_TEMPERATURE]).toBe(1);
    expect(attributes[ATTR_GEN_AI_PROVIDER_NAME]).toBe('anthropic');
  });

  it('ignores values of the wrong type', () => {
    const { model, attributes } = requestAttributes('embeddings', 'openai', null, {
      model: 42,
      temperature: 'hot',
    });
    expect(model).toBeUndefined();
    expect(Object.keys(attributes).sort()).toEqual([
      ATTR_GEN_AI_OPERATION_NAME,
      ATTR_GEN_AI_PROVIDER_NAME,
    ]);
  });
});

describe('serverAttributes', () => {
  it('gives the host and the port, defaulting it by scheme', () => {
    expect(serverAttributes(client('http://127.0.0.1:8080/v1'))).toEqual({
      [ATTR_SERVER_ADDRESS]: '127.0.0.1',
      [ATTR_SERVER_PORT]: 8080,
    });
    expect(serverAttributes(client('http://llm.internal/v1'))[ATTR_SERVER_PORT]).toBe(80);
    expect(serverAttributes({})).toEqual({});
    expect(serverAttributes(null)).toEqual({});
  });
});

describe('small readers', () => {
  it('read returns undefined instead of throwing', () => {
    expect(
      read(() => {
        throw new Error('x');
      }),
    ).toBeUndefined();
    expect(read(() => 3)).toBe(3);
  });

  it('paramsOf turns anything into a record', () => {
    expect(paramsOf(undefined)).toEqual({});
    expect(paramsOf('text')).toEqual({});
    const params = { model: 'm' };
    expect(paramsOf(params)).toBe(params);
  });

  it('spanName is `<operation> <model>`, or the operation alone', () => {
    expect(spanName('chat', 'gpt-4o')).toBe('chat gpt-4o');
    expect(spanName('embeddings', undefined)).toBe('embeddings');
  });
});

describe('content capture shapes', () => {
  it('maps provider content blocks to GenAI message parts', () => {
    expect(
      partsOf([
        'plain',
        { type: 'text', text: 'hi' },
        { type: 'tool_use', id: 't1', name: 'lookup', input: { q: 1 } },
        { type: 'tool_result', tool_use_id: 't1', content: 'found' },
        { type: 'image' },
        7,
      ]),
    ).toEqual([
      { type: 'text', content: 'plain' },
      { type: 'text', content: 'hi' },
      { type: 'tool_call', id: 't1', name: 'lookup', arguments: { q: 1 } },
      { type: 'tool_call_response', id: 't1', response: 'found' },
      { type: 'image' },
      { type: 'unknown' },
    ]);
    expect(partsOf(undefined)).toEqual([]);
  });

  it('maps OpenAI tool calls and tool messages', () => {
    expect(
      inputMessages([
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'c1', function: { name: 'lookup', arguments: '{"q":1}' } }],
        },
        { role: 'tool', tool_call_id: 'c1', content: 'found' },
        'not a message',
      ]),
    ).toEqual([
      {
        role: 'assistant',
        parts: [{ type: 'tool_call', id: 'c1', name: 'lookup', arguments: '{"q":1}' }],
      },
      { role: 'tool', parts: [{ type: 'tool_call_response', id: 'c1', response: 'found' }] },
    ]);
  });
});
