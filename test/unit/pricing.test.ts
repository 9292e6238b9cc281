import { calcPrice, findProvider } from '@pydantic/genai-prices';
import { describe, expect, it } from 'vitest';
import { parsePriceFile } from '../../collector/price-file.js';
import { CATALOGUE, PriceTable, catalogueProviderId } from '../../collector/pricing.js';
import type { TokenUsage } from '../../collector/pricing.js';
import { SettingsFileError } from '../../collector/settings-file.js';

const NOW = Date.parse('2026-06-01T12:00:00Z');
const usage = (input: number, output: number, cacheRead = 0, cacheWrite = 0): TokenUsage => ({
  inputTokens: input,
  outputTokens: output,
  cacheReadTokens: cacheRead,
  cacheCreationTokens: cacheWrite,
});
const catalogue = new PriceTable();

describe('PriceTable with the bundled catalogue', () => {
  it('prices the simulator models as their providers publish them, dated snapshots included', () => {
    const cases: [string, string, number][] = [
      ['openai', 'gpt-4o-mini-2024-07-18', (1000 * 0.15 + 100 * 0.6) / 1e6],
      ['openai', 'gpt-4o', (1000 * 2.5 + 100 * 10) / 1e6],
      ['anthropic', 'claude-3-5-haiku-20241022', (1000 * 0.8 + 100 * 4) / 1e6],
      ['anthropic', 'claude-sonnet-4-20250514', (1000 * 3 + 100 * 15) / 1e6],
    ];
    for (const [provider, model, expected] of cases) {
      const quote = catalogue.price(provider, [model], usage(1000, 100), NOW);
      expect(quote?.costUsd, model).toBeCloseTo(expected, 12);
      expect(quote?.ref).toMatch(new RegExp(`^${CATALOGUE}:${provider}/`));
    }
  });

  it('knows models the old hand-written table did not: gpt-5, Gemini', () => {
    expect(catalogue.price('openai', ['gpt-5'], usage(1_000_000, 0), NOW)?.costUsd).toBeGreaterThan(
      0,
    );
    expect(catalogue.price('gcp.gemini', ['gemini-2.5-flash'], usage(1_000_000, 0), NOW)?.ref).toBe(
      `${CATALOGUE}:google/gemini-2.5-flash`,
    );
  });

  it('applies tiered prices (Gemini 2.5 Pro above 200k input tokens) through the library', () => {
    const small = catalogue.price('google', ['gemini-2.5-pro'], usage(100_000, 0), NOW)!;
    const large = catalogue.price('google', ['gemini-2.5-pro'], usage(300_000, 0), NOW)!;
    // The price per token of the larger prompt is higher: the tier applied.
    expect(large.costUsd / 300_000).toBeGreaterThan(small.costUsd / 100_000);
  });

  it('prices cache reads and writes at their own rates, as sub-counts of the input', () => {
    // claude-sonnet-4: input 3, cache read 0.3, cache write 3.75 per MTok.
    const quote = catalogue.price(
      'anthropic',
      ['claude-sonnet-4'],
      usage(10_000, 0, 6_000, 1_000),
      NOW,
    );
    expect(quote?.costUsd).toBeCloseTo((3_000 * 3 + 6_000 * 0.3 + 1_000 * 3.75) / 1e6, 12);
  });

  it('adds cache counts back when a sender reports input without them (Anthropic API style)', () => {
    const exclusive = catalogue.price('anthropic', ['claude-sonnet-4'], usage(100, 0, 6_000), NOW);
    const inclusive = catalogue.price(
      'anthropic',
      ['claude-sonnet-4'],
      usage(6_100, 0, 6_000),
      NOW,
    );
    expect(exclusive?.costUsd).toBeCloseTo(inclusive!.costUsd, 12);
  });

  it('tries the served model first, then the requested one', () => {
    const served = catalogue.price('openai', ['gpt-4o-mini', 'gpt-4o'], usage(1000, 0), NOW);
    expect(served?.ref).toMatch(/gpt-4o-mini$/);
    const fallback = catalogue.price('openai', ['our-alias', 'gpt-4o'], usage(1000, 0), NOW);
    expect(fallback?.ref).toMatch(/\/gpt-4o$/);
  });

  it('returns undefined for a model no one prices', () => {
    expect(catalogue.price('openai', ['gpt-large', ''], usage(1000, 100), NOW)).toBeUndefined();
    expect(catalogue.price('', [''], usage(1000, 100), NOW)).toBeUndefined();
  });

  it('finds the model by name when the provider is unknown to the catalogue', () => {
    expect(catalogue.price('my-gateway', ['gpt-4o-mini'], usage(1000, 0), NOW)?.ref).toMatch(
      /openai\/gpt-4o-mini$/,
    );
  });

  it('agrees with the library on every flat-priced OpenAI, Anthropic and Google model', () => {
    // The fast path computes flat prices itself; the library is the reference.
    let compared = 0;
    for (const providerId of ['openai', 'anthropic', 'google']) {
      for (const model of findProvider({ providerId })!.models) {
        if (Array.isArray(model.prices)) continue;
        const u = usage(12_345, 678, 2_000, 300);
        const quote = catalogue.price(providerId, [model.id], u, NOW);
        let reference: number | undefined;
        try {
          reference = calcPrice(
            {
              input_tokens: 12_345,
              output_tokens: 678,
              cache_read_tokens: 2_000,
              cache_write_tokens: 300,
            },
            model.id,
            { providerId, timestamp: new Date(NOW) },
          )?.total_price;
        } catch {
          continue;
        }
        if (reference === undefined || quote === undefined) continue;
        expect(quote.costUsd, `${providerId}/${model.id}`).toBeCloseTo(reference, 12);
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(100);
  });

  it('prices a model with price history at the time of the call', () => {
    // Find a catalogue model whose price changes on a start date, and price one call each side.
    let checked = 0;
    for (const providerId of ['openai', 'anthropic', 'google', 'mistral']) {
      for (const model of findProvider({ providerId })!.models) {
        if (!Array.isArray(model.prices)) continue;
        const change = model.prices.find((p) => p.constraint?.type === 'start_date');
        if (change?.constraint?.type !== 'start_date') continue;
        const at = Date.parse(`${change.constraint.start_date}T00:00:00Z`);
        const u = usage(1_000_000, 1_000_000);
        const before = catalogue.price(providerId, [model.id], u, at - 86_400_000);
        const after = catalogue.price(providerId, [model.id], u, at + 86_400_000);
        const expectedBefore = calcPrice({ input_tokens: 1e6, output_tokens: 1e6 }, model.id, {
          providerId,
          timestamp: new Date(at - 86_400_000),
        })?.total_price;
        const expectedAfter = calcPrice({ input_tokens: 1e6, output_tokens: 1e6 }, model.id, {
          providerId,
          timestamp: new Date(at + 86_400_000),
        })?.total_price;
        if (expectedBefore === undefined || expectedAfter === undefined) continue;
        if (expectedBefore === expectedAfter) continue;
        expect(before?.costUsd).toBeCloseTo(expectedBefore, 9);
        expect(after?.costUsd).toBeCloseTo(expectedAfter, 9);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(0);
  });
});

describe('catalogueProviderId', () => {
  it.each([
    ['openai', 'openai'],
    ['OpenAI', 'openai'],
    ['openai.chat', 'openai'],
    ['anthropic', 'anthropic'],
    ['gcp.vertex_ai', 'google'],
    ['gcp.gemini', 'google'],
    ['aws.bedrock', 'aws'],
    ['azure.ai.openai', 'azure'],
    ['x_ai', 'x-ai'],
    ['mistral_ai', 'mistral'],
    ['nobody-knows', ''],
    ['', ''],
  ])('%j is %j', (name, id) => {
    expect(catalogueProviderId(name)).toBe(id);
  });
});

describe('PriceTable with a price file', () => {
  const table = new PriceTable(
    parsePriceFile(`
prices:
  - model: gpt-4o-mini
    input_mtok: 0.1
    output_mtok: 0.5
  - model: gpt-4o-mini
    from: 2026-03-01
    input_mtok: 0.12
    output_mtok: 0.4
  - model: our-finetune-*
    provider: openai
    input_mtok: 1
    output_mtok: 2
    cache_read_mtok: 0.5
`).overrides,
  );

  it('wins over the catalogue, for the name and its dated snapshots', () => {
    const quote = table.price(
      'openai',
      ['gpt-4o-mini-2024-07-18'],
      usage(1_000_000, 0),
      Date.parse('2026-01-01'),
    );
    expect(quote).toEqual({ costUsd: 0.1, ref: 'override:gpt-4o-mini' });
  });

  it('keeps its history: the price in force at the call time', () => {
    const at = (date: string) =>
      table.price('openai', ['gpt-4o-mini'], usage(1_000_000, 0), Date.parse(date))?.costUsd;
    expect(at('2026-02-28T23:59:59Z')).toBe(0.1);
    expect(at('2026-03-01T00:00:00Z')).toBe(0.12);
  });

  it('matches a prefix entry only for its provider, and falls back to the catalogue otherwise', () => {
    expect(table.price('openai', ['our-finetune-v2'], usage(1_000_000, 0, 500_000), NOW)).toEqual({
      costUsd: 0.75,
      ref: 'override[openai]:our-finetune-*',
    });
    expect(table.price('anthropic', ['our-finetune-v2'], usage(1_000, 0), NOW)).toBeUndefined();
    // Not a prefix entry: gpt-4o-mini's override leaves gpt-4o to the catalogue.
    expect(table.price('openai', ['gpt-4o'], usage(1_000, 0), NOW)?.ref).toMatch(/^genai-prices/);
  });

  it('prefers an entry for the call’s provider to one for any, whatever the order of the file', () => {
    const entries = [
      '{ model: gpt-4o-mini, provider: openai, input_mtok: 0.1, output_mtok: 0.4 }',
      '{ model: gpt-4o-mini, input_mtok: 0.2, output_mtok: 0.8 }',
    ];
    for (const order of [entries, [...entries].reverse()]) {
      const file = new PriceTable(
        parsePriceFile(`prices:\n  - ${order.join('\n  - ')}\n`).overrides,
      );
      expect(file.price('openai', ['gpt-4o-mini'], usage(1_000_000, 0), NOW)).toEqual({
        costUsd: 0.1,
        ref: 'override[openai]:gpt-4o-mini',
      });
      expect(file.price('azure', ['gpt-4o-mini'], usage(1_000_000, 0), NOW)).toEqual({
        costUsd: 0.2,
        ref: 'override:gpt-4o-mini',
      });
    }
  });

  it('matches a fine-tune prefix written without its base model’s snapshot date', () => {
    const file = new PriceTable(
      parsePriceFile(
        'prices:\n  - { model: "ft:gpt-4o-mini:acme:*", provider: openai, input_mtok: 0.3, output_mtok: 1.2 }\n',
      ).overrides,
    );
    for (const id of [
      'ft:gpt-4o-mini:acme:support:abc',
      'ft:gpt-4o-mini-2024-07-18:acme:support:abc',
    ])
      expect(file.price('openai', [id], usage(1_000_000, 0), NOW)?.ref).toBe(
        'override[openai]:ft:gpt-4o-mini:acme:*',
      );
    // Another organisation's fine-tune of the same model is not this entry's.
    expect(
      file.price('openai', ['ft:gpt-4o-mini-2024-07-18:other:x:1'], usage(1_000_000, 0), NOW)?.ref,
    ).not.toMatch(/^override/);
  });

  it('prices a name from the file before the catalogue prices any: an Azure deployment', () => {
    const file = new PriceTable(
      parsePriceFile('prices:\n  - { model: my-gpt4o-deployment, input_mtok: 1, output_mtok: 4 }\n')
        .overrides,
    );
    // Served gpt-4o (the catalogue knows it), requested the deployment (the file knows it).
    expect(
      file.price(
        'azure.ai.openai',
        ['gpt-4o-2024-08-06', 'my-gpt4o-deployment'],
        usage(1_000_000, 0),
        NOW,
      ),
    ).toEqual({ costUsd: 1, ref: 'override:my-gpt4o-deployment' });
  });

  it('matches an entry for a provider the catalogue does not know by its name (a self-hosted server)', () => {
    const own = new PriceTable(
      parsePriceFile(`
prices:
  - { model: my-local-llm, provider: Acme-vLLM, input_mtok: 1, output_mtok: 1 }
`).overrides,
    );
    const quote = own.price(' acme-vllm', ['my-local-llm'], usage(1_000_000, 0), NOW);
    expect(quote).toEqual({ costUsd: 1, ref: 'override[acme-vllm]:my-local-llm' });
    expect(own.price('other-vllm', ['my-local-llm'], usage(1_000_000, 0), NOW)).toBeUndefined();
    expect(own.price('', ['my-local-llm'], usage(1_000_000, 0), NOW)).toBeUndefined();
  });

  it('prices only from the file when the catalogue is turned off', () => {
    const only = PriceTable.from(
      parsePriceFile(
        '{"catalogue": false, "prices": [{"model": "x", "input_mtok": 1, "output_mtok": 1}]}',
      ),
    );
    expect(only.price('openai', ['gpt-4o'], usage(1000, 0), NOW)).toBeUndefined();
    expect(only.price('', ['x'], usage(1_000_000, 0), NOW)?.costUsd).toBe(1);
  });
});

describe('parsePriceFile', () => {
  it.each([
    ['prices: [{model: a, input_mtok: -1, output_mtok: 1}]', /prices\.0\.input_mtok/],
    ['prices: [{model: a, input_mtok: 1}]', /prices\.0\.output_mtok/],
    ['prices: [{model: a, imput_mtok: 1, output_mtok: 1, input_mtok: 1}]', /imput_mtok/],
    [
      'prices: [{model: a, from: yesterday, input_mtok: 1, output_mtok: 1}]',
      /prices\.0\.from: use a date/,
    ],
    [
      'prices: [{model: a, from: 2025-02-30, input_mtok: 1, output_mtok: 1}]',
      /prices\.0\.from: not a date: 2025-02-30/,
    ],
    [
      'prices: [{model: a, from: "2025-04-31 12:00", input_mtok: 1, output_mtok: 1}]',
      /prices\.0\.from: not a date/,
    ],
    [
      'prices: [{model: a, input_mtok: 1, output_mtok: 1}, {model: A, input_mtok: 2, output_mtok: 2}]',
      /prices\.1: the same model, provider and from as entry 0/,
    ],
    ['prices: {model: a}', /prices/],
    ['catalog: false', /catalog/],
    [
      'prices: [{model: "gpt-4o-*-mini", input_mtok: 1, output_mtok: 1}]',
      /prices\.0\.model: only a trailing \* makes a prefix/,
    ],
    ['prices: [ {', /not valid YAML or JSON/],
  ])('refuses %j naming the place', (text, message) => {
    expect(() => parsePriceFile(text)).toThrow(SettingsFileError);
    expect(() => parsePriceFile(text)).toThrow(message);
  });

  it.each(['acme-vllm', 'ollama', 'zai', 'gcp.vertex_ai', 'Azure'])(
    'takes the provider %j without a word: one the catalogue knows, or a name of its own',
    (name) => {
      const settings = parsePriceFile(
        `prices: [{model: m, provider: ${name}, input_mtok: 1, output_mtok: 1}]`,
      );
      expect(settings.overrides[0]?.provider).toBe(name);
      expect(settings.warnings).toBeUndefined();
    },
  );

  it('takes a provider a letter or two from a known one, and warns that it may be a typo', () => {
    const settings = parsePriceFile(`
prices:
  - { model: gpt-4o-mini, input_mtok: 1, output_mtok: 1 }
  - { model: gpt-4o-mini, provider: opneai, input_mtok: 1, output_mtok: 1 }
`);
    expect(settings.overrides[1]?.provider).toBe('opneai');
    expect(settings.warnings).toEqual([
      'prices.1.provider: "opneai" is not a provider the catalogue knows (did you mean "openai"?): ' +
        'the entry prices only calls whose gen_ai.provider.name is "opneai"',
    ]);
  });

  it('warns that a newer price for any provider does not reach a provider with an entry of its own', () => {
    const settings = parsePriceFile(`
prices:
  - { model: gpt-4o-mini, provider: openai, input_mtok: 0.12, output_mtok: 0.48 }
  - { model: gpt-4o-mini, from: 2026-03-01, input_mtok: 0.1, output_mtok: 0.4 }
`);
    expect(settings.warnings).toEqual([
      'prices.1 (any provider) does not apply to openai calls of gpt-4o-mini: prices.0, for openai only, wins for them though it starts earlier; add an entry for openai with the new price if it should apply to them too',
    ]);
  });

  it('takes an empty file, and warns that it lists no prices', () => {
    expect(parsePriceFile('').warnings).toEqual([
      'the file lists no prices: only the bundled catalogue prices calls',
    ]);
    expect(parsePriceFile('catalogue: false\n').warnings).toEqual([
      'the file lists no prices and turns the catalogue off: every call without a cost of its own is stored unpriced',
    ]);
  });

  it('takes two entries for one provider written two ways as the duplicates they are', () => {
    expect(() =>
      parsePriceFile(`
prices:
  - { model: m, provider: Acme-vLLM, input_mtok: 1, output_mtok: 1 }
  - { model: m, provider: acme-vllm, input_mtok: 2, output_mtok: 2 }
`),
    ).toThrow(/prices\.1: the same model, provider and from as entry 0/);
  });

  it('reads an empty file as "the catalogue only"', () => {
    expect(parsePriceFile('')).toMatchObject({ overrides: [], catalogue: true });
  });

  it('reads JSON as well as YAML', () => {
    expect(
      parsePriceFile(
        '{"prices":[{"model":"m","from":"2025-01-31","input_mtok":1,"output_mtok":2}]}',
      ),
    ).toEqual({
      catalogue: true,
      overrides: [
        {
          model: 'm',
          fromMs: Date.parse('2025-01-31T00:00:00Z'),
          inputPerMTok: 1,
          outputPerMTok: 2,
        },
      ],
    });
  });
});

describe('PriceTable with gateway and proxy model names', () => {
  const table = new PriceTable();
  it.each([
    ['gateway', 'openai/gpt-4o-mini', 'openai/gpt-4o-mini'],
    ['gateway', 'anthropic/claude-3-5-sonnet-20241022', 'anthropic/'],
    ['litellm', 'anthropic/claude-3-5-sonnet-20241022', 'anthropic/'],
    ['openai', 'openai/gpt-4o-mini', 'openai/gpt-4o-mini'],
    ['azure.ai.openai', 'azure/gpt-4o', 'azure/gpt-4o'],
    ['gcp.gemini', 'models/gemini-2.5-flash', 'google/gemini-2.5-flash'],
    ['gcp.vertex_ai', 'publishers/google/models/gemini-2.5-flash', 'google/gemini-2.5-flash'],
  ])('%s · %s is priced by its last part (%s…)', (provider, model, ref) => {
    const quote = table.price(provider, [model], usage(1_000, 100), NOW);
    expect(quote?.ref).toContain(`genai-prices@0.1.8:${ref}`);
    expect(quote!.costUsd).toBeGreaterThan(0);
  });

  it('keeps the catalogue’s own entry for a full path it knows (OpenRouter)', () => {
    expect(table.price('openrouter', ['openai/gpt-4o-mini'], usage(1_000, 0), NOW)?.ref).toBe(
      'genai-prices@0.1.8:openrouter/openai/gpt-4o-mini',
    );
  });

  it('matches a price-file entry for the bare name', () => {
    const file = new PriceTable(
      parsePriceFile('prices:\n  - { model: gpt-4o-mini, input_mtok: 0.12, output_mtok: 0.48 }\n')
        .overrides,
    );
    expect(file.price('litellm', ['openai/gpt-4o-mini'], usage(1_000_000, 0), NOW)).toEqual({
      costUsd: 0.12,
      ref: 'override:gpt-4o-mini',
    });
  });

  it('leaves a self-hosted model named by its path unpriced: the team’s own, not the API’s', () => {
    for (const model of [
      'mistralai/Mixtral-8x7B-Instruct-v0.1',
      'deepseek-ai/DeepSeek-R1-Distill-Llama-70B',
      'openai/gpt-oss-120b',
      'meta-llama/Llama-3.1-8B-Instruct',
    ])
      expect(table.price('vllm', [model], usage(1_000, 0), NOW), model).toBeUndefined();
  });

  it('matches the file’s entries for the span’s own provider by the last part, whatever the path names', () => {
    const file = new PriceTable(
      parsePriceFile(`
prices:
  - { model: mixtral-8x7b-instruct-v0.1, provider: vllm, input_mtok: 0, output_mtok: 0 }
  - { model: gpt-4o-mini, provider: litellm, input_mtok: 0.1, output_mtok: 0.4 }
  - { model: gpt-4o-mini, provider: openai, input_mtok: 0.12, output_mtok: 0.48 }
`).overrides,
    );
    expect(
      file.price('vllm', ['mistralai/Mixtral-8x7B-Instruct-v0.1'], usage(1_000_000, 0), NOW),
    ).toEqual({ costUsd: 0, ref: 'override[vllm]:mixtral-8x7b-instruct-v0.1' });
    expect(file.price('litellm', ['openai/gpt-4o-mini'], usage(1_000_000, 0), NOW)).toEqual({
      costUsd: 0.1,
      ref: 'override[litellm]:gpt-4o-mini',
    });
    // An entry limited to openai is for calls to openai, not to a gateway: the catalogue prices it.
    expect(file.price('gateway', ['openai/gpt-4o-mini'], usage(1_000_000, 0), NOW)?.ref).toBe(
      'genai-prices@0.1.8:openai/gpt-4o-mini',
    );
  });

  it('leaves a path whose last part no one prices unpriced', () => {
    expect(table.price('gateway', ['acme/house-model-9b'], usage(1_000, 0), NOW)).toBeUndefined();
    expect(table.price('gateway', ['openai/'], usage(1_000, 0), NOW)).toBeUndefined();
  });
});
