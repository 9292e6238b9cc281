import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { REFUSAL_LOG_EVERY_MS, RefusalLog } from '../../server/auth.js';
import type { RefusalSummary } from '../../server/auth.js';

// The warnings of requests refused for want of the token, on fake timers: the first refusal is
// told at once, and the ones after it within the minute by a summary the timer logs, with no
// further refusal needed to bring it out.
let lines: RefusalSummary[];
let log: RefusalLog;
beforeEach(() => {
  vi.useFakeTimers();
  lines = [];
  log = new RefusalLog(
    (summary) => lines.push(summary),
    REFUSAL_LOG_EVERY_MS,
    () => Date.now(),
  );
});
afterEach(() => {
  log.close();
  vi.useRealTimers();
});

describe('RefusalLog', () => {
  it('logs the first refusal at once', () => {
    log.refused('/v1/traces', false);
    expect(lines).toEqual([{ refused: 1, path: '/v1/traces', hasAuthorization: false }]);
  });

  it('logs the refusals that follow within the minute as one summary when the minute is up, with no refusal after it', async () => {
    log.refused('/api/v1/report', false);
    await vi.advanceTimersByTimeAsync(5_000);
    // An export of 20 requests, a burst, then nothing more.
    for (let i = 0; i < 20; i++) log.refused('/v1/traces', i >= 10);
    expect(lines).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(REFUSAL_LOG_EVERY_MS - 5_000 - 1);
    expect(lines).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(lines).toEqual([
      { refused: 1, path: '/api/v1/report', hasAuthorization: false },
      { refused: 20, path: '/v1/traces', hasAuthorization: true },
    ]);
    // Nothing more to tell: no further line.
    await vi.advanceTimersByTimeAsync(10 * REFUSAL_LOG_EVERY_MS);
    expect(lines).toHaveLength(2);
  });

  it('logs at most one line a minute under steady refusals, losing none from the counts', async () => {
    for (let second = 0; second < 300; second++) {
      log.refused('/v1/traces', false);
      await vi.advanceTimersByTimeAsync(1_000);
    }
    log.close();
    expect(lines.length).toBeLessThanOrEqual(1 + 300 / 60 + 1);
    expect(lines.reduce((sum, line) => sum + line.refused, 0)).toBe(300);
  });

  it('makes a refusal after a quiet minute a first one again, logged at once', async () => {
    log.refused('/v1/traces', false);
    await vi.advanceTimersByTimeAsync(REFUSAL_LOG_EVERY_MS);
    log.refused('/v1/outcomes', false);
    expect(lines.map((line) => line.path)).toEqual(['/v1/traces', '/v1/outcomes']);
  });

  it('logs the refusals not yet told when closed', () => {
    log.refused('/v1/traces', false);
    log.refused('/v1/traces', false);
    log.refused('/v1/traces', false);
    expect(lines).toHaveLength(1);
    log.close();
    expect(lines.map((line) => line.refused)).toEqual([1, 2]);
    log.close();
    expect(lines).toHaveLength(2);
  });
});
