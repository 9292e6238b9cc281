import OpenAI, { NotFoundError, RateLimitError } from 'openai';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { costPerSuccessfulTask, stableTruth } from '../examples/ground-truth.js';
import type { GroundTruth } from '../examples/ground-truth.js';
import { startMockLlm } from '../examples/mock-llm.js';
import type { MockLlm } from '../examples/mock-llm.js';
import { DEFAULT_PROFILES, findMockModel } from '../examples/mock-models.js';
import { decideReply } from '../examples/mock-replies.js';
import { callCostUsd } from '../examples/pricing-truth.js';
import { MAX_MODEL_ATTEMPTS, runExampleService } from '../examples/support-service.js';
import { promptFor } from '../examples/support-tasks.js';
import type { TaggingApi, TaskOutcome } from '../examples/tagging.js';

const SEED = 42;

interface TaggingLog {
  tasks: Array<{
    cohort: string;
    policyVersion?: string;
    outcomes: Array<[TaskOutcome, string | undefined]>;
  }>;
  attempts: Array<{
    route: string;
    attempt?: number;
    fallbackReason?: string;
    validation?: string;
  }>;
}

/** A tagging API that records what the service tells it, standing in for the instrumentation. */
function recordingTagging(): { tagging: TaggingApi; log: TaggingLog } {
  const log: TaggingLog = { tasks: [], attempts: [] };
  let taskCount = 0;
  const tagging: TaggingApi = {
    runTask: async (opts, fn) => {
      const entry: TaggingLog['tasks'][number] = { ...opts, outcomes: [] };
      log.tasks.push(entry);
      taskCount += 1;
      return fn({
        taskId: `task-${taskCount}`,
        cohort: opts.cohort,
        setOutcome: (outcome, outcomeOpts) => entry.outcomes.push([outcome, outcomeOpts?.reason]),
      });
    },
    runAttempt: async (opts, fn) => {
      const entry: TaggingLog['attempts'][number] = { ...opts };
      log.attempts.push(entry);
      return fn({
        route: opts.route,
        attempt: opts.attempt ?? 1,
        setValidation: (result) => {
          entry.validation = result;
        },
        setConfidence: () => undefined,
      });
    },
  };
  return { tagging, log };
}

async function postJson(
  url: string,
  body: unknown,
): Promise<{ status: number; text: string; headers: Headers }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

const chatRequest = (
  content: string,
  model = 'gpt-4o-mini',
): ChatCompletionCreateParamsNonStreaming => ({
  model,
  messages: [
    { role: 'system', content: 'task-type: faq' },
    { role: 'user', content },
  ],
});

