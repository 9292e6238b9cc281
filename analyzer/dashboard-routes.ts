import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from '../server/http-error.js';

/**
 * The dashboard at `/`: a page and its bundled script and style (dashboard/, built into
 * dist/dashboard by `npm run build`), served to anyone because they carry no data. The page
 * reads everything it shows from the API (`/api/v1/*`), which stays behind the token: the
 * browser sends it (docs/dashboard.md).
 */
export interface DashboardRoutesOptions {
  /** The built assets; default: dist/dashboard found from this module, in a clone or an image. */
  dir?: string | undefined;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** The files the build writes; nothing else is served, whatever the path asks for. */
const ASSET_NAMES = ['dashboard.js', 'dashboard.js.map', 'dashboard.css', 'dashboard.css.map'];

/**
 * Only this origin's scripts, styles and API: no CDN, no inline script, no framing. Data
 * images only for the page's empty favicon.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

interface StaticFile {
  body: Buffer;
  type: string;
  etag: string;
}

/** dist/dashboard, from this module whether it runs from source or from dist/. */
export function defaultDashboardDir(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = join(dir, 'dist', 'dashboard');
    if (existsSync(join(candidate, 'index.html'))) return candidate;
    dir = dirname(dir);
  }
  return undefined;
}

function load(dir: string, name: string): StaticFile | undefined {
  const path = join(dir, name);
  if (!existsSync(path)) return undefined;
  const body = readFileSync(path);
  const extension = name.slice(name.lastIndexOf('.'));
  return {
    body,
    type: TYPES[extension] ?? 'application/octet-stream',
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
  };
}

function send(request: FastifyRequest, reply: FastifyReply, file: StaticFile): FastifyReply {
  // Revalidated on every load (a 304 when unchanged): a rebuilt dashboard shows at once.
  reply
    .header('cache-control', 'no-cache')
    .header('etag', file.etag)
    .header('x-content-type-options', 'nosniff');
  if (request.headers['if-none-match'] === file.etag) return reply.code(304).send();
  return reply.type(file.type).send(file.body);
}

export const dashboardRoutes: FastifyPluginAsync<DashboardRoutesOptions> = async (app, options) => {
  const dir = options.dir ?? defaultDashboardDir();
  // Read once: the files are small, and a running instance serves the build it started with.
  const page = dir === undefined ? undefined : load(dir, 'index.html');
  const assets = new Map<string, StaticFile>();
  for (const name of ASSET_NAMES) {
    const file = dir === undefined ? undefined : load(dir, name);
    if (file) assets.set(name, file);
  }

  app.get('/', { config: { public: true } }, async (request, reply) => {
    if (!page) {
      throw new HttpError(
        503,
        'UNAVAILABLE',
        'the dashboard is not built: run `npm run build` (or `npm start`, which builds it) in the routewatch clone. The API under /api/v1/ works without it.',
      );
    }
    reply
      .header('content-security-policy', CONTENT_SECURITY_POLICY)
      .header('referrer-policy', 'no-referrer');
    return send(request, reply, page);
  });

  app.get<{ Params: { name: string } }>(
    '/assets/:name',
    { config: { public: true } },
    async (request, reply) => {
      const file = assets.get(request.params.name);
      if (!file) {
        throw new HttpError(404, 'NOT_FOUND', `no dashboard asset ${request.params.name}`);
      }
      return send(request, reply, file);
    },
  );
};
