import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { configWith } from '../../server/config.js';
import { startRoutewatch, type RunningRoutewatch } from '../../server/start.js';
import { startMockLlm, type MockLlm } from '../../examples/mock-llm.js';
import {
  ATTEMPT_SPAN_PREFIX,
  ATTR_ATTEMPT,
  ATTR_COHORT,
  ATTR_GEN_AI_INPUT_MESSAGES,
  ATTR_GEN_AI_OUTPUT_MESSAGES,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_ROUTE,
  ATTR_TASK_ID,
  TASK_SPAN_PREFIX,
} from '../../instrumentation/src/semconv.js';
import {
  FIXTURES,
  REGISTER_PATH,
  REPO_ROOT,
  requireBuiltInstrumentation,
  runNode,
} from '../support/child-process.js';
import { startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.js';

// The drop-in, end to end: fixture apps (ESM, CommonJS, own NodeSDK, older hook copy present) run
// as child processes with `--import …/register`, against the simulated LLM; their spans go to a
// real collector (embedded ClickHouse) or, to look at the export itself, to a bare OTLP receiver.

const runApp = (args: string[], env: Record<string, string>, cwd = REPO_ROOT) =>
  runNode(args, { env, cwd });

let llm: MockLlm;

beforeAll(async () => {
  requireBuiltInstrumentation();
  llm = await startMockLlm({ anyModel: true });
});

afterAll(async () => {
  await llm.close();
});

describe('drop-in apps exporting to a real collector', () => {
  let routewatch: RunningRoutewatch;
  let dataDir = '';

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'routewatch-dropin-'));
    routewatch = await startRoutewatch(
      configWith({
        ROUTEWATCH_PORT: '0',
        ROUTEWATCH_DATA_DIR: dataDir,
        ROUTEWATCH_BATCH_DELAY: '5ms',
      }),
    );
  });

  afterAll(async () => {
    await routewatch.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const storedRow = z.object({
    name: z.string(),
    kind: z.string(),
    span_kind: z.string(),
    service_name: z.string(),
    scope_name: z.string(),
    cohort: z.string(),
    route: z.string(),
    attempt: z.coerce.number(),
    fallback_reason: z.string(),
    provider: z.string(),
    operation: z.string(),
    request_model: z.string(),
    response_model: z.string(),
    input_tokens: z.coerce.number(),
    output_tokens: z.coerce.number(),
    cache_read_tokens: z.coerce.number(),
    cache_creation_tokens: z.coerce.number(),
    status_code: z.string(),
    environment: z.string(),
  });

  async function storedSpans(taskId: string, count: number) {
    const query = () =>
      routewatch.store.query(
        `SELECT name, kind, span_kind, service_name, scope_name, cohort, route, attempt,
                fallback_reason, provider, operation, request_model, response_model, input_tokens,
                output_tokens, cache_read_tokens, cache_creation_tokens, status_code,
                resource['deployment.environment'] AS environment
         FROM spans FINAL WHERE task_id = {taskId:String} ORDER BY timestamp, name`,
        { taskId },
        storedRow,
      );
    await vi.waitFor(async () => expect(await query()).toHaveLength(count), {
      timeout: 10_000,
      interval: 100,
    });
    return query();
  }

  async function expectStoredTask(taskId: string, service: string): Promise<void> {
    const rows = await storedSpans(taskId, 6);
    const common = { service_name: service, cohort: 'faq', environment: 'test' };
    const byName = (name: string) => rows.filter((row) => row.name === name);
    expect(byName(`${TASK_SPAN_PREFIX} faq`)).toMatchObject([{ ...common, kind: 'task' }]);
    expect(byName(`${ATTEMPT_SPAN_PREFIX} small`)).toMatchObject([
      { ...common, kind: 'attempt', route: 'small', attempt: 1, fallback_reason: '' },
    ]);
    expect(byName(`${ATTEMPT_SPAN_PREFIX} large`)).toMatchObject([
      {
        ...common,
        kind: 'attempt',
        route: 'large',
        attempt: 2,
        fallback_reason: 'validation_failed',
      },
    ]);
    const llmCommon = {
      ...common,
      kind: 'llm',
      scope_name: '@routewatch/instrumentation/openai',
      provider: 'openai',
      operation: 'chat',
      route: 'small',
      attempt: 1,
      request_model: 'gpt-small',
      response_model: 'gpt-small-served',
    };
    // The plain call, then the stream, whose usage we asked for on the caller's behalf.
    expect(byName('chat gpt-small')).toMatchObject([
      { ...llmCommon, input_tokens: 12, output_tokens: 3, cache_read_tokens: 4 },
      { ...llmCommon, input_tokens: 9, output_tokens: 2, cache_read_tokens: 0 },
    ]);
    expect(byName('chat claude-large')).toMatchObject([
      {
        ...common,
        kind: 'llm',
        scope_name: '@routewatch/instrumentation/anthropic',
        provider: 'anthropic',
        route: 'large',
        attempt: 2,
        request_model: 'claude-large',
        response_model: 'claude-large-served',
        input_tokens: 130,
        output_tokens: 4,
        cache_read_tokens: 100,
        cache_creation_tokens: 20,
      },
    ]);
  }

  const env = (taskId: string, service: string) => ({
    OTEL_EXPORTER_OTLP_ENDPOINT: routewatch.url,
    OTEL_SERVICE_NAME: service,
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=test',
    LLM_URL: llm.origin,
    TASK_ID: taskId,
  });

  it('captures an ESM app run with --import: OpenAI and Anthropic, tagged, stored', async () => {
    const taskId = `esm-${Date.now()}`;
    const result = await runApp(
      ['--import', REGISTER_PATH, join(FIXTURES, 'dropin-app.mjs')],
      env(taskId, 'esm-app'),
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    // The caller received exactly what the server sends when usage is not asked for.
    expect(JSON.parse(result.stdout)).toEqual({ streamChunks: 2, usageSeen: false });
    await expectStoredTask(taskId, 'esm-app');
  });

  it('captures a CommonJS app run through NODE_OPTIONS', async () => {
    const taskId = `cjs-${Date.now()}`;
    const result = await runApp([join(FIXTURES, 'dropin-app.cjs')], {
      ...env(taskId, 'cjs-app'),
      NODE_OPTIONS: `--import ${REGISTER_PATH}`,
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ streamChunks: 2, usageSeen: false });
    await expectStoredTask(taskId, 'cjs-app');
  });
});

// --- the export itself, seen by a bare OTLP/HTTP receiver ------------------------------------

describe('export settings and ROUTEWATCH_* variables', () => {
  let receiver: OtlpReceiver;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
  });

  beforeEach(() => {
    receiver.clear();
  });

  afterAll(async () => {
    await receiver.close();
  });

  const baseEnv = () => ({
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    LLM_URL: llm.origin,
    TASK_ID: 'settings',
  });

  it('exports http/protobuf with the OTEL_EXPORTER_OTLP_HEADERS when asked', async () => {
    const result = await runApp(['--import', REGISTER_PATH, join(FIXTURES, 'dropin-app.mjs')], {
      ...baseEnv(),
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf',
      OTEL_EXPORTER_OTLP_HEADERS: 'x-routewatch-team=routing,authorization=Bearer%20t0ken',
    });
    expect(result.code).toBe(0);
    expect(receiver.exports.length).toBeGreaterThan(0);
    for (const request of receiver.exports) {
      expect(request.contentType).toBe('application/x-protobuf');
      expect(request.headers['x-routewatch-team']).toBe('routing');
      expect(request.headers['authorization']).toBe('Bearer t0ken');
    }
    // Protobuf keeps strings as UTF-8 bytes: names and attribute values are in the body.
    const body = Buffer.concat(receiver.exports.map((r) => r.body)).toString('latin1');
    for (const text of ['chat gpt-small', 'chat claude-large', ATTR_COHORT, 'faq']) {
      expect(body).toContain(text);
    }
  });

  it('records message content with ROUTEWATCH_CAPTURE_CONTENT=true', async () => {
    const result = await runApp(['--import', REGISTER_PATH, join(FIXTURES, 'dropin-app.mjs')], {
      ...baseEnv(),
      ROUTEWATCH_CAPTURE_CONTENT: 'true',
    });
    expect(result.code).toBe(0);
    const claude = receiver.spans().find((s) => s.name === 'chat claude-large')!;
    expect(JSON.parse(String(claude.attributes[ATTR_GEN_AI_INPUT_MESSAGES]))).toEqual([
      { role: 'user', parts: [{ type: 'text', content: 'hi' }] },
    ]);
    expect(JSON.parse(String(claude.attributes[ATTR_GEN_AI_OUTPUT_MESSAGES]))).toEqual([
      { role: 'assistant', parts: [{ type: 'text', content: 'hello' }], finish_reason: 'end_turn' },
    ]);
  });

  it('warns about a bad ROUTEWATCH_* value, naming it, and runs on with the default', async () => {
    const result = await runApp(['--import', REGISTER_PATH, join(FIXTURES, 'dropin-app.mjs')], {
      ...baseEnv(),
      ROUTEWATCH_SDK_CAPTURE: 'maybe',
    });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(
      '[routewatch] ROUTEWATCH_SDK_CAPTURE="maybe" is not valid (accepted: on, off, true, false); using on',
    );
    expect(receiver.spans().map((s) => s.name)).toContain('chat gpt-small');
  });

  it('with ROUTEWATCH_SDK_CAPTURE=off, stamps the spans of the app’s own instrumentation (own NodeSDK)', async () => {
    const result = await runApp([join(FIXTURES, 'own-sdk-app.cjs')], {
      ...baseEnv(),
      ROUTEWATCH_SDK_CAPTURE: 'off',
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const llmSpans = receiver.spans().filter((s) => s.name === 'chat gpt-small');
    expect(llmSpans.map((s) => s.scope)).toEqual(['@opentelemetry/instrumentation-openai']);
    const [official] = llmSpans;
    expect(official!.attributes[ATTR_COHORT]).toBe('extraction');
    expect(official!.attributes[ATTR_ROUTE]).toBe('small');
    expect(official!.attributes[ATTR_ATTEMPT]).toBe(1);
    expect(official!.attributes[ATTR_TASK_ID]).toMatch(/^[0-9a-f]{32}$/);
  });

  it('works in an app that has an older @opentelemetry/instrumentation at its top level', async () => {
    const appDir = mkdtempSync(join(tmpdir(), 'routewatch-old-hook-'));
    try {
      const modules = join(appDir, 'node_modules');
      mkdirSync(join(modules, '@routewatch'), { recursive: true });
      mkdirSync(join(modules, '@opentelemetry'), { recursive: true });
      const link = (target: string, path: string) =>
        symlinkSync(join(REPO_ROOT, 'node_modules', target), join(modules, path), 'dir');
      link('openai', 'openai');
      link('@opentelemetry/api', '@opentelemetry/api');
      link('@routewatch/instrumentation', '@routewatch/instrumentation');
      // The 0.46 copy (import-in-the-middle 1.7) that OpenInference brings, hoisted into the app.
      link(
        '@arizeai/openinference-instrumentation-openai/node_modules/@opentelemetry/instrumentation',
        '@opentelemetry/instrumentation',
      );
      copyFileSync(join(FIXTURES, 'old-hook-app.mjs'), join(appDir, 'app.mjs'));
      const result = await runApp(
        ['--import', '@routewatch/instrumentation/register', 'app.mjs'],
        baseEnv(),
        appDir,
      );
      expect(result.stderr).toBe('');
      expect(result.stdout.trim()).toBe('done');
      expect(result.code).toBe(0);
      const chat = receiver.spans().find((s) => s.name === 'chat gpt-small');
      expect(chat?.scope).toBe('@routewatch/instrumentation/openai');
      expect(chat!.attributes[ATTR_GEN_AI_USAGE_INPUT_TOKENS]).toBe(12);
      expect(chat!.attributes[ATTR_COHORT]).toBe('faq');
    } finally {
      rmSync(appDir, { recursive: true, force: true });
    }
  });
});
