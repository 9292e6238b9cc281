import { spawn } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMockLlm } from '../../examples/mock-llm.js';
import type { MockLlm } from '../../examples/mock-llm.js';
import { appLock } from '../support/app-lock.js';
import { REPO_ROOT, runNode } from '../support/child-process.js';
import type { ChildRun } from '../support/child-process.js';
import { startOtlpReceiver } from '../support/otlp-receiver.js';
import type { OtlpReceiver } from '../support/otlp-receiver.js';

// Installing @routewatch/instrumentation before it is published: `npm pack` of the workspace from
// an unbuilt copy (prepack builds dist), the tarball's contents, and the tarball installed into a
// fresh ESM app with `npm ci --offline` (its dependencies from the npm cache the repository's
// install filled, at the repository's versions) that then runs under
// `node --import @routewatch/instrumentation/register`, exporting to an OTLP receiver.

const work = mkdtempSync(join(tmpdir(), 'routewatch-install-'));
const npmEnv = {
  PATH: [join(REPO_ROOT, 'node_modules/.bin'), process.env['PATH'] ?? ''].join(delimiter),
  HOME: process.env['HOME'] ?? work,
  npm_config_update_notifier: 'false',
  npm_config_fund: 'false',
  npm_config_audit: 'false',
};

function npm(args: string[], cwd: string): Promise<ChildRun> {
  return new Promise((done, fail) => {
    const child = spawn('npm', args, { cwd, env: npmEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', fail);
    child.on('exit', (code, signal) => done({ code, signal, stdout, stderr }));
  });
}

interface PackResult {
  filename: string;
  files: { path: string }[];
}
let packed: PackResult;
let manifest: Record<string, unknown>;

beforeAll(async () => {
  // An unbuilt copy of the workspace, as in a fresh clone: sources, manifest, README, tsconfig,
  // with the repository's node_modules for the compiler and the types.
  const source = join(work, 'repo');
  mkdirSync(join(source, 'instrumentation'), { recursive: true });
  for (const entry of ['package.json', 'README.md', 'LICENSE', 'tsconfig.json', 'src'])
    cpSync(join(REPO_ROOT, 'instrumentation', entry), join(source, 'instrumentation', entry), {
      recursive: true,
    });
  copyFileSync(join(REPO_ROOT, 'tsconfig.base.json'), join(source, 'tsconfig.base.json'));
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(source, 'node_modules'));
  const pack = await npm(
    ['pack', '--json', '--pack-destination', work],
    join(source, 'instrumentation'),
  );
  expect(pack.code, pack.stderr).toBe(0);
  packed = (JSON.parse(pack.stdout) as PackResult[])[0]!;
  manifest = JSON.parse(
    readFileSync(join(REPO_ROOT, 'instrumentation/package.json'), 'utf8'),
  ) as Record<string, unknown>;
}, 120_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('npm pack of @routewatch/instrumentation', () => {
  it('builds dist on pack and ships the entries, their types, the README and the licence, no sources or tests', () => {
    const files = packed.files.map((f) => f.path).sort();
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'LICENSE',
        'dist/index.js',
        'dist/index.d.ts',
        'dist/register.js',
        'dist/register.d.ts',
        'dist/semconv.js',
        'dist/semconv.d.ts',
      ]),
    );
    // Every export of the manifest points at a file in the tarball.
    const exported = Object.values(manifest['exports'] as Record<string, unknown>).flatMap((e) =>
      typeof e === 'string' ? [e] : Object.values(e as Record<string, string>),
    );
    for (const target of exported) expect(files).toContain(target.replace(/^\.\//, ''));
    expect(
      files.filter((f) => !/^(dist\/.+\.(js|d\.ts)|package\.json|README\.md|LICENSE)$/.test(f)),
    ).toEqual([]);
  });
});

describe('the packed tarball in a fresh ESM app', () => {
  let llm: MockLlm;
  let receiver: OtlpReceiver;
  const app = join(work, 'app');

  beforeAll(async () => {
    llm = await startMockLlm();
    receiver = await startOtlpReceiver();
    mkdirSync(app);
    const tarball = join(app, packed.filename);
    copyFileSync(join(work, packed.filename), tarball);
    const { packageJson, lock } = appLock({
      repoLock: join(REPO_ROOT, 'package-lock.json'),
      workspace: 'instrumentation',
      tarball: { path: tarball, spec: `file:${packed.filename}`, manifest },
      registry: ['openai'],
    });
    // protobufjs (under the OTLP protobuf exporter) has a postinstall that only checks versions.
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({ ...packageJson, allowScripts: { protobufjs: false } }, null, 2),
    );
    writeFileSync(join(app, 'package-lock.json'), JSON.stringify(lock, null, 2));
    writeFileSync(
      join(app, 'app.mjs'),
      [
        "import OpenAI from 'openai';",
        "import { runAttempt, runTask } from '@routewatch/instrumentation';",
        "import { ATTR_COHORT } from '@routewatch/instrumentation/semconv';",
        '',
        "const openai = new OpenAI({ apiKey: 'test', baseURL: process.env.LLM_URL, maxRetries: 0 });",
        "const reply = await runTask({ cohort: 'faq' }, async (task) => {",
        "  const answer = await runAttempt({ route: 'small' }, () =>",
        "    openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),",
        '  );',
        "  task.setOutcome('success');",
        '  return answer;',
        '});',
        'console.log(JSON.stringify({ cohortAttribute: ATTR_COHORT, model: reply.model }));',
        '',
      ].join('\n'),
    );
  }, 60_000);

  afterAll(async () => {
    await llm?.close();
    await receiver?.close();
  });

  it('installs offline with npm ci, quietly', async () => {
    const install = await npm(['ci', '--offline'], app);
    expect(install.stderr).toBe('');
    expect(install.code).toBe(0);
    const installed = JSON.parse(
      readFileSync(join(app, 'node_modules/@routewatch/instrumentation/package.json'), 'utf8'),
    ) as { version: string };
    expect(installed.version).toBe(manifest['version']);
  }, 120_000);

  it('runs under node --import @routewatch/instrumentation/register and exports tagged spans', async () => {
    const run = await runNode(['--import', '@routewatch/instrumentation/register', 'app.mjs'], {
      cwd: app,
      env: {
        LLM_URL: llm.url,
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_SERVICE_NAME: 'packed-app',
      },
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({
      cohortAttribute: 'routewatch.cohort',
      model: 'gpt-4o-mini-2024-07-18',
    });
    const spans = receiver.spans();
    expect(spans.map((s) => s.name).sort()).toEqual([
      'chat gpt-4o-mini',
      'routewatch.attempt small',
      'routewatch.task faq',
    ]);
    const call = spans.find((s) => s.name === 'chat gpt-4o-mini')!;
    expect(call.service).toBe('packed-app');
    expect(call.attributes).toMatchObject({
      'routewatch.cohort': 'faq',
      'routewatch.route': 'small',
      'routewatch.attempt': 1,
      'gen_ai.request.model': 'gpt-4o-mini',
    });
    expect(call.attributes['gen_ai.usage.input_tokens']).toBeGreaterThan(0);
  });
});
