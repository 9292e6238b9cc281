import { ConfigError, parseSettings } from '../server/config.js';

/**
 * How client commands (report, …) reach a running routewatch: `--url`, else ROUTEWATCH_URL,
 * else http://127.0.0.1:4318, with ROUTEWATCH_TOKEN as the bearer token when set.
 */
export class RemoteError extends Error {
  readonly code = 'REMOTE';
  /** The HTTP status of an error answer; undefined when none came. */
  readonly status: number | undefined;
  /** The instance's own message in an error answer (`error.message`), or its text. */
  readonly detail: string | undefined;
  constructor(message: string, answer?: { status: number; detail: string }) {
    super(message);
    this.name = 'RemoteError';
    this.status = answer?.status;
    this.detail = answer?.detail;
  }
}

export interface Remote {
  base: string;
  get(path: string): Promise<unknown>;
  post(path: string, body: unknown): Promise<unknown>;
  delete(path: string): Promise<unknown>;
}

export function remote(url: string | undefined): Remote {
  const config = parseSettings(['ROUTEWATCH_URL', 'ROUTEWATCH_TOKEN']);
  if (url !== undefined) {
    // Checked as ROUTEWATCH_URL is: a usage error (exit 2), not an instance that did not answer.
    try {
      parseSettings(['ROUTEWATCH_URL'], { ROUTEWATCH_URL: url });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      // The setting's own reason (a blocked port, say), else what --url must be.
      const reason = /ROUTEWATCH_URL: (its port .*)/.exec(error.message)?.[1];
      throw new ConfigError(`--url ${url}: ${reason ?? 'not an http(s) URL'}`);
    }
  }
  const base = (url ?? config.ROUTEWATCH_URL).replace(/\/+$/, '');
  const headers: Record<string, string> = {};
  if (config.ROUTEWATCH_TOKEN) headers['authorization'] = `Bearer ${config.ROUTEWATCH_TOKEN}`;
  const call = async (path: string, init: RequestInit): Promise<unknown> => {
    let response: Response;
    try {
      response = await fetch(`${base}${path}`, {
        ...init,
        headers: { ...headers, ...init.headers },
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new RemoteError(
        `no routewatch answered at ${base} (${cause?.code ?? cause?.message ?? (error as Error).message}). ` +
          'Start it with `routewatch start` (`npm start` in the repository), or point --url / ROUTEWATCH_URL at a running instance.',
      );
    }
    const text = await response.text();
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = text;
    }
    if (!response.ok) {
      const error = (body as { error?: { message?: string } } | undefined)?.error;
      const hint =
        response.status === 401
          ? ' Set ROUTEWATCH_TOKEN to the token the instance was started with.'
          : '';
      const detail = error?.message ?? text.slice(0, 300);
      throw new RemoteError(
        `${base}${path.split('?', 1)[0]} answered ${response.status}: ${detail}${hint}`,
        { status: response.status, detail },
      );
    }
    return body;
  };
  return {
    base,
    get: (path) => call(path, { method: 'GET' }),
    post: (path, body) =>
      call(path, {
        method: 'POST',
        body: JSON.stringify(body),
        headers: { 'content-type': 'application/json' },
      }),
    delete: (path) => call(path, { method: 'DELETE' }),
  };
}
