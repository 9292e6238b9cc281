import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMockLlm, type MockLlm } from '../../examples/mock-llm.js';
import {
  ATTEMPT_SPAN_PREFIX,
  ATTR_ATTEMPT,
  ATTR_COHORT,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_ROUTE,
  ATTR_TASK_ID,
  TASK_SPAN_PREFIX,
} from '../../instrumentation/src/semconv.js';
import {
  REGISTER_PATH,
  REPO_ROOT,
  requireBuiltInstrumentation,
  runNode,
} from '../support/child-process.js';
import { startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.js';

// End to end through `node --import @routewatch/instrumentation/register`: a child process whose
// ESM app imports `openai`, the simulated LLM and an OTLP/HTTP receiver in this process.

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

describe('register entry (node --import @routewatch/instrumentation/register)', () => {
  let otlp: OtlpReceiver;
  let llm: MockLlm;
  let appDir = '';

  beforeAll(async () => {
    requireBuiltInstrumentation();
    otlp = await startOtlpReceiver();
    llm = await startMockLlm({ anyModel: true });

    // An app directory whose own node_modules holds a broken @opentelemetry/instrumentation:
    // the register entry must resolve the loader hook from its own dependency, not the app's.
    appDir = mkdtempSync(join(tmpdir(), 'routewatch-register-'));
    const modules = join(appDir, 'node_modules');
    mkdirSync(join(modules, '@routewatch'), { recursive: true });
    mkdirSync(join(modules, '@opentelemetry/instrumentation'), { recursive: true });
    symlinkSync(join(REPO_ROOT, 'node_modules/openai'), join(modules, 'openai'), 'dir');
    symlinkSync(
      join(REPO_ROOT, 'instrumentation'),
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
    otlp.clear();
  });

  afterAll(async () => {
    await otlp.close();
    await llm.close();
    if (appDir !== '') rmSync(appDir, { recursive: true, force: true });
  });

  const runApp = (
    env: Record<string, string>,
    onStdout?: (text: string, child: ChildProcess) => void,
  ) =>
    runNode(
      ['--import', '@routewatch/instrumentation/register', '--input-type=module', '-e', APP],
      {
        cwd: appDir,
        env: {
          OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
          OTEL_SERVICE_NAME: 'register-e2e',
          LLM_URL: llm.url,
          ...env,
        },
        ...(onStdout === undefined ? {} : { onStdout }),
      },
    );

  function expectTaggedChatSpan(): void {
    const spans = otlp.spans();
    expect(spans.map((s) => s.name).sort()).toEqual([
      'chat gpt-small',
      `${ATTEMPT_SPAN_PREFIX} small`,
      `${TASK_SPAN_PREFIX} faq`,
    ]);
    const chat = spans.find((s) => s.name === 'chat gpt-small')!;
    expect(chat.service).toBe('register-e2e');
    expect(chat.attributes[ATTR_GEN_AI_RESPONSE_MODEL]).toBe('gpt-small-served');
    expect(chat.attributes[ATTR_GEN_AI_USAGE_INPUT_TOKENS]).toBe(12);
    expect(chat.attributes[ATTR_COHORT]).toBe('faq');
    expect(chat.attributes[ATTR_ROUTE]).toBe('small');
    expect(chat.attributes[ATTR_ATTEMPT]).toBe(1);
    expect(chat.attributes[ATTR_TASK_ID]).toMatch(/^[0-9a-f]{32}$/);
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
      const result = await runApp({ STAY_ALIVE: '1' }, (text, child) => {
        if (text.includes('ready')) child.kill(signal);
      });
      expect(result.signal).toBe(signal);
      expectTaggedChatSpan();
    },
  );

  // Regression of #3 in /work/notes/review-instrumentation-35.md: a stream dropped half-read never
  // ended its span, and the call was missing from its task.
  it('exports the span of a stream dropped half-read once it is collected, without waiting for exit', async () => {
    const dropped = `
import OpenAI from 'openai';
const client = new OpenAI({ apiKey: 'test', baseURL: process.env.LLM_URL, maxRetries: 0 });
let response;
async function peek() {
  const answer = await client.chat.completions
    .create({ model: 'gpt-small', messages: [{ role: 'user', content: 'hi' }], stream: true })
    .withResponse();
  response = new WeakRef(answer.response);
  await answer.data[Symbol.asyncIterator]().next();
}
await peek();
for (let i = 0; i < 20; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); }
console.log('response collected: ' + (response.deref() === undefined));
setInterval(() => {}, 1000);
`;
    let child: ChildProcess | undefined;
    const running = runNode(
      [
        '--expose-gc',
        '--import',
        '@routewatch/instrumentation/register',
        '--input-type=module',
        '-e',
        dropped,
      ],
      {
        cwd: appDir,
        env: {
          OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
          OTEL_SERVICE_NAME: 'register-e2e',
          OTEL_BSP_SCHEDULE_DELAY: '100',
          LLM_URL: llm.url,
        },
        onStdout: (_text, c) => (child = c),
      },
    );
    // Its line printed (after the collections) and the span received, before the kill.
    const deadline = Date.now() + 10_000;
    while (
      Date.now() < deadline &&
      (child === undefined || !otlp.spans().some((s) => s.name === 'chat gpt-small'))
    )
      await new Promise((r) => setTimeout(r, 50));
    // Killed, so no exit hook ran: the span came from the collected stream.
    child?.kill('SIGKILL');
    const result = await running;
    const chat = otlp.spans().find((s) => s.name === 'chat gpt-small');
    expect(chat?.attributes[ATTR_GEN_AI_RESPONSE_MODEL]).toBe('gpt-small-served');
    // Nothing of ours holds the HTTP response of a dropped stream (its connection is released
    // when it is collected): it held 35 MB a thousand dropped streams before.
    expect(result.stdout).toContain('response collected: true');
  });

  // The tests below are regressions of /work/review/instr2.md (a second review of the drop-in):
  // its final export ran at `beforeExit` and on every signal, and its exporter held the process.
  const PRELUDE = `
import OpenAI from 'openai';
import { runAttempt, runTask } from '@routewatch/instrumentation';
const client = new OpenAI({ apiKey: 'test', baseURL: process.env.LLM_URL, maxRetries: 0 });
const call = (cohort) => runTask({ cohort }, () => runAttempt({ route: 'small' }, () =>
  client.chat.completions.create({ model: 'gpt-small', messages: [{ role: 'user', content: 'hi' }] })));
`;
  const runScript = (
    script: string,
    env: Record<string, string> = {},
    register = true,
    onStdout?: (text: string, child: ChildProcess) => void,
  ) =>
    runNode(
      [
        ...(register ? ['--import', '@routewatch/instrumentation/register'] : []),
        '--input-type=module',
        '-e',
        `${PRELUDE}${script}`,
      ],
      {
        cwd: appDir,
        env: {
          OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
          OTEL_SERVICE_NAME: 'register-e2e',
          LLM_URL: llm.url,
          ...env,
        },
        ...(onStdout === undefined ? {} : { onStdout }),
      },
    );
  const cohortsExported = () =>
    otlp
      .spans()
      .filter((s) => s.name === 'chat gpt-small')
      .map((s) => s.attributes[ATTR_COHORT])
      .sort();

  it('runs the app’s own beforeExit listener as often as without it (#1: twice, a pool ended twice)', async () => {
    const script = `
await call('faq');
let runs = 0;
process.on('beforeExit', () => console.log('beforeExit ' + ++runs));
`;
    const plain = await runScript(script, {}, false);
    const instrumented = await runScript(script);
    expect(plain.stdout.trim()).toBe('beforeExit 1');
    expect(instrumented.stdout.trim()).toBe('beforeExit 1');
    expect(instrumented.code).toBe(0);
    expect(cohortsExported()).toEqual(['faq']);
  });

  it('exports the work the app does in its own beforeExit listener (#2: lost, or cut short)', async () => {
    const result = await runScript(`
await call('faq');
let drained = false;
process.on('beforeExit', async () => {
  if (drained) return;
  drained = true;
  await call('drain');
  await new Promise((r) => setTimeout(r, 300));
  console.log('drained');
});
`);
    expect(result.stdout).toContain('drained');
    expect(result.code).toBe(0);
    expect(cohortsExported()).toEqual(['drain', 'faq']);
  });

  it('exports the tasks an app finishes after a SIGTERM it handles, as it drains (#3: lost)', async () => {
    let child: ChildProcess | undefined;
    const result = await runScript(
      `
const alive = setInterval(() => {}, 1000);
process.on('SIGTERM', async () => {
  await new Promise((r) => setTimeout(r, 200));
  await call('inflight');
  clearInterval(alive);
  console.log('drained');
});
console.log('ready');
`,
      {},
      true,
      (text, c) => {
        child = c;
        if (text.includes('ready')) c.kill('SIGTERM');
      },
    );
    expect(child).toBeDefined();
    expect(result.stdout).toContain('drained');
    expect(result.code).toBe(0);
    expect(cohortsExported()).toEqual(['inflight']);
  });

  it('exports the spans of an app that ends with process.exit(), with its exit code', async () => {
    const result = await runScript(`await call('faq'); process.exit(4);`);
    expect(result.code).toBe(4);
    expect(cohortsExported()).toEqual(['faq']);
  });

  it('exports what has ended when the app handles a signal and raises it again (review diff-7 #2)', async () => {
    // The clean-up-then-re-raise pattern (signal-exit, loaded by execa and ora, does it): the
    // process dies by the signal, with no exit event.
    const result = await runScript(
      `
await call('faq');
process.once('SIGTERM', () => { console.log('cleaned up'); process.kill(process.pid, 'SIGTERM'); });
setInterval(() => {}, 1000);
console.log('ready');
`,
      {},
      true,
      (text, child) => {
        if (text.includes('ready')) child.kill('SIGTERM');
      },
    );
    expect(result.stdout).toContain('cleaned up');
    expect(result.signal).toBe('SIGTERM');
    expect(cohortsExported()).toEqual(['faq']);
  });

  it('runs none of NODE_OPTIONS’ preloads in the worker that posts the last export (review diff-7 #1)', async () => {
    const log = join(appDir, 'preloads.log');
    const preload = join(appDir, 'preload.cjs');
    // Node's own loader-hooks thread runs them too (module.register): told apart from ours by
    // what it was given.
    writeFileSync(
      preload,
      "const { isMainThread, workerData } = require('node:worker_threads');\n" +
        "const where = isMainThread ? 'main' : workerData && workerData.bodies ? 'exit export' : 'other thread';\n" +
        "require('node:fs').appendFileSync(process.env.PRELOAD_LOG, where + '\\n');\n",
    );
    writeFileSync(log, '');
    const result = await runScript(`await call('faq');`, {
      NODE_OPTIONS: `--require ${preload}`,
      PRELOAD_LOG: log,
    });
    expect(result.code).toBe(0);
    expect(cohortsExported()).toEqual(['faq']);
    const ran = readFileSync(log, 'utf8').trim().split('\n');
    expect(ran).toContain('main');
    expect(ran).not.toContain('exit export');
  });

  it('says in one line that the last spans could not be exported, and where to', async () => {
    const result = await runScript(`await call('faq');`, {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:1/v1/traces',
    });
    expect(result.code).toBe(0);
    expect(result.stderr.trim()).toBe(
      '[routewatch] the last 3 spans of this process could not be exported: http://127.0.0.1:1/v1/traces could not be reached',
    );
  });

  it('says in one line when the endpoint is not an http(s) URL, and the app runs (#7: silent)', async () => {
    const result = await runScript(`await call('faq'); console.log('app done');`, {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'localhost:4318',
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('app done');
    expect(result.stderr).toContain(
      '[routewatch] OTEL_EXPORTER_OTLP_ENDPOINT (localhost:4318/v1/traces) is not an http:// or https:// URL, so no span can be exported',
    );
  });

  it('keeps the exit code and the code after an awaited shutdown() of the app’s own (review diff-6 #1)', async () => {
    const result = await runScript(`
import { registerRoutewatch } from '@routewatch/instrumentation';
await call('faq');
await registerRoutewatch().shutdown();
console.log('after shutdown');
process.exitCode = 5;
`);
    expect(result.stdout).toContain('after shutdown');
    expect(result.code).toBe(5);
    expect(cohortsExported()).toEqual(['faq']);
  });

  it('sends the last spans in requests of the batch size, not in one body (review diff-6 #6)', async () => {
    // process.exit() cuts the exports under way: every span goes with the exit export.
    const result = await runScript(
      `await call('a'); await call('b'); await call('c'); process.exit(0);`,
      { OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '2', OTEL_BSP_SCHEDULE_DELAY: '60000' },
    );
    expect(result.code).toBe(0);
    expect([...new Set(cohortsExported())]).toEqual(['a', 'b', 'c']);
    const sizes = otlp.exports.map(
      (e) =>
        (
          JSON.parse(e.body.toString('utf8')) as {
            resourceSpans: { scopeSpans: { spans: unknown[] }[] }[];
          }
        ).resourceSpans
          .flatMap((r) => r.scopeSpans)
          .flatMap((s) => s.spans).length,
    );
    expect(sizes.length).toBeGreaterThan(1);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(2);
  });

  it('says so when OTEL_EXPORTER_OTLP_ENDPOINT already ends in /v1/traces (#7)', async () => {
    const result = await runScript(`await call('faq');`, {
      OTEL_EXPORTER_OTLP_ENDPOINT: `${otlp.url}/v1/traces`,
    });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(
      `[routewatch] OTEL_EXPORTER_OTLP_ENDPOINT (${otlp.url}/v1/traces) ends in /v1/traces, which is appended to it: spans go to ${otlp.url}/v1/traces/v1/traces. Give the base (${otlp.url})`,
    );
  });

  it('says so when openai was loaded before it, by an earlier --require (#8: silent)', async () => {
    const early = join(appDir, 'early.cjs');
    writeFileSync(early, "require('openai');\n");
    const result = await runNode(
      [
        '--require',
        early,
        '--import',
        '@routewatch/instrumentation/register',
        '--input-type=module',
        '-e',
        "console.log('app done')",
      ],
      { cwd: appDir, env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url } },
    );
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(
      '[routewatch] openai was loaded before @routewatch/instrumentation/register (by an earlier --require or --import), so its calls are not captured',
    );
  });

  it('takes no metrics or logs, and sends no command line (#4)', async () => {
    const result = await runScript(`await call('faq');`, {
      OTEL_METRIC_EXPORT_INTERVAL: '100',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    expect(result.code).toBe(0);
    expect(cohortsExported()).toEqual(['faq']);
    expect(new Set(otlp.paths)).toEqual(new Set(['/v1/traces']));
    for (const received of otlp.exports) {
      expect(received.body.toString('utf8')).not.toContain('process.command');
    }
  });

  // Regression of A3 in the instrumentation review: the SDK's batch processor read a batch size
  // of 0 unchecked and looped forever on the flush at exit.
  it('ignores an invalid OTEL_BSP_* value with a warning, exports and exits', async () => {
    const result = await runApp({ OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '0' });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('[routewatch] OTEL_BSP_MAX_EXPORT_BATCH_SIZE="0" is not valid');
    expectTaggedChatSpan();
  });
});

// Regression of #2 in /work/notes/review-instrumentation-35.md: watching a failed call marked its
// rejection handled, so a call nobody awaited no longer reached the app's unhandledRejection
// handler, nor crashed the process as Node does by default.
describe('register entry with a failed call nobody awaits', () => {
  const FORGOTTEN = `
import OpenAI from 'openai';
if (process.env.HANDLER) process.on('unhandledRejection', (reason) => {
  console.log('APP unhandledRejection ' + reason.constructor.name);
});
const client = new OpenAI({ apiKey: 'test', baseURL: 'http://127.0.0.1:1/v1', maxRetries: 0 });
client.chat.completions.create({ model: 'warm-up', messages: [{ role: 'user', content: 'hi' }] });
setTimeout(() => console.log('still running'), 1500);
`;
  const run = (register: boolean, env: Record<string, string> = {}) =>
    runNode(
      [
        ...(register ? ['--import', '@routewatch/instrumentation/register'] : []),
        '--input-type=module',
        '-e',
        FORGOTTEN,
      ],
      { env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1', ...env } },
    );

  beforeAll(() => requireBuiltInstrumentation());

  it('crashes the process as it does without the instrumentation', async () => {
    const [plain, instrumented] = await Promise.all([run(false), run(true)]);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(/APIConnectionError/);
    expect(instrumented.code).toBe(1);
    expect(instrumented.stdout).not.toContain('still running');
    expect(instrumented.stderr).toMatch(/APIConnectionError/);
  });

  it('reaches the app’s own unhandledRejection handler', async () => {
    const [plain, instrumented] = await Promise.all([
      run(false, { HANDLER: '1' }),
      run(true, { HANDLER: '1' }),
    ]);
    expect(plain.stdout).toContain('APP unhandledRejection APIConnectionError');
    expect(instrumented.stdout).toContain('APP unhandledRejection APIConnectionError');
    expect(instrumented.code).toBe(plain.code);
  });
});

// Regression of #1 in /work/notes/review-instrumentation-35.md: the register entry on top of the
// app's own NodeSDK started a second one, which could not register: routewatch stored nothing and
// its captures doubled the app's own LLM spans, with only a Node warning about the loader hook.
describe('register entry after the app’s own OpenTelemetry SDK', () => {
  let dir = '';
  let own = '';
  beforeAll(() => {
    requireBuiltInstrumentation();
    // In the repository, so that the app's set-up resolves @opentelemetry/sdk-node.
    dir = mkdtempSync(join(REPO_ROOT, '.tmp-own-otel-'));
    own = join(dir, 'own-otel.mjs');
    writeFileSync(
      own,
      `import { NodeSDK } from '@opentelemetry/sdk-node';
import { SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
const exporter = {
  export(spans, done) { for (const s of spans) console.log('APP SPAN ' + s.name); done({ code: 0 }); },
  shutdown: async () => {},
};
new NodeSDK({ spanProcessors: [new SimpleSpanProcessor(exporter)], instrumentations: [] }).start();
`,
    );
  });
  afterAll(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('starts nothing of its own, says why, and leaves the app’s tracing as it was', async () => {
    const app = `
import { trace } from '@opentelemetry/api';
trace.getTracer('app').startSpan('handle-request').end();
`;
    const result = await runNode(
      [
        '--import',
        own,
        '--import',
        '@routewatch/instrumentation/register',
        '--input-type=module',
        '-e',
        app,
      ],
      { env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' } },
    );
    expect(result.code).toBe(0);
    expect(result.stdout.match(/APP SPAN handle-request/g)).toHaveLength(1);
    expect(result.stderr).toContain(
      '[routewatch] an OpenTelemetry SDK is already running in this process',
    );
    expect(result.stderr).not.toMatch(/import-in-the-middle/);
  });

  it('says so when the app’s own SDK starts after it and cannot register', async () => {
    const result = await runNode(
      [
        '--import',
        '@routewatch/instrumentation/register',
        '--import',
        own,
        '--input-type=module',
        '-e',
        "import { trace } from '@opentelemetry/api'; trace.getTracer('app').startSpan('x').end();",
      ],
      { env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' } },
    );
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(
      '[routewatch] another OpenTelemetry SDK started after routewatch and could not register',
    );
  });
});

/** A collector that accepts connections and never answers: the exporter waits on each request. */
async function startBlackHole(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

// Regression of A2 in the instrumentation review: the exporter's retries against an unanswering
// collector held a finished process for 10 s and more, past the 5 s shutdown bound.
describe('register entry at exit with a collector that never answers', () => {
  let blackHole: Awaited<ReturnType<typeof startBlackHole>>;

  beforeAll(async () => {
    requireBuiltInstrumentation();
    blackHole = await startBlackHole();
  });

  afterAll(async () => {
    await blackHole.close();
  });

  it('exits within about the shutdown bound, with the app’s exit code', async () => {
    const app = `
      import { runTask } from '@routewatch/instrumentation';
      await runTask({ cohort: 'cron' }, () => 'done');
      process.exitCode = 3;
      console.log('done at ' + Date.now());
    `;
    const result = await runNode(['--import', REGISTER_PATH, '--input-type=module', '-e', app], {
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: blackHole.url },
      timeoutMs: 30_000,
    });
    // From the app's last line (its own clock, this machine's) to its exit: the start-up of Node
    // and the SDK, which a loaded machine stretches by seconds, is not part of the bound.
    const elapsedMs = Date.now() - Number(/done at (\d+)/.exec(result.stdout)?.[1]);
    expect(result.stdout).toMatch(/done at \d+/);
    expect(result.code).toBe(3);
    // The 5 s bound; without it, about 10 s (the exporter's timeout and retries).
    expect(elapsedMs).toBeLessThan(8_000);
    expect(elapsedMs).toBeGreaterThanOrEqual(4_500);
  });
});
