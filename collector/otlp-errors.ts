/** Errors of OTLP request decoding: each is answered with a 400 and its message. */
export class OtlpDecodeError extends Error {
  readonly code: string = 'OTLP_INVALID';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OtlpDecodeError';
  }
}

/**
 * Limits on one OTLP request, so that decoding costs time and memory in proportion to a small
 * number of entries whatever the message's shape: ten million empty ResourceSpans in 19 MB of
 * protobuf, or seven million `{}` in 20 MB of JSON, are refused after a bounded amount of work
 * instead of building millions of objects.
 */
export interface RequestLimits {
  /** Spans in one request (ROUTEWATCH_MAX_SPANS_PER_REQUEST). */
  maxSpans: number;
  /**
   * Decoded entries in one request (ROUTEWATCH_MAX_ENTRIES_PER_REQUEST): every message of the
   * protobuf body, every object and array of the JSON body.
   */
  maxEntries: number;
  /** ResourceSpans in one request (ROUTEWATCH_MAX_RESOURCES_PER_REQUEST). */
  maxResources: number;
}

export class RequestLimitError extends OtlpDecodeError {
  override readonly code = 'OTLP_LIMIT';
  readonly limit: keyof RequestLimits;
  constructor(limit: keyof RequestLimits, message: string) {
    super(message);
    this.name = 'RequestLimitError';
    this.limit = limit;
  }
}

const ENV_NAME: Record<keyof RequestLimits, string> = {
  maxSpans: 'ROUTEWATCH_MAX_SPANS_PER_REQUEST',
  maxEntries: 'ROUTEWATCH_MAX_ENTRIES_PER_REQUEST',
  maxResources: 'ROUTEWATCH_MAX_RESOURCES_PER_REQUEST',
};

const WHAT: Record<keyof RequestLimits, string> = {
  maxSpans: 'spans',
  maxEntries: 'entries (messages, objects and arrays)',
  maxResources: 'resource_spans',
};

export function limitExceeded(limit: keyof RequestLimits, value: number): RequestLimitError {
  return new RequestLimitError(
    limit,
    `the request holds more than ${value} ${WHAT[limit]}, the limit per request ` +
      `(${ENV_NAME[limit]}): send smaller batches`,
  );
}
