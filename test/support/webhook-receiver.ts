import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local HTTP server standing in for a Slack incoming webhook (or any JSON webhook): it records
 * each request and answers what the test scripts — 200 by default, or a queued sequence of
 * statuses such as 429 with Retry-After, or 500.
 */
export interface ReceivedRequest {
  at: number;
  body: unknown;
  status: number;
  headers: IncomingHttpHeaders;
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

export interface WebhookReceiver {
  url: string;
  requests: ReceivedRequest[];
  /** Requests answered 2xx: the messages delivered. */
  delivered(): unknown[];
  /** Answers for the next requests, in order; after them, `fallback`. */
  script(answers: Answer[]): void;
  /** The answer once the script is used up. */
  fallback: Answer;
  /** When set, answers each request by its parsed body (before the script and the fallback). */
  answerBy?: ((body: unknown, headers: IncomingHttpHeaders) => Answer | undefined) | undefined;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const requests: ReceivedRequest[] = [];
  let queue: Answer[] = [];
  const receiver: WebhookReceiver = {
    url: '',
    requests,
    delivered: () => requests.filter((r) => r.status >= 200 && r.status < 300).map((r) => r.body),
    script(answers) {
      queue = [...answers];
    },
    fallback: { status: 200, body: 'ok' },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = Buffer.concat(chunks).toString('utf8');
      }
      const answer = receiver.answerBy?.(body, req.headers) ?? queue.shift() ?? receiver.fallback;
      requests.push({ at: Date.now(), body, status: answer.status, headers: req.headers });
      res.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers });
      res.end(answer.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/services/T000/B000/XXXX`;
  return receiver;
}
