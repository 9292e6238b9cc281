/** Errors raised by the storage layer. Each carries a stable `code`; the low-level error is the `cause`. */
export class StorageError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
    this.code = code;
  }
}

export class MigrationError extends StorageError {
  readonly migration: string;
  constructor(migration: string, message: string, options?: { cause?: unknown }) {
    super('MIGRATION_FAILED', message, options);
    this.name = 'MigrationError';
    this.migration = migration;
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Wraps a driver error: `what` says what failed, the engine's message follows, the error is the cause. */
export function storageFailure(code: string, what: string, error: unknown): StorageError {
  return new StorageError(code, `${what}: ${errorMessage(error)}`, { cause: error });
}

/**
 * ClickHouse error codes that mean "these rows cannot be stored as sent" (parse and type errors),
 * as opposed to "the store is unavailable". Retrying the same rows can never succeed.
 */
const ROW_DATA_ERROR_CODES = new Set([
  6, // CANNOT_PARSE_TEXT
  25, // CANNOT_PARSE_ESCAPE_SEQUENCE
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA
  131, // TOO_LARGE_STRING_SIZE
  321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
]);

/** The ClickHouse error code of a driver error or of anything in its cause chain. */
export function clickHouseErrorCode(error: unknown): number | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    // @clickhouse/client puts the code on the error; chDB only in the message.
    const own = (e as { code?: unknown }).code;
    if (typeof own === 'string' && /^\d+$/.test(own)) return Number(own);
    const match = /\bCode: (\d+)\. DB::Exception/.exec(e.message);
    if (match) return Number(match[1]);
  }
  return undefined;
}

/** True when the store refused rows for what they contain; false for outages and everything else. */
export function isRowDataError(error: unknown): boolean {
  const code = clickHouseErrorCode(error);
  return code !== undefined && ROW_DATA_ERROR_CODES.has(code);
}

/** ClickHouse error codes of a server that is there but cannot serve now: retry later. */
const BUSY_CODES = new Set([
  159, // TIMEOUT_EXCEEDED
  202, // TOO_MANY_SIMULTANEOUS_QUERIES
  209, // SOCKET_TIMEOUT
  210, // NETWORK_ERROR
  241, // MEMORY_LIMIT_EXCEEDED
  242, // TABLE_IS_READ_ONLY
  252, // TOO_MANY_PARTS
]);

/** Socket-level failures: the store could not be reached, or stopped answering. */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'UND_ERR_SOCKET',
  // ours: StorageError codes of the drivers
  'STORE_CLOSED',
  'UNAVAILABLE',
]);

/**
 * True when the store could not be reached at all: a refused, reset or timed-out connection, a
 * host that does not resolve, a closed embedded store. Not a server that answered with an error,
 * nor a statement that ran out of time or memory (isStoreUnavailable counts those too, for a
 * 503): a job that fails that way at every run has a problem of its own, not an outage.
 */
export function isStoreUnreachable(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return true;
  }
  return false;
}

/**
 * True when the store is unreachable or gone (a refused or reset connection, a request timeout,
 * a closed embedded store) rather than refusing this particular statement: the caller answers
 * 503 and may retry later.
 */
export function isStoreUnavailable(error: unknown): boolean {
  const clickHouseCode = clickHouseErrorCode(error);
  if (clickHouseCode !== undefined && BUSY_CODES.has(clickHouseCode)) return true;
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return true;
    // @clickhouse/client rejects a request that outlived request_timeout with this message.
    if (/^Timeout error\.?$/.test(e.message)) return true;
  }
  return false;
}
