import OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import {
  AttemptRejectedError,
  FallbackExhaustedError,
  RouteTimeoutError,
  runTask,
  withFallback,
} from '@routewatch/instrumentation';
import type { AttemptRecord, FallbackRoute, TaskOptions } from '@routewatch/instrumentation';
import { FALLBACK_REASONS } from '@routewatch/instrumentation/semconv';
import { summarizeTruth } from './ground-truth.js';
import type { AttemptTruth, CallFailure, GroundTruth, TaskTruth } from './ground-truth.js';
import { OPENAI_MODEL_BY_TIER } from './mock-models.js';
import { callCostUsd } from './pricing-truth.js';
import { seededRandom } from './seeded-random.js';
import { cohortOf, DEFAULT_PRIMARY_ROUTES, promptFor } from './support-tasks.js';
import type { Cohort, Route } from './support-tasks.js';
import { agentStep, CONFIDENCE_THRESHOLD, parseJson, validateReply } from './support-validation.js';
import type { Verdict } from './support-validation.js';

/**
 * The instrumented example service: a support backend with small-first routing. Its policy is the
 * package's own `withFallback`: a small-first cohort tries `small`, then `large` on an error, a
 * rate limit, a timeout, a failed validation or a low confidence; a large-first cohort has one
 * route. It calls the plain OpenAI SDK (the instrumentation captures the calls) inside `runTask`,
 * and sets up no OpenTelemetry itself: that is the caller's job. Without it, the spans are no-ops.
 *
 * It counts what happened from its own calls and the attempt trail `withFallback` returns, never
 * from spans: that count is the ground truth routewatch's report must reproduce. The OpenAI client
 * keeps the SDK's own retries (`maxRetries`, 2 by default): a rate-limited call is several HTTP
 * requests before the policy sees its error, which the service counts through the client's `fetch`.
 */

export interface ExampleServiceOptions {
  seed: number;
  tasks: number;
  /** Tasks in flight at once; default 32. The ground truth does not depend on it. */
  concurrency?: number;
  /** OpenAI-compatible base URL, e.g. the simulator's `http://127.0.0.1:PORT/v1`. */
  openaiBaseURL: string;
  policyVersion?: string;
  /** Index of the first task, to run one seed in several batches without repeating prompts. */
  firstTaskIndex?: number;
  /** Override the routing policy's primary route per cohort. */
  primaryRoutes?: Partial<Record<Cohort, Route>>;
  /**
   * Share of a small-first cohort's tasks sent large-first instead, chosen per task by a seeded
   * draw: a concurrent control group, so the small route can be compared with the large one on
   * the same traffic. Default 0.
   */
  controlShare?: number;
  /** Per-request timeout of the OpenAI client, ms; default 60 000. */
  requestTimeoutMs?: number;
  /** The OpenAI client's own retries of a failed request (429, 5xx, timeouts); default the SDK's, 2. */
  maxRetries?: number;
  /** `timeoutMs` of every route (`withFallback` gives up on it and falls back); default none. */
  routeTimeoutMs?: number;
  /** Called after each task with the tasks finished so far and the total (a progress line). */
  onProgress?: (done: number, total: number) => void;
}

/** The policy bound: at most this many model attempts per task (`maxModelAttempts`). */
export const MAX_MODEL_ATTEMPTS = 2;
/** An agent run gives up after this many calls in one attempt. */
export const MAX_AGENT_STEPS = 4;

/** The route chain of a task: small-first falls back to large; large-first has nowhere to go. */
export function routesOf(primaryRoute: Route): Route[] {
  return primaryRoute === 'small' ? ['small', 'large'] : ['large'];
}

/** What one attempt's calls cost, counted as they return. */
interface AttemptLedger {
  llmCalls: number;
  costUsd: number;
  /** Calls that made more than one HTTP request (the SDK retried them), and the extra requests. */
  retriedCalls: number;
  httpRetries: number;
}

/** The HTTP requests of the model call in progress, counted by `countingFetch`. */
const requestsOfCall = new AsyncLocalStorage<{ requests: number }>();

/** The global `fetch`, counting each request against the call it belongs to. */
const countingFetch: typeof fetch = (input, init) => {
  const call = requestsOfCall.getStore();
  if (call !== undefined) call.requests += 1;
  return fetch(input, init);
};

