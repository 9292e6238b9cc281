import { setMaxListeners } from 'node:events';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { fixedAnswer, seededAnswer } from './mock-answers.js';
import { FaultPlan } from './mock-faults.js';
import type { Fault, FaultRule } from './mock-faults.js';
import { findMockModel, resolveProfiles } from './mock-models.js';
import type { MockModel, ProfileOverrides } from './mock-models.js';
import { decideReply } from './mock-replies.js';
import type { MockError, MockMessage } from './mock-replies.js';
import {
  anthropicEvents,
  anthropicMessage,
  encodeSse,
  errorBody,
  openAiChatChunks,
  openAiChatCompletion,
  openAiEmbeddings,
  openAiResponse,
  openAiResponseEvents,
} from './mock-wire.js';
import type { Answer, SseEvent, WireFormat } from './mock-wire.js';

/**
 * The simulated LLM: the only simulated part of routewatch, used by the demo and the tests. A
 * local HTTP server speaking the OpenAI wire formats (chat completions, responses,
 * embeddings) and the Anthropic messages format, each as JSON or as server-sent events.
 *
 * - Catalog models (mock-models.ts) answer what mock-replies.ts decides from (seed, model,
 *   messages): deterministic, whatever the timing or arrival order.
 * - Any other model gets 404 `model_not_found`, or with `anyModel: true` the fixed answer of
 *   mock-answers.ts (`hello`, exact token counts), for tests that assert exact values.
 * - `faults` make chosen requests fail: an HTTP status (for the first K requests, with
 *   `retry-after`), a slow answer, a stream that stalls mid-way, or no answer at all.
 *
 * This file is the HTTP edge only; what is answered is decided by the pure modules it imports.
 */

export interface MockLlmOptions {
  /** Seed of the catalog models' replies; default 0. */
  seed?: number;
  /** Multiplies every simulated delay: 1 = realistic-ish (0.2–3 s a call), 0 = no delay. */
  latencyScale?: number;
  /** Interface to listen on; default 127.0.0.1. */
  host?: string;
  /** Port; default 0 (ephemeral). */
  port?: number;
  /** Changes to the default behaviour profiles (e.g. a degraded small model). */
  profiles?: ProfileOverrides;
  /** Answer models outside the catalog with the fixed answer instead of 404. Default false. */
  anyModel?: boolean;
  /** Fault rules, tried in order; the first that matches a request applies. */
  faults?: readonly FaultRule[];
  /** Keep every request in `received`. Default false: a long demo would hold every body. */
  recordRequests?: boolean;
}

export interface ReceivedRequest {
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  readonly model: string | undefined;
  readonly body: Record<string, unknown>;
}

export interface MockLlm {
  /** OpenAI base URL, e.g. `http://127.0.0.1:PORT/v1`. */
  url: string;
  /** Server origin, e.g. `http://127.0.0.1:PORT` (the Anthropic SDK's baseURL). */
  origin: string;
  /** HTTP requests received so far. */
  readonly requests: number;
  /** With `recordRequests`: the requests received, in order (clear it with `length = 0`). */
  readonly received: ReceivedRequest[];
  /** Replace the profile overrides from now on (the demo's "known degradation"). */
  setProfiles(overrides: ProfileOverrides): void;
  /** Replace the fault rules from now on; their counts start again. */
  setFaults(rules: readonly FaultRule[]): void;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 4 * 1024 * 1024;

const FORMAT_BY_PATH: Readonly<Record<string, WireFormat>> = {
  '/v1/chat/completions': 'openai-chat',
  '/v1/responses': 'openai-responses',
  '/v1/embeddings': 'openai-embeddings',
  '/v1/messages': 'anthropic',
};

const contentSchema = z
  .union([
    z.string(),
    z.array(z.looseObject({ type: z.string(), text: z.string().optional() })),
    z.null(),
  ])
  .optional();

const chatBodySchema = z.looseObject({
  model: z.string().min(1),
  messages: z.array(z.looseObject({ role: z.string(), content: contentSchema })).min(1),
  n: z.number().int().min(1).max(8).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
});

const responsesBodySchema = z.looseObject({
  model: z.string().min(1),
  input: z.union([
    z.string(),
    z.array(z.looseObject({ role: z.string().optional(), content: contentSchema })).min(1),
  ]),
  instructions: z.string().nullish(),
  stream: z.boolean().nullish(),
});

const embeddingsBodySchema = z.looseObject({
  model: z.string().min(1),
  input: z.union([z.string(), z.array(z.unknown()).min(1)]),
  encoding_format: z.enum(['float', 'base64']).optional(),
});

const anthropicBodySchema = z.looseObject({
  model: z.string().min(1),
  max_tokens: z.number().int().positive(),
  system: z
    .union([z.string(), z.array(z.looseObject({ type: z.string(), text: z.string().optional() }))])
    .optional(),
  messages: z
    .array(z.looseObject({ role: z.enum(['user', 'assistant']), content: contentSchema }))
    .min(1),
  stream: z.boolean().optional(),
});

type ContentInput = z.infer<typeof contentSchema>;

function textOf(content: ContentInput): string {
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return content;
  return content.map((part) => part.text ?? '').join('');
}

/** A request the simulator refuses, answered in the format's error shape. */
class MockHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details: { code?: string | null; param?: string | null } = {},
  ) {
    super(message);
  }
}

