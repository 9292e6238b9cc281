import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync, inflateSync } from 'node:zlib';
import * as chdb from 'chdb';

/**
 * A ClickHouse server as `@clickhouse/client` sees it: the HTTP interface on 127.0.0.1, the real
 * engine (chDB, in its own temporary data directory) behind it. It implements what the client
 * sends (read from @clickhouse/client 1.23 and client-common):
 *
 * - `GET /ping` → `Ok.`; `GET /?query=…` runs a read-only query (a GET implies readonly);
 * - `POST /` with the statement in the `query` URL parameter and the data in the body (inserts
 *   and `exec` with values), or the whole statement in the body (`query`, `command`, `exec`);
 * - `param_<name>` values bound to `{name:Type}` placeholders, in the server's escaped text form;
 * - every other URL parameter is a setting, applied to this request only; an unknown one fails
 *   with UNKNOWN_SETTING as on a server. HTTP-layer settings (`wait_end_of_query`,
 *   `enable_http_compression`, progress headers) are handled here;
 * - `database`, `default_format`, `query_id`; credentials by basic auth, `X-ClickHouse-User` /
 *   `X-ClickHouse-Key` headers or `user` / `password` parameters;
 * - `Content-Encoding: gzip` (or deflate) request bodies, gzip responses when asked;
 * - errors as a server sends them: `Code: N. DB::Exception: … (TYPE) (version …)` in the body,
 *   the code in `X-ClickHouse-Exception-Code`, an HTTP status chosen from the code.
 *
 * Requests run one at a time (settings and the current database are per engine session here;
 * a request with `readonly` gets an engine connection of its own);
 * a server runs them concurrently. Multi-statement bodies, sessions (`session_id`) and multipart
 * parameters are not implemented: a server refuses the first, the client sends the others only
 * when configured to.
 */
export interface ClickHouseHttpOptions {
  user?: string;
  password?: string;
  /** Databases created at start, as CLICKHOUSE_DB does for the server image. */
  databases?: string[];
  /**
   * The server default of `input_format_skip_unknown_fields` becomes 0, as on the server the
   * reliability probe ran: an insert with a field the table lacks is refused, not trimmed.
   */
  strict?: boolean;
  /**
   * Settings of the user's profile: what every request starts from, as a server's `users.xml`
   * sets them (e.g. `{ allow_experimental_analyzer: '0' }`, the old analyzer).
   */
  profile?: Record<string, string>;
}

export interface ReceivedRequest {
  method: string;
  path: string;
  /** The statement as executed (the body, or the `query` parameter followed by the body). */
  query: string;
  /** For inserts with data in the body: the body, decompressed. */
  body: Buffer;
  /** The request's Content-Encoding ('' for none). */
  contentEncoding: string;
  settings: Record<string, string>;
  params: Record<string, string>;
  database: string;
  user: string;
  /** The ClickHouse error code of the answer, 0 for success. */
  exceptionCode: number;
}

export interface ClickHouseHttp {
  /** `http://user:password@127.0.0.1:<port>/<first database>`: a CLICKHOUSE_URL. */
  url: string;
  /** `http://127.0.0.1:<port>`, no credentials. */
  origin: string;
  dataDir: string;
  /** Every request answered so far, oldest first. */
  readonly requests: ReceivedRequest[];
  close(): Promise<void>;
}

/** Parameters that are not settings. */
const NOT_SETTINGS = new Set([
  'query',
  'query_id',
  'database',
  'default_format',
  'user',
  'password',
  'quota_key',
  'session_id',
  'session_timeout',
  'session_check',
  'compress',
  'decompress',
  'role',
]);

/** Settings the HTTP layer of a server acts on itself; the engine does not know them. */
const HTTP_LAYER_SETTINGS = new Set([
  'wait_end_of_query',
  'enable_http_compression',
  'http_zlib_compression_level',
  'send_progress_in_http_headers',
  'http_headers_progress_interval_ms',
  'http_response_buffer_size',
  'buffer_size',
]);

/** The HTTP status a server answers for an error code (its exceptionCodeToHTTPStatus); else 500. */
const STATUS_BY_CODE = new Map<number, number>([
  [194, 401], // REQUIRED_PASSWORD
  [192, 403], // UNKNOWN_USER
  [193, 403], // WRONG_PASSWORD
  [516, 403], // AUTHENTICATION_FAILED
  ...[6, 25, 26, 27, 36, 38, 41, 53, 62, 72, 117, 321].map((c): [number, number] => [c, 400]),
  ...[46, 47, 50, 60, 73, 81, 115].map((c): [number, number] => [c, 404]),
  [48, 501], // NOT_IMPLEMENTED
  [159, 408], // TIMEOUT_EXCEEDED
]);

