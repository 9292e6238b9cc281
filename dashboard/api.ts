import { currentToken, isTokenText } from './token.js';

/**
 * Reads the API with the token, turning every failure into an ApiError with the server's code
 * and message (`{ "error": { "code", "message" } }`), so each section can say what went wrong.
 */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }

  /** The token is missing or refused. */
  get unauthenticated(): boolean {
    return this.status === 401;
  }
}

interface ErrorBody {
  error?: { code?: unknown; message?: unknown };
}

/** How long a request of the page may take before it says so rather than show "Loading…". */
export const API_TIMEOUT_MS = 30_000;

/** Why a request was cut short: a newer view replaced it, or it outran API_TIMEOUT_MS. */
export class Abandoned extends Error {
  constructor(readonly timedOut: boolean) {
    super(timedOut ? 'timed out' : 'replaced by a newer view');
    this.name = 'Abandoned';
  }
}

/**
 * GET a path of the API, relative to the page (so a path prefix behind a proxy is kept). With a
 * signal, an abort (reason: Abandoned) ends the request.
 */
export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  return requestJson<T>('GET', path, undefined, signal);
}

/**
 * POST or DELETE a path of the API (a silence added or ended), with a JSON body when given; its
 * failures are ApiErrors as a GET's are, with the server's message (what to give instead).
 */
export async function sendJson<T>(
  method: 'POST' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<T> {
  // Not for ever: a request that outruns API_TIMEOUT_MS says so, and its button works again.
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Abandoned(true)), API_TIMEOUT_MS);
  try {
    return await requestJson<T>(method, path, body, controller.signal);
  } catch (error) {
    // Not a GET: the change may have been made, only its answer lost.
    if (error instanceof ApiError && error.code === 'TIMEOUT')
      throw new ApiError(
        0,
        'TIMEOUT',
        `routewatch did not answer within ${API_TIMEOUT_MS / 1000} s: it may have been done all the same; Refresh to see before trying again`,
      );
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

async function requestJson<T>(
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body: unknown,
  signal?: AbortSignal,
): Promise<T> {
  const token = currentToken();
  // A pasted token a header cannot carry would fail the request as if routewatch were down.
  if (token !== undefined && !isTokenText(token)) {
    throw new ApiError(
      401,
      'TOKEN_TEXT',
      'This token holds characters a token cannot have: routewatch tokens are printable ASCII without spaces.',
    );
  }
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers: {
        accept: 'application/json',
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      cache: 'no-store',
      ...(signal ? { signal } : {}),
    });
  } catch (error) {
    if (signal?.aborted) throw abandoned(signal, path);
    throw new ApiError(
      0,
      'UNREACHABLE',
      `routewatch did not answer (${(error as Error).message}): is it running?`,
    );
  }
  if (response.ok) {
    try {
      return (await response.json()) as T;
    } catch {
      if (signal?.aborted) throw abandoned(signal, path);
      throw new ApiError(
        response.status,
        'NOT_JSON',
        `routewatch's answer to ${pathOf(path)} was not JSON: is a proxy in the way?`,
      );
    }
  }
  let code = `HTTP_${response.status}`;
  let message = `${response.status} ${response.statusText}`.trim();
  try {
    const body = (await response.json()) as ErrorBody;
    if (typeof body.error?.code === 'string') code = body.error.code;
    if (typeof body.error?.message === 'string') message = body.error.message;
  } catch {
    /* not JSON (a proxy's page): the status line says it */
  }
  throw new ApiError(response.status, code, message);
}

const pathOf = (path: string) => path.split('?')[0]!;

function abandoned(signal: AbortSignal, path: string): ApiError {
  const timedOut = signal.reason instanceof Abandoned && signal.reason.timedOut;
  return timedOut
    ? new ApiError(
        0,
        'TIMEOUT',
        `routewatch did not answer ${pathOf(path)} within ${API_TIMEOUT_MS / 1000} s: the store may be busy. Try a shorter window, or Refresh.`,
      )
    : new ApiError(0, 'ABANDONED', 'replaced by a newer view');
}
