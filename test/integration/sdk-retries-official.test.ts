import { metrics } from '@opentelemetry/api';
import { OpenAIInstrumentation } from '@opentelemetry/instrumentation-openai';
import OpenAI from 'openai';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faults } from '../../examples/mock-faults.js';
import { startMockLlm, type MockLlm } from '../../examples/mock-llm.js';
import { runAttempt, runTask } from '../../instrumentation/src/index.js';
import { exportTo, startCollector } from '../support/third-party.js';
import type { ExportingTracing, ListeningCollector } from '../support/third-party.js';

// SDK retries counted on a span a third-party instrumentation made: the official OpenTelemetry
// OpenAI instrumentation, without our capture. Our span processor (as routewatchSpanProcessors
// registers it) is what starts the counting.

let llm: MockLlm;
let collector: ListeningCollector;
let tracing: ExportingTracing;
let client: OpenAI;

beforeAll(async () => {
  llm = await startMockLlm({ anyModel: true });
  collector = await startCollector();
  tracing = exportTo(collector.tracesUrl);
  const official = new OpenAIInstrumentation();
  official.setTracerProvider(tracing.provider);
  official.setMeterProvider(metrics.getMeterProvider());
  const openaiModule: unknown = await import('openai');
  for (const definition of official.getModuleDefinitions())
    definition.patch?.(openaiModule, '6.30.1');
  // The SDK's default retries.
  client = new OpenAI({ apiKey: 'test', baseURL: llm.url });
});

afterAll(async () => {
  await tracing?.shutdown();
  await collector?.close();
  await llm?.close();
});

describe('SDK retries on the official OpenTelemetry OpenAI instrumentation’s spans', () => {
  it('stores the call with its three HTTP requests, its wait and its task', async () => {
    llm.setFaults([faults.status('gpt-4o-mini', 429, { times: 2, retryAfterSeconds: 0.02 })]);
    const before = llm.requests;
    let taskId = '';
    await runTask({ cohort: 'faq' }, (task) => {
      taskId = task.taskId;
      return runAttempt({ route: 'small' }, () =>
        client.chat.completions.create({
          model: 'gpt-4o-mini',
          messages: [{ role: 'user', content: 'hi' }],
        }),
      );
    });
    expect(llm.requests - before).toBe(3);
    await tracing.flush();
    const rows = (
      await collector.sqlRows(
        `SELECT scope_name, http_attempts, http_retry_wait_ms FROM spans FINAL WHERE kind = 'llm'`,
      )
    ).map((row) =>
      z
        .tuple([z.string(), z.coerce.number(), z.coerce.number()])
        .parse([row['scope_name'], row['http_attempts'], row['http_retry_wait_ms']]),
    );
    expect(rows).toHaveLength(1);
    const [scope, attempts, waitMs] = rows[0]!;
    expect(scope).toBe('@opentelemetry/instrumentation-openai');
    expect(attempts).toBe(3);
    expect(waitMs).toBeGreaterThanOrEqual(40);

    const view = await collector.sqlRows(
      `SELECT retried_calls, http_retries FROM v_tasks WHERE task_id = '${taskId}'`,
    );
    expect(view.map((r) => [Number(r['retried_calls']), Number(r['http_retries'])])).toEqual([
      [1, 2],
    ]);
  });
});
