import { describe, expect, it } from 'vitest';
import { acceptedWindow, normalizeRequest } from '../../collector/normalize.js';
import { validateTraceRequest } from '../../collector/otlp-request.js';
import { PriceTable } from '../../collector/pricing.js';
import { otlpBody } from '../support/otlp.js';
import type { TestSpan } from '../support/otlp.js';

const DAY_MS = 86_400_000;
const NOW_MS = Date.parse('2026-12-02T12:00:00Z');
const ns = (ms: number) => String(BigInt(ms) * 1_000_000n);
const prices = new PriceTable();
const window = acceptedWindow(NOW_MS, 30 * DAY_MS, 3_600_000);

function normalize(spans: TestSpan[]) {
  return normalizeRequest(validateTraceRequest(otlpBody(spans)), prices, window);
}
const llm = { 'gen_ai.request.model': 'gpt-4o-mini', 'gen_ai.usage.input_tokens': 1000 };

describe('normalizeRequest time window', () => {
  it('keeps spans from retention ago to the allowed skew ahead, and refuses the rest', () => {
    const result = normalize([
      { start: ns(NOW_MS - 29 * DAY_MS), attributes: llm },
      { start: ns(NOW_MS + 30 * 60_000), attributes: llm },
      { start: ns(NOW_MS - 31 * DAY_MS), attributes: llm },
      { start: ns(NOW_MS + 2 * 3_600_000), attributes: llm },
      { start: '1', attributes: llm },
    ]);
    expect(result.rows).toHaveLength(2);
    expect(result.outOfWindow).toBe(3);
    expect(result.outOfWindowMessage).toMatch(
      /older than the retention \(ROUTEWATCH_RETENTION_DAYS\)/,
    );
  });

  it('takes an end past the window as the window end, so no duration runs for centuries', () => {
    const start = NOW_MS - 60_000;
    const result = normalize([
      { start: ns(start), end: '18446744073709551615', attributes: llm },
      { start: ns(start), end: ns(start + 2_000), attributes: llm },
    ]);
    expect(result.rows.map((r) => Number(r.duration_ns))).toEqual([
      (NOW_MS + 3_600_000 - start) * 1e6,
      2_000 * 1e6,
    ]);
  });

  it('leaves a call with more tokens than a call can hold unpriced, its counts as sent', () => {
    const { rows } = normalize([
      {
        start: ns(NOW_MS),
        attributes: {
          'gen_ai.request.model': 'gpt-4o-mini',
          'gen_ai.usage.input_tokens': '9223372036854775807',
          'gen_ai.usage.output_tokens': 10,
        },
      },
      {
        start: ns(NOW_MS),
        attributes: {
          'gen_ai.request.model': 'gpt-4o-mini',
          'gen_ai.usage.input_tokens': 1_000_000,
          'gen_ai.usage.output_tokens': 10,
        },
      },
    ]);
    expect(rows[0]).toMatchObject({
      cost_usd: 0,
      cost_source: 'unpriced',
      cost_note: 'implausible_usage',
      input_tokens: Number.MAX_SAFE_INTEGER,
    });
    expect(rows[1]).toMatchObject({ cost_source: 'price_table', cost_note: '' });
    expect(rows[1]!.cost_usd).toBeGreaterThan(0);
  });

  it('says when a span is ahead of the allowed clock skew', () => {
    const result = normalize([{ start: ns(NOW_MS + DAY_MS), attributes: llm }]);
    expect(result.outOfWindowMessage).toMatch(/ROUTEWATCH_MAX_CLOCK_SKEW/);
  });

  it('refuses a request spread over ten thousand days but for the days in the window', () => {
    const spans = Array.from({ length: 10_000 }, (_, i) => ({
      start: ns(NOW_MS - i * DAY_MS),
      attributes: llm,
    }));
    const result = normalize(spans);
    // Days 0..30 are within 30 days (the window's first instant included); the rest are older.
    expect(result.rows).toHaveLength(31);
    expect(result.outOfWindow).toBe(9_969);
    expect(new Set(result.rows.map((r) => r.timestamp.slice(0, 10))).size).toBe(31);
  });
});

