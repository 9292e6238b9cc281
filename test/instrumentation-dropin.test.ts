import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { configWith } from '../server/config.js';
import { startRoutewatch, type RunningRoutewatch } from '../server/start.js';
import { startMockLlm, type MockLlm } from './fixtures/mock-llm.js';

// The drop-in, end to end: fixture apps (ESM, CommonJS, own NodeSDK, older hook copy present) run
// as child processes with `--import …/register`, against the local LLM; their spans go to a real
// collector (embedded ClickHouse) or, to look at the export itself, to a bare OTLP receiver.

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = join(repoRoot, 'test/fixtures');
const registerPath = join(repoRoot, 'instrumentation/dist/register.js');

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runApp(args: string[], env: Record<string, string>, cwd = repoRoot): Promise<RunResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, args, {
      cwd,
      env: { PATH: process.env['PATH'] ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', fail);
    child.on('exit', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

let llm: MockLlm;

beforeAll(async () => {
  if (!existsSync(registerPath)) {
    throw new Error('instrumentation/dist is missing: run `npx tsc -b instrumentation` first');
  }
  llm = await startMockLlm();
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
    expect(byName('routewatch.task faq')).toMatchObject([{ ...common, kind: 'task' }]);
    expect(byName('routewatch.attempt small')).toMatchObject([
      { ...common, kind: 'attempt', route: 'small', attempt: 1, fallback_reason: '' },
    ]);
    expect(byName('routewatch.attempt large')).toMatchObject([
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
    LLM_URL: llm.url,
    TASK_ID: taskId,
  });

  it('captures an ESM app run with --import: OpenAI and Anthropic, tagged, stored', async () => {
    const taskId = `esm-${Date.now()}`;
    const result = await runApp(
      ['--import', registerPath, join(fixtures, 'dropin-app.mjs')],
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
    const result = await runApp([join(fixtures, 'dropin-app.cjs')], {
      ...env(taskId, 'cjs-app'),
      NODE_OPTIONS: `--import ${registerPath}`,
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ streamChunks: 2, usageSeen: false });
    await expectStoredTask(taskId, 'cjs-app');
  });
});

// --- the export itself, seen by a bare OTLP/HTTP receiver ------------------------------------

interface Received {
  contentType: string | undefined;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: string | number };
}
interface OtlpSpan {
  name: string;
  attributes?: OtlpAttribute[];
}
interface OtlpExport {
  resourceSpans?: { scopeSpans?: { scope?: { name?: string }; spans?: OtlpSpan[] }[] }[];
}

function attribute(span: OtlpSpan, key: string): unknown {
  const value = span.attributes?.find((a) => a.key === key)?.value;
  if (value === undefined) return undefined;
  return value.stringValue ?? (value.intValue === undefined ? undefined : Number(value.intValue));
}

describe('export settings and ROUTEWATCH_* variables', () => {
  let receiver: Server;
  let receiverUrl = '';
  const received: Received[] = [];

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        // Only traces: an app's own NodeSDK may export logs too (the official OpenAI
        // instrumentation emits GenAI events as log records).
        if (req.url === '/v1/traces')
          received.push({
            contentType: req.headers['content-type'],
            headers: req.headers,
            body: Buffer.concat(chunks),
          });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((done) => receiver.listen(0, '127.0.0.1', done));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  });

  beforeEach(() => {
    received.length = 0;
  });

  afterAll(async () => {
    await new Promise<void>((done) => receiver.close(() => done()));
  });

  function spans(): { scope: string; span: OtlpSpan }[] {
    return received.flatMap((r) =>
      ((JSON.parse(r.body.toString('utf8')) as OtlpExport).resourceSpans ?? []).flatMap((rs) =>
        (rs.scopeSpans ?? []).flatMap((ss) =>
          (ss.spans ?? []).map((span) => ({ scope: ss.scope?.name ?? '', span })),
        ),
      ),
    );
  }

  const baseEnv = () => ({
    OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl,
    LLM_URL: llm.url,
    TASK_ID: 'settings',
  });

  it('exports http/protobuf with the OTEL_EXPORTER_OTLP_HEADERS when asked', async () => {
    const result = await runApp(['--import', registerPath, join(fixtures, 'dropin-app.mjs')], {
      ...baseEnv(),
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf',
      OTEL_EXPORTER_OTLP_HEADERS: 'x-routewatch-team=routing,authorization=Bearer%20t0ken',
    });
    expect(result.code).toBe(0);
    expect(received.length).toBeGreaterThan(0);
    for (const request of received) {
      expect(request.contentType).toBe('application/x-protobuf');
      expect(request.headers['x-routewatch-team']).toBe('routing');
      expect(request.headers['authorization']).toBe('Bearer t0ken');
    }
    // Protobuf keeps strings as UTF-8 bytes: names and attribute values are in the body.
    const body = Buffer.concat(received.map((r) => r.body)).toString('latin1');
    for (const text of ['chat gpt-small', 'chat claude-large', 'routewatch.cohort', 'faq']) {
      expect(body).toContain(text);
    }
  });

  it('records message content with ROUTEWATCH_CAPTURE_CONTENT=true', async () => {
    const result = await runApp(['--import', registerPath, join(fixtures, 'dropin-app.mjs')], {
      ...baseEnv(),
      ROUTEWATCH_CAPTURE_CONTENT: 'true',
    });
    expect(result.code).toBe(0);
    const claude = spans().find((s) => s.span.name === 'chat claude-large')!.span;
    expect(JSON.parse(String(attribute(claude, 'gen_ai.input.messages')))).toEqual([
      { role: 'user', parts: [{ type: 'text', content: 'hi' }] },
    ]);
    expect(JSON.parse(String(attribute(claude, 'gen_ai.output.messages')))).toEqual([
      { role: 'assistant', parts: [{ type: 'text', content: 'hello' }], finish_reason: 'end_turn' },
    ]);
  });

  it('warns about a bad ROUTEWATCH_* value, naming it, and runs on with the default', async () => {
    const result = await runApp(['--import', registerPath, join(fixtures, 'dropin-app.mjs')], {
      ...baseEnv(),
      ROUTEWATCH_SDK_CAPTURE: 'maybe',
    });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(
      '[routewatch] ROUTEWATCH_SDK_CAPTURE="maybe" is not valid (accepted: on, off, true, false); using on',
    );
    expect(spans().map((s) => s.span.name)).toContain('chat gpt-small');
  });

  it('with ROUTEWATCH_SDK_CAPTURE=off, stamps the spans of the app’s own instrumentation (own NodeSDK)', async () => {
    const result = await runApp([join(fixtures, 'own-sdk-app.cjs')], {
      ...baseEnv(),
      ROUTEWATCH_SDK_CAPTURE: 'off',
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const llmSpans = spans().filter((s) => s.span.name === 'chat gpt-small');
    expect(llmSpans.map((s) => s.scope)).toEqual(['@opentelemetry/instrumentation-openai']);
    const [official] = llmSpans;
    expect(attribute(official!.span, 'routewatch.cohort')).toBe('extraction');
    expect(attribute(official!.span, 'routewatch.route')).toBe('small');
    expect(attribute(official!.span, 'routewatch.attempt')).toBe(1);
    expect(attribute(official!.span, 'routewatch.task.id')).toMatch(/^[0-9a-f]{32}$/);
  });

  it('works in an app that has an older @opentelemetry/instrumentation at its top level', async () => {
    const appDir = mkdtempSync(join(tmpdir(), 'routewatch-old-hook-'));
    try {
      const modules = join(appDir, 'node_modules');
      mkdirSync(join(modules, '@routewatch'), { recursive: true });
      mkdirSync(join(modules, '@opentelemetry'), { recursive: true });
      const link = (target: string, path: string) =>
        symlinkSync(join(repoRoot, 'node_modules', target), join(modules, path), 'dir');
      link('openai', 'openai');
      link('@opentelemetry/api', '@opentelemetry/api');
      link('@routewatch/instrumentation', '@routewatch/instrumentation');
      // The 0.46 copy (import-in-the-middle 1.7) that OpenInference brings, hoisted into the app.
      link(
        '@arizeai/openinference-instrumentation-openai/node_modules/@opentelemetry/instrumentation',
        '@opentelemetry/instrumentation',
      );
      copyFileSync(join(fixtures, 'old-hook-app.mjs'), join(appDir, 'app.mjs'));
      const result = await runApp(
        ['--import', '@routewatch/instrumentation/register', 'app.mjs'],
        baseEnv(),
        appDir,
      );
      expect(result.stderr).toBe('');
      expect(result.stdout.trim()).toBe('done');
      expect(result.code).toBe(0);
      const chat = spans().find((s) => s.span.name === 'chat gpt-small');
      expect(chat?.scope).toBe('@routewatch/instrumentation/openai');
      expect(attribute(chat!.span, 'gen_ai.usage.input_tokens')).toBe(12);
      expect(attribute(chat!.span, 'routewatch.cohort')).toBe('faq');
    } finally {
      rmSync(appDir, { recursive: true, force: true });
    }
  });
});
