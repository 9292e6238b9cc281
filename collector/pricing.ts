import { calcPrice, findProvider } from '@pydantic/genai-prices';
import type { ModelInfo, ModelPrice as CataloguePrice, Provider } from '@pydantic/genai-prices';

/**
 * Prices of LLM calls, USD. Two sources, in this order:
 * - the user's price file (ROUTEWATCH_PRICES): entries for contract prices, fine-tunes, self-hosted
 *   models, or a price the catalogue does not have yet;
 * - the catalogue bundled with `@pydantic/genai-prices` (many providers, cache and tiered prices,
 *   price history), read from the installed package: nothing is fetched at run time.
 * Each call is priced at its own start time, so a price change applies to calls made after it and a
 * replayed old span keeps its old price. See docs/pricing.md.
 */

/** The catalogue's package and version, recorded in `price_ref` so a row says which data priced it. */
export const CATALOGUE = 'genai-prices@0.1.8';

/** One entry of the price file: USD per million tokens. Plain data (it crosses into workers). */
export interface PriceOverride {
  /** A model name (case-insensitive, also matching its dated snapshots), or a prefix ending in `*`. */
  model: string;
  /** Only calls of this provider (as the catalogue names them: openai, anthropic, google, …). */
  provider?: string;
  /** In force from this time (ms since the epoch); absent: always. */
  fromMs?: number;
  inputPerMTok: number;
  outputPerMTok: number;
  /** Input tokens read from the prompt cache; defaults to the input price. */
  cacheReadPerMTok?: number;
  /** Input tokens written to the prompt cache; defaults to the input price. */
  cacheWritePerMTok?: number;
}

export interface PriceSettings {
  overrides: readonly PriceOverride[];
  /** Whether to price from the bundled catalogue; false: only from the overrides. */
  catalogue: boolean;
  /** What start-up should say about the file: entries that may not be what was meant. */
  warnings?: readonly string[];
}

export const DEFAULT_PRICE_SETTINGS: PriceSettings = { overrides: [], catalogue: true };

export interface TokenUsage {
  /** All input tokens, cached ones included (GenAI convention). */
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheCreationTokens: number;
}

export interface PriceQuote {
  costUsd: number;
  /**
   * Which entry priced the call: `override[<provider>]:<model>[@<from>]` (no `[…]` for an entry
   * of any provider) or `genai-prices@<v>:<provider>/<model>`.
   */
  ref: string;
}

/**
 * OpenTelemetry provider names (and those of other conventions) → catalogue provider ids. A name
 * not listed is tried as a catalogue id itself, then by its first dotted part (`openai.chat`, the
 * Vercel AI SDK's, is `openai`).
 */
const PROVIDER_ALIASES: Record<string, string> = {
  'gcp.gemini': 'google',
  'gcp.vertex_ai': 'google',
  'gcp.gen_ai': 'google',
  gcp: 'google',
  gemini: 'google',
  vertex_ai: 'google',
  vertexai: 'google',
  google_genai: 'google',
  'google.generative-ai': 'google',
  'aws.bedrock': 'aws',
  bedrock: 'aws',
  'amazon-bedrock': 'aws',
  'azure.ai.openai': 'azure',
  'azure.ai.inference': 'azure',
  'az.ai.openai': 'azure',
  'az.ai.inference': 'azure',
  azure_openai: 'azure',
  'azure-openai': 'azure',
  x_ai: 'x-ai',
  xai: 'x-ai',
  mistral_ai: 'mistral',
  mistralai: 'mistral',
  'ibm.watsonx.ai': 'ibm',
};

/**
 * Provider names a price file is likely to mean, for telling a typo from a provider the catalogue
 * does not know: the aliases, and the catalogue ids most used (each checked against it).
 */
export function knownProviderNames(): string[] {
  const ids = ['openai', 'anthropic', 'google', 'azure', 'aws', 'mistral', 'groq', 'cohere'];
  const names = new Set([
    ...Object.keys(PROVIDER_ALIASES),
    ...Object.values(PROVIDER_ALIASES),
    ...ids.filter((id) => findProvider({ providerId: id }) !== undefined),
  ]);
  return [...names].filter((name) => catalogueProviderId(name) !== '');
}

/**
 * How a provider is compared, in a price-file entry and on a span alike: the catalogue's id, else
 * the name itself (a provider the catalogue does not know, such as a self-hosted server).
 */
