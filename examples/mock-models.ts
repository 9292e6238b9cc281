/**
 * The simulated models and how each behaves per kind of task. Two tiers: `small` (cheap, fast,
 * weaker) and `large` (expensive, slower, stronger). Every probability here is applied by
 * mock-replies.ts through a seeded hash of the request, never through Math.random.
 */

export const MODEL_TIERS = ['small', 'large'] as const;
export type ModelTier = (typeof MODEL_TIERS)[number];

/** Which wire format serves the model. */
export type ModelApi = 'openai' | 'anthropic';

export interface MockModel {
  /** Canonical request name. */
  id: string;
  /** The dated name the reply carries, as real providers do (served ≠ requested). */
  servedAs: string;
  tier: ModelTier;
  api: ModelApi;
  latency: {
    /** Time to first token, ms, at latencyScale 1. */
    baseMs: number;
    /** Generation time per output token, ms, at latencyScale 1. */
    perOutputTokenMs: number;
  };
}

const SMALL_LATENCY = { baseMs: 180, perOutputTokenMs: 4 } as const;
const LARGE_LATENCY = { baseMs: 400, perOutputTokenMs: 9 } as const;

const MODELS: readonly MockModel[] = [
  {
    id: 'gpt-4o-mini',
    servedAs: 'gpt-4o-mini-2024-07-18',
    tier: 'small',
    api: 'openai',
    latency: SMALL_LATENCY,
  },
  {
    id: 'gpt-4o',
    servedAs: 'gpt-4o-2024-08-06',
    tier: 'large',
    api: 'openai',
    latency: LARGE_LATENCY,
  },
  {
    id: 'claude-3-5-haiku',
    servedAs: 'claude-3-5-haiku-20241022',
    tier: 'small',
    api: 'anthropic',
    latency: SMALL_LATENCY,
  },
  {
    id: 'claude-sonnet-4',
    servedAs: 'claude-sonnet-4-20250514',
    tier: 'large',
    api: 'anthropic',
    latency: LARGE_LATENCY,
  },
];

/** The OpenAI model of each tier, as the example service names its routes. */
export const OPENAI_MODEL_BY_TIER = { small: 'gpt-4o-mini', large: 'gpt-4o' } as const;

/**
 * The model a request names, by canonical name, dated name or `-latest` alias; undefined when
 * the simulator does not serve it (the server answers 404 model_not_found).
 */
export function findMockModel(name: string, api: ModelApi): MockModel | undefined {
  return MODELS.find(
    (model) =>
      model.api === api &&
      (name === model.id || name === model.servedAs || name === `${model.id}-latest`),
  );
}

/** Kinds of task the simulator recognises from the `task-type:` line of the system prompt. */
export const TASK_TYPES = ['faq', 'extraction', 'policy', 'agentic', 'generic'] as const;
export type TaskType = (typeof TASK_TYPES)[number];

/** How a model behaves on one kind of task. Rates are per call, in [0, 1]. */
export interface BehaviourProfile {
  /** Reply HTTP 429. */
  rateLimitedRate: number;
  /** Reply HTTP 500. */
  serverErrorRate: number;
  /** Reply that fails the caller's validation (bad JSON, missing field, empty answer). */
  invalidRate: number;
  /** Valid reply whose self-reported confidence is below 0.6 (faq). */
  lowConfidenceRate: number;
  /** Share of valid replies that solve the user's problem (the hidden `resolved` flag). */
  resolvedRate: number;
  /** Hidden context (retrieved documents, tools) added to the prompt's own tokens, [min, max]. */
  contextTokens: readonly [number, number];
  /** Completion tokens, [min, max]. */
  outputTokens: readonly [number, number];
}

export type BehaviourProfiles = Record<ModelTier, Record<TaskType, BehaviourProfile>>;

/** Changes to the default profiles, e.g. the demo's known degradation of a cheap route. */
export type ProfileOverrides = Partial<
  Record<ModelTier, Partial<Record<TaskType, Partial<BehaviourProfile>>>>
>;

const CALL_ERRORS_SMALL = { rateLimitedRate: 0.02, serverErrorRate: 0.01 } as const;
const CALL_ERRORS_LARGE = { rateLimitedRate: 0.015, serverErrorRate: 0.01 } as const;

/**
 * Defaults chosen so that the report shows a difference: the small model is fine on faq and
 * clearly worse on extraction (a fifth of its extractions fail validation).
 */
export const DEFAULT_PROFILES: BehaviourProfiles = {
  small: {
    faq: {
      ...CALL_ERRORS_SMALL,
      invalidRate: 0.02,
      lowConfidenceRate: 0.08,
      resolvedRate: 0.9,
      contextTokens: [600, 1400],
      outputTokens: [60, 180],
    },
    extraction: {
      ...CALL_ERRORS_SMALL,
      invalidRate: 0.2,
      lowConfidenceRate: 0,
      resolvedRate: 0.88,
      contextTokens: [900, 2200],
      outputTokens: [70, 160],
    },
    policy: {
      ...CALL_ERRORS_SMALL,
      invalidRate: 0.1,
      lowConfidenceRate: 0,
      resolvedRate: 0.7,
      contextTokens: [1500, 3000],
      outputTokens: [120, 320],
    },
    agentic: {
      ...CALL_ERRORS_SMALL,
      invalidRate: 0.12,
      lowConfidenceRate: 0,
      resolvedRate: 0.6,
      contextTokens: [400, 900],
      outputTokens: [50, 180],
    },
    generic: {
      ...CALL_ERRORS_SMALL,
      invalidRate: 0.03,
      lowConfidenceRate: 0,
      resolvedRate: 0.85,
      contextTokens: [0, 200],
      outputTokens: [40, 200],
    },
  },
  large: {
    faq: {
      ...CALL_ERRORS_LARGE,
      invalidRate: 0.005,
      lowConfidenceRate: 0.015,
      resolvedRate: 0.95,
      contextTokens: [600, 1400],
      outputTokens: [90, 260],
    },
    extraction: {
      ...CALL_ERRORS_LARGE,
      invalidRate: 0.02,
      lowConfidenceRate: 0,
      resolvedRate: 0.94,
      contextTokens: [900, 2200],
      outputTokens: [80, 180],
    },
    policy: {
      ...CALL_ERRORS_LARGE,
      invalidRate: 0.01,
      lowConfidenceRate: 0,
      resolvedRate: 0.88,
      contextTokens: [1500, 3000],
      outputTokens: [180, 450],
    },
    agentic: {
      ...CALL_ERRORS_LARGE,
      invalidRate: 0.02,
      lowConfidenceRate: 0,
      resolvedRate: 0.82,
      contextTokens: [400, 900],
      outputTokens: [80, 260],
    },
    generic: {
      ...CALL_ERRORS_LARGE,
      invalidRate: 0.01,
      lowConfidenceRate: 0,
      resolvedRate: 0.93,
      contextTokens: [0, 200],
      outputTokens: [60, 300],
    },
  },
};

/** Default profiles with the overrides applied, a fresh object. */
export function resolveProfiles(overrides: ProfileOverrides = {}): BehaviourProfiles {
  const resolved = structuredClone(DEFAULT_PROFILES);
  for (const tier of MODEL_TIERS) {
    for (const taskType of TASK_TYPES) {
      const patch = overrides[tier]?.[taskType];
      if (patch !== undefined) resolved[tier][taskType] = { ...resolved[tier][taskType], ...patch };
    }
  }
  return resolved;
}
