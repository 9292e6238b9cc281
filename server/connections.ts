import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** How long a connection without a request in flight may still finish one once the close began. */
export const CLOSE_GRACE_MS = 5_000;

/**
 * Lets a closing server end the connections that carry no request, so that its close waits only
 * for the requests in flight. Node's own `closeIdleConnections()` ends a kept-alive connection
 * between requests, but not one that has sent nothing yet (a browser's preconnect, a load
 * balancer's TCP check) nor one stalled inside its headers: Node counts both as a request whose
 * headers are late, and stops checking for late headers once the close began. Either kept a
 * shutdown waiting until its client went away. Nothing on such a connection was acknowledged.
 *
 * Once `closing()` is called, a connection that has sent nothing is ended at once; one that
 * is part way into a request gets `graceMs` to finish it (it is then answered 503, shutting down).
 */
export class ConnectionTracker {
  private readonly inFlight = new Map<Socket, number>();
  private readonly listeners = new Set<() => void>();
  private isClosing = false;

  constructor(
    server: Server,
    private readonly graceMs = CLOSE_GRACE_MS,
  ) {
    server.on('connection', (socket: Socket) => {
      this.inFlight.set(socket, 0);
      socket.once('close', () => this.inFlight.delete(socket));
      if (this.isClosing) this.endIfQuiet(socket, this.graceMs);
    });
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      const socket = request.socket;
      this.inFlight.set(socket, (this.inFlight.get(socket) ?? 0) + 1);
      response.once('close', () => {
        const n = this.inFlight.get(socket);
        if (n !== undefined) this.inFlight.set(socket, n - 1);
      });
    });
  }

  /** The close has begun: ends the connections that carry no request, now or after the grace. */
  closing(): void {
    if (this.isClosing) return;
    this.isClosing = true;
    for (const socket of this.inFlight.keys()) {
      this.endIfQuiet(socket, socket.bytesRead === 0 ? 0 : this.graceMs);
    }
    for (const listener of this.listeners) listener();
    this.listeners.clear();
  }

  /**
   * Calls `listener` when the close begins (at once if it has): the body guards then give a body
   * still arriving the same grace. Returns the way to stop listening.
   */
  onClosing(listener: () => void): () => void {
    if (this.isClosing) {
      listener();
      return () => undefined;
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Open connections (for tests and diagnostics). */
  get size(): number {
    return this.inFlight.size;
  }

  private endIfQuiet(socket: Socket, afterMs: number): void {
    const end = () => {
      if ((this.inFlight.get(socket) ?? 0) === 0) socket.destroy();
    };
    if (afterMs === 0) return end();
    const timer = setTimeout(end, afterMs);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  }
}