export function providerKey(name: string): string {
  return catalogueProviderId(name) || name.trim().toLowerCase();
}

/** The catalogue provider a span's provider name refers to; '' when none. */
export function catalogueProviderId(name: string): string {
  const lower = name.trim().toLowerCase();
  if (lower === '') return '';
  const alias = PROVIDER_ALIASES[lower];
  if (alias !== undefined) return alias;
  // The catalogue's own id, or a name its providers recognise (`openai.chat` contains `openai`).
  const direct = findProvider({ providerId: lower });
  if (direct) return direct.id;
  const head = lower.split('.', 1)[0]!;
  return findProvider({ providerId: PROVIDER_ALIASES[head] ?? head })?.id ?? '';
}

/** A catalogue model found for a (provider, model name): resolved once, priced per call. */
interface CatalogueModel {
  ref: string;
  /** The model alone, as a provider of its own: the library then matches one model, not hundreds. */
  provider: Provider;
  model: ModelInfo;
  /** The four token prices when they are plain numbers and do not change over time. */
  flat: FlatPrice | undefined;
}

interface FlatPrice {
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
}

const TOKEN_KEYS = ['input_mtok', 'output_mtok', 'cache_read_mtok', 'cache_write_mtok'] as const;

/**
 * The prices of a model when they need none of the library's machinery: no price history, no
 * time-of-day price, no tiers on the token prices. Most models; the others go through `calcPrice`.
 */
function flatPrice(model: ModelInfo): FlatPrice | undefined {
  if (Array.isArray(model.prices)) return undefined;
  const prices: CataloguePrice = model.prices;
  for (const key of TOKEN_KEYS) {
    const value = prices[key];
    if (value !== undefined && typeof value !== 'number') return undefined;
  }
  const input = prices['input_mtok'] as number | undefined;
  if (input === undefined) return undefined;
  return {
    input,
    output: (prices['output_mtok'] as number | undefined) ?? 0,
    cacheRead: (prices['cache_read_mtok'] as number | undefined) ?? input,
    cacheWrite: (prices['cache_write_mtok'] as number | undefined) ?? input,
  };
}

/** Whether a model has any price for tokens (some entries price only per request or per image). */
function pricesTokens(model: ModelInfo): boolean {
  const all = Array.isArray(model.prices) ? model.prices.map((p) => p.prices) : [model.prices];
  return all.some((p) => p['input_mtok'] !== undefined || p['output_mtok'] !== undefined);
}

function flatCost(price: FlatPrice, usage: TokenUsage): number {
  const uncached = usage.inputTokens - usage.cacheReadTokens - usage.cacheCreationTokens;
  return (
    (uncached * price.input +
      usage.cacheReadTokens * price.cacheRead +
      usage.cacheCreationTokens * price.cacheWrite +
      usage.outputTokens * price.output) /
    1_000_000
  );
}

/**
 * Usage as the GenAI conventions mean it: cache reads and writes are sub-counts of the input. A
 * sender following Anthropic's own API reports input tokens without the cached ones; when the
 * cache counts exceed the input, that is what happened, and they are added back.
 */
export function inclusiveUsage(usage: TokenUsage): TokenUsage {
  const cached = usage.cacheReadTokens + usage.cacheCreationTokens;
  return cached > usage.inputTokens ? { ...usage, inputTokens: usage.inputTokens + cached } : usage;
}

/** A served model name without its date suffix: `gpt-4o-mini-2024-07-18` → `gpt-4o-mini`. */
const DATE_SUFFIX = /[-@](?:\d{4}-\d{2}-\d{2}|\d{8})$/;
/** A snapshot date inside a fine-tune's id, before its next `:` part. */
const INNER_DATE = /-(?:\d{4}-\d{2}-\d{2}|\d{8})(?=:)/g;

/** A name a call may be priced under, with the providers it is matched for. */
interface Candidate {
  name: string;
  /** The provider price-file entries are matched for: the span's own, always. */
  entries: string;
  /** The catalogue provider to look the name up under; undefined: not in the catalogue. */
  catalogue: string | undefined;
  /** Under that provider only, never by the name alone. */
  strict: boolean;
}

/**
 * Providers that pass calls on to others, naming the model with the provider's path
 * (`anthropic/claude-…`): LiteLLM, the Vercel AI Gateway, Portkey.
 */
const GATEWAYS: ReadonlySet<string> = new Set(['litellm', 'gateway', 'portkey']);