/** A parsed request, whatever its format. */
interface Request {
  readonly format: WireFormat;
  readonly model: string;
  readonly streamed: boolean;
  /** What the seeded replies read: the conversation as plain text. */
  readonly messages: MockMessage[];
  readonly includeUsage: boolean;
  readonly choices: number;
  readonly embeddingInputs: number;
  readonly encodingFormat: unknown;
}

export async function startMockLlm(options: MockLlmOptions = {}): Promise<MockLlm> {
  const seed = options.seed ?? 0;
  const latencyScale = options.latencyScale ?? 1;
  if (!Number.isFinite(latencyScale) || latencyScale < 0) {
    throw new RangeError(`latencyScale must be a finite number ≥ 0, got ${latencyScale}`);
  }
  let profiles = resolveProfiles(options.profiles);
  let faultPlan = new FaultPlan(options.faults);
  let requests = 0;
  const received: ReceivedRequest[] = [];
  const shutdown = new AbortController();
  // Every delayed reply listens on this signal; hundreds may be in flight.
  setMaxListeners(0, shutdown.signal);

  const server = createServer((req, res) => {
    requests += 1;
    handle(req, res).catch((error: unknown) => {
      if (shutdown.signal.aborted) {
        res.destroy();
        return;
      }
      // Only a bug in the simulator lands here; answer like the provider would rather than hang.
      const message = error instanceof Error ? error.message : String(error);
      if (!res.headersSent) sendJson(res, 500, errorBody('openai-chat', 500, message));
      else res.end();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const format = FORMAT_BY_PATH[path];
    const errorFormat: WireFormat = format ?? 'openai-chat';
    try {
      if (req.method === 'GET' && path === '/v1/models') {
        sendJson(res, 200, modelList());
        return;
      }
      if (req.method !== 'POST' || format === undefined) {
        throw new MockHttpError(404, `Invalid URL (${req.method ?? '?'} ${path})`);
      }
      const body = await readJson(req);
      const model = typeof body['model'] === 'string' ? body['model'] : undefined;
      if (options.recordRequests === true) {
        received.push({ method: req.method, path, model, body });
      }
      const fault = faultPlan.next({ model, path });
      if (fault?.kind === 'hang') return; // close() or the client's timeout ends it
      if (fault?.kind === 'status') {
        sendFault(res, format, fault.status, fault);
        return;
      }
      if (fault?.kind === 'slow') {
        await delay(fault.delayMs);
        if (res.destroyed) return;
      }
      await serve(parseRequest(format, body), res, fault?.kind === 'stall' ? fault : undefined);
    } catch (error) {
      if (!(error instanceof MockHttpError)) throw error;
      sendJson(
        res,
        error.status,
        errorBody(errorFormat, error.status, error.message, error.details),
      );
    }
  }

  async function serve(
    request: Request,
    res: ServerResponse,
    stall: Extract<Fault, { kind: 'stall' }> | undefined,
  ): Promise<void> {
    const answer = await answerFor(request, res);
    if (answer === undefined) return;
    const headers = answer.headers(request.format);
    switch (request.format) {
      case 'openai-chat':
        if (request.streamed) {
          const events = openAiChatChunks(answer, request.includeUsage);
          await sendEvents(res, events, headers, { done: true, stall });
        } else sendJson(res, 200, openAiChatCompletion(answer, request.choices), headers);
        return;
      case 'openai-responses':
        if (request.streamed) {
          await sendEvents(res, openAiResponseEvents(answer), headers, { done: false, stall });
        } else sendJson(res, 200, openAiResponse(answer, false), headers);
        return;
      case 'openai-embeddings':
        sendJson(
          res,
          200,
          openAiEmbeddings(answer, request.embeddingInputs, request.encodingFormat),
          headers,
        );
        return;
      case 'anthropic':
        if (request.streamed) {
          await sendEvents(res, anthropicEvents(answer), headers, { done: false, stall });
        } else sendJson(res, 200, anthropicMessage(answer), headers);
        return;
    }
  }

  /**
   * The answer to a request after its simulated delay; undefined when a seeded error was sent
   * instead. Catalog models have no embeddings: those are the fixed answer's alone.
   */
  async function answerFor(request: Request, res: ServerResponse): Promise<Answer | undefined> {
    const api = request.format === 'anthropic' ? 'anthropic' : 'openai';
    const model =
      request.format === 'openai-embeddings' ? undefined : findMockModel(request.model, api);
    if (model === undefined) {
      if (options.anyModel === true) return fixedAnswer(request.model);
      throw request.format === 'anthropic'
        ? new MockHttpError(404, `model: ${request.model}`)
        : new MockHttpError(
            404,
            `The model \`${request.model}\` does not exist or you do not have access to it.`,
            { code: 'model_not_found' },
          );
    }
    const reply = decideReply({ seed, model, messages: request.messages, profiles, latencyScale });
    await delay(reply.delayMs);
    if (reply.kind === 'error') {
      sendSeededFailure(res, request.format, model, reply, latencyScale);
      return undefined;
    }
    return seededAnswer(model, reply);
  }

  /** A server-sent event stream; a stall fault waits after its `afterEvents`-th event. */
  async function sendEvents(
    res: ServerResponse,
    events: readonly SseEvent[],
    headers: Record<string, string>,
    opts: { done: boolean; stall: Extract<Fault, { kind: 'stall' }> | undefined },
  ): Promise<void> {
    if (res.destroyed) return;
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    for (const [index, event] of events.entries()) {
      if (res.destroyed) return;
      res.write(encodeSse(event));
      if (opts.stall !== undefined && index + 1 === opts.stall.afterEvents) {
        await delay(opts.stall.stallMs);
      }
    }
    if (!res.destroyed) res.end(opts.done ? 'data: [DONE]\n\n' : '');
  }

  async function delay(ms: number): Promise<void> {
    if (ms > 0) await sleep(ms, undefined, { signal: shutdown.signal });
  }

  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  return {
    url: `${origin}/v1`,
    origin,
    get requests() {
      return requests;
    },
    received,
    setProfiles(overrides) {
      profiles = resolveProfiles(overrides);
    },
    setFaults(rules) {
      faultPlan = new FaultPlan(rules);
    },
    close() {
      shutdown.abort();
      return new Promise<void>((resolve, reject) => {
        server.close((error) => (error === undefined ? resolve() : reject(error)));
        server.closeAllConnections();
      });
    },
  };
}

/** Validates the body of `format` and reduces it to what the simulator reads. */
function parseRequest(format: WireFormat, body: Record<string, unknown>): Request {
  const base = {
    format,
    includeUsage: false,
    choices: 1,
    embeddingInputs: 0,
    encodingFormat: undefined,
  };
  switch (format) {
    case 'openai-chat': {
      const request = check(chatBodySchema, body);
      return {
        ...base,
        model: request.model,
        streamed: request.stream === true,
        messages: request.messages.map((m) => ({ role: m.role, content: textOf(m.content) })),
        includeUsage: request.stream_options?.include_usage === true,
        choices: request.n ?? 1,
      };
    }
    case 'openai-responses': {
      const request = check(responsesBodySchema, body);
      const input =
        typeof request.input === 'string'
          ? [{ role: 'user', content: request.input }]
          : request.input.map((m) => ({ role: m.role ?? 'user', content: textOf(m.content) }));
      const system =
        typeof request.instructions === 'string'
          ? [{ role: 'system', content: request.instructions }]
          : [];
      return {
        ...base,
        model: request.model,
        streamed: request.stream === true,
        messages: [...system, ...input],
      };
    }
    case 'openai-embeddings': {
      const request = check(embeddingsBodySchema, body);
      return {
        ...base,
        model: request.model,
        streamed: false,
        messages: [],
        embeddingInputs: typeof request.input === 'string' ? 1 : request.input.length,
        encodingFormat: request.encoding_format,
      };
    }
    case 'anthropic': {
      const request = check(anthropicBodySchema, body);
      const system =
        request.system === undefined ? [] : [{ role: 'system', content: textOf(request.system) }];
      return {
        ...base,
        model: request.model,
        streamed: request.stream === true,
        messages: [
          ...system,
          ...request.messages.map((m) => ({ role: m.role, content: textOf(m.content) })),
        ],
      };
    }
  }
}

function check<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const param = issue === undefined ? null : issue.path.join('.');
  throw new MockHttpError(
    400,
    issue === undefined ? 'Invalid request' : `Invalid '${param}': ${issue.message}`,
    { code: 'invalid_value', param },
  );
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) {
      throw new MockHttpError(413, `request body exceeds ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(buffer);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new MockHttpError(
      400,
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)",
    );
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new MockHttpError(400, 'the request body must be a JSON object');
  }
  return body as Record<string, unknown>;
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.destroyed) return;
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
  });
  res.end(payload);
}

function sendFault(
  res: ServerResponse,
  format: WireFormat,
  status: number,
  fault: { retryAfterSeconds?: number; message?: string },
): void {
  const message = fault.message ?? `simulated HTTP ${status}`;
  sendJson(res, status, errorBody(format, status, message), {
    'x-request-id': 'req-fault',
    ...(fault.retryAfterSeconds === undefined
      ? {}
      : { 'retry-after': String(fault.retryAfterSeconds) }),
  });
}

/**
 * A catalog model's seeded 429 or 500, worded as the provider words it. The same request fails the
 * same way again, so the SDK's own retries of it (`maxRetries`) fail too: each is one call of
 * several HTTP requests. `retry-after-ms` (which the OpenAI and Anthropic SDKs prefer to
 * `retry-after`) follows the simulated clock: a second to wait on a 429 and half of one on a 500 at
 * `latencyScale` 1, a millisecond at 0, so tests pay no real back-off.
 */
function sendSeededFailure(
  res: ServerResponse,
  format: WireFormat,
  model: MockModel,
  reply: MockError,
  latencyScale: number,
): void {
  const rateLimited = reply.status === 429;
  const retryAfterMs = String(Math.max(1, Math.round((rateLimited ? 1000 : 500) * latencyScale)));
  if (format === 'anthropic') {
    const message = rateLimited
      ? 'Number of requests has exceeded your rate limit'
      : 'Internal server error';
    sendJson(res, reply.status, errorBody(format, reply.status, message), {
      'request-id': `req_${reply.hash.slice(0, 24)}`,
      ...(rateLimited ? { 'retry-after': '1' } : {}),
      'retry-after-ms': retryAfterMs,
    });
    return;
  }
  const headers = {
    'x-request-id': `req_${reply.hash.slice(0, 32)}`,
    'retry-after-ms': retryAfterMs,
  };
  if (rateLimited) {
    const message = `Rate limit reached for ${model.id} on requests per min (RPM): Limit 500. Please try again in 1s. (simulated)`;
    sendJson(res, 429, errorBody(format, 429, message), {
      ...headers,
      'retry-after': '1',
      'x-ratelimit-limit-requests': '500',
    });
    return;
  }
  const message =
    'The server had an error while processing your request. Sorry about that! (simulated)';
  sendJson(res, 500, errorBody(format, 500, message), headers);
}

function modelList(): object {
  const ids = ['gpt-4o-mini', 'gpt-4o'];
  return {
    object: 'list',
    data: ids.map((id) => ({ id, object: 'model', created: 1_715_367_049, owned_by: 'system' })),
  };
}
