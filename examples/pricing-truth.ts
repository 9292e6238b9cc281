/**
 * The simulator's own prices, USD per 1M tokens. They are the ground truth the example service
 * prices its calls with; routewatch's price table is checked against them, never the reverse.
 * The simulation has no cached or reasoning tokens.
 */
export const PRICING_TRUTH_USD_PER_MTOK = {
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'gpt-4o': { input: 2.5, output: 10 },
  'claude-3-5-haiku': { input: 0.8, output: 4 },
  'claude-sonnet-4': { input: 3, output: 15 },
} as const satisfies Record<string, { input: number; output: number }>;

export type PricedModel = keyof typeof PRICING_TRUTH_USD_PER_MTOK;

/** Token usage of one call, in the provider-neutral shape. */
export interface CallUsage {
  inputTokens: number;
  outputTokens: number;
}

/**
 * Price family of a requested or served model name: served names carry a date suffix
 * (`gpt-4o-mini-2024-07-18`); the longest matching family wins so `gpt-4o-mini` is not `gpt-4o`.
 */
export function pricedModelOf(model: string): PricedModel | undefined {
  const families = Object.keys(PRICING_TRUTH_USD_PER_MTOK) as PricedModel[];
  return families
    .filter((family) => model === family || model.startsWith(`${family}-`))
    .sort((x, y) => y.length - x.length)[0];
}

/** USD cost of one call: input × input price + output × output price. */
export function callCostUsd(model: string, usage: CallUsage): number {
  const family = pricedModelOf(model);
  if (family === undefined) throw new Error(`no simulator price for model "${model}"`);
  const price = PRICING_TRUTH_USD_PER_MTOK[family];
  return (usage.inputTokens * price.input + usage.outputTokens * price.output) / 1_000_000;
}