interface CompiledOverride {
  name: string;
  prefix: boolean;
  provider: string;
  fromMs: number;
  entry: PriceOverride;
}

/** Bound on memoized (provider, model) look-ups; model names are few, but senders are untrusted. */
const MAX_RESOLVED = 10_000;

export class PriceTable {
  readonly #overrides: CompiledOverride[];
  readonly #catalogue: boolean;
  readonly #resolved = new Map<string, CatalogueModel | null>();
  /** A span's provider: its catalogue id ('' when none), and the name price-file entries match. */
  readonly #providerIds = new Map<string, { catalogue: string; entries: string }>();

  constructor(overrides: readonly PriceOverride[] = [], options: { catalogue?: boolean } = {}) {
    this.#catalogue = options.catalogue ?? true;
    this.#overrides = overrides
      .map((entry) => {
        const lower = entry.model.toLowerCase();
        const prefix = lower.endsWith('*');
        return {
          name: prefix ? lower.slice(0, -1) : lower,
          prefix,
          provider: entry.provider === undefined ? '' : providerKey(entry.provider),
          fromMs: entry.fromMs ?? Number.NEGATIVE_INFINITY,
          entry,
        };
      })
      // The most specific entry first: exact names before prefixes, longer prefixes first, an
      // entry for one provider before one for any, then the latest start first. Never the order
      // of the file.
      .sort(
        (a, b) =>
          Number(a.prefix) - Number(b.prefix) ||
          b.name.length - a.name.length ||
          Number(a.provider === '') - Number(b.provider === '') ||
          b.fromMs - a.fromMs,
      );
  }

  static from(settings: PriceSettings): PriceTable {
    return new PriceTable(settings.overrides, { catalogue: settings.catalogue });
  }

  /**
   * The cost of one call started at `atMs`, priced by the first of `models` (the served model
   * first, then the requested one) that has a price: the price file for each name, then the
   * catalogue for each (a file entry for an Azure deployment name wins over the catalogue's list
   * price of the model it serves). A name with a path is also tried by its last part (see
   * `#candidates`). Undefined when none has a price.
   */
  price(
    provider: string,
    models: readonly string[],
    usage: TokenUsage,
    atMs: number,
  ): PriceQuote | undefined {
    const candidates = this.#candidates(provider, models);
    const inclusive = inclusiveUsage(usage);
    for (const { name, entries } of candidates) {
      const override = this.#findOverride(entries, name, atMs);
      if (override)
        return { costUsd: overrideCost(override.entry, inclusive), ref: refOf(override) };
    }
    if (!this.#catalogue) return undefined;
    for (const { name, catalogue, strict } of candidates) {
      if (catalogue === undefined) continue;
      const found = this.#resolve(catalogue, name, strict);
      if (found) {
        const costUsd = catalogueCost(found, inclusive, atMs);
        if (costUsd !== undefined) return { costUsd, ref: found.ref };
      }
    }
    return undefined;
  }

  /**
   * The names a call may be priced under, in order. A name with a path (`openai/gpt-4o-mini`,
   * `models/gemini-2.5-flash`) is tried as written, then by its last part: in the price file for
   * the span's own provider, as any name is; in the catalogue only where the path cannot mean a
   * self-hosted model — for a provider the catalogue knows (`azure`, `gcp.gemini`), under that
   * provider, and through a gateway (`litellm`, `gateway`, `portkey`) under the provider the path
   * names (`anthropic/…`). `mistralai/Mixtral-…` served by `vllm` is the team's own model, not
   * Mistral's API: it stays unpriced unless the price file names it.
   */
  #candidates(provider: string, models: readonly string[]): Candidate[] {
    const ids = this.#providerId(provider);
    const out: Candidate[] = [];
    for (const model of models) {
      const name = model.trim().toLowerCase();
      if (name === '') continue;
      out.push({ name, entries: ids.entries, catalogue: ids.catalogue, strict: false });
      const slash = name.lastIndexOf('/');
      const last = name.slice(slash + 1);
      if (slash < 0 || last === '') continue;
      let catalogue: string | undefined;
      if (ids.catalogue !== '') catalogue = ids.catalogue;
      else if (GATEWAYS.has(provider.trim().toLowerCase().split('.', 1)[0]!)) {
        const named = this.#providerId(name.slice(0, name.indexOf('/'))).catalogue;
        if (named !== '') catalogue = named;
      }
      out.push({ name: last, entries: ids.entries, catalogue, strict: true });
    }
    return out;
  }

