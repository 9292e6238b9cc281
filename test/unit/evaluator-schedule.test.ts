import { afterEach, describe, expect, it, vi } from 'vitest';
import { Evaluator } from '../../analyzer/evaluator.js';
import { resolveRules } from '../../analyzer/rules.js';
import { storeUnreachable } from '../support/outage.js';
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
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
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

describe('a scheduled evaluation that fails', () => {
  const failingStore = (error: () => Error) =>
    new Proxy({}, { get: () => () => Promise.reject(error()) }) as unknown as Store;
  const recording = () => {
    const lines: Array<[string, string]> = [];
    const at = (level: string) => (_fields: object, message: string) =>
      void lines.push([level, message]);
    return { lines, log: { info: at('info'), warn: at('warn'), error: at('error') } };
  };

  it('says once that the store does not answer, not at every evaluation', async () => {
    vi.useFakeTimers();
    const { lines, log } = recording();
    const evaluator = new Evaluator({
      store: failingStore(storeUnreachable),
      rules: resolveRules(),
      publicUrl: 'http://127.0.0.1:4318',
      log,
    });
    evaluator.start(1_000);
    await vi.advanceTimersByTimeAsync(10_500);
    await evaluator.stop();
    expect(evaluator.stats.failedEvaluations).toBe(11);
    expect(lines).toHaveLength(1);
    expect(lines[0]![0]).toBe('warn');
    expect(lines[0]![1]).toMatch(
      /^alert evaluation skipped: the store does not answer \(ClickHouse server did not answer: .*ECONNREFUSED.*\); no alert is raised or resolved meanwhile/,
    );
  });

  it('logs any other failure as an error at every evaluation', async () => {
    vi.useFakeTimers();
    const { lines, log } = recording();
    const evaluator = new Evaluator({
      store: failingStore(() => new Error('Code: 47. Unknown expression identifier')),
      rules: resolveRules(),
      publicUrl: 'http://127.0.0.1:4318',
      log,
    });
    evaluator.start(1_000);
    await vi.advanceTimersByTimeAsync(2_500);
    await evaluator.stop();
    expect(lines).toEqual([
      ['error', 'alert evaluation failed; the next one runs on schedule'],
      ['error', 'alert evaluation failed; the next one runs on schedule'],
      ['error', 'alert evaluation failed; the next one runs on schedule'],
    ]);
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
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    });
    await expect(evaluator.evaluate(new Date(), undefined, { dryRun: true })).rejects.toThrow(
      'the store did not answer',
    );
    expect(evaluator.stats).toMatchObject({ evaluations: 0, failedEvaluations: 0 });
    await expect(evaluator.evaluate(new Date())).rejects.toThrow('the store did not answer');
    expect(evaluator.stats).toMatchObject({ evaluations: 1, failedEvaluations: 1 });
  });
});
