import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { gunzip } from 'node:zlib';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError, badRequest, tooLarge, unavailable } from '../server/http-error.js';
import type { Admission, AdmissionTicket } from './admission.js';

/**
 * What every ingest route does with a body before its handler runs: admission by the bytes it
 * announces, a limit on its size, and timeouts for clients that send it too slowly. Registered
 * inside each ingest plugin's scope.
 */
export interface BodyGuardOptions {
  admission: Admission;
  maxBodyBytes: number;
  /** The whole body must arrive within this time. */
  bodyTimeoutMs: number;
  /** The body must never pause longer than this. */
  bodyIdleTimeoutMs: number;
  /** The Content-Types the routes read (as raw bytes). */
  contentTypes: string[];
}

declare module 'fastify' {
  interface FastifyRequest {
    admissionTicket?: AdmissionTicket;
  }
}

function contentLength(request: FastifyRequest): number | undefined {
  const header = request.headers['content-length'];
  if (header === undefined) return undefined;
  const n = Number(header);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

export function guardBodies(app: FastifyInstance, options: BodyGuardOptions): void {
  const { admission } = options;
  // Bodies arrive as raw bytes; gzip is undone by the handler (decodeBody), JSON parsed by it.
  app.addContentTypeParser(
    options.contentTypes,
    { parseAs: 'buffer', bodyLimit: options.maxBodyBytes },
    (_request, body, done) => done(null, body),
  );

  app.addHook('onRequest', async (request, reply) => {
    if (request.method !== 'POST') return;
    const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (!options.contentTypes.includes(type)) {
      reply.header('connection', 'close');
      throw new HttpError(
        415,
        'INVALID_ARGUMENT',
        `unsupported Content-Type ${type || '(none)'}: send ${options.contentTypes.join(' or ')}`,
      );
    }
    const announced = contentLength(request);
    if (announced !== undefined && announced > options.maxBodyBytes) {
      reply.header('connection', 'close');
      throw tooLarge(options.maxBodyBytes);
    }
    const admitted = admission.admit(announced ?? 0);
    if (!admitted.ok) {
      reply.header('connection', 'close');
      throw unavailable(
        `${admitted.reason}: retry after ${admitted.retryAfterSeconds} s`,
        admitted.retryAfterSeconds,
      );
    }
    request.admissionTicket = admitted.ticket;
    // 'close' comes after the answer is sent and after an aborted request alike.
    reply.raw.once('close', () => admission.release(admitted.ticket));
  });

  app.addHook('preParsing', async (request, reply, payload) => {
    const ticket = request.admissionTicket;
    if (!ticket) return payload;
    const counted = contentLength(request) === undefined;
    let received = 0;
    const guard = new Transform({
      transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
        received += chunk.length;
        // Declared below; chunks only flow once the pipe starts, after it is set.
        idle.refresh();
        if (counted && ticket && !admission.grow(ticket, chunk.length)) {
          callback(unavailable('the collector is receiving too many bytes of requests already', 1));
          return;
        }
        callback(null, chunk);
      },
    });
    const timeout = (what: string, ms: number) => () => {
      reply.header('connection', 'close');
      guard.destroy(
        new HttpError(
          408,
          'DEADLINE_EXCEEDED',
          `${what} (${ms} ms, ${received} bytes received): send the body at once, or raise ` +
            (what.startsWith('the body paused')
              ? 'ROUTEWATCH_BODY_IDLE_TIMEOUT'
              : 'ROUTEWATCH_BODY_TIMEOUT'),
        ),
      );
    };
    const total = setTimeout(
      timeout('the body did not arrive in time', options.bodyTimeoutMs),
      options.bodyTimeoutMs,
    );
    const idle = setTimeout(
      timeout('the body paused too long', options.bodyIdleTimeoutMs),
      options.bodyIdleTimeoutMs,
    );
    const stop = () => {
      clearTimeout(total);
      clearTimeout(idle);
    };
    guard.once('end', stop);
    guard.once('close', stop);
    payload.once('error', (error) => guard.destroy(error));
    payload.pipe(guard);
    return guard;
  });
}

/** Undoes `Content-Encoding` (gzip or none), within the body limit; off the event loop. */
export async function decodeBody(
  request: FastifyRequest,
  body: Buffer,
  maxBodyBytes: number,
): Promise<Buffer> {
  const encoding = (request.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding === 'identity' || encoding === '') return body;
  if (encoding !== 'gzip') {
    throw new HttpError(
      415,
      'INVALID_ARGUMENT',
      `unsupported Content-Encoding ${encoding}: use gzip or none`,
    );
  }
  return new Promise((resolve, reject) => {
    gunzip(body, { maxOutputLength: maxBodyBytes }, (error, result) => {
      if (!error) return resolve(result);
      if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        return reject(tooLarge(maxBodyBytes, 'the decompressed body'));
      }
      reject(badRequest(`the body is not valid gzip: ${error.message}`));
    });
  });
}
