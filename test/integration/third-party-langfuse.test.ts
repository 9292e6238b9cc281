import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LangfuseSpanProcessor } from '@langfuse/otel';
import { propagateAttributes, startActiveObservation } from '@langfuse/tracing';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MockLlm } from '../../examples/mock-llm.js';
import { callCostUsd } from '../../examples/pricing-truth.js';
import { renderReportTable } from '../../analyzer/report-table.js';
import type { Report } from '../../analyzer/report.js';
import { runAttempt, runTask } from '../../instrumentation/src/index.js';
import { QUESTION, exportTo, startCollector, startReliableLlm } from '../support/third-party.js';
import type { ExportingTracing, ListeningCollector } from '../support/third-party.js';

// Langfuse's JS SDK v4 (@langfuse/tracing, @langfuse/otel), end to end: generations recorded the
// documented way around an OpenAI call, Langfuse's own span processor (which applies propagated
// trace attributes) exporting to the collector over OTLP/HTTP protobuf, and a mapping file that
// turns Langfuse trace metadata into routing fields.

const MAPPING = `
fields:
  task_id:
    - attribute: session.id
  cohort:
    - attribute: langfuse.trace.metadata.cohort
  route:
    - attribute: langfuse.trace.metadata.route
  outcome:
    - attribute: langfuse.trace.metadata.outcome
      values: { resolved: success }
task_spans:
  - attribute: langfuse.trace.name
    root: true
`;

let dir: string;
let llm: MockLlm;
let collector: ListeningCollector;
let tracing: ExportingTracing;
let client: OpenAI;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'routewatch-langfuse-'));
  writeFileSync(join(dir, 'mapping.yaml'), MAPPING);
  llm = await startReliableLlm();
  collector = await startCollector({ ROUTEWATCH_MAPPING: join(dir, 'mapping.yaml') });
  tracing = exportTo(collector.tracesUrl, {
    exporting: (exporter) => new LangfuseSpanProcessor({ exporter, exportMode: 'immediate' }),
  });
  client = new OpenAI({ apiKey: 'test', baseURL: llm.url, maxRetries: 0 });
});

afterAll(async () => {
  await tracing.shutdown();
  await collector.close();
  await llm.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A generation around one OpenAI call, as Langfuse's docs record one without an integration. */
function generation(model: string) {
  return startActiveObservation(
    'answer',
    async (observation) => {
      observation.update({ model, input: QUESTION });
      const response = await client.chat.completions.create({ model, messages: QUESTION });
      observation.update({
        output: response.choices[0]?.message,
        usageDetails: {
          input: response.usage!.prompt_tokens,
          output: response.usage!.completion_tokens,
        },
      });
      return response;
    },
    { asType: 'generation' },
  );
}

describe('Langfuse JS SDK v4 end to end', () => {
  it('stores a generation inside runTask with model, usage, cost and the task it joins', async () => {
    let taskId = '';
    const response = await runTask({ cohort: 'faq' }, (task) => {
      taskId = task.taskId;
      return runAttempt({ route: 'small' }, () => generation('gpt-4o-mini'));
    });
    await tracing.flush();
    const usage = {
      inputTokens: response.usage!.prompt_tokens,
      outputTokens: response.usage!.completion_tokens,
    };
    const calls = (await collector.storedSpans()).filter((s) => s.kind === 'llm');
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({
      name: 'answer',
      scope_name: 'langfuse-sdk',
      task_id: taskId,
      cohort: 'faq',
      route: 'small',
      attempt: 1,
      operation: 'chat',
      request_model: 'gpt-4o-mini',
      input_tokens: usage.inputTokens,
      output_tokens: usage.outputTokens,
      cost_source: 'price_table',
      price_ref: 'genai-prices@0.1.8:openai/gpt-4o-mini',
    });
    expect(calls[0]!.cost_usd).toBeCloseTo(callCostUsd('gpt-4o-mini', usage), 12);
  });

  it('derives task, cohort, route and outcome from Langfuse trace attributes through the mapping', async () => {
    const response = await startActiveObservation('support-answer', async (root) => {
      root.updateTrace({ name: 'support-answer', metadata: { outcome: 'resolved' } });
      return propagateAttributes(
        { sessionId: 'ticket-7', metadata: { cohort: 'billing', route: 'large' } },
        () => generation('gpt-4o'),
      );
    });
    await tracing.flush();
    // The task span first: both may start in the same millisecond, so start order is not enough.
    const stored = (await collector.storedSpans())
      .filter((s) => s.task_id === 'ticket-7')
      .sort((a, b) => Number(b.kind === 'task') - Number(a.kind === 'task'));
    expect(stored.map((s) => [s.name, s.kind, s.cohort, s.route, s.outcome])).toEqual([
      ['support-answer', 'task', 'billing', 'large', 'success'],
      ['answer', 'llm', 'billing', 'large', ''],
    ]);
    const call = stored[1]!;
    expect(call).toMatchObject({ attempt: 1, request_model: 'gpt-4o', cost_source: 'price_table' });
    expect(call.cost_usd).toBeCloseTo(
      callCostUsd('gpt-4o', {
        inputTokens: response.usage!.prompt_tokens,
        outputTokens: response.usage!.completion_tokens,
      }),
      12,
    );
  });

  it('names the split when the task id is on the task span only: a call-less row and untagged calls', async () => {
    // Langfuse's updateTrace sets session.id on its own span only: the generation falls back to
    // its trace as its task (docs/mapping.md). The report must not show the split as a clean $0.
    await startActiveObservation('support-answer', async (root) => {
      root.updateTrace({
        name: 'support-answer',
        sessionId: 'ticket-split',
        metadata: { cohort: 'split', route: 'small', outcome: 'resolved' },
      });
      return generation('gpt-4o-mini');
    });
    await tracing.flush();
    await collector.app.writer.flush();
    const res = await collector.app.app.inject({ method: 'GET', url: '/api/v1/report?window=1h' });
    expect(res.statusCode).toBe(200);
    const report = res.json() as Report;
    expect(report.rows.find((r) => r.cohort === 'split')).toMatchObject({
      tasks: 1,
      modelCalls: 0,
    });
    const text = renderReportTable(report);
    expect(text).toMatch(/^No model call joined the tasks of split × small \(1 task\)/m);
    expect(text).toMatch(/^\(none\) × \(none\): \d+ tasks? with neither cohort nor route/m);
    // That untagged row holds this very call: stored under its trace as its task, untagged.
    const spans = await collector.storedSpans();
    const task = spans.find((s) => s.task_id === 'ticket-split' && s.kind === 'task')!;
    expect(
      spans
        .filter((s) => s.trace_id === task.trace_id && s.kind === 'llm')
        .map((s) => [s.task_id, s.cohort, s.route]),
    ).toEqual([[task.trace_id, '', '']]);
  });

  it('takes the cost Langfuse was given as the call cost', async () => {
    await startActiveObservation(
      'priced-by-app',
      (observation) => {
        observation.update({
          model: 'gpt-4o-mini',
          usageDetails: { input: 10, output: 10 },
          costDetails: { input: 0.001, output: 0.002 },
        });
      },
      { asType: 'generation' },
    );
    await tracing.flush();
    const [call] = (await collector.storedSpans()).filter((s) => s.name === 'priced-by-app');
    expect(call).toMatchObject({ kind: 'llm', cost_source: 'span' });
    expect(call!.cost_usd).toBeCloseTo(0.003, 12);
  });
});
