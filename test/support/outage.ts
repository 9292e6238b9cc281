import { readFileSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { storageFailure } from '../../storage/errors.js';
import type { StorageError } from '../../storage/errors.js';
import type { Store } from '../../storage/store.js';

/**
 * Store outages on command, for the write-ahead log's suites.
 *
 * - `switchableStore`: a real store whose inserts (and pings) fail while it is `down`, or which
 *   stores the rows and then fails anyway (`lose-answer`: the answer lost on the way back).
 * - `startClickHouseProxy`: an HTTP proxy on a fixed loopback port in front of a ClickHouse HTTP
 *   interface (clickhouse-http.ts), which is `closed` (nothing listens: connection refused),
 *   answers `500`, `hang`s (takes the request and never answers), loses the answer of an
 *   insert after the server executed it (`lose-answer`; other statements pass), or passes
 *   everything through.
 */

export type StoreMode = 'up' | 'down' | 'lose-answer';

export interface SwitchableStore extends Store {
  mode: StoreMode;
  /** Inserts the store executed, and insert attempts made in any mode. */
  readonly counts: { executed: number; attempts: number };
}

function connectionRefused(): Error {
  return Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' });
}

/** What the server driver throws when ClickHouse refuses the connection. */
export function storeUnreachable(): StorageError {
  return storageFailure('UNAVAILABLE', 'ClickHouse server did not answer', connectionRefused());
}

export function switchableStore(store: Store, mode: StoreMode = 'up'): SwitchableStore {
  const counts = { executed: 0, attempts: 0 };
  const switchable: SwitchableStore = {
    mode,
    counts,
    driver: store.driver,
    location: store.location,
    exec: (sql, params) => store.exec(sql, params),
    query: (sql, params, row) => store.query(sql, params, row),
    queryReadOnly: (sql, limits) => store.queryReadOnly(sql, limits),
    async ping() {
      if (switchable.mode === 'down') throw connectionRefused();
      await store.ping();
    },
    close: async () => undefined,
    async insertJsonEachRow(table, body, options) {
      counts.attempts++;
      if (switchable.mode === 'down') throw connectionRefused();
      await store.insertJsonEachRow(table, body, options);
      counts.executed++;
      if (switchable.mode === 'lose-answer') {
        throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      }
    },
  };
  return switchable;
}

export type ProxyMode = 'closed' | 'pass' | 'error' | 'hang' | 'lose-answer';

export interface ClickHouseProxy {
  /** `http://user:password@127.0.0.1:<port>/<database>`: the target's URL on the proxy's port. */
  url: string;
  port: number;
  readonly mode: ProxyMode;
  /** Statements the target executed through the proxy (every mode but closed, error and hang). */
  readonly forwarded: string[];
  setMode(mode: ProxyMode): Promise<void>;
  close(): Promise<void>;
}

/**
 * A loopback port nothing listens on, to be listened on again later (a store that goes away and
 * comes back). Taken below the kernel's ephemeral range: a port from `listen(0)` could meanwhile
 * become the local end of any outgoing connection on the machine, and the later listen would
 * fail with EADDRINUSE.
 */
export async function unusedPort(): Promise<number> {
  let below = 32_768;
  try {
    below = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0]);
  } catch {
    // Not Linux: the usual start of the range.
  }
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * Math.max(1, below - 20_000));
    const server = createServer();
    const free = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (!free) continue;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return port;
  }
  throw new Error('no free loopback port below the ephemeral range');
}

/** A proxy in front of the ClickHouse HTTP interface at `targetUrl`, starting `closed`. */
export async function startClickHouseProxy(targetUrl: string): Promise<ClickHouseProxy> {
  const target = new URL(targetUrl);
  const port = await unusedPort();
  const url = new URL(targetUrl);
  url.port = String(port);
  let mode: ProxyMode = 'closed';
  let server: Server | undefined;
  const sockets = new Set<Socket>();
  const held = new Set<ServerResponse>();
  const forwarded: string[] = [];

  const forward = (req: IncomingMessage, body: Buffer) =>
    new Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }>(
      (resolve, reject) => {
        const upstream = httpRequest(
          {
            host: target.hostname,
            port: target.port,
            method: req.method,
            path: req.url,
            headers: {
              ...Object.fromEntries(
                Object.entries(req.headers).filter(([name]) => name !== 'transfer-encoding'),
              ),
              host: target.host,
              'content-length': String(body.length),
            },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 502,
                headers: res.headers,
                body: Buffer.concat(chunks),
              }),
            );
            res.on('error', reject);
          },
        );
        upstream.on('error', reject);
        upstream.end(body);
      },
    );

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const current = mode;
    if (current === 'hang') {
      held.add(res);
      return;
    }
    if (current === 'error') {
      res
        .writeHead(500, { 'content-type': 'text/plain' })
        .end('Internal Server Error: the server is restarting\n');
      return;
    }
    const answer = await forward(req, body);
    const query = new URL(req.url ?? '/', 'http://x').searchParams.get('query');
    forwarded.push(query ?? body.toString('utf8').slice(0, 200));
    if (current === 'lose-answer' && /^\s*INSERT\b/i.test(forwarded.at(-1) ?? '')) {
      // The insert ran; the connection drops before its answer arrives.
      res.socket?.destroy();
      return;
    }
    res.writeHead(answer.status, answer.headers).end(answer.body);
  };

  const listen = async () => {
    server = createServer((req, res) => {
      handle(req, res).catch(() => res.socket?.destroy());
    });
    server.on('connection', (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(port, '127.0.0.1', () => resolve());
    });
  };
  const stop = async () => {
    const stopping = server;
    server = undefined;
    if (!stopping) return;
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => stopping.close(() => resolve()));
  };

  return {
    url: url.toString(),
    port,
    get mode() {
      return mode;
    },
    forwarded,
    async setMode(next: ProxyMode) {
      // Requests held by `hang` end with a dropped connection when the mode changes.
      for (const res of held) res.socket?.destroy();
      held.clear();
      mode = next;
      if (next === 'closed') await stop();
      else if (!server) await listen();
    },
    async close() {
      for (const res of held) res.socket?.destroy();
      held.clear();
      await stop();
    },
  };
}
