import type OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { runEval } from '@routewatch/instrumentation';
import type { EvalSummary, FallbackRoute } from '@routewatch/instrumentation';
import {
  DEFAULT_PROFILES,
  findMockModel,
  OPENAI_MODEL_BY_TIER,
} from '../../examples/mock-models.js';
import type {
  BehaviourProfile,
  BehaviourProfiles,
  ProfileOverrides,
} from '../../examples/mock-models.js';
import { decideReply } from '../../examples/mock-replies.js';
import { MAX_MODEL_ATTEMPTS, routesOf } from '../../examples/support-service.js';
import { DEFAULT_PRIMARY_ROUTES, promptFor } from '../../examples/support-tasks.js';
import { validateReply } from '../../examples/support-validation.js';
import type { Verdict } from '../../examples/support-validation.js';

/**
 * The eval the gate bench runs: the example service's `extraction` cohort, small-first (`small`,
 * then `large` on an error, a rate limit or a failed validation; at most 2 model attempts), each
 * case one support email whose reply passes when it is valid and resolved — the outcome the
 * example service records in production. The replies are the simulated LLM's own
 * (examples/mock-replies.ts, seeded by (seed, model, messages)); a candidate that is "truly k
 * points worse" is the same policy on a simulator whose small model resolves fewer extraction
 * tickets, by a profile override, the mechanism the demo uses for its known degradation.
 */

export const COHORT = 'extraction';
export const DATASET = 'support-extraction';

/** The candidates the bench judges, by their true change in the cohort's success rate. */
export const CANDIDATES = [
  { name: 'equal', change: 0 },
  { name: '3 pts worse', change: -0.03 },
  { name: '5 pts worse', change: -0.05 },
] as const;
export type Candidate = (typeof CANDIDATES)[number];
export type Side = 'baseline' | Candidate['name'];

const SMALL = DEFAULT_PROFILES.small.extraction;
const LARGE = DEFAULT_PROFILES.large.extraction;

/** Share of calls a profile answers (no 429, no 500). */
const answered = (p: BehaviourProfile) => 1 - p.rateLimitedRate - p.serverErrorRate;

/**
 * The success rate of the small-first extraction policy under a small model resolving `resolved`
 * of its valid replies, from the simulator's draws (mock-replies.ts: an error draw, then
 * invalid and resolved as independent chances; the two tiers' draws are independent, the
 * request hash including the model): the small route's valid share resolves; everything else
 * falls back to large, which succeeds when it answers, validly, resolved.
 */
export function trueSuccessRate(resolved: number = SMALL.resolvedRate): number {
  const smallValid = answered(SMALL) * (1 - SMALL.invalidRate);
  const largeSuccess = answered(LARGE) * (1 - LARGE.invalidRate) * LARGE.resolvedRate;
  return smallValid * resolved + (1 - smallValid) * largeSuccess;
}

/**
 * The small model's resolved rate that moves the policy's success rate by `change` (the rate is
 * linear in it, with slope = the small route's valid share: 0.776 by default).
 */
export function smallResolvedRateFor(change: number): number {
  const smallValid = answered(SMALL) * (1 - SMALL.invalidRate);
  return SMALL.resolvedRate + change / smallValid;
}

/** The simulator's profile overrides of a side: none for the baseline and the equal candidate. */
export function profilesOf(side: Side): ProfileOverrides {
  const candidate = CANDIDATES.find((c) => c.name === side);
  if (candidate === undefined || candidate.change === 0) return {};
  return { small: { extraction: { resolvedRate: smallResolvedRateFor(candidate.change) } } };
}

/**
 * Every side of every (seed, size) draws its own tickets: the same seed, distinct task indices,
 * so distinct prompts and independent replies. Two independent samples is what the gate's test
 * assumes (and what a canary on concurrent traffic is); the same dataset run twice through a
 * deterministic simulator would give the equal candidate identical replies.
 */
const SIDE_OFFSET: Record<Side, number> = {
  baseline: 0,
  equal: 1e11,
  '3 pts worse': 2e11,
  '5 pts worse': 3e11,
};

