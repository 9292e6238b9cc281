import { hexId, otlpBody } from './otlp.js';
import type { TestSpan } from './otlp.js';

/**
 * Crafted tasks, as the instrumentation would export them: a task span, one attempt span per
 * route tried, and an LLM call span per attempt, with chosen times, outcomes and costs.
 */
export interface CraftedTask {
  cohort: string;
  /** Routes tried in order: the first is the primary route. */
  routes: string[];
  /** Reason of each fallback (attempts 2+); '' for a fallback without reason. */
  reasons?: string[];
  startMs: number;
  latencyMs?: number;
  outcome?: 'success' | 'failure' | 'escalated' | 'abandoned';
  outcomeReason?: string;
  reask?: boolean;
  policyVersion?: string;
  /** Cost of each model call, USD (sent as gen_ai.usage.cost). */
  callCostUsd?: number;
  /** Model calls per attempt (an agent loop makes several). */
  callsPerAttempt?: number;
  /** Calls with tokens but a model no price table knows. */
  unpriced?: boolean;
  /** HTTP requests each model call made (`routewatch.http.attempts`); none when absent. */
  httpAttempts?: number;
  /** The eval run and dataset the task belongs to (routewatch.eval.*). */
  evalRun?: string;
  evalDataset?: string;
  /** Named quality scores on the task span (routewatch.score.<name>). */
  scores?: Record<string, number>;
}

let taskCounter = 0;
const ns = (ms: number) => String(BigInt(Math.round(ms)) * 1_000_000n);

export function taskSpans(task: CraftedTask): TestSpan[] {
  const id = `task-${++taskCounter}-${task.cohort}`;
  const traceId = hexId(16);
  const latency = task.latencyMs ?? 400;
  const common = { 'routewatch.task.id': id, 'routewatch.cohort': task.cohort };
  const spans: TestSpan[] = [
    {
      traceId,
      name: `routewatch.task ${task.cohort}`,
      kind: 1,
      start: ns(task.startMs),
      end: ns(task.startMs + latency),
      attributes: {
        ...common,
        'routewatch.policy.version': task.policyVersion ?? 'v1',
        ...(task.outcome ? { 'routewatch.outcome': task.outcome } : {}),
        ...(task.outcomeReason ? { 'routewatch.outcome.reason': task.outcomeReason } : {}),
        ...(task.reask ? { 'routewatch.reask': true } : {}),
        ...(task.evalRun ? { 'routewatch.eval.run': task.evalRun } : {}),
        ...(task.evalDataset ? { 'routewatch.eval.dataset': task.evalDataset } : {}),
        ...Object.fromEntries(
          Object.entries(task.scores ?? {}).map(([name, v]) => [`routewatch.score.${name}`, v]),
        ),
      },
    },
  ];
  task.routes.forEach((route, i) => {
    const attempt = i + 1;
    const reason = i === 0 ? undefined : (task.reasons?.[i - 1] ?? 'validation_failed');
    const at = task.startMs + (i * latency) / task.routes.length;
    spans.push({
      traceId,
      name: `routewatch.attempt ${route}`,
      kind: 1,
      start: ns(at),
      end: ns(at + 5),
      attributes: {
        ...common,
        'routewatch.route': route,
        'routewatch.attempt': attempt,
        ...(reason ? { 'routewatch.fallback.reason': reason } : {}),
      },
    });
    for (let c = 0; c < (task.callsPerAttempt ?? 1); c++) {
      spans.push({
        traceId,
        name: `chat ${route}`,
        kind: 3,
        start: ns(at + 1 + c),
        end: ns(at + 2 + c),
        attributes: {
          ...common,
          'routewatch.route': route,
          'routewatch.attempt': attempt,
          'gen_ai.operation.name': 'chat',
          'gen_ai.request.model': task.unpriced
            ? 'model-nobody-prices'
            : route === 'large'
              ? 'gpt-4o'
              : 'gpt-4o-mini',
          'gen_ai.usage.input_tokens': 100,
          'gen_ai.usage.output_tokens': 10,
          ...(task.unpriced
            ? {}
            : { 'gen_ai.usage.cost': task.callCostUsd ?? (route === 'large' ? 0.01 : 0.001) }),
          ...(task.httpAttempts === undefined
            ? {}
            : { 'routewatch.http.attempts': task.httpAttempts }),
        },
      });
    }
  });
  return spans;
}

/** OTLP/JSON bodies of at most `perRequest` spans for the given tasks. */
export function otlpBodiesOf(tasks: CraftedTask[], perRequest = 2_000): string[] {
  const spans = tasks.flatMap(taskSpans);
  const bodies: string[] = [];
  for (let i = 0; i < spans.length; i += perRequest) {
    bodies.push(JSON.stringify(otlpBody(spans.slice(i, i + perRequest), 'crafted-service')));
  }
  return bodies;
}

/** A seeded generator (mulberry32), so a crafted stream can be replayed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface StreamSpec {
  cohort: string;
  routes: string[];
  /** Tasks, spread evenly over [fromMs, toMs). */
  tasks: number;
  fromMs: number;
  toMs: number;
  /** Probability of success (the rest fail). */
  success: number;
  /** Probability of falling back to the second route. */
  fallback?: number;
  reasons?: string[];
  extra?: (i: number, random: () => number) => Partial<CraftedTask>;
}

/** Tasks of one cohort × primary route with chosen rates, seeded. */
export function stream(spec: StreamSpec, random: () => number): CraftedTask[] {
  const step = (spec.toMs - spec.fromMs) / spec.tasks;
  return Array.from({ length: spec.tasks }, (_, i) => {
    const fellBack = spec.routes.length > 1 && random() < (spec.fallback ?? 0);
    const reason =
      spec.reasons?.[Math.floor(random() * spec.reasons.length)] ?? 'validation_failed';
    return {
      cohort: spec.cohort,
      routes: fellBack ? spec.routes.slice(0, 2) : [spec.routes[0]!],
      reasons: fellBack ? [reason] : [],
      startMs: spec.fromMs + i * step + random() * step * 0.5,
      outcome: random() < spec.success ? 'success' : 'failure',
      outcomeReason: 'wrong_answer',
      ...spec.extra?.(i, random),
    };
  });
}

/**
 * A time line of small-first stretches, `perHour` tasks an hour: `part(cohort, success, fallback,
 * fromH, toH)` gives one cohort's tasks over [originMs + fromH h, originMs + toH h).
 */
export function hourlyParts(originMs: number, perHour: number, random: () => number) {
  const HOUR = 3_600_000;
  return (cohort: string, success: number, fallback: number, fromH: number, toH: number) =>
    stream(
      {
        cohort,
        routes: ['small', 'large'],
        success,
        fallback,
        tasks: (toH - fromH) * perHour,
        fromMs: originMs + fromH * HOUR,
        toMs: originMs + toH * HOUR,
      },
      random,
    );
}
