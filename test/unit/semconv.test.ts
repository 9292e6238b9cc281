import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as root from '@routewatch/instrumentation';
import * as semconv from '@routewatch/instrumentation/semconv';

// The contract module as published: the `./semconv` subpath of the built package.

describe('@routewatch/instrumentation/semconv', () => {
  it('exports every name the root package exports with the same value', () => {
    const names = Object.keys(semconv);
    expect(names.length).toBeGreaterThan(40);
    for (const name of names) {
      expect(root, name).toHaveProperty(name);
      expect((root as Record<string, unknown>)[name], name).toBe(
        (semconv as Record<string, unknown>)[name],
      );
    }
  });

  it('imports nothing, so the collector can use it without the OpenTelemetry SDK', () => {
    const source = readFileSync(
      new URL('../../instrumentation/src/semconv.ts', import.meta.url),
      'utf8',
    );
    expect(source).not.toMatch(/^\s*(import|export)\b[^;]*\bfrom\s/m);
    expect(source).not.toMatch(/\brequire\(|\bimport\(/);
  });

  it('spells the routewatch.* attributes of DESIGN.md’s contract', () => {
    expect(semconv.ROUTEWATCH_ATTRIBUTES).toEqual([
      'routewatch.task.id',
      'routewatch.task.name',
      'routewatch.cohort',
      'routewatch.policy.version',
      'routewatch.route',
      'routewatch.attempt',
      'routewatch.fallback.reason',
      'routewatch.validation',
      'routewatch.confidence',
      'routewatch.outcome',
      'routewatch.outcome.reason',
      'routewatch.reask',
      'routewatch.cleanup.cost_usd',
      'routewatch.http.attempts',
      'routewatch.http.retry_wait_ms',
      'routewatch.eval.run',
      'routewatch.eval.dataset',
    ]);
    for (const name of semconv.ROUTEWATCH_ATTRIBUTES) {
      expect(name.startsWith(semconv.ROUTEWATCH_PREFIX)).toBe(true);
    }
    expect(semconv.SCORE_ATTRIBUTE_PREFIX).toBe('routewatch.score.');
  });

  it('spells the span names, kinds and enumerated values of the contract', () => {
    expect(semconv.SPAN_KINDS).toEqual(['task', 'attempt', 'llm']);
    expect(semconv.SPAN_NAME_PREFIXES).toEqual({
      task: 'routewatch.task',
      attempt: 'routewatch.attempt',
    });
    expect(semconv.OUTCOMES).toEqual(['success', 'failure', 'escalated', 'abandoned', 'unknown']);
    expect(semconv.VALIDATION_RESULTS).toEqual(['pass', 'fail']);
    expect(semconv.FALLBACK_REASON_VALUES).toEqual([
      'error',
      'timeout',
      'rate_limited',
      'validation_failed',
      'low_confidence',
      'high_risk',
      'policy',
    ]);
    expect(Object.values(semconv.FALLBACK_REASONS)).toEqual(semconv.FALLBACK_REASON_VALUES);
  });

  it('keeps the GenAI names we write apart from the older ones we only read', () => {
    const written = [
      semconv.ATTR_GEN_AI_OPERATION_NAME,
      semconv.ATTR_GEN_AI_PROVIDER_NAME,
      semconv.ATTR_GEN_AI_REQUEST_MODEL,
      semconv.ATTR_GEN_AI_RESPONSE_MODEL,
      semconv.ATTR_GEN_AI_USAGE_INPUT_TOKENS,
      semconv.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
      semconv.ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
      semconv.ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
      semconv.ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    ];
    const older = [
      semconv.ATTR_GEN_AI_SYSTEM,
      semconv.ATTR_GEN_AI_USAGE_PROMPT_TOKENS,
      semconv.ATTR_GEN_AI_USAGE_COMPLETION_TOKENS,
      semconv.ATTR_GEN_AI_USAGE_REASONING_TOKENS,
    ];
    for (const name of [...written, ...older]) {
      expect(name.startsWith(semconv.GEN_AI_PREFIX)).toBe(true);
    }
    expect(new Set([...written, ...older]).size).toBe(written.length + older.length);
  });
});