/** Larger eval runs than this would share tickets between sizes. */
export const MAX_CASES = 100_000;

export interface ExtractionCase {
  readonly id: string;
  readonly input: ChatCompletionMessageParam[];
}

/** The eval cases of one side: `size` support emails of the extraction cohort. */
export function casesOf(seed: number, side: Side, size: number): ExtractionCase[] {
  if (!Number.isSafeInteger(size) || size < 1 || size > MAX_CASES) {
    throw new RangeError(`cases per side must be an integer in 1..${MAX_CASES}, got ${size}`);
  }
  // Sizes get disjoint index ranges too: each (seed, size) is its own experiment.
  const first = SIDE_OFFSET[side] + size * MAX_CASES;
  return Array.from({ length: size }, (_, i) => ({
    id: `ticket-${first + i}`,
    input: promptFor(seed, first + i, COHORT),
  }));
}

/** How a route asks one model for one reply. */
export type AskModel = (
  model: string,
  messages: ChatCompletionMessageParam[],
  signal: AbortSignal,
) => Promise<string>;

/** The cohort's production chain, as `withFallback` routes over `ask`. */
export function routesWith(ask: AskModel): FallbackRoute<Verdict, ChatCompletionMessageParam[]>[] {
  return routesOf(DEFAULT_PRIMARY_ROUTES[COHORT]).map((route) => ({
    route,
    run: async (ctx) =>
      validateReply(COHORT, await ask(OPENAI_MODEL_BY_TIER[route], ctx.input, ctx.signal)),
  }));
}

/** A call the simulator answered with an HTTP error, with its status as provider SDKs carry it. */
export class SimulatedCallError extends Error {
  readonly code = 'SIMULATED_CALL_ERROR';
  constructor(readonly status: number) {
    super(`simulated LLM answered HTTP ${status}`);
    this.name = 'SimulatedCallError';
  }
}

/**
 * The simulator's answer without its HTTP edge: mock-llm.ts answers a catalog model with
 * `decideReply` on the request's (role, text) messages, the seed and the resolved profiles, so
 * this gives the bytes the server would send, without the server.
 */
export function inProcessModel(seed: number, profiles: BehaviourProfiles): AskModel {
  return async (modelName, messages) => {
    const model = findMockModel(modelName, 'openai');
    if (model === undefined) throw new Error(`not a simulated model: ${modelName}`);
    const reply = decideReply({
      seed,
      model,
      messages: messages.map((m) => ({ role: m.role, content: String(m.content ?? '') })),
      profiles,
      latencyScale: 0,
    });
    if (reply.kind === 'error') throw new SimulatedCallError(reply.status);
    return reply.content;
  };
}

/** The model over the OpenAI SDK (the HTTP simulator, or any OpenAI-compatible endpoint). */
export function openAiModel(client: OpenAI): AskModel {
  return async (model, messages, signal) => {
    const completion = await client.chat.completions.create(
      {
        model,
        messages,
        temperature: 0,
        max_tokens: 800,
        response_format: { type: 'json_object' },
      },
      { signal },
    );
    return completion.choices[0]?.message.content ?? '';
  };
}

/** One side's eval run through `runEval`: the real harness, its policy `withFallback`. */
export function runSide(input: {
  run: string;
  seed: number;
  side: Side;
  size: number;
  ask: AskModel;
  concurrency: number;
  flush: boolean;
}): Promise<EvalSummary> {
  return runEval({
    run: input.run,
    dataset: DATASET,
    cohort: COHORT,
    policyVersion: `bench-${input.side.replaceAll(' ', '-')}`,
    cases: casesOf(input.seed, input.side, input.size),
    routes: routesWith(input.ask),
    validate: (verdict) => verdict.valid,
    maxModelAttempts: MAX_MODEL_ATTEMPTS,
    grade: (_case, verdict) => verdict.resolved,
    concurrency: input.concurrency,
    flush: input.flush,
  });
}
