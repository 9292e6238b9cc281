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

/**
 * Streams whose span is still open, each by the function that ends it with what its chunks told
 * so far. A caller that drops a stream unfinished (read half-way, or never) would leave its span
 * open for ever, and the call missing from its task: the span ends when the Stream object is
 * collected, at the time of its last chunk, or at shutdown (`endOpenStreams`), whichever is first.
 */
const openStreams = new Map<() => void, StreamProgress>();

/** Each wrapped stream's own iterator factory, for as long as the stream lives. */
const originalIterators = new WeakMap<object, SdkStream['iterator']>();

/** How far a stream was read: its last chunk's time, and the reads in flight now. */
interface StreamProgress {
  lastChunkMs: number;
  reads: number;
}
const droppedStreams = new FinalizationRegistry<() => void>((close) =>
  guard('ending a dropped stream', close),
);

/** Ends the span of every stream still open and not being read (at shutdown, before the last export). */
export function endOpenStreams(): void {
  // A stream being read (a read in flight: the app finishing it during its own shutdown) is left
  // to end as it will; only those nobody reads are ended here.
  for (const [close, progress] of [...openStreams])
    if (progress.reads === 0) guard('ending an open stream', close);
}

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

  /**
   * Watches the SDK's promise on the side; the span ends when the call (or its stream) does. An
   * SDK `APIPromise` is watched through its own parsing, never by parsing it a second time.
   */
  observe(result: unknown): true {
    if (!isThenable(result)) {
      this.end();
      return true;
    }
    if (isApiPromise(result) && guard('watching an APIPromise', () => this.observeParse(result))) {
      return true;
    }
    result.then(
      (response) => this.succeed(response),
      (error: unknown) => this.fail(error),
    );
    return true;
  }

  /**
   * Observes an `APIPromise` without consuming its body: the caller's parse (an `await`,
   * `.withResponse()`, or a `parse()` helper deriving a promise through `_thenUnwrap`) goes through
   * `parseResponse`, which we memoize — so the body is read once, however many promises derive
   * from this one — and watch. A caller that takes the raw body (`.asResponse()`) keeps it
   * unread; the span then ends with the response, without what the body would have told. A
   * response nobody asked for by the time it arrives is parsed by us, into the same memo, from a
   * copy of its body (not a stream's): a caller that takes the raw body later still finds it
   * unread, as without us.
   */
  private observeParse(promise: ApiPromise): true {
    const parseResponse = promise.parseResponse;
    const asResponse = promise.asResponse;
    let parsed: Promise<unknown> | undefined;
    let rawTaken = false;
    let ours = false;
    promise.parseResponse = (...args: unknown[]) => {
      if (parsed === undefined) {
        const from = ours ? withBodyCopy(args) : args;
        parsed = new Promise((resolve) => resolve(parseResponse.apply(promise, from)));
        // Registered before anyone else's: a stream is wrapped before the caller receives it.
        parsed.then(
          (response) => this.succeed(response),
          (error: unknown) => this.fail(error),
        );
      }
      return parsed;
    };
    promise.asResponse = (...args: unknown[]) => {
      rawTaken = true;
      return asResponse.apply(promise, args);
    };
    // Registered first, so by the next turn whoever parses (the caller, `.withResponse()`) has.
    // The SDK reads `responsePromise` when it parses: it is replaced by the promise we derive, which
    // settles as the original does. A failure nobody awaits therefore stays unhandled, as without
    // us (the process's unhandledRejection, a crash by default): watching the original alone
    // would mark its rejection handled and swallow it.
    promise.responsePromise = promise.responsePromise.then(
      (response) => {
        setImmediate(() => {
          if (parsed !== undefined) return;
          if (rawTaken) this.end();
          else {
            ours = true;
            void promise.parse().then(undefined, () => undefined); // the caller's own result
          }
        });
        return response;
      },
      (error: unknown) => {
        this.fail(error);
        throw error;
      },
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

  /** Ends the span of a stream its caller dropped unfinished, with what its chunks told. */
  endDropped(summary: StreamSummary, lastChunkMs: number): void {
    if (this.ended) return;
    guard(`reading an ${this.provider} stream`, () => summary.record(this.span));
    this.end(lastChunkMs);
  }

  end(endTimeMs?: number): void {
    if (this.ended) return;
    this.ended = true;
    guard('ending an LLM span', () => this.span.end(endTimeMs));
  }

  /**
   * Replaces the stream's `iterator` factory, which `Symbol.asyncIterator`, `.tee()` and
   * `.toReadableStream()` all go through, so the SDK's Stream object itself stays the caller's.
   * A stream aborted through its `controller` ends the span, consumed or not. While a read is in
   * flight, its settlement decides instead: the SDK also aborts the controller when the stream
   * fails (a cut connection, an error event), and the span must record that error, not an abort.
   */
  private wrapStream(stream: SdkStream): true {
    // Kept beside the stream, not in this scope: the SDK's iterator holds the HTTP response, and
    // the abort listener below keeps this scope alive as long as the connection; held here, the
    // response of a dropped stream would never be collected, nor its connection released.
    originalIterators.set(stream, stream.iterator);
    const summary = this.reader.streamSummary();
    const signal = stream.controller?.signal;
    const progress: StreamProgress = { lastChunkMs: Date.now(), reads: 0 };
    // Dropped unfinished: ended with what was read, at the last chunk's time. No closure made
    // here may hold `stream` (they share one scope, which the abort listener keeps alive as long
    // as the connection): the stream is reached through a weak reference, and watched from
    // outside this function, or it could never be collected.
    const close = closeWhenDropped(this, summary, progress);
    openStreams.set(close, progress);
    watchDropped(stream, close);
    const streamRef = new WeakRef(stream);
    const forget = (): void => {
      openStreams.delete(close);
      droppedStreams.unregister(close);
    };
    const finish = (): void => {
      forget();
      if (this.ended) return;
      guard(`reading an ${this.provider} stream`, () => summary.record(this.span));
      if (signal?.aborted === true) this.fail(new StreamAbortedError());
      else this.end();
    };
    guard('watching a stream abort', () =>
      signal?.addEventListener(
        'abort',
        () =>
          queueMicrotask(() => {
            if (progress.reads === 0) finish();
          }),
        { once: true },
      ),
    );
    stream.iterator = () => {
      // Called as the stream's method, by whoever holds it: the reference is alive.
      const self = streamRef.deref()!;
      const inner = originalIterators.get(self)!.call(self);
      const observed: AsyncIterator<unknown> & AsyncIterable<unknown> = {
        next: async (...args: [] | [unknown]) => {
          for (;;) {
            let step: IteratorResult<unknown>;
            progress.reads += 1;
            try {
              step = await inner.next(...args);
            } catch (error) {
              guard(`reading an ${this.provider} stream`, () => summary.record(this.span));
              const aborted = guard('classifying a stream error', () => isAbortError(error));
              forget();
              this.fail(aborted === true ? new StreamAbortedError() : error);
              throw error;
            } finally {
              progress.reads -= 1;
            }
            if (step.done === true) {
              finish();
              return step;
            }
            progress.lastChunkMs = Date.now();
            const deliver = guard(`reading an ${this.provider} stream chunk`, () =>
              summary.add(step.value),
            );
            // Aborted while this read was in flight, yet it brought a chunk: the abort ends it.
            if (signal?.aborted === true && progress.reads === 0) queueMicrotask(finish);
            if (deliver !== false) return step;
          }
        },
        return: async (value?: unknown) => {
          finish();
          return inner.return ? inner.return(value) : { done: true, value };
        },
        throw: async (error?: unknown) => {
          forget();
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

/** Ends the stream's span once the stream is collected, unless `close` is unregistered first. */
function watchDropped(stream: object, close: () => void): void {
  guard('watching for a dropped stream', () => droppedStreams.register(stream, close, close));
}

/** The function that ends a dropped stream's span, in a scope that holds no stream. */
function closeWhenDropped(
  call: LlmCall,
  summary: StreamSummary,
  progress: StreamProgress,
): () => void {
  const close = (): void => {
    openStreams.delete(close);
    call.endDropped(summary, progress.lastChunkMs);
  };
  return close;
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

/** The SDKs' own test (`isAbortError`): a fetch aborted through its signal. */
function isAbortError(error: unknown): boolean {
  const name = (error as { name?: unknown } | null | undefined)?.name;
  return name === 'AbortError' || name === 'APIUserAbortError';
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

/** The shape of the OpenAI and Anthropic SDKs' `APIPromise` (v4 and later) that we rely on. */
/**
 * `parseResponse`'s arguments with the props' `Response` replaced by a copy of it: (client, props)
 * in openai 5+ and Anthropic, (props) in openai 4, so the props are found by their shape. Not for
 * a stream (read as it comes: a copy would hold every chunk the caller never reads), nor when
 * there is no `Response` to copy. Our own parse reads the copy; the caller's raw body stays.
 */
export function withBodyCopy(args: readonly unknown[]): unknown[] {
  const at = args.findIndex((arg) => {
    const response = (arg as { response?: { clone?: unknown } } | null)?.response;
    return typeof response?.clone === 'function';
  });
  if (at < 0) return [...args];
  const props = args[at] as {
    response: { clone: () => unknown; bodyUsed?: boolean };
    options?: { stream?: unknown };
  };
  if (props.response.bodyUsed || props.options?.stream) return [...args];
  let copy: unknown;
  try {
    copy = props.response.clone();
  } catch {
    return [...args]; // as before: our parse reads the body itself
  }
  const copied = [...args];
  copied[at] = { ...props, response: copy };
  return copied;
}

interface ApiPromise extends PromiseLike<unknown> {
  responsePromise: PromiseLike<unknown>;
  parseResponse: (...args: unknown[]) => unknown;
  asResponse: (...args: unknown[]) => unknown;
  parse: () => Promise<unknown>;
}

function isApiPromise(value: PromiseLike<unknown>): value is ApiPromise {
  const candidate = value as Partial<Record<keyof ApiPromise, unknown>>;
  return (
    isThenable(candidate.responsePromise) &&
    Object.prototype.hasOwnProperty.call(value, 'parseResponse') &&
    typeof candidate.parseResponse === 'function' &&
    typeof candidate.asResponse === 'function' &&
    typeof candidate.parse === 'function'
  );
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