export async function runExampleService(options: ExampleServiceOptions): Promise<GroundTruth> {
  const concurrency = options.concurrency ?? 32;
  const firstTaskIndex = options.firstTaskIndex ?? 0;
  assertCount('seed', options.seed, Number.MIN_SAFE_INTEGER);
  assertCount('tasks', options.tasks, 0);
  assertCount('concurrency', concurrency, 1);
  assertCount('firstTaskIndex', firstTaskIndex, 0);
  if (options.routeTimeoutMs !== undefined)
    assertCount('routeTimeoutMs', options.routeTimeoutMs, 1);
  const primaryRoutes = { ...DEFAULT_PRIMARY_ROUTES, ...options.primaryRoutes };
  const client = new OpenAI({
    baseURL: options.openaiBaseURL,
    apiKey: 'test',
    // The SDK's own retries are kept (a hidden cost routewatch shows); the policy decides what
    // happens once the call has failed anyway.
    ...(options.maxRetries === undefined ? {} : { maxRetries: options.maxRetries }),
    timeout: options.requestTimeoutMs ?? 60_000,
    fetch: countingFetch,
  });

  const controlShare = options.controlShare ?? 0;
  if (!(controlShare >= 0 && controlShare <= 1)) {
    throw new RangeError(`controlShare must be between 0 and 1, got ${controlShare}`);
  }
  const serveTask = async (taskIndex: number): Promise<TaskTruth> => {
    const cohort = cohortOf(options.seed, taskIndex);
    const inControl =
      controlShare > 0 &&
      seededRandom(`${options.seed}\u0000control\u0000${taskIndex}`).next() < controlShare;
    const primaryRoute: Route = inControl ? 'large' : primaryRoutes[cohort];
    const prompt = promptFor(options.seed, taskIndex, cohort);
    const taskOptions: TaskOptions = {
      cohort,
      ...(options.policyVersion === undefined ? {} : { policyVersion: options.policyVersion }),
    };
    return runTask(taskOptions, async (task) => {
      const started = performance.now();
      const ledgers = new Map<number, AttemptLedger>();
      const routes = routesOf(primaryRoute).map((route): FallbackRoute<Verdict, undefined> => ({
        route,
        ...(options.routeTimeoutMs === undefined ? {} : { timeoutMs: options.routeTimeoutMs }),
        run: (ctx) => {
          const ledger: AttemptLedger = {
            llmCalls: 0,
            costUsd: 0,
            retriedCalls: 0,
            httpRetries: 0,
          };
          ledgers.set(ctx.attempt, ledger);
          return answer(client, cohort, prompt, OPENAI_MODEL_BY_TIER[route], ledger, ctx.signal);
        },
      }));
      const trail = await attemptTrail(
        withFallback({
          routes,
          validate: (verdict) => verdict.valid,
          confidence: { of: (verdict) => verdict.confidence, threshold: CONFIDENCE_THRESHOLD },
          maxModelAttempts: MAX_MODEL_ATTEMPTS,
        }),
      );
      const attempts = trail.records.map((record) => attemptTruth(record, ledgers));
      const fallbackReason = attempts.at(-1)?.fallbackReason;
      if (fallbackReason !== undefined) task.setFallbackReason(fallbackReason);
      const outcomeReason = outcomeReasonOf(trail.records.at(-1), trail.final);
      if (outcomeReason === undefined) task.setOutcome('success');
      else task.setOutcome('failure', { reason: outcomeReason });
      // A named quality score: the accepted answer's self-reported confidence (faq replies carry one).
      const confidence = outcomeReason === undefined ? trail.final?.confidence : undefined;
      if (confidence !== undefined) task.setScore('confidence', confidence);
      return {
        index: taskIndex,
        taskId: task.taskId,
        cohort,
        primaryRoute,
        attempts,
        outcome: outcomeReason === undefined ? 'success' : 'failure',
        ...(outcomeReason === undefined ? {} : { outcomeReason }),
        ...(confidence === undefined ? {} : { scores: { confidence } }),
        costUsd: attempts.reduce((sum, attempt) => sum + attempt.costUsd, 0),
        latencyMs: Math.round((performance.now() - started) * 1000) / 1000,
      };
    });
  };

  const records: TaskTruth[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < options.tasks) {
      const taskIndex = firstTaskIndex + next;
      next += 1;
      records.push(await serveTask(taskIndex));
      options.onProgress?.(records.length, options.tasks);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, options.tasks) }, worker));
  return summarizeTruth(options.seed, options.policyVersion, records);
}

