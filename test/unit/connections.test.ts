import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ConnectionTracker } from '../../server/connections.js';

describe('a closing server', () => {
  it('lets a request in flight for longer than the grace finish, and answers it', async () => {
    const graceMs = 200;
    let arrived: () => void = () => undefined;
    const inFlight = new Promise<void>((resolve) => (arrived = resolve));
    const server = createServer((request, response) => {
      arrived();
      let bytes = 0;
      request.on('data', (chunk: Buffer) => (bytes += chunk.length));
      request.on('end', () => response.end(`got ${bytes}`));
    });
    const tracker = new ConnectionTracker(server, graceMs);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;

    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    // Headers complete, half the body sent: the request is in flight once the server has parsed
    // its headers (waited for, not slept on: a connection the server has read nothing from yet is
    // ended at once by closing()).
    socket.write('POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345');
    await inFlight;

    tracker.closing();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // The rest of the body comes well after the grace: the request is not cut.
    await new Promise((resolve) => setTimeout(resolve, graceMs * 3));
    expect(socket.destroyed).toBe(false);
    socket.end('67890');
    await closed;
    await ended;
    expect(answer).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(answer).toMatch(/got 10$/);
    expect(tracker.size).toBe(0);
  });
});
