import type { Context, Span } from '@opentelemetry/api';
import { guard } from '../errors.js';
import type { GenAiOperation, GenAiProvider } from '../semconv.js';
import type { CaptureOptions } from '../types.js';
import { setInputMessages, setSystemInstructions, type ChatMessage } from './content.js';
import { paramsOf, read, requestAttributes, spanName, type Params } from './params.js';
import type { CallStart, ResponseReader, StreamSummary } from './span-lifecycle.js';

/**
 * What a provider capture declares (providers/openai.ts, providers/anthropic.ts): the module and
 * the resource methods to patch, and for each traced method how to read its request, response and
 * stream chunks. The span lifecycle (span-lifecycle.ts) and the patching (patching.ts) are shared;
 * a new provider is one such declaration.
 */
export interface ProviderCapture<O extends CaptureOptions> {
  /** The npm module patched (`openai`). */
  readonly module: string;
  /** Versions of it whose resources the declaration knows. */
  readonly supportedVersions: readonly string[];
  /** `gen_ai.provider.name`; also the last part of the instrumentation scope name. */
  readonly provider: GenAiProvider;
  /** How diagnostics name it (`OpenAI`); `instrument<displayName>` is its manual entry. */
  readonly displayName: string;
  /**
   * Export name of the client class (`OpenAI`). The resources are looked up under it on the module
   * namespace and on `default`, then under `default` and the module itself (CommonJS exports).
   */
  readonly clientExport: string;
  readonly resources: readonly ResourcePatch<O>[];
}

/** One resource class and the method of it that becomes an LLM span. */
export interface ResourcePatch<O extends CaptureOptions> {
  /** Path of the resource class under the client class (`['Chat', 'Completions']`). */
  readonly path: readonly string[];
  /** The traced method (`create`); the resource counts as found when its prototype has it. */
  readonly method: string;
  readonly operation: OperationCapture<O>;
  /** The context the span starts in; default the active one. */
  readonly parentContext?: (active: Context) => Context;
  /** The context the SDK call runs in; default `callContext` (our span active). */
  readonly runIn?: (resource: unknown, callContext: Context) => Context;
  /** Other methods of the resource, wrapped without a span of their own (Anthropic's `stream()`). */
  readonly companions?: Readonly<Record<string, (original: SdkMethod) => SdkMethod>>;
}

export type SdkMethod = (this: unknown, ...args: unknown[]) => unknown;

/** What one call's readers know about it. */
export interface CallInfo {
  /** Content capture is on: record output messages. */
  readonly captureContent: boolean;
  /** `prepare` changed the arguments: a stream summary hides from the caller what that added. */
  readonly rewritten: boolean;
}

/** A request as `prepare` sees it. */
export interface PreparedRequest<O> {
  readonly params: Params;
  readonly args: unknown[];
  /** The call asked for a stream and the operation can stream. */
  readonly streamed: boolean;
  readonly options: O;
}

/** The messages of a request, for content capture. */
export interface CapturedInput {
  /** System instructions, when the API keeps them apart from the messages (Anthropic `system`). */
  readonly system?: unknown;
  readonly messages: ChatMessage[];
}

/** How one SDK operation is read. Every function may throw: the call runs on without the attribute. */
export interface OperationCapture<O extends CaptureOptions> {
  readonly operation: GenAiOperation;
  /** Request params holding the max output tokens; the first present wins. */
  readonly maxTokensParams?: readonly string[];
  /** The request's messages; read when the call starts (the caller may mutate them later). */
  readonly input?: (params: Params) => CapturedInput;
  /** Arguments to call the SDK with instead of the caller's; undefined keeps them. */
  readonly prepare?: (request: PreparedRequest<O>) => unknown[] | undefined;
  /** Sets what a complete (non-streamed) response tells on the span. */
  readonly recordResponse: (span: Span, response: unknown, call: CallInfo) => void;
  /** Reads a streamed response chunk by chunk; absent when the operation never streams. */
  readonly streamSummary?: (call: CallInfo) => StreamSummary;
}

/** Reads one call of `operation`: span name, attributes, response reader, arguments to use. */
export function startOf<O extends CaptureOptions>(
  capture: ProviderCapture<O>,
  operation: OperationCapture<O>,
  resource: unknown,
  args: unknown[],
  options: O,
): CallStart {
  const params = paramsOf(args[0]);
  const { model, attributes } = requestAttributes(
    operation.operation,
    capture.provider,
    resource,
    params,
    operation.maxTokensParams,
  );
  const streamed = operation.streamSummary !== undefined && read(() => params['stream']) === true;
  const callArgs = operation.prepare?.({ params, args, streamed, options });
  const call: CallInfo = {
    captureContent: options.captureContent === true,
    rewritten: callArgs !== undefined,
  };
  const reader: ResponseReader = {
    streamed,
    recordResponse: (span, response) => operation.recordResponse(span, response, call),
    streamSummary: () => operation.streamSummary?.(call) ?? NO_SUMMARY,
  };
  const { input } = operation;
  return {
    provider: capture.displayName,
    name: spanName(operation.operation, model),
    attributes,
    reader: call.captureContent && input !== undefined ? withInput(reader, params, input) : reader,
    ...(callArgs === undefined ? {} : { args: callArgs }),
  };
}

const NO_SUMMARY: StreamSummary = { add: () => true, record: () => undefined };

/** Wraps a reader so the input messages are recorded with the response (content capture on). */
function withInput(
  reader: ResponseReader,
  params: Params,
  readInput: (params: Params) => CapturedInput,
): ResponseReader {
  // Read now: the caller may mutate its messages once the call has returned.
  const input = guard('reading input messages', () => readInput(params));
  const record = (span: Span) => {
    if (input === undefined) return;
    guard('recording input messages', () => {
      if (input.system !== undefined) setSystemInstructions(span, input.system);
      setInputMessages(span, input.messages);
    });
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
