import { z } from 'zod';
import { editDistance } from '../server/edit-distance.js';
import { isCalendarDay } from '../server/time.js';
import { catalogueProviderId, knownProviderNames, providerKey } from './pricing.js';
import type { PriceOverride, PriceSettings } from './pricing.js';
import { parseSettingsFile } from './settings-file.js';

/**
 * The price file (ROUTEWATCH_PRICES), USD per million tokens, with the catalogue's own key names so
 * an entry can be copied from it:
 *
 *   catalogue: true            # also price from the bundled catalogue (default)
 *   prices:
 *     - model: gpt-4o-mini     # this name and its dated snapshots; `our-ft-*` for a prefix
 *       provider: openai       # optional
 *       from: 2025-01-01       # optional: in force from this UTC date (keeps the old price before)
 *       input_mtok: 0.15
 *       output_mtok: 0.6
 *       cache_read_mtok: 0.075 # optional, default input_mtok
 *       cache_write_mtok: 0.1875
 */

const price = z.number().finite().min(0).max(1_000_000);

const DATE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

const fromDate = z.union([z.string(), z.date()]).transform((value, ctx) => {
  if (value instanceof Date) return value.getTime();
  if (!DATE.test(value)) {
    ctx.addIssue({ code: 'custom', message: 'use a date such as 2025-01-31 (UTC)' });
    return z.NEVER;
  }
  // A bare date is midnight UTC; a time without a zone is UTC too, never the machine's zone.
  const iso =
    value.length === 10
      ? `${value}T00:00:00Z`
      : /Z|[+-]\d{2}:?\d{2}$/.test(value)
        ? value
        : `${value}Z`;
  const ms = Date.parse(iso.replace(' ', 'T'));
  if (Number.isNaN(ms) || !isCalendarDay(value.slice(0, 10))) {
    ctx.addIssue({ code: 'custom', message: `not a date: ${value}` });
    return z.NEVER;
  }
  return ms;
});

/**
 * A provider the catalogue does not know is matched by its name (a self-hosted server, say); one
 * a letter or two away from a name it knows may be a typo, which would leave the entry unused.
 * Said as a warning, not refused: spans may carry such a name.
 */
function providerWarning(name: string, place: string): string | undefined {
  if (catalogueProviderId(name) !== '') return undefined;
  const lower = name.trim().toLowerCase();
  // Short names are left alone: `zai` is a provider of its own, not a typo of `xai`.
  if (lower.length < 5) return undefined;
  const near = knownProviderNames().find(
    (known) => editDistance(lower, known) <= Math.floor(lower.length / 3),
  );
  if (near === undefined) return undefined;
  return (
    `${place}: "${name}" is not a provider the catalogue knows (did you mean "${near}"?): the ` +
    `entry prices only calls whose gen_ai.provider.name is "${name}"`
  );
}

const entrySchema = z.strictObject({
  model: z
    .string()
    .trim()
    .min(1)
    .refine(
      (model) => !model.slice(0, -1).includes('*'),
      'only a trailing * makes a prefix (our-finetune-*): a * elsewhere is taken literally and would match no model',
    ),
  provider: z.string().trim().min(1).optional(),
  from: fromDate.optional(),
  input_mtok: price,
  output_mtok: price,
  cache_read_mtok: price.optional(),
  cache_write_mtok: price.optional(),
});

export const priceFileSchema = z.strictObject({
  catalogue: z.boolean().default(true),
  prices: z
    .array(entrySchema)
    .default([])
    .superRefine((entries, ctx) => {
      // Two entries for the same model, provider and start: which one prices a call would be an
      // accident of order.
      const seen = new Map<string, number>();
      entries.forEach((e, i) => {
        const key = JSON.stringify([
          e.model.toLowerCase(),
          e.provider === undefined ? '' : providerKey(e.provider),
          e.from ?? null,
        ]);
        const first = seen.get(key);
        if (first === undefined) seen.set(key, i);
        else
          ctx.addIssue({
            code: 'custom',
            path: [i],
            message: `the same model, provider and from as entry ${first}: keep one`,
          });
      });
    }),
});

/** Parses the text of a price file into price settings; throws SettingsFileError. */
export function parsePriceFile(text: string): PriceSettings {
  const file = parseSettingsFile(text, priceFileSchema);
  const overrides = file.prices.map((e): PriceOverride => {
    const entry: PriceOverride = {
      model: e.model,
      inputPerMTok: e.input_mtok,
      outputPerMTok: e.output_mtok,
    };
    if (e.provider !== undefined) entry.provider = e.provider;
    if (e.from !== undefined) entry.fromMs = e.from;
    if (e.cache_read_mtok !== undefined) entry.cacheReadPerMTok = e.cache_read_mtok;
    if (e.cache_write_mtok !== undefined) entry.cacheWritePerMTok = e.cache_write_mtok;
    return entry;
  });
  const warnings = file.prices.flatMap((e, i) =>
    e.provider === undefined ? [] : (providerWarning(e.provider, `prices.${i}.provider`) ?? []),
  );
  // The entry for one provider wins over one for any provider, whatever their dates: a price
  // change written for any provider does not reach that provider's calls. Said, in case it was
  // meant to.
  file.prices.forEach((limited, i) => {
    if (limited.provider === undefined) return;
    const j = file.prices.findIndex(
      (any) =>
        any.provider === undefined &&
        any.model.toLowerCase() === limited.model.toLowerCase() &&
        (any.from ?? -Infinity) > (limited.from ?? -Infinity),
    );
    if (j >= 0)
      warnings.push(
        `prices.${j} (any provider) does not apply to ${limited.provider} calls of ${limited.model}: ` +
          `prices.${i}, for ${limited.provider} only, wins for them though it starts earlier; ` +
          `add an entry for ${limited.provider} with the new price if it should apply to them too`,
      );
  });
  // An empty file mounted where a price list was meant is a deployment mistake more often than
  // a choice.
  if (file.prices.length === 0)
    warnings.push(
      file.catalogue
        ? 'the file lists no prices: only the bundled catalogue prices calls'
        : 'the file lists no prices and turns the catalogue off: every call without a cost of its own is stored unpriced',
    );
  return { overrides, catalogue: file.catalogue, ...(warnings.length > 0 ? { warnings } : {}) };
}
