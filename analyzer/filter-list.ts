import { z } from 'zod';

/**
 * A filter list in a query string, as every analyzer route takes one: repeated
 * (`?cohort=a&cohort=b`) or comma-separated (`?cohort=a,b`); empty items are dropped.
 */
export const filterList = z
  .union([z.string(), z.array(z.string())])
  .optional()
  .transform((v) =>
    (v === undefined ? [] : Array.isArray(v) ? v : [v])
      .flatMap((item) => item.split(','))
      .map((item) => item.trim())
      .filter((item) => item !== ''),
  );
