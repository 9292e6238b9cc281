/**
 * Prices of current OpenAI and Anthropic models, USD per million tokens, as published by the
 * providers. A model name matches the longest entry it starts with, so dated snapshots
 * (`gpt-4o-mini-2024-07-18`, `claude-sonnet-4-20250514`) find their family.
 */
export interface ModelPrice {
  model: string;
  inputPerMTok: number;
  outputPerMTok: number;
  /** Price of input tokens read from the prompt cache; defaults to the input price. */
  cacheReadPerMTok?: number;
  /** Price of input tokens written to the prompt cache; defaults to the input price. */
  cacheWritePerMTok?: number;
}

export const DEFAULT_PRICES: readonly ModelPrice[] = [
  { model: 'gpt-4o-mini', inputPerMTok: 0.15, outputPerMTok: 0.6, cacheReadPerMTok: 0.075 },
  { model: 'gpt-4o', inputPerMTok: 2.5, outputPerMTok: 10, cacheReadPerMTok: 1.25 },
  { model: 'gpt-4.1-nano', inputPerMTok: 0.1, outputPerMTok: 0.4, cacheReadPerMTok: 0.025 },
  { model: 'gpt-4.1-mini', inputPerMTok: 0.4, outputPerMTok: 1.6, cacheReadPerMTok: 0.1 },
  { model: 'gpt-4.1', inputPerMTok: 2, outputPerMTok: 8, cacheReadPerMTok: 0.5 },
  { model: 'o4-mini', inputPerMTok: 1.1, outputPerMTok: 4.4, cacheReadPerMTok: 0.275 },
  { model: 'text-embedding-3-small', inputPerMTok: 0.02, outputPerMTok: 0 },
  { model: 'text-embedding-3-large', inputPerMTok: 0.13, outputPerMTok: 0 },
  {
    model: 'claude-3-5-haiku',
    inputPerMTok: 0.8,
    outputPerMTok: 4,
    cacheReadPerMTok: 0.08,
    cacheWritePerMTok: 1,
  },
  {
    model: 'claude-haiku-4-5',
    inputPerMTok: 1,
    outputPerMTok: 5,
    cacheReadPerMTok: 0.1,
    cacheWritePerMTok: 1.25,
  },
  {
    model: 'claude-sonnet-4',
    inputPerMTok: 3,
    outputPerMTok: 15,
    cacheReadPerMTok: 0.3,
    cacheWritePerMTok: 3.75,
  },
  {
    model: 'claude-3-7-sonnet',
    inputPerMTok: 3,
    outputPerMTok: 15,
    cacheReadPerMTok: 0.3,
    cacheWritePerMTok: 3.75,
  },
  {
    model: 'claude-opus-4',
    inputPerMTok: 15,
    outputPerMTok: 75,
    cacheReadPerMTok: 1.5,
    cacheWritePerMTok: 18.75,
  },
];

export interface TokenUsage {
  /** All input tokens, cached ones included (GenAI convention). */
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheCreationTokens: number;
}

export class PriceTable {
  readonly #byLength: ModelPrice[];

  constructor(prices: readonly ModelPrice[] = DEFAULT_PRICES) {
    this.#byLength = [...prices].sort((a, b) => b.model.length - a.model.length);
  }

  /** The price of a model, or undefined when no entry matches. Case-insensitive. */
  find(model: string): ModelPrice | undefined {
    const name = model.toLowerCase();
    return this.#byLength.find((p) => name.startsWith(p.model));
  }

  /**
   * Cost of one call. Cache reads and writes are sub-counts of the input tokens and are priced
   * at their own rates, never twice; reasoning tokens are a sub-count of output tokens.
   */
  cost(price: ModelPrice, usage: TokenUsage): number {
    const cached = usage.cacheReadTokens + usage.cacheCreationTokens;
    const uncachedInput = Math.max(0, usage.inputTokens - cached);
    return (
      (uncachedInput * price.inputPerMTok +
        usage.cacheReadTokens * (price.cacheReadPerMTok ?? price.inputPerMTok) +
        usage.cacheCreationTokens * (price.cacheWritePerMTok ?? price.inputPerMTok) +
        usage.outputTokens * price.outputPerMTok) /
      1_000_000
    );
  }
}