describe('mock LLM', () => {
  let mock: MockLlm;
  let client: OpenAI;
  beforeAll(async () => {
    mock = await startMockLlm({ seed: SEED, latencyScale: 0 });
    client = new OpenAI({ baseURL: mock.url, apiKey: 'test', maxRetries: 0 });
  });
  afterAll(async () => {
    await mock.close();
  });

  it('listens on an ephemeral loopback port and counts requests', async () => {
    expect(mock.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const before = mock.requests;
    await postJson(`${mock.url}/chat/completions`, chatRequest('count me'));
    expect(mock.requests).toBe(before + 1);
  });

  it('returns the same body for the same request', async () => {
    const first = await postJson(
      `${mock.url}/chat/completions`,
      chatRequest('How do I reset my password?'),
    );
    const second = await postJson(
      `${mock.url}/chat/completions`,
      chatRequest('How do I reset my password?'),
    );
    expect(first.status).toBe(200);
    expect(second.text).toBe(first.text);
    expect(second.headers.get('x-request-id')).toBe(first.headers.get('x-request-id'));
  });

  it('answers differently under another seed', async () => {
    const other = await startMockLlm({ seed: SEED + 1, latencyScale: 0 });
    try {
      const outcomes = async (url: string): Promise<string[]> =>
        Promise.all(
          Array.from({ length: 40 }, async (_, i) => {
            const reply = await postJson(`${url}/chat/completions`, chatRequest(`question ${i}`));
            if (reply.status !== 200) return `status ${reply.status}`;
            const body = JSON.parse(reply.text) as {
              choices: Array<{ message: { content: string } }>;
            };
            return body.choices[0]?.message.content ?? '';
          }),
        );
      const [mine, theirs] = [await outcomes(mock.url), await outcomes(other.url)];
      expect(mine).toEqual(await outcomes(mock.url));
      expect(theirs.filter((content, i) => content !== mine[i]).length).toBeGreaterThan(10);
    } finally {
      await other.close();
    }
  });

  it('speaks the chat completions format the openai SDK parses', async () => {
    const completion = await client.chat.completions.create(
      chatRequest('Where is my order?', 'gpt-4o'),
    );
    expect(completion.object).toBe('chat.completion');
    expect(completion.id).toMatch(/^chatcmpl-/);
    expect(completion.model).toBe('gpt-4o-2024-08-06');
    expect(completion.choices[0]?.finish_reason).toBe('stop');
    const answer = JSON.parse(completion.choices[0]?.message.content ?? '') as Record<
      string,
      unknown
    >;
    expect(answer).toHaveProperty('answer');
    expect(completion.usage?.prompt_tokens).toBeGreaterThan(600);
    expect(completion.usage?.total_tokens).toBe(
      (completion.usage?.prompt_tokens ?? 0) + (completion.usage?.completion_tokens ?? 0),
    );
  });

  it('streams the same reply as SSE chunks with a final usage chunk', async () => {
    const request = chatRequest('Can I add a second admin to my workspace?');
    const plain = await client.chat.completions.create(request);
    const stream = await client.chat.completions.create({
      ...request,
      stream: true,
      stream_options: { include_usage: true },
    });
    let content = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks += 1;
      content += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(chunks).toBeGreaterThan(3);
    expect(content).toBe(plain.choices[0]?.message.content);
    expect(usage).toEqual(plain.usage);
  });

  it('raises 429 and 500 replies as the SDK error classes, like the pure core decides', async () => {
    const model = findMockModel('gpt-4o-mini', 'openai');
    if (model === undefined) throw new Error('gpt-4o-mini is not simulated');
    const statusOf = (content: string): number => {
      const reply = decideReply({
        seed: SEED,
        model,
        messages: [
          { role: 'system', content: 'task-type: faq' },
          { role: 'user', content },
        ],
        profiles: DEFAULT_PROFILES,
        latencyScale: 0,
      });
      return reply.kind === 'error' ? reply.status : 200;
    };
    const probes = Array.from({ length: 2000 }, (_, i) => `probe ${i}`);
    const rateLimited = probes.find((content) => statusOf(content) === 429);
    const serverError = probes.find((content) => statusOf(content) === 500);
    if (rateLimited === undefined || serverError === undefined)
      throw new Error('no error in 2000 probes');
    // A few percent of calls fail, as configured.
    const failures = probes.filter((content) => statusOf(content) !== 200).length;
    expect(failures / probes.length).toBeGreaterThan(0.01);
    expect(failures / probes.length).toBeLessThan(0.06);

    const rateLimitError = await client.chat.completions
      .create(chatRequest(rateLimited))
      .catch((e: unknown) => e);
    expect(rateLimitError).toBeInstanceOf(RateLimitError);
    expect((rateLimitError as RateLimitError).headers.get('retry-after')).toBe('1');
    const serverErrorError = await client.chat.completions
      .create(chatRequest(serverError))
      .catch((e: unknown) => e);
    expect(serverErrorError).toBeInstanceOf(OpenAI.InternalServerError);
    expect(serverErrorError).not.toBeInstanceOf(RateLimitError);
  });

  it('rejects unknown models, unknown paths and bad bodies with OpenAI-style errors', async () => {
    const unknownModel = await client.chat.completions
      .create(chatRequest('hi', 'gpt-9'))
      .catch((e: unknown) => e);
    expect(unknownModel).toBeInstanceOf(NotFoundError);
    expect((unknownModel as NotFoundError).code).toBe('model_not_found');

    const unknownPath = await postJson(`${mock.url}/embeddings`, { model: 'gpt-4o', input: 'x' });
    expect(unknownPath.status).toBe(404);
    expect(JSON.parse(unknownPath.text)).toMatchObject({
      error: { type: 'invalid_request_error' },
    });

    const badJson = await postJson(`${mock.url}/chat/completions`, '{"model": "gpt-4o",');
    expect(badJson.status).toBe(400);
    expect(JSON.parse(badJson.text)).toMatchObject({ error: { type: 'invalid_request_error' } });

    const noMessages = await postJson(`${mock.url}/chat/completions`, { model: 'gpt-4o' });
    expect(noMessages.status).toBe(400);
    expect(JSON.parse(noMessages.text)).toMatchObject({ error: { param: 'messages' } });
  });

  it('speaks the Anthropic messages format', async () => {
    const request = {
      model: 'claude-3-5-haiku-latest',
      max_tokens: 512,
      system: 'task-type: faq',
      messages: [{ role: 'user', content: 'How do I reset my password?' }],
    };
    const reply = await postJson(`${mock.origin}/v1/messages`, request);
    expect(reply.status).toBe(200);
    const body = JSON.parse(reply.text) as {
      type: string;
      model: string;
      content: Array<{ type: string; text: string }>;
      usage: { input_tokens: number; output_tokens: number };
    };
    expect(body.type).toBe('message');
    expect(body.model).toBe('claude-3-5-haiku-20241022');
    expect(body.content[0]?.type).toBe('text');
    expect(body.usage.input_tokens).toBeGreaterThan(600);
    expect(body.usage.output_tokens).toBeGreaterThan(0);
    expect((await postJson(`${mock.origin}/v1/messages`, request)).text).toBe(reply.text);

    const unknown = await postJson(`${mock.origin}/v1/messages`, { ...request, model: 'gpt-4o' });
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.text)).toMatchObject({
      type: 'error',
      error: { type: 'not_found_error' },
    });
  });

  it('delays replies by the simulated latency and closes with requests in flight', async () => {
    const slow = await startMockLlm({ seed: SEED, latencyScale: 1 });
    const started = performance.now();
    const reply = await postJson(`${slow.url}/chat/completions`, chatRequest('slow one'));
    const elapsed = performance.now() - started;
    const simulated = Number(reply.headers.get('openai-processing-ms'));
    expect(simulated).toBeGreaterThan(100);
    expect(elapsed).toBeGreaterThanOrEqual(simulated - 5);

    // A large-model reply takes ≥ 0.8 s at latencyScale 1; close() must not wait for it.
    const inFlight = postJson(
      `${slow.url}/chat/completions`,
      chatRequest('never answered', 'gpt-4o'),
    ).catch((e: unknown) => e);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const closing = performance.now();
    await slow.close();
    expect(performance.now() - closing).toBeLessThan(500);
    expect(await inFlight).toBeInstanceOf(Error);
  });
});

