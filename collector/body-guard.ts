import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { gunzip } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError, badRequest, refused, tooLarge } from '../server/http-error.js';
import { CLOSE_GRACE_MS } from '../server/connections.js';
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
  /**
   * Says when the server began to close: a body still arriving then gets `closeGraceMs` more,
   * not the rest of `bodyTimeoutMs`, so that one client sending slowly does not hold a shutdown
   * for as long as that (past an orchestrator's grace period, which would kill the drain).
   */
  closing?: { onClosing(listener: () => void): () => void };
  closeGraceMs?: number;
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

/** How long the rest of a refused request's body is still read, and thrown away. */
export const LINGER_MS = 5_000;

/**
 * Readies an answer given before the request's body is read (415, 413, 503). Closing the
 * connection with it would leave the unread body in the socket: the kernel then resets the
 * connection, and a client still sending (an exporter posts its whole body without waiting) sees
 * ECONNRESET or EPIPE instead of the answer and its Retry-After. So the connection stays open:
 * Node reads the rest of the body and throws it away, and a client still sending LINGER_MS after
 * the answer is cut off. A client that asked to send only after `100 Continue` has sent no body
 * (the app writes 100 once every check passed): its connection is closed with the answer.
 */
export function refuseBeforeBody(request: FastifyRequest, reply: FastifyReply): void {
  if (expectsContinue(request)) {
    reply.header('connection', 'close');
    return;
  }
  const raw = request.raw;
  reply.raw.once('finish', () => {
    if (raw.complete) return;
    // Destroying an incomplete request destroys its socket; a request injected by a test has a
    // socket without destroy(), which would throw here.
    const cutOff = setTimeout(() => raw.destroy(), LINGER_MS);
    cutOff.unref();
    raw.once('end', () => clearTimeout(cutOff));
    raw.once('close', () => clearTimeout(cutOff));
  });
}

/** Whether the client waits for `100 Continue` before it sends the body. */
export function expectsContinue(request: FastifyRequest): boolean {
  return (request.headers.expect ?? '').toLowerCase() === '100-continue';
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
    const header = request.headers['content-type'] ?? '';
    const type = header.split(';')[0]!.trim().toLowerCase();
    if (!options.contentTypes.includes(type)) {
      refuseBeforeBody(request, reply);
      throw new HttpError(
        415,
        'INVALID_ARGUMENT',
        `unsupported Content-Type ${type || '(none)'}: send ${options.contentTypes.join(' or ')}`,
      );
    }
    // JSON is read as UTF-8 (RFC 8259); a body declared in another charset would be misread.
    const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(header)?.[1]?.toLowerCase();
    if (type === 'application/json' && charset && charset !== 'utf-8' && charset !== 'utf8') {
      refuseBeforeBody(request, reply);
      throw new HttpError(
        415,
        'INVALID_ARGUMENT',
        `unsupported charset ${charset}: send JSON as UTF-8`,
      );
    }
    // Checked before the body is read, as the type is: a body in an encoding that cannot be
    // undone would be received (up to the size limit) and admitted only to be refused.
    const encodingRefusal = unsupportedEncoding(request);
    if (encodingRefusal) {
      refuseBeforeBody(request, reply);
      throw encodingRefusal;
    }
    const announced = contentLength(request);
    if (announced !== undefined && announced > options.maxBodyBytes) {
      refuseBeforeBody(request, reply);
      throw tooLarge(options.maxBodyBytes);
    }
    const admitted = admission.admit(announced ?? 0);
    if (!admitted.ok) {
      refuseBeforeBody(request, reply);
      throw refused(
        'overloaded',
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
        admission.receiving(ticket, chunk.length);
        // Declared below; chunks only flow once the pipe starts, after it is set.
        idle.refresh();
        if (counted && ticket && !admission.grow(ticket, chunk.length)) {
          callback(
            refused(
              'overloaded',
              'the collector is receiving too many bytes of requests already',
              1,
            ),
          );
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
    const startedAt = Date.now();
    let total = setTimeout(
      timeout('the body did not arrive in time', options.bodyTimeoutMs),
      options.bodyTimeoutMs,
    );
    const graceMs = options.closeGraceMs ?? CLOSE_GRACE_MS;
    const stopListening = options.closing?.onClosing(() => {
      // A grace shortens the body's time, never lengthens it.
      if (startedAt + options.bodyTimeoutMs - Date.now() <= graceMs) return;
      clearTimeout(total);
      total = setTimeout(() => {
        reply.header('connection', 'close');
        guard.destroy(
          refused(
            'shutting down',
            `the collector is shutting down, and the body was still arriving ${graceMs} ms later (${received} bytes received): send it again`,
            1,
          ),
        );
      }, graceMs);
    });
    const idle = setTimeout(
      timeout('the body paused too long', options.bodyIdleTimeoutMs),
      options.bodyIdleTimeoutMs,
    );
    const stop = () => {
      clearTimeout(total);
      clearTimeout(idle);
      stopListening?.();
      // Received (or never to be): no longer work on its way.
      admission.arrived(ticket);
    };
    guard.once('end', stop);
    guard.once('close', stop);
    // The guard can outlive its reader: past the body limit Fastify answers 413 and stops reading
    // without destroying the stream, which then stalls. An error after that has no one to go to:
    // it must not be an unhandled 'error' event, which would stop the process.
    guard.on('error', () => undefined);
    // Once the answer is out, the timers have nothing left to guard. (Fastify answers a body it
    // stopped reading with `connection: close`, so Node closes the socket and the rest of the body
    // goes with it.)
    reply.raw.once('close', () => {
      stop();
      if (payload.readableEnded || payload.destroyed) return;
      payload.unpipe(guard);
      guard.destroy();
    });
    payload.once('error', (error) => guard.destroy(error));
    payload.pipe(guard);
    return guard;
  });
}

const contentEncodingOf = (request: FastifyRequest) =>
  (request.headers['content-encoding'] ?? 'identity').trim().toLowerCase();

/** The 415 for a `Content-Encoding` other than gzip (x-gzip is gzip, RFC 9110, 8.4.1.3) or none. */
function unsupportedEncoding(request: FastifyRequest): HttpError | undefined {
  const encoding = contentEncodingOf(request);
  if (['identity', '', 'gzip', 'x-gzip'].includes(encoding)) return undefined;
  return new HttpError(
    415,
    'INVALID_ARGUMENT',
    `unsupported Content-Encoding ${encoding}: use gzip or none`,
  );
}

/** Undoes `Content-Encoding` (gzip or none), within the body limit; off the event loop. */
export async function decodeBody(
  request: FastifyRequest,
  body: Buffer,
  maxBodyBytes: number,
): Promise<Buffer> {
  const refusal = unsupportedEncoding(request);
  if (refusal) throw refusal;
  // An empty body is empty in any encoding.
  const encoding = contentEncodingOf(request);
  if (encoding === 'identity' || encoding === '' || body.length === 0) return body;
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
