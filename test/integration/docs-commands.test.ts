import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/child-process.js';
import type { ChildRun } from '../support/child-process.js';
import { CLI, startInstance } from '../support/cli.js';
import type { StartedInstance } from '../support/cli.js';
import { shellBlocks } from '../support/doc-blocks.js';
import type { BlockMode, ShellBlock } from '../support/doc-blocks.js';
import { hexId, otlpBody } from '../support/otlp.js';
import { nsAt } from '../support/time.js';

// Every shell block of the README and the docs, run as written, with bash -euo pipefail (the
// markers are in test/support/doc-blocks.ts): a command that goes stale fails here.

const blocks = shellBlocks();
const work = mkdtempSync(join(tmpdir(), 'routewatch-docs-'));
const bin = join(work, 'bin');
/** The working directory of the `instance` and `stopped` blocks; the instance's data is in it. */
const instanceDir = join(work, 'instance');
const DOCUMENTED_URL = 'http://127.0.0.1:4318';
let instance: StartedInstance | undefined;

beforeAll(() => {
  mkdirSync(bin);
  mkdirSync(instanceDir);
  // `routewatch` on the PATH, as `npm link` puts it there.
  const shim = join(bin, 'routewatch');
  writeFileSync(
    shim,
    `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`,
  );
  chmodSync(shim, 0o755);
});

afterAll(async () => {
  await instance?.stop();
  rmSync(work, { recursive: true, force: true });
});

function runBlock(
  block: ShellBlock,
  cwd: string,
  env: Record<string, string> = {},
  rewrite: (script: string) => string = (script) => script,
): Promise<ChildRun> {
  const path = join(work, `${block.file.replace(/\W+/g, '-')}-${block.line}.sh`);
  writeFileSync(path, `set -euo pipefail\n${rewrite(block.script)}`);
  return new Promise((done, fail) => {
    const child = spawn('bash', [path], {
      cwd,
      env: {
        PATH: [bin, process.env['PATH'] ?? ''].join(delimiter),
        HOME: process.env['HOME'] ?? work,
        npm_config_update_notifier: 'false',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', fail);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stdout, stderr });
    });
  });
}

function expectSuccess(block: ShellBlock, run: ChildRun): void {
  expect(
    run.code,
    `${block.file}:${block.line} exited ${run.code}\n--- script\n${block.script}--- stdout\n${run.stdout}--- stderr\n${run.stderr}`,
  ).toBe(0);
}

const cases = (mode: BlockMode) =>
  blocks
    .filter((b) => b.mode === mode)
    .map((b): [string, ShellBlock] => [`${b.file}:${b.line}`, b]);

describe('`sh` blocks, each in an empty directory', () => {
  it.each(cases('plain'))('%s', async (_where, block) => {
    expectSuccess(block, await runBlock(block, mkdtempSync(join(work, 'plain-'))));
  });
});

describe('`sh repo` blocks, in the repository', () => {
  it.each(cases('repo'))('%s', async (_where, block) => {
    expectSuccess(block, await runBlock(block, REPO_ROOT));
  });
});

describe('`sh instance` blocks, against a running routewatch', () => {
  beforeAll(async () => {
    instance = await startInstance({ ROUTEWATCH_DATA_DIR: join(instanceDir, '.routewatch') });
    // A little data, so that the queries of the docs have rows to show.
    const spans = ['faq', 'faq', 'extraction'].flatMap((cohort, i) => {
      const traceId = hexId(16);
      const taskId = `docs-task-${i}`;
      return [
        {
          traceId,
          name: `routewatch.task ${cohort}`,
          kind: 1,
          start: nsAt(i * 1000),
          end: nsAt(i * 1000 + 300),
          attributes: {
            'routewatch.task.id': taskId,
            'routewatch.cohort': cohort,
            'routewatch.outcome': 'success',
          },
        },
        {
          traceId,
          name: 'routewatch.attempt small',
          kind: 1,
          start: nsAt(i * 1000 + 1),
          end: nsAt(i * 1000 + 200),
          attributes: {
            'routewatch.task.id': taskId,
            'routewatch.cohort': cohort,
            'routewatch.route': 'small',
            'routewatch.attempt': 1,
          },
        },
      ];
    });
    const ingest = await fetch(`${instance.url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(otlpBody(spans)),
    });
    expect(ingest.status).toBe(200);
  });

  it.each(cases('instance'))('%s', async (_where, block) => {
    const url = instance!.url;
    const run = await runBlock(block, instanceDir, { ROUTEWATCH_URL: url }, (script) =>
      script.replaceAll(DOCUMENTED_URL, url),
    );
    expectSuccess(block, run);
  });
});

describe("`sh stopped` blocks, in the stopped instance's directory, in order", () => {
  beforeAll(async () => {
    // Started above when there are instance blocks; else started here, so the data exists.
    instance ??= await startInstance({ ROUTEWATCH_DATA_DIR: join(instanceDir, '.routewatch') });
    expect(await instance.stop()).toBe(0);
    instance = undefined;
  });

  it.each(cases('stopped'))('%s', async (_where, block) => {
    expectSuccess(block, await runBlock(block, instanceDir));
  });
});

describe('the markers', () => {
  it('leave no shell block unrun without a reason', () => {
    const run = blocks.filter((b) => b.mode !== 'skip' && b.mode !== 'unknown');
    expect(run.length + blocks.filter((b) => b.mode === 'skip').length).toBe(blocks.length);
    expect(cases('instance').length).toBeGreaterThan(0);
    expect(cases('stopped').length).toBeGreaterThan(0);
  });
});