class ClickHouseHttpError extends Error {
  readonly code: number;
  constructor(code: number, type: string, message: string) {
    super(`Code: ${code}. DB::Exception: ${message}. (${type})`);
    this.code = code;
  }
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const READ_STATEMENT = /^\s*(SELECT|WITH|SHOW|DESC|DESCRIBE|EXISTS|EXPLAIN|CHECK)\b/i;

export async function startClickHouseHttp(
  options: ClickHouseHttpOptions = {},
): Promise<ClickHouseHttp> {
  const user = options.user ?? 'default';
  const password = options.password ?? '';
  const dataDir = mkdtempSync(join(tmpdir(), 'routewatch-clickhouse-http-'));
  const session = new chdb.Session(dataDir);
  const version = chdb.version().libchdb.replace(/"/g, '');
  // What a request's settings are reset to afterwards: the server's defaults.
  const serverDefaults: Record<string, string> = {
    ...(options.strict ? { input_format_skip_unknown_fields: '0' } : {}),
    ...options.profile,
  };
  for (const [name, value] of Object.entries(serverDefaults)) {
    await session.queryAsync(`SET ${name} = ${quote(value)}`);
  }
  for (const database of options.databases ?? []) {
    if (!IDENTIFIER.test(database)) throw new Error(`invalid database name ${database}`);
    await session.queryAsync(`CREATE DATABASE IF NOT EXISTS \`${database}\``);
  }

  const requests: ReceivedRequest[] = [];
  let queue: Promise<unknown> = Promise.resolve();
  /** One request at a time on the engine session: its settings and database are per session. */
  const exclusive = <T>(work: () => Promise<T>): Promise<T> => {
    const run = queue.then(work, work);
    queue = run.catch(() => undefined);
    return run;
  };

  async function execute(
    request: ReceivedRequest,
    format: string,
  ): Promise<{ bytes: Uint8Array; rowsRead: number; bytesRead: number; elapsed: number }> {
    // A request with `readonly` runs on an engine connection of its own, as every request does
    // on a server: readonly = 1 cannot be undone on the connection it was set on. A server
    // checks a request's settings together before applying them, so readonly goes last here.
    if (request.settings['readonly'] !== undefined) {
      return exclusive(async () => {
        const own = new chdb.Session(dataDir);
        try {
          await own.queryAsync(`USE \`${request.database}\``);
          for (const [name, value] of Object.entries(serverDefaults)) {
            await own.queryAsync(`SET ${name} = ${quote(value)}`);
          }
          const ordered = Object.entries(request.settings).sort(
            ([a], [b]) => Number(a === 'readonly') - Number(b === 'readonly'),
          );
          for (const [name, value] of ordered) {
            if (HTTP_LAYER_SETTINGS.has(name)) continue;
            if (!IDENTIFIER.test(name)) {
              throw new ClickHouseHttpError(115, 'UNKNOWN_SETTING', `Unknown setting '${name}'`);
            }
            await own.queryAsync(`SET ${name} = ${quote(value)}`);
          }
          const result = await own.queryAsync(request.query, { format });
          return {
            bytes: result.bytes(),
            rowsRead: result.rowsRead,
            bytesRead: result.bytesRead,
            elapsed: result.elapsed,
          };
        } finally {
          own.close();
        }
      });
    }
    return exclusive(async () => {
      const applied: string[] = [];
      try {
        await session.queryAsync(`USE \`${request.database}\``);
        for (const [name, value] of Object.entries(request.settings)) {
          if (HTTP_LAYER_SETTINGS.has(name)) continue;
          if (!IDENTIFIER.test(name)) {
            throw new ClickHouseHttpError(115, 'UNKNOWN_SETTING', `Unknown setting '${name}'`);
          }
          await session.queryAsync(`SET ${name} = ${quote(value)}`);
          applied.push(name);
        }
        const params = Object.fromEntries(
          Object.entries(request.params).map(([name, wire]) => [name, bindable(name, wire)]),
        );
        const result =
          Object.keys(params).length === 0
            ? await session.queryAsync(request.query, { format })
            : await session.queryBindAsync(request.query, params, { format });
        return {
          bytes: result.bytes(),
          rowsRead: result.rowsRead,
          bytesRead: result.bytesRead,
          elapsed: result.elapsed,
        };
      } finally {
        for (const name of applied) {
          const reset = serverDefaults[name];
          await session.queryAsync(
            `SET ${name} = ${reset === undefined ? 'DEFAULT' : quote(reset)}`,
          );
        }
        await session.queryAsync('USE default');
      }
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const queryId = url.searchParams.get('query_id') || randomUUID();
    res.setHeader('X-ClickHouse-Query-Id', queryId);
    res.setHeader('X-ClickHouse-Timezone', 'UTC');
    res.setHeader('X-ClickHouse-Server-Display-Name', 'routewatch-test-clickhouse');
    if (url.pathname === '/ping' && (req.method === 'GET' || req.method === 'HEAD')) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=UTF-8' }).end('Ok.\n');
      return;
    }
    if (url.pathname !== '/') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=UTF-8' });
      res.end(`There is no handle ${url.pathname}\n\nUse / or /ping for health checks.\n`);
      return;
    }
    const record: ReceivedRequest = {
      method: req.method ?? '',
      path: url.pathname,
      query: '',
      body: Buffer.alloc(0),
      contentEncoding: String(req.headers['content-encoding'] ?? ''),
      settings: {},
      params: {},
      database: url.searchParams.get('database') || 'default',
      user: '',
      exceptionCode: 0,
    };
    requests.push(record);
    try {
      if (req.method !== 'GET' && req.method !== 'POST') {
        throw new ClickHouseHttpError(48, 'NOT_IMPLEMENTED', `HTTP method ${req.method}`);
      }
      record.user = authenticate(req, url, user, password);
      if (url.searchParams.has('session_id')) {
        throw new ClickHouseHttpError(48, 'NOT_IMPLEMENTED', 'sessions (session_id)');
      }
      if (String(req.headers['content-type'] ?? '').startsWith('multipart/form-data')) {
        throw new ClickHouseHttpError(48, 'NOT_IMPLEMENTED', 'multipart query parameters');
      }
      for (const [name, value] of url.searchParams) {
        if (name.startsWith('param_')) record.params[name.slice('param_'.length)] = value;
        else if (!NOT_SETTINGS.has(name)) record.settings[name] = value;
      }
      if (!IDENTIFIER.test(record.database)) {
        throw new ClickHouseHttpError(
          81,
          'UNKNOWN_DATABASE',
          `Database ${record.database} does not exist`,
        );
      }
      const body = req.method === 'POST' ? await readBody(req) : Buffer.alloc(0);
      const inUrl = url.searchParams.get('query');
      // The server reads the statement from the URL, then from the body; an INSERT's data
      // follows the statement.
      if (inUrl !== null) {
        record.query = body.length > 0 ? `${inUrl}\n${body.toString('utf8')}` : inUrl;
        record.body = body;
      } else {
        record.query = body.toString('utf8');
      }
      if (record.query.trim() === '') {
        throw new ClickHouseHttpError(62, 'SYNTAX_ERROR', 'Empty query');
      }
      if (req.method === 'GET' && !READ_STATEMENT.test(record.query)) {
        throw new ClickHouseHttpError(
          164,
          'READONLY',
          'Cannot execute query in readonly mode. For queries over HTTP, method GET implies readonly. You should use method POST for modifying queries',
        );
      }
      const format = url.searchParams.get('default_format') || 'TabSeparated';
      const result = await execute(record, format);
      res.setHeader(
        'X-ClickHouse-Summary',
        JSON.stringify({
          read_rows: String(result.rowsRead),
          read_bytes: String(result.bytesRead),
          written_rows: '0',
          written_bytes: '0',
          total_rows_to_read: '0',
          result_rows: String(result.rowsRead),
          result_bytes: String(result.bytes.byteLength),
          elapsed_ns: String(Math.round(result.elapsed * 1e9)),
        }),
      );
      let payload = Buffer.from(result.bytes);
      if (
        record.settings['enable_http_compression'] === '1' &&
        /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))
      ) {
        payload = gzipSync(payload);
        res.setHeader('Content-Encoding', 'gzip');
      }
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=UTF-8' }).end(payload);
    } catch (error) {
      const { code, message } = clickHouseError(error);
      record.exceptionCode = code;
      res
        .writeHead(STATUS_BY_CODE.get(code) ?? 500, {
          'Content-Type': 'text/plain; charset=UTF-8',
          'X-ClickHouse-Exception-Code': String(code),
        })
        .end(`${message} (version ${version})\n`);
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      res.destroy(error instanceof Error ? error : new Error(String(error)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  const credentials = `${encodeURIComponent(user)}:${encodeURIComponent(password)}@`;
  return {
    url: `http://${credentials}127.0.0.1:${port}/${options.databases?.[0] ?? ''}`,
    origin,
    dataDir,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await queue;
      session.close();
      // close() can return while background merges still write into the directory.
      await chdb.drainPending();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A SQL string literal for a setting value. */
function quote(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * The value chDB's binder must be given so that, after it escapes a string for the engine, the
 * engine sees exactly the text the client sent. The client sends the server's escaped form
 * (`\t`, `\n`, `\\`, `\'`, `\N` for NULL); chDB escapes `\`, TAB, newline and other control
 * characters itself, so those are decoded here. A `\'` inside a composite value (`['it\'s']`)
 * has no such pre-image and is refused rather than bound wrongly.
 */
function bindable(name: string, wire: string): string | null {
  if (wire === '\\N') return null;
  const decoded = wire.replace(/\\(.)/gs, (_match, c: string) => {
    switch (c) {
      case 't':
        return '\t';
      case 'n':
        return '\n';
      case 'r':
        return '\r';
      case '0':
        return '\0';
      case 'b':
        return '\b';
      case 'f':
        return '\f';
      case '\\':
        return '\\';
      case "'":
        if (/^[[({]/.test(wire)) {
          throw new ClickHouseHttpError(
            48,
            'NOT_IMPLEMENTED',
            `the test server cannot bind the composite parameter ${name} holding a quote`,
          );
        }
        return "'";
      default:
        return c;
    }
  });
  return decoded;
}

function authenticate(req: IncomingMessage, url: URL, user: string, password: string): string {
  let givenUser = url.searchParams.get('user') ?? undefined;
  let givenPassword = url.searchParams.get('password') ?? undefined;
  const header = req.headers['x-clickhouse-user'];
  if (typeof header === 'string') {
    givenUser = header;
    const key = req.headers['x-clickhouse-key'];
    givenPassword = typeof key === 'string' ? key : '';
  }
  const authorization = req.headers.authorization;
  if (authorization?.startsWith('Basic ')) {
    const decoded = Buffer.from(authorization.slice('Basic '.length), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    givenUser = colon === -1 ? decoded : decoded.slice(0, colon);
    givenPassword = colon === -1 ? '' : decoded.slice(colon + 1);
  }
  givenUser ??= 'default';
  givenPassword ??= '';
  if (givenUser !== user || givenPassword !== password) {
    throw new ClickHouseHttpError(
      516,
      'AUTHENTICATION_FAILED',
      `${givenUser}: Authentication failed: password is incorrect, or there is no user with such name`,
    );
  }
  return givenUser;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  const encoding = String(req.headers['content-encoding'] ?? '').toLowerCase();
  if (encoding === '' || encoding === 'identity') return raw;
  try {
    if (encoding === 'gzip') return gunzipSync(raw);
    if (encoding === 'deflate') return inflateSync(raw);
  } catch (error) {
    throw new ClickHouseHttpError(
      354,
      'CANNOT_DECOMPRESS',
      `cannot decompress the ${encoding} request body: ${(error as Error).message}`,
    );
  }
  throw new ClickHouseHttpError(48, 'NOT_IMPLEMENTED', `Content-Encoding ${encoding}`);
}

/** The code and the server's text for an engine error (chDB keeps the server's format) or ours. */
function clickHouseError(error: unknown): { code: number; message: string } {
  if (error instanceof ClickHouseHttpError) return { code: error.code, message: error.message };
  const message = error instanceof Error ? error.message : String(error);
  const own = (error as { clickhouseCode?: unknown }).clickhouseCode;
  const parsed = /^Code: (\d+)\./.exec(message);
  const code = typeof own === 'number' ? own : parsed ? Number(parsed[1]) : 1001;
  return {
    code,
    message: parsed ? message : `Code: ${code}. DB::Exception: ${message}. (STD_EXCEPTION)`,
  };
}
