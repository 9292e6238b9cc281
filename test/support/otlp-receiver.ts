import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A bare OTLP/HTTP receiver on an ephemeral loopback port, to look at what an exporter sends:
 * it keeps every `/v1/traces` request and answers `{}` to everything (an app's own NodeSDK may
 * export logs or metrics too). JSON exports can be read back as spans.
 */

export interface ReceivedExport {
  contentType: string | undefined;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A span of an OTLP/JSON export, its attributes flattened to plain values. */
export interface ExportedSpan {
  name: string;
  /** The instrumentation scope's name. */
  scope: string;
  /** `service.name` of the span's resource. */
  service: unknown;
  attributes: Record<string, unknown>;
}

export interface OtlpReceiver {
  /** Origin, e.g. `http://127.0.0.1:PORT`: what `OTEL_EXPORTER_OTLP_ENDPOINT` takes. */
  url: string;
  /** The traces requests received, in order. */
  readonly exports: ReceivedExport[];
  /** The path of every request received, traces or not, in order. */
  readonly paths: string[];
  /** Every span of the JSON exports received so far, in order. */
  spans(): ExportedSpan[];
  clear(): void;
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const exports: ReceivedExport[] = [];
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(req.url ?? '');
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.url === '/v1/traces') {
        exports.push({
          contentType: req.headers['content-type'],
          headers: req.headers,
          body: Buffer.concat(chunks),
        });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    exports,
    paths,
    spans: () =>
      exports
        .filter((received) => received.contentType?.startsWith('application/json') === true)
        .flatMap((received) => spansOf(JSON.parse(received.body.toString('utf8')) as OtlpJson)),
    clear: () => {
      exports.length = 0;
      paths.length = 0;
    },
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

interface OtlpAnyValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: OtlpAnyValue[] };
}
interface OtlpKeyValue {
  key: string;
  value: OtlpAnyValue;
}
interface OtlpJson {
  resourceSpans?: {
    resource?: { attributes?: OtlpKeyValue[] };
    scopeSpans?: {
      scope?: { name?: string };
      spans?: { name: string; attributes?: OtlpKeyValue[] }[];
    }[];
  }[];
}

function valueOf(value: OtlpAnyValue): unknown {
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.arrayValue !== undefined) return (value.arrayValue.values ?? []).map(valueOf);
  return undefined;
}

function attributesOf(attributes: OtlpKeyValue[] | undefined): Record<string, unknown> {
  return Object.fromEntries((attributes ?? []).map(({ key, value }) => [key, valueOf(value)]));
}

function spansOf(body: OtlpJson): ExportedSpan[] {
  return (body.resourceSpans ?? []).flatMap((resourceSpans) => {
    const service = attributesOf(resourceSpans.resource?.attributes)['service.name'];
    return (resourceSpans.scopeSpans ?? []).flatMap((scopeSpans) =>
      (scopeSpans.spans ?? []).map((span) => ({
        name: span.name,
        scope: scopeSpans.scope?.name ?? '',
        service,
        attributes: attributesOf(span.attributes),
      })),
    );
  });
}