  #providerId(name: string): { catalogue: string; entries: string } {
    const known = this.#providerIds.get(name);
    if (known !== undefined) return known;
    if (this.#providerIds.size >= MAX_RESOLVED) this.#providerIds.clear();
    const id = { catalogue: catalogueProviderId(name), entries: providerKey(name) };
    this.#providerIds.set(name, id);
    return id;
  }

  #findOverride(providerId: string, name: string, atMs: number): CompiledOverride | undefined {
    if (this.#overrides.length === 0) return undefined;
    const undated = name.replace(DATE_SUFFIX, '');
    // A fine-tune's id holds its base model's snapshot (`ft:gpt-4o-mini-2024-07-18:acme:…`): a
    // prefix written without the date (`ft:gpt-4o-mini:acme:*`) matches it too.
    const dateless = name.replace(INNER_DATE, '');
    return this.#overrides.find(
      (o) =>
        (o.provider === '' || o.provider === providerId) &&
        o.fromMs <= atMs &&
        (o.prefix
          ? name.startsWith(o.name) || dateless.startsWith(o.name)
          : name === o.name || undated === o.name),
    );
  }

  #resolve(providerId: string, name: string, strict: boolean): CatalogueModel | null {
    const key = `${providerId}\u0000${name}\u0000${strict ? 1 : 0}`;
    const known = this.#resolved.get(key);
    if (known !== undefined) return known;
    if (this.#resolved.size >= MAX_RESOLVED) this.#resolved.clear();
    const found = resolveInCatalogue(providerId, name, strict);
    this.#resolved.set(key, found);
    return found;
  }
}

/**
 * The catalogue's model for a name, under `providerId` when given; without one, or not found
 * under it, by name alone — unless `strict` (a path's last part: under its provider only).
 */
function resolveInCatalogue(
  providerId: string,
  name: string,
  strict: boolean,
): CatalogueModel | null {
  // Matching needs only the names; the usage is a token, and the time does not change the match.
  let match: ReturnType<typeof calcPrice> = null;
  if (strict && providerId === '') return null;
  try {
    match = calcPrice({ input_tokens: 1 }, name, providerId ? { providerId } : {});
    // A provider we could not name (or that the catalogue does not list the model under): by name.
    if (match === null && providerId && !strict) match = calcPrice({ input_tokens: 1 }, name);
  } catch {
    match = null;
  }
  if (match === null || !pricesTokens(match.model)) return null;
  return {
    ref: `${CATALOGUE}:${match.provider.id}/${match.model.id}`,
    provider: { ...match.provider, models: [match.model] },
    model: match.model,
    flat: flatPrice(match.model),
  };
}

function catalogueCost(found: CatalogueModel, usage: TokenUsage, atMs: number): number | undefined {
  if (found.flat) return flatCost(found.flat, usage);
  // Price history, time-of-day prices, tiers: the library's own calculation, at the call's time.
  try {
    const result = calcPrice(
      {
        input_tokens: usage.inputTokens,
        ...(usage.outputTokens > 0 ? { output_tokens: usage.outputTokens } : {}),
        ...(usage.cacheReadTokens > 0 ? { cache_read_tokens: usage.cacheReadTokens } : {}),
        ...(usage.cacheCreationTokens > 0 ? { cache_write_tokens: usage.cacheCreationTokens } : {}),
      },
      found.model.id,
      { provider: found.provider, timestamp: new Date(atMs) },
    );
    return result === null ? undefined : result.total_price;
  } catch {
    return undefined;
  }
}

function overrideCost(price: PriceOverride, usage: TokenUsage): number {
  return flatCost(
    {
      input: price.inputPerMTok,
      output: price.outputPerMTok,
      cacheRead: price.cacheReadPerMTok ?? price.inputPerMTok,
      cacheWrite: price.cacheWritePerMTok ?? price.inputPerMTok,
    },
    usage,
  );
}

function refOf(override: CompiledOverride): string {
  const from =
    override.entry.fromMs === undefined
      ? ''
      : `@${new Date(override.entry.fromMs).toISOString().slice(0, 10)}`;
  // The provider too: entries for one model that differ only by it must be told apart.
  const provider = override.entry.provider === undefined ? '' : `[${override.provider}]`;
  return `override${provider}:${override.entry.model}${from}`;
}
