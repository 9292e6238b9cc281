import { z } from 'zod';
import { splitNames } from './name-list.js';

/**
 * A filter list in a query string, as every analyzer route takes one: repeated
 * (`?cohort=a&cohort=b`) or comma-separated (`?cohort=a,b`, with `\,` for a comma inside a name:
 * analyzer/name-list.ts); empty items are dropped.
 */
export const filterList = z
  .union([z.string(), z.array(z.string())])
  .optional()
  .transform((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]).flatMap(splitNames));