describe('pricing truth', () => {
  it('prices served model names by their family, gpt-4o-mini apart from gpt-4o', () => {
    const usage = { inputTokens: 1_000_000, outputTokens: 1_000_000 };
    expect(callCostUsd('gpt-4o-mini-2024-07-18', usage)).toBeCloseTo(0.75, 10);
    expect(callCostUsd('gpt-4o-2024-08-06', usage)).toBeCloseTo(12.5, 10);
    expect(() => callCostUsd('gpt-5', usage)).toThrow(/no simulator price/);
  });
});

describe('runExampleService', () => {
  let mock: MockLlm;
  let truth: GroundTruth;
  let log: TaggingLog;
  beforeAll(async () => {
    mock = await startMockLlm({ seed: SEED, latencyScale: 0 });
    const recording = recordingTagging();
    log = recording.log;
    truth = await runExampleService({
      seed: SEED,
      tasks: 1000,
      openaiBaseURL: mock.url,
      policyVersion: 'p1',
      tagging: recording.tagging,
    });
  });
  afterAll(async () => {
    await mock.close();
  });

  it('gives the same ground truth at any concurrency', async () => {
    const serial = await runExampleService({
      seed: SEED,
      tasks: 1000,
      concurrency: 1,
      openaiBaseURL: mock.url,
      policyVersion: 'p1',
      tagging: recordingTagging().tagging,
    });
    expect(stableTruth(serial)).toEqual(stableTruth(truth));
    expect(serial.totals.costUsd).toBe(truth.totals.costUsd);
  });

  it('gives another ground truth under another seed', async () => {
    const other = await startMockLlm({ seed: SEED + 1, latencyScale: 0 });
    try {
      const truthOther = await runExampleService({
        seed: SEED + 1,
        tasks: 200,
        openaiBaseURL: other.url,
        tagging: recordingTagging().tagging,
      });
      const mine = truth.tasks
        .slice(0, 200)
        .map((task) => [task.cohort, task.outcome, task.attempts.length]);
      const theirs = truthOther.tasks.map((task) => [
        task.cohort,
        task.outcome,
        task.attempts.length,
      ]);
      expect(theirs).not.toEqual(mine);
    } finally {
      await other.close();
    }
  });

  it('routes faq and extraction small-first, policy and agentic large-first', () => {
    expect(truth.groups.map((group) => [group.cohort, group.primaryRoute])).toEqual([
      ['faq', 'small'],
      ['extraction', 'small'],
      ['policy', 'large'],
      ['agentic', 'large'],
    ]);
    expect(truth.totals.tasks).toBe(1000);
    for (const group of truth.groups) expect(group.tasks).toBeGreaterThan(100);
  });

  it('makes at most two model attempts and falls back only from the small route', () => {
    for (const task of truth.tasks) {
      expect(task.attempts.length).toBeLessThanOrEqual(MAX_MODEL_ATTEMPTS);
      expect(task.attempts[0]?.route).toBe(task.primaryRoute);
      expect(task.attempts[0]?.fallbackReason).toBeUndefined();
      if (task.primaryRoute === 'large') expect(task.attempts).toHaveLength(1);
      const fallback = task.attempts[1];
      if (fallback !== undefined) {
        expect(fallback.route).toBe('large');
        expect(fallback.fallbackReason).toBeDefined();
      }
    }
    const fallbacks = truth.tasks.filter((task) => task.attempts.length === 2).length;
    expect(fallbacks).toBe(truth.totals.fallbacks);
    expect(fallbacks).toBeGreaterThan(0);
  });

  it('tells the tagging API every task, attempt, fallback reason, validation and outcome', () => {
    expect(log.tasks).toHaveLength(1000);
    expect(log.tasks.every((task) => task.policyVersion === 'p1')).toBe(true);
    expect(log.tasks.map((task) => task.outcomes.length)).toEqual(Array(1000).fill(1));
    const byTaskId = new Map(truth.tasks.map((task) => [task.taskId, task]));
    log.tasks.forEach((entry, i) => {
      const task = byTaskId.get(`task-${i + 1}`);
      expect(task?.cohort).toBe(entry.cohort);
      expect(entry.outcomes[0]).toEqual([task?.outcome, task?.outcomeReason]);
    });
    const attempts = truth.tasks.flatMap((task) => task.attempts);
    expect(log.attempts).toHaveLength(attempts.length);
    const count = (items: Array<string | undefined>): Record<string, number> =>
      items.reduce<Record<string, number>>(
        (acc, item) => ({ ...acc, [item ?? '-']: (acc[item ?? '-'] ?? 0) + 1 }),
        {},
      );
    expect(count(log.attempts.map((a) => a.fallbackReason))).toEqual(
      count(attempts.map((a) => a.fallbackReason)),
    );
    expect(count(log.attempts.map((a) => a.validation))).toEqual(
      count(attempts.map((a) => (a.result === 'error' ? undefined : a.result))),
    );
  });

  it('shows extraction failing validation on the small route far more often than faq', () => {
    const [faq, extraction] = truth.groups;
    const validationShare = (group: typeof faq): number =>
      (group?.fallbackReasons['validation_failed'] ?? 0) / (group?.tasks ?? 1);
    expect(validationShare(extraction)).toBeGreaterThan(0.12);
    expect(validationShare(extraction)).toBeGreaterThan(4 * validationShare(faq));
    expect(faq?.fallbackReasons['low_confidence']).toBeGreaterThan(0);
    for (const group of truth.groups) {
      expect(group.successes + group.failures).toBe(group.tasks);
      expect(group.successes / group.tasks).toBeGreaterThan(0.7);
    }
  });

  it('costs every call that returned usage at the simulator prices and failed calls nothing', async () => {
    const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);
    expect(truth.totals.costUsd).toBeCloseTo(sum(truth.groups.map((g) => g.costUsd)), 9);
    for (const task of truth.tasks) {
      expect(task.costUsd).toBeCloseTo(sum(task.attempts.map((a) => a.costUsd)), 12);
      if (task.attempts.every((a) => a.result === 'error' && a.llmCalls === 1))
        expect(task.costUsd).toBe(0);
    }
    // Replay one single-call task with the SDK and price it by hand.
    const single = truth.tasks.find((task) => task.cohort === 'faq' && task.attempts.length === 1);
    if (single === undefined) throw new Error('no single-attempt faq task');
    const client = new OpenAI({ baseURL: mock.url, apiKey: 'test', maxRetries: 0 });
    const replay = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: promptFor(SEED, single.index, 'faq'),
    });
    const usage = replay.usage ?? { prompt_tokens: 0, completion_tokens: 0 };
    expect(single.costUsd).toBeCloseTo(
      (usage.prompt_tokens * 0.15 + usage.completion_tokens * 0.6) / 1e6,
      12,
    );
    expect(costPerSuccessfulTask(truth.totals)).toBeCloseTo(
      truth.totals.costUsd / truth.totals.successes,
      12,
    );
    expect(costPerSuccessfulTask({ costUsd: 1, successes: 0 })).toBeNull();
  });

  it('falls back with rate_limited on a 429 and error on a 500', async () => {
    const run = async (profile: { rateLimitedRate?: number; serverErrorRate?: number }) => {
      const failing = await startMockLlm({
        seed: SEED,
        latencyScale: 0,
        profiles: { small: { faq: profile } },
      });
      try {
        return await runExampleService({
          seed: SEED,
          tasks: 100,
          openaiBaseURL: failing.url,
          tagging: recordingTagging().tagging,
        });
      } finally {
        await failing.close();
      }
    };
    const rateLimited = await run({ rateLimitedRate: 1 });
    const faq = rateLimited.groups.find((group) => group.cohort === 'faq');
    expect(faq?.fallbacks).toBe(faq?.tasks);
    expect(faq?.fallbackReasons).toEqual({ rate_limited: faq?.tasks });
    const serverError = await run({ rateLimitedRate: 0, serverErrorRate: 1 });
    expect(serverError.groups.find((group) => group.cohort === 'faq')?.fallbackReasons).toEqual({
      error: faq?.tasks,
    });
  });

  it('runs with the real instrumentation package and no OpenTelemetry set up', async () => {
    const real = await runExampleService({ seed: SEED, tasks: 50, openaiBaseURL: mock.url });
    expect(stableTruth(real)).toEqual(
      stableTruth(
        await runExampleService({
          seed: SEED,
          tasks: 50,
          openaiBaseURL: mock.url,
          tagging: recordingTagging().tagging,
        }),
      ),
    );
    expect(real.tasks.every((task) => typeof task.taskId === 'string')).toBe(true);
  });

  it('rejects a task count or concurrency that is not a positive integer', async () => {
    await expect(
      runExampleService({
        seed: SEED,
        tasks: 1.5,
        openaiBaseURL: mock.url,
        tagging: recordingTagging().tagging,
      }),
    ).rejects.toThrow(/tasks must be an integer/);
    await expect(
      runExampleService({ seed: SEED, tasks: 1, concurrency: 0, openaiBaseURL: mock.url }),
    ).rejects.toThrow(/concurrency/);
  });
});
