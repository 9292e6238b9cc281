import OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { performance } from 'node:perf_hooks';
import { summarizeTruth } from './ground-truth.js';
import type { AttemptTruth, FallbackReason, GroundTruth, TaskTruth } from './ground-truth.js';
import { OPENAI_MODEL_BY_TIER } from './mock-models.js';
import { callCostUsd } from './pricing-truth.js';
import { cohortOf, DEFAULT_PRIMARY_ROUTES, promptFor } from './support-tasks.js';
import type { Cohort, Route } from './support-tasks.js';
import { agentStep, CONFIDENCE_THRESHOLD, parseJson, validateReply } from './support-validation.js';
import type { Verdict } from './support-validation.js';
import { loadInstrumentationTagging } from './tagging.js';
import type { AttemptHandle, TaggingApi } from './tagging.js';

/**
 * The instrumented example service: a support backend with small-first routing. It uses the
 * OpenAI SDK normally (the instrumentation captures the calls) and tags tasks and attempts with
 * the routewatch tagging API. It sets up no OpenTelemetry itself: that is the caller's job.
 */

export interface ExampleServiceOptions {
  seed: number;
  tasks: number;
  /** Tasks in flight at once; default 32. The ground truth does not depend on it. */
  concurrency?: number;
  /** OpenAI-compatible base URL, e.g. the mock's `http://127.0.0.1:PORT/v1`. */
  openaiBaseURL: string;
  policyVersion?: string;
  /** Index of the first task, to run one seed in several batches without repeating prompts. */
  firstTaskIndex?: number;
  /** Override the routing policy's primary route per cohort. */
  primaryRoutes?: Partial<Record<Cohort, Route>>;
  /** Per-request timeout of the OpenAI client, ms; default 60 000. */
  requestTimeoutMs?: number;
  /** The tagging API; default the real `@routewatch/instrumentation`. */
  tagging?: TaggingApi;
}

/** The policy bound: at most this many model attempts per task. */
export const MAX_MODEL_ATTEMPTS = 2;
/** An agent run gives up after this many calls in one attempt. */
export const MAX_AGENT_STEPS = 4;

type CallFailure = 'error' | 'rate_limited' | 'timeout';

interface TaskLedger {
  costUsd: number;
}

export async function runExampleService(options: ExampleServiceOptions): Promise<GroundTruth> {
  const concurrency = options.concurrency ?? 32;
  const firstTaskIndex = options.firstTaskIndex ?? 0;
  assertCount('seed', options.seed, Number.MIN_SAFE_INTEGER);
  assertCount('tasks', options.tasks, 0);
  assertCount('concurrency', concurrency, 1);
  assertCount('firstTaskIndex', firstTaskIndex, 0);
  const tagging = options.tagging ?? (await loadInstrumentationTagging());
  const primaryRoutes = { ...DEFAULT_PRIMARY_ROUTES, ...options.primaryRoutes };
  const client = new OpenAI({
    baseURL: options.openaiBaseURL,
    apiKey: 'test',
    maxRetries: 0,
    timeout: options.requestTimeoutMs ?? 60_000,
  });

  const runTask = async (taskIndex: number): Promise<TaskTruth> => {
    const cohort = cohortOf(options.seed, taskIndex);
    const primaryRoute = primaryRoutes[cohort];
    const prompt = promptFor(options.seed, taskIndex, cohort);
    const taskOptions = {
      cohort,
      ...(options.policyVersion === undefined ? {} : { policyVersion: options.policyVersion }),
    };
    return tagging.runTask(taskOptions, async (task) => {
      const started = performance.now();
      const ledger: TaskLedger = { costUsd: 0 };
      const attempts: AttemptTruth[] = [];
      const verdicts: Array<Verdict | CallFailure> = [];
      let fallbackReason: FallbackReason | undefined;
      for (let attemptNumber = 1; attemptNumber <= MAX_MODEL_ATTEMPTS; attemptNumber += 1) {
        const route: Route = attemptNumber === 1 ? primaryRoute : 'large';
        const attemptTruth: AttemptTruth = {
          attempt: attemptNumber,
          route,
          model: OPENAI_MODEL_BY_TIER[route],
          ...(fallbackReason === undefined ? {} : { fallbackReason }),
          result: 'error',
          llmCalls: 0,
          costUsd: 0,
        };
        attempts.push(attemptTruth);
        const verdict = await tryAttempt(client, tagging, cohort, prompt, attemptTruth, ledger);
        verdicts.push(verdict);
        // Only a cheap route falls back; a large-first task that fails is a failure.
        if (route !== 'small') break;
        fallbackReason = fallbackReasonOf(verdict);
        if (fallbackReason === undefined) break;
        task.setFallbackReason?.(fallbackReason);
      }
      const final = verdicts.at(-1);
      const outcomeReason =
        final === undefined || typeof final === 'string'
          ? (final ?? 'error')
          : !final.valid
            ? 'validation_failed'
            : final.resolved
              ? undefined
              : 'unresolved';
      if (outcomeReason === undefined) task.setOutcome('success');
      else task.setOutcome('failure', { reason: outcomeReason });
      return {
        index: taskIndex,
        taskId: task.taskId,
        cohort,
        primaryRoute,
        attempts,
        outcome: outcomeReason === undefined ? 'success' : 'failure',
        ...(outcomeReason === undefined ? {} : { outcomeReason }),
        costUsd: ledger.costUsd,
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
      records.push(await runTask(taskIndex));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, options.tasks) }, worker));
  return summarizeTruth(options.seed, options.policyVersion, records);
}

