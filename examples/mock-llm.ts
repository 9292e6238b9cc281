import { setMaxListeners } from 'node:events';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { findMockModel, resolveProfiles } from './mock-models.js';
import type { BehaviourProfiles, MockModel, ProfileOverrides } from './mock-models.js';
import { decideReply } from './mock-replies.js';
import type { MockCompletion, MockMessage, MockReply } from './mock-replies.js';

/**
 * The local mock LLM: the only simulated part of routewatch. It speaks the OpenAI chat
 * completions wire format (`POST /v1/chat/completions`, plain and streaming) and the Anthropic
 * messages format (`POST /v1/messages`, plain). What it answers is decided by mock-replies.ts
 * from (seed, model, messages); this file is only the HTTP edge.
 */

export interface MockLlmOptions {
  seed: number;
  /** Multiplies every simulated delay: 1 = realistic-ish (0.2–3 s a call), 0 = no delay. */
  latencyScale?: number;
  /** Interface to listen on; default 127.0.0.1. */
  host?: string;
  /** Port; default 0 (ephemeral). */
  port?: number;
  /** Changes to the default behaviour profiles (e.g. a degraded small model). */
  profiles?: ProfileOverrides;
}

export interface MockLlm {
  /** OpenAI base URL, e.g. `http://127.0.0.1:PORT/v1`. */
  url: string;
  /** Server origin, e.g. `http://127.0.0.1:PORT` (the Anthropic SDK's baseURL). */
  origin: string;
  /** HTTP requests received so far. */
  readonly requests: number;
  /** Replace the profile overrides from now on (the demo's "known degradation"). */
  setProfiles(overrides: ProfileOverrides): void;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 4 * 1024 * 1024;

const contentSchema = z
  .union([
    z.string(),
    z.array(z.looseObject({ type: z.string(), text: z.string().optional() })),
    z.null(),
  ])
  .optional();

const openAiBodySchema = z.looseObject({
  model: z.string().min(1),
  messages: z.array(z.looseObject({ role: z.string(), content: contentSchema })).min(1),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
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

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

export async function startMockLlm(options: MockLlmOptions): Promise<MockLlm> {
  const latencyScale = options.latencyScale ?? 1;
  if (!Number.isFinite(latencyScale) || latencyScale < 0) {
    throw new RangeError(`latencyScale must be a finite number ≥ 0, got ${latencyScale}`);
  }
  let profiles = resolveProfiles(options.profiles);
  let requests = 0;
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
      // Only a bug in the mock lands here; answer like the provider would rather than hang.
      const message = error instanceof Error ? error.message : String(error);
      if (!res.headersSent) sendJson(res, 500, openAiError('server_error', message));
      else res.end();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const isAnthropic = path === '/v1/messages';
    try {
      if (req.method === 'GET' && path === '/v1/models') {
        sendJson(res, 200, modelList());
        return;
      }
      if (req.method !== 'POST' || (path !== '/v1/chat/completions' && !isAnthropic)) {
        throw new HttpError(
          404,
          'invalid_request_error',
          `Invalid URL (${req.method ?? '?'} ${path})`,
        );
      }
      const body = await readJson(req);
      if (isAnthropic) await serveAnthropic(body, res);
      else await serveOpenAi(body, res);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      if (isAnthropic) sendJson(res, error.status, anthropicError(error.type, error.message));
      else
        sendJson(
          res,
          error.status,
          openAiError(error.type, error.message, error.code, error.param),
        );
    }
  }

  async function serveOpenAi(body: unknown, res: ServerResponse): Promise<void> {
    const parsed = openAiBodySchema.safeParse(body);
    if (!parsed.success) throw invalidRequest(parsed.error);
    const request = parsed.data;
    const model = findMockModel(request.model, 'openai');
    if (model === undefined) {
      throw new HttpError(
        404,
        'invalid_request_error',
        `The model \`${request.model}\` does not exist or you do not have access to it.`,
        'model_not_found',
      );
    }
    const messages = request.messages.map((m) => ({ role: m.role, content: textOf(m.content) }));
    const reply = decide(model, messages, profiles);
    await delay(reply.delayMs);
    if (reply.kind === 'error') {
      sendOpenAiFailure(res, reply.status, model, reply.hash);
      return;
    }
    const headers = {
      'x-request-id': `req_${reply.hash.slice(0, 32)}`,
      'openai-processing-ms': String(Math.round(reply.delayMs)),
    };
    if (request.stream === true) {
      streamOpenAi(res, model, reply, request.stream_options?.include_usage === true, headers);
      return;
    }
    sendJson(res, 200, openAiCompletion(model, reply), headers);
  }

  function streamOpenAi(
    res: ServerResponse,
    model: MockModel,
    reply: MockCompletion,
    includeUsage: boolean,
    headers: Record<string, string>,
  ): void {
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    const base = {
      id: `chatcmpl-${reply.hash.slice(0, 29)}`,
      object: 'chat.completion.chunk',
      created: reply.created,
      model: model.servedAs,
      service_tier: 'default',
      system_fingerprint: 'fp_routewatch_mock',
      ...(includeUsage ? { usage: null } : {}),
    };
    const pieces = reply.content.match(/[\s\S]{1,16}/g) ?? [];
    const chunk = (delta: object, finishReason: string | null): object => ({
      ...base,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    });
    const write = (data: object): void => {
      res.write(`data: ${JSON.stringify(data)}\n\n`);
    };
    write(chunk({ role: 'assistant', content: '', refusal: null }, null));
    for (const piece of pieces) {
      // The whole delay was spent before the first byte; pieces follow without waiting.
      write(chunk({ content: piece }, null));
    }
    write(chunk({}, 'stop'));
    if (includeUsage) write({ ...base, choices: [], usage: openAiUsage(reply) });
    res.end('data: [DONE]\n\n');
  }

  async function serveAnthropic(body: unknown, res: ServerResponse): Promise<void> {
    const parsed = anthropicBodySchema.safeParse(body);
    if (!parsed.success) throw invalidRequest(parsed.error);
    const request = parsed.data;
    if (request.stream === true) {
      throw new HttpError(
        400,
        'invalid_request_error',
        'stream: the simulator does not stream messages',
      );
    }
    const model = findMockModel(request.model, 'anthropic');
    if (model === undefined) {
      throw new HttpError(404, 'not_found_error', `model: ${request.model}`);
    }
    const system =
      request.system === undefined ? [] : [{ role: 'system', content: textOf(request.system) }];
    const messages = [
      ...system,
      ...request.messages.map((m) => ({ role: m.role, content: textOf(m.content) })),
    ];
    const reply = decide(model, messages, profiles);
    await delay(reply.delayMs);
    const headers = { 'request-id': `req_${reply.hash.slice(0, 24)}` };
    if (reply.kind === 'error') {
      const type = reply.status === 429 ? 'rate_limit_error' : 'api_error';
      const message =
        reply.status === 429
          ? 'Number of requests has exceeded your rate limit'
          : 'Internal server error';
      sendJson(res, reply.status, anthropicError(type, message), {
        ...headers,
        ...(reply.status === 429 ? { 'retry-after': '1' } : {}),
      });
      return;
    }
    sendJson(
      res,
      200,
      {
        id: `msg_${reply.hash.slice(0, 24)}`,
        type: 'message',
        role: 'assistant',
        model: model.servedAs,
        content: [{ type: 'text', text: reply.content }],
        stop_reason: 'end_turn',
        stop_sequence: null,
        usage: {
          input_tokens: reply.usage.inputTokens,
          output_tokens: reply.usage.outputTokens,
          cache_creation_input_tokens: 0,
          cache_read_input_tokens: 0,
        },
      },
      headers,
    );
  }

  async function delay(ms: number): Promise<void> {
    if (ms > 0) await sleep(ms, undefined, { signal: shutdown.signal });
  }

  function decide(
    model: MockModel,
    messages: MockMessage[],
    current: BehaviourProfiles,
  ): MockReply {
    return decideReply({ seed: options.seed, model, messages, profiles: current, latencyScale });
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
    setProfiles(overrides) {
      profiles = resolveProfiles(overrides);
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

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) {
      throw new HttpError(
        413,
        'invalid_request_error',
        `request body exceeds ${MAX_BODY_BYTES} bytes`,
      );
    }
    chunks.push(buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new HttpError(
      400,
      'invalid_request_error',
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)",
    );
  }
}

function invalidRequest(error: z.ZodError): HttpError {
  const issue = error.issues[0];
  const param = issue === undefined ? null : issue.path.join('.');
  return new HttpError(
    400,
    'invalid_request_error',
    issue === undefined ? 'Invalid request' : `Invalid '${param}': ${issue.message}`,
    'invalid_value',
    param,
  );
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

function openAiError(
  type: string,
  message: string,
  code: string | null = null,
  param: string | null = null,
): object {
  return { error: { message, type, param, code } };
}

function anthropicError(type: string, message: string): object {
  return { type: 'error', error: { type, message } };
}

function sendOpenAiFailure(
  res: ServerResponse,
  status: 429 | 500,
  model: MockModel,
  hash: string,
): void {
  const headers = { 'x-request-id': `req_${hash.slice(0, 32)}` };
  if (status === 429) {
    sendJson(
      res,
      429,
      openAiError(
        'requests',
        `Rate limit reached for ${model.id} on requests per min (RPM): Limit 500. Please try again in 1s. (simulated)`,
        'rate_limit_exceeded',
      ),
      { ...headers, 'retry-after': '1', 'x-ratelimit-limit-requests': '500' },
    );
    return;
  }
  sendJson(
    res,
    500,
    openAiError(
      'server_error',
      'The server had an error while processing your request. Sorry about that! (simulated)',
    ),
    headers,
  );
}

function openAiUsage(reply: MockCompletion): object {
  return {
    prompt_tokens: reply.usage.inputTokens,
    completion_tokens: reply.usage.outputTokens,
    total_tokens: reply.usage.inputTokens + reply.usage.outputTokens,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

function openAiCompletion(model: MockModel, reply: MockCompletion): object {
  return {
    id: `chatcmpl-${reply.hash.slice(0, 29)}`,
    object: 'chat.completion',
    created: reply.created,
    model: model.servedAs,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: reply.content, refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: openAiUsage(reply),
    service_tier: 'default',
    system_fingerprint: 'fp_routewatch_mock',
  };
}

function modelList(): object {
  const ids = ['gpt-4o-mini', 'gpt-4o'];
  return {
    object: 'list',
    data: ids.map((id) => ({ id, object: 'model', created: 1_715_367_049, owned_by: 'system' })),
  };
}
