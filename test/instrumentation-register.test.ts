import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

// End to end through `node --import @routewatch/instrumentation/register`: a child process whose
// ESM app imports `openai`, a local LLM and a local OTLP/HTTP receiver in this process.

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: string | number; arrayValue?: unknown };
}
interface OtlpSpan {
  name: string;
  attributes?: OtlpAttribute[];
}
interface OtlpExport {
  resourceSpans?: {
    resource?: { attributes?: OtlpAttribute[] };
    scopeSpans?: { spans?: OtlpSpan[] }[];
  }[];
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function attribute(attributes: OtlpAttribute[] | undefined, key: string): unknown {
  const value = attributes?.find((a) => a.key === key)?.value;
  if (value === undefined) return undefined;
  return value.stringValue ?? (value.intValue === undefined ? undefined : Number(value.intValue));
}

const APP = `
import OpenAI from 'openai';
import { runAttempt, runTask } from '@routewatch/instrumentation';
const client = new OpenAI({ apiKey: 'test', baseURL: process.env.LLM_URL, maxRetries: 0 });
await runTask({ cohort: 'faq' }, () =>
  runAttempt({ route: 'small' }, () =>
    client.chat.completions.create({ model: 'gpt-small', messages: [{ role: 'user', content: 'hi' }] }),
  ),
);
if (process.env.STAY_ALIVE) {
  setInterval(() => {}, 1000);
  console.log('ready');
}
`;

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

describe('register entry (node --import @routewatch/instrumentation/register)', () => {
  let otlp: Server;
  let llm: Server;
  let otlpUrl = '';
  let llmUrl = '';
  let appDir = '';
  const exports: OtlpExport[] = [];

  beforeAll(async () => {
    if (!existsSync(join(repoRoot, 'instrumentation/dist/register.js'))) {
      throw new Error('instrumentation/dist is missing: run `npx tsc -b instrumentation` first');
    }
    otlp = createServer((req, res) => {
      void readBody(req).then((body) => {
        if (req.url === '/v1/traces') exports.push(JSON.parse(body) as OtlpExport);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    llm = createServer((req, res) => {
      void readBody(req).then(() => {
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            id: 'chatcmpl-e2e',
            object: 'chat.completion',
            created: 1,
            model: 'gpt-small-served',
            choices: [
              { index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' },
            ],
            usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
          }),
        );
      });
    });
    for (const server of [otlp, llm]) {
      await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    }
    otlpUrl = `http://127.0.0.1:${(otlp.address() as AddressInfo).port}`;
    llmUrl = `http://127.0.0.1:${(llm.address() as AddressInfo).port}/v1`;

    // An app directory whose own node_modules holds a broken @opentelemetry/instrumentation:
    // the register entry must resolve the loader hook from its own dependency, not the app's.
    appDir = mkdtempSync(join(tmpdir(), 'routewatch-register-'));
    const modules = join(appDir, 'node_modules');
    mkdirSync(join(modules, '@routewatch'), { recursive: true });
    mkdirSync(join(modules, '@opentelemetry/instrumentation'), { recursive: true });
    symlinkSync(join(repoRoot, 'node_modules/openai'), join(modules, 'openai'), 'dir');
    symlinkSync(
      join(repoRoot, 'instrumentation'),
      join(modules, '@routewatch/instrumentation'),
      'dir',
    );
    writeFileSync(
      join(modules, '@opentelemetry/instrumentation/package.json'),
      JSON.stringify({ name: '@opentelemetry/instrumentation', version: '0.46.0', type: 'module' }),
    );
    writeFileSync(
      join(modules, '@opentelemetry/instrumentation/hook.mjs'),
      "throw new Error('the app-level copy of the hook was loaded');\n",
    );
  });

  beforeEach(() => {
    exports.length = 0;
  });

  afterAll(async () => {
    for (const server of [otlp, llm]) {
      await new Promise<void>((done) => server.close(() => done()));
    }
    if (appDir !== '') rmSync(appDir, { recursive: true, force: true });
  });

  function runApp(
    env: Record<string, string>,
    onStdout?: (text: string, kill: (signal: NodeJS.Signals) => void) => void,
  ) {
    return new Promise<RunResult>((done, fail) => {
      const child = spawn(
        process.execPath,
        ['--import', '@routewatch/instrumentation/register', '--input-type=module', '-e', APP],
        {
          cwd: appDir,
          env: {
            PATH: process.env['PATH'] ?? '',
            OTEL_EXPORTER_OTLP_ENDPOINT: otlpUrl,
            OTEL_SERVICE_NAME: 'register-e2e',
            LLM_URL: llmUrl,
            ...env,
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.stdout.on('data', (chunk: Buffer) =>
        onStdout?.(chunk.toString(), (signal) => child.kill(signal)),
      );
      child.on('error', fail);
      child.on('exit', (code, signal) => done({ code, signal, stderr }));
    });
  }

  function exportedSpans(): { service: unknown; span: OtlpSpan }[] {
    return exports.flatMap((body) =>
      (body.resourceSpans ?? []).flatMap((rs) =>
        (rs.scopeSpans ?? []).flatMap((ss) =>
          (ss.spans ?? []).map((span) => ({
            service: attribute(rs.resource?.attributes, 'service.name'),
            span,
          })),
        ),
      ),
    );
  }

  function expectTaggedChatSpan(): void {
    const spans = exportedSpans();
    expect(spans.map((s) => s.span.name).sort()).toEqual([
      'chat gpt-small',
      'routewatch.attempt small',
      'routewatch.task faq',
    ]);
    const chat = spans.find((s) => s.span.name === 'chat gpt-small')!;
    expect(chat.service).toBe('register-e2e');
    const attrs = chat.span.attributes;
    expect(attribute(attrs, 'gen_ai.response.model')).toBe('gpt-small-served');
    expect(attribute(attrs, 'gen_ai.usage.input_tokens')).toBe(5);
    expect(attribute(attrs, 'routewatch.cohort')).toBe('faq');
    expect(attribute(attrs, 'routewatch.route')).toBe('small');
    expect(attribute(attrs, 'routewatch.attempt')).toBe(1);
    expect(attribute(attrs, 'routewatch.task.id')).toMatch(/^[0-9a-f]{32}$/);
  }

  it('patches an ESM `import OpenAI` and exports tagged spans as OTLP JSON before exit', async () => {
    const result = await runApp({});
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expectTaggedChatSpan();
  });

  it.each(['SIGTERM', 'SIGINT'] as const)(
    'flushes on %s, then exits by the signal',
    async (signal) => {
      const result = await runApp({ STAY_ALIVE: '1' }, (text, kill) => {
        if (text.includes('ready')) kill(signal);
      });
      expect(result.signal).toBe(signal);
      expectTaggedChatSpan();
    },
  );
});