/** Why a small-route attempt hands over to the large route; undefined when its answer stands. */
function fallbackReasonOf(verdict: Verdict | CallFailure): FallbackReason | undefined {
  if (typeof verdict === 'string') return verdict;
  if (!verdict.valid) return 'validation_failed';
  if (verdict.confidence !== undefined && verdict.confidence < CONFIDENCE_THRESHOLD) {
    return 'low_confidence';
  }
  return undefined;
}

/**
 * One attempt inside its attempt span. A failed model call propagates out of `runAttempt` (the
 * span records the error) and is classified here; an invalid reply is a verdict, not an error.
 */
async function tryAttempt(
  client: OpenAI,
  tagging: TaggingApi,
  cohort: Cohort,
  prompt: ChatCompletionMessageParam[],
  truth: AttemptTruth,
  ledger: TaskLedger,
): Promise<Verdict | CallFailure> {
  const attemptOptions = {
    route: truth.route,
    attempt: truth.attempt,
    ...(truth.fallbackReason === undefined ? {} : { fallbackReason: truth.fallbackReason }),
  };
  try {
    const verdict = await tagging.runAttempt(attemptOptions, async (attempt: AttemptHandle) => {
      const call = async (messages: ChatCompletionMessageParam[]): Promise<string> => {
        truth.llmCalls += 1;
        const completion = await client.chat.completions.create({
          model: truth.model,
          messages,
          temperature: 0,
          max_tokens: 800,
          response_format: { type: 'json_object' },
        });
        if (completion.usage !== undefined) {
          const cost = callCostUsd(completion.model, {
            inputTokens: completion.usage.prompt_tokens,
            outputTokens: completion.usage.completion_tokens,
          });
          truth.costUsd += cost;
          ledger.costUsd += cost;
        }
        return completion.choices[0]?.message.content ?? '';
      };
      const content = cohort === 'agentic' ? await runAgent(prompt, call) : await call(prompt);
      const result = validateReply(cohort, content);
      attempt.setValidation(result.valid ? 'pass' : 'fail');
      if (result.confidence !== undefined) attempt.setConfidence(result.confidence);
      return result;
    });
    truth.result = verdict.valid ? 'pass' : 'fail';
    if (verdict.confidence !== undefined) truth.confidence = verdict.confidence;
    return verdict;
  } catch (error) {
    const failure = classifyCallError(error);
    truth.result = 'error';
    truth.errorReason = failure;
    return failure;
  }
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

/** SDK errors become a fallback reason; anything else is a bug and propagates. */
function classifyCallError(error: unknown): CallFailure {
  if (error instanceof OpenAI.APIConnectionTimeoutError) return 'timeout';
  if (error instanceof OpenAI.RateLimitError) return 'rate_limited';
  if (error instanceof OpenAI.APIError) return 'error';
  throw error;
}

function assertCount(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer ≥ ${min}, got ${value}`);
  }
}