describe('normalizeSpan attributes', () => {
  it('keeps an attribute keyed __proto__ like any other', () => {
    const [row] = normalize([
      // JSON.parse makes `__proto__` an own key, as a decoded OTLP body does.
      {
        start: ns(NOW_MS),
        attributes: { ...llm, ...JSON.parse('{"__proto__":"x","constructor":"y"}') },
      },
    ]).rows;
    expect(Object.keys(row!.attributes)).toEqual(
      expect.arrayContaining(['__proto__', 'constructor']),
    );
    expect(JSON.parse(JSON.stringify(row!.attributes))).toMatchObject({ constructor: 'y' });
    expect(JSON.stringify(row!.attributes)).toContain('"__proto__":"x"');
  });

  it('treats an absurd reported cost as absent and prices the call from the table', () => {
    const [row] = normalize([
      {
        start: ns(NOW_MS),
        attributes: {
          ...llm,
          'gen_ai.usage.cost': '1e308',
          'routewatch.cleanup.cost_usd': '1e308',
        },
      },
    ]).rows;
    expect(row!.cost_source).toBe('price_table');
    expect(row!.cost_usd).toBeCloseTo((1000 * 0.15) / 1e6, 15);
    expect(row!.cleanup_cost_usd).toBe(0);
  });
});

describe('normalizeSpan HTTP attempts (SDK retries)', () => {
  const one = (attributes: NonNullable<TestSpan['attributes']>, name?: string) => {
    const { rows } = normalize([{ start: ns(NOW_MS), attributes, ...(name ? { name } : {}) }]);
    expect(rows).toHaveLength(1);
    return rows[0]!;
  };

  it('reads the requests a call made and the wait between them into their columns', () => {
    const row = one({
      ...llm,
      'routewatch.http.attempts': 3,
      'routewatch.http.retry_wait_ms': 1_250,
    });
    expect(row).toMatchObject({ kind: 'llm', http_attempts: 3, http_retry_wait_ms: 1_250 });
    expect(row.attributes).not.toHaveProperty('routewatch.http.attempts');
    expect(row.attributes).not.toHaveProperty('routewatch.http.retry_wait_ms');
  });

  it('stores 0, not 1, for a call whose requests were not counted', () => {
    expect(one(llm)).toMatchObject({ http_attempts: 0, http_retry_wait_ms: 0 });
  });

  it('reads the HTTP convention’s resend count when the span has no count of ours', () => {
    expect(one({ ...llm, 'http.request.resend_count': 2 })).toMatchObject({ http_attempts: 3 });
    // Ours wins: we counted every request.
    expect(
      one({ ...llm, 'http.request.resend_count': 1, 'routewatch.http.attempts': 4 }),
    ).toMatchObject({ http_attempts: 4 });
  });

  it('keeps garbage and absurd values within the columns', () => {
    expect(
      one({ ...llm, 'routewatch.http.attempts': 'many', 'routewatch.http.retry_wait_ms': -5 }),
    ).toMatchObject({ http_attempts: 0, http_retry_wait_ms: 0 });
    expect(
      one({ ...llm, 'routewatch.http.attempts': 1e9, 'routewatch.http.retry_wait_ms': 1e12 }),
    ).toMatchObject({ http_attempts: 65_535, http_retry_wait_ms: 4_294_967_295 });
  });

  it('counts requests on model calls only', () => {
    const row = one(
      { 'routewatch.task.id': 't1', 'routewatch.http.attempts': 2 },
      'routewatch.task faq',
    );
    expect(row).toMatchObject({ kind: 'task', http_attempts: 0 });
  });
});

