import { limitExceeded } from './otlp-errors.js';
import type { RequestLimits } from './otlp-errors.js';

export type { RequestLimits };

/** Counts what one decode builds, and stops it at the first limit crossed. */
export class EntryBudget {
  #entries = 0;
  #spans = 0;
  #resources = 0;
  constructor(readonly limits: RequestLimits) {}

  entry(): void {
    if (++this.#entries > this.limits.maxEntries)
      throw limitExceeded('maxEntries', this.limits.maxEntries);
  }

  span(): void {
    this.entry();
    if (++this.#spans > this.limits.maxSpans) throw limitExceeded('maxSpans', this.limits.maxSpans);
  }

  resource(): void {
    this.entry();
    if (++this.#resources > this.limits.maxResources)
      throw limitExceeded('maxResources', this.limits.maxResources);
  }
}

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Refuses a JSON body with more objects and arrays than `maxEntries`, before JSON.parse builds
 * them. UTF-8 continuation bytes are never ASCII, so scanning bytes is exact. The common case
 * (few braces in all) costs one tight loop; only a body over the limit by a raw count is scanned
 * again, skipping string contents, so that braces inside strings do not count.
 */
export function checkJsonEntries(body: Uint8Array, maxEntries: number): void {
  let raw = 0;
  for (let i = 0; i < body.length; i++) {
    const b = body[i];
    if (b === OPEN_BRACE || b === OPEN_BRACKET) raw++;
  }
  if (raw <= maxEntries) return;
  let entries = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const b = body[i];
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) {
      inString = true;
    } else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      if (++entries > maxEntries) throw limitExceeded('maxEntries', maxEntries);
    }
  }
}
