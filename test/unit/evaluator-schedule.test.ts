import { afterEach, describe, expect, it, vi } from 'vitest';
import { Evaluator } from '../../analyzer/evaluator.js';
import { resolveRules } from '../../analyzer/rules.js';
import type { Store } from '../../storage/store.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('the scheduled evaluation', () => {
  it('skips its turn while the one before still runs, so runs never pile up behind a slow store', async () => {
    vi.useFakeTimers();
    // Every store call waits until the test lets them all fail at once.
    let release: (error: Error) => void = () => undefined;
    const slow = new Promise<never>((_resolve, reject) => {
      release = reject;
    });
    slow.catch(() => undefined);
    const store = new Proxy({}, { get: () => () => slow }) as unknown as Store;
    const evaluator = new Evaluator({
      store,
      rules: resolveRules(),
      publicUrl: 'http://127.0.0.1:4318',
      log: { info: () => undefined, error: () => undefined },
    });
    evaluator.start(1_000);
    await vi.advanceTimersByTimeAsync(10_500);
    expect(evaluator.stats.skippedEvaluations).toBe(10);
    release(new Error('the store did not answer'));
    await vi.advanceTimersByTimeAsync(0);
    await evaluator.stop();
    // One ran (and failed) while ten came due; none was queued behind it.
    expect(evaluator.stats.evaluations).toBe(1);
    expect(evaluator.stats.failedEvaluations).toBe(1);
  });
});

describe('a dry run', () => {
  it('that fails counts neither as an evaluation nor as a failed one', async () => {
    const store = new Proxy(
      {},
      { get: () => () => Promise.reject(new Error('the store did not answer')) },
    ) as unknown as Store;
    const evaluator = new Evaluator({
      store,
      rules: resolveRules(),
      publicUrl: 'http://127.0.0.1:4318',
      log: { info: () => undefined, error: () => undefined },
    });
    await expect(evaluator.evaluate(new Date(), undefined, { dryRun: true })).rejects.toThrow(
      'the store did not answer',
    );
    expect(evaluator.stats).toMatchObject({ evaluations: 0, failedEvaluations: 0 });
    await expect(evaluator.evaluate(new Date())).rejects.toThrow('the store did not answer');
    expect(evaluator.stats).toMatchObject({ evaluations: 1, failedEvaluations: 1 });
  });
});
