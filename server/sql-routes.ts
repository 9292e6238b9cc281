import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import {
  StorageError,
  clickHouseErrorCode,
  errorMessage,
  isStoreUnavailable,
} from '../storage/errors.js';
import type { ReadOnlyLimits, ReadOnlyResult, Store } from '../storage/store.js';
import type { Config } from './config.js';
import { HttpError, badRequest, unavailable } from './http-error.js';

/**
 * Live SQL: `POST /api/v1/sql` runs a user's query on the store, read-only and within limits
 * enforced by ClickHouse itself (`Store.queryReadOnly`, which first refuses what readonly lets
 * through on the embedded engine), behind the token like every API route.
 * It is how to query the embedded store while `routewatch start` holds its data directory.
 */
export interface SqlRoutesOptions {
  store: Store;
  limits: ReadOnlyLimits;
  /** Resolves once the spans acknowledged so far are stored (bounded): read your writes. */
  settle?: () => Promise<void>;
}

/** The answer of `POST /api/v1/sql`. */
export interface SqlAnswer extends ReadOnlyResult {
  rowCount: number;
}

/** The limits the configuration sets on every user query. */
export function sqlLimits(
  config: Pick<
    Config,
    | 'ROUTEWATCH_SQL_MAX_ROWS'
    | 'ROUTEWATCH_SQL_MAX_TIME'
    | 'ROUTEWATCH_SQL_MAX_MEMORY_BYTES'
    | 'ROUTEWATCH_SQL_MAX_RESULT_BYTES'
  >,
): ReadOnlyLimits {
  return {
    maxRows: config.ROUTEWATCH_SQL_MAX_ROWS,
    maxExecutionMs: config.ROUTEWATCH_SQL_MAX_TIME,
    maxMemoryBytes: config.ROUTEWATCH_SQL_MAX_MEMORY_BYTES,
    maxResultBytes: config.ROUTEWATCH_SQL_MAX_RESULT_BYTES,
  };
}

const MAX_SQL_CHARS = 100_000;

const sqlBody = z.object({ sql: z.string().trim().min(1, 'is empty').max(MAX_SQL_CHARS) }).strict();

const READONLY = 164;
const TOO_MANY_ROWS_OR_BYTES = 396;
const TIMEOUT_EXCEEDED = 159;
const MEMORY_LIMIT_EXCEEDED = 241;

function bytesText(bytes: number): string {
  const MiB = 1024 * 1024;
  return bytes >= 1024 * MiB && bytes % (1024 * MiB) === 0
    ? `${bytes / (1024 * MiB)} GiB`
    : bytes >= MiB
      ? `${Math.round((bytes / MiB) * 10) / 10} MiB`
      : `${bytes} bytes`;
}

/** The engine's own words: the innermost message, without the wrapping of the driver. */
function engineMessage(error: unknown): string {
  let innermost: unknown = error;
  for (
    let depth = 0;
    innermost instanceof Error && innermost.cause !== undefined && depth < 5;
    depth++
  )
    innermost = innermost.cause;
  return errorMessage(innermost).trim().slice(0, 2_000);
}

/** An answer over ROUTEWATCH_SQL_MAX_RESULT_BYTES, whether the engine or the driver saw it first. */
function resultTooLargeError(limits: ReadOnlyLimits, cause: unknown): HttpError {
  return new HttpError(
    400,
    'RESOURCE_EXHAUSTED',
    `the answer is larger than ${bytesText(limits.maxResultBytes)}, the limit ROUTEWATCH_SQL_MAX_RESULT_BYTES ` +
      '(ClickHouse setting max_result_bytes): select fewer columns or rows, or raise ROUTEWATCH_SQL_MAX_RESULT_BYTES',
    { cause },
  );
}

/**
 * The HTTP error for a failed user query: each limit crossed is named with its setting and what
 * to do; a write is refused as the engine refused it; the user's SQL errors are 400s with the
 * engine's message; an unreachable store is a 503. Anything else is rethrown (a 500).
 */
export function sqlFailure(error: unknown, limits: ReadOnlyLimits): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof StorageError && error.code === 'RESULT_TOO_LARGE') {
    return resultTooLargeError(limits, error);
  }
  if (error instanceof StorageError && error.code === 'SQL_REFUSED') {
    return new HttpError(403, 'PERMISSION_DENIED', `SQL here is read-only: ${error.message}`, {
      cause: error,
    });
  }
  const code = clickHouseErrorCode(error);
  const engine = engineMessage(error);
  switch (code) {
    case READONLY:
      return new HttpError(
        403,
        'PERMISSION_DENIED',
        `SQL here is read-only: ClickHouse refused the statement (setting readonly = 1). ${engine}`,
        { cause: error },
      );
    case TOO_MANY_ROWS_OR_BYTES:
      if (/max bytes/i.test(engine)) return resultTooLargeError(limits, error);
      return new HttpError(
        400,
        'RESOURCE_EXHAUSTED',
        `the result has more than ${limits.maxRows} rows, the limit ROUTEWATCH_SQL_MAX_ROWS ` +
          '(ClickHouse setting max_result_rows): add a LIMIT or aggregate, or raise ROUTEWATCH_SQL_MAX_ROWS',
        { cause: error },
      );
    case TIMEOUT_EXCEEDED:
      return new HttpError(
        400,
        'DEADLINE_EXCEEDED',
        `the query ran longer than ${limits.maxExecutionMs / 1000} s, the limit ROUTEWATCH_SQL_MAX_TIME ` +
          '(ClickHouse setting max_execution_time): narrow the time window, or raise ROUTEWATCH_SQL_MAX_TIME',
        { cause: error },
      );
    case MEMORY_LIMIT_EXCEEDED:
      // The server's own total can run out too: that is a busy server, not this query's limit.
      if (/query memory limit/i.test(engine)) {
        return new HttpError(
          400,
          'RESOURCE_EXHAUSTED',
          `the query needed more than ${bytesText(limits.maxMemoryBytes)} of memory, the limit ` +
            'ROUTEWATCH_SQL_MAX_MEMORY_BYTES (ClickHouse setting max_memory_usage): narrow the time window or ' +
            'group by fewer keys, or raise ROUTEWATCH_SQL_MAX_MEMORY_BYTES',
          { cause: error },
        );
      }
      break;
    default:
      break;
  }
  if (isStoreUnavailable(error)) {
    return unavailable(
      'the store is unavailable: retry shortly; if this lasts, check ClickHouse',
      5,
      error,
    );
  }
  if (error instanceof StorageError && code === undefined && error.code !== 'QUERY_FAILED') {
    // Ours: several statements, a FORMAT clause of the query's own.
    return badRequest(error.message, error);
  }
  if (code !== undefined) return badRequest(`ClickHouse refused the query: ${engine}`, error);
  throw error;
}

export const sqlRoutes: FastifyPluginAsync<SqlRoutesOptions> = async (app, options) => {
  app.post('/api/v1/sql', async (request): Promise<SqlAnswer> => {
    const parsed = sqlBody.safeParse(request.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw badRequest(
        `invalid body: ${issue?.path.join('.') || 'body'} ${issue?.message ?? 'is invalid'}. ` +
          `Send {"sql": "SELECT …"} as application/json (one statement, at most ${MAX_SQL_CHARS} characters).`,
      );
    }
    await options.settle?.();
    try {
      const result = await options.store.queryReadOnly(parsed.data.sql, options.limits);
      return { ...result, rowCount: result.rows.length };
    } catch (error) {
      throw sqlFailure(error, options.limits);
    }
  });
};
