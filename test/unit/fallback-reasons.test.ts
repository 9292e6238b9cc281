import { describe, expect, it } from 'vitest';
import {
  FallbackExhaustedError,
  RouteTimeoutError,
} from '../../instrumentation/src/fallback-errors.js';
import { fallbackReasonOf } from '../../instrumentation/src/fallback.js';
import { FALLBACK_REASON_VALUES } from '../../instrumentation/src/semconv.js';

describe('fallbackReasonOf', () => {
  it('classifies rate limits and timeouts, looking through causes', () => {
    expect(fallbackReasonOf(Object.assign(new Error('x'), { status: 429 }))).toBe('rate_limited');
    expect(fallbackReasonOf({ statusCode: 429 })).toBe('rate_limited');
    expect(fallbackReasonOf(new DOMException('late', 'TimeoutError'))).toBe('timeout');
    expect(fallbackReasonOf(Object.assign(new Error('x'), { code: 'ETIMEDOUT' }))).toBe('timeout');
    const connectTimeout = Object.assign(new Error('connect'), { name: 'ConnectTimeoutError' });
    expect(fallbackReasonOf(new TypeError('fetch failed', { cause: connectTimeout }))).toBe(
      'timeout',
    );
    expect(fallbackReasonOf(Object.assign(new Error('x'), { status: 500 }))).toBe('error');
    expect(fallbackReasonOf('a string')).toBe('error');
  });

  it('calls our own route timeout a timeout and a provider error class by its name', () => {
    expect(fallbackReasonOf(new RouteTimeoutError('small', 50))).toBe('timeout');
    class APIConnectionTimeoutError extends Error {}
    expect(fallbackReasonOf(new APIConnectionTimeoutError('Request timed out.'))).toBe('timeout');
  });

  it('stops looking after four causes deep', () => {
    const nested = (depth: number): unknown =>
      depth === 0 ? { status: 429 } : new Error(`level ${depth}`, { cause: nested(depth - 1) });
    expect(fallbackReasonOf(nested(3))).toBe('rate_limited');
    expect(fallbackReasonOf(nested(4))).toBe('error');
  });

  it('answers only reasons of the contract', () => {
    const reasons = [{ status: 429 }, new RouteTimeoutError('r', 1), new Error('x')].map(
      fallbackReasonOf,
    );
    for (const reason of reasons) expect(FALLBACK_REASON_VALUES).toContain(reason);
  });
});

describe('FallbackExhaustedError', () => {
  it('names every attempt and the routes the bound skipped', () => {
    const attempt = (route: string, n: number) => ({
      route,
      attempt: n,
      reason: undefined,
      outcome: 'error' as const,
      trigger: 'rate_limited',
      error: new Error(route),
      modelCall: true,
      durationMs: 1,
    });
    const error = new FallbackExhaustedError([attempt('small', 1), attempt('large', 2)], ['xl']);
    expect(error.message).toBe(
      'all 2 attempts failed (small: rate_limited, large: rate_limited); skipped at the model attempt bound: xl',
    );
    expect(error.code).toBe('FALLBACK_EXHAUSTED');
    expect((error.cause as Error).message).toBe('large');
  });
});
