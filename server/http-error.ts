/**
 * The one error shape of routewatch's HTTP API. Every error answer carries a string code (the
 * google.rpc code names) and a message that says what to do. OTLP routes send it as a
 * google.rpc.Status in the request's encoding; every other route as
 * `{ "error": { "code", "message", "requestId" } }`.
 */

/** google.rpc.Code numbers, by name. */
export const RPC_CODES = {
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

export type ErrorCode = keyof typeof RPC_CODES;

export class HttpError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  /** Seconds the client should wait before retrying (sent as Retry-After). */
  readonly retryAfterSeconds: number | undefined;
  /** Extra headers of the answer (Allow, WWW-Authenticate). */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * Why an expected refusal was made (back-pressure, shutting down), as a short label such as
   * `write-ahead log full`: it is counted in a summary at warn, not logged as an error.
   */
  readonly refusal: string | undefined;

  constructor(
    status: number,
    code: ErrorCode,
    message: string,
    options: {
      retryAfterSeconds?: number;
      headers?: Record<string, string>;
      cause?: unknown;
      refusal?: string;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.headers = options.headers ?? {};
    this.refusal = options.refusal;
  }

  /** Fastify reads `statusCode` from errors raised while a body is read. */
  get statusCode(): number {
    return this.status;
  }
}

export const badRequest = (message: string, cause?: unknown) =>
  new HttpError(400, 'INVALID_ARGUMENT', message, { cause });

export const notFound = (message: string) => new HttpError(404, 'NOT_FOUND', message);

export const unavailable = (message: string, retryAfterSeconds: number, cause?: unknown) =>
  new HttpError(503, 'UNAVAILABLE', message, { retryAfterSeconds, cause });

/** A 503 the collector answers by design to make clients slow down (see HttpError.refusal). */
export const refused = (
  refusal: string,
  message: string,
  retryAfterSeconds: number,
  cause?: unknown,
) => new HttpError(503, 'UNAVAILABLE', message, { retryAfterSeconds, cause, refusal });

export const tooLarge = (maxBytes: number, what = 'the body') =>
  new HttpError(
    413,
    'RESOURCE_EXHAUSTED',
    `${what} exceeds ${maxBytes} bytes (ROUTEWATCH_MAX_BODY_BYTES): send smaller batches`,
  );

/** A Fastify framework error (bad JSON, body too large, unknown media type, …) or anything else. */
interface LooseError {
  statusCode?: unknown;
  code?: unknown;
  message?: unknown;
}

/**
 * The HttpError for anything a route or the framework threw. Unknown errors become a 500 whose
 * message tells the client what to do; their own text is for the log only.
 */
export function toHttpError(error: unknown, maxBodyBytes: number): HttpError {
  if (error instanceof HttpError) return error;
  const loose = (typeof error === 'object' && error !== null ? error : {}) as LooseError;
  const status = typeof loose.statusCode === 'number' ? loose.statusCode : 500;
  const message = typeof loose.message === 'string' ? loose.message : 'invalid request';
  switch (loose.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return tooLarge(maxBodyBytes);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new HttpError(415, 'INVALID_ARGUMENT', `${message}: send application/json`);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return badRequest('the body is empty: send a JSON document');
    default:
      break;
  }
  if (status === 408) return new HttpError(408, 'DEADLINE_EXCEEDED', message);
  if (status === 413) return tooLarge(maxBodyBytes);
  if (status >= 400 && status < 500) return new HttpError(status, 'INVALID_ARGUMENT', message);
  return new HttpError(500, 'INTERNAL', 'routewatch failed to answer this request', {
    cause: error,
  });
}