describe('normalizeSpan kind: what counts as a model call', () => {
  const kindOf = (name: string, attributes: NonNullable<TestSpan['attributes']>) => {
    const { rows } = normalize([{ start: ns(NOW_MS), name, attributes }]);
    expect(rows).toHaveLength(1);
    return rows[0]!.kind;
  };

  it('leaves the Anthropic SDK’s own spans of other endpoints out, and counts its messages.create', () => {
    // Regression of #6 in /work/review/instr2.md: a task that counted tokens before its one call
    // was stored with 3 model calls, 2 unpriced, and models.list() became a task of its own.
    const provider = { 'gen_ai.provider.name': 'anthropic' };
    expect(
      kindOf('anthropic.messages.count_tokens', {
        ...provider,
        'gen_ai.request.model': 'claude-3-5-haiku-latest',
        'anthropic.message.count_tokens.input_tokens': 42,
      }),
    ).toBe('other');
    expect(kindOf('anthropic.models.list', provider)).toBe('other');
    // A span of such a name that carries usage is a call all the same.
    expect(kindOf('anthropic.complete', { ...provider, 'gen_ai.usage.input_tokens': 12 })).toBe(
      'llm',
    );
    expect(kindOf('anthropic.messages.batches.create', provider)).toBe('other');
    expect(
      kindOf('anthropic.messages.create', {
        ...provider,
        'gen_ai.operation.name': 'chat',
        'gen_ai.request.model': 'claude-3-5-haiku-latest',
        'gen_ai.usage.input_tokens': 10,
      }),
    ).toBe('llm');
  });

  it('does not count an agent’s or a tool’s span, which may name a model and sum its usage', () => {
    for (const operation of ['invoke_agent', 'create_agent', 'execute_tool']) {
      expect(kindOf(`${operation} helper`, { ...llm, 'gen_ai.operation.name': operation })).toBe(
        'other',
      );
    }
    expect(kindOf('chat gpt-4o-mini', { ...llm, 'gen_ai.operation.name': 'chat' })).toBe('llm');
    expect(kindOf('embeddings x', { ...llm, 'gen_ai.operation.name': 'embeddings' })).toBe('llm');
  });
});

describe('names bounded', () => {
  it('stores a name longer than 256 characters as its start and a hash: two long names stay two, short ones are kept', () => {
    const long = 'x'.repeat(1_000_000);
    const result = normalize([
      {
        start: ns(NOW_MS),
        attributes: {
          ...llm,
          'routewatch.cohort': `${long}a`,
          'routewatch.route': 'r'.repeat(256),
        },
      },
      {
        start: ns(NOW_MS),
        attributes: {
          ...llm,
          'routewatch.cohort': `${long}b`,
          'routewatch.task.id': 't'.repeat(300),
          'routewatch.fallback.reason': long,
          'routewatch.policy.version': long,
          'routewatch.outcome.reason': long,
          'error.type': long,
          'gen_ai.request.model': long,
        },
      },
    ]);
    const [a, b] = result.rows;
    expect(a!.cohort).toMatch(/^x{200}…[0-9a-f]{16}$/);
    expect(b!.cohort).toMatch(/^x{200}…[0-9a-f]{16}$/);
    expect(a!.cohort).not.toBe(b!.cohort);
    expect(a!.route).toBe('r'.repeat(256));
    for (const field of [
      'task_id',
      'fallback_reason',
      'policy_version',
      'outcome_reason',
      'error_type',
      'request_model',
    ] as const)
      expect([field, b![field].length]).toEqual([field, 217]);
  });
});

describe('score and eval names', () => {
  it('keeps score keys of names up to 64 characters, at most 32, and bounds the eval run and dataset', () => {
    const scores = Object.fromEntries(
      Array.from({ length: 40 }, (_, i) => [
        `routewatch.score.s${String(i).padStart(2, '0')}`,
        '0.5',
      ]),
    );
    const [row] = normalize([
      {
        start: ns(NOW_MS),
        attributes: {
          ...llm,
          ...scores,
          [`routewatch.score.${'n'.repeat(65)}`]: '1',
          'routewatch.eval.run': 'r'.repeat(1_000_000),
          'routewatch.eval.dataset': 'golden-v2',
        },
      },
    ]).rows;
    const kept = Object.keys(row!.attributes).filter((k) => k.startsWith('routewatch.score.'));
    expect(kept).toHaveLength(32);
    expect(kept.every((k) => /^routewatch\.score\.s\d\d$/.test(k))).toBe(true);
    // A name of other characters, but not too long, is kept as before.
    const [upper] = normalize([
      { start: ns(NOW_MS), attributes: { ...llm, 'routewatch.score.Helpfulness': '0.7' } },
    ]).rows;
    expect(upper!.attributes['routewatch.score.Helpfulness']).toBe('0.7');
    expect(row!.attributes['routewatch.eval.run']).toMatch(/^r{200}…[0-9a-f]{16}$/);
    expect(row!.attributes['routewatch.eval.dataset']).toBe('golden-v2');
  });
});
