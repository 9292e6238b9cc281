import {
  SpanKind,
  trace,
  type Attributes,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { guard, markSpanFailed } from '../errors.js';
import { ERROR_TYPE_STREAM_ABORTED } from '../semconv.js';
import { markModelCall } from './http-attempts.js';

/**
 * The span lifecycle shared by every provider capture: start a CLIENT span, watch the SDK's own
 * promise on the side, end the span when the call (or the stream it returned) is over. Providers
 * (providers/*.ts) only say what to read from a request, a response and a stream chunk.
 */

/** What a streamed response tells about itself, gathered chunk by chunk. */
export interface StreamSummary {
  /** Reads one chunk; returns false when the chunk is ours alone and must not reach the caller. */
  add(chunk: unknown): boolean;
  /** Sets what the chunks told on the span, when the stream is over. */
  record(span: Span): void;
}

/** How one provider operation reads its response. */
export interface ResponseReader {
  /** The call asked for a stream (`stream: true`). */
  readonly streamed: boolean;
  /** Sets what a complete (non-streamed) response tells on the span. */
  recordResponse(span: Span, response: unknown): void;
  /** A fresh summary for a streamed response. */
  streamSummary(): StreamSummary;
}

export interface CallStart {
  /** Provider as named in diagnostics (`OpenAI`, `Anthropic`). */
  readonly provider: string;
  readonly name: string;
  readonly attributes: Attributes;
  readonly reader: ResponseReader;
  /** Arguments to call the SDK with instead of the caller's (e.g. with usage requested). */
  readonly args?: unknown[];
}

/** One LLM call and its span. */
export class LlmCall {
  private ended = false;

  private constructor(
    readonly span: Span,
    /** The parent context with our span active: the SDK call runs in it. */
    readonly ctx: Context,
    private readonly reader: ResponseReader,
    private readonly provider: string,
  ) {}

  static start(tracer: Tracer, parent: Context, start: CallStart): LlmCall {
    const span = tracer.startSpan(
      start.name,
      { kind: SpanKind.CLIENT, attributes: start.attributes },
      parent,
    );
    // Its HTTP requests (the SDK's retries included) are counted on it: http-attempts.ts.
    markModelCall(span);
    return new LlmCall(span, trace.setSpan(parent, span), start.reader, start.provider);
  }

  /** Watches the SDK's promise on the side; the span ends when the call (or its stream) does. */
  observe(result: unknown): true {
    if (!isThenable(result)) {
      this.end();
      return true;
    }
    result.then(
      (response) => this.succeed(response),
      (error: unknown) => this.fail(error),
    );
    return true;
  }

  private succeed(response: unknown): void {
    if (this.reader.streamed && isSdkStream(response)) {
      if (
        guard(`wrapping an ${this.provider} stream`, () => this.wrapStream(response)) !== undefined
      )
        return;
      this.end();
      return;
    }
    guard(`reading an ${this.provider} response`, () =>
      this.reader.recordResponse(this.span, response),
    );
    this.end();
  }

  fail(error: unknown): void {
    if (this.ended) return;
    markSpanFailed(this.span, error);
    this.end();
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    guard('ending an LLM span', () => this.span.end());
  }

  /**
   * Replaces the stream's `iterator` factory, which `Symbol.asyncIterator`, `.tee()` and
   * `.toReadableStream()` all go through, so the SDK's Stream object itself stays the caller's.
   * A stream aborted through its `controller` ends the span, consumed or not.
   */
  private wrapStream(stream: SdkStream): true {
    const originalIterator = stream.iterator;
    const summary = this.reader.streamSummary();
    const signal = stream.controller?.signal;
    const finish = (): void => {
      if (this.ended) return;
      guard(`reading an ${this.provider} stream`, () => summary.record(this.span));
      if (signal?.aborted === true) this.fail(new StreamAbortedError());
      else this.end();
    };
    guard('watching a stream abort', () =>
      signal?.addEventListener('abort', () => queueMicrotask(finish), { once: true }),
    );
    stream.iterator = () => {
      const inner = originalIterator.call(stream);
      const observed: AsyncIterator<unknown> & AsyncIterable<unknown> = {
        next: async (...args: [] | [unknown]) => {
          for (;;) {
            let step: IteratorResult<unknown>;
            try {
              step = await inner.next(...args);
            } catch (error) {
              this.fail(error);
              throw error;
            }
            if (step.done === true) {
              finish();
              return step;
            }
            const deliver = guard(`reading an ${this.provider} stream chunk`, () =>
              summary.add(step.value),
            );
            if (deliver !== false) return step;
          }
        },
        return: async (value?: unknown) => {
          finish();
          return inner.return ? inner.return(value) : { done: true, value };
        },
        throw: async (error?: unknown) => {
          this.fail(error);
          if (inner.throw) return inner.throw(error);
          throw error;
        },
        [Symbol.asyncIterator]() {
          return this;
        },
      };
      return observed;
    };
    return true;
  }
}

/**
 * What a stream its caller aborted through `stream.controller.abort()` records on its span
 * (`error.type` `StreamAbortedError`). Never thrown: the caller sees the SDK's own abort.
 */
class StreamAbortedError extends Error {
  constructor() {
    super('the stream was aborted before its end');
    this.name = ERROR_TYPE_STREAM_ABORTED;
  }
}

interface SdkStream {
  iterator: () => AsyncIterator<unknown>;
  controller?: AbortController;
}

function isSdkStream(value: unknown): value is SdkStream {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { iterator?: unknown }).iterator === 'function' &&
    Symbol.asyncIterator in value
  );
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
