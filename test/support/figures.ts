import { expect } from 'vitest';

/**
 * An expected value for `toEqual` that matches `value` with every non-integer number taken to
 * within 10^-digits / 2, for figures two computations reach by summing floats in a different
 * order (raw spans against rollups): ClickHouse's parallel aggregation may add the same terms in
 * another order, which moves the last bit or two of a variance. Integers (counts) stay exact.
 */
export function approximately(value: unknown, digits = 12): unknown {
  if (typeof value === 'number') {
    return Number.isInteger(value) ? value : expect.closeTo(value, digits);
  }
  if (Array.isArray(value)) return value.map((v: unknown) => approximately(v, digits));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, approximately(v, digits)]));
  }
  return value;
}