/** One route's work: the model call (an agent run for `agentic`), its reply validated. */
async function answer(
  client: OpenAI,
  cohort: Cohort,
  prompt: ChatCompletionMessageParam[],
  model: string,
  ledger: AttemptLedger,
  signal: AbortSignal,
): Promise<Verdict> {
  const call = async (messages: ChatCompletionMessageParam[]): Promise<string> => {
    ledger.llmCalls += 1;
    const http = { requests: 0 };
    const completion = await requestsOfCall
      .run(http, () =>
        client.chat.completions.create(
          {
            model,
            messages,
            temperature: 0,
            max_tokens: 800,
            response_format: { type: 'json_object' },
          },
          { signal },
        ),
      )
      .finally(() => {
        if (http.requests > 1) {
          ledger.retriedCalls += 1;
          ledger.httpRetries += http.requests - 1;
        }
      });
    if (completion.usage !== undefined) {
      ledger.costUsd += callCostUsd(completion.model, {
        inputTokens: completion.usage.prompt_tokens,
        outputTokens: completion.usage.completion_tokens,
      });
    }
    return completion.choices[0]?.message.content ?? '';
  };
  const content = cohort === 'agentic' ? await runAgent(prompt, call) : await call(prompt);
  return validateReply(cohort, content);
}

/** Tool calls until the final answer or the step limit; returns the last reply. */
async function runAgent(
  prompt: ChatCompletionMessageParam[],
  call: (messages: ChatCompletionMessageParam[]) => Promise<string>,
): Promise<string> {
  const messages = [...prompt];
  let content = '';
  for (let step = 1; step <= MAX_AGENT_STEPS; step += 1) {
    content = await call(messages);
    const parsed = agentStep.safeParse(parseJson(content));
    if (!parsed.success || parsed.data.action === 'final') break;
    messages.push(
      { role: 'assistant', content },
      { role: 'user', content: `Tool ${parsed.data.tool} returned: ok (step ${step}).` },
    );
  }
  return content;
}

/** The trail of a `withFallback` call, accepted or exhausted, and the last attempt's verdict. */
async function attemptTrail(
  chain: Promise<{ value: Verdict; attempts: readonly AttemptRecord[] }>,
): Promise<{ records: readonly AttemptRecord[]; final: Verdict | undefined }> {
  let records: readonly AttemptRecord[];
  let final: Verdict | undefined;
  try {
    const result = await chain;
    records = result.attempts;
    final = result.value;
  } catch (error) {
    if (!(error instanceof FallbackExhaustedError)) throw error;
    records = error.attempts;
    const last = records.at(-1)?.error;
    // A gate rejected the last reply: its verdict still decides the outcome.
    final = last instanceof AttemptRejectedError ? (last.value as Verdict) : undefined;
  }
  for (const record of records) {
    // `withFallback` falls back on anything a route throws; a service bug must not pass for a
    // provider failure, so only SDK errors and route timeouts count as call failures.
    const { error } = record;
    if (record.outcome !== 'error' && record.outcome !== 'timeout') continue;
    if (!(error instanceof OpenAI.APIError || error instanceof RouteTimeoutError)) throw error;
  }
  return { records, final };
}

function attemptTruth(
  record: AttemptRecord,
  ledgers: ReadonlyMap<number, AttemptLedger>,
): AttemptTruth {
  const route = record.route as Route;
  const ledger = ledgers.get(record.attempt) ?? {
    llmCalls: 0,
    costUsd: 0,
    retriedCalls: 0,
    httpRetries: 0,
  };
  const failure = callFailureOf(record);
  return {
    attempt: record.attempt,
    route,
    model: OPENAI_MODEL_BY_TIER[route],
    ...(record.reason === undefined ? {} : { fallbackReason: record.reason }),
    result: failure === undefined ? (record.validation ?? 'pass') : 'error',
    ...(failure === undefined ? {} : { errorReason: failure }),
    ...(record.confidence === undefined ? {} : { confidence: record.confidence }),
    llmCalls: ledger.llmCalls,
    retriedCalls: ledger.retriedCalls,
    httpRetries: ledger.httpRetries,
    costUsd: ledger.costUsd,
  };
}

/** How a failed call ended, for an attempt that threw or timed out; undefined otherwise. */
function callFailureOf(record: AttemptRecord): CallFailure | undefined {
  if (record.outcome === 'timeout') return FALLBACK_REASONS.timeout;
  if (record.outcome !== 'error') return undefined;
  return record.trigger === FALLBACK_REASONS.rateLimited
    ? FALLBACK_REASONS.rateLimited
    : FALLBACK_REASONS.error;
}

/**
 * Why a task failed, from its last attempt; undefined when it succeeded: the last reply is valid
 * and resolved (a low-confidence reply from the last route still stands, as nothing follows it).
 */
function outcomeReasonOf(
  last: AttemptRecord | undefined,
  verdict: Verdict | undefined,
): string | undefined {
  const failure = last === undefined ? FALLBACK_REASONS.error : callFailureOf(last);
  if (failure !== undefined) return failure;
  if (verdict === undefined || !verdict.valid) return FALLBACK_REASONS.validationFailed;
  return verdict.resolved ? undefined : 'unresolved';
}

function assertCount(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer ≥ ${min}, got ${value}`);
  }
}
