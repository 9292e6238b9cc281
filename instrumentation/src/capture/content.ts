import type { Span } from '@opentelemetry/api';
import { isObject } from './params.js';
import {
  ATTR_GEN_AI_INPUT_MESSAGES,
  ATTR_GEN_AI_OUTPUT_MESSAGES,
  ATTR_GEN_AI_SYSTEM_INSTRUCTIONS,
} from '../semconv.js';

/**
 * Message content in the shape of the GenAI semantic conventions (`gen_ai.input.messages`,
 * `gen_ai.output.messages`, `gen_ai.system_instructions`), serialized as JSON strings on the span.
 * Only called when content capture is on; parts we do not know are kept as their type alone.
 */

export interface MessagePart {
  type: string;
  content?: string;
  id?: string;
  name?: string;
  arguments?: unknown;
  response?: unknown;
}

export interface ChatMessage {
  role: string;
  parts: MessagePart[];
  finish_reason?: string;
}

export function textPart(content: string): MessagePart {
  return { type: 'text', content };
}

/** Parts of a provider content value: a string, or an array of typed blocks. */
export function partsOf(content: unknown): MessagePart[] {
  if (typeof content === 'string') return [textPart(content)];
  if (!Array.isArray(content)) return [];
  return content.map((block: unknown): MessagePart => {
    if (typeof block === 'string') return textPart(block);
    if (!isObject(block)) return { type: 'unknown' };
    const type = typeof block['type'] === 'string' ? block['type'] : 'unknown';
    const text = block['text'];
    if (typeof text === 'string') return textPart(text);
    if (type === 'tool_use') {
      return {
        type: 'tool_call',
        id: String(block['id']),
        name: String(block['name']),
        arguments: block['input'],
      };
    }
    if (type === 'tool_result') {
      return {
        type: 'tool_call_response',
        id: String(block['tool_use_id']),
        response: block['content'],
      };
    }
    return { type };
  });
}

/** Input messages of an OpenAI chat request or an Anthropic messages request. */
export function inputMessages(messages: unknown): ChatMessage[] {
  if (!Array.isArray(messages)) return [];
  return messages.filter(isObject).map((message) => {
    const role = typeof message['role'] === 'string' ? message['role'] : 'user';
    const parts = partsOf(message['content']);
    const toolCalls = message['tool_calls'];
    if (Array.isArray(toolCalls)) {
      for (const call of toolCalls.filter(isObject)) {
        const fn = isObject(call['function']) ? call['function'] : {};
        parts.push({
          type: 'tool_call',
          id: String(call['id']),
          name: String(fn['name']),
          arguments: fn['arguments'],
        });
      }
    }
    if (role === 'tool') {
      return {
        role,
        parts: [
          {
            type: 'tool_call_response',
            id: String(message['tool_call_id']),
            response: message['content'],
          },
        ],
      };
    }
    return { role, parts };
  });
}

export function setInputMessages(span: Span, messages: ChatMessage[]): void {
  if (messages.length > 0) span.setAttribute(ATTR_GEN_AI_INPUT_MESSAGES, JSON.stringify(messages));
}

export function setOutputMessages(span: Span, messages: ChatMessage[]): void {
  if (messages.length > 0) span.setAttribute(ATTR_GEN_AI_OUTPUT_MESSAGES, JSON.stringify(messages));
}

export function setSystemInstructions(span: Span, system: unknown): void {
  const parts = partsOf(system);
  if (parts.length > 0) span.setAttribute(ATTR_GEN_AI_SYSTEM_INSTRUCTIONS, JSON.stringify(parts));
}
