/**
 * The OTLP/HTTP JSON receiver the variants export to, run as its own child process so its CPU is
 * not charged to the variant being measured. It reads each body, counts the spans per run (the
 * exporter URL carries `?run=<id>`), discards the body and answers `{}`. Listens on 127.0.0.1 only.
 *
 * IPC: sends `{ type: 'listening', port }` once; answers `{ type: 'counts', run }` with
 * `{ type: 'counts', run, spans, tagged, requests }`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

interface RunCounts {
  spans: number;
  tagged: number;
  /** Attributes over all spans: what each variant records per span differs a lot. */
  attributes: number;
  requests: number;
}

export type ReceiverRequest = { type: 'counts'; run: string };
export type ReceiverMessage =
  { type: 'listening'; port: number } | ({ type: 'counts'; run: string } & RunCounts);

const TAG_ATTRIBUTE = 'routewatch.cohort';

interface OtlpJsonTraces {
  resourceSpans?: {
    scopeSpans?: { spans?: { attributes?: { key?: string }[] }[] }[];
  }[];
}

function countSpans(body: OtlpJsonTraces): Omit<RunCounts, 'requests'> {
  let spans = 0;
  let tagged = 0;
  let attributes = 0;
  for (const resourceSpans of body.resourceSpans ?? []) {
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        spans += 1;
        attributes += span.attributes?.length ?? 0;
        if (span.attributes?.some((attribute) => attribute.key === TAG_ATTRIBUTE)) tagged += 1;
      }
    }
  }
  return { spans, tagged, attributes };
}

function main(): void {
  const counts = new Map<string, RunCounts>();
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const run = new URL(request.url ?? '/', 'http://127.0.0.1').searchParams.get('run') ?? '';
      const entry = counts.get(run) ?? { spans: 0, tagged: 0, attributes: 0, requests: 0 };
      entry.requests += 1;
      try {
        const found = countSpans(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        entry.spans += found.spans;
        entry.tagged += found.tagged;
        entry.attributes += found.attributes;
      } catch (error) {
        // A body we cannot read is a bench bug: say so, the run's span count will show it too.
        console.error(`receiver: unreadable OTLP body for run ${run}:`, error);
      }
      counts.set(run, entry);
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{}');
    });
  });
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    process.send?.({ type: 'listening', port } satisfies ReceiverMessage);
  });
  process.on('message', (message: ReceiverRequest) => {
    if (message.type !== 'counts') return;
    const entry = counts.get(message.run) ?? { spans: 0, tagged: 0, attributes: 0, requests: 0 };
    process.send?.({ type: 'counts', run: message.run, ...entry } satisfies ReceiverMessage);
  });
  process.on('disconnect', () => server.close(() => process.exit(0)));
}

main();
